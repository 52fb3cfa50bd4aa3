package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/dlq"
)

// DLQStore implements dlq.Store.
//
// "First open letter" is decided in the transaction that inserts the letter:
// it first upserts the consumer's row in handoff_dlq_consumers (a row lock on
// PostgreSQL and MySQL, the write lock on SQLite), then looks for another open
// letter of the consumer. MarkReplayed, Delete and Purge take the same lock
// before they close or remove letters, so the decisions follow one order.
type DLQStore struct {
	db DB
	d  *Dialect
}

var _ dlq.Store = (*DLQStore)(nil)

// NewDLQStore returns the dead-letter store of db in dialect d.
func NewDLQStore(db DB, d *Dialect) *DLQStore { return &DLQStore{db: db, d: d} }

const letterCols = `id, consumer, topic, class, attrs, data, errors, stack, attempts,
	first_failure, last_failure, replayed_at, replay_count`

// envelope is a message's attributes as stored in attrs; the data has its own column.
type envelope struct {
	ID              string            `json:"id,omitempty"`
	Source          string            `json:"source,omitempty"`
	Type            string            `json:"type,omitempty"`
	SpecVersion     string            `json:"specversion,omitempty"`
	Subject         string            `json:"subject,omitempty"`
	Time            *time.Time        `json:"time,omitempty"`
	DataContentType string            `json:"datacontenttype,omitempty"`
	DataSchema      string            `json:"dataschema,omitempty"`
	PartitionKey    string            `json:"partitionkey,omitempty"`
	TraceParent     string            `json:"traceparent,omitempty"`
	TraceState      string            `json:"tracestate,omitempty"`
	CorrelationID   string            `json:"correlationid,omitempty"`
	CausationID     string            `json:"causationid,omitempty"`
	Extensions      map[string]string `json:"extensions,omitempty"`
}

func encodeMessage(m *handoff.Message) (attrs string, data []byte, err error) {
	if m == nil {
		return "null", nil, nil
	}
	e := envelope{ID: m.ID, Source: m.Source, Type: m.Type, SpecVersion: m.SpecVersion, Subject: m.Subject,
		DataContentType: m.DataContentType, DataSchema: m.DataSchema, PartitionKey: m.PartitionKey,
		TraceParent: m.TraceParent, TraceState: m.TraceState, CorrelationID: m.CorrelationID,
		CausationID: m.CausationID, Extensions: m.Extensions}
	if !m.Time.IsZero() {
		t := m.Time
		e.Time = &t
	}
	b, err := json.Marshal(e)
	if err != nil {
		return "", nil, err
	}
	return string(b), m.Data, nil
}

