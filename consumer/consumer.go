package consumer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/internal/backoff"
	"github.com/handoffhq/handoff/telemetry"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// DeadLetterer stores a message that failed for good. *dlq.Queue implements it.
type DeadLetterer interface {
	Add(ctx context.Context, l *dlq.Letter) error
}

// Observer is told the outcome of every delivery the consumer settles.
// It must be cheap and safe for concurrent use (metrics, tests).
type Observer interface {
	Observe(o Outcome)
}

// Outcome describes one settled delivery.
type Outcome struct {
	Topic, Group string
	Message      *handoff.Message
	Attempt      int
	Result       Result
	Class        string // the dead-letter class when Result is DeadLettered
	Err          error
	Duration     time.Duration // handler time (zero when the handler did not run)
}

// Result is what the consumer did with a delivery.
type Result int

const (
	Acked        Result = iota // handled, acknowledged
	Retried                    // failed, rescheduled with the broker's delay
	DeadLettered               // stored as a dead letter, then acknowledged
)

func (r Result) String() string {
	switch r {
	case Acked:
		return "acked"
	case Retried:
		return "retried"
	case DeadLettered:
		return "dead-lettered"
	}
	return fmt.Sprintf("Result(%d)", int(r))
}

// Consumer runs a handler on one subscription. Create it with New, start it
// with Run.
type Consumer struct {
	sub          handoff.Subscriber
	topic, group string
	h            handoff.Handler
	dead         DeadLetterer

	workers      int
	maxInFlight  int
	maxAttempts  int
	backoff      backoff.Exponential
	ordered      bool
	maxSize      int
	drainTimeout time.Duration
	waitGrace    time.Duration
	timeout      time.Duration
	tracer       trace.Tracer
	system       string
	log          *slog.Logger
	observer     Observer
	batch        int
	validator    Validator
	graceSet     bool
}

// Validator checks a delivered message before its handler runs, for
// WithValidator. registry.Validator is one: it checks the data against the
// schema registered for the topic.
type Validator interface {
	// ValidateMessage returns nil for a valid message, an error marked with
	// handoff.Permanent for one that will never be valid, or another error
	// when it could not tell (the registry is down): the message is then
	// retried.
	ValidateMessage(ctx context.Context, topic string, m *handoff.Message) error
}

// WithValidator checks every message before its handler runs: one the
// validator refuses for good is dead-lettered with class "schema", and the
// handler never sees it.
func WithValidator(v Validator) Option {
	return func(c *Consumer) error {
		if v == nil {
			return errors.New("consumer: WithValidator: validator must not be nil")
		}
		c.validator = v
		return nil
	}
}

// Option configures a Consumer.
type Option func(*Consumer) error

// WithWorkers sets how many messages are handled at once (default 4×GOMAXPROCS).
// Messages of one partition key are still handled one at a time, in order.
func WithWorkers(n int) Option {
	return func(c *Consumer) error {
		if n < 1 {
			return fmt.Errorf("consumer: WithWorkers(%d): must be ≥ 1", n)
		}
		c.workers = n
		return nil
	}
}

// WithMaxInFlight bounds deliveries accepted and not yet settled, including
// those held back behind an earlier message of their key (default 1000).
// It is passed to the broker as Subscription.MaxInFlight.
func WithMaxInFlight(n int) Option {
	return func(c *Consumer) error {
		if n < 1 {
			return fmt.Errorf("consumer: WithMaxInFlight(%d): must be ≥ 1", n)
		}
		c.maxInFlight = n
		return nil
	}
}

// WithMaxAttempts sets how many times a message is handled before it is
// dead-lettered (default 5; 1 means no retry).
func WithMaxAttempts(n int) Option {
	return func(c *Consumer) error {
		if n < 1 {
			return fmt.Errorf("consumer: WithMaxAttempts(%d): must be ≥ 1", n)
		}
		c.maxAttempts = n
		return nil
	}
}

