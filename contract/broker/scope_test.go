package broker_test

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/contract/broker"
)

// brokerRoutes is the scope each route needs, with a request that reaches
// it: the specification TestBroker_RouteScopes holds the broker to.
var brokerRoutes = []struct {
	pattern, path, body, scope string
}{
	{"GET /{$}", "/", "", "read"},
	{"GET /pacts/provider/{provider}/consumer/{consumer}/version/{version}", "/pacts/provider/orders/consumer/web/version/w1", "", "read"},
	{"GET /pacts/provider/{provider}/consumer/{consumer}/pact-version/{sha}", "/pacts/provider/orders/consumer/web/pact-version/x", "", "read"},
	{"GET /pacts/provider/{provider}/consumer/{consumer}/pact-version/{sha}/metadata/{meta}", "/pacts/provider/orders/consumer/web/pact-version/x/metadata/m", "", "read"},
	{"GET /pacts/provider/{provider}/consumer/{consumer}/latest", "/pacts/provider/orders/consumer/web/latest", "", "read"},
	{"GET /pacts/provider/{provider}/consumer/{consumer}/latest/{tag}", "/pacts/provider/orders/consumer/web/latest/prod", "", "read"},
	{"GET /pacts/provider/{provider}/for-verification", "/pacts/provider/orders/for-verification", "", "read"},
	{"POST /pacts/provider/{provider}/for-verification", "/pacts/provider/orders/for-verification", `{}`, "read"},
	{"GET /pacts/provider/{provider}/latest", "/pacts/provider/orders/latest", "", "read"},
	{"GET /pacticipants", "", "", "read"},
	{"GET /pacticipants/{pacticipant}", "/pacticipants/web", "", "read"},
	{"GET /pacticipants/{pacticipant}/versions/{version}", "/pacticipants/web/versions/w1", "", "read"},
	{"GET /environments", "", "", "read"},
	{"GET /environments/{env}", "/environments/x", "", "read"},
	{"GET /matrix", "/matrix?q[][pacticipant]=web", "", "read"},
	{"GET /can-i-deploy", "/can-i-deploy?pacticipant=web&version=w1&environment=production", "", "read"},
	{"POST /contracts/publish", "", `{}`, "write"},
	{"PUT /pacts/provider/{provider}/consumer/{consumer}/version/{version}", "/pacts/provider/orders/consumer/web/version/9", `{}`, "write"},
	{"POST /pacts/provider/{provider}/consumer/{consumer}/pact-version/{sha}/verification-results", "/pacts/provider/orders/consumer/web/pact-version/x/verification-results", `{}`, "write"},
	{"PUT /pacticipants/{pacticipant}/versions/{version}", "/pacticipants/web/versions/w1", `{}`, "write"},
	{"PUT /pacticipants/{pacticipant}/branches/{branch}/versions/{version}", "/pacticipants/web/branches/b/versions/w1", `{}`, "write"},
	{"PUT /pacticipants/{pacticipant}/versions/{version}/tags/{tag}", "/pacticipants/web/versions/w1/tags/t", `{}`, "write"},
	{"POST /pacticipants/{pacticipant}/versions/{version}/deployed-versions/environment/{env}", "/pacticipants/web/versions/w1/deployed-versions/environment/x", `{}`, "write"},
	{"POST /pacticipants/{pacticipant}/versions/{version}/released-versions/environment/{env}", "/pacticipants/web/versions/w1/released-versions/environment/x", `{}`, "write"},
	{"POST /environments", "", `{"name":"x"}`, "admin"},
	{"POST /pacticipants", "", `{"name":"x"}`, "admin"},
	{"PUT /pacticipants/{pacticipant}", "/pacticipants/web", `{}`, "admin"},
	{"PATCH /pacticipants/{pacticipant}", "/pacticipants/web", `{}`, "admin"},
}

// TestBroker_RouteScopes sends every route a request with each scope of
// token (none, read, write, admin), with and without open reads: a token
// of the route's scope or higher passes (the handler answers), a lower
// one gets 403 naming the scope needed, none gets 401.
func TestBroker_RouteScopes(t *testing.T) {
	rank := map[string]int{"": 0, "read": 1, "write": 2, "admin": 3}
	tokens := map[string]string{"": "", "read": "Bearer r3ad", "write": "Bearer wr1te", "admin": "Bearer adm1n"}
	for _, open := range []bool{false, true} {
		b, err := broker.New(memory.NewContractStore(), broker.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
			broker.WithScopedToken("read", "r3ad"), broker.WithScopedToken("write", "wr1te"),
			broker.WithToken("adm1n"), broker.WithOpenReads(open))
		if err != nil {
			t.Fatal(err)
		}
		if open {
			table := broker.RouteScopes(b)
			for _, rt := range brokerRoutes {
				if got, ok := table[rt.pattern]; !ok || got != rt.scope {
					t.Errorf("route %q: the broker says scope %q, the test %q", rt.pattern, got, rt.scope)
				}
				delete(table, rt.pattern)
			}
			var missing []string
			for p := range table {
				missing = append(missing, p)
			}
			sort.Strings(missing)
			if len(missing) > 0 {
				t.Errorf("routes without a row in brokerRoutes: %q", missing)
			}
		}
		for _, rt := range brokerRoutes {
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
				b.ServeHTTP(w, r)
				passes := rank[have] >= rank[rt.scope] || open && rt.scope == "read"
				switch {
				case passes && (w.Code == 401 || w.Code == 403):
					t.Errorf("open=%v %s %s with %q token: %d %s, want the handler's answer", open, method, path, have, w.Code, w.Body)
				case !passes && have == "" && w.Code != 401:
					t.Errorf("open=%v %s %s without a token: %d %s, want 401", open, method, path, w.Code, w.Body)
				case !passes && have != "" && (w.Code != 403 || !strings.Contains(w.Body.String(), "the "+rt.scope+" scope")):
					t.Errorf("open=%v %s %s with %q token: %d %s, want 403 naming the %s scope", open, method, path, have, w.Code, w.Body, rt.scope)
				}
				if !passes && !strings.Contains(w.Body.String(), `"errors":[`) {
					t.Errorf("open=%v %s %s: refusal %s not in the broker's error shape", open, method, path, w.Body)
				}
			}
		}
	}
}

func TestBroker_ScopedTokenOptions(t *testing.T) {
	for _, c := range []struct {
		name string
		opts []broker.Option
		err  string
	}{
		{"unknown scope", []broker.Option{broker.WithScopedToken("publish", "x")}, `unknown scope "publish"`},
		{"empty token", []broker.Option{broker.WithScopedToken("write", "")}, "empty"},
		{"token twice", []broker.Option{broker.WithToken("x"), broker.WithScopedToken("read", "x")}, "twice"},
	} {
		if _, err := broker.New(memory.NewContractStore(), c.opts...); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.err)
		}
	}
}
