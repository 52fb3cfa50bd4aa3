package contract

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoffhq/handoff"
)

// Consumer declares, in a consumer's Go test, the interactions it relies
// on, checks them against the consumer's real code (HTTP through a mock
// server, messages through the real handler), and writes the pact file
// that the provider verifies.
type Consumer struct {
	t    testing.TB
	pact *Pact
	dir  string
	spec Spec

	mu       sync.Mutex
	declared []*HTTPInteraction
}

// ConsumerOption configures a Consumer.
type ConsumerOption func(*Consumer)

// WithPactDir sets the directory pact files are written to (default
// "pacts", relative to the test's package directory).
func WithPactDir(dir string) ConsumerOption { return func(c *Consumer) { c.dir = dir } }

// WithSpec fixes the version files are written as. By default a pact with
// only HTTP interactions is written as V3 and one with messages as V4.
func WithSpec(s Spec) ConsumerOption { return func(c *Consumer) { c.spec = s } }

// NewConsumer starts a contract between consumer and provider in test t.
func NewConsumer(t testing.TB, consumer, provider string, opts ...ConsumerOption) *Consumer {
	t.Helper()
	c := &Consumer{t: t, pact: &Pact{Consumer: consumer, Provider: provider}, dir: "pacts"}
	for _, o := range opts {
		o(c)
	}
	switch {
	case consumer == "" || provider == "":
		t.Fatal("contract: NewConsumer: consumer and provider names are required")
	case c.spec != 0 && c.spec != V3 && c.spec != V4:
		t.Fatalf("contract: NewConsumer: pact files are written as V3 or V4, not %v", c.spec)
	}
	return c
}

// PactPath is the file the consumer's pact is written to.
func (c *Consumer) PactPath() string {
	return filepath.Join(c.dir, fileName(c.pact.Consumer)+"-"+fileName(c.pact.Provider)+".json")
}

var unsafeFile = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func fileName(s string) string { return unsafeFile.ReplaceAllString(s, "_") }

// HTTPInteraction is an HTTP interaction being declared.
type HTTPInteraction struct {
	c   *Consumer
	i   *Interaction
	err error
}

// UponReceiving declares an HTTP interaction with this description; the
// next Run serves it.
func (c *Consumer) UponReceiving(description string) *HTTPInteraction {
	h := &HTTPInteraction{c: c, i: &Interaction{Type: TypeHTTP, Description: description,
		Request: &Request{Method: "GET", Path: "/"}, Response: &Response{Status: 200}}}
	if description == "" {
		h.err = errors.New("contract: UponReceiving: a description is required")
	}
	c.mu.Lock()
	c.declared = append(c.declared, h)
	c.mu.Unlock()
	return h
}

// Given adds a provider state, with optional parameters.
func (h *HTTPInteraction) Given(state string, params ...Params) *HTTPInteraction {
	h.i.ProviderStates = append(h.i.ProviderStates, ProviderState{Name: state, Params: mergeParams(params)})
	return h
}

func mergeParams(ps []Params) map[string]any {
	if len(ps) == 0 {
		return nil
	}
	out := map[string]any{}
	for _, p := range ps {
		for k, v := range p {
			out[k] = v
		}
	}
	return out
}

// RequestBuilder sets the expected request.
type RequestBuilder struct{ h *HTTPInteraction }

// ResponseBuilder sets the response the mock server gives.
type ResponseBuilder struct{ h *HTTPInteraction }

func (h *HTTPInteraction) fail(err error) {
	if err != nil && h.err == nil {
		h.err = fmt.Errorf("contract: interaction %q: %w", h.i.Description, err)
	}
}

func addRule(r *Rules, cat, key string, l *RuleList) {
	if l == nil {
		return
	}
	if *r == nil {
		*r = Rules{}
	}
	if (*r)[cat] == nil {
		(*r)[cat] = map[string]*RuleList{}
	}
	(*r)[cat][key] = l
}

func addGen(g *Generators, cat, key string, gen Generator) {
	if gen == nil {
		return
	}
	if *g == nil {
		*g = Generators{}
	}
	if (*g)[cat] == nil {
		(*g)[cat] = map[string]Generator{}
	}
	(*g)[cat][key] = gen
}

