package registry

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/schema"
)

// HeaderSize is the length of the wire format's header: the magic byte and
// the 4-byte schema id.
const HeaderSize = 5

// magic is the first byte of every framed payload.
const magic = 0

// ErrWireFormat marks bytes that are not in Confluent's wire format (a
// header too short, a wrong magic byte, bad Protobuf message indexes).
var ErrWireFormat = errors.New("registry: bad wire format")

// AppendHeader appends the wire format's header for schema id to dst: the
// magic byte 0 and id as 4 bytes, big-endian. Ids are positive 32-bit
// numbers (the client refuses any other from a registry); id is written as
// its low 32 bits.
func AppendHeader(dst []byte, id int) []byte {
	return binary.BigEndian.AppendUint32(append(dst, magic), uint32(id))
}

// ParseHeader reads the wire format's header from b and returns the schema
// id and the payload after it. The error matches ErrWireFormat.
func ParseHeader(b []byte) (id int, rest []byte, err error) {
	if len(b) < HeaderSize {
		return 0, nil, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrWireFormat, len(b), HeaderSize)
	}
	if b[0] != magic {
		return 0, nil, fmt.Errorf("%w: magic byte is %#x, want 0", ErrWireFormat, b[0])
	}
	u := binary.BigEndian.Uint32(b[1:HeaderSize])
	if u > math.MaxInt32 {
		return 0, nil, fmt.Errorf("%w: schema id %d out of range", ErrWireFormat, u)
	}
	return int(u), b[HeaderSize:], nil
}

// SchemaURL is the address of schema id at the registry,
// <base URL>/schemas/ids/<id>: what SerializeEvent puts in a message's
// dataschema. Fetched, it answers the schema with its type and references.
func (c *Client) SchemaURL(id int) string {
	return c.base + "/schemas/ids/" + strconv.Itoa(id)
}

// ErrNotSchemaURL marks a dataschema that is not a schema URL of a registry.
var ErrNotSchemaURL = errors.New("registry: dataschema is not a registry schema URL")

// SchemaIDOf returns the schema id a dataschema URL names: either
// …/schemas/ids/<id> (what SerializeEvent writes; no request) or
// …/subjects/<subject>/versions/<version> (the registered version; asked of
// the registry).
func (c *Client) SchemaIDOf(ctx context.Context, dataschema string) (int, error) {
	if id, err := SchemaIDFromURL(dataschema); err == nil {
		return id, nil
	}
	u, err := url.Parse(dataschema)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: %v", ErrNotSchemaURL, dataschema, err)
	}
	path := strings.TrimSuffix(strings.TrimSuffix(u.EscapedPath(), "/"), "/schema")
	i := strings.LastIndex(path, "/subjects/")
	if i < 0 {
		return 0, fmt.Errorf("%w: %q: want …/schemas/ids/<id> or …/subjects/<subject>/versions/<version>", ErrNotSchemaURL, dataschema)
	}
	subj, ver, ok := strings.Cut(path[i+len("/subjects/"):], "/versions/")
	subject, err := url.PathUnescape(subj)
	n, nerr := strconv.Atoi(ver)
	if !ok || err != nil || subject == "" || nerr != nil || n < 1 {
		return 0, fmt.Errorf("%w: %q: want …/subjects/<subject>/versions/<version number>", ErrNotSchemaURL, dataschema)
	}
	r, err := c.Version(ctx, subject, n)
	if err != nil {
		return 0, err
	}
	return r.ID, nil
}

// SchemaIDFromURL reads the schema id from a dataschema URL made by
// SchemaURL (…/schemas/ids/<id>, optionally followed by /schema, and a
// #fragment). The registry's address is not checked: a consumer may reach
// the registry under another one.
func SchemaIDFromURL(u string) (int, error) {
	p, err := url.Parse(u)
	if err != nil {
		return 0, fmt.Errorf("registry: dataschema %q: %w", u, err)
	}
	path := strings.TrimSuffix(strings.TrimSuffix(p.Path, "/"), "/schema")
	i := strings.LastIndex(path, "/schemas/ids/")
	if i < 0 {
		return 0, fmt.Errorf("registry: dataschema %q: not a registry schema URL (…/schemas/ids/<id>)", u)
	}
	id, err := strconv.Atoi(path[i+len("/schemas/ids/"):])
	if err != nil || checkID(id) != nil {
		return 0, fmt.Errorf("registry: dataschema %q: schema id must be a number from 1 to %d", u, math.MaxInt32)
	}
	return id, nil
}

