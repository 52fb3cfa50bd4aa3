package metrics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/breaker"
	"github.com/handoffhq/handoff/bulkhead"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/relay"
	"github.com/handoffhq/handoff/resilience"
	"github.com/handoffhq/handoff/retry"
	"github.com/handoffhq/handoff/telemetry"
)

// ScopeName is the instrumentation scope of the instruments of this package.
const ScopeName = "github.com/handoffhq/handoff/metrics"

// Attribute keys beyond the OpenTelemetry messaging and HTTP conventions
// (telemetry.Attr* holds those of messaging).
const (
	AttrOutcome   = attribute.Key("handoff.outcome")         // consumer: acked | retried | dead_lettered
	AttrClass     = attribute.Key("handoff.dlq.class")       // a dlq.Class* constant
	AttrOutbox    = attribute.Key("handoff.outbox.name")     // the name an outbox was registered under
	AttrPartition = attribute.Key("handoff.relay.partition") // an outbox partition number
	AttrBreaker   = resilience.AttrDependency                // breaker, bulkhead and budget names
	AttrState     = resilience.AttrBreakerState
	AttrErrorType = attribute.Key("error.type")
	AttrRoute     = attribute.Key("http.route")
	AttrMethod    = attribute.Key("http.request.method")
	AttrStatus    = attribute.Key("http.response.status_code")
)

// Latency buckets in seconds: 0.5 ms to 30 s, for handlers, publishes and
// HTTP requests alike (the semantic conventions' advice, reaching further
// down for in-memory brokers and further up for slow handlers).
var durationBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Lag buckets in seconds: commit to publish, 1 ms to 10 minutes.
var lagBuckets = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600}

// Metrics records handoff's metrics through the OpenTelemetry metric API. It
// is the consumer runtime's and the relay's Observer, wraps publishers and
// HTTP handlers, and samples outboxes, dead-letter stores, breakers,
// bulkheads and retry budgets when the meter provider collects. Create it
// with [New]; it is safe for concurrent use.
type Metrics struct {
	mp    metric.MeterProvider
	meter metric.Meter

	sent, consumed                      metric.Int64Counter
	sendDuration, processDuration, http metric.Float64Histogram
	relayLag                            metric.Float64Histogram
	relayErrors                         metric.Int64Counter

	pending, held, letters        metric.Int64ObservableGauge
	oldest                        metric.Float64ObservableGauge
	breakerState                  metric.Int64ObservableGauge
	bhInFlight, bhLimit, bhQueued metric.Int64ObservableGauge
	bhRejected, brRejected        metric.Int64ObservableCounter
	budgetTokens                  metric.Float64ObservableGauge
	relayPartitions               metric.Int64ObservableGauge
	dlqEvery, sampleTimeout       time.Duration
	sagaEvery                     time.Duration
	mu                            sync.Mutex
	regs                          []metric.Registration
	heldParts                     atomic.Int64 // partitions the relay held at its last event; -1 before
	saga                          sagaInstruments
}

// Option configures [New].
type Option func(*Metrics) error

// WithMeterProvider sets the meter provider (default: the global one).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(m *Metrics) error {
		if mp == nil {
			return errors.New("metrics: WithMeterProvider: must not be nil")
		}
		m.mp = mp
		return nil
	}
}

// WithDeadLetterInterval sets how often at most the dead-letter stores are
// read for the open-letters gauge (default 15s); collections in between
// report the last sample.
func WithDeadLetterInterval(d time.Duration) Option {
	return func(m *Metrics) error {
		if d <= 0 {
			return fmt.Errorf("metrics: WithDeadLetterInterval: %v: must be positive", d)
		}
		m.dlqEvery = d
		return nil
	}
}