func decodeMessage(attrs string, data []byte) (*handoff.Message, error) {
	if attrs == "null" {
		return nil, nil
	}
	var e envelope
	if err := json.Unmarshal([]byte(attrs), &e); err != nil {
		return nil, fmt.Errorf("decode message attributes: %w", err)
	}
	m := &handoff.Message{ID: e.ID, Source: e.Source, Type: e.Type, SpecVersion: e.SpecVersion, Subject: e.Subject,
		DataContentType: e.DataContentType, DataSchema: e.DataSchema, PartitionKey: e.PartitionKey,
		TraceParent: e.TraceParent, TraceState: e.TraceState, CorrelationID: e.CorrelationID,
		CausationID: e.CausationID, Extensions: e.Extensions, Data: data}
	if e.Time != nil {
		m.Time = *e.Time
	}
	return m, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanLetter(r scanner) (*dlq.Letter, error) {
	var l dlq.Letter
	var attrs, errs string
	var data []byte
	err := r.Scan(&l.ID, &l.Consumer, &l.Topic, &l.Class, &attrs, &data, &errs, &l.Stack, &l.Attempts,
		timeScan{&l.FirstFailure}, timeScan{&l.LastFailure}, timeScan{&l.ReplayedAt}, &l.ReplayCount)
	if err != nil {
		return nil, err
	}
	if l.Message, err = decodeMessage(attrs, data); err != nil {
		return nil, fmt.Errorf("letter %s: %w", l.ID, err)
	}
	if err := json.Unmarshal([]byte(errs), &l.Errors); err != nil {
		return nil, fmt.Errorf("letter %s: decode errors: %w", l.ID, err)
	}
	return &l, nil
}

func (s *DLQStore) lockConsumer(ctx context.Context, tx Querier, consumer string) error {
	if _, err := tx.Exec(ctx, s.d.q(s.d.lockSQL), consumer); err != nil {
		return fmt.Errorf("lock consumer %s: %w", consumer, err)
	}
	return nil
}

// Add implements dlq.Store.
func (s *DLQStore) Add(ctx context.Context, l *dlq.Letter) (bool, error) {
	if err := checkLen("letter id", l.ID, 64); err != nil {
		return false, err
	}
	if err := checkKey("consumer", l.Consumer); err != nil {
		return false, err
	}
	if err := checkKey("topic", l.Topic); err != nil {
		return false, err
	}
	if err := checkLen("class", l.Class, 64); err != nil {
		return false, err
	}
	if l.Message != nil && len(l.Message.ID) > MaxKeyLen {
		return false, fmt.Errorf("sqlstore: message id is %d bytes, over the limit of %d", len(l.Message.ID), MaxKeyLen)
	}
	attrs, data, err := encodeMessage(l.Message)
	if err != nil {
		return false, fmt.Errorf("sqlstore: dlq add %s: %w", l.ID, err)
	}
	errs := l.Errors
	if errs == nil {
		errs = []string{}
	}
	errsJSON, _ := json.Marshal(errs)
	msgID := ""
	if l.Message != nil {
		msgID = l.Message.ID
	}
	var first bool
	err = inTx(ctx, s.db, s.d, func(tx Querier) error {
		if err := s.lockConsumer(ctx, tx, l.Consumer); err != nil {
			return err
		}
		var one int
		err := tx.QueryRow(ctx, s.d.q(`SELECT 1 FROM handoff_dlq WHERE id = ?`), l.ID).Scan(&one)
		if err == nil {
			return dlq.ErrExists
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		err = tx.QueryRow(ctx, s.d.q(`SELECT 1 FROM handoff_dlq WHERE consumer = ? AND replayed_at IS NULL LIMIT 1`),
			l.Consumer).Scan(&one)
		hadOpen := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		_, err = tx.Exec(ctx, s.d.q(`INSERT INTO handoff_dlq (id, consumer, topic, class, message_id, attrs, data,
			errors, stack, attempts, first_failure, last_failure, replayed_at, replay_count)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			l.ID, l.Consumer, l.Topic, l.Class, msgID, attrs, data, string(errsJSON), l.Stack, l.Attempts,
			s.d.timeArg(l.FirstFailure), s.d.timeArg(l.LastFailure), s.d.timeArg(l.ReplayedAt), l.ReplayCount)
		if err != nil {
			return err
		}
		if l.Open() {
			if err := journalDead(ctx, tx, s.d, l.Consumer, l.Topic, l.Message, l.LastFailure, l.Errors); err != nil {
				return fmt.Errorf("record in the trace journal: %w", err)
			}
		}
		first = !hadOpen && l.Open()
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("sqlstore: dlq add %s: %w", l.ID, err)
	}
	return first, nil
}

// Get implements dlq.Store.
func (s *DLQStore) Get(ctx context.Context, id string) (*dlq.Letter, error) {
	l, err := scanLetter(s.db.QueryRow(ctx, s.d.q(`SELECT `+letterCols+` FROM handoff_dlq WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, dlq.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: dlq get %s: %w", id, err)
	}
	return l, nil
}

// where renders every condition of f but Limit and After.
func (s *DLQStore) where(f dlq.Filter) (string, []any) {
	var conds []string
	var args []any
	add := func(c string, a ...any) { conds = append(conds, c); args = append(args, a...) }
	if f.Consumer != "" {
		add("consumer = ?", f.Consumer)
	}
	if f.Topic != "" {
		add("topic = ?", f.Topic)
	}
	if f.Class != "" {
		add("class = ?", f.Class)
	}
	switch f.State {
	case dlq.StateOpen:
		add("replayed_at IS NULL")
	case dlq.StateReplayed:
		add("replayed_at IS NOT NULL")
	}
	if !f.Since.IsZero() {
		add("last_failure >= ?", s.d.timeArg(f.Since))
	}
	if !f.Until.IsZero() {
		add("last_failure < ?", s.d.timeArg(f.Until))
	}
	if len(conds) == 0 {
		return "1 = 1", nil
	}
	return strings.Join(conds, " AND "), args
}

func (s *DLQStore) selectQuery(cols string, f dlq.Filter) (string, []any) {
	w, args := s.where(f)
	if f.After != "" {
		w += " AND id > ?"
		args = append(args, f.After)
	}
	q := `SELECT ` + cols + ` FROM handoff_dlq WHERE ` + w + ` ORDER BY id`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	return s.d.q(q), args
}

// List implements dlq.Store.
func (s *DLQStore) List(ctx context.Context, f dlq.Filter) ([]*dlq.Letter, error) {
	q, args := s.selectQuery(letterCols, f)
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: dlq list: %w", err)
	}
	defer rows.Close()
	var out []*dlq.Letter
	for rows.Next() {
		l, err := scanLetter(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: dlq list: %w", err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: dlq list: %w", err)
	}
	return out, nil
}

// available is the condition for a letter an edit or a claim may change at now.
const available = `replayed_at IS NULL AND (claim_token IS NULL OR claim_until <= ?)`

// why explains why an update guarded by available changed nothing: the
// error for the letter's state, or nil when it is available after all.
func (s *DLQStore) why(ctx context.Context, id string, now time.Time) error {
	var replayed, until time.Time
	var token sql.NullString
	err := s.db.QueryRow(ctx, s.d.q(`SELECT replayed_at, claim_token, claim_until FROM handoff_dlq WHERE id = ?`), id).
		Scan(timeScan{&replayed}, &token, timeScan{&until})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return dlq.ErrNotFound
	case err != nil:
		return err
	case !replayed.IsZero():
		return dlq.ErrAlreadyReplayed
	case token.Valid && now.Before(until):
		return dlq.ErrReplayInProgress
	}
	return nil
}

// UpdateMessage implements dlq.Store.
func (s *DLQStore) UpdateMessage(ctx context.Context, id string, msg *handoff.Message, now time.Time) error {
	attrs, data, err := encodeMessage(msg)
	if err != nil {
		return fmt.Errorf("sqlstore: dlq update %s: %w", id, err)
	}
	msgID := ""
	if msg != nil {
		msgID = msg.ID
	}
	n, err := s.db.Exec(ctx, s.d.q(`UPDATE handoff_dlq SET message_id = ?, attrs = ?, data = ? WHERE id = ? AND `+available),
		msgID, attrs, data, id, s.d.timeArg(now))
	if err != nil {
		return fmt.Errorf("sqlstore: dlq update %s: %w", id, err)
	}
	if n == 1 {
		return nil
	}
	// MySQL counts changed rows only: an update to the same message lands here too.
	return s.why(ctx, id, now)
}

// Claim implements dlq.Store.
func (s *DLQStore) Claim(ctx context.Context, id, token string, now, until time.Time) (*dlq.Letter, error) {
	n, err := s.db.Exec(ctx, s.d.q(`UPDATE handoff_dlq SET claim_token = ?, claim_until = ? WHERE id = ? AND `+available),
		token, s.d.timeArg(until), id, s.d.timeArg(now))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: dlq claim %s: %w", id, err)
	}
	if n != 1 {
		if err := s.why(ctx, id, now); err != nil {
			return nil, err
		}
		return nil, dlq.ErrReplayInProgress // lost a race that has ended since
	}
	l, err := scanLetter(s.db.QueryRow(ctx, s.d.q(`SELECT `+letterCols+` FROM handoff_dlq WHERE id = ? AND claim_token = ?`), id, token))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, dlq.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: dlq claim %s: %w", id, err)
	}
	return l, nil
}

// Release implements dlq.Store.
func (s *DLQStore) Release(ctx context.Context, id, token string) error {
	_, err := s.db.Exec(ctx, s.d.q(`UPDATE handoff_dlq SET claim_token = NULL, claim_until = NULL WHERE id = ? AND claim_token = ?`), id, token)
	if err != nil {
		return fmt.Errorf("sqlstore: dlq release %s: %w", id, err)
	}
	return nil
}

func (s *DLQStore) consumerOf(ctx context.Context, id string) (string, error) {
	var c string
	err := s.db.QueryRow(ctx, s.d.q(`SELECT consumer FROM handoff_dlq WHERE id = ?`), id).Scan(&c)
	if errors.Is(err, sql.ErrNoRows) {
		return "", dlq.ErrNotFound
	}
	return c, err
}

// MarkReplayed implements dlq.Store.
func (s *DLQStore) MarkReplayed(ctx context.Context, id, token string, at time.Time) error {
	consumer, err := s.consumerOf(ctx, id)
	if errors.Is(err, dlq.ErrNotFound) {
		return dlq.ErrClaimLost
	}
	if err != nil {
		return fmt.Errorf("sqlstore: dlq mark replayed %s: %w", id, err)
	}
	err = inTx(ctx, s.db, s.d, func(tx Querier) error {
		if err := s.lockConsumer(ctx, tx, consumer); err != nil {
			return err
		}
		n, err := tx.Exec(ctx, s.d.q(`UPDATE handoff_dlq SET replayed_at = ?, replay_count = replay_count + 1,
			claim_token = NULL, claim_until = NULL WHERE id = ? AND claim_token = ? AND replayed_at IS NULL`),
			s.d.timeArg(at), id, token)
		if err != nil {
			return err
		}
		if n != 1 {
			return dlq.ErrClaimLost
		}
		return nil
	})
	if err != nil && !errors.Is(err, dlq.ErrClaimLost) {
		return fmt.Errorf("sqlstore: dlq mark replayed %s: %w", id, err)
	}
	return err
}

// Delete implements dlq.Store.
func (s *DLQStore) Delete(ctx context.Context, id string) error {
	consumer, err := s.consumerOf(ctx, id)
	if errors.Is(err, dlq.ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("sqlstore: dlq delete %s: %w", id, err)
	}
	err = inTx(ctx, s.db, s.d, func(tx Querier) error {
		if err := s.lockConsumer(ctx, tx, consumer); err != nil {
			return err
		}
		n, err := tx.Exec(ctx, s.d.q(`DELETE FROM handoff_dlq WHERE id = ?`), id)
		if err != nil {
			return err
		}
		if n != 1 {
			return dlq.ErrNotFound
		}
		return nil
	})
	if err != nil && !errors.Is(err, dlq.ErrNotFound) {
		return fmt.Errorf("sqlstore: dlq delete %s: %w", id, err)
	}
	return err
}

// purgeBatch is how many letters one purge transaction removes.
const purgeBatch = 500

// Purge implements dlq.Store. It removes letters in batches of purgeBatch,
// each in a transaction that locks the batch's consumers in name order.
func (s *DLQStore) Purge(ctx context.Context, f dlq.Filter) (int, error) {
	total := 0
	for {
		page := f
		page.Limit = purgeBatch
		if f.Limit > 0 && f.Limit-total < purgeBatch {
			page.Limit = f.Limit - total
		}
		if page.Limit <= 0 {
			return total, nil
		}
		q, args := s.selectQuery("id, consumer", page)
		ids, consumers, err := s.idsAndConsumers(ctx, q, args)
		if err != nil {
			return total, fmt.Errorf("sqlstore: dlq purge: %w", err)
		}
		if len(ids) == 0 {
			return total, nil
		}
		var n int64
		err = inTx(ctx, s.db, s.d, func(tx Querier) error {
			for _, c := range consumers {
				if err := s.lockConsumer(ctx, tx, c); err != nil {
					return err
				}
			}
			w, wargs := s.where(f)
			marks := strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ")
			args := append([]any(nil), wargs...)
			for _, id := range ids {
				args = append(args, id)
			}
			var err error
			n, err = tx.Exec(ctx, s.d.q(`DELETE FROM handoff_dlq WHERE `+w+` AND id IN (`+marks+`)`), args...)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("sqlstore: dlq purge: %w", err)
		}
		total += int(n)
		if len(ids) < page.Limit {
			return total, nil
		}
		f.After = ids[len(ids)-1]
	}
}

func (s *DLQStore) idsAndConsumers(ctx context.Context, q string, args []any) (ids, consumers []string, err error) {
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	seen := make(map[string]bool)
	for rows.Next() {
		var id, c string
		if err := rows.Scan(&id, &c); err != nil {
			return nil, nil, err
		}
		ids = append(ids, id)
		if !seen[c] {
			seen[c] = true
			consumers = append(consumers, c)
		}
	}
	sort.Strings(consumers)
	return ids, consumers, rows.Err()
}