// WithBackoff sets the redelivery delays: exponential with full jitter,
// from initial up to max (defaults 1s and 5m).
func WithBackoff(initial, max time.Duration) Option {
	return func(c *Consumer) error {
		if initial <= 0 {
			return fmt.Errorf("consumer: WithBackoff: initial %v: must be > 0", initial)
		}
		if max < initial {
			return fmt.Errorf("consumer: WithBackoff: max %v: must be ≥ initial %v", max, initial)
		}
		c.backoff = backoff.Exponential{Initial: initial, Max: max, Multiplier: 2}
		return nil
	}
}

// WithBatchSize lets a worker hand up to n messages (the heads of n
// different partition keys) to the handler at once. The handler must
// implement handoff.BatchHandler (an inbox handler does: one transaction
// with a savepoint per message; so does a [Mux]): New refuses a batch size
// above 1 for one that does not, rather than batch nothing. Batches form
// only from messages already waiting, so batching adds no latency when the
// load is light. A handler timeout bounds a whole batch. Default 1.
func WithBatchSize(n int) Option {
	return func(c *Consumer) error {
		if n < 1 {
			return fmt.Errorf("consumer: WithBatchSize(%d): must be ≥ 1", n)
		}
		c.batch = n
		return nil
	}
}

// WithUnordered lets later messages of a key run while an earlier one waits
// for its retry, and several messages of one key run at once. New refuses it
// together with WithRedeliveryGrace, which only ordered keys use.
func WithUnordered() Option {
	return func(c *Consumer) error { c.ordered = false; return nil }
}

// WithMaxMessageSize dead-letters (class "too-large") any delivered message
// larger than n bytes without running the handler. Zero means no limit.
func WithMaxMessageSize(n int) Option {
	return func(c *Consumer) error {
		if n < 0 {
			return fmt.Errorf("consumer: WithMaxMessageSize(%d): must be ≥ 0", n)
		}
		c.maxSize = n
		return nil
	}
}

// WithDrainTimeout bounds how long Run waits, after its context is done, for
// running handlers to finish; after it their contexts are cancelled (default 30s).
func WithDrainTimeout(d time.Duration) Option {
	return func(c *Consumer) error {
		if d <= 0 {
			return fmt.Errorf("consumer: WithDrainTimeout(%v): must be > 0", d)
		}
		c.drainTimeout = d
		return nil
	}
}

// WithHandlerTimeout bounds each handler call (default: none).
func WithHandlerTimeout(d time.Duration) Option {
	return func(c *Consumer) error {
		if d <= 0 {
			return fmt.Errorf("consumer: WithHandlerTimeout(%v): must be > 0", d)
		}
		c.timeout = d
		return nil
	}
}

// WithRedeliveryGrace sets how long a key stays held for a message's
// redelivery beyond one and a half times its retry delay (brokers round
// delays up: RabbitMQ's delay buckets by up to 25%) before later messages of
// the key may run (default 30s). The redelivery may have gone to another
// member of the group.
func WithRedeliveryGrace(d time.Duration) Option {
	return func(c *Consumer) error {
		if d <= 0 {
			return fmt.Errorf("consumer: WithRedeliveryGrace(%v): must be > 0", d)
		}
		c.waitGrace = d
		c.graceSet = true
		return nil
	}
}

// WithTracerProvider sets where process spans go (default: the global provider).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *Consumer) error {
		if tp == nil {
			return errors.New("consumer: WithTracerProvider(nil): provider is required")
		}
		c.tracer = tp.Tracer(telemetry.ScopeName)
		return nil
	}
}

// WithSystem names the broker in spans as messaging.system (e.g. "nats").
func WithSystem(name string) Option {
	return func(c *Consumer) error { c.system = name; return nil }
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(c *Consumer) error {
		if l == nil {
			return errors.New("consumer: WithLogger(nil): logger is required")
		}
		c.log = l
		return nil
	}
}

