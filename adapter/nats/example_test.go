package nats_test

import (
	"context"
	"fmt"
	"os"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/nats"
	"github.com/handoffhq/handoff/adapter/natsserver"
)

// Publish and consume on an embedded JetStream server, as handoff dev does.
func Example() {
	dir, err := os.MkdirTemp("", "handoff-nats-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	srv, err := natsserver.Start(dir) // its own free port on 127.0.0.1
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Shutdown()

	nc, err := nats.Connect(srv.URL())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()
	client, err := nats.New(nc)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := handoff.NewMessage("/orders", "com.example.order.placed", []byte(`{"order":"o-1"}`))
	m.PartitionKey = "customer-42"
	if err := client.Publish(ctx, "orders.placed", m); err != nil {
		fmt.Println(err)
		return
	}

	sub := handoff.Subscription{Topic: "orders.placed", Group: "billing"}
	err = client.Subscribe(ctx, sub, func(d *handoff.Delivery) {
		fmt.Println(d.Message.Type, d.Message.PartitionKey, string(d.Message.Data), "attempt", d.Attempt)
		if err := d.Settler.Ack(ctx); err != nil {
			fmt.Println(err)
		}
		cancel()
	})
	fmt.Println("subscribe returned", err)
	fmt.Println("stream", client.StreamName("orders.placed"))
	// Output:
	// com.example.order.placed customer-42 {"order":"o-1"} attempt 1
	// subscribe returned <nil>
	// stream orders_placed_ba80ef17
}

// The package's minimal use against a NATS server (not run here; Example
// runs the same on an embedded server).
func ExampleNew() {
	ctx := context.Background()
	msg := handoff.NewMessage("/orders", "order.placed", []byte(`{"order":"o-1"}`))
	deliver := func(d *handoff.Delivery) { _ = d.Settler.Ack(ctx) }

	nc, _ := nats.Connect("nats://127.0.0.1:4222") // reconnects forever
	client, _ := nats.New(nc)
	_ = client.Publish(ctx, "orders.placed", msg)
	_ = client.Subscribe(ctx, handoff.Subscription{Topic: "orders.placed", Group: "billing"}, deliver)
}
