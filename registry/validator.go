package registry

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/schema"
)

// Validator checks messages' data against the schemas registered for their
// topics. It is an outbox.Validator (a write is refused before anything is
// stored) and a consumer.Validator (the message is dead-lettered with class
// "schema" before its handler runs).
//
// The schema a message is checked against is, in order: the one its
// dataschema names (…/schemas/ids/<id>, or …/subjects/<s>/versions/<n>);
// the one its data's Confluent header names; else the subject's latest
// version. A named schema must be
// registered under the topic's subject, and a dataschema that is not a
// registry schema URL is refused. Data of at least five bytes starting with
// a zero byte is read as framed; if the id it names is not a version of the
// subject, the data is tried unframed against the latest version. Topics
// bound to no subject are not checked.
type Validator struct {
	client    *Client
	subjects  map[string]string
	strategy  func(topic string) string
	latestTTL time.Duration
	now       func() time.Time

	mu      sync.Mutex
	latest  map[string]latestEntry
	members map[memberKey]bool
}

type latestEntry struct {
	id      int
	fetched time.Time
}

type memberKey struct {
	subject string
	id      int
}

// ValidatorOption configures a Validator.
type ValidatorOption func(*Validator) error

// WithSubject binds topic to subject.
func WithSubject(topic, subject string) ValidatorOption {
	return func(v *Validator) error {
		if topic == "" || subject == "" {
			return errors.New("registry: WithSubject: topic and subject must not be empty")
		}
		v.subjects[topic] = subject
		return nil
	}
}

// WithTopicNameStrategy binds every topic not bound by WithSubject to the
// subject "<topic>-value", Confluent's default naming.
func WithTopicNameStrategy() ValidatorOption {
	return func(v *Validator) error {
		v.strategy = func(topic string) string { return topic + "-value" }
		return nil
	}
}

// WithLatestTTL sets how long a subject's latest version is trusted before
// it is asked again (default 30s).
func WithLatestTTL(d time.Duration) ValidatorOption {
	return func(v *Validator) error {
		if d < 0 {
			return errors.New("registry: WithLatestTTL: must not be negative")
		}
		v.latestTTL = d
		return nil
	}
}

// NewValidator returns a validator that asks the registry through c.
func NewValidator(c *Client, opts ...ValidatorOption) (*Validator, error) {
	if c == nil {
		return nil, errors.New("registry: NewValidator: client must not be nil")
	}
	v := &Validator{client: c, subjects: map[string]string{}, latestTTL: 30 * time.Second, now: time.Now,
		latest: map[string]latestEntry{}, members: map[memberKey]bool{}}
	for _, o := range opts {
		if err := o(v); err != nil {
			return nil, err
		}
	}
	if len(v.subjects) == 0 && v.strategy == nil {
		return nil, errors.New("registry: NewValidator: bind a topic with WithSubject or use WithTopicNameStrategy")
	}
	return v, nil
}

// ValidateMessage checks m's data against its topic's schema. A mismatch is
// a handoff.Permanent error wrapping a *schema.ValidationError (the failing
// path and rule); a registry that cannot be reached, or answers with
// anything but the registry's own "not found", gives a plain error (retry).
func (v *Validator) ValidateMessage(ctx context.Context, topic string, m *handoff.Message) error {
	subject := v.subjects[topic]
	if subject == "" && v.strategy != nil {
		subject = v.strategy(topic)
	}
	if subject == "" {
		return nil
	}
	refuse := func(err error) error {
		return handoff.Permanent(fmt.Errorf("registry: message %s on %s (subject %s): %w", m.ID, topic, subject, err))
	}
	transient := func(err error) error {
		return fmt.Errorf("registry: validate %s on %s (subject %s): %w", m.ID, topic, subject, err)
	}
	var err error
	switch {
	case m.DataSchema != "":
		err = v.validateNamed(ctx, subject, m.DataSchema, m.Data)
	case len(m.Data) >= HeaderSize && m.Data[0] == magic:
		err = v.validateFramed(ctx, subject, m.Data)
		if errors.Is(err, errNotMember) {
			// Unframed data may start with a zero byte too (an Avro int 0,
			// a null-first union): accept it if it is valid unframed.
			if v.validateLatest(ctx, subject, m.Data) == nil {
				return nil
			}
		}
	default:
		err = v.validateLatest(ctx, subject, m.Data)
	}
	switch {
	case err == nil:
		return nil
	case isVerdict(err):
		return refuse(err)
	default:
		return transient(err)
	}
}

// errNotMember: the schema a message names is not a version of its subject.
var errNotMember = errors.New("the schema is not a version of the subject")

// verdict marks an error as the registry's answer about the data, not a
// failure to ask.
type verdict struct{ err error }

func (e verdict) Error() string { return e.err.Error() }
func (e verdict) Unwrap() error { return e.err }

func isVerdict(err error) bool {
	var v verdict
	return errors.As(err, &v)
}

// registryNotFound reports the registry's own "not found" (40401, 40402,
// 40403): a 404 from anything else (a proxy, a wrong base path) is not one.
func registryNotFound(err error) bool {
	var re *Error
	return errors.As(err, &re) && re.Code >= 1000 && re.HTTPStatus() == 404
}

// parsed fetches schema id, classifying the registry's answers.
func (v *Validator) parsed(ctx context.Context, id int) (*schema.Parsed, error) {
	p, err := v.client.ParsedByID(ctx, id)
	switch {
	case err == nil:
		return p, nil
	case registryNotFound(err), errors.Is(err, schema.ErrInvalidSchema):
		return nil, verdict{fmt.Errorf("schema id %d: %w", id, err)}
	}
	return nil, err
}

