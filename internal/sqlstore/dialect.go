package sqlstore

import (
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Dialect holds what differs between the SQL databases.
type Dialect struct {
	// Name is the migrations directory: "postgres", "mysql" or "sqlite".
	Name string
	// IsConflict reports a transaction conflict worth running the
	// transaction again for: serialization failure, deadlock, lock wait
	// timeout, busy database. Adapters set it, since it needs the driver's
	// error type. Nil means never.
	IsConflict func(error) bool
	// TxOptions are used for the stores' own transactions.
	TxOptions *sql.TxOptions

	dollar       bool // $1 placeholders instead of ?
	intTime      bool // times as INTEGER microseconds
	markSQL      string
	markManySQL  string // marks an array of ids in one statement ($1 consumer, $2 ids, $3 time); "": a VALUES list
	lockSQL      string
	purgeInbox   string
	migrateStyle int
}

const (
	migrateTxAdvisory = iota // one transaction, pg_advisory_xact_lock
	migrateGetLock           // GET_LOCK on one connection, no transaction (DDL commits)
	migrateImmediate         // BEGIN IMMEDIATE on one connection
)

// Postgres returns the PostgreSQL dialect.
func Postgres() *Dialect {
	return &Dialect{
		Name:   "postgres",
		dollar: true,
		markSQL: `INSERT INTO handoff_inbox (consumer, message_id, received_at) VALUES (?, ?, ?)
			ON CONFLICT (consumer, message_id) DO NOTHING`,
		// One statement text whatever the number of ids (one prepared
		// statement per connection, three parameters), rather than a
		// VALUES list of 3n parameters per batch size.
		markManySQL: `INSERT INTO handoff_inbox (consumer, message_id, received_at)
			SELECT ?, id, ? FROM unnest(?::text[]) AS u(id)
			ON CONFLICT (consumer, message_id) DO NOTHING RETURNING message_id`,
		lockSQL: `INSERT INTO handoff_dlq_consumers (consumer, touched) VALUES (?, 1)
			ON CONFLICT (consumer) DO UPDATE SET touched = handoff_dlq_consumers.touched + 1`,
		purgeInbox: `DELETE FROM handoff_inbox WHERE (consumer, message_id) IN
			(SELECT consumer, message_id FROM handoff_inbox WHERE received_at < ? LIMIT ?)`,
		migrateStyle: migrateTxAdvisory,
	}
}

// MySQL returns the MySQL/MariaDB dialect. Its own transactions run under
// READ COMMITTED, so range conditions take no gap locks.
func MySQL() *Dialect {
	return &Dialect{
		Name:      "mysql",
		TxOptions: &sql.TxOptions{Isolation: sql.LevelReadCommitted},
		// INSERT IGNORE reports 0 rows for a duplicate whatever the
		// clientFoundRows setting; keys are length-checked before, so IGNORE
		// never truncates one.
		markSQL: `INSERT IGNORE INTO handoff_inbox (consumer, message_id, received_at) VALUES (?, ?, ?)`,
		lockSQL: `INSERT INTO handoff_dlq_consumers (consumer, touched) VALUES (?, 1)
			ON DUPLICATE KEY UPDATE touched = touched + 1`,
		purgeInbox:   `DELETE FROM handoff_inbox WHERE received_at < ? ORDER BY received_at LIMIT ?`,
		migrateStyle: migrateGetLock,
	}
}

// SQLite returns the SQLite dialect. Times are stored as INTEGER
// microseconds since the Unix epoch.
func SQLite() *Dialect {
	return &Dialect{
		Name:    "sqlite",
		intTime: true,
		markSQL: `INSERT INTO handoff_inbox (consumer, message_id, received_at) VALUES (?, ?, ?)
			ON CONFLICT (consumer, message_id) DO NOTHING`,
		lockSQL: `INSERT INTO handoff_dlq_consumers (consumer, touched) VALUES (?, 1)
			ON CONFLICT (consumer) DO UPDATE SET touched = touched + 1`,
		purgeInbox: `DELETE FROM handoff_inbox WHERE (consumer, message_id) IN
			(SELECT consumer, message_id FROM handoff_inbox WHERE received_at < ? LIMIT ?)`,
		migrateStyle: migrateImmediate,
	}
}

// q rewrites ? placeholders for the dialect.
func (d *Dialect) q(s string) string {
	if !d.dollar {
		return s
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// timeArg converts t for a query: NULL when zero.
func (d *Dialect) timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	t = t.UTC().Truncate(time.Microsecond)
	if d.intTime {
		return t.UnixMicro()
	}
	return t
}

func (d *Dialect) conflict(err error) bool {
	return err != nil && d.IsConflict != nil && d.IsConflict(err)
}

// timeScan scans a time column stored by any dialect; NULL gives the zero time.
type timeScan struct{ t *time.Time }

func (s timeScan) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*s.t = time.Time{}
	case time.Time:
		*s.t = x.UTC()
	case int64:
		*s.t = time.UnixMicro(x).UTC()
	case []byte:
		return s.parse(string(x))
	case string:
		return s.parse(x)
	default:
		return fmt.Errorf("sqlstore: cannot scan %T into a time", v)
	}
	return nil
}

func (s timeScan) parse(v string) error {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", time.RFC3339Nano, "2006-01-02 15:04:05.999999999-07:00"} {
		if t, err := time.Parse(layout, v); err == nil {
			*s.t = t.UTC()
			return nil
		}
	}
	return fmt.Errorf("sqlstore: cannot parse time %q", v)
}
