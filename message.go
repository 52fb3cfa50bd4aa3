package handoff

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
)

// SpecVersion is the CloudEvents version handoff speaks.
const SpecVersion = "1.0"

// Message is one event: the CloudEvents 1.0 context attributes, the data, and
// the extensions handoff relies on. The zero value is not valid; use
// [NewMessage] or fill ID, Source, Type and SpecVersion yourself.
type Message struct {
	// Required CloudEvents attributes.
	ID          string // unique per Source; a UUIDv7 from NewID by default
	Source      string // URI-reference naming the producer, e.g. "/orders"
	Type        string // e.g. "com.example.order.placed"
	SpecVersion string // always "1.0"

	// Optional CloudEvents attributes.
	Subject         string
	Time            time.Time
	DataContentType string // RFC 2046 media type of Data, e.g. "application/json"
	DataSchema      string // absolute URI of the schema Data adheres to

	Data []byte

	// Extensions handoff gives a meaning to.
	PartitionKey  string // "partitionkey": messages with one key are handled in order
	TraceParent   string // "traceparent": W3C trace context
	TraceState    string // "tracestate"
	CorrelationID string // "correlationid": the conversation this message belongs to
	CausationID   string // "causationid": id of the message that caused this one

	// Extensions holds any other CloudEvents extension attribute, by its
	// lowercase name. Names must match [a-z0-9]{1,20}.
	Extensions map[string]string
}

// NewID returns a new UUIDv7 message id: unique, and sortable by creation time.
func NewID() string {
	id, err := uuid.NewV7()
	if err != nil {
		// NewV7 fails only when the system's random source does.
		panic(fmt.Sprintf("handoff: new id: %v", err))
	}
	return id.String()
}

// NewMessage returns a message of the given type and source with a fresh
// UUIDv7 id, the current time, and JSON data.
func NewMessage(source, typ string, data []byte) *Message {
	return &Message{
		ID:              NewID(),
		Source:          source,
		Type:            typ,
		SpecVersion:     SpecVersion,
		Time:            time.Now().UTC(),
		DataContentType: "application/json",
		Data:            data,
	}
}

// Extensions set on a message replayed from dead letters (package dlq sets
// them; [Message.DedupKey] reads them).
const (
	ExtReplayOf    = "replayof"    // the id of the dead letter replayed
	ExtReplayCount = "replaycount" // how many times the message was replayed from dead letters
)

// DedupKey is the key a broker deduplicates publishes by (JetStream's
// Nats-Msg-Id). For a message as written it is the id, so that a relay's
// re-publish after a crash is stored once. For a message replayed from dead
// letters it is the id, the replay count and the letter replayed, so that
// the broker takes a replay for a new message, while its id, the key the
// inbox deduplicates by, stays: a group that handled the message already
// still recognises it.
func (m *Message) DedupKey() string {
	of := m.Extensions[ExtReplayOf]
	if of == "" {
		return m.ID
	}
	return m.ID + "/replay/" + m.Extensions[ExtReplayCount] + "/" + of
}

// IsReplay reports whether m was replayed from dead letters (it carries the
// extension replayof).
func (m *Message) IsReplay() bool { return m.Extensions[ExtReplayOf] != "" }

// Clone returns a deep copy of m.
func (m *Message) Clone() *Message {
	c := *m
	if m.Data != nil {
		c.Data = append([]byte(nil), m.Data...)
	}
	if m.Extensions != nil {
		c.Extensions = make(map[string]string, len(m.Extensions))
		for k, v := range m.Extensions {
			c.Extensions[k] = v
		}
	}
	return &c
}

// Size is an upper bound of m's encoded size in bytes in any of handoff's
// bindings (NATS, Kafka, AMQP, HTTP): its data; every attribute with its
// header name, prefix and separators; the partition key once more (Kafka's
// record key); the broker's deduplication header; and the framing. The size
// limits of the outbox, the consumer and the adapters are checked against
// it, so that a message one hop accepts, the next takes.
func (m *Message) Size() int {
	const perAttr = 16 // the longest prefix ("cloudEvents:") and separators
	n := len(m.Data) + sizeFraming + 2*len(m.ID) + len(m.PartitionKey)
	attr := func(name, v string) {
		if v != "" {
			n += len(name) + len(v) + perAttr
		}
	}
	attr("id", m.ID)
	attr("source", m.Source)
	attr("type", m.Type)
	attr("specversion", m.SpecVersion)
	attr("subject", m.Subject)
	attr("datacontenttype", m.DataContentType)
	attr("dataschema", m.DataSchema)
	attr("partitionkey", m.PartitionKey)
	attr("traceparent", m.TraceParent)
	attr("tracestate", m.TraceState)
	attr("correlationid", m.CorrelationID)
	attr("causationid", m.CausationID)
	if !m.Time.IsZero() {
		n += len("time") + len(time.RFC3339Nano) + perAttr
	}
	for k, v := range m.Extensions {
		n += len(k) + len(v) + perAttr
	}
	return n
}

// sizeFraming covers what Size counts once per message: the broker's
// deduplication header (Nats-Msg-Id, AMQP message-id) beyond the id itself,
// a Kafka record batch's header, NATS's header preamble.
const sizeFraming = 128

