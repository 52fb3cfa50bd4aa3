package contract

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Limits on what Parse accepts: a pact file is untrusted input (it comes
// from a broker or another team's CI).
const (
	MaxPactBytes        = 16 << 20 // a pact file larger than this is refused
	MaxInteractions     = 10000    // interactions in one pact
	maxRulesPerCategory = 10000
)

// ErrInvalidPact is matched by every error Parse returns for a pact it
// cannot read.
var ErrInvalidPact = errors.New("contract: invalid pact")

// ParseError names the place in a pact file that broke a rule.
type ParseError struct {
	Field string // e.g. "interactions[2].request.path"
	Rule  string
}

func (e *ParseError) Error() string {
	if e.Field == "" {
		return "contract: invalid pact: " + e.Rule
	}
	return fmt.Sprintf("contract: invalid pact: %s: %s", e.Field, e.Rule)
}

// Is makes a ParseError match ErrInvalidPact.
func (e *ParseError) Is(target error) bool { return target == ErrInvalidPact }

func perr(field, format string, args ...any) error {
	return &ParseError{Field: field, Rule: fmt.Sprintf(format, args...)}
}

// ReadPact reads and parses a pact from r, refusing more than MaxPactBytes.
func ReadPact(r io.Reader) (*Pact, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxPactBytes+1))
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

type rawPact struct {
	Consumer     *struct{ Name string } `json:"consumer"`
	Provider     *struct{ Name string } `json:"provider"`
	Interactions []json.RawMessage      `json:"interactions"`
	Messages     []json.RawMessage      `json:"messages"`
	Metadata     map[string]json.RawMessage
}

// Parse reads a pact file in the V2, V3 or V4 format. Attributes it does
// not know are kept and written back; a value of the wrong shape is an
// error naming the field.
func Parse(b []byte) (*Pact, error) {
	if len(b) > MaxPactBytes {
		return nil, perr("", "larger than %d bytes", MaxPactBytes)
	}
	var raw rawPact
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, perr("", "not a JSON object of the Pact format: %v", err)
	}
	if raw.Consumer == nil || raw.Consumer.Name == "" {
		return nil, perr("consumer.name", "required")
	}
	if raw.Provider == nil || raw.Provider.Name == "" {
		return nil, perr("provider.name", "required")
	}
	if len(raw.Interactions)+len(raw.Messages) > MaxInteractions {
		return nil, perr("interactions", "more than %d", MaxInteractions)
	}
	p := &Pact{Consumer: raw.Consumer.Name, Provider: raw.Provider.Name, Metadata: raw.Metadata}
	p.Spec = specOf(raw)
	for n, ib := range raw.Interactions {
		field := fmt.Sprintf("interactions[%d]", n)
		var (
			i   *Interaction
			err error
		)
		if p.Spec >= V4 {
			i, err = parseV4Interaction(field, ib)
		} else {
			i, err = parseV3Interaction(field, ib, p.Spec)
		}
		if err != nil {
			return nil, err
		}
		p.Interactions = append(p.Interactions, i)
	}
	for n, mb := range raw.Messages {
		i, err := parseV3Message(fmt.Sprintf("messages[%d]", n), mb)
		if err != nil {
			return nil, err
		}
		p.Interactions = append(p.Interactions, i)
	}
	return p, nil
}

func specOf(raw rawPact) Spec {
	for _, k := range []string{"pactSpecification", "pact-specification"} {
		if v, ok := raw.Metadata[k]; ok {
			var s struct{ Version string }
			if json.Unmarshal(v, &s) == nil && s.Version != "" {
				return specFromVersion(s.Version)
			}
		}
	}
	if v, ok := raw.Metadata["pactSpecificationVersion"]; ok {
		var s string
		if json.Unmarshal(v, &s) == nil {
			return specFromVersion(s)
		}
	}
	for _, ib := range raw.Interactions {
		var t struct{ Type string }
		if json.Unmarshal(ib, &t) == nil && t.Type != "" {
			return V4
		}
	}
	if len(raw.Messages) > 0 {
		return V3
	}
	return V2
}

func specFromVersion(v string) Spec {
	switch {
	case strings.HasPrefix(v, "4"):
		return V4
	case strings.HasPrefix(v, "3"):
		return V3
	default:
		return V2
	}
}

type rawState struct {
	Name   string         `json:"name"`
	Params map[string]any `json:"params"`
}

