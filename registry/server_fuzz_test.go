package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/handoffhq/handoff/registry"
)

// Every request decoder of the server, fed arbitrary bodies and path
// segments: no panic, no 5xx, and every error in the registry's shape.
func FuzzServerRequests(f *testing.F) {
	seeds := []struct {
		route, subject, version string
		body                    string
	}{
		{"register", "s", "", `{"schema":"\"string\""}`},
		{"register", "s", "", `{"schema":"{\"type\":\"object\"}","schemaType":"JSON"}`},
		{"register", "s", "", `{"schema":"syntax = \"proto3\"; message M { string a = 1; }","schemaType":"PROTOBUF"}`},
		{"register", "s", "", `{"schema":"\"string\"","references":[{"name":"x","subject":"s","version":-1}]}`},
		{"register", "s", "", `{"schema":"\"int\"","id":-3,"version":99999999999}`},
		{"lookup", "s", "", `{"schema":"\"string\""}`},
		{"compat", "s", "latest", `{"schema":"\"long\""}`},
		{"compat", "s", "0", `{"schema":"\"long\""}`},
		{"config", "s", "", `{"compatibility":"FULL"}`},
		{"mode", "", "", `{"mode":"IMPORT"}`},
		{"version", "s", "-2", ``},
		{"id", "", "2147483648", ``},
		{"register", "a/b", "", `[1,2,3]`},
		{"register", "s", "", `{"schema":null}`},
		{"register", "s", "", `{"schema":"\"string\""}{"x":1}`},
	}
	for _, s := range seeds {
		f.Add(s.route, s.subject, s.version, []byte(s.body))
	}
	// One server for the whole run: state carries over between inputs, as
	// it would in production.
	srv, err := registry.NewServer(sqliteStore(f))
	if err != nil {
		f.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	f.Cleanup(hs.Close)
	base := hs.URL
	f.Fuzz(func(t *testing.T, route, subject, version string, body []byte) {
		sub, ver := url.PathEscape(subject), url.PathEscape(version)
		var method, path string
		switch route {
		case "register":
			method, path = "POST", "/subjects/"+sub+"/versions"
		case "lookup":
			method, path = "POST", "/subjects/"+sub
		case "compat":
			method, path = "POST", "/compatibility/subjects/"+sub+"/versions/"+ver+"?verbose=true"
		case "config":
			method, path = "PUT", "/config/"+sub
		case "mode":
			method, path = "PUT", "/mode/"+sub
		case "version":
			method, path = "GET", "/subjects/"+sub+"/versions/"+ver
		case "id":
			method, path = "GET", "/schemas/ids/"+ver
		case "delete":
			method, path = "DELETE", "/subjects/"+sub+"/versions/"+ver+"?permanent="+url.QueryEscape(string(body))
		default:
			return
		}
		req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
		if err != nil {
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, path, body, resp.StatusCode, raw)
		}
		if resp.StatusCode >= 400 {
			var e registry.Error
			if err := json.Unmarshal(raw, &e); err != nil || e.Code == 0 || e.Message == "" {
				t.Fatalf("%s %s: error body not in the registry's shape: %d %s", method, path, resp.StatusCode, raw)
			}
			if !strings.HasPrefix(e.Error(), "registry: ") {
				t.Fatalf("error text %q", e.Error())
			}
		}
	})
}

// muxClient gives up on a request no answer comes to: a hang is a finding.
var muxClient = &http.Client{Timeout: 30 * time.Second}

// The whole mux: any method, path (with query), content type and body. No
// input gets a 5xx, and every error is in the registry's shape.
func FuzzServerMux(f *testing.F) {
	for _, s := range []struct{ method, path, ctype, body string }{
		{"POST", "/subjects/s/versions", "application/json", `{"schema":"\"string\""}`},
		{"POST", "/subjects/probe%FFx/versions", "application/json", `{"schema":"\"string\""}`},
		{"GET", "/subjects/probe%00x/versions", "", ""},
		{"PUT", "/config/probe%FFx", "application/json", `{"compatibility":"FULL"}`},
		{"PUT", "/mode/s", "application/json", `{"mode":"READONLY"}`},
		{"PUT", "/mode", "application/json", `{"mode":"READWRITE"}`},
		{"DELETE", "/subjects/s?permanent=true", "", ""},
		{"POST", "/subjects/s/versions", "text/plain", `{"schema":"{}","schemaType":"JSON","metadata":"x","ruleSet":[1,2]}`},
		{"POST", "/compatibility/subjects/s/versions/latest?verbose=true", "", `{"schema":"syntax = \"proto3\"; message M {}","schemaType":"PROTOBUF"}`},
		{"GET", "/schemas/guids/%FF", "", ""},
		{"GET", "/subjects/s/metadata?key=a&value=b&key=c", "", ""},
		{"GET", "/schemas?subjectPrefix=%FF&deleted=true&latestOnly=true", "", ""},
		{"PATCH", "/subjects", "", ""},
	} {
		f.Add(s.method, s.path, s.ctype, []byte(s.body))
	}
	srv, err := registry.NewServer(sqliteStore(f), registry.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		f.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	f.Cleanup(hs.Close)
	f.Fuzz(func(t *testing.T, method, path, ctype string, body []byte) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequest(method, hs.URL+path, bytes.NewReader(body))
		if err != nil {
			return
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := muxClient.Do(req)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Timeout") {
				t.Fatalf("%s %s %q: no answer: %v", method, path, body, err)
			}
			return // not a request net/http sends
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, path, body, resp.StatusCode, raw)
		}
		if resp.StatusCode >= 400 && resp.StatusCode != 400 || json.Valid(raw) {
			var e registry.Error
			if resp.StatusCode >= 400 && (json.Unmarshal(raw, &e) != nil || e.Code == 0 || e.Message == "") {
				t.Fatalf("%s %s: error body not in the registry's shape: %d %s", method, path, resp.StatusCode, raw)
			}
		}
	})
}
