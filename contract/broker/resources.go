package broker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/handoffhq/handoff/contract"
)

// PublishRequest is the body of POST /contracts/publish.
type PublishRequest struct {
	Pacticipant string   `json:"pacticipantName"`
	Version     string   `json:"pacticipantVersionNumber"`
	Branch      string   `json:"branch"`
	Tags        []string `json:"tags"`
	BuildURL    string   `json:"buildUrl"`
	Contracts   []struct {
		ConsumerName  string `json:"consumerName"`
		ProviderName  string `json:"providerName"`
		Specification string `json:"specification"`
		ContentType   string `json:"contentType"`
		Content       string `json:"content"`
		OnConflict    string `json:"onConflict"`
	} `json:"contracts"`
}

const maxContracts = 100
const maxTags = 100

// DecodePublishRequest reads and checks a publish request: each field that
// breaks a rule is named.
func DecodePublishRequest(b []byte) (*PublishRequest, []*contract.Pact, [][]byte, error) {
	var req PublishRequest
	if err := decodeBytes(b, &req); err != nil {
		return nil, nil, nil, err
	}
	if err := checkName("pacticipantName", req.Pacticipant); err != nil {
		return nil, nil, nil, err
	}
	if err := checkName("pacticipantVersionNumber", req.Version); err != nil {
		return nil, nil, nil, err
	}
	if req.Branch != "" {
		if err := checkName("branch", req.Branch); err != nil {
			return nil, nil, nil, err
		}
	}
	if len(req.Tags) > maxTags {
		return nil, nil, nil, badRequest("tags", "more than %d", maxTags)
	}
	for i, t := range req.Tags {
		if err := checkName(fmt.Sprintf("tags[%d]", i), t); err != nil {
			return nil, nil, nil, err
		}
	}
	if len(req.Contracts) == 0 {
		return nil, nil, nil, badRequest("contracts", "at least one contract is required")
	}
	if len(req.Contracts) > maxContracts {
		return nil, nil, nil, badRequest("contracts", "more than %d", maxContracts)
	}
	var pacts []*contract.Pact
	var raws [][]byte
	for i, c := range req.Contracts {
		f := fmt.Sprintf("contracts[%d]", i)
		if c.Specification != "" && c.Specification != "pact" {
			return nil, nil, nil, badRequest(f+".specification", "only pact contracts are supported, not %q", c.Specification)
		}
		if c.ContentType != "" && !strings.Contains(c.ContentType, "json") {
			return nil, nil, nil, badRequest(f+".contentType", "must be application/json, not %q", c.ContentType)
		}
		raw, err := base64.StdEncoding.DecodeString(c.Content)
		if err != nil {
			return nil, nil, nil, badRequest(f+".content", "must be base64: %v", err)
		}
		p, err := contract.Parse(raw)
		if err != nil {
			return nil, nil, nil, badRequest(f+".content", "%v", err)
		}
		if c.ConsumerName != "" && c.ConsumerName != p.Consumer {
			return nil, nil, nil, badRequest(f+".consumerName", "%q does not match the pact's consumer %q", c.ConsumerName, p.Consumer)
		}
		if c.ProviderName != "" && c.ProviderName != p.Provider {
			return nil, nil, nil, badRequest(f+".providerName", "%q does not match the pact's provider %q", c.ProviderName, p.Provider)
		}
		if p.Consumer != req.Pacticipant {
			return nil, nil, nil, badRequest(f+".consumerName", "the pact's consumer %q is not the pacticipant %q", p.Consumer, req.Pacticipant)
		}
		if err := checkName(f+".providerName", p.Provider); err != nil {
			return nil, nil, nil, err
		}
		pacts = append(pacts, p)
		raws = append(raws, raw)
	}
	return &req, pacts, raws, nil
}

