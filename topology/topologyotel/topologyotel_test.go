package topologyotel_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/nats"
	"github.com/handoffhq/handoff/adapter/natsserver"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/resiliencehttp"
	"github.com/handoffhq/handoff/telemetry"
	"github.com/handoffhq/handoff/topology"
	"github.com/handoffhq/handoff/topology/topologyotel"
)

type noLetters struct{ t *testing.T }

func (n noLetters) Add(_ context.Context, l *dlq.Letter) error {
	n.t.Errorf("dead letter: %v", l)
	return nil
}

// Real traffic, instrumented as services instrument it: web calls order
// over HTTP through resiliencehttp's client (a client span; trace context in
// the request), order's handler (a server span with http.route) publishes
// order.placed on NATS JetStream through telemetry.Publisher (a producer
// span), and shipping's consumer runtime processes it (a consumer span).
// The processor, installed in each service's tracer provider, draws
// web -> order (sync, http, POST /orders), order -> order.placed and
// order.placed -> shipping (async, nats); the recorded spans, through
// topology.Observations, give the same edges.
func TestProcessor_RealHTTPAndNATSTraffic(t *testing.T) {
	ctx := context.Background()
	g := topology.New()
	proc := topologyotel.New(g, nil)
	rec := tracetest.NewSpanRecorder()
	provider := func(service string) *sdktrace.TracerProvider {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(proc), sdktrace.WithSpanProcessor(rec),
			sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))))
		t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		return tp
	}
	web, order, shipping := provider("web"), provider("order"), provider("shipping")

	srv, err := natsserver.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	bus, err := nats.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close() })
	publisher := telemetry.Publisher(bus, telemetry.WithTracerProvider(order), telemetry.WithSystem("nats"))

	handled := make(chan string, 1)
	cons, err := consumer.New(bus, "order.placed", "shipping", handoff.HandlerFunc(func(ctx context.Context, m *handoff.Message) error {
		handled <- m.ID
		return nil
	}), noLetters{t}, consumer.WithTracerProvider(shipping), consumer.WithSystem("nats"))
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cons.Run(cctx) }()
	stop := sync.OnceFunc(func() { cancel(); <-done })
	defer stop()

	prop := propagation.TraceContext{}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := order.Tracer("order").Start(ctx, "POST /orders", trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("http.route", "/orders")))
		defer span.End()
		m := handoff.NewMessage("order", "order.placed", []byte(`{"id":"o-1"}`))
		m.PartitionKey = "o-1"
		if err := publisher.Publish(ctx, "order.placed", m); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer api.Close()
	rt, err := resiliencehttp.NewTransport(http.DefaultTransport, resiliencehttp.WithTracerProvider(web))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, "POST", api.URL+"/orders", strings.NewReader(`{}`))
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d", resp.StatusCode)
	}
	select {
	case <-handled:
	case <-time.After(30 * time.Second):
		t.Fatal("shipping never handled order.placed")
	}
	stop() // every span has ended

	want := "async order->order.placed nats\nasync order.placed->shipping nats\nsync web->order http POST /orders"
	var got []string
	for _, e := range g.Edges() {
		got = append(got, strings.TrimSpace(string(e.Kind)+" "+e.From+"->"+e.To+" "+e.Protocol+" "+strings.Join(e.Routes, ",")))
	}
	if strings.Join(got, "\n") != want {
		t.Fatalf("processor edges:\n%s\nwant:\n%s", strings.Join(got, "\n"), want)
	}

	var spans []topology.Span
	for _, s := range rec.Ended() {
		spans = append(spans, topologyotel.Span(s))
	}
	var fromSpans []string
	seen := map[string]bool{}
	for _, o := range topology.Observations(spans, nil) {
		e := strings.TrimSpace(string(o.Kind) + " " + o.From + "->" + o.To + " " + o.Protocol)
		if o.Kind == "sync" {
			e += " " + o.Route
		}
		if !seen[e] {
			seen[e] = true
			fromSpans = append(fromSpans, e)
		}
	}
	sort.Strings(fromSpans)
	if strings.Join(fromSpans, "\n") != want {
		t.Fatalf("edges from the recorded spans:\n%s\nwant:\n%s", strings.Join(fromSpans, "\n"), want)
	}
}
