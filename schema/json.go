package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// JSON Schema support.
//
// Parsing and validation use santhosh-tekuri/jsonschema. A schema without
// $schema is read as Schema.DefaultDraft (draft-07 unless set, as
// Confluent's registry reads it); $schema chooses draft-04, -06, -07,
// 2019-09 or 2020-12. $ref resolves only to
// the schema's own document and to Schema.References: nothing is ever loaded
// from the network or the file system. "format" is asserted in every draft
// (for the formats the library knows), so a payload that breaks a format
// fails validation and a reader that adds or changes a format breaks
// compatibility.
//
// The compatibility rules (compat) are handoff's own and are documented in
// rules-json.md.

// jsonBaseURL is the URL the schema document is compiled under; relative
// $ref URLs resolve against it (or against the document's $id).
const jsonBaseURL = "https://handoff.invalid/schema.json"

type jsonSchema struct {
	canon string
	root  *jsonschema.Schema
}

func parseJSON(s Schema) (parsed, error) {
	doc, err := decodeJSON([]byte(s.Text))
	if err != nil {
		return nil, &ParseError{Type: JSON, Reason: "not a JSON document: " + err.Error()}
	}
	var canon bytes.Buffer
	if err := json.Compact(&canon, []byte(s.Text)); err != nil {
		return nil, &ParseError{Type: JSON, Reason: "not a JSON document: " + err.Error()}
	}
	draft, err := ParseDraft(string(s.DefaultDraft))
	if err != nil {
		return nil, &ParseError{Type: JSON, Reason: "DefaultDraft: " + err.Error()}
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonDrafts[draft])
	c.AssertFormat()
	c.UseLoader(&refLoader{refs: s.References})
	if err := c.AddResource(jsonBaseURL, doc); err != nil {
		return nil, &ParseError{Type: JSON, Reason: err.Error()}
	}
	root, err := c.Compile(jsonBaseURL)
	if err != nil {
		return nil, jsonParseError(err)
	}
	return &jsonSchema{canon: canon.String(), root: root}, nil
}

var jsonDrafts = map[Draft]*jsonschema.Draft{
	Draft4:    jsonschema.Draft4,
	Draft6:    jsonschema.Draft6,
	Draft7:    jsonschema.Draft7,
	Draft2019: jsonschema.Draft2019,
	Draft2020: jsonschema.Draft2020,
}

// decodeJSON reads exactly one JSON value, keeping numbers exact.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the top-level value")
	}
	return v, nil
}

// refLoader serves $ref URLs from the schema's references only.
type refLoader struct {
	refs map[string]string
}

func (l *refLoader) Load(u string) (any, error) {
	text, ok := l.lookup(u)
	if !ok {
		return nil, errors.New("not among the schema's references (nothing is loaded from the network or files)")
	}
	doc, err := decodeJSON([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("the reference is not a JSON document: %w", err)
	}
	return doc, nil
}

// lookup finds the reference named u: by exact name, by name resolved
// against the base URL, then by a relative name that ends u's path (so a
// reference named "address.json" serves $ref "address.json" from a document
// whose $id is https://example.com/schemas/order.json).
func (l *refLoader) lookup(u string) (string, bool) {
	if t, ok := l.refs[u]; ok {
		return t, true
	}
	base, _ := url.Parse(jsonBaseURL)
	names := make([]string, 0, len(l.refs))
	for k := range l.refs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		ku, err := url.Parse(k)
		if err != nil {
			continue
		}
		ku.Fragment = ""
		if base.ResolveReference(ku).String() == u {
			return l.refs[k], true
		}
	}
	for _, k := range names {
		ku, err := url.Parse(k)
		if err != nil || ku.IsAbs() {
			continue
		}
		rel := strings.TrimPrefix(ku.Path, "./")
		if rel != "" && (u == rel || strings.HasSuffix(u, "/"+rel)) {
			return l.refs[k], true
		}
	}
	return "", false
}

