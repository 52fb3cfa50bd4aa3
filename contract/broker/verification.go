package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/handoffhq/handoff/contract"
)

// ForVerificationRequest is the body of POST
// /pacts/provider/{provider}/for-verification.
type ForVerificationRequest struct {
	Selectors             []contract.Selector `json:"consumerVersionSelectors"`
	ProviderVersionBranch string              `json:"providerVersionBranch"`
	ProviderVersionTags   []string            `json:"providerVersionTags"`
	IncludePendingStatus  bool                `json:"includePendingStatus"`
	IncludeWIPPactsSince  string              `json:"includeWipPactsSince"`
}

const maxSelectors = 100

// DecodeForVerificationRequest reads and checks a pacts-for-verification
// request.
func DecodeForVerificationRequest(b []byte) (*ForVerificationRequest, time.Time, error) {
	var req ForVerificationRequest
	if err := decodeBytes(b, &req); err != nil {
		return nil, time.Time{}, err
	}
	if len(req.Selectors) > maxSelectors {
		return nil, time.Time{}, badRequest("consumerVersionSelectors", "more than %d", maxSelectors)
	}
	if len(req.ProviderVersionTags) > maxTags {
		return nil, time.Time{}, badRequest("providerVersionTags", "more than %d", maxTags)
	}
	for i, s := range req.Selectors {
		f := fmt.Sprintf("consumerVersionSelectors[%d]", i)
		n := 0
		for _, set := range []bool{s.MainBranch, s.Branch != "", s.MatchingBranch, s.Tag != "", s.Deployed, s.Released, s.DeployedOrReleased} {
			if set {
				n++
			}
		}
		if n == 0 && !s.Latest && s.Environment == "" && s.Consumer == "" {
			return nil, time.Time{}, badRequest(f, "selects nothing: set mainBranch, branch, matchingBranch, tag, latest, deployed, released or deployedOrReleased")
		}
		if n > 1 {
			return nil, time.Time{}, badRequest(f, "set only one of mainBranch, branch, matchingBranch, tag, deployed, released, deployedOrReleased")
		}
		if s.MatchingBranch && req.ProviderVersionBranch == "" {
			return nil, time.Time{}, badRequest(f+".matchingBranch", "needs providerVersionBranch")
		}
		for name, v := range map[string]string{"branch": s.Branch, "tag": s.Tag, "environment": s.Environment, "consumer": s.Consumer} {
			if len(v) > maxName {
				return nil, time.Time{}, badRequest(f+"."+name, "longer than %d bytes", maxName)
			}
		}
	}
	var since time.Time
	if req.IncludeWIPPactsSince != "" {
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
			if t, err := time.Parse(layout, req.IncludeWIPPactsSince); err == nil {
				since = t
				break
			}
		}
		if since.IsZero() {
			return nil, time.Time{}, badRequest("includeWipPactsSince", "%q is not a date (2006-01-02 or RFC 3339)", req.IncludeWIPPactsSince)
		}
		if req.ProviderVersionBranch == "" && len(req.ProviderVersionTags) == 0 {
			return nil, time.Time{}, badRequest("includeWipPactsSince", "needs providerVersionBranch: a pact is work in progress for a provider branch")
		}
	}
	return &req, since, nil
}

func (s *Server) forVerificationDoc(w http.ResponseWriter, r *http.Request) error {
	b := s.base(r)
	return reply(w, 200, map[string]any{"_links": map[string]any{
		"self": link{Href: b + "/pacts/provider/" + esc(r.PathValue("provider")) + "/for-verification", Title: "Pacts to be verified"}}})
}

// VerifiablePact is one pact a provider should verify, and why.
type VerifiablePact struct {
	Publication Publication
	Reasons     []string // why it was selected
	Pending     bool
	WIP         bool
	Notices     []string
}

