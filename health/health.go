// Package health answers a health or readiness probe over HTTP: each
// part of a service is a named check, and the handler reports every one.
//
// For example, a database and a relay (see ExampleHandler):
//
//	h := &health.Handler{Checks: []health.Check{
//		{Name: "database", Func: db.PingContext},
//		{Name: "relay", Func: func(context.Context) error { return r.Health() }},
//	}}
//	mux.Handle("GET /healthz", h)
//
// The answer is 200 with {"status":"ok","checks":{"database":"ok",...}}
// when every check passes, and 503 with "unavailable" and each failing
// check's error in its place otherwise, so a probe and a person both see
// which part is down. The checks run one after another under the request's
// context, bounded by Timeout.
package health

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Check is one part of a service: Func returns nil when the part is up,
// an error saying what is wrong otherwise.
type Check struct {
	Name string
	Func func(ctx context.Context) error
}

// Handler reports its checks. The zero value (no checks) always answers ok.
type Handler struct {
	Checks []Check
	// Timeout bounds all checks of one request; 0 means 2 seconds.
	Timeout time.Duration
}

// Report is the JSON body Handler answers with.
type Report struct {
	Status string            `json:"status"` // "ok" or "unavailable"
	Checks map[string]string `json:"checks"` // "ok" or the check's error
}

// Run runs every check under ctx and reports them; ok is true when all
// passed.
func (h *Handler) Run(ctx context.Context) (r Report, ok bool) {
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r = Report{Status: "ok", Checks: make(map[string]string, len(h.Checks))}
	ok = true
	for _, c := range h.Checks {
		if err := c.Func(ctx); err != nil {
			r.Checks[c.Name] = err.Error()
			ok = false
			continue
		}
		r.Checks[c.Name] = "ok"
	}
	if !ok {
		r.Status = "unavailable"
	}
	return r, ok
}

// ServeHTTP answers 200 when every check passes, 503 otherwise, with the
// Report as JSON.
func (h *Handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r, ok := h.Run(req.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(r)
}
