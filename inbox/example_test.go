package inbox_test

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

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "inbox-example")
	defer os.RemoveAll(dir)
	db, err := sqlite.Open(ctx, filepath.Join(dir, "billing.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()
	if err := sqlite.Migrate(ctx, db); err != nil {
		panic(err)
	}
	_, _ = db.ExecContext(ctx, `CREATE TABLE balances (account TEXT PRIMARY KEY, amount INTEGER NOT NULL)`)
	_, _ = db.ExecContext(ctx, `INSERT INTO balances VALUES ('alice', 0)`)

	in, err := inbox.New(sqlite.InboxStore(db), "billing")
	if err != nil {
		panic(err)
	}
	credit := in.Handler(func(ctx context.Context, tx *sql.Tx, msg *handoff.Message) error {
		_, err := tx.ExecContext(ctx, `UPDATE balances SET amount = amount + 10 WHERE account = 'alice'`)
		return err
	})

	// The broker delivers the same message three times.
	msg := handoff.NewMessage("/payments", "com.example.payment.received", []byte(`{"amount":10}`))
	for range 3 {
		if err := credit.Handle(ctx, msg); err != nil {
			panic(err)
		}
	}
	var amount int
	_ = db.QueryRowContext(ctx, `SELECT amount FROM balances WHERE account = 'alice'`).Scan(&amount)
	fmt.Println("alice:", amount)
	// Output: alice: 10
}
