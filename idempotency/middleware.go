package idempotency

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names used by the middleware.
const (
	// HeaderKey is the request header carrying the key (IETF draft
	// "The Idempotency-Key HTTP Header Field").
	HeaderKey = "Idempotency-Key"
	// HeaderReplayed marks a response replayed from the store.
	HeaderReplayed = "Idempotent-Replayed"
)

// MaxKeyLength is the longest key accepted; longer keys get 400.
const MaxKeyLength = 255

// ErrInvalidOption is returned by [New] for an option that breaks its rule.
var ErrInvalidOption = errors.New("idempotency: invalid option")

// Middleware makes requests carrying an Idempotency-Key run at most once per
// key. See the package documentation for the status codes it answers with.
type Middleware struct {
	store    Store
	ttl      time.Duration
	lockTTL  time.Duration
	wait     time.Duration
	poll     time.Duration
	maxBody  int64
	maxResp  int
	scope    func(*http.Request) string
	methods  map[string]bool
	required bool
	now      func() time.Time
	log      *slog.Logger
}

// Option configures a [Middleware].
type Option func(*Middleware) error

// WithTTL sets how long a completed response is kept and replayed (default 24h).
func WithTTL(d time.Duration) Option {
	return func(m *Middleware) error {
		if d <= 0 {
			return fmt.Errorf("%w: WithTTL: must be > 0, got %v", ErrInvalidOption, d)
		}
		m.ttl = d
		return nil
	}
}

// WithLockTTL sets how long a running request holds its key before another
// request may take it over, assuming the owner died (default 1m). The
// handler's context ends at nine tenths of it, so a handler that honours its
// context never runs past its lock; set it above the longest time a handler
// may take.
func WithLockTTL(d time.Duration) Option {
	return func(m *Middleware) error {
		if d <= 0 {
			return fmt.Errorf("%w: WithLockTTL: must be > 0, got %v", ErrInvalidOption, d)
		}
		m.lockTTL = d
		return nil
	}
}

// WithWait sets how long a repeat waits for a concurrent first request with
// the same key to finish before it gets 409 Conflict (default 0: 409 at once).
// Waiting is bounded by the request's context too.
func WithWait(d time.Duration) Option {
	return func(m *Middleware) error {
		if d < 0 {
			return fmt.Errorf("%w: WithWait: must be ≥ 0, got %v", ErrInvalidOption, d)
		}
		m.wait = d
		return nil
	}
}

// WithPollInterval sets how often a waiting repeat checks the store (default 25ms).
func WithPollInterval(d time.Duration) Option {
	return func(m *Middleware) error {
		if d <= 0 {
			return fmt.Errorf("%w: WithPollInterval: must be > 0, got %v", ErrInvalidOption, d)
		}
		m.poll = d
		return nil
	}
}

// WithMaxBody sets the largest request body fingerprinted (default 1 MiB);
// a larger body with a key gets 413.
func WithMaxBody(n int64) Option {
	return func(m *Middleware) error {
		if n <= 0 {
			return fmt.Errorf("%w: WithMaxBody: must be > 0, got %d", ErrInvalidOption, n)
		}
		m.maxBody = n
		return nil
	}
}

// WithMaxResponse sets the largest response body stored (default 1 MiB). A
// larger response is sent but not stored: the key is released and a repeat
// runs again.
func WithMaxResponse(n int) Option {
	return func(m *Middleware) error {
		if n <= 0 {
			return fmt.Errorf("%w: WithMaxResponse: must be > 0, got %d", ErrInvalidOption, n)
		}
		m.maxResp = n
		return nil
	}
}

// WithScope sets a function returning the client scope of a request (for
// example the authenticated tenant or API key). Keys are unique per scope, so
// two clients choosing the same key do not see each other's responses.
func WithScope(f func(*http.Request) string) Option {
	return func(m *Middleware) error {
		if f == nil {
			return fmt.Errorf("%w: WithScope: must not be nil", ErrInvalidOption)
		}
		m.scope = f
		return nil
	}
}

// WithMethods sets the methods the key applies to (default POST, PUT, PATCH,
// DELETE). Requests with other methods pass through untouched.
func WithMethods(methods ...string) Option {
	return func(m *Middleware) error {
		if len(methods) == 0 {
			return fmt.Errorf("%w: WithMethods: needs at least one method", ErrInvalidOption)
		}
		m.methods = make(map[string]bool, len(methods))
		for _, s := range methods {
			m.methods[strings.ToUpper(s)] = true
		}
		return nil
	}
}

// WithRequired makes the key mandatory for the covered methods: a request
// without it gets 400 Bad Request.
func WithRequired() Option {
	return func(m *Middleware) error { m.required = true; return nil }
}

// WithClock sets the clock (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(m *Middleware) error {
		if now == nil {
			return fmt.Errorf("%w: WithClock: must not be nil", ErrInvalidOption)
		}
		m.now = now
		return nil
	}
}

