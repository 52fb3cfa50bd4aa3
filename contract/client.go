package contract

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// BrokerClient talks to a Pact Broker (handoff's broker or the Pact
// Foundation's) through its HAL API: it follows the links of the index
// resource and of each pact, as Pact's own clients do.
type BrokerClient struct {
	BaseURL string
	Token   string       // sent as a bearer token
	HTTP    *http.Client // nil: http.DefaultClient with a 30s timeout

	once  sync.Once
	index map[string]string
	err   error
}

// BrokerError is an error answer of the broker.
type BrokerError struct {
	Status   int
	Messages []string
}

func (e *BrokerError) Error() string {
	if len(e.Messages) == 0 {
		return fmt.Sprintf("contract: broker answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("contract: broker answered %d: %s", e.Status, strings.Join(e.Messages, "; "))
}

var defaultClient = &http.Client{Timeout: 30 * time.Second}

func (c *BrokerClient) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return defaultClient
}

func (c *BrokerClient) abs(href string) string {
	if strings.HasPrefix(href, "http://") || strings.HasPrefix(href, "https://") {
		return href
	}
	return strings.TrimRight(c.BaseURL, "/") + "/" + strings.TrimLeft(href, "/")
}

const maxBrokerAnswer = 64 << 20

func (c *BrokerClient) do(ctx context.Context, method, href string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := jsonMarshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.abs(href), rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/hal+json, application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("contract: broker %s %s: %w", method, req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBrokerAnswer))
	if err != nil {
		return fmt.Errorf("contract: broker %s %s: %w", method, req.URL.Redacted(), err)
	}
	if resp.StatusCode >= 300 {
		be := &BrokerError{Status: resp.StatusCode}
		var eb struct {
			Errors  any    `json:"errors"`
			Error   any    `json:"error"`
			Message string `json:"message"` // a proxy's or guard's refusal ({"error_code", "message"})
			Notices []struct{ Text string }
		}
		if json.Unmarshal(b, &eb) == nil {
			be.Messages = flattenErrors(eb.Errors)
			be.Messages = append(be.Messages, flattenErrors(eb.Error)...)
			if eb.Message != "" && len(be.Messages) == 0 {
				be.Messages = []string{eb.Message}
			}
			for _, n := range eb.Notices {
				be.Messages = append(be.Messages, n.Text)
			}
		}
		if len(be.Messages) == 0 && len(b) > 0 && len(b) < 500 {
			be.Messages = []string{strings.TrimSpace(string(b))}
		}
		return be
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("contract: broker %s %s: answer is not the JSON expected: %w", method, req.URL.Redacted(), err)
		}
	}
	return nil
}

func flattenErrors(v any) []string {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, flattenErrors(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for _, k := range sortedKeys(x) {
			for _, m := range flattenErrors(x[k]) {
				out = append(out, k+": "+m)
			}
		}
		return out
	}
	return []string{fmt.Sprint(v)}
}

type halLink struct {
	Href string `json:"href"`
	Name string `json:"name"`
}

// link returns the href of a relation of the index resource.
func (c *BrokerClient) link(ctx context.Context, rel string) (string, error) {
	c.once.Do(func() {
		var idx struct {
			Links map[string]json.RawMessage `json:"_links"`
		}
		c.err = c.do(ctx, http.MethodGet, "/", nil, &idx)
		c.index = map[string]string{}
		for k, v := range idx.Links {
			var l halLink
			if json.Unmarshal(v, &l) == nil {
				c.index[k] = l.Href
			}
		}
	})
	if c.err != nil {
		return "", c.err
	}
	h, ok := c.index[rel]
	if !ok {
		return "", fmt.Errorf("contract: the broker's index has no %q link", rel)
	}
	return h, nil
}

func expand(href string, vars map[string]string) string {
	for k, v := range vars {
		href = strings.ReplaceAll(href, "{"+k+"}", url.PathEscape(v))
	}
	return href
}

// PublishRequest is what PublishContracts sends: the consumer's version
// and the pacts it wrote.
type PublishRequest struct {
	Pacticipant string
	Version     string
	Branch      string
	Tags        []string
	BuildURL    string
	Pacts       []*Pact
}

