package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/handoffhq/handoff/contract/broker"
)

// ContractStore implements broker.Store (migration 0040). Writes run in
// one transaction per Update, retried on a serialization conflict; the
// unique keys (pacticipant name, version number, content sha, one
// publication per consumer version and provider) make concurrent
// publishers converge instead of duplicating rows.
type ContractStore struct {
	db *sql.DB
	d  *Dialect
}

var _ broker.Store = (*ContractStore)(nil)

// NewContractStore returns the contract broker's store of db in dialect d.
func NewContractStore(db *sql.DB, d *Dialect) *ContractStore { return &ContractStore{db: db, d: d} }

// cq is what reads run on: the *sql.DB or a transaction.
type cq struct {
	q querier
	d *Dialect
}

func (s *ContractStore) r() cq { return cq{s.db, s.d} }

// Update implements broker.Store.
func (s *ContractStore) Update(ctx context.Context, fn func(broker.Tx) error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = s.update(ctx, fn)
		if !s.d.conflict(err) {
			return err
		}
	}
	return err
}

func (s *ContractStore) update(ctx context.Context, fn func(broker.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, s.d.TxOptions)
	if err != nil {
		return fmt.Errorf("sqlstore: contract begin: %w", err)
	}
	defer tx.Rollback()
	if err := fn(&contractTx{cq{tx, s.d}}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: contract commit: %w", err)
	}
	return nil
}

type contractTx struct{ cq }

func contractNotFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return broker.ErrNotFound
	}
	return err
}

func (s *ContractStore) Pacticipant(ctx context.Context, name string) (broker.Pacticipant, error) {
	return s.r().Pacticipant(ctx, name)
}
func (s *ContractStore) Pacticipants(ctx context.Context) ([]broker.Pacticipant, error) {
	return s.r().Pacticipants(ctx)
}
func (s *ContractStore) Version(ctx context.Context, pid int64, n string) (broker.Version, error) {
	return s.r().Version(ctx, pid, n)
}
func (s *ContractStore) Versions(ctx context.Context, pid int64, b, t string, limit int) ([]broker.Version, error) {
	return s.r().Versions(ctx, pid, b, t, limit)
}
func (s *ContractStore) VersionsByID(ctx context.Context, ids []int64) ([]broker.Version, error) {
	return s.r().VersionsByID(ctx, ids)
}
func (s *ContractStore) BranchCreated(ctx context.Context, pid int64, b string) (time.Time, bool, error) {
	return s.r().BranchCreated(ctx, pid, b)
}
func (s *ContractStore) Environment(ctx context.Context, ref string) (broker.Environment, error) {
	return s.r().Environment(ctx, ref)
}
func (s *ContractStore) Environments(ctx context.Context) ([]broker.Environment, error) {
	return s.r().Environments(ctx)
}
func (s *ContractStore) Content(ctx context.Context, id int64) (broker.Content, error) {
	return s.r().Content(ctx, id)
}
func (s *ContractStore) ContentBySHA(ctx context.Context, c, p int64, sha string) (broker.Content, error) {
	return s.r().ContentBySHA(ctx, c, p, sha)
}
func (s *ContractStore) Publications(ctx context.Context, q broker.PublicationQuery) ([]broker.Publication, error) {
	return s.r().Publications(ctx, q)
}
func (s *ContractStore) Verifications(ctx context.Context, q broker.VerificationQuery) ([]broker.Verification, error) {
	return s.r().Verifications(ctx, q)
}
func (s *ContractStore) Deployments(ctx context.Context, q broker.DeploymentQuery) ([]broker.Deployment, error) {
	return s.r().Deployments(ctx, q)
}

func (c cq) Pacticipant(ctx context.Context, name string) (broker.Pacticipant, error) {
	var p broker.Pacticipant
	err := c.q.QueryRowContext(ctx, c.d.q(`SELECT id, name, main_branch, created_at FROM handoff_contract_pacticipants WHERE name = ?`), name).
		Scan(&p.ID, &p.Name, &p.MainBranch, timeScan{&p.CreatedAt})
	if err != nil {
		return p, contractNotFound(err)
	}
	return p, nil
}

