package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/inbox"
)

// A database file, handoff's tables, and an inbox on it.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sqlite-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	db, err := sqlite.Open(ctx, filepath.Join(dir, "handoff.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()
	err = sqlite.Migrate(ctx, db)
	if err != nil {
		panic(err)
	}
	in, err := inbox.New(sqlite.InboxStore(db), "billing")
	if err != nil {
		panic(err)
	}
	h := in.Handler(func(ctx context.Context, tx *sql.Tx, m *handoff.Message) error {
		fmt.Println("handled", m.Type)
		return nil
	})
	m := handoff.NewMessage("/payments", "payment.received", []byte(`{"amount":10}`))
	for range 2 { // the second delivery is a duplicate
		if err := h.Handle(ctx, m); err != nil {
			panic(err)
		}
	}
	// Output: handled payment.received
}
