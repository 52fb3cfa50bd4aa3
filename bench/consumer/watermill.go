package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/handoffhq/handoff/adapter/postgres"
)

func watermillMessage(cfg config, i int, ts int64) *message.Message {
	m := message.NewMessage(watermill.NewUUID(), payload(i, ts, cfg.size))
	m.Metadata.Set("partition_key", "k"+strconv.Itoa(i%cfg.keys))
	return m
}

// runWatermill runs Watermill's router with the in-memory Deduplicator in
// front of a handler doing the same insert in its own transaction, on the
// JetStream subscriber of watermill-nats/v2 pkg/nats (the package its
// authors recommend for production; pkg/jetstream is marked beta).
func runWatermill(ctx context.Context, w workload, s *sampler) error {
	db, err := postgres.Open(ctx, w.dsn) // same driver and pool as handoff's run
	if err != nil {
		return err
	}
	defer db.Close()

	pubConn, err := natsgo.Connect(w.cfg.natsURL)
	if err != nil {
		return err
	}
	defer pubConn.Close()
	js, err := jetstream.New(pubConn)
	if err != nil {
		return err
	}
	// The same stream settings as handoff's adapter creates.
	stream := strings.ReplaceAll(w.topic, ".", "_")
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: stream, Subjects: []string{w.topic}, Storage: jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld, Duplicates: 2 * time.Minute, Replicas: 1,
	}); err != nil {
		return fmt.Errorf("create stream %s: %w", stream, err)
	}
	defer js.DeleteStream(context.Background(), stream)

	marshaler := &wmnats.NATSMarshaler{}
	if w.rate == 0 { // throughput: publish everything first (async, like handoff's Publish of a batch)
		ts := time.Now().UnixNano()
		for i := 0; i < w.n; i++ {
			m := watermillMessage(w.cfg, i, ts)
			nm, err := marshaler.Marshal(w.topic, m)
			if err != nil {
				return err
			}
			nm.Header.Set(natsgo.MsgIdHdr, m.UUID)
			if _, err := js.PublishMsgAsync(nm); err != nil {
				return err
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(time.Minute):
			return errors.New("pre-publish: no acks after a minute")
		}
	}

	subConn, err := natsgo.Connect(w.cfg.natsURL)
	if err != nil {
		return err
	}
	defer subConn.Close()
	sub, err := wmnats.NewSubscriberWithNatsConn(subConn, wmnats.SubscriberSubscriptionConfig{
		Unmarshaler:      marshaler,
		SubscribersCount: w.cfg.workers, // concurrent push subscriptions of one queue group
		AckWaitTimeout:   30 * time.Second,
		CloseTimeout:     30 * time.Second,
		QueueGroupPrefix: "bench",
		JetStream: wmnats.JetStreamConfig{
			DurablePrefix: "bench", // durable consumer, shared by the queue group
			SubscribeOptions: []natsgo.SubOpt{
				natsgo.DeliverAll(), natsgo.AckExplicit(), natsgo.MaxAckPending(w.cfg.inflight),
			},
			AckAsync: false, // AckSync: wait for the server to confirm the ack, like handoff
		},
	}, watermill.NopLogger{})
	if err != nil {
		return err
	}
	pub, err := wmnats.NewPublisherWithNatsConn(pubConn, wmnats.PublisherPublishConfig{
		Marshaler:         marshaler,
		SubjectCalculator: wmnats.DefaultSubjectCalculator,
		JetStream:         wmnats.JetStreamConfig{TrackMsgId: true},
	}, watermill.NopLogger{})
	if err != nil {
		return err
	}

	repo, err := middleware.NewMapExpiringKeyRepository(10 * time.Minute)
	if err != nil {
		return err
	}
	dedup := &middleware.Deduplicator{
		// By message id, as handoff's inbox. The default hashes the payload
		// with Adler-32, which collides on these similar payloads.
		KeyFactory: func(m *message.Message) (string, error) { return m.UUID, nil },
		Repository: repo,
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 30 * time.Second}, watermill.NopLogger{})
	if err != nil {
		return err
	}
	router.AddMiddleware(dedup.Middleware)
	router.AddConsumerHandler("bench", w.topic, sub, func(msg *message.Message) error {
		ctx := msg.Context()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, insertRow, msg.UUID, []byte(msg.Payload)); err != nil {
			_ = tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		w.rec.committed(msg.Payload)
		return nil
	})

	s.start()
	ran := make(chan error, 1)
	go func() { ran <- router.Run(ctx) }()
	select {
	case <-router.Running():
	case err := <-ran:
		return fmt.Errorf("router: %w", err)
	}
	if w.rate > 0 {
		err := pace(ctx, w.n, w.rate, func(i int) error {
			return pub.Publish(w.topic, watermillMessage(w.cfg, i, time.Now().UnixNano()))
		})
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	werr := w.rec.wait(ctx, 30*time.Second)
	s.stop()
	cerr := router.Close()
	if err := <-ran; err != nil {
		cerr = errors.Join(cerr, err)
	}
	return errors.Join(werr, cerr)
}
