package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/internal/backoff"
	"github.com/handoffhq/handoff/outbox"
	"github.com/handoffhq/handoff/relay"
)

// WALRelay is the relay of WAL mode: it reads the events an outbox store
// with [WithWAL] wrote from a logical replication slot (plugin pgoutput,
// the publication of the same name, logical decoding messages enabled),
// publishes them, and advances the slot's confirmed position only after
// the broker acknowledged every event before it.
//
//	err := postgres.SetupWAL(ctx, db, "handoff_outbox") // once, before the first write
//	w, err := outbox.New(postgres.OutboxStore(db, postgres.WithWAL(postgres.WALMessages)))
//	r, err := postgres.NewWALRelay(dsn, broker)
//	err = r.Run(ctx)
//
// Guarantees: logical decoding hands over committed transactions only, in
// commit order, so the events of a key are published in the order their
// transactions committed, with no key lock and no table to poll, delete
// from or vacuum (WALMessages). A crash republishes at most what was
// published after the last confirmed position, with the same message ids:
// the broker's duplicate window and the inbox absorb it.
//
// One reader per slot: PostgreSQL lets one connection stream a slot at a
// time, so a second WALRelay on the same slot is a standby that retries
// until the first one stops or dies, then takes over from the confirmed
// position.
//
// A slot holds WAL: while no relay reads it, PostgreSQL keeps every WAL
// segment since its confirmed position. [WALRelay.Slot] reports the lag and
// the WAL held back, Health fails when they pass WithWALAlert's limit, and
// max_slot_wal_keep_size bounds what the server keeps: past it the slot is
// invalidated ("lost"), Run ends with [ErrSlotLost], and the events
// committed after its confirmed position that were not published are gone
// with the WAL (with WALRows they are still rows of handoff_outbox, to
// republish by hand). The default, -1, keeps WAL until the disk fills;
// choose between the two knowing this.
//
// A message the broker refuses for good is dead-lettered (WithWALDeadLetters;
// class "publish", consumer dlq.RelayConsumer) and the stream goes on: unlike
// table mode, later events of its key are not held back. Without a
// dead-letter store such a message is retried with backoff, holding the slot.
type WALRelay struct {
	dsn         string
	pub         handoff.Publisher
	slot        string
	publication string
	batch       int
	linger      time.Duration
	dead        relay.DeadLetterer
	permanent   func(error) bool
	observer    relay.Observer
	log         *slog.Logger
	alertBytes  int64
	statsEvery  time.Duration
	retry       backoff.Exponential
	name        string

	running   atomic.Bool
	published atomic.Int64
	mu        sync.Mutex
	down      map[string]error // part → last error, while it is down
	stats     SlotStats
	statsErr  error
	standby   atomic.Bool
}

// WALOption configures a WALRelay.
type WALOption func(*WALRelay) error

// WithSlot names the replication slot and the publication (default
// "handoff_outbox"). Relays of one outbox share it: one reads, the others
// stand by.
func WithSlot(name string) WALOption {
	return func(r *WALRelay) error {
		if name == "" || len(name) > 63 || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
			return fmt.Errorf("postgres: WithSlot(%q): must be 1 to 63 of a-z, 0-9 and _", name)
		}
		r.slot, r.publication = name, name
		return nil
	}
}

// WithWALBatch sets how many events one publish round takes at most
// (default 1000) and how long it waits for more while events keep coming
// (default 1ms): under load, fewer and larger rounds.
func WithWALBatch(n int, linger time.Duration) WALOption {
	return func(r *WALRelay) error {
		if n < 1 || linger < 0 {
			return fmt.Errorf("postgres: WithWALBatch(%d, %v): want n ≥ 1 and linger ≥ 0", n, linger)
		}
		r.batch, r.linger = n, linger
		return nil
	}
}

// WithWALDeadLetters sets where events the broker refuses for good go.
func WithWALDeadLetters(d relay.DeadLetterer) WALOption {
	return func(r *WALRelay) error { r.dead = d; return nil }
}

