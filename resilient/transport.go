package resilient

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

	"github.com/handoffhq/handoff/breaker"
	"github.com/handoffhq/handoff/bulkhead"
	"github.com/handoffhq/handoff/fallback"
	"github.com/handoffhq/handoff/hedge"
	"github.com/handoffhq/handoff/retry"
	"github.com/handoffhq/handoff/throttle"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// HeaderFallback marks a response served by a fallback: "cache" or "func".
const HeaderFallback = "Resilient-Fallback"

// Policy is the composed resilience policy of one dependency. Every field is
// optional; the zero Policy makes one attempt with no protection but still
// propagates the deadline and records telemetry. Share one Policy (its
// breaker, bulkhead, throttle, budget) among all calls to a dependency.
//
// The order, outermost first: fallback, retry (with its budget), hedge, then
// per attempt bulkhead, breaker, throttle and the per-try timeout.
type Policy struct {
	// Retry retries failed attempts. Its PerTryTimeout is applied by the
	// transport itself (the attempt's context must outlive RoundTrip while
	// the caller reads the body); its Retryable and Listener are wrapped.
	// Retries happen only for idempotent methods (GET, HEAD, OPTIONS, PUT,
	// DELETE, TRACE) and requests carrying an Idempotency-Key header.
	// Unlike package retry's zero value, MaxAttempts 0 here means one
	// attempt: a transport retries only when asked to.
	Retry    retry.Policy
	Breaker  *breaker.Breaker
	Bulkhead *bulkhead.Bulkhead
	Throttle *throttle.Throttle
	// Hedge sends hedged attempts for GET and HEAD requests only.
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
	resp       *http.Response
}

func (e *StatusError) Error() string {
	return "resilient: status " + strconv.Itoa(e.StatusCode)
}

