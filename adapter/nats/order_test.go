package nats

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/internal/testenv"
)

// A relay publishes a batch, and when Publish fails it publishes the same
// batch again, in order. The server restarts under it several times: a
// connection that drops mid-batch loses the tail of what it sent, and no
// later message of the batch may be stored on the next connection before
// that tail is sent again. The stream must hold each key's messages once
// each, in the order they were published.
func TestPublish_BatchesKeepKeyOrderAcrossServerRestarts(t *testing.T) {
	srv := embeddedServer(t)
	c, nc := connect(t, srv)
	ctx := context.Background()
	topic := testenv.Unique("order.")
	const keys, batch = 8, 50

	stop := make(chan struct{})
	var published, failures int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		next := make([]int, keys)
		for b := 0; ; b++ {
			select {
			case <-stop:
				return
			default:
			}
			msgs := make([]*handoff.Message, batch)
			for i := range msgs {
				k := (b*batch + i) % keys
				next[k]++
				data, _ := json.Marshal(map[string]int{"k": k, "n": next[k]})
				m := handoff.NewMessage("/order", "order.step", data)
				m.PartitionKey = fmt.Sprint(k)
				msgs[i] = m
			}
			for {
				pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				err := c.Publish(pctx, topic, msgs...)
				cancel()
				if err == nil {
					break
				}
				failures++
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond): // retry backoff, as a relay's
				}
			}
			published += batch
		}
	}()
	for i := 0; i < 5; i++ {
		time.Sleep(time.Duration(30+rand.IntN(120)) * time.Millisecond) // random moments mid-load
		before := nc.Stats().Reconnects
		if err := srv.emb.Restart(); err != nil {
			t.Fatal(err)
		}
		waitConnected(t, nc, before)
	}
	time.Sleep(100 * time.Millisecond) // some load after the last restart
	close(stop)
	wg.Wait()

	// Read the stream back in stream order.
	stream, err := c.js.Stream(ctx, streamOf(c, topic))
	if err != nil {
		t.Fatal(err)
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stored := int(info.State.Msgs)
	last := make([]int, keys)
	var outOfOrder []string
	for got := 0; got < stored; {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			got++
			var ev struct{ K, N int }
			if err := json.Unmarshal(m.Data(), &ev); err != nil {
				t.Fatalf("stream message %d: %v", got, err)
			}
			if ev.N != last[ev.K]+1 && len(outOfOrder) < 10 {
				outOfOrder = append(outOfOrder, fmt.Sprintf("key %d: n=%d after n=%d", ev.K, ev.N, last[ev.K]))
			}
			last[ev.K] = max(last[ev.K], ev.N)
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d messages published in batches of %d (%d failed tries), %d stored, across 5 server restarts", published, batch, failures, stored)
	if len(outOfOrder) > 0 {
		t.Errorf("stream order broken: %v", outOfOrder)
	}
	if stored < published {
		t.Errorf("stored %d of %d published messages", stored, published)
	}
}

func streamOf(c *Client, topic string) string {
	name, _ := c.streamFor(topic)
	return name
}
