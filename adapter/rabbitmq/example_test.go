package rabbitmq_test

import (
	"context"
	"fmt"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/rabbitmq"
)

// Provision a group, publish to its topic and consume it. (It needs a
// RabbitMQ server, so it is compiled but not run by go test.)
func Example() {
	b, err := rabbitmq.New("amqp://guest:guest@127.0.0.1:5672/",
		rabbitmq.WithConnectionName("billing"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub := handoff.Subscription{Topic: "orders", Group: "billing", MaxInFlight: 64}
	// Without a bound queue RabbitMQ drops messages; the adapter reports them
	// as rabbitmq.ErrUnroutable. Provision the group first.
	if err := b.Provision(ctx, sub); err != nil {
		fmt.Println(err)
		return
	}
	m := handoff.NewMessage("/orders", "com.example.order.placed", []byte(`{"order":"o-1"}`))
	m.PartitionKey = "customer-42"
	if err := b.Publish(ctx, sub.Topic, m); err != nil { // returns after the publisher confirm
		fmt.Println(err)
		return
	}
	err = b.Subscribe(ctx, sub, func(d *handoff.Delivery) {
		if d.Attempt == 1 {
			// Comes back through a delay queue (TTL + dead-lettering) with Attempt 2.
			_ = d.Settler.Retry(ctx, time.Second)
			return
		}
		fmt.Println(d.Message.Type, d.Message.PartitionKey, "attempt", d.Attempt)
		_ = d.Settler.Ack(ctx)
		cancel()
	})
	fmt.Println("subscribe returned", err)
}

// The package's minimal use (it needs a RabbitMQ server, so it is not run).
func ExampleNew() {
	ctx := context.Background()
	msg := handoff.NewMessage("/orders", "order.placed", []byte(`{"order":"o-1"}`))
	deliver := func(d *handoff.Delivery) { _ = d.Settler.Ack(ctx) }

	b, _ := rabbitmq.New("amqp://guest:guest@127.0.0.1:5672/")
	defer b.Close()
	sub := handoff.Subscription{Topic: "orders", Group: "billing"}
	_ = b.Provision(ctx, sub) // before the first publish: see below
	_ = b.Publish(ctx, "orders", msg)
	_ = b.Subscribe(ctx, sub, deliver) // usually via the consumer runtime
}
