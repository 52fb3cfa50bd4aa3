package registry

import (
	"bytes"
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/schema"
)

func TestHeader_RoundTrip(t *testing.T) {
	for _, id := range []int{0, 1, 255, 256, 1 << 24, math.MaxInt32} {
		b := AppendHeader([]byte("x"), id)
		if len(b) != 1+HeaderSize || b[1] != 0 {
			t.Fatalf("AppendHeader(%d) = %x", id, b)
		}
		got, rest, err := ParseHeader(append(b[1:], "payload"...))
		if err != nil || got != id || string(rest) != "payload" {
			t.Errorf("ParseHeader(AppendHeader(%d)) = %d, %q, %v", id, got, rest, err)
		}
	}
	if b := AppendHeader(nil, 0x01020304); !bytes.Equal(b, []byte{0, 1, 2, 3, 4}) {
		t.Errorf("AppendHeader is not big-endian: %x", b)
	}
}

func TestHeader_ParseRefusesBadFrames(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "0 bytes, shorter than the 5-byte header"},
		{"four bytes", []byte{0, 0, 0, 1}, "4 bytes, shorter"},
		{"bad magic", []byte{1, 0, 0, 0, 1}, "magic byte is 0x1"},
		{"json, not framed", []byte(`{"a":1}`), "magic byte is 0x7b"},
		{"id out of range", []byte{0, 0x80, 0, 0, 0}, "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseHeader(tt.in)
			if !errors.Is(err, ErrWireFormat) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseHeader(%x) = %v, want ErrWireFormat and %q", tt.in, err, tt.want)
			}
		})
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 1})
	f.Add([]byte{0, 0, 0, 0, 1, 'h', 'i'})
	f.Add([]byte{1, 2, 3, 4, 5})
	f.Add([]byte{0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, rest, err := ParseHeader(b)
		if err != nil {
			if !errors.Is(err, ErrWireFormat) {
				t.Fatalf("error %v does not match ErrWireFormat", err)
			}
			return
		}
		if id < 0 || id > math.MaxInt32 || len(rest) != len(b)-HeaderSize {
			t.Fatalf("ParseHeader(%x) = %d, %d bytes", b, id, len(rest))
		}
		if again := append(AppendHeader(nil, id), rest...); !bytes.Equal(again, b) {
			t.Fatalf("re-framed %x, want %x", again, b)
		}
	})
}

func TestMessageIndexes_Encoding(t *testing.T) {
	tests := []struct {
		indexes []int
		want    []byte
		parsed  []int
	}{
		{[]int{0}, []byte{0}, []int{0}},
		{nil, []byte{0}, []int{0}},
		{[]int{1}, []byte{2, 2}, []int{1}},
		{[]int{0, 0}, []byte{4, 0, 0}, []int{0, 0}},
		{[]int{2, 1, 0}, []byte{6, 4, 2, 0}, []int{2, 1, 0}},
		{[]int{64}, []byte{2, 0x80, 0x01}, []int{64}},
	}
	for _, tt := range tests {
		b := AppendMessageIndexes(nil, tt.indexes)
		if !bytes.Equal(b, tt.want) {
			t.Errorf("AppendMessageIndexes(%v) = %x, want %x", tt.indexes, b, tt.want)
		}
		got, rest, err := ParseMessageIndexes(append(b, 0xAA))
		if err != nil || !slices.Equal(got, tt.parsed) || !bytes.Equal(rest, []byte{0xAA}) {
			t.Errorf("ParseMessageIndexes(%x) = %v, %x, %v; want %v", b, got, rest, err, tt.parsed)
		}
	}
}

func TestMessageIndexes_ParseRefusesBadInput(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "count is truncated"},
		{"truncated count", []byte{0x80}, "count is truncated"},
		{"negative count", []byte{1}, "count -1 out of range"},
		{"huge count", []byte{0xfe, 0xff, 0xff, 0xff, 0x0f}, "out of range"},
		{"count over the bytes", []byte{6, 2}, "count 3 but 1 bytes follow"},
		{"truncated index", []byte{4, 2, 0x80}, "index 1 is truncated"},
		{"negative index", []byte{2, 1}, "index 0 is -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseMessageIndexes(tt.in)
			if !errors.Is(err, ErrWireFormat) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseMessageIndexes(%x) = %v, want ErrWireFormat and %q", tt.in, err, tt.want)
			}
		})
	}
}

