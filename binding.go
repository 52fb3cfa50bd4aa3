package handoff

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Binding maps a message to a transport's headers in CloudEvents binary mode:
// each attribute becomes a header named Prefix+name, datacontenttype becomes
// the transport's content-type header, and the data is the body.
type Binding struct {
	Name        string // for errors: "http", "kafka", "amqp", "nats"
	Prefix      string // attribute header prefix: "ce-", "ce_", "cloudEvents:"
	ContentType string // header carrying datacontenttype
	// PlainTrace sends traceparent and tracestate under their W3C names,
	// without the prefix, so ordinary tracing middleware finds them.
	PlainTrace bool
}

// The CloudEvents protocol bindings handoff uses.
var (
	HTTPBinding  = Binding{Name: "http", Prefix: "ce-", ContentType: "Content-Type", PlainTrace: true}
	KafkaBinding = Binding{Name: "kafka", Prefix: "ce_", ContentType: "content-type"}
	AMQPBinding  = Binding{Name: "amqp", Prefix: "cloudEvents:", ContentType: "content-type"}
	NATSBinding  = Binding{Name: "nats", Prefix: "ce-", ContentType: "content-type", PlainTrace: true}
)

// Headers returns m's attributes as binary-mode headers. The data is not
// included: send it as the body.
func (b Binding) Headers(m *Message) map[string]string {
	h := make(map[string]string, 8+len(m.Extensions))
	set := func(name, v string) {
		if v != "" {
			h[b.Prefix+name] = v
		}
	}
	set("id", m.ID)
	set("source", m.Source)
	set("specversion", m.SpecVersion)
	set("type", m.Type)
	set("subject", m.Subject)
	if !m.Time.IsZero() {
		set("time", m.Time.UTC().Format(time.RFC3339Nano))
	}
	set("dataschema", m.DataSchema)
	if m.DataContentType != "" {
		h[b.ContentType] = m.DataContentType
	}
	set("partitionkey", m.PartitionKey)
	set("correlationid", m.CorrelationID)
	set("causationid", m.CausationID)
	if b.PlainTrace {
		if m.TraceParent != "" {
			h["traceparent"] = m.TraceParent
		}
		if m.TraceState != "" {
			h["tracestate"] = m.TraceState
		}
	} else {
		set("traceparent", m.TraceParent)
		set("tracestate", m.TraceState)
	}
	for k, v := range m.Extensions {
		set(k, v)
	}
	return h
}

// Decode builds a message from binary-mode headers and a body, and validates
// it. get looks a header up (case-insensitively where the transport's headers
// are); keys lists the header names present. On error the returned message
// still holds what could be read, with the body in Data, for dead-lettering.
func (b Binding) Decode(keys []string, get func(string) string, body []byte) (*Message, error) {
	m := &Message{Data: body}
	pl := strings.ToLower(b.Prefix)
	ctl := strings.ToLower(b.ContentType)
	var errTime error
	for _, k := range keys {
		lk := strings.ToLower(k)
		v := get(k)
		switch {
		case lk == ctl:
			m.DataContentType = v
		case b.PlainTrace && lk == "traceparent":
			m.TraceParent = v
		case b.PlainTrace && lk == "tracestate":
			m.TraceState = v
		case strings.HasPrefix(lk, pl):
			if err := m.setAttr(lk[len(pl):], v); err != nil && errTime == nil {
				errTime = err
			}
		}
	}
	if errTime != nil {
		return m, errTime
	}
	if err := m.Validate(); err != nil {
		return m, err
	}
	return m, nil
}

// DecodeMap is Decode for headers held in a map with exact-case keys.
func (b Binding) DecodeMap(h map[string]string, body []byte) (*Message, error) {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return b.Decode(keys, func(k string) string { return h[k] }, body)
}