// DefaultMaxMessageSize is the size limit (by [Message.Size]) the outbox
// writer applies unless told otherwise: safely below the default limit of
// every broker handoff supports, so that what the writer accepts the relay
// can publish. NATS refuses more than max_payload (1 MiB by default, headers
// included), franz-go more than ProducerBatchMaxBytes (1,000,012 bytes by
// default) and a Kafka broker more than max.message.bytes (1,048,588);
// RabbitMQ takes up to 128 MiB. A larger payload belongs in blob storage,
// with a reference in the message (the claim-check pattern).
const DefaultMaxMessageSize = 1_000_000

// ErrInvalid is matched (with errors.Is) by every *ValidationError.
var ErrInvalid = errors.New("handoff: invalid message")

// ValidationError names the attribute of a message that broke a rule.
type ValidationError struct {
	ID        string // the message id, if it had one
	Attribute string // CloudEvents attribute name, e.g. "source", "data"
	Rule      string // the rule it broke, e.g. "required", "must be an absolute URI"
}

func (e *ValidationError) Error() string {
	if e.ID != "" {
		return fmt.Sprintf("handoff: invalid message %s: %s: %s", e.ID, e.Attribute, e.Rule)
	}
	return fmt.Sprintf("handoff: invalid message: %s: %s", e.Attribute, e.Rule)
}

// Is reports whether target is ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// reserved are attribute names an extension may not take.
var reserved = map[string]bool{
	"id": true, "source": true, "type": true, "specversion": true, "subject": true,
	"time": true, "datacontenttype": true, "dataschema": true, "data": true, "data_base64": true,
	"partitionkey": true, "traceparent": true, "tracestate": true, "correlationid": true, "causationid": true,
}

// Validate checks m against the CloudEvents 1.0 rules and handoff's own: the
// required attributes are present, URIs and media types parse, extension
// names are lowercase alphanumeric, the trace context is well formed, and
// JSON data (by its content type) is valid JSON. The first broken rule is
// returned as a *ValidationError.
func (m *Message) Validate() error {
	bad := func(attr, rule string) error { return &ValidationError{ID: m.ID, Attribute: attr, Rule: rule} }
	if m == nil {
		return &ValidationError{Attribute: "message", Rule: "required"}
	}
	if m.ID == "" {
		return bad("id", "required")
	}
	if m.Source == "" {
		return bad("source", "required")
	}
	if _, err := url.Parse(m.Source); err != nil {
		return bad("source", "must be a URI-reference")
	}
	if m.SpecVersion == "" {
		return bad("specversion", "required")
	}
	if m.SpecVersion != SpecVersion {
		return bad("specversion", `must be "1.0"`)
	}
	if m.Type == "" {
		return bad("type", "required")
	}
	if m.DataContentType != "" {
		if _, _, err := mime.ParseMediaType(m.DataContentType); err != nil {
			return bad("datacontenttype", "must be an RFC 2046 media type")
		}
	}
	if m.DataSchema != "" {
		u, err := url.Parse(m.DataSchema)
		if err != nil || !u.IsAbs() {
			return bad("dataschema", "must be an absolute URI")
		}
	}
	if m.TraceParent != "" && !validTraceParent(m.TraceParent) {
		return bad("traceparent", "must be a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)")
	}
	for k := range m.Extensions {
		if !validExtName(k) {
			return bad(k, "extension name must match [a-z0-9]{1,20}")
		}
		if reserved[k] {
			return bad(k, "extension name is reserved for a context attribute")
		}
	}
	if len(m.Data) > 0 && IsJSON(m.DataContentType) && !json.Valid(m.Data) {
		return bad("data", "must be valid JSON for datacontenttype "+m.DataContentType)
	}
	return nil
}

// CheckSize returns a *ValidationError for attribute "data" when m is larger
// than limit bytes (by [Message.Size]), naming the size, the limit and the way
// out. A limit of 0 or less means no limit.
func CheckSize(m *Message, limit int) error {
	if limit > 0 {
		if n := m.Size(); n > limit {
			return &ValidationError{ID: m.ID, Attribute: "data",
				Rule: fmt.Sprintf("message is %d bytes, over the limit of %d; %s", n, limit, ClaimCheckHint)}
		}
	}
	return nil
}

// ClaimCheckHint is the way out named by size-limit errors.
const ClaimCheckHint = "keep large payloads out of messages: store the data elsewhere and send its address (the claim-check pattern)"

// IsJSON reports whether a media type denotes JSON: application/json, text/json
// or any +json suffix. Parameters such as charset are ignored.
func IsJSON(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

func validExtName(s string) bool {
	if len(s) == 0 || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func validTraceParent(s string) bool {
	// version "-" trace-id "-" parent-id "-" flags; version 00 is exactly 55 chars.
	if len(s) < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return false
	}
	if s[:2] == "ff" || (s[:2] == "00" && len(s) != 55) {
		return false
	}
	hex := func(p string) bool {
		for i := 0; i < len(p); i++ {
			c := p[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
		return true
	}
	tid, pid := s[3:35], s[36:52]
	return hex(s[:2]) && hex(tid) && hex(pid) && hex(s[53:55]) &&
		tid != strings.Repeat("0", 32) && pid != strings.Repeat("0", 16)
}
