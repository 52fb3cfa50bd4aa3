//go:build cgo

// Confluent's serde packages import its kafka package (for kafka.Header),
// which needs cgo and links the librdkafka bundled in the module; hence the
// build constraint. Nothing here starts a Kafka client.

package confluenttest

import (
	"bytes"
	"testing"

	"github.com/bufbuild/protocompile"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde/avrov2"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde/jsonschema"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde/protobuf"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/handoffhq/handoff/registry"
	"github.com/handoffhq/handoff/schema"
)

// Order is written with avro and json tags; both serdes use hamba/avro
// and encoding/json.
type Order struct {
	ID     string  `avro:"id" json:"id"`
	Amount float64 `avro:"amount" json:"amount"`
}

// OrderV2 reads Order data with a field added (with a default).
type OrderV2 struct {
	ID     string  `avro:"id" json:"id"`
	Amount float64 `avro:"amount" json:"amount"`
	Note   string  `avro:"note" json:"note"`
}

type Address struct {
	Street string `avro:"street" json:"street"`
	City   string `avro:"city" json:"city"`
}

type Customer struct {
	Name    string  `avro:"name" json:"name"`
	Address Address `avro:"address" json:"address"`
}

var (
	order    = Order{ID: "o-1", Amount: 12.5}
	customer = Customer{Name: "Ada", Address: Address{Street: "1 Analytical Way", City: "London"}}
)

// confluentAvro returns Confluent's Avro serializer and deserializer. With
// latest, the serializer writes with the subject's latest version instead
// of registering one derived from the Go type, and the deserializer reads
// into the latest version.
func confluentAvro(t *testing.T, c schemaregistry.Client, latest bool) (*avrov2.Serializer, *avrov2.Deserializer) {
	t.Helper()
	sc := avrov2.NewSerializerConfig()
	if latest {
		sc.AutoRegisterSchemas, sc.UseLatestVersion = false, true
	}
	ser, err := avrov2.NewSerializer(c, serde.ValueSerde, sc)
	check(t, err)
	dc := avrov2.NewDeserializerConfig()
	dc.UseLatestVersion = latest
	de, err := avrov2.NewDeserializer(c, serde.ValueSerde, dc)
	check(t, err)
	return ser, de
}

func ourDeserializer(t *testing.T, e *env, opts ...registry.SerdeOption) *registry.Deserializer {
	t.Helper()
	d, err := registry.NewDeserializer(e.ours, opts...)
	check(t, err)
	return d
}

func ourSerializer(t *testing.T, e *env, subject string, opts ...registry.SerdeOption) *registry.Serializer {
	t.Helper()
	s, err := registry.NewSerializer(e.ours, subject, opts...)
	check(t, err)
	return s
}

// wantFramed checks that b starts with the wire format's header naming
// the latest schema of subject, and returns the payload after it.
func wantFramed(t *testing.T, e *env, b []byte, subject string) []byte {
	t.Helper()
	id, rest, err := registry.ParseHeader(b)
	check(t, err)
	latest, err := confluentClient(t, schemaregistry.NewConfig(e.url)).GetLatestSchemaMetadata(subject)
	check(t, err)
	if id != latest.ID {
		t.Fatalf("payload framed with schema id %d, want %d (latest of %s)", id, latest.ID, subject)
	}
	return rest
}

func TestSerde_Avro_ConfluentWritesHandoffReads(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		ser, _ := confluentAvro(t, e.sr, false)
		// Confluent registers the schema it derives from the Go type.
		b, err := ser.Serialize("orders", &order)
		check(t, err)
		wantFramed(t, e, b, "orders-value")

		d := ourDeserializer(t, e)
		var got Order
		check(t, d.Deserialize(t.Context(), b, &got))
		if got != order {
			t.Errorf("handoff read %+v, want %+v", got, order)
		}
		var generic any
		check(t, d.Deserialize(t.Context(), b, &generic))
		m, ok := generic.(map[string]any)
		if !ok || m["id"] != order.ID || m["amount"] != order.Amount {
			t.Errorf("handoff read into any: %#v", generic)
		}

		// A reader schema with a field added (default) reads the old bytes.
		v2 := formats[0].v2
		d2 := ourDeserializer(t, e, registry.WithReaderSchema(registry.SchemaSpec{Text: v2}))
		var got2 OrderV2
		check(t, d2.Deserialize(t.Context(), b, &got2))
		if got2 != (OrderV2{ID: order.ID, Amount: order.Amount}) {
			t.Errorf("handoff read with reader schema: %+v", got2)
		}
	})
}

