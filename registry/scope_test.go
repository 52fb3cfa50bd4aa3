package registry_test

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/handoffhq/handoff/registry"
)

// registryRoutes is the scope each route needs, with a request that
// reaches it: the specification TestServer_RouteScopes holds the server
// to, route by route.
var registryRoutes = []struct {
	pattern, path, body, scope string
}{
	{"GET /{$}", "/", "", "read"},
	{"GET /contexts", "", "", "read"},
	{"GET /schemas/types", "", "", "read"},
	{"GET /schemas", "", "", "read"},
	{"GET /schemas/ids/{id}", "/schemas/ids/1", "", "read"},
	{"GET /schemas/ids/{id}/schema", "/schemas/ids/1/schema", "", "read"},
	{"GET /schemas/ids/{id}/subjects", "/schemas/ids/1/subjects", "", "read"},
	{"GET /schemas/ids/{id}/versions", "/schemas/ids/1/versions", "", "read"},
	{"GET /schemas/guids/{guid}", "/schemas/guids/x", "", "read"},
	{"GET /subjects/{subject}/metadata", "/subjects/s/metadata", "", "read"},
	{"GET /subjects", "", "", "read"},
	{"GET /subjects/{subject}/versions", "/subjects/s/versions", "", "read"},
	{"GET /subjects/{subject}/versions/{version}", "/subjects/s/versions/1", "", "read"},
	{"GET /subjects/{subject}/versions/{version}/schema", "/subjects/s/versions/1/schema", "", "read"},
	{"GET /subjects/{subject}/versions/{version}/referencedby", "/subjects/s/versions/1/referencedby", "", "read"},
	{"POST /subjects/{subject}", "/subjects/s", `{"schema":"\"string\"","schemaType":"AVRO"}`, "read"},
	{"POST /compatibility/subjects/{subject}/versions/{version}", "/compatibility/subjects/s/versions/latest", `{"schema":"\"string\"","schemaType":"AVRO"}`, "read"},
	{"POST /compatibility/subjects/{subject}/versions", "/compatibility/subjects/s/versions", `{"schema":"\"string\"","schemaType":"AVRO"}`, "read"},
	{"GET /config", "", "", "read"},
	{"GET /config/{subject}", "/config/s", "", "read"},
	{"GET /mode", "", "", "read"},
	{"GET /mode/{subject}", "/mode/s", "", "read"},
	{"POST /subjects/{subject}/versions", "/subjects/s/versions", `{"schema":"\"string\"","schemaType":"AVRO"}`, "write"},
	{"DELETE /subjects/{subject}", "/subjects/s", "", "admin"},
	{"DELETE /subjects/{subject}/versions/{version}", "/subjects/s/versions/1", "", "admin"},
	{"PUT /config", "", `{"compatibility":"BACKWARD"}`, "admin"},
	{"DELETE /config", "", "", "admin"},
	{"PUT /config/{subject}", "/config/s", `{"compatibility":"BACKWARD"}`, "admin"},
	{"DELETE /config/{subject}", "/config/s", "", "admin"},
	{"PUT /mode", "", `{"mode":"READWRITE"}`, "admin"},
	{"DELETE /mode", "", "", "admin"},
	{"PUT /mode/{subject}", "/mode/s", `{"mode":"READWRITE"}`, "admin"},
	{"DELETE /mode/{subject}", "/mode/s", "", "admin"},
}

// TestServer_RouteScopes sends every route a request with each scope of
// token (none, read, write, admin), with and without open reads: a token
// of the route's scope or higher passes (the handler answers), a lower
// one gets 403 with 40301 naming the scope needed, none gets 401.
func TestServer_RouteScopes(t *testing.T) {
	st := sqliteStore(t)
	rank := map[string]int{"": 0, "read": 1, "write": 2, "admin": 3}
	tokens := map[string]string{"": "", "read": "Bearer r3ad", "write": "Bearer wr1te", "admin": "Bearer adm1n"}
	for _, open := range []bool{false, true} {
		srv, err := registry.NewServer(st, registry.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
			registry.WithScopedToken("read", "r3ad"), registry.WithScopedToken("write", "wr1te"),
			registry.WithRequiredToken("adm1n"), registry.WithOpenReads(open))
		if err != nil {
			t.Fatal(err)
		}
		if open {
			// The table covers the server's route table, scope for scope.
			table := registry.RouteScopes(srv)
			var missing []string
			for _, rt := range registryRoutes {
				if got, ok := table[rt.pattern]; !ok || got != rt.scope {
					t.Errorf("route %q: the server says scope %q, the test %q", rt.pattern, got, rt.scope)
				}
				delete(table, rt.pattern)
			}
			for p := range table {
				missing = append(missing, p)
			}
			sort.Strings(missing)
			if len(missing) > 0 {
				t.Errorf("routes without a row in registryRoutes: %q", missing)
			}
		}
		for _, rt := range registryRoutes {
			method, path, _ := strings.Cut(rt.pattern, " ")
			if rt.path != "" {
				path = rt.path
			}
			for _, have := range []string{"", "read", "write", "admin"} {
				var body io.Reader
				if rt.body != "" {
					body = strings.NewReader(rt.body)
				}
				r := httptest.NewRequest(method, path, body)
				r.Header.Set("Content-Type", "application/json")
				if tokens[have] != "" {
					r.Header.Set("Authorization", tokens[have])
				}
				w := httptest.NewRecorder()
				srv.ServeHTTP(w, r)
				passes := rank[have] >= rank[rt.scope] || open && rt.scope == "read"
				switch {
				case passes && (w.Code == 401 || w.Code == 403):
					t.Errorf("open=%v %s %s with %q token: %d %s, want the handler's answer", open, method, path, have, w.Code, w.Body)
				case !passes && have == "" && (w.Code != 401 || !strings.Contains(w.Body.String(), `"error_code":40101`)):
					t.Errorf("open=%v %s %s without a token: %d %s, want 401 with 40101", open, method, path, w.Code, w.Body)
				case !passes && have != "" && (w.Code != 403 || !strings.Contains(w.Body.String(), `"error_code":40301`) ||
					!strings.Contains(w.Body.String(), "the "+rt.scope+" scope")):
					t.Errorf("open=%v %s %s with %q token: %d %s, want 403 with 40301 naming the %s scope", open, method, path, have, w.Code, w.Body, rt.scope)
				}
			}
		}
	}
}

func TestServer_ScopedTokenOptions(t *testing.T) {
	st := sqliteStore(t)
	for _, c := range []struct {
		name string
		opts []registry.ServerOption
		err  string
	}{
		{"unknown scope", []registry.ServerOption{registry.WithScopedToken("root", "x")}, `unknown scope "root"`},
		{"empty token", []registry.ServerOption{registry.WithScopedToken("read", "")}, "empty"},
		{"token twice", []registry.ServerOption{registry.WithScopedToken("read", "x"), registry.WithRequiredToken("x")}, "twice"},
	} {
		if _, err := registry.NewServer(st, c.opts...); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.err)
		}
	}
}
