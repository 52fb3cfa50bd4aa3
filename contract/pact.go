package contract

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
)

// Spec is a version of the Pact specification.
type Spec int

// The Pact specification versions handoff reads; it writes V3 and V4.
const (
	V2 Spec = 2
	V3 Spec = 3
	V4 Spec = 4
)

func (s Spec) String() string {
	switch s {
	case V2:
		return "2.0.0"
	case V3:
		return "3.0.0"
	default:
		return "4.0"
	}
}

// Interaction types, as a V4 pact names them.
const (
	TypeHTTP          = "Synchronous/HTTP"
	TypeMessage       = "Asynchronous/Messages"
	TypeSyncMessage   = "Synchronous/Messages"
	implementationKey = "handoff"
)

// Pact is a contract between one consumer and one provider: the
// interactions the consumer relies on. It reads and writes the Pact JSON
// format (V2 and V3 files are read; V3 and V4 are written).
type Pact struct {
	Consumer     string
	Provider     string
	Interactions []*Interaction
	// Spec is the version the file was read as, or is to be written as.
	Spec Spec
	// Metadata is the file's metadata object, as read; the writer sets
	// pactSpecification and handoff's own version in it.
	Metadata map[string]json.RawMessage
}

// ProviderState is a state the provider must be in for an interaction.
type ProviderState struct {
	Name   string         `json:"name"`
	Params map[string]any `json:"params,omitempty"`
}

// Interaction is one request/response or one message.
type Interaction struct {
	Type           string // TypeHTTP, TypeMessage or TypeSyncMessage
	Description    string
	Key            string // V4 only
	ProviderStates []ProviderState
	Pending        bool // V4: a pending interaction does not fail verification

	Request  *Request  // TypeHTTP
	Response *Response // TypeHTTP
	Message  *Message  // TypeMessage

	// Extra holds the attributes handoff does not interpret (comments,
	// plugin configuration, markup, a synchronous message's request and
	// responses), written back as read.
	Extra map[string]json.RawMessage
}

// Request is the HTTP request of an interaction.
type Request struct {
	Method  string
	Path    string
	Query   Query
	Headers Headers
	Body    Body
	Rules   Rules
	Gens    Generators
}

// Response is the HTTP response of an interaction.
type Response struct {
	Status  int
	Headers Headers
	Body    Body
	Rules   Rules
	Gens    Generators
}

// Message is an asynchronous message: contents and metadata.
type Message struct {
	Contents Body
	Metadata map[string]any
	Rules    Rules
	Gens     Generators
}

// Query holds query parameters with their values in order.
type Query map[string][]string

// Headers holds header values by name as written in the pact. Look-ups
// with Get are case-insensitive.
type Headers map[string][]string

// Get returns the values of the header named name, ignoring case.
func (h Headers) Get(name string) ([]string, bool) {
	if v, ok := h[name]; ok {
		return v, true
	}
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

// names returns the header names sorted.
func (h Headers) names() []string {
	out := make([]string, 0, len(h))
	for k := range h {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Body is a request or response body or a message's contents.
type Body struct {
	// Present is false when the pact says nothing about the body: any
	// body then matches. A present, empty body must be empty.
	Present bool
	// ContentType is the body's media type, when known.
	ContentType string
	// Content is the body's bytes: JSON text for JSON bodies.
	Content []byte
	// TypeHint is V4's contentTypeHint (TEXT or BINARY), as read.
	TypeHint string
}

// JSONBody returns a present body holding v encoded as JSON.
func JSONBody(v any) (Body, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Body{}, err
	}
	return Body{Present: true, ContentType: "application/json", Content: b}, nil
}

// isJSON reports whether the body's content type or content says JSON.
func (b Body) isJSON() bool {
	if b.ContentType != "" {
		return isJSONType(b.ContentType)
	}
	t := strings.TrimLeft(string(b.Content), " \t\r\n")
	return strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") && json.Valid(b.Content)
}

func isJSONType(ct string) bool {
	mt := mediaType(ct)
	return mt == "application/json" || strings.HasSuffix(mt, "+json") || mt == "text/json"
}

func isXMLType(ct string) bool {
	mt := mediaType(ct)
	return mt == "application/xml" || mt == "text/xml" || strings.HasSuffix(mt, "+xml")
}

func mediaType(ct string) string {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

// contentType returns the body's content type: its own, else the
// Content-Type header, else one detected from the content.
func contentType(b Body, h Headers) string {
	if b.ContentType != "" {
		return b.ContentType
	}
	if v, ok := h.Get("Content-Type"); ok && len(v) > 0 {
		return strings.Join(v, ", ")
	}
	return detectContentType(b.Content)
}

func detectContentType(c []byte) string {
	t := strings.TrimLeft(string(c), " \t\r\n")
	switch {
	case t == "":
		return ""
	case (strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[")) && json.Valid(c):
		return "application/json"
	case strings.HasPrefix(t, "<?xml") || strings.HasPrefix(t, "<"):
		return "application/xml"
	}
	ct := http.DetectContentType(c)
	return ct
}

// Key returns the interaction's key: its Key if set, else one made of its
// description and provider states, which is what tells two interactions of
// one pact apart.
func (i *Interaction) key() string {
	var b strings.Builder
	b.WriteString(i.Description)
	for _, s := range i.ProviderStates {
		b.WriteString("\x00")
		b.WriteString(s.Name)
		if len(s.Params) > 0 {
			p, _ := json.Marshal(s.Params)
			b.Write(p)
		}
	}
	return b.String()
}

// HasMessages reports whether the pact holds message interactions.
func (p *Pact) HasMessages() bool {
	for _, i := range p.Interactions {
		if i.Type != TypeHTTP {
			return true
		}
	}
	return false
}

// Merge adds the interactions of other to p. An interaction of other with
// the same description and provider states as one of p replaces it.
func (p *Pact) Merge(other *Pact) {
	idx := make(map[string]int, len(p.Interactions))
	for n, i := range p.Interactions {
		idx[i.key()] = n
	}
	for _, i := range other.Interactions {
		if n, ok := idx[i.key()]; ok {
			p.Interactions[n] = i
			continue
		}
		idx[i.key()] = len(p.Interactions)
		p.Interactions = append(p.Interactions, i)
	}
}