// PactsForVerification resolves the selectors for the provider: each
// distinct pact content once, with the reasons it was selected, whether it
// is pending for the provider's branch, and work-in-progress pacts.
func (s *Server) PactsForVerification(ctx context.Context, provider string, req *ForVerificationRequest, wipSince time.Time) ([]*VerifiablePact, error) {
	p, err := s.store.Pacticipant(ctx, provider)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	sels := req.Selectors
	if len(sels) == 0 {
		sels = []contract.Selector{{MainBranch: true}, {DeployedOrReleased: true}}
	}
	byContent := map[int64]*VerifiablePact{}
	var order []int64
	add := func(pub Publication, why string) {
		vp, ok := byContent[pub.ContentID]
		if !ok {
			vp = &VerifiablePact{Publication: pub}
			byContent[pub.ContentID] = vp
			order = append(order, pub.ContentID)
		}
		vp.Reasons = append(vp.Reasons, why)
	}
	for _, sel := range sels {
		q := PublicationQuery{ProviderID: p.ID}
		latest := true
		var why string
		switch {
		case sel.MainBranch:
			q.MainBranch, why = true, "the latest version of %s from its main branch"
		case sel.Branch != "":
			q.Branch, why = sel.Branch, "the latest version of %s from branch "+quote(sel.Branch)
		case sel.MatchingBranch:
			q.Branch, why = req.ProviderVersionBranch, "the latest version of %s from branch "+quote(req.ProviderVersionBranch)+", matching the provider's branch"
		case sel.Tag != "":
			q.Tag, latest = sel.Tag, sel.Latest
			why = "a version of %s tagged " + quote(sel.Tag)
			if latest {
				why = "the latest version of %s tagged " + quote(sel.Tag)
			}
		case sel.Deployed || sel.Released || sel.DeployedOrReleased || sel.Environment != "" && !sel.Latest:
			q.DeployedIn, q.Deployed, q.Released, latest = "*", sel.Deployed, sel.Released, false
			why = "a version of %s currently deployed or released"
			if sel.Environment != "" {
				env, err := s.store.Environment(ctx, sel.Environment)
				if errors.Is(err, ErrNotFound) {
					continue
				}
				if err != nil {
					return nil, err
				}
				q.DeployedIn = env.ID
				why += " in " + env.Name
			}
		default:
			why = "the latest version of %s"
		}
		if sel.Consumer != "" {
			c, err := s.store.Pacticipant(ctx, sel.Consumer)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			q.ConsumerID = c.ID
		}
		pubs, err := s.store.Publications(ctx, q)
		if err != nil {
			return nil, err
		}
		if latest {
			pubs = latestPerConsumer(pubs)
		}
		for _, pub := range pubs {
			add(pub, fmt.Sprintf(why, pub.ConsumerName)+fmt.Sprintf(" (%s)", pub.ConsumerVersion))
		}
	}
	var out []*VerifiablePact
	for _, id := range order {
		out = append(out, byContent[id])
	}
	if req.IncludePendingStatus || !wipSince.IsZero() {
		for _, vp := range out {
			pending, err := s.pendingFor(ctx, s.store, vp.Publication.ContentID, p.ID, req.ProviderVersionBranch, req.ProviderVersionTags)
			if err != nil {
				return nil, err
			}
			vp.Pending = pending && req.IncludePendingStatus
		}
	}
	if !wipSince.IsZero() {
		wip, err := s.wipPacts(ctx, p, req, wipSince, byContent)
		if err != nil {
			return nil, err
		}
		out = append(out, wip...)
	}
	for _, vp := range out {
		vp.Notices = notices(vp, provider, req)
	}
	return out, nil
}

func quote(s string) string { return "'" + s + "'" }

// wipPacts are the heads of every consumer branch, published since
// since, not selected already, and pending for the provider's branch.
func (s *Server) wipPacts(ctx context.Context, p Pacticipant, req *ForVerificationRequest, since time.Time, selected map[int64]*VerifiablePact) ([]*VerifiablePact, error) {
	pubs, err := s.store.Publications(ctx, PublicationQuery{ProviderID: p.ID})
	if err != nil {
		return nil, err
	}
	ids := make([]int64, 0, len(pubs))
	for _, pub := range pubs {
		ids = append(ids, pub.ConsumerVersionID)
	}
	vs, err := s.store.VersionsByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	branches := map[int64][]string{}
	for _, v := range vs {
		branches[v.ID] = v.Branches
	}
	heads := map[string]bool{} // consumer \x00 branch
	var out []*VerifiablePact
	seen := map[int64]bool{}
	for _, pub := range pubs { // newest first per consumer
		for _, br := range branches[pub.ConsumerVersionID] {
			k := pub.ConsumerName + "\x00" + br
			if heads[k] {
				continue
			}
			heads[k] = true
			if selected[pub.ContentID] != nil || seen[pub.ContentID] || pub.CreatedAt.Before(since) {
				continue
			}
			pending, err := s.pendingFor(ctx, s.store, pub.ContentID, p.ID, req.ProviderVersionBranch, req.ProviderVersionTags)
			if err != nil {
				return nil, err
			}
			if !pending {
				continue
			}
			seen[pub.ContentID] = true
			out = append(out, &VerifiablePact{Publication: pub, Pending: true, WIP: true,
				Reasons: []string{fmt.Sprintf("the latest version of %s from branch %s (%s), a work in progress", pub.ConsumerName, quote(br), pub.ConsumerVersion)}})
		}
	}
	return out, nil
}

