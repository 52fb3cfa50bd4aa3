package topology_test

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/handoffhq/handoff/topology"
)

func edgesOf(obs []topology.Observation) string {
	var s []string
	for _, o := range obs {
		e := string(o.Kind) + " " + o.From + "->" + o.To + " " + o.Protocol + " " + o.Route
		if o.Err {
			e += " error"
		}
		s = append(s, strings.TrimSpace(e))
	}
	sort.Strings(s)
	return strings.Join(s, "\n")
}

// OTLP/JSON of one trace across gateway, order and shipping: a client span
// joined to its server child names the callee and its route; a gRPC client
// span names its peer.service; messaging spans go to and from their topic;
// an address nobody resolves stays an address; internal spans are no edge.
func TestReadOTLP_Edges(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "spans.otlp.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	spans, err := topology.ReadOTLP(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != 7 {
		t.Fatalf("%d spans", len(spans))
	}
	resolve := func(addr string) string {
		if addr == "10.0.0.7:80" {
			return "order"
		}
		return ""
	}
	want := `async order->order.placed nats publish
async order.placed->shipping nats consume
sync gateway->order http POST /orders
sync order->payment grpc payments.v1.Payments/Charge error
sync shipping->order http`
	if got := edgesOf(topology.Observations(spans, resolve)); got != want {
		t.Fatalf("edges:\n%s\nwant:\n%s", got, want)
	}
	if got := edgesOf(topology.Observations(spans, nil)); !strings.Contains(got, "sync shipping->10.0.0.7:80 http") {
		t.Fatalf("unresolved address: %s", got)
	}
	g := topology.New()
	if n, err := g.ObserveSpans(spans, resolve); err != nil || n != 5 {
		t.Fatalf("ObserveSpans: %d, %v", n, err)
	}
	for _, n := range g.Nodes() {
		if n.ID == "order.placed" && n.Kind != topology.Topic {
			t.Fatalf("order.placed is a %s", n.Kind)
		}
	}
}

func TestReadOTLP_Refusals(t *testing.T) {
	for _, tc := range []struct{ in, msg string }{
		{`{"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"01"}]}]}]}`, "traceId and spanId are required"},
		{`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"01","spanId":"01","kind":9}]}]}]}`, "kind 9"},
		{`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"01","spanId":"01","startTimeUnixNano":"soon"}]}]}]}`, "64-bit integer"},
		{`{"resourceSpans":`, "OTLP request 0"},
	} {
		if _, err := topology.ReadOTLP(strings.NewReader(tc.in)); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want ~%q", tc.in, err, tc.msg)
		}
	}
}

func FuzzReadOTLP(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "spans.otlp.json")); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"resourceSpans":[]}{"resourceSpans":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		spans, err := topology.ReadOTLP(bytes.NewReader(b))
		if err != nil {
			return
		}
		g := topology.New()
		if _, err := g.ObserveSpans(spans, nil); err != nil {
			t.Fatalf("accepted spans do not observe: %v", err)
		}
		g.Chains()
		var buf bytes.Buffer
		if err := g.WriteJSON(&buf); err != nil {
			t.Fatal(err)
		}
	})
}
