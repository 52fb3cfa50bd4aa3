package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	registry "github.com/handoffhq/handoff/registry/registrystore"
)

// RegistryStore implements registry.Store. A subject's writers first upsert
// its row in handoff_registry_subjects (a row lock on PostgreSQL and MySQL,
// the write lock on SQLite), so they run one after another; schemas are
// deduplicated by the unique hash column.
type RegistryStore struct {
	db *sql.DB
	d  *Dialect
}

var _ registry.Store = (*RegistryStore)(nil)

// NewRegistryStore returns the registry store of db in dialect d.
func NewRegistryStore(db *sql.DB, d *Dialect) *RegistryStore { return &RegistryStore{db: db, d: d} }

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (s *RegistryStore) Schema(ctx context.Context, id int) (registry.StoredSchema, error) {
	return regSchema(ctx, s.db, s.d, id)
}

func (s *RegistryStore) SchemaByGUID(ctx context.Context, guid string) (registry.StoredSchema, error) {
	var id int
	err := s.db.QueryRowContext(ctx, s.d.q(`SELECT id FROM handoff_registry_schemas WHERE guid = ?`), guid).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return registry.StoredSchema{}, registry.ErrNotFound
	}
	if err != nil {
		return registry.StoredSchema{}, fmt.Errorf("sqlstore: registry schema %s: %w", guid, err)
	}
	return regSchema(ctx, s.db, s.d, id)
}

func (s *RegistryStore) Subjects(ctx context.Context, deleted bool) ([]string, error) {
	q := `SELECT subject FROM handoff_registry_versions GROUP BY subject ORDER BY subject`
	if !deleted {
		q = `SELECT DISTINCT subject FROM handoff_registry_versions WHERE deleted = ? ORDER BY subject`
	}
	var args []any
	if !deleted {
		args = append(args, false)
	}
	rows, err := s.db.QueryContext(ctx, s.d.q(q), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: registry subjects: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var sub string
		if err := rows.Scan(&sub); err != nil {
			return nil, err
		}
		out = append(out, sub)
	}
	return out, rows.Err()
}

func (s *RegistryStore) Versions(ctx context.Context, subject string) ([]registry.VersionRow, error) {
	return regVersions(ctx, s.db, s.d, subject)
}

func (s *RegistryStore) SchemaVersions(ctx context.Context, id int) ([]registry.VersionRow, error) {
	rows, err := s.db.QueryContext(ctx, s.d.q(`SELECT subject, version, schema_id, deleted
		FROM handoff_registry_versions WHERE schema_id = ? ORDER BY subject, version`), id)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: registry schema %d versions: %w", id, err)
	}
	return scanVersions(rows)
}

func (s *RegistryStore) ReferencedBy(ctx context.Context, subject string, version int) ([]int, error) {
	return regReferencedBy(ctx, s.db, s.d, subject, version)
}

func (s *RegistryStore) Setting(ctx context.Context, kind, subject string) (string, bool, error) {
	var v string
	err := s.db.QueryRowContext(ctx, s.d.q(`SELECT value FROM handoff_registry_settings WHERE kind = ? AND subject = ?`),
		kind, subject).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("sqlstore: registry setting %s %q: %w", kind, subject, err)
	}
	return v, true, nil
}

func (s *RegistryStore) Settings(ctx context.Context, subject string) ([]registry.Setting, error) {
	rows, err := s.db.QueryContext(ctx, s.d.q(`SELECT kind, subject, value FROM handoff_registry_settings WHERE subject IN (?, '')`), subject)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: registry settings %q: %w", subject, err)
	}
	defer rows.Close()
	var out []registry.Setting
	for rows.Next() {
		var st registry.Setting
		if err := rows.Scan(&st.Kind, &st.Subject, &st.Value); err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

func (s *RegistryStore) PutSetting(ctx context.Context, kind, subject, value string) error {
	q := `INSERT INTO handoff_registry_settings (kind, subject, value) VALUES (?, ?, ?)
		ON CONFLICT (kind, subject) DO UPDATE SET value = excluded.value`
	if s.d.Name == "mysql" {
		q = `INSERT INTO handoff_registry_settings (kind, subject, value) VALUES (?, ?, ?)
			ON DUPLICATE KEY UPDATE value = VALUES(value)`
	}
	if _, err := s.db.ExecContext(ctx, s.d.q(q), kind, subject, value); err != nil {
		return fmt.Errorf("sqlstore: registry put setting %s %q: %w", kind, subject, err)
	}
	return nil
}

func (s *RegistryStore) DeleteSetting(ctx context.Context, kind, subject string) error {
	if _, err := s.db.ExecContext(ctx, s.d.q(`DELETE FROM handoff_registry_settings WHERE kind = ? AND subject = ?`),
		kind, subject); err != nil {
		return fmt.Errorf("sqlstore: registry delete setting %s %q: %w", kind, subject, err)
	}
	return nil
}

func (s *RegistryStore) Update(ctx context.Context, subjects []string, fn func(registry.Tx) error) error {
	locks := append([]string(nil), subjects...)
	sort.Strings(locks)
	lockSQL := `INSERT INTO handoff_registry_subjects (subject) VALUES (?)
		ON CONFLICT (subject) DO UPDATE SET writes = handoff_registry_subjects.writes + 1`
	if s.d.Name == "mysql" {
		lockSQL = `INSERT INTO handoff_registry_subjects (subject) VALUES (?) ON DUPLICATE KEY UPDATE writes = writes + 1`
	}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = s.update(ctx, locks, lockSQL, fn)
		if !s.d.conflict(err) {
			return err
		}
	}
	return err
}

