package saga

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/handoffhq/handoff/internal/timeparam"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Handler serves a coordinator's sagas over HTTP, in the JSON of Summary,
// Detail and Event: the same as the handoff CLI's --json. Mount it under a
// prefix with http.StripPrefix:
//
//	h, err := saga.NewHandler(c, saga.WithOperations())
//	mux.Handle("/sagas/", http.StripPrefix("/sagas", h))
//
// It answers:
//
//	GET  /              a page of sagas, newest first: {"sagas": [...], "next": "CURSOR"}
//	GET  /{id}          one saga with its timeline (Detail)
//
// The list takes the filters status, name, correlation_id, created_after,
// created_before, updated_after and updated_before (an RFC 3339 time, or a
// duration back from now such as 1h), and pages with limit (default
// DefaultListLimit, at most MaxListLimit) and cursor (the previous page's
// next; the response's Link header, rel="next", carries it too). With
// counts=true the answer has "counts" too: how many sagas are in each
// status. Bad parameters, and parameters it does not know, get 400 with
// {"error": "..."} naming the parameter and the rule.
//
// With [WithOperations] it also answers, for a stuck saga, with the saga
// as it is after (Detail):
//
//	POST /{id}/retry    try the failing compensation again (Coordinator.Retry)
//	POST /{id}/skip     take it as done and go on (Coordinator.Skip)
//	POST /{id}/abort    give up on the saga (Coordinator.Abort)
//
// A saga that is not stuck gets 409, one that does not exist 404. The
// coordinator needs no definitions for this: a running coordinator that
// has them takes the saga on.
//
// The handler does no authentication: mount it behind the server's own.
type Handler struct {
	c   *Coordinator
	ops bool
	now func() time.Time
}

// HandlerOption configures a [Handler].
type HandlerOption func(*Handler) error

// WithOperations enables retry, skip and abort over HTTP.
func WithOperations() HandlerOption {
	return func(h *Handler) error {
		h.ops = true
		return nil
	}
}

// NewHandler returns the HTTP API of c's sagas. c's store must be a
// [Lister].
func NewHandler(c *Coordinator, opts ...HandlerOption) (*Handler, error) {
	if c == nil {
		return nil, errors.New("saga: NewHandler: coordinator must not be nil")
	}
	if _, ok := c.store.(Lister); !ok {
		return nil, fmt.Errorf("saga: NewHandler: %w", ErrNoList)
	}
	h := &Handler{c: c, now: time.Now}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(h); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// listParams are the list's query parameters; any other is refused.
var listParams = []string{"status", "name", "correlation_id", "created_after", "created_before", "updated_after",
	"updated_before", "limit", "cursor", "counts"}

// maxParam bounds a parameter's value (ids and names are shorter).
const maxParam = 512

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.Trim(r.URL.Path, "/")
	parts := strings.Split(path, "/")
	switch {
	case path == "":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, "GET")
			return
		}
		h.list(w, r)
	case len(parts) == 1:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, "GET")
			return
		}
		h.get(w, r, parts[0])
	case len(parts) == 2 && (parts[1] == "retry" || parts[1] == "skip" || parts[1] == "abort"):
		if !h.ops {
			methodNotAllowed(w, "")
			return
		}
		if r.Method != http.MethodPost {
			methodNotAllowed(w, "POST")
			return
		}
		var err error
		switch ctx := r.Context(); parts[1] {
		case "retry":
			err = h.c.Retry(ctx, parts[0])
		case "skip":
			err = h.c.Skip(ctx, parts[0])
		case "abort":
			err = h.c.Abort(ctx, parts[0])
		}
		if err != nil {
			writeErr(w, parts[0], err)
			return
		}
		h.get(w, r, parts[0])
	default:
		writeJSONError(w, http.StatusNotFound, "no such resource: "+r.URL.Path)
	}
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request, id string) {
	d, err := h.c.Detail(r.Context(), id)
	if err != nil {
		writeErr(w, id, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// listAnswer is GET /'s body.
type listAnswer struct {
	Page
	Counts map[Status]int `json:"counts,omitempty"`
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var unknown []string
	for k, v := range q {
		known := false
		for _, p := range listParams {
			known = known || k == p
		}
		if !known {
			unknown = append(unknown, k)
		} else if len(v) > 1 {
			writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("%s: given %d times; give it once", k, len(v)))
			return
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("%s: unknown parameter (known: %s)", strings.Join(unknown, ", "), strings.Join(listParams, ", ")))
		return
	}
	f, err := ParseListFilter(q, h.now())
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	counts := false
	if s := q.Get("counts"); s != "" {
		if counts, err = strconv.ParseBool(s); err != nil {
			writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("counts: %q must be true or false", s))
			return
		}
	}
	p, err := h.c.List(r.Context(), f)
	if err != nil {
		writeErr(w, "", err)
		return
	}
	ans := listAnswer{Page: *p}
	if counts {
		if ans.Counts, err = h.c.Counts(r.Context()); err != nil {
			writeErr(w, "", err)
			return
		}
	}
	if p.Next != "" {
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Del("counts")
		next.Set("cursor", p.Next)
		// A query-only reference: it resolves against the request's own
		// path, wherever the handler is mounted.
		w.Header().Set("Link", fmt.Sprintf("<?%s>; rel=\"next\"", next.Encode()))
	}
	writeJSON(w, http.StatusOK, ans)
}

// ParseListFilter reads a ListFilter from the parameters the CLI and the
// HTTP API share: status, name, correlation_id, created_after,
// created_before, updated_after, updated_before (RFC 3339, or a duration
// back from now), limit and cursor. It checks them as ListFilter.Validate
// does; an error names the parameter and the rule.
func ParseListFilter(v url.Values, now time.Time) (ListFilter, error) {
	for _, k := range listParams {
		if len(v.Get(k)) > maxParam {
			return ListFilter{}, fmt.Errorf("%s: longer than %d bytes", k, maxParam)
		}
	}
	f := ListFilter{Status: Status(v.Get("status")), Name: v.Get("name"), CorrelationID: v.Get("correlation_id"), Cursor: v.Get("cursor")}
	for _, t := range []struct {
		name string
		to   *time.Time
	}{{"created_after", &f.CreatedAfter}, {"created_before", &f.CreatedBefore}, {"updated_after", &f.UpdatedAfter}, {"updated_before", &f.UpdatedBefore}} {
		var err error
		if *t.to, err = timeparam.Parse(t.name, v.Get(t.name), now); err != nil {
			return ListFilter{}, err
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > MaxListLimit {
			return ListFilter{}, fmt.Errorf("limit: %q must be a whole number from 0 (the default, %d) to %d", s, DefaultListLimit, MaxListLimit)
		}
		f.Limit = n
	}
	if err := f.Validate(); err != nil {
		return ListFilter{}, errors.New(strings.TrimPrefix(err.Error(), "saga: "))
	}
	return f, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
	w.Write([]byte("\n"))
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	if allow == "" {
		writeJSONError(w, http.StatusMethodNotAllowed, "method not allowed: this server's saga API is read-only")
		return
	}
	writeJSONError(w, http.StatusMethodNotAllowed, "method not allowed (allowed: "+allow+")")
}

// writeErr maps a coordinator error about saga id to its status.
func writeErr(w http.ResponseWriter, id string, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNotFound):
		writeJSONError(w, http.StatusNotFound, "no saga "+id)
		return
	case errors.Is(err, ErrNotStuck):
		status = http.StatusConflict
	case errors.Is(err, ErrBadCursor):
		status = http.StatusBadRequest
	}
	writeJSONError(w, status, strings.TrimPrefix(err.Error(), "saga: "))
}