// WithObserver sets a hook told the outcome of every delivery.
func WithObserver(o Observer) Option {
	return func(c *Consumer) error { c.observer = o; return nil }
}

// New returns a consumer that runs h on the messages of topic for group.
// dead receives every message that fails for good: after the last attempt, at
// once for handoff.Permanent errors, handler panics, undecodable, invalid,
// oversize and unknown-type messages. It is required: a message is never
// silently dropped.
func New(sub handoff.Subscriber, topic, group string, h handoff.Handler, dead DeadLetterer, opts ...Option) (*Consumer, error) {
	switch {
	case sub == nil:
		return nil, errors.New("consumer: subscriber is required")
	case topic == "":
		return nil, errors.New("consumer: topic is required")
	case group == "":
		return nil, errors.New("consumer: group is required")
	case group == dlq.RelayConsumer:
		return nil, fmt.Errorf("consumer: group %q is reserved: it names the relay's dead letters", group)
	case h == nil:
		return nil, errors.New("consumer: handler is required")
	case dead == nil:
		return nil, errors.New("consumer: dead-letter store is required: a message that fails for good must go somewhere")
	}
	c := &Consumer{
		sub: sub, topic: topic, group: group, h: h, dead: dead,
		workers:      4 * runtime.GOMAXPROCS(0),
		maxInFlight:  1000,
		maxAttempts:  5,
		backoff:      backoff.Exponential{Initial: time.Second, Max: 5 * time.Minute, Multiplier: 2},
		ordered:      true,
		drainTimeout: 30 * time.Second,
		waitGrace:    30 * time.Second,
		system:       "handoff",
		batch:        1,
		log:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	// An option that cannot take effect is a mistake to report, not to ignore.
	if _, ok := h.(handoff.BatchHandler); c.batch > 1 && !ok {
		return nil, fmt.Errorf("consumer: WithBatchSize(%d): handler %T does not implement handoff.BatchHandler, so nothing would be batched (inbox handlers and Mux do)", c.batch, h)
	}
	if !c.ordered && c.graceSet {
		return nil, errors.New("consumer: WithRedeliveryGrace: has no effect with WithUnordered (no key waits for a redelivery)")
	}
	if c.tracer == nil {
		c.tracer = telemetry.Tracer()
	}
	return c, nil
}

// Run subscribes and handles messages until ctx is done, then stops taking
// new deliveries, lets running handlers finish (up to the drain timeout),
// settles them, and returns nil. Deliveries accepted but not started are left
// unsettled, so the broker redelivers them: nothing acknowledged is lost and
// nothing unacknowledged is dropped.
func (c *Consumer) Run(ctx context.Context) error {
	subCtx, stopSub := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSub()
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()

	r := &run{
		c:         c,
		keys:      make(map[string]*keyq),
		slots:     make(chan struct{}, c.maxInFlight),
		firstFail: make(map[string]time.Time),
		stop:      ctx.Done(),
	}
	r.cond = sync.NewCond(&r.mu)
	var wg sync.WaitGroup
	for i := 0; i < c.workers; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); r.work(workCtx) }()
	}

	subErr := make(chan error, 1)
	go func() {
		subErr <- c.sub.Subscribe(subCtx, handoff.Subscription{Topic: c.topic, Group: c.group, MaxInFlight: c.maxInFlight}, r.deliver)
	}()

	var err error
	select {
	case <-ctx.Done():
	case err = <-subErr:
		subErr = nil
		if err != nil {
			err = fmt.Errorf("consumer %s: subscribe %s: %w", c.group, c.topic, err)
		}
	}
	// Drain: no new work starts; running handlers finish and settle.
	r.mu.Lock()
	r.closing = true
	r.cond.Broadcast()
	r.mu.Unlock()
	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(c.drainTimeout):
		c.log.Warn("drain timeout: cancelling running handlers", "group", c.group, "topic", c.topic)
		stopWork()
		<-drained
	}
	r.stopTimers()
	stopSub()
	if subErr != nil {
		if e := <-subErr; e != nil && err == nil && ctx.Err() == nil {
			err = fmt.Errorf("consumer %s: subscribe %s: %w", c.group, c.topic, e)
		}
	}
	return err
}

