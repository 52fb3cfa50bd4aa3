package saga_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/handoffhq/handoff/idempotency"
	"github.com/handoffhq/handoff/saga"
)

func noop(context.Context, *sql.Tx, *saga.Run[order]) error { return nil }

// A saga waits on a reply under v1; v2 adds a step. A coordinator with v2
// only refuses to run, naming the saga and its step; with v1 registered
// too, the saga finishes on v1 and new sagas start on v2.
func TestSaga_ChangedDefinitionContinuesOnItsVersionOrIsRefused(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			var gate atomic.Bool
			v1, _ := saga.Define("order", []saga.Step[order]{
				{Name: "charge", Action: saga.Call(func(context.Context, *saga.Run[order]) error {
					if !gate.Load() {
						return errors.New("not yet")
					}
					return nil
				}), Retry: saga.Retry{MaxAttempts: 100, Backoff: saga.Backoff{Initial: 10 * time.Millisecond, NoJitter: true}}},
				{Name: "confirm", Action: saga.Local(noop)},
			})
			v2, _ := saga.Define("order", []saga.Step[order]{
				{Name: "charge", Action: saga.Local(noop)},
				{Name: "reserve", Action: saga.Local(noop)},
				{Name: "confirm", Action: saga.Local(noop)},
			})
			if v1.Version() == v2.Version() {
				t.Fatalf("versions of different steps are equal: %s", v1.Version())
			}
			c1, _ := saga.New(b.store, saga.WithLease(200*time.Millisecond)) // its Start leaves the call to whoever runs
			s1, _ := saga.Register(c1, v1)
			id := start(t, b.db, s1, order{ID: "o-1"}, saga.WithID("old-1"), saga.WithCorrelation("cart-9"))

			c2, _ := saga.New(b.store)
			saga.Register(c2, v2)
			err := c2.Run(ctx)
			var ve *saga.VersionError
			if !errors.As(err, &ve) || !strings.Contains(err.Error(), "old-1") || !strings.Contains(err.Error(), "at step charge") {
				t.Fatalf("Run with v2 only: %v; want a VersionError naming old-1 and step charge", err)
			}

			c3, _ := saga.New(b.store, saga.WithPollInterval(10*time.Millisecond))
			s3, err := saga.Register(c3, v2, v1)
			if err != nil {
				t.Fatal(err)
			}
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan error)
			go func() { done <- c3.Run(rctx) }()
			gate.Store(true)
			id2 := start(t, b.db, s3, order{ID: "o-2"}, saga.WithCorrelation("cart-9"))
			in := waitEnded(ctx, c3, id)
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			in2, _ := c3.Get(ctx, id2)
			if in.Status != saga.Completed || in.Version != v1.Version() || in2.Status != saga.Completed || in2.Version != v2.Version() {
				t.Fatalf("old saga %s on %s, new %s on %s", in.Status, in.Version, in2.Status, in2.Version)
			}
			list, _ := c3.ByCorrelation(ctx, "cart-9")
			if len(list) != 2 || list[0].ID != "old-1" {
				t.Fatalf("by correlation: %+v", list)
			}
			h, _ := c3.History(ctx, id)
			got := strings.Join(kinds(h), " ")
			if !strings.Contains(got, "step.started:charge") || !strings.Contains(got, "step.done:charge") || h[len(h)-1].Kind != saga.EvCompleted {
				t.Fatalf("history: %s", got)
			}
			if _, err := c3.History(ctx, "nope"); !errors.Is(err, saga.ErrNotFound) {
				t.Fatalf("history of no saga: %v", err)
			}
		})
	}
}

// An HTTP step whose response is lost after the server did the work is
// sent again with the same Idempotency-Key, and the idempotency middleware
// replays the first response: the effect happens once.
func TestSaga_HTTPStepRetriesWithOneIdempotencyKey(t *testing.T) {
	b := backends(t)[0]
	var effects atomic.Int32
	var keys []string
	mw, err := idempotency.New(new(idempotency.MemoryStore))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		effects.Add(1)
		io.WriteString(w, "charged")
	})))
	defer srv.Close()
	var lost atomic.Bool
	client := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err == nil && lost.CompareAndSwap(false, true) {
			resp.Body.Close()
			return nil, errors.New("connection reset (the response was lost)")
		}
		return resp, err
	})}
	def, _ := saga.Define("pay", []saga.Step[order]{{Name: "charge",
		Action: saga.HTTP(client, func(ctx context.Context, r *saga.Run[order]) (*http.Request, error) {
			return http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(`{}`))
		}, func(r *saga.Run[order], resp *http.Response) error {
			r.Data.Charged = true
			return nil
		}),
		Retry: saga.Retry{MaxAttempts: 3, Backoff: saga.Backoff{Initial: time.Millisecond}}}})
	c, _ := saga.New(b.store, saga.WithPollInterval(10*time.Millisecond))
	s, _ := saga.Register(c, def)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	id := start(t, b.db, s, order{ID: "o"})
	in := waitEnded(ctx, c, id)
	if in.Status != saga.Completed || effects.Load() != 1 || len(keys) != 2 || keys[0] != keys[1] || keys[0] != id+"/charge/1" {
		t.Fatalf("status %s, effects %d, keys %v: want completed, 1 effect, the same key twice", in.Status, effects.Load(), keys)
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
