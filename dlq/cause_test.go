package dlq_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/dlq"
)

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "read: the peer took too long" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

var errInsufficientFunds = errors.New("payment: balance too low")

// Every built-in cause is reached, by sentinel, type, runtime class or
// pattern, both from a live error and from the stored letter's text.
func TestClassifier_EachCause(t *testing.T) {
	var typeErr error
	if err := json.Unmarshal([]byte(`{"total":"ten"}`), &struct{ Total int }{}); err != nil {
		typeErr = fmt.Errorf("decode order: %w", err)
	}
	var syntaxErr error
	if err := json.Unmarshal([]byte(`{"total":`), &struct{}{}); err != nil {
		syntaxErr = fmt.Errorf("decode order: %w", err)
	}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, tc := range []struct {
		name  string
		err   error
		class string
		want  dlq.Cause
		rule  string
		live  bool // the rule sees error values only: the stored letter is classified otherwise
	}{
		{"deadline sentinel", fmt.Errorf("charge: %w", context.DeadlineExceeded), dlq.ClassHandler, dlq.CauseTimeout, "context.DeadlineExceeded", false},
		{"net timeout type", fmt.Errorf("fetch price: %w", timeoutErr{}), dlq.ClassHandler, dlq.CauseTimeout, "net.Error timeout", true},
		{"connection refused sentinel", fmt.Errorf("call inventory: %w", refused), dlq.ClassHandler, dlq.CauseDependency, "syscall.ECONNREFUSED", false},
		{"breaker open text", errors.New("call fraud: breaker: open"), dlq.ClassHandler, dlq.CauseDependency, "pattern dependency down", false},
		{"http 503 text", errors.New("ledger answered 503 Service Unavailable"), dlq.ClassHandler, dlq.CauseDependency, "pattern dependency down", false},
		{"json type error", typeErr, dlq.ClassHandler, dlq.CauseSchema, "json.UnmarshalTypeError", true},
		{"schema class", errors.New("registry: value does not match subject orders-value v3"), dlq.ClassSchema, dlq.CauseSchema, "class schema", false},
		{"unknown type class", errors.New("consumer: no handler for message type"), dlq.ClassUnknownType, dlq.CauseSchema, "class unknown-type", false},
		{"json syntax error", syntaxErr, dlq.ClassHandler, dlq.CauseDecoding, "json.SyntaxError", true},
		{"decode class", errors.New("cannot read envelope"), dlq.ClassDecode, dlq.CauseDecoding, "class decode", false},
		{"invalid sentinel", fmt.Errorf("envelope: %w", handoff.ErrInvalid), dlq.ClassHandler, dlq.CauseDecoding, "handoff.ErrInvalid", false},
		{"panic class", errors.New("runtime error: index out of range"), dlq.ClassPanic, dlq.CauseDecoding, "class panic", false},
		{"business rule permanent", handoff.Permanent(errInsufficientFunds), dlq.ClassPermanent, dlq.CauseBusinessRule, "class permanent", false},
		{"business rule text", errors.New("order 42: already shipped"), dlq.ClassHandler, dlq.CauseBusinessRule, "pattern business rule", false},
		{"publish refused class", errors.New("nats: maximum payload exceeded"), dlq.ClassPublish, dlq.CausePublishRefused, "class publish", false},
		{"unknown", errors.New("something odd"), dlq.ClassHandler, dlq.CauseUnknown, "no rule matched", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := dlq.DefaultClassifier.Classify(tc.err, tc.class)
			if d.Cause != tc.want || d.Rule != tc.rule {
				t.Fatalf("Classify = %s by %q, want %s by %q", d.Cause, d.Rule, tc.want, tc.rule)
			}
			if d.Playbook == "" || !strings.Contains(d.Playbook, "handoff dlq") {
				t.Fatalf("playbook of %s has no command: %q", d.Cause, d.Playbook)
			}
			l := &dlq.Letter{ID: "L1", Consumer: "billing", Topic: "orders", Class: tc.class, Errors: dlq.Chain(tc.err)}
			stored := dlq.DefaultClassifier.Diagnose(l)
			if !tc.live && (stored.Cause != tc.want || stored.Rule != tc.rule) {
				t.Fatalf("stored letter = %s by %q, want %s by %q", stored.Cause, stored.Rule, tc.want, tc.rule)
			}
			// Stored as the consumer runtime stores it, the letter keeps
			// the cause an error type gave (a note in the chain), and
			// only then.
			chain := dlq.DefaultClassifier.Chain(tc.err, tc.class)
			if noted := len(chain) > len(dlq.Chain(tc.err)); noted != tc.live {
				t.Fatalf("chain %q: noted %v, want %v", chain, noted, tc.live)
			}
			l.Errors = chain
			if stored := dlq.DefaultClassifier.Diagnose(l); stored.Cause != tc.want || stored.Rule != tc.rule {
				t.Fatalf("stored with the runtime's chain = %s by %q, want %s by %q", stored.Cause, stored.Rule, tc.want, tc.rule)
			}
			if !strings.Contains(stored.Playbook, "handoff dlq show L1") {
				t.Fatalf("playbook does not name the letter: %q", stored.Playbook)
			}
		})
	}
}