// run is the state of one Run call.
type run struct {
	c     *Consumer
	stop  <-chan struct{}
	slots chan struct{}

	mu        sync.Mutex
	cond      *sync.Cond
	closing   bool
	keys      map[string]*keyq // ordered keys with pending or held work
	readyq    []*keyq          // keys whose head can run now
	firstFail map[string]time.Time
	timers    map[*time.Timer]bool
}

// keyq holds one partition key's accepted deliveries, in order.
type keyq struct {
	key     string
	items   []item
	running bool   // a worker owns the key (or it is in readyq)
	waitFor string // id of a message of this key waiting for its redelivery
	timer   *time.Timer
}

type item struct {
	d    *handoff.Delivery
	slot bool // holds an in-flight slot
}

// deliver is the Subscriber's callback: it admits a delivery in order.
func (r *run) deliver(d *handoff.Delivery) {
	c := r.c
	key := ""
	if d.Message != nil {
		key = d.Message.PartitionKey
	}
	ordered := c.ordered && key != "" && d.Err == nil
	r.mu.Lock()
	if ordered {
		// The awaited redelivery of a held key is admitted without a slot,
		// so held messages can never starve the message they wait for.
		if kq := r.keys[key]; kq != nil && kq.waitFor != "" && kq.waitFor == d.Message.ID {
			kq.waitFor = ""
			if kq.timer != nil {
				kq.timer.Stop()
				delete(r.timers, kq.timer)
				kq.timer = nil
			}
			kq.items = append([]item{{d: d}}, kq.items...)
			r.schedule(kq)
			r.mu.Unlock()
			return
		}
	}
	r.mu.Unlock()

	select {
	case r.slots <- struct{}{}:
	case <-r.stop:
		return // left unsettled: the broker redelivers it
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		<-r.slots
		return
	}
	it := item{d: d, slot: true}
	if !ordered {
		r.readyq = append(r.readyq, &keyq{items: []item{it}, running: true})
		r.cond.Signal()
		return
	}
	kq := r.keys[key]
	if kq == nil {
		kq = &keyq{key: key}
		r.keys[key] = kq
	}
	kq.items = append(kq.items, it)
	r.schedule(kq)
}

// schedule makes kq runnable if it has work, nobody owns it and it is not
// held for a redelivery. r.mu must be held.
func (r *run) schedule(kq *keyq) {
	if kq.running || kq.waitFor != "" || len(kq.items) == 0 {
		return
	}
	kq.running = true
	r.readyq = append(r.readyq, kq)
	r.cond.Signal()
}

func (r *run) work(ctx context.Context) {
	_, canBatch := r.c.h.(handoff.BatchHandler)
	for {
		r.mu.Lock()
		for len(r.readyq) == 0 && !r.closing {
			r.cond.Wait()
		}
		if r.closing {
			r.mu.Unlock()
			return
		}
		n := 1
		if canBatch && r.c.batch > 1 {
			n = min(len(r.readyq), r.c.batch)
		}
		kqs := make([]*keyq, n)
		items := make([]item, n)
		for i := range kqs {
			kq := r.readyq[0]
			r.readyq[0] = nil
			r.readyq = r.readyq[1:]
			kqs[i], items[i] = kq, kq.items[0]
			kq.items = kq.items[1:]
		}
		r.mu.Unlock()

		var verdicts []verdict
		if n == 1 {
			res, delay := r.handle(ctx, items[0].d)
			verdicts = []verdict{{res, delay}}
		} else {
			ds := make([]*handoff.Delivery, n)
			for i, it := range items {
				ds[i] = it.d
			}
			verdicts = r.handleBatch(ctx, ds)
		}
		for _, it := range items {
			if it.slot {
				<-r.slots
			}
		}

		r.mu.Lock()
		for i, kq := range kqs {
			kq.running = false
			if kq.key == "" {
				continue
			}
			if id := items[i].d.Message.ID; verdicts[i].res == Retried && kq.waitFor == id {
				// Still awaited (it may already have come back): bound the hold.
				r.holdFor(kq, id, verdicts[i].delay+verdicts[i].delay/2+r.c.waitGrace)
			}
			if len(kq.items) == 0 && kq.waitFor == "" {
				delete(r.keys, kq.key)
			} else {
				r.schedule(kq)
			}
		}
		r.mu.Unlock()
	}
}

