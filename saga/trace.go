package saga

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"time"
)

// Kinds of the trace journal's records, and of a [Story]'s steps.
const (
	TraceSent         = "sent"         // a message was written to the outbox (actor: its source)
	TraceHandled      = "handled"      // a consumer's handler committed its effects for it (actor: the consumer group)
	TraceDeadLettered = "deadlettered" // a consumer gave up on it and stored a dead letter (actor: the consumer group)
)

// TraceRecord is one row of a database's trace journal: what was done to
// a message of a conversation, by whom, when, in the transaction that did
// it (the outbox write, the inbox's handler transaction, the dead letter).
type TraceRecord struct {
	Seq                                 int64 // the journal's order
	At                                  time.Time
	Kind                                string // TraceSent, TraceHandled or TraceDeadLettered
	MessageID, CausationID, Topic, Type string
	Actor                               string
	Error                               string // of a dead letter
	// Unpublished marks a sent message that is still in the outbox.
	Unpublished bool
}

// Tracer is a Store that keeps the trace journal (the SQL stores of
// adapter/postgres, adapter/sqlite and adapter/mysql do: the outbox
// writer, the inbox and the dead-letter store of the same database write
// it for every message that carries a correlation id).
type Tracer interface {
	TraceJournal(ctx context.Context, correlationID string) ([]TraceRecord, error)
}

// Story is a conversation rebuilt from what the databases recorded under
// its correlation id: the messages sent, the handlers that acted on them,
// the dead letters, and the sagas that ran, in causal order; which
// services acted; and what is still pending.
type Story struct {
	CorrelationID string
	Steps         []StoryStep
	// Services are the actors of the steps (message sources, consumer
	// groups, saga names) in the order they first acted.
	Services []string
	Pending  []Pending
}

// StoryStep is one thing that happened in a conversation.
type StoryStep struct {
	At time.Time
	// Kind is TraceSent, TraceHandled, TraceDeadLettered, or "saga." and
	// the kind of a saga's history event ("saga.started", "saga.step.done").
	Kind string
	// Service acted: a sent message's source, the consumer group that
	// handled or dead-lettered a message, the saga's name.
	Service string
	// The message (a step of a message) and the one that caused it.
	MessageID, CausationID, Topic, Type string
	// The saga and its step (a saga's event).
	SagaID, Step string
	Error        string
}

// Pending kinds.
const (
	PendingUnpublished  = "unpublished"  // sent, still in the outbox: the relay has not published it (or not yet deleted it)
	PendingUnhandled    = "unhandled"    // published, and no handler outcome recorded yet
	PendingDeadLettered = "deadlettered" // dead-lettered and not handled since (replay it)
	PendingSaga         = "saga"         // a saga that has not ended
)

// Pending is what a conversation still waits for. A message no consumer
// subscribes to stays "unhandled": the journal knows who acted, not who
// was meant to.
type Pending struct {
	Kind                   string
	MessageID, Topic, Type string
	SagaID, Step           string
	Status                 Status
}

// ErrNoTrace is returned by Trace for a correlation id nothing was
// recorded under.
var ErrNoTrace = errors.New("saga: nothing recorded under the correlation id")

// Trace rebuilds the conversation correlationID from stores (one per
// database the services of the flow write to; each that is a [Tracer]
// gives its journal, each gives the sagas started with the correlation id
// and their history). Steps are in causal order (a message is sent
// before it is handled; a message is sent after the one that caused it;
// a saga's events in their order), otherwise by time. It returns
// ErrNoTrace when no store recorded anything under the id.
func Trace(ctx context.Context, correlationID string, stores ...Store) (*Story, error) {
	if correlationID == "" {
		return nil, errors.New("saga: Trace: correlationID is required")
	}
	if len(stores) == 0 {
		return nil, errors.New("saga: Trace: at least one store is required")
	}
	b := storyBuilder{seen: map[string]bool{}}
	for si, st := range stores {
		if tr, ok := st.(Tracer); ok {
			recs, err := tr.TraceJournal(ctx, correlationID)
			if err != nil {
				return nil, fmt.Errorf("saga: trace %s: journal: %w", correlationID, err)
			}
			for _, r := range recs {
				b.record(si, r)
			}
		}
		sagas, err := st.ByCorrelation(ctx, correlationID)
		if err != nil {
			return nil, fmt.Errorf("saga: trace %s: sagas: %w", correlationID, err)
		}
		for _, sm := range sagas {
			if b.seen["saga "+sm.ID] {
				continue
			}
			b.seen["saga "+sm.ID] = true
			h, err := st.History(ctx, sm.ID)
			if err != nil {
				return nil, fmt.Errorf("saga: trace %s: history of %s: %w", correlationID, sm.ID, err)
			}
			b.saga(si, sm, h)
		}
	}
	if len(b.nodes) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoTrace, correlationID)
	}
	return b.story(correlationID), nil
}

// Trace rebuilds a conversation from the coordinator's database and any
// other stores given (see the function Trace).
func (c *Coordinator) Trace(ctx context.Context, correlationID string, more ...Store) (*Story, error) {
	return Trace(ctx, correlationID, append([]Store{c.store}, more...)...)
}

type storyNode struct {
	step        StoryStep
	src         int
	seq         int64
	unpublished bool
	after       []int // nodes that must come first
	waits       int
	next        []int
}

type storyBuilder struct {
	nodes   []storyNode
	seen    map[string]bool
	pending []Pending
}

