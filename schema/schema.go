package schema

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Type is a schema language, named as the Confluent registry names it.
type Type string

// The schema languages.
const (
	Avro     Type = "AVRO"
	JSON     Type = "JSON"
	Protobuf Type = "PROTOBUF"
)

// Types lists the supported schema languages.
var Types = []Type{Avro, JSON, Protobuf}

// ParseType reads a schema type as the registry API spells it. The empty
// string means AVRO, as in Confluent's API.
func ParseType(s string) (Type, error) {
	switch strings.ToUpper(s) {
	case "", "AVRO":
		return Avro, nil
	case "JSON":
		return JSON, nil
	case "PROTOBUF":
		return Protobuf, nil
	}
	return "", fmt.Errorf("%w: schemaType %q: must be one of AVRO, JSON, PROTOBUF", ErrInvalidSchema, s)
}

// Level is a compatibility level.
type Level string

// The compatibility levels, as in Confluent's registry. BACKWARD means a
// consumer on the new schema can read data written with the previous one;
// FORWARD means a consumer on the previous schema can read data written with
// the new one; FULL means both. The _TRANSITIVE forms check against every
// earlier version, not only the latest.
const (
	None               Level = "NONE"
	Backward           Level = "BACKWARD"
	BackwardTransitive Level = "BACKWARD_TRANSITIVE"
	Forward            Level = "FORWARD"
	ForwardTransitive  Level = "FORWARD_TRANSITIVE"
	Full               Level = "FULL"
	FullTransitive     Level = "FULL_TRANSITIVE"
)

// Levels lists every compatibility level.
var Levels = []Level{None, Backward, BackwardTransitive, Forward, ForwardTransitive, Full, FullTransitive}

// ParseLevel reads a compatibility level, case-insensitively.
func ParseLevel(s string) (Level, error) {
	l := Level(strings.ToUpper(s))
	for _, k := range Levels {
		if k == l {
			return l, nil
		}
	}
	return "", fmt.Errorf("%w: compatibility %q: must be one of NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE", ErrInvalidLevel, s)
}

func (l Level) backward() bool {
	return l == Backward || l == BackwardTransitive || l == Full || l == FullTransitive
}

func (l Level) forward() bool {
	return l == Forward || l == ForwardTransitive || l == Full || l == FullTransitive
}

// Transitive reports whether the level checks every earlier version.
func (l Level) Transitive() bool {
	return l == BackwardTransitive || l == ForwardTransitive || l == FullTransitive
}

// Errors.
var (
	// ErrInvalidSchema marks a schema that does not parse (ParseError wraps it).
	ErrInvalidSchema = errors.New("schema: invalid schema")
	// ErrInvalidLevel marks an unknown compatibility level.
	ErrInvalidLevel = errors.New("schema: invalid compatibility level")
	// ErrInvalidPayload marks a payload that does not match its schema
	// (ValidationError wraps it).
	ErrInvalidPayload = errors.New("schema: payload does not match schema")
)

// Schema is the text of a schema and the texts of the schemas it references.
type Schema struct {
	Type Type
	Text string
	// References maps each name the text uses for another schema to that
	// schema's text: a JSON Schema $ref URL, an Avro full type name, a
	// Protobuf import path. References of references are included, flattened.
	References map[string]string
	// DefaultDraft is, for JSON Schema, the draft a text (or reference)
	// without $schema is read as. Empty means Draft7, as Confluent's
	// registry and serializers read such schemas. A $schema in the text
	// always wins.
	DefaultDraft Draft
}

// Draft is a JSON Schema dialect.
type Draft string

// The JSON Schema drafts handoff reads.
const (
	Draft4    Draft = "draft-04"
	Draft6    Draft = "draft-06"
	Draft7    Draft = "draft-07"
	Draft2019 Draft = "2019-09"
	Draft2020 Draft = "2020-12"
)

// Drafts lists the JSON Schema drafts, oldest first.
var Drafts = []Draft{Draft4, Draft6, Draft7, Draft2019, Draft2020}

