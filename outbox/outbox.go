// Package outbox writes events in the caller's own database transaction, so
// an event is committed if and only if the business rows it describes are.
// The relay (package relay) later publishes committed events to a broker and
// only then removes them.
//
//	w, err := outbox.New(postgres.OutboxStore(db))
//	...
//	tx, err := db.BeginTx(ctx, nil)
//	...
//	_, err = tx.ExecContext(ctx, `INSERT INTO orders (id, total) VALUES ($1, $2)`, id, total)
//	...
//	err = w.Add(ctx, tx, "orders", handoff.NewMessage("/orders", "order.placed", data))
//	...
//	err = tx.Commit()
//
// Guarantees: every message is validated before anything is written (an
// invalid one fails the call and writes nothing), its size included: what
// the writer accepts the relay's broker takes (handoff.DefaultMaxMessageSize
// by default, safely below every supported broker's default limit, or the
// broker's own limit with WithBrokerLimit); the event row commits or
// rolls back with the transaction; messages of one partition key are
// published in the order their transactions committed. That last one is how
// the store writes a key: it takes a lock on the key in the same
// transaction (an advisory lock on PostgreSQL, a row lock elsewhere), so two transactions writing the same key commit one after the
// other and their rows are numbered in commit order (a plain auto-increment
// id is taken at insert, not commit, and would not do).
//
// The writer does not publish, retry or talk to a broker.
package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"sync/atomic"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/telemetry"
)

// Execer is what Add needs of a transaction: *sql.Tx has it, and
// adapter/postgres adapts a pgx.Tx to it.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Row is one event as stored.
type Row struct {
	ID        int64 // assigned by the store, in commit order per key
	Topic     string
	Partition int
	Key       string // partition key; "" for none
	MessageID string
	Envelope  []byte // the message in CloudEvents JSON structured mode
	CreatedAt time.Time
	Attempts  int // failed publish attempts so far

	// What a store records in its trace journal when the message has a
	// correlation id (set by Writer.Add; not read back by relays).
	CorrelationID, CausationID, Type, Source string
}

// Message decodes the row's envelope. It does not validate again: the
// Writer validated the message before storing it, and publishers validate
// what they send.
func (r *Row) Message() (*handoff.Message, error) {
	m := &handoff.Message{}
	if err := m.UnmarshalJSON(r.Envelope); err != nil {
		return m, err
	}
	return m, nil
}

// Store writes rows inside a caller's transaction.
type Store interface {
	// Insert locks each distinct non-empty key (in sorted order) and inserts
	// the rows, all in tx.
	Insert(ctx context.Context, tx Execer, rows []Row) error
	// Partitions returns the partition count recorded with the outbox. When
	// none is recorded yet it records n and returns it. A store reads and
	// records on its own (always with tx nil), or in tx where it must (one
	// writer, as SQLite), and then reports inTx: the answer lasts only as
	// long as tx does. relay.Store has the same method.
	Partitions(ctx context.Context, tx Execer, n int) (stored int, inTx bool, err error)
}

// Writer adds events to the outbox.
type Writer struct {
	store      Store
	partitions int          // configured; 0: follow the outbox
	resolved   atomic.Int64 // the outbox's count, once read from a committed record
	maxSize    int
	sizeSet    bool
	limiter    Limiter
	wake       chan struct{}
	validator  Validator
}

// Limiter is a broker that can tell whether it would take a message for
// its size. The broker adapters' clients implement it from the broker's own
// limit: NATS from the server's max_payload (headers included), Kafka from
// the producer's batch limit and the topic's max.message.bytes, RabbitMQ
// and the memory broker from their WithMaxMessageSize.
type Limiter interface {
	CheckSize(ctx context.Context, topic string, m *handoff.Message) error
}

// WithBrokerLimit makes Add refuse, before anything is written, a message
// the relay's broker would refuse for its size, with the broker's error
// (naming the size, the limit and the way out). It replaces the default
// size limit (handoff.DefaultMaxMessageSize); a limit set with
// WithMaxMessageSize applies as well.
func WithBrokerLimit(l Limiter) Option {
	return func(w *Writer) error {
		if l == nil {
			return errors.New("outbox: WithBrokerLimit: limiter must not be nil")
		}
		w.limiter = l
		return nil
	}
}

