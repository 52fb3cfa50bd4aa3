// Package check is the governance gate: one verdict, for CI, over a
// system's handoff.yaml, its schema registry, its contract broker and its
// test results. It evaluates the five checkpoints required before go-live:
//
//   - topology-documented: every service owned, every integration
//     classified sync or async;
//   - schemas-registered: every event schema subject registered, with a
//     compatibility level other than NONE;
//   - dead-letters-alerted: every consuming service covered by a
//     dead-letter store whose alert fires on dead-letter within 5 minutes;
//   - duplicate-delivery-tested: for every consumer, a passing test ran
//     handofftest.DuplicateDelivery, as a `go test -json` report shows;
//   - contracts-registered: every consumer (of a call or a topic) has a
//     contract pair declared and a pact in the broker;
//
// and then: OpenAPI changes without breaking changes, no anti-pattern
// findings, no drift between declared and observed topology, and
// can-i-deploy for the target environment (these three are skipped when
// given nothing to look at). A checkpoint whose evidence is missing (no
// registry, no broker, no test report) fails: a gate that cannot see does
// not pass.
//
//	rep, err := check.Run(ctx, check.Input{System: sys, Registry: reg, Broker: broker, TestReport: report})
//	rep.WriteText(os.Stdout) // or rep.WriteJUnit, or JSON of rep
//	if !rep.Passed {
//		os.Exit(1)
//	}
//
// Each problem names the team to act: the owner in handoff.yaml of the
// service, topic or alert it is about, or else the checkpoint's role
// (architecture, producers, platform, consumers, providers, release).
package check