// contentSHA identifies a pact's content: the pact as handoff writes it,
// without the metadata (which names the tool that wrote it).
func contentSHA(p *contract.Pact) (string, error) {
	q := *p
	q.Metadata = nil
	b, err := q.Marshal()
	if err != nil {
		// A pact V3 cannot hold (HTTP and messages together): hash it as V4.
		q.Spec = contract.V4
		if b, err = q.Marshal(); err != nil {
			return "", err
		}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return "", err
	}
	delete(m, "metadata")
	c, _ := json.Marshal(m)
	h := sha256.Sum256(c)
	return hex.EncodeToString(h[:20]), nil
}

func compact(raw []byte) []byte {
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return raw
	}
	return buf.Bytes()
}

type published struct {
	consumer, provider, version, sha string
	created                          bool
}

// publish stores pacts of one consumer version in one transaction.
func (s *Server) publish(ctx context.Context, consumer, version, branch string, tags []string, pacts []*contract.Pact, raws [][]byte) ([]published, error) {
	var out []published
	shas := make([]string, len(pacts))
	for i, p := range pacts {
		sha, err := contentSHA(p)
		if err != nil {
			return nil, badRequest("content", "%v", err)
		}
		shas[i] = sha
	}
	err := s.store.Update(ctx, func(tx Tx) error {
		out = out[:0]
		c, err := tx.EnsurePacticipant(ctx, consumer)
		if err != nil {
			return err
		}
		v, err := tx.EnsureVersion(ctx, c.ID, version)
		if err != nil {
			return err
		}
		if branch != "" {
			if err := tx.AddBranch(ctx, v.ID, branch); err != nil {
				return err
			}
			if c.MainBranch == "" && (branch == "main" || branch == "master") {
				if err := tx.SetMainBranch(ctx, c.ID, branch); err != nil {
					return err
				}
			}
		}
		for _, t := range tags {
			if err := tx.AddTag(ctx, v.ID, t); err != nil {
				return err
			}
		}
		for i, p := range pacts {
			prov, err := tx.EnsurePacticipant(ctx, p.Provider)
			if err != nil {
				return err
			}
			content, err := tx.ContentBySHA(ctx, c.ID, prov.ID, shas[i])
			created := false
			if errors.Is(err, ErrNotFound) {
				content, err = tx.EnsureContent(ctx, Content{ConsumerID: c.ID, ProviderID: prov.ID, SHA: shas[i], JSON: compact(raws[i]), CreatedAt: s.now()})
				created = true
			}
			if err != nil {
				return err
			}
			if _, err := tx.PutPublication(ctx, v.ID, prov.ID, content.ID); err != nil {
				return err
			}
			out = append(out, published{consumer: consumer, provider: p.Provider, version: version, sha: shas[i], created: created})
		}
		return nil
	})
	return out, err
}