// Transport is an [http.RoundTripper] applying a [Policy] per dependency (the
// request's host, or a name chosen by [WithRoute]). It sends the remaining
// time of the request context downstream in the Request-Timeout header,
// derives each attempt's timeout from it, injects W3C trace context, and
// records a span and metrics per attempt.
type Transport struct {
	base      http.RoundTripper
	route     func(*http.Request) string
	policies  map[string]*dependency
	newPolicy func(dep string) (Policy, error)
	lazy      sync.Map // string → *dependency
	maxBody   int64
	prop      propagation.TextMapPropagator

	tracer trace.Tracer
	inst   *instruments
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

// WithTracerProvider sets the tracer provider (default: the global one).
func WithTracerProvider(tp trace.TracerProvider) TransportOption {
	return func(t *Transport) error {
		if tp == nil {
			return fmt.Errorf("%w: WithTracerProvider: must not be nil", ErrInvalidOption)
		}
		t.tracer = tp.Tracer(ScopeName)
		return nil
	}
}

// WithMeterProvider sets the meter provider (default: the global one).
func WithMeterProvider(mp metric.MeterProvider) TransportOption {
	return func(t *Transport) error {
		if mp == nil {
			return fmt.Errorf("%w: WithMeterProvider: must not be nil", ErrInvalidOption)
		}
		inst, err := newInstruments(mp)
		if err != nil {
			return err
		}
		t.inst = inst
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
	if t.tracer == nil {
		t.tracer = otel.GetTracerProvider().Tracer(ScopeName)
	}
	if t.inst == nil {
		inst, err := newInstruments(otel.GetMeterProvider())
		if err != nil {
			return nil, err
		}
		t.inst = inst
	}
	for _, d := range t.policies {
		d.init()
	}
	if err := t.inst.observeBreakers(t); err != nil {
		return nil, err
	}
	return t, nil
}

type dependency struct {
	name     string
	p        Policy
	perTry   time.Duration
	attrs    metric.MeasurementOption
	okAttrs  metric.MeasurementOption
	attr     attribute.KeyValue
	spanName string
}

func (d *dependency) init() {
	d.attr = AttrDependency.String(d.name)
	d.attrs = metric.WithAttributeSet(attribute.NewSet(d.attr))
	d.okAttrs = metric.WithAttributeSet(attribute.NewSet(d.attr, AttrOutcome.String("success")))
	d.spanName = "resilient " + d.name
	d.p.Retry.PerTryTimeout, d.perTry = 0, d.p.Retry.PerTryTimeout
}

func (t *Transport) dependency(req *http.Request) (*dependency, error) {
	name := t.route(req)
	if d, ok := t.policies[name]; ok {
		return d, nil
	}
	if v, ok := t.lazy.Load(name); ok {
		return v.(*dependency), nil
	}
	d := &dependency{name: name, p: Policy{Retry: retry.Policy{MaxAttempts: 1}}}
	if t.newPolicy != nil {
		p, err := t.newPolicy(name)
		if err != nil {
			return nil, fmt.Errorf("resilient: policy for %s: %w", name, err)
		}
		d.p = p
	}
	d.init()
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

// call is the state of one RoundTrip.
type call struct {
	t       *Transport
	d       *dependency
	req     *http.Request
	span    trace.Span
	getBody func() (io.ReadCloser, error)
	body    io.ReadCloser // the original body, until the first attempt takes it
	last    *http.Response
	hedged  bool
	user    retry.Listener
	mu      sync.Mutex // hedged attempts: guards winner and closed
	winner  bool
	closed  bool
}

// RoundTrip implements [http.RoundTripper].
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	d, err := t.dependency(req)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	ctx, span := t.tracer.Start(req.Context(), d.spanName)
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(d.attr, attribute.String("http.request.method", req.Method))
	}
	c := &call{t: t, d: d, req: req, span: span, user: d.p.Retry.Listener}
	pol := d.p.Retry
	retries := pol.MaxAttempts > 1 && idempotent(req)
	if c.prepareBody(retries) && retries {
		pol.Retryable = c.retryable
		pol.Listener = c
	} else {
		pol.MaxAttempts = 1
	}
	if c.body != nil {
		defer func() {
			if c.body != nil {
				c.body.Close() // no attempt took it
			}
		}()
	}

	if d.p.Fallback != nil && (req.Method == http.MethodGet || req.Method == "") {
		return c.withFallback(ctx, pol)
	}
	resp, err := c.run(ctx, pol)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	return resp, err
}

// run retries attempts and returns the response to give the caller.
func (c *call) run(ctx context.Context, pol retry.Policy) (*http.Response, error) {
	var resp *http.Response
	err := pol.Do(ctx, func(ctx context.Context, attempt int) error {
		c.mu.Lock()
		if c.last != nil {
			drain(c.last)
			c.last = nil
		}
		c.mu.Unlock()
		var err error
		if c.d.p.Hedge != nil && (c.req.Method == http.MethodGet || c.req.Method == http.MethodHead || c.req.Method == "") && c.getBody == nil && c.body == nil {
			resp, err = c.hedge(ctx, attempt)
		} else {
			resp, err = c.attempt(ctx, attempt, false)
		}
		return err
	})
	if err == nil {
		return resp, nil
	}
	var se *StatusError
	c.mu.Lock()
	last := c.last
	c.last = nil
	c.mu.Unlock()
	if errors.As(err, &se) && last != nil {
		// Out of retries on a retryable status: the caller gets the response.
		return last, nil
	}
	if last != nil {
		drain(last)
	}
	var ee *retry.ExhaustedError
	if errors.As(err, &ee) && ee.Reason == retry.ReasonDeadline && ee.Attempts == 0 {
		c.span.AddEvent(EventDeadlineShort)
		c.t.inst.rejected.Add(ctx, 1, metric.WithAttributes(c.d.attr, AttrReason.String("deadline")))
	}
	return nil, fmt.Errorf("resilient: %s %s: %w", c.req.Method, c.d.name, err)
}

// retryable classifies attempt errors for the retry policy.
func (c *call) retryable(err error) bool {
	if c.d.p.Retry.Retryable != nil {
		return c.d.p.Retry.Retryable(err)
	}
	return retry.IsRetryable(err)
}

// OnRetryEvent turns retry decisions into span events and metrics.
func (c *call) OnRetryEvent(e retry.Event) {
	ctx := context.Background()
	switch e.Kind {
	case retry.EventRetry:
		c.span.AddEvent(EventRetry, trace.WithAttributes(AttrAttempt.Int(e.Attempt+1),
			AttrDelay.Int64(e.Delay.Milliseconds()), AttrReason.String(errString(e.Err))))
		c.t.inst.retries.Add(ctx, 1, c.d.attrs)
	case retry.EventBudgetExhausted:
		c.span.AddEvent(EventBudgetExhausted, trace.WithAttributes(AttrAttempt.Int(e.Attempt)))
		c.t.inst.budgetExhausted.Add(ctx, 1, c.d.attrs)
	}
	if c.user != nil {
		c.user.OnRetryEvent(e)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// prepareBody makes the request body replayable when retries are allowed and
// reports whether it is.
func (c *call) prepareBody(retries bool) bool {
	req := c.req
	if req.Body == nil || req.Body == http.NoBody {
		return retries
	}
	c.body = req.Body
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
		return false
	}
	req.Body.Close()
	c.body = nil
	c.getBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	return true
}

// nextBody returns the body of the next attempt.
func (c *call) nextBody() (io.ReadCloser, error) {
	if c.getBody != nil {
		return c.getBody()
	}
	if c.body == nil { // no body (hedged attempts share this read-only path)
		return http.NoBody, nil
	}
	b := c.body
	c.body = nil
	return b, nil
}

// attempt sends the request once through bulkhead, breaker and throttle.
func (c *call) attempt(ctx context.Context, n int, hedged bool) (*http.Response, error) {
	t, d, p := c.t, c.d, &c.d.p
	reject := func(reason, event string, err error) (*http.Response, error) {
		trace.SpanFromContext(ctx).AddEvent(event, trace.WithAttributes(AttrAttempt.Int(n)))
		c.span.AddEvent(event, trace.WithAttributes(AttrAttempt.Int(n)))
		t.inst.rejected.Add(ctx, 1, metric.WithAttributes(d.attr, AttrReason.String(reason)))
		return nil, err
	}
	if p.Bulkhead != nil {
		if err := p.Bulkhead.Acquire(ctx); err != nil {
			if errors.Is(err, bulkhead.ErrFull) {
				return reject("bulkhead", EventBulkheadFull, err)
			}
			return nil, err
		}
		defer p.Bulkhead.Release()
	}
	var permit breaker.Permit
	if p.Breaker != nil {
		var err error
		if permit, err = p.Breaker.Allow(); err != nil {
			c.span.SetAttributes(AttrBreakerState.String(p.Breaker.State().String()))
			return reject("breaker", EventBreakerRejected, err)
		}
	}
	if p.Throttle != nil {
		if err := p.Throttle.Allow(); err != nil {
			permit.Done(context.Canceled) // not sent: nothing for the breaker to learn
			return reject("throttle", EventThrottled, err)
		}
	}

	actx, cancel := ctx, context.CancelFunc(nil)
	if d.perTry > 0 {
		actx, cancel = context.WithTimeout(ctx, d.perTry)
	}
	actx, span := t.tracer.Start(actx, c.req.Method, clientKind)
	if span.IsRecording() {
		span.SetAttributes(d.attr, AttrAttempt.Int(n), attribute.String("http.request.method", c.req.Method),
			attribute.String("server.address", c.req.URL.Host))
		if hedged {
			span.SetAttributes(AttrHedged.Bool(true))
		}
	}
	var stateBefore breaker.State
	recording := p.Breaker != nil && span.IsRecording()
	if recording {
		stateBefore = p.Breaker.State()
		span.SetAttributes(AttrBreakerState.String(stateBefore.String()))
	}
	resp, err := c.send(actx, n)
	outcome := "success"
	var failure error // what the breaker and the retry policy learn
	overload := false
	switch {
	case err != nil:
		outcome, failure, overload = "error", err, true
		if ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled) {
			failure = context.Canceled // the caller gave up
		}
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		outcome = "status"
		overload = resp.StatusCode == 429 || resp.StatusCode == 503
		se := &StatusError{StatusCode: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"))}
		failure = se
		if se.RetryAfter > 0 {
			err = retry.After(se, se.RetryAfter)
		} else {
			err = se
		}
		c.keepFailed(resp)
		resp = nil
	}
	if p.Throttle != nil {
		p.Throttle.Record(!overload)
	}
	if p.Breaker != nil {
		if se, ok := failure.(*StatusError); ok && se.StatusCode == http.StatusTooManyRequests {
			permit.Done(nil) // 429 is the throttle's signal, not a broken dependency
		} else {
			permit.Done(failure)
		}
		if recording {
			if after := p.Breaker.State(); after != stateBefore {
				c.span.AddEvent(EventBreakerState, trace.WithAttributes(
					attribute.String("resilient.breaker.from", stateBefore.String()), AttrBreakerState.String(after.String())))
			}
		}
	}
	if outcome == "success" {
		t.inst.attempts.Add(ctx, 1, d.okAttrs)
	} else {
		t.inst.attempts.Add(ctx, 1, metric.WithAttributes(d.attr, AttrOutcome.String(outcome)))
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		span.End()
		if cancel != nil {
			cancel()
		}
		return nil, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	span.End()
	if cancel != nil {
		resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	}
	return resp, nil
}

// send clones the request for one attempt, with deadline and trace headers.
func (c *call) send(ctx context.Context, n int) (*http.Response, error) {
	body, err := c.nextBody()
	if err != nil {
		return nil, fmt.Errorf("resilient: replay body: %w", err)
	}
	r := c.req.Clone(ctx)
	r.Body = body
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if left < 0 {
			left = 0
		}
		r.Header.Set(HeaderTimeout, strconv.FormatInt(int64(left/time.Millisecond), 10))
	}
	c.t.prop.Inject(ctx, propagation.HeaderCarrier(r.Header))
	return c.t.base.RoundTrip(r)
}

// keepFailed buffers a failed response (up to the body limit), so that the
// connection is freed and the caller can get it if no retry follows.
func (c *call) keepFailed(resp *http.Response) {
	buf, _ := io.ReadAll(io.LimitReader(resp.Body, c.t.maxBody))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(buf))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last != nil {
		drain(c.last)
	}
	c.last = resp
}

// hedge runs one retry attempt as hedged attempts; the first success wins
// and the others' responses are closed.
func (c *call) hedge(ctx context.Context, n int) (*http.Response, error) {
	c.mu.Lock()
	c.winner, c.closed = false, false
	c.mu.Unlock()
	launched := 0
	var lmu sync.Mutex
	resp, err := hedge.Do(ctx, c.d.p.Hedge, func(hctx context.Context) (*http.Response, error) {
		lmu.Lock()
		launched++
		hedged := launched > 1
		lmu.Unlock()
		if hedged {
			c.span.AddEvent(EventHedge, trace.WithAttributes(AttrAttempt.Int(n)))
		}
		// The attempt must outlive hedge.Do (the caller reads the body),
		// so it runs on ctx and is cancelled with hctx only while it loses.
		actx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(hctx, cancel)
		r, err := c.attempt(actx, n, hedged)
		if err != nil {
			stop()
			cancel()
			return nil, err
		}
		c.mu.Lock()
		won := !c.winner && !c.closed
		if won {
			c.winner = true
			stop()
		}
		c.mu.Unlock()
		if !won {
			drain(r)
			cancel()
			return nil, context.Canceled
		}
		r.Body = &cancelBody{ReadCloser: r.Body, cancel: cancel}
		return r, nil
	})
	if err != nil {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
	}
	return resp, err
}

// withFallback runs the call and, when it fails, serves the fallback.
func (c *call) withFallback(ctx context.Context, pol retry.Policy) (*http.Response, error) {
	f := c.d.p.Fallback
	key := c.req.Method + " " + c.req.URL.String()
	resp, err := c.run(ctx, pol)
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
		if err != nil {
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
	c.span.AddEvent(EventFallback, trace.WithAttributes(AttrFallback.String(source), AttrReason.String(callErr.Error())))
	c.t.inst.fallbacks.Add(ctx, 1, metric.WithAttributes(c.d.attr, AttrFallback.String(source)))
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
