package dlq_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/dlq"
)

type codeErr struct{ code int }

func (e codeErr) Error() string { return fmt.Sprintf("code %d", e.code) }

func TestChain(t *testing.T) {
	base := errors.New("connection refused")
	for _, c := range []struct {
		name string
		err  error
		want []string
	}{
		{"nil", nil, nil},
		{"single", base, []string{"connection refused"}},
		{"wrapped twice", fmt.Errorf("charge order 7: %w", fmt.Errorf("call payments: %w", base)),
			[]string{"charge order 7: call payments: connection refused", "call payments: connection refused", "connection refused"}},
		{"permanent repeats its cause", handoff.Permanent(fmt.Errorf("decode: %w", io.ErrUnexpectedEOF)),
			[]string{"decode: unexpected EOF", "unexpected EOF"}},
		{"joined", errors.Join(base, codeErr{7}), []string{"connection refused", "code 7"}},
		{"wrapped join", fmt.Errorf("two things failed: %w", errors.Join(base, codeErr{7})),
			[]string{"two things failed: connection refused\ncode 7", "connection refused", "code 7"}},
		{"multi %w", fmt.Errorf("a: %w, b: %w", base, codeErr{3}),
			[]string{"a: connection refused, b: code 3", "connection refused", "code 3"}},
		{"same cause twice", errors.Join(fmt.Errorf("x: %w", base), fmt.Errorf("y: %w", base)),
			[]string{"x: connection refused", "connection refused", "y: connection refused"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := dlq.Chain(c.err); !reflect.DeepEqual(got, c.want) {
				t.Errorf("Chain = %q, want %q", got, c.want)
			}
		})
	}
}

func newQueue(t testing.TB, opts ...dlq.Option) (*dlq.Queue, *memory.DLQStore) {
	t.Helper()
	s := memory.NewDLQStore()
	q, err := dlq.New(s, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return q, s
}

func letter(consumer string) *dlq.Letter {
	return &dlq.Letter{Consumer: consumer, Topic: "orders", Attempts: 5,
		Message: handoff.NewMessage("/orders", "com.example.order.placed", []byte(`{"order":7}`)),
		Errors:  dlq.Chain(errors.New("boom"))}
}

func TestNew_RejectsBadOptions(t *testing.T) {
	for _, c := range []struct {
		name string
		opt  dlq.Option
		want string
	}{
		{"nil alerter", dlq.WithAlerter(nil), "WithAlerter"},
		{"nil logger", dlq.WithLogger(nil), "WithLogger"},
		{"short claim", dlq.WithClaimTimeout(0), "WithClaimTimeout"},
	} {
		if _, err := dlq.New(memory.NewDLQStore(), c.opt); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one naming %s", c.name, err, c.want)
		}
	}
	if _, err := dlq.New(nil); err == nil {
		t.Error("New(nil): no error")
	}
}

func TestQueue_AddFillsDefaultsAndValidates(t *testing.T) {
	q, _ := newQueue(t)
	ctx := context.Background()
	l := letter("billing")
	if err := q.Add(ctx, l); err != nil {
		t.Fatal(err)
	}
	if l.ID == "" || l.Class != dlq.ClassHandler || l.LastFailure.IsZero() || !l.FirstFailure.Equal(l.LastFailure) {
		t.Errorf("defaults not set: %+v", l)
	}
	got, err := q.Get(ctx, l.ID)
	if err != nil || got.Message.ID != l.Message.ID {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	for name, bad := range map[string]*dlq.Letter{
		"Consumer": {Topic: "t", Message: l.Message},
		"Topic":    {Consumer: "c", Message: l.Message},
		"Message":  {Consumer: "c", Topic: "t"},
	} {
		if err := q.Add(ctx, bad); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("letter without %s: err = %v, want one naming it", name, err)
		}
	}
}

type alerts struct {
	mu  sync.Mutex
	got []string
}

func (a *alerts) FirstDeadLetter(ctx context.Context, l *dlq.Letter) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, l.Consumer)
}

func (a *alerts) list() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.got...)
}

