// Package system reads handoff.yaml, the declared shape of a system: its
// services and their owners and SLOs, every integration between them
// (synchronous HTTP or gRPC calls, asynchronous publishes and consumes on
// topics, each with its protocol, route or topic, schema subject and
// contract pair), the topics, the databases each service owns and the
// tables it writes, the dead-letter stores and the alert routes.
//
// The file is the input of the topology graph (package topology) and of the
// governance gate (`handoff check`).
//
//	s, err := system.Load("handoff.yaml")
//	var errs system.Errors
//	if errors.As(err, &errs) {
//		for _, e := range errs { fmt.Println(e) } // handoff.yaml:6:19: services[0].availability: maximum: got 1.2, want 1 (rule maximum)
//	}
//
// A file is checked against Schema (JSON Schema 2020-12, with
// santhosh-tekuri/jsonschema), then its names are resolved: integrations name
// declared services and topics, writes name declared databases and tables,
// contract pairs name the two sides of their integration, dead-letter stores
// name declared alert routes. Every problem is reported with its line,
// column, path and rule, in line order. The file is untrusted input: its
// size, node count and nesting are bounded, and YAML anchors, aliases and
// merge keys are refused.
//
// Starter returns a commented file to begin with (`handoff init`).
//
// The package does not decide whether a system is healthy: an integration
// with no kind parses, and the gate reports it.
package system
