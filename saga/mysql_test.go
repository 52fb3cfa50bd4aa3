package saga_test

import (
	"context"
	"testing"

	"github.com/handoffhq/handoff/adapter/mysql"
	"github.com/handoffhq/handoff/internal/testenv"
	"github.com/handoffhq/handoff/saga"
)

// The SQL store on MySQL/MariaDB: a saga completes in the starter's
// transaction, another is compensated in reverse order.
func TestSaga_MySQL_CompletesAndCompensates(t *testing.T) {
	ctx := context.Background()
	db, err := mysql.Open(ctx, testenv.MySQLDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := mysql.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, `CREATE TABLE effects (n BIGINT AUTO_INCREMENT PRIMARY KEY, saga VARCHAR(100), what VARCHAR(100))`)
	b := backend{"mysql", db, mysql.SagaStore(db)}
	for _, tc := range []struct {
		fail    string
		want    saga.Status
		effects int
	}{{"", saga.Completed, 3}, {"confirm", saga.Compensated, 4}} {
		c, _ := saga.New(b.store)
		s, err := saga.Register(c, localSaga(t, tc.fail))
		if err != nil {
			t.Fatal(err)
		}
		id := start(t, db, s, order{ID: "o"})
		in, err := c.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got := effects(t, db, id); in.Status != tc.want || len(got) != tc.effects {
			t.Fatalf("fail %q: saga %s, effects %v", tc.fail, in.Status, got)
		}
		if n, err := b.store.Claim(ctx, []string{"order"}, "x", in.UpdatedAt, 1e9, 10); err != nil || len(n) != 0 {
			t.Fatalf("claim after the end: %v %v", n, err)
		}
	}
}