func TestQueue_AlertsOnceWhenAConsumerGetsItsFirstOpenLetter(t *testing.T) {
	a := &alerts{}
	q, _ := newQueue(t, dlq.WithAlerter(a))
	ctx := context.Background()
	pub := &flakyPublisher{}

	first := letter("billing")
	mustAdd(t, q, first)
	mustAdd(t, q, letter("billing"))
	mustAdd(t, q, letter("shipping"))
	if got := a.list(); !reflect.DeepEqual(got, []string{"billing", "shipping"}) {
		t.Fatalf("alerts = %v, want [billing shipping]", got)
	}
	// billing still has an open letter after one is replayed: no new alert.
	if err := q.Replay(ctx, pub, first.ID); err != nil {
		t.Fatal(err)
	}
	mustAdd(t, q, letter("billing"))
	if got := len(a.list()); got != 2 {
		t.Fatalf("%d alerts, want still 2", got)
	}
	// Once billing has none open, the next letter alerts again.
	if _, err := q.ReplayAll(ctx, pub, dlq.Filter{Consumer: "billing"}, nil); err != nil {
		t.Fatal(err)
	}
	mustAdd(t, q, letter("billing"))
	if got := a.list(); !reflect.DeepEqual(got, []string{"billing", "shipping", "billing"}) {
		t.Fatalf("alerts = %v, want [billing shipping billing]", got)
	}
	// Concurrent letters for a new consumer alert once.
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() { mustAdd(t, q, letter("pricing")) })
	}
	wg.Wait()
	n := 0
	for _, c := range a.list() {
		if c == "pricing" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("16 concurrent letters of a new consumer raised %d alerts, want 1", n)
	}
}

func TestQueue_AlerterPanicDoesNotFailAdd(t *testing.T) {
	q, _ := newQueue(t, dlq.WithAlerter(dlq.AlerterFunc(func(context.Context, *dlq.Letter) { panic("pager down") })))
	if err := q.Add(context.Background(), letter("c")); err != nil {
		t.Errorf("Add with a panicking alerter: %v", err)
	}
}

func mustAdd(t testing.TB, q *dlq.Queue, l *dlq.Letter) {
	t.Helper()
	if err := q.Add(context.Background(), l); err != nil {
		t.Error(err)
	}
}

func TestQueue_EditValidatesBeforeStoring(t *testing.T) {
	q, _ := newQueue(t)
	ctx := context.Background()
	l := letter("c")
	mustAdd(t, q, l)

	err := q.Edit(ctx, l.ID, []byte(`{"order": 7,}`), "")
	var ve *handoff.ValidationError
	if !errors.As(err, &ve) || ve.Attribute != "data" || !errors.Is(err, handoff.ErrInvalid) {
		t.Fatalf("invalid JSON: err = %v, want a ValidationError for data", err)
	}
	if !strings.Contains(err.Error(), "byte 13") {
		t.Errorf("error %q does not say where the JSON breaks", err)
	}
	err = q.Edit(ctx, l.ID, []byte(`x`), "not a media type;;")
	if !errors.As(err, &ve) || ve.Attribute != "datacontenttype" {
		t.Errorf("bad content type: err = %v, want a ValidationError for datacontenttype", err)
	}
	got, _ := q.Get(ctx, l.ID)
	if string(got.Message.Data) != `{"order":7}` || got.Message.DataContentType != "application/json" {
		t.Fatalf("a refused edit changed the letter: %s %s", got.Message.DataContentType, got.Message.Data)
	}

	if err := q.Edit(ctx, l.ID, []byte(`{"order": 8}`), ""); err != nil {
		t.Fatal(err)
	}
	if err := q.Edit(ctx, l.ID, []byte("plain text is fine"), "text/plain"); err != nil {
		t.Fatal(err)
	}
	got, _ = q.Get(ctx, l.ID)
	if string(got.Message.Data) != "plain text is fine" || got.Message.DataContentType != "text/plain" {
		t.Errorf("after edits: %s %q", got.Message.DataContentType, got.Message.Data)
	}
	if err := q.Edit(ctx, "missing", nil, ""); !errors.Is(err, dlq.ErrNotFound) {
		t.Errorf("edit of a missing letter: err = %v, want ErrNotFound", err)
	}
}