// ParseDraft reads a JSON Schema draft name: handoff's ("draft-07",
// "2020-12"), Confluent's json.schema.spec.version values ("draft_7",
// "draft_2020_12"), a bare number ("7", "2019-09") or the draft's $schema
// URL. The empty string is Draft7.
func ParseDraft(s string) (Draft, error) {
	n := strings.ToLower(strings.TrimSpace(s))
	n = strings.TrimSuffix(strings.TrimSuffix(n, "#"), "/schema")
	for _, p := range []string{"https://", "http://", "json-schema.org/", "draft/", "draft-", "draft_", "draft"} {
		n = strings.TrimPrefix(n, p)
	}
	n = strings.TrimLeft(strings.ReplaceAll(n, "_", "-"), "0")
	switch n {
	case "":
		if strings.TrimSpace(s) == "" {
			return Draft7, nil
		}
	case "4":
		return Draft4, nil
	case "6":
		return Draft6, nil
	case "7":
		return Draft7, nil
	case "2019-09":
		return Draft2019, nil
	case "2020-12":
		return Draft2020, nil
	}
	return "", fmt.Errorf("schema: JSON Schema draft %q: must be one of draft-04, draft-06, draft-07, 2019-09, 2020-12", s)
}

// ParseError says why a schema does not parse: where (a JSON pointer into
// the schema document, or line:column for Protobuf) and what rule it breaks.
type ParseError struct {
	Type     Type
	Location string
	Reason   string
}

func (e *ParseError) Error() string {
	if e.Location == "" {
		return fmt.Sprintf("schema: invalid %s schema: %s", e.Type, e.Reason)
	}
	return fmt.Sprintf("schema: invalid %s schema at %s: %s", e.Type, e.Location, e.Reason)
}

// Unwrap returns ErrInvalidSchema.
func (e *ParseError) Unwrap() error { return ErrInvalidSchema }

// ValidationError says why a payload does not match its schema: Path is a
// JSON pointer into the payload (for Avro and Protobuf, the field names from
// the root), Rule the keyword or rule that failed.
type ValidationError struct {
	Path   string
	Rule   string
	Reason string
}

func (e *ValidationError) Error() string {
	p := e.Path
	if p == "" {
		p = "/"
	}
	return fmt.Sprintf("schema: payload invalid at %s (%s): %s", p, e.Rule, e.Reason)
}

// Unwrap returns ErrInvalidPayload.
func (e *ValidationError) Unwrap() error { return ErrInvalidPayload }

// parsed is what each schema language implements.
type parsed interface {
	// canonical is the normalized text used to tell two registrations of one
	// schema apart from two schemas: insignificant whitespace removed.
	canonical() string
	// compat reports every way data written with writer (the same language)
	// fails to be read by the receiver, as reader. Direction and Version are
	// filled in by Check.
	compat(writer parsed) []Violation
	// validate checks one payload (JSON text for JSON Schema, Avro binary,
	// Protobuf binary of the first message) and returns *ValidationError.
	validate(payload []byte) error
}

// evolver is implemented by languages with rules that depend on which
// schema is the newer one.
type evolver interface {
	// evolve reports what the receiver, the newer schema, breaks by
	// reusing what older gave up.
	evolve(older parsed) []Violation
}

// Canonical returns a schema's canonical text without parsing it: the text
// with insignificant whitespace removed (JSON's for Avro and JSON Schema,
// line ends and trailing blanks for Protobuf). When the schema parses it
// equals Parsed.Canonical, so a registry can recognise a schema it holds
// already without parsing it again.
func Canonical(t Type, text string) (string, error) {
	switch t {
	case Avro, JSON:
		var b bytes.Buffer
		if err := json.Compact(&b, []byte(text)); err != nil {
			return "", &ParseError{Type: t, Reason: "not a JSON document: " + err.Error()}
		}
		return b.String(), nil
	case Protobuf:
		return canonicalProto(text), nil
	}
	return "", &ParseError{Type: t, Reason: "schemaType must be one of AVRO, JSON, PROTOBUF"}
}

