package resiliencehttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/handoffhq/handoff/fallback"
	"github.com/handoffhq/handoff/hedge"
	"github.com/handoffhq/handoff/resilience"
	"github.com/handoffhq/handoff/retry"
)

// HeaderFallback marks a response served by a fallback: "cache" or "func".
const HeaderFallback = "Resilient-Fallback"

// Policy is the policy of one dependency: the composed policy of package
// resilience (retry, bulkhead, breaker, throttle, timeout; see there for the
// order and the guarantees), and the two policies only HTTP has, because
// they deal with responses. The zero Policy makes one attempt with no
// protection but still propagates the deadline and records telemetry.
// Share one Policy (its breaker, bulkhead, throttle, budget) among all
// calls to a dependency.
//
// Outermost first: fallback, retry (with its budget), hedge, then per try
// bulkhead, breaker, throttle and the per-try timeout (resilience.Policy's
// Timeout).
//
// Retries happen only for idempotent methods (GET, HEAD, OPTIONS, PUT,
// DELETE, TRACE) and requests carrying an Idempotency-Key header. Attempts
// are classified by [Classify] unless the policy has its own Classify; the
// Transport's telemetry is added to the policy's own Observer.
type Policy struct {
	resilience.Policy
	// Hedge sends hedged attempts for GET and HEAD requests without a body.
	Hedge *hedge.Hedger
	// Fallback serves GET requests that failed: the last good response of
	// the same URL (successful responses are buffered to be cached, up to
	// the transport's body limit) or the fallback's function.
	Fallback *fallback.Fallback[string, *CachedResponse]
}

// CachedResponse is a buffered response, as kept by a [Policy.Fallback].
type CachedResponse struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

// StatusError is the error of an attempt answered with a status worth
// retrying: 5xx or 429. When retries run out, RoundTrip returns the last such
// response itself, not this error.
type StatusError struct {
	StatusCode int
	RetryAfter time.Duration // from the Retry-After header; 0 if none
}

func (e *StatusError) Error() string {
	return "resilient: status " + strconv.Itoa(e.StatusCode)
}

// Classify is the Transport's [resilience.Classifier]: a 429 is retried and
// counted by the throttle, but is not a breaker failure (the dependency
// answered, asking to slow down); a 503 is all three; another 5xx is a
// failure worth retrying; an error without a response (a connection reset,
// a per-try timeout) is classified by resilience.DefaultClassify.
func Classify(err error) resilience.Verdict {
	var se *StatusError
	if !errors.As(err, &se) {
		return resilience.DefaultClassify(err)
	}
	switch se.StatusCode {
	case http.StatusTooManyRequests:
		return resilience.Retry | resilience.Overload
	case http.StatusServiceUnavailable:
		return resilience.Retry | resilience.Failure | resilience.Overload
	}
	return resilience.Retry | resilience.Failure
}

// Transport is an [http.RoundTripper] applying a [Policy] per dependency (the
// request's host, or a name chosen by [WithRoute]). It sends the remaining
// time of the request context downstream in the Request-Timeout header,
// derives each attempt's timeout from it, injects W3C trace context, and
// records a span per attempt (once a tracer provider is set) and metrics.
type Transport struct {
	base      http.RoundTripper
	route     func(*http.Request) string
	policies  map[string]*dependency
	newPolicy func(dep string) (Policy, error)
	lazy      sync.Map // string → *dependency
	maxBody   int64
	prop      propagation.TextMapPropagator

	tracing tracing
	tp      trace.TracerProvider
	mp      metric.MeterProvider
	inst    *instruments
}

// TransportOption configures a [Transport].
type TransportOption func(*Transport) error

// WithRoute sets the function naming the dependency of a request (default:
// req.URL.Host). Return a small, fixed set of names: each gets its own
// policy state and metric series.
func WithRoute(f func(*http.Request) string) TransportOption {
	return func(t *Transport) error {
		if f == nil {
			return fmt.Errorf("%w: WithRoute: must not be nil", ErrInvalidOption)
		}
		t.route = f
		return nil
	}
}

