package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/handoffhq/handoff"
)

// ErrUnknownType is matched by the error a Mux returns for a message type
// it has no handler for; the consumer dead-letters such a message with
// class "unknown-type".
var ErrUnknownType = errors.New("consumer: no handler for message type")

// Mux routes messages to handlers by their CloudEvents type.
// The zero value is ready to use. It is a handoff.BatchHandler: given a
// batch (consumer.WithBatchSize), it hands each route's messages to the
// route's handler together when that handler batches too (an inbox handler:
// one transaction for all of them), and one at a time otherwise.
type Mux struct {
	mu sync.RWMutex
	m  map[string]handoff.Handler
}

// On registers h for messages of type typ, replacing any earlier one.
func (x *Mux) On(typ string, h handoff.Handler) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.m == nil {
		x.m = make(map[string]handoff.Handler)
	}
	x.m[typ] = h
}

// Handle runs the handler registered for msg.Type, or returns a permanent
// error matching ErrUnknownType.
func (x *Mux) Handle(ctx context.Context, msg *handoff.Message) error {
	x.mu.RLock()
	h := x.m[msg.Type]
	x.mu.RUnlock()
	if h == nil {
		return handoff.Permanent(fmt.Errorf("%w %q", ErrUnknownType, msg.Type))
	}
	return h.Handle(ctx, msg)
}

// HandleBatch implements handoff.BatchHandler: the messages are grouped by
// type, each group goes to its route (as a batch when the route's handler
// is a handoff.BatchHandler), and the results come back in the order of
// msgs. A message of a type without a route gets ErrUnknownType, as in
// Handle.
func (x *Mux) HandleBatch(ctx context.Context, msgs []*handoff.Message) []error {
	errs := make([]error, len(msgs))
	type route struct {
		h   handoff.Handler
		idx []int
	}
	var order []string
	routes := make(map[string]*route)
	x.mu.RLock()
	for i, m := range msgs {
		r := routes[m.Type]
		if r == nil {
			h := x.m[m.Type]
			if h == nil {
				errs[i] = handoff.Permanent(fmt.Errorf("%w %q", ErrUnknownType, m.Type))
				continue
			}
			r = &route{h: h}
			routes[m.Type] = r
			order = append(order, m.Type)
		}
		r.idx = append(r.idx, i)
	}
	x.mu.RUnlock()
	for _, typ := range order {
		r := routes[typ]
		if bh, ok := r.h.(handoff.BatchHandler); ok && len(r.idx) > 1 {
			group := make([]*handoff.Message, len(r.idx))
			for j, i := range r.idx {
				group[j] = msgs[i]
			}
			res := bh.HandleBatch(ctx, group)
			for j, i := range r.idx {
				if j < len(res) {
					errs[i] = res[j]
				} else {
					errs[i] = fmt.Errorf("consumer: batch handler for %q returned %d results for %d messages", typ, len(res), len(group))
				}
			}
			continue
		}
		for _, i := range r.idx {
			errs[i] = r.h.Handle(ctx, msgs[i])
		}
	}
	return errs
}

// JSON adapts a function taking a decoded JSON value to a handoff.Handler.
// Data that does not decode into T is a permanent error (it would never
// decode on a retry).
func JSON[T any](fn func(ctx context.Context, msg *handoff.Message, v T) error) handoff.Handler {
	return handoff.HandlerFunc(func(ctx context.Context, msg *handoff.Message) error {
		var v T
		if err := json.Unmarshal(msg.Data, &v); err != nil {
			return handoff.Permanent(fmt.Errorf("consumer: decode %s data of %s: %w", msg.Type, msg.ID, err))
		}
		return fn(ctx, msg, v)
	})
}
