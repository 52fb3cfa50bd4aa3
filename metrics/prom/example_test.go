package prom_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/metrics"
	"github.com/handoffhq/handoff/metrics/prom"
)

// handoff's metrics served as Prometheus /metrics.
func Example() {
	mux := http.NewServeMux()
	exp, _ := prom.New()
	m, _ := metrics.New(metrics.WithMeterProvider(exp.MeterProvider()))
	mux.Handle("GET /metrics", exp)

	broker, _ := memory.NewBroker()
	pub := m.Publisher(broker, "memory")
	_ = pub.Publish(context.Background(), "orders", handoff.NewMessage("/orders", "order.placed", nil))

	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "messaging_client_sent_messages_total{") {
			fmt.Println(line[strings.LastIndexByte(line, ' ')+1:], "sent")
		}
	}
	// Output: 1 sent
}
