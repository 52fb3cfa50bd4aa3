package registry

import (
	"bytes"
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/handoffhq/handoff/schema"
)

// ContentType is the media type of the registry's REST API.
const ContentType = "application/vnd.schemaregistry.v1+json"

const (
	defaultCacheSize  = 1000
	maxBodySize       = 32 << 20 // a response body larger than this is refused
	maxErrorBodySize  = 64 << 10
	maxReferenceDepth = 64
)

// SchemaSpec is a schema to register, look up or check: its language (empty
// means AVRO), its text, and the registered schemas it references. Metadata
// and RuleSet are passed to the registry unchanged when set.
type SchemaSpec struct {
	Type       schema.Type
	Text       string
	References []Reference
	Metadata   json.RawMessage
	RuleSet    json.RawMessage
}

func (s SchemaSpec) schemaType() schema.Type {
	if s.Type == "" {
		return schema.Avro
	}
	return s.Type
}

// Client talks to a Confluent-compatible schema registry. It is safe for
// concurrent use.
//
// What the registry never changes is cached, each cache bounded (least
// recently used out, WithCacheSize): id → schema, (subject, schema) → id,
// the referenced subject versions, and the parsed schema per id. Concurrent
// callers asking for one uncached id share one request. What can change (a
// subject's latest version, its versions, the configuration) is always
// fetched.
type Client struct {
	base  string
	hc    *http.Client
	auth  func(*http.Request)
	draft schema.Draft // JSON Schema draft of a text without $schema

	byID    *lru[int, Registered]        // id → schema (Subject and Version empty)
	ids     *lru[specKey, int]           // (subject, schema) → id
	refs    *lru[versionKey, Registered] // referenced subject versions
	parsed  *lru[int, *schema.Parsed]    // id → parsed schema
	derived *lru[derivedKey, any]        // id → format-specific compiled schema (serde)

	idFlight     flight[int, Registered]
	parsedFlight flight[int, *schema.Parsed]
	refFlight    flight[versionKey, Registered]
}

type specKey struct {
	subject, typ, text, refs, meta, rules string
}

type versionKey struct {
	subject string
	version int
}

type derivedKey struct {
	id   int
	kind string
}

type clientOptions struct {
	token      string
	user, pass string
	basic      bool
	hc         *http.Client
	hcSet      bool
	cacheSize  int
	draft      schema.Draft
}

// ClientOption configures a Client.
type ClientOption func(*clientOptions)

// WithToken sends "Authorization: Bearer <token>" on every request.
func WithToken(token string) ClientOption {
	return func(o *clientOptions) { o.token = token }
}

// WithBasicAuth sends HTTP basic authentication on every request.
func WithBasicAuth(user, pass string) ClientOption {
	return func(o *clientOptions) { o.user, o.pass, o.basic = user, pass, true }
}

// WithHTTPClient sets the HTTP client (for timeouts, TLS, a proxy). The
// default is http.DefaultClient; set a timeout or give every call a context
// with a deadline.
func WithHTTPClient(hc *http.Client) ClientOption {
	return func(o *clientOptions) { o.hc, o.hcSet = hc, true }
}

// WithCacheSize bounds each of the client's caches to n entries (default
// 1000).
func WithCacheSize(n int) ClientOption {
	return func(o *clientOptions) { o.cacheSize = n }
}

// WithJSONDraft sets the draft the client reads a JSON Schema without
// $schema as (for serializers and validation): draft-07 by default, as the
// server (and Confluent's registry) reads it. Give it the draft given to
// the server's WithDefaultJSONDraft.
func WithJSONDraft(d schema.Draft) ClientOption {
	return func(o *clientOptions) { o.draft = d }
}

