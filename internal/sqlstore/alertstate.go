package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/handoffhq/handoff/alert/alertstate"
)

// AlertState implements alertstate.Store (migration 0075): one row per
// alert key. Fire is an insert that does nothing on a duplicate key, then,
// if it inserted nothing, an update of a resolved row to firing; Resolve
// is an update of a firing row. Each statement is atomic, and the one that
// affects a row is the one transition: of several processes firing one key
// at once, exactly one is told it did.
type AlertState struct {
	db *sql.DB
	d  *Dialect
}

var _ alertstate.Store = (*AlertState)(nil)

// NewAlertState returns the alert state of db in dialect d.
func NewAlertState(db *sql.DB, d *Dialect) *AlertState { return &AlertState{db: db, d: d} }

const alertCols = `alert_key, alert_condition, status, subject, severity, summary, details, fired_at, resolved_at`

// Fire implements alertstate.Store.
func (s *AlertState) Fire(ctx context.Context, r alertstate.Record) (bool, error) {
	if err := r.Validate(); err != nil {
		return false, err
	}
	details, err := json.Marshal(r.Details)
	if err != nil {
		return false, fmt.Errorf("sqlstore: alert state fire %s: details: %w", r.Key, err)
	}
	now := s.d.timeArg(time.Now())
	ins := "INSERT INTO handoff_alert_state (" + alertCols + ", updated_at) VALUES (?, ?, 'firing', ?, ?, ?, ?, ?, NULL, ?)"
	if s.d.Name == "mysql" {
		ins = "INSERT IGNORE" + ins[len("INSERT"):]
	} else {
		ins += " ON CONFLICT (alert_key) DO NOTHING"
	}
	res, err := s.db.ExecContext(ctx, s.d.q(ins), r.Key, r.Condition, r.Subject, r.Severity, r.Summary, string(details), s.d.timeArg(r.FiredAt), now)
	if n, err := affected(res, err); err != nil || n == 1 {
		return n == 1, wrapAlert("fire", r.Key, err)
	}
	res, err = s.db.ExecContext(ctx, s.d.q(`UPDATE handoff_alert_state SET alert_condition = ?, status = 'firing', subject = ?,
		severity = ?, summary = ?, details = ?, fired_at = ?, resolved_at = NULL, updated_at = ?
		WHERE alert_key = ? AND status = 'resolved'`),
		r.Condition, r.Subject, r.Severity, r.Summary, string(details), s.d.timeArg(r.FiredAt), now, r.Key)
	n, err := affected(res, err)
	return n == 1, wrapAlert("fire", r.Key, err)
}

// Resolve implements alertstate.Store.
func (s *AlertState) Resolve(ctx context.Context, key string, at time.Time) (alertstate.Record, bool, error) {
	res, err := s.db.ExecContext(ctx, s.d.q(`UPDATE handoff_alert_state SET status = 'resolved', resolved_at = ?, updated_at = ?
		WHERE alert_key = ? AND status = 'firing'`), s.d.timeArg(at), s.d.timeArg(time.Now()), key)
	if n, err := affected(res, err); err != nil || n == 0 {
		return alertstate.Record{}, false, wrapAlert("resolve", key, err)
	}
	rs, err := s.query(ctx, "alert_key = ?", key)
	if err != nil || len(rs) == 0 {
		// Resolved by us, then fired again by another process before
		// the read: report the resolution without the record's fields.
		return alertstate.Record{Key: key, ResolvedAt: at}, true, wrapAlert("resolve", key, err)
	}
	return rs[0], true, nil
}

// Firing implements alertstate.Store.
func (s *AlertState) Firing(ctx context.Context, condition string) ([]alertstate.Record, error) {
	rs, err := s.query(ctx, "alert_condition = ? AND status = 'firing'", condition)
	return rs, wrapAlert("firing", condition, err)
}

func (s *AlertState) query(ctx context.Context, where string, arg any) ([]alertstate.Record, error) {
	rows, err := s.db.QueryContext(ctx, s.d.q("SELECT "+alertCols+" FROM handoff_alert_state WHERE "+where), arg)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []alertstate.Record
	for rows.Next() {
		var r alertstate.Record
		var status, details string
		if err := rows.Scan(&r.Key, &r.Condition, &status, &r.Subject, &r.Severity, &r.Summary, &details,
			timeScan{&r.FiredAt}, timeScan{&r.ResolvedAt}); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(details), &r.Details); err != nil {
			return nil, fmt.Errorf("details of %s: %w", r.Key, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func affected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func wrapAlert(op, key string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("sqlstore: alert state %s %s: %w", op, key, err)
}