// WithRequest sets the method and path (a string or a Term, such as a
// Regex or FromProviderState).
func (h *HTTPInteraction) WithRequest(method string, path any) *RequestBuilder {
	req := h.i.Request
	req.Method = strings.ToUpper(method)
	p, l, g, err := scalarTerm(path)
	h.fail(err)
	req.Path = p
	addRule(&req.Rules, "path", "", l)
	addGen(&req.Gens, "path", "", g)
	return &RequestBuilder{h}
}

// Query adds a query parameter's values (strings or Terms).
func (r *RequestBuilder) Query(name string, values ...any) *RequestBuilder {
	req := r.h.i.Request
	if req.Query == nil {
		req.Query = Query{}
	}
	for _, v := range values {
		s, l, g, err := scalarTerm(v)
		r.h.fail(err)
		req.Query[name] = append(req.Query[name], s)
		addRule(&req.Rules, "query", name, l)
		addGen(&req.Gens, "query", name, g)
	}
	return r
}

// Header adds a header's value (a string or a Term).
func (r *RequestBuilder) Header(name string, value any) *RequestBuilder {
	req := r.h.i.Request
	r.h.fail(setHeader(&req.Headers, &req.Rules, &req.Gens, name, value))
	return r
}

func setHeader(h *Headers, rules *Rules, gens *Generators, name string, value any) error {
	s, l, g, err := scalarTerm(value)
	if err != nil {
		return err
	}
	if *h == nil {
		*h = Headers{}
	}
	(*h)[name] = append((*h)[name], s)
	addRule(rules, "header", name, l)
	addGen(gens, "header", name, g)
	return nil
}

// JSON sets a JSON body; v may hold Terms anywhere.
func (r *RequestBuilder) JSON(v any) *RequestBuilder {
	req := r.h.i.Request
	r.h.fail(setJSON(&req.Body, &req.Headers, &req.Rules, &req.Gens, "body", v))
	return r
}

// Body sets a body of another content type, matched byte for byte.
func (r *RequestBuilder) Body(contentType string, b []byte) *RequestBuilder {
	req := r.h.i.Request
	req.Body = Body{Present: true, ContentType: contentType, Content: b}
	if _, ok := req.Headers.Get("Content-Type"); !ok && contentType != "" {
		_ = setHeader(&req.Headers, &req.Rules, &req.Gens, "Content-Type", contentType)
	}
	return r
}

func setJSON(body *Body, h *Headers, rules *Rules, gens *Generators, cat string, v any) error {
	bv, err := build(v)
	if err != nil {
		return err
	}
	b, err := jsonMarshal(bv.example)
	if err != nil {
		return err
	}
	*body = Body{Present: true, ContentType: "application/json", Content: b}
	if h != nil {
		if _, ok := h.Get("Content-Type"); !ok {
			if *h == nil {
				*h = Headers{}
			}
			(*h)["Content-Type"] = []string{"application/json"}
		}
	}
	for k, l := range bv.rules {
		addRule(rules, cat, k, l)
	}
	for k, g := range bv.gens {
		addGen(gens, cat, k, g)
	}
	return nil
}

// WillRespondWith sets the response status.
func (r *RequestBuilder) WillRespondWith(status int) *ResponseBuilder {
	if status < 100 || status > 599 {
		r.h.fail(fmt.Errorf("status %d is not an HTTP status", status))
	}
	r.h.i.Response.Status = status
	return &ResponseBuilder{r.h}
}

// StatusClass makes the provider's status match any status of a class:
// "information", "success", "redirect", "clientError", "serverError",
// "nonError" or "error". The mock server answers with the set status.
func (r *ResponseBuilder) StatusClass(class string) *ResponseBuilder {
	if !statusMatches(class, r.h.i.Response.Status) {
		r.h.fail(fmt.Errorf("status %d is not of class %q", r.h.i.Response.Status, class))
	}
	addRule(&r.h.i.Response.Rules, "status", "", &RuleList{Matchers: []Matcher{{Type: "statusCode", Status: class}}})
	return r
}

