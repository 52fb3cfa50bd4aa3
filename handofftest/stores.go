package handofftest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/dlq"
)

// RunDLQStore runs the dead-letter store conformance suite. newStore returns
// an empty store on an isolated namespace (migrated, for SQL stores); it
// registers its own cleanup.
func RunDLQStore(t *testing.T, newStore func(t testing.TB) dlq.Store) {
	t.Run("AddGetRoundTripsEveryField", func(t *testing.T) { testDLQRoundTrip(t, newStore(t)) })
	t.Run("GetMissingIsNotFound", func(t *testing.T) { testDLQMissing(t, newStore(t)) })
	t.Run("AddExistingIDFails", func(t *testing.T) { testDLQDuplicateID(t, newStore(t)) })
	t.Run("FirstOpenLetterPerConsumer", func(t *testing.T) { testDLQFirst(t, newStore(t)) })
	t.Run("FirstOpenLetterOnceUnderConcurrentAdds", func(t *testing.T) { testDLQFirstConcurrent(t, newStore(t)) })
	t.Run("ListFilters", func(t *testing.T) { testDLQListFilters(t, newStore(t)) })
	t.Run("ListPagesInIDOrder", func(t *testing.T) { testDLQPaging(t, newStore(t)) })
	t.Run("UpdateMessage", func(t *testing.T) { testDLQUpdate(t, newStore(t)) })
	t.Run("ConcurrentClaimsOneWins", func(t *testing.T) { testDLQClaimRace(t, newStore(t)) })
	t.Run("ClaimExpiresAndReleases", func(t *testing.T) { testDLQClaimLease(t, newStore(t)) })
	t.Run("MarkReplayedClosesLetter", func(t *testing.T) { testDLQMarkReplayed(t, newStore(t)) })
	t.Run("Delete", func(t *testing.T) { testDLQDelete(t, newStore(t)) })
	t.Run("PurgeByFilterAndLimit", func(t *testing.T) { testDLQPurge(t, newStore(t)) })
	t.Run("QueueReplayRacesPublishOnce", func(t *testing.T) { testDLQQueueReplay(t, newStore(t)) })
}

func suiteCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

// suiteBase is a fixed time with microsecond precision, which every store keeps.
var suiteBase = time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)

func newLetter(consumer, topic, class string, last time.Time) *dlq.Letter {
	msg := handoff.NewMessage("/suite", "com.example.suite", []byte(`{"n":1}`))
	msg.Time = suiteBase
	return &dlq.Letter{
		ID: handoff.NewID(), Consumer: consumer, Topic: topic, Message: msg, Class: class,
		Errors: []string{"outer: inner", "inner"}, Attempts: 3,
		FirstFailure: last.Add(-time.Minute), LastFailure: last,
	}
}

func addLetter(t testing.TB, ctx context.Context, s dlq.Store, l *dlq.Letter) bool {
	t.Helper()
	first, err := s.Add(ctx, l)
	if err != nil {
		t.Fatalf("Add %s: %v", l.ID, err)
	}
	return first
}

func ids(ls []*dlq.Letter) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.ID
	}
	return out
}

func sortedIDs(ls ...*dlq.Letter) []string {
	out := ids(ls)
	sort.Strings(out)
	return out
}

