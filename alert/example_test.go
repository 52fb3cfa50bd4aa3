package alert_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/alert"
	"github.com/handoffhq/handoff/breaker"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/relay"
)

// One Manager fed by hooks (the first dead letter, a breaker opening) and
// by checks that re-read the dead-letter store and the outbox. It sends to
// Slack and PagerDuty, so it is not run here.
func Example() {
	ctx := context.Background()
	log := slog.Default()
	slack, _ := alert.NewWebhook("https://hooks.slack.com/services/T000/B000/XXXX", alert.FormatSlack)
	pd, _ := alert.NewWebhook("https://events.pagerduty.com/v2/enqueue", alert.FormatPagerDuty)
	letters := memory.NewDLQStore() // or postgres.DLQStore(db), sqlite's, mysql's
	var outbox relay.Store          // postgres.RelayStore(db), sqlite's or mysql's

	m, _ := alert.New([]alert.Notifier{slack, pd}, alert.WithLogger(log),
		alert.WithCheck(alert.DeadLetters(letters, 30*time.Second)), // letters: the dead-letter store
		alert.WithCheck(alert.Backlog("main", outbox, 5*time.Minute, 2*time.Second)))
	q, _ := dlq.New(letters, dlq.WithAlerter(m))                  // the first letter, at once
	b, _ := breaker.New("payments", breaker.WithStateListener(m)) // open, at once
	go m.Run(ctx)
	_, _ = q, b
}

type printer chan alert.Alert

func (p printer) Notify(_ context.Context, a alert.Alert) error {
	p <- a
	return nil
}

// Two managers (two processes) share what is firing: the second does not
// send again what the first sent, and the first resolution is sent once.
// Processes on one database share postgres.AlertState(db) (or mysql's,
// sqlite's) instead of memory's.
func ExampleWithState() {
	state := memory.NewAlertState()
	quiet := slog.New(slog.DiscardHandler)
	sent := make(printer, 10) // one receiver
	a, _ := alert.New([]alert.Notifier{sent}, alert.WithState(state), alert.WithLogger(quiet))
	b, _ := alert.New([]alert.Notifier{sent}, alert.WithState(state), alert.WithLogger(quiet))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.Run(ctx)
	go b.Run(ctx)

	stuck := alert.Alert{Condition: alert.ConditionSagaStuck, Subject: "order", Summary: "saga order is stuck"}
	show := func() { n := <-sent; fmt.Println(n.Status, n.Key) }
	a.Fire(stuck)
	b.Fire(stuck) // already firing: not sent
	show()
	b.Resolve("saga_stuck/order")
	a.Resolve("saga_stuck/order") // already resolved: not sent
	show()
	a.Fire(stuck) // a new episode
	show()
	// Output:
	// firing saga_stuck/order
	// resolved saga_stuck/order
	// firing saga_stuck/order
}