// Notice is a broker's message for people.
type Notice struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// PublishContracts publishes pacts with the consumer version's branch and
// tags (the broker's pb:publish-contracts relation).
func (c *BrokerClient) PublishContracts(ctx context.Context, r PublishRequest) ([]Notice, error) {
	href, err := c.link(ctx, "pb:publish-contracts")
	if err != nil {
		return nil, err
	}
	type contractJSON struct {
		ConsumerName  string `json:"consumerName"`
		ProviderName  string `json:"providerName"`
		Specification string `json:"specification"`
		ContentType   string `json:"contentType"`
		Content       string `json:"content"`
	}
	body := struct {
		Pacticipant string         `json:"pacticipantName"`
		Version     string         `json:"pacticipantVersionNumber"`
		Branch      string         `json:"branch,omitempty"`
		Tags        []string       `json:"tags,omitempty"`
		BuildURL    string         `json:"buildUrl,omitempty"`
		Contracts   []contractJSON `json:"contracts"`
	}{Pacticipant: r.Pacticipant, Version: r.Version, Branch: r.Branch, Tags: r.Tags, BuildURL: r.BuildURL}
	for _, p := range r.Pacts {
		b, err := p.Marshal()
		if err != nil {
			return nil, err
		}
		body.Contracts = append(body.Contracts, contractJSON{ConsumerName: p.Consumer, ProviderName: p.Provider,
			Specification: "pact", ContentType: "application/json", Content: base64.StdEncoding.EncodeToString(b)})
	}
	var out struct {
		Notices []Notice `json:"notices"`
	}
	if err := c.do(ctx, http.MethodPost, href, body, &out); err != nil {
		return nil, err
	}
	return out.Notices, nil
}

// Selector is a consumer version selector of the pacts-for-verification
// request, as the Pact Broker defines them.
type Selector struct {
	MainBranch         bool   `json:"mainBranch,omitempty"`
	Branch             string `json:"branch,omitempty"`
	MatchingBranch     bool   `json:"matchingBranch,omitempty"`
	Tag                string `json:"tag,omitempty"`
	Latest             bool   `json:"latest,omitempty"`
	Deployed           bool   `json:"deployed,omitempty"`
	Released           bool   `json:"released,omitempty"`
	DeployedOrReleased bool   `json:"deployedOrReleased,omitempty"`
	Environment        string `json:"environment,omitempty"`
	Consumer           string `json:"consumer,omitempty"`
}

// ForVerificationRequest asks which pacts a provider version must verify.
type ForVerificationRequest struct {
	ProviderVersionBranch string     `json:"providerVersionBranch,omitempty"`
	ProviderVersionTags   []string   `json:"providerVersionTags,omitempty"`
	Selectors             []Selector `json:"consumerVersionSelectors,omitempty"`
	IncludePendingStatus  bool       `json:"includePendingStatus"`
	IncludeWIPPactsSince  string     `json:"includeWipPactsSince,omitempty"`
}

// PactToVerify is one pact the broker asks a provider to verify.
type PactToVerify struct {
	Href        string
	Description string
	Pending     bool
	WIP         bool
	Notices     []Notice
}

// PactsForVerification follows pb:provider-pacts-for-verification.
func (c *BrokerClient) PactsForVerification(ctx context.Context, provider string, r ForVerificationRequest) ([]PactToVerify, error) {
	href, err := c.link(ctx, "pb:provider-pacts-for-verification")
	if err != nil {
		return nil, err
	}
	var out struct {
		Embedded struct {
			Pacts []struct {
				ShortDescription string `json:"shortDescription"`
				Props            struct {
					Pending bool `json:"pending"`
					WIP     bool `json:"wip"`
					Notices []struct {
						When string `json:"when"`
						Text string `json:"text"`
					} `json:"notices"`
				} `json:"verificationProperties"`
				Links struct {
					Self halLink `json:"self"`
				} `json:"_links"`
			} `json:"pacts"`
		} `json:"_embedded"`
	}
	if err := c.do(ctx, http.MethodPost, expand(href, map[string]string{"provider": provider}), r, &out); err != nil {
		return nil, err
	}
	var res []PactToVerify
	for _, p := range out.Embedded.Pacts {
		v := PactToVerify{Href: p.Links.Self.Href, Description: p.ShortDescription, Pending: p.Props.Pending, WIP: p.Props.WIP}
		if v.Description == "" {
			v.Description = p.Links.Self.Name
		}
		for _, n := range p.Props.Notices {
			v.Notices = append(v.Notices, Notice{Type: n.When, Text: n.Text})
		}
		res = append(res, v)
	}
	return res, nil
}

