package nats

import (
	"context"
	"testing"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/internal/testenv"
)

// BenchmarkPublish measures one Publish call of 100 messages, acknowledged.
func BenchmarkPublish(b *testing.B) {
	for _, s := range servers {
		b.Run(s.name, func(b *testing.B) {
			c, _ := connect(b, s.start(b))
			topic := testenv.Unique("bench.")
			msgs := make([]*handoff.Message, 100)
			for i := range msgs {
				msgs[i] = msg(i)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				for _, m := range msgs {
					m.ID = handoff.NewID()
				}
				if err := c.Publish(ctx, topic, msgs...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(msgs))/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
