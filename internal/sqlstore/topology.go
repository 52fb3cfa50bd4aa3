package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/handoffhq/handoff/topology/topologystore"
)

// TopologyStore implements topologystore.Store (migration 0065): one row
// per edge and route, to which every Add adds its counts in one
// transaction (an upsert per record, in the caller's order; Shared sorts
// by key so that two processes lock rows in the same order), retried on a
// conflict.
type TopologyStore struct {
	db *sql.DB
	d  *Dialect
}

var _ topologystore.Store = (*TopologyStore)(nil)

// NewTopologyStore returns the topology store of db in dialect d.
func NewTopologyStore(db *sql.DB, d *Dialect) *TopologyStore { return &TopologyStore{db: db, d: d} }

const topologyCols = `from_node, to_node, kind, route, protocol, calls, errors, total_ns, b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, last_seen`

func (s *TopologyStore) upsert() string {
	ins := "INSERT INTO handoff_topology_edges %s(" + topologyCols + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	if s.d.Name == "mysql" {
		return fmt.Sprintf(ins, "") + ` ON DUPLICATE KEY UPDATE
			protocol = IF(protocol = '', VALUES(protocol), protocol),
			calls = calls + VALUES(calls),
			errors = errors + VALUES(errors),
			total_ns = total_ns + VALUES(total_ns),
			b0 = b0 + VALUES(b0),
			b1 = b1 + VALUES(b1),
			b2 = b2 + VALUES(b2),
			b3 = b3 + VALUES(b3),
			b4 = b4 + VALUES(b4),
			b5 = b5 + VALUES(b5),
			b6 = b6 + VALUES(b6),
			b7 = b7 + VALUES(b7),
			b8 = b8 + VALUES(b8),
			b9 = b9 + VALUES(b9),
			b10 = b10 + VALUES(b10),
			b11 = b11 + VALUES(b11),
			b12 = b12 + VALUES(b12),
			last_seen = GREATEST(last_seen, VALUES(last_seen))`
	}
	ins = fmt.Sprintf(ins, "AS t ")
	greatest := "GREATEST" // SQLite's two-argument max is MAX
	if s.d.Name == "sqlite" {
		greatest = "MAX"
	}
	return ins + ` ON CONFLICT (from_node, to_node, kind, route) DO UPDATE SET
			protocol = CASE WHEN t.protocol = '' THEN excluded.protocol ELSE t.protocol END,
			calls = t.calls + excluded.calls,
			errors = t.errors + excluded.errors,
			total_ns = t.total_ns + excluded.total_ns,
			b0 = t.b0 + excluded.b0,
			b1 = t.b1 + excluded.b1,
			b2 = t.b2 + excluded.b2,
			b3 = t.b3 + excluded.b3,
			b4 = t.b4 + excluded.b4,
			b5 = t.b5 + excluded.b5,
			b6 = t.b6 + excluded.b6,
			b7 = t.b7 + excluded.b7,
			b8 = t.b8 + excluded.b8,
			b9 = t.b9 + excluded.b9,
			b10 = t.b10 + excluded.b10,
			b11 = t.b11 + excluded.b11,
			b12 = t.b12 + excluded.b12,
			last_seen = ` + greatest + `(t.last_seen, excluded.last_seen)`
}

// Add implements topologystore.Store.
func (s *TopologyStore) Add(ctx context.Context, rs []topologystore.Record) error {
	for i := range rs {
		if err := rs[i].Validate(); err != nil {
			return err
		}
	}
	if len(rs) == 0 {
		return nil
	}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = s.add(ctx, rs)
		if !s.d.conflict(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("sqlstore: topology add: %w", err)
	}
	return nil
}

func (s *TopologyStore) add(ctx context.Context, rs []topologystore.Record) error {
	tx, err := s.db.BeginTx(ctx, s.d.TxOptions)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, s.d.q(s.upsert()))
	if err != nil {
		return err
	}
	defer stmt.Close()
	args := make([]any, 0, 22)
	for _, r := range rs {
		args = append(args[:0], r.From, r.To, r.Kind, r.Route, r.Protocol, r.Calls, r.Errors, int64(r.Total))
		for _, n := range r.Latency {
			args = append(args, n)
		}
		args = append(args, s.d.timeArg(r.LastSeen))
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Records implements topologystore.Store.
func (s *TopologyStore) Records(ctx context.Context, since time.Time) ([]topologystore.Record, error) {
	q, args := "SELECT "+topologyCols+" FROM handoff_topology_edges", []any{}
	if !since.IsZero() {
		q, args = q+" WHERE last_seen >= ?", append(args, s.d.timeArg(since))
	}
	rows, err := s.db.QueryContext(ctx, s.d.q(q), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: topology records: %w", err)
	}
	defer rows.Close()
	var out []topologystore.Record
	for rows.Next() {
		var r topologystore.Record
		var total int64
		dst := []any{&r.From, &r.To, &r.Kind, &r.Route, &r.Protocol, &r.Calls, &r.Errors, &total}
		for i := range r.Latency {
			dst = append(dst, &r.Latency[i])
		}
		dst = append(dst, timeScan{&r.LastSeen})
		if err := rows.Scan(dst...); err != nil {
			return nil, fmt.Errorf("sqlstore: topology records: %w", err)
		}
		r.Total = time.Duration(total)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: topology records: %w", err)
	}
	return out, nil
}

// DeleteBefore implements topologystore.Store.
func (s *TopologyStore) DeleteBefore(ctx context.Context, t time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.d.q("DELETE FROM handoff_topology_edges WHERE last_seen < ?"), s.d.timeArg(t))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: topology delete: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlstore: topology delete: %w", err)
	}
	return n, nil
}
