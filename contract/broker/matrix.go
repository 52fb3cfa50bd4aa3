package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/handoffhq/handoff/contract"
)

// Row is one consumer version × provider version pair of the matrix.
type Row struct {
	Consumer, ConsumerVersion string
	Provider, ProviderVersion string // ProviderVersion "" when none is there
	PactSHA                   string
	PactCreatedAt             time.Time
	Verification              *Verification // nil: not verified
}

// Answer is a can-i-deploy verdict with the rows it rests on.
type Answer struct {
	Deployable *bool // nil when only unknowns (no verification) stand in the way
	Reasons    []contract.Reason
	Rows       []Row
}

// CanIDeploy answers whether version of pacticipant can be deployed to the
// environment: every pact it published must be verified successfully by
// each version of its provider deployed or released there, and it must
// have verified successfully the pact of each consumer version there. A
// provider that is not there yet fails a consumer (it needs it); a
// consumer that is not there does not hold up a provider.
func (s *Server) CanIDeploy(ctx context.Context, pacticipant, version, environment string) (*Answer, error) {
	no := false
	fail := func(code, text string) *Answer {
		return &Answer{Deployable: &no, Reasons: []contract.Reason{{Code: code, Text: text}}}
	}
	p, err := s.store.Pacticipant(ctx, pacticipant)
	if errors.Is(err, ErrNotFound) {
		return fail(contract.ReasonVersionNotFound, fmt.Sprintf("The pacticipant %s is unknown to the broker", pacticipant)), nil
	}
	if err != nil {
		return nil, err
	}
	v, err := s.store.Version(ctx, p.ID, version)
	if errors.Is(err, ErrNotFound) {
		return fail(contract.ReasonVersionNotFound, fmt.Sprintf("No pacts or verifications have been published for version %s of %s", version, pacticipant)), nil
	}
	if err != nil {
		return nil, err
	}
	env, err := s.store.Environment(ctx, environment)
	if errors.Is(err, ErrNotFound) {
		return fail(contract.ReasonEnvironmentNotFound, fmt.Sprintf("No environment named %s exists", environment)), nil
	}
	if err != nil {
		return nil, err
	}
	var rows []Row

	// As a consumer: the providers of its pacts, as deployed there.
	pubs, err := s.store.Publications(ctx, PublicationQuery{ConsumerVersionID: v.ID})
	if err != nil {
		return nil, err
	}
	type pair struct{ content, pv int64 }
	var need []pair
	providerVersions := map[int64][]Deployment{}
	if len(pubs) > 0 {
		ids := make([]int64, 0, len(pubs))
		for _, pub := range pubs {
			ids = append(ids, pub.ProviderID)
		}
		ds, err := s.store.Deployments(ctx, DeploymentQuery{EnvironmentID: env.ID, PacticipantIDs: ids})
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			providerVersions[d.PacticipantID] = append(providerVersions[d.PacticipantID], d)
		}
	}
	for _, pub := range pubs {
		providerVersions[pub.ProviderID] = dedupeVersions(providerVersions[pub.ProviderID])
		for _, d := range providerVersions[pub.ProviderID] {
			need = append(need, pair{pub.ContentID, d.VersionID})
		}
	}
	// As a provider: the pacts of consumer versions there.
	cpubs, err := s.store.Publications(ctx, PublicationQuery{ProviderID: p.ID, DeployedIn: env.ID})
	if err != nil {
		return nil, err
	}
	for _, pub := range cpubs {
		need = append(need, pair{pub.ContentID, v.ID})
	}
	latest := map[pair]*Verification{}
	if len(need) > 0 {
		cs, pvs := map[int64]bool{}, map[int64]bool{}
		var cids, pvids []int64
		for _, n := range need {
			if !cs[n.content] {
				cs[n.content] = true
				cids = append(cids, n.content)
			}
			if !pvs[n.pv] {
				pvs[n.pv] = true
				pvids = append(pvids, n.pv)
			}
		}
		vs, err := s.store.Verifications(ctx, VerificationQuery{ContentIDs: cids, ProviderVersionIDs: pvids})
		if err != nil {
			return nil, err
		}
		for i := range vs {
			latest[pair{vs[i].ContentID, vs[i].ProviderVersionID}] = &vs[i] // oldest first: the last wins
		}
	}
	for _, pub := range pubs {
		ds := providerVersions[pub.ProviderID]
		if len(ds) == 0 {
			rows = append(rows, Row{Consumer: p.Name, ConsumerVersion: v.Number, Provider: pub.ProviderName, PactSHA: pub.SHA, PactCreatedAt: pub.CreatedAt})
			continue
		}
		for _, d := range ds {
			rows = append(rows, Row{Consumer: p.Name, ConsumerVersion: v.Number, Provider: pub.ProviderName, ProviderVersion: d.Version,
				PactSHA: pub.SHA, PactCreatedAt: pub.CreatedAt, Verification: latest[pair{pub.ContentID, d.VersionID}]})
		}
	}
	for _, pub := range cpubs {
		rows = append(rows, Row{Consumer: pub.ConsumerName, ConsumerVersion: pub.ConsumerVersion, Provider: p.Name, ProviderVersion: v.Number,
			PactSHA: pub.SHA, PactCreatedAt: pub.CreatedAt, Verification: latest[pair{pub.ContentID, v.ID}]})
	}
	return summarize(rows, env.Name), nil
}

