package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/outbox"
	"github.com/handoffhq/handoff/relay"
)

// OutboxStore implements outbox.Store and relay.Store.
// The relay's held keys are read from the dead letters in the same
// database (handoff_dlq).
type OutboxStore struct {
	db          DB
	d           *Dialect
	notify      bool
	notifyEvery time.Duration
	lastNotify  atomic.Int64 // unix nanos of this store's last NOTIFY
	now         func() time.Time
}

// NotifyEvery is the least time between two NOTIFYs of one store: PostgreSQL
// serialises the commits of notifying transactions (a global lock), which
// halved the writers' commit rate when every transaction notified. A relay
// woken by one notification fetches until it finds nothing, so it picks up
// the rows of the transactions that skipped theirs, and its poll backoff
// covers the rest.
const NotifyEvery = 5 * time.Millisecond

// NewOutboxStore returns the outbox store of db. With notify (PostgreSQL
// only), an insert also runs NOTIFY handoff_outbox, delivered at commit, at
// most once every NotifyEvery.
func NewOutboxStore(db DB, d *Dialect, notify bool) *OutboxStore {
	return &OutboxStore{db: db, d: d, notify: notify && d.Name == "postgres", notifyEvery: NotifyEvery, now: time.Now}
}

// NotifyChannel is the PostgreSQL channel the outbox notifies on commit.
const NotifyChannel = "handoff_outbox"

func (s *OutboxStore) lockKeySQL() string {
	if s.d.Name == "mysql" {
		return `INSERT INTO handoff_outbox_keys (partition_key, writes) VALUES (?, 1) ON DUPLICATE KEY UPDATE writes = writes + 1`
	}
	return `INSERT INTO handoff_outbox_keys (partition_key, writes) VALUES (?, 1)
		ON CONFLICT (partition_key) DO UPDATE SET writes = handoff_outbox_keys.writes + 1`
}

func placeholders(n, per int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j := 0; j < per; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('?')
		}
		b.WriteByte(')')
	}
	return b.String()
}

func inList(n int) string {
	return "(" + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")"
}

// keyLockClass is the first half of the PostgreSQL advisory lock a writer
// takes on a partition key ("hand" in ASCII); the second is the key's
// 32-bit FNV-1a hash.
const keyLockClass = 0x68616e64

// Insert implements outbox.Store: it locks each distinct key in sorted
// order, then inserts all rows with one statement.
//
// On PostgreSQL the lock is a transaction-scoped advisory lock on the key's
// hash (pg_advisory_xact_lock), held to commit like the row lock of an
// upsert but without writing a row, a WAL record or a dead tuple per
// event (measured in bench/README.md). Keys whose hashes collide share a
// lock: their writers wait for each other, which costs time, never order.
// Locks are taken in hash order, so two writers never deadlock.
func (s *OutboxStore) Insert(ctx context.Context, tx outbox.Execer, rows []outbox.Row) error {
	keys := outbox.SortedKeys(rows)
	for _, k := range keys {
		if len(k) > 255 {
			return fmt.Errorf("partition key %.20q...: longer than 255 bytes", k)
		}
	}
	if s.d.Name == "postgres" {
		hashes := make([]int32, 0, len(keys))
		for _, k := range keys {
			h := fnv.New32a()
			h.Write([]byte(k))
			hashes = append(hashes, int32(h.Sum32()))
		}
		slices.Sort(hashes)
		hashes = slices.Compact(hashes)
		for i, h := range hashes {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, int32(keyLockClass), h); err != nil {
				return fmt.Errorf("lock key %d of %d: %w", i+1, len(hashes), err)
			}
		}
	} else {
		lock := s.d.q(s.lockKeySQL())
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, lock, k); err != nil {
				return fmt.Errorf("lock key %q: %w", k, err)
			}
		}
	}
	const per = 6
	args := make([]any, 0, len(rows)*per)
	for _, r := range rows {
		args = append(args, r.Topic, r.Partition, r.Key, r.MessageID, r.Envelope, s.d.timeArg(r.CreatedAt))
	}
	q := `INSERT INTO handoff_outbox (topic, partition_no, partition_key, message_id, envelope, created_at) VALUES ` + placeholders(len(rows), per)
	if _, err := tx.ExecContext(ctx, s.d.q(q), args...); err != nil {
		return fmt.Errorf("insert %d rows: %w", len(rows), err)
	}
	if err := s.journalSent(ctx, tx, rows); err != nil {
		return fmt.Errorf("record %d rows in the trace journal: %w", len(rows), err)
	}
	if s.notify {
		now, last := time.Now().UnixNano(), s.lastNotify.Load()
		if now-last >= int64(s.notifyEvery) && s.lastNotify.CompareAndSwap(last, now) {
			if _, err := tx.ExecContext(ctx, "NOTIFY "+NotifyChannel); err != nil {
				return fmt.Errorf("notify: %w", err)
			}
		}
	}
	return nil
}