func notices(vp *VerifiablePact, provider string, req *ForVerificationRequest) []string {
	var out []string
	out = append(out, "This pact is being verified because it is the pact for "+strings.Join(vp.Reasons, ", and "))
	if !req.IncludePendingStatus && !vp.WIP {
		return out
	}
	where := "any version of " + provider
	if req.ProviderVersionBranch != "" {
		where = fmt.Sprintf("a version of %s from branch '%s'", provider, req.ProviderVersionBranch)
	} else if len(req.ProviderVersionTags) > 0 {
		where = fmt.Sprintf("a version of %s tagged '%s'", provider, strings.Join(req.ProviderVersionTags, "', '"))
	}
	if vp.Pending {
		out = append(out, fmt.Sprintf("This pact is in pending state for this version of %s because no successful verification result from %s has been published. If verification fails, it will not fail the build.", provider, where))
	} else {
		out = append(out, fmt.Sprintf("This pact has been successfully verified by %s. If verification fails, the build will fail.", where))
	}
	if vp.WIP {
		out = append(out, "This pact is a work in progress: it was published recently and has not been verified by this provider branch. Its results do not fail the build.")
	}
	return out
}

// pendingFor reports whether the content is pending for a provider
// branch (or tags): no successful verification from a provider version on
// that branch, nor from another branch before this branch was created.
// With neither branch nor tags: never verified successfully.
func (s *Server) pendingFor(ctx context.Context, r Reader, contentID, providerID int64, branch string, tags []string) (bool, error) {
	vs, err := r.Verifications(ctx, VerificationQuery{ContentIDs: []int64{contentID}, SuccessOnly: true})
	if err != nil {
		return false, err
	}
	if len(vs) == 0 {
		return true, nil
	}
	if branch == "" && len(tags) == 0 {
		return false, nil
	}
	ids := make([]int64, 0, len(vs))
	for _, v := range vs {
		ids = append(ids, v.ProviderVersionID)
	}
	versions, err := r.VersionsByID(ctx, ids)
	if err != nil {
		return false, err
	}
	byID := map[int64]Version{}
	for _, v := range versions {
		byID[v.ID] = v
	}
	var created time.Time
	exists := false
	if branch != "" {
		if created, exists, err = r.BranchCreated(ctx, providerID, branch); err != nil {
			return false, err
		}
	}
	for _, ver := range vs {
		pv := byID[ver.ProviderVersionID]
		if branch != "" {
			if contains(pv.Branches, branch) {
				return false, nil
			}
			if len(pv.Branches) > 0 && (!exists || ver.CreatedAt.Before(created)) {
				return false, nil
			}
			continue
		}
		for _, t := range tags {
			if contains(pv.Tags, t) {
				return false, nil
			}
		}
	}
	return true, nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func (s *Server) forVerification(w http.ResponseWriter, r *http.Request) error {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r.Body); err != nil {
		return badRequest("body", "%v", err)
	}
	body := buf.Bytes()
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	req, since, err := DecodeForVerificationRequest(body)
	if err != nil {
		return err
	}
	provider := r.PathValue("provider")
	vps, err := s.PactsForVerification(r.Context(), provider, req, since)
	if err != nil {
		return err
	}
	b := s.base(r)
	pacts := []map[string]any{}
	for _, vp := range vps {
		var ns []map[string]string
		for i, n := range vp.Notices {
			when := "before_verification"
			if i > 0 && !vp.Pending && vp.WIP {
				when = "before_verification"
			}
			ns = append(ns, map[string]string{"when": when, "text": n})
		}
		props := map[string]any{"notices": ns}
		if req.IncludePendingStatus || vp.WIP {
			props["pending"] = vp.Pending
		}
		if vp.WIP {
			props["wip"] = true
		}
		pub := vp.Publication
		pacts = append(pacts, map[string]any{
			"shortDescription":       strings.Join(vp.Reasons, "; "),
			"verificationProperties": props,
			"_links": map[string]any{"self": link{Href: b + pactPath(provider, pub.ConsumerName) + "/pact-version/" + pub.SHA,
				Name: fmt.Sprintf("Pact between %s (%s) and %s", pub.ConsumerName, pub.ConsumerVersion, provider)}},
		})
	}
	return reply(w, 200, map[string]any{"_embedded": map[string]any{"pacts": pacts},
		"_links": map[string]any{"self": link{Href: b + "/pacts/provider/" + esc(provider) + "/for-verification", Title: "Pacts to be verified"}}})
}