// NewClient returns a client of the registry at baseURL, e.g.
// "http://localhost:8081" or "https://example.com/registry".
func NewClient(baseURL string, opts ...ClientOption) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("registry: base URL %q: %w", baseURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("registry: base URL %q: must be an absolute http or https URL", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("registry: base URL %q: must have no query or fragment", baseURL)
	}
	o := clientOptions{cacheSize: defaultCacheSize, hc: http.DefaultClient}
	for _, opt := range opts {
		opt(&o)
	}
	draft, err := schema.ParseDraft(string(o.draft))
	if err != nil {
		return nil, fmt.Errorf("registry: WithJSONDraft: %w", err)
	}
	switch {
	case o.hcSet && o.hc == nil:
		return nil, errors.New("registry: WithHTTPClient: client is nil")
	case o.cacheSize < 1:
		return nil, fmt.Errorf("registry: WithCacheSize(%d): must be at least 1", o.cacheSize)
	case o.token != "" && o.basic:
		return nil, errors.New("registry: WithToken and WithBasicAuth: choose one")
	case o.basic && o.user == "":
		return nil, errors.New("registry: WithBasicAuth: user is empty")
	}
	c := &Client{
		base:    strings.TrimRight(u.String(), "/"),
		draft:   draft,
		hc:      o.hc,
		byID:    newLRU[int, Registered](o.cacheSize),
		ids:     newLRU[specKey, int](o.cacheSize),
		refs:    newLRU[versionKey, Registered](o.cacheSize),
		parsed:  newLRU[int, *schema.Parsed](o.cacheSize),
		derived: newLRU[derivedKey, any](o.cacheSize),
	}
	switch {
	case o.token != "":
		token := o.token
		c.auth = func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
	case o.basic:
		user, pass := o.user, o.pass
		c.auth = func(r *http.Request) { r.SetBasicAuth(user, pass) }
	}
	return c, nil
}

// BaseURL returns the registry's base URL, without a trailing slash.
func (c *Client) BaseURL() string { return c.base }