// Partitions implements outbox.Store and relay.Store: it reads the recorded
// count and, when there is none, records n. On PostgreSQL and MySQL both are
// statements of their own, the record committed at once, never part of the
// caller's transaction: held there it would make every other writer's and
// relay's first statement wait for that transaction to end. SQLite has one
// writer, whose transaction holds the database's write lock (and one of the
// pool's few connections), so there both go in tx when one is given and
// can query (a *sql.Tx), and the answer is reported as inTx: it is only as
// final as tx. An insert racing another one waits for it (the primary key)
// and then reads the winner's count.
func (s *OutboxStore) Partitions(ctx context.Context, tx outbox.Execer, n int) (int, bool, error) {
	q := Querier(nil)
	if rq, ok := tx.(sqlQueryer); ok && s.d.Name == "sqlite" {
		q = sqlQuerier{rq} // a *sql.Tx: the store can read in it too
	}
	inTx := q != nil
	if q == nil {
		q = s.db
	}
	read := func() (int, error) {
		var got int
		err := q.QueryRow(ctx, `SELECT partitions FROM handoff_outbox_config WHERE id = 1`).Scan(&got)
		return got, err
	}
	got, err := read()
	if err == nil {
		return got, inTx, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, false, fmt.Errorf("read handoff_outbox_config: %w", err)
	}
	ins := `INSERT INTO handoff_outbox_config (id, partitions, created_at) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING`
	if s.d.Name == "mysql" {
		ins = `INSERT IGNORE INTO handoff_outbox_config (id, partitions, created_at) VALUES (1, ?, ?)`
	}
	k, err := q.Exec(ctx, s.d.q(ins), n, s.d.timeArg(s.now().UTC()))
	if err != nil {
		return 0, false, fmt.Errorf("record partition count: %w", err)
	}
	if k == 1 {
		return n, inTx, nil
	}
	if got, err = read(); err != nil {
		return 0, false, fmt.Errorf("read handoff_outbox_config: %w", err)
	}
	return got, inTx, nil
}

