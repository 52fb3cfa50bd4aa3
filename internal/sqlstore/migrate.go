package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations
var migrationsFS embed.FS

// Migration is one numbered schema change.
type Migration struct {
	Version    int
	Name       string
	Statements []string
}

// Migrations returns the dialect's migrations in version order.
func Migrations(d *Dialect) ([]Migration, error) {
	dir := path.Join("migrations", d.Name)
	entries, err := fs.ReadDir(migrationsFS, dir)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: migrations for %s: %w", d.Name, err)
	}
	var ms []Migration
	seen := make(map[int]string)
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("sqlstore: migration %s/%s: name must be NNNN_name.sql", d.Name, name)
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("sqlstore: migrations %s and %s share version %d", prev, name, v)
		}
		seen[v] = name
		b, err := migrationsFS.ReadFile(path.Join(dir, name))
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: strings.TrimSuffix(name, ".sql"), Statements: SplitStatements(string(b))})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

// SplitStatements splits a migration file into statements: one ends at a
// line ending with ";" outside a $$-quoted block. Comment-only lines are dropped.
func SplitStatements(src string) []string {
	var out []string
	var cur strings.Builder
	inDollar := false
	for _, line := range strings.Split(src, "\n") {
		trim := strings.TrimSpace(line)
		if !inDollar && (trim == "" || strings.HasPrefix(trim, "--")) {
			continue
		}
		if strings.Count(line, "$$")%2 == 1 {
			inDollar = !inDollar
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if !inDollar && strings.HasSuffix(trim, ";") {
			if s := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"); s != "" {
				out = append(out, s)
			}
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// Migrate brings the schema up to date: it applies every migration whose
// version is not recorded yet, in version order (not only those above the
// highest recorded one: versions are handed out in ranges to parallel work,
// so a lower one can land after a higher one was applied). It is safe to
// call from several processes at once: PostgreSQL takes a
// transaction-scoped advisory lock and applies everything in that
// transaction; MySQL holds a GET_LOCK named after the database (its DDL
// commits implicitly, so each migration records its version right after
// its statements); SQLite applies everything in one BEGIN IMMEDIATE
// transaction. Calling it again is a no-op.
func Migrate(ctx context.Context, db *sql.DB, d *Dialect) error {
	ms, err := Migrations(d)
	if err != nil {
		return err
	}
	switch d.migrateStyle {
	case migrateTxAdvisory:
		return migratePostgres(ctx, SQL(db), d, ms)
	case migrateGetLock:
		return migrateMySQL(ctx, db, d, ms)
	default:
		return migrateSQLite(ctx, db, d, ms)
	}
}

// MigrateDB is Migrate for PostgreSQL over any DB (a pgx pool).
func MigrateDB(ctx context.Context, db DB, d *Dialect) error {
	if d.migrateStyle != migrateTxAdvisory {
		return fmt.Errorf("sqlstore: MigrateDB: %s migrates through database/sql (Migrate)", d.Name)
	}
	ms, err := Migrations(d)
	if err != nil {
		return err
	}
	return migratePostgres(ctx, db, d, ms)
}

const versionTable = "handoff_schema_migrations"

func apply(ctx context.Context, q Querier, d *Dialect, ms []Migration, createVersions string) error {
	if _, err := q.Exec(ctx, createVersions); err != nil {
		return fmt.Errorf("sqlstore: migrate: create %s: %w", versionTable, err)
	}
	rows, err := q.Query(ctx, "SELECT version FROM "+versionTable)
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: read versions: %w", err)
	}
	applied := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("sqlstore: migrate: read versions: %w", err)
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlstore: migrate: read versions: %w", err)
	}
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		for i, s := range m.Statements {
			if _, err := q.Exec(ctx, s); err != nil {
				return fmt.Errorf("sqlstore: migrate %s statement %d: %w", m.Name, i+1, err)
			}
		}
		if _, err := q.Exec(ctx, d.q("INSERT INTO "+versionTable+" (version, name, applied_at) VALUES (?, ?, ?)"),
			m.Version, m.Name, d.timeArg(time.Now())); err != nil {
			return fmt.Errorf("sqlstore: migrate %s: record version: %w", m.Name, err)
		}
	}
	return nil
}

func migratePostgres(ctx context.Context, db DB, d *Dialect, ms []Migration) error {
	err := db.InTx(ctx, nil, func(q Querier) error {
		// One lock per schema, so tests on separate schemas do not queue.
		if _, err := q.Exec(ctx, "SELECT pg_advisory_xact_lock(1752460143, hashtext(current_schema()))"); err != nil {
			return fmt.Errorf("sqlstore: migrate: advisory lock: %w", err)
		}
		return apply(ctx, q, d, ms, `CREATE TABLE IF NOT EXISTS `+versionTable+` (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)`)
	})
	if err != nil && !strings.HasPrefix(err.Error(), "sqlstore: ") {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	return err
}

func migrateMySQL(ctx context.Context, db *sql.DB, d *Dialect, ms []Migration) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	defer conn.Close()
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(CONCAT('handoff_migrate.', DATABASE()), 60)").Scan(&got); err != nil {
		return fmt.Errorf("sqlstore: migrate: GET_LOCK: %w", err)
	}
	if !got.Valid || got.Int64 != 1 {
		return errors.New("sqlstore: migrate: GET_LOCK timed out after 60s: another process is migrating")
	}
	defer func() {
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "DO RELEASE_LOCK(CONCAT('handoff_migrate.', DATABASE()))"); rerr != nil && err == nil {
			err = fmt.Errorf("sqlstore: migrate: RELEASE_LOCK: %w", rerr)
		}
	}()
	return apply(ctx, sqlQuerier{conn}, d, ms, `CREATE TABLE IF NOT EXISTS `+versionTable+` (
		version INT NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, applied_at DATETIME(6) NOT NULL) ENGINE=InnoDB`)
}

func migrateSQLite(ctx context.Context, db *sql.DB, d *Dialect, ms []Migration) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("sqlstore: migrate: begin: %w", err)
	}
	if err := apply(ctx, sqlQuerier{conn}, d, ms, `CREATE TABLE IF NOT EXISTS `+versionTable+` (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return fmt.Errorf("sqlstore: migrate: commit: %w", err)
	}
	return nil
}
