package dlq

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/handoffhq/handoff/internal/timeparam"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/handoffhq/handoff"
)

// Paging limits of the HTTP API.
const (
	DefaultPage = 100  // letters per page when the request names no limit
	MaxPage     = 1000 // the most letters one request returns
)

// Handler serves a queue's letters over HTTP, in the JSON of
// Letter.MarshalJSON: the same as the handoff CLI's --json. Mount it under
// a prefix with http.StripPrefix:
//
//	h, err := dlq.NewHandler(q)
//	mux.Handle("/dead-letters/", http.StripPrefix("/dead-letters", h))
//
// It answers:
//
//	GET /                 the letters, oldest first, as a JSON array ([] when none)
//	GET /{id}             one letter
//	GET /incidents        the letters the filters select grouped into incidents (see Incidents)
//
// Each letter carries its root cause as "cause": {"class", "rule",
// "playbook"} (MarshalDiagnosed), by [WithClassifier]'s rules or the
// built-in ones.
//
// The list takes the filters consumer, topic, class, state (open, replayed,
// any; default any), since and until (an RFC 3339 time, or a duration back
// from now such as 1h), and pages with limit (default DefaultPage, at most
// MaxPage) and after (the last id of the previous page). When a page is
// full, the response has a Link header (RFC 8288) with rel="next" for the
// next page. Bad parameters get 400 with {"error": "..."} naming the
// parameter.
//
// With [WithWrites] it also answers, releasing a key the relay held
// for the letter as the CLI does:
//
//	POST   /{id}/replay   replay the letter (to its group; to its topic for the relay's)
//	PUT    /{id}/data     replace the message's data (the request's Content-Type is its new type)
//	DELETE /{id}          delete the letter
//
// The handler does no authentication: mount it behind the server's own.
type Handler struct {
	q          *Queue
	broker     Broker
	writes     bool
	classifier *Classifier
}

// HandlerOption configures a [Handler].
type HandlerOption func(*Handler) error

// WithWrites enables replay, edit and delete over HTTP; replays go through
// broker.
func WithWrites(broker Broker) HandlerOption {
	return func(h *Handler) error {
		if broker == nil {
			return errors.New("dlq: WithWrites: broker must not be nil")
		}
		h.broker, h.writes = broker, true
		return nil
	}
}

// WithClassifier sets the rules that give each letter its root cause
// (default: DefaultClassifier).
func WithClassifier(c *Classifier) HandlerOption {
	return func(h *Handler) error {
		if c == nil {
			return errors.New("dlq: WithClassifier: classifier must not be nil")
		}
		h.classifier = c
		return nil
	}
}

// NewHandler returns the HTTP API of q.
func NewHandler(q *Queue, opts ...HandlerOption) (*Handler, error) {
	if q == nil {
		return nil, errors.New("dlq: NewHandler: queue must not be nil")
	}
	h := &Handler{q: q, classifier: DefaultClassifier}
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

// maxEditBody bounds the body of PUT /{id}/data.
const maxEditBody = 16 << 20

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
	case path == "incidents":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, "GET")
			return
		}
		h.incidents(w, r)
	case len(parts) == 1:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			h.get(w, r, parts[0])
		case http.MethodDelete:
			if !h.writable(w) {
				return
			}
			if err := h.q.Delete(r.Context(), parts[0]); err != nil {
				writeErr(w, err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		default:
			methodNotAllowed(w, h.allowed("GET", "DELETE"))
		}
	case len(parts) == 2 && parts[1] == "replay":
		if r.Method != http.MethodPost {
			methodNotAllowed(w, h.allowed("", "POST"))
			return
		}
		if !h.writable(w) {
			return
		}
		if err := h.q.Replay(r.Context(), h.broker, parts[0]); err != nil {
			if errors.Is(err, ErrNotFound) || errors.Is(err, ErrAlreadyReplayed) {
				writeErr(w, err)
			} else {
				writeJSONError(w, http.StatusBadGateway, err.Error())
			}
			return
		}
		h.get(w, r, parts[0])
	case len(parts) == 2 && parts[1] == "data":
		if r.Method != http.MethodPut {
			methodNotAllowed(w, h.allowed("", "PUT"))
			return
		}
		if !h.writable(w) {
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEditBody))
		if err != nil {
			writeJSONError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: %v (at most %d bytes)", err, maxEditBody))
			return
		}
		if err := h.q.Edit(r.Context(), parts[0], body, r.Header.Get("Content-Type")); err != nil {
			writeErr(w, err)
			return
		}
		h.get(w, r, parts[0])
	default:
		writeJSONError(w, http.StatusNotFound, "no such resource: "+r.URL.Path)
	}
}

