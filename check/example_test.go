package check_test

import (
	"context"
	"os"

	"github.com/handoffhq/handoff/check"
	"github.com/handoffhq/handoff/contract"
	"github.com/handoffhq/handoff/registry"
	"github.com/handoffhq/handoff/system"
)

// The gate in a CI job: the system's file, its registry and broker, and the
// `go test -json` report of the repository's tests. (It needs the servers,
// so it is not run here.)
func ExampleRun() {
	ctx := context.Background()
	sys, err := system.Load("handoff.yaml")
	if err != nil {
		panic(err)
	}
	reg, err := registry.NewClient("http://registry:8081")
	if err != nil {
		panic(err)
	}
	broker := &contract.BrokerClient{BaseURL: "http://broker:9292", Token: os.Getenv("BROKER_TOKEN")}
	report, err := os.ReadFile("test-report.json") // go test -json ./... > test-report.json
	if err != nil {
		panic(err)
	}
	rep, err := check.Run(ctx, check.Input{System: sys, Registry: reg, Broker: broker, TestReport: report})
	if err != nil {
		panic(err)
	}
	rep.WriteText(os.Stdout) // or rep.WriteJUnit, or JSON of rep
	if !rep.Passed {
		os.Exit(1)
	}
}
