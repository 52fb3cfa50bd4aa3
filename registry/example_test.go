package registry_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/registry"
	"github.com/handoffhq/handoff/schema"
)

// A registry on SQLite, a client registering two versions of a schema, and
// a third version refused with every reason given.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "registry-example")
	defer os.RemoveAll(dir)
	db, _ := sqlite.Open(ctx, filepath.Join(dir, "registry.db"))
	defer db.Close()
	if err := sqlite.Migrate(ctx, db); err != nil {
		fmt.Println(err)
		return
	}
	srv, _ := registry.NewServer(sqlite.RegistryStore(db), registry.WithDefaultCompatibility(schema.Backward))
	hs := httptest.NewServer(srv)
	defer hs.Close()

	c, _ := registry.NewClient(hs.URL)
	v1 := `{"type":"object","properties":{"order":{"type":"string"}},"required":["order"],"additionalProperties":false}`
	v2 := `{"type":"object","properties":{"order":{"type":"string"},"note":{"type":"string"}},"required":["order"],"additionalProperties":false}`
	v3 := `{"type":"object","properties":{"order":{"type":"integer"},"total":{"type":"number"}},"required":["order","total"],"additionalProperties":false}`
	for _, text := range []string{v1, v2, v3} {
		id, err := c.Register(ctx, "orders-value", registry.SchemaSpec{Type: schema.JSON, Text: text})
		var re *registry.Error
		if errors.As(err, &re) {
			fmt.Println("refused:", re.Code)
			res, _ := c.CheckCompatibility(ctx, "orders-value", "latest", registry.SchemaSpec{Type: schema.JSON, Text: text}, true)
			for _, m := range res.Messages {
				fmt.Println(" ", m)
			}
			continue
		}
		fmt.Println("registered id", id)
	}
	// Output:
	// registered id 1
	// registered id 2
	// refused: 409
	//   PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL at /properties/note (reader, version 2): the writer declares property "note", which the reader does not declare while its content model is closed: data carrying it fails the reader; hint: declare the property in both (it may be deprecated), or open the reader's content model (additionalProperties)
	//   TYPE_CHANGED at /properties/order (reader, version 2): the reader accepts integer, the writer allows string: the writer's data fails the reader; hint: make both accept the same types (a type array or anyOf on the reader), or use another property name
	//   REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL at /properties/total (reader, version 2): the reader requires property "total", which the writer's content model (not open) does not declare: the writer's data lacks it; hint: declare the property in both and require it in both, or in neither
}

// Scoped tokens: a CI pipeline's token may register, a dashboard's only
// read; deleting needs an admin token.
func ExampleWithScopedToken() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "registry-example")
	defer os.RemoveAll(dir)
	db, _ := sqlite.Open(ctx, filepath.Join(dir, "registry.db"))
	defer db.Close()
	if err := sqlite.Migrate(ctx, db); err != nil {
		fmt.Println(err)
		return
	}
	srv, err := registry.NewServer(sqlite.RegistryStore(db),
		registry.WithScopedToken("write", "ci-token"),
		registry.WithScopedToken("read", "dashboard-token"),
		registry.WithRequiredToken("admin-token"))
	if err != nil {
		fmt.Println(err)
		return
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()

	spec := registry.SchemaSpec{Type: schema.Avro, Text: `"string"`}
	for _, tok := range []string{"dashboard-token", "ci-token"} {
		c, _ := registry.NewClient(hs.URL, registry.WithToken(tok))
		id, err := c.Register(ctx, "names-value", spec)
		var re *registry.Error
		if errors.As(err, &re) {
			fmt.Println(tok+":", re.Code, re.Message)
			continue
		}
		fmt.Println(tok+": registered id", id)
	}
	// Output:
	// dashboard-token: 40301 Forbidden: this request needs a token with the write scope; the token given has the read scope
	// ci-token: registered id 1
}
