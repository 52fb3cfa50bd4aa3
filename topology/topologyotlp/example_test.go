package topologyotlp_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/handoffhq/handoff/topology"
	"github.com/handoffhq/handoff/topology/topologyotlp"
)

// The receiver mounted where a service's OTLP/HTTP trace exporter posts;
// here one span in OTLP's JSON encoding stands for the exporter.
func ExampleNew() {
	mux := http.NewServeMux()
	g := topology.New()
	rcv, _ := topologyotlp.New(g)
	mux.Handle("POST /v1/traces", rcv)

	body := `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"shipping"}}]},` +
		`"scopeSpans":[{"spans":[{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","kind":5,` +
		`"attributes":[{"key":"messaging.destination.name","value":{"stringValue":"orders"}}]}]}]}]}`
	req := httptest.NewRequest("POST", "/v1/traces", strings.NewReader(body))
	req.Header.Set("Content-Type", topologyotlp.ContentTypeJSON)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fmt.Println(rec.Code)
	// Output:
	// 200
}