// SerdeOption configures a Serializer or a Deserializer.
type SerdeOption func(*serdeConfig)

type serdeConfig struct {
	spec         *SchemaSpec
	latest       bool
	id           int
	autoRegister *bool
	validate     bool
	reader       *SchemaSpec
	given        []string // the options used, to refuse those that do not apply
}

func (c *serdeConfig) use(name string) { c.given = append(c.given, name) }

// WithSchema makes a Serializer write with s: registered under the subject
// on first use (Confluent's auto.register.schemas), or, with
// WithAutoRegister(false), looked up there and refused if absent.
func WithSchema(s SchemaSpec) SerdeOption {
	return func(c *serdeConfig) { c.spec = &s; c.use("WithSchema") }
}

// WithAutoRegister sets whether WithSchema registers the schema (default
// true) or only looks it up.
func WithAutoRegister(on bool) SerdeOption {
	return func(c *serdeConfig) { c.autoRegister = &on; c.use("WithAutoRegister") }
}

// WithLatest makes a Serializer write with the subject's latest version
// (Confluent's use.latest.version), fetched on first use and kept: a
// Serializer does not move to a version registered after that.
func WithLatest() SerdeOption {
	return func(c *serdeConfig) { c.latest = true; c.use("WithLatest") }
}

// WithSchemaID makes a Serializer write with the registered schema id
// (Confluent's use.schema.id).
func WithSchemaID(id int) SerdeOption {
	return func(c *serdeConfig) { c.id = id; c.use("WithSchemaID") }
}

// WithValidation sets whether JSON payloads are validated against their
// schema when serialized and deserialized (default true). Avro and Protobuf
// payloads are checked by encoding and decoding them.
func WithValidation(on bool) SerdeOption {
	return func(c *serdeConfig) { c.validate = on; c.use("WithValidation") }
}

// WithReaderSchema makes a Deserializer of Avro read every payload into the
// reader schema s, resolving it from the schema it was written with (Avro's
// schema resolution: fields added with defaults, fields removed, promoted
// types). Without it, payloads are read with the writer's schema.
func WithReaderSchema(s SchemaSpec) SerdeOption {
	return func(c *serdeConfig) { c.reader = &s; c.use("WithReaderSchema") }
}

func newSerdeConfig(what string, allowed map[string]bool, opts []SerdeOption) (serdeConfig, error) {
	cfg := serdeConfig{validate: true}
	for _, o := range opts {
		o(&cfg)
	}
	for _, name := range cfg.given {
		if !allowed[name] {
			return cfg, fmt.Errorf("registry: %s does not apply to a %s", name, what)
		}
	}
	return cfg, nil
}

// Serializer writes values of one subject in Confluent's wire format (or,
// with SerializeEvent, unframed into a CloudEvent). The format is the
// schema's: Avro (any Go value hamba/avro encodes), JSON (any value
// encoding/json marshals), Protobuf (a proto.Message). It is safe for
// concurrent use.
type Serializer struct {
	c       *Client
	subject string
	cfg     serdeConfig

	mu sync.Mutex
	w  *writerSchema // resolved on first use
}

type writerSchema struct {
	id  int
	typ schema.Type
}

// NewSerializer returns a serializer for subject (with Confluent's topic
// naming, "<topic>-value" or "<topic>-key"). Exactly one of WithSchema,
// WithLatest and WithSchemaID says which schema to write with.
func NewSerializer(c *Client, subject string, opts ...SerdeOption) (*Serializer, error) {
	if c == nil {
		return nil, errors.New("registry: new serializer: client is nil")
	}
	if subject == "" {
		return nil, errors.New("registry: new serializer: subject is empty")
	}
	cfg, err := newSerdeConfig("Serializer", map[string]bool{
		"WithSchema": true, "WithAutoRegister": true, "WithLatest": true, "WithSchemaID": true, "WithValidation": true,
	}, opts)
	if err != nil {
		return nil, err
	}
	n := 0
	for _, set := range []bool{cfg.spec != nil, cfg.latest, cfg.id != 0} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, fmt.Errorf("registry: new serializer for %s: give exactly one of WithSchema, WithLatest, WithSchemaID", subject)
	}
	if cfg.autoRegister != nil && cfg.spec == nil {
		return nil, fmt.Errorf("registry: new serializer for %s: WithAutoRegister applies only with WithSchema", subject)
	}
	if cfg.id != 0 {
		if err := checkID(cfg.id); err != nil {
			return nil, fmt.Errorf("registry: new serializer for %s: WithSchemaID: %w", subject, err)
		}
	}
	if cfg.spec != nil {
		switch cfg.spec.schemaType() {
		case schema.Avro, schema.JSON, schema.Protobuf:
		default:
			return nil, fmt.Errorf("registry: new serializer for %s: schema type %q: must be one of AVRO, JSON, PROTOBUF", subject, cfg.spec.Type)
		}
	}
	return &Serializer{c: c, subject: subject, cfg: cfg}, nil
}

