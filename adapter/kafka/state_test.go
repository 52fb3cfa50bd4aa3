package kafka

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/handoffhq/handoff"
)

type fakeCommitter struct {
	mu    sync.Mutex
	calls [][]commitItem
	err   error
}

func (f *fakeCommitter) commit(_ context.Context, items []commitItem) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.calls = append(f.calls, append([]commitItem(nil), items...))
	return nil
}

// last returns the last committed item for a partition.
func (f *fakeCommitter) last(topic string, p int32) (commitItem, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.calls) - 1; i >= 0; i-- {
		for _, it := range f.calls[i] {
			if it.topic == topic && it.partition == p {
				return it, true
			}
		}
	}
	return commitItem{}, false
}

type fakePauser struct {
	mu     sync.Mutex
	paused map[tpKey]bool
}

func (f *fakePauser) PauseFetchPartitions(m map[string][]int32) map[string][]int32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	for t, ps := range m {
		for _, p := range ps {
			f.paused[tpKey{t, p}] = true
		}
	}
	return nil
}

func (f *fakePauser) ResumeFetchPartitions(m map[string][]int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for t, ps := range m {
		for _, p := range ps {
			delete(f.paused, tpKey{t, p})
		}
	}
}

func (f *fakePauser) is(t string, p int32) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.paused[tpKey{t, p}]
}

func testCore(limit int) (*core, *fakeCommitter, *fakePauser) {
	c := newCore("orders", "orders.g.retry", limit, slog.New(slog.NewTextHandler(io.Discard, nil)))
	fc := &fakeCommitter{}
	fp := &fakePauser{paused: map[tpKey]bool{}}
	c.cm, c.pz = fc, fp
	return c, fc, fp
}

func recs(topic string, p int32, offsets ...int64) []*kgo.Record {
	out := make([]*kgo.Record, len(offsets))
	for i, o := range offsets {
		out[i] = &kgo.Record{Topic: topic, Partition: p, Offset: o, Value: []byte(strconv.FormatInt(o, 10))}
	}
	return out
}

func TestWatermark_NeverPassesUnsettledRecord(t *testing.T) {
	tests := []struct {
		name    string
		offsets []int64 // polled, in order (gaps: compaction, transaction markers)
		settle  []int64 // settled, in this order
		want    int64   // last committed offset
		skip    string  // commit metadata
	}{
		{"in order", []int64{0, 1, 2}, []int64{0, 1, 2}, 3, ""},
		{"gap at front", []int64{0, 1, 2, 3}, []int64{1, 2, 3}, -1, ""},
		{"hole in the middle", []int64{0, 1, 2, 3, 4, 5}, []int64{0, 1, 4, 5}, 2, "handoff1:2:2,3"},
		{"hole filled last", []int64{0, 1, 2, 3}, []int64{3, 1, 2, 0}, 4, ""},
		{"offset gaps", []int64{10, 12, 15}, []int64{10, 15}, 12, "handoff1:12:3"},
		{"all settled past gaps", []int64{10, 12, 15}, []int64{15, 12, 10}, 16, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, fc, _ := testCore(100)
			c.assign(map[string][]int32{"orders": {0}})
			c.buffer(recs("orders", 0, tt.offsets...))
			byOff := map[int64]*entry{}
			for {
				e, _ := c.next(time.Now())
				if e == nil {
					break
				}
				byOff[e.rec.Offset] = e
			}
			if len(byOff) != len(tt.offsets) {
				t.Fatalf("delivered %d, want %d", len(byOff), len(tt.offsets))
			}
			for _, o := range tt.settle {
				if err := c.settle(context.Background(), byOff[o], nil); err != nil {
					t.Fatalf("settle %d: %v", o, err)
				}
			}
			it, ok := fc.last("orders", 0)
			if tt.want < 0 {
				if ok && it.offset != tt.offsets[0] {
					t.Fatalf("committed %d before the first record was settled", it.offset)
				}
				return
			}
			if !ok || it.offset != tt.want || it.meta != tt.skip {
				t.Fatalf("last commit = %+v (found %v), want offset %d meta %q", it, ok, tt.want, tt.skip)
			}
		})
	}
}