func (b *storyBuilder) record(src int, r TraceRecord) {
	k := r.Kind + " " + r.MessageID + " " + r.Actor
	if b.seen[k] {
		return // the same database given twice, or a duplicate record
	}
	b.seen[k] = true
	b.nodes = append(b.nodes, storyNode{src: src, seq: r.Seq, unpublished: r.Unpublished, step: StoryStep{
		At: r.At, Kind: r.Kind, Service: r.Actor, MessageID: r.MessageID, CausationID: r.CausationID,
		Topic: r.Topic, Type: r.Type, Error: r.Error}})
}

func (b *storyBuilder) saga(src int, sm Summary, h []Event) {
	first := len(b.nodes)
	for i, e := range h {
		n := storyNode{src: src, seq: int64(e.Seq), step: StoryStep{At: e.At, Kind: "saga." + e.Kind, Service: sm.Name,
			SagaID: sm.ID, Step: e.Step, Error: e.Error}}
		if i > 0 {
			n.after = []int{first + i - 1}
		}
		b.nodes = append(b.nodes, n)
	}
	if !sm.Status.Ended() {
		b.pending = append(b.pending, Pending{Kind: PendingSaga, SagaID: sm.ID, Step: sm.Step, Status: sm.Status})
	}
}

// story orders the nodes: a topological order of the causal edges that
// takes, among the steps free to go next, the earliest.
func (b *storyBuilder) story(corr string) *Story {
	sent := map[string]int{}
	for i, n := range b.nodes {
		if n.step.Kind == TraceSent {
			sent[n.step.MessageID] = i
		}
	}
	outcome := map[string]map[string]string{} // message id → consumer group → its last outcome
	for i := range b.nodes {
		n := &b.nodes[i]
		switch n.step.Kind {
		case TraceSent:
			if c, ok := sent[n.step.CausationID]; ok && c != i {
				n.after = append(n.after, c)
			}
		case TraceHandled, TraceDeadLettered:
			if s, ok := sent[n.step.MessageID]; ok {
				n.after = append(n.after, s)
				n.step.Topic = b.nodes[s].step.Topic
				if n.step.CausationID == "" {
					n.step.CausationID = b.nodes[s].step.CausationID
				}
			}
		}
		for _, a := range n.after {
			b.nodes[a].next = append(b.nodes[a].next, i)
		}
		n.waits = len(n.after)
	}
	h := &nodeHeap{nodes: b.nodes}
	for i := range b.nodes {
		if b.nodes[i].waits == 0 {
			heap.Push(h, i)
		}
	}
	s := &Story{CorrelationID: corr}
	services := map[string]bool{}
	done := make([]bool, len(b.nodes))
	take := func(i int) {
		done[i] = true
		n := b.nodes[i]
		s.Steps = append(s.Steps, n.step)
		if n.step.Service != "" && !services[n.step.Service] {
			services[n.step.Service] = true
			s.Services = append(s.Services, n.step.Service)
		}
		switch n.step.Kind {
		case TraceHandled, TraceDeadLettered:
			if outcome[n.step.MessageID] == nil {
				outcome[n.step.MessageID] = map[string]string{}
			}
			outcome[n.step.MessageID][n.step.Service] = n.step.Kind
		}
	}
	for h.Len() > 0 {
		i := heap.Pop(h).(int)
		take(i)
		for _, j := range b.nodes[i].next {
			if b.nodes[j].waits--; b.nodes[j].waits == 0 {
				heap.Push(h, j)
			}
		}
	}
	// A cycle (ids reused across messages) leaves nodes behind: by time.
	rest := &nodeHeap{nodes: b.nodes}
	for i := range b.nodes {
		if !done[i] {
			heap.Push(rest, i)
		}
	}
	for rest.Len() > 0 {
		take(heap.Pop(rest).(int))
	}
	for _, st := range s.Steps {
		if st.Kind != TraceSent {
			continue
		}
		p := Pending{MessageID: st.MessageID, Topic: st.Topic, Type: st.Type}
		dead := false
		for _, k := range outcome[st.MessageID] {
			dead = dead || k == TraceDeadLettered
		}
		switch {
		case dead: // a group gave up on it and has not handled it since
			p.Kind = PendingDeadLettered
		case len(outcome[st.MessageID]) > 0:
			continue
		case b.nodes[sent[st.MessageID]].unpublished:
			// Or published, and its row not deleted yet.
			p.Kind = PendingUnpublished
		default:
			p.Kind = PendingUnhandled
		}
		s.Pending = append(s.Pending, p)
	}
	s.Pending = append(s.Pending, b.pending...)
	return s
}

type nodeHeap struct {
	nodes []storyNode
	idx   []int
}

func (h *nodeHeap) Len() int { return len(h.idx) }
func (h *nodeHeap) Less(i, j int) bool {
	a, b := &h.nodes[h.idx[i]], &h.nodes[h.idx[j]]
	switch {
	case !a.step.At.Equal(b.step.At):
		return a.step.At.Before(b.step.At)
	case a.src != b.src:
		return a.src < b.src
	case a.seq != b.seq:
		return a.seq < b.seq
	}
	return h.idx[i] < h.idx[j]
}
func (h *nodeHeap) Swap(i, j int) { h.idx[i], h.idx[j] = h.idx[j], h.idx[i] }
func (h *nodeHeap) Push(x any)    { h.idx = append(h.idx, x.(int)) }
func (h *nodeHeap) Pop() any {
	x := h.idx[len(h.idx)-1]
	h.idx = h.idx[:len(h.idx)-1]
	return x
}