// FetchPact gets a pact and its links by relation name.
func (c *BrokerClient) FetchPact(ctx context.Context, href string) (*Pact, map[string]string, error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, href, nil, &raw); err != nil {
		return nil, nil, err
	}
	p, err := Parse(raw)
	if err != nil {
		return nil, nil, err
	}
	var l struct {
		Links map[string]json.RawMessage `json:"_links"`
	}
	_ = json.Unmarshal(raw, &l)
	links := map[string]string{}
	for k, v := range l.Links {
		var hl halLink
		if json.Unmarshal(v, &hl) == nil && hl.Href != "" {
			links[k] = hl.Href
		}
	}
	delete(p.Metadata, "_links")
	return p, links, nil
}

// TestResult is one interaction's outcome in published verification
// results.
type TestResult struct {
	InteractionID string           `json:"interactionId,omitempty"`
	Description   string           `json:"interactionDescription,omitempty"`
	Success       bool             `json:"success"`
	Mismatches    []map[string]any `json:"mismatches,omitempty"`
	Exceptions    []map[string]any `json:"exceptions,omitempty"`
}

// VerificationResult is what a provider publishes after verifying a pact.
type VerificationResult struct {
	Success         bool              `json:"success"`
	ProviderVersion string            `json:"providerApplicationVersion"`
	BuildURL        string            `json:"buildUrl,omitempty"`
	TestResults     []TestResult      `json:"testResults,omitempty"`
	VerifiedBy      map[string]string `json:"verifiedBy,omitempty"`
}

// PublishVerification posts results to a pact's
// pb:publish-verification-results link.
func (c *BrokerClient) PublishVerification(ctx context.Context, href string, r VerificationResult) error {
	if r.VerifiedBy == nil {
		r.VerifiedBy = map[string]string{"implementation": "handoff", "version": Version}
	}
	return c.do(ctx, http.MethodPost, href, r, nil)
}

// PutBranchVersion puts a pacticipant version on a branch.
func (c *BrokerClient) PutBranchVersion(ctx context.Context, pacticipant, branch, version string) error {
	return c.do(ctx, http.MethodPut, "/pacticipants/"+url.PathEscape(pacticipant)+"/branches/"+url.PathEscape(branch)+
		"/versions/"+url.PathEscape(version), map[string]any{}, nil)
}

// PutTag tags a pacticipant version.
func (c *BrokerClient) PutTag(ctx context.Context, pacticipant, version, tag string) error {
	return c.do(ctx, http.MethodPut, "/pacticipants/"+url.PathEscape(pacticipant)+"/versions/"+url.PathEscape(version)+
		"/tags/"+url.PathEscape(tag), map[string]any{}, nil)
}

// Reason codes of a can-i-deploy verdict.
const (
	ReasonVerified            = "verified"              // the pact was verified by the version that is (or will be) there
	ReasonNoVerification      = "no-verification"       // no verification result for this pact and provider version
	ReasonVerificationFailed  = "verification-failed"   // the verification failed
	ReasonPending             = "pending"               // it failed while the pact was pending: the provider's build passed, the consumer cannot deploy
	ReasonVersionNotFound     = "version-not-found"     // the pacticipant version is unknown to the broker
	ReasonEnvironmentNotFound = "environment-not-found" // no such environment
	ReasonNoDependencies      = "no-dependencies"       // nothing in the environment depends on it, nor it on anything there
)

// Reason is one typed reason of a can-i-deploy verdict.
type Reason struct {
	Code            string `json:"code"`
	Consumer        string `json:"consumer,omitempty"`
	ConsumerVersion string `json:"consumerVersion,omitempty"`
	Provider        string `json:"provider,omitempty"`
	ProviderVersion string `json:"providerVersion,omitempty"`
	Text            string `json:"text"`
}

// Blocking reports whether the reason stops a deployment.
func (r Reason) Blocking() bool {
	switch r.Code {
	case ReasonVerified, ReasonNoDependencies:
		return false
	}
	return true
}

// MatrixRow is one consumer version × provider version pair.
type MatrixRow struct {
	Consumer        string     `json:"consumer"`
	ConsumerVersion string     `json:"consumerVersion"`
	Provider        string     `json:"provider"`
	ProviderVersion string     `json:"providerVersion,omitempty"`
	Success         *bool      `json:"success,omitempty"` // nil: not verified
	VerifiedAt      *time.Time `json:"verifiedAt,omitempty"`
	Pending         bool       `json:"pending,omitempty"`
}

// Verdict is the answer to can-i-deploy.
type Verdict struct {
	Deployable bool        `json:"deployable"`
	Summary    string      `json:"summary"`
	Reasons    []Reason    `json:"reasons"`
	Matrix     []MatrixRow `json:"matrix"`
}