func (s *RegistryStore) update(ctx context.Context, locks []string, lockSQL string, fn func(registry.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, s.d.TxOptions)
	if err != nil {
		return fmt.Errorf("sqlstore: registry begin: %w", err)
	}
	defer tx.Rollback()
	prev := ""
	for i, sub := range locks {
		if i > 0 && sub == prev {
			continue
		}
		prev = sub
		if _, err := tx.ExecContext(ctx, s.d.q(lockSQL), sub); err != nil {
			return fmt.Errorf("sqlstore: registry lock subject %q: %w", sub, err)
		}
	}
	if err := fn(&regTx{tx: tx, d: s.d}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: registry commit: %w", err)
	}
	return nil
}

type regTx struct {
	tx *sql.Tx
	d  *Dialect
}

func (t *regTx) Versions(ctx context.Context, subject string) ([]registry.VersionRow, error) {
	return regVersions(ctx, t.tx, t.d, subject)
}

func (t *regTx) Schema(ctx context.Context, id int) (registry.StoredSchema, error) {
	return regSchema(ctx, t.tx, t.d, id)
}

func (t *regTx) ReferencedBy(ctx context.Context, subject string, version int) ([]int, error) {
	return regReferencedBy(ctx, t.tx, t.d, subject, version)
}

func (t *regTx) InsertSchema(ctx context.Context, s registry.StoredSchema) (int, bool, error) {
	refs, err := json.Marshal(s.References)
	if err != nil {
		return 0, false, err
	}
	if s.References == nil {
		refs = []byte("[]")
	}
	cols := `hash, guid, schema_type, schema_text, refs, metadata, rule_set`
	args := []any{s.Hash, s.GUID, s.Type, s.Text, string(refs), nullJSON(s.Metadata), nullJSON(s.RuleSet)}
	marks := `?, ?, ?, ?, ?, ?, ?`
	if s.ID != 0 {
		cols, marks = "id, "+cols, "?, "+marks
		args = append([]any{s.ID}, args...)
	}
	ins := `INSERT INTO handoff_registry_schemas (` + cols + `) VALUES (` + marks + `)`
	// A schema stored already (by another subject, or a concurrent writer,
	// which makes the insert wait for its commit) is not inserted again:
	// its id is read.
	existing := func() (int, bool, error) {
		var id int
		if err := t.tx.QueryRowContext(ctx, t.d.q(`SELECT id FROM handoff_registry_schemas WHERE hash = ?`), s.Hash).Scan(&id); err != nil {
			return 0, false, fmt.Errorf("sqlstore: registry insert schema: %w", err)
		}
		return id, false, nil
	}
	var id int
	switch t.d.Name {
	case "mysql":
		// Not INSERT IGNORE: it would turn every error, a truncation
		// included, into a warning. A duplicate hash leaves the row as it
		// is (0 rows affected) and reports its id.
		res, err := t.tx.ExecContext(ctx, ins+` ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id)`, args...)
		if err != nil {
			return 0, false, fmt.Errorf("sqlstore: registry insert schema: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return existing()
		}
		n, err := res.LastInsertId()
		if err != nil {
			return 0, false, err
		}
		id = int(n)
	default:
		err := t.tx.QueryRowContext(ctx, t.d.q(ins+` ON CONFLICT (hash) DO NOTHING RETURNING id`), args...).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return existing()
		}
		if err != nil {
			return 0, false, fmt.Errorf("sqlstore: registry insert schema: %w", err)
		}
	}
	if s.ID != 0 && t.d.Name == "postgres" {
		// Keep the sequence ahead of imported ids.
		if _, err := t.tx.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('handoff_registry_schemas', 'id'),
			GREATEST((SELECT MAX(id) FROM handoff_registry_schemas), 1))`); err != nil {
			return 0, false, fmt.Errorf("sqlstore: registry advance ids: %w", err)
		}
	}
	seen := map[[2]any]bool{}
	for _, r := range s.References {
		k := [2]any{r.Subject, r.Version}
		if seen[k] {
			continue
		}
		seen[k] = true
		if _, err := t.tx.ExecContext(ctx, t.d.q(`INSERT INTO handoff_registry_refs (schema_id, ref_subject, ref_version) VALUES (?, ?, ?)`),
			id, r.Subject, r.Version); err != nil {
			return 0, false, fmt.Errorf("sqlstore: registry insert reference: %w", err)
		}
	}
	return id, true, nil
}

func nullJSON(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

func (t *regTx) InsertVersion(ctx context.Context, subject string, version, schemaID int) error {
	if _, err := t.tx.ExecContext(ctx, t.d.q(`INSERT INTO handoff_registry_versions (subject, version, schema_id, deleted) VALUES (?, ?, ?, ?)`),
		subject, version, schemaID, false); err != nil {
		return fmt.Errorf("sqlstore: registry insert version %q %d: %w", subject, version, err)
	}
	return nil
}

func (t *regTx) SoftDelete(ctx context.Context, subject string, version int) error {
	if _, err := t.tx.ExecContext(ctx, t.d.q(`UPDATE handoff_registry_versions SET deleted = ? WHERE subject = ? AND version = ?`),
		true, subject, version); err != nil {
		return fmt.Errorf("sqlstore: registry soft delete %q %d: %w", subject, version, err)
	}
	return nil
}

func (t *regTx) HardDelete(ctx context.Context, subject string, version int) (int, error) {
	var id int
	err := t.tx.QueryRowContext(ctx, t.d.q(`SELECT schema_id FROM handoff_registry_versions WHERE subject = ? AND version = ?`),
		subject, version).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlstore: registry hard delete %q %d: %w", subject, version, err)
	}
	if _, err := t.tx.ExecContext(ctx, t.d.q(`DELETE FROM handoff_registry_versions WHERE subject = ? AND version = ?`),
		subject, version); err != nil {
		return 0, fmt.Errorf("sqlstore: registry hard delete %q %d: %w", subject, version, err)
	}
	var uses int
	if err := t.tx.QueryRowContext(ctx, t.d.q(`SELECT COUNT(*) FROM handoff_registry_versions WHERE schema_id = ?`), id).Scan(&uses); err != nil {
		return 0, fmt.Errorf("sqlstore: registry hard delete %q %d: %w", subject, version, err)
	}
	if uses > 0 {
		return 0, nil
	}
	for _, q := range []string{`DELETE FROM handoff_registry_refs WHERE schema_id = ?`, `DELETE FROM handoff_registry_schemas WHERE id = ?`} {
		if _, err := t.tx.ExecContext(ctx, t.d.q(q), id); err != nil {
			return 0, fmt.Errorf("sqlstore: registry delete schema %d: %w", id, err)
		}
	}
	return id, nil
}

func regSchema(ctx context.Context, q querier, d *Dialect, id int) (registry.StoredSchema, error) {
	var (
		s        registry.StoredSchema
		refs     string
		md, rule sql.NullString
	)
	err := q.QueryRowContext(ctx, d.q(`SELECT id, hash, guid, schema_type, schema_text, refs, metadata, rule_set
		FROM handoff_registry_schemas WHERE id = ?`), id).Scan(&s.ID, &s.Hash, &s.GUID, &s.Type, &s.Text, &refs, &md, &rule)
	if errors.Is(err, sql.ErrNoRows) {
		return s, registry.ErrNotFound
	}
	if err != nil {
		return s, fmt.Errorf("sqlstore: registry schema %d: %w", id, err)
	}
	if err := json.Unmarshal([]byte(refs), &s.References); err != nil {
		return s, fmt.Errorf("sqlstore: registry schema %d references: %w", id, err)
	}
	if md.Valid {
		s.Metadata = json.RawMessage(md.String)
	}
	if rule.Valid {
		s.RuleSet = json.RawMessage(rule.String)
	}
	return s, nil
}

func regVersions(ctx context.Context, q querier, d *Dialect, subject string) ([]registry.VersionRow, error) {
	rows, err := q.QueryContext(ctx, d.q(`SELECT subject, version, schema_id, deleted
		FROM handoff_registry_versions WHERE subject = ? ORDER BY version`), subject)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: registry versions %q: %w", subject, err)
	}
	return scanVersions(rows)
}

func scanVersions(rows *sql.Rows) ([]registry.VersionRow, error) {
	defer rows.Close()
	var out []registry.VersionRow
	for rows.Next() {
		var v registry.VersionRow
		if err := rows.Scan(&v.Subject, &v.Version, &v.SchemaID, &v.Deleted); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func regReferencedBy(ctx context.Context, q querier, d *Dialect, subject string, version int) ([]int, error) {
	rows, err := q.QueryContext(ctx, d.q(`SELECT r.schema_id FROM handoff_registry_refs r
		WHERE r.ref_subject = ? AND r.ref_version = ?
		AND EXISTS (SELECT 1 FROM handoff_registry_versions v WHERE v.schema_id = r.schema_id)
		ORDER BY r.schema_id`), subject, version)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: registry referenced by %q %d: %w", subject, version, err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
