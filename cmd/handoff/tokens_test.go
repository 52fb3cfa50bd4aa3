package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeTokenFile writes text to a token file of mode perm.
func writeTokenFile(t *testing.T, text string, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(p, []byte(text), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil { // past the umask
		t.Fatal(err)
	}
	return p
}

const scopedTokenFile = "# who may do what\nread:r3ad\nwrite: wr1te\n\nadmin:adm1n\n"

// serveCmd runs the handoff command args until the test ends and returns
// the URL it prints after the words (such as "schema registry"), and its
// stderr.
func serveCmd(t *testing.T, args []string, words ...string) (string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, nil, stdout, stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%v returned %v on cancel", args, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%v did not stop", args)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("no URL printed; stdout %q stderr %q", stdout.String(), stderr.String())
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("%v exited early: %v; stderr %q", args, err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		sc := bufio.NewScanner(strings.NewReader(stdout.String()))
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == len(words)+1 && strings.Join(f[:len(words)], " ") == strings.Join(words, " ") {
				return f[len(words)], stderr
			}
		}
	}
}

// call sends method url with body (JSON) and the bearer token, and
// returns the status and body.
func call(t *testing.T, method, url, body, token string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// handoff registry serve --token-file: each token may do what its scope
// allows, on a real listener; a token too low gets 403 naming the scope.
func TestRegistryServe_TokenFile(t *testing.T) {
	tf := writeTokenFile(t, scopedTokenFile, 0o600)
	base, stderr := serveCmd(t, []string{"registry", "serve", "--db", filepath.Join(t.TempDir(), "r.db"),
		"--addr", "127.0.0.1:0", "--token-file", tf}, "schema", "registry")
	schema := `{"schema":"\"string\""}`
	for _, c := range []struct {
		method, path, body, token string
		status                    int
		in                        string
	}{
		{"GET", "/subjects", "", "", 401, `"error_code":40101`},
		{"GET", "/subjects", "", "wrong", 401, `"error_code":40101`},
		{"GET", "/subjects", "", "r3ad", 200, `[]`},
		{"POST", "/subjects/s-value", schema, "r3ad", 404, `"error_code":40401`}, // a look-up is a read
		{"POST", "/subjects/s-value/versions", schema, "r3ad", 403, `needs a token with the write scope`},
		{"POST", "/subjects/s-value/versions", schema, "wr1te", 200, `"id":1`},
		{"PUT", "/config", `{"compatibility":"NONE"}`, "wr1te", 403, `needs a token with the admin scope`},
		{"DELETE", "/subjects/s-value", "", "wr1te", 403, `"error_code":40301`},
		{"DELETE", "/subjects/s-value", "", "adm1n", 200, `[1]`},
		{"POST", "/subjects/s-value/versions", schema, "adm1n", 200, `"id":1`},
	} {
		st, body := call(t, c.method, base+c.path, c.body, c.token)
		if st != c.status || !strings.Contains(body, c.in) {
			t.Errorf("%s %s with %q: %d %s, want %d with %s", c.method, c.path, c.token, st, body, c.status, c.in)
		}
	}
	if strings.Contains(stderr.String(), "chmod") {
		t.Errorf("a 0600 token file was warned about: %s", stderr)
	}
}

// handoff contract broker --token-file: reads are open (the broker's
// default), publishing needs write, creating an environment admin; a token
// file others may read is warned about.
func TestContractBroker_TokenFile(t *testing.T) {
	tf := writeTokenFile(t, scopedTokenFile, 0o644)
	base, stderr := serveCmd(t, []string{"contract", "broker", "--db", filepath.Join(t.TempDir(), "b.db"),
		"--addr", "127.0.0.1:0", "--token-file", tf}, "contract", "broker")
	for _, c := range []struct {
		method, path, body, token string
		status                    int
	}{
		{"GET", "/environments", "", "", 200},
		{"PUT", "/pacticipants/web/branches/main/versions/w1", "{}", "", 401},
		{"PUT", "/pacticipants/web/branches/main/versions/w1", "{}", "r3ad", 403},
		{"PUT", "/pacticipants/web/branches/main/versions/w1", "{}", "wr1te", 200},
		{"POST", "/environments", `{"name":"production","production":true}`, "wr1te", 403},
		{"POST", "/environments", `{"name":"production","production":true}`, "adm1n", 201},
		{"GET", "/environments/production", "", "", 200},
	} {
		st, body := call(t, c.method, base+c.path, c.body, c.token)
		if st != c.status {
			t.Errorf("%s %s with %q: %d %s, want %d", c.method, c.path, c.token, st, body, c.status)
		}
		if st == 403 && !strings.Contains(body, "scope") {
			t.Errorf("%s %s with %q: 403 %s does not name the scope needed", c.method, c.path, c.token, body)
		}
	}
	if !strings.Contains(stderr.String(), "chmod 600") {
		t.Errorf("a 0644 token file was not warned about: %s", stderr)
	}
}

// A bad token file stops the server from starting, naming the line and
// the rule; so does a token given both as --token and in the file.
func TestServe_BadTokenFile(t *testing.T) {
	for _, c := range []struct {
		text, token, want string
	}{
		{"read:a\nsuper:b\n", "", `line 2: unknown scope "super"`},
		{"# c\nwrite:\n", "", "line 2: token is empty"},
		{"read:a\nadmin:a\n", "", "line 2: token given twice (first on line 1)"},
		{"read:a\nwrite:b\n", "b", "line 2: the token is --token's too"},
		{"# nothing\n", "", "no tokens"},
	} {
		tf := writeTokenFile(t, c.text, 0o600)
		for _, cmd := range [][]string{
			{"registry", "serve", "--db", filepath.Join(t.TempDir(), "r.db")},
			{"contract", "broker", "--db", filepath.Join(t.TempDir(), "b.db")},
		} {
			args := append(cmd, "--addr", "127.0.0.1:0", "--token-file", tf)
			if c.token != "" {
				args = append(args, "--token", c.token)
			}
			err := run(context.Background(), args, nil, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), tf) {
				t.Errorf("%v with %q: %v, want an error naming the file and %q", cmd[:2], c.text, err, c.want)
			}
		}
	}
}
