package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/kafka"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/adapter/rabbitmq"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/internal/testenv"
)

// subscriber is what the test needs of a broker client.
type subscriber interface {
	handoff.Publisher
	Subscribe(ctx context.Context, s handoff.Subscription, fn func(*handoff.Delivery)) error
}

// handoff serve on PostgreSQL with each external broker: the broker is in
// its readiness, and a consumer group's dead letter replayed through
// serve's API with the CLI reaches that group, with its replay marks.
func TestServe_ReplaysThroughEachBroker(t *testing.T) {
	for _, b := range []struct {
		name   string
		broker func(t *testing.T) (url string, client subscriber)
	}{
		{"nats", func(t *testing.T) (string, subscriber) { return embeddedNATS(t) }},
		{"kafka", func(t *testing.T) (string, subscriber) {
			cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cluster.Close)
			c, err := kafka.New(cluster.ListenAddrs(), kafka.WithCreateTopics(1, -1))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return "kafka://" + strings.Join(cluster.ListenAddrs(), ","), c
		}},
		{"rabbitmq", func(t *testing.T) (string, subscriber) {
			url := testenv.RabbitMQURL(t)
			c, err := rabbitmq.New(url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return url, c
		}},
	} {
		t.Run(b.name, func(t *testing.T) {
			pg := testenv.PostgresURL(t)
			url, client := b.broker(t)
			base, _ := startServe(t, "--db", pg, "--broker", url, "--token", "tok")
			if code, body := httpCall(t, "GET", base+"/readyz", "tok", "", nil); code != http.StatusOK || !strings.Contains(body, `"broker"`) {
				t.Fatalf("readyz: %d %s", code, body)
			}

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			topic, group := testenv.Unique("orders-"), "billing"
			var mu sync.Mutex
			var got []*handoff.Message
			wake := make(chan struct{}, 1)
			subDone := make(chan struct{})
			go func() {
				defer close(subDone)
				client.Subscribe(ctx, handoff.Subscription{Topic: topic, Group: group}, func(d *handoff.Delivery) {
					mu.Lock()
					got = append(got, d.Message)
					mu.Unlock()
					d.Settler.Ack(ctx)
					select {
					case wake <- struct{}{}:
					default:
					}
				})
			}()
			defer func() { cancel(); <-subDone }()
			wait := func(n int) []*handoff.Message {
				t.Helper()
				deadline := time.After(60 * time.Second)
				for {
					mu.Lock()
					out := append([]*handoff.Message(nil), got...)
					mu.Unlock()
					if len(out) >= n {
						return out
					}
					select {
					case <-wake:
					case <-deadline:
						t.Fatalf("the group received %d messages, want %d", len(out), n)
					}
				}
			}
			// The group is subscribed once it has what was published (a
			// RabbitMQ publish is refused until the group's queue is bound).
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				err := client.Publish(ctx, topic, handoff.NewMessage("/test", "probe", []byte(`{}`)))
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal(err)
				}
			}
			wait(1)

			db, err := postgres.Open(ctx, pg)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			q, _ := dlq.New(postgres.DLQStore(db))
			l := &dlq.Letter{Consumer: group, Topic: topic, Errors: []string{"boom"},
				Message: handoff.NewMessage("/orders", "order.placed", []byte(`{"id":7}`))}
			if err := q.Add(ctx, l); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			if err := run(ctx, []string{"dlq", "replay", "--all", "--consumer", group, "--topic", topic, "--server", base, "--token", "tok"}, nil, &out, &errb); err != nil {
				t.Fatalf("replay: %v\n%s", err, errb.String())
			}
			if !strings.Contains(out.String(), "replayed 1") {
				t.Fatalf("replay: %s", out.String())
			}
			m := wait(2)[1]
			if m.ID != l.Message.ID || m.Extensions[dlq.ExtReplayOf] != l.ID || string(m.Data) != `{"id":7}` {
				t.Fatalf("received %+v, want the letter's message marked as its replay", m)
			}
		})
	}
}