// dedupeVersions keeps one deployment per version (several instances may
// run one version).
func dedupeVersions(ds []Deployment) []Deployment {
	seen := map[int64]bool{}
	var out []Deployment
	for _, d := range ds {
		if !seen[d.VersionID] {
			seen[d.VersionID] = true
			out = append(out, d)
		}
	}
	return out
}

// summarize turns rows into the verdict: false on a failed verification,
// nil (unknown) when only missing verifications stand in the way, true
// when every row verified.
func summarize(rows []Row, env string) *Answer {
	a := &Answer{Rows: rows}
	failed, unknown := 0, 0
	for _, r := range rows {
		rs := contract.Reason{Consumer: r.Consumer, ConsumerVersion: r.ConsumerVersion, Provider: r.Provider, ProviderVersion: r.ProviderVersion}
		switch {
		case r.ProviderVersion == "":
			unknown++
			rs.Code = contract.ReasonNoVerification
			rs.Text = fmt.Sprintf("There is no verified pact between version %s of %s and the version of %s in %s: %s is not there", r.ConsumerVersion, r.Consumer, r.Provider, env, r.Provider)
		case r.Verification == nil:
			unknown++
			rs.Code = contract.ReasonNoVerification
			rs.Text = fmt.Sprintf("There is no verified pact between version %s of %s and version %s of %s", r.ConsumerVersion, r.Consumer, r.ProviderVersion, r.Provider)
		case !r.Verification.Success && r.Verification.Pending:
			failed++
			rs.Code = contract.ReasonPending
			rs.Text = fmt.Sprintf("The verification of the pact between version %s of %s and version %s of %s failed while the pact was pending (it did not fail %s's build)",
				r.ConsumerVersion, r.Consumer, r.ProviderVersion, r.Provider, r.Provider)
		case !r.Verification.Success:
			failed++
			rs.Code = contract.ReasonVerificationFailed
			rs.Text = fmt.Sprintf("The verification of the pact between version %s of %s and version %s of %s failed", r.ConsumerVersion, r.Consumer, r.ProviderVersion, r.Provider)
		default:
			rs.Code = contract.ReasonVerified
			rs.Text = fmt.Sprintf("The pact between version %s of %s and version %s of %s has been verified", r.ConsumerVersion, r.Consumer, r.ProviderVersion, r.Provider)
		}
		a.Reasons = append(a.Reasons, rs)
	}
	var d bool
	switch {
	case failed > 0:
		d = false
		a.Deployable = &d
	case unknown > 0:
		a.Deployable = nil
	default:
		d = true
		a.Deployable = &d
	}
	if len(rows) == 0 {
		a.Reasons = []contract.Reason{{Code: contract.ReasonNoDependencies, Text: "There are no missing dependencies"}}
	}
	return a
}

func (a *Answer) summary() string {
	switch {
	case a.Deployable != nil && *a.Deployable && len(a.Rows) == 0:
		return "There are no missing dependencies"
	case a.Deployable != nil && *a.Deployable:
		return "All required verification results are published and successful"
	}
	var bad []string
	for _, r := range a.Reasons {
		if r.Blocking() {
			bad = append(bad, r.Text)
		}
	}
	return strings.Join(bad, "; ")
}

