package registry

import (
	"context"
	"errors"
	"fmt"
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
// dataschema names (…/schemas/ids/<id>); the one its data's Confluent
// header names; else the subject's latest version. A named schema must be
// registered under the topic's subject. Topics bound to no subject are not
// checked.
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
// path and rule); a registry that cannot be reached gives a plain error.
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
	payload := m.Data
	var (
		id      int
		indexes []int
		err     error
	)
	named := true
	switch {
	case m.DataSchema != "":
		if id, err = SchemaIDFromURL(m.DataSchema); err != nil {
			return refuse(err)
		}
	case len(payload) >= HeaderSize && payload[0] == magic:
		if id, payload, err = ParseHeader(payload); err != nil {
			return refuse(err)
		}
	default:
		named = false
		if id, err = v.latestID(ctx, subject); err != nil {
			if errors.Is(err, ErrNotFound) {
				return refuse(fmt.Errorf("no schema is registered under the subject: %w", err))
			}
			return fmt.Errorf("registry: validate %s: %w", m.ID, err)
		}
	}
	if named {
		ok, err := v.member(ctx, subject, id)
		if err != nil {
			return fmt.Errorf("registry: validate %s: %w", m.ID, err)
		}
		if !ok {
			return refuse(fmt.Errorf("schema id %d is not a version of subject %s", id, subject))
		}
	}
	p, err := v.client.ParsedByID(ctx, id)
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, schema.ErrInvalidSchema) {
			return refuse(err)
		}
		return fmt.Errorf("registry: validate %s: %w", m.ID, err)
	}
	if p.Type() == schema.Protobuf && m.DataSchema == "" && named {
		if indexes, payload, err = ParseMessageIndexes(payload); err != nil {
			return refuse(err)
		}
	}
	if len(indexes) > 0 && !(len(indexes) == 1 && indexes[0] == 0) {
		err = validateProtobufMessage(p, indexes, payload)
	} else {
		err = p.Validate(payload)
	}
	if err != nil {
		return refuse(fmt.Errorf("schema id %d: %w", id, err))
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
	err := v.client.do(ctx, "GET", fmt.Sprintf("/schemas/ids/%d/versions", id), nil, nil, &out)
	if errors.Is(err, ErrNotFound) {
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
