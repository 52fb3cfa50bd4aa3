package idempotency_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/handoffhq/handoff/idempotency"
)

func post(h http.Handler, key, body string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", "/transfers", strings.NewReader(body))
	if key != "" {
		req.Header.Set(idempotency.HeaderKey, key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func newMW(t testing.TB, store idempotency.Store, opts ...idempotency.Option) *idempotency.Middleware {
	t.Helper()
	m, err := idempotency.New(store, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMiddleware_ConcurrentRepeatWaitsThenReplays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var runs atomic.Int32
		h := newMW(t, new(idempotency.MemoryStore), idempotency.WithWait(5*time.Second)).Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			runs.Add(1)
			time.Sleep(2 * time.Second) // the work takes a while
			w.Header().Set("Location", "/transfers/1")
			w.WriteHeader(http.StatusCreated)
			fmt.Fprint(w, "created")
		}))
		first := make(chan *httptest.ResponseRecorder)
		go func() { first <- post(h, "k", "amount=1") }()
		synctest.Wait() // the first request is running
		rec := post(h, "k", "amount=1")
		if rec.Code != http.StatusCreated || rec.Body.String() != "created" || rec.Header().Get("Location") != "/transfers/1" ||
			rec.Header().Get(idempotency.HeaderReplayed) != "true" {
			t.Fatalf("waiting repeat: %d %q %v", rec.Code, rec.Body, rec.Header())
		}
		if f := <-first; f.Code != http.StatusCreated || f.Header().Get(idempotency.HeaderReplayed) != "" {
			t.Fatalf("first: %d %v", f.Code, f.Header())
		}
		if runs.Load() != 1 {
			t.Fatalf("handler ran %d times", runs.Load())
		}
	})
}

func TestMiddleware_WaitBoundedThen409(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		h := newMW(t, new(idempotency.MemoryStore), idempotency.WithWait(time.Second)).Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-release
		}))
		go post(h, "k", "x")
		synctest.Wait()
		start := time.Now()
		rec := post(h, "k", "x")
		if rec.Code != http.StatusConflict || rec.Header().Get("Retry-After") == "" {
			t.Fatalf("repeat while running: %d, want 409 with Retry-After", rec.Code)
		}
		if waited := time.Since(start); waited < time.Second {
			t.Fatalf("answered 409 after %v, want after the 1s wait", waited)
		}
		close(release)
	})
}

func TestMiddleware_Statuses(t *testing.T) {
	tests := []struct {
		name   string
		opts   []idempotency.Option
		key    string
		body   string
		method string
		want   int
	}{
		{"no key passes through", nil, "", "x", "POST", 200},
		{"no key required", []idempotency.Option{idempotency.WithRequired()}, "", "x", "POST", 400},
		{"GET not covered", []idempotency.Option{idempotency.WithRequired()}, "", "", "GET", 200},
		{"bad escape", nil, `"a\b"`, "x", "POST", 400},
		{"too long", nil, strings.Repeat("k", 256), "x", "POST", 400},
		{"body too large", []idempotency.Option{idempotency.WithMaxBody(3)}, "k", "four", "POST", 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newMW(t, new(idempotency.MemoryStore), tt.opts...).Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			req := httptest.NewRequest(tt.method, "/", strings.NewReader(tt.body))
			if tt.key != "" {
				req.Header.Set(idempotency.HeaderKey, tt.key)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("got %d, want %d", rec.Code, tt.want)
			}
		})
	}
}