func (m *Message) setAttr(name, v string) error {
	switch name {
	case "id":
		m.ID = v
	case "source":
		m.Source = v
	case "specversion":
		m.SpecVersion = v
	case "type":
		m.Type = v
	case "subject":
		m.Subject = v
	case "time":
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return &ValidationError{ID: m.ID, Attribute: "time", Rule: "must be an RFC 3339 timestamp"}
		}
		m.Time = t
	case "dataschema":
		m.DataSchema = v
	case "datacontenttype":
		m.DataContentType = v
	case "partitionkey":
		m.PartitionKey = v
	case "traceparent":
		m.TraceParent = v
	case "tracestate":
		m.TraceState = v
	case "correlationid":
		m.CorrelationID = v
	case "causationid":
		m.CausationID = v
	default:
		if m.Extensions == nil {
			m.Extensions = make(map[string]string)
		}
		m.Extensions[name] = v
	}
	return nil
}

// StructuredContentType is the media type of the JSON structured mode.
const StructuredContentType = "application/cloudevents+json"

// MarshalJSON encodes m in the CloudEvents JSON structured mode (JSON event
// format). JSON data is embedded as a value; other data is sent as data_base64.
func (m *Message) MarshalJSON() ([]byte, error) {
	obj := make(map[string]any, 12+len(m.Extensions))
	for k, v := range m.Extensions {
		obj[k] = v
	}
	put := func(k, v string) {
		if v != "" {
			obj[k] = v
		}
	}
	put("id", m.ID)
	put("source", m.Source)
	put("specversion", m.SpecVersion)
	put("type", m.Type)
	put("subject", m.Subject)
	if !m.Time.IsZero() {
		obj["time"] = m.Time.UTC().Format(time.RFC3339Nano)
	}
	put("datacontenttype", m.DataContentType)
	put("dataschema", m.DataSchema)
	put("partitionkey", m.PartitionKey)
	put("traceparent", m.TraceParent)
	put("tracestate", m.TraceState)
	put("correlationid", m.CorrelationID)
	put("causationid", m.CausationID)
	if m.Data != nil {
		if (m.DataContentType == "" || IsJSON(m.DataContentType)) && json.Valid(m.Data) {
			obj["data"] = json.RawMessage(m.Data)
		} else {
			obj["data_base64"] = base64.StdEncoding.EncodeToString(m.Data)
		}
	}
	return json.Marshal(obj)
}

// UnmarshalJSON decodes the CloudEvents JSON structured mode. It checks the
// shape of each attribute but does not call Validate; [ParseJSON] does both.
func (m *Message) UnmarshalJSON(b []byte) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return &ValidationError{Attribute: "event", Rule: "must be a JSON object: " + err.Error()}
	}
	*m = Message{}
	data, hasData := obj["data"]
	b64, hasB64 := obj["data_base64"]
	delete(obj, "data")
	delete(obj, "data_base64")
	for k, raw := range obj {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			// CloudEvents allows boolean and integer extensions; keep their JSON text.
			if len(raw) > 0 && (raw[0] == 't' || raw[0] == 'f' || raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')) && !reserved[k] {
				s = string(raw)
			} else {
				return &ValidationError{ID: m.ID, Attribute: k, Rule: "must be a string"}
			}
		}
		if err := m.setAttr(k, s); err != nil {
			return err
		}
	}
	switch {
	case hasData && hasB64:
		return &ValidationError{ID: m.ID, Attribute: "data", Rule: "data and data_base64 are mutually exclusive"}
	case hasB64:
		var s string
		if err := json.Unmarshal(b64, &s); err != nil {
			return &ValidationError{ID: m.ID, Attribute: "data_base64", Rule: "must be a string"}
		}
		d, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return &ValidationError{ID: m.ID, Attribute: "data_base64", Rule: "must be base64"}
		}
		m.Data = d
	case hasData:
		if m.DataContentType == "" || IsJSON(m.DataContentType) {
			m.Data = []byte(data)
		} else {
			// Non-JSON data in structured mode is a JSON string.
			var s string
			if err := json.Unmarshal(data, &s); err != nil {
				return &ValidationError{ID: m.ID, Attribute: "data", Rule: "must be a JSON string for datacontenttype " + m.DataContentType}
			}
			m.Data = []byte(s)
		}
	}
	return nil
}

// ParseJSON decodes a structured-mode event and validates it.
func ParseJSON(b []byte) (*Message, error) {
	m := &Message{}
	if err := json.Unmarshal(b, m); err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			return m, ve
		}
		return m, fmt.Errorf("handoff: parse event: %w", err)
	}
	if err := m.Validate(); err != nil {
		return m, err
	}
	return m, nil
}