// WithSagaInterval sets how often at most the saga stores are read for the
// handoff.saga.instances gauge (default 15s); collections in between
// report the last sample.
func WithSagaInterval(d time.Duration) Option {
	return func(m *Metrics) error {
		if d <= 0 {
			return fmt.Errorf("metrics: WithSagaInterval: %v: must be positive", d)
		}
		m.sagaEvery = d
		return nil
	}
}

// New returns the instruments, created on the meter provider.
func New(opts ...Option) (*Metrics, error) {
	m := &Metrics{dlqEvery: 15 * time.Second, sagaEvery: 15 * time.Second, sampleTimeout: 5 * time.Second}
	m.heldParts.Store(-1)
	for _, o := range opts {
		if err := o(m); err != nil {
			return nil, err
		}
	}
	if m.mp == nil {
		m.mp = otel.GetMeterProvider()
	}
	m.meter = m.mp.Meter(ScopeName)
	mt := m.meter
	var errs []error
	ctr := func(name, unit, desc string) metric.Int64Counter {
		c, err := mt.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	hist := func(name, unit, desc string, buckets []float64) metric.Float64Histogram {
		h, err := mt.Float64Histogram(name, metric.WithUnit(unit), metric.WithDescription(desc), metric.WithExplicitBucketBoundaries(buckets...))
		errs = append(errs, err)
		return h
	}
	igauge := func(name, unit, desc string) metric.Int64ObservableGauge {
		g, err := mt.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return g
	}
	icounter := func(name, unit, desc string) metric.Int64ObservableCounter {
		g, err := mt.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return g
	}
	fgauge := func(name, unit, desc string) metric.Float64ObservableGauge {
		g, err := mt.Float64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return g
	}
	// Messaging: the OpenTelemetry semantic conventions' names.
	m.sent = ctr("messaging.client.sent.messages", "{message}", "Messages a producer attempted to send to the broker.")
	m.consumed = ctr("messaging.client.consumed.messages", "{message}", "Messages delivered to a consumer and settled, by outcome.")
	m.sendDuration = hist("messaging.client.operation.duration", "s", "Duration of send operations to the broker.", durationBuckets)
	m.processDuration = hist("messaging.process.duration", "s", "Duration of a handler's processing of one message.", durationBuckets)
	m.http = hist("http.server.request.duration", "s", "Duration of HTTP server requests.", durationBuckets)
	// handoff's own.
	m.relayLag = hist("handoff.relay.lag", "s", "Commit-to-publish delay of the oldest row of each published batch, per partition.", lagBuckets)
	m.relayErrors = ctr("handoff.relay.errors", "{error}", "Failed relay passes (database or broker).")
	m.relayPartitions = igauge("handoff.relay.partitions", "{partition}", "Outbox partitions each relay holds a lease on.")
	m.pending = igauge("handoff.outbox.pending", "{row}", "Outbox rows waiting to be published.")
	m.held = igauge("handoff.outbox.held", "{row}", "Outbox rows the broker refused for good, holding their key while their dead letter is open.")
	m.oldest = fgauge("handoff.outbox.oldest.age", "s", "Age of the oldest outbox row waiting to be published (0 when none).")
	m.letters = igauge("handoff.dlq.open", "{letter}", "Open (not replayed) dead letters, per consumer and class.")
	m.breakerState = igauge("resilient.breaker.state", "", "1 for the breaker's current state, 0 for the others.")
	m.brRejected = icounter("resilient.breaker.rejected", "{call}", "Calls a breaker rejected since it was created.")
	m.bhInFlight = igauge("resilient.bulkhead.in_flight", "{call}", "Calls running inside a bulkhead.")
	m.bhLimit = igauge("resilient.bulkhead.limit", "{call}", "A bulkhead's concurrency limit.")
	m.bhQueued = igauge("resilient.bulkhead.queued", "{call}", "Calls waiting for a bulkhead slot.")
	m.bhRejected = icounter("resilient.bulkhead.rejected", "{call}", "Calls a bulkhead rejected since it was created.")
	m.budgetTokens = fgauge("resilient.retry.budget.tokens", "{retry}", "Retries a retry budget would allow now.")
	m.saga.events = ctr("handoff.saga.events", "{saga}", "Sagas started, completed, compensated and stuck, by saga name and event.")
	m.saga.instances = igauge("handoff.saga.instances", "{saga}", "Unfinished sagas, by saga name and status (running, compensating, stuck).")
	m.saga.duration = hist("handoff.saga.duration", "s", "Time from a saga's start to its end (completed or compensated).", sagaBuckets)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	reg, err := mt.RegisterCallback(m.observeRelays, m.relayPartitions)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	m.regs = append(m.regs, reg)
	return m, nil
}

// Close unregisters every callback (outboxes, dead-letter stores,
// breakers, bulkheads, budgets).
func (m *Metrics) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, r := range m.regs {
		errs = append(errs, r.Unregister())
	}
	m.regs = nil
	return errors.Join(errs...)
}