func TestSerde_Avro_HandoffWritesConfluentReads(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		s := ourSerializer(t, e, "orders-value", registry.WithSchema(registry.SchemaSpec{Text: formats[0].v1}))
		b, err := s.Serialize(t.Context(), order)
		check(t, err)
		wantFramed(t, e, b, "orders-value")

		_, de := confluentAvro(t, e.sr, false)
		var got Order
		check(t, de.DeserializeInto("orders", b, &got))
		if got != order {
			t.Errorf("Confluent read %+v, want %+v", got, order)
		}

		// Register v2; Confluent's deserializer with use.latest.version
		// resolves the v1 bytes to v2 (the default fills note).
		_, err = e.sr.Register("orders-value", formats[0].info(formats[0].v2), false)
		check(t, err)
		_, latest := confluentAvro(t, confluentClient(t, schemaregistry.NewConfig(e.url)), true)
		var got2 OrderV2
		check(t, latest.DeserializeInto("orders", b, &got2))
		if got2 != (OrderV2{ID: order.ID, Amount: order.Amount}) {
			t.Errorf("Confluent read with the latest version: %+v", got2)
		}
	})
}

func TestSerde_Avro_References(t *testing.T) {
	rc := referenceCases[0]
	refs := []registry.Reference{{Name: rc.name, Subject: "address", Version: 1}}
	eachStore(t, func(t *testing.T, e *env) {
		_, err := e.sr.Register("address", rc.info(rc.address), false)
		check(t, err)

		// handoff writes Customer (which references Address); Confluent reads.
		s := ourSerializer(t, e, "customers-value", registry.WithSchema(registry.SchemaSpec{Text: rc.customer, References: refs}))
		b, err := s.Serialize(t.Context(), customer)
		check(t, err)
		_, de := confluentAvro(t, e.sr, false)
		var got Customer
		check(t, de.DeserializeInto("customers", b, &got))
		if got != customer {
			t.Errorf("Confluent read %+v, want %+v", got, customer)
		}

		// Confluent writes with the latest version (references resolved
		// through the registry); handoff reads.
		ser, _ := confluentAvro(t, confluentClient(t, schemaregistry.NewConfig(e.url)), true)
		b2, err := ser.Serialize("customers", &customer)
		check(t, err)
		if !bytes.Equal(b, b2) {
			t.Errorf("the two serializers framed one value differently:\n handoff   %x\n confluent %x", b, b2)
		}
		var got2 Customer
		check(t, ourDeserializer(t, e).Deserialize(t.Context(), b2, &got2))
		if got2 != customer {
			t.Errorf("handoff read %+v, want %+v", got2, customer)
		}
	})
}

func confluentJSON(t *testing.T, c schemaregistry.Client, latest bool) (*jsonschema.Serializer, *jsonschema.Deserializer) {
	t.Helper()
	sc := jsonschema.NewSerializerConfig()
	sc.EnableValidation = true
	if latest {
		sc.AutoRegisterSchemas, sc.UseLatestVersion = false, true
	}
	ser, err := jsonschema.NewSerializer(c, serde.ValueSerde, sc)
	check(t, err)
	// Confluent's deserializer, with validation on, validates the decoded
	// Go value, which its validator refuses for a struct ("invalid
	// jsonType"); its own tests validate only when serializing. So its
	// serializer validates here, against the schema handoff serves.
	dc := jsonschema.NewDeserializerConfig()
	de, err := jsonschema.NewDeserializer(c, serde.ValueSerde, dc)
	check(t, err)
	return ser, de
}

