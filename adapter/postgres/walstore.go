package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/handoffhq/handoff/internal/sqlstore"
	"github.com/handoffhq/handoff/outbox"
)

// WALForm is how an outbox store in WAL mode records events in the caller's
// transaction, for a [WALRelay] to read from a logical replication slot.
type WALForm int

const (
	// WALMessages writes each event as a transactional logical decoding
	// message (pg_logical_emit_message(true, WALPrefix, …)): no table row,
	// nothing to delete or vacuum. The message is decoded only if it
	// commits, in commit order.
	WALMessages WALForm = iota + 1
	// WALRows writes each event as a plain row of handoff_outbox, without
	// the per-key lock or NOTIFY of table mode (commit order comes from the
	// WAL); the WAL relay reads the inserts from the slot and deletes the
	// rows after publishing them. It leaves the events queryable in SQL
	// until then.
	WALRows
)

func (f WALForm) String() string {
	switch f {
	case WALMessages:
		return "messages"
	case WALRows:
		return "rows"
	}
	return "WALForm(" + strconv.Itoa(int(f)) + ")"
}

// WALPrefix is the prefix of the logical decoding messages the outbox
// writes in WAL mode.
const WALPrefix = "handoff.outbox"

// StoreOption configures OutboxStore.
type StoreOption func(*storeOptions)

type storeOptions struct{ wal WALForm }

// WithWAL puts the outbox store in WAL mode: events are written as form
// says, read by a [WALRelay] from a logical replication slot (wal_level =
// logical), in commit order, with no per-key lock and no NOTIFY. The
// writer's API (outbox.Writer.Add) is the same in both modes. Create the
// slot ([SetupWAL], or the relay's first start) before the first write: an
// event committed while no slot exists is not decoded.
func WithWAL(form WALForm) StoreOption { return func(o *storeOptions) { o.wal = form } }

// walStore writes events for a WAL relay.
type walStore struct {
	form   WALForm
	inner  *sqlstore.OutboxStore // table mode's store, for the partition count
	prefix string
}

// Insert implements outbox.Store: one statement for all rows, in their
// order, no key lock (the WAL gives commit order per key).
func (s *walStore) Insert(ctx context.Context, tx outbox.Execer, rows []outbox.Row) error {
	for _, r := range rows {
		if len(r.Key) > 255 {
			return fmt.Errorf("partition key %.20q...: longer than 255 bytes", r.Key)
		}
	}
	if s.form == WALRows {
		var b strings.Builder
		b.WriteString(`INSERT INTO handoff_outbox (topic, partition_no, partition_key, message_id, envelope, created_at) VALUES `)
		args := make([]any, 0, len(rows)*6)
		for i, r := range rows {
			if i > 0 {
				b.WriteString(", ")
			}
			n := len(args)
			fmt.Fprintf(&b, "($%d, $%d, $%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4, n+5, n+6)
			args = append(args, r.Topic, r.Partition, r.Key, r.MessageID, r.Envelope, r.CreatedAt)
		}
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("insert %d rows: %w", len(rows), err)
		}
		return nil
	}
	// The select list is evaluated left to right: the messages are
	// emitted, and decoded, in the rows' order.
	var b strings.Builder
	b.WriteString("SELECT ")
	args := make([]any, 0, len(rows)+1)
	args = append(args, s.prefix)
	for i, r := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "pg_logical_emit_message(true, $1, $%d::bytea)", i+2)
		args = append(args, encodeWALEvent(r))
	}
	if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
		return fmt.Errorf("emit %d logical decoding messages: %w", len(rows), err)
	}
	return nil
}

// Partitions implements outbox.Store. Partitions mean nothing in WAL mode
// (one reader per slot, in commit order); with WALRows the count is
// recorded as in table mode, since the rows carry it.
func (s *walStore) Partitions(ctx context.Context, tx outbox.Execer, n int) (int, bool, error) {
	if s.form == WALRows {
		return s.inner.Partitions(ctx, tx, n)
	}
	return n, false, nil
}

// walEventVersion is the first byte of a WAL message's content.
const walEventVersion = 1

// encodeWALEvent is the content of one event's logical decoding message:
// a version byte, then topic, partition key and message id, each as a
// uvarint length and its bytes, then the CloudEvents JSON envelope.
func encodeWALEvent(r outbox.Row) []byte {
	b := make([]byte, 0, 1+3*binary.MaxVarintLen32+len(r.Topic)+len(r.Key)+len(r.MessageID)+len(r.Envelope))
	b = append(b, walEventVersion)
	for _, s := range []string{r.Topic, r.Key, r.MessageID} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return append(b, r.Envelope...)
}

// errWALEvent is a logical decoding message with the outbox's prefix that
// is not an event this package wrote.
var errWALEvent = errors.New("postgres: malformed outbox WAL message")

// decodeWALEvent reverses encodeWALEvent; the row's envelope aliases b.
func decodeWALEvent(b []byte) (outbox.Row, error) {
	var r outbox.Row
	if len(b) == 0 || b[0] != walEventVersion {
		return r, fmt.Errorf("%w: unknown version", errWALEvent)
	}
	b = b[1:]
	var parts [3]string
	for i := range parts {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return r, fmt.Errorf("%w: field %d: bad length", errWALEvent, i)
		}
		parts[i] = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	r.Topic, r.Key, r.MessageID, r.Envelope = parts[0], parts[1], parts[2], b
	if r.Topic == "" || r.MessageID == "" {
		return r, fmt.Errorf("%w: topic and message id are required", errWALEvent)
	}
	return r, nil
}
