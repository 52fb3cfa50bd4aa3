package dlq_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/handoffhq/handoff/dlq"
)

func ExampleClassifier() {
	// The built-in rules: a wrapped sentinel says what the text does not.
	err := fmt.Errorf("charge order 7: call ledger: %w", context.DeadlineExceeded)
	d := dlq.DefaultClassifier.Classify(err, dlq.ClassHandler)
	fmt.Println(d.Cause, "by", d.Rule)

	// A rule of your own, with a cause and playbook of your own.
	c, _ := dlq.NewClassifier(dlq.Rule{Name: "fraud hold", Cause: "fraud-hold",
		Pattern: regexp.MustCompile(`held for review`), Playbook: "ask team-risk, then: handoff dlq replay {id} --broker URL"})
	l := &dlq.Letter{ID: "0197", Consumer: "payment", Class: dlq.ClassPermanent, Errors: []string{"order 7 held for review"}}
	d = c.Diagnose(l)
	fmt.Println(d.Cause, "|", d.Playbook)

	// Unmatched by the user's rules, the built-in ones still apply.
	fmt.Println(c.Classify(errors.New("dial tcp: connection refused"), dlq.ClassHandler).Cause)
	// Output:
	// timeout-network by context.DeadlineExceeded
	// fraud-hold | ask team-risk, then: handoff dlq replay 0197 --broker URL
	// dependency-down
}