func FuzzParseMessageIndexes(f *testing.F) {
	f.Add([]byte{0})
	f.Add([]byte{2, 2, 'x'})
	f.Add([]byte{6, 4, 2, 0})
	f.Add([]byte{1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		idx, rest, err := ParseMessageIndexes(b)
		if err != nil {
			if !errors.Is(err, ErrWireFormat) {
				t.Fatalf("error %v does not match ErrWireFormat", err)
			}
			return
		}
		if len(idx) == 0 || len(idx) > maxMessageIndexes || len(rest) >= len(b) {
			t.Fatalf("ParseMessageIndexes(%x) = %v, %d bytes left", b, idx, len(rest))
		}
		for _, i := range idx {
			if i < 0 || i > math.MaxInt32 {
				t.Fatalf("index %d out of range", i)
			}
		}
		again, rest2, err := ParseMessageIndexes(append(AppendMessageIndexes(nil, idx), rest...))
		if err != nil || !slices.Equal(again, idx) || !bytes.Equal(rest2, rest) {
			t.Fatalf("round trip of %v: %v, %v", idx, again, err)
		}
	})
}

// requireParser skips a test while the schema package cannot parse t yet.
func requireParser(tb testing.TB, s schema.Schema) {
	tb.Helper()
	if _, err := schema.Parse(s); err != nil && strings.Contains(err.Error(), "not implemented") {
		tb.Skipf("schema package cannot parse %s yet: %v", s.Type, err)
	}
}

type avroUserV1 struct {
	Name string `avro:"name"`
}

type avroUserV2 struct {
	Name string `avro:"name"`
	Age  int    `avro:"age"`
}

const avroUserWithAge = `{"type":"record","name":"User","namespace":"acme","fields":[{"name":"name","type":"string"},{"name":"age","type":"int","default":7}]}`

