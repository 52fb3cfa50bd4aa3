// Package openapi diffs two versions of an OpenAPI 3 document and says which
// changes break the API's clients. It wraps oasdiff (the diff and its
// backward-compatibility rules) so that `handoff contract openapi-diff` and
// `handoff check` share one verdict.
//
// The minimal sequence:
//
//	rep, err := openapi.Diff(v1, v2, openapi.Options{OldName: "v1.yaml", NewName: "v2.yaml"})
//	fmt.Println("breaking:", rep.Breaking())
//	for _, c := range rep.Changes {
//		fmt.Println(c.Rule, c.Operation, c.Path, c.Where())
//	}
//
// Each change names its oasdiff rule id and its location in the document.
//
// Documents are read from memory only: relative and remote $refs are not
// followed (a spec is untrusted input), and a document larger than
// Options.MaxBytes is refused. It does not judge message schemas; those
// belong to schema and registry.
package openapi
