// Package relay moves committed outbox rows to a broker. It claims
// partitions of the outbox with leases in the database, publishes each batch
// with one asynchronous Publish per topic, and deletes rows only after the
// broker acknowledged them. Several relays share the partitions; a crashed
// relay's partitions are taken over when its leases expire.
//
//	r, err := relay.New(postgres.RelayStore(db), broker,
//		relay.WithWakeups(writer.Wakeups()), relay.WithDeadLetters(deadLetters))
//	err = r.Run(ctx)
//
// Guarantees: a row is deleted only after the broker holds its message, so
// nothing committed is lost (a crash between publish and delete republishes
// the message with the same id: brokers with a duplicate window and the
// inbox absorb it). Order per partition key holds end to end: a key lives in
// one partition, one relay at a time owns a partition, and rows are
// published in id order, which the outbox store makes the commit order per
// key. A row the broker refuses for good is dead-lettered (class "publish",
// consumer dlq.RelayConsumer) and holds back later rows of its key (order)
// but no other key, for as long as its letter is open: the store reads the
// letter's state from the same database, so replaying it (the edited
// message is published first, then the later rows), purging or deleting it
// releases the key, whether the library, the CLI or the HTTP API did it.
// Keep the relay's dead letters in the outbox's database (the adapter's
// DLQStore of the same db): a letter the store cannot see holds nothing.
//
// Restarts and outages: a relay that stops (its context ends) gives up its
// leases and its registration, so a relay started after it claims every
// free partition at once. A relay that crashes keeps them until its leases
// expire (WithLeaseTTL, 10s by default): its partitions are taken over
// within that time. An unreachable database or broker is logged at once
// with its cause (the adapters' errors name the address), then at most
// every WithOutageLogInterval while it lasts, and when it is back;
// Relay.Health names the part that is down. WithProgressLog logs a progress
// line now and then; Relay.Progress has the numbers.
//
// Wake-ups: PostgreSQL LISTEN/NOTIFY (postgres.Wakeups) or the in-process
// outbox.Writer's signal make the relay poll at once; a poll with backoff
// (WithPollInterval) is the safety net, since notifications are hints, not
// a queue.
package relay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/internal/backoff"
	"github.com/handoffhq/handoff/outbox"
)

// Observer is told what the relay did; wire it to metrics. It is called
// from more than one goroutine (the passes, the deletes, the stats query).
type Observer interface {
	ObserveRelay(e Event)
}

// Event is one observation.
type Event struct {
	Published  int           // rows published and deleted in this batch
	Partitions []int         // partitions held now
	Pending    int           // rows pending (from the last stats query; -1 if not measured)
	OldestAge  time.Duration // age of the oldest pending row
	Lag        time.Duration // commit-to-publish delay of the oldest row in this batch
	// PartitionLag is, per partition with rows in this batch, the
	// commit-to-publish delay of its oldest published row.
	PartitionLag map[int]time.Duration
	Err          error // a failed publish or database call
}

// DeadLetterer stores rows the broker refused for good. *dlq.Queue is one.
type DeadLetterer interface {
	Add(ctx context.Context, l *dlq.Letter) error
}

// Relay publishes outbox rows. Create it with New, start it with Run.
type Relay struct {
	store      Store
	pub        handoff.Publisher
	owner      string
	configured int // WithPartitions; 0: follow the outbox
	partitions int // the outbox's, read at the first claim
	batch      int
	linger     time.Duration
	leaseTTL   time.Duration
	poll       backoff.Exponential
	wakeups    []<-chan struct{}
	dead       DeadLetterer
	permanent  func(error) bool
	observer   Observer
	log        *slog.Logger
	statsEvery time.Duration
	owners     int // live relays at the last claim
	running    atomic.Bool
	checker    Checker
	outages    outages
	progEvery  time.Duration

	published    atomic.Int64
	deadLettered atomic.Int64
	pmu          sync.Mutex
	progress     Progress

	// Published rows whose delete is queued or running: fetches skip them.
	mu        sync.Mutex
	deleting  map[int64]bool
	deletions chan []int64
}

