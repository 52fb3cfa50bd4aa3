package contract

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/handoffhq/handoff"
)

// StateChange is a provider state to set up (Setup true) before an
// interaction or tear down after it.
type StateChange struct {
	Name   string
	Params map[string]any
	Setup  bool
}

// StateHandler sets a provider state up or tears it down. The values it
// returns on set-up feed the interaction's ProviderState generators
// (FromProviderState in the consumer's test).
type StateHandler func(ctx context.Context, s StateChange) (map[string]any, error)

// MessageRequest asks a producer for the message of an interaction.
type MessageRequest struct {
	Description string
	States      []ProviderState
}

// MessageProducer makes the message an interaction describes by calling
// the provider's real code: for instance the function that writes the
// outbox event.
type MessageProducer func(ctx context.Context, r MessageRequest) (*handoff.Message, error)

// Verifier verifies pacts against a provider: HTTP interactions against a
// running provider (an http.Handler, or a base URL), messages through
// producer functions, with provider-state hooks around each interaction.
type Verifier struct {
	Provider string       // the provider's name; a pact for another provider is refused
	Handler  http.Handler // the provider, in process
	BaseURL  string       // or the provider at a URL
	Client   *http.Client // for BaseURL; nil uses a client with a 30s timeout

	// States sets provider states up and down, by state name.
	States map[string]StateHandler
	// StateChangeURL, when set, is POSTed {"state", "params", "action":
	// "setup"|"teardown"} for states without a handler in States: the
	// convention Pact's verifiers follow, for providers in any language.
	StateChangeURL string
	// Messages produces messages, by interaction description.
	Messages map[string]MessageProducer
	// RequestFilter may change each request before it is sent (to add
	// credentials, say).
	RequestFilter func(*http.Request)
}

// Result is the outcome of one interaction.
type Result struct {
	Consumer    string
	Provider    string
	Description string
	Type        string
	Key         string
	States      []ProviderState
	Pending     bool   // a failure does not fail the provider's build
	Source      string // the pact file or URL
	Mismatches  []Mismatch
	Err         error // a state hook, the transport or a producer failed
}

// OK reports whether the interaction verified.
func (r Result) OK() bool { return r.Err == nil && len(r.Mismatches) == 0 }

// Report is the outcome of a verification run.
type Report struct {
	Results []Result
}

// VerificationError lists the interactions that failed (pending ones
// excluded).
type VerificationError struct {
	Failures []Result
}

func (e *VerificationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "contract: %d interaction(s) failed verification", len(e.Failures))
	for _, r := range e.Failures {
		b.WriteString("\n")
		writeResult(&b, r)
	}
	return b.String()
}

func writeResult(b *strings.Builder, r Result) {
	fmt.Fprintf(b, "  %s → %s: %q", r.Consumer, r.Provider, r.Description)
	for _, s := range r.States {
		fmt.Fprintf(b, " given %q", s.Name)
		if len(s.Params) > 0 {
			p, _ := json.Marshal(s.Params)
			fmt.Fprintf(b, " %s", p)
		}
	}
	if r.Pending {
		b.WriteString(" [pending]")
	}
	if r.Err != nil {
		fmt.Fprintf(b, "\n    error: %v", r.Err)
	}
	for _, m := range r.Mismatches {
		fmt.Fprintf(b, "\n    %s", m.String())
	}
}

// Err is nil when every interaction that is not pending verified.
func (r *Report) Err() error {
	var f []Result
	for _, x := range r.Results {
		if !x.OK() && !x.Pending {
			f = append(f, x)
		}
	}
	if len(f) == 0 {
		return nil
	}
	return &VerificationError{Failures: f}
}

