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
// The zero value is ready to use.
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