// WithWALObserver sets the hook told about every published batch
// (relay.Event: Published, Lag) and every error.
func WithWALObserver(o relay.Observer) WALOption {
	return func(r *WALRelay) error { r.observer = o; return nil }
}

// WithWALLogger sets the logger (default: discard).
func WithWALLogger(l *slog.Logger) WALOption {
	return func(r *WALRelay) error {
		if l == nil {
			return errors.New("postgres: WithWALLogger(nil): logger is required")
		}
		r.log = l
		return nil
	}
}

// WithWALAlert makes Health fail while the slot holds back more than
// bytes of WAL (default 1 GiB), sampled every interval (default 5s).
func WithWALAlert(bytes int64, interval time.Duration) WALOption {
	return func(r *WALRelay) error {
		if bytes <= 0 || interval <= 0 {
			return fmt.Errorf("postgres: WithWALAlert(%d, %v): both must be > 0", bytes, interval)
		}
		r.alertBytes, r.statsEvery = bytes, interval
		return nil
	}
}

// WithWALRetry sets the backoff between attempts to (re)start streaming:
// after an error, and while another relay holds the slot (default 100ms
// up to 2s).
func WithWALRetry(min, max time.Duration) WALOption {
	return func(r *WALRelay) error {
		if min <= 0 || max < min {
			return fmt.Errorf("postgres: WithWALRetry(%v, %v): want 0 < min ≤ max", min, max)
		}
		r.retry = backoff.Exponential{Initial: min, Max: max, Multiplier: 2}
		return nil
	}
}