// String renders the report for people.
func (r *Report) String() string {
	var b strings.Builder
	pass, fail, pend := 0, 0, 0
	for _, x := range r.Results {
		status := "OK"
		switch {
		case x.OK():
			pass++
		case x.Pending:
			pend++
			status = "FAILED (pending: does not fail the build)"
		default:
			fail++
			status = "FAILED"
		}
		fmt.Fprintf(&b, "%-6s ", map[bool]string{true: "ok", false: "FAIL"}[x.OK()])
		var sb strings.Builder
		writeResult(&sb, x)
		b.WriteString(strings.TrimPrefix(sb.String(), "  "))
		if !x.OK() {
			fmt.Fprintf(&b, "\n    → %s", status)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "%d passed, %d failed, %d pending failed\n", pass, fail, pend)
	return b.String()
}

// VerifyFiles reads pact files and verifies them.
func (v *Verifier) VerifyFiles(ctx context.Context, paths ...string) (*Report, error) {
	rep := &Report{}
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("contract: %w", err)
		}
		p, err := ReadPact(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("contract: %s: %w", path, err)
		}
		rs, err := v.verifyPact(ctx, p, path, false)
		if err != nil {
			return nil, err
		}
		rep.Results = append(rep.Results, rs...)
	}
	return rep, nil
}

// Verify verifies pacts already read.
func (v *Verifier) Verify(ctx context.Context, pacts ...*Pact) (*Report, error) {
	rep := &Report{}
	for _, p := range pacts {
		rs, err := v.verifyPact(ctx, p, "", false)
		if err != nil {
			return nil, err
		}
		rep.Results = append(rep.Results, rs...)
	}
	return rep, nil
}

// BrokerSource says which pacts to fetch from a broker and how to publish
// the results.
type BrokerSource struct {
	Client          *BrokerClient
	Selectors       []Selector // none: the broker's default (latest of each consumer's main branch)
	ProviderVersion string     // required to publish, and for pending and WIP pacts
	ProviderBranch  string
	ProviderTags    []string
	IncludePending  bool      // pending pacts are verified without failing the build
	IncludeWIPSince time.Time // work-in-progress pacts since then, as pending
	Publish         bool      // publish verification results
	BuildURL        string
}

