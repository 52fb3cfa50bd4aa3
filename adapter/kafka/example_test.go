package kafka_test

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/kafka"
)

// A message published, retried once through the retry topic, and acked.
// The broker is kfake, franz-go's in-process Kafka.
func Example() {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cluster.Close()

	c, err := kafka.New(cluster.ListenAddrs(), kafka.WithCreateTopics(3, -1))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m := handoff.NewMessage("/orders", "com.example.order.placed", []byte(`{"order":"o-1"}`))
	m.PartitionKey = "customer-42"
	if err := c.Publish(ctx, "orders", m); err != nil {
		fmt.Println(err)
		return
	}

	sub := handoff.Subscription{Topic: "orders", Group: "billing"}
	err = c.Subscribe(ctx, sub, func(d *handoff.Delivery) {
		fmt.Println(d.Message.Type, d.Message.PartitionKey, "attempt", d.Attempt)
		if d.Attempt == 1 {
			d.Settler.Retry(ctx, 10*time.Millisecond)
			return
		}
		d.Settler.Ack(ctx)
		cancel() // stop subscribing
	})
	fmt.Println("subscribe returned", err)
	// Output:
	// com.example.order.placed customer-42 attempt 1
	// com.example.order.placed customer-42 attempt 2
	// subscribe returned <nil>
}

// The package's minimal use against a cluster (not run here; Example runs
// the same on an in-process fake cluster).
func ExampleNew() {
	ctx := context.Background()
	msg := handoff.NewMessage("/orders", "order.placed", []byte(`{"order":"o-1"}`))
	deliver := func(d *handoff.Delivery) { _ = d.Settler.Ack(ctx) }

	c, err := kafka.New([]string{"kafka-1:9092"}) // nothing connects yet
	if err != nil {
		panic(err)
	}
	defer c.Close()
	err = c.Publish(ctx, "orders", msg) // returns once acked by all in-sync replicas
	if err != nil {
		panic(err)
	}
	err = c.Subscribe(ctx, handoff.Subscription{Topic: "orders", Group: "billing"}, deliver)
	if err != nil {
		panic(err)
	}
}