// NewWALRelay returns a WAL-mode relay reading the database at dsn (a
// postgres:// URL or key=value string; the connection must be allowed to
// replicate: the REPLICATION attribute, or a superuser) and publishing to
// pub. Nothing connects before Run.
func NewWALRelay(dsn string, pub handoff.Publisher, opts ...WALOption) (*WALRelay, error) {
	if pub == nil {
		return nil, errors.New("postgres: NewWALRelay: publisher is required")
	}
	if _, err := pgconn.ParseConfig(dsn); err != nil {
		return nil, fmt.Errorf("postgres: NewWALRelay: dsn: %w", err)
	}
	var b [6]byte
	rand.Read(b[:])
	r := &WALRelay{
		dsn: dsn, pub: pub, slot: "handoff_outbox", publication: "handoff_outbox",
		batch: 1000, linger: time.Millisecond,
		permanent:  func(err error) bool { return handoff.IsPermanent(err) || errors.Is(err, handoff.ErrInvalid) },
		log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		alertBytes: 1 << 30, statsEvery: 5 * time.Second,
		retry: backoff.Exponential{Initial: 100 * time.Millisecond, Max: 2 * time.Second, Multiplier: 2},
		name:  "walrelay-" + hex.EncodeToString(b[:]),
		down:  map[string]error{},
	}
	for _, o := range opts {
		if err := o(r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// ErrSlotLost is returned by Run when the replication slot was invalidated
// (its WAL passed max_slot_wal_keep_size and was removed): the events it
// did not deliver are gone from it. Drop the slot and create it again
// (SetupWAL) to go on from now.
var ErrSlotLost = errors.New("postgres: replication slot lost")

// SetupWAL creates the publication and the logical replication slot
// (plugin pgoutput) of WAL mode if they do not exist: call it, or start
// the relay, before the first write, since events committed while no slot
// exists are never decoded. The publication covers inserts into
// handoff_outbox (WALRows; Migrate first) in db's search_path schema; the
// slot also carries every logical decoding message (WALMessages).
func SetupWAL[D DB](ctx context.Context, db D, slot string) error {
	if err := WithSlot(slot)(&WALRelay{}); err != nil {
		return err
	}
	c := conn(db)
	var exists bool
	if err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)`, slot).Scan(&exists); err != nil {
		return fmt.Errorf("postgres: setup WAL: %w", err)
	}
	if !exists {
		if _, err := c.Exec(ctx, `CREATE PUBLICATION `+slot+` FOR TABLE handoff_outbox WITH (publish = 'insert')`); err != nil &&
			!isCode(err, "42710") { // created meanwhile
			return fmt.Errorf("postgres: setup WAL: create publication %s: %w", slot, err)
		}
	}
	if err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)`, slot).Scan(&exists); err != nil {
		return fmt.Errorf("postgres: setup WAL: %w", err)
	}
	if !exists {
		if _, err := c.Exec(ctx, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, slot); err != nil && !isCode(err, "42710") {
			return fmt.Errorf("postgres: setup WAL: create slot %s (wal_level must be logical): %w", slot, err)
		}
	}
	return nil
}

func isCode(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}

// SlotStats is a sample of the replication slot's state.
type SlotStats struct {
	Active bool // a relay is streaming it
	// WALStatus is pg_replication_slots.wal_status: "reserved", "extended",
	// "unreserved" (about to be lost) or "lost".
	WALStatus string
	LagBytes  int64 // WAL written since the confirmed position: events not yet confirmed are in it
	Retained  int64 // WAL the slot makes the server keep (since its restart position)
	SafeBytes int64 // WAL that can still be written before the slot is lost; -1: no limit (max_slot_wal_keep_size = -1)
	At        time.Time
}

// Slot reads the slot's state now.
func (r *WALRelay) Slot(ctx context.Context) (SlotStats, error) {
	c, err := pgx.Connect(ctx, r.dsn)
	if err != nil {
		return SlotStats{}, fmt.Errorf("postgres: slot %s: %w", r.slot, err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	return slotStats(ctx, c, r.slot)
}

func slotStats(ctx context.Context, c *pgx.Conn, slot string) (SlotStats, error) {
	var st SlotStats
	var status *string
	var lag, retained, safe *int64
	err := c.QueryRow(ctx, `SELECT active, wal_status,
		(pg_current_wal_lsn() - confirmed_flush_lsn)::bigint, (pg_current_wal_lsn() - restart_lsn)::bigint, safe_wal_size
		FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&st.Active, &status, &lag, &retained, &safe)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, fmt.Errorf("postgres: slot %s does not exist", slot)
	}
	if err != nil {
		return st, fmt.Errorf("postgres: slot %s: %w", slot, err)
	}
	if status != nil {
		st.WALStatus = *status
	}
	if lag != nil {
		st.LagBytes = *lag
	}
	if retained != nil {
		st.Retained = *retained
	}
	st.SafeBytes = -1
	if safe != nil {
		st.SafeBytes = *safe
	}
	st.At = time.Now()
	return st, nil
}

// Health returns nil while the relay streams the slot (or stands by for
// it) and publishes, and the slot holds back less WAL than the alert limit;
// else an error naming what is wrong.
func (r *WALRelay) Health() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, part := range []string{relay.PartDatabase, relay.PartBroker} {
		if err := r.down[part]; err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", part, err))
		}
	}
	st := r.stats
	if !st.At.IsZero() {
		if st.Retained > r.alertBytes {
			errs = append(errs, fmt.Errorf("slot %s holds back %d bytes of WAL (alert at %d): is a relay reading it?", r.slot, st.Retained, r.alertBytes))
		}
		if st.WALStatus == "unreserved" || st.WALStatus == "lost" {
			errs = append(errs, fmt.Errorf("slot %s wal_status %s (max_slot_wal_keep_size)", r.slot, st.WALStatus))
		}
	}
	return errors.Join(errs...)
}

// Standby reports whether the relay is waiting for another relay to give
// up the slot.
func (r *WALRelay) Standby() bool { return r.standby.Load() }

// Published is the number of events published since Run started.
func (r *WALRelay) Published() int64 { return r.published.Load() }

func (r *WALRelay) setDown(part string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		delete(r.down, part)
	} else {
		r.down[part] = err
	}
}

func (r *WALRelay) observe(e relay.Event) {
	if r.observer != nil {
		r.observer.ObserveRelay(e)
	}
}

// errSlotBusy: another connection streams the slot.
var errSlotBusy = errors.New("slot in use by another relay")

// Run creates the slot and publication if they are missing, streams the
// slot and publishes until ctx is done, then returns nil. Database and
// broker errors are retried with backoff; while another relay streams the
// slot, Run stands by. It returns [ErrSlotLost] when the slot was
// invalidated.
func (r *WALRelay) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return relay.ErrRunning
	}
	defer r.running.Store(false)
	r.published.Store(0)
	var wg sync.WaitGroup
	sctx, stopStats := context.WithCancel(ctx)
	wg.Add(1)
	go func() { defer wg.Done(); r.sampleStats(sctx) }()
	defer func() { stopStats(); wg.Wait() }()
	failures := 0
	for ctx.Err() == nil {
		err := r.stream(ctx)
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case errors.Is(err, ErrSlotLost):
			r.setDown(relay.PartDatabase, err)
			r.log.Error("postgres: WAL relay: slot lost", "slot", r.slot, "err", err)
			return err
		case errors.Is(err, errSlotBusy):
			if !r.standby.Swap(true) {
				r.log.Info("postgres: WAL relay: another relay streams the slot; standing by", "slot", r.slot)
			}
			r.setDown(relay.PartDatabase, nil)
			failures = min(failures+1, 5)
		default:
			r.standby.Store(false)
			failures++
			if failures == 1 || failures%20 == 0 {
				r.log.Error("postgres: WAL relay: streaming failed; retrying with backoff", "slot", r.slot, "err", err, "failures", failures)
			}
			r.observe(relay.Event{Err: err, Pending: -1})
		}
		t := time.NewTimer(r.retry.Delay(failures))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
	return nil
}

// sampleStats reads the slot's state every statsEvery, for Health.
func (r *WALRelay) sampleStats(ctx context.Context) {
	t := time.NewTicker(r.statsEvery)
	defer t.Stop()
	for {
		if st, err := r.Slot(ctx); ctx.Err() == nil {
			r.mu.Lock()
			if err == nil {
				r.stats = st
			}
			r.statsErr = err
			r.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// walEvent is one decoded event and, for WALRows, its row id.
type walEvent struct {
	row   outbox.Row
	rowID int64 // WALRows: id in handoff_outbox; 0 for messages
}

// walBatch is events of whole committed transactions, up to end: the
// position to confirm once they are all published.
type walBatch struct {
	events []walEvent
	end    pglogrepl.LSN
}

// stream runs one replication session until it fails or ctx is done.
func (r *WALRelay) stream(ctx context.Context) error {
	cfg, err := pgconn.ParseConfig(r.dsn)
	if err != nil {
		return err
	}
	cfg.RuntimeParams["replication"] = "database"
	cfg.RuntimeParams["application_name"] = r.name
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		r.setDown(relay.PartDatabase, err)
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := r.prepare(ctx, conn); err != nil {
		return err
	}
	err = pglogrepl.StartReplication(ctx, conn, r.slot, 0, pglogrepl.StartReplicationOptions{PluginArgs: []string{
		"proto_version '1'", "publication_names '" + r.publication + "'", "messages 'true'",
	}})
	if err != nil {
		switch {
		case isCode(err, "55006"): // object in use: another relay streams the slot
			return errSlotBusy
		case isCode(err, "55000") && strings.Contains(err.Error(), "can no longer get changes"):
			return fmt.Errorf("%w: %s: %v", ErrSlotLost, r.slot, err)
		}
		r.setDown(relay.PartDatabase, err)
		return fmt.Errorf("start replication on slot %s: %w", r.slot, err)
	}
	if r.standby.Swap(false) {
		r.log.Info("postgres: WAL relay: took over the slot", "slot", r.slot)
	}
	r.setDown(relay.PartDatabase, nil)

	// The publisher runs beside the reader: while one batch is published,
	// the next is decoded (the reader alone talks to the connection).
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Unbuffered: a batch is handed over only when the publisher is free,
	// so under load batches grow while the previous one is published.
	batches := make(chan walBatch)
	var p progress
	pubDone := make(chan error, 1)
	go func() { pubDone <- r.publisher(pctx, batches, &p) }()
	err = r.read(ctx, conn, batches, &p, pubDone)
	cancel()
	close(batches)
	if perr := <-pubDone; err == nil {
		err = perr
	}
	return err
}

// prepare checks that the slot is usable, creating it and its publication
// on first use.
func (r *WALRelay) prepare(ctx context.Context, conn *pgconn.PgConn) error {
	c, err := pgx.Connect(ctx, r.dsn)
	if err != nil {
		r.setDown(relay.PartDatabase, err)
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	var status *string
	err = c.QueryRow(ctx, `SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1`, r.slot).Scan(&status)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		r.log.Warn("postgres: WAL relay: creating the missing replication slot; events committed before it exists are not decoded", "slot", r.slot)
		if err := createWAL(ctx, c, r.slot); err != nil {
			return err
		}
	case err != nil:
		r.setDown(relay.PartDatabase, err)
		return err
	case status != nil && *status == "lost":
		return fmt.Errorf("%w: %s: wal_status is lost (max_slot_wal_keep_size passed)", ErrSlotLost, r.slot)
	}
	return nil
}

func createWAL(ctx context.Context, c *pgx.Conn, slot string) error {
	var exists bool
	if err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)`, slot).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		if _, err := c.Exec(ctx, `CREATE PUBLICATION `+slot+` FOR TABLE handoff_outbox WITH (publish = 'insert')`); err != nil && !isCode(err, "42710") {
			return fmt.Errorf("create publication %s: %w", slot, err)
		}
	}
	if _, err := c.Exec(ctx, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, slot); err != nil && !isCode(err, "42710") {
		return fmt.Errorf("create slot %s (wal_level must be logical): %w", slot, err)
	}
	return nil
}

// progress is what the publisher finished: the position to confirm and
// how many batches it completed.
type progress struct {
	acked atomic.Uint64 // LSN: every event of a transaction ending at or before it is published
	done  atomic.Int64  // batches published
}

// read decodes the stream into batches of whole transactions and reports
// the acknowledged position to the server.
func (r *WALRelay) read(ctx context.Context, conn *pgconn.PgConn, batches chan<- walBatch, p *progress, pubDone <-chan error) error {
	const statusEvery = 100 * time.Millisecond
	var (
		cur        walBatch            // whole transactions not yet handed over
		tx         []walEvent          // the transaction being decoded
		relations  = map[uint32]bool{} // relation id → is handoff_outbox
		columns    = map[uint32][]string{}
		reported   pglogrepl.LSN // last position sent to the server
		idleEnd    pglogrepl.LSN // keepalive position, safe to confirm once all before it is published
		handed     int64         // batches handed to the publisher
		lastStatus time.Time
		firstAt    time.Time // when cur got its first transaction
	)
	report := func(force bool) error {
		pos := pglogrepl.LSN(p.acked.Load())
		if len(cur.events) == 0 && cur.end == 0 && len(tx) == 0 && p.done.Load() == handed && idleEnd > pos {
			// Nothing decoded waits or is being published: every
			// transaction that ends before the server's keepalive position
			// was sent before it, and is published (or had no events).
			pos = idleEnd
		}
		pos = max(pos, reported)
		if !force && pos == reported && time.Since(lastStatus) < 10*time.Second {
			return nil
		}
		if err := pglogrepl.SendStandbyStatusUpdate(ctx, conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: pos}); err != nil {
			return err
		}
		reported, lastStatus = pos, time.Now()
		return nil
	}
	hand := func(block bool) error {
		if len(cur.events) == 0 && cur.end == 0 {
			return nil
		}
		for {
			select {
			case batches <- cur:
				cur, firstAt = walBatch{}, time.Time{}
				handed++
				return nil
			case err := <-pubDone:
				return err
			default:
			}
			if !block {
				return nil
			}
			// Publishing is behind: wait, keeping the connection alive.
			t := time.NewTimer(statusEvery)
			select {
			case batches <- cur:
				t.Stop()
				cur, firstAt = walBatch{}, time.Time{}
				handed++
				return nil
			case err := <-pubDone:
				t.Stop()
				return err
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
				if err := report(false); err != nil {
					return err
				}
			}
		}
	}
	for {
		if ctx.Err() != nil {
			return nil
		}
		if len(cur.events) >= r.batch {
			if err := hand(true); err != nil {
				return err
			}
		}
		wait := statusEvery
		if !firstAt.IsZero() {
			wait = r.linger - time.Since(firstAt)
		}
		if wait <= 0 {
			if err := hand(false); err != nil {
				return err
			}
			if !firstAt.IsZero() { // the publisher is busy: wait for more meanwhile
				wait = r.linger
			} else {
				wait = statusEvery
			}
			if wait <= 0 {
				wait = 100 * time.Microsecond
			}
		}
		if time.Since(lastStatus) >= statusEvery {
			if err := report(false); err != nil {
				return err
			}
		}
		rctx, cancel := context.WithTimeout(ctx, wait)
		msg, err := conn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if pgconn.Timeout(err) {
				if err := hand(false); err != nil {
					return err
				}
				continue
			}
			r.setDown(relay.PartDatabase, err)
			return fmt.Errorf("receive: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.ErrorResponse:
			err := pgconn.ErrorResponseToPgError(m)
			r.setDown(relay.PartDatabase, err)
			return err
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				continue
			}
			switch m.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
				if err != nil {
					return err
				}
				if ka.ServerWALEnd > idleEnd {
					idleEnd = ka.ServerWALEnd
				}
				if err := report(ka.ReplyRequested); err != nil {
					return err
				}
			case pglogrepl.XLogDataByteID:
				xld, err := pglogrepl.ParseXLogData(m.Data[1:])
				if err != nil {
					return err
				}
				lm, err := pglogrepl.Parse(xld.WALData)
				if err != nil {
					return fmt.Errorf("decode pgoutput: %w", err)
				}
				switch lm := lm.(type) {
				case *pglogrepl.BeginMessage:
					tx = tx[:0]
				case *pglogrepl.RelationMessage:
					relations[lm.RelationID] = lm.RelationName == "handoff_outbox"
					cols := make([]string, len(lm.Columns))
					for i, c := range lm.Columns {
						cols[i] = c.Name
					}
					columns[lm.RelationID] = cols
				case *pglogrepl.InsertMessage:
					if !relations[lm.RelationID] {
						continue
					}
					ev, err := rowEvent(columns[lm.RelationID], lm.Tuple)
					if err != nil {
						r.log.Error("postgres: WAL relay: undecodable outbox row; skipped", "err", err)
						continue
					}
					tx = append(tx, ev)
				case *pglogrepl.LogicalDecodingMessage:
					if lm.Prefix != WALPrefix {
						continue
					}
					row, err := decodeWALEvent(append([]byte(nil), lm.Content...))
					if err != nil {
						r.log.Error("postgres: WAL relay: undecodable outbox message; skipped", "lsn", lm.LSN, "err", err)
						continue
					}
					if !lm.Transactional {
						continue // not written by the outbox store: it would not be atomic with anything
					}
					tx = append(tx, walEvent{row: row})
				case *pglogrepl.CommitMessage:
					if len(tx) > 0 {
						if cur.events == nil && firstAt.IsZero() {
							firstAt = time.Now()
						}
						cur.events = append(cur.events, tx...)
						tx = tx[:0]
					}
					if lm.TransactionEndLSN > cur.end {
						cur.end = lm.TransactionEndLSN
					}
					if len(cur.events) == 0 {
						// A transaction without events: hand its position on
						// at the next quiet moment.
						if firstAt.IsZero() {
							firstAt = time.Now()
						}
					}
				}
			}
		}
	}
}

