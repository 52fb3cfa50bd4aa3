package otelsetup_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"

	"github.com/handoffhq/handoff/internal/otelsetup"
)

// In dev, spans go to the writer; log lines inside a span carry its trace
// id.
func TestSetup_StdoutTracesAndTraceIDsInLogs(t *testing.T) {
	var spans, logs bytes.Buffer
	p, err := otelsetup.Setup(t.Context(), otelsetup.Config{Service: "dev-test", Traces: otelsetup.TracesStdout, Stdout: &spans})
	if err != nil {
		t.Fatal(err)
	}
	log := otelsetup.Logger(&logs, slog.LevelInfo)
	ctx, span := otel.Tracer("test").Start(context.Background(), "handle order")
	log.InfoContext(ctx, "handled")
	log.Info("no span")
	span.End()
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	id := span.SpanContext().TraceID().String()
	if !strings.Contains(spans.String(), `"Name":"handle order"`) || !strings.Contains(spans.String(), id) {
		t.Errorf("stdout spans: %s", spans.String())
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "trace_id="+id) || !strings.Contains(lines[0], "span_id=") ||
		strings.Contains(lines[1], "trace_id") {
		t.Errorf("logs: %q", lines)
	}
}

// With otlp, spans are posted to the collector's /v1/traces as OTLP
// protobuf.
func TestSetup_OTLPExporter(t *testing.T) {
	got := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r.Method + " " + r.URL.Path + " " + r.Header.Get("Content-Type") + " " + string(b)
	}))
	defer srv.Close()
	p, err := otelsetup.Setup(t.Context(), otelsetup.Config{Service: "otlp-test", Traces: otelsetup.TracesOTLP, Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("test").Start(context.Background(), "publish orders")
	span.End()
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	req := <-got
	if !strings.HasPrefix(req, "POST /v1/traces application/x-protobuf") || !strings.Contains(req, "publish orders") ||
		!strings.Contains(req, "otlp-test") {
		t.Errorf("collector got %q", req)
	}
}

func TestSetup_ErrorsNameTheField(t *testing.T) {
	for _, c := range []struct {
		cfg  otelsetup.Config
		want string
	}{
		{otelsetup.Config{Traces: "jaeger"}, `traces "jaeger": must be none, stdout or otlp`},
		{otelsetup.Config{Traces: "otlp", Endpoint: "127.0.0.1:4318"}, `endpoint "127.0.0.1:4318": must be an http or https URL`},
		{otelsetup.Config{Sampler: 2}, "sampler 2: must be between 0 and 1"},
		{otelsetup.Config{Traces: "stdout"}, "traces stdout: a writer must be given"},
	} {
		if _, err := otelsetup.Setup(t.Context(), c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Setup(%+v) = %v, want %q", c.cfg, err, c.want)
		}
	}
}
