package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/handoffhq/handoff/registry"
	"github.com/handoffhq/handoff/schema"
)

func deepJSONSchema(n int) string {
	return strings.Repeat(`{"type":"object","properties":{"a":`, n) + `{"type":"string"}` + strings.Repeat(`}}`, n)
}

func wideJSONSchema(n int) string {
	var b strings.Builder
	b.WriteString(`{"type":"object","properties":{`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"p%d":{"type":"string"}`, i)
	}
	b.WriteString(`}}`)
	return b.String()
}

func deepAvroSchema(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"type":"record","name":"R%d","fields":[{"name":"a","type":`, i)
	}
	b.WriteString(`"string"` + strings.Repeat(`}]}`, n))
	return b.String()
}

func wideProtoSchema(n int) string {
	var b strings.Builder
	b.WriteString("syntax = \"proto3\";\nmessage M {\n")
	for i := range n {
		fmt.Fprintf(&b, "  string f%d = %d;\n", i, i+1)
	}
	b.WriteString("}\n")
	return b.String()
}

// The attacks, on every route that parses a candidate: each is a
// 422 naming the limit, and costs the server little memory.
func TestServer_RefusesSchemasOverLimits(t *testing.T) {
	a := newAPI(t, sqliteStore(t))
	a.ok("POST", "/subjects/s/versions", map[string]any{"schema": `{"type":"object"}`, "schemaType": "JSON"})
	bodies := []struct {
		name, typ, text, limit string
	}{
		{"JSON 2,000 levels deep", "JSON", deepJSONSchema(2000), "MaxDepth=1000"},
		{"JSON 100,000 properties", "JSON", wideJSONSchema(100_000), "MaxNodes=20000"},
		{"Avro 2,000 records deep", "AVRO", deepAvroSchema(2000), "MaxDepth=1000"},
		{"Protobuf 30,000 fields", "PROTOBUF", wideProtoSchema(30_000), "MaxNodes=20000"},
	}
	routes := []struct{ method, path string }{
		{"POST", "/subjects/s/versions"},
		{"POST", "/subjects/s"},
		{"POST", "/compatibility/subjects/s/versions/latest"},
		{"POST", "/compatibility/subjects/s/versions"},
		{"POST", "/subjects/new/versions"},
	}
	for _, b := range bodies {
		for _, r := range routes {
			t.Run(b.name+" "+r.path, func(t *testing.T) {
				body := map[string]any{"schema": b.text, "schemaType": b.typ}
				msg := a.fails(r.method, r.path, body, 422, registry.CodeInvalidSchema)
				if !strings.Contains(msg, b.limit) {
					t.Fatalf("message %q does not name %s", msg, b.limit)
				}
			})
		}
	}
	// The memory of a refused request is the body and little more: the
	// refusal comes before any parser builds its model of the schema.
	body, _ := json.Marshal(map[string]any{"schema": wideJSONSchema(100_000), "schemaType": "JSON"})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	a.fails("POST", "/subjects/s/versions", string(body), 422, registry.CodeInvalidSchema)
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > uint64(20*len(body)) {
		t.Fatalf("a refused %d-byte request allocated %d bytes", len(body), got)
	}
}

func TestServer_WithLimits(t *testing.T) {
	a := newAPI(t, sqliteStore(t), registry.WithLimits(schema.Limits{MaxDepth: 10}))
	msg := a.fails("POST", "/subjects/s/versions", map[string]any{"schema": deepJSONSchema(6), "schemaType": "JSON"}, 422, registry.CodeInvalidSchema)
	if !strings.Contains(msg, "MaxDepth=10") {
		t.Fatal(msg)
	}
	a.ok("POST", "/subjects/s/versions", map[string]any{"schema": deepJSONSchema(4), "schemaType": "JSON"})
}

// Parses are bounded: with one slot, one request parses, one waits, and a
// third is answered 429 with Retry-After. A waiting request whose client
// hangs up gives its place up without parsing.
func TestServer_BoundsConcurrentParses(t *testing.T) {
	srv, err := registry.NewServer(sqliteStore(t), registry.WithMaxParses(1, 1),
		registry.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	parsing, hold := make(chan struct{}), make(chan struct{})
	waiting, gaveUp := make(chan struct{}, 4), make(chan struct{}, 4)
	var started atomic.Bool
	registry.SetParseHooks(srv,
		func() { waiting <- struct{}{} },
		func() { gaveUp <- struct{}{} },
		func() {
			if started.CompareAndSwap(false, true) {
				parsing <- struct{}{}
				<-hold
			}
		})
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	post := func(ctx context.Context, subject string) (*http.Response, error) {
		body, _ := json.Marshal(map[string]any{"schema": `{"type":"record","name":"` + subject + `","fields":[]}`})
		req, _ := http.NewRequestWithContext(ctx, "POST", hs.URL+"/subjects/"+subject+"/versions", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		return http.DefaultClient.Do(req)
	}
	status := func(resp *http.Response, err error) int {
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}

	aDone := make(chan int, 1)
	go func() { aDone <- status(post(context.Background(), "a")) }()
	<-parsing // a holds the only slot

	ctxB, cancelB := context.WithCancel(context.Background())
	bDone := make(chan int, 1)
	go func() { bDone <- status(post(ctxB, "b")) }()
	<-waiting // b waits for it

	resp, err := post(context.Background(), "c")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e registry.Error
	if resp.StatusCode != 429 || json.Unmarshal(raw, &e) != nil || e.Code != registry.CodeTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third request: %d %s (Retry-After %q), want 429 with error_code %d and Retry-After",
			resp.StatusCode, raw, resp.Header.Get("Retry-After"), registry.CodeTooManyRequests)
	}

	cancelB() // b's client hangs up while b waits
	<-gaveUp
	if got := <-bDone; got != -1 {
		t.Fatalf("b: status %d, want the client's own error", got)
	}
	close(hold)
	if got := <-aDone; got != 200 {
		t.Fatalf("a: status %d", got)
	}
	if n := registry.ParsesStarted(srv); n != 1 {
		t.Fatalf("%d parses started, want 1: the abandoned request must not parse", n)
	}
	if n := registry.ParseSlotsTaken(srv); n != 0 {
		t.Fatalf("%d parse slots still taken", n)
	}
	if got := status(post(context.Background(), "c")); got != 200 {
		t.Fatalf("c after the others: %d", got)
	}
}