// matrixJSON renders an answer as the Pact Broker's matrix resource, with
// handoff's typed reasons under summary.reasons.
func (s *Server) matrixJSON(b string, a *Answer) map[string]any {
	success, failed, unknown := 0, 0, 0
	rows := []map[string]any{}
	for _, r := range a.Rows {
		row := map[string]any{
			"consumer": map[string]any{"name": r.Consumer, "version": map[string]any{"number": r.ConsumerVersion},
				"_links": map[string]any{"self": link{Href: b + "/pacticipants/" + esc(r.Consumer)}}},
			"provider": map[string]any{"name": r.Provider, "version": nil,
				"_links": map[string]any{"self": link{Href: b + "/pacticipants/" + esc(r.Provider)}}},
			"pact": map[string]any{"createdAt": rfc3339(r.PactCreatedAt),
				"_links": map[string]any{"self": link{Href: b + pactPath(r.Provider, r.Consumer) + "/pact-version/" + r.PactSHA}}},
			"verificationResult": nil,
		}
		if r.ProviderVersion != "" {
			row["provider"].(map[string]any)["version"] = map[string]any{"number": r.ProviderVersion}
		}
		switch {
		case r.Verification == nil:
			unknown++
		case r.Verification.Success:
			success++
		default:
			failed++
		}
		if v := r.Verification; v != nil {
			row["verificationResult"] = map[string]any{"success": v.Success, "verifiedAt": rfc3339(v.CreatedAt), "pending": v.Pending,
				"_links": map[string]any{"self": link{Href: fmt.Sprintf("%s%s/pact-version/%s/verification-results/%d", b, pactPath(r.Provider, r.Consumer), r.PactSHA, v.ID)}}}
		}
		rows = append(rows, row)
	}
	notices := []map[string]string{}
	for _, r := range a.Reasons {
		t := "success"
		if r.Blocking() {
			t = "error"
			if r.Code == contract.ReasonNoVerification {
				t = "warning"
			}
		}
		notices = append(notices, map[string]string{"type": t, "text": r.Text})
	}
	var deployable any
	if a.Deployable != nil {
		deployable = *a.Deployable
	}
	return map[string]any{
		"summary": map[string]any{"deployable": deployable, "reason": a.summary(), "success": success, "failed": failed, "unknown": unknown, "reasons": a.Reasons},
		"notices": notices,
		"matrix":  rows,
	}
}

func (s *Server) canIDeployRoute(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	p, v, env := q.Get("pacticipant"), q.Get("version"), q.Get("environment")
	for f, x := range map[string]string{"pacticipant": p, "version": v, "environment": env} {
		if err := checkName(f, x); err != nil {
			return err
		}
	}
	a, err := s.CanIDeploy(r.Context(), p, v, env)
	if err != nil {
		return err
	}
	return reply(w, 200, s.matrixJSON(s.base(r), a))
}

// MatrixSelector is one q[] selector of a matrix query.
type MatrixSelector struct {
	Pacticipant string
	Version     string
	Branch      string
	Tag         string
	Latest      bool
	MainBranch  bool
}

// MatrixQuery is a parsed /matrix query.
type MatrixQuery struct {
	Selectors   []MatrixSelector
	Environment string
	Tag         string // to=tag (deprecated in Pact: use environments)
}

// ParseMatrixQuery reads /matrix's q[][pacticipant]=…&q[][version]=…
// selectors (each q[][pacticipant] starts a new one) and options.
func ParseMatrixQuery(raw string) (*MatrixQuery, error) {
	mq := &MatrixQuery{}
	if len(raw) > 16<<10 {
		return nil, badRequest("q", "query longer than 16 KiB")
	}
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return nil, badRequest("query", "%v", err)
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return nil, badRequest(key, "%v", err)
		}
		if len(val) > maxName {
			return nil, badRequest(key, "longer than %d bytes", maxName)
		}
		field, isSel := strings.CutPrefix(key, "q[][")
		if isSel {
			field = strings.TrimSuffix(field, "]")
			if field == "pacticipant" {
				if len(mq.Selectors) >= maxSelectors {
					return nil, badRequest("q", "more than %d selectors", maxSelectors)
				}
				mq.Selectors = append(mq.Selectors, MatrixSelector{Pacticipant: val})
				continue
			}
			if len(mq.Selectors) == 0 {
				return nil, badRequest("q[]["+field+"]", "comes before any q[][pacticipant]")
			}
			sel := &mq.Selectors[len(mq.Selectors)-1]
			switch field {
			case "version":
				sel.Version = val
			case "branch":
				sel.Branch = val
			case "tag":
				sel.Tag = val
			case "latest":
				sel.Latest = val == "true"
			case "mainBranch":
				sel.MainBranch = val == "true"
			}
			continue
		}
		switch key {
		case "environment":
			mq.Environment = val
		case "tag":
			mq.Tag = val
		}
	}
	if len(mq.Selectors) == 0 {
		return nil, badRequest("q", "at least one q[][pacticipant] is required")
	}
	return mq, nil
}