// Parsed is a parsed schema, ready for compatibility checks and validation.
type Parsed struct {
	schema Schema
	impl   parsed
}

// Parse parses and checks a schema under DefaultLimits. An error is a
// *ParseError naming where the schema is wrong, or a *LimitError naming the
// limit it exceeds. For a schema from the network, use ParseContext with
// the request's context.
func Parse(s Schema) (*Parsed, error) {
	return ParseContext(context.Background(), s, Limits{})
}

func parse(ctx context.Context, s Schema) (*Parsed, error) {
	var (
		impl parsed
		err  error
	)
	switch s.Type {
	case Avro:
		impl, err = parseAvro(s)
	case JSON:
		impl, err = parseJSON(s)
	case Protobuf:
		impl, err = parseProtobuf(ctx, s)
	default:
		return nil, &ParseError{Type: s.Type, Reason: "schemaType must be one of AVRO, JSON, PROTOBUF"}
	}
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			return nil, pe
		}
		return nil, &ParseError{Type: s.Type, Reason: err.Error()}
	}
	return &Parsed{schema: s, impl: impl}, nil
}

// Type returns the schema's language.
func (p *Parsed) Type() Type { return p.schema.Type }

// Schema returns the schema as given to Parse.
func (p *Parsed) Schema() Schema { return p.schema }

// Canonical returns the normalized text: two registrations with the same
// canonical text (and references) are the same schema.
func (p *Parsed) Canonical() string { return p.impl.canonical() }

// Validate checks a payload against the schema: a JSON document for JSON
// Schema, Avro binary for Avro, the Protobuf binary of the schema's first
// message for Protobuf (without any Confluent framing). The error is a
// *ValidationError naming the failing path.
func (p *Parsed) Validate(payload []byte) error { return p.impl.validate(payload) }

// Direction says which way a violation breaks.
type Direction string

const (
	// Reader: a consumer on the new schema cannot read data written with the
	// earlier version (a BACKWARD break).
	Reader Direction = "reader"
	// Writer: data written with the new schema cannot be read by a consumer
	// on the earlier version (a FORWARD break).
	Writer Direction = "writer"
)

// Violation is one incompatibility.
type Violation struct {
	// Rule is a stable identifier, in Confluent's style where Confluent has
	// one (READER_FIELD_MISSING_DEFAULT_VALUE, PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL).
	Rule string `json:"rule"`
	// Path is a JSON pointer locating the change: into the schema document
	// for JSON Schema (/properties/address/properties/zip, or
	// address.json#/properties/zip inside a referenced schema); the field
	// names from the root for Avro (/address/zip) and Protobuf
	// (/acme.Order/address/zip). The root itself is "".
	Path string `json:"path"`
	// Direction is the role of the new schema in the failing read.
	Direction Direction `json:"direction"`
	// Version is the earlier version the new schema was checked against.
	Version int `json:"version"`
	// Message says what is wrong; Hint how to make the change compatible.
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
	// Strict marks a finding of handoff's stricter rule set: Confluent's
	// registry accepts the change, so under ConfluentRules it is a
	// warning (Result.Warnings) and only StrictRules refuse it.
	Strict bool `json:"strict,omitempty"`
}

func (v Violation) String() string {
	s := fmt.Sprintf("%s at %s (%s, version %d): %s", v.Rule, pathOrRoot(v.Path), v.Direction, v.Version, v.Message)
	if v.Hint != "" {
		s += "; hint: " + v.Hint
	}
	return s
}