func (m *Metrics) register(f metric.Callback, insts ...metric.Observable) error {
	reg, err := m.meter.RegisterCallback(f, insts...)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	m.mu.Lock()
	m.regs = append(m.regs, reg)
	m.mu.Unlock()
	return nil
}

// errorType is a bounded error.type: the error's class, never its text.
func errorType(err error) string {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case handoff.IsPermanent(err):
		return "permanent"
	default:
		return "temporary"
	}
}

type publisher struct {
	next   handoff.Publisher
	m      *Metrics
	system attribute.KeyValue
}

// Publisher wraps pub so each Publish counts its messages
// (messaging.client.sent.messages) and times the call
// (messaging.client.operation.duration), per topic; system is
// messaging.system ("nats", "kafka", "rabbitmq", "memory"). Check passes
// through, as with telemetry.Publisher.
func (m *Metrics) Publisher(pub handoff.Publisher, system string) handoff.Publisher {
	return &publisher{next: pub, m: m, system: telemetry.AttrSystem.String(system)}
}

func (p *publisher) Check(ctx context.Context) error {
	if c, ok := p.next.(relay.Checker); ok {
		return c.Check(ctx)
	}
	return nil
}

func (p *publisher) Publish(ctx context.Context, topic string, msgs ...*handoff.Message) error {
	start := time.Now()
	err := p.next.Publish(ctx, topic, msgs...)
	attrs := []attribute.KeyValue{p.system, telemetry.AttrDestination.String(topic), telemetry.AttrOperationName.String("send"),
		telemetry.AttrOperationType.String("send")}
	if err != nil {
		attrs = append(attrs, AttrErrorType.String(errorType(err)))
	}
	set := metric.WithAttributeSet(attribute.NewSet(attrs...))
	p.m.sent.Add(ctx, int64(len(msgs)), set)
	p.m.sendDuration.Record(ctx, time.Since(start).Seconds(), set)
	return err
}

// Observe implements consumer.Observer: it counts the settled delivery
// (messaging.client.consumed.messages, with handoff.outcome and, for a
// dead letter, its class) and records the handler's time
// (messaging.process.duration).
func (m *Metrics) Observe(o consumer.Outcome) {
	outcome := "acked"
	switch o.Result {
	case consumer.Retried:
		outcome = "retried"
	case consumer.DeadLettered:
		outcome = "dead_lettered"
	}
	attrs := []attribute.KeyValue{telemetry.AttrDestination.String(o.Topic), telemetry.AttrConsumerGroup.String(o.Group),
		telemetry.AttrOperationName.String("process"), AttrOutcome.String(outcome)}
	if o.Result == consumer.DeadLettered {
		attrs = append(attrs, AttrClass.String(o.Class))
	}
	ctx := context.Background()
	set := metric.WithAttributeSet(attribute.NewSet(attrs...))
	m.consumed.Add(ctx, 1, set)
	if o.Duration > 0 {
		m.processDuration.Record(ctx, o.Duration.Seconds(), set)
	}
}

