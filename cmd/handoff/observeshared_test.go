package main

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/internal/testenv"
	"github.com/handoffhq/handoff/saga"
)

// logLines counts the lines of a process's log that carry msg and the
// alert key.
func logLines(log *syncBuffer, msg, key string) int {
	n := 0
	for _, l := range strings.Split(log.String(), "\n") {
		if strings.Contains(l, msg) && strings.Contains(l, "alert="+key) {
			n++
		}
	}
	return n
}

// waitLogs polls until ok holds for the two logs, failing at the deadline.
func waitLogs(t *testing.T, a, b *syncBuffer, what string, ok func(a, b *syncBuffer) bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !ok(a, b); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s\nfirst server's log:\n%s\nsecond server's log:\n%s", what, a.String(), b.String())
		}
	}
}

// Two instances of handoff serve on one PostgreSQL run the same database
// checks against one webhook: a stuck saga and an old outbox row each
// reach the webhook as exactly one firing alert, sent by one instance
// while the other logs that it was already sent (so both have seen it),
// and exactly one resolved when the condition clears, sent by one
// instance while the other logs that another process resolved it.
func TestServe_TwoInstancesAlertOncePerEpisode(t *testing.T) {
	pg := testenv.PostgresURL(t)
	hooks := &alertLog{}
	hook := httptest.NewServer(hooks)
	defer hook.Close()
	args := []string{"--db", pg, "--token", "alert-token", "--alert-webhook", hook.URL, "--alert-backlog", "10m", "--alert-no-lease", "0"}
	_, logA := startServe(t, args...)
	_, logB := startServe(t, args...)

	ctx := context.Background()
	db, err := postgres.Open(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	createSaga(t, db, "saga-stuck", "order", saga.Stuck)
	if _, err := db.ExecContext(ctx, `INSERT INTO handoff_outbox (topic, partition_no, message_id, envelope, created_at)
		VALUES ('orders', 2, 'm-old', $1, now() - interval '1 hour')`, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{"saga_stuck/order": "alert: saga order has stuck instances", "outbox_backlog/outbox": "alert: outbox outbox: the oldest"}
	for key, fired := range keys {
		hooks.waitStatuses(t, logA, key, "firing")
		waitLogs(t, logA, logB, key+": want one instance to send it and the other to log it was sent", func(a, b *syncBuffer) bool {
			sent := "alert: firing, already sent by another process"
			return logLines(a, fired, key)+logLines(b, fired, key) == 1 && logLines(a, sent, key)+logLines(b, sent, key) == 1
		})
	}

	if _, err := db.ExecContext(ctx, `UPDATE handoff_saga SET status = 'aborted', ended_at = $1 WHERE id = 'saga-stuck'`,
		time.Now().UnixMicro()); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM handoff_outbox WHERE message_id = 'm-old'`); err != nil {
		t.Fatal(err)
	}
	for key := range keys {
		hooks.waitStatuses(t, logA, key, "firing", "resolved")
		waitLogs(t, logA, logB, key+": want one instance to resolve it and the other to log another did", func(a, b *syncBuffer) bool {
			resolved, other := "alert resolved:", "alert: resolved by another process"
			return logLines(a, resolved, key)+logLines(b, resolved, key) == 1 && logLines(a, other, key)+logLines(b, other, key) == 1
		})
	}
	for key := range keys {
		if got := hooks.statuses(key); strings.Join(got, ",") != "firing,resolved" {
			t.Errorf("%s: delivered %v, want firing then resolved, once each", key, got)
		}
	}
}

// A handoff serve that sent an alert and stopped (a deploy, a crash) is
// followed by a new instance on the same database: it logs the alert as
// already sent and does not send it again, then resolves it once.
func TestServe_RestartDoesNotResendWhatIsFiring(t *testing.T) {
	pg := testenv.PostgresURL(t)
	hooks := &alertLog{}
	hook := httptest.NewServer(hooks)
	defer hook.Close()
	ctx := context.Background()
	db, err := postgres.Open(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	args := []string{"serve", "--addr", "127.0.0.1:0", "--db", pg, "--token", "alert-token", "--alert-webhook", hook.URL, "--alert-no-lease", "0"}

	firstLog := &syncBuffer{}
	fctx, stopFirst := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(fctx, args, nil, &syncBuffer{}, firstLog) }()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := db.ExecContext(ctx, `SELECT 1 FROM handoff_saga LIMIT 1`); err == nil {
			break // migrated
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve made no tables:\n%s", firstLog.String())
		}
	}
	createSaga(t, db, "saga-stuck", "order", saga.Stuck)
	hooks.waitStatuses(t, firstLog, "saga_stuck/order", "firing")
	stopFirst()
	if err := <-done; err != nil {
		t.Fatalf("first serve: %v\n%s", err, firstLog.String())
	}

	_, secondLog := startServe(t, args[3:]...)
	waitLogs(t, firstLog, secondLog, "the restarted serve did not log the alert as sent", func(_, b *syncBuffer) bool {
		return logLines(b, "alert: firing, already sent by another process", "saga_stuck/order") == 1
	})
	if _, err := db.ExecContext(ctx, `UPDATE handoff_saga SET status = 'aborted', ended_at = $1 WHERE id = 'saga-stuck'`,
		time.Now().UnixMicro()); err != nil {
		t.Fatal(err)
	}
	hooks.waitStatuses(t, secondLog, "saga_stuck/order", "firing", "resolved")
	if n := logLines(secondLog, "alert: saga order has stuck instances", "saga_stuck/order"); n != 0 {
		t.Errorf("the restarted serve sent the alert again (%d log lines)", n)
	}
}