func (h *Handler) allowed(read, write string) string {
	switch {
	case !h.writes:
		return read
	case read == "":
		return write
	}
	return read + ", " + write
}

func (h *Handler) writable(w http.ResponseWriter) bool {
	if !h.writes {
		methodNotAllowed(w, "GET")
		return false
	}
	return true
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request, id string) {
	l, err := h.q.Get(r.Context(), id)
	if err != nil {
		writeErr(w, err)
		return
	}
	b, err := MarshalDiagnosed(l, h.classifier)
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, b)
}

// incidents answers GET /incidents: the letters the filters select (every
// one, not a page) grouped by cause and first failure; gap (a duration)
// sets how far apart two letters of an incident may be.
func (h *Handler) incidents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	gap := time.Duration(0)
	if s := q.Get("gap"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("gap: %q must be a positive duration such as 10m", s))
			return
		}
		gap = d
		q.Del("gap")
	}
	f, err := ParseFilter(q, time.Now())
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	ls, err := h.q.List(r.Context(), f)
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, err.Error())
		return
	}
	in := Incidents(ls, h.classifier, gap)
	if in == nil {
		in = []Incident{}
	}
	b, err := marshal(in)
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := ParseFilter(q, time.Now())
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	if f.Limit == 0 {
		f.Limit = DefaultPage
	}
	if f.Limit > MaxPage {
		writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("limit: %d is over the most a page holds, %d", f.Limit, MaxPage))
		return
	}
	ls, err := h.q.List(r.Context(), f)
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, err.Error())
		return
	}
	b, err := MarshalListDiagnosed(ls, h.classifier)
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if len(ls) == f.Limit {
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Set("after", ls[len(ls)-1].ID)
		next.Set("limit", strconv.Itoa(f.Limit))
		// A query-only reference: it resolves against the request's own
		// path, wherever the handler is mounted.
		w.Header().Set("Link", fmt.Sprintf("<?%s>; rel=\"next\"", next.Encode()))
	}
	writeJSON(w, http.StatusOK, b)
}

// ParseFilter reads a Filter from the parameters the CLI and the HTTP API
// share: consumer, topic, class, state (open, replayed, any), since and
// until (RFC 3339, or a duration back from now), limit and after. An error
// names the parameter and the rule.
func ParseFilter(v url.Values, now time.Time) (Filter, error) {
	f := Filter{Consumer: v.Get("consumer"), Topic: v.Get("topic"), Class: v.Get("class"), After: v.Get("after")}
	var err error
	if f.State, err = ParseState(v.Get("state")); err != nil {
		return Filter{}, err
	}
	if f.Since, err = timeparam.Parse("since", v.Get("since"), now); err != nil {
		return Filter{}, err
	}
	if f.Until, err = timeparam.Parse("until", v.Get("until"), now); err != nil {
		return Filter{}, err
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return Filter{}, fmt.Errorf("limit: %q must be a whole number ≥ 0", s)
		}
		f.Limit = n
	}
	return f, nil
}

// ParseState reads a State: "open", "replayed", or "any" (or empty).
func ParseState(s string) (State, error) {
	switch s {
	case "", "any":
		return StateAny, nil
	case stateOpen:
		return StateOpen, nil
	case stateReplayed:
		return StateReplayed, nil
	}
	return 0, fmt.Errorf("state: %q must be open, replayed or any", s)
}

func writeJSON(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
	w.Write([]byte("\n"))
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	writeJSON(w, status, b)
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeJSONError(w, http.StatusMethodNotAllowed, "method not allowed (allowed: "+allow+")")
}

// writeErr maps a queue error to its status.
func writeErr(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, ErrAlreadyReplayed):
		status = http.StatusConflict
	case errors.Is(err, handoff.ErrInvalid):
		status = http.StatusUnprocessableEntity
	}
	writeJSONError(w, status, err.Error())
}