// Header adds a response header's value (a string or a Term).
func (r *ResponseBuilder) Header(name string, value any) *ResponseBuilder {
	resp := r.h.i.Response
	r.h.fail(setHeader(&resp.Headers, &resp.Rules, &resp.Gens, name, value))
	return r
}

// JSON sets a JSON response body; v may hold Terms anywhere.
func (r *ResponseBuilder) JSON(v any) *ResponseBuilder {
	resp := r.h.i.Response
	r.h.fail(setJSON(&resp.Body, &resp.Headers, &resp.Rules, &resp.Gens, "body", v))
	return r
}

// Body sets a response body of another content type.
func (r *ResponseBuilder) Body(contentType string, b []byte) *ResponseBuilder {
	resp := r.h.i.Response
	resp.Body = Body{Present: true, ContentType: contentType, Content: b}
	if _, ok := resp.Headers.Get("Content-Type"); !ok && contentType != "" {
		_ = setHeader(&resp.Headers, &resp.Rules, &resp.Gens, "Content-Type", contentType)
	}
	return r
}

// MockServerError lists what went wrong in a consumer test's run: requests
// no interaction matched (with the closest interaction's mismatches) and
// interactions never requested.
type MockServerError struct {
	Unexpected []UnexpectedRequest
	Missing    []string // descriptions of interactions never requested
	TestErr    error    // the error the test function returned
}

// UnexpectedRequest is a request no declared interaction matched.
type UnexpectedRequest struct {
	Method, Path string
	Closest      string // the description of the nearest interaction
	Mismatches   []Mismatch
}

func (e *MockServerError) Error() string {
	var b strings.Builder
	b.WriteString("contract: consumer test failed")
	if e.TestErr != nil {
		fmt.Fprintf(&b, "\n  the test returned: %v", e.TestErr)
	}
	for _, u := range e.Unexpected {
		fmt.Fprintf(&b, "\n  unexpected request %s %s", u.Method, u.Path)
		if u.Closest != "" {
			fmt.Fprintf(&b, "\n    closest interaction %q differs:", u.Closest)
			for _, m := range u.Mismatches {
				fmt.Fprintf(&b, "\n      %s %s", m.Part, m.Path)
				if m.Expected != "" || m.Actual != "" {
					fmt.Fprintf(&b, "\n        - expected: %s\n        + actual:   %s", m.Expected, m.Actual)
				}
				if m.Message != "" {
					fmt.Fprintf(&b, "\n        (%s", m.Message)
					if m.Matcher != "" {
						fmt.Fprintf(&b, "; matcher %s", m.Matcher)
					}
					b.WriteString(")")
				} else if m.Matcher != "" {
					fmt.Fprintf(&b, "\n        (matcher %s)", m.Matcher)
				}
			}
		}
	}
	for _, d := range e.Missing {
		fmt.Fprintf(&b, "\n  missing request: interaction %q was never requested", d)
	}
	return b.String()
}

func (e *MockServerError) Unwrap() error { return e.TestErr }

const maxMockBody = 32 << 20