// WithPolicy sets the policy of the dependency named dep.
func WithPolicy(dep string, p Policy) TransportOption {
	return func(t *Transport) error {
		if dep == "" {
			return fmt.Errorf("%w: WithPolicy: dependency name must not be empty", ErrInvalidOption)
		}
		if _, dup := t.policies[dep]; dup {
			return fmt.Errorf("%w: WithPolicy: dependency %q given twice", ErrInvalidOption, dep)
		}
		if err := p.Validate(); err != nil {
			return fmt.Errorf("%w: WithPolicy(%q): %w", ErrInvalidOption, dep, err)
		}
		t.policies[dep] = &dependency{name: dep, p: p}
		return nil
	}
}

// WithDefaultPolicy sets a function building the policy of a dependency not
// named by [WithPolicy], called once per new name. Without it such
// dependencies get the zero Policy (one attempt).
func WithDefaultPolicy(f func(dep string) (Policy, error)) TransportOption {
	return func(t *Transport) error {
		if f == nil {
			return fmt.Errorf("%w: WithDefaultPolicy: must not be nil", ErrInvalidOption)
		}
		t.newPolicy = f
		return nil
	}
}

// WithMaxBufferedBody sets how much of a request body without GetBody is
// buffered to be replayable (default 1 MiB; a larger body is sent once,
// without retries). It also bounds the failed responses kept for the caller
// and the responses cached for a fallback.
func WithMaxBufferedBody(n int64) TransportOption {
	return func(t *Transport) error {
		if n < 0 {
			return fmt.Errorf("%w: WithMaxBufferedBody: must be ≥ 0, got %d", ErrInvalidOption, n)
		}
		t.maxBody = n
		return nil
	}
}

// WithTracerProvider sets the tracer provider (default: the global one;
// while no provider is set there, no span is started).
func WithTracerProvider(tp trace.TracerProvider) TransportOption {
	return func(t *Transport) error {
		if tp == nil {
			return fmt.Errorf("%w: WithTracerProvider: must not be nil", ErrInvalidOption)
		}
		t.tp = tp
		return nil
	}
}

// WithMeterProvider sets the meter provider (default: the global one).
func WithMeterProvider(mp metric.MeterProvider) TransportOption {
	return func(t *Transport) error {
		if mp == nil {
			return fmt.Errorf("%w: WithMeterProvider: must not be nil", ErrInvalidOption)
		}
		t.mp = mp
		return nil
	}
}

// WithPropagator sets the propagator injecting trace context into requests
// (default: W3C trace context, whatever the global propagator is).
func WithPropagator(p propagation.TextMapPropagator) TransportOption {
	return func(t *Transport) error {
		if p == nil {
			return fmt.Errorf("%w: WithPropagator: must not be nil", ErrInvalidOption)
		}
		t.prop = p
		return nil
	}
}

// NewTransport returns a Transport sending through base (nil means
// http.DefaultTransport).
func NewTransport(base http.RoundTripper, opts ...TransportOption) (*Transport, error) {
	if base == nil {
		base = http.DefaultTransport
	}
	t := &Transport{
		base:     base,
		route:    func(r *http.Request) string { return r.URL.Host },
		policies: make(map[string]*dependency),
		maxBody:  1 << 20,
		prop:     propagation.TraceContext{},
	}
	for _, o := range opts {
		if err := o(t); err != nil {
			return nil, err
		}
	}
	t.tracing = newTracing(t.tp)
	if t.mp == nil {
		t.mp = otel.GetMeterProvider()
	}
	inst, err := newInstruments(t.mp)
	if err != nil {
		return nil, err
	}
	t.inst = inst
	for _, d := range t.policies {
		if err := d.init(t); err != nil {
			return nil, err
		}
	}
	if err := t.inst.observeBreakers(t); err != nil {
		return nil, err
	}
	return t, nil
}