func checkLetter(t testing.TB, got, want *dlq.Letter) {
	t.Helper()
	if got.ID != want.ID || got.Consumer != want.Consumer || got.Topic != want.Topic || got.Class != want.Class ||
		got.Stack != want.Stack || got.Attempts != want.Attempts || got.ReplayCount != want.ReplayCount {
		t.Errorf("letter fields: got %+v, want %+v", got, want)
	}
	if !reflect.DeepEqual(got.Errors, want.Errors) {
		t.Errorf("Errors = %q, want %q", got.Errors, want.Errors)
	}
	for _, c := range []struct {
		name      string
		got, want time.Time
	}{{"FirstFailure", got.FirstFailure, want.FirstFailure}, {"LastFailure", got.LastFailure, want.LastFailure},
		{"ReplayedAt", got.ReplayedAt, want.ReplayedAt}} {
		if !c.got.Equal(c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	checkMessage(t, got.Message, want.Message)
}

func checkMessage(t testing.TB, got, want *handoff.Message) {
	t.Helper()
	if got == nil || want == nil {
		if got != want {
			t.Errorf("Message = %v, want %v", got, want)
		}
		return
	}
	g, w := *got, *want
	if !g.Time.Equal(w.Time) {
		t.Errorf("Message.Time = %v, want %v", g.Time, w.Time)
	}
	if !bytes.Equal(g.Data, w.Data) {
		t.Errorf("Message.Data = %q, want %q", g.Data, w.Data)
	}
	if len(g.Extensions) != 0 || len(w.Extensions) != 0 {
		if !reflect.DeepEqual(g.Extensions, w.Extensions) {
			t.Errorf("Message.Extensions = %v, want %v", g.Extensions, w.Extensions)
		}
	}
	g.Time, w.Time, g.Data, w.Data, g.Extensions, w.Extensions = time.Time{}, time.Time{}, nil, nil, nil, nil
	if !reflect.DeepEqual(g, w) {
		t.Errorf("Message attributes:\n got %+v\nwant %+v", g, w)
	}
}

func testDLQRoundTrip(t *testing.T, s dlq.Store) {
	ctx := suiteCtx(t)
	l := newLetter("billing", "orders", dlq.ClassPanic, suiteBase)
	l.Stack = "goroutine 1 [running]:\nmain.main()"
	m := l.Message
	m.Subject, m.DataSchema = "order-1", "https://example.com/schemas/order.json"
	m.PartitionKey, m.CorrelationID, m.CausationID = "customer-7", "corr-1", "cause-1"
	m.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	m.TraceState = "vendor=value"
	m.Extensions = map[string]string{"tenant": "acme", "replaycount": "2"}
	m.DataContentType = "application/octet-stream"
	m.Data = []byte{0, 1, 2, 0xff, 0xfe, '\n'}
	want := l.Clone()
	addLetter(t, ctx, s, l)
	got, err := s.Get(ctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkLetter(t, got, want)
	// The store must not share memory with the caller.
	got.Message.Data[0] = 'X'
	got.Errors[0] = "changed"
	again, err := s.Get(ctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkLetter(t, again, want)
}

func testDLQMissing(t *testing.T, s dlq.Store) {
	ctx := suiteCtx(t)
	missing := handoff.NewID()
	if _, err := s.Get(ctx, missing); !errors.Is(err, dlq.ErrNotFound) {
		t.Errorf("Get missing: err = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, missing); !errors.Is(err, dlq.ErrNotFound) {
		t.Errorf("Delete missing: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Claim(ctx, missing, "tok", suiteBase, suiteBase.Add(time.Minute)); !errors.Is(err, dlq.ErrNotFound) {
		t.Errorf("Claim missing: err = %v, want ErrNotFound", err)
	}
	if err := s.UpdateMessage(ctx, missing, handoff.NewMessage("/s", "t", nil), suiteBase); !errors.Is(err, dlq.ErrNotFound) {
		t.Errorf("UpdateMessage missing: err = %v, want ErrNotFound", err)
	}
	if err := s.MarkReplayed(ctx, missing, "tok", suiteBase); !errors.Is(err, dlq.ErrClaimLost) {
		t.Errorf("MarkReplayed missing: err = %v, want ErrClaimLost", err)
	}
}

func testDLQDuplicateID(t *testing.T, s dlq.Store) {
	ctx := suiteCtx(t)
	l := newLetter("c", "t", dlq.ClassHandler, suiteBase)
	addLetter(t, ctx, s, l)
	dup := newLetter("c", "t2", dlq.ClassHandler, suiteBase)
	dup.ID = l.ID
	if _, err := s.Add(ctx, dup); !errors.Is(err, dlq.ErrExists) {
		t.Errorf("Add with an existing id: err = %v, want ErrExists", err)
	}
	got, err := s.Get(ctx, l.ID)
	if err != nil || got.Topic != "t" {
		t.Errorf("the first letter changed: %+v, %v", got, err)
	}
}

func replay(t testing.TB, ctx context.Context, s dlq.Store, id string, at time.Time) {
	t.Helper()
	tok := handoff.NewID()
	if _, err := s.Claim(ctx, id, tok, at, at.Add(time.Minute)); err != nil {
		t.Fatalf("Claim %s: %v", id, err)
	}
	if err := s.MarkReplayed(ctx, id, tok, at); err != nil {
		t.Fatalf("MarkReplayed %s: %v", id, err)
	}
}

func testDLQFirst(t *testing.T, s dlq.Store) {
	ctx := suiteCtx(t)
	step := func(name string, l *dlq.Letter, want bool) {
		t.Helper()
		if got := addLetter(t, ctx, s, l); got != want {
			t.Errorf("%s: first = %v, want %v", name, got, want)
		}
	}
	a1 := newLetter("a", "t", dlq.ClassHandler, suiteBase)
	step("a's first letter", a1, true)
	step("a's second letter", newLetter("a", "t", dlq.ClassHandler, suiteBase), false)
	step("b's first letter", newLetter("b", "t", dlq.ClassHandler, suiteBase), true)

	c1 := newLetter("c", "t", dlq.ClassHandler, suiteBase)
	step("c's first letter", c1, true)
	replay(t, ctx, s, c1.ID, suiteBase)
	c2 := newLetter("c", "t", dlq.ClassHandler, suiteBase)
	step("c's letter after its only open one was replayed", c2, true)
	if err := s.Delete(ctx, c2.ID); err != nil {
		t.Fatal(err)
	}
	step("c's letter after its only open one was deleted", newLetter("c", "t", dlq.ClassHandler, suiteBase), true)
	step("c's next letter", newLetter("c", "t", dlq.ClassHandler, suiteBase), false)
	if _, err := s.Purge(ctx, dlq.Filter{Consumer: "c"}); err != nil {
		t.Fatal(err)
	}
	step("c's letter after a purge", newLetter("c", "t", dlq.ClassHandler, suiteBase), true)

	closed := newLetter("d", "t", dlq.ClassHandler, suiteBase)
	closed.ReplayedAt, closed.ReplayCount = suiteBase, 1
	step("a letter stored already replayed", closed, false)
	step("d's first open letter", newLetter("d", "t", dlq.ClassHandler, suiteBase), true)
}

func testDLQFirstConcurrent(t *testing.T, s dlq.Store) {
	ctx := suiteCtx(t)
	for round := range 3 {
		consumer := fmt.Sprintf("group-%d", round)
		const n = 8
		var firsts atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range n {
			wg.Go(func() {
				<-start
				first, err := s.Add(ctx, newLetter(consumer, "t", dlq.ClassHandler, suiteBase))
				if err != nil {
					t.Errorf("Add: %v", err)
				}
				if first {
					firsts.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if got := firsts.Load(); got != 1 {
			t.Errorf("round %d: %d concurrent Adds reported first %d times, want 1", round, n, got)
		}
	}
}

func testDLQListFilters(t *testing.T, s dlq.Store) {
	ctx := suiteCtx(t)
	at := func(min int) time.Time { return suiteBase.Add(time.Duration(min) * time.Minute) }
	l1 := newLetter("c1", "t1", dlq.ClassHandler, at(0))
	l2 := newLetter("c1", "t2", dlq.ClassDecode, at(1))
	l3 := newLetter("c2", "t1", dlq.ClassHandler, at(2))
	l4 := newLetter("c2", "t2", dlq.ClassPanic, at(3))
	l5 := newLetter("C1", "t1", dlq.ClassHandler, at(4)) // names are case-sensitive
	for _, l := range []*dlq.Letter{l1, l2, l3, l4, l5} {
		addLetter(t, ctx, s, l)
	}
	replay(t, ctx, s, l3.ID, at(10))
	for _, c := range []struct {
		name string
		f    dlq.Filter
		want []*dlq.Letter
	}{
		{"all", dlq.Filter{}, []*dlq.Letter{l1, l2, l3, l4, l5}},
		{"consumer", dlq.Filter{Consumer: "c1"}, []*dlq.Letter{l1, l2}},
		{"topic", dlq.Filter{Topic: "t1"}, []*dlq.Letter{l1, l3, l5}},
		{"class", dlq.Filter{Class: dlq.ClassHandler}, []*dlq.Letter{l1, l3, l5}},
		{"open", dlq.Filter{State: dlq.StateOpen}, []*dlq.Letter{l1, l2, l4, l5}},
		{"replayed", dlq.Filter{State: dlq.StateReplayed}, []*dlq.Letter{l3}},
		{"since is inclusive", dlq.Filter{Since: at(2)}, []*dlq.Letter{l3, l4, l5}},
		{"until is exclusive", dlq.Filter{Until: at(2)}, []*dlq.Letter{l1, l2}},
		{"since and until", dlq.Filter{Since: at(1), Until: at(3)}, []*dlq.Letter{l2, l3}},
		{"combined", dlq.Filter{Consumer: "c2", Topic: "t2", Class: dlq.ClassPanic, State: dlq.StateOpen}, []*dlq.Letter{l4}},
		{"no match", dlq.Filter{Consumer: "nobody"}, nil},
		{"limit", dlq.Filter{Topic: "t1", Limit: 2}, nil}, // checked below
	} {
		got, err := s.List(ctx, c.f)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		want := sortedIDs(c.want...)
		if c.name == "limit" {
			want = sortedIDs(l1, l3, l5)[:2]
		}
		if g := ids(got); strings.Join(g, ",") != strings.Join(want, ",") {
			t.Errorf("%s: List = %v, want %v", c.name, g, want)
		}
	}
}

func testDLQPaging(t *testing.T, s dlq.Store) {
	ctx := suiteCtx(t)
	var all []*dlq.Letter
	for i := range 7 {
		l := newLetter("c", "t", dlq.ClassHandler, suiteBase.Add(time.Duration(i)*time.Second))
		all = append(all, l)
		addLetter(t, ctx, s, l)
	}
	addLetter(t, ctx, s, newLetter("other", "t", dlq.ClassHandler, suiteBase))
	var got []string
	f := dlq.Filter{Consumer: "c", Limit: 3}
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		page, err := s.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 3 {
			t.Fatalf("page of %d letters, limit 3", len(page))
		}
		got = append(got, ids(page)...)
		if len(page) < 3 {
			break
		}
		f.After = page[len(page)-1].ID
	}
	if want := sortedIDs(all...); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("pages = %v, want %v", got, want)
	}
}

func testDLQUpdate(t *testing.T, s dlq.Store) {
	ctx := suiteCtx(t)
	l := newLetter("c", "t", dlq.ClassSchema, suiteBase)
	addLetter(t, ctx, s, l)
	edited := l.Message.Clone()
	edited.Data = []byte(`{"n":2}`)
	edited.Extensions = map[string]string{"fixedby": "ops"}
	if err := s.UpdateMessage(ctx, l.ID, edited, suiteBase); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkMessage(t, got.Message, edited)
	if err := s.UpdateMessage(ctx, l.ID, edited, suiteBase); err != nil {
		t.Errorf("UpdateMessage with the same message: %v", err)
	}

	tok := handoff.NewID()
	if _, err := s.Claim(ctx, l.ID, tok, suiteBase, suiteBase.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateMessage(ctx, l.ID, l.Message, suiteBase.Add(time.Second)); !errors.Is(err, dlq.ErrReplayInProgress) {
		t.Errorf("UpdateMessage while claimed: err = %v, want ErrReplayInProgress", err)
	}
	if err := s.MarkReplayed(ctx, l.ID, tok, suiteBase.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateMessage(ctx, l.ID, l.Message, suiteBase.Add(time.Hour)); !errors.Is(err, dlq.ErrAlreadyReplayed) {
		t.Errorf("UpdateMessage after replay: err = %v, want ErrAlreadyReplayed", err)
	}
	got, err = s.Get(ctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkMessage(t, got.Message, edited)
}

func testDLQClaimRace(t *testing.T, s dlq.Store) {
	ctx := suiteCtx(t)
	for round := range 5 {
		l := newLetter("c", "t", dlq.ClassHandler, suiteBase)
		addLetter(t, ctx, s, l)
		const n = 8
		var wins atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range n {
			wg.Go(func() {
				<-start
				got, err := s.Claim(ctx, l.ID, handoff.NewID(), suiteBase, suiteBase.Add(time.Minute))
				switch {
				case err == nil:
					wins.Add(1)
					if got.ID != l.ID {
						t.Errorf("Claim returned letter %s, want %s", got.ID, l.ID)
					}
				case !errors.Is(err, dlq.ErrAlreadyReplayed):
					t.Errorf("losing Claim: err = %v, want one matching ErrAlreadyReplayed", err)
				}
			})
		}
		close(start)
		wg.Wait()
		if got := wins.Load(); got != 1 {
			t.Errorf("round %d: %d concurrent claims, %d won, want 1", round, n, got)
		}
	}
}

func testDLQClaimLease(t *testing.T, s dlq.Store) {
	ctx := suiteCtx(t)
	l := newLetter("c", "t", dlq.ClassHandler, suiteBase)
	addLetter(t, ctx, s, l)
	t0 := suiteBase
	if _, err := s.Claim(ctx, l.ID, "tok-1", t0, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx, l.ID, "tok-2", t0.Add(30*time.Second), t0.Add(2*time.Minute)); !errors.Is(err, dlq.ErrReplayInProgress) {
		t.Errorf("Claim during a valid claim: err = %v, want ErrReplayInProgress", err)
	}
	// Releasing with a token that does not hold the claim changes nothing.
	if err := s.Release(ctx, l.ID, "tok-x"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx, l.ID, "tok-2", t0.Add(30*time.Second), t0.Add(2*time.Minute)); !errors.Is(err, dlq.ErrReplayInProgress) {
		t.Errorf("Claim after a release with the wrong token: err = %v, want ErrReplayInProgress", err)
	}
	// The claim's holder releases it: the letter is claimable at once.
	if err := s.Release(ctx, l.ID, "tok-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx, l.ID, "tok-2", t0.Add(30*time.Second), t0.Add(time.Minute+30*time.Second)); err != nil {
		t.Fatalf("Claim after release: %v", err)
	}
	// An expired claim is taken over, and its holder can no longer mark.
	if _, err := s.Claim(ctx, l.ID, "tok-3", t0.Add(2*time.Minute), t0.Add(3*time.Minute)); err != nil {
		t.Fatalf("Claim after expiry: %v", err)
	}
	if err := s.MarkReplayed(ctx, l.ID, "tok-2", t0.Add(2*time.Minute)); !errors.Is(err, dlq.ErrClaimLost) {
		t.Errorf("MarkReplayed by the expired holder: err = %v, want ErrClaimLost", err)
	}
	if err := s.MarkReplayed(ctx, l.ID, "tok-3", t0.Add(2*time.Minute)); err != nil {
		t.Errorf("MarkReplayed by the holder: %v", err)
	}
}

func testDLQMarkReplayed(t *testing.T, s dlq.Store) {
	ctx := suiteCtx(t)
	l := newLetter("c", "t", dlq.ClassHandler, suiteBase)
	addLetter(t, ctx, s, l)
	at := suiteBase.Add(time.Hour)
	replay(t, ctx, s, l.ID, at)
	got, err := s.Get(ctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.ReplayedAt.Equal(at) || got.ReplayCount != 1 || got.Open() {
		t.Errorf("after MarkReplayed: ReplayedAt %v ReplayCount %d, want %v and 1", got.ReplayedAt, got.ReplayCount, at)
	}
	if _, err := s.Claim(ctx, l.ID, "again", at.Add(time.Hour), at.Add(2*time.Hour)); !errors.Is(err, dlq.ErrAlreadyReplayed) {
		t.Errorf("Claim of a replayed letter: err = %v, want ErrAlreadyReplayed", err)
	}
}

func testDLQDelete(t *testing.T, s dlq.Store) {
	ctx := suiteCtx(t)
	l := newLetter("c", "t", dlq.ClassHandler, suiteBase)
	keep := newLetter("c", "t", dlq.ClassHandler, suiteBase)
	addLetter(t, ctx, s, l)
	addLetter(t, ctx, s, keep)
	if err := s.Delete(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, l.ID); !errors.Is(err, dlq.ErrNotFound) {
		t.Errorf("Get after Delete: err = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, l.ID); !errors.Is(err, dlq.ErrNotFound) {
		t.Errorf("second Delete: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, keep.ID); err != nil {
		t.Errorf("the other letter: %v", err)
	}
}

func testDLQPurge(t *testing.T, s dlq.Store) {
	ctx := suiteCtx(t)
	var decode, handler []*dlq.Letter
	for i := range 4 {
		d := newLetter("c", "t", dlq.ClassDecode, suiteBase.Add(time.Duration(i)*time.Second))
		h := newLetter("c", "t", dlq.ClassHandler, suiteBase.Add(time.Duration(i)*time.Second))
		decode, handler = append(decode, d), append(handler, h)
		addLetter(t, ctx, s, d)
		addLetter(t, ctx, s, h)
	}
	replay(t, ctx, s, handler[0].ID, suiteBase)
	count := func(f dlq.Filter) int {
		t.Helper()
		ls, err := s.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		return len(ls)
	}
	purge := func(f dlq.Filter, want int) {
		t.Helper()
		n, err := s.Purge(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("Purge(%+v) = %d, want %d", f, n, want)
		}
	}
	purge(dlq.Filter{State: dlq.StateReplayed}, 1)
	purge(dlq.Filter{Class: dlq.ClassDecode, Limit: 3}, 3)
	left, err := s.List(ctx, dlq.Filter{Class: dlq.ClassDecode})
	if err != nil {
		t.Fatal(err)
	}
	if want := sortedIDs(decode...)[3:]; strings.Join(ids(left), ",") != strings.Join(want, ",") {
		t.Errorf("after purging 3 decode letters, left %v, want the newest %v", ids(left), want)
	}
	purge(dlq.Filter{Consumer: "nobody"}, 0)
	purge(dlq.Filter{}, 4)
	if n := count(dlq.Filter{}); n != 0 {
		t.Errorf("%d letters left after purging all", n)
	}
}

// recordingPublisher records what it is asked to publish (group "") and
// redeliver.
type recordingPublisher struct {
	mu    sync.Mutex
	msgs  []*handoff.Message
	topic []string
	group []string
}

func (p *recordingPublisher) Publish(ctx context.Context, topic string, msgs ...*handoff.Message) error {
	return p.Redeliver(ctx, topic, "", msgs...)
}

func (p *recordingPublisher) Redeliver(ctx context.Context, topic, group string, msgs ...*handoff.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range msgs {
		p.msgs = append(p.msgs, m.Clone())
		p.topic = append(p.topic, topic)
		p.group = append(p.group, group)
	}
	return nil
}

func testDLQQueueReplay(t *testing.T, s dlq.Store) {
	ctx := suiteCtx(t)
	q, err := dlq.New(s)
	if err != nil {
		t.Fatal(err)
	}
	l := newLetter("c", "orders", dlq.ClassHandler, suiteBase)
	l.ID = ""
	if err := q.Add(ctx, l); err != nil {
		t.Fatal(err)
	}
	pub := &recordingPublisher{}
	const n = 6
	var wins atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			err := q.Replay(ctx, pub, l.ID)
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, dlq.ErrAlreadyReplayed):
				t.Errorf("losing Replay: err = %v, want one matching ErrAlreadyReplayed", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if wins.Load() != 1 || len(pub.msgs) != 1 {
		t.Fatalf("%d concurrent replays: %d succeeded and %d messages were published, want 1 and 1", n, wins.Load(), len(pub.msgs))
	}
	m := pub.msgs[0]
	if m.ID != l.Message.ID || pub.topic[0] != "orders" || pub.group[0] != "c" || m.Extensions[dlq.ExtReplayOf] != l.ID || m.Extensions[dlq.ExtReplayCount] != "1" {
		t.Errorf("replayed %s to %s/%q with extensions %v; want id %s to group c of orders with replayof %s, replaycount 1",
			m.ID, pub.topic[0], pub.group[0], m.Extensions, l.Message.ID, l.ID)
	}
	if err := q.Replay(ctx, pub, l.ID); !errors.Is(err, dlq.ErrAlreadyReplayed) {
		t.Errorf("Replay after replay: err = %v, want ErrAlreadyReplayed", err)
	}
}