// flakyPublisher fails its first fails calls, then records what it
// publishes (group "") and redelivers (to a group).
type flakyPublisher struct {
	mu    sync.Mutex
	fails int
	err   error // what a failing call returns (default: broker unavailable)
	calls int
	msgs  []*handoff.Message
	topic []string
	group []string
	gate  chan struct{} // when set, Publish waits for it
}

func (p *flakyPublisher) Publish(ctx context.Context, topic string, msgs ...*handoff.Message) error {
	return p.Redeliver(ctx, topic, "", msgs...)
}

func (p *flakyPublisher) Redeliver(ctx context.Context, topic, group string, msgs ...*handoff.Message) error {
	if p.gate != nil {
		<-p.gate
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.calls <= p.fails {
		if p.err != nil {
			return p.err
		}
		return errors.New("broker unavailable")
	}
	for _, m := range msgs {
		p.msgs = append(p.msgs, m.Clone())
		p.topic = append(p.topic, topic)
		p.group = append(p.group, group)
	}
	return nil
}

func TestQueue_ReplayAfterFailedPublishStaysReplayable(t *testing.T) {
	q, _ := newQueue(t)
	ctx := context.Background()
	l := letter("c")
	l.Message.Extensions = map[string]string{"replaycount": "2", "tenant": "acme"}
	mustAdd(t, q, l)
	if err := q.Edit(ctx, l.ID, []byte(`{"order":8}`), ""); err != nil {
		t.Fatal(err)
	}
	pub := &flakyPublisher{fails: 1}
	if err := q.Replay(ctx, pub, l.ID); err == nil || !strings.Contains(err.Error(), "broker unavailable") {
		t.Fatalf("first replay: err = %v, want the publish error", err)
	}
	got, _ := q.Get(ctx, l.ID)
	if !got.Open() {
		t.Fatal("a failed replay closed the letter")
	}
	if err := q.Replay(ctx, pub, l.ID); err != nil {
		t.Fatalf("second replay: %v", err)
	}
	if len(pub.msgs) != 1 {
		t.Fatalf("%d messages published, want 1", len(pub.msgs))
	}
	m := pub.msgs[0]
	want := map[string]string{"replaycount": "3", "replayof": l.ID, "tenant": "acme"}
	if m.ID != l.Message.ID || pub.topic[0] != "orders" || pub.group[0] != "c" || string(m.Data) != `{"order":8}` || !reflect.DeepEqual(m.Extensions, want) {
		t.Errorf("sent %s to %s/%q: %s %v; want id %s to group c of orders, the edited data, extensions %v",
			m.ID, pub.topic[0], pub.group[0], m.Data, m.Extensions, l.Message.ID, want)
	}
	if m.DedupKey() == l.Message.ID {
		t.Errorf("the replay's DedupKey %s is the original's: a broker's duplicate window would swallow it", m.DedupKey())
	}
	got, _ = q.Get(ctx, l.ID)
	if got.Open() || got.ReplayCount != 1 {
		t.Errorf("after replay: open %v, ReplayCount %d", got.Open(), got.ReplayCount)
	}
	if err := q.Replay(ctx, pub, l.ID); !errors.Is(err, dlq.ErrAlreadyReplayed) {
		t.Errorf("third replay: err = %v, want ErrAlreadyReplayed", err)
	}
	if err := q.Edit(ctx, l.ID, []byte(`{}`), ""); !errors.Is(err, dlq.ErrAlreadyReplayed) {
		t.Errorf("edit after replay: err = %v, want ErrAlreadyReplayed", err)
	}
}

func TestQueue_ConcurrentReplaysPublishOnce(t *testing.T) {
	q, _ := newQueue(t)
	ctx := context.Background()
	l := letter("c")
	mustAdd(t, q, l)
	// The gate holds the winner inside Publish until every other replay has
	// returned, so they all race against an unfinished replay.
	pub := &flakyPublisher{gate: make(chan struct{})}
	const n = 8
	var wins, losses atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			err := q.Replay(ctx, pub, l.ID)
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, dlq.ErrAlreadyReplayed):
				if losses.Add(1) == n-1 {
					close(pub.gate)
				}
			default:
				t.Errorf("Replay: %v", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 || len(pub.msgs) != 1 {
		t.Errorf("%d concurrent replays: %d won, %d published; want 1 and 1", n, wins.Load(), len(pub.msgs))
	}
}

func TestQueue_ReplayAllReportsProgress(t *testing.T) {
	q, _ := newQueue(t)
	ctx := context.Background()
	var want []string
	for range 5 {
		l := letter("c")
		mustAdd(t, q, l)
		want = append(want, l.Message.ID)
	}
	other := letter("other")
	mustAdd(t, q, other)
	var seen []string
	pub := &flakyPublisher{}
	n, err := q.ReplayAll(ctx, pub, dlq.Filter{Consumer: "c"}, func(done, total int) {
		seen = append(seen, fmt.Sprintf("%d/%d", done, total))
	})
	if err != nil || n != 5 {
		t.Fatalf("ReplayAll = %d, %v; want 5", n, err)
	}
	if got := strings.Join(seen, " "); got != "0/5 1/5 2/5 3/5 4/5 5/5" {
		t.Errorf("progress = %s", got)
	}
	var got []string
	for _, m := range pub.msgs {
		got = append(got, m.ID)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("published %v, want %v in order", got, want)
	}
	if n, err := q.ReplayAll(ctx, pub, dlq.Filter{Consumer: "c"}, nil); err != nil || n != 0 {
		t.Errorf("second ReplayAll = %d, %v; want 0", n, err)
	}
}

func TestQueue_DeleteAndPurge(t *testing.T) {
	q, _ := newQueue(t)
	ctx := context.Background()
	a, b, c := letter("x"), letter("x"), letter("y")
	for _, l := range []*dlq.Letter{a, b, c} {
		mustAdd(t, q, l)
	}
	if err := q.Delete(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if err := q.Delete(ctx, a.ID); !errors.Is(err, dlq.ErrNotFound) {
		t.Errorf("second delete: %v, want ErrNotFound", err)
	}
	if n, err := q.Purge(ctx, dlq.Filter{Consumer: "x"}); err != nil || n != 1 {
		t.Errorf("Purge x = %d, %v; want 1", n, err)
	}
	ls, err := q.List(ctx, dlq.Filter{})
	if err != nil || len(ls) != 1 || ls[0].ID != c.ID {
		t.Errorf("left: %v, %v; want only %s", ls, err, c.ID)
	}
}

// A consumer's letter goes back to its group only; a relay's letter, which
// no group has seen, to its topic.
func TestQueue_ReplayGoesToTheGroupThatFailedOrToTheTopicForTheRelay(t *testing.T) {
	q, _ := newQueue(t)
	ctx := context.Background()
	group, relayed := letter("billing"), letter(dlq.RelayConsumer)
	mustAdd(t, q, group)
	mustAdd(t, q, relayed)
	pub := &flakyPublisher{}
	for _, l := range []*dlq.Letter{group, relayed} {
		if err := q.Replay(ctx, pub, l.ID); err != nil {
			t.Fatal(err)
		}
	}
	if got := fmt.Sprintf("%q", pub.group); got != `["billing" ""]` {
		t.Errorf("groups sent to: %s, want billing (Redeliver) then none (Publish to the topic)", got)
	}
}

// A broker answering that it holds this very replay already (an earlier
// replay published it and died before recording it) has the message: the
// letter is marked replayed. Any other refusal leaves it open.
func TestQueue_ReplayTheBrokerHoldsAlreadyIsMarkedReplayed(t *testing.T) {
	q, _ := newQueue(t)
	ctx := context.Background()
	l := letter("billing")
	mustAdd(t, q, l)
	pub := &flakyPublisher{fails: 1, err: fmt.Errorf("nats: publish: %w", handoff.ErrDuplicate)}
	if err := q.Replay(ctx, pub, l.ID); err != nil {
		t.Fatalf("Replay answered duplicate: %v, want nil", err)
	}
	if got, _ := q.Get(ctx, l.ID); got.Open() {
		t.Error("letter still open")
	}
}
