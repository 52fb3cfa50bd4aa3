package handoff_test

import (
	"context"
	"testing"

	"github.com/handoffhq/handoff"
)

// A message sent under a handler's context joins the conversation of the
// message handled, unless it set its own ids; an uncorrelated cause passes
// on only its id.
func TestCorrelate_FromTheCause(t *testing.T) {
	in := handoff.NewMessage("/a", "a", nil)
	in.CorrelationID = "conv-1"
	ctx := handoff.ContextWithCause(context.Background(), in)
	out := handoff.NewMessage("/b", "b", nil)
	handoff.Correlate(ctx, out)
	if out.CorrelationID != "conv-1" || out.CausationID != in.ID {
		t.Fatalf("got correlation %q causation %q", out.CorrelationID, out.CausationID)
	}
	own := handoff.NewMessage("/b", "b", nil)
	own.CorrelationID, own.CausationID = "mine", "cause"
	handoff.Correlate(ctx, own)
	if own.CorrelationID != "mine" || own.CausationID != "cause" {
		t.Fatalf("own ids overwritten: %q %q", own.CorrelationID, own.CausationID)
	}
	bare := handoff.NewMessage("/a", "a", nil)
	out = handoff.NewMessage("/b", "b", nil)
	handoff.Correlate(handoff.ContextWithCause(context.Background(), bare), out)
	if out.CorrelationID != "" || out.CausationID != bare.ID {
		t.Fatalf("uncorrelated cause: got %q %q", out.CorrelationID, out.CausationID)
	}
	out = handoff.NewMessage("/b", "b", nil)
	handoff.Correlate(handoff.ContextWithCorrelation(context.Background(), "req-9"), out)
	if c, k := handoff.CorrelationFromContext(handoff.ContextWithCorrelation(context.Background(), "req-9")); c != "req-9" || k != "" || out.CorrelationID != "req-9" || out.CausationID != "" {
		t.Fatalf("ContextWithCorrelation: %q %q, message %q %q", c, k, out.CorrelationID, out.CausationID)
	}
}
