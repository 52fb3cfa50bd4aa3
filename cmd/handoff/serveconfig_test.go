package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serve takes its settings from --config (YAML keyed by the flags' names)
// and the environment (HANDOFF_<FLAG>): the command line wins over the
// environment, which wins over the file.
func TestServe_ConfigFileAndEnvironment(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "serve.yaml")
	os.WriteFile(cfg, []byte("# handoff serve\ndb: "+filepath.Join(dir, "h.db")+"\ntoken: from-file\ndrain: 5s\notlp-max-bytes: 1024\n"), 0o644)
	works := func(base, tok string) bool {
		code, _ := httpCall(t, "GET", base+"/healthz", tok, "", nil)
		return code == http.StatusOK
	}
	t.Run("file", func(t *testing.T) {
		base, _ := startServe(t, "--config", cfg)
		if !works(base, "from-file") {
			t.Error("the file's token does not work")
		}
		if code, _ := httpCall(t, "POST", base+"/v1/traces", "from-file", "application/json", bytes.Repeat([]byte(" "), 2048)); code != http.StatusRequestEntityTooLarge {
			t.Errorf("the file's otlp-max-bytes is not applied: %d", code)
		}
	})
	t.Run("environment over file", func(t *testing.T) {
		t.Setenv("HANDOFF_TOKEN", "from-env")
		t.Setenv("HANDOFF_CONFIG", cfg)
		base, _ := startServe(t)
		if !works(base, "from-env") || works(base, "from-file") {
			t.Error("the environment's token does not win over the file's")
		}
	})
	t.Run("command line over environment", func(t *testing.T) {
		t.Setenv("HANDOFF_TOKEN", "from-env")
		base, _ := startServe(t, "--config", cfg, "--token", "from-flag")
		if !works(base, "from-flag") || works(base, "from-env") {
			t.Error("the command line's token does not win")
		}
	})
}

// A bad setting is refused naming where it came from (file and line, or
// variable), the key and the rule.
func TestServe_ConfigErrorsNameKeyAndRule(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		file, env, want string
	}{
		{"db: x.db\ntokn: t\n", "", `serve.yaml:2: key "tokn": not a setting of serve (known: addr, alert-backlog`},
		{"db: x.db\ntoken: t\ndrain: soon\n", "", `serve.yaml:3: key "drain": "soon" must be a duration such as 10s or 1m`},
		{"db: x.db\ntoken: t\ninsecure: maybe\n", "", `serve.yaml:3: key "insecure": "maybe" must be true or false`},
		{"db: [a, b]\n", "", `serve.yaml:1: key "db": must be a single value, not a list or mapping`},
		{"db: x.db\ndb: y.db\n", "", `serve.yaml:2: key "db": given twice`},
		{"- db\n", "", "serve.yaml:1: must be a mapping of settings"},
		{"db: x.db\ntoken: t\n", "HANDOFF_OTLP_MAX_BYTES=lots", `$HANDOFF_OTLP_MAX_BYTES: "lots": must be a whole number`},
	} {
		f := filepath.Join(dir, "serve.yaml")
		os.WriteFile(f, []byte(c.file), 0o644)
		if k, v, ok := strings.Cut(c.env, "="); ok {
			t.Setenv(k, v)
		}
		var out, errb bytes.Buffer
		err := run(context.Background(), []string{"serve", "--config", f, "--addr", "127.0.0.1:0"}, nil, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q %s: %v, want %q", c.file, c.env, err, c.want)
		}
		if k, _, ok := strings.Cut(c.env, "="); ok {
			os.Unsetenv(k)
		}
	}
}
