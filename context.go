package handoff

import "context"

type conversationKey struct{}

// conversation is what a context carries of the message being handled.
type conversation struct{ correlation, causation string }

// ContextWithCause returns ctx carrying m as the cause of what is sent
// under it: a message written to the outbox under the returned context
// (and a saga started under it) joins m's conversation: it gets m's
// correlation id and m's id as its causation id, unless it set its own.
// The consumer runtime and the inbox do this for every handler, so events
// published in a handler carry the incoming correlation id without a line
// of code. A message without a correlation id passes on only its id as
// the cause: a conversation is traced from a first message that has one
// (see ContextWithCorrelation).
func ContextWithCause(ctx context.Context, m *Message) context.Context {
	if m == nil || m.ID == "" {
		return ctx
	}
	return context.WithValue(ctx, conversationKey{}, conversation{correlation: m.CorrelationID, causation: m.ID})
}

// ContextWithCorrelation returns ctx carrying the correlation id id, with
// no causing message: for the start of a conversation outside any handler
// (an HTTP request with a correlation header, a scheduled job). An empty
// id leaves ctx as it is.
func ContextWithCorrelation(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, conversationKey{}, conversation{correlation: id})
}

// CorrelationFromContext returns the correlation id and the causation id
// (the id of the message being handled) ctx carries, "" when none.
func CorrelationFromContext(ctx context.Context) (correlationID, causationID string) {
	c, _ := ctx.Value(conversationKey{}).(conversation)
	return c.correlation, c.causation
}

// Correlate fills m's correlation and causation ids from ctx where m has
// none (see ContextWithCause). The outbox writer calls it on every message.
func Correlate(ctx context.Context, m *Message) {
	if m == nil {
		return
	}
	corr, cause := CorrelationFromContext(ctx)
	if m.CorrelationID == "" {
		m.CorrelationID = corr
	}
	if m.CausationID == "" && cause != "" && cause != m.ID {
		m.CausationID = cause
	}
}