// writer returns the schema to write with, resolving it on first use.
func (s *Serializer) writer(ctx context.Context) (writerSchema, error) {
	s.mu.Lock()
	w := s.w
	s.mu.Unlock()
	if w != nil {
		return *w, nil
	}
	var (
		res writerSchema
		err error
	)
	switch {
	case s.cfg.spec != nil && (s.cfg.autoRegister == nil || *s.cfg.autoRegister):
		res.typ = s.cfg.spec.schemaType()
		res.id, err = s.c.Register(ctx, s.subject, *s.cfg.spec)
	case s.cfg.spec != nil:
		res.typ = s.cfg.spec.schemaType()
		var r Registered
		r, err = s.c.Lookup(ctx, s.subject, *s.cfg.spec)
		res.id = r.ID
	case s.cfg.latest:
		var r Registered
		if r, err = s.c.Latest(ctx, s.subject); err == nil {
			res.id = r.ID
			res.typ, err = schema.ParseType(r.SchemaType)
		}
	default:
		var r Registered
		if r, err = s.c.SchemaByID(ctx, s.cfg.id); err == nil {
			res.id = r.ID
			res.typ, err = schema.ParseType(r.SchemaType)
		}
	}
	if err != nil {
		return writerSchema{}, fmt.Errorf("registry: serializer for %s: %w", s.subject, err)
	}
	s.mu.Lock()
	s.w = &res
	s.mu.Unlock()
	return res, nil
}

// encoded is a serialized value before framing.
type encoded struct {
	id      int
	typ     schema.Type
	payload []byte
	indexes []int  // Protobuf: the message's indexes in its schema
	message string // Protobuf: the message's full name
}

func (s *Serializer) encode(ctx context.Context, v any) (encoded, error) {
	w, err := s.writer(ctx)
	if err != nil {
		return encoded{}, err
	}
	e := encoded{id: w.id, typ: w.typ}
	switch w.typ {
	case schema.Avro:
		e.payload, err = s.encodeAvro(ctx, w.id, v)
	case schema.JSON:
		e.payload, err = s.encodeJSON(ctx, w.id, v)
	case schema.Protobuf:
		e.payload, e.indexes, e.message, err = s.encodeProtobuf(ctx, w.id, v)
	default:
		err = fmt.Errorf("schema type %q not supported", w.typ)
	}
	if err != nil {
		return encoded{}, fmt.Errorf("registry: serialize %s with schema %d: %w", s.subject, w.id, err)
	}
	return e, nil
}

// Serialize encodes v with the subject's schema and frames it: magic byte,
// schema id, (for Protobuf) the message indexes, payload.
func (s *Serializer) Serialize(ctx context.Context, v any) ([]byte, error) {
	e, err := s.encode(ctx, v)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, HeaderSize+len(e.indexes)+1+len(e.payload))
	out = AppendHeader(out, e.id)
	if e.typ == schema.Protobuf {
		out = AppendMessageIndexes(out, e.indexes)
	}
	return append(out, e.payload...), nil
}

// SerializeEvent is the CloudEvents way: it encodes v into m.Data unframed,
// sets m.DataSchema to the schema's URL at the registry (SchemaURL; for
// Protobuf followed by #<message full name>) and m.DataContentType to the
// format's media type (application/avro, application/json,
// application/protobuf). DeserializeEvent reads it back.
func (s *Serializer) SerializeEvent(ctx context.Context, m *handoff.Message, v any) error {
	if m == nil {
		return fmt.Errorf("registry: serialize %s: message is nil", s.subject)
	}
	e, err := s.encode(ctx, v)
	if err != nil {
		return err
	}
	m.Data = e.payload
	m.DataSchema = s.c.SchemaURL(e.id)
	if e.typ == schema.Protobuf {
		m.DataSchema += "#" + e.message
	}
	m.DataContentType = mediaType(e.typ)
	return nil
}

func mediaType(t schema.Type) string {
	switch t {
	case schema.Avro:
		return "application/avro"
	case schema.Protobuf:
		return "application/protobuf"
	}
	return "application/json"
}