// ObserveRelay implements relay.Observer: the lag of each published
// partition (handoff.relay.lag), failed passes (handoff.relay.errors) and
// the partitions held (handoff.relay.partitions). One Metrics observes one
// relay; Prometheus tells instances apart by their target labels.
func (m *Metrics) ObserveRelay(e relay.Event) {
	ctx := context.Background()
	for p, lag := range e.PartitionLag {
		m.relayLag.Record(ctx, lag.Seconds(), metric.WithAttributes(AttrPartition.String(strconv.Itoa(p))))
	}
	if e.Err != nil {
		m.relayErrors.Add(ctx, 1)
	}
	if e.Err == nil {
		m.heldParts.Store(int64(len(e.Partitions)))
	}
}

func (m *Metrics) observeRelays(_ context.Context, o metric.Observer) error {
	if n := m.heldParts.Load(); n >= 0 {
		o.ObserveInt64(m.relayPartitions, n)
	}
	return nil
}

// StatsSource is what the outbox gauges read: relay.Store is one.
type StatsSource interface {
	Stats(ctx context.Context) (relay.Stats, error)
}

// Outbox samples src at each collection: handoff.outbox.pending,
// handoff.outbox.oldest.age and handoff.outbox.held, labelled
// handoff.outbox.name=name. One query per collection.
func (m *Metrics) Outbox(name string, src StatsSource) error {
	attrs := metric.WithAttributes(AttrOutbox.String(name))
	return m.register(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, m.sampleTimeout)
		defer cancel()
		st, err := src.Stats(ctx)
		if err != nil {
			return fmt.Errorf("metrics: outbox %s: %w", name, err)
		}
		age := 0.0
		if !st.Oldest.IsZero() {
			age = max(0, time.Since(st.Oldest).Seconds())
		}
		o.ObserveInt64(m.pending, int64(st.Pending), attrs)
		o.ObserveInt64(m.held, int64(st.Held), attrs)
		o.ObserveFloat64(m.oldest, age, attrs)
		return nil
	}, m.pending, m.held, m.oldest)
}

// LetterLister is what the dead-letter gauge reads: *dlq.Queue and every
// dlq.Store are one.
type LetterLister interface {
	List(ctx context.Context, f dlq.Filter) ([]*dlq.Letter, error)
}

// letterPage bounds one read of the dead-letter gauge; maxLetters bounds a
// sample (a store with more open letters reports this many, and the
// handoff.dlq.open series then undercount).
const (
	letterPage = 1000
	maxLetters = 100_000
)

