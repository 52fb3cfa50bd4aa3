package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/handoffhq/handoff/saga"
)

// SagaStore implements saga.Store in handoff_saga and handoff_saga_events.
// Times are Unix microseconds from the coordinators' clocks.
type SagaStore struct {
	db *sql.DB
	d  *Dialect
}

var _ saga.Store = (*SagaStore)(nil)

// NewSagaStore returns the saga store of db in dialect d.
func NewSagaStore(db *sql.DB, d *Dialect) *SagaStore { return &SagaStore{db: db, d: d} }

// DB implements saga.Store.
func (s *SagaStore) DB() *sql.DB { return s.db }

// IsConflict implements saga.Store.
func (s *SagaStore) IsConflict(err error) bool { return s.d.conflict(err) }

func us(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func usNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func fromUS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

const sagaCols = `id, name, version, correlation_id, status, step_no, steps, data, due_at, deadline,
	lease_owner, lease_until, epoch, events, error, created_at, updated_at, ended_at`

// Create implements saga.Store.
func (s *SagaStore) Create(ctx context.Context, tx *sql.Tx, in *saga.Instance) error {
	steps, err := json.Marshal(in.Steps)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, s.d.q(`INSERT INTO handoff_saga (`+sagaCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		in.ID, in.Name, in.Version, in.CorrelationID, string(in.Status), in.Step, string(steps), string(in.Data),
		usNull(in.DueAt), us(in.Deadline), in.LeaseOwner, us(in.LeaseUntil), in.Epoch, in.Events, in.Error,
		us(in.CreatedAt), us(in.UpdatedAt), usNull(in.EndedAt))
	return err
}

func scanInstance(row Row) (*saga.Instance, error) {
	in := &saga.Instance{}
	var status, steps, data string
	var due, ended sql.NullInt64
	var deadline, leaseUntil, created, updated int64
	err := row.Scan(&in.ID, &in.Name, &in.Version, &in.CorrelationID, &status, &in.Step, &steps, &data, &due,
		&deadline, &in.LeaseOwner, &leaseUntil, &in.Epoch, &in.Events, &in.Error, &created, &updated, &ended)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, saga.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(steps), &in.Steps); err != nil {
		return nil, fmt.Errorf("saga %s: decode steps: %w", in.ID, err)
	}
	in.Status, in.Data = saga.Status(status), json.RawMessage(data)
	in.DueAt, in.EndedAt = fromUS(due.Int64), fromUS(ended.Int64)
	in.Deadline, in.LeaseUntil, in.CreatedAt, in.UpdatedAt = fromUS(deadline), fromUS(leaseUntil), fromUS(created), fromUS(updated)
	return in, nil
}

// Lock implements saga.Store: SELECT ... FOR UPDATE on PostgreSQL and
// MySQL; on SQLite the transaction holds the database's write lock already.
func (s *SagaStore) Lock(ctx context.Context, tx *sql.Tx, id string) (*saga.Instance, error) {
	q := `SELECT ` + sagaCols + ` FROM handoff_saga WHERE id = ?`
	if s.d.Name != "sqlite" {
		q += ` FOR UPDATE`
	}
	in, err := scanInstance(tx.QueryRowContext(ctx, s.d.q(q), id))
	if err != nil && !errors.Is(err, saga.ErrNotFound) {
		return nil, fmt.Errorf("lock saga %s: %w", id, err)
	}
	return in, err
}

// Get implements saga.Store.
func (s *SagaStore) Get(ctx context.Context, id string) (*saga.Instance, error) {
	return scanInstance(s.db.QueryRowContext(ctx, s.d.q(`SELECT `+sagaCols+` FROM handoff_saga WHERE id = ?`), id))
}

// Save implements saga.Store.
func (s *SagaStore) Save(ctx context.Context, tx *sql.Tx, in *saga.Instance) error {
	steps, err := json.Marshal(in.Steps)
	if err != nil {
		return err
	}
	n, err := tx.ExecContext(ctx, s.d.q(`UPDATE handoff_saga SET status = ?, step_no = ?, steps = ?, data = ?,
		due_at = ?, lease_owner = ?, lease_until = ?, epoch = ?, events = ?, error = ?, updated_at = ?, ended_at = ?
		WHERE id = ?`),
		string(in.Status), in.Step, string(steps), string(in.Data), usNull(in.DueAt), in.LeaseOwner,
		us(in.LeaseUntil), in.Epoch, in.Events, in.Error, us(in.UpdatedAt), usNull(in.EndedAt), in.ID)
	if err != nil {
		return err
	}
	if k, _ := n.RowsAffected(); k == 0 && s.d.Name != "mysql" { // MySQL counts changed rows only
		return saga.ErrNotFound
	}
	return nil
}