type rawV3Interaction struct {
	Description    *string         `json:"description"`
	ProviderState  *string         `json:"providerState"`
	ProviderStates []rawState      `json:"providerStates"`
	Request        json.RawMessage `json:"request"`
	Response       json.RawMessage `json:"response"`
}

type rawHTTPPart struct {
	Method        string          `json:"method"`
	Path          *string         `json:"path"`
	Query         json.RawMessage `json:"query"`
	Headers       json.RawMessage `json:"headers"`
	Body          json.RawMessage `json:"body"`
	Status        *int            `json:"status"`
	MatchingRules json.RawMessage `json:"matchingRules"`
	Generators    json.RawMessage `json:"generators"`
}

func states(field string, single *string, many []rawState) ([]ProviderState, error) {
	var out []ProviderState
	if single != nil && *single != "" {
		out = append(out, ProviderState{Name: *single})
	}
	for n, s := range many {
		if s.Name == "" {
			return nil, perr(fmt.Sprintf("%s.providerStates[%d].name", field, n), "required")
		}
		out = append(out, ProviderState{Name: s.Name, Params: s.Params})
	}
	return out, nil
}

func parseV3Interaction(field string, b json.RawMessage, spec Spec) (*Interaction, error) {
	var r rawV3Interaction
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, perr(field, "%v", err)
	}
	if r.Description == nil {
		return nil, perr(field+".description", "required")
	}
	ps, err := states(field, r.ProviderState, r.ProviderStates)
	if err != nil {
		return nil, err
	}
	i := &Interaction{Type: TypeHTTP, Description: *r.Description, ProviderStates: ps}
	if i.Request, err = parseRequest(field+".request", r.Request, spec); err != nil {
		return nil, err
	}
	if i.Response, err = parseResponse(field+".response", r.Response, spec); err != nil {
		return nil, err
	}
	return i, nil
}

// parseRequest reads a request of any version; the body is V4's object
// form when spec is V4.
func parseRequest(field string, b json.RawMessage, spec Spec) (*Request, error) {
	if len(b) == 0 {
		return nil, perr(field, "required")
	}
	var r rawHTTPPart
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, perr(field, "%v", err)
	}
	req := &Request{Method: strings.ToUpper(r.Method), Path: "/"}
	if req.Method == "" {
		req.Method = "GET"
	}
	if r.Path != nil {
		req.Path = *r.Path
	}
	var err error
	if req.Query, err = parseQuery(field+".query", r.Query); err != nil {
		return nil, err
	}
	if req.Headers, err = parseHeaders(field+".headers", r.Headers); err != nil {
		return nil, err
	}
	if req.Body, err = parseBody(field+".body", r.Body, spec, req.Headers); err != nil {
		return nil, err
	}
	if req.Rules, err = parsePartRules(field+".matchingRules", r.MatchingRules, spec); err != nil {
		return nil, err
	}
	if req.Gens, err = parseGenerators(field+".generators", r.Generators); err != nil {
		return nil, err
	}
	return req, nil
}

func parseResponse(field string, b json.RawMessage, spec Spec) (*Response, error) {
	if len(b) == 0 {
		return nil, perr(field, "required")
	}
	var r rawHTTPPart
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, perr(field, "%v", err)
	}
	resp := &Response{Status: 200}
	if r.Status != nil {
		resp.Status = *r.Status
	}
	if resp.Status < 100 || resp.Status > 599 {
		return nil, perr(field+".status", "must be 100 to 599, not %d", resp.Status)
	}
	var err error
	if resp.Headers, err = parseHeaders(field+".headers", r.Headers); err != nil {
		return nil, err
	}
	if resp.Body, err = parseBody(field+".body", r.Body, spec, resp.Headers); err != nil {
		return nil, err
	}
	if resp.Rules, err = parsePartRules(field+".matchingRules", r.MatchingRules, spec); err != nil {
		return nil, err
	}
	if resp.Gens, err = parseGenerators(field+".generators", r.Generators); err != nil {
		return nil, err
	}
	return resp, nil
}

