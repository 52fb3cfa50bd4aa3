package dlq_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/dlq"
)

// printer is a broker that prints what it would send.
type printer struct{}

func (printer) Publish(ctx context.Context, topic string, msgs ...*handoff.Message) error {
	return printer{}.Redeliver(ctx, topic, "", msgs...)
}

func (printer) Redeliver(ctx context.Context, topic, group string, msgs ...*handoff.Message) error {
	for _, m := range msgs {
		fmt.Printf("sent to group %q of %s: %s (replaycount %s)\n", group, topic, m.Data, m.Extensions[dlq.ExtReplayCount])
	}
	return nil
}

func Example() {
	ctx := context.Background()
	q, err := dlq.New(memory.NewDLQStore(), dlq.WithAlerter(dlq.AlerterFunc(func(ctx context.Context, l *dlq.Letter) {
		fmt.Println("alert: first dead letter for", l.Consumer)
	})))
	if err != nil {
		panic(err)
	}

	// The consumer runtime gives up on a message.
	msg := handoff.NewMessage("/orders", "com.example.order.placed", []byte(`{"qty":-1}`))
	cause := handoff.Permanent(fmt.Errorf("validate order: %w", errors.New("qty must be positive")))
	_ = q.Add(ctx, &dlq.Letter{Consumer: "billing", Topic: "orders", Message: msg,
		Class: dlq.ClassPermanent, Errors: dlq.Chain(cause), Attempts: 1})

	// An operator inspects, fixes and replays it.
	open, _ := q.List(ctx, dlq.Filter{Consumer: "billing", State: dlq.StateOpen})
	l := open[0]
	fmt.Printf("%s: %q\n", l.Class, l.Errors)
	var invalid *handoff.ValidationError
	if err := q.Edit(ctx, l.ID, []byte(`{"qty":}`), ""); errors.As(err, &invalid) {
		fmt.Println("refused:", invalid.Attribute, invalid.Rule)
	}
	_ = q.Edit(ctx, l.ID, []byte(`{"qty":1}`), "")
	_ = q.Replay(ctx, printer{}, l.ID)
	err = q.Replay(ctx, printer{}, l.ID)
	fmt.Println(errors.Is(err, dlq.ErrAlreadyReplayed))
	// Output:
	// alert: first dead letter for billing
	// permanent: ["validate order: qty must be positive" "qty must be positive"]
	// refused: data must be valid JSON for datacontenttype application/json (invalid character '}' looking for beginning of value at byte 8)
	// sent to group "billing" of orders: {"qty":1} (replaycount 1)
	// true
}

// The package's call sequence: an operator lists a consumer's open letters,
// fixes one and replays it.
func ExampleQueue_Replay() {
	ctx := context.Background()
	store := memory.NewDLQStore()
	pager := dlq.AlerterFunc(func(ctx context.Context, l *dlq.Letter) { fmt.Println("page: first dead letter for", l.Consumer) })
	publisher := printer{}
	q, err := dlq.New(store, dlq.WithAlerter(pager))
	if err != nil {
		panic(err)
	}
	_ = q.Add(ctx, &dlq.Letter{Consumer: "billing", Topic: "orders", Class: dlq.ClassPermanent, Attempts: 1,
		Message: handoff.NewMessage("/orders", "order.placed", []byte(`{"qty":-1}`))})

	letters, err := q.List(ctx, dlq.Filter{Consumer: "billing", State: dlq.StateOpen})
	if err != nil {
		panic(err)
	}
	fixedJSON := []byte(`{"qty":1}`)
	err = q.Edit(ctx, letters[0].ID, fixedJSON, "application/json")
	if err != nil {
		panic(err)
	}
	err = q.Replay(ctx, publisher, letters[0].ID)
	fmt.Println(err)
	// Output:
	// page: first dead letter for billing
	// sent to group "billing" of orders: {"qty":1} (replaycount 1)
	// <nil>
}

// The dead-letter HTTP API mounted under a prefix.
func ExampleNewHandler() {
	ctx := context.Background()
	q, _ := dlq.New(memory.NewDLQStore())
	_ = q.Add(ctx, &dlq.Letter{Consumer: "billing", Topic: "orders", Class: dlq.ClassPermanent, Attempts: 1,
		Message: handoff.NewMessage("/orders", "order.placed", []byte(`{"qty":-1}`))})

	mux := http.NewServeMux()
	h, err := dlq.NewHandler(q)
	if err != nil {
		panic(err)
	}
	mux.Handle("/dead-letters/", http.StripPrefix("/dead-letters", h))

	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/dead-letters/")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var letters []struct{ Consumer, Topic, State string }
	_ = json.NewDecoder(resp.Body).Decode(&letters)
	fmt.Println(resp.StatusCode, letters)
	// Output:
	// 200 [{billing orders open}]
}