// VerificationRequest is the body of a published verification result.
type VerificationRequest struct {
	Success         *bool           `json:"success"`
	ProviderVersion string          `json:"providerApplicationVersion"`
	BuildURL        string          `json:"buildUrl"`
	TestResults     json.RawMessage `json:"testResults"`
	VerifiedBy      json.RawMessage `json:"verifiedBy"`
}

// DecodeVerificationRequest reads and checks a verification result.
func DecodeVerificationRequest(b []byte) (*VerificationRequest, error) {
	var req VerificationRequest
	if err := decodeBytes(b, &req); err != nil {
		return nil, err
	}
	if req.Success == nil {
		return nil, badRequest("success", "is required (true or false)")
	}
	if err := checkName("providerApplicationVersion", req.ProviderVersion); err != nil {
		return nil, err
	}
	if len(req.BuildURL) > 2048 {
		return nil, badRequest("buildUrl", "longer than 2048 bytes")
	}
	return &req, nil
}

func (s *Server) postVerification(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r.Body); err != nil {
		return badRequest("body", "%v", err)
	}
	req, err := DecodeVerificationRequest(buf.Bytes())
	if err != nil {
		return err
	}
	provider, consumer, sha := r.PathValue("provider"), r.PathValue("consumer"), r.PathValue("sha")
	var ver Verification
	err = s.store.Update(ctx, func(tx Tx) error {
		c, err := tx.Pacticipant(ctx, consumer)
		if err != nil {
			return s.notFoundOr(err, "no pacticipant %q", consumer)
		}
		p, err := tx.Pacticipant(ctx, provider)
		if err != nil {
			return s.notFoundOr(err, "no pacticipant %q", provider)
		}
		content, err := tx.ContentBySHA(ctx, c.ID, p.ID, sha)
		if err != nil {
			return s.notFoundOr(err, "no pact %s between %s and %s", sha, consumer, provider)
		}
		pv, err := tx.EnsureVersion(ctx, p.ID, req.ProviderVersion)
		if err != nil {
			return err
		}
		branch := ""
		if len(pv.Branches) > 0 {
			branch = pv.Branches[len(pv.Branches)-1]
		}
		pending, err := s.pendingFor(ctx, tx, content.ID, p.ID, branch, pv.Tags)
		if err != nil {
			return err
		}
		ver, err = tx.AddVerification(ctx, Verification{ContentID: content.ID, ProviderVersionID: pv.ID, Success: *req.Success,
			Pending: pending, BuildURL: req.BuildURL, Body: compact(buf.Bytes()), CreatedAt: s.now()})
		return err
	})
	if err != nil {
		return err
	}
	b := s.base(r)
	return reply(w, http.StatusCreated, map[string]any{
		"success": ver.Success, "providerApplicationVersion": req.ProviderVersion, "verificationDate": rfc3339(ver.CreatedAt),
		"pending": ver.Pending, "buildUrl": nilIfEmpty(req.BuildURL),
		"_links": map[string]any{"self": link{Href: fmt.Sprintf("%s%s/pact-version/%s/verification-results/%d", b, pactPath(provider, consumer), sha, ver.ID), Title: "Verification result"}},
	})
}

// sortPubs orders publications newest first (tests, memory store).
func sortPubs(ps []Publication) {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].ConsumerName != ps[j].ConsumerName {
			return ps[i].ConsumerName < ps[j].ConsumerName
		}
		return ps[i].ConsumerVersionID > ps[j].ConsumerVersionID
	})
}