func (v *Validator) validateNamed(ctx context.Context, subject, dataschema string, data []byte) error {
	id, err := v.client.SchemaIDOf(ctx, dataschema)
	if err != nil {
		if errors.Is(err, ErrNotSchemaURL) || registryNotFound(err) {
			return verdict{err}
		}
		return err // the registry could not answer: retry
	}
	p, err := v.named(ctx, subject, id)
	if err != nil {
		return err
	}
	if u, _ := url.Parse(dataschema); u != nil && u.Fragment != "" && p.Type() == schema.Protobuf {
		// SerializeEvent names the Protobuf message in the fragment.
		indexes, err := p.MessageIndexes(u.Fragment)
		if err != nil {
			return verdict{err}
		}
		return validatePayload(p, id, indexes, data)
	}
	return validatePayload(p, id, nil, data)
}

func (v *Validator) validateFramed(ctx context.Context, subject string, data []byte) error {
	id, payload, err := ParseHeader(data)
	if err != nil {
		return verdict{err}
	}
	p, err := v.named(ctx, subject, id)
	if err != nil {
		return err
	}
	var indexes []int
	if p.Type() == schema.Protobuf {
		if indexes, payload, err = ParseMessageIndexes(payload); err != nil {
			return verdict{err}
		}
	}
	return validatePayload(p, id, indexes, payload)
}

func (v *Validator) validateLatest(ctx context.Context, subject string, data []byte) error {
	id, err := v.latestID(ctx, subject)
	if err != nil {
		if registryNotFound(err) {
			return verdict{fmt.Errorf("no schema is registered under the subject: %w", err)}
		}
		return err
	}
	p, err := v.parsed(ctx, id)
	if err != nil {
		return err
	}
	return validatePayload(p, id, nil, data)
}

// named returns the schema a message names, which must be a version of
// its subject.
func (v *Validator) named(ctx context.Context, subject string, id int) (*schema.Parsed, error) {
	ok, err := v.member(ctx, subject, id)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, verdict{fmt.Errorf("schema id %d: %w %s", id, errNotMember, subject)}
	}
	return v.parsed(ctx, id)
}

func validatePayload(p *schema.Parsed, id int, indexes []int, payload []byte) error {
	var err error
	if len(indexes) > 0 && !(len(indexes) == 1 && indexes[0] == 0) {
		err = validateProtobufMessage(p, indexes, payload)
	} else {
		err = p.Validate(payload)
	}
	if err != nil {
		return verdict{fmt.Errorf("schema id %d: %w", id, err)}
	}
	return nil
}

// validateProtobufMessage checks a payload of a message other than the
// schema's first.
func validateProtobufMessage(p *schema.Parsed, indexes []int, payload []byte) error {
	md, err := p.MessageDescriptor(indexes)
	if err != nil {
		return err
	}
	msg := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(payload, msg); err != nil {
		return &schema.ValidationError{Path: "/" + string(md.FullName()), Rule: "protobuf", Reason: err.Error()}
	}
	if err := proto.CheckInitialized(msg); err != nil {
		return &schema.ValidationError{Path: "/" + string(md.FullName()), Rule: "required", Reason: err.Error()}
	}
	return nil
}

func (v *Validator) latestID(ctx context.Context, subject string) (int, error) {
	now := v.now()
	v.mu.Lock()
	e, ok := v.latest[subject]
	v.mu.Unlock()
	if ok && now.Sub(e.fetched) < v.latestTTL {
		return e.id, nil
	}
	r, err := v.client.Latest(ctx, subject)
	if err != nil {
		return 0, err
	}
	v.mu.Lock()
	v.latest[subject] = latestEntry{id: r.ID, fetched: now}
	v.mu.Unlock()
	return r.ID, nil
}

// member reports whether schema id is a version of subject (cached; a
// schema once registered under a subject stays so, unless deleted).
func (v *Validator) member(ctx context.Context, subject string, id int) (bool, error) {
	k := memberKey{subject, id}
	v.mu.Lock()
	ok := v.members[k]
	v.mu.Unlock()
	if ok {
		return true, nil
	}
	var out []subjectVersion
	// deleted=true: a message written before its version was soft-deleted
	// is still valid.
	err := v.client.do(ctx, "GET", fmt.Sprintf("/schemas/ids/%d/versions", id), url.Values{"deleted": {"true"}}, nil, &out)
	if registryNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, sv := range out {
		if sv.Subject == subject {
			v.mu.Lock()
			v.members[k] = true
			v.mu.Unlock()
			return true, nil
		}
	}
	return false, nil
}

// Publisher returns a publisher that checks every message with the
// validator before handing the batch to next: if one is refused, nothing
// is published and the error names the message and the failing path.
func (v *Validator) Publisher(next handoff.Publisher) handoff.Publisher {
	return validatingPublisher{v: v, next: next}
}

type validatingPublisher struct {
	v    *Validator
	next handoff.Publisher
}

func (p validatingPublisher) Publish(ctx context.Context, topic string, msgs ...*handoff.Message) error {
	for _, m := range msgs {
		if m == nil {
			continue // next refuses it, with its own error
		}
		if err := p.v.ValidateMessage(ctx, topic, m); err != nil {
			return fmt.Errorf("registry: publish to %s: %w", topic, err)
		}
	}
	return p.next.Publish(ctx, topic, msgs...)
}
