package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/handoffhq/handoff"
	natsadapter "github.com/handoffhq/handoff/adapter/nats"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/inbox"
	"github.com/handoffhq/handoff/internal/sqlstore"
	"github.com/handoffhq/handoff/outbox"
	"github.com/handoffhq/handoff/relay"
)

// handoffSys is handoff's path: outbox.Writer in the business transaction,
// relay.Relay to JetStream, consumer.Consumer with the inbox on the second
// database.
type handoffSys struct {
	cfg    config
	sp     *space
	tr     *tracker
	db     *sql.DB // producing service
	w      *outbox.Writer
	timing *phaseTiming
	names  *natsadapter.Client // for StreamName only
	nc     *natsgo.Conn
	stops  []func() error
	wal    postgres.WALForm // 0: table mode
	slot   string
	label  string
}

func newHandoff(ctx context.Context, cfg config, sp *space, tr *tracker) (system, error) {
	return newHandoffMode(ctx, cfg, sp, tr, 0)
}

// newHandoffWAL is handoff in WAL mode: the writer emits logical decoding
// messages (or plain rows), postgres.WALRelay reads the slot.
func newHandoffWAL(form postgres.WALForm) factory {
	return func(ctx context.Context, cfg config, sp *space, tr *tracker) (system, error) {
		return newHandoffMode(ctx, cfg, sp, tr, form)
	}
}

