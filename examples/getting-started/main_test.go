package main

import (
	"bytes"
	"context"
	"database/sql"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/handoffhq/handoff/internal/testenv"
)

// The getting-started program runs on the local PostgreSQL and NATS, places
// its orders through its HTTP handler, and exits by itself once each has
// exactly one shipment row, reserved through the flaky warehouse.
func TestGettingStarted_ShipsEveryOrderOnce(t *testing.T) {
	dbURL, natsURL := testenv.PostgresURL(t), testenv.NATSURL(t)
	topic := testenv.Unique("gs_orders")
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"-db", dbURL, "-nats", natsURL, "-topic", topic, "-orders", "6"}, &out, &errb); err != nil {
		t.Fatalf("run: %v\n%s", err, errb.String())
	}
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var orders, shipments, distinct, reserved int
	db.QueryRow(`SELECT count(*) FROM orders`).Scan(&orders)
	db.QueryRow(`SELECT count(*), count(DISTINCT message_id), count(*) FILTER (WHERE reservation = 'R-' || order_id) FROM shipments`).Scan(&shipments, &distinct, &reserved)
	if orders != 6 || shipments != 6 || distinct != 6 || reserved != 6 {
		t.Fatalf("orders %d, shipments %d (%d events, %d reserved), want 6 each\n%s\n%s", orders, shipments, distinct, reserved, out.String(), errb.String())
	}
	if n := strings.Count(out.String(), "shipped once"); n != 6 {
		t.Fatalf("printed %d shipments:\n%s", n, out.String())
	}
	if !strings.Contains(out.String(), "for 6 reservations (every other one failed") {
		t.Fatalf("the flaky warehouse was not retried through:\n%s", out.String())
	}
}