func TestSerde_AvroRoundTrip(t *testing.T) {
	c, f := newTestClient(t)
	ctx := context.Background()
	ser, err := NewSerializer(c, "users-value", WithSchema(SchemaSpec{Text: avroUser}))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ser.Serialize(ctx, avroUserV1{Name: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	// Header with id 1, then Avro: zigzag length 3, "ann".
	if want := []byte{0, 0, 0, 0, 1, 6, 'a', 'n', 'n'}; !bytes.Equal(b, want) {
		t.Fatalf("Serialize = %x, want %x", b, want)
	}
	if _, err := ser.Serialize(ctx, avroUserV1{Name: "bob"}); err != nil {
		t.Fatal(err)
	}
	if n := f.count("POST /subjects/{subject}/versions"); n != 1 {
		t.Errorf("register requests = %d, want 1", n)
	}

	// A fresh client, as a consumer elsewhere would have.
	_, de := freshDeserializer(t, c)
	var got avroUserV1
	if err := de.Deserialize(ctx, b, &got); err != nil || got.Name != "ann" {
		t.Fatalf("Deserialize = %+v, %v", got, err)
	}
	var generic any
	if err := de.Deserialize(ctx, b, &generic); err != nil {
		t.Fatal(err)
	}
	if m, ok := generic.(map[string]any); !ok || m["name"] != "ann" {
		t.Errorf("Deserialize into *any = %#v", generic)
	}
	if n := f.count("GET /schemas/ids/{id}"); n != 1 {
		t.Errorf("schema fetches = %d, want 1", n)
	}

	if _, err := ser.Serialize(ctx, map[string]any{"name": 42}); !errors.Is(err, schema.ErrInvalidPayload) {
		t.Errorf("Serialize of a wrong value: %v, want ErrInvalidPayload", err)
	}
	if err := de.Deserialize(ctx, []byte{0, 0, 0, 0, 1, 0x7f}, &got); !errors.Is(err, schema.ErrInvalidPayload) {
		t.Errorf("Deserialize of truncated Avro: %v, want ErrInvalidPayload", err)
	}
}

func TestSerde_AvroReaderSchemaResolvesOldData(t *testing.T) {
	c, _ := newTestClient(t)
	ctx := context.Background()
	ser, err := NewSerializer(c, "users-value", WithSchema(SchemaSpec{Text: avroUser}))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ser.Serialize(ctx, avroUserV1{Name: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	de, err := NewDeserializer(c, WithReaderSchema(SchemaSpec{Text: avroUserWithAge}))
	if err != nil {
		t.Fatal(err)
	}
	var got avroUserV2
	if err := de.Deserialize(ctx, b, &got); err != nil {
		t.Fatal(err)
	}
	if got != (avroUserV2{Name: "ann", Age: 7}) {
		t.Errorf("Deserialize = %+v, want the reader's default age 7", got)
	}

	// A reader that cannot read the writer's data says so.
	bad, err := NewDeserializer(c, WithReaderSchema(SchemaSpec{Text: `{"type":"record","name":"User","namespace":"acme","fields":[{"name":"id","type":"long"}]}`}))
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.Deserialize(ctx, b, &got); err == nil || !strings.Contains(err.Error(), "cannot read") {
		t.Errorf("incompatible reader: %v", err)
	}
}

func TestSerde_AvroWithLatestWithIDAndLookupOnly(t *testing.T) {
	c, f := newTestClient(t)
	ctx := context.Background()
	seedFake(t, f, "users-value", fakeSchema{Schema: avroUser})
	seedFake(t, f, "users-value", fakeSchema{Schema: avroUserWithAge})
	de, err := NewDeserializer(c)
	if err != nil {
		t.Fatal(err)
	}

	latest, err := NewSerializer(c, "users-value", WithLatest())
	if err != nil {
		t.Fatal(err)
	}
	b, err := latest.Serialize(ctx, avroUserV2{Name: "ann", Age: 3})
	if err != nil {
		t.Fatal(err)
	}
	if id, _, _ := ParseHeader(b); id != 2 {
		t.Errorf("WithLatest wrote with schema %d, want 2", id)
	}
	var got avroUserV2
	if err := de.Deserialize(ctx, b, &got); err != nil || got != (avroUserV2{"ann", 3}) {
		t.Errorf("Deserialize = %+v, %v", got, err)
	}

	byID, err := NewSerializer(c, "users-value", WithSchemaID(1))
	if err != nil {
		t.Fatal(err)
	}
	if b, err = byID.Serialize(ctx, avroUserV1{Name: "bob"}); err != nil {
		t.Fatal(err)
	}
	if id, _, _ := ParseHeader(b); id != 1 {
		t.Errorf("WithSchemaID(1) wrote with schema %d", id)
	}

	lookup, err := NewSerializer(c, "users-value", WithSchema(SchemaSpec{Text: avroUser}), WithAutoRegister(false))
	if err != nil {
		t.Fatal(err)
	}
	if b, err = lookup.Serialize(ctx, avroUserV1{Name: "cy"}); err != nil {
		t.Fatal(err)
	}
	if id, _, _ := ParseHeader(b); id != 1 {
		t.Errorf("lookup wrote with schema %d, want 1", id)
	}
	missing, err := NewSerializer(c, "users-value", WithSchema(SchemaSpec{Text: `"string"`}), WithAutoRegister(false))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := missing.Serialize(ctx, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("lookup of an unregistered schema: %v, want ErrNotFound", err)
	}
	if n := f.count("POST /subjects/{subject}/versions"); n != 0 {
		t.Errorf("register requests = %d, want 0", n)
	}
}

func TestSerde_AvroWithReferences(t *testing.T) {
	c, f := newTestClient(t)
	ctx := context.Background()
	const (
		address = `{"type":"record","name":"Address","namespace":"acme","fields":[{"name":"city","type":"string"}]}`
		order   = `{"type":"record","name":"Order","namespace":"acme","fields":[{"name":"id","type":"long"},{"name":"ship","type":"acme.Address"}]}`
	)
	seedFake(t, f, "address", fakeSchema{Schema: address})
	ser, err := NewSerializer(c, "orders-value", WithSchema(SchemaSpec{Text: order, References: []Reference{{Name: "acme.Address", Subject: "address", Version: 1}}}))
	if err != nil {
		t.Fatal(err)
	}
	type addr struct {
		City string `avro:"city"`
	}
	type ord struct {
		ID   int64 `avro:"id"`
		Ship addr  `avro:"ship"`
	}
	b, err := ser.Serialize(ctx, ord{ID: 9, Ship: addr{City: "Ghent"}})
	if err != nil {
		t.Fatal(err)
	}
	de, err := NewDeserializer(c)
	if err != nil {
		t.Fatal(err)
	}
	var got ord
	if err := de.Deserialize(ctx, b, &got); err != nil || got != (ord{9, addr{"Ghent"}}) {
		t.Errorf("Deserialize = %+v, %v", got, err)
	}
}

func TestSerde_DeserializeRefusesBadInput(t *testing.T) {
	c, f := newTestClient(t)
	ctx := context.Background()
	seedFake(t, f, "users-value", fakeSchema{Schema: avroUser})
	de, err := NewDeserializer(c)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := de.Deserialize(ctx, []byte{1, 0, 0, 0, 1, 0}, &v); !errors.Is(err, ErrWireFormat) {
		t.Errorf("bad magic: %v", err)
	}
	if err := de.Deserialize(ctx, []byte{0, 0, 0}, &v); !errors.Is(err, ErrWireFormat) {
		t.Errorf("short: %v", err)
	}
	err = de.Deserialize(ctx, []byte{0, 0, 0, 0, 42, 0}, &v)
	if e := asRegistryError(t, err); e.Code != CodeSchemaNotFound || !strings.Contains(err.Error(), "schema 42") {
		t.Errorf("unknown id: %v", err)
	}
}

func TestSerde_ConstructorsRefuseBadOptions(t *testing.T) {
	c, _ := newTestClient(t)
	spec := WithSchema(SchemaSpec{Text: avroUser})
	tests := []struct {
		name    string
		subject string
		opts    []SerdeOption
	}{
		{"no schema", "s", nil},
		{"two schemas", "s", []SerdeOption{spec, WithLatest()}},
		{"empty subject", "", []SerdeOption{spec}},
		{"auto-register without schema", "s", []SerdeOption{WithLatest(), WithAutoRegister(true)}},
		{"reader schema on a serializer", "s", []SerdeOption{spec, WithReaderSchema(SchemaSpec{Text: avroUser})}},
		{"bad id", "s", []SerdeOption{WithSchemaID(-1)}},
		{"bad type", "s", []SerdeOption{WithSchema(SchemaSpec{Type: "XML", Text: "<a/>"})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewSerializer(c, tt.subject, tt.opts...); err == nil {
				t.Error("NewSerializer succeeded, want an error")
			}
		})
	}
	if _, err := NewSerializer(nil, "s", spec); err == nil {
		t.Error("NewSerializer(nil) succeeded")
	}
	for name, opts := range map[string][]SerdeOption{
		"WithLatest":          {WithLatest()},
		"JSON reader schema":  {WithReaderSchema(SchemaSpec{Type: schema.JSON, Text: jsonUser})},
		"WithSchema":          {spec},
		"WithAutoRegister":    {WithAutoRegister(false)},
		"WithSchemaID on one": {WithSchemaID(3)},
	} {
		if _, err := NewDeserializer(c, opts...); err == nil {
			t.Errorf("NewDeserializer with %s succeeded, want an error", name)
		}
	}
}

func TestSerde_JSONRoundTrip(t *testing.T) {
	c, f := newTestClient(t)
	ctx := context.Background()
	type user struct {
		Name string `json:"name"`
	}
	spec := SchemaSpec{Type: schema.JSON, Text: jsonUser}
	t.Run("without validation", func(t *testing.T) {
		ser, err := NewSerializer(c, "users-json", WithSchema(spec), WithValidation(false))
		if err != nil {
			t.Fatal(err)
		}
		b, err := ser.Serialize(ctx, user{Name: "ann"})
		if err != nil {
			t.Fatal(err)
		}
		if id, rest, err := ParseHeader(b); err != nil || id != 1 || string(rest) != `{"name":"ann"}` {
			t.Fatalf("Serialize = %q", b)
		}
		_, body := f.lastRequest("POST /subjects/{subject}/versions")
		if !strings.Contains(string(body), `"schemaType":"JSON"`) {
			t.Errorf("register body %s", body)
		}
		de, err := NewDeserializer(c, WithValidation(false))
		if err != nil {
			t.Fatal(err)
		}
		var got user
		if err := de.Deserialize(ctx, b, &got); err != nil || got.Name != "ann" {
			t.Errorf("Deserialize = %+v, %v", got, err)
		}
	})
	t.Run("with validation", func(t *testing.T) {
		requireParser(t, schema.Schema{Type: schema.JSON, Text: jsonUser})
		ser, err := NewSerializer(c, "users-json", WithSchema(spec))
		if err != nil {
			t.Fatal(err)
		}
		b, err := ser.Serialize(ctx, user{Name: "ann"})
		if err != nil {
			t.Fatal(err)
		}
		de, err := NewDeserializer(c)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := de.Deserialize(ctx, b, &got); err != nil || got["name"] != "ann" {
			t.Errorf("Deserialize = %+v, %v", got, err)
		}
		_, err = ser.Serialize(ctx, map[string]int{"name": 1})
		var ve *schema.ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("Serialize of an invalid value: %v, want a *schema.ValidationError", err)
		}
		bad := append(AppendHeader(nil, 1), `{"nom":"x"}`...)
		if err := de.Deserialize(ctx, bad, &got); !errors.Is(err, schema.ErrInvalidPayload) {
			t.Errorf("Deserialize of an invalid payload: %v, want ErrInvalidPayload", err)
		}
	})
}

func TestSerde_EventCarriesSchemaURLAndUnframedData(t *testing.T) {
	c, f := newTestClient(t)
	ctx := context.Background()
	ser, err := NewSerializer(c, "users-value", WithSchema(SchemaSpec{Text: avroUser}))
	if err != nil {
		t.Fatal(err)
	}
	m := handoff.NewMessage("/users", "acme.user.created", nil)
	if err := ser.SerializeEvent(ctx, m, avroUserV1{Name: "ann"}); err != nil {
		t.Fatal(err)
	}
	if want := c.BaseURL() + "/schemas/ids/1"; m.DataSchema != want {
		t.Errorf("DataSchema = %q, want %q", m.DataSchema, want)
	}
	if m.DataContentType != "application/avro" || !bytes.Equal(m.Data, []byte{6, 'a', 'n', 'n'}) {
		t.Errorf("DataContentType %q, Data %x", m.DataContentType, m.Data)
	}
	if err := m.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}

	// The dataschema URL, fetched, is the registry's answer for the id.
	_, de := freshDeserializer(t, c)
	var got avroUserV1
	if err := de.DeserializeEvent(ctx, m, &got); err != nil || got.Name != "ann" {
		t.Errorf("DeserializeEvent = %+v, %v", got, err)
	}
	if n := f.count("GET /schemas/ids/{id}"); n != 1 {
		t.Errorf("schema fetches = %d, want 1", n)
	}

	// Without a dataschema, the data is taken as framed.
	framed := handoff.NewMessage("/users", "acme.user.created", nil)
	if framed.Data, err = ser.Serialize(ctx, avroUserV1{Name: "bob"}); err != nil {
		t.Fatal(err)
	}
	framed.DataContentType = "application/octet-stream"
	if err := de.DeserializeEvent(ctx, framed, &got); err != nil || got.Name != "bob" {
		t.Errorf("DeserializeEvent of framed data = %+v, %v", got, err)
	}
	m.DataSchema = "https://example.com/other.json"
	if err := de.DeserializeEvent(ctx, m, &got); err == nil {
		t.Error("DeserializeEvent with a foreign dataschema succeeded")
	}
}

func TestSerde_SchemaIDFromURL(t *testing.T) {
	tests := []struct {
		url string
		id  int // 0: an error
	}{
		{"http://localhost:8081/schemas/ids/7", 7},
		{"https://example.com/registry/schemas/ids/12#acme.Order", 12},
		{"https://example.com/schemas/ids/12/schema", 12},
		{"https://example.com/schemas/ids/12/", 12},
		{"https://example.com/schemas/ids/", 0},
		{"https://example.com/schemas/ids/0", 0},
		{"https://example.com/schemas/ids/-3", 0},
		{"https://example.com/schemas/ids/99999999999", 0},
		{"https://example.com/subjects/x/versions/1", 0},
		{"://bad", 0},
	}
	for _, tt := range tests {
		id, err := SchemaIDFromURL(tt.url)
		if tt.id == 0 && err == nil {
			t.Errorf("SchemaIDFromURL(%q) = %d, want an error", tt.url, id)
		}
		if tt.id != 0 && (err != nil || id != tt.id) {
			t.Errorf("SchemaIDFromURL(%q) = %d, %v; want %d", tt.url, id, err, tt.id)
		}
	}
	c, err := NewClient("http://r.example/base/")
	if err != nil {
		t.Fatal(err)
	}
	if id, err := SchemaIDFromURL(c.SchemaURL(31)); err != nil || id != 31 {
		t.Errorf("round trip = %d, %v", id, err)
	}
}

const (
	protoAddress = `syntax = "proto3";
package acme.v1;
message Address { string city = 1; }
`
	protoOrder = `syntax = "proto3";
package acme.v1;
import "acme/v1/address.proto";
message Order {
  message Line {
    string sku = 1;
    int32 qty = 2;
  }
  int64 id = 1;
  acme.v1.Address ship = 2;
  repeated Line lines = 3;
}
message Receipt { int64 order_id = 1; }
`
)

// protoFixture registers address.proto, returns a serializer of Order
// (which imports it) and a message of the given full name built from a
// separately parsed copy of the schema: dynamicpb, no generated code.
func protoFixture(t *testing.T) (*Client, *fakeRegistry, *Serializer, func(name string) *dynamicpb.Message) {
	t.Helper()
	refs := map[string]string{"acme/v1/address.proto": protoAddress}
	requireParser(t, schema.Schema{Type: schema.Protobuf, Text: protoOrder, References: refs})
	p, err := schema.Parse(schema.Schema{Type: schema.Protobuf, Text: protoOrder, References: refs})
	if err != nil {
		t.Fatal(err)
	}
	c, f := newTestClient(t)
	seedFake(t, f, "address", fakeSchema{Schema: protoAddress, SchemaType: "PROTOBUF"})
	ser, err := NewSerializer(c, "orders-value", WithSchema(SchemaSpec{
		Type: schema.Protobuf, Text: protoOrder,
		References: []Reference{{Name: "acme/v1/address.proto", Subject: "address", Version: 1}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	newMsg := func(name string) *dynamicpb.Message {
		idx, err := p.MessageIndexes(name)
		if err != nil {
			t.Fatal(err)
		}
		d, err := p.MessageDescriptor(idx)
		if err != nil {
			t.Fatal(err)
		}
		return dynamicpb.NewMessage(d)
	}
	return c, f, ser, newMsg
}

func protoBytes(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSerde_ProtobufRoundTrip(t *testing.T) {
	c, _, ser, newMsg := protoFixture(t)
	ctx := context.Background()

	order := newMsg("acme.v1.Order")
	fields := order.Descriptor().Fields()
	order.Set(fields.ByName("id"), protoreflect.ValueOfInt64(42))
	ship := order.Mutable(fields.ByName("ship")).Message()
	ship.Set(ship.Descriptor().Fields().ByName("city"), protoreflect.ValueOfString("Ghent"))
	lines := order.Mutable(fields.ByName("lines")).List()
	line := lines.NewElement()
	line.Message().Set(line.Message().Descriptor().Fields().ByName("sku"), protoreflect.ValueOfString("A-1"))
	lines.Append(line)
	receipt := newMsg("acme.v1.Receipt")
	receipt.Set(receipt.Descriptor().Fields().ByName("order_id"), protoreflect.ValueOfInt64(42))
	lineMsg := newMsg("acme.v1.Order.Line")
	lineMsg.Set(lineMsg.Descriptor().Fields().ByName("qty"), protoreflect.ValueOfInt32(3))

	de, err := NewDeserializer(c)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		msg     *dynamicpb.Message
		indexes []byte
	}{
		{order, []byte{0}},
		{receipt, []byte{2, 2}},
		{lineMsg, []byte{4, 0, 0}},
	}
	for _, tt := range tests {
		name := string(tt.msg.Descriptor().FullName())
		t.Run(name, func(t *testing.T) {
			b, err := ser.Serialize(ctx, tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			id, rest, err := ParseHeader(b)
			if err != nil || id != 2 || !bytes.HasPrefix(rest, tt.indexes) {
				t.Fatalf("Serialize = %x, want schema 2 then indexes %x", b, tt.indexes)
			}
			if payload := rest[len(tt.indexes):]; !bytes.Equal(payload, protoBytes(t, tt.msg)) {
				t.Errorf("payload %x, want %x", payload, protoBytes(t, tt.msg))
			}

			var dyn any
			if err := de.Deserialize(ctx, b, &dyn); err != nil {
				t.Fatal(err)
			}
			m, ok := dyn.(*dynamicpb.Message)
			if !ok || string(m.Descriptor().FullName()) != name || !bytes.Equal(protoBytes(t, m), protoBytes(t, tt.msg)) {
				t.Errorf("Deserialize into *any = %v", dyn)
			}
			var pm proto.Message
			if err := de.Deserialize(ctx, b, &pm); err != nil || !bytes.Equal(protoBytes(t, pm), protoBytes(t, tt.msg)) {
				t.Errorf("Deserialize into *proto.Message = %v, %v", pm, err)
			}
			into := newMsg(name)
			if err := de.Deserialize(ctx, b, into); err != nil || !bytes.Equal(protoBytes(t, into), protoBytes(t, tt.msg)) {
				t.Errorf("Deserialize into a %s = %v, %v", name, into, err)
			}
		})
	}

	b, err := ser.Serialize(ctx, order)
	if err != nil {
		t.Fatal(err)
	}
	if err := de.Deserialize(ctx, b, newMsg("acme.v1.Receipt")); err == nil || !strings.Contains(err.Error(), "not a acme.v1.Receipt") {
		t.Errorf("Deserialize of an Order into a Receipt: %v", err)
	}
	bad := append(AppendHeader(nil, 2), 2, 2*9) // message index 9: no such message
	var v any
	if err := de.Deserialize(ctx, bad, &v); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("Deserialize with a bad message index: %v", err)
	}
	if _, err := ser.Serialize(ctx, map[string]any{"id": 1}); err == nil || !strings.Contains(err.Error(), "not a proto.Message") {
		t.Errorf("Serialize of a map: %v", err)
	}
}

func TestSerde_ProtobufEvent(t *testing.T) {
	c, _, ser, newMsg := protoFixture(t)
	ctx := context.Background()
	receipt := newMsg("acme.v1.Receipt")
	receipt.Set(receipt.Descriptor().Fields().ByName("order_id"), protoreflect.ValueOfInt64(7))
	m := handoff.NewMessage("/orders", "acme.receipt.issued", nil)
	if err := ser.SerializeEvent(ctx, m, receipt); err != nil {
		t.Fatal(err)
	}
	if want := c.BaseURL() + "/schemas/ids/2#acme.v1.Receipt"; m.DataSchema != want {
		t.Errorf("DataSchema = %q, want %q", m.DataSchema, want)
	}
	if m.DataContentType != "application/protobuf" || !bytes.Equal(m.Data, protoBytes(t, receipt)) {
		t.Errorf("DataContentType %q, Data %x", m.DataContentType, m.Data)
	}
	if err := m.Validate(); err != nil {
		t.Error(err)
	}
	de, err := NewDeserializer(c)
	if err != nil {
		t.Fatal(err)
	}
	var got any
	if err := de.DeserializeEvent(ctx, m, &got); err != nil {
		t.Fatal(err)
	}
	if d, ok := got.(*dynamicpb.Message); !ok || d.Descriptor().FullName() != "acme.v1.Receipt" {
		t.Errorf("DeserializeEvent = %v", got)
	}
	// Without the fragment, a typed target names the message.
	m.DataSchema = c.SchemaURL(2)
	into := newMsg("acme.v1.Receipt")
	if err := de.DeserializeEvent(ctx, m, into); err != nil || !bytes.Equal(protoBytes(t, into), protoBytes(t, receipt)) {
		t.Errorf("DeserializeEvent into a Receipt = %v, %v", into, err)
	}
}

// freshDeserializer is a new client of c's registry and its deserializer,
// as a consumer elsewhere would have.
func freshDeserializer(t *testing.T, c *Client, opts ...SerdeOption) (*Client, *Deserializer) {
	t.Helper()
	c2, err := NewClient(c.BaseURL())
	if err != nil {
		t.Fatal(err)
	}
	de, err := NewDeserializer(c2, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c2, de
}