func TestSettle_TwiceFails(t *testing.T) {
	c, _, _ := testCore(10)
	c.assign(map[string][]int32{"orders": {0}})
	c.buffer(recs("orders", 0, 0))
	e, _ := c.next(time.Now())
	if err := c.settle(context.Background(), e, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.settle(context.Background(), e, nil); !errors.Is(err, ErrSettled) {
		t.Fatalf("second settle = %v, want ErrSettled", err)
	}
}

func TestSettle_FailedRetryProduceLeavesRecordUnsettled(t *testing.T) {
	c, fc, _ := testCore(10)
	c.assign(map[string][]int32{"orders": {0}})
	c.buffer(recs("orders", 0, 0))
	e, _ := c.next(time.Now())
	boom := errors.New("produce failed")
	if err := c.settle(context.Background(), e, func(context.Context) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("settle = %v, want the produce error", err)
	}
	if len(fc.calls) != 0 {
		t.Fatalf("committed %v after a failed retry", fc.calls)
	}
	if m, _ := c.inflight(); m != 1 {
		t.Fatalf("in flight = %d, want 1 (still unsettled)", m)
	}
	if err := c.settle(context.Background(), e, nil); err != nil {
		t.Fatalf("settle after failed retry: %v", err)
	}
}

func TestSkipMeta_RoundTrip(t *testing.T) {
	tests := []struct {
		meta   string
		offset int64
		want   []int64
	}{
		{"handoff1:3:2,3,4,5,6", 3, []int64{5, 6, 7, 8, 9}},
		{"handoff1:100:a,z", 100, []int64{110, 135}},
		{"handoff1:3:2", 4, nil},              // committed elsewhere since
		{"something else", 3, nil},            // another tool's metadata
		{"handoff1:3:0", 3, nil},              // not above the offset
		{"handoff1:3:-1", 3, nil},             // not above the offset
		{"handoff1:x:1", 3, nil},              // bad offset
		{"handoff1:3", 3, nil},                // no list
		{"handoff1:3:1,,2", 3, nil},           // empty delta
		{"handoff1:-1:1", -1, nil},            // negative offset
		{"handoff1:3:zzzzzzzzzzzzzz", 3, nil}, // overflow
	}
	for _, tt := range tests {
		got := parseSkipMeta(tt.meta, tt.offset)
		if len(got) != len(tt.want) {
			t.Fatalf("parseSkipMeta(%q, %d) = %v, want %v", tt.meta, tt.offset, got, tt.want)
		}
		for _, o := range tt.want {
			if !got[o] {
				t.Fatalf("parseSkipMeta(%q, %d) = %v, want %v", tt.meta, tt.offset, got, tt.want)
			}
		}
	}
	// Long lists are cut, never broken.
	var entries []*entry
	for o := int64(0); o < 5000; o++ {
		st := stSettled
		if o == 0 {
			st = stDelivered
		}
		entries = append(entries, &entry{rec: &kgo.Record{Offset: o}, state: st})
	}
	meta := skipMeta(0, entries)
	if len(meta) > metaMax {
		t.Fatalf("metadata is %d bytes, over %d", len(meta), metaMax)
	}
	skip := parseSkipMeta(meta, 0)
	if len(skip) < 500 || !skip[1] || skip[0] {
		t.Fatalf("cut metadata parsed to %d offsets (has 1: %v, has 0: %v)", len(skip), skip[1], skip[0])
	}
}

func FuzzParseSkipMeta(f *testing.F) {
	f.Add("handoff1:3:2,3,4", int64(3))
	f.Add("handoff1:0:1", int64(0))
	f.Add("handoff1::", int64(0))
	f.Fuzz(func(t *testing.T, meta string, offset int64) {
		for o := range parseSkipMeta(meta, offset) {
			if o <= offset {
				t.Fatalf("skip %d not above the committed offset %d", o, offset)
			}
		}
	})
}

func FuzzDecode(f *testing.F) {
	f.Add("ce_id", "x", "ce_time", "2026-11-22T10:00:00Z", []byte(`{}`), true)
	f.Add("ce_id", "", HeaderAttempt, "x", []byte("raw"), true)
	f.Add("content-type", "application/json", HeaderNotBefore, "-", []byte("{"), false)
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string, value []byte, retry bool) {
		r := &kgo.Record{Value: value, Headers: []kgo.RecordHeader{{Key: k1, Value: []byte(v1)}, {Key: k2, Value: []byte(v2)}}}
		m, attempt, err := decode(r, retry)
		if m == nil || string(m.Data) != string(value) {
			t.Fatalf("decode lost the body: %+v", m)
		}
		if attempt < 1 {
			t.Fatalf("attempt %d", attempt)
		}
		if err == nil {
			if verr := m.Validate(); verr != nil {
				t.Fatalf("decode returned no error for an invalid message: %v", verr)
			}
		}
	})
}