// registerRequest is the body of a registration, lookup or compatibility
// check. schemaType is omitted for AVRO, as Confluent's clients do.
type registerRequest struct {
	Schema     string          `json:"schema"`
	SchemaType string          `json:"schemaType,omitempty"`
	References []Reference     `json:"references,omitempty"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
	RuleSet    json.RawMessage `json:"ruleSet,omitempty"`
}

func requestOf(s SchemaSpec) registerRequest {
	r := registerRequest{Schema: s.Text, References: s.References, Metadata: s.Metadata, RuleSet: s.RuleSet}
	if t := s.schemaType(); t != schema.Avro {
		r.SchemaType = string(t)
	}
	return r
}

// Register registers s under subject (or finds it already registered there)
// and returns its id. POST /subjects/{subject}/versions.
func (c *Client) Register(ctx context.Context, subject string, s SchemaSpec) (int, error) {
	key := keyOf(subject, s)
	if id, ok := c.ids.get(key); ok {
		return id, nil
	}
	var resp struct {
		ID int `json:"id"`
	}
	if err := c.do(ctx, http.MethodPost, "/subjects/"+escape(subject)+"/versions", nil, requestOf(s), &resp); err != nil {
		return 0, err
	}
	if err := checkID(resp.ID); err != nil {
		return 0, fmt.Errorf("registry: register under %s: %w", subject, err)
	}
	c.ids.put(key, resp.ID)
	// The id now names this schema; remember it as given, as Confluent's
	// clients do, so the serializer needs no second request.
	if _, ok := c.byID.get(resp.ID); !ok {
		c.byID.put(resp.ID, registeredOf(resp.ID, s))
	}
	return resp.ID, nil
}

// Lookup finds s among subject's versions: its id and version. An
// unregistered schema gives an *Error matching ErrNotFound. POST
// /subjects/{subject}.
func (c *Client) Lookup(ctx context.Context, subject string, s SchemaSpec) (Registered, error) {
	var r Registered
	if err := c.do(ctx, http.MethodPost, "/subjects/"+escape(subject), nil, requestOf(s), &r); err != nil {
		return Registered{}, err
	}
	if err := checkID(r.ID); err != nil {
		return Registered{}, fmt.Errorf("registry: look up under %s: %w", subject, err)
	}
	c.ids.put(keyOf(subject, s), r.ID)
	c.remember(r)
	return r, nil
}

// SchemaByID returns the schema with the given id (Subject and Version are
// empty: an id may be registered under several subjects). Cached forever;
// concurrent callers of one uncached id share one request. GET
// /schemas/ids/{id}.
func (c *Client) SchemaByID(ctx context.Context, id int) (Registered, error) {
	if r, ok := c.byID.get(id); ok {
		return r, nil
	}
	return c.idFlight.do(ctx, id, func(ctx context.Context) (Registered, error) {
		if r, ok := c.byID.get(id); ok {
			return r, nil
		}
		var r Registered
		if err := c.do(ctx, http.MethodGet, "/schemas/ids/"+strconv.Itoa(id), nil, nil, &r); err != nil {
			return Registered{}, err
		}
		r.ID, r.Subject, r.Version = id, "", 0
		c.byID.put(id, r)
		return r, nil
	})
}

// Latest returns subject's latest version. Not cached. GET
// /subjects/{subject}/versions/latest.
func (c *Client) Latest(ctx context.Context, subject string) (Registered, error) {
	return c.version(ctx, subject, "latest")
}

// Version returns one version of subject. Not cached. GET
// /subjects/{subject}/versions/{version}.
func (c *Client) Version(ctx context.Context, subject string, version int) (Registered, error) {
	return c.version(ctx, subject, strconv.Itoa(version))
}

func (c *Client) version(ctx context.Context, subject, version string) (Registered, error) {
	var r Registered
	if err := c.do(ctx, http.MethodGet, "/subjects/"+escape(subject)+"/versions/"+version, nil, nil, &r); err != nil {
		return Registered{}, err
	}
	if err := checkID(r.ID); err != nil {
		return Registered{}, fmt.Errorf("registry: %s version %s: %w", subject, version, err)
	}
	c.remember(r)
	return r, nil
}

// remember caches the id → schema part of r.
func (c *Client) remember(r Registered) {
	if _, ok := c.byID.get(r.ID); ok || r.Schema == "" {
		return
	}
	r.Subject, r.Version = "", 0
	c.byID.put(r.ID, r)
}

// Subjects lists the registered subjects. GET /subjects.
func (c *Client) Subjects(ctx context.Context) ([]string, error) {
	var s []string
	if err := c.do(ctx, http.MethodGet, "/subjects", nil, nil, &s); err != nil {
		return nil, err
	}
	return s, nil
}

// Versions lists subject's versions. GET /subjects/{subject}/versions.
func (c *Client) Versions(ctx context.Context, subject string) ([]int, error) {
	var v []int
	if err := c.do(ctx, http.MethodGet, "/subjects/"+escape(subject)+"/versions", nil, nil, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// CheckCompatibility checks s against version ("latest" or a number) of
// subject at the subject's compatibility level. With verbose, Messages
// says why it is incompatible. POST
// /compatibility/subjects/{subject}/versions/{version}.
func (c *Client) CheckCompatibility(ctx context.Context, subject, version string, s SchemaSpec, verbose bool) (CompatibilityResult, error) {
	if version == "" {
		version = "latest"
	}
	if version != "latest" {
		if n, err := strconv.Atoi(version); err != nil || n < 1 {
			return CompatibilityResult{}, fmt.Errorf("registry: check compatibility of %s: version %q: must be \"latest\" or a positive number", subject, version)
		}
	}
	var q url.Values
	if verbose {
		q = url.Values{"verbose": {"true"}}
	}
	var r CompatibilityResult
	err := c.do(ctx, http.MethodPost, "/compatibility/subjects/"+escape(subject)+"/versions/"+version, q, requestOf(s), &r)
	return r, err
}

// Config returns the compatibility level of subject, or the global level
// when subject is empty. A subject without a level of its own gives an
// *Error with CodeSubjectCompatibilityNotSet (matching ErrNotFound). GET
// /config[/{subject}].
func (c *Client) Config(ctx context.Context, subject string) (schema.Level, error) {
	var r struct {
		Level         string `json:"compatibilityLevel"`
		Compatibility string `json:"compatibility"`
	}
	if err := c.do(ctx, http.MethodGet, configPath(subject), nil, nil, &r); err != nil {
		return "", err
	}
	if r.Level == "" {
		r.Level = r.Compatibility
	}
	if r.Level == "" {
		// A subject with only handoffCompatibilityRules of its own.
		return "", &Error{Code: CodeSubjectCompatibilityNotSet, Status: 404, Message: fmt.Sprintf("Subject '%s' does not have subject-level compatibility configured", subject)}
	}
	l, err := schema.ParseLevel(r.Level)
	if err != nil {
		return "", fmt.Errorf("registry: config %s: %w", subject, err)
	}
	return l, nil
}

// SetConfig sets the compatibility level of subject, or the global level
// when subject is empty. PUT /config[/{subject}].
func (c *Client) SetConfig(ctx context.Context, subject string, level schema.Level) error {
	body := struct {
		Compatibility schema.Level `json:"compatibility"`
	}{level}
	return c.do(ctx, http.MethodPut, configPath(subject), nil, body, nil)
}

// CompatibilityRules returns the rule set (handoff's extension of the
// config API) in force for subject's compatibility checks, or the global
// one when subject is empty: its own, else the global one, else
// CONFLUENT. A registry that does not know the setting (Confluent's)
// answers CONFLUENT. GET /config[/{subject}]?defaultToGlobal=true.
func (c *Client) CompatibilityRules(ctx context.Context, subject string) (schema.Rules, error) {
	var r struct {
		Rules string `json:"handoffCompatibilityRules"`
	}
	q := url.Values{}
	if subject != "" {
		q.Set("defaultToGlobal", "true")
	}
	if err := c.do(ctx, http.MethodGet, configPath(subject), q, nil, &r); err != nil {
		return "", err
	}
	rules, err := schema.ParseRules(r.Rules)
	if err != nil {
		return "", fmt.Errorf("registry: config %s: %w", subject, err)
	}
	return rules, nil
}

// SetCompatibilityRules sets the rule set of subject's compatibility
// checks, or the global one when subject is empty: schema.ConfluentRules
// (the default) refuses what Confluent's registry refuses, and
// schema.StrictRules also handoff's stricter findings. The level is left
// as it is. PUT /config[/{subject}] with handoffCompatibilityRules.
func (c *Client) SetCompatibilityRules(ctx context.Context, subject string, rules schema.Rules) error {
	body := struct {
		Rules schema.Rules `json:"handoffCompatibilityRules"`
	}{rules}
	return c.do(ctx, http.MethodPut, configPath(subject), nil, body, nil)
}

func configPath(subject string) string {
	if subject == "" {
		return "/config"
	}
	return "/config/" + escape(subject)
}

// DeleteSubject deletes subject and returns the versions deleted. A soft
// delete (permanent false) hides them; a permanent delete, allowed only after
// a soft one, removes them. DELETE /subjects/{subject}.
func (c *Client) DeleteSubject(ctx context.Context, subject string, permanent bool) ([]int, error) {
	var v []int
	if err := c.do(ctx, http.MethodDelete, "/subjects/"+escape(subject), permanentQuery(permanent), nil, &v); err != nil {
		return nil, err
	}
	c.forget(subject)
	return v, nil
}

// DeleteVersion deletes one version of subject, softly or (after a soft
// delete) permanently. DELETE /subjects/{subject}/versions/{version}.
func (c *Client) DeleteVersion(ctx context.Context, subject string, version int, permanent bool) error {
	var v int
	path := "/subjects/" + escape(subject) + "/versions/" + strconv.Itoa(version)
	if err := c.do(ctx, http.MethodDelete, path, permanentQuery(permanent), nil, &v); err != nil {
		return err
	}
	c.forget(subject)
	return nil
}

func permanentQuery(permanent bool) url.Values {
	if permanent {
		return url.Values{"permanent": {"true"}}
	}
	return nil
}

// forget drops what was cached about subject: after a delete, registering
// the same schema again must reach the registry.
func (c *Client) forget(subject string) {
	c.ids.removeIf(func(k specKey) bool { return k.subject == subject })
	c.refs.removeIf(func(k versionKey) bool { return k.subject == subject })
}

// Resolve returns r's schema with its references fetched (recursively, and
// cached) and flattened into References, ready for schema.Parse.
func (c *Client) Resolve(ctx context.Context, r Registered) (schema.Schema, error) {
	t, err := schema.ParseType(r.SchemaType)
	if err != nil {
		return schema.Schema{}, fmt.Errorf("registry: resolve schema %d: %w", r.ID, err)
	}
	refs, err := c.resolveRefs(ctx, r.References)
	if err != nil {
		return schema.Schema{}, err
	}
	s := schema.Schema{Type: t, Text: r.Schema, DefaultDraft: c.draft}
	if len(refs) > 0 {
		s.References = make(map[string]string, len(refs))
		for _, ref := range refs {
			s.References[ref.name] = ref.text
		}
	}
	return s, nil
}

// ParsedByID returns the parsed schema with the given id, its references
// resolved. Cached; concurrent callers of one id share the work.
func (c *Client) ParsedByID(ctx context.Context, id int) (*schema.Parsed, error) {
	if p, ok := c.parsed.get(id); ok {
		return p, nil
	}
	return c.parsedFlight.do(ctx, id, func(ctx context.Context) (*schema.Parsed, error) {
		if p, ok := c.parsed.get(id); ok {
			return p, nil
		}
		r, err := c.SchemaByID(ctx, id)
		if err != nil {
			return nil, err
		}
		s, err := c.Resolve(ctx, r)
		if err != nil {
			return nil, err
		}
		p, err := schema.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("registry: schema %d: %w", id, err)
		}
		c.parsed.put(id, p)
		return p, nil
	})
}

// resolvedRef is one referenced schema's text under the name the
// referencing text uses.
type resolvedRef struct {
	name, text string
}

// resolveRefs fetches refs and their references, dependencies first (the
// order Avro needs to parse named types), each name once.
func (c *Client) resolveRefs(ctx context.Context, refs []Reference) ([]resolvedRef, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	var (
		out     []resolvedRef
		byName  = map[string]string{}
		visited = map[versionKey]bool{}
		onPath  = map[versionKey]bool{}
	)
	var walk func(refs []Reference, depth int) error
	walk = func(refs []Reference, depth int) error {
		if depth > maxReferenceDepth {
			return fmt.Errorf("registry: references nested deeper than %d", maxReferenceDepth)
		}
		for _, ref := range refs {
			r, err := c.reference(ctx, ref)
			if err != nil {
				return fmt.Errorf("registry: reference %q (%s version %d): %w", ref.Name, ref.Subject, ref.Version, err)
			}
			k := versionKey{r.Subject, r.Version}
			if onPath[k] {
				return fmt.Errorf("registry: reference %q (%s version %d): references form a cycle", ref.Name, ref.Subject, r.Version)
			}
			if !visited[k] {
				visited[k], onPath[k] = true, true
				if err := walk(r.References, depth+1); err != nil {
					return err
				}
				onPath[k] = false
			}
			if text, ok := byName[ref.Name]; ok {
				if text != r.Schema {
					return fmt.Errorf("registry: reference name %q names two different schemas", ref.Name)
				}
				continue
			}
			byName[ref.Name] = r.Schema
			out = append(out, resolvedRef{ref.Name, r.Schema})
		}
		return nil
	}
	if err := walk(refs, 0); err != nil {
		return nil, err
	}
	return out, nil
}

// reference fetches a referenced version, cached. A version below 1 means
// the latest, fetched every time.
func (c *Client) reference(ctx context.Context, ref Reference) (Registered, error) {
	if ref.Version < 1 {
		return c.Latest(ctx, ref.Subject)
	}
	k := versionKey{ref.Subject, ref.Version}
	if r, ok := c.refs.get(k); ok {
		return r, nil
	}
	return c.refFlight.do(ctx, k, func(ctx context.Context) (Registered, error) {
		if r, ok := c.refs.get(k); ok {
			return r, nil
		}
		r, err := c.Version(ctx, ref.Subject, ref.Version)
		if err != nil {
			return Registered{}, err
		}
		c.refs.put(k, r)
		return r, nil
	})
}

// do sends one request: in (if not nil) as the JSON body, the answer decoded
// into out (if not nil). A non-2xx answer is an *Error.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("registry: %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("registry: %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", ContentType+", application/vnd.schemaregistry+json; q=0.9, application/json; q=0.5")
	if in != nil {
		req.Header.Set("Content-Type", ContentType)
	}
	if c.auth != nil {
		c.auth(req)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("registry: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBodySize))
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBodySize+1))
	if err != nil {
		return fmt.Errorf("registry: %s %s: read answer: %w", method, path, err)
	}
	if len(b) > maxBodySize {
		return fmt.Errorf("registry: %s %s: answer larger than %d bytes", method, path, maxBodySize)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("registry: %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// decodeError reads a non-2xx answer: the registry's {"error_code",
// "message"} when the body has it, else the status as the code and the body
// (or the status text) as the message.
func decodeError(resp *http.Response) *Error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodySize))
	e := &Error{}
	if err := json.Unmarshal(b, e); err != nil || e.Code == 0 {
		e.Code = resp.StatusCode
		e.Message = strings.TrimSpace(string(b))
	}
	e.Status = resp.StatusCode
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	if e.Message == "" {
		e.Message = "HTTP status " + strconv.Itoa(resp.StatusCode)
	}
	return e
}

func escape(subject string) string { return url.PathEscape(subject) }

func checkID(id int) error {
	if id < 1 || id > math.MaxInt32 {
		return fmt.Errorf("registry returned schema id %d, want 1..%d", id, math.MaxInt32)
	}
	return nil
}

func registeredOf(id int, s SchemaSpec) Registered {
	r := Registered{ID: id, Schema: s.Text, References: s.References, Metadata: s.Metadata, RuleSet: s.RuleSet}
	if t := s.schemaType(); t != schema.Avro {
		r.SchemaType = string(t)
	}
	return r
}

// keyOf is the (subject, schema) cache key. The text of AVRO and JSON
// schemas is compacted, so whitespace does not tell two registrations of one
// schema apart; Protobuf text is taken as given.
func keyOf(subject string, s SchemaSpec) specKey {
	t := s.schemaType()
	k := specKey{subject: subject, typ: string(t), text: s.Text, meta: compact(s.Metadata), rules: compact(s.RuleSet)}
	if t != schema.Protobuf {
		k.text = compact([]byte(s.Text))
	}
	var b strings.Builder
	for _, r := range s.References {
		fmt.Fprintf(&b, "%q %q %d\n", r.Name, r.Subject, r.Version)
	}
	k.refs = b.String()
	return k
}

func compact(b []byte) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return string(b)
	}
	return buf.String()
}

// lru is a bounded map that drops its least recently used entry.
type lru[K comparable, V any] struct {
	mu  sync.Mutex
	max int
	ll  *list.List
	m   map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	k K
	v V
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	return &lru[K, V]{max: max, ll: list.New(), m: make(map[K]*list.Element)}
}

func (l *lru[K, V]) get(k K) (V, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.m[k]; ok {
		l.ll.MoveToFront(e)
		return e.Value.(*lruEntry[K, V]).v, true
	}
	var zero V
	return zero, false
}

func (l *lru[K, V]) put(k K, v V) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.m[k]; ok {
		e.Value.(*lruEntry[K, V]).v = v
		l.ll.MoveToFront(e)
		return
	}
	l.m[k] = l.ll.PushFront(&lruEntry[K, V]{k, v})
	for l.ll.Len() > l.max {
		e := l.ll.Back()
		l.ll.Remove(e)
		delete(l.m, e.Value.(*lruEntry[K, V]).k)
	}
}

func (l *lru[K, V]) removeIf(drop func(K) bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, e := range l.m {
		if drop(k) {
			l.ll.Remove(e)
			delete(l.m, k)
		}
	}
}

func (l *lru[K, V]) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ll.Len()
}

// flight lets concurrent callers of one key share one call.
type flight[K comparable, V any] struct {
	mu    sync.Mutex
	calls map[K]*flightCall[V]
}

type flightCall[V any] struct {
	done chan struct{}
	val  V
	err  error
}

// do runs fn once for all concurrent callers of key. A waiting caller whose
// context ends stops waiting. When the caller running fn gave up (its
// context ended), a waiter whose own context is still live runs fn itself.
func (f *flight[K, V]) do(ctx context.Context, key K, fn func(context.Context) (V, error)) (V, error) {
	for {
		f.mu.Lock()
		if f.calls == nil {
			f.calls = make(map[K]*flightCall[V])
		}
		if c, ok := f.calls[key]; ok {
			f.mu.Unlock()
			select {
			case <-c.done:
			case <-ctx.Done():
				var zero V
				return zero, ctx.Err()
			}
			if c.err != nil && ctx.Err() == nil &&
				(errors.Is(c.err, context.Canceled) || errors.Is(c.err, context.DeadlineExceeded)) {
				continue
			}
			return c.val, c.err
		}
		// The error stands if fn panics, so that waiters do not take a zero
		// value for an answer.
		c := &flightCall[V]{done: make(chan struct{}), err: errors.New("registry: shared call did not return")}
		f.calls[key] = c
		f.mu.Unlock()
		func() {
			defer func() {
				f.mu.Lock()
				delete(f.calls, key)
				f.mu.Unlock()
				close(c.done)
			}()
			c.val, c.err = fn(ctx)
		}()
		return c.val, c.err
	}
}
