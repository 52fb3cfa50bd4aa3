package openapi_test

import (
	"fmt"

	"github.com/handoffhq/handoff/contract/openapi"
)

func ExampleDiff() {
	v1 := []byte(`openapi: 3.0.3
info: {title: orders, version: "1"}
paths:
  /orders/{id}:
    get:
      parameters: [{name: id, in: path, required: true, schema: {type: string}}]
      responses: {"200": {description: the order}}
    delete:
      parameters: [{name: id, in: path, required: true, schema: {type: string}}]
      responses: {"204": {description: cancelled}}
`)
	v2 := []byte(`openapi: 3.0.3
info: {title: orders, version: "2"}
paths:
  /orders/{id}:
    get:
      parameters: [{name: id, in: path, required: true, schema: {type: string}}]
      responses: {"200": {description: the order}}
`)
	rep, err := openapi.Diff(v1, v2, openapi.Options{OldName: "v1.yaml", NewName: "v2.yaml"})
	if err != nil {
		panic(err)
	}
	fmt.Println("breaking:", rep.Breaking())
	for _, c := range rep.Changes {
		fmt.Println(c.Rule, c.Operation, c.Path, c.Where())
	}
	// Output:
	// breaking: true
	// api-removed-without-deprecation DELETE /orders/{id} v1.yaml:8:5
}
