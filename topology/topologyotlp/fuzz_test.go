package topologyotlp_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/handoffhq/handoff/topology"
	"github.com/handoffhq/handoff/topology/topologyotlp"
)

// Any body, in either encoding, is answered 200 or a 4xx, never a panic;
// a refused one records nothing.
func FuzzReceiver(f *testing.F) {
	f.Add([]byte(shortIDs()), true)
	empty, _ := proto.Marshal(&coltrace.ExportTraceServiceRequest{})
	f.Add(empty, true)
	f.Add([]byte(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"a"}}]},"scopeSpans":[{"spans":[{"traceId":"01","spanId":"02","kind":4,"attributes":[{"key":"messaging.destination.name","value":{"stringValue":"t"}}]}]}]}]}`), false)
	f.Add([]byte(`{`), false)
	f.Fuzz(func(t *testing.T, body []byte, protobuf bool) {
		g := topology.New()
		rcv, _ := topologyotlp.New(g, topologyotlp.WithMaxBytes(1<<16))
		req := httptest.NewRequest("POST", "/v1/traces", bytes.NewReader(body))
		req.Header.Set("Content-Type", map[bool]string{true: topologyotlp.ContentTypeProtobuf, false: topologyotlp.ContentTypeJSON}[protobuf])
		rec := httptest.NewRecorder()
		rcv.ServeHTTP(rec, req)
		switch {
		case rec.Code == http.StatusOK:
		case rec.Code >= 400 && rec.Code < 500:
			if len(g.Edges()) != 0 {
				t.Fatalf("refused (%d) but recorded %v", rec.Code, g.Edges())
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}