func pathOrRoot(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// Version is an earlier registered version of a subject.
type Version struct {
	Version int
	Schema  *Parsed
}

// Rules is the rule set a compatibility verdict follows.
type Rules string

const (
	// ConfluentRules, the default, refuses what Confluent's registry
	// refuses, so a team moving from Confluent's registry sees the same
	// verdicts. Findings of handoff's engine that Confluent's registry
	// accepts (Violation.Strict) are Warnings. The few places where
	// handoff's default verdict still differs from Confluent's are listed,
	// with the reason, in the rules-*.md tables.
	ConfluentRules Rules = "CONFLUENT"
	// StrictRules refuses every finding of handoff's engine: also the
	// changes Confluent's registry accepts although data written before
	// may be misread or rejected after them (a renumbered Protobuf field,
	// a changed Avro logical type, a required JSON property the writer
	// never declared, ...).
	StrictRules Rules = "STRICT"
)

// ParseRules reads a rule set name, case-insensitively. The empty string
// is ConfluentRules.
func ParseRules(s string) (Rules, error) {
	switch r := Rules(strings.ToUpper(strings.TrimSpace(s))); r {
	case "":
		return ConfluentRules, nil
	case ConfluentRules, StrictRules:
		return r, nil
	}
	return "", fmt.Errorf("schema: compatibility rules %q: must be CONFLUENT or STRICT", s)
}

// Result is the verdict of a compatibility check.
type Result struct {
	Level Level
	// Rules is the rule set the verdict follows.
	Rules Rules
	// Violations are the findings Rules refuses: the change is compatible
	// when there are none.
	Violations []Violation
	// Warnings are the findings Rules does not refuse: under
	// ConfluentRules, those only StrictRules refuse (Violation.Strict).
	Warnings []Violation

	all []Violation // every finding, in the order found
}

// Compatible reports whether no violation was found.
func (r Result) Compatible() bool { return len(r.Violations) == 0 }

// Under returns the verdict under another rule set: the same findings,
// split into Violations and Warnings by rules.
func (r Result) Under(rules Rules) Result {
	out := Result{Level: r.Level, Rules: rules, all: r.all}
	for _, v := range r.all {
		if v.Strict && rules != StrictRules {
			out.Warnings = append(out.Warnings, v)
		} else {
			out.Violations = append(out.Violations, v)
		}
	}
	return out
}

// RuleSchemaTypeChanged is reported when the new schema is in another
// language than an earlier version.
const RuleSchemaTypeChanged = "SCHEMA_TYPE_CHANGED"

// Check checks candidate against the earlier versions (oldest first) at
// level, and reports every finding against every version checked: the
// latest only, or all of them for a _TRANSITIVE level. The verdict follows
// ConfluentRules: findings only StrictRules refuse are Warnings. For the
// strict verdict, call Under(StrictRules) on the result.
func Check(level Level, candidate *Parsed, earlier []Version) Result {
	return check(level, candidate, earlier).Under(ConfluentRules)
}

func check(level Level, candidate *Parsed, earlier []Version) Result {
	res := Result{Level: level}
	if level == None || len(earlier) == 0 {
		return res
	}
	against := earlier
	if !level.Transitive() {
		against = earlier[len(earlier)-1:]
	}
	// Newest first: the most relevant verdict comes first.
	for i := len(against) - 1; i >= 0; i-- {
		prev := against[i]
		if prev.Schema.Type() != candidate.Type() {
			res.Violations = append(res.Violations, Violation{
				Rule: RuleSchemaTypeChanged, Direction: Reader, Version: prev.Version,
				Message: fmt.Sprintf("schema type changed from %s to %s", prev.Schema.Type(), candidate.Type()),
				Hint:    "register a schema of another type under a new subject",
			})
			continue
		}
		if level.backward() {
			for _, v := range candidate.impl.compat(prev.Schema.impl) {
				v.Direction, v.Version = Reader, prev.Version
				res.Violations = append(res.Violations, v)
			}
		}
		if level.forward() {
			for _, v := range prev.Schema.impl.compat(candidate.impl) {
				v.Direction, v.Version = Writer, prev.Version
				res.Violations = append(res.Violations, v)
			}
		}
		// Some changes are wrong only in one order: reusing what the
		// earlier version reserved (a Protobuf field number or name).
		if e, ok := candidate.impl.(evolver); ok {
			dir := Reader
			if !level.backward() {
				dir = Writer
			}
			for _, v := range e.evolve(prev.Schema.impl) {
				v.Direction, v.Version = dir, prev.Version
				res.Violations = append(res.Violations, v)
			}
		}
	}
	res.all, res.Violations = res.Violations, nil
	return res
}
