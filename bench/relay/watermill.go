package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	wmsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/postgres"
)

// watermillSys is Watermill's path: the watermill-sql PostgreSQL publisher
// on the business transaction, wrapped by the forwarder's publisher (the
// outbox), the forwarder moving the rows to watermill-nats/v2 JetStream, and
// a Watermill router consuming with a dedup table on the second database.
type watermillSys struct {
	cfg      config
	sp       *space
	tr       *tracker
	db       *sql.DB
	schema   wmsql.DefaultPostgreSQLSchema
	fwdTopic string
	nc       *natsgo.Conn
	streamN  string
	stops    []func() error
}

func newWatermill(ctx context.Context, cfg config, sp *space, tr *tracker) (system, error) {
	db, err := postgres.Open(ctx, sp.prodDSN) // the same driver and pool as handoff's
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(cfg.writers + 4)
	w := &watermillSys{cfg: cfg, sp: sp, tr: tr, db: db, fwdTopic: "fwd_" + sp.name,
		streamN: strings.ReplaceAll(sp.topic, ".", "_")}
	// The outbox table (and the offsets table), created up front.
	sub, err := w.sqlSubscriber()
	if err != nil {
		db.Close()
		return nil, err
	}
	if err := sub.SubscribeInitialize(w.fwdTopic); err != nil {
		db.Close()
		return nil, fmt.Errorf("watermill: initialize %s: %w", w.fwdTopic, err)
	}
	sub.Close()
	if w.nc, err = natsgo.Connect(cfg.nats); err != nil {
		db.Close()
		return nil, err
	}
	js, err := jetstream.New(w.nc)
	if err != nil {
		w.nc.Close()
		db.Close()
		return nil, err
	}
	// The same stream settings as handoff's adapter creates.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: w.streamN, Subjects: []string{sp.topic}, Storage: jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld, Duplicates: 2 * time.Minute, Replicas: 1,
	}); err != nil {
		w.nc.Close()
		db.Close()
		return nil, fmt.Errorf("create stream %s: %w", w.streamN, err)
	}
	return w, nil
}

func (w *watermillSys) name() string { return "watermill" }

func (w *watermillSys) stream() string { return w.streamN }

func (w *watermillSys) sqlSubscriber() (*wmsql.Subscriber, error) {
	return wmsql.NewSubscriber(w.db, wmsql.SubscriberConfig{
		SchemaAdapter:    w.schema,
		OffsetsAdapter:   wmsql.DefaultPostgreSQLOffsetsAdapter{},
		InitializeSchema: true,
		PollInterval:     w.cfg.wmPoll,
	}, watermill.NopLogger{})
}

func (w *watermillSys) message(seq int64) (*message.Message, string) {
	key := "k" + strconv.FormatInt(seq%int64(w.cfg.keys), 10)
	m := message.NewMessage(handoff.NewID(), payload(key, seq, w.cfg.size))
	m.Metadata.Set("partition_key", key)
	return m, key
}

// outboxPublisher is Watermill's outbox: a SQL publisher on the
// transaction, wrapped in the forwarder's envelope.
func (w *watermillSys) outboxPublisher(tx *sql.Tx) (message.Publisher, error) {
	p, err := wmsql.NewPublisher(tx, wmsql.PublisherConfig{SchemaAdapter: w.schema}, watermill.NopLogger{})
	if err != nil {
		return nil, err
	}
	return forwarder.NewPublisher(p, forwarder.PublisherConfig{ForwarderTopic: w.fwdTopic}), nil
}