// ParseMatrix reads the Pact Broker's matrix answer (what /matrix and
// /can-i-deploy return) into a Verdict. handoff's broker adds typed
// reasons under summary.reasons; from another broker, reasons are
// derived from the rows.
func ParseMatrix(b []byte) (*Verdict, error) {
	var raw struct {
		Summary struct {
			Deployable *bool    `json:"deployable"`
			Reason     string   `json:"reason"`
			Reasons    []Reason `json:"reasons"`
		} `json:"summary"`
		Matrix []struct {
			Consumer struct {
				Name    string `json:"name"`
				Version *struct {
					Number string `json:"number"`
				} `json:"version"`
			} `json:"consumer"`
			Provider struct {
				Name    string `json:"name"`
				Version *struct {
					Number string `json:"number"`
				} `json:"version"`
			} `json:"provider"`
			VerificationResult *struct {
				Success    bool       `json:"success"`
				VerifiedAt *time.Time `json:"verifiedAt"`
				Pending    bool       `json:"pending"`
			} `json:"verificationResult"`
		} `json:"matrix"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("contract: not a matrix answer: %w", err)
	}
	v := &Verdict{Deployable: raw.Summary.Deployable != nil && *raw.Summary.Deployable, Summary: raw.Summary.Reason, Reasons: raw.Summary.Reasons}
	for _, r := range raw.Matrix {
		row := MatrixRow{Consumer: r.Consumer.Name, Provider: r.Provider.Name}
		if r.Consumer.Version != nil {
			row.ConsumerVersion = r.Consumer.Version.Number
		}
		if r.Provider.Version != nil {
			row.ProviderVersion = r.Provider.Version.Number
		}
		if vr := r.VerificationResult; vr != nil {
			ok := vr.Success
			row.Success, row.VerifiedAt, row.Pending = &ok, vr.VerifiedAt, vr.Pending
		}
		v.Matrix = append(v.Matrix, row)
	}
	if v.Reasons == nil {
		for _, r := range v.Matrix {
			rs := Reason{Consumer: r.Consumer, ConsumerVersion: r.ConsumerVersion, Provider: r.Provider, ProviderVersion: r.ProviderVersion}
			switch {
			case r.Success == nil:
				rs.Code, rs.Text = ReasonNoVerification, "no verification result"
			case *r.Success:
				rs.Code, rs.Text = ReasonVerified, "verified"
			default:
				rs.Code, rs.Text = ReasonVerificationFailed, "verification failed"
			}
			v.Reasons = append(v.Reasons, rs)
		}
	}
	return v, nil
}

// CanIDeploy asks whether a pacticipant version can be deployed to an
// environment.
func (c *BrokerClient) CanIDeploy(ctx context.Context, pacticipant, version, environment string) (*Verdict, error) {
	q := url.Values{"pacticipant": {pacticipant}, "version": {version}, "environment": {environment}}
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/can-i-deploy?"+q.Encode(), nil, &raw); err != nil {
		return nil, err
	}
	return ParseMatrix(raw)
}

// ErrEnvironmentNotFound is returned by RecordDeployment for an
// environment the broker does not know.
var ErrEnvironmentNotFound = errors.New("contract: environment not found")

// RecordDeployment records that a pacticipant version is deployed to an
// environment (replacing the version deployed there before, for that
// application instance), or released when released is true (several
// released versions stay supported side by side).
func (c *BrokerClient) RecordDeployment(ctx context.Context, pacticipant, version, environment, instance string, released bool) error {
	var v struct {
		Links map[string]json.RawMessage `json:"_links"`
	}
	if err := c.do(ctx, http.MethodGet, "/pacticipants/"+url.PathEscape(pacticipant)+"/versions/"+url.PathEscape(version), nil, &v); err != nil {
		return err
	}
	rel := "pb:record-deployment"
	if released {
		rel = "pb:record-release"
	}
	var links []halLink
	_ = json.Unmarshal(v.Links[rel], &links)
	for _, l := range links {
		if l.Name == environment {
			body := map[string]any{}
			if instance != "" {
				body["applicationInstance"] = instance
			}
			return c.do(ctx, http.MethodPost, l.Href, body, nil)
		}
	}
	return fmt.Errorf("%w: %q", ErrEnvironmentNotFound, environment)
}

// CreateEnvironment creates an environment (pb:environments).
func (c *BrokerClient) CreateEnvironment(ctx context.Context, name string, production bool) error {
	href, err := c.link(ctx, "pb:environments")
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, href, map[string]any{"name": name, "displayName": name, "production": production}, nil)
}