// WithLogger sets the logger (default discards).
func WithLogger(l *slog.Logger) Option {
	return func(m *Middleware) error {
		if l == nil {
			return fmt.Errorf("%w: WithLogger: must not be nil", ErrInvalidOption)
		}
		m.log = l
		return nil
	}
}

// New returns a Middleware keeping its records in store.
func New(store Store, opts ...Option) (*Middleware, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: store must not be nil", ErrInvalidOption)
	}
	m := &Middleware{
		store:   store,
		ttl:     24 * time.Hour,
		lockTTL: time.Minute,
		poll:    25 * time.Millisecond,
		maxBody: 1 << 20,
		maxResp: 1 << 20,
		methods: map[string]bool{"POST": true, "PUT": true, "PATCH": true, "DELETE": true},
		now:     time.Now,
		log:     slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		if err := o(m); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ParseKey returns the key of an Idempotency-Key header value. The draft
// defines the value as a Structured Field string ("..."); a bare token is
// accepted too.
func ParseKey(v string) (string, error) {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		inner := v[1 : len(v)-1]
		var b strings.Builder
		for i := 0; i < len(inner); i++ {
			c := inner[i]
			if c == '\\' {
				if i+1 >= len(inner) || (inner[i+1] != '"' && inner[i+1] != '\\') {
					return "", errors.New("idempotency: key: bad escape")
				}
				i++
				c = inner[i]
			} else if c == '"' {
				return "", errors.New("idempotency: key: unescaped quote")
			}
			b.WriteByte(c)
		}
		v = b.String()
	}
	if v == "" {
		return "", errors.New("idempotency: key: empty")
	}
	if len(v) > MaxKeyLength {
		return "", fmt.Errorf("idempotency: key: longer than %d bytes", MaxKeyLength)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return "", errors.New("idempotency: key: non-printable byte")
		}
	}
	return v, nil
}

// Fingerprint returns the hex SHA-256 of a request's method, path (with
// query) and body: two requests with the same key must agree on it.
func Fingerprint(method, path string, body []byte) string {
	h := sha256.New()
	io.WriteString(h, method)
	h.Write([]byte{0})
	io.WriteString(h, path)
	h.Write([]byte{0})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

func problem(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n")
}

// Wrap returns next guarded by the middleware.
func (m *Middleware) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.serve(w, r, next)
	})
}

func (m *Middleware) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if !m.methods[r.Method] {
		next.ServeHTTP(w, r)
		return
	}
	raw := r.Header.Get(HeaderKey)
	if raw == "" {
		if m.required {
			problem(w, http.StatusBadRequest, "Idempotency-Key header is required")
			return
		}
		next.ServeHTTP(w, r)
		return
	}
	key, err := ParseKey(raw)
	if err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, m.maxBody+1))
	if err != nil {
		problem(w, http.StatusBadRequest, "reading request body: "+err.Error())
		return
	}
	if int64(len(body)) > m.maxBody {
		problem(w, http.StatusRequestEntityTooLarge, "request body too large for an idempotent request")
		return
	}
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	fp := Fingerprint(r.Method, r.URL.RequestURI(), body)
	scoped := key
	if m.scope != nil {
		s := m.scope(r)
		scoped = strconv.Itoa(len(s)) + ":" + s + ":" + key
	}

	lease, old, err := m.Acquire(r.Context(), scoped, fp)
	switch {
	case errors.Is(err, ErrMismatch):
		problem(w, http.StatusUnprocessableEntity, "Idempotency-Key was used with a different request")
	case errors.Is(err, ErrInProgress):
		w.Header().Set("Retry-After", "1")
		problem(w, http.StatusConflict, "a request with this Idempotency-Key is still being processed")
	case r.Context().Err() != nil:
		// The client left while waiting.
	case err != nil:
		m.log.ErrorContext(r.Context(), "idempotency: claim", "key", key, "err", err)
		w.Header().Set("Retry-After", "1")
		problem(w, http.StatusServiceUnavailable, "idempotency store unavailable")
	case old != nil:
		replay(w, old)
	default:
		m.run(w, r, next, lease)
	}
}

// Errors of [Middleware.Acquire].
var (
	// ErrMismatch: the key was used before with a different request.
	ErrMismatch = errors.New("idempotency: key reused with a different request")
	// ErrInProgress: the first request with the key is still running.
	ErrInProgress = errors.New("idempotency: request with this key in progress")
)

// Lease is the right to run the first request of a key, from
// [Middleware.Acquire]. End it with exactly one Complete or Release.
type Lease struct {
	m   *Middleware
	rec Record
}