type verdict struct {
	res   Result
	delay time.Duration
}

// expect marks msg's key as held until msg is delivered again.
func (r *run) expect(msg *handoff.Message) {
	if !r.c.ordered || msg.PartitionKey == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if kq := r.keys[msg.PartitionKey]; kq != nil {
		kq.waitFor = msg.ID
	}
}

// holdFor releases kq's hold on id after d, in case the redelivery went to
// another member of the group or never comes. r.mu must be held.
func (r *run) holdFor(kq *keyq, id string, d time.Duration) {
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.timers, t)
		if kq.waitFor != id {
			return
		}
		r.c.log.Warn("redelivery did not arrive in time; releasing later messages of its key",
			"group", r.c.group, "key", kq.key, "id", id)
		kq.waitFor = ""
		kq.timer = nil
		if len(kq.items) == 0 {
			if r.keys[kq.key] == kq {
				delete(r.keys, kq.key)
			}
			return
		}
		r.schedule(kq)
	})
	kq.timer = t
	if r.timers == nil {
		r.timers = make(map[*time.Timer]bool)
	}
	r.timers[t] = true
}

func (r *run) stopTimers() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for t := range r.timers {
		t.Stop()
	}
	r.timers = nil
}

// handle runs the handler on one delivery and settles it. It returns what it
// did and, for a retry, the delay asked of the broker.
func (r *run) handle(ctx context.Context, d *handoff.Delivery) (Result, time.Duration) {
	if res, delay, bad := r.refuse(ctx, d); bad {
		return res, delay
	}
	hctx, span := r.span(ctx, d)
	defer span.End()
	if r.c.timeout > 0 {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(hctx, r.c.timeout)
		defer cancel()
	}
	start := time.Now()
	err, stack := safeHandle(hctx, r.c.h, d.Message)
	return r.settle(ctx, d, span, err, stack, time.Since(start))
}

// handleBatch runs a BatchHandler on deliveries of different keys and
// settles each by its own result. A panic in the batch handler rolls the
// batch back; its messages are then handled one at a time, so only the
// culprit is dead-lettered.
func (r *run) handleBatch(ctx context.Context, ds []*handoff.Delivery) []verdict {
	out := make([]verdict, len(ds))
	var msgs []*handoff.Message
	var idx []int
	for i, d := range ds {
		if res, delay, bad := r.refuse(ctx, d); bad {
			out[i] = verdict{res, delay}
			continue
		}
		msgs = append(msgs, d.Message)
		idx = append(idx, i)
	}
	if len(msgs) == 0 {
		return out
	}
	spans := make([]trace.Span, len(msgs))
	for j, i := range idx {
		_, spans[j] = r.span(ctx, ds[i])
		spans[j].SetAttributes(telemetry.AttrBatchCount.Int(len(msgs)))
	}
	hctx := ctx
	if r.c.timeout > 0 {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(ctx, r.c.timeout)
		defer cancel()
	}
	start := time.Now()
	errs, panicked := safeHandleBatch(hctx, r.c.h.(handoff.BatchHandler), msgs)
	took := time.Since(start)
	for j, i := range idx {
		if panicked {
			spans[j].End()
			res, delay := r.handle(ctx, ds[i])
			out[i] = verdict{res, delay}
			continue
		}
		var err error
		if j < len(errs) {
			err = errs[j]
		} else {
			err = fmt.Errorf("consumer: batch handler returned %d results for %d messages", len(errs), len(msgs))
		}
		res, delay := r.settle(ctx, ds[i], spans[j], err, "", took)
		spans[j].End()
		out[i] = verdict{res, delay}
	}
	return out
}