// resolve finds the version a selector names.
func (s *Server) resolve(ctx context.Context, sel MatrixSelector) (Pacticipant, *Version, error) {
	p, err := s.store.Pacticipant(ctx, sel.Pacticipant)
	if err != nil {
		return Pacticipant{}, nil, err
	}
	if sel.Version != "" {
		v, err := s.store.Version(ctx, p.ID, sel.Version)
		if err != nil {
			return p, nil, err
		}
		return p, &v, nil
	}
	branch := sel.Branch
	if sel.MainBranch {
		branch = p.MainBranch
	}
	if !sel.Latest && branch == "" && sel.Tag == "" {
		return p, nil, nil // every version
	}
	vs, err := s.store.Versions(ctx, p.ID, branch, sel.Tag, 1)
	if err != nil {
		return p, nil, err
	}
	if len(vs) == 0 {
		return p, nil, ErrNotFound
	}
	return p, &vs[0], nil
}

func (s *Server) matrix(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	mq, err := ParseMatrixQuery(r.URL.RawQuery)
	if err != nil {
		return err
	}
	if mq.Environment != "" && len(mq.Selectors) == 1 {
		sel := mq.Selectors[0]
		p, v, err := s.resolve(ctx, sel)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		version := sel.Version
		if v != nil {
			version = v.Number
		}
		if err != nil || version == "" {
			no := false
			a := &Answer{Deployable: &no, Reasons: []contract.Reason{{Code: contract.ReasonVersionNotFound,
				Text: fmt.Sprintf("No version of %s matches the selector", sel.Pacticipant)}}}
			return reply(w, 200, s.matrixJSON(s.base(r), a))
		}
		a, err := s.CanIDeploy(ctx, p.Name, version, mq.Environment)
		if err != nil {
			return err
		}
		return reply(w, 200, s.matrixJSON(s.base(r), a))
	}
	// Without an environment: the rows between the selected versions (or
	// of the one selected version with every verification of its pacts).
	type sv struct {
		p Pacticipant
		v *Version
	}
	var sels []sv
	for _, sel := range mq.Selectors {
		p, v, err := s.resolve(ctx, sel)
		if errors.Is(err, ErrNotFound) {
			no := false
			a := &Answer{Deployable: &no, Reasons: []contract.Reason{{Code: contract.ReasonVersionNotFound,
				Text: fmt.Sprintf("No version of %s matches the selector", sel.Pacticipant)}}}
			return reply(w, 200, s.matrixJSON(s.base(r), a))
		}
		if err != nil {
			return err
		}
		sels = append(sels, sv{p, v})
	}
	var rows []Row
	for _, c := range sels {
		if c.v == nil {
			continue
		}
		pubs, err := s.store.Publications(ctx, PublicationQuery{ConsumerVersionID: c.v.ID})
		if err != nil {
			return err
		}
		for _, pub := range pubs {
			// The provider versions: those selected, else every verifier.
			var pvIDs []int64
			restricted := false
			for _, o := range sels {
				if o.p.ID == pub.ProviderID {
					restricted = true
					if o.v != nil {
						pvIDs = append(pvIDs, o.v.ID)
					}
				}
			}
			if len(sels) > 1 && !restricted {
				continue
			}
			q := VerificationQuery{ContentIDs: []int64{pub.ContentID}}
			if len(pvIDs) > 0 {
				q.ProviderVersionIDs = pvIDs
			}
			vs, err := s.store.Verifications(ctx, q)
			if err != nil {
				return err
			}
			latest := map[int64]*Verification{}
			var order []int64
			for i := range vs {
				if _, ok := latest[vs[i].ProviderVersionID]; !ok {
					order = append(order, vs[i].ProviderVersionID)
				}
				latest[vs[i].ProviderVersionID] = &vs[i]
			}
			if len(order) == 0 {
				pv := ""
				if len(pvIDs) == 1 {
					for _, o := range sels {
						if o.v != nil && o.v.ID == pvIDs[0] {
							pv = o.v.Number
						}
					}
				}
				rows = append(rows, Row{Consumer: c.p.Name, ConsumerVersion: c.v.Number, Provider: pub.ProviderName, ProviderVersion: pv, PactSHA: pub.SHA, PactCreatedAt: pub.CreatedAt})
			}
			sort.Slice(order, func(i, j int) bool { return order[i] > order[j] })
			for _, id := range order {
				v := latest[id]
				rows = append(rows, Row{Consumer: c.p.Name, ConsumerVersion: c.v.Number, Provider: pub.ProviderName, ProviderVersion: v.ProviderVersion,
					PactSHA: pub.SHA, PactCreatedAt: pub.CreatedAt, Verification: v})
			}
		}
	}
	return reply(w, 200, s.matrixJSON(s.base(r), summarize(rows, "")))
}
