package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/handoffhq/handoff"
	natsadapter "github.com/handoffhq/handoff/adapter/nats"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/inbox"
)

const insertRow = "INSERT INTO bench_rows (id, payload) VALUES ($1, $2)"

func handoffMessage(cfg config, i int, ts int64) *handoff.Message {
	m := handoff.NewMessage("/bench", "bench.row", payload(i, ts, cfg.size))
	m.PartitionKey = "k" + strconv.Itoa(i%cfg.keys)
	return m
}

type freshKey struct{}

type freshBatchKey struct{}

// batchedHandler runs batches in one inbox transaction with a savepoint per
// message (the inbox handler's HandleBatch), reporting the messages
// committed fresh.
type batchedHandler struct {
	handoff.Handler
	b   *inbox.Handler[*sql.Tx]
	rec *recorder
}

func (h batchedHandler) HandleBatch(ctx context.Context, msgs []*handoff.Message) []error {
	fresh := map[string]bool{}
	errs := h.b.HandleBatch(context.WithValue(ctx, freshBatchKey{}, fresh), msgs)
	for i, m := range msgs {
		if errs[i] == nil && fresh[m.ID] {
			h.rec.committed(m.Data)
		}
	}
	return errs
}

// handoffHandler is the benchmark's handler: inbox.Handler around one insert,
// reporting each message whose transaction committed (not the duplicates the
// inbox skipped) after the commit.
func handoffHandler(in *inbox.Inbox[*sql.Tx], rec *recorder, batch int) handoff.Handler {
	txh := func(ctx context.Context, tx *sql.Tx, m *handoff.Message) error {
		if _, err := tx.ExecContext(ctx, insertRow, m.ID, m.Data); err != nil {
			return err
		}
		if fresh, ok := ctx.Value(freshKey{}).(*bool); ok {
			*fresh = true
		} else if fresh, ok := ctx.Value(freshBatchKey{}).(map[string]bool); ok {
			fresh[m.ID] = true
		}
		return nil
	}
	tx := in.Handler(txh)
	single := handoff.HandlerFunc(func(ctx context.Context, m *handoff.Message) error {
		var fresh bool
		if err := tx.Handle(context.WithValue(ctx, freshKey{}, &fresh), m); err != nil {
			return err
		}
		if fresh {
			rec.committed(m.Data)
		}
		return nil
	})
	if batch > 1 {
		return batchedHandler{Handler: single, b: tx, rec: rec}
	}
	return single
}

// runHandoff runs handoff's consumer with the PostgreSQL inbox on a fresh
// stream. h, when not nil, replaces the inbox handler (limits).
func runHandoff(ctx context.Context, w workload, s *sampler) error {
	return runHandoffWith(ctx, w, s, nil)
}

func runHandoffWith(ctx context.Context, w workload, s *sampler, h handoff.Handler) error {
	db, err := postgres.Open(ctx, w.dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := postgres.Migrate(ctx, db); err != nil {
		return err
	}
	nc, err := natsadapter.Connect(w.cfg.natsURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	client, err := natsadapter.New(nc)
	if err != nil {
		return err
	}
	defer client.Close()
	defer client.JetStream().DeleteStream(context.Background(), client.StreamName(w.topic))

	if w.rate == 0 { // throughput: publish everything first
		const batch = 500
		ts := time.Now().UnixNano()
		for i := 0; i < w.n; i += batch {
			ms := make([]*handoff.Message, 0, batch)
			for j := i; j < min(i+batch, w.n); j++ {
				ms = append(ms, handoffMessage(w.cfg, j, ts))
			}
			if err := client.Publish(ctx, w.topic, ms...); err != nil {
				return err
			}
		}
	}

	in, err := inbox.New(postgres.InboxStore(db), "bench")
	if err != nil {
		return err
	}
	dead, err := dlq.New(postgres.DLQStore(db))
	if err != nil {
		return err
	}
	if h == nil {
		h = handoffHandler(in, w.rec, w.cfg.batch)
	}
	c, err := consumer.New(client, w.topic, "bench", h, dead,
		consumer.WithWorkers(w.cfg.workers), consumer.WithMaxInFlight(w.cfg.inflight), consumer.WithBatchSize(w.cfg.batch))
	if err != nil {
		return err
	}
	if w.rate > 0 { // latency: create the group before publishing
		if err := client.Provision(ctx, handoff.Subscription{Topic: w.topic, Group: "bench", MaxInFlight: w.cfg.inflight}); err != nil {
			return err
		}
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	s.start()
	ran := make(chan error, 1)
	go func() { ran <- c.Run(runCtx) }()
	if w.rate > 0 {
		err := pace(ctx, w.n, w.rate, func(i int) error {
			return client.Publish(ctx, w.topic, handoffMessage(w.cfg, i, time.Now().UnixNano()))
		})
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	werr := w.rec.wait(ctx, 30*time.Second)
	s.stop()
	stop()
	if err := <-ran; err != nil {
		return errors.Join(werr, err)
	}
	if werr != nil {
		return werr
	}
	letters, err := dead.List(ctx, dlq.Filter{})
	if err != nil {
		return fmt.Errorf("list dead letters: %w", err)
	}
	if len(letters) > 0 {
		return fmt.Errorf("correctness: %d dead letters, first: %s %v", len(letters), letters[0].Class, letters[0].Errors)
	}
	return nil
}