// Run serves the interactions declared since the last Run on a mock
// server and calls test with its base URL; test drives the consumer's
// real client code against it. Run fails the test (and returns the
// error) when a request matched no interaction, a declared interaction
// was never requested, or test returned an error; otherwise it adds the
// interactions to the pact file.
func (c *Consumer) Run(test func(baseURL string) error) error {
	c.t.Helper()
	c.mu.Lock()
	declared := c.declared
	c.declared = nil
	c.mu.Unlock()
	for _, h := range declared {
		if h.err != nil {
			c.t.Error(h.err)
			return h.err
		}
	}
	var (
		mu         sync.Mutex
		hits       = make([]int, len(declared))
		unexpected []UnexpectedRequest
		srvURL     string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxMockBody))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got := FromHTTPRequest(r, body)
		best, bestN := -1, 0
		var bestMs []Mismatch
		for n, h := range declared {
			ms := MatchRequest(h.i.Request, got)
			if len(ms) == 0 {
				mu.Lock()
				hits[n]++
				mu.Unlock()
				serveResponse(w, h.i.Response, genContext{mockURL: srvURL})
				return
			}
			score := len(ms)
			if !strings.EqualFold(h.i.Request.Method, got.Method) || h.i.Request.Path != got.Path {
				score += 100
			}
			if best < 0 || score < bestN {
				best, bestN, bestMs = n, score, ms
			}
		}
		u := UnexpectedRequest{Method: r.Method, Path: r.URL.RequestURI()}
		if best >= 0 {
			u.Closest = declared[best].i.Description
			sortMismatches(bestMs)
			u.Mismatches = bestMs
		}
		mu.Lock()
		unexpected = append(unexpected, u)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		b, _ := jsonMarshal(map[string]any{"error": "contract: no interaction matches this request", "request": r.Method + " " + r.URL.RequestURI(), "closest": u.Closest, "mismatches": u.Mismatches})
		_, _ = w.Write(b)
	}))
	srvURL = srv.URL
	testErr := test(srv.URL)
	srv.Close()

	mu.Lock()
	defer mu.Unlock()
	e := &MockServerError{Unexpected: unexpected, TestErr: testErr}
	for n, h := range declared {
		if hits[n] == 0 {
			e.Missing = append(e.Missing, h.i.Description)
		}
	}
	if e.TestErr != nil || len(e.Unexpected) > 0 || len(e.Missing) > 0 {
		c.t.Error(e)
		return e
	}
	add := &Pact{}
	for _, h := range declared {
		add.Interactions = append(add.Interactions, h.i)
	}
	return c.record(add)
}

func serveResponse(w http.ResponseWriter, resp *Response, ctx genContext) {
	body, _ := applyBodyGenerators(resp.Body, resp.Gens["body"], ctx)
	for _, k := range resp.Headers.names() {
		for _, v := range resp.Headers[k] {
			if g, ok := resp.Gens["header"][k]; ok {
				v, _ = applyStringGenerator(g, v, ctx)
			}
			w.Header().Add(k, v)
		}
	}
	if body.Present && body.ContentType != "" && w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", body.ContentType)
	}
	status := resp.Status
	if g, ok := resp.Gens["status"][""]; ok {
		if v, ok, _ := generate(g, strconv.Itoa(status), ctx); ok {
			if s, ok := text(v); ok {
				if n, err := strconv.Atoi(s); err == nil && n >= 100 && n <= 599 {
					status = n
				}
			}
		}
	}
	w.WriteHeader(status)
	if body.Present {
		_, _ = w.Write(body.Content)
	}
}

// record merges interactions into the consumer's pact and rewrites the
// file, merging with what other tests of the pair wrote (under a lock
// file, so parallel test binaries do not lose each other's interactions).
func (c *Consumer) record(add *Pact) error {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pact.Merge(add)
	if err := writeMerged(c.PactPath(), c.pact, c.spec); err != nil {
		c.t.Error(err)
		return err
	}
	return nil
}

var fileLocks sync.Map // path → *sync.Mutex

func writeMerged(path string, p *Pact, spec Spec) error {
	mu, _ := fileLocks.LoadOrStore(path, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("contract: pact dir: %w", err)
	}
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	merged := &Pact{Consumer: p.Consumer, Provider: p.Provider}
	if b, err := os.ReadFile(path); err == nil {
		old, err := Parse(b)
		if err != nil {
			return fmt.Errorf("contract: existing pact file %s: %w (remove it to start afresh)", path, err)
		}
		if old.Consumer != p.Consumer || old.Provider != p.Provider {
			return fmt.Errorf("contract: %s holds the pact of %s and %s, not %s and %s", path, old.Consumer, old.Provider, p.Consumer, p.Provider)
		}
		merged = old
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("contract: read %s: %w", path, err)
	}
	merged.Merge(p)
	merged.Spec = spec
	if spec == 0 {
		merged.Spec = V3
		if merged.HasMessages() {
			merged.Spec = V4
		}
	}
	b, err := merged.Marshal()
	if err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("contract: write pact: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("contract: write pact: %w", err)
	}
	return nil
}