// A permanent error that says the dependency refused is the dependency, not
// the business rule: patterns come before the runtime-class fallback; and a
// sentinel comes before a pattern that would say otherwise.
func TestClassifier_SentinelsBeforePatternsBeforeFallback(t *testing.T) {
	err := handoff.Permanent(errors.New("call ledger: connection refused"))
	if d := dlq.DefaultClassifier.Classify(err, dlq.ClassPermanent); d.Cause != dlq.CauseDependency {
		t.Fatalf("permanent + connection refused = %s, want %s", d.Cause, dlq.CauseDependency)
	}
	// The text says "schema", the wrapped sentinel says timeout.
	err = fmt.Errorf("fetch schema v3: %w", context.DeadlineExceeded)
	if d := dlq.DefaultClassifier.Classify(err, dlq.ClassHandler); d.Cause != dlq.CauseTimeout {
		t.Fatalf("schema text + deadline sentinel = %s, want %s", d.Cause, dlq.CauseTimeout)
	}
}

func TestClassifier_UserRules(t *testing.T) {
	c, err := dlq.NewClassifier(
		dlq.Rule{Name: "funds", Cause: dlq.CauseBusinessRule, Is: errInsufficientFunds},
		dlq.Rule{Name: "pricing down", Cause: dlq.CauseDependency, Pattern: regexp.MustCompile(`pricing: no quote`)},
		dlq.Rule{Name: "fraud hold", Cause: "fraud-hold", Pattern: regexp.MustCompile(`held for review`),
			Playbook: "Ask team-risk to release it, then: handoff dlq replay {id} --broker URL"},
	)
	if err != nil {
		t.Fatal(err)
	}
	// A sentinel of the user's own, wrapped without Permanent, as a plain
	// handler error after the retries ran out.
	if d := c.Classify(fmt.Errorf("charge: %w", errInsufficientFunds), dlq.ClassHandler); d.Cause != dlq.CauseBusinessRule || d.Rule != "funds" {
		t.Fatalf("user sentinel: %+v", d)
	}
	if d := dlq.DefaultClassifier.Classify(fmt.Errorf("charge: %w", errInsufficientFunds), dlq.ClassHandler); d.Cause != dlq.CauseUnknown {
		t.Fatalf("without the user rule: %s", d.Cause)
	}
	if d := c.Classify(errors.New("pricing: no quote for sku 7"), dlq.ClassHandler); d.Cause != dlq.CauseDependency || d.Rule != "pricing down" {
		t.Fatalf("user pattern: %+v", d)
	}
	l := &dlq.Letter{ID: "L9", Consumer: "payment", Class: dlq.ClassPermanent, Errors: []string{"order 7 held for review"}}
	if d := c.Diagnose(l); d.Cause != "fraud-hold" || d.Playbook != "Ask team-risk to release it, then: handoff dlq replay L9 --broker URL" {
		t.Fatalf("user cause: %+v", d)
	}
	// A user pattern comes before a built-in one.
	c2, err := dlq.NewClassifier(dlq.Rule{Name: "ours", Cause: dlq.CauseBusinessRule, Pattern: regexp.MustCompile(`503`)})
	if err != nil {
		t.Fatal(err)
	}
	if d := c2.Classify(errors.New("quota 503 reached"), dlq.ClassHandler); d.Rule != "ours" {
		t.Fatalf("user pattern did not win: %+v", d)
	}

	for _, tc := range []struct {
		rule dlq.Rule
		want string
	}{
		{dlq.Rule{Cause: dlq.CauseTimeout, Pattern: regexp.MustCompile(`x`)}, "name is required"},
		{dlq.Rule{Name: "a", Pattern: regexp.MustCompile(`x`)}, "cause is required"},
		{dlq.Rule{Name: "b", Cause: dlq.CauseTimeout}, "exactly one of"},
		{dlq.Rule{Name: "c", Cause: dlq.CauseTimeout, Class: dlq.ClassPanic, Pattern: regexp.MustCompile(`x`)}, "exactly one of"},
		{dlq.Rule{Name: "d", Cause: "mine", Pattern: regexp.MustCompile(`x`)}, "needs a playbook"},
	} {
		if _, err := dlq.NewClassifier(tc.rule); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewClassifier(%+v) = %v, want %q", tc.rule, err, tc.want)
		}
	}
}

