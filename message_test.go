package handoff_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/handoffhq/handoff"
)

func full() *handoff.Message {
	m := handoff.NewMessage("/orders", "com.example.order.placed", []byte(`{"id":"o-1"}`))
	m.Subject = "o-1"
	m.Time = time.Date(2026, 11, 22, 8, 0, 0, 5, time.UTC)
	m.DataSchema = "https://schemas.example.com/order/2"
	m.PartitionKey = "c-9"
	m.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	m.TraceState = "k=v"
	m.CorrelationID = "corr"
	m.CausationID = "cause"
	m.Extensions = map[string]string{"tenant": "acme"}
	return m
}

func TestNewID_IsUUIDv7AndSortable(t *testing.T) {
	a, b := handoff.NewID(), handoff.NewID()
	if len(a) != 36 || a[14] != '7' {
		t.Fatalf("NewID() = %q, want a UUID of version 7", a)
	}
	if a == b {
		t.Fatal("two ids are equal")
	}
	if a > b {
		t.Fatalf("later id %s sorts before earlier %s", b, a)
	}
}

func TestValidate_NamesAttributeAndRule(t *testing.T) {
	cases := []struct {
		name      string
		mutate    func(m *handoff.Message)
		attribute string
		rule      string
	}{
		{"missing id", func(m *handoff.Message) { m.ID = "" }, "id", "required"},
		{"missing source", func(m *handoff.Message) { m.Source = "" }, "source", "required"},
		{"bad source", func(m *handoff.Message) { m.Source = "%zz" }, "source", "URI-reference"},
		{"missing type", func(m *handoff.Message) { m.Type = "" }, "type", "required"},
		{"missing specversion", func(m *handoff.Message) { m.SpecVersion = "" }, "specversion", "required"},
		{"wrong specversion", func(m *handoff.Message) { m.SpecVersion = "0.3" }, "specversion", `"1.0"`},
		{"bad media type", func(m *handoff.Message) { m.DataContentType = "json;;" }, "datacontenttype", "RFC 2046"},
		{"relative dataschema", func(m *handoff.Message) { m.DataSchema = "/schemas/1" }, "dataschema", "absolute URI"},
		{"bad traceparent", func(m *handoff.Message) { m.TraceParent = "00-xyz" }, "traceparent", "W3C"},
		{"zero trace id", func(m *handoff.Message) {
			m.TraceParent = "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
		}, "traceparent", "W3C"},
		{"uppercase extension", func(m *handoff.Message) { m.Extensions = map[string]string{"Tenant": "x"} }, "Tenant", "[a-z0-9]{1,20}"},
		{"long extension", func(m *handoff.Message) { m.Extensions = map[string]string{strings.Repeat("a", 21): "x"} }, strings.Repeat("a", 21), "[a-z0-9]{1,20}"},
		{"reserved extension", func(m *handoff.Message) { m.Extensions = map[string]string{"partitionkey": "x"} }, "partitionkey", "reserved"},
		{"data not JSON", func(m *handoff.Message) { m.Data = []byte(`{"id":`) }, "data", "valid JSON"},
		{"data not JSON for +json", func(m *handoff.Message) {
			m.DataContentType = "application/cloudevents+json"
			m.Data = []byte("nope")
		}, "data", "valid JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := full()
			tc.mutate(m)
			err := m.Validate()
			var ve *handoff.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want *ValidationError", err)
			}
			if ve.Attribute != tc.attribute || !strings.Contains(ve.Rule, tc.rule) {
				t.Fatalf("got %s: %s, want %s: …%s…", ve.Attribute, ve.Rule, tc.attribute, tc.rule)
			}
			if !errors.Is(err, handoff.ErrInvalid) {
				t.Fatal("validation error does not match ErrInvalid")
			}
		})
	}
	if err := full().Validate(); err != nil {
		t.Fatalf("a full valid message: %v", err)
	}
	m := full()
	m.DataContentType = "application/octet-stream"
	m.Data = []byte{0, 1, 2}
	if err := m.Validate(); err != nil {
		t.Fatalf("binary data with a binary content type: %v", err)
	}
}

func TestCheckSize(t *testing.T) {
	m := full()
	if err := handoff.CheckSize(m, 0); err != nil {
		t.Fatalf("no limit: %v", err)
	}
	if err := handoff.CheckSize(m, m.Size()); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	err := handoff.CheckSize(m, m.Size()-1)
	var ve *handoff.ValidationError
	if !errors.As(err, &ve) || ve.Attribute != "data" || !strings.Contains(ve.Rule, "over the limit") {
		t.Fatalf("over the limit: %v", err)
	}
}

func equal(t *testing.T, got, want *handoff.Message) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		t.Fatalf("round trip changed the message:\n got %s\nwant %s", g, w)
	}
	if !bytes.Equal(got.Data, want.Data) {
		t.Fatalf("data %q, want %q", got.Data, want.Data)
	}
}

func TestBindings_RoundTripEveryAttribute(t *testing.T) {
	for _, b := range []handoff.Binding{handoff.HTTPBinding, handoff.KafkaBinding, handoff.AMQPBinding, handoff.NATSBinding} {
		t.Run(b.Name, func(t *testing.T) {
			want := full()
			h := b.Headers(want)
			got, err := b.DecodeMap(h, want.Data)
			if err != nil {
				t.Fatal(err)
			}
			equal(t, got, want)
		})
	}
}