// Record implements saga.Store.
func (s *SagaStore) Record(ctx context.Context, tx *sql.Tx, events []saga.Event) error {
	if len(events) == 0 {
		return nil
	}
	const per = 11
	args := make([]any, 0, per*len(events))
	for _, e := range events {
		args = append(args, e.SagaID, e.Seq, us(e.At), e.Kind, e.Step, e.Attempt, e.Gen, e.Duration.Microseconds(),
			e.Error, e.Owner, e.Epoch)
	}
	_, err := tx.ExecContext(ctx, s.d.q(`INSERT INTO handoff_saga_events (saga_id, seq, at, kind, step, attempt, gen,
		duration_us, error, owner, epoch) VALUES `+placeholders(len(events), per)), args...)
	return err
}

// Claim implements saga.Store: in one transaction it selects due sagas
// through the index on due_at (skipping rows other coordinators hold
// locked, on PostgreSQL and MySQL) and leases them.
func (s *SagaStore) Claim(ctx context.Context, names []string, owner string, now time.Time, lease time.Duration, limit int) ([]string, error) {
	if len(names) == 0 || limit <= 0 {
		return nil, nil
	}
	var ids []string
	err := inTx(ctx, SQL(s.db), s.d, func(q Querier) error {
		ids = ids[:0]
		n := us(now)
		args := []any{n}
		for _, name := range names {
			args = append(args, name)
		}
		args = append(args, n, owner, limit)
		sel := `SELECT id FROM handoff_saga WHERE due_at <= ? AND name IN ` + inList(len(names)) + `
			AND (lease_owner = '' OR lease_until < ? OR lease_owner = ?) ORDER BY due_at LIMIT ?`
		if s.d.Name != "sqlite" {
			sel += ` FOR UPDATE SKIP LOCKED`
		}
		rows, err := q.Query(ctx, s.d.q(sel), args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		uargs := []any{owner, owner, n + lease.Microseconds()}
		for _, id := range ids {
			uargs = append(uargs, id)
		}
		_, err = q.Exec(ctx, s.d.q(`UPDATE handoff_saga SET epoch = CASE WHEN lease_owner = ? THEN epoch ELSE epoch + 1 END,
			lease_owner = ?, lease_until = ? WHERE id IN `+inList(len(ids))), uargs...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim sagas: %w", err)
	}
	return ids, nil
}

// Release implements saga.Store.
func (s *SagaStore) Release(ctx context.Context, owner string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	args := []any{owner}
	for _, id := range ids {
		args = append(args, id)
	}
	_, err := s.db.ExecContext(ctx, s.d.q(`UPDATE handoff_saga SET lease_owner = '', lease_until = 0
		WHERE lease_owner = ? AND id IN `+inList(len(ids))), args...)
	return err
}

// History implements saga.Store.
func (s *SagaStore) History(ctx context.Context, id string) ([]saga.Event, error) {
	rows, err := s.db.QueryContext(ctx, s.d.q(`SELECT saga_id, seq, at, kind, step, attempt, gen, duration_us, error, owner, epoch
		FROM handoff_saga_events WHERE saga_id = ? ORDER BY seq`), id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []saga.Event
	for rows.Next() {
		var e saga.Event
		var at, dur int64
		if err := rows.Scan(&e.SagaID, &e.Seq, &at, &e.Kind, &e.Step, &e.Attempt, &e.Gen, &dur, &e.Error, &e.Owner, &e.Epoch); err != nil {
			return nil, err
		}
		e.At, e.Duration = fromUS(at), time.Duration(dur)*time.Microsecond
		out = append(out, e)
	}
	return out, rows.Err()
}

// ByCorrelation implements saga.Store.
func (s *SagaStore) ByCorrelation(ctx context.Context, correlationID string) ([]saga.Summary, error) {
	rows, err := s.db.QueryContext(ctx, s.d.q(`SELECT `+summaryCols+` FROM handoff_saga WHERE correlation_id = ? ORDER BY created_at, id`), correlationID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []saga.Summary
	for rows.Next() {
		sm, err := scanSummary(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sm)
	}
	return out, rows.Err()
}

// InFlight implements saga.Store.
func (s *SagaStore) InFlight(ctx context.Context, name string) ([]saga.InFlight, error) {
	rows, err := s.db.QueryContext(ctx, s.d.q(`SELECT version, step_no, steps, id FROM handoff_saga
		WHERE ended_at IS NULL AND name = ? ORDER BY version, step_no, id`), name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []saga.InFlight
	idx := map[[2]string]int{}
	for rows.Next() {
		var version, steps, id string
		var step int
		if err := rows.Scan(&version, &step, &steps, &id); err != nil {
			return nil, err
		}
		stepName := fmt.Sprint(step)
		var st []saga.StepState
		if json.Unmarshal([]byte(steps), &st) == nil && step >= 0 && step < len(st) {
			stepName = st[step].Name
		} else if step >= len(st) {
			stepName = "(end)"
		}
		k := [2]string{version, stepName}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, saga.InFlight{Name: name, Version: version, Step: stepName})
		}
		out[i].Count++
		if len(out[i].IDs) < 10 {
			out[i].IDs = append(out[i].IDs, id)
		}
	}
	return out, rows.Err()
}

// Purge implements saga.Store.
func (s *SagaStore) Purge(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, errors.New("sqlstore: saga purge: limit must be positive")
	}
	var n int64
	err := inTx(ctx, SQL(s.db), s.d, func(q Querier) error {
		rows, err := q.Query(ctx, s.d.q(`SELECT id FROM handoff_saga WHERE ended_at IS NOT NULL AND ended_at < ? ORDER BY ended_at LIMIT ?`),
			us(before), limit)
		if err != nil {
			return err
		}
		var ids []any
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(ids) == 0 {
			return err
		}
		if _, err := q.Exec(ctx, s.d.q(`DELETE FROM handoff_saga_events WHERE saga_id IN `+inList(len(ids))), ids...); err != nil {
			return err
		}
		n, err = q.Exec(ctx, s.d.q(`DELETE FROM handoff_saga WHERE id IN `+inList(len(ids))), ids...)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlstore: saga purge: %w", err)
	}
	if int(n) < limit {
		// The sagas are done with: the trace journal goes by the same retention.
		if err := s.purgeTrace(ctx, before, limit); err != nil {
			return int(n), fmt.Errorf("sqlstore: trace journal purge: %w", err)
		}
	}
	return int(n), nil
}

var _ saga.Lister = (*SagaStore)(nil)

const summaryCols = `id, name, version, correlation_id, status, step_no, steps, error, created_at, updated_at, ended_at`

func scanSummary(rows *sql.Rows) (saga.Summary, error) {
	var sm saga.Summary
	var status, steps string
	var step int
	var created, updated int64
	var ended sql.NullInt64
	if err := rows.Scan(&sm.ID, &sm.Name, &sm.Version, &sm.CorrelationID, &status, &step, &steps, &sm.Error, &created, &updated, &ended); err != nil {
		return sm, err
	}
	var st []saga.StepState
	if json.Unmarshal([]byte(steps), &st) == nil && step >= 0 && step < len(st) {
		sm.Step = st[step].Name
	}
	sm.Status, sm.CreatedAt, sm.UpdatedAt, sm.EndedAt = saga.Status(status), fromUS(created), fromUS(updated), fromUS(ended.Int64)
	return sm, nil
}

// listQuery is List's statement: the filters, then the keyset position
// (created_at, id) < the cursor's, newest first. The cursor's bound is
// written as created_at <= c AND (created_at < c OR id < i) so that every
// database reads it as a range on the index's created_at (a row-value
// comparison is not one on MySQL), and status or name, when given, lead
// the index (status, created_at, id) or (name, created_at, id).
func (s *SagaStore) listQuery(f saga.ListFilter) (string, []any, error) {
	var where []string
	var args []any
	add := func(cond string, a ...any) { where = append(where, cond); args = append(args, a...) }
	if f.Status != "" {
		add("status = ?", string(f.Status))
	}
	if f.Name != "" {
		add("name = ?", f.Name)
	}
	if f.CorrelationID != "" {
		add("correlation_id = ?", f.CorrelationID)
	}
	if !f.CreatedAfter.IsZero() {
		add("created_at >= ?", us(f.CreatedAfter))
	}
	if !f.CreatedBefore.IsZero() {
		add("created_at < ?", us(f.CreatedBefore))
	}
	if !f.UpdatedAfter.IsZero() {
		add("updated_at >= ?", us(f.UpdatedAfter))
	}
	if !f.UpdatedBefore.IsZero() {
		add("updated_at < ?", us(f.UpdatedBefore))
	}
	if f.Cursor != "" {
		c, err := saga.ParseCursor(f.Cursor)
		if err != nil {
			return "", nil, err
		}
		at := us(c.CreatedAt)
		add("created_at <= ? AND (created_at < ? OR id < ?)", at, at, c.ID)
	}
	q := `SELECT ` + summaryCols + ` FROM handoff_saga`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = saga.DefaultListLimit
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	return s.d.q(q), append(args, limit), nil
}

// List implements saga.Lister.
func (s *SagaStore) List(ctx context.Context, f saga.ListFilter) ([]saga.Summary, error) {
	q, args, err := s.listQuery(f)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []saga.Summary
	for rows.Next() {
		sm, err := scanSummary(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sm)
	}
	return out, rows.Err()
}

// Counts implements saga.Lister: one GROUP BY over the index that leads
// with status.
func (s *SagaStore) Counts(ctx context.Context) (map[saga.Status]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT status, COUNT(*) FROM handoff_saga GROUP BY status`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[saga.Status]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[saga.Status(st)] = n
	}
	return out, rows.Err()
}
