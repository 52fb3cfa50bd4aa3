package sqlstore

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/outbox"
	"github.com/handoffhq/handoff/saga"
)

// The trace journal (handoff_trace): one row per thing done to a message
// that carries a correlation id, written in the transaction that did it.

const traceInsert = `INSERT INTO handoff_trace (correlation_id, at, kind, message_id, causation_id, topic, type, actor, error) VALUES `

const traceCols = 9

// clip cuts s to n bytes (the column's width), on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// journalable reports whether a message's ids fit the journal's keys: one
// whose correlation or message id is longer is not recorded (and so not
// traced) rather than refused.
func journalable(corr, id string) bool {
	return corr != "" && len(corr) <= MaxKeyLen && id != "" && len(id) <= MaxKeyLen
}

func traceArgs(args []any, corr string, at time.Time, kind, id, cause, topic, typ, actor, errText string) []any {
	return append(args, corr, at.UnixMicro(), kind, id, clip(cause, MaxKeyLen), clip(topic, MaxKeyLen),
		clip(typ, MaxKeyLen), clip(actor, MaxKeyLen), clip(errText, 4000))
}

// journalSent records the rows that carry a correlation id as sent, in tx.
func (s *OutboxStore) journalSent(ctx context.Context, tx outbox.Execer, rows []outbox.Row) error {
	var args []any
	n := 0
	for _, r := range rows {
		if !journalable(r.CorrelationID, r.MessageID) {
			continue
		}
		args = traceArgs(args, r.CorrelationID, r.CreatedAt, saga.TraceSent, r.MessageID, r.CausationID, r.Topic, r.Type, r.Source, "")
		n++
	}
	if n == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, s.d.q(traceInsert+placeholders(n, traceCols)), args...)
	return err
}

// RecordHandled implements inbox.Journal: msg was handled by consumer, in tx.
func (s *InboxStore[Tx]) RecordHandled(ctx context.Context, tx Tx, consumer string, msg *handoff.Message, at time.Time) error {
	if !journalable(msg.CorrelationID, msg.ID) {
		return nil
	}
	args := traceArgs(nil, msg.CorrelationID, at, saga.TraceHandled, msg.ID, msg.CausationID, "", msg.Type, consumer, "")
	_, err := s.db.In(tx).Exec(ctx, s.d.q(traceInsert+placeholders(1, traceCols)), args...)
	return err
}

// journalDead records a dead letter of a correlated message, in tx.
func journalDead(ctx context.Context, q Querier, d *Dialect, consumer, topic string, msg *handoff.Message, at time.Time, errs []string) error {
	if msg == nil || !journalable(msg.CorrelationID, msg.ID) {
		return nil
	}
	if at.IsZero() {
		at = time.Now()
	}
	args := traceArgs(nil, msg.CorrelationID, at, saga.TraceDeadLettered, msg.ID, msg.CausationID, topic, msg.Type, consumer,
		strings.Join(errs, ": "))
	_, err := q.Exec(ctx, d.q(traceInsert+placeholders(1, traceCols)), args...)
	return err
}

// TraceJournal implements saga.Tracer: the journal's rows of the
// correlation id in the order they were written, each sent message marked
// when it is still in the outbox (not yet published).
func (s *SagaStore) TraceJournal(ctx context.Context, correlationID string) ([]saga.TraceRecord, error) {
	rows, err := s.db.QueryContext(ctx, s.d.q(`SELECT t.id, t.at, t.kind, t.message_id, t.causation_id, t.topic, t.type, t.actor, t.error,
		CASE WHEN t.kind = ? AND EXISTS (SELECT 1 FROM handoff_outbox o WHERE o.message_id = t.message_id) THEN 1 ELSE 0 END
		FROM handoff_trace t WHERE t.correlation_id = ? ORDER BY t.id`), saga.TraceSent, correlationID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []saga.TraceRecord
	for rows.Next() {
		var r saga.TraceRecord
		var at int64
		var unpublished int
		if err := rows.Scan(&r.Seq, &at, &r.Kind, &r.MessageID, &r.CausationID, &r.Topic, &r.Type, &r.Actor, &r.Error, &unpublished); err != nil {
			return nil, err
		}
		r.At, r.Unpublished = fromUS(at), unpublished == 1
		out = append(out, r)
	}
	return out, rows.Err()
}

// purgeTrace deletes journal rows written before before, limit at a time.
func (s *SagaStore) purgeTrace(ctx context.Context, before time.Time, limit int) error {
	q := `DELETE FROM handoff_trace WHERE id IN (SELECT id FROM handoff_trace WHERE at < ? ORDER BY at LIMIT ?)`
	if s.d.Name == "mysql" {
		q = `DELETE FROM handoff_trace WHERE at < ? ORDER BY at LIMIT ?`
	}
	for {
		res, err := s.db.ExecContext(ctx, s.d.q(q), us(before), limit)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n < int64(limit) {
			return err
		}
	}
}