func parsePartRules(field string, b json.RawMessage, spec Spec) (Rules, error) {
	if len(b) == 0 || string(b) == "null" {
		return nil, nil
	}
	var (
		r   Rules
		err error
	)
	if spec <= V2 && v2Rules(b) {
		r, err = parseV2Rules(b)
	} else {
		r, err = parseRules(b)
	}
	if err != nil {
		return nil, perr(field, "%v", err)
	}
	n := 0
	for _, m := range r {
		n += len(m)
	}
	if n > maxRulesPerCategory {
		return nil, perr(field, "more than %d rules", maxRulesPerCategory)
	}
	return r, nil
}

// v2Rules reports whether the rule keys are V2's "$.body..." paths.
func v2Rules(b json.RawMessage) bool {
	var raw map[string]json.RawMessage
	if json.Unmarshal(b, &raw) != nil {
		return false
	}
	for k := range raw {
		if strings.HasPrefix(k, "$") {
			return true
		}
	}
	return false
}

func parseGenerators(field string, b json.RawMessage) (Generators, error) {
	if len(b) == 0 || string(b) == "null" {
		return nil, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, perr(field, "must be an object: %v", err)
	}
	out := make(Generators, len(raw))
	for cat, v := range raw {
		if cat == "path" || cat == "status" {
			var g Generator
			if err := json.Unmarshal(v, &g); err != nil {
				return nil, perr(field+"."+cat, "must be an object: %v", err)
			}
			if _, ok := g["type"].(string); !ok {
				return nil, perr(field+"."+cat+".type", "required")
			}
			out[cat] = map[string]Generator{"": g}
			continue
		}
		var m map[string]Generator
		if err := json.Unmarshal(v, &m); err != nil {
			return nil, perr(field+"."+cat, "must be an object of generators: %v", err)
		}
		for k, g := range m {
			if _, ok := g["type"].(string); !ok {
				return nil, perr(fmt.Sprintf("%s.%s[%q].type", field, cat, k), "required")
			}
		}
		out[cat] = m
	}
	return out, nil
}

func parseQuery(field string, b json.RawMessage) (Query, error) {
	if len(b) == 0 || string(b) == "null" {
		return nil, nil
	}
	var s string
	if json.Unmarshal(b, &s) == nil {
		// V2: the query string itself.
		v, err := url.ParseQuery(s)
		if err != nil {
			return nil, perr(field, "%v", err)
		}
		return Query(v), nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, perr(field, "must be an object of lists of strings")
	}
	q := make(Query, len(m))
	for k, v := range m {
		vals, err := stringOrList(v)
		if err != nil {
			return nil, perr(field+"."+k, "%v", err)
		}
		q[k] = vals
	}
	return q, nil
}

func stringOrList(b json.RawMessage) ([]string, error) {
	var s string
	if json.Unmarshal(b, &s) == nil {
		return []string{s}, nil
	}
	var l []any
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, errors.New("must be a string or a list of strings")
	}
	out := make([]string, 0, len(l))
	for _, x := range l {
		switch v := x.(type) {
		case string:
			out = append(out, v)
		case float64:
			out = append(out, strconv.FormatFloat(v, 'f', -1, 64))
		case bool:
			out = append(out, strconv.FormatBool(v))
		default:
			return nil, errors.New("must be a string or a list of strings")
		}
	}
	return out, nil
}

func parseHeaders(field string, b json.RawMessage) (Headers, error) {
	if len(b) == 0 || string(b) == "null" {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, perr(field, "must be an object")
	}
	h := make(Headers, len(m))
	for k, v := range m {
		vals, err := stringOrList(v)
		if err != nil {
			return nil, perr(field+"."+k, "%v", err)
		}
		h[k] = vals
	}
	return h, nil
}

// parseBody reads a body: V4's {contentType, encoded, content} object, or
// a V2/V3 JSON value (a string is text unless the content type is JSON).
func parseBody(field string, b json.RawMessage, spec Spec, h Headers) (Body, error) {
	if len(b) == 0 {
		return Body{}, nil
	}
	ct := ""
	if v, ok := h.Get("Content-Type"); ok && len(v) > 0 {
		ct = strings.Join(v, ", ")
	}
	if spec >= V4 {
		return parseV4Body(field, b, ct)
	}
	return valueBody(b, ct), nil
}