type dependency struct {
	name     string
	p        Policy             // as given, classified and observed by the transport
	once     *resilience.Policy // p's, with at most one attempt
	attr     attribute.KeyValue
	spanName string
}

func (d *dependency) init(t *Transport) error {
	d.attr = resilience.AttrDependency.String(d.name)
	d.spanName = "resilient " + d.name
	tel, err := resilience.NewTelemetry(d.name, resilience.WithMeterProvider(t.mp), resilience.WithOutcome(outcome))
	if err != nil {
		return err
	}
	if d.p.Classify == nil {
		d.p.Classify = Classify
	}
	d.p.Observer = resilience.Observers(d.p.Observer, tel)
	once := d.p.Policy
	if once.Retry != nil && once.Retry.MaxAttempts != 1 {
		r := *once.Retry
		r.MaxAttempts = 1
		once.Retry = &r
	}
	d.once = &once
	return nil
}

func (t *Transport) dependency(req *http.Request) (*dependency, error) {
	name := t.route(req)
	if d, ok := t.policies[name]; ok {
		return d, nil
	}
	if v, ok := t.lazy.Load(name); ok {
		return v.(*dependency), nil
	}
	d := &dependency{name: name}
	if t.newPolicy != nil {
		p, err := t.newPolicy(name)
		if err == nil {
			err = p.Validate()
		}
		if err != nil {
			return nil, fmt.Errorf("resilient: policy for %s: %w", name, err)
		}
		d.p = p
	}
	if err := d.init(t); err != nil {
		return nil, err
	}
	v, _ := t.lazy.LoadOrStore(name, d)
	return v.(*dependency), nil
}

// Dependencies returns the names of the dependencies seen or configured.
func (t *Transport) Dependencies() []string {
	var out []string
	for n := range t.policies {
		out = append(out, n)
	}
	t.lazy.Range(func(k, _ any) bool { out = append(out, k.(string)); return true })
	return out
}

// idempotent reports whether a request may be sent more than once.
func idempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodTrace:
		return true
	}
	return req.Header.Get("Idempotency-Key") != ""
}

func isGet(req *http.Request) bool { return req.Method == http.MethodGet || req.Method == "" }

// call is the state of one RoundTrip. It lives on RoundTrip's stack: nothing
// keeps a pointer to it beyond the call (hedged tries, which run in
// goroutines of their own, get a hedgeCall).
type call struct {
	t       *Transport
	d       *dependency
	p       *resilience.Policy
	req     *http.Request
	span    trace.Span // the RoundTrip's span; a non-recording one when not tracing
	tracing bool
	getBody func() (io.ReadCloser, error)
	body    io.ReadCloser // the body to send once, until an attempt takes it
	ownBody bool          // body is req.Body itself
	resp    *http.Response
	last    *http.Response // the last failed response, buffered
}

// RoundTrip implements [http.RoundTripper].
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	d, err := t.dependency(req)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	ctx := req.Context()
	c := call{t: t, d: d, p: &d.p.Policy, req: req, tracing: t.tracing.on()}
	if c.tracing {
		ctx, c.span = t.tracing.tracer.Start(ctx, d.spanName)
		defer c.span.End()
		if c.span.IsRecording() {
			c.span.SetAttributes(d.attr, attribute.String("http.request.method", req.Method))
		}
	} else {
		c.span = trace.SpanFromContext(ctx)
	}
	retries := d.p.Retry != nil && d.p.Retry.MaxAttempts != 1 && idempotent(req)
	if !c.prepareBody(retries) {
		c.p = d.once
	}
	if c.body != nil {
		defer func() {
			if c.body != nil {
				c.body.Close() // no attempt took it
			}
		}()
	}
	if d.p.Fallback != nil && isGet(req) {
		return c.withFallback(ctx)
	}
	resp, err := c.run(ctx)
	if err != nil && c.tracing {
		c.span.SetStatus(codes.Error, err.Error())
	}
	return resp, err
}