// VerifyBroker fetches the pacts the broker says this provider version
// must verify, verifies each (a pending or work-in-progress pact's
// failures do not fail the run), and publishes the results.
func (v *Verifier) VerifyBroker(ctx context.Context, src BrokerSource) (*Report, error) {
	if src.Client == nil {
		return nil, errors.New("contract: VerifyBroker: a broker client is required")
	}
	if src.Publish && src.ProviderVersion == "" {
		return nil, errors.New("contract: VerifyBroker: publishing results needs the provider version")
	}
	req := ForVerificationRequest{ProviderVersionBranch: src.ProviderBranch, ProviderVersionTags: src.ProviderTags,
		Selectors: src.Selectors, IncludePendingStatus: src.IncludePending}
	if !src.IncludeWIPSince.IsZero() {
		req.IncludeWIPPactsSince = src.IncludeWIPSince.UTC().Format(time.RFC3339)
	}
	todo, err := src.Client.PactsForVerification(ctx, v.Provider, req)
	if err != nil {
		return nil, err
	}
	if src.Publish && src.ProviderBranch != "" {
		if err := src.Client.PutBranchVersion(ctx, v.Provider, src.ProviderBranch, src.ProviderVersion); err != nil {
			return nil, err
		}
	}
	if src.Publish {
		for _, t := range src.ProviderTags {
			if err := src.Client.PutTag(ctx, v.Provider, src.ProviderVersion, t); err != nil {
				return nil, err
			}
		}
	}
	rep := &Report{}
	for _, t := range todo {
		p, links, err := src.Client.FetchPact(ctx, t.Href)
		if err != nil {
			return nil, err
		}
		rs, err := v.verifyPact(ctx, p, t.Href, t.Pending || t.WIP)
		if err != nil {
			return nil, err
		}
		rep.Results = append(rep.Results, rs...)
		if !src.Publish {
			continue
		}
		href := links["pb:publish-verification-results"]
		if href == "" {
			return nil, fmt.Errorf("contract: pact %s has no pb:publish-verification-results link", t.Href)
		}
		vr := VerificationResult{Success: true, ProviderVersion: src.ProviderVersion, BuildURL: src.BuildURL}
		for _, r := range rs {
			tr := TestResult{InteractionID: r.Key, Description: r.Description, Success: r.OK()}
			for _, m := range r.Mismatches {
				tr.Mismatches = append(tr.Mismatches, map[string]any{"attribute": m.Part, "identifier": m.Path, "description": m.String()})
			}
			if r.Err != nil {
				tr.Exceptions = append(tr.Exceptions, map[string]any{"message": r.Err.Error()})
			}
			if !r.OK() {
				vr.Success = false
			}
			vr.TestResults = append(vr.TestResults, tr)
		}
		if err := src.Client.PublishVerification(ctx, href, vr); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

func (v *Verifier) verifyPact(ctx context.Context, p *Pact, source string, pending bool) ([]Result, error) {
	if v.Provider != "" && p.Provider != v.Provider {
		return nil, fmt.Errorf("contract: %s is a pact with provider %q, not %q", sourceName(source, p), p.Provider, v.Provider)
	}
	var out []Result
	for _, i := range p.Interactions {
		r := Result{Consumer: p.Consumer, Provider: p.Provider, Description: i.Description, Type: i.Type, Key: i.Key,
			States: i.ProviderStates, Pending: pending || i.Pending, Source: source}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r.Mismatches, r.Err = v.verifyInteraction(ctx, i)
		sortMismatches(r.Mismatches)
		out = append(out, r)
	}
	return out, nil
}

func sourceName(s string, p *Pact) string {
	if s != "" {
		return s
	}
	return fmt.Sprintf("the pact of %s", p.Consumer)
}

func (v *Verifier) verifyInteraction(ctx context.Context, i *Interaction) (ms []Mismatch, err error) {
	values, err := v.setUp(ctx, i.ProviderStates)
	defer func() {
		if terr := v.tearDown(ctx, i.ProviderStates); terr != nil && err == nil {
			err = terr
		}
	}()
	if err != nil {
		return nil, err
	}
	switch i.Type {
	case TypeHTTP:
		return v.verifyHTTP(ctx, i, values)
	case TypeMessage:
		return v.verifyMessage(ctx, i)
	default:
		return nil, fmt.Errorf("interactions of type %s are not supported", i.Type)
	}
}

func (v *Verifier) setUp(ctx context.Context, states []ProviderState) (map[string]any, error) {
	values := map[string]any{}
	for _, s := range states {
		for k, p := range s.Params {
			values[k] = p
		}
		got, err := v.changeState(ctx, StateChange{Name: s.Name, Params: s.Params, Setup: true})
		if err != nil {
			return nil, fmt.Errorf("setting up provider state %q: %w", s.Name, err)
		}
		for k, x := range got {
			values[k] = x
		}
	}
	return values, nil
}

func (v *Verifier) tearDown(ctx context.Context, states []ProviderState) error {
	var first error
	for n := len(states) - 1; n >= 0; n-- {
		s := states[n]
		if _, err := v.changeState(ctx, StateChange{Name: s.Name, Params: s.Params}); err != nil && first == nil {
			first = fmt.Errorf("tearing down provider state %q: %w", s.Name, err)
		}
	}
	return first
}

func (v *Verifier) changeState(ctx context.Context, s StateChange) (map[string]any, error) {
	if h, ok := v.States[s.Name]; ok {
		return h(ctx, s)
	}
	if v.StateChangeURL != "" {
		action := "teardown"
		if s.Setup {
			action = "setup"
		}
		body, _ := jsonMarshal(map[string]any{"state": s.Name, "params": s.Params, "action": action})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.StateChangeURL, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := v.client().Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if resp.StatusCode >= 300 {
			return nil, fmt.Errorf("state change URL answered %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
		}
		var out map[string]any
		if len(bytes.TrimSpace(b)) > 0 && json.Unmarshal(b, &out) != nil {
			out = nil
		}
		return out, nil
	}
	if v.States == nil {
		return nil, nil // no state hooks at all: states are documentation
	}
	if !s.Setup {
		return nil, nil
	}
	return nil, fmt.Errorf("no state handler for %q (Verifier.States)", s.Name)
}

func (v *Verifier) client() *http.Client {
	if v.Client != nil {
		return v.Client
	}
	return defaultClient
}

const maxProviderBody = 64 << 20

// Request builds the request an interaction describes, its generators
// applied with the provider-state values.
func buildRequest(ctx context.Context, base string, exp *Request, values map[string]any) (*http.Request, error) {
	gc := genContext{state: values}
	path := exp.Path
	if g, ok := exp.Gens["path"][""]; ok {
		p, err := applyStringGenerator(g, path, gc)
		if err != nil {
			return nil, err
		}
		path = p
	}
	q := url.Values{}
	for _, k := range sortedKeys(exp.Query) {
		for _, val := range exp.Query[k] {
			if g, ok := exp.Gens["query"][k]; ok {
				nv, err := applyStringGenerator(g, val, gc)
				if err != nil {
					return nil, err
				}
				val = nv
			}
			q.Add(k, val)
		}
	}
	body, err := applyBodyGenerators(exp.Body, exp.Gens["body"], gc)
	if err != nil {
		return nil, err
	}
	u := strings.TrimRight(base, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body.Present {
		rd = bytes.NewReader(body.Content)
	}
	req, err := http.NewRequestWithContext(ctx, exp.Method, u, rd)
	if err != nil {
		return nil, err
	}
	for _, k := range exp.Headers.names() {
		for _, val := range exp.Headers[k] {
			if g, ok := exp.Gens["header"][k]; ok {
				nv, err := applyStringGenerator(g, val, gc)
				if err != nil {
					return nil, err
				}
				val = nv
			}
			req.Header.Add(k, val)
		}
	}
	if body.Present && req.Header.Get("Content-Type") == "" && body.ContentType != "" {
		req.Header.Set("Content-Type", body.ContentType)
	}
	return req, nil
}

func (v *Verifier) verifyHTTP(ctx context.Context, i *Interaction, values map[string]any) ([]Mismatch, error) {
	base := v.BaseURL
	if v.Handler != nil {
		base = "http://provider.invalid"
	}
	if base == "" {
		return nil, errors.New("the verifier has neither a Handler nor a BaseURL for HTTP interactions")
	}
	req, err := buildRequest(ctx, base, i.Request, values)
	if err != nil {
		return nil, err
	}
	if v.RequestFilter != nil {
		v.RequestFilter(req)
	}
	var (
		status int
		header http.Header
		body   []byte
	)
	if v.Handler != nil {
		rec := httptest.NewRecorder()
		v.Handler.ServeHTTP(rec, req)
		res := rec.Result()
		status, header = res.StatusCode, res.Header
		body, _ = io.ReadAll(io.LimitReader(res.Body, maxProviderBody))
	} else {
		res, err := v.client().Do(req)
		if err != nil {
			return nil, fmt.Errorf("calling the provider: %w", err)
		}
		status, header = res.StatusCode, res.Header
		body, err = io.ReadAll(io.LimitReader(res.Body, maxProviderBody))
		res.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("reading the provider's response: %w", err)
		}
	}
	act := &Response{Status: status, Headers: Headers(header)}
	if len(body) > 0 {
		act.Body = Body{Present: true, ContentType: header.Get("Content-Type"), Content: body}
	}
	return MatchResponse(i.Response, act), nil
}

func (v *Verifier) verifyMessage(ctx context.Context, i *Interaction) ([]Mismatch, error) {
	p, ok := v.Messages[i.Description]
	if !ok {
		return nil, fmt.Errorf("no message producer for %q (Verifier.Messages)", i.Description)
	}
	m, err := p(ctx, MessageRequest{Description: i.Description, States: i.ProviderStates})
	if err != nil {
		return nil, fmt.Errorf("the message producer failed: %w", err)
	}
	if m == nil {
		return nil, errors.New("the message producer returned no message")
	}
	return MatchMessage(i.Message, FromHandoffMessage(m)), nil
}