// Option configures a Relay.
type Option func(*Relay) error

// WithPartitions sets the partition count the relay expects. The count is
// a property of the outbox (see outbox.WithPartitions): Run fails with an
// outbox.PartitionsError naming both counts when the outbox was created
// with another. Left out, the relay follows the outbox's count.
func WithPartitions(n int) Option {
	return func(r *Relay) error {
		if n < 1 || n > 4096 {
			return fmt.Errorf("relay: WithPartitions(%d): must be between 1 and 4096", n)
		}
		r.configured = n
		return nil
	}
}

// WithBatchSize sets how many rows one fetch and publish handles (default 1000).
func WithBatchSize(n int) Option {
	return func(r *Relay) error {
		if n < 1 {
			return fmt.Errorf("relay: WithBatchSize(%d): must be ≥ 1", n)
		}
		r.batch = n
		return nil
	}
}

// WithLinger sets how long the relay waits after a partial batch before
// fetching again (default 1ms; 0: at once). Under load rows keep coming:
// the wait makes fewer, larger batches, so fewer fetch and delete
// statements compete with the writers' commits. An idle relay is woken at
// once by a wake-up; the linger only follows a batch that found rows.
func WithLinger(d time.Duration) Option {
	return func(r *Relay) error {
		if d < 0 || d > time.Second {
			return fmt.Errorf("relay: WithLinger(%v): must be between 0 and 1s", d)
		}
		r.linger = d
		return nil
	}
}

// WithLeaseTTL sets how long a partition lease lasts without renewal
// (default 10s). A crashed relay's partitions are taken over after it.
func WithLeaseTTL(d time.Duration) Option {
	return func(r *Relay) error {
		if d < 100*time.Millisecond {
			return fmt.Errorf("relay: WithLeaseTTL(%v): must be ≥ 100ms", d)
		}
		r.leaseTTL = d
		return nil
	}
}

// WithPollInterval sets the polling backoff when idle: from min up to max
// (defaults 5ms and 1s). Wake-ups reset it to min.
func WithPollInterval(min, max time.Duration) Option {
	return func(r *Relay) error {
		if min <= 0 || max < min {
			return fmt.Errorf("relay: WithPollInterval(%v, %v): want 0 < min ≤ max", min, max)
		}
		r.poll = backoff.Exponential{Initial: min, Max: max, Multiplier: 2, NoJitter: true}
		return nil
	}
}

// WithWakeups adds channels that signal new rows (outbox.Writer.Wakeups,
// postgres.Wakeups).
func WithWakeups(chs ...<-chan struct{}) Option {
	return func(r *Relay) error {
		for i, ch := range chs {
			if ch == nil {
				return fmt.Errorf("relay: WithWakeups: channel %d is nil", i)
			}
		}
		r.wakeups = append(r.wakeups, chs...)
		return nil
	}
}

// WithDeadLetters sets where rows the broker refuses for good go. Without
// it such rows are retried with backoff forever, holding their key.
func WithDeadLetters(d DeadLetterer) Option {
	return func(r *Relay) error { r.dead = d; return nil }
}

// WithPermanent sets how a publish error is classified as permanent (never
// going to succeed, e.g. a message over the broker's size limit). The
// default: handoff.IsPermanent or handoff.ErrInvalid.
func WithPermanent(f func(error) bool) Option {
	return func(r *Relay) error {
		if f == nil {
			return errors.New("relay: WithPermanent(nil): classifier is required")
		}
		r.permanent = f
		return nil
	}
}

// WithOwner names this relay in the lease table (default: random).
func WithOwner(name string) Option {
	return func(r *Relay) error {
		if name == "" {
			return errors.New("relay: WithOwner: name must not be empty")
		}
		r.owner = name
		return nil
	}
}

