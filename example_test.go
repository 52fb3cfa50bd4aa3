package handoff_test

import (
	"context"
	"fmt"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/dlq"
)

// The quick start: publish events, consume them with per-key order, and see a
// failing one land in the dead-letter store instead of blocking the rest.
// Swap memory for adapter/nats, adapter/kafka or adapter/rabbitmq, and the
// memory dead-letter store for adapter/postgres, sqlite or mysql.
func Example_quickStart() {
	ctx, cancel := context.WithCancel(context.Background())
	broker, _ := memory.NewBroker()
	deadLetters, _ := dlq.New(memory.NewDLQStore())

	handled := make(chan string)
	var mux consumer.Mux
	mux.On("order.placed", consumer.JSON(func(ctx context.Context, m *handoff.Message, o struct{ Order string }) error {
		if o.Order == "" {
			return handoff.Permanent(fmt.Errorf("order id missing"))
		}
		handled <- o.Order
		return nil
	}))
	c, err := consumer.New(broker, "orders", "shipping", &mux, deadLetters)
	if err != nil {
		panic(err)
	}
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()

	for _, body := range []string{`{"order":"o-1"}`, `{}`, `{"order":"o-2"}`} {
		m := handoff.NewMessage("/shop/orders", "order.placed", []byte(body))
		m.PartitionKey = "customer-7" // one customer's orders are handled in order
		if err := broker.Publish(ctx, "orders", m); err != nil {
			panic(err)
		}
	}
	fmt.Println("shipped", <-handled)
	fmt.Println("shipped", <-handled)

	letters, _ := deadLetters.List(ctx, dlq.Filter{Consumer: "shipping"})
	for _, l := range letters {
		fmt.Println("dead letter:", l.Class, l.Errors[len(l.Errors)-1])
	}
	cancel()
	fmt.Println("stopped:", <-done)
	// Output:
	// shipped o-1
	// shipped o-2
	// dead letter: permanent order id missing
	// stopped: <nil>
}