// Complete stores the response to replay for the key. It writes even if
// ctx is cancelled (the client leaving must not lose the response).
func (l *Lease) Complete(ctx context.Context, status int, header http.Header, body []byte) error {
	bg := context.WithoutCancel(ctx)
	now := l.m.now()
	rec := l.rec
	rec.Done = true
	rec.Status = status
	rec.Header = header
	rec.Body = body
	rec.ExpiresAt = now.Add(l.m.ttl)
	return l.m.store.Complete(bg, rec, now)
}

// Release frees the key so that a repeat runs again.
func (l *Lease) Release(ctx context.Context) error {
	return l.m.store.Release(context.WithoutCancel(ctx), l.rec.Key, l.rec.Token)
}

// Acquire is the transport-neutral core of the middleware (the gRPC
// interceptor uses it). For a scoped key and request fingerprint it returns
// a Lease when this request is the first and must run; the stored record
// when it is a completed repeat to replay; ErrMismatch when the key was used
// with another fingerprint; ErrInProgress when the first request still runs
// after the configured wait; or the store's error.
func (m *Middleware) Acquire(ctx context.Context, key, fingerprint string) (*Lease, *Record, error) {
	var deadline <-chan time.Time
	if m.wait > 0 {
		t := time.NewTimer(m.wait)
		defer t.Stop()
		deadline = t.C
	}
	for {
		now := m.now()
		rec := Record{
			Key:         key,
			Fingerprint: fingerprint,
			Token:       newToken(),
			LockedUntil: now.Add(m.lockTTL),
			ExpiresAt:   now.Add(m.lockTTL + m.ttl),
		}
		old, err := m.store.Claim(ctx, rec, now)
		if err != nil {
			return nil, nil, err
		}
		if old == nil {
			return &Lease{m: m, rec: rec}, nil, nil
		}
		if old.Fingerprint != fingerprint {
			return nil, nil, ErrMismatch
		}
		if old.Done {
			return nil, old, nil
		}
		if deadline == nil {
			return nil, nil, ErrInProgress
		}
		t := time.NewTimer(m.poll)
		select {
		case <-t.C:
		case <-deadline:
			t.Stop()
			deadline = nil // one last look at the store, then ErrInProgress
		case <-ctx.Done():
			t.Stop()
			return nil, nil, ctx.Err()
		}
	}
}

func replay(w http.ResponseWriter, rec *Record) {
	h := w.Header()
	for k, v := range rec.Header {
		h[k] = append([]string(nil), v...)
	}
	h.Set(HeaderReplayed, "true")
	w.WriteHeader(rec.Status)
	w.Write(rec.Body)
}

func (m *Middleware) run(w http.ResponseWriter, r *http.Request, next http.Handler, lease *Lease) {
	rw := &recorder{ResponseWriter: w, max: m.maxResp}
	done := false
	defer func() {
		if done {
			return
		}
		// The handler panicked (http.ErrAbortHandler included): release the key.
		if err := lease.Release(r.Context()); err != nil {
			m.log.ErrorContext(r.Context(), "idempotency: release", "key", lease.rec.Key, "err", err)
		}
	}()
	// The handler may not outlive its lock: after it, a retry could take
	// the key over and run the work a second time. Its context ends a tenth
	// of the lock early, leaving time to store the response.
	hctx, cancel := context.WithTimeout(r.Context(), m.lockTTL-m.lockTTL/10)
	defer cancel()
	next.ServeHTTP(rw, r.WithContext(hctx))
	done = true
	status := rw.status
	if status == 0 {
		status = http.StatusOK
	}
	// 5xx is not stored: the failure may be transient and the client must
	// be able to retry. A response too large to store is not either.
	if status >= 500 || rw.overflow {
		if err := lease.Release(r.Context()); err != nil {
			m.log.ErrorContext(r.Context(), "idempotency: release", "key", lease.rec.Key, "err", err)
		}
		return
	}
	header := rw.header
	if header == nil {
		header = w.Header().Clone()
	}
	// Stored even when the client has gone: a timed-out client retries with
	// the key and must get this response.
	if err := lease.Complete(r.Context(), status, header, rw.body.Bytes()); err != nil {
		m.log.ErrorContext(r.Context(), "idempotency: complete", "key", lease.rec.Key, "err", err)
	}
}

func newToken() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// recorder passes the response through and keeps a copy of it.
type recorder struct {
	http.ResponseWriter
	status   int
	header   http.Header
	body     bytes.Buffer
	max      int
	overflow bool
}

func (r *recorder) WriteHeader(code int) {
	if r.status != 0 {
		return
	}
	if code >= 100 && code < 200 {
		r.ResponseWriter.WriteHeader(code)
		return
	}
	r.status = code
	r.header = r.ResponseWriter.Header().Clone()
	r.header.Del(HeaderReplayed)
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	if !r.overflow {
		if r.body.Len()+len(p) > r.max {
			r.overflow = true
			r.body = bytes.Buffer{}
		} else {
			r.body.Write(p)
		}
	}
	return r.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