// WithObserver sets the hook told about every batch and stats sample.
func WithObserver(o Observer) Option { return func(r *Relay) error { r.observer = o; return nil } }

// WithOutageLogInterval sets how often an outage of the database or the
// broker is logged again while it lasts (default 30s). Its start and its
// end are logged at once.
func WithOutageLogInterval(d time.Duration) Option {
	return func(r *Relay) error {
		if d <= 0 {
			return fmt.Errorf("relay: WithOutageLogInterval(%v): must be > 0", d)
		}
		r.outages.every = d
		return nil
	}
}

// WithProgressLog logs a progress line every d (rows published per second,
// backlog, age of the oldest row, held keys), and a summary when Run
// returns. Default: off.
func WithProgressLog(d time.Duration) Option {
	return func(r *Relay) error {
		if d <= 0 {
			return fmt.Errorf("relay: WithProgressLog(%v): must be > 0", d)
		}
		r.progEvery = d
		return nil
	}
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(r *Relay) error {
		if l == nil {
			return errors.New("relay: WithLogger(nil): logger is required")
		}
		r.log = l
		return nil
	}
}

// New returns a relay from store to pub.
func New(store Store, pub handoff.Publisher, opts ...Option) (*Relay, error) {
	if store == nil {
		return nil, errors.New("relay: store is required")
	}
	if pub == nil {
		return nil, errors.New("relay: publisher is required")
	}
	var b [6]byte
	rand.Read(b[:])
	r := &Relay{
		store: store, pub: pub,
		owner:    "relay-" + hex.EncodeToString(b[:]),
		batch:    1000,
		linger:   time.Millisecond,
		leaseTTL: 10 * time.Second,
		poll:     backoff.Exponential{Initial: 5 * time.Millisecond, Max: time.Second, Multiplier: 2, NoJitter: true},
		permanent: func(err error) bool {
			return handoff.IsPermanent(err) || errors.Is(err, handoff.ErrInvalid)
		},
		log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		statsEvery: 5 * time.Second,
	}
	r.outages = outages{r: r, every: 30 * time.Second, down: map[string]*outage{}}
	r.progress.Pending = -1
	for _, o := range opts {
		if err := o(r); err != nil {
			return nil, err
		}
	}
	if c, ok := pub.(Checker); ok {
		r.checker = c
	}
	if r.progEvery > 0 && r.progEvery < r.statsEvery {
		r.statsEvery = r.progEvery
	}
	return r, nil
}

// Owner is this relay's name in the lease table.
func (r *Relay) Owner() string { return r.owner }

// ErrRunning is returned by Run while another Run of the same Relay is
// going: start more relays with New, they share the partitions.
var ErrRunning = errors.New("relay: already running")

