package consumer

import (
	"context"
	"sync"
	"time"

	"github.com/handoffhq/handoff"
)

// run is the state of one Run call.
type run struct {
	c     *Consumer
	stop  <-chan struct{}
	slots chan struct{}

	mu        sync.Mutex
	cond      *sync.Cond
	closing   bool
	keys      map[string]*keyq // ordered keys with pending or held work
	readyq    []*keyq          // keys whose head can run now
	firstFail map[string]time.Time
	timers    map[*time.Timer]bool
}

// keyq holds one partition key's accepted deliveries, in order.
type keyq struct {
	key     string
	items   []item
	running bool   // a worker owns the key (or it is in readyq)
	waitFor string // id of a message of this key waiting for its redelivery
	timer   *time.Timer
}

type item struct {
	d    *handoff.Delivery
	slot bool // holds an in-flight slot
}

// deliver is the Subscriber's callback: it admits a delivery in order.
func (r *run) deliver(d *handoff.Delivery) {
	c := r.c
	key := ""
	if d.Message != nil {
		key = d.Message.PartitionKey
	}
	ordered := c.ordered && key != "" && d.Err == nil
	r.mu.Lock()
	if ordered {
		// The awaited redelivery of a held key is admitted without a slot,
		// so held messages can never starve the message they wait for.
		if kq := r.keys[key]; kq != nil && kq.waitFor != "" && kq.waitFor == d.Message.ID {
			kq.waitFor = ""
			if kq.timer != nil {
				kq.timer.Stop()
				delete(r.timers, kq.timer)
				kq.timer = nil
			}
			kq.items = append([]item{{d: d}}, kq.items...)
			r.schedule(kq)
			r.mu.Unlock()
			return
		}
	}
	r.mu.Unlock()

	select {
	case r.slots <- struct{}{}:
	case <-r.stop:
		return // left unsettled: the broker redelivers it
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		<-r.slots
		return
	}
	it := item{d: d, slot: true}
	if !ordered {
		r.readyq = append(r.readyq, &keyq{items: []item{it}, running: true})
		r.cond.Signal()
		return
	}
	kq := r.keys[key]
	if kq == nil {
		kq = &keyq{key: key}
		r.keys[key] = kq
	}
	kq.items = append(kq.items, it)
	r.schedule(kq)
}

// schedule makes kq runnable if it has work, nobody owns it and it is not
// held for a redelivery. r.mu must be held.
func (r *run) schedule(kq *keyq) {
	if kq.running || kq.waitFor != "" || len(kq.items) == 0 {
		return
	}
	kq.running = true
	r.readyq = append(r.readyq, kq)
	r.cond.Signal()
}

func (r *run) work(ctx context.Context) {
	_, canBatch := r.c.h.(handoff.BatchHandler)
	for {
		r.mu.Lock()
		for len(r.readyq) == 0 && !r.closing {
			r.cond.Wait()
		}
		if r.closing {
			r.mu.Unlock()
			return
		}
		n := 1
		if canBatch && r.c.batch > 1 {
			n = min(len(r.readyq), r.c.batch)
		}
		kqs := make([]*keyq, n)
		items := make([]item, n)
		for i := range kqs {
			kq := r.readyq[0]
			r.readyq[0] = nil
			r.readyq = r.readyq[1:]
			kqs[i], items[i] = kq, kq.items[0]
			kq.items = kq.items[1:]
		}
		r.mu.Unlock()

		var verdicts []verdict
		if n == 1 {
			res, delay := r.handle(ctx, items[0].d)
			verdicts = []verdict{{res, delay}}
		} else {
			ds := make([]*handoff.Delivery, n)
			for i, it := range items {
				ds[i] = it.d
			}
			verdicts = r.handleBatch(ctx, ds)
		}
		for _, it := range items {
			if it.slot {
				<-r.slots
			}
		}

		r.mu.Lock()
		for i, kq := range kqs {
			kq.running = false
			if kq.key == "" {
				continue
			}
			if id := items[i].d.Message.ID; verdicts[i].res == Retried && kq.waitFor == id {
				// Still awaited (it may already have come back): bound the hold.
				r.holdFor(kq, id, verdicts[i].delay+verdicts[i].delay/2+r.c.waitGrace)
			}
			if len(kq.items) == 0 && kq.waitFor == "" {
				delete(r.keys, kq.key)
			} else {
				r.schedule(kq)
			}
		}
		r.mu.Unlock()
	}
}

type verdict struct {
	res   Result
	delay time.Duration
}

// expect marks msg's key as held until msg is delivered again.
func (r *run) expect(msg *handoff.Message) {
	if !r.c.ordered || msg.PartitionKey == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if kq := r.keys[msg.PartitionKey]; kq != nil {
		kq.waitFor = msg.ID
	}
}

// holdFor releases kq's hold on id after d, in case the redelivery went to
// another member of the group or never comes. r.mu must be held.
func (r *run) holdFor(kq *keyq, id string, d time.Duration) {
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.timers, t)
		if kq.waitFor != id {
			return
		}
		r.c.log.Warn("redelivery did not arrive in time; releasing later messages of its key",
			"group", r.c.group, "key", kq.key, "id", id)
		kq.waitFor = ""
		kq.timer = nil
		if len(kq.items) == 0 {
			if r.keys[kq.key] == kq {
				delete(r.keys, kq.key)
			}
			return
		}
		r.schedule(kq)
	})
	kq.timer = t
	if r.timers == nil {
		r.timers = make(map[*time.Timer]bool)
	}
	r.timers[t] = true
}

func (r *run) stopTimers() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for t := range r.timers {
		t.Stop()
	}
	r.timers = nil
}
