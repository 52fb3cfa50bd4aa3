package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/handoffhq/handoff/schema"
)

// --- registering: the candidate (its parse, content hash and references) ---

// request is the body of a registration, look-up or compatibility check.
// Other fields are accepted and ignored.
type request struct {
	Schema     string          `json:"schema"`
	SchemaType string          `json:"schemaType"`
	References []Reference     `json:"references"`
	Metadata   json.RawMessage `json:"metadata"`
	RuleSet    json.RawMessage `json:"ruleSet"`
	ID         int             `json:"id"`
	Version    int             `json:"version"`
}

// candidate is a request's schema with its references resolved and its
// content hash; it is parsed only when needed (a schema registered already
// is recognised by its hash).
type candidate struct {
	req    request
	typ    schema.Type
	draft  schema.Draft
	refs   map[string]string
	canon  string
	hash   string
	parsed *schema.Parsed
}

func (s *Server) candidate(ctx context.Context, r *http.Request) (*candidate, error) {
	var req request
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	return s.parseCandidate(ctx, req)
}

func (s *Server) parseCandidate(ctx context.Context, req request) (*candidate, error) {
	if strings.TrimSpace(req.Schema) == "" {
		return nil, errf(CodeInvalidSchema, "Invalid schema: field \"schema\" must not be empty")
	}
	typ, err := schema.ParseType(req.SchemaType)
	if err != nil {
		return nil, errf(CodeInvalidSchema, "Invalid schema: field \"schemaType\" must be one of AVRO, JSON, PROTOBUF, got %q", req.SchemaType)
	}
	if i := strings.IndexByte(req.Schema, 0); i >= 0 {
		return nil, errf(CodeInvalidSchema, "Invalid schema: field \"schema\" has a NUL character at byte %d", i)
	}
	if err := validMetadata(req.Metadata); err != nil {
		return nil, err
	}
	if err := validRuleSet(req.RuleSet); err != nil {
		return nil, err
	}
	for i, ref := range req.References {
		if err := validSubject(ref.Subject); err != nil && ref.Subject != "" {
			return nil, errf(CodeInvalidSchema, "Invalid schema: references[%d].subject: %s", i, err.Message)
		}
		switch {
		case ref.Name == "":
			return nil, errf(CodeInvalidSchema, "Invalid schema: references[%d].name must not be empty", i)
		case ref.Subject == "":
			return nil, errf(CodeInvalidSchema, "Invalid schema: references[%d].subject must not be empty", i)
		case ref.Version != -1 && ref.Version < 1:
			return nil, errf(CodeInvalidSchema, "Invalid schema: references[%d].version must be -1 (latest) or at least 1, got %d", i, ref.Version)
		}
	}
	refs, resolved, err := s.resolve(ctx, s.store, req.References)
	if err != nil {
		return nil, err
	}
	req.References = resolved
	c := &candidate{req: req, typ: typ, draft: s.draft, refs: refs}
	if c.canon, err = schema.Canonical(typ, req.Schema); err != nil {
		// Not even JSON: parse to say exactly why.
		return nil, s.parse(ctx, c)
	}
	c.rehash()
	return c, nil
}

// rehash computes the content hash from the canonical text, the resolved
// references, the metadata and the rule set.
func (c *candidate) rehash() {
	c.hash = hashOf(c.typ, c.canon, c.req.References, c.req.Metadata, c.req.RuleSet)
}

// parseHooks let tests see a parse wait, give up and start.
type parseHooks struct {
	waiting, gaveUp, parsing func()
}

// retryAfterSeconds is the Retry-After of a 429: a parse within the
// default limits takes about a second at most.
const retryAfterSeconds = 1

// parseSlot takes a parse slot: at once when one is free, after a wait
// when a waiting place is free (giving up when ctx ends), else a 429.
func (s *Server) parseSlot(ctx context.Context) (release func(), err error) {
	select {
	case s.admit <- struct{}{}:
	default:
		return nil, &Error{Code: CodeTooManyRequests, Message: fmt.Sprintf(
			"Too many schemas being parsed: %d running and %d waiting; retry after %d s", cap(s.run), cap(s.admit)-cap(s.run), retryAfterSeconds),
			retryAfter: retryAfterSeconds}
	}
	select {
	case s.run <- struct{}{}:
	default:
		if s.hooks.waiting != nil {
			s.hooks.waiting()
		}
		select {
		case s.run <- struct{}{}:
		case <-ctx.Done():
			<-s.admit
			if s.hooks.gaveUp != nil {
				s.hooks.gaveUp()
			}
			return nil, ctx.Err()
		}
	}
	release = func() { <-s.run; <-s.admit }
	if err := ctx.Err(); err != nil {
		release()
		if s.hooks.gaveUp != nil {
			s.hooks.gaveUp()
		}
		return nil, err
	}
	return release, nil
}

// parse parses the candidate, once, in a parse slot, under the server's
// limits and ctx; a schema that does not parse, or is over a limit, is a
// 42201 naming where and why.
func (s *Server) parse(ctx context.Context, c *candidate) error {
	if c.parsed != nil {
		return nil
	}
	release, err := s.parseSlot(ctx)
	if err != nil {
		return err
	}
	defer release()
	s.parses.Add(1)
	if s.hooks.parsing != nil {
		s.hooks.parsing()
	}
	p, err := schema.ParseContext(ctx, schema.Schema{Type: c.typ, Text: c.req.Schema, References: c.refs, DefaultDraft: c.draft}, s.limits)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return errf(CodeInvalidSchema, "Invalid schema: %s", strings.TrimPrefix(err.Error(), "schema: "))
	}
	c.parsed = p
	return nil
}