// jsonParseError turns a compiler error into a *ParseError with a JSON
// pointer into the schema document where the library says where.
func jsonParseError(err error) *ParseError {
	pe := &ParseError{Type: JSON, Reason: err.Error()}
	var (
		sve *jsonschema.SchemaValidationError
		rxe *jsonschema.InvalidRegexError
		jpe *jsonschema.JSONPointerNotFoundError
		ane *jsonschema.AnchorNotFoundError
		lue *jsonschema.LoadURLError
		ude *jsonschema.UnsupportedDraftError
		mse *jsonschema.InvalidMetaSchemaURLError
		ide *jsonschema.DuplicateIDError
		ade *jsonschema.DuplicateAnchorError
		pie *jsonschema.ParseIDError
		pae *jsonschema.ParseAnchorError
		jfe *jsonschema.InvalidJsonPointerError
	)
	switch {
	case errors.As(err, &sve):
		pe.Location = urlPointer(sve.URL)
		var ve *jsonschema.ValidationError
		if errors.As(sve.Err, &ve) {
			leaf := deepestLeaf(ve)
			loc := jsonPointer(leaf.InstanceLocation)
			if !strings.HasPrefix(sve.URL, jsonBaseURL) {
				loc = strings.TrimSuffix(sve.URL, "#") + "#" + loc
			}
			pe.Location = loc
			pe.Reason = fmt.Sprintf("breaks the meta-schema's %q rule: %s", errorKeyword(leaf.ErrorKind), leaf.ErrorKind.LocalizedString(printer))
		}
	case errors.As(err, &rxe):
		pe.Location = urlPointer(rxe.URL)
		pe.Reason = fmt.Sprintf("pattern %q is not a valid regular expression: %v", rxe.Regex, rxe.Err)
	case errors.As(err, &jpe):
		pe.Reason = fmt.Sprintf("$ref target %q not found", jpe.URL)
	case errors.As(err, &jfe):
		pe.Reason = fmt.Sprintf("$ref %q is not a valid JSON pointer", jfe.URL)
	case errors.As(err, &ane):
		pe.Reason = fmt.Sprintf("$ref %q: anchor not found", ane.Reference)
	case errors.As(err, &lue):
		pe.Reason = fmt.Sprintf("$ref %q cannot be resolved: %v", lue.URL, lue.Err)
	case errors.As(err, &ude):
		pe.Location = urlPointer(ude.URL)
		pe.Reason = "$schema names a draft that is not supported (use draft-04, draft-06, draft-07, 2019-09 or 2020-12)"
	case errors.As(err, &mse):
		pe.Location = urlPointer(mse.URL)
		pe.Reason = fmt.Sprintf("$schema is not a valid URL: %v", mse.Err)
	case errors.As(err, &ide):
		pe.Location = ide.Ptr2
		pe.Reason = fmt.Sprintf("$id %q is used twice (also at %s)", ide.ID, ide.Ptr1)
	case errors.As(err, &ade):
		pe.Location = ade.Ptr2
		pe.Reason = fmt.Sprintf("anchor %q is used twice (also at %s)", ade.Anchor, ade.Ptr1)
	case errors.As(err, &pie):
		pe.Location = urlPointer(pie.URL)
		pe.Reason = "$id is not a valid URI reference"
	case errors.As(err, &pae):
		pe.Location = urlPointer(pae.URL)
		pe.Reason = "anchor is not valid"
	}
	return pe
}

// urlPointer returns the JSON pointer of a location in the schema document,
// or the whole URL for a location in a referenced document.
func urlPointer(u string) string {
	doc, frag, _ := strings.Cut(u, "#")
	if f, err := url.PathUnescape(frag); err == nil {
		frag = f
	}
	if doc == jsonBaseURL {
		return frag
	}
	// A referenced document compiled under the invented base shows as
	// the relative name its $ref used (address.json), not the base's URL.
	doc = strings.TrimPrefix(doc, jsonBaseURL[:strings.LastIndex(jsonBaseURL, "/")+1])
	if frag == "" {
		return doc
	}
	return doc + "#" + frag
}

var printer = message.NewPrinter(language.English)

func (j *jsonSchema) canonical() string { return j.canon }

func (j *jsonSchema) validate(payload []byte) error {
	v, err := decodeJSON(payload)
	if err != nil {
		return &ValidationError{Rule: "json", Reason: "payload is not a JSON document: " + err.Error()}
	}
	err = j.root.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return &ValidationError{Rule: "schema", Reason: err.Error()}
	}
	leaf := deepestLeaf(ve)
	return &ValidationError{
		Path:   jsonPointer(leaf.InstanceLocation),
		Rule:   errorKeyword(leaf.ErrorKind),
		Reason: leaf.ErrorKind.LocalizedString(printer),
	}
}

// deepestLeaf returns the failure with the longest instance location, the
// first such in the library's order.
func deepestLeaf(ve *jsonschema.ValidationError) *jsonschema.ValidationError {
	best := ve
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			if best == ve || len(e.InstanceLocation) > len(best.InstanceLocation) {
				best = e
			}
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return best
}

// errorKeyword names the keyword that failed.
func errorKeyword(k jsonschema.ErrorKind) string {
	switch k.(type) {
	case *kind.FalseSchema:
		return "false"
	case *kind.Dependency:
		return "dependencies"
	case *kind.Group, *kind.Schema:
		return "schema"
	case *kind.Not:
		return "not"
	}
	if p := k.KeywordPath(); len(p) > 0 {
		return p[0]
	}
	return "schema"
}

func jsonPointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(escapePointer(t))
	}
	return b.String()
}

func escapePointer(t string) string {
	t = strings.ReplaceAll(t, "~", "~0")
	return strings.ReplaceAll(t, "/", "~1")
}

func (j *jsonSchema) compat(writer parsed) []Violation {
	w, ok := writer.(*jsonSchema)
	if !ok {
		return []Violation{{Rule: RuleSchemaTypeChanged, Message: "writer schema is not a JSON Schema"}}
	}
	c := newJSONCompat()
	return c.run(w.root, j.root)
}
