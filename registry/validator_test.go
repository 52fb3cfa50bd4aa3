package registry_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/outbox"
	"github.com/handoffhq/handoff/registry"
	"github.com/handoffhq/handoff/schema"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

const orderJSONSchema = `{
  "type": "object",
  "properties": {
    "order": {"type": "string", "minLength": 1},
    "total": {"type": "number", "minimum": 0},
    "lines": {"type": "array", "items": {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]}}
  },
  "required": ["order", "total"]
}`

// registryWith starts a registry with the order schema under orders-value,
// and returns a client of it and the server (to stop it).
func registryWith(t *testing.T) (*registry.Client, *httptest.Server) {
	t.Helper()
	srv, err := registry.NewServer(stores(t)["sqlite"](t))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	c, err := registry.NewClient(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(context.Background(), "orders-value", registry.SchemaSpec{Type: schema.JSON, Text: orderJSONSchema}); err != nil {
		t.Fatal(err)
	}
	return c, hs
}

func event(data string) *handoff.Message {
	m := handoff.NewMessage("/test", "order.placed", []byte(data))
	m.PartitionKey = "k"
	return m
}

// The outbox refuses, before anything is written, an event whose data
// breaks the subject's schema, and the error names the failing path.
func TestValidator_OutboxRefusesInvalidData(t *testing.T) {
	ctx := context.Background()
	c, _ := registryWith(t)
	v, err := registry.NewValidator(c, registry.WithTopicNameStrategy())
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "app.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := sqlite.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	w, err := outbox.New(sqlite.OutboxStore(db), outbox.WithValidator(v))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		data       string
		path, rule string
	}{
		{`{"order":"o1","total":-5}`, "/total", "minimum"},
		{`{"order":"o1"}`, "", "required"},
		{`{"order":"o1","total":3,"lines":[{"sku":"a"},{"qty":2}]}`, "/lines/1", "required"},
		{`{"order":"","total":1}`, "/order", "minLength"},
	}
	for _, tc := range cases {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = w.Add(ctx, tx, "orders", event(`{"order":"ok","total":1}`), event(tc.data))
		tx.Rollback()
		var ve *schema.ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("%s: Add = %v, want a schema.ValidationError", tc.data, err)
		}
		if ve.Path != tc.path || ve.Rule != tc.rule {
			t.Errorf("%s: failing path %q rule %q, want %q %q (%v)", tc.data, ve.Path, ve.Rule, tc.path, tc.rule, err)
		}
	}
	// A valid event is written; an unbound topic is not checked.
	tx, _ := db.BeginTx(ctx, nil)
	if err := w.Add(ctx, tx, "orders", event(`{"order":"o2","total":2}`)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM handoff_outbox`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("outbox holds %d rows, want 1 (refused batches write nothing)", n)
	}
}

// A consumer with the validator dead-letters invalid messages with class
// "schema"; its handler sees only valid ones.
func TestValidator_ConsumerDeadLettersInvalidData(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, _ := registryWith(t)
	v, err := registry.NewValidator(c, registry.WithSubject("orders", "orders-value"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := memory.NewBroker()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	store := memory.NewDLQStore()
	dead, err := dlq.New(store)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		seen []string
	)
	h := handoff.HandlerFunc(func(ctx context.Context, m *handoff.Message) error {
		mu.Lock()
		seen = append(seen, m.ID)
		mu.Unlock()
		return nil
	})
	settled := make(chan consumer.Outcome, 10)
	obs := observer(func(o consumer.Outcome) { settled <- o })
	cons, err := consumer.New(b, "orders", "billing", h, dead, consumer.WithValidator(v), consumer.WithObserver(obs))
	if err != nil {
		t.Fatal(err)
	}
	go cons.Run(ctx)

	good := event(`{"order":"o1","total":1}`)
	bad := event(`{"order":"o2","total":"lots"}`)
	// A message naming a schema of another subject is refused too.
	other, err := c.Register(ctx, "other-value", registry.SchemaSpec{Type: schema.JSON, Text: `{"type":"object"}`})
	if err != nil {
		t.Fatal(err)
	}
	foreign := event(`{"anything":true}`)
	foreign.DataSchema = c.SchemaURL(other)
	good2 := event(`{"order":"o3","total":3}`)
	if err := b.Publish(ctx, "orders", good, bad, foreign, good2); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for len(got) < 4 {
		select {
		case o := <-settled:
			got[o.Message.ID] = o.Result.String() + " " + o.Class
		case <-time.After(30 * time.Second):
			t.Fatalf("settled only %v", got)
		}
	}
	if got[bad.ID] != "dead-lettered schema" || got[foreign.ID] != "dead-lettered schema" || got[good.ID] != "acked " || got[good2.ID] != "acked " {
		t.Fatalf("outcomes %v: want the invalid %s and %s dead-lettered with class schema, the rest acked", got, bad.ID, foreign.ID)
	}
	letters, err := dead.List(ctx, dlq.Filter{Consumer: "billing"})
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != 2 || letters[0].Class != dlq.ClassSchema || letters[1].Class != dlq.ClassSchema {
		t.Fatalf("dead letters %v, want 2 of class schema", letters)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] != good.ID || seen[1] != good2.ID {
		t.Fatalf("handler saw %v, want only the valid %s, %s", seen, good.ID, good2.ID)
	}
}

// Framed payloads (Confluent wire format) are checked against the schema
// their header names; a corrupted payload is refused. A registry that is
// down is not a verdict: the error is not permanent, so the consumer retries.
func TestValidator_FramedPayloadsAndRegistryDown(t *testing.T) {
	ctx := context.Background()
	c, hs := registryWith(t)
	avroSchema := `{"type":"record","name":"Payment","fields":[{"name":"amount","type":"long"},{"name":"currency","type":"string"}]}`
	ser, err := registry.NewSerializer(c, "payments-value", registry.WithSchema(registry.SchemaSpec{Type: schema.Avro, Text: avroSchema}), registry.WithAutoRegister(true))
	if err != nil {
		t.Fatal(err)
	}
	data, err := ser.Serialize(ctx, map[string]any{"amount": int64(12), "currency": "EUR"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := registry.NewValidator(c, registry.WithTopicNameStrategy())
	if err != nil {
		t.Fatal(err)
	}
	if err := v.ValidateMessage(ctx, "payments", event(string(data))); err != nil {
		t.Fatalf("valid framed Avro refused: %v", err)
	}
	cut := data[:len(data)-2]
	err = v.ValidateMessage(ctx, "payments", event(string(cut)))
	if !handoff.IsPermanent(err) || !errors.Is(err, schema.ErrInvalidPayload) {
		t.Fatalf("truncated Avro: %v, want a permanent payload error", err)
	}
	// Nothing registered under the subject: refused for good.
	if err := v.ValidateMessage(ctx, "unknown", event(`{}`)); !handoff.IsPermanent(err) {
		t.Fatalf("unknown subject: %v, want permanent", err)
	}
	// The registry goes away: a fresh validator cannot tell, and says so
	// with a retryable error.
	hs.Close()
	c2, _ := registry.NewClient(hs.URL)
	v2, _ := registry.NewValidator(c2, registry.WithTopicNameStrategy())
	err = v2.ValidateMessage(ctx, "orders", event(`{"order":"o1","total":1}`))
	if err == nil || handoff.IsPermanent(err) {
		t.Fatalf("registry down: %v, want a retryable error", err)
	}
}

type observer func(consumer.Outcome)

func (f observer) Observe(o consumer.Outcome) { f(o) }

// A Protobuf event made by SerializeEvent names its message in the
// dataschema fragment: the validator checks the data as that message, not
// as the file's first.
func TestValidator_ProtobufMessageNamedInDataschema(t *testing.T) {
	ctx := context.Background()
	c, _ := registryWith(t)
	proto := "syntax = \"proto3\";\npackage p;\nmessage A { int64 n = 1; }\nmessage C { string s = 1; }\n"
	spec := registry.SchemaSpec{Type: schema.Protobuf, Text: proto}
	ser, err := registry.NewSerializer(c, "pb-value", registry.WithSchema(spec))
	if err != nil {
		t.Fatal(err)
	}
	p, err := schema.Parse(schema.Schema{Type: schema.Protobuf, Text: proto})
	if err != nil {
		t.Fatal(err)
	}
	md, err := p.MessageDescriptor([]int{1})
	if err != nil {
		t.Fatal(err)
	}
	msg := dynamicpb.NewMessage(md)
	msg.Set(md.Fields().ByName("s"), protoreflect.ValueOfString("hello"))
	m := handoff.NewMessage("/test", "c.made", nil)
	if err := ser.SerializeEvent(ctx, m, msg); err != nil {
		t.Fatal(err)
	}
	v, _ := registry.NewValidator(c, registry.WithTopicNameStrategy())
	if err := v.ValidateMessage(ctx, "pb", m); err != nil {
		t.Fatalf("valid C refused (dataschema %s): %v", m.DataSchema, err)
	}
	m.Data = []byte{0x0a, 0xff} // field 1, length 255: truncated
	if err := v.ValidateMessage(ctx, "pb", m); !handoff.IsPermanent(err) {
		t.Fatalf("truncated C: %v, want permanent", err)
	}
}

// A 404 that is not the registry's own answer (a proxy, a wrong base path)
// is no verdict about the data: the consumer must retry, not dead-letter.
func TestValidator_ForeignNotFoundIsRetryable(t *testing.T) {
	proxy := httptest.NewServer(http.NotFoundHandler())
	defer proxy.Close()
	c, err := registry.NewClient(proxy.URL)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := registry.NewValidator(c, registry.WithTopicNameStrategy())
	err = v.ValidateMessage(context.Background(), "orders", event(`{"order":"o1","total":1}`))
	if err == nil || handoff.IsPermanent(err) {
		t.Fatalf("plain 404: %v, want a retryable error", err)
	}
}

// A dataschema may name the registered version instead of the id.
func TestValidator_DataschemaNamesTheVersion(t *testing.T) {
	ctx := context.Background()
	c, _ := registryWith(t)
	v, _ := registry.NewValidator(c, registry.WithTopicNameStrategy())
	m := event(`{"order":"o1","total":1}`)
	m.DataSchema = c.BaseURL() + "/subjects/orders-value/versions/1"
	if err := v.ValidateMessage(ctx, "orders", m); err != nil {
		t.Fatalf("valid data naming version 1 refused: %v", err)
	}
	m.Data = []byte(`{"order":"o1","total":-1}`)
	if err := v.ValidateMessage(ctx, "orders", m); !handoff.IsPermanent(err) {
		t.Fatalf("invalid data naming version 1: %v, want permanent", err)
	}
	for _, ds := range []string{c.BaseURL() + "/subjects/orders-value/versions/9", "https://example.com/order.json"} {
		m.DataSchema = ds
		m.Data = []byte(`{"order":"o1","total":1}`)
		if err := v.ValidateMessage(ctx, "orders", m); !handoff.IsPermanent(err) {
			t.Fatalf("dataschema %s: %v, want permanent", ds, err)
		}
	}
}

// A publisher wrapped by the validator publishes nothing of a batch with an
// invalid message.
func TestValidator_PublisherRefusesInvalidBatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, _ := registryWith(t)
	v, _ := registry.NewValidator(c, registry.WithTopicNameStrategy())
	b, err := memory.NewBroker()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	pub := v.Publisher(b)
	err = pub.Publish(ctx, "orders", event(`{"order":"o1","total":1}`), event(`{"order":"o2","total":-1}`))
	var ve *schema.ValidationError
	if !errors.As(err, &ve) || ve.Path != "/total" {
		t.Fatalf("Publish = %v, want a validation error at /total", err)
	}
	good := event(`{"order":"o3","total":3}`)
	if err := pub.Publish(ctx, "orders", good); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 4)
	go b.Subscribe(ctx, handoff.Subscription{Topic: "orders", Group: "g"}, func(d *handoff.Delivery) {
		got <- d.Message.ID
		d.Settler.Ack(ctx)
	})
	if id := <-got; id != good.ID {
		t.Fatalf("first delivered %s, want only %s (the refused batch must not be published)", id, good.ID)
	}
}