func TestMiddleware_ServerErrorsAndPanicsNotStored(t *testing.T) {
	var runs atomic.Int32
	h := newMW(t, new(idempotency.MemoryStore)).Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch runs.Add(1) {
		case 1:
			w.WriteHeader(http.StatusServiceUnavailable)
		case 2:
			panic(http.ErrAbortHandler)
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	if rec := post(h, "k", "x"); rec.Code != 503 {
		t.Fatalf("first: %d", rec.Code)
	}
	func() {
		defer func() { recover() }()
		post(h, "k", "x")
	}()
	if rec := post(h, "k", "x"); rec.Code != 202 || rec.Header().Get(idempotency.HeaderReplayed) != "" {
		t.Fatalf("third: %d, want a fresh 202", rec.Code)
	}
	if rec := post(h, "k", "x"); rec.Code != 202 || rec.Header().Get(idempotency.HeaderReplayed) != "true" {
		t.Fatalf("fourth: %d, want the replayed 202", rec.Code)
	}
	if runs.Load() != 3 {
		t.Fatalf("handler ran %d times, want 3", runs.Load())
	}
}

func TestMiddleware_ScopeSeparatesClients(t *testing.T) {
	var runs atomic.Int32
	h := newMW(t, new(idempotency.MemoryStore), idempotency.WithScope(func(r *http.Request) string { return r.Header.Get("X-Tenant") })).
		Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, runs.Add(1)) }))
	a := post(h, "same", "x", "X-Tenant", "a")
	b := post(h, "same", "x", "X-Tenant", "b")
	a2 := post(h, "same", "x", "X-Tenant", "a")
	if a.Body.String() != "1" || b.Body.String() != "2" || a2.Body.String() != "1" {
		t.Fatalf("bodies %q %q %q, want 1 2 1", a.Body, b.Body, a2.Body)
	}
}

func TestMiddleware_ExpiredLockRecovered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := new(idempotency.MemoryStore)
		// A crashed owner: a running record nobody will complete.
		now := time.Now()
		key := "k"
		if old, err := store.Claim(context.Background(), idempotency.Record{Key: key,
			Fingerprint: idempotency.Fingerprint("POST", "/transfers", []byte("x")), Token: "dead",
			LockedUntil: now.Add(30 * time.Second), ExpiresAt: now.Add(time.Hour)}, now); err != nil || old != nil {
			t.Fatal(old, err)
		}
		h := newMW(t, store).Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(201) }))
		if rec := post(h, key, "x"); rec.Code != http.StatusConflict {
			t.Fatalf("while locked: %d, want 409", rec.Code)
		}
		time.Sleep(30 * time.Second)
		if rec := post(h, key, "x"); rec.Code != 201 || rec.Header().Get(idempotency.HeaderReplayed) != "" {
			t.Fatalf("after the lock expired: %d, want the request to run", rec.Code)
		}
		if n, _ := store.Purge(context.Background(), time.Now().Add(48*time.Hour)); n != 1 {
			t.Fatalf("Purge removed %d, want 1", n)
		}
	})
}

func TestNew_RejectsBadOptions(t *testing.T) {
	for name, opt := range map[string]idempotency.Option{
		"WithTTL":          idempotency.WithTTL(0),
		"WithLockTTL":      idempotency.WithLockTTL(-1),
		"WithWait":         idempotency.WithWait(-1),
		"WithPollInterval": idempotency.WithPollInterval(0),
		"WithMaxBody":      idempotency.WithMaxBody(0),
		"WithMaxResponse":  idempotency.WithMaxResponse(0),
		"WithScope":        idempotency.WithScope(nil),
		"WithMethods":      idempotency.WithMethods(),
		"WithClock":        idempotency.WithClock(nil),
		"WithLogger":       idempotency.WithLogger(nil),
	} {
		if _, err := idempotency.New(new(idempotency.MemoryStore), opt); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v, want one naming the option", name, err)
		}
	}
	if _, err := idempotency.New(nil); err == nil {
		t.Error("nil store accepted")
	}
}

func TestParseKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{`"8e03978e-40d5-43e8-bc93-6894a57f9324"`, "8e03978e-40d5-43e8-bc93-6894a57f9324"},
		{"bare-token", "bare-token"},
		{`"with \"quote\""`, `with "quote"`},
		{` "padded" `, "padded"},
		{`""`, ""},
		{`"a"b"`, ""},
		{"tab\there", ""},
		{"héllo", ""},
	}
	for _, tt := range tests {
		got, err := idempotency.ParseKey(tt.in)
		if (err != nil) != (tt.want == "") || got != tt.want {
			t.Errorf("ParseKey(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParseKey(f *testing.F) {
	for _, s := range []string{`"abc"`, "abc", `"a\"b"`, `"\`, "", `"` + strings.Repeat("x", 300) + `"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		k, err := idempotency.ParseKey(in)
		if err != nil {
			return
		}
		if k == "" || len(k) > idempotency.MaxKeyLength {
			t.Fatalf("ParseKey(%q) accepted %q", in, k)
		}
		for i := 0; i < len(k); i++ {
			if k[i] < 0x20 || k[i] > 0x7e {
				t.Fatalf("ParseKey(%q) accepted a non-printable byte", in)
			}
		}
	})
}