func newHandoffMode(ctx context.Context, cfg config, sp *space, tr *tracker, form postgres.WALForm) (system, error) {
	db, err := postgres.Open(ctx, sp.prodDSN)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(cfg.writers + 4)
	if err := postgres.Migrate(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	store := postgres.OutboxStore(db)
	label, slot := "handoff", ""
	if form != 0 {
		store = postgres.OutboxStore(db, postgres.WithWAL(form))
		label, slot = "handoff-wal", "bench_"+sp.name
		if form == postgres.WALRows {
			label = "handoff-walrows"
		}
		if err := postgres.SetupWAL(ctx, db, slot); err != nil {
			db.Close()
			return nil, err
		}
	} else if !cfg.notify {
		// Experiment: the same store without its NOTIFY (the relay then
		// finds rows by polling only).
		store = sqlstore.NewOutboxStore(sqlstore.SQL(db), sqlstore.Postgres(), false)
	}
	w, err := outbox.New(store)
	if err != nil {
		db.Close()
		return nil, err
	}
	nc, err := natsadapter.Connect(cfg.nats)
	if err != nil {
		db.Close()
		return nil, err
	}
	names, err := natsadapter.New(nc)
	if err != nil {
		nc.Close()
		db.Close()
		return nil, err
	}
	return &handoffSys{cfg: cfg, sp: sp, tr: tr, db: db, w: w, timing: &phaseTiming{}, names: names, nc: nc,
		wal: form, slot: slot, label: label}, nil
}

func (h *handoffSys) name() string { return h.label }

func (h *handoffSys) key(seq int64) string { return "k" + strconv.FormatInt(seq%int64(h.cfg.keys), 10) }

// commit is the measured transaction: one business row and its event.
func (h *handoffSys) commit(ctx context.Context, seq int64) error {
	key := h.key(seq)
	m := handoff.NewMessage("/bench/orders", "bench.order.placed", payload(key, seq, h.cfg.size))
	m.PartitionKey = key
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO bench_orders (id, k, n) VALUES ($1, $2, $3)`, m.ID, key, seq); err != nil {
		tx.Rollback()
		return err
	}
	if err := h.w.Add(ctx, tx, h.sp.topic, m); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	h.tr.commit(m.ID)
	return nil
}

// fill commits n events, per events to a transaction, for the backlog.
func (h *handoffSys) fill(ctx context.Context, n int64, per int) error {
	var next atomic.Int64
	return produce(ctx, h.cfg.fillWriters, 0, 0, (n+int64(per)-1)/int64(per), func(ctx context.Context, _ int64) error {
		tx, err := h.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		var ids []string
		var msgs []*handoff.Message
		for range per {
			seq := next.Add(1) - 1
			if seq >= n {
				break
			}
			key := h.key(seq)
			m := handoff.NewMessage("/bench/orders", "bench.order.placed", payload(key, seq, h.cfg.size))
			m.PartitionKey = key
			if _, err := tx.ExecContext(ctx, `INSERT INTO bench_orders (id, k, n) VALUES ($1, $2, $3)`, m.ID, key, seq); err != nil {
				tx.Rollback()
				return err
			}
			msgs = append(msgs, m)
			ids = append(ids, m.ID)
		}
		if err := h.w.Add(ctx, tx, h.sp.topic, msgs...); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		for _, id := range ids {
			h.tr.commit(id)
		}
		return nil
	})
}

func (h *handoffSys) stream() string { return h.names.StreamName(h.sp.topic) }

// startRelay runs cfg.relays relays, each with its own pool, NATS
// connection and LISTEN connection, labelled part=relay for pprof.
func (h *handoffSys) startRelay(ctx context.Context) error {
	for i := range h.cfg.relays {
		var err error
		pprof.Do(ctx, pprof.Labels("part", "relay"), func(ctx context.Context) {
			err = h.startOneRelay(ctx, i)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (h *handoffSys) startOneRelay(ctx context.Context, i int) error {
	dsn := h.sp.prodDSN
	if h.cfg.relayParams != "" {
		dsn += "&" + h.cfg.relayParams
	}
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		return err
	}
	nc, err := natsadapter.Connect(h.cfg.nats)
	if err != nil {
		db.Close()
		return err
	}
	pub, err := natsadapter.New(nc)
	if err != nil {
		nc.Close()
		db.Close()
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	if h.wal != 0 {
		db.Close()
		r, err := postgres.NewWALRelay(dsn, &timedPub{Publisher: pub, t: h.timing, tr: h.tr}, postgres.WithSlot(h.slot),
			postgres.WithWALBatch(h.cfg.batch, h.cfg.linger),
			postgres.WithWALLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
		if err != nil {
			cancel()
			nc.Close()
			return err
		}
		done := make(chan error, 1)
		go func() { done <- r.Run(rctx) }()
		h.stops = append(h.stops, func() error {
			cancel()
			err := <-done
			pub.Close()
			nc.Close()
			return err
		})
		return nil
	}
	store := &timedStore{Store: postgres.RelayStore(db), t: h.timing, tr: h.tr}
	opts := []relay.Option{relay.WithWakeups(postgres.Wakeups(rctx, h.sp.prodDSN, nil)),
		relay.WithBatchSize(h.cfg.batch), relay.WithOwner(fmt.Sprintf("bench-%s-%d", h.sp.name, i))}
	if h.cfg.relayLinger >= 0 {
		opts = append(opts, relay.WithLinger(h.cfg.relayLinger))
	}
	r, err := relay.New(store, &timedPub{Publisher: pub, t: h.timing, tr: h.tr}, opts...)
	if err != nil {
		cancel()
		nc.Close()
		db.Close()
		return err
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	h.stops = append(h.stops, func() error {
		cancel()
		err := <-done
		pub.Close()
		nc.Close()
		db.Close()
		return err
	})
	return nil
}

type failLetters struct{ n *atomic.Int64 }

func (f failLetters) Add(ctx context.Context, l *dlq.Letter) error {
	f.n.Add(1)
	return fmt.Errorf("bench: unexpected dead letter %s: %v", l.Message.ID, l.Errors)
}

// startConsumer runs the consuming service: consumer with the inbox on the
// second database, writing one effect row per event.
func (h *handoffSys) startConsumer(ctx context.Context) error {
	var err error
	pprof.Do(ctx, pprof.Labels("part", "consumer"), func(ctx context.Context) {
		err = h.startConsumerLabelled(ctx)
	})
	return err
}

func (h *handoffSys) startConsumerLabelled(ctx context.Context) error {
	db, err := postgres.Open(ctx, h.sp.consDSN)
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(h.cfg.workers + 4)
	db.SetMaxIdleConns(h.cfg.workers + 4)
	if err := postgres.Migrate(ctx, db); err != nil {
		db.Close()
		return err
	}
	in, err := inbox.New(postgres.InboxStore(db), "billing")
	if err != nil {
		db.Close()
		return err
	}
	nc, err := natsadapter.Connect(h.cfg.nats)
	if err != nil {
		db.Close()
		return err
	}
	sub, err := natsadapter.New(nc)
	if err != nil {
		nc.Close()
		db.Close()
		return err
	}
	effect := in.Handler(func(ctx context.Context, tx *sql.Tx, m *handoff.Message) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO bench_effects (msg_id, k) VALUES ($1, $2)`, m.ID, m.PartitionKey)
		return err
	})
	tr := h.tr
	var handler handoff.Handler = handoff.HandlerFunc(func(ctx context.Context, m *handoff.Message) error {
		tr.receive(m.ID)
		return effect.Handle(ctx, m)
	})
	opts := []consumer.Option{consumer.WithWorkers(h.cfg.workers)}
	if h.cfg.consumerBatch > 1 {
		// As bench/consumer and a service would: messages of different
		// keys share one inbox transaction (a savepoint each).
		handler = batchHandler{Handler: handler, b: effect, tr: tr}
		opts = append(opts, consumer.WithBatchSize(h.cfg.consumerBatch), consumer.WithMaxInFlight(h.cfg.consumerInflight))
	}
	var dead atomic.Int64
	c, err := consumer.New(sub, h.sp.topic, "billing", handler, failLetters{&dead}, opts...)
	if err != nil {
		nc.Close()
		db.Close()
		return err
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(cctx) }()
	h.stops = append(h.stops, func() error {
		cancel()
		err := <-done
		sub.Close()
		nc.Close()
		db.Close()
		if n := dead.Load(); n > 0 {
			err = errors.Join(err, fmt.Errorf("consumer: %d dead letters", n))
		}
		return err
	})
	return nil
}