// run retries attempts and returns the response to give the caller.
func (c *call) run(ctx context.Context) (*http.Response, error) {
	hedged := c.d.p.Hedge != nil && (isGet(c.req) || c.req.Method == http.MethodHead) && c.getBody == nil && c.body == nil
	var err error
	if hedged {
		err = c.p.Retrying(ctx, c.hedge)
	} else {
		err = c.p.Retrying(ctx, c.attempt)
	}
	if err == nil {
		resp := c.resp
		c.resp = nil
		return resp, nil
	}
	last := c.last
	c.last = nil
	var se *StatusError
	if errors.As(err, &se) && last != nil {
		// Out of retries on a retryable status: the caller gets the response.
		return last, nil
	}
	if last != nil {
		drain(last)
	}
	return nil, fmt.Errorf("resilient: %s %s: %w", c.req.Method, c.d.name, err)
}

// attempt is one retry attempt: one try through the policies.
func (c *call) attempt(ctx context.Context, n int) error {
	if c.last != nil {
		drain(c.last)
		c.last = nil
	}
	return c.p.Try(ctx, n, c.try)
}

// try sends the request once and turns a retryable status into an error.
func (c *call) try(ctx context.Context, n int) error {
	body, orig, err := c.nextBody()
	if err != nil {
		return fmt.Errorf("resilient: replay body: %w", err)
	}
	resp, err := c.t.send(ctx, c.d, c.req, body, orig, c.tracing, n, false)
	if err != nil {
		return err
	}
	if serr := statusError(resp); serr != nil {
		c.keepFailed(resp)
		return serr
	}
	if c.p.Timeout > 0 {
		// The caller reads the body after RoundTrip: the attempt's context
		// must live until the body is closed.
		resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: resilience.KeepContext(ctx)}
	}
	c.resp = resp
	return nil
}

// statusError returns the error of a response worth retrying, or nil.
func statusError(resp *http.Response) error {
	if resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
		return nil
	}
	se := &StatusError{StatusCode: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"))}
	if se.RetryAfter > 0 {
		return retry.After(se, se.RetryAfter)
	}
	return se
}

// send sends req once, on ctx, with body (orig: req's own). The request is
// sent as it is when nothing about it changes (its own context and body, no
// deadline to propagate, no trace context to inject); otherwise a copy
// carries the changes.
func (t *Transport) send(ctx context.Context, d *dependency, req *http.Request, body io.ReadCloser, orig, tracing bool, n int, hedged bool) (*http.Response, error) {
	var span trace.Span
	if tracing {
		ctx, span = t.tracing.tracer.Start(ctx, req.Method, clientKind)
		if span.IsRecording() {
			span.SetAttributes(d.attr, resilience.AttrAttempt.Int(n), attribute.String("http.request.method", req.Method),
				attribute.String("server.address", req.URL.Host))
			if hedged {
				span.SetAttributes(resilience.AttrHedged.Bool(true))
			}
		}
	}
	dl, hasDeadline := ctx.Deadline()
	inject := trace.SpanContextFromContext(ctx).IsValid()
	r := req
	if ctx != req.Context() || !orig || hasDeadline || inject {
		r = req.WithContext(ctx)
		r.Body = body
		if hasDeadline || inject {
			// A copy of the map: the values are shared, never changed in
			// place (Set replaces a key's slice), so they need no copy.
			h := make(http.Header, len(req.Header)+2)
			for k, v := range req.Header {
				h[k] = v
			}
			r.Header = h
		}
		if hasDeadline {
			left := max(time.Until(dl), 0)
			r.Header[HeaderTimeout] = []string{strconv.FormatInt(int64(left/time.Millisecond), 10)} // a canonical key
		}
		if inject {
			t.prop.Inject(ctx, propagation.HeaderCarrier(r.Header))
		}
	}
	resp, err := t.base.RoundTrip(r)
	if span != nil {
		switch {
		case err != nil:
			span.SetStatus(codes.Error, err.Error())
		case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
			span.SetAttributes(AttrHTTPCode.Int(resp.StatusCode))
			span.SetStatus(codes.Error, "status "+strconv.Itoa(resp.StatusCode))
		default:
			span.SetAttributes(AttrHTTPCode.Int(resp.StatusCode))
		}
		span.End()
	}
	return resp, err
}

