package memory

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/handoffhq/handoff/contract/broker"
)

// ContractStore is an in-memory [broker.Store]. Update holds the write
// lock and works on a copy of the state, kept only when the function
// returns nil, so a failed update changes nothing.
type ContractStore struct {
	mu sync.RWMutex
	st *contractState
}

var _ broker.Store = (*ContractStore)(nil)

// NewContractStore returns an empty in-memory contract broker store.
func NewContractStore() *ContractStore { return &ContractStore{st: newContractState()} }

type contractState struct {
	nextID       int64
	pacticipants map[int64]*broker.Pacticipant
	versions     map[int64]*broker.Version
	branchAt     map[int64]map[string]time.Time // version → branch → added
	contents     map[int64]*broker.Content
	pubs         map[int64]*broker.Publication
	verifs       []broker.Verification
	envs         map[string]*broker.Environment
	deps         []broker.Deployment
}

func newContractState() *contractState {
	return &contractState{pacticipants: map[int64]*broker.Pacticipant{}, versions: map[int64]*broker.Version{},
		branchAt: map[int64]map[string]time.Time{}, contents: map[int64]*broker.Content{}, pubs: map[int64]*broker.Publication{},
		envs: map[string]*broker.Environment{}}
}

func (s *contractState) clone() *contractState {
	c := newContractState()
	c.nextID = s.nextID
	for k, v := range s.pacticipants {
		x := *v
		c.pacticipants[k] = &x
	}
	for k, v := range s.versions {
		x := *v
		x.Branches = append([]string(nil), v.Branches...)
		x.Tags = append([]string(nil), v.Tags...)
		c.versions[k] = &x
	}
	for k, v := range s.branchAt {
		m := map[string]time.Time{}
		for b, t := range v {
			m[b] = t
		}
		c.branchAt[k] = m
	}
	for k, v := range s.contents {
		c.contents[k] = v // contents never change
	}
	for k, v := range s.pubs {
		x := *v
		c.pubs[k] = &x
	}
	c.verifs = append([]broker.Verification(nil), s.verifs...)
	for k, v := range s.envs {
		x := *v
		c.envs[k] = &x
	}
	c.deps = append([]broker.Deployment(nil), s.deps...)
	return c
}

func (s *contractState) id() int64 { s.nextID++; return s.nextID }

// Update implements [broker.Store].
func (s *ContractStore) Update(ctx context.Context, fn func(broker.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.st.clone()
	if err := fn(c); err != nil {
		return err
	}
	s.st = c
	return nil
}

func (s *ContractStore) read() *contractState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st
}

// The reads go to the current state; Update replaces it whole, so a read
// never sees half an update.

func (s *ContractStore) Pacticipant(ctx context.Context, name string) (broker.Pacticipant, error) {
	return s.read().Pacticipant(ctx, name)
}
func (s *ContractStore) Pacticipants(ctx context.Context) ([]broker.Pacticipant, error) {
	return s.read().Pacticipants(ctx)
}
func (s *ContractStore) Version(ctx context.Context, pid int64, number string) (broker.Version, error) {
	return s.read().Version(ctx, pid, number)
}
func (s *ContractStore) Versions(ctx context.Context, pid int64, branch, tag string, limit int) ([]broker.Version, error) {
	return s.read().Versions(ctx, pid, branch, tag, limit)
}
func (s *ContractStore) VersionsByID(ctx context.Context, ids []int64) ([]broker.Version, error) {
	return s.read().VersionsByID(ctx, ids)
}
func (s *ContractStore) BranchCreated(ctx context.Context, pid int64, branch string) (time.Time, bool, error) {
	return s.read().BranchCreated(ctx, pid, branch)
}
func (s *ContractStore) Environment(ctx context.Context, ref string) (broker.Environment, error) {
	return s.read().Environment(ctx, ref)
}
func (s *ContractStore) Environments(ctx context.Context) ([]broker.Environment, error) {
	return s.read().Environments(ctx)
}
func (s *ContractStore) Content(ctx context.Context, id int64) (broker.Content, error) {
	return s.read().Content(ctx, id)
}
func (s *ContractStore) ContentBySHA(ctx context.Context, c, p int64, sha string) (broker.Content, error) {
	return s.read().ContentBySHA(ctx, c, p, sha)
}
func (s *ContractStore) Publications(ctx context.Context, q broker.PublicationQuery) ([]broker.Publication, error) {
	return s.read().Publications(ctx, q)
}
func (s *ContractStore) Verifications(ctx context.Context, q broker.VerificationQuery) ([]broker.Verification, error) {
	return s.read().Verifications(ctx, q)
}
func (s *ContractStore) Deployments(ctx context.Context, q broker.DeploymentQuery) ([]broker.Deployment, error) {
	return s.read().Deployments(ctx, q)
}

func (s *contractState) Pacticipant(_ context.Context, name string) (broker.Pacticipant, error) {
	for _, p := range s.pacticipants {
		if p.Name == name {
			return *p, nil
		}
	}
	return broker.Pacticipant{}, broker.ErrNotFound
}