func (s *Server) publishContracts(w http.ResponseWriter, r *http.Request) error {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r.Body); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &apiError{status: http.StatusRequestEntityTooLarge, errs: map[string][]string{"body": {fmt.Sprintf("larger than %d bytes", mbe.Limit)}}}
		}
		return err
	}
	req, pacts, raws, err := DecodePublishRequest(buf.Bytes())
	if err != nil {
		return err
	}
	pubs, err := s.publish(r.Context(), req.Pacticipant, req.Version, req.Branch, req.Tags, pacts, raws)
	if err != nil {
		return err
	}
	b := s.base(r)
	var notices []map[string]string
	var contracts []link
	var tagLinks []link
	for _, t := range req.Tags {
		tagLinks = append(tagLinks, link{Href: b + "/pacticipants/" + esc(req.Pacticipant) + "/versions/" + esc(req.Version) + "/tags/" + esc(t), Name: t, Title: "Tag"})
	}
	for _, p := range pubs {
		word := "published"
		if !p.created {
			word = "published (its content was already known)"
		}
		notices = append(notices, map[string]string{"type": "success", "text": fmt.Sprintf("Pact for %s version %s and %s %s", p.consumer, p.version, p.provider, word)})
		contracts = append(contracts, link{Href: b + pactPath(p.provider, p.consumer) + "/version/" + esc(p.version),
			Name: fmt.Sprintf("Pact between %s (%s) and %s", p.consumer, p.version, p.provider), Title: "Pact"})
	}
	if tagLinks == nil {
		tagLinks = []link{}
	}
	vurl := b + "/pacticipants/" + esc(req.Pacticipant) + "/versions/" + esc(req.Version)
	return reply(w, 200, map[string]any{
		"notices": notices,
		"logs":    notices,
		"_embedded": map[string]any{
			"pacticipant": map[string]any{"name": req.Pacticipant, "_links": map[string]any{"self": link{Href: b + "/pacticipants/" + esc(req.Pacticipant)}}},
			"version":     map[string]any{"number": req.Version, "_links": map[string]any{"self": link{Href: vurl, Name: req.Version, Title: "Version"}}},
		},
		"_links": map[string]any{
			"pb:pacticipant":              link{Href: b + "/pacticipants/" + esc(req.Pacticipant), Name: req.Pacticipant, Title: "Pacticipant"},
			"pb:pacticipant-version":      link{Href: vurl, Name: req.Version, Title: "Pacticipant version"},
			"pb:pacticipant-version-tags": tagLinks,
			"pb:contracts":                contracts,
		},
	})
}

func pactPath(provider, consumer string) string {
	return "/pacts/provider/" + esc(provider) + "/consumer/" + esc(consumer)
}

// putPact is the older publish route: PUT the pact to its URL.
func (s *Server) putPact(w http.ResponseWriter, r *http.Request) error {
	consumer, provider, version := r.PathValue("consumer"), r.PathValue("provider"), r.PathValue("version")
	for f, v := range map[string]string{"consumer": consumer, "provider": provider, "version": version} {
		if err := checkName(f, v); err != nil {
			return err
		}
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r.Body); err != nil {
		return badRequest("body", "%v", err)
	}
	p, err := contract.Parse(buf.Bytes())
	if err != nil {
		return badRequest("body", "%v", err)
	}
	if p.Consumer != consumer || p.Provider != provider {
		return badRequest("body", "the pact is between %q and %q, not %q and %q as the URL says", p.Consumer, p.Provider, consumer, provider)
	}
	pubs, err := s.publish(r.Context(), consumer, version, "", nil, []*contract.Pact{p}, [][]byte{buf.Bytes()})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if pubs[0].created {
		status = http.StatusCreated
	}
	return s.writePact(w, r, status, provider, consumer, pubs[0].sha, version)
}