// batchHandler hands the consumer's batches to the inbox handler's
// HandleBatch: one transaction per batch, a savepoint per message.
type batchHandler struct {
	handoff.Handler
	b  *inbox.Handler[*sql.Tx]
	tr *tracker
}

func (h batchHandler) HandleBatch(ctx context.Context, msgs []*handoff.Message) []error {
	for _, m := range msgs {
		h.tr.receive(m.ID)
	}
	return h.b.HandleBatch(ctx, msgs)
}

// pending counts the outbox rows left.
func (h *handoffSys) pending(ctx context.Context) (int64, error) {
	return count(ctx, h.db, `SELECT COUNT(*) FROM handoff_outbox`)
}

func (h *handoffSys) phases() *phaseTiming { return h.timing }

func (h *handoffSys) close() error {
	var err error
	for i := len(h.stops) - 1; i >= 0; i-- {
		err = errors.Join(err, h.stops[i]())
	}
	h.stops = nil
	if h.slot != "" {
		// The slot would hold WAL for ever.
		// The stopped relay's walsender exits a moment after its client.
		var derr error
		for try := 0; try < 100; try++ {
			if _, derr = h.db.Exec(`SELECT pg_drop_replication_slot($1)`, h.slot); derr == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if derr != nil {
			err = errors.Join(err, derr)
		}
		h.db.Exec(`DROP PUBLICATION IF EXISTS ` + h.slot)
	}
	h.nc.Close()
	h.db.Close()
	return err
}

// phaseTiming sums the relay's time in its three phases.
type phaseTiming struct {
	fetchN, fetchNs, fetchRows atomic.Int64
	emptyFetches               atomic.Int64
	pubN, pubNs, pubMsgs       atomic.Int64
	delN, delNs, delRows       atomic.Int64
	mu                         sync.Mutex
}

type phaseSnapshot struct {
	fetchN, fetchNs, fetchRows, emptyFetches, pubN, pubNs, pubMsgs, delN, delNs, delRows int64
}

func (t *phaseTiming) snapshot() phaseSnapshot {
	return phaseSnapshot{t.fetchN.Load(), t.fetchNs.Load(), t.fetchRows.Load(), t.emptyFetches.Load(),
		t.pubN.Load(), t.pubNs.Load(), t.pubMsgs.Load(), t.delN.Load(), t.delNs.Load(), t.delRows.Load()}
}

func (a phaseSnapshot) sub(b phaseSnapshot) phaseSnapshot {
	return phaseSnapshot{a.fetchN - b.fetchN, a.fetchNs - b.fetchNs, a.fetchRows - b.fetchRows, a.emptyFetches - b.emptyFetches,
		a.pubN - b.pubN, a.pubNs - b.pubNs, a.pubMsgs - b.pubMsgs, a.delN - b.delN, a.delNs - b.delNs, a.delRows - b.delRows}
}

func (p phaseSnapshot) String() string {
	if p.fetchN == 0 {
		return "relay: no fetches"
	}
	ms := func(ns, n int64) float64 {
		if n == 0 {
			return 0
		}
		return float64(ns) / float64(n) / 1e6
	}
	full := p.fetchN - p.emptyFetches
	return fmt.Sprintf("relay phases: %d fetches (%d empty), %.0f rows/non-empty fetch; time in fetch %.2fs (%.2f ms each), publish %.2fs (%.2f ms per Publish call, %d calls), delete %.2fs (%.2f ms each)",
		p.fetchN, p.emptyFetches, float64(p.fetchRows)/float64(max(full, 1)),
		float64(p.fetchNs)/1e9, ms(p.fetchNs, p.fetchN), float64(p.pubNs)/1e9, ms(p.pubNs, p.pubN), p.pubN,
		float64(p.delNs)/1e9, ms(p.delNs, p.delN))
}

type timedStore struct {
	relay.Store
	t  *phaseTiming
	tr *tracker
}

func (s *timedStore) Fetch(ctx context.Context, partitions []int, limit int) ([]outbox.Row, error) {
	t0 := time.Now()
	rows, err := s.Store.Fetch(ctx, partitions, limit)
	if fetchLog != nil {
		fetchLog.add(t0, time.Now(), len(rows))
	}
	s.t.fetchNs.Add(int64(time.Since(t0)))
	s.t.fetchN.Add(1)
	s.t.fetchRows.Add(int64(len(rows)))
	if len(rows) == 0 {
		s.t.emptyFetches.Add(1)
	} else if s.tr != nil {
		ids := make([]string, len(rows))
		for i, r := range rows {
			ids[i] = r.MessageID
		}
		s.tr.fetched(t0, ids)
	}
	return rows, err
}

func (s *timedStore) Claim(ctx context.Context, owner string, want, total int, ttl time.Duration) ([]int, int, error) {
	t0 := time.Now()
	held, n, err := s.Store.Claim(ctx, owner, want, total, ttl)
	if fetchLog != nil {
		fetchLog.mu.Lock()
		fetchLog.lines = append(fetchLog.lines, fmt.Sprintf("C %d %d", t0.UnixNano(), time.Now().UnixNano()))
		fetchLog.mu.Unlock()
	}
	return held, n, err
}

func (s *timedStore) Delete(ctx context.Context, owner string, ids []int64) (int, error) {
	t0 := time.Now()
	n, err := s.Store.Delete(ctx, owner, ids)
	s.t.delNs.Add(int64(time.Since(t0)))
	s.t.delN.Add(1)
	s.t.delRows.Add(int64(n))
	return n, err
}

type timedPub struct {
	handoff.Publisher
	t  *phaseTiming
	tr *tracker
}

func (p *timedPub) Publish(ctx context.Context, topic string, msgs ...*handoff.Message) error {
	t0 := time.Now()
	err := p.Publisher.Publish(ctx, topic, msgs...)
	p.t.pubNs.Add(int64(time.Since(t0)))
	p.t.pubN.Add(1)
	p.t.pubMsgs.Add(int64(len(msgs)))
	if err == nil {
		ids := make([]string, len(msgs))
		for i, m := range msgs {
			ids[i] = m.ID
		}
		p.tr.published(ids)
	}
	return err
}

// fetchLog, with HANDOFF_BENCH_FETCHLOG=file, records every relay fetch of
// the latency phase (start, end, rows) and every event's timestamps there,
// for looking at the tail by hand.
var fetchLog *fetchLogger

type fetchLogger struct {
	mu    sync.Mutex
	lines []string
}

func (l *fetchLogger) add(start, end time.Time, rows int) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf("F %d %d %d", start.UnixNano(), end.UnixNano(), rows))
	l.mu.Unlock()
}
