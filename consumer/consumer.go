package consumer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/internal/backoff"
	"github.com/handoffhq/handoff/telemetry"
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