// lockFile takes an exclusive lock file, waiting up to 30 s; a lock older
// than a minute is left by a crashed process and is taken over.
func lockFile(path string) (func(), error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprint(f, os.Getpid())
			f.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("contract: lock %s: %w", path, err)
		}
		if st, err := os.Stat(path); err == nil && time.Since(st.ModTime()) > time.Minute {
			os.Remove(path)
			continue
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("contract: lock %s held for 30s by another process", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// MessageInteraction is an expected message being declared.
type MessageInteraction struct {
	c   *Consumer
	i   *Interaction
	err error
}

// ExpectsToReceive declares a message the consumer handles.
func (c *Consumer) ExpectsToReceive(description string) *MessageInteraction {
	m := &MessageInteraction{c: c, i: &Interaction{Type: TypeMessage, Description: description, Message: &Message{}}}
	if description == "" {
		m.err = errors.New("contract: ExpectsToReceive: a description is required")
	}
	return m
}

// Given adds a provider state, with optional parameters.
func (m *MessageInteraction) Given(state string, params ...Params) *MessageInteraction {
	m.i.ProviderStates = append(m.i.ProviderStates, ProviderState{Name: state, Params: mergeParams(params)})
	return m
}

func (m *MessageInteraction) fail(err error) {
	if err != nil && m.err == nil {
		m.err = fmt.Errorf("contract: message %q: %w", m.i.Description, err)
	}
}

// WithJSON sets JSON contents; v may hold Terms anywhere.
func (m *MessageInteraction) WithJSON(v any) *MessageInteraction {
	msg := m.i.Message
	m.fail(setJSON(&msg.Contents, nil, &msg.Rules, &msg.Gens, "content", v))
	if msg.Metadata == nil {
		msg.Metadata = map[string]any{}
	}
	if _, ok := lookupMeta(msg.Metadata, "contentType"); !ok {
		msg.Metadata["contentType"] = "application/json"
	}
	return m
}

// WithContents sets contents of another content type.
func (m *MessageInteraction) WithContents(contentType string, b []byte) *MessageInteraction {
	msg := m.i.Message
	msg.Contents = Body{Present: true, ContentType: contentType, Content: b}
	if msg.Metadata == nil {
		msg.Metadata = map[string]any{}
	}
	msg.Metadata["contentType"] = contentType
	return m
}

// WithMetadata sets metadata entries: CloudEvents attributes such as
// "type", "source", "subject" and "dataschema", "contentType", or any
// extension. A value may be a string or a Term.
func (m *MessageInteraction) WithMetadata(md map[string]any) *MessageInteraction {
	msg := m.i.Message
	if msg.Metadata == nil {
		msg.Metadata = map[string]any{}
	}
	for k, v := range md {
		s, l, g, err := scalarTerm(v)
		m.fail(err)
		msg.Metadata[k] = s
		addRule(&msg.Rules, "metadata", k, l)
		addGen(&msg.Gens, "metadata", k, g)
	}
	return m
}

// ceAttrs are the CloudEvents attributes a message's metadata may set.
var ceAttrs = map[string]bool{"id": true, "source": true, "specversion": true, "type": true, "subject": true, "time": true,
	"dataschema": true, "partitionkey": true, "correlationid": true, "causationid": true, "traceparent": true, "tracestate": true}

// ToHandoffMessage builds the handoff message a consumer receives for
// contents and metadata, through the same binary-mode decoding the
// transports use: metadata keys are CloudEvents attributes or extensions,
// "contentType" is the data's content type. Missing id, source and
// specversion get defaults; "type" is required.
func ToHandoffMessage(contents Body, metadata map[string]any, defaultSource string) (*handoff.Message, error) {
	h := map[string]string{}
	b := handoff.NATSBinding
	for k, v := range metadata {
		s, ok := text(normalize(v))
		if !ok {
			continue
		}
		lk := strings.ToLower(k)
		switch {
		case isContentTypeKey(lk):
			h[b.ContentType] = s
		case lk == "traceparent" || lk == "tracestate":
			h[lk] = s
		case ceAttrs[lk] || validExt(lk):
			h[b.Prefix+lk] = s
		}
	}
	if _, ok := h[b.Prefix+"type"]; !ok {
		return nil, errors.New(`contract: message metadata needs "type": the CloudEvents type the consumer routes by`)
	}
	if _, ok := h[b.Prefix+"id"]; !ok {
		h[b.Prefix+"id"] = handoff.NewID()
	}
	if _, ok := h[b.Prefix+"source"]; !ok {
		h[b.Prefix+"source"] = defaultSource
	}
	if _, ok := h[b.Prefix+"specversion"]; !ok {
		h[b.Prefix+"specversion"] = handoff.SpecVersion
	}
	if _, ok := h[b.ContentType]; !ok && contents.ContentType != "" {
		h[b.ContentType] = contents.ContentType
	}
	return b.DecodeMap(h, contents.Content)
}

func validExt(s string) bool {
	if len(s) == 0 || len(s) > 20 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// FromHandoffMessage is the message's contents and metadata as a pact
// holds them: each CloudEvents attribute by name, extensions too, and
// "contentType".
func FromHandoffMessage(m *handoff.Message) *Message {
	md := map[string]any{"id": m.ID, "source": m.Source, "specversion": m.SpecVersion, "type": m.Type}
	set := func(k, v string) {
		if v != "" {
			md[k] = v
		}
	}
	set("subject", m.Subject)
	set("dataschema", m.DataSchema)
	set("contentType", m.DataContentType)
	set("partitionkey", m.PartitionKey)
	set("correlationid", m.CorrelationID)
	set("causationid", m.CausationID)
	set("traceparent", m.TraceParent)
	set("tracestate", m.TraceState)
	if !m.Time.IsZero() {
		md["time"] = m.Time.UTC().Format(time.RFC3339Nano)
	}
	for k, v := range m.Extensions {
		md[k] = v
	}
	return &Message{Contents: Body{Present: true, ContentType: m.DataContentType, Content: m.Data}, Metadata: md}
}

// Handle calls the consumer's real handler with an example of the
// message (generators applied), built as a transport would deliver it.
// When the handler returns nil the message goes into the pact; otherwise
// the test fails with the handler's error.
func (m *MessageInteraction) Handle(h handoff.Handler) error {
	m.c.t.Helper()
	if m.err != nil {
		m.c.t.Error(m.err)
		return m.err
	}
	msg, err := m.Example()
	if err == nil {
		err = h.Handle(testContext(m.c.t), msg)
		if err != nil {
			err = fmt.Errorf("contract: message %q: the handler returned: %w", m.i.Description, err)
		}
	}
	if err != nil {
		m.c.t.Error(err)
		return err
	}
	return m.c.record(&Pact{Interactions: []*Interaction{m.i}})
}

// Example returns the message the handler is given.
func (m *MessageInteraction) Example() (*handoff.Message, error) {
	if m.err != nil {
		return nil, m.err
	}
	msg := m.i.Message
	contents, err := applyBodyGenerators(msg.Contents, msg.Gens["content"], genContext{})
	if err != nil {
		return nil, err
	}
	md := map[string]any{}
	for k, v := range msg.Metadata {
		md[k] = v
		if g, ok := msg.Gens["metadata"][k]; ok {
			s, _ := text(normalize(v))
			if ns, err := applyStringGenerator(g, s, genContext{}); err == nil {
				md[k] = ns
			}
		}
	}
	return ToHandoffMessage(contents, md, "/"+url.PathEscape(m.c.pact.Provider))
}

func testContext(t testing.TB) context.Context {
	if c, ok := t.(interface{ Context() context.Context }); ok {
		return c.Context()
	}
	return context.Background()
}

// interactionsSorted is used by tests and reports.
func interactionsSorted(is []*Interaction) []*Interaction {
	out := append([]*Interaction(nil), is...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Description < out[j].Description })
	return out
}

// BodyOfType sets a binary response body that the provider matches by its
// content type (Pact's contentType matcher, a magic-number check), not
// byte for byte.
func (r *ResponseBuilder) BodyOfType(contentType string, example []byte) *ResponseBuilder {
	r.Body(contentType, example)
	addRule(&r.h.i.Response.Rules, "body", "$", &RuleList{Matchers: []Matcher{{Type: "contentType", Value: contentType}}})
	return r
}