// Run claims partitions and publishes until ctx is done, then gives up its
// leases and its registration and returns nil. Database and broker errors
// are retried with backoff, and logged (see the package doc); a partition
// count that disagrees with the outbox's (outbox.ErrPartitions) ends Run
// with that error.
func (r *Relay) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer r.running.Store(false)
	wake := make(chan struct{}, 1)
	var wg sync.WaitGroup
	for _, ch := range r.wakeups {
		wg.Add(1)
		go func(ch <-chan struct{}) {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case _, ok := <-ch:
					if !ok {
						return
					}
					select {
					case wake <- struct{}{}:
					default:
					}
				}
			}
		}(ch)
	}
	defer wg.Wait()

	start := time.Now()
	r.published.Store(0)
	r.deadLettered.Store(0)
	r.pmu.Lock()
	r.progress = Progress{Started: start, Pending: -1}
	r.pmu.Unlock()
	if r.checker != nil {
		// The broker is checked apart from publishing, which may block on
		// it: at start, so an unreachable one is said at once, and then on
		// every stats round.
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.checkBroker(ctx)
		}()
	}

	var (
		held       []int
		leaseUntil time.Time // local, conservative: stop publishing before the DB lease ends
		nextClaim  time.Time
		nextStats  time.Time
		nextProg   = start.Add(r.progEvery)
		progFrom   = start
		progCount  int64
		idle       int
		errs       int
		errBackoff = backoff.Exponential{Initial: 50 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2}
		claiming   chan claimed  // a claim running beside the passes; nil: none
		sampling   chan struct{} // closed when the stats query running beside the passes ends; nil: none
	)
	r.deleting = make(map[int64]bool)
	r.deletions = make(chan []int64, 1)
	deleterDone := make(chan struct{})
	go func() { defer close(deleterDone); r.deleter(context.WithoutCancel(ctx)) }()
	defer func() {
		if claiming != nil {
			<-claiming // a claim finishing after Leave would register the relay again
		}
		if sampling != nil {
			<-sampling
		}
		// Finish the deletes of what was published before giving up leases.
		close(r.deletions)
		<-deleterDone
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := r.store.Leave(lctx, r.owner); err != nil {
			r.log.Warn("relay: give up leases and registration; its partitions move when the leases expire", "relay", r.owner, "err", err)
		}
		r.setHeld(nil)
		if r.progEvery > 0 {
			p := r.Progress()
			r.log.Info("relay: stopped", "relay", r.owner, "published", p.Published, "in", time.Since(start).Round(time.Millisecond),
				"per_second", fmt.Sprintf("%.1f", p.Rate()), "dead_lettered", p.DeadLettered)
		}
	}()
	for {
		if ctx.Err() != nil {
			return nil
		}
		now := time.Now()
		if claiming == nil && (now.After(nextClaim) || now.After(leaseUntil)) {
			// The renewal runs beside the passes: its statements (each a
			// commit waiting for its WAL flush) would otherwise stop
			// publishing every leaseTTL/3. The relay waits for it only
			// when its local lease ran out or it holds nothing.
			claiming = make(chan claimed, 1)
			go func(ch chan<- claimed, at time.Time, owners int) {
				h, n, err := r.claimRows(ctx, owners)
				ch <- claimed{held: h, owners: n, err: err, at: at}
			}(claiming, now, r.owners)
		}
		if claiming != nil {
			var c claimed
			got := false
			if now.After(leaseUntil) || len(held) == 0 {
				select {
				case c = <-claiming:
					got = true
				case <-ctx.Done():
					return nil
				}
			} else {
				select {
				case c = <-claiming:
					got = true
				default:
				}
			}
			if got {
				claiming = nil
				now = c.at
				h, err := c.held, c.err
				if err == nil {
					r.owners = c.owners
					h, err = r.fair(ctx, h, c.owners)
				}
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					if errors.Is(err, outbox.ErrPartitions) {
						return fmt.Errorf("relay: %w", err)
					}
					r.outages.failed(PartDatabase, err)
					r.observe(Event{Err: err, Pending: -1})
					held = nil
					r.setHeld(nil)
					leaseUntil = time.Time{}
					errs++
					if !r.sleep(ctx, errBackoff.Delay(errs), nil) {
						return nil
					}
					continue
				}
				r.outages.recovered(PartDatabase)
				held = h
				r.setHeld(held)
				// From the time the claim started: the database's lease
				// runs from a moment after it.
				leaseUntil = now.Add(r.leaseTTL * 2 / 3)
				nextClaim = now.Add(r.leaseTTL / 3)
				now = time.Now()
			}
		}
		if sampling != nil {
			select {
			case <-sampling:
				sampling = nil
			default:
			}
		}
		if now.After(nextStats) && sampling == nil {
			nextStats = now.Add(r.statsEvery)
			if r.observer != nil || r.progEvery > 0 {
				// Beside the passes too: counting the pending rows reads
				// the whole outbox, which takes long with a backlog.
				sampling = make(chan struct{})
				go func(done chan<- struct{}, held []int) {
					defer close(done)
					r.sample(ctx, held)
				}(sampling, slices.Clone(held))
			}
		}
		if r.progEvery > 0 && now.After(nextProg) {
			r.logProgress(progCount, progFrom)
			nextProg, progFrom, progCount = now.Add(r.progEvery), now, r.published.Load()
		}
		if len(held) == 0 {
			if !r.sleep(ctx, r.leaseTTL/3, nil) {
				return nil
			}
			continue
		}
		n, err := r.pass(ctx, held)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil
			}
			errs++
			r.outages.failed(partOf(err), err)
			r.observe(Event{Err: err, Pending: -1, Partitions: held})
			if !r.sleep(ctx, errBackoff.Delay(errs), nil) {
				return nil
			}
		case n == r.batch:
			r.healthy()
			errs, idle = 0, 0 // more waiting: go on at once
		case n > 0:
			r.healthy()
			errs, idle = 0, 0
			// A partial batch: rows committing right now may follow; let
			// a few gather.
			if r.linger > 0 && !r.sleep(ctx, r.linger, nil) {
				return nil
			}
		default:
			r.outages.recovered(PartDatabase)
			errs = 0
			idle++
			if !r.sleep(ctx, r.poll.Delay(idle), wake) {
				return nil
			}
		}
	}
}