func (w *watermillSys) commit(ctx context.Context, seq int64) error {
	m, key := w.message(seq)
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO bench_orders (id, k, n) VALUES ($1, $2, $3)`, m.UUID, key, seq); err != nil {
		tx.Rollback()
		return err
	}
	pub, err := w.outboxPublisher(tx)
	if err != nil {
		tx.Rollback()
		return err
	}
	if err := pub.Publish(w.sp.topic, m); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	w.tr.commit(m.UUID)
	return nil
}

func (w *watermillSys) fill(ctx context.Context, n int64, per int) error {
	var next atomic.Int64
	return produce(ctx, w.cfg.fillWriters, 0, 0, (n+int64(per)-1)/int64(per), func(ctx context.Context, _ int64) error {
		tx, err := w.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		var msgs []*message.Message
		for range per {
			seq := next.Add(1) - 1
			if seq >= n {
				break
			}
			m, key := w.message(seq)
			if _, err := tx.ExecContext(ctx, `INSERT INTO bench_orders (id, k, n) VALUES ($1, $2, $3)`, m.UUID, key, seq); err != nil {
				tx.Rollback()
				return err
			}
			msgs = append(msgs, m)
		}
		pub, err := w.outboxPublisher(tx)
		if err != nil {
			tx.Rollback()
			return err
		}
		if err := pub.Publish(w.sp.topic, msgs...); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		for _, m := range msgs {
			w.tr.commit(m.UUID)
		}
		return nil
	})
}

// startRelay runs the forwarder: SQL subscriber on the outbox table →
// watermill-nats/v2 JetStream publisher (synchronous PubAck per message).
func (w *watermillSys) startRelay(ctx context.Context) error {
	sub, err := w.sqlSubscriber()
	if err != nil {
		return err
	}
	nc, err := natsgo.Connect(w.cfg.nats)
	if err != nil {
		return err
	}
	pub, err := wmnats.NewPublisherWithNatsConn(nc, wmnats.PublisherPublishConfig{
		Marshaler:         &wmnats.NATSMarshaler{},
		SubjectCalculator: wmnats.DefaultSubjectCalculator,
		JetStream:         wmnats.JetStreamConfig{TrackMsgId: true},
	}, watermill.NopLogger{})
	if err != nil {
		nc.Close()
		return err
	}
	fwd, err := forwarder.NewForwarder(sub, ackTimed{pub, w.tr}, watermill.NopLogger{}, forwarder.Config{ForwarderTopic: w.fwdTopic})
	if err != nil {
		nc.Close()
		return err
	}
	done := make(chan error, 1)
	go func() { done <- fwd.Run(ctx) }()
	select {
	case <-fwd.Running():
	case err := <-done:
		nc.Close()
		return fmt.Errorf("forwarder: %w", err)
	}
	w.stops = append(w.stops, func() error {
		err := fwd.Close()
		err = errors.Join(err, <-done)
		nc.Close()
		return err
	})
	return nil
}

// startConsumer runs the consuming service on Watermill: JetStream
// subscriber, router, handler inserting a dedup row and the effect row in
// one transaction on the second database.
func (w *watermillSys) startConsumer(ctx context.Context) error {
	db, err := postgres.Open(ctx, w.sp.consDSN)
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(w.cfg.workers + 4)
	db.SetMaxIdleConns(w.cfg.workers + 4)
	nc, err := natsgo.Connect(w.cfg.nats)
	if err != nil {
		db.Close()
		return err
	}
	sub, err := wmnats.NewSubscriberWithNatsConn(nc, wmnats.SubscriberSubscriptionConfig{
		Unmarshaler:      &wmnats.NATSMarshaler{},
		SubscribersCount: w.cfg.workers,
		AckWaitTimeout:   30 * time.Second,
		CloseTimeout:     30 * time.Second,
		QueueGroupPrefix: "billing",
		JetStream: wmnats.JetStreamConfig{
			DurablePrefix: "billing",
			SubscribeOptions: []natsgo.SubOpt{
				natsgo.DeliverAll(), natsgo.AckExplicit(), natsgo.MaxAckPending(1024),
			},
			AckAsync: false,
		},
	}, watermill.NopLogger{})
	if err != nil {
		nc.Close()
		db.Close()
		return err
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 30 * time.Second}, watermill.NopLogger{})
	if err != nil {
		nc.Close()
		db.Close()
		return err
	}
	tr := w.tr
	router.AddConsumerHandler("billing", w.sp.topic, sub, func(msg *message.Message) error {
		tr.receive(msg.UUID)
		ctx := msg.Context()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO wm_inbox (msg_id) VALUES ($1) ON CONFLICT DO NOTHING`, msg.UUID)
		if err != nil {
			tx.Rollback()
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO bench_effects (msg_id, k) VALUES ($1, $2)`, msg.UUID, msg.Metadata.Get("partition_key")); err != nil {
				tx.Rollback()
				return err
			}
		}
		return tx.Commit()
	})
	done := make(chan error, 1)
	go func() { done <- router.Run(ctx) }()
	select {
	case <-router.Running():
	case err := <-done:
		nc.Close()
		db.Close()
		return fmt.Errorf("router: %w", err)
	}
	w.stops = append(w.stops, func() error {
		err := router.Close()
		err = errors.Join(err, <-done)
		nc.Close()
		db.Close()
		return err
	})
	return nil
}

// pending is not measured for Watermill: its outbox keeps forwarded rows.
func (w *watermillSys) pending(ctx context.Context) (int64, error) { return -1, nil }

func (w *watermillSys) phases() *phaseTiming { return nil }

func (w *watermillSys) close() error {
	var err error
	for i := len(w.stops) - 1; i >= 0; i-- {
		err = errors.Join(err, w.stops[i]())
	}
	w.stops = nil
	w.nc.Close()
	w.db.Close()
	return err
}

// ackTimed records when JetStream acknowledged each forwarded message.
type ackTimed struct {
	message.Publisher
	tr *tracker
}

func (p ackTimed) Publish(topic string, msgs ...*message.Message) error {
	err := p.Publisher.Publish(topic, msgs...)
	if err == nil {
		ids := make([]string, len(msgs))
		for i, m := range msgs {
			ids[i] = m.UUID
		}
		p.tr.published(ids)
	}
	return err
}