func TestSerde_JSON_ConfluentWritesHandoffReads(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		// Confluent registers the schema invopop/jsonschema reflects from
		// the Go type (draft 2020-12, $defs and $ref).
		ser, _ := confluentJSON(t, e.sr, false)
		b, err := ser.Serialize("orders", &order)
		check(t, err)
		wantFramed(t, e, b, "orders-value")
		md, err := e.sr.GetLatestSchemaMetadata("orders-value")
		check(t, err)
		t.Logf("schema Confluent registered: %s", md.Schema)

		d := ourDeserializer(t, e) // validates against the schema
		var got Order
		check(t, d.Deserialize(t.Context(), b, &got))
		if got != order {
			t.Errorf("handoff read %+v, want %+v", got, order)
		}

		// With the registered schema: Confluent's serializer validates.
		_, err = e.sr.Register("orders-v-value", formats[1].info(formats[1].v1), false)
		check(t, err)
		ser2, _ := confluentJSON(t, e.sr, true)
		b2, err := ser2.Serialize("orders-v", &order)
		check(t, err)
		var got2 Order
		check(t, d.Deserialize(t.Context(), b2, &got2))
		if got2 != order {
			t.Errorf("handoff read %+v, want %+v", got2, order)
		}
		// Bytes that break the schema: handoff's deserializer refuses them.
		bad := append(b2[:registry.HeaderSize:registry.HeaderSize], `{"id":7,"amount":1}`...)
		if err := d.Deserialize(t.Context(), bad, &got2); err == nil {
			t.Error("handoff read a payload that breaks its schema")
		}
	})
}

func TestSerde_JSON_HandoffWritesConfluentReads(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		s := ourSerializer(t, e, "orders-value", registry.WithSchema(registry.SchemaSpec{Type: schema.JSON, Text: formats[1].v1}))
		b, err := s.Serialize(t.Context(), order)
		check(t, err)
		wantFramed(t, e, b, "orders-value")

		_, de := confluentJSON(t, e.sr, false)
		var got Order
		check(t, de.DeserializeInto("orders", b, &got))
		if got != order {
			t.Errorf("Confluent read %+v, want %+v", got, order)
		}
		// Confluent's serializer, writing with the schema handoff
		// registered, validates against it.
		ser, _ := confluentJSON(t, e.sr, true)
		b2, err := ser.Serialize("orders", &order)
		check(t, err)
		if !bytes.Equal(b, b2) {
			t.Errorf("the two serializers framed one value differently:\n handoff   %q\n confluent %q", b, b2)
		}
		type badOrder struct {
			ID int `json:"id"`
		}
		if _, err := ser.Serialize("orders", &badOrder{ID: 7}); err == nil {
			t.Error("Confluent wrote a value that breaks the schema handoff serves")
		}
	})
}

func TestSerde_JSON_References(t *testing.T) {
	rc := referenceCases[1]
	eachStore(t, func(t *testing.T, e *env) {
		_, err := e.sr.Register("address", rc.info(rc.address), false)
		check(t, err)
		s := ourSerializer(t, e, "customers-value", registry.WithSchema(registry.SchemaSpec{
			Type: schema.JSON, Text: rc.customer, References: []registry.Reference{{Name: rc.name, Subject: "address", Version: 1}},
		}))
		b, err := s.Serialize(t.Context(), customer)
		check(t, err)

		_, de := confluentJSON(t, e.sr, false)
		var got Customer
		check(t, de.DeserializeInto("customers", b, &got))
		if got != customer {
			t.Errorf("Confluent read %+v, want %+v", got, customer)
		}

		ser, _ := confluentJSON(t, confluentClient(t, schemaregistry.NewConfig(e.url)), true)
		b2, err := ser.Serialize("customers", &customer)
		check(t, err)
		var got2 Customer
		check(t, ourDeserializer(t, e).Deserialize(t.Context(), b2, &got2))
		if got2 != customer {
			t.Errorf("handoff read %+v, want %+v", got2, customer)
		}
		// An address without its required city breaks the referenced schema.
		bad := append(b2[:registry.HeaderSize:registry.HeaderSize], `{"name":"Ada","address":{"street":"x"}}`...)
		if err := ourDeserializer(t, e).Deserialize(t.Context(), bad, &got2); err == nil {
			t.Error("handoff read a payload that breaks the referenced schema")
		}
	})
}