func TestHTTPBinding_UsesStandardHeaders(t *testing.T) {
	m := full()
	hdr := http.Header{}
	for k, v := range handoff.HTTPBinding.Headers(m) {
		hdr.Set(k, v)
	}
	if hdr.Get("Ce-Id") != m.ID || hdr.Get("Content-Type") != "application/json" || hdr.Get("Traceparent") != m.TraceParent {
		t.Fatalf("headers %v", hdr)
	}
	// http.Header canonicalises names; decoding must not care.
	keys := make([]string, 0, len(hdr))
	for k := range hdr {
		keys = append(keys, k)
	}
	got, err := handoff.HTTPBinding.Decode(keys, hdr.Get, m.Data)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, got, m)
}

func TestBindings_DecodeRefusesAndKeepsBody(t *testing.T) {
	body := []byte(`{"x":1}`)
	m, err := handoff.KafkaBinding.DecodeMap(map[string]string{"ce_id": "1", "ce_type": "t", "ce_specversion": "1.0", "ce_time": "yesterday", "ce_source": "/s"}, body)
	var ve *handoff.ValidationError
	if !errors.As(err, &ve) || ve.Attribute != "time" {
		t.Fatalf("bad time: %v", err)
	}
	if !bytes.Equal(m.Data, body) || m.ID != "1" {
		t.Fatalf("refused message lost what was read: %+v", m)
	}
}

func TestStructuredJSON_RoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name, ct string
		data     []byte
	}{
		{"json data", "application/json", []byte(`{"a":[1,2]}`)},
		{"binary data", "application/octet-stream", []byte{0, 0xff, 'x'}},
		{"text data", "text/plain", []byte("hello")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := full()
			want.DataContentType = tc.ct
			want.Data = tc.data
			b, err := json.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := handoff.ParseJSON(b)
			if err != nil {
				t.Fatalf("ParseJSON(%s): %v", b, err)
			}
			equal(t, got, want)
		})
	}
}

func TestParseJSON_Refuses(t *testing.T) {
	cases := map[string]string{
		`[1]`: "event",
		`{"id":"1","source":"/s","type":"t","specversion":"1.0","data":1,"data_base64":"AA=="}`: "data",
		`{"id":"1","source":"/s","type":"t","specversion":"1.0","data_base64":"!!"}`:            "data_base64",
		`{"id":1,"source":"/s","type":"t","specversion":"1.0"}`:                                 "id",
		`{"id":"1","type":"t","specversion":"1.0"}`:                                             "source",
	}
	for in, attr := range cases {
		_, err := handoff.ParseJSON([]byte(in))
		var ve *handoff.ValidationError
		if !errors.As(err, &ve) || ve.Attribute != attr {
			t.Errorf("ParseJSON(%s) = %v, want an error naming %s", in, err, attr)
		}
	}
}

func TestPermanent(t *testing.T) {
	base := errors.New("bad card")
	err := fmt.Errorf("charge: %w", handoff.Permanent(base))
	if !handoff.IsPermanent(err) || !errors.Is(err, base) {
		t.Fatalf("Permanent lost its mark or cause: %v", err)
	}
	if handoff.IsPermanent(base) || handoff.Permanent(nil) != nil {
		t.Fatal("IsPermanent(plain) or Permanent(nil) wrong")
	}
}

func FuzzParseJSON(f *testing.F) {
	b, _ := json.Marshal(full())
	f.Add(b)
	f.Add([]byte(`{"id":"1","source":"/s","type":"t","specversion":"1.0","data_base64":"AA=="}`))
	f.Add([]byte(`{"specversion":"1.0","ext":true,"n":-1}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := handoff.ParseJSON(in)
		if err != nil {
			return
		}
		// Whatever parses and validates must survive a round trip.
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("marshal a parsed message: %v", err)
		}
		m2, err := handoff.ParseJSON(out)
		if err != nil {
			t.Fatalf("re-parse %s: %v", out, err)
		}
		if m2.ID != m.ID || !bytes.Equal(m2.Data, m.Data) && !(len(m.Data) == 0 && len(m2.Data) == 0) {
			t.Fatalf("round trip changed id or data: %q→%q", m.Data, m2.Data)
		}
	})
}

func FuzzBindingDecode(f *testing.F) {
	f.Add("ce-id", "1", "ce-time", "2026-01-01T00:00:00Z", []byte(`{}`))
	f.Add("ce-traceparent", "00-", "content-type", "application/json", []byte(`{`))
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string, body []byte) {
		h := map[string]string{"ce-source": "/s", "ce-type": "t", "ce-specversion": "1.0", k1: v1, k2: v2}
		m, err := handoff.NATSBinding.DecodeMap(h, body)
		if m == nil {
			t.Fatal("Decode returned a nil message")
		}
		if err == nil {
			if verr := m.Validate(); verr != nil {
				t.Fatalf("Decode accepted a message Validate refuses: %v", verr)
			}
		}
	})
}