func TestParseRules(t *testing.T) {
	rules, err := dlq.ParseRules(strings.NewReader(`[
		{"name": "pricing down", "class": "dependency-down", "pattern": "pricing: no quote"},
		{"name": "fraud hold", "class": "fraud-hold", "pattern": "held for review", "playbook": "page team-risk"}]`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := dlq.NewClassifier(rules...)
	if err != nil {
		t.Fatal(err)
	}
	if d := c.ClassifyLetter(&dlq.Letter{Class: dlq.ClassHandler, Errors: []string{"pricing: no quote"}}); d.Cause != dlq.CauseDependency {
		t.Fatalf("parsed rule: %+v", d)
	}
	for in, want := range map[string]string{
		`[{"name": "x", "class": "timeout-network", "pattern": "("}]`: `rules[0] "x": pattern`,
		`[{"name": "x", "cause": "timeout-network"}]`:                 `unknown field "cause"`,
		`{"name": "x"}`: "cannot unmarshal object",
	} {
		if _, err := dlq.ParseRules(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRules(%s) = %v, want %q", in, err, want)
		}
	}
}

// A storm reads as one incident: a thousand letters of one cause across
// consumers within minutes of each other; another cause, or the same one an
// hour later, is another incident.
func TestIncidents_GroupByCauseAndFirstSeen(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	var ls []*dlq.Letter
	add := func(id, consumer, class, errText string, at time.Time) {
		ls = append(ls, &dlq.Letter{ID: id, Consumer: consumer, Topic: "orders", Class: class, Errors: []string{errText},
			FirstFailure: at, LastFailure: at.Add(time.Minute)})
	}
	for i := range 1000 {
		consumer := "billing"
		if i%2 == 1 {
			consumer = "shipping"
		}
		add(fmt.Sprintf("S%04d", i), consumer, dlq.ClassHandler, "call ledger: connection refused", t0.Add(time.Duration(i)*300*time.Millisecond))
	}
	add("P1", "billing", dlq.ClassDecode, "invalid character 'x'", t0.Add(time.Minute))
	add("L1", "billing", dlq.ClassHandler, "dial ledger: connection refused", t0.Add(2*time.Hour))
	in := dlq.Incidents(ls, nil, 0)
	if len(in) != 3 {
		t.Fatalf("%d incidents, want 3: %+v", len(in), in)
	}
	storm := in[0]
	if storm.Cause != dlq.CauseDependency || storm.Count != 1000 || storm.Open != 1000 || !storm.First.Equal(t0) ||
		strings.Join(storm.Consumers, ",") != "billing,shipping" || storm.Letters[0] != "S0000" {
		t.Fatalf("storm: %+v", storm)
	}
	if !strings.Contains(storm.Playbook, "handoff dlq replay --all --consumer billing") {
		t.Fatalf("storm playbook: %q", storm.Playbook)
	}
	if in[1].Cause != dlq.CauseDecoding || in[1].Count != 1 || in[2].Cause != dlq.CauseDependency || in[2].Letters[0] != "L1" {
		t.Fatalf("incidents: %+v %+v", in[1], in[2])
	}
	// A gap wider than two hours joins the later letter to the storm.
	if in := dlq.Incidents(ls, nil, 3*time.Hour); len(in) != 2 || in[0].Count != 1001 {
		t.Fatalf("3h gap: %d incidents", len(in))
	}
}

// The HTTP API gives each letter its cause and playbook, and groups letters
// into incidents; WithClassifier's user rules apply.
func TestHandler_CausesAndIncidents(t *testing.T) {
	q, _ := newQueue(t)
	ctx := context.Background()
	l := letter("billing")
	l.Errors = []string{"call ledger: connection refused"}
	if err := q.Add(ctx, l); err != nil {
		t.Fatal(err)
	}
	l2 := letter("billing")
	l2.Errors = []string{"order 7 held for review"}
	if err := q.Add(ctx, l2); err != nil {
		t.Fatal(err)
	}
	c, err := dlq.NewClassifier(dlq.Rule{Name: "hold", Cause: "fraud-hold", Pattern: regexp.MustCompile(`held for review`), Playbook: "release {id}"})
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, q, dlq.WithClassifier(c))
	res, body := call(t, "GET", srv.URL+"/dead-letters/"+l.ID, "")
	var one struct {
		ID    string
		Cause struct{ Class, Rule, Playbook string }
	}
	if err := json.Unmarshal([]byte(body), &one); err != nil || res.StatusCode != 200 {
		t.Fatalf("%d %v %s", res.StatusCode, err, body)
	}
	if one.Cause.Class != "dependency-down" || !strings.Contains(one.Cause.Playbook, "handoff dlq show "+l.ID) {
		t.Fatalf("cause: %+v", one.Cause)
	}
	_, body = call(t, "GET", srv.URL+"/dead-letters/", "")
	var list []struct {
		Cause struct{ Class, Playbook string }
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil || len(list) != 2 || list[1].Cause.Class != "fraud-hold" || list[1].Cause.Playbook != "release "+l2.ID {
		t.Fatalf("list: %v %s", err, body)
	}
	res, body = call(t, "GET", srv.URL+"/dead-letters/incidents?consumer=billing", "")
	var in []struct {
		Class string
		Count int
	}
	if err := json.Unmarshal([]byte(body), &in); err != nil || res.StatusCode != 200 || len(in) != 2 {
		t.Fatalf("incidents: %d %v %s", res.StatusCode, err, body)
	}
	if res, body := call(t, "GET", srv.URL+"/dead-letters/incidents?gap=soon", ""); res.StatusCode != 400 || !strings.Contains(body, "gap") {
		t.Fatalf("bad gap: %d %s", res.StatusCode, body)
	}
	if _, err := dlq.NewHandler(q, dlq.WithClassifier(nil)); err == nil {
		t.Fatal("nil classifier accepted")
	}
}