// refuse dead-letters a delivery the handler must not see: undecodable,
// invalid or oversize.
func (r *run) refuse(ctx context.Context, d *handoff.Delivery) (Result, time.Duration, bool) {
	if d.Message == nil {
		d.Message = &handoff.Message{}
	}
	if d.Err != nil {
		class := dlq.ClassDecode
		if errors.Is(d.Err, handoff.ErrInvalid) {
			class = dlq.ClassInvalid
		}
		return r.deadLetter(ctx, d, class, d.Err, "", 0), 0, true
	}
	if err := handoff.CheckSize(d.Message, r.c.maxSize); err != nil {
		return r.deadLetter(ctx, d, dlq.ClassTooLarge, err, "", 0), 0, true
	}
	if r.c.validator != nil {
		if err := r.c.validator.ValidateMessage(ctx, d.Topic, d.Message); err != nil {
			if handoff.IsPermanent(err) {
				return r.deadLetter(ctx, d, dlq.ClassSchema, err, "", 0), 0, true
			}
			// Could not tell: retry like a failed handler.
			res, delay := r.settle(ctx, d, trace.SpanFromContext(ctx), err, "", 0)
			return res, delay, true
		}
	}
	return 0, 0, false
}

// span starts the process span of a delivery, continuing the trace the
// message carries.
func (r *run) span(ctx context.Context, d *handoff.Delivery) (context.Context, trace.Span) {
	c, msg := r.c, d.Message
	pctx := telemetry.Extract(ctx, msg)
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			telemetry.AttrSystem.String(c.system),
			telemetry.AttrDestination.String(d.Topic),
			telemetry.AttrConsumerGroup.String(c.group),
			telemetry.AttrOperationType.String("process"),
			telemetry.AttrOperationName.String("process"),
			telemetry.AttrMessageID.String(msg.ID),
			telemetry.AttrBodySize.Int(len(msg.Data)),
			telemetry.AttrDeliveryAttempt.Int(d.Attempt),
		),
	}
	if sc := trace.SpanContextFromContext(pctx); sc.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	if msg.CorrelationID != "" {
		opts = append(opts, trace.WithAttributes(telemetry.AttrConversationID.String(msg.CorrelationID)))
	}
	return c.tracer.Start(pctx, "process "+d.Topic, opts...)
}