// writePact answers a pact with its HAL links.
func (s *Server) writePact(w http.ResponseWriter, r *http.Request, status int, provider, consumer, sha, version string) error {
	ctx := r.Context()
	c, err := s.store.Pacticipant(ctx, consumer)
	if err != nil {
		return s.notFoundOr(err, "no pacticipant %q", consumer)
	}
	p, err := s.store.Pacticipant(ctx, provider)
	if err != nil {
		return s.notFoundOr(err, "no pacticipant %q", provider)
	}
	content, err := s.store.ContentBySHA(ctx, c.ID, p.ID, sha)
	if err != nil {
		return s.notFoundOr(err, "no pact %s between %s and %s", sha, consumer, provider)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(content.JSON, &doc); err != nil {
		return fmt.Errorf("broker: stored pact %s: %w", sha, err)
	}
	b := s.base(r)
	pp := b + pactPath(provider, consumer)
	links := map[string]any{
		"self":                             link{Href: pp + "/pact-version/" + sha, Title: "Pact"},
		"pb:consumer":                      link{Href: b + "/pacticipants/" + esc(consumer), Name: consumer, Title: "Consumer"},
		"pb:provider":                      link{Href: b + "/pacticipants/" + esc(provider), Name: provider, Title: "Provider"},
		"pb:pact-version":                  link{Href: pp + "/pact-version/" + sha, Name: sha, Title: "Pact content version permalink"},
		"pb:publish-verification-results":  link{Href: pp + "/pact-version/" + sha + "/verification-results", Title: "Publish verification results"},
		"pb:latest-pact-version":           link{Href: pp + "/latest", Title: "Latest version of this pact"},
		"pb:consumer-version":              link{Href: b + "/pacticipants/" + esc(consumer) + "/versions/" + esc(version), Name: version, Title: "Consumer version"},
		"pb:all-pact-versions":             link{Href: pp + "/versions", Title: "All versions of this pact"},
		"pb:latest-verification-results":   link{Href: pp + "/pact-version/" + sha + "/verification-results/latest", Title: "Latest verification results"},
		"pb:diff-previous-distinct":        link{Href: pp + "/pact-version/" + sha + "/diff/previous-distinct", Title: "Diff with previous distinct version"},
		"pb:pact-webhooks":                 link{Href: b + "/webhooks/provider/" + esc(provider) + "/consumer/" + esc(consumer), Title: "Webhooks"},
		"pb:consumer-version-branch-links": []link{},
	}
	lb, _ := json.Marshal(links)
	doc["_links"] = lb
	cv, _ := json.Marshal(map[string]any{"consumerVersion": map[string]any{"number": version}})
	doc["_embedded"] = cv
	doc["createdAt"], _ = json.Marshal(rfc3339(content.CreatedAt))
	return reply(w, status, doc)
}

func (s *Server) notFoundOr(err error, format string, args ...any) error {
	if errors.Is(err, ErrNotFound) {
		return notFound(format, args...)
	}
	return err
}

func (s *Server) getPactByVersion(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	provider, consumer, version := r.PathValue("provider"), r.PathValue("consumer"), r.PathValue("version")
	pub, err := s.findPublication(ctx, provider, consumer, version)
	if err != nil {
		return err
	}
	return s.writePact(w, r, 200, provider, consumer, pub.SHA, version)
}

func (s *Server) findPublication(ctx context.Context, provider, consumer, version string) (Publication, error) {
	c, err := s.store.Pacticipant(ctx, consumer)
	if err != nil {
		return Publication{}, s.notFoundOr(err, "no pacticipant %q", consumer)
	}
	v, err := s.store.Version(ctx, c.ID, version)
	if err != nil {
		return Publication{}, s.notFoundOr(err, "no version %q of %q", version, consumer)
	}
	pubs, err := s.store.Publications(ctx, PublicationQuery{ConsumerVersionID: v.ID})
	if err != nil {
		return Publication{}, err
	}
	for _, p := range pubs {
		if p.ProviderName == provider {
			return p, nil
		}
	}
	return Publication{}, notFound("version %s of %s published no pact for %s", version, consumer, provider)
}

func (s *Server) getPactBySHA(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	provider, consumer, sha := r.PathValue("provider"), r.PathValue("consumer"), r.PathValue("sha")
	c, err := s.store.Pacticipant(ctx, consumer)
	if err != nil {
		return s.notFoundOr(err, "no pacticipant %q", consumer)
	}
	p, err := s.store.Pacticipant(ctx, provider)
	if err != nil {
		return s.notFoundOr(err, "no pacticipant %q", provider)
	}
	content, err := s.store.ContentBySHA(ctx, c.ID, p.ID, sha)
	if err != nil {
		return s.notFoundOr(err, "no pact %s", sha)
	}
	// The consumer version: the newest that published this content.
	version := ""
	pubs, err := s.store.Publications(ctx, PublicationQuery{ProviderID: p.ID, ConsumerID: c.ID})
	if err != nil {
		return err
	}
	for _, pub := range pubs {
		if pub.ContentID == content.ID {
			version = pub.ConsumerVersion
			break
		}
	}
	return s.writePact(w, r, 200, provider, consumer, sha, version)
}

func (s *Server) getLatestPact(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	provider, consumer, tag := r.PathValue("provider"), r.PathValue("consumer"), r.PathValue("tag")
	c, err := s.store.Pacticipant(ctx, consumer)
	if err != nil {
		return s.notFoundOr(err, "no pacticipant %q", consumer)
	}
	p, err := s.store.Pacticipant(ctx, provider)
	if err != nil {
		return s.notFoundOr(err, "no pacticipant %q", provider)
	}
	pubs, err := s.store.Publications(ctx, PublicationQuery{ProviderID: p.ID, ConsumerID: c.ID, Tag: tag})
	if err != nil {
		return err
	}
	if len(pubs) == 0 {
		return notFound("no pact between %s and %s", consumer, provider)
	}
	return s.writePact(w, r, 200, provider, consumer, pubs[0].SHA, pubs[0].ConsumerVersion)
}

// latestProviderPacts lists the latest pact of each consumer (the route
// older verifiers use).
func (s *Server) latestProviderPacts(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	provider := r.PathValue("provider")
	p, err := s.store.Pacticipant(ctx, provider)
	if err != nil {
		return s.notFoundOr(err, "no pacticipant %q", provider)
	}
	pubs, err := s.store.Publications(ctx, PublicationQuery{ProviderID: p.ID})
	if err != nil {
		return err
	}
	b := s.base(r)
	links := []link{}
	for _, pub := range latestPerConsumer(pubs) {
		links = append(links, link{Href: b + pactPath(provider, pub.ConsumerName) + "/pact-version/" + pub.SHA,
			Name: pub.ConsumerName, Title: fmt.Sprintf("Pact between %s (%s) and %s", pub.ConsumerName, pub.ConsumerVersion, provider)})
	}
	return reply(w, 200, map[string]any{"_links": map[string]any{
		"self": link{Href: b + "/pacts/provider/" + esc(provider) + "/latest"}, "pb:pacts": links, "pacts": links}})
}

// latestPerConsumer keeps the first (newest) publication of each consumer.
func latestPerConsumer(pubs []Publication) []Publication {
	seen := map[int64]bool{}
	var out []Publication
	for _, p := range pubs {
		if !seen[p.ConsumerID] {
			seen[p.ConsumerID] = true
			out = append(out, p)
		}
	}
	return out
}

func (s *Server) pacticipantJSON(b string, p Pacticipant) map[string]any {
	u := b + "/pacticipants/" + esc(p.Name)
	return map[string]any{
		"name": p.Name, "mainBranch": nilIfEmpty(p.MainBranch), "createdAt": rfc3339(p.CreatedAt),
		"_links": map[string]any{
			"self":              link{Href: u, Name: p.Name, Title: "Pacticipant"},
			"pb:versions":       link{Href: u + "/versions", Title: "Versions"},
			"pb:version":        link{Href: u + "/versions/{version}", Title: "Version", Templated: true},
			"pb:version-tag":    link{Href: u + "/versions/{version}/tags/{tag}", Title: "Version tag", Templated: true},
			"pb:branch-version": link{Href: u + "/branches/{branch}/versions/{version}", Title: "Branch version", Templated: true},
			"pb:can-i-deploy-badge": link{Href: b + "/pacticipants/" + esc(p.Name) + "/latest-version/{tag}/can-i-deploy/to/{environment}/badge",
				Templated: true},
		},
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (s *Server) listPacticipants(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.store.Pacticipants(r.Context())
	if err != nil {
		return err
	}
	b := s.base(r)
	out := []map[string]any{}
	links := []link{}
	for _, p := range ps {
		out = append(out, s.pacticipantJSON(b, p))
		links = append(links, link{Href: b + "/pacticipants/" + esc(p.Name), Name: p.Name, Title: "Pacticipant"})
	}
	return reply(w, 200, map[string]any{"_embedded": map[string]any{"pacticipants": out},
		"_links": map[string]any{"self": link{Href: b + "/pacticipants"}, "pb:pacticipants": links, "pacticipants": links}})
}

func (s *Server) getPacticipant(w http.ResponseWriter, r *http.Request) error {
	p, err := s.store.Pacticipant(r.Context(), r.PathValue("pacticipant"))
	if err != nil {
		return s.notFoundOr(err, "no pacticipant %q", r.PathValue("pacticipant"))
	}
	return reply(w, 200, s.pacticipantJSON(s.base(r), p))
}

type pacticipantBody struct {
	Name       string  `json:"name"`
	MainBranch *string `json:"mainBranch"`
}

func (s *Server) createPacticipant(w http.ResponseWriter, r *http.Request) error {
	var body pacticipantBody
	if err := decode(r, &body); err != nil {
		return err
	}
	return s.savePacticipant(w, r, body.Name, body)
}

func (s *Server) updatePacticipant(w http.ResponseWriter, r *http.Request) error {
	var body pacticipantBody
	if err := decode(r, &body); err != nil {
		return err
	}
	return s.savePacticipant(w, r, r.PathValue("pacticipant"), body)
}

func (s *Server) savePacticipant(w http.ResponseWriter, r *http.Request, name string, body pacticipantBody) error {
	if err := checkName("name", name); err != nil {
		return err
	}
	if body.MainBranch != nil && *body.MainBranch != "" {
		if err := checkName("mainBranch", *body.MainBranch); err != nil {
			return err
		}
	}
	var p Pacticipant
	err := s.store.Update(r.Context(), func(tx Tx) error {
		var err error
		if p, err = tx.EnsurePacticipant(r.Context(), name); err != nil {
			return err
		}
		if body.MainBranch != nil {
			p.MainBranch = *body.MainBranch
			return tx.SetMainBranch(r.Context(), p.ID, *body.MainBranch)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return reply(w, 200, s.pacticipantJSON(s.base(r), p))
}

func (s *Server) versionJSON(ctx context.Context, b string, p Pacticipant, v Version) (map[string]any, error) {
	u := b + "/pacticipants/" + esc(p.Name) + "/versions/" + esc(v.Number)
	envs, err := s.store.Environments(ctx)
	if err != nil {
		return nil, err
	}
	deploy, release := []link{}, []link{}
	for _, e := range envs {
		deploy = append(deploy, link{Href: u + "/deployed-versions/environment/" + e.ID, Name: e.Name, Title: "Record deployment to " + displayName(e)})
		release = append(release, link{Href: u + "/released-versions/environment/" + e.ID, Name: e.Name, Title: "Record release to " + displayName(e)})
	}
	branches := []map[string]any{}
	for _, br := range v.Branches {
		branches = append(branches, map[string]any{"name": br, "_links": map[string]any{"self": link{Href: b + "/pacticipants/" + esc(p.Name) + "/branches/" + esc(br) + "/versions/" + esc(v.Number), Name: br, Title: "Branch version"}}})
	}
	tags := []map[string]any{}
	for _, t := range v.Tags {
		tags = append(tags, map[string]any{"name": t, "_links": map[string]any{"self": link{Href: u + "/tags/" + esc(t), Name: t, Title: "Tag"}}})
	}
	return map[string]any{
		"number": v.Number, "createdAt": rfc3339(v.CreatedAt),
		"_embedded": map[string]any{"branchVersions": branches, "tags": tags},
		"_links": map[string]any{
			"self":                 link{Href: u, Name: v.Number, Title: "Version"},
			"pb:pacticipant":       link{Href: b + "/pacticipants/" + esc(p.Name), Name: p.Name, Title: "Pacticipant"},
			"pb:tag":               link{Href: u + "/tags/{tag}", Title: "Get, create or delete a tag for this pacticipant version", Templated: true},
			"pb:record-deployment": deploy,
			"pb:record-release":    release,
		},
	}, nil
}

func displayName(e Environment) string {
	if e.DisplayName != "" {
		return e.DisplayName
	}
	return e.Name
}

func (s *Server) getVersion(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p, err := s.store.Pacticipant(ctx, r.PathValue("pacticipant"))
	if err != nil {
		return s.notFoundOr(err, "no pacticipant %q", r.PathValue("pacticipant"))
	}
	v, err := s.store.Version(ctx, p.ID, r.PathValue("version"))
	if err != nil {
		return s.notFoundOr(err, "no version %q of %q", r.PathValue("version"), p.Name)
	}
	doc, err := s.versionJSON(ctx, s.base(r), p, v)
	if err != nil {
		return err
	}
	return reply(w, 200, doc)
}

// putVersion creates a version, optionally on a branch ({"branch": ...}).
func (s *Server) putVersion(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Branch string `json:"branch"`
	}
	if r.ContentLength != 0 {
		if err := decode(r, &body); err != nil {
			return err
		}
	}
	return s.versionChange(w, r, body.Branch, "")
}

func (s *Server) putBranchVersion(w http.ResponseWriter, r *http.Request) error {
	return s.versionChange(w, r, r.PathValue("branch"), "")
}

func (s *Server) putTag(w http.ResponseWriter, r *http.Request) error {
	return s.versionChange(w, r, "", r.PathValue("tag"))
}

func (s *Server) versionChange(w http.ResponseWriter, r *http.Request, branch, tag string) error {
	ctx := r.Context()
	name, number := r.PathValue("pacticipant"), r.PathValue("version")
	if err := checkName("pacticipant", name); err != nil {
		return err
	}
	if err := checkName("version", number); err != nil {
		return err
	}
	if branch != "" {
		if err := checkName("branch", branch); err != nil {
			return err
		}
	}
	if tag != "" {
		if err := checkName("tag", tag); err != nil {
			return err
		}
	}
	var (
		p Pacticipant
		v Version
	)
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		if p, err = tx.EnsurePacticipant(ctx, name); err != nil {
			return err
		}
		if v, err = tx.EnsureVersion(ctx, p.ID, number); err != nil {
			return err
		}
		if branch != "" {
			if err := tx.AddBranch(ctx, v.ID, branch); err != nil {
				return err
			}
		}
		if tag != "" {
			if err := tx.AddTag(ctx, v.ID, tag); err != nil {
				return err
			}
		}
		v, err = tx.Version(ctx, p.ID, number)
		return err
	})
	if err != nil {
		return err
	}
	doc, err := s.versionJSON(ctx, s.base(r), p, v)
	if err != nil {
		return err
	}
	return reply(w, 200, doc)
}

func (s *Server) environmentJSON(b string, e Environment) map[string]any {
	return map[string]any{"uuid": e.ID, "name": e.Name, "displayName": displayName(e), "production": e.Production, "createdAt": rfc3339(e.CreatedAt),
		"_links": map[string]any{"self": link{Href: b + "/environments/" + e.ID, Name: e.Name, Title: "Environment"}}}
}

func (s *Server) listEnvironments(w http.ResponseWriter, r *http.Request) error {
	es, err := s.store.Environments(r.Context())
	if err != nil {
		return err
	}
	b := s.base(r)
	name := r.URL.Query().Get("name")
	out := []map[string]any{}
	for _, e := range es {
		if name == "" || e.Name == name {
			out = append(out, s.environmentJSON(b, e))
		}
	}
	return reply(w, 200, map[string]any{"_embedded": map[string]any{"environments": out}, "_links": map[string]any{"self": link{Href: b + "/environments"}}})
}

// EnvironmentRequest is the body of POST /environments.
type EnvironmentRequest struct {
	Name        string `json:"name"`
	DisplayName string `json:"displayName"`
	Production  bool   `json:"production"`
}

// DecodeEnvironmentRequest reads and checks an environment.
func DecodeEnvironmentRequest(b []byte) (*EnvironmentRequest, error) {
	var req EnvironmentRequest
	if err := decodeBytes(b, &req); err != nil {
		return nil, err
	}
	if err := checkName("name", req.Name); err != nil {
		return nil, err
	}
	if strings.ContainsAny(req.Name, " /") {
		return nil, badRequest("name", "must not contain spaces or slashes")
	}
	if len(req.DisplayName) > maxName {
		return nil, badRequest("displayName", "longer than %d bytes", maxName)
	}
	return &req, nil
}

func (s *Server) createEnvironment(w http.ResponseWriter, r *http.Request) error {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r.Body); err != nil {
		return badRequest("body", "%v", err)
	}
	req, err := DecodeEnvironmentRequest(buf.Bytes())
	if err != nil {
		return err
	}
	e := Environment{ID: newUUID(), Name: req.Name, DisplayName: req.DisplayName, Production: req.Production, CreatedAt: s.now()}
	err = s.store.Update(r.Context(), func(tx Tx) error { return tx.CreateEnvironment(r.Context(), e) })
	if errors.Is(err, ErrConflict) {
		return &apiError{status: http.StatusConflict, errs: map[string][]string{"name": {fmt.Sprintf("an environment named %q exists", req.Name)}}}
	}
	if err != nil {
		return err
	}
	return reply(w, http.StatusCreated, s.environmentJSON(s.base(r), e))
}

func (s *Server) getEnvironment(w http.ResponseWriter, r *http.Request) error {
	e, err := s.store.Environment(r.Context(), r.PathValue("env"))
	if err != nil {
		return s.notFoundOr(err, "no environment %q", r.PathValue("env"))
	}
	return reply(w, 200, s.environmentJSON(s.base(r), e))
}

// DeploymentRequest is the body of a deployment or release record.
type DeploymentRequest struct {
	ApplicationInstance string `json:"applicationInstance"`
	Target              string `json:"target"`
}

func (s *Server) recordDeployment(released bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ctx := r.Context()
		var req DeploymentRequest
		if r.ContentLength != 0 {
			var buf bytes.Buffer
			if _, err := buf.ReadFrom(r.Body); err != nil {
				return badRequest("body", "%v", err)
			}
			if len(bytes.TrimSpace(buf.Bytes())) > 0 {
				if err := decodeBytes(buf.Bytes(), &req); err != nil {
					return err
				}
			}
		}
		instance := req.ApplicationInstance
		if instance == "" {
			instance = req.Target
		}
		if len(instance) > maxName {
			return badRequest("applicationInstance", "longer than %d bytes", maxName)
		}
		env, err := s.store.Environment(ctx, r.PathValue("env"))
		if err != nil {
			return s.notFoundOr(err, "no environment %q", r.PathValue("env"))
		}
		name, number := r.PathValue("pacticipant"), r.PathValue("version")
		d := Deployment{ID: newUUID(), EnvironmentID: env.ID, Instance: instance, Released: released, CreatedAt: s.now()}
		err = s.store.Update(ctx, func(tx Tx) error {
			p, err := tx.Pacticipant(ctx, name)
			if err != nil {
				return s.notFoundOr(err, "no pacticipant %q", name)
			}
			v, err := tx.Version(ctx, p.ID, number)
			if err != nil {
				return s.notFoundOr(err, "no version %q of %q", number, name)
			}
			d.VersionID, d.PacticipantID = v.ID, p.ID
			if !released {
				if err := tx.EndDeployments(ctx, p.ID, env.ID, instance, d.CreatedAt); err != nil {
					return err
				}
			}
			return tx.AddDeployment(ctx, d)
		})
		if err != nil {
			return err
		}
		kind := "deployed-versions"
		if released {
			kind = "released-versions"
		}
		return reply(w, http.StatusCreated, map[string]any{"uuid": d.ID, "currentlyDeployed": !released, "currentlySupported": released,
			"applicationInstance": nilIfEmpty(instance), "target": nilIfEmpty(instance), "createdAt": rfc3339(d.CreatedAt),
			"_links": map[string]any{"self": link{Href: s.base(r) + "/" + kind + "/" + d.ID}}})
	}
}
