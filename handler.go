package handoff

import (
	"context"
	"errors"
)

// Handler consumes one message. Returning nil acknowledges it; an error
// wrapped with [Permanent] dead-letters it at once; any other error is retried
// with backoff, then dead-lettered after the last attempt.
type Handler interface {
	Handle(ctx context.Context, msg *Message) error
}

// HandlerFunc adapts a function to a [Handler].
type HandlerFunc func(ctx context.Context, msg *Message) error

// Handle calls f(ctx, msg).
func (f HandlerFunc) Handle(ctx context.Context, msg *Message) error { return f(ctx, msg) }

// PermanentError marks an error that retrying cannot fix.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string {
	if e.Err == nil {
		return "permanent error"
	}
	return e.Err.Error()
}
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so that the consumer dead-letters the message at once
// instead of retrying it. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err, or an error it wraps, was made by [Permanent].
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// BatchHandler handles several messages at once and reports one result per
// message, in order, with the meaning a Handler's return has. The consumer
// runtime uses it, when a handler has it and batching is on
// (consumer.WithBatchSize), to handle the heads of several partition keys
// together, e.g. in one database transaction with a savepoint per message
// (inbox.Inbox.Batch). Messages of one key are never in one batch together.
type BatchHandler interface {
	HandleBatch(ctx context.Context, msgs []*Message) []error
}
