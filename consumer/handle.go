package consumer

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/telemetry"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// handle runs the handler on one delivery and settles it. It returns what it
// did and, for a retry, the delay asked of the broker.
func (r *run) handle(ctx context.Context, d *handoff.Delivery) (Result, time.Duration) {
	if res, delay, bad := r.refuse(ctx, d); bad {
		return res, delay
	}
	hctx, span := r.span(ctx, d)
	defer span.End()
	// What the handler sends joins the message's conversation.
	hctx = handoff.ContextWithCause(hctx, d.Message)
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
	if panicked {
		for j, i := range idx {
			spans[j].End()
			res, delay := r.handle(ctx, ds[i])
			out[i] = verdict{res, delay}
		}
		return out
	}
	// The messages of a batch are of different keys, so their settlements
	// need no order among them: they run at once, and a batch costs about
	// one broker round trip to settle rather than one per message. All are
	// settled before handleBatch returns, so the next message of each key
	// still starts only after this one was settled.
	one := func(j int) {
		i := idx[j]
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
	var wg sync.WaitGroup
	for j := 1; j < len(idx); j++ {
		wg.Go(func() { one(j) })
	}
	one(0)
	wg.Wait()
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
		Errors:       dlq.DefaultClassifier.Chain(cause, class),
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
