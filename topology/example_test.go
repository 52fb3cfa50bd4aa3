package topology_test

import (
	"fmt"

	"github.com/handoffhq/handoff/system"
	"github.com/handoffhq/handoff/topology"
)

// The declared graph of a system file, an observed call added, and its
// synchronous chains with their availability: the product of the members'.
func ExampleFromSystem() {
	sys, err := system.Parse("handoff.yaml", []byte(`version: 1
system: shop
services:
  - name: gateway
    owner: team-edge
    availability: 0.999
    integrations:
      - {kind: sync, protocol: http, to: order}
  - name: order
    owner: team-orders
    availability: 0.999
    integrations:
      - {kind: sync, protocol: grpc, to: payment}
  - name: payment
    owner: team-payments
    availability: 0.999
  - name: web
    owner: team-web
`))
	if err != nil {
		panic(err)
	}
	g := topology.FromSystem(sys)
	g.Observe(topology.Observation{From: "web", To: "order", Kind: system.Sync, Protocol: "http"})
	for _, c := range g.Chains() {
		fmt.Println(c.Services, c.Availability) // [gateway order payment] 0.997002999
	}
	// Output:
	// [gateway order payment] 0.997002999
	// [web order payment] 0.998001
}
