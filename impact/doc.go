// Package impact reports what a proposed schema change does to the
// consumers of its subject: which of them read the fields the change removes
// or alters, what breaks for each, and the steps that make the change safe.
//
// Readers come from the system (handoff.yaml: the services that consume the
// subject or a topic carrying it), the observed topology (consumers seen in
// traces), and the consumers' message pacts (the fields each one reads):
//
//	v, err := impact.Analyze(impact.Input{Subject: "orders-value", New: v2, Earlier: []schema.Version{{Version: 1, Schema: v1}},
//		Level: schema.Backward, System: sys, Pacts: []*contract.Pact{pact}})
//	fmt.Println("compatible:", v.Compatible, "safe for known consumers:", v.SafeForKnownConsumers)
//
// v.Compatible is the subject's blanket verdict at its level;
// v.SafeForKnownConsumers says no consumer with a pact reads a changed field.
//
// Both verdicts are reported: a change that touches only fields no known
// consumer reads is safe for the known consumers even where the level
// refuses it. A consumer without a message pact is listed as unverified:
// its reads are unknown, and the verdict does not cover it. Fields are
// compared for JSON Schema and Avro; for Protobuf the compatibility
// findings name the changed fields.
package impact