// settle acks, retries or dead-letters a delivery by its handler's result.
func (r *run) settle(ctx context.Context, d *handoff.Delivery, span trace.Span, err error, stack string, took time.Duration) (Result, time.Duration) {
	c, msg := r.c, d.Message
	if err == nil {
		r.forget(msg.ID)
		if aerr := d.Settler.Ack(ctx); aerr != nil {
			// The broker redelivers it; an inbox handler skips the duplicate.
			c.log.Error("ack failed", "group", c.group, "id", msg.ID, "err", aerr)
			span.RecordError(aerr)
		}
		r.observe(d, Acked, "", nil, took)
		return Acked, 0
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
	switch {
	case stack != "":
		return r.deadLetter(ctx, d, dlq.ClassPanic, err, stack, took), 0
	case errors.Is(err, ErrUnknownType):
		return r.deadLetter(ctx, d, dlq.ClassUnknownType, err, "", took), 0
	case handoff.IsPermanent(err):
		return r.deadLetter(ctx, d, dlq.ClassPermanent, err, "", took), 0
	case d.Attempt >= c.maxAttempts:
		return r.deadLetter(ctx, d, dlq.ClassHandler, err, "", took), 0
	}
	r.noteFailure(msg.ID)
	delay := c.backoff.Delay(d.Attempt)
	// Expect the redelivery before asking for it: it may arrive before
	// Retry returns, and must then go to the head of its key.
	r.expect(msg)
	if rerr := d.Settler.Retry(ctx, delay); rerr != nil {
		c.log.Error("retry failed; the broker will redeliver after its ack timeout", "group", c.group, "id", msg.ID, "err", rerr)
	}
	c.log.Debug("handler failed; retrying", "group", c.group, "id", msg.ID, "attempt", d.Attempt, "delay", delay, "err", err)
	r.observe(d, Retried, "", err, took)
	return Retried, delay
}

// deadLetter stores d as a dead letter, then acks it. If the store fails the
// delivery is retried instead, so it is never lost.
func (r *run) deadLetter(ctx context.Context, d *handoff.Delivery, class string, cause error, stack string, took time.Duration) Result {
	c := r.c
	now := time.Now().UTC()
	msg := d.Message
	if msg == nil {
		msg = &handoff.Message{}
	}
	first := r.forget(msg.ID)
	if first.IsZero() {
		first = now
	}
	l := &dlq.Letter{
		Consumer:     c.group,
		Topic:        d.Topic,
		Message:      msg,
		Class:        class,
		Errors:       dlq.Chain(cause),
		Stack:        stack,
		Attempts:     d.Attempt,
		FirstFailure: first,
		LastFailure:  now,
	}
	if err := c.dead.Add(ctx, l); err != nil {
		c.log.Error("dead-letter store failed; retrying the message instead", "group", c.group, "id", msg.ID, "err", err)
		if rerr := d.Settler.Retry(ctx, c.backoff.Delay(d.Attempt)); rerr != nil {
			c.log.Error("retry failed", "group", c.group, "id", msg.ID, "err", rerr)
		}
		r.observe(d, Retried, "", err, took)
		return Retried
	}
	c.log.Warn("message dead-lettered", "group", c.group, "topic", d.Topic, "id", msg.ID, "class", class, "err", cause)
	if err := d.Settler.Ack(ctx); err != nil {
		c.log.Error("ack after dead-lettering failed", "group", c.group, "id", msg.ID, "err", err)
	}
	r.observe(d, DeadLettered, class, cause, took)
	return DeadLettered
}

func (r *run) observe(d *handoff.Delivery, res Result, class string, err error, took time.Duration) {
	if r.c.observer == nil {
		return
	}
	r.c.observer.Observe(Outcome{Topic: d.Topic, Group: r.c.group, Message: d.Message, Attempt: d.Attempt,
		Result: res, Class: class, Err: err, Duration: took})
}

// noteFailure remembers when a message first failed in this process, for
// its dead letter's FirstFailure.
func (r *run) noteFailure(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.firstFail[id]; !ok && len(r.firstFail) < 100000 {
		r.firstFail[id] = time.Now().UTC()
	}
}

func (r *run) forget(id string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.firstFail[id]
	delete(r.firstFail, id)
	return t
}

// PanicError is the error recorded for a handler that panicked.
type PanicError struct{ Value any }

func (e *PanicError) Error() string { return fmt.Sprintf("consumer: handler panicked: %v", e.Value) }

func safeHandleBatch(ctx context.Context, h handoff.BatchHandler, msgs []*handoff.Message) (errs []error, panicked bool) {
	defer func() {
		if v := recover(); v != nil {
			panicked = true
		}
	}()
	return h.HandleBatch(ctx, msgs), false
}

func safeHandle(ctx context.Context, h handoff.Handler, msg *handoff.Message) (err error, stack string) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v}
			stack = string(debug.Stack())
		}
	}()
	return h.Handle(ctx, msg), ""
}