func (s *contractState) Pacticipants(context.Context) ([]broker.Pacticipant, error) {
	var out []broker.Pacticipant
	for _, p := range s.pacticipants {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *contractState) version(v *broker.Version) broker.Version {
	x := *v
	x.Branches = append([]string(nil), v.Branches...)
	x.Tags = append([]string(nil), v.Tags...)
	return x
}

func (s *contractState) Version(_ context.Context, pid int64, number string) (broker.Version, error) {
	for _, v := range s.versions {
		if v.PacticipantID == pid && v.Number == number {
			return s.version(v), nil
		}
	}
	return broker.Version{}, broker.ErrNotFound
}

func (s *contractState) Versions(_ context.Context, pid int64, branch, tag string, limit int) ([]broker.Version, error) {
	var out []broker.Version
	for _, v := range s.versions {
		if v.PacticipantID != pid || branch != "" && !has(v.Branches, branch) || tag != "" && !has(v.Tags, tag) {
			continue
		}
		out = append(out, s.version(v))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func has(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func (s *contractState) VersionsByID(_ context.Context, ids []int64) ([]broker.Version, error) {
	var out []broker.Version
	seen := map[int64]bool{}
	for _, id := range ids {
		if v, ok := s.versions[id]; ok && !seen[id] {
			seen[id] = true
			out = append(out, s.version(v))
		}
	}
	return out, nil
}

func (s *contractState) BranchCreated(_ context.Context, pid int64, branch string) (time.Time, bool, error) {
	var first time.Time
	found := false
	for vid, m := range s.branchAt {
		if s.versions[vid].PacticipantID != pid {
			continue
		}
		if t, ok := m[branch]; ok && (!found || t.Before(first)) {
			first, found = t, true
		}
	}
	return first, found, nil
}

func (s *contractState) Environment(_ context.Context, ref string) (broker.Environment, error) {
	if e, ok := s.envs[ref]; ok {
		return *e, nil
	}
	for _, e := range s.envs {
		if e.Name == ref {
			return *e, nil
		}
	}
	return broker.Environment{}, broker.ErrNotFound
}

func (s *contractState) Environments(context.Context) ([]broker.Environment, error) {
	var out []broker.Environment
	for _, e := range s.envs {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *contractState) Content(_ context.Context, id int64) (broker.Content, error) {
	if c, ok := s.contents[id]; ok {
		return *c, nil
	}
	return broker.Content{}, broker.ErrNotFound
}

func (s *contractState) ContentBySHA(_ context.Context, cid, pid int64, sha string) (broker.Content, error) {
	for _, c := range s.contents {
		if c.ConsumerID == cid && c.ProviderID == pid && c.SHA == sha {
			return *c, nil
		}
	}
	return broker.Content{}, broker.ErrNotFound
}

func (s *contractState) current(versionID int64, envID string, deployed, released bool) bool {
	for _, d := range s.deps {
		if d.VersionID != versionID || !d.EndedAt.IsZero() || envID != "*" && d.EnvironmentID != envID {
			continue
		}
		if deployed && d.Released || released && !d.Released {
			continue
		}
		return true
	}
	return false
}

func (s *contractState) Publications(_ context.Context, q broker.PublicationQuery) ([]broker.Publication, error) {
	var out []broker.Publication
	for _, p := range s.pubs {
		v := s.versions[p.ConsumerVersionID]
		c := s.pacticipants[v.PacticipantID]
		switch {
		case q.ConsumerVersionID != 0 && p.ConsumerVersionID != q.ConsumerVersionID,
			q.ProviderID != 0 && p.ProviderID != q.ProviderID,
			q.ConsumerID != 0 && v.PacticipantID != q.ConsumerID,
			q.Branch != "" && !has(v.Branches, q.Branch),
			q.Tag != "" && !has(v.Tags, q.Tag),
			q.MainBranch && (c.MainBranch == "" || !has(v.Branches, c.MainBranch)),
			q.DeployedIn != "" && !s.current(v.ID, q.DeployedIn, q.Deployed, q.Released):
			continue
		}
		x := *p
		x.ConsumerID, x.ConsumerName, x.ConsumerVersion = c.ID, c.Name, v.Number
		x.ProviderName = s.pacticipants[p.ProviderID].Name
		x.SHA = s.contents[p.ContentID].SHA
		out = append(out, x)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ConsumerName != out[j].ConsumerName {
			return out[i].ConsumerName < out[j].ConsumerName
		}
		if out[i].ConsumerVersionID != out[j].ConsumerVersionID {
			return out[i].ConsumerVersionID > out[j].ConsumerVersionID
		}
		return out[i].ProviderName < out[j].ProviderName
	})
	return out, nil
}

func in(ids []int64, id int64) bool {
	if len(ids) == 0 {
		return true
	}
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func (s *contractState) Verifications(_ context.Context, q broker.VerificationQuery) ([]broker.Verification, error) {
	var out []broker.Verification
	for _, v := range s.verifs {
		if !in(q.ContentIDs, v.ContentID) || !in(q.ProviderVersionIDs, v.ProviderVersionID) || q.SuccessOnly && !v.Success {
			continue
		}
		v.ProviderVersion = s.versions[v.ProviderVersionID].Number
		out = append(out, v)
	}
	return out, nil
}

func (s *contractState) Deployments(_ context.Context, q broker.DeploymentQuery) ([]broker.Deployment, error) {
	var out []broker.Deployment
	for _, d := range s.deps {
		if !d.EndedAt.IsZero() || q.EnvironmentID != "" && d.EnvironmentID != q.EnvironmentID ||
			q.PacticipantID != 0 && d.PacticipantID != q.PacticipantID || q.VersionID != 0 && d.VersionID != q.VersionID ||
			len(q.PacticipantIDs) > 0 && !in(q.PacticipantIDs, d.PacticipantID) {
			continue
		}
		d.Version = s.versions[d.VersionID].Number
		d.PacticipantName = s.pacticipants[d.PacticipantID].Name
		out = append(out, d)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].VersionID > out[j].VersionID })
	return out, nil
}

func (s *contractState) EnsurePacticipant(ctx context.Context, name string) (broker.Pacticipant, error) {
	if p, err := s.Pacticipant(ctx, name); err == nil {
		return p, nil
	}
	p := &broker.Pacticipant{ID: s.id(), Name: name, CreatedAt: time.Now().UTC()}
	s.pacticipants[p.ID] = p
	return *p, nil
}

func (s *contractState) SetMainBranch(_ context.Context, pid int64, branch string) error {
	p, ok := s.pacticipants[pid]
	if !ok {
		return broker.ErrNotFound
	}
	p.MainBranch = branch
	return nil
}

func (s *contractState) EnsureVersion(ctx context.Context, pid int64, number string) (broker.Version, error) {
	if v, err := s.Version(ctx, pid, number); err == nil {
		return v, nil
	}
	v := &broker.Version{ID: s.id(), PacticipantID: pid, Number: number, CreatedAt: time.Now().UTC()}
	s.versions[v.ID] = v
	return s.version(v), nil
}

func (s *contractState) AddBranch(_ context.Context, vid int64, branch string) error {
	v, ok := s.versions[vid]
	if !ok {
		return broker.ErrNotFound
	}
	if !has(v.Branches, branch) {
		v.Branches = append(v.Branches, branch)
		if s.branchAt[vid] == nil {
			s.branchAt[vid] = map[string]time.Time{}
		}
		s.branchAt[vid][branch] = time.Now().UTC()
	}
	return nil
}

func (s *contractState) AddTag(_ context.Context, vid int64, tag string) error {
	v, ok := s.versions[vid]
	if !ok {
		return broker.ErrNotFound
	}
	if !has(v.Tags, tag) {
		v.Tags = append(v.Tags, tag)
	}
	return nil
}

func (s *contractState) EnsureContent(ctx context.Context, c broker.Content) (broker.Content, error) {
	if x, err := s.ContentBySHA(ctx, c.ConsumerID, c.ProviderID, c.SHA); err == nil {
		return x, nil
	}
	c.ID = s.id()
	c.JSON = append([]byte(nil), c.JSON...)
	if c.CreatedAt.IsZero() {
		c.CreatedAt = time.Now().UTC()
	}
	s.contents[c.ID] = &c
	return c, nil
}

func (s *contractState) PutPublication(_ context.Context, cvid, pid, contentID int64) (broker.Publication, error) {
	for _, p := range s.pubs {
		if p.ConsumerVersionID == cvid && p.ProviderID == pid {
			p.ContentID = contentID
			return *p, nil
		}
	}
	p := &broker.Publication{ID: s.id(), ConsumerVersionID: cvid, ProviderID: pid, ContentID: contentID, CreatedAt: time.Now().UTC()}
	s.pubs[p.ID] = p
	return *p, nil
}

func (s *contractState) AddVerification(_ context.Context, v broker.Verification) (broker.Verification, error) {
	v.ID = s.id()
	if v.CreatedAt.IsZero() {
		v.CreatedAt = time.Now().UTC()
	}
	v.Body = append([]byte(nil), v.Body...)
	s.verifs = append(s.verifs, v)
	return v, nil
}

func (s *contractState) CreateEnvironment(_ context.Context, e broker.Environment) error {
	for _, x := range s.envs {
		if strings.EqualFold(x.Name, e.Name) {
			return broker.ErrConflict
		}
	}
	s.envs[e.ID] = &e
	return nil
}

func (s *contractState) AddDeployment(_ context.Context, d broker.Deployment) error {
	s.deps = append(s.deps, d)
	return nil
}

func (s *contractState) EndDeployments(_ context.Context, pid int64, envID, instance string, at time.Time) error {
	for i := range s.deps {
		d := &s.deps[i]
		if d.PacticipantID == pid && d.EnvironmentID == envID && d.Instance == instance && !d.Released && d.EndedAt.IsZero() {
			d.EndedAt = at
		}
	}
	return nil
}