// rowEvent turns an insert into handoff_outbox (text format) into an event.
func rowEvent(cols []string, tup *pglogrepl.TupleData) (walEvent, error) {
	var ev walEvent
	if tup == nil {
		return ev, errors.New("insert without a tuple")
	}
	for i, c := range tup.Columns {
		if i >= len(cols) || c.DataType != pglogrepl.TupleDataTypeText {
			continue
		}
		v := string(c.Data)
		switch cols[i] {
		case "id":
			if _, err := fmt.Sscan(v, &ev.rowID); err != nil {
				return ev, fmt.Errorf("id %q: %w", v, err)
			}
			ev.row.ID = ev.rowID
		case "topic":
			ev.row.Topic = v
		case "partition_key":
			ev.row.Key = v
		case "message_id":
			ev.row.MessageID = v
		case "envelope":
			if !strings.HasPrefix(v, `\x`) {
				return ev, errors.New("envelope: not hex bytea")
			}
			b, err := hex.DecodeString(v[2:])
			if err != nil {
				return ev, fmt.Errorf("envelope: %w", err)
			}
			ev.row.Envelope = b
		}
	}
	if ev.row.Topic == "" || ev.row.MessageID == "" || ev.rowID == 0 {
		return ev, errors.New("insert lacks id, topic or message_id")
	}
	return ev, nil
}

