package handofftest

import (
	"context"
	"fmt"
	"testing"

	"github.com/handoffhq/handoff"
)

// DuplicateDeliveryMarker starts the line DuplicateDelivery logs. `go test
// -json` carries the line in the test's output, and `handoff check` reads it
// there as evidence that the consumer it names has a passing
// duplicate-delivery test.
const DuplicateDeliveryMarker = "handofftest: duplicate-delivery"

// Effects counts the effects of a consumer's handler so far: the rows it
// wrote, the calls it made, the messages it published.
type Effects func(ctx context.Context) (int, error)

// DuplicateDelivery delivers msg to h twice, as a broker does when an ack
// is lost and it redelivers, and fails t unless both deliveries were
// acknowledged (h returned nil) and the two together had exactly one
// effect: one after the first, none more after the second. consumer names
// the consuming service as handoff.yaml does; the line logged names it, so
// that `handoff check` finds the run in a `go test -json` report.
//
// Each delivery gets its own copy of msg with the same id, as a
// redelivery has.
func DuplicateDelivery(t testing.TB, consumer string, h handoff.Handler, msg *handoff.Message, effects Effects) {
	t.Helper()
	if consumer == "" || h == nil || msg == nil || effects == nil {
		t.Fatalf("%s: consumer, handler, message and effects are required", DuplicateDeliveryMarker)
		return
	}
	t.Logf("%s consumer=%s message=%s", DuplicateDeliveryMarker, consumer, msg.ID)
	ctx := context.Background()
	count := func(when string) int {
		t.Helper()
		n, err := effects(ctx)
		if err != nil {
			t.Fatalf("%s consumer=%s: counting effects %s: %v", DuplicateDeliveryMarker, consumer, when, err)
		}
		return n
	}
	before := count("before the first delivery")
	for i, when := range []string{"first", "second"} {
		if err := h.Handle(ctx, msg.Clone()); err != nil {
			t.Fatalf("%s consumer=%s: %s delivery of %s was not acknowledged: %v", DuplicateDeliveryMarker, consumer, when, msg.ID, err)
		}
		got := count("after the " + when + " delivery")
		want := before + 1
		if got != want {
			what := fmt.Sprintf("%d effects", got-before)
			if i == 1 {
				t.Fatalf("%s consumer=%s: the duplicate of %s had an effect: %s in all, want 1", DuplicateDeliveryMarker, consumer, msg.ID, what)
			}
			t.Fatalf("%s consumer=%s: the first delivery of %s had %s, want 1", DuplicateDeliveryMarker, consumer, msg.ID, what)
		}
	}
}
