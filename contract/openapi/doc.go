// Package openapi diffs two versions of an OpenAPI 3 document and says which
// changes break the API's clients. It wraps oasdiff (the diff and its
// backward-compatibility rules) so that `handoff contract openapi-diff` and
// `handoff check` share one verdict.
//
// The minimal sequence:
//
//	old, _ := os.ReadFile("api-v1.yaml")
//	new, _ := os.ReadFile("api-v2.yaml")
//	rep, err := openapi.Diff(old, new, openapi.Options{OldName: "api-v1.yaml", NewName: "api-v2.yaml"})
//	if rep.Breaking() { ... } // rep.Changes name each rule id and location
//
// Documents are read from memory only: relative and remote $refs are not
// followed (a spec is untrusted input), and a document larger than
// Options.MaxBytes is refused. It does not judge message schemas; those
// belong to schema and registry.
package openapi