// Validator checks a message before it is written, for WithValidator.
// registry.Validator is one: it checks the data against the schema
// registered for the topic.
type Validator interface {
	ValidateMessage(ctx context.Context, topic string, m *handoff.Message) error
}

// WithValidator checks every message at Add: if one is refused, Add
// returns the validator's error (naming the failing path) and nothing is
// written.
func WithValidator(v Validator) Option {
	return func(w *Writer) error {
		if v == nil {
			return errors.New("outbox: WithValidator: validator must not be nil")
		}
		w.validator = v
		return nil
	}
}

// Option configures a Writer.
type Option func(*Writer) error

// DefaultPartitions is the number of partitions keys are hashed into, unless
// the outbox was created with another. Relays claim partitions, so it
// bounds how many relays share the work.
const DefaultPartitions = 32

// WithPartitions sets the number of partitions. The count is a property of
// the outbox: the first writer or relay to use a store records its count
// there (this one, or DefaultPartitions), and a writer or relay configured
// with another count then fails with a [PartitionsError] naming both. Left
// out, a writer follows the outbox's count.
func WithPartitions(n int) Option {
	return func(w *Writer) error {
		if n < 1 || n > 4096 {
			return fmt.Errorf("outbox: WithPartitions(%d): must be between 1 and 4096", n)
		}
		w.partitions = n
		return nil
	}
}

// WithMaxMessageSize refuses messages larger than n bytes (by
// handoff.Message.Size, an upper bound of the encoded size) at Add, before
// anything is written; 0: no limit. The default,
// handoff.DefaultMaxMessageSize, is safely below every supported broker's
// default limit; with WithBrokerLimit the broker's own limit replaces it.
func WithMaxMessageSize(n int) Option {
	return func(w *Writer) error {
		if n < 0 {
			return fmt.Errorf("outbox: WithMaxMessageSize(%d): must be ≥ 0", n)
		}
		w.maxSize, w.sizeSet = n, true
		return nil
	}
}

// New returns a Writer over store.
func New(store Store, opts ...Option) (*Writer, error) {
	if store == nil {
		return nil, errors.New("outbox: store is required")
	}
	w := &Writer{store: store, maxSize: handoff.DefaultMaxMessageSize, wake: make(chan struct{}, 1)}
	for _, o := range opts {
		if err := o(w); err != nil {
			return nil, err
		}
	}
	if w.limiter != nil && !w.sizeSet {
		w.maxSize = 0 // the broker's limit replaces the default
	}
	return w, nil
}

// Partition returns the partition of a key: FNV-1a of the key modulo n.
// Messages without a key are spread by their id.
func Partition(key, id string, n int) int {
	h := fnv.New32a()
	if key != "" {
		h.Write([]byte(key))
	} else {
		h.Write([]byte(id))
	}
	return int(h.Sum32() % uint32(n))
}