// sample reads the outbox's stats into the progress and tells the observer.
func (r *Relay) sample(ctx context.Context, held []int) {
	st, err := r.store.Stats(ctx)
	if err != nil {
		return
	}
	e := Event{Pending: st.Pending, Partitions: held}
	if !st.Oldest.IsZero() {
		e.OldestAge = time.Since(st.Oldest)
	}
	r.pmu.Lock()
	r.progress.Pending, r.progress.OldestAge, r.progress.Held = st.Pending, e.OldestAge, st.Held
	r.pmu.Unlock()
	r.observe(e)
}

// healthy records that a pass reached the database and the broker.
func (r *Relay) healthy() {
	r.outages.recovered(PartDatabase)
	r.outages.recovered(PartBroker)
}

func (r *Relay) setHeld(held []int) {
	r.pmu.Lock()
	r.progress.Partitions = len(held)
	r.pmu.Unlock()
}

// checkBroker checks the broker at once, then every stats round, until
// ctx is done.
func (r *Relay) checkBroker(ctx context.Context) {
	t := time.NewTicker(r.statsEvery)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := r.checker.Check(cctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			r.outages.failed(PartBroker, err)
		} else {
			r.outages.recovered(PartBroker)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sleep waits d, or until a wake-up (which resets nothing by itself: the
// caller's next pass finds the rows). It reports false when ctx is done.
func (r *Relay) sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-wake:
	}
	return true
}

// claimed is the outcome of a claim started at at.
type claimed struct {
	held   []int
	owners int
	err    error
	at     time.Time
}

// share is this relay's fair share of the partitions among owners relays.
func (r *Relay) share(owners int) int { return (r.partitions + max(owners, 1) - 1) / max(owners, 1) }

// claimRows registers the relay, renews its leases and claims free or
// expired partitions up to its share among the owners relays seen last
// (the first time, it reads the outbox's partition count). It runs beside
// the passes; fair, in the loop, gives back what is over the share.
func (r *Relay) claimRows(ctx context.Context, owners int) ([]int, int, error) {
	if r.partitions == 0 {
		n, _, err := outbox.CheckPartitions(ctx, r.store, nil, r.configured, "relay")
		if err != nil {
			return nil, 0, err
		}
		r.partitions = n
	}
	return r.store.Claim(ctx, r.owner, r.share(owners), r.partitions, r.leaseTTL)
}

// fair releases the partitions of held over this relay's share among
// owners relays (another relay joined: it claims them on its next round).
// It runs between passes, so nothing of a released partition is being
// published when another relay can take it.
func (r *Relay) fair(ctx context.Context, held []int, owners int) ([]int, error) {
	if fair := r.share(owners); len(held) > fair {
		// Another relay joined: give back what is over our share; it
		// claims them on its next round.
		sort.Ints(held)
		if err := r.store.Release(ctx, r.owner, held[fair:]); err != nil {
			return nil, err
		}
		held = held[:fair]
	}
	return held, nil
}

// pass publishes one batch and reports how many rows it fetched.
func (r *Relay) pass(ctx context.Context, held []int) (int, error) {
	r.mu.Lock()
	skip := len(r.deleting)
	r.mu.Unlock()
	parts := held
	if len(held) == r.partitions {
		parts = nil // all of them: the store reads without a partition filter
	}
	fetched, err := r.store.Fetch(ctx, parts, r.batch+skip)
	if err != nil {
		return 0, onPart(PartDatabase, fmt.Errorf("relay: fetch: %w", err))
	}
	rows := fetched[:0:0]
	r.mu.Lock()
	for _, row := range fetched {
		if !r.deleting[row.ID] && len(rows) < r.batch {
			rows = append(rows, row)
		}
	}
	r.mu.Unlock()
	if len(rows) == 0 {
		return 0, nil
	}
	// Group by topic, keeping id order within each topic.
	var topics []string
	byTopic := map[string][]outbox.Row{}
	for _, row := range rows {
		if _, ok := byTopic[row.Topic]; !ok {
			topics = append(topics, row.Topic)
		}
		byTopic[row.Topic] = append(byTopic[row.Topic], row)
	}
	var (
		mu        sync.Mutex
		published []int64
		firstErr  error
		wg        sync.WaitGroup
	)
	for _, topic := range topics {
		wg.Add(1)
		go func(topic string, rows []outbox.Row) {
			defer wg.Done()
			ids, err := r.publish(ctx, topic, rows)
			mu.Lock()
			defer mu.Unlock()
			published = append(published, ids...)
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}(topic, byTopic[topic])
	}
	wg.Wait()
	if len(published) > 0 {
		// Deleted in the background while the next batch is fetched and
		// published; until then fetches skip these rows.
		r.mu.Lock()
		for _, id := range published {
			r.deleting[id] = true
		}
		r.mu.Unlock()
		select {
		case r.deletions <- published:
		case <-ctx.Done():
			r.mu.Lock()
			for _, id := range published {
				delete(r.deleting, id)
			}
			r.mu.Unlock()
			return len(rows), firstErr
		}
		r.published.Add(int64(len(published)))
		e := Event{Published: len(published), Partitions: held, Pending: -1}
		e.Lag = time.Since(rows[0].CreatedAt)
		if r.observer != nil {
			e.PartitionLag = partitionLag(rows, published)
		}
		r.observe(e)
	}
	return len(rows), firstErr
}

// deleter removes published rows, one batch at a time. A failed delete
// only forgets the rows: they are fetched and published again with the same
// ids, which brokers' duplicate windows and inboxes absorb.
func (r *Relay) deleter(ctx context.Context) {
	for ids := range r.deletions {
		var err error
		for try := 0; try < 3; try++ {
			if _, err = r.store.Delete(ctx, r.owner, ids); err == nil {
				break
			}
		}
		if err != nil {
			r.log.Warn("relay: delete of published rows failed; they will be published again", "rows", len(ids), "err", err)
			r.observe(Event{Err: fmt.Errorf("relay: delete %d published rows: %w", len(ids), err), Pending: -1})
		}
		r.mu.Lock()
		for _, id := range ids {
			delete(r.deleting, id)
		}
		r.mu.Unlock()
	}
}

// publish sends rows of one topic. On a refusal it finds the culprit:
// permanent failures are dead-lettered and marked failed, and the rest
// published around them in order.
func (r *Relay) publish(ctx context.Context, topic string, rows []outbox.Row) ([]int64, error) {
	msgs := make([]*handoff.Message, 0, len(rows))
	ok := make([]outbox.Row, 0, len(rows))
	var ids []int64
	for _, row := range rows {
		m, err := row.Message()
		if err != nil {
			// Cannot happen for rows the Writer wrote; a hand-written bad row
			// is refused for good.
			if ferr := r.fail(ctx, row, m, err); ferr != nil {
				return ids, ferr
			}
			continue
		}
		msgs = append(msgs, m)
		ok = append(ok, row)
	}
	if len(msgs) == 0 {
		return ids, nil
	}
	err := r.pub.Publish(ctx, topic, msgs...)
	if err == nil {
		for _, row := range ok {
			ids = append(ids, row.ID)
		}
		return ids, nil
	}
	if !r.permanent(err) || len(msgs) == 1 {
		if len(msgs) == 1 && r.permanent(err) {
			return ids, r.fail(ctx, ok[0], msgs[0], err)
		}
		return ids, fmt.Errorf("relay: publish %d to %s: %w", len(msgs), topic, err)
	}
	// Some message was refused for good: publish one by one, in order,
	// skipping every later row of a key whose row failed.
	failedKeys := map[string]bool{}
	for i, m := range msgs {
		row := ok[i]
		if row.Key != "" && failedKeys[row.Key] {
			continue
		}
		if err := r.pub.Publish(ctx, topic, m); err != nil {
			if !r.permanent(err) {
				return ids, fmt.Errorf("relay: publish %s to %s: %w", m.ID, topic, err)
			}
			if ferr := r.fail(ctx, row, m, err); ferr != nil {
				return ids, ferr
			}
			if row.Key != "" {
				failedKeys[row.Key] = true
			}
			continue
		}
		ids = append(ids, row.ID)
	}
	return ids, nil
}

// fail dead-letters a refused row and marks it failed, holding its key.
func (r *Relay) fail(ctx context.Context, row outbox.Row, m *handoff.Message, cause error) error {
	if r.dead == nil {
		return fmt.Errorf("relay: %s refused for good and no dead-letter store configured: %w", row.MessageID, cause)
	}
	if m == nil {
		m = &handoff.Message{ID: row.MessageID, Data: row.Envelope}
	}
	now := time.Now().UTC()
	l := &dlq.Letter{Consumer: dlq.RelayConsumer, Topic: row.Topic, Message: m, Class: dlq.ClassPublish,
		Errors: dlq.Chain(cause), Attempts: row.Attempts + 1, FirstFailure: now, LastFailure: now}
	if err := r.dead.Add(ctx, l); err != nil {
		return onPart(PartDatabase, fmt.Errorf("relay: dead-letter %s: %w", row.MessageID, err))
	}
	if err := r.store.Fail(ctx, row.ID, errors.Join(cause).Error()); err != nil {
		return onPart(PartDatabase, fmt.Errorf("relay: mark %s failed: %w", row.MessageID, err))
	}
	r.deadLettered.Add(1)
	r.log.Warn("relay: message refused by the broker; dead-lettered, its key is held until the letter is replayed, purged or deleted",
		"id", row.MessageID, "letter", l.ID, "topic", row.Topic, "key", row.Key, "err", cause)
	return nil
}

// partitionLag returns, per partition, the age of the oldest row of rows
// whose id is in published.
func partitionLag(rows []outbox.Row, published []int64) map[int]time.Duration {
	ok := make(map[int64]bool, len(published))
	for _, id := range published {
		ok[id] = true
	}
	now := time.Now()
	lag := map[int]time.Duration{}
	for _, row := range rows {
		if !ok[row.ID] {
			continue
		}
		if d := now.Sub(row.CreatedAt); d > lag[row.Partition] {
			lag[row.Partition] = d
		}
	}
	return lag
}

func (r *Relay) observe(e Event) {
	if r.observer != nil {
		r.observer.ObserveRelay(e)
	}
}
