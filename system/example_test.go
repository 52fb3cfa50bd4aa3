package system_test

import (
	"errors"
	"fmt"

	"github.com/handoffhq/handoff/system"
)

func ExampleParse() {
	_, err := system.Parse("handoff.yaml", []byte(`version: 1
system: shop
services:
  - name: order
    owner: team-orders
    availability: 1.2
    integrations:
      - {kind: sync, protocol: http, to: payment}
`))
	fmt.Println(err)
	// Output:
	// handoff.yaml:6:19: services[0].availability: maximum: got 1.2, want 1 (rule maximum)
}

// Load reads a file; every problem in it is one Error, with its line,
// column, path and rule.
func ExampleLoad() {
	s, err := system.Load("handoff.yaml")
	var errs system.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			fmt.Println(e)
		} // handoff.yaml:6:19: services[0].availability: maximum: got 1.2, want 1 (rule maximum)
	}
	_ = s
}