// Add writes msgs for topic in tx. Each message is validated first; if one
// is invalid, nothing is written. A message without a trace context gets the
// one of ctx, so its publish span links back to this write; one without a
// correlation or causation id gets those ctx carries
// (handoff.ContextWithCause: in a handler, the incoming message's), so a
// flow of events can be traced by its correlation id.
func (w *Writer) Add(ctx context.Context, tx Execer, topic string, msgs ...*handoff.Message) error {
	if tx == nil {
		return errors.New("outbox: add: tx is required")
	}
	if topic == "" {
		return errors.New("outbox: add: topic is required")
	}
	if len(msgs) == 0 {
		return nil
	}
	parts, err := w.partitionCount(ctx, tx)
	if err != nil {
		return fmt.Errorf("outbox: add to %s: %w", topic, err)
	}
	rows := make([]Row, len(msgs))
	now := time.Now().UTC()
	for i, m := range msgs {
		if m == nil {
			return &handoff.ValidationError{Attribute: "message", Rule: fmt.Sprintf("message %d is nil", i)}
		}
		handoff.Correlate(ctx, m)
		telemetry.Inject(ctx, m)
		if err := m.Validate(); err != nil {
			return fmt.Errorf("outbox: add to %s: %w", topic, err)
		}
		if err := handoff.CheckSize(m, w.maxSize); err != nil {
			return fmt.Errorf("outbox: add to %s: %w", topic, err)
		}
		if w.limiter != nil {
			if err := w.limiter.CheckSize(ctx, topic, m); err != nil {
				return fmt.Errorf("outbox: add to %s: the broker would refuse it: %w", topic, err)
			}
		}
		if w.validator != nil {
			if err := w.validator.ValidateMessage(ctx, topic, m); err != nil {
				return fmt.Errorf("outbox: add %s to %s: %w", m.ID, topic, err)
			}
		}
		env, err := m.MarshalJSON()
		if err != nil {
			return fmt.Errorf("outbox: add %s: encode: %w", m.ID, err)
		}
		rows[i] = Row{Topic: topic, Partition: Partition(m.PartitionKey, m.ID, parts), Key: m.PartitionKey,
			MessageID: m.ID, Envelope: env, CreatedAt: now,
			CorrelationID: m.CorrelationID, CausationID: m.CausationID, Type: m.Type, Source: m.Source}
	}
	if err := w.store.Insert(ctx, tx, rows); err != nil {
		return fmt.Errorf("outbox: add to %s: %w", topic, err)
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return nil
}

// partitionCount returns the outbox's partition count, checking the
// configured one against it: read from the store once per Writer (on every
// Add where the store answers inside tx); while none exists, this writer
// records its own.
func (w *Writer) partitionCount(ctx context.Context, tx Execer) (int, error) {
	if n := w.resolved.Load(); n > 0 {
		return int(n), nil
	}
	n, inTx, err := CheckPartitions(ctx, w.store, tx, w.partitions, "outbox writer")
	if err != nil {
		return 0, err
	}
	if !inTx {
		w.resolved.Store(int64(n))
	}
	return n, nil
}

// Partitioner is the method outbox.Store and relay.Store share.
type Partitioner interface {
	Partitions(ctx context.Context, tx Execer, n int) (stored int, inTx bool, err error)
}

// ErrPartitions is matched (errors.Is) by every [PartitionsError].
var ErrPartitions = errors.New("outbox: partition count mismatch")

// PartitionsError is returned when a writer or relay configured with one
// partition count (WithPartitions) meets an outbox created with another:
// rows would land in partitions no relay claims, or keys would move
// between partitions and lose their order.
type PartitionsError struct {
	Who        string // "outbox writer" or "relay"
	Configured int
	Stored     int
}

func (e *PartitionsError) Error() string {
	return fmt.Sprintf("%s configured with %d partitions (WithPartitions), but the outbox was created with %d: "+
		"writers and relays of one outbox must agree (leave WithPartitions out to follow the outbox)", e.Who, e.Configured, e.Stored)
}

// Is reports whether target is [ErrPartitions].
func (e *PartitionsError) Is(target error) bool { return target == ErrPartitions }

// CheckPartitions returns the partition count of the outbox behind p,
// recording configured (DefaultPartitions when 0) if none is recorded yet
// (see Store.Partitions), and a [PartitionsError] when a configured count
// differs from it. inTx reports an answer read or recorded inside tx. The
// relay uses it too, so the rule exists once.
func CheckPartitions(ctx context.Context, p Partitioner, tx Execer, configured int, who string) (n int, inTx bool, err error) {
	want := configured
	if want == 0 {
		want = DefaultPartitions
	}
	n, inTx, err = p.Partitions(ctx, tx, want)
	if err != nil {
		return 0, false, fmt.Errorf("partition count: %w", err)
	}
	if configured != 0 && n != configured {
		return 0, false, &PartitionsError{Who: who, Configured: configured, Stored: n}
	}
	return n, inTx, nil
}

// Wakeups signals after each Add, for a relay in the same process
// (relay.WithWakeups): it polls at once and then quickly again, since the
// signal may come before the transaction commits.
func (w *Writer) Wakeups() <-chan struct{} { return w.wake }

// SortedKeys returns the distinct non-empty keys of rows in sorted order: the
// order a store locks them in, so two transactions never deadlock on keys.
func SortedKeys(rows []Row) []string {
	seen := make(map[string]bool, len(rows))
	var keys []string
	for _, r := range rows {
		if r.Key != "" && !seen[r.Key] {
			seen[r.Key] = true
			keys = append(keys, r.Key)
		}
	}
	sort.Strings(keys)
	return keys
}