// prepareBody makes the request body replayable when retries are allowed and
// reports whether it is.
func (c *call) prepareBody(retries bool) bool {
	req := c.req
	if req.Body == nil || req.Body == http.NoBody {
		return retries
	}
	c.body, c.ownBody = req.Body, true
	if !retries {
		return false
	}
	if req.GetBody != nil {
		c.getBody = req.GetBody
		return true
	}
	buf, err := io.ReadAll(io.LimitReader(req.Body, c.t.maxBody+1))
	if err != nil || int64(len(buf)) > c.t.maxBody {
		// Too large (or unreadable) to buffer: send it once, streaming.
		c.body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf), req.Body), req.Body}
		c.ownBody = false
		return false
	}
	req.Body.Close()
	c.body = nil
	c.getBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	return true
}

// nextBody returns the body of the next attempt, and whether it is the
// request's own.
func (c *call) nextBody() (io.ReadCloser, bool, error) {
	if c.getBody != nil {
		b, err := c.getBody()
		return b, false, err
	}
	if c.body == nil { // no body, or already sent (one attempt only)
		if c.req.Body == nil || c.req.Body == http.NoBody {
			return c.req.Body, true, nil
		}
		return http.NoBody, false, nil
	}
	b := c.body
	c.body = nil
	return b, c.ownBody, nil
}

// keepFailed buffers a failed response (up to the body limit), so that the
// connection is freed and the caller can get it if no retry follows.
func (c *call) keepFailed(resp *http.Response) {
	bufferBody(resp, c.t.maxBody)
	if c.last != nil {
		drain(c.last)
	}
	c.last = resp
}

func bufferBody(resp *http.Response, limit int64) {
	buf, _ := io.ReadAll(io.LimitReader(resp.Body, limit))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(buf))
}

// hedgeCall is what the hedged tries of one attempt share; they run in
// goroutines of their own, so it is on the heap, apart from the call.
type hedgeCall struct {
	t       *Transport
	d       *dependency
	p       *resilience.Policy
	req     *http.Request
	span    trace.Span
	tracing bool
	maxBody int64

	mu       sync.Mutex
	launched int
	winner   bool
	closed   bool
	last     *http.Response
}

// hedge runs one retry attempt as hedged tries, each through the policies;
// the first success wins and the others' responses are closed.
func (c *call) hedge(ctx context.Context, n int) error {
	if c.last != nil {
		drain(c.last)
		c.last = nil
	}
	h := &hedgeCall{t: c.t, d: c.d, p: c.p, req: c.req, span: c.span, tracing: c.tracing, maxBody: c.t.maxBody}
	resp, err := hedge.Do(ctx, c.d.p.Hedge, func(hctx context.Context) (*http.Response, error) { return h.try(ctx, hctx, n) })
	h.mu.Lock()
	if err != nil {
		h.closed = true
	}
	c.last, h.last = h.last, nil
	h.mu.Unlock()
	c.resp = resp
	return err
}

