package topologyotlp_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/system"
	"github.com/handoffhq/handoff/topology"
	"github.com/handoffhq/handoff/topology/topologyotlp"
)

// provider is a service's tracer provider exporting synchronously, with
// the OpenTelemetry OTLP/HTTP exporter, to url.
func provider(t *testing.T, service, url string, opts ...otlptracehttp.Option) *sdktrace.TracerProvider {
	t.Helper()
	exp, err := otlptracehttp.New(context.Background(), append([]otlptracehttp.Option{otlptracehttp.WithEndpointURL(url + "/v1/traces")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return tp
}

func edge(g *topology.Graph, from, to string, kind system.Kind) (topology.Edge, bool) {
	for _, e := range g.Edges() {
		if e.From == from && e.To == to && e.Kind == kind {
			return e, true
		}
	}
	return topology.Edge{}, false
}

// Spans exported by real OTLP/HTTP exporters (protobuf, plain and gzip)
// of two services become edges: a call, with its route and its failure,
// a publish and a consume.
func TestReceiver_RealExporterSpansBecomeEdges(t *testing.T) {
	g := topology.New()
	rcv, err := topologyotlp.New(g)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /v1/traces", rcv)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx := context.Background()
	checkout := provider(t, "checkout", srv.URL).Tracer("test")
	payments := provider(t, "payments", srv.URL, otlptracehttp.WithCompression(otlptracehttp.GzipCompression)).Tracer("test")
	for i := range 3 {
		cctx, call := checkout.Start(ctx, "POST", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
			attribute.String("http.request.method", "POST"), attribute.String("peer.service", "payments"),
			attribute.String("server.address", "payments.internal")))
		_, serve := payments.Start(cctx, "POST /charges", trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
			attribute.String("http.request.method", "POST"), attribute.String("http.route", "/charges")))
		if i == 2 {
			call.SetStatus(codes.Error, "502")
		}
		serve.End()
		call.End()
	}
	_, pub := checkout.Start(ctx, "orders publish", trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
		attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", "orders")))
	pub.End()
	_, sub := payments.Start(ctx, "orders process", trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
		attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", "orders")))
	sub.End()

	call, ok := edge(g, "checkout", "payments", system.Sync)
	if !ok {
		t.Fatalf("no call edge; edges %+v", g.Edges())
	}
	if call.Observed.Calls != 3 || call.Observed.Errors != 1 || call.Protocol != "http" {
		t.Errorf("call edge %+v: want 3 calls, 1 error, http", call)
	}
	if e, ok := edge(g, "checkout", "orders", system.Async); !ok || e.Protocol != "nats" || e.Observed.Calls != 1 {
		t.Errorf("publish edge %+v %v", e, ok)
	}
	if e, ok := edge(g, "orders", "payments", system.Async); !ok || e.Observed.Calls != 1 {
		t.Errorf("consume edge %+v %v", e, ok)
	}
	for _, n := range g.Nodes() {
		if n.ID == "orders" && n.Kind != topology.Topic {
			t.Errorf("orders is a %s, want a topic", n.Kind)
		}
	}
}

// OTLP/JSON (hex ids, as the protocol writes them) is taken too, and a
// client span joined to its server span in the same request takes the
// server's route.
func TestReceiver_JSON(t *testing.T) {
	g := topology.New()
	rcv, _ := topologyotlp.New(g)
	body := `{"resourceSpans":[
 {"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"web"}}]},
  "scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"GET",
   "kind":3,"startTimeUnixNano":"1000","endTimeUnixNano":"5000","attributes":[{"key":"http.request.method","value":{"stringValue":"GET"}}]}]}]},
 {"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"catalog"}}]},
  "scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b175","parentSpanId":"eee19b7ec3c1b174",
   "name":"GET /items","kind":2,"startTimeUnixNano":"2000","endTimeUnixNano":"4000","attributes":[{"key":"http.route","value":{"stringValue":"/items"}}]}]}]}]}`
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/v1/traces", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rcv.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	e, ok := edge(g, "web", "catalog", system.Sync)
	if !ok || fmt.Sprint(e.Routes) != "[/items]" {
		t.Fatalf("edge %+v %v", e, ok)
	}
}

// Bad requests are refused with the protocol's status and record nothing:
// over the size limit (plain or as a gzip bomb), another content type,
// bytes that do not decode, ids of the wrong length.
func TestReceiver_RefusesBadRequests(t *testing.T) {
	g := topology.New()
	rcv, err := topologyotlp.New(g, topologyotlp.WithMaxBytes(1024))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := topologyotlp.New(g, topologyotlp.WithMaxBytes(0)); err == nil {
		t.Error("WithMaxBytes(0) accepted")
	}
	big := strings.Repeat(" ", 4096) + "{}"
	var bomb bytes.Buffer
	zw := gzipWriter(&bomb)
	zw.Write([]byte(big))
	zw.Close()
	badIDs, _ := proto.Marshal(&coltrace.ExportTraceServiceRequest{})
	for _, c := range []struct {
		name, ct, enc string
		body          []byte
		want          int
	}{
		{"too large", "application/json", "", []byte(big), http.StatusRequestEntityTooLarge},
		{"gzip bomb", "application/json", "gzip", bomb.Bytes(), http.StatusRequestEntityTooLarge},
		{"text", "text/plain", "", []byte("{}"), http.StatusUnsupportedMediaType},
		{"not protobuf", "application/x-protobuf", "", []byte{0xff, 0xff, 0xff}, http.StatusBadRequest},
		{"not json", "application/json", "", []byte("{"), http.StatusBadRequest},
		{"bad encoding", "application/json", "br", []byte("{}"), http.StatusBadRequest},
		{"short ids", "application/x-protobuf", "", append(badIDs, shortIDs()...), http.StatusBadRequest},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/v1/traces", bytes.NewReader(c.body))
		req.Header.Set("Content-Type", c.ct)
		if c.enc != "" {
			req.Header.Set("Content-Encoding", c.enc)
		}
		rcv.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, rec.Code, rec.Body, c.want)
		}
	}
	if len(g.Edges()) != 0 {
		t.Errorf("refused requests recorded %v", g.Edges())
	}
}

// The receiver feeds a Shared graph as it feeds a Graph: the spans'
// edges reach its store (here an in-memory one) and its Graph.
func TestReceiver_FeedsASharedGraph(t *testing.T) {
	store := memory.NewTopologyStore()
	shared, err := topology.NewShared(store)
	if err != nil {
		t.Fatal(err)
	}
	rcv, err := topologyotlp.New(shared)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	tp := provider(t, "checkout", srv.URL)
	_, s := tp.Tracer("t").Start(context.Background(), "publish", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("messaging.system", "kafka"), attribute.String("messaging.destination.name", "orders")))
	s.End()

	g, err := shared.Graph(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := edge(g, "checkout", "orders", system.Async); !ok || e.Observed.Calls != 1 || e.Protocol != "kafka" {
		t.Errorf("publish edge in the shared graph: %+v, %v", e, ok)
	}
	rs, err := store.Records(context.Background(), time.Time{})
	if err != nil || len(rs) != 1 || rs[0].Route != "publish" || rs[0].Calls != 1 {
		t.Errorf("store: %+v, %v; want the publish, once", rs, err)
	}
}
