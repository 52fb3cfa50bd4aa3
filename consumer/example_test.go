package consumer_test

import (
	"context"
	"fmt"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/dlq"
)

// The package's call sequence: a consumer of a topic's group, run until its
// context is done.
func ExampleConsumer_Run() {
	ctx, cancel := context.WithCancel(context.Background())
	broker, _ := memory.NewBroker()
	deadLetters, _ := dlq.New(memory.NewDLQStore())
	handler := handoff.HandlerFunc(func(ctx context.Context, m *handoff.Message) error {
		fmt.Printf("billing %s\n", m.Data)
		cancel() // one message is enough here
		return nil
	})

	c, err := consumer.New(broker, "orders", "billing", handler, deadLetters)
	if err != nil {
		panic(err)
	}
	done := make(chan error)
	go func() {
		err = c.Run(ctx) // until ctx is done; drains in-flight work
		done <- err
	}()
	_ = broker.Publish(context.Background(), "orders", handoff.NewMessage("/orders", "order.placed", []byte(`{"order":"o-1"}`)))
	fmt.Println("stopped:", <-done)
	// Output:
	// billing {"order":"o-1"}
	// stopped: <nil>
}