func (h *hedgeCall) try(ctx, hctx context.Context, n int) (*http.Response, error) {
	h.mu.Lock()
	h.launched++
	hedged := h.launched > 1
	h.mu.Unlock()
	if hedged && h.span.IsRecording() {
		h.span.AddEvent(resilience.EventNameHedge, trace.WithAttributes(resilience.AttrAttempt.Int(n)))
	}
	// The try must outlive hedge.Do (the caller reads the body), so it runs
	// on ctx and is cancelled with hctx only while it loses.
	actx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(hctx, cancel)
	var resp *http.Response
	err := h.p.Try(actx, n, func(ctx context.Context, n int) error {
		r, err := h.t.send(ctx, h.d, h.req, http.NoBody, false, h.tracing, n, hedged)
		if err != nil {
			return err
		}
		if serr := statusError(r); serr != nil {
			bufferBody(r, h.maxBody)
			h.mu.Lock()
			if h.last != nil {
				drain(h.last)
			}
			h.last = r
			h.mu.Unlock()
			return serr
		}
		resp = r
		if h.p.Timeout > 0 {
			resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: resilience.KeepContext(ctx)}
		}
		return nil
	})
	if err != nil {
		stop()
		cancel()
		return nil, err
	}
	h.mu.Lock()
	won := !h.winner && !h.closed
	if won {
		h.winner = true
		stop()
	}
	h.mu.Unlock()
	if !won {
		drain(resp)
		cancel()
		return nil, context.Canceled
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// withFallback runs the call and, when it fails, serves the fallback.
func (c *call) withFallback(ctx context.Context) (*http.Response, error) {
	f := c.d.p.Fallback
	key := c.req.Method + " " + c.req.URL.String()
	resp, err := c.run(ctx)
	if err == nil && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			c.cache(f, key, resp)
		}
		return resp, nil
	}
	callErr := err
	if callErr == nil {
		callErr = &StatusError{StatusCode: resp.StatusCode}
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return resp, err
	}
	_, age, fromCache := f.Get(key)
	v, ferr := f.Do(ctx, key, func(context.Context) (*CachedResponse, error) { return nil, callErr })
	if ferr != nil || v == nil {
		if err != nil && c.tracing {
			c.span.SetStatus(codes.Error, err.Error())
		}
		return resp, err // no fallback: the caller gets what the dependency said
	}
	if resp != nil {
		drain(resp)
	}
	source := "func"
	if fromCache {
		source = "cache"
	}
	if c.span.IsRecording() {
		c.span.AddEvent(resilience.EventNameFallback, trace.WithAttributes(resilience.AttrFallback.String(source),
			resilience.AttrReason.String(callErr.Error())))
	}
	c.t.inst.fallbacks.Add(ctx, 1, metric.WithAttributes(c.d.attr, resilience.AttrFallback.String(source)))
	h := v.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set(HeaderFallback, source)
	if fromCache {
		h.Set("Age", strconv.FormatInt(int64(age/time.Second), 10))
	}
	status := v.StatusCode
	if status == 0 {
		status = http.StatusOK
	}
	return &http.Response{
		Status:        strconv.Itoa(status) + " " + http.StatusText(status),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(v.Body)),
		ContentLength: int64(len(v.Body)),
		Request:       c.req,
	}, nil
}

// cache buffers a successful response for the fallback when it fits.
func (c *call) cache(f *fallback.Fallback[string, *CachedResponse], key string, resp *http.Response) {
	buf, err := io.ReadAll(io.LimitReader(resp.Body, c.t.maxBody+1))
	if err != nil || int64(len(buf)) > c.t.maxBody {
		// Too large to cache (or broken): hand it on as it is.
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf), resp.Body), resp.Body}
		return
	}
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(buf))
	f.Put(key, &CachedResponse{StatusCode: resp.StatusCode, Header: resp.Header.Clone(), Body: buf})
}

var clientKind = trace.WithSpanKind(trace.SpanKindClient)

// cancelBody cancels the attempt's context when the body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// parseRetryAfter reads a Retry-After value: seconds or an HTTP date.
func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		if s > 86400 {
			s = 86400
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}
