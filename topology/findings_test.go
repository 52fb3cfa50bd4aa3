package topology_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/handoffhq/handoff/system"
	"github.com/handoffhq/handoff/topology"
)

// The sample holds every anti-pattern: two four-hop chains (99.50% and
// 99.55%, below a 99.6% target), the
// table payments.transactions written by payment and ledger, and
// order.placed carrying only orderId while shipping calls order back.
func TestFindings_Sample(t *testing.T) {
	s, err := system.Load(filepath.Join("..", "system", "testdata", "sample", "handoff.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	g := topology.FromSystem(s)
	fields := func(subject string) ([]string, bool) {
		switch subject {
		case "order.placed-value":
			return []string{"orderId"}, true
		case "ledger.posted-value":
			return []string{"entryId", "amount"}, true
		}
		return nil, false
	}
	var got []string
	for _, f := range topology.Findings(s, g, topology.Thresholds{MinAvailability: 0.996}, fields) {
		got = append(got, f.Rule+" "+f.Subject+" ["+strings.Join(f.Owners, ",")+"]")
	}
	want := []string{
		"sync-chain-length gateway -> order -> payment -> fraud -> ledger [team-edge,team-finance,team-orders,team-payments,team-risk]",
		"sync-chain-availability gateway -> order -> payment -> fraud -> ledger [team-edge,team-finance,team-orders,team-payments,team-risk]",
		"sync-chain-length shipping -> order -> payment -> fraud -> ledger [team-finance,team-logistics,team-orders,team-payments,team-risk]",
		"sync-chain-availability shipping -> order -> payment -> fraud -> ledger [team-finance,team-logistics,team-orders,team-payments,team-risk]",
		"shared-table payments.transactions [team-finance,team-payments]",
		"phantom-event order.placed [team-logistics,team-orders]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Thresholds the sample meets: only the shared table remains, and no
	// phantom event without payloads to read.
	got = nil
	for _, f := range topology.Findings(s, g, topology.Thresholds{MaxHops: 4, MinAvailability: 0.99}, nil) {
		got = append(got, f.Rule)
	}
	if strings.Join(got, ",") != "shared-table" {
		t.Fatalf("with looser thresholds: %v", got)
	}
}