// Claim implements relay.Store.
func (s *OutboxStore) Claim(ctx context.Context, owner string, want, total int, ttl time.Duration) ([]int, int, error) {
	now := s.now().UTC()
	until := now.Add(ttl)
	upsert := `INSERT INTO handoff_relays (owner, expires_at) VALUES (?, ?)
		ON CONFLICT (owner) DO UPDATE SET expires_at = excluded.expires_at`
	if s.d.Name == "mysql" {
		upsert = `INSERT INTO handoff_relays (owner, expires_at) VALUES (?, ?) ON DUPLICATE KEY UPDATE expires_at = VALUES(expires_at)`
	}
	if _, err := s.db.Exec(ctx, s.d.q(upsert), owner, s.d.timeArg(until)); err != nil {
		return nil, 0, fmt.Errorf("register relay: %w", err)
	}
	if _, err := s.db.Exec(ctx, s.d.q(`UPDATE handoff_outbox_leases SET expires_at = ? WHERE owner = ?`), s.d.timeArg(until), owner); err != nil {
		return nil, 0, fmt.Errorf("renew leases: %w", err)
	}
	rows, err := s.db.Query(ctx, `SELECT partition_no, owner, expires_at FROM handoff_outbox_leases`)
	if err != nil {
		return nil, 0, fmt.Errorf("read leases: %w", err)
	}
	taken := map[int]bool{}
	var held []int
	var expired []int
	for rows.Next() {
		var p int
		var o string
		var exp time.Time
		if err := rows.Scan(&p, &o, timeScan{&exp}); err != nil {
			rows.Close()
			return nil, 0, err
		}
		taken[p] = true
		switch {
		case o == owner:
			held = append(held, p)
		case !exp.After(now):
			expired = append(expired, p)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	if len(held) > total {
		held = held[:0]
	}
	insert := `INSERT INTO handoff_outbox_leases (partition_no, owner, expires_at) VALUES (?, ?, ?) ON CONFLICT (partition_no) DO NOTHING`
	if s.d.Name == "mysql" {
		insert = `INSERT IGNORE INTO handoff_outbox_leases (partition_no, owner, expires_at) VALUES (?, ?, ?)`
	}
	for p := 0; p < total && len(held) < want; p++ {
		if taken[p] {
			continue
		}
		n, err := s.db.Exec(ctx, s.d.q(insert), p, owner, s.d.timeArg(until))
		if err != nil {
			return nil, 0, fmt.Errorf("claim partition %d: %w", p, err)
		}
		if n == 1 {
			held = append(held, p)
		}
	}
	for _, p := range expired {
		if len(held) >= want || p >= total {
			break
		}
		// Take over an expired lease, unless someone else just did.
		n, err := s.db.Exec(ctx, s.d.q(`UPDATE handoff_outbox_leases SET owner = ?, expires_at = ? WHERE partition_no = ? AND expires_at <= ?`),
			owner, s.d.timeArg(until), p, s.d.timeArg(now))
		if err != nil {
			return nil, 0, fmt.Errorf("take over partition %d: %w", p, err)
		}
		if n == 1 {
			held = append(held, p)
		}
	}
	var owners int
	if err := s.db.QueryRow(ctx, s.d.q(`SELECT COUNT(*) FROM handoff_relays WHERE expires_at > ?`), s.d.timeArg(now)).Scan(&owners); err != nil {
		return nil, 0, fmt.Errorf("count relays: %w", err)
	}
	return held, owners, nil
}

// Release implements relay.Store.
func (s *OutboxStore) Release(ctx context.Context, owner string, partitions []int) error {
	if len(partitions) == 0 {
		return nil
	}
	args := []any{owner}
	for _, p := range partitions {
		args = append(args, p)
	}
	_, err := s.db.Exec(ctx, s.d.q(`DELETE FROM handoff_outbox_leases WHERE owner = ? AND partition_no IN `+inList(len(partitions))), args...)
	if err != nil {
		return fmt.Errorf("release leases: %w", err)
	}
	return nil
}

// Fetch implements relay.Store. nil partitions means all of them: the
// query is then a plain index scan of the primary key in id order, which
// also marks the index entries of deleted rows dead, so a table churned by
// inserts and deletes stays cheap to read between vacuums (a filter on many
// partitions made PostgreSQL bitmap-scan every dead entry).
func (s *OutboxStore) Fetch(ctx context.Context, partitions []int, limit int) ([]outbox.Row, error) {
	if partitions != nil && len(partitions) == 0 {
		return nil, nil
	}
	if s.d.Name == "postgres" {
		return s.fetchPostgres(ctx, partitions, limit)
	}
	// Keys held back by a failed row: few or none, found through a small
	// index, and excluded only when there are any.
	failed, err := s.failedKeys(ctx)
	if err != nil {
		return nil, err
	}
	var where []string
	var args []any
	where = append(where, "failed_at IS NULL")
	if partitions != nil {
		where = append(where, "partition_no IN "+inList(len(partitions)))
		for _, p := range partitions {
			args = append(args, p)
		}
	}
	if len(failed) > 0 {
		where = append(where, "partition_key NOT IN "+inList(len(failed)))
		for _, k := range failed {
			args = append(args, k)
		}
	}
	args = append(args, limit)
	q := `SELECT id, topic, partition_no, partition_key, message_id, envelope, created_at, attempts
		FROM handoff_outbox WHERE ` + strings.Join(where, " AND ") + ` ORDER BY id LIMIT ?`
	rows, err := s.db.Query(ctx, s.d.q(q), args...)
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	defer rows.Close()
	var out []outbox.Row
	for rows.Next() {
		var r outbox.Row
		if err := rows.Scan(&r.ID, &r.Topic, &r.Partition, &r.Key, &r.MessageID, &r.Envelope, timeScan{&r.CreatedAt}, &r.Attempts); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// fetchPostgres is Fetch in one statement, one round trip: what failedKeys
// and the fetch do in two on the other databases. The data-modifying CTE
// removes the failed rows whose letter was replayed, purged or deleted
// (it writes, and waits for a commit, only when there are such rows); the
// NOT IN excludes the keys of failed rows whose letter is open, a hashed
// set read through the small partial index of failed rows. Both see the
// statement's one snapshot.
func (s *OutboxStore) fetchPostgres(ctx context.Context, partitions []int, limit int) ([]outbox.Row, error) {
	args := []any{dlq.RelayConsumer, dlq.RelayConsumer}
	where := "o.failed_at IS NULL"
	if partitions != nil {
		where += " AND o.partition_no IN " + inList(len(partitions))
		for _, p := range partitions {
			args = append(args, p)
		}
	}
	args = append(args, limit)
	q := `WITH resolved AS (
		DELETE FROM handoff_outbox r WHERE r.failed_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM handoff_dlq d
			WHERE d.message_id = r.message_id AND d.consumer = ? AND d.replayed_at IS NULL)
		RETURNING r.id)
	SELECT o.id, o.topic, o.partition_no, o.partition_key, o.message_id, o.envelope, o.created_at, o.attempts
	FROM handoff_outbox o
	WHERE o.partition_key NOT IN (SELECT f.partition_key FROM handoff_outbox f
		WHERE f.failed_at IS NOT NULL AND f.partition_key <> '' AND EXISTS (SELECT 1 FROM handoff_dlq d
			WHERE d.message_id = f.message_id AND d.consumer = ? AND d.replayed_at IS NULL))
	AND ` + where + ` ORDER BY o.id LIMIT ?`
	rows, err := s.db.Query(ctx, s.d.q(q), args...)
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	defer rows.Close()
	var out []outbox.Row
	for rows.Next() {
		var r outbox.Row
		if err := rows.Scan(&r.ID, &r.Topic, &r.Partition, &r.Key, &r.MessageID, &r.Envelope, timeScan{&r.CreatedAt}, &r.Attempts); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// openLetter is the condition that a failed outbox row's dead letter is
// open: a letter of the relay for its message id, not replayed. Its one
// argument is dlq.RelayConsumer.
const openLetter = `EXISTS (SELECT 1 FROM handoff_dlq d WHERE d.message_id = handoff_outbox.message_id
	AND d.consumer = ? AND d.replayed_at IS NULL)`

// failedKeys returns the keys held by a failed row whose dead letter is
// open, and removes the failed rows whose letter was replayed, purged or
// deleted: whoever did it (the library, the CLI, the HTTP API), the key is
// free from the next fetch on. Failed rows are few, found through a small
// index; with none, this is one empty index scan.
func (s *OutboxStore) failedKeys(ctx context.Context) ([]string, error) {
	rows, err := s.db.Query(ctx, s.d.q(`SELECT id, partition_key, CASE WHEN `+openLetter+` THEN 1 ELSE 0 END
		FROM handoff_outbox WHERE failed_at IS NOT NULL`), dlq.RelayConsumer)
	if err != nil {
		return nil, fmt.Errorf("fetch failed keys: %w", err)
	}
	defer rows.Close()
	var keys []string
	var resolved []any
	seen := map[string]bool{}
	for rows.Next() {
		var id int64
		var k string
		var held int
		if err := rows.Scan(&id, &k, &held); err != nil {
			return nil, err
		}
		switch {
		case held == 0:
			resolved = append(resolved, id)
		case k != "" && !seen[k]:
			seen[k] = true
			keys = append(keys, k)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	if len(resolved) > 0 {
		// The letter's state is read again under the delete: a letter
		// added meanwhile for a row keeps it.
		args := append([]any{dlq.RelayConsumer}, resolved...)
		if _, err := s.db.Exec(ctx, s.d.q(`DELETE FROM handoff_outbox WHERE failed_at IS NOT NULL AND NOT `+openLetter+
			` AND id IN `+inList(len(resolved))), args...); err != nil {
			return nil, fmt.Errorf("remove resolved failed rows: %w", err)
		}
	}
	return keys, nil
}

// Leave implements relay.Store.
func (s *OutboxStore) Leave(ctx context.Context, owner string) error {
	if _, err := s.db.Exec(ctx, s.d.q(`DELETE FROM handoff_outbox_leases WHERE owner = ?`), owner); err != nil {
		return fmt.Errorf("release leases: %w", err)
	}
	if _, err := s.db.Exec(ctx, s.d.q(`DELETE FROM handoff_relays WHERE owner = ?`), owner); err != nil {
		return fmt.Errorf("unregister relay: %w", err)
	}
	return nil
}

// Delete implements relay.Store, fenced by owner's live leases.
func (s *OutboxStore) Delete(ctx context.Context, owner string, ids []int64) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	args := make([]any, 0, len(ids)+2)
	for _, id := range ids {
		args = append(args, id)
	}
	args = append(args, owner, s.d.timeArg(s.now().UTC()))
	q := s.d.q(`DELETE FROM handoff_outbox WHERE id IN ` + inList(len(ids)) + `
		AND partition_no IN (SELECT partition_no FROM handoff_outbox_leases WHERE owner = ? AND expires_at > ?)`)
	if s.d.Name != "postgres" {
		n, err := s.db.Exec(ctx, q, args...)
		if err != nil {
			return 0, fmt.Errorf("delete: %w", err)
		}
		return int(n), nil
	}
	// On PostgreSQL the delete does not wait for its WAL flush: a delete
	// lost in a crash only publishes the rows again with the same ids,
	// which duplicate windows and inboxes absorb, and the writers' commits
	// get the flushes.
	var n int64
	err := s.db.InTx(ctx, s.d.TxOptions, func(tx Querier) error {
		if _, err := tx.Exec(ctx, "SET LOCAL synchronous_commit = off"); err != nil {
			return err
		}
		var err error
		n, err = tx.Exec(ctx, q, args...)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("delete: %w", err)
	}
	return int(n), nil
}

// Fail implements relay.Store.
func (s *OutboxStore) Fail(ctx context.Context, id int64, reason string) error {
	_, err := s.db.Exec(ctx, s.d.q(`UPDATE handoff_outbox SET failed_at = ?, failure = ?, attempts = attempts + 1 WHERE id = ?`),
		s.d.timeArg(s.now().UTC()), reason, id)
	if err != nil {
		return fmt.Errorf("mark failed: %w", err)
	}
	return nil
}

// Stats implements relay.Store.
func (s *OutboxStore) Stats(ctx context.Context) (relay.Stats, error) {
	var st relay.Stats
	err := s.db.QueryRow(ctx, `SELECT COUNT(*), MIN(created_at) FROM handoff_outbox WHERE failed_at IS NULL`).Scan(&st.Pending, timeScan{&st.Oldest})
	if err != nil {
		return relay.Stats{}, fmt.Errorf("stats: %w", err)
	}
	err = s.db.QueryRow(ctx, s.d.q(`SELECT COUNT(*) FROM handoff_outbox WHERE failed_at IS NOT NULL AND `+openLetter), dlq.RelayConsumer).Scan(&st.Held)
	if err != nil {
		return relay.Stats{}, fmt.Errorf("stats: %w", err)
	}
	return st, nil
}