// valueBody turns a JSON value into a body of content type ct.
func valueBody(b json.RawMessage, ct string) Body {
	b = bytes.TrimSpace(b)
	if string(b) == `""` {
		return Body{Present: true, ContentType: ct}
	}
	if string(b) == "null" {
		if ct == "" || isJSONType(ct) {
			return Body{Present: true, ContentType: ct, Content: []byte("null")}
		}
		return Body{Present: true, ContentType: ct}
	}
	var s string
	if json.Unmarshal(b, &s) == nil && (ct == "" || !isJSONType(ct)) {
		return Body{Present: true, ContentType: ct, Content: []byte(s)}
	}
	if ct == "" {
		ct = "application/json"
	}
	return Body{Present: true, ContentType: ct, Content: append([]byte(nil), b...)}
}

func parseV4Body(field string, b json.RawMessage, headerCT string) (Body, error) {
	if string(bytes.TrimSpace(b)) == "null" {
		// A null body must be empty.
		return Body{Present: true, ContentType: headerCT}, nil
	}
	if !bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) || !hasKey(b, "content") {
		// Not V4's form: read it as a V3 value (robustness principle).
		return valueBody(b, headerCT), nil
	}
	var r struct {
		ContentType string          `json:"contentType"`
		Encoded     any             `json:"encoded"`
		Content     json.RawMessage `json:"content"`
		Hint        string          `json:"contentTypeHint"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return Body{}, perr(field, "must be an object with content: %v", err)
	}
	ct := r.ContentType
	if ct == "" {
		ct = headerCT
	}
	body := Body{Present: true, ContentType: ct, TypeHint: r.Hint}
	if len(r.Content) == 0 {
		return Body{}, nil // {"content": absent} says nothing about the body
	}
	enc := ""
	switch e := r.Encoded.(type) {
	case nil, bool:
	case string:
		enc = strings.ToLower(e)
	default:
		return Body{}, perr(field+".encoded", "must be false or a string")
	}
	switch enc {
	case "":
		vb := valueBody(r.Content, ct)
		vb.TypeHint = r.Hint
		if vb.ContentType == "" {
			vb.ContentType = r.ContentType
		}
		return vb, nil
	case "base64":
		var s string
		if err := json.Unmarshal(r.Content, &s); err != nil {
			return Body{}, perr(field+".content", "must be a string when encoded is base64")
		}
		dec, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return Body{}, perr(field+".content", "not base64: %v", err)
		}
		body.Content = dec
	case "json":
		var s string
		if err := json.Unmarshal(r.Content, &s); err != nil {
			return Body{}, perr(field+".content", "must be a string when encoded is JSON")
		}
		if !json.Valid([]byte(s)) {
			return Body{}, perr(field+".content", "encoded is JSON but the content is not valid JSON")
		}
		body.Content = []byte(s)
		if body.ContentType == "" {
			body.ContentType = "application/json"
		}
	default:
		return Body{}, perr(field+".encoded", "unknown encoding %q (want false, base64 or JSON)", enc)
	}
	return body, nil
}

type rawV4Interaction struct {
	Type           string          `json:"type"`
	Description    *string         `json:"description"`
	Key            string          `json:"key"`
	ProviderStates []rawState      `json:"providerStates"`
	Pending        bool            `json:"pending"`
	Request        json.RawMessage `json:"request"`
	Response       json.RawMessage `json:"response"`
	Contents       json.RawMessage `json:"contents"`
	Metadata       map[string]any  `json:"metadata"`
	MatchingRules  json.RawMessage `json:"matchingRules"`
	Generators     json.RawMessage `json:"generators"`
}

var v4Known = map[string]bool{"type": true, "description": true, "key": true, "providerStates": true, "pending": true,
	"request": true, "response": true, "contents": true, "metadata": true, "matchingRules": true, "generators": true}

func parseV4Interaction(field string, b json.RawMessage) (*Interaction, error) {
	var r rawV4Interaction
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, perr(field, "%v", err)
	}
	if r.Description == nil {
		return nil, perr(field+".description", "required")
	}
	ps, err := states(field, nil, r.ProviderStates)
	if err != nil {
		return nil, err
	}
	i := &Interaction{Type: r.Type, Description: *r.Description, Key: r.Key, ProviderStates: ps, Pending: r.Pending}
	var all map[string]json.RawMessage
	_ = json.Unmarshal(b, &all)
	switch r.Type {
	case TypeHTTP:
		if i.Request, err = parseRequest(field+".request", r.Request, V4); err != nil {
			return nil, err
		}
		if i.Response, err = parseResponse(field+".response", r.Response, V4); err != nil {
			return nil, err
		}
	case TypeMessage:
		m := &Message{Metadata: r.Metadata}
		if m.Contents, err = parseV4Body(field+".contents", r.Contents, metaContentType(r.Metadata)); err != nil {
			return nil, err
		}
		if m.Rules, err = parsePartRules(field+".matchingRules", r.MatchingRules, V4); err != nil {
			return nil, err
		}
		m.Rules = messageRules(m.Rules)
		if m.Gens, err = parseGenerators(field+".generators", r.Generators); err != nil {
			return nil, err
		}
		i.Message = m
	case TypeSyncMessage:
		// Kept as read (request and response in Extra); verification
		// reports it as not supported.
		for k, v := range all {
			if k == "request" || k == "response" {
				if i.Extra == nil {
					i.Extra = map[string]json.RawMessage{}
				}
				i.Extra[k] = v
			}
		}
	case "":
		return nil, perr(field+".type", "required in a V4 pact")
	default:
		return nil, perr(field+".type", "unknown interaction type %q", r.Type)
	}
	for k, v := range all {
		if !v4Known[k] {
			if i.Extra == nil {
				i.Extra = map[string]json.RawMessage{}
			}
			i.Extra[k] = v
		}
	}
	return i, nil
}

// messageRules keeps a message's body rules under "content", whatever
// the file called them.
func messageRules(r Rules) Rules {
	if b, ok := r["body"]; ok {
		if r["content"] == nil {
			r["content"] = b
		} else {
			for k, v := range b {
				r["content"][k] = v
			}
		}
		delete(r, "body")
	}
	return r
}

func metaContentType(m map[string]any) string {
	for _, k := range []string{"contentType", "content-type", "Content-Type", "contenttype", "datacontenttype"} {
		if s, ok := m[k].(string); ok && s != "" {
			return s
		}
	}
	return ""
}

type rawV3Message struct {
	Description    *string         `json:"description"`
	ProviderState  *string         `json:"providerState"`
	ProviderStates []rawState      `json:"providerStates"`
	Contents       json.RawMessage `json:"contents"`
	MetaData       map[string]any  `json:"metaData"`
	Metadata       map[string]any  `json:"metadata"`
	MatchingRules  json.RawMessage `json:"matchingRules"`
	Generators     json.RawMessage `json:"generators"`
}

func parseV3Message(field string, b json.RawMessage) (*Interaction, error) {
	var r rawV3Message
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, perr(field, "%v", err)
	}
	if r.Description == nil {
		return nil, perr(field+".description", "required")
	}
	ps, err := states(field, r.ProviderState, r.ProviderStates)
	if err != nil {
		return nil, err
	}
	md := r.Metadata
	if md == nil {
		md = r.MetaData
	}
	m := &Message{Metadata: md}
	if len(r.Contents) > 0 {
		m.Contents = valueBody(r.Contents, metaContentType(md))
	}
	if m.Rules, err = parsePartRules(field+".matchingRules", r.MatchingRules, V3); err != nil {
		return nil, err
	}
	m.Rules = messageRules(m.Rules)
	if m.Gens, err = parseGenerators(field+".generators", r.Generators); err != nil {
		return nil, err
	}
	return &Interaction{Type: TypeMessage, Description: *r.Description, ProviderStates: ps, Message: m}, nil
}

// Version is handoff's version written into pact files' metadata.
const Version = "0.1.0"

// Marshal writes p as a pact file of p.Spec: V3 (HTTP interactions, or
// only messages) or V4 (both). A V3 pact cannot hold HTTP interactions and
// messages together: Marshal refuses, naming V4.
func (p *Pact) Marshal() ([]byte, error) {
	spec := p.Spec
	if spec < V3 {
		spec = V3
	}
	md := map[string]any{}
	for k, v := range p.Metadata {
		md[k] = v
	}
	md["pactSpecification"] = map[string]string{"version": spec.String()}
	md[implementationKey] = map[string]string{"version": Version}
	out := struct {
		Consumer     map[string]string `json:"consumer"`
		Provider     map[string]string `json:"provider"`
		Interactions []any             `json:"interactions,omitempty"`
		Messages     []any             `json:"messages,omitempty"`
		Metadata     map[string]any    `json:"metadata"`
	}{Consumer: map[string]string{"name": p.Consumer}, Provider: map[string]string{"name": p.Provider}, Metadata: md}
	if spec == V3 {
		var http, msgs int
		for _, i := range p.Interactions {
			if i.Type == TypeHTTP {
				http++
			} else {
				msgs++
			}
		}
		if http > 0 && msgs > 0 {
			return nil, errors.New("contract: a V3 pact holds HTTP interactions or messages, not both: write it as V4")
		}
		for _, i := range p.Interactions {
			if err := v3Representable(i); err != nil {
				return nil, err
			}
			switch i.Type {
			case TypeHTTP:
				out.Interactions = append(out.Interactions, v3Interaction(i))
			case TypeMessage:
				out.Messages = append(out.Messages, v3Message(i))
			default:
				return nil, fmt.Errorf("contract: interaction %q of type %s needs a V4 pact", i.Description, i.Type)
			}
		}
		if out.Interactions == nil && out.Messages == nil {
			out.Interactions = []any{}
		}
	} else {
		out.Interactions = []any{}
		for _, i := range p.Interactions {
			out.Interactions = append(out.Interactions, v4Interaction(i))
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func statesJSON(ps []ProviderState) []ProviderState {
	if len(ps) == 0 {
		return nil
	}
	return ps
}

func v3Interaction(i *Interaction) map[string]any {
	m := map[string]any{"description": i.Description}
	if ps := statesJSON(i.ProviderStates); ps != nil {
		m["providerStates"] = ps
	}
	req := map[string]any{"method": i.Request.Method, "path": i.Request.Path}
	if len(i.Request.Query) > 0 {
		req["query"] = i.Request.Query
	}
	if len(i.Request.Headers) > 0 {
		req["headers"] = joinHeaders(i.Request.Headers)
	}
	if i.Request.Body.Present {
		req["body"] = v3Body(i.Request.Body)
	}
	addRules(req, i.Request.Rules, i.Request.Gens, "")
	m["request"] = req
	resp := map[string]any{"status": i.Response.Status}
	if len(i.Response.Headers) > 0 {
		resp["headers"] = joinHeaders(i.Response.Headers)
	}
	if i.Response.Body.Present {
		resp["body"] = v3Body(i.Response.Body)
	}
	addRules(resp, i.Response.Rules, i.Response.Gens, "")
	m["response"] = resp
	return m
}

func v3Message(i *Interaction) map[string]any {
	m := map[string]any{"description": i.Description}
	if ps := statesJSON(i.ProviderStates); ps != nil {
		m["providerStates"] = ps
	}
	msg := i.Message
	if msg.Contents.Present {
		m["contents"] = v3Body(msg.Contents)
	}
	md := msg.Metadata
	if md == nil {
		md = map[string]any{}
	}
	m["metadata"] = md
	addRules(m, msg.Rules, msg.Gens, "body")
	return m
}

// addRules writes rules and generators into part; content renames a
// message's "content" category (V3 calls it "body").
func addRules(part map[string]any, r Rules, g Generators, content string) {
	if len(r) > 0 {
		out := map[string]any{}
		for cat, m := range r {
			name := cat
			if cat == "content" && content != "" {
				name = content
			}
			if singleCategory(cat) {
				out[name] = m[""]
			} else {
				out[name] = m
			}
		}
		part["matchingRules"] = out
	}
	if len(g) > 0 {
		out := map[string]any{}
		for cat, m := range g {
			name := cat
			if cat == "content" && content != "" {
				name = content
			}
			if cat == "path" || cat == "status" {
				out[name] = m[""]
			} else {
				out[name] = m
			}
		}
		part["generators"] = out
	}
}

func joinHeaders(h Headers) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[k] = strings.Join(v, ", ")
	}
	return out
}

// v3Body is the body as a V3 JSON value: the JSON itself, or a string.
func v3Body(b Body) any {
	if (b.ContentType == "" || isJSONType(b.ContentType)) && json.Valid(b.Content) && len(bytes.TrimSpace(b.Content)) > 0 {
		return json.RawMessage(b.Content)
	}
	return string(b.Content)
}

// v4Body is the body in V4's object form.
func v4Body(b Body) map[string]any {
	ct := b.ContentType
	out := map[string]any{}
	switch {
	case (ct == "" || isJSONType(ct)) && len(bytes.TrimSpace(b.Content)) > 0 && json.Valid(b.Content):
		if ct == "" {
			ct = "application/json"
		}
		out["content"] = json.RawMessage(b.Content)
		out["encoded"] = false
	case isText(b):
		out["content"] = string(b.Content)
		out["encoded"] = false
	default:
		out["content"] = base64.StdEncoding.EncodeToString(b.Content)
		out["encoded"] = "base64"
	}
	if ct != "" {
		out["contentType"] = ct
	}
	if b.TypeHint != "" {
		out["contentTypeHint"] = b.TypeHint
	}
	return out
}

func isText(b Body) bool {
	if b.TypeHint == "BINARY" {
		return false
	}
	if b.TypeHint == "TEXT" {
		return true
	}
	mt := mediaType(b.ContentType)
	if strings.HasPrefix(mt, "text/") || isJSONType(mt) || isXMLType(mt) || mt == "application/x-www-form-urlencoded" || mt == "" {
		for _, c := range b.Content {
			if c < 0x09 || c == 0x7f {
				return false
			}
		}
		return isUTF8(b.Content)
	}
	return false
}

func v4Interaction(i *Interaction) map[string]any {
	m := map[string]any{"type": i.Type, "description": i.Description}
	for k, v := range i.Extra {
		m[k] = v
	}
	key := i.Key
	if key == "" {
		h := sha256.Sum256([]byte(i.key()))
		key = hex.EncodeToString(h[:8])
	}
	m["key"] = key
	m["pending"] = i.Pending
	if ps := statesJSON(i.ProviderStates); ps != nil {
		m["providerStates"] = ps
	}
	switch i.Type {
	case TypeHTTP:
		req := map[string]any{"method": i.Request.Method, "path": i.Request.Path}
		if len(i.Request.Query) > 0 {
			req["query"] = i.Request.Query
		}
		if len(i.Request.Headers) > 0 {
			req["headers"] = i.Request.Headers
		}
		if i.Request.Body.Present {
			req["body"] = v4Body(i.Request.Body)
		}
		addRules(req, i.Request.Rules, i.Request.Gens, "")
		m["request"] = req
		resp := map[string]any{"status": i.Response.Status}
		if len(i.Response.Headers) > 0 {
			resp["headers"] = i.Response.Headers
		}
		if i.Response.Body.Present {
			resp["body"] = v4Body(i.Response.Body)
		}
		addRules(resp, i.Response.Rules, i.Response.Gens, "")
		m["response"] = resp
	case TypeMessage:
		msg := i.Message
		if msg.Contents.Present {
			m["contents"] = v4Body(msg.Contents)
		}
		md := msg.Metadata
		if md == nil {
			md = map[string]any{}
		}
		m["metadata"] = md
		addRules(m, msg.Rules, msg.Gens, "")
	}
	return m
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// parseMessagePart reads a message's contents, metadata, rules and
// generators (the fields a V3 message and a V4 interaction share).
func parseMessagePart(field string, b json.RawMessage, spec Spec) (*Message, error) {
	var r rawV3Message
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, perr(field, "%v", err)
	}
	md := r.Metadata
	if md == nil {
		md = r.MetaData
	}
	m := &Message{Metadata: md}
	var err error
	if len(r.Contents) > 0 {
		if spec >= V4 {
			if m.Contents, err = parseV4Body(field+".contents", r.Contents, metaContentType(md)); err != nil {
				return nil, err
			}
		} else {
			m.Contents = valueBody(r.Contents, metaContentType(md))
		}
	}
	if m.Rules, err = parsePartRules(field+".matchingRules", r.MatchingRules, spec); err != nil {
		return nil, err
	}
	m.Rules = messageRules(m.Rules)
	if m.Gens, err = parseGenerators(field+".generators", r.Generators); err != nil {
		return nil, err
	}
	return m, nil
}

func hasKey(b []byte, k string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return false
	}
	_, ok := m[k]
	return ok
}

// jsonMarshal is json.Marshal without HTML escaping.
func jsonMarshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// v3Representable refuses bodies a V3 file cannot hold: V3 bodies are JSON
// values or text, so binary content needs V4.
func v3Representable(i *Interaction) error {
	var bodies []Body
	switch {
	case i.Request != nil:
		bodies = []Body{i.Request.Body, i.Response.Body}
	case i.Message != nil:
		bodies = []Body{i.Message.Contents}
	}
	for _, b := range bodies {
		if b.Present && !isUTF8(b.Content) {
			return fmt.Errorf("contract: interaction %q has a binary body, which a V3 pact cannot hold: write it as V4", i.Description)
		}
	}
	return nil
}