func confluentProtobuf(t *testing.T, c schemaregistry.Client) (*protobuf.Serializer, *protobuf.Deserializer) {
	t.Helper()
	ser, err := protobuf.NewSerializer(c, serde.ValueSerde, protobuf.NewSerializerConfig())
	check(t, err)
	de, err := protobuf.NewDeserializer(c, serde.ValueSerde, protobuf.NewDeserializerConfig())
	check(t, err)
	// The Go types the deserializer may make, found by full name: all of
	// struct.proto's messages, so the message indexes must pick Value.
	for _, m := range []proto.Message{&structpb.Struct{}, &structpb.Value{}, &structpb.ListValue{}, &timestamppb.Timestamp{}} {
		check(t, de.ProtoRegistry.RegisterMessage(m.ProtoReflect().Type()))
	}
	return ser, de
}

// structProto is google/protobuf/struct.proto without its options: Value
// is its second message, so it is framed with message indexes [1].
const structProto = `syntax = "proto3";

package google.protobuf;

message Struct {
  map<string, Value> fields = 1;
}

message Value {
  oneof kind {
    NullValue null_value = 1;
    double number_value = 2;
    string string_value = 3;
    bool bool_value = 4;
    Struct struct_value = 5;
    ListValue list_value = 6;
  }
}

enum NullValue {
  NULL_VALUE = 0;
}

message ListValue {
  repeated Value values = 1;
}
`

func TestSerde_Protobuf_WellKnownTypes(t *testing.T) {
	value := must(structpb.NewValue(map[string]any{"id": "o-1", "amount": 12.5, "tags": []any{"a", true}}))
	ts := &timestamppb.Timestamp{Seconds: 1_700_000_000, Nanos: 42}
	eachStore(t, func(t *testing.T, e *env) {
		ser, de := confluentProtobuf(t, e.sr)

		t.Run("confluent writes, handoff reads", func(t *testing.T) {
			// Confluent registers the .proto it prints from the message's
			// file descriptor.
			b, err := ser.Serialize("values", value)
			check(t, err)
			rest := wantFramed(t, e, b, "values-value")
			if idx, _, err := registry.ParseMessageIndexes(rest); err != nil || len(idx) != 1 || idx[0] != 1 {
				t.Errorf("message indexes %v, %v; want [1] (Value is struct.proto's second message)", idx, err)
			}
			d := ourDeserializer(t, e)
			got := &structpb.Value{}
			check(t, d.Deserialize(t.Context(), b, got))
			if !proto.Equal(got, value) {
				t.Errorf("handoff read %v, want %v", got, value)
			}
			var dyn any
			check(t, d.Deserialize(t.Context(), b, &dyn))
			if m, ok := dyn.(*dynamicpb.Message); !ok || m.Descriptor().FullName() != "google.protobuf.Value" {
				t.Errorf("handoff read into any: %T %v", dyn, dyn)
			}

			b, err = ser.Serialize("stamps", ts)
			check(t, err)
			gotTS := &timestamppb.Timestamp{}
			check(t, d.Deserialize(t.Context(), b, gotTS))
			if !proto.Equal(gotTS, ts) {
				t.Errorf("handoff read %v, want %v", gotTS, ts)
			}
		})

		t.Run("handoff writes, confluent reads", func(t *testing.T) {
			s := ourSerializer(t, e, "ours-value", registry.WithSchema(registry.SchemaSpec{Type: schema.Protobuf, Text: structProto}))
			b, err := s.Serialize(t.Context(), value)
			check(t, err)
			// Confluent finds google.protobuf.Value by the message indexes
			// and makes it from the global registry of Go types.
			got, err := de.Deserialize("ours", b)
			check(t, err)
			if m, ok := got.(proto.Message); !ok || !proto.Equal(m, value) {
				t.Errorf("Confluent read %T %v, want %v", got, got, value)
			}
		})
	})
}