// guidOf derives a schema's GUID from its content hash (a version 8 UUID),
// so every registry holding one schema gives it one GUID.
func guidOf(hash string) string {
	b, err := hex.DecodeString(hash)
	if err != nil || len(b) < 16 {
		sum := sha256.Sum256([]byte(hash))
		b = sum[:]
	}
	var u [16]byte
	copy(u[:], b)
	u[6] = u[6]&0x0f | 0x80
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func hashOf(t schema.Type, canonical string, refs []Reference, md, rules json.RawMessage) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", t, canonical)
	for _, r := range refs {
		fmt.Fprintf(h, "%s\x01%s\x01%d\x00", r.Name, r.Subject, r.Version)
	}
	h.Write([]byte{0})
	h.Write(compactJSON(md))
	h.Write([]byte{0})
	h.Write(compactJSON(rules))
	return hex.EncodeToString(h.Sum(nil))
}

func compactJSON(b json.RawMessage) []byte {
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return b
	}
	return buf.Bytes()
}

// reader is what resolving and checking read: the store, or the
// transaction of a registration (so that it never needs a second
// connection while holding one).
type reader interface {
	Versions(ctx context.Context, subject string) ([]VersionRow, error)
	Schema(ctx context.Context, id int) (StoredSchema, error)
}

// maxReferences bounds the distinct schema versions one schema may
// reference, directly or not: the limits' MaxReferences.
func (s *Server) maxReferences() int {
	if s.limits.MaxReferences == 0 {
		return schema.DefaultLimits.MaxReferences
	}
	return s.limits.MaxReferences
}

// resolve loads the referenced versions (latest for -1) and, breadth first,
// their own references, as the name → text map the schema package takes;
// each (subject, version) is read once, and where two references share a
// name the shallower one wins. It returns refs with -1 replaced by the
// version found.
func (s *Server) resolve(ctx context.Context, rd reader, refs []Reference) (map[string]string, []Reference, error) {
	if len(refs) == 0 {
		return nil, nil, nil
	}
	maxRefs := s.maxReferences()
	if maxRefs >= 0 && len(refs) > maxRefs {
		return nil, nil, errf(CodeInvalidSchema, "Invalid schema: %d references, more than the limit MaxReferences=%d", len(refs), maxRefs)
	}
	type node struct {
		subject string
		version int
	}
	out := map[string]string{}
	resolved := make([]Reference, len(refs))
	seen := map[node]bool{}
	level := refs
	for depth := 0; len(level) > 0; depth++ {
		if depth > 32 {
			return nil, nil, errf(CodeInvalidSchema, "Invalid schema: references nest deeper than 32 levels")
		}
		var next []Reference
		for i, ref := range level {
			rows, err := rd.Versions(ctx, ref.Subject)
			if err != nil {
				return nil, nil, err
			}
			v, err := findVersion(ref.Subject, rows, strconv.Itoa(ref.Version), false)
			if err != nil {
				return nil, nil, errf(CodeInvalidSchema, "Invalid schema: reference %q: subject %q version %d not found", ref.Name, ref.Subject, ref.Version)
			}
			if depth == 0 {
				resolved[i] = Reference{Name: ref.Name, Subject: ref.Subject, Version: v.Version}
			}
			e, err := s.entry(ctx, v.SchemaID, rd.Schema)
			if err != nil {
				return nil, nil, err
			}
			if prev, ok := out[ref.Name]; !ok {
				out[ref.Name] = e.stored.Text
			} else if depth == 0 && prev != e.stored.Text {
				return nil, nil, errf(CodeInvalidSchema, "Invalid schema: two references named %q name different schemas", ref.Name)
			}
			k := node{ref.Subject, v.Version}
			if seen[k] {
				continue
			}
			seen[k] = true
			if maxRefs >= 0 && len(seen) > maxRefs {
				return nil, nil, errf(CodeInvalidSchema, "Invalid schema: references reach more than %d schema versions, the limit MaxReferences", maxRefs)
			}
			next = append(next, e.stored.References...)
		}
		level = next
	}
	return out, resolved, nil
}

// parsedOf returns the parsed form of a stored schema, parsing it once.
func (s *Server) parsedOf(ctx context.Context, rd reader, e *entry) (*schema.Parsed, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.parsed != nil {
		return e.parsed, nil
	}
	typ, err := schema.ParseType(e.stored.Type)
	if err != nil {
		return nil, err
	}
	refs, _, err := s.resolve(ctx, rd, e.stored.References)
	if err != nil {
		return nil, err
	}
	// Accepted earlier, perhaps under other limits: read without them.
	p, err := schema.ParseContext(ctx, schema.Schema{Type: typ, Text: e.stored.Text, References: refs, DefaultDraft: s.draft}, schema.NoLimits)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("registry: stored schema %d no longer parses: %w", e.stored.ID, err)
	}
	e.parsed = p
	return p, nil
}
