package mysql_test

import (
	"context"
	"database/sql"

	"github.com/handoffhq/handoff/adapter/mysql"
	"github.com/handoffhq/handoff/inbox"
)

// The stores on MySQL or MariaDB, an inbox at READ COMMITTED (it needs the
// database, so it is not run here).
func Example() {
	ctx := context.Background()
	db, err := mysql.Open(ctx, "app:secret@tcp(db:3306)/app")
	if err != nil {
		panic(err)
	}
	err = mysql.Migrate(ctx, db)
	if err != nil {
		panic(err)
	}
	in, err := inbox.New(mysql.InboxStore(db), "billing",
		inbox.WithTxOptions(&sql.TxOptions{Isolation: sql.LevelReadCommitted}))
	if err != nil {
		panic(err)
	}
	_ = in
}