// Customer and Address as .proto files, compiled at test time into
// dynamic messages: no generated code. customer.proto imports
// address.proto, which Confluent's serializer registers as a reference
// under the subject "address.proto".
var protoFiles = map[string]string{
	"address.proto":  referenceCases[2].address,
	"customer.proto": referenceCases[2].customer,
}

func dynamicCustomer(t *testing.T) (*dynamicpb.Message, protoreflect.MessageDescriptor) {
	t.Helper()
	c := protocompile.Compiler{Resolver: &protocompile.SourceResolver{Accessor: protocompile.SourceAccessorFromMap(protoFiles)}}
	files, err := c.Compile(t.Context(), "customer.proto")
	check(t, err)
	md := files[0].Messages().ByName("Customer")
	addr := md.Fields().ByName("address").Message()
	m := dynamicpb.NewMessage(md)
	m.Set(md.Fields().ByName("name"), protoreflect.ValueOfString(customer.Name))
	a := dynamicpb.NewMessage(addr)
	a.Set(addr.Fields().ByName("street"), protoreflect.ValueOfString(customer.Address.Street))
	a.Set(addr.Fields().ByName("city"), protoreflect.ValueOfString(customer.Address.City))
	m.Set(md.Fields().ByName("address"), protoreflect.ValueOfMessage(a))
	return m, md
}

// customerOf reads a Customer message, whatever its descriptor's origin.
func customerOf(m protoreflect.Message) Customer {
	f := m.Descriptor().Fields()
	a := m.Get(f.ByName("address")).Message()
	af := a.Descriptor().Fields()
	return Customer{Name: m.Get(f.ByName("name")).String(), Address: Address{
		Street: a.Get(af.ByName("street")).String(), City: a.Get(af.ByName("city")).String(),
	}}
}

func TestSerde_Protobuf_References(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		msg, md := dynamicCustomer(t)
		ser, de := confluentProtobuf(t, e.sr)

		b, err := ser.Serialize("customers", msg)
		check(t, err)
		latest, err := e.sr.GetLatestSchemaMetadata("customers-value")
		check(t, err)
		if len(latest.References) != 1 || latest.References[0].Name != "address.proto" {
			t.Errorf("Confluent registered customer.proto with references %+v, want address.proto", latest.References)
		}
		var got any
		check(t, ourDeserializer(t, e).Deserialize(t.Context(), b, &got))
		if m, ok := got.(proto.Message); !ok || customerOf(m.ProtoReflect()) != customer {
			t.Errorf("handoff read %T %v, want %+v", got, got, customer)
		}

		// handoff writes with the schema Confluent registered; Confluent
		// reads into a dynamic message (it resolves the reference through
		// the registry to parse the schema).
		s := ourSerializer(t, e, "customers-value", registry.WithLatest())
		b2, err := s.Serialize(t.Context(), msg)
		check(t, err)
		// Go's proto.Marshal of a dynamic message orders fields as it
		// likes, so compare the framing (header and message indexes).
		if !bytes.Equal(b[:registry.HeaderSize+1], b2[:registry.HeaderSize+1]) {
			t.Errorf("the two serializers framed one message differently:\n confluent %x\n handoff   %x", b, b2)
		}
		into := dynamicpb.NewMessage(md)
		check(t, de.DeserializeInto("customers", b2, into))
		if customerOf(into) != customer {
			t.Errorf("Confluent read %v, want %+v", into, customer)
		}
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