func retryRecord(p int32, off int64, attempt int, due time.Time) *kgo.Record {
	m := handoff.NewMessage("/test", "com.example.t", []byte(`{}`))
	r := encode("orders.g.retry", m)
	r.Partition, r.Offset = p, off
	r.Headers = append(r.Headers,
		kgo.RecordHeader{Key: HeaderAttempt, Value: []byte(strconv.Itoa(attempt))},
		kgo.RecordHeader{Key: HeaderNotBefore, Value: []byte(strconv.FormatInt(due.UnixMilli(), 10))})
	return r
}

// The delivering loop holds a retry record until its due time, using a
// timer (no polling), and then delivers it with its attempt number, even
// when the main topic's in-flight window is full.
func TestRun_RetryRecordDeliveredOnlyWhenDue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, _, _ := testCore(1)
		c.assign(map[string][]int32{"orders": {0}, "orders.g.retry": {0}})
		s := &subscription{c: &Client{done: make(chan struct{})}, core: c, topic: "orders", retryTopic: "orders.g.retry"}
		got := make(chan *handoff.Delivery, 10)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.run(ctx, func(d *handoff.Delivery) { got <- d })
		}()

		// A main record fills the window of 1 and stays unsettled.
		m := handoff.NewMessage("/test", "com.example.t", []byte(`{}`))
		mr := encode("orders", m)
		c.buffer([]*kgo.Record{mr, {Topic: "orders", Offset: 1, Value: []byte("held back")}})
		synctest.Wait()
		if n := len(got); n != 1 {
			t.Fatalf("%d deliveries with a window of 1, want 1", n)
		}
		<-got

		c.buffer([]*kgo.Record{retryRecord(0, 0, 2, time.Now().Add(time.Hour)), retryRecord(0, 1, 3, time.Now().Add(time.Minute))})
		synctest.Wait()
		if n := len(got); n != 0 {
			t.Fatalf("retry delivered before its due time")
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := len(got); n != 1 {
			t.Fatalf("%d deliveries after a minute, want the record due then", n)
		}
		d := <-got
		if d.Attempt != 3 || d.Err != nil {
			t.Fatalf("got attempt %d err %v, want attempt 3", d.Attempt, d.Err)
		}
		if err := d.Settler.Ack(ctx); err != nil { // frees the retry window of 1
			t.Fatal(err)
		}
		time.Sleep(58 * time.Minute)
		synctest.Wait()
		if n := len(got); n != 0 {
			t.Fatalf("retry delivered a minute before its due time")
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := len(got); n != 1 {
			t.Fatalf("%d deliveries at the due time, want 1", n)
		}
		if d := <-got; d.Attempt != 2 || d.Err != nil {
			t.Fatalf("got attempt %d, want 2", d.Attempt)
		}
		cancel()
		<-done
	})
}