func (c cq) Pacticipants(ctx context.Context) ([]broker.Pacticipant, error) {
	rows, err := c.q.QueryContext(ctx, `SELECT id, name, main_branch, created_at FROM handoff_contract_pacticipants ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: contract pacticipants: %w", err)
	}
	defer rows.Close()
	var out []broker.Pacticipant
	for rows.Next() {
		var p broker.Pacticipant
		if err := rows.Scan(&p.ID, &p.Name, &p.MainBranch, timeScan{&p.CreatedAt}); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (c cq) Version(ctx context.Context, pid int64, number string) (broker.Version, error) {
	var v broker.Version
	err := c.q.QueryRowContext(ctx, c.d.q(`SELECT id, pacticipant_id, number, created_at FROM handoff_contract_versions
		WHERE pacticipant_id = ? AND number = ?`), pid, number).Scan(&v.ID, &v.PacticipantID, &v.Number, timeScan{&v.CreatedAt})
	if err != nil {
		return v, contractNotFound(err)
	}
	vs := []broker.Version{v}
	if err := c.labels(ctx, vs); err != nil {
		return v, err
	}
	return vs[0], nil
}

// placeholders returns "?, ?, …" for n values.
func cplaceholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func int64Args(ids []int64) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

// labels fills the branches and tags of versions.
func (c cq) labels(ctx context.Context, vs []broker.Version) error {
	if len(vs) == 0 {
		return nil
	}
	idx := map[int64]int{}
	ids := make([]int64, 0, len(vs))
	for i, v := range vs {
		idx[v.ID] = i
		ids = append(ids, v.ID)
	}
	// Branches and tags in one round trip.
	in := cplaceholders(len(ids))
	args := append(int64Args(ids), int64Args(ids)...)
	rows, err := c.q.QueryContext(ctx, c.d.q(`SELECT 1, version_id, branch, created_at FROM handoff_contract_branches WHERE version_id IN (`+in+`)
		UNION ALL SELECT 2, version_id, tag, created_at FROM handoff_contract_tags WHERE version_id IN (`+in+`) ORDER BY 1, 4, 3`), args...)
	if err != nil {
		return fmt.Errorf("sqlstore: contract branches and tags: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind, id int64
		var name string
		var at time.Time
		if err := rows.Scan(&kind, &id, &name, timeScan{&at}); err != nil {
			return err
		}
		v := &vs[idx[id]]
		if kind == 1 {
			v.Branches = append(v.Branches, name)
		} else {
			v.Tags = append(v.Tags, name)
		}
	}
	return rows.Err()
}

func (c cq) scanVersions(ctx context.Context, query string, args ...any) ([]broker.Version, error) {
	rows, err := c.q.QueryContext(ctx, c.d.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: contract versions: %w", err)
	}
	var out []broker.Version
	for rows.Next() {
		var v broker.Version
		if err := rows.Scan(&v.ID, &v.PacticipantID, &v.Number, timeScan{&v.CreatedAt}); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, c.labels(ctx, out)
}

func (c cq) Versions(ctx context.Context, pid int64, branch, tag string, limit int) ([]broker.Version, error) {
	q := `SELECT v.id, v.pacticipant_id, v.number, v.created_at FROM handoff_contract_versions v WHERE v.pacticipant_id = ?`
	args := []any{pid}
	if branch != "" {
		q += ` AND EXISTS (SELECT 1 FROM handoff_contract_branches b WHERE b.version_id = v.id AND b.branch = ?)`
		args = append(args, branch)
	}
	if tag != "" {
		q += ` AND EXISTS (SELECT 1 FROM handoff_contract_tags t WHERE t.version_id = v.id AND t.tag = ?)`
		args = append(args, tag)
	}
	q += ` ORDER BY v.id DESC`
	if limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, limit)
	}
	return c.scanVersions(ctx, q, args...)
}

func (c cq) VersionsByID(ctx context.Context, ids []int64) ([]broker.Version, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	seen := map[int64]bool{}
	var uniq []int64
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			uniq = append(uniq, id)
		}
	}
	return c.scanVersions(ctx, `SELECT id, pacticipant_id, number, created_at FROM handoff_contract_versions WHERE id IN (`+cplaceholders(len(uniq))+`)`, int64Args(uniq)...)
}

func (c cq) BranchCreated(ctx context.Context, pid int64, branch string) (time.Time, bool, error) {
	var t time.Time
	var n int
	err := c.q.QueryRowContext(ctx, c.d.q(`SELECT COUNT(*), MIN(created_at) FROM handoff_contract_branches WHERE pacticipant_id = ? AND branch = ?`), pid, branch).
		Scan(&n, timeScan{&t})
	if err != nil {
		return t, false, fmt.Errorf("sqlstore: contract branch %q: %w", branch, err)
	}
	return t, n > 0, nil
}

const envCols = `id, name, display_name, production, created_at`

func scanEnv(sc interface{ Scan(...any) error }) (broker.Environment, error) {
	var e broker.Environment
	err := sc.Scan(&e.ID, &e.Name, &e.DisplayName, &e.Production, timeScan{&e.CreatedAt})
	return e, err
}

func (c cq) Environment(ctx context.Context, ref string) (broker.Environment, error) {
	e, err := scanEnv(c.q.QueryRowContext(ctx, c.d.q(`SELECT `+envCols+` FROM handoff_contract_environments WHERE id = ? OR name = ? ORDER BY id = ? DESC LIMIT 1`), ref, ref, ref))
	if err != nil {
		return e, contractNotFound(err)
	}
	return e, nil
}

func (c cq) Environments(ctx context.Context) ([]broker.Environment, error) {
	rows, err := c.q.QueryContext(ctx, `SELECT `+envCols+` FROM handoff_contract_environments ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: contract environments: %w", err)
	}
	defer rows.Close()
	var out []broker.Environment
	for rows.Next() {
		e, err := scanEnv(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func (c cq) content(ctx context.Context, where string, args ...any) (broker.Content, error) {
	var ct broker.Content
	var body string
	err := c.q.QueryRowContext(ctx, c.d.q(`SELECT id, consumer_id, provider_id, sha, content, created_at FROM handoff_contract_contents WHERE `+where), args...).
		Scan(&ct.ID, &ct.ConsumerID, &ct.ProviderID, &ct.SHA, &body, timeScan{&ct.CreatedAt})
	if err != nil {
		return ct, contractNotFound(err)
	}
	ct.JSON = []byte(body)
	return ct, nil
}

func (c cq) Content(ctx context.Context, id int64) (broker.Content, error) {
	return c.content(ctx, `id = ?`, id)
}

func (c cq) ContentBySHA(ctx context.Context, cid, pid int64, sha string) (broker.Content, error) {
	return c.content(ctx, `consumer_id = ? AND provider_id = ? AND sha = ?`, cid, pid, sha)
}

func (c cq) Publications(ctx context.Context, q broker.PublicationQuery) ([]broker.Publication, error) {
	s := `SELECT p.id, p.consumer_version_id, p.provider_id, p.content_id, p.created_at, p.consumer_id, c.name, v.number, pr.name, ct.sha
		FROM handoff_contract_publications p
		JOIN handoff_contract_versions v ON v.id = p.consumer_version_id
		JOIN handoff_contract_pacticipants c ON c.id = p.consumer_id
		JOIN handoff_contract_pacticipants pr ON pr.id = p.provider_id
		JOIN handoff_contract_contents ct ON ct.id = p.content_id
		WHERE 1 = 1`
	var args []any
	if q.ConsumerVersionID != 0 {
		s += ` AND p.consumer_version_id = ?`
		args = append(args, q.ConsumerVersionID)
	}
	if q.ProviderID != 0 {
		s += ` AND p.provider_id = ?`
		args = append(args, q.ProviderID)
	}
	if q.ConsumerID != 0 {
		s += ` AND p.consumer_id = ?`
		args = append(args, q.ConsumerID)
	}
	if q.Branch != "" {
		s += ` AND EXISTS (SELECT 1 FROM handoff_contract_branches b WHERE b.version_id = p.consumer_version_id AND b.branch = ?)`
		args = append(args, q.Branch)
	}
	if q.Tag != "" {
		s += ` AND EXISTS (SELECT 1 FROM handoff_contract_tags t WHERE t.version_id = p.consumer_version_id AND t.tag = ?)`
		args = append(args, q.Tag)
	}
	if q.MainBranch {
		s += ` AND c.main_branch <> '' AND EXISTS (SELECT 1 FROM handoff_contract_branches b WHERE b.version_id = p.consumer_version_id AND b.branch = c.main_branch)`
	}
	if q.DeployedIn != "" {
		s += ` AND EXISTS (SELECT 1 FROM handoff_contract_deployments d WHERE d.version_id = p.consumer_version_id AND d.ended_at IS NULL`
		if q.DeployedIn != "*" {
			s += ` AND d.environment_id = ?`
			args = append(args, q.DeployedIn)
		}
		if q.Deployed != q.Released {
			s += ` AND d.released = ?`
			args = append(args, q.Released)
		}
		s += `)`
	}
	s += ` ORDER BY c.name, p.consumer_version_id DESC, pr.name`
	rows, err := c.q.QueryContext(ctx, c.d.q(s), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: contract publications: %w", err)
	}
	defer rows.Close()
	var out []broker.Publication
	for rows.Next() {
		var p broker.Publication
		if err := rows.Scan(&p.ID, &p.ConsumerVersionID, &p.ProviderID, &p.ContentID, timeScan{&p.CreatedAt}, &p.ConsumerID,
			&p.ConsumerName, &p.ConsumerVersion, &p.ProviderName, &p.SHA); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (c cq) Verifications(ctx context.Context, q broker.VerificationQuery) ([]broker.Verification, error) {
	s := `SELECT r.id, r.content_id, r.provider_version_id, r.success, r.pending, r.build_url, r.created_at, v.number
		FROM handoff_contract_verifications r JOIN handoff_contract_versions v ON v.id = r.provider_version_id WHERE 1 = 1`
	var args []any
	if len(q.ContentIDs) > 0 {
		s += ` AND r.content_id IN (` + cplaceholders(len(q.ContentIDs)) + `)`
		args = append(args, int64Args(q.ContentIDs)...)
	}
	if len(q.ProviderVersionIDs) > 0 {
		s += ` AND r.provider_version_id IN (` + cplaceholders(len(q.ProviderVersionIDs)) + `)`
		args = append(args, int64Args(q.ProviderVersionIDs)...)
	}
	if q.SuccessOnly {
		s += ` AND r.success = ?`
		args = append(args, true)
	}
	s += ` ORDER BY r.id`
	rows, err := c.q.QueryContext(ctx, c.d.q(s), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: contract verifications: %w", err)
	}
	defer rows.Close()
	var out []broker.Verification
	for rows.Next() {
		var v broker.Verification
		if err := rows.Scan(&v.ID, &v.ContentID, &v.ProviderVersionID, &v.Success, &v.Pending, &v.BuildURL, timeScan{&v.CreatedAt}, &v.ProviderVersion); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (c cq) Deployments(ctx context.Context, q broker.DeploymentQuery) ([]broker.Deployment, error) {
	s := `SELECT d.id, d.version_id, d.pacticipant_id, d.environment_id, d.instance, d.released, d.created_at, v.number, p.name
		FROM handoff_contract_deployments d
		JOIN handoff_contract_versions v ON v.id = d.version_id
		JOIN handoff_contract_pacticipants p ON p.id = d.pacticipant_id
		WHERE d.ended_at IS NULL`
	var args []any
	if q.EnvironmentID != "" {
		s += ` AND d.environment_id = ?`
		args = append(args, q.EnvironmentID)
	}
	if q.PacticipantID != 0 {
		s += ` AND d.pacticipant_id = ?`
		args = append(args, q.PacticipantID)
	}
	if len(q.PacticipantIDs) > 0 {
		s += ` AND d.pacticipant_id IN (` + cplaceholders(len(q.PacticipantIDs)) + `)`
		args = append(args, int64Args(q.PacticipantIDs)...)
	}
	if q.VersionID != 0 {
		s += ` AND d.version_id = ?`
		args = append(args, q.VersionID)
	}
	s += ` ORDER BY d.version_id DESC, d.created_at`
	rows, err := c.q.QueryContext(ctx, c.d.q(s), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: contract deployments: %w", err)
	}
	defer rows.Close()
	var out []broker.Deployment
	for rows.Next() {
		var d broker.Deployment
		if err := rows.Scan(&d.ID, &d.VersionID, &d.PacticipantID, &d.EnvironmentID, &d.Instance, &d.Released, timeScan{&d.CreatedAt},
			&d.Version, &d.PacticipantName); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// insertIgnore is INSERT that does nothing when a unique key is taken.
func (c cq) insertIgnore(ctx context.Context, table, cols string, args ...any) error {
	q := `INSERT INTO ` + table + ` (` + cols + `) VALUES (` + cplaceholders(len(args)) + `)`
	if c.d.Name == "mysql" {
		first, _, _ := strings.Cut(cols, ",")
		q += ` ON DUPLICATE KEY UPDATE ` + first + ` = ` + first
	} else {
		q += ` ON CONFLICT DO NOTHING`
	}
	if _, err := c.q.ExecContext(ctx, c.d.q(q), args...); err != nil {
		return fmt.Errorf("sqlstore: contract insert into %s: %w", table, err)
	}
	return nil
}

func contractNow() time.Time { return time.Now().UTC() }

func (t *contractTx) EnsurePacticipant(ctx context.Context, name string) (broker.Pacticipant, error) {
	if p, err := t.Pacticipant(ctx, name); !errors.Is(err, broker.ErrNotFound) {
		return p, err
	}
	if err := t.insertIgnore(ctx, "handoff_contract_pacticipants", "name, main_branch, created_at", name, "", t.d.timeArg(contractNow())); err != nil {
		return broker.Pacticipant{}, err
	}
	return t.Pacticipant(ctx, name)
}

func (t *contractTx) SetMainBranch(ctx context.Context, pid int64, branch string) error {
	_, err := t.q.ExecContext(ctx, t.d.q(`UPDATE handoff_contract_pacticipants SET main_branch = ? WHERE id = ?`), branch, pid)
	return err
}

func (t *contractTx) EnsureVersion(ctx context.Context, pid int64, number string) (broker.Version, error) {
	if v, err := t.Version(ctx, pid, number); !errors.Is(err, broker.ErrNotFound) {
		return v, err
	}
	if err := t.insertIgnore(ctx, "handoff_contract_versions", "pacticipant_id, number, created_at", pid, number, t.d.timeArg(contractNow())); err != nil {
		return broker.Version{}, err
	}
	return t.Version(ctx, pid, number)
}

func (t *contractTx) owner(ctx context.Context, vid int64) (int64, error) {
	var pid int64
	err := t.q.QueryRowContext(ctx, t.d.q(`SELECT pacticipant_id FROM handoff_contract_versions WHERE id = ?`), vid).Scan(&pid)
	return pid, contractNotFound(err)
}

func (t *contractTx) AddBranch(ctx context.Context, vid int64, branch string) error {
	pid, err := t.owner(ctx, vid)
	if err != nil {
		return err
	}
	return t.insertIgnore(ctx, "handoff_contract_branches", "version_id, pacticipant_id, branch, created_at", vid, pid, branch, t.d.timeArg(contractNow()))
}

func (t *contractTx) AddTag(ctx context.Context, vid int64, tag string) error {
	pid, err := t.owner(ctx, vid)
	if err != nil {
		return err
	}
	return t.insertIgnore(ctx, "handoff_contract_tags", "version_id, pacticipant_id, tag, created_at", vid, pid, tag, t.d.timeArg(contractNow()))
}

func (t *contractTx) EnsureContent(ctx context.Context, c broker.Content) (broker.Content, error) {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = contractNow()
	}
	if err := t.insertIgnore(ctx, "handoff_contract_contents", "consumer_id, provider_id, sha, content, created_at",
		c.ConsumerID, c.ProviderID, c.SHA, string(c.JSON), t.d.timeArg(c.CreatedAt)); err != nil {
		return broker.Content{}, err
	}
	return t.ContentBySHA(ctx, c.ConsumerID, c.ProviderID, c.SHA)
}

func (t *contractTx) PutPublication(ctx context.Context, cvid, pid, contentID int64) (broker.Publication, error) {
	var consumerID int64
	if err := t.q.QueryRowContext(ctx, t.d.q(`SELECT pacticipant_id FROM handoff_contract_versions WHERE id = ?`), cvid).Scan(&consumerID); err != nil {
		return broker.Publication{}, contractNotFound(err)
	}
	res, err := t.q.ExecContext(ctx, t.d.q(`UPDATE handoff_contract_publications SET content_id = ? WHERE consumer_version_id = ? AND provider_id = ?`),
		contentID, cvid, pid)
	if err != nil {
		return broker.Publication{}, fmt.Errorf("sqlstore: contract publication: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if err := t.insertIgnore(ctx, "handoff_contract_publications", "consumer_version_id, consumer_id, provider_id, content_id, created_at",
			cvid, consumerID, pid, contentID, t.d.timeArg(contractNow())); err != nil {
			return broker.Publication{}, err
		}
		// A concurrent publisher may have inserted first: make it ours.
		if _, err := t.q.ExecContext(ctx, t.d.q(`UPDATE handoff_contract_publications SET content_id = ? WHERE consumer_version_id = ? AND provider_id = ?`),
			contentID, cvid, pid); err != nil {
			return broker.Publication{}, err
		}
	}
	var p broker.Publication
	err = t.q.QueryRowContext(ctx, t.d.q(`SELECT id, consumer_version_id, provider_id, content_id, created_at, consumer_id
		FROM handoff_contract_publications WHERE consumer_version_id = ? AND provider_id = ?`), cvid, pid).
		Scan(&p.ID, &p.ConsumerVersionID, &p.ProviderID, &p.ContentID, timeScan{&p.CreatedAt}, &p.ConsumerID)
	return p, contractNotFound(err)
}

func (t *contractTx) AddVerification(ctx context.Context, v broker.Verification) (broker.Verification, error) {
	if v.CreatedAt.IsZero() {
		v.CreatedAt = contractNow()
	}
	args := []any{v.ContentID, v.ProviderVersionID, v.Success, v.Pending, v.BuildURL, string(v.Body), t.d.timeArg(v.CreatedAt)}
	q := `INSERT INTO handoff_contract_verifications (content_id, provider_version_id, success, pending, build_url, body, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`
	if t.d.Name == "mysql" {
		res, err := t.q.ExecContext(ctx, q, args...)
		if err != nil {
			return v, fmt.Errorf("sqlstore: contract verification: %w", err)
		}
		v.ID, err = res.LastInsertId()
		return v, err
	}
	if err := t.q.QueryRowContext(ctx, t.d.q(q+` RETURNING id`), args...).Scan(&v.ID); err != nil {
		return v, fmt.Errorf("sqlstore: contract verification: %w", err)
	}
	return v, nil
}

func (t *contractTx) CreateEnvironment(ctx context.Context, e broker.Environment) error {
	if _, err := t.Environment(ctx, e.Name); err == nil {
		return broker.ErrConflict
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = contractNow()
	}
	_, err := t.q.ExecContext(ctx, t.d.q(`INSERT INTO handoff_contract_environments (`+envCols+`) VALUES (?, ?, ?, ?, ?)`),
		e.ID, e.Name, e.DisplayName, e.Production, t.d.timeArg(e.CreatedAt))
	if err != nil {
		if _, gerr := t.Environment(ctx, e.Name); gerr == nil {
			return broker.ErrConflict
		}
		return fmt.Errorf("sqlstore: contract environment: %w", err)
	}
	return nil
}

func (t *contractTx) AddDeployment(ctx context.Context, d broker.Deployment) error {
	if d.CreatedAt.IsZero() {
		d.CreatedAt = contractNow()
	}
	_, err := t.q.ExecContext(ctx, t.d.q(`INSERT INTO handoff_contract_deployments
		(id, version_id, pacticipant_id, environment_id, instance, released, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		d.ID, d.VersionID, d.PacticipantID, d.EnvironmentID, d.Instance, d.Released, t.d.timeArg(d.CreatedAt))
	if err != nil {
		return fmt.Errorf("sqlstore: contract deployment: %w", err)
	}
	return nil
}

func (t *contractTx) EndDeployments(ctx context.Context, pid int64, envID, instance string, at time.Time) error {
	_, err := t.q.ExecContext(ctx, t.d.q(`UPDATE handoff_contract_deployments SET ended_at = ?
		WHERE pacticipant_id = ? AND environment_id = ? AND instance = ? AND released = ? AND ended_at IS NULL`),
		t.d.timeArg(at), pid, envID, instance, false)
	if err != nil {
		return fmt.Errorf("sqlstore: contract end deployments: %w", err)
	}
	return nil
}