// Deserializer reads payloads in Confluent's wire format (or unframed from
// a CloudEvent) with the schema they were written with, whatever its
// subject and format. It is safe for concurrent use.
//
// What v may be depends on the writer schema's format: for Avro, a pointer
// to a Go value hamba/avro decodes into; for JSON, a pointer for
// encoding/json; for Protobuf, a proto.Message of the written message type.
// A *any receives the format's generic value: map[string]any for Avro and
// JSON (for JSON, whatever encoding/json gives), a *dynamicpb.Message for
// Protobuf (also into a *proto.Message).
type Deserializer struct {
	c   *Client
	cfg serdeConfig

	mu       sync.Mutex
	reader   any         // the reader schema, compiled on first use (Avro: avro.Schema)
	resolved map[int]any // writer id → schema resolved to the reader
}

// NewDeserializer returns a deserializer. Options: WithValidation,
// WithReaderSchema (Avro only).
func NewDeserializer(c *Client, opts ...SerdeOption) (*Deserializer, error) {
	if c == nil {
		return nil, errors.New("registry: new deserializer: client is nil")
	}
	cfg, err := newSerdeConfig("Deserializer", map[string]bool{"WithValidation": true, "WithReaderSchema": true}, opts)
	if err != nil {
		return nil, err
	}
	if cfg.reader != nil && cfg.reader.schemaType() != schema.Avro {
		return nil, fmt.Errorf("registry: new deserializer: WithReaderSchema: schema type %s: only AVRO resolves a reader schema", cfg.reader.Type)
	}
	return &Deserializer{c: c, cfg: cfg, resolved: map[int]any{}}, nil
}

// Deserialize reads data (framed: magic byte, schema id, payload) into v,
// fetching the writer schema by its id (cached).
func (d *Deserializer) Deserialize(ctx context.Context, data []byte, v any) error {
	id, rest, err := ParseHeader(data)
	if err != nil {
		return fmt.Errorf("registry: deserialize: %w", err)
	}
	t, err := d.typeOf(ctx, id)
	if err != nil {
		return err
	}
	var indexes []int
	if t == schema.Protobuf {
		if indexes, rest, err = ParseMessageIndexes(rest); err != nil {
			return fmt.Errorf("registry: deserialize with schema %d: %w", id, err)
		}
	}
	return d.decode(ctx, id, t, indexes, "", rest, v)
}

// DeserializeEvent reads m.Data into v with the schema m.DataSchema names
// (as SerializeEvent sets it); the data is unframed. A message without a
// dataschema is taken to hold a framed payload, as Deserialize reads.
func (d *Deserializer) DeserializeEvent(ctx context.Context, m *handoff.Message, v any) error {
	if m == nil {
		return errors.New("registry: deserialize: message is nil")
	}
	if m.DataSchema == "" {
		return d.Deserialize(ctx, m.Data, v)
	}
	id, err := d.c.SchemaIDOf(ctx, m.DataSchema)
	if err != nil {
		return err
	}
	t, err := d.typeOf(ctx, id)
	if err != nil {
		return err
	}
	var message string
	if u, err := url.Parse(m.DataSchema); err == nil {
		message = u.Fragment
	}
	return d.decode(ctx, id, t, nil, message, m.Data, v)
}

func (d *Deserializer) typeOf(ctx context.Context, id int) (schema.Type, error) {
	r, err := d.c.SchemaByID(ctx, id)
	if err != nil {
		return "", fmt.Errorf("registry: deserialize with schema %d: %w", id, err)
	}
	t, err := schema.ParseType(r.SchemaType)
	if err != nil {
		return "", fmt.Errorf("registry: deserialize with schema %d: %w", id, err)
	}
	return t, nil
}

// decode reads payload; for Protobuf, the message is named by indexes
// (framed) or by its full name (CloudEvents), or is v's own type.
func (d *Deserializer) decode(ctx context.Context, id int, t schema.Type, indexes []int, message string, payload []byte, v any) error {
	var err error
	switch t {
	case schema.Avro:
		err = d.decodeAvro(ctx, id, payload, v)
	case schema.JSON:
		err = d.decodeJSON(ctx, id, payload, v)
	case schema.Protobuf:
		err = d.decodeProtobuf(ctx, id, indexes, message, payload, v)
	default:
		err = fmt.Errorf("schema type %q not supported", t)
	}
	if err != nil {
		return fmt.Errorf("registry: deserialize with schema %d: %w", id, err)
	}
	return nil
}