func TestRevoke_CommitsWatermarkAndLateSettlesFail(t *testing.T) {
	c, fc, fp := testCore(10)
	c.bufCap = 2
	c.assign(map[string][]int32{"orders": {0, 1}})
	c.buffer(recs("orders", 0, 0, 1, 2))
	c.buffer(recs("orders", 1, 0))
	c.adjustPauses()
	if !fp.is("orders", 0) || fp.is("orders", 1) {
		t.Fatalf("pauses %v, want only partition 0 (3 buffered, cap 2)", fp.paused)
	}
	var p0 []*entry
	for {
		e, _ := c.next(time.Now())
		if e == nil {
			break
		}
		if e.p.partition == 0 {
			p0 = append(p0, e)
		}
	}
	if err := c.settle(context.Background(), p0[0], nil); err != nil {
		t.Fatal(err)
	}
	if err := c.settle(context.Background(), p0[2], nil); err != nil {
		t.Fatal(err)
	}
	// p0[1] stays unsettled: the revoke waits for it (briefly) and commits 1.
	c.revoke(context.Background(), map[string][]int32{"orders": {0}}, 10*time.Millisecond, true)
	if it, _ := fc.last("orders", 0); it.offset != 1 || it.meta != "handoff1:1:1" {
		t.Fatalf("commit on revoke = %+v, want offset 1 with 2 settled", it)
	}
	if fp.is("orders", 0) {
		t.Fatal("revoked partition left paused")
	}
	if err := c.settle(context.Background(), p0[1], nil); !errors.Is(err, ErrRevoked) {
		t.Fatalf("settle after revoke = %v, want ErrRevoked", err)
	}
	if m, _ := c.inflight(); m != 1 {
		t.Fatalf("in flight after revoke = %d, want 1 (partition 1)", m)
	}
	// Records of a revoked partition polled late are dropped.
	c.buffer(recs("orders", 0, 3))
	if e, _ := c.next(time.Now()); e != nil {
		t.Fatalf("delivered %s/%d@%d of a revoked partition", e.rec.Topic, e.rec.Partition, e.rec.Offset)
	}
}

func TestFetched_SkipsRecordsSettledBeforeRestart(t *testing.T) {
	c, fc, _ := testCore(10)
	c.assign(map[string][]int32{"orders": {0}})
	c.fetched(tpKey{"orders", 0}, 3, "handoff1:3:2,3")
	c.buffer(recs("orders", 0, 3, 4, 5, 6, 7))
	var got []int64
	var es []*entry
	for {
		e, _ := c.next(time.Now())
		if e == nil {
			break
		}
		got = append(got, e.rec.Offset)
		es = append(es, e)
	}
	if len(got) != 3 || got[0] != 3 || got[1] != 4 || got[2] != 7 {
		t.Fatalf("delivered %v, want [3 4 7]", got)
	}
	for _, e := range es {
		if err := c.settle(context.Background(), e, nil); err != nil {
			t.Fatal(err)
		}
	}
	if it, _ := fc.last("orders", 0); it.offset != 8 {
		t.Fatalf("committed %d, want 8", it.offset)
	}
}

// A retry copy made by this member waits for its Retry call to return, and
// then for the delay counted from the return.
func TestRun_OwnRetryCopyWaitsForRetryCallToReturn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, _, _ := testCore(10)
		c.assign(map[string][]int32{"orders.g.retry": {0}})
		s := &subscription{c: &Client{done: make(chan struct{})}, core: c, topic: "orders", retryTopic: "orders.g.retry"}
		got := make(chan *handoff.Delivery, 10)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.run(ctx, func(d *handoff.Delivery) { got <- d })
		}()
		c.beginRetry("tok-1")
		r := retryRecord(0, 0, 2, time.Now()) // due at once by its header
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: HeaderRetryToken, Value: []byte("tok-1")})
		other := retryRecord(0, 1, 2, time.Now()) // another member's copy
		c.buffer([]*kgo.Record{r, other})
		synctest.Wait()
		if n := len(got); n != 1 {
			t.Fatalf("%d deliveries while the Retry call runs, want only the other member's copy", n)
		}
		<-got
		time.Sleep(time.Second)
		c.endRetry("tok-1", time.Minute, true)
		synctest.Wait()
		if n := len(got); n != 0 {
			t.Fatal("copy delivered before the delay passed since Retry returned")
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := len(got); n != 1 {
			t.Fatalf("%d deliveries a delay after Retry returned, want 1", n)
		}
		if d := <-got; d.Attempt != 2 || d.Err != nil {
			t.Fatalf("got attempt %d err %v", d.Attempt, d.Err)
		}
		cancel()
		<-done
	})
}
