package nats

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	natsgo "github.com/nats-io/nats.go"
)

// Deliveries lost with a connection.
//
// When the connection drops, the messages the server had sent on it and the
// client had not read are lost to the client, while the server counts them
// as delivered and waits AckWait before sending them again. Meanwhile it
// delivers later messages (up to MaxAckPending), which would overtake the
// lost ones of their key, or, when the lost ones fill MaxAckPending, it
// delivers nothing for up to AckWait.
//
// So after every reconnect a subscription resyncs: it stops handing
// deliveries to the runtime, asks the server which of the consumer's
// messages are pending (between its ack floor and its last delivered
// sequence), naks at once the pending ones it does not hold (the lost ones;
// a nak of a message that is not pending is ignored by the server), and
// hands out nothing of the topic's stream until each lost one has come back
// (or AckWait and a grace have passed: then it goes on, and logs it). What
// it holds is then handed out in stream order.

// resyncGrace is added to AckWait when waiting for lost deliveries.
const resyncGrace = 5 * time.Second

// maxResyncNaks bounds the naks of one resync: a consumer whose pending
// range is wider is left to the server's AckWait.
const maxResyncNaks = 100_000

// watchReconnects starts a resync on every reconnect, also when nothing is
// delivered afterwards (the lost deliveries may fill MaxAckPending).
func (s *subscription) watchReconnects(stop <-chan struct{}) {
	ch := s.c.nc.StatusChanged(natsgo.CONNECTED)
	defer s.c.nc.RemoveStatusListener(ch)
	for {
		select {
		case <-stop:
			return
		case <-ch:
			s.mu.Lock()
			s.checkEpoch()
			s.mu.Unlock()
		}
	}
}

// checkEpoch starts a resync if the connection was re-established since
// the last one. s.mu must be held.
func (s *subscription) checkEpoch() {
	ep := s.c.nc.Stats().Reconnects
	if ep == s.epoch {
		return
	}
	s.epoch = ep
	s.resyncGen++
	s.holding, s.lost, s.lostKnown = true, map[uint64]bool{}, false
	if s.holdTimer != nil {
		s.holdTimer.Stop()
		s.holdTimer = nil
	}
	gen := s.resyncGen
	go s.resync(gen)
}

// noteReceived, s.mu held: a delivery arrived while holding.
func (s *subscription) noteReceived(st *settler) {
	if !s.holding || st.cons != s.mainCons {
		return
	}
	if s.lostKnown {
		delete(s.lost, st.sseq)
		if len(s.lost) == 0 {
			s.release("")
		}
		return
	}
	s.arrived = append(s.arrived, st.sseq)
}

// resync naks the deliveries of every source that were lost, then holds
// the main source's later messages until they are back.
func (s *subscription) resync(gen uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var lost []uint64
	lostOK := false
	for _, src := range s.srcs {
		var (
			floor, last, dseq uint64
			err               error
		)
		for try := 0; try < 20; try++ {
			var info, ierr = src.cons.Info(ctx)
			if ierr == nil {
				floor, last, dseq = info.AckFloor.Stream, info.Delivered.Stream, info.Delivered.Consumer
				err = nil
				break
			}
			err = ierr
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			if ctx.Err() != nil {
				break
			}
		}
		if err != nil {
			s.c.cfg.log.Warn("nats: after a reconnect: cannot read the consumer's state; lost deliveries come back after AckWait",
				"topic", s.sub.Topic, "group", s.sub.Group, "consumer", src.name, "err", err)
			continue
		}
		s.mu.Lock()
		if gen != s.resyncGen {
			s.mu.Unlock()
			return
		}
		held := map[uint64]bool{}
		for st := range s.unsettled {
			if st.cons == src.name {
				held[st.sseq] = true
			}
		}
		settled := s.settled[src.name]
		for q := range settled {
			if q <= floor {
				delete(settled, q)
			}
		}
		var naks []uint64
		if last > floor && last-floor <= maxResyncNaks {
			for q := floor + 1; q <= last; q++ {
				if !held[q] && !settled[q] {
					naks = append(naks, q)
				}
			}
		}
		s.mu.Unlock()
		for _, q := range naks {
			// The reply subject of a delivery of q: the server reads the
			// stream sequence (and a delivery sequence in its range) from it.
			subj := "$JS.ACK." + src.stream + "." + src.name + ".1." + strconv.FormatUint(q, 10) + "." + strconv.FormatUint(dseq, 10) + ".0.0"
			if err := s.c.nc.Publish(subj, []byte("-NAK")); err != nil {
				break
			}
		}
		if len(naks) > 0 {
			s.c.cfg.log.Warn("nats: after a reconnect: deliveries lost with the connection asked for again",
				"topic", s.sub.Topic, "group", s.sub.Group, "consumer", src.name, "messages", len(naks))
		}
		if src.name == s.mainCons && !s.mainShared && last-floor <= maxResyncNaks {
			lost, lostOK = naks, true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.resyncGen {
		return
	}
	if !lostOK {
		s.release("")
		return
	}
	for _, q := range lost {
		s.lost[q] = true
	}
	for _, q := range s.arrived {
		delete(s.lost, q)
	}
	s.arrived = nil
	s.lostKnown = true
	if len(s.lost) == 0 {
		s.release("")
		return
	}
	wait := s.c.cfg.ackWait + resyncGrace
	s.holdTimer = time.AfterFunc(wait, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if gen == s.resyncGen && s.holding {
			s.release(fmt.Sprintf("%d lost deliveries did not come back within %v; later messages go on", len(s.lost), wait))
		}
	})
}

// release ends a hold: what was received meanwhile is handed out, the main
// source's messages in stream order. s.mu must be held.
func (s *subscription) release(why string) {
	if why != "" {
		s.c.cfg.log.Warn("nats: "+why, "topic", s.sub.Topic, "group", s.sub.Group)
	}
	s.holding, s.lost, s.lostKnown, s.arrived = false, nil, false, nil
	if s.holdTimer != nil {
		s.holdTimer.Stop()
		s.holdTimer = nil
	}
	// The main source's items, in stream order, in the places they hold.
	var pos []int
	var main []*settler
	for i, st := range s.queue {
		if st.cons == s.mainCons {
			pos = append(pos, i)
			main = append(main, st)
		}
	}
	slices.SortStableFunc(main, func(a, b *settler) int {
		switch {
		case a.sseq < b.sseq:
			return -1
		case a.sseq > b.sseq:
			return 1
		}
		return 0
	})
	for i, p := range pos {
		s.queue[p] = main[i]
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// noteSettled, s.mu held: st's sequence is settled by this subscription
// (not lost), until the server's ack floor passes it.
func (s *subscription) noteSettled(st *settler) {
	m := s.settled[st.cons]
	if m == nil {
		m = map[uint64]bool{}
		s.settled[st.cons] = m
	}
	m[st.sseq] = true
	if len(m) > 4*s.c.maxInFlight(s.sub)+1024 {
		// Bound it: keep what is above the lowest sequence still held.
		low := uint64(1<<64 - 1)
		for _, set := range []map[*settler]struct{}{s.unsettled, s.acking} {
			for u := range set {
				if u.cons == st.cons && u.sseq < low {
					low = u.sseq
				}
			}
		}
		for q := range m {
			if q < low {
				delete(m, q)
			}
		}
	}
}