// publisher publishes batches in order and records the position each one
// ends at once all its events are acknowledged.
func (r *WALRelay) publisher(ctx context.Context, batches <-chan walBatch, p *progress) error {
	var db *pgx.Conn // WALRows: deletes published rows
	defer func() {
		if db != nil {
			db.Close(context.WithoutCancel(ctx))
		}
	}()
	for b := range batches {
		failures := 0
		for {
			err := r.publishBatch(ctx, b.events)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			failures++
			r.setDown(relay.PartBroker, err)
			if failures == 1 || failures%20 == 0 {
				r.log.Error("postgres: WAL relay: publish failed; retrying with backoff", "events", len(b.events), "err", err, "failures", failures)
			}
			r.observe(relay.Event{Err: err, Pending: -1})
			t := time.NewTimer(r.retry.Delay(failures))
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
		r.setDown(relay.PartBroker, nil)
		// WALRows: the published rows go before their position is
		// confirmed, so a crash in between decodes them again (published
		// twice, with the same ids) rather than leaving rows no relay
		// reads again.
		var ids []int64
		for _, e := range b.events {
			if e.rowID != 0 {
				ids = append(ids, e.rowID)
			}
		}
		for failures, unseen := 0, 0; len(ids) > 0; {
			var err error
			if db == nil {
				db, err = pgx.Connect(ctx, r.dsn)
			}
			var gone []int64
			if err == nil {
				var rows pgx.Rows
				rows, err = db.Query(ctx, `DELETE FROM handoff_outbox WHERE id = ANY($1) RETURNING id`, ids)
				if err == nil {
					gone, err = pgx.CollectRows(rows, pgx.RowTo[int64])
				}
			}
			if err == nil {
				r.setDown(relay.PartDatabase, nil)
				if len(gone) == len(ids) {
					break
				}
				// A commit is decoded from the WAL a moment before it is
				// visible to other transactions: delete what this one did
				// not see again, shortly. A row still unseen after a second
				// was deleted by someone else.
				ids = slices.DeleteFunc(ids, func(id int64) bool { return slices.Contains(gone, id) })
				if unseen++; unseen > 1000 {
					r.log.Warn("postgres: WAL relay: published outbox rows not found to delete", "rows", len(ids))
					break
				}
				t := time.NewTimer(time.Millisecond)
				select {
				case <-ctx.Done():
					t.Stop()
					return nil
				case <-t.C:
				}
				continue
			}
			if db != nil {
				db.Close(context.WithoutCancel(ctx))
				db = nil
			}
			if ctx.Err() != nil {
				return nil
			}
			failures++
			r.setDown(relay.PartDatabase, err)
			r.log.Warn("postgres: WAL relay: delete of published outbox rows failed; retrying", "rows", len(ids), "err", err)
			t := time.NewTimer(r.retry.Delay(failures))
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
		if len(b.events) > 0 {
			r.published.Add(int64(len(b.events)))
			r.observe(relay.Event{Published: len(b.events), Pending: -1})
		}
		if uint64(b.end) > p.acked.Load() {
			p.acked.Store(uint64(b.end))
		}
		p.done.Add(1)
	}
	return nil
}

// publishBatch publishes events with one Publish per topic, in order.
// A permanent refusal dead-letters the culprit and goes on.
func (r *WALRelay) publishBatch(ctx context.Context, events []walEvent) error {
	if len(events) == 0 {
		return nil
	}
	var topics []string
	byTopic := map[string][]walEvent{}
	for _, e := range events {
		if _, ok := byTopic[e.row.Topic]; !ok {
			topics = append(topics, e.row.Topic)
		}
		byTopic[e.row.Topic] = append(byTopic[e.row.Topic], e)
	}
	errs := make([]error, len(topics))
	var wg sync.WaitGroup
	for i, topic := range topics {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.publishTopic(ctx, topic, byTopic[topic])
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (r *WALRelay) publishTopic(ctx context.Context, topic string, events []walEvent) error {
	msgs := make([]*handoff.Message, 0, len(events))
	for _, e := range events {
		m, err := e.row.Message()
		if err != nil {
			if ferr := r.deadLetter(ctx, e.row, nil, err); ferr != nil {
				return ferr
			}
			continue
		}
		msgs = append(msgs, m)
	}
	if len(msgs) == 0 {
		return nil
	}
	err := r.pub.Publish(ctx, topic, msgs...)
	if err == nil || !r.permanent(err) {
		if err != nil {
			return fmt.Errorf("postgres: WAL relay: publish %d to %s: %w", len(msgs), topic, err)
		}
		return nil
	}
	// Some message was refused for good: one by one, in order.
	for _, m := range msgs {
		if err := r.pub.Publish(ctx, topic, m); err != nil {
			if !r.permanent(err) {
				return fmt.Errorf("postgres: WAL relay: publish %s to %s: %w", m.ID, topic, err)
			}
			if ferr := r.deadLetter(ctx, outbox.Row{Topic: topic, MessageID: m.ID, Key: m.PartitionKey}, m, err); ferr != nil {
				return ferr
			}
		}
	}
	return nil
}

func (r *WALRelay) deadLetter(ctx context.Context, row outbox.Row, m *handoff.Message, cause error) error {
	if r.dead == nil {
		return fmt.Errorf("postgres: WAL relay: %s refused for good and no dead-letter store configured: %w", row.MessageID, cause)
	}
	if m == nil {
		m = &handoff.Message{ID: row.MessageID, Data: row.Envelope}
	}
	now := time.Now().UTC()
	l := &dlq.Letter{Consumer: dlq.RelayConsumer, Topic: row.Topic, Message: m, Class: dlq.ClassPublish,
		Errors: dlq.Chain(cause), Attempts: 1, FirstFailure: now, LastFailure: now}
	if err := r.dead.Add(ctx, l); err != nil {
		return fmt.Errorf("postgres: WAL relay: dead-letter %s: %w", row.MessageID, err)
	}
	r.log.Warn("postgres: WAL relay: message refused by the broker; dead-lettered", "id", row.MessageID, "topic", row.Topic, "err", cause)
	return nil
}