// CountOpen counts the open letters of src per consumer and class, reading
// pages of 1,000 up to 100,000 letters.
func CountOpen(ctx context.Context, src LetterLister) (map[[2]string]int, error) {
	counts := map[[2]string]int{}
	f := dlq.Filter{State: dlq.StateOpen, Limit: letterPage}
	for seen := 0; seen < maxLetters; {
		ls, err := src.List(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, l := range ls {
			counts[[2]string{l.Consumer, l.Class}]++
		}
		seen += len(ls)
		if len(ls) < letterPage {
			break
		}
		f.After = ls[len(ls)-1].ID
	}
	return counts, nil
}

// DeadLetters samples src's open letters per consumer and class
// (handoff.dlq.open), at most once per WithDeadLetterInterval: the store is
// read in pages, so a collection between samples costs nothing. A consumer
// whose letters were all replayed reports 0 until the process restarts, so
// alerts can see it clear.
func (m *Metrics) DeadLetters(src LetterLister) error {
	var (
		mu   sync.Mutex
		last time.Time
		seen = map[[2]string]int{}
	)
	return m.register(func(ctx context.Context, o metric.Observer) error {
		mu.Lock()
		defer mu.Unlock()
		if last.IsZero() || time.Since(last) >= m.dlqEvery {
			ctx, cancel := context.WithTimeout(ctx, m.sampleTimeout)
			counts, err := CountOpen(ctx, src)
			cancel()
			if err != nil {
				return fmt.Errorf("metrics: dead letters: %w", err)
			}
			last = time.Now()
			for k := range seen {
				seen[k] = 0
			}
			for k, n := range counts {
				seen[k] = n
			}
		}
		for k, n := range seen {
			o.ObserveInt64(m.letters, int64(n), metric.WithAttributes(telemetry.AttrConsumerGroup.String(k[0]), AttrClass.String(k[1])))
		}
		return nil
	}, m.letters)
}

var breakerStates = []breaker.State{breaker.Closed, breaker.Open, breaker.HalfOpen, breaker.ForcedOpen, breaker.Disabled}

// Breakers reports each breaker's state (resilient.breaker.state: 1 for the
// current state, 0 for the others, so a dashboard can sum over states) and
// its rejections, labelled resilient.dependency with the breaker's name.
func (m *Metrics) Breakers(bs ...*breaker.Breaker) error {
	return m.register(func(_ context.Context, o metric.Observer) error {
		for _, b := range bs {
			s := b.Snapshot()
			for _, st := range breakerStates {
				v := int64(0)
				if st == s.State {
					v = 1
				}
				o.ObserveInt64(m.breakerState, v, metric.WithAttributes(AttrBreaker.String(b.Name()), AttrState.String(st.String())))
			}
			o.ObserveInt64(m.brRejected, int64(s.Rejected), metric.WithAttributes(AttrBreaker.String(b.Name())))
		}
		return nil
	}, m.breakerState, m.brRejected)
}

// Bulkheads reports each bulkhead's calls in flight, its limit, the calls
// queued and its rejections (saturation is in_flight / limit), labelled
// resilient.dependency with the bulkhead's name.
func (m *Metrics) Bulkheads(bs ...*bulkhead.Bulkhead) error {
	return m.register(func(_ context.Context, o metric.Observer) error {
		for _, b := range bs {
			s := b.Snapshot()
			a := metric.WithAttributes(AttrBreaker.String(b.Name()))
			o.ObserveInt64(m.bhInFlight, int64(s.InFlight), a)
			o.ObserveInt64(m.bhLimit, int64(s.MaxConcurrent), a)
			o.ObserveInt64(m.bhQueued, int64(s.Queued), a)
			o.ObserveInt64(m.bhRejected, int64(s.Rejected), a)
		}
		return nil
	}, m.bhInFlight, m.bhLimit, m.bhQueued, m.bhRejected)
}

// Budget reports the retries b would allow now
// (resilient.retry.budget.tokens), labelled resilient.dependency=name; the
// retries it refused are resilience.Telemetry's
// resilient.client.budget_exhausted.
func (m *Metrics) Budget(name string, b *retry.Budget) error {
	a := metric.WithAttributes(AttrBreaker.String(name))
	return m.register(func(_ context.Context, o metric.Observer) error {
		o.ObserveFloat64(m.budgetTokens, b.Tokens(), a)
		return nil
	}, m.budgetTokens)
}

// knownMethods bounds http.request.method, as the conventions ask.
var knownMethods = map[string]bool{http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true}

// Handler wraps h so each request is timed (http.server.request.duration)
// with http.route=route (the mount point, e.g. "/registry/": a fixed
// string, never the request's path, so the label stays bounded), the
// method (_OTHER for unknown ones) and the status code.
func (m *Metrics) Handler(route string, h http.Handler) http.Handler {
	r := AttrRoute.String(route)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			method := req.Method
			if !knownMethods[method] {
				method = "_OTHER"
			}
			m.http.Record(req.Context(), time.Since(start).Seconds(),
				metric.WithAttributes(r, AttrMethod.String(method), AttrStatus.Int(sw.status)))
		}()
		h.ServeHTTP(sw, req)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
