package dlq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"strconv"
	"time"

	"github.com/handoffhq/handoff"
)

// Alerter is told when a consumer gets its first open dead letter: when it
// goes from none to one. It is called once per such transition, after the
// letter is stored, on the goroutine that called Queue.Add; it should return
// quickly.
type Alerter interface {
	FirstDeadLetter(ctx context.Context, l *Letter)
}

// AlerterFunc adapts a function to an [Alerter].
type AlerterFunc func(ctx context.Context, l *Letter)

// FirstDeadLetter calls f(ctx, l).
func (f AlerterFunc) FirstDeadLetter(ctx context.Context, l *Letter) { f(ctx, l) }

// Extensions set on a replayed message.
const (
	ExtReplayOf    = handoff.ExtReplayOf    // the id of the letter replayed
	ExtReplayCount = handoff.ExtReplayCount // how many times the message was replayed from dead letters
)

// RelayConsumer is the Consumer of the letters the relay writes: messages
// the broker refused for good, which no consumer group has seen. Consumer
// groups may not take the name.
const RelayConsumer = "relay"

// Broker is what a replay needs of a broker: Redeliver sends a consumer
// group's letter back to that group only; Publish sends a relay's letter
// (Consumer RelayConsumer), which no group has seen, to its topic. Every
// broker adapter's client is one.
type Broker interface {
	handoff.Publisher
	handoff.Redeliverer
}

// Queue is the dead-letter API over a [Store]. It is safe for concurrent use.
type Queue struct {
	store        Store
	alerter      Alerter
	logger       *slog.Logger
	claimTimeout time.Duration
}

// Option configures a [Queue].
type Option func(*Queue) error

// WithAlerter sets the hook told about each consumer's first open dead letter.
func WithAlerter(a Alerter) Option {
	return func(q *Queue) error {
		if a == nil {
			return errors.New("dlq: WithAlerter: alerter must not be nil")
		}
		q.alerter = a
		return nil
	}
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(q *Queue) error {
		if l == nil {
			return errors.New("dlq: WithLogger: logger must not be nil")
		}
		q.logger = l
		return nil
	}
}

// WithClaimTimeout sets how long a replay holds its claim on a letter before
// another replay may take it over (default 1 minute). It must cover a
// publish; a replay that outlives it may publish a second copy (same id).
func WithClaimTimeout(d time.Duration) Option {
	return func(q *Queue) error {
		if d < time.Second {
			return fmt.Errorf("dlq: WithClaimTimeout: %v must be at least 1s", d)
		}
		q.claimTimeout = d
		return nil
	}
}

// New returns a queue over store.
func New(store Store, opts ...Option) (*Queue, error) {
	if store == nil {
		return nil, errors.New("dlq: New: store must not be nil")
	}
	q := &Queue{store: store, logger: slog.New(slog.NewTextHandler(io.Discard, nil)), claimTimeout: time.Minute}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(q); err != nil {
			return nil, err
		}
	}
	return q, nil
}

// Add stores a dead letter. It sets l.ID when empty, FirstFailure and
// LastFailure when zero (to now), and Class when empty (to ClassHandler).
// Consumer, Topic and Message are required. When l is the consumer's first
// open letter, the alerter is called after the letter is stored.
func (q *Queue) Add(ctx context.Context, l *Letter) error {
	switch {
	case l == nil:
		return errors.New("dlq: add: letter must not be nil")
	case l.Consumer == "":
		return errors.New("dlq: add: Consumer is required")
	case l.Topic == "":
		return errors.New("dlq: add: Topic is required")
	case l.Message == nil:
		return errors.New("dlq: add: Message is required")
	case l.Attempts < 0:
		return fmt.Errorf("dlq: add: Attempts %d must not be negative", l.Attempts)
	}
	if l.ID == "" {
		l.ID = handoff.NewID()
	}
	now := time.Now().UTC()
	if l.LastFailure.IsZero() {
		l.LastFailure = now
	}
	if l.FirstFailure.IsZero() {
		l.FirstFailure = l.LastFailure
	}
	if l.Class == "" {
		l.Class = ClassHandler
	}
	first, err := q.store.Add(ctx, l)
	if err != nil {
		return fmt.Errorf("dlq: add %s (consumer %s, message %s): %w", l.ID, l.Consumer, l.Message.ID, err)
	}
	q.logger.Warn("dead letter", "letter", l.ID, "consumer", l.Consumer, "topic", l.Topic,
		"message", l.Message.ID, "class", l.Class, "first", first)
	if first && q.alerter != nil {
		q.alert(ctx, l)
	}
	return nil
}

func (q *Queue) alert(ctx context.Context, l *Letter) {
	defer func() {
		if r := recover(); r != nil {
			q.logger.Error("dlq: alerter panicked", "letter", l.ID, "panic", r)
		}
	}()
	q.alerter.FirstDeadLetter(ctx, l.Clone())
}

// Get returns one letter, or an error matching ErrNotFound.
func (q *Queue) Get(ctx context.Context, id string) (*Letter, error) {
	l, err := q.store.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("dlq: get %s: %w", id, err)
	}
	return l, nil
}

// List returns the letters f selects, in id order. Page with f.Limit and
// f.After set to the last id of the previous page.
func (q *Queue) List(ctx context.Context, f Filter) ([]*Letter, error) {
	ls, err := q.store.List(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("dlq: list: %w", err)
	}
	return ls, nil
}

// Edit replaces the data of an open letter's message, and its content type
// when contentType is not empty. The new data is checked first: JSON content
// types need valid JSON. An invalid edit returns an error matching
// handoff.ErrInvalid that names the attribute, and stores nothing.
func (q *Queue) Edit(ctx context.Context, id string, data []byte, contentType string) error {
	l, err := q.store.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("dlq: edit %s: %w", id, err)
	}
	if !l.Open() {
		return fmt.Errorf("dlq: edit %s: %w", id, ErrAlreadyReplayed)
	}
	msg := l.Message.Clone()
	if contentType != "" {
		msg.DataContentType = contentType
	}
	msg.Data = append([]byte(nil), data...)
	if err := checkData(msg); err != nil {
		return fmt.Errorf("dlq: edit %s: %w", id, err)
	}
	if err := q.store.UpdateMessage(ctx, id, msg, time.Now().UTC()); err != nil {
		return fmt.Errorf("dlq: edit %s: %w", id, err)
	}
	return nil
}

func checkData(m *handoff.Message) error {
	bad := func(attr, rule string) error { return &handoff.ValidationError{ID: m.ID, Attribute: attr, Rule: rule} }
	if m.DataContentType != "" {
		if _, _, err := mime.ParseMediaType(m.DataContentType); err != nil {
			return bad("datacontenttype", "must be an RFC 2046 media type")
		}
	}
	if handoff.IsJSON(m.DataContentType) && len(m.Data) > 0 {
		var v any
		if err := json.Unmarshal(m.Data, &v); err != nil {
			rule := "must be valid JSON for datacontenttype " + m.DataContentType
			var se *json.SyntaxError
			if errors.As(err, &se) {
				rule += fmt.Sprintf(" (%v at byte %d)", se, se.Offset)
			} else {
				rule += " (" + err.Error() + ")"
			}
			return bad("data", rule)
		}
	}
	return nil
}

// Replay sends the letter's (possibly edited) message back: to the consumer
// group that gave up on it and to no other group of the topic
// (Broker.Redeliver), or, for a letter of the relay, to its topic. The
// message keeps its id, so the group's inbox recognises it if the group
// handled it meanwhile, and gets the extensions replayof (the letter id) and
// replaycount (one more than the message carried), which make its broker
// deduplication key (handoff.Message.DedupKey) differ from the original's:
// a broker's duplicate window does not swallow it.
//
// A letter is sent by one replay only: a second replay, or one racing the
// first, gets an error matching ErrAlreadyReplayed. When the broker refuses,
// the letter stays open and can be replayed again. When the broker answers
// that it holds this very replay already (handoff.ErrDuplicate: an earlier
// replay of the letter published it and stopped before recording it), the
// message is with the group: the letter is marked replayed and the answer
// logged.
func (q *Queue) Replay(ctx context.Context, b Broker, id string) error {
	if b == nil {
		return errors.New("dlq: replay: broker must not be nil")
	}
	token := handoff.NewID()
	now := time.Now().UTC()
	l, err := q.store.Claim(ctx, id, token, now, now.Add(q.claimTimeout))
	if err != nil {
		return fmt.Errorf("dlq: replay %s: %w", id, err)
	}
	msg := replayMessage(l)
	var where string
	if l.Consumer == RelayConsumer {
		where = "topic " + l.Topic
		err = b.Publish(ctx, l.Topic, msg)
	} else {
		where = "group " + l.Consumer + " of " + l.Topic
		err = b.Redeliver(ctx, l.Topic, l.Consumer, msg)
	}
	if errors.Is(err, handoff.ErrDuplicate) {
		q.logger.Warn("dlq: the broker holds this replay already (an earlier replay published it and stopped before recording it); marking the letter replayed",
			"letter", id, "to", where, "message", msg.ID, "err", err)
		err = nil
	}
	if err != nil {
		if rerr := q.store.Release(context.WithoutCancel(ctx), id, token); rerr != nil {
			q.logger.Error("dlq: release claim after failed replay", "letter", id, "err", rerr)
		}
		return fmt.Errorf("dlq: replay %s to %s: %w", id, where, err)
	}
	if err := q.store.MarkReplayed(context.WithoutCancel(ctx), id, token, time.Now().UTC()); err != nil {
		return fmt.Errorf("dlq: replay %s: sent message %s to %s, but recording it failed: %w", id, msg.ID, where, err)
	}
	q.logger.Info("replayed dead letter", "letter", id, "to", where, "message", msg.ID)
	return nil
}

func replayMessage(l *Letter) *handoff.Message {
	msg := l.Message.Clone()
	n := 0
	if v, ok := msg.Extensions[ExtReplayCount]; ok {
		n, _ = strconv.Atoi(v)
	}
	if msg.Extensions == nil {
		msg.Extensions = make(map[string]string, 2)
	}
	msg.Extensions[ExtReplayOf] = l.ID
	msg.Extensions[ExtReplayCount] = strconv.Itoa(n + 1)
	return msg
}

// replayPage is how many letter ids ReplayAll lists at a time.
const replayPage = 500

// ReplayAll replays every open letter f selects (f.State is ignored), in id
// order, calling progress (when not nil) with the letters done so far and
// the total, first with done = 0. Letters replayed or deleted meanwhile by
// someone else are skipped. It stops at the first other error and returns
// how many letters it replayed.
func (q *Queue) ReplayAll(ctx context.Context, b Broker, f Filter, progress func(done, total int)) (int, error) {
	if b == nil {
		return 0, errors.New("dlq: replay all: broker must not be nil")
	}
	f.State = StateOpen
	limit := f.Limit
	var ids []string
	for {
		page := f
		page.Limit = replayPage
		if limit > 0 && limit-len(ids) < replayPage {
			page.Limit = limit - len(ids)
		}
		ls, err := q.store.List(ctx, page)
		if err != nil {
			return 0, fmt.Errorf("dlq: replay all: list: %w", err)
		}
		for _, l := range ls {
			ids = append(ids, l.ID)
		}
		if len(ls) < page.Limit || (limit > 0 && len(ids) >= limit) {
			break
		}
		f.After = ls[len(ls)-1].ID
	}
	if progress != nil {
		progress(0, len(ids))
	}
	n := 0
	for i, id := range ids {
		if err := ctx.Err(); err != nil {
			return n, fmt.Errorf("dlq: replay all: %w", err)
		}
		err := q.Replay(ctx, b, id)
		switch {
		case err == nil:
			n++
		case errors.Is(err, ErrAlreadyReplayed), errors.Is(err, ErrNotFound):
		default:
			return n, err
		}
		if progress != nil {
			progress(i+1, len(ids))
		}
	}
	return n, nil
}

// Delete removes one letter, or returns an error matching ErrNotFound.
func (q *Queue) Delete(ctx context.Context, id string) error {
	if err := q.store.Delete(ctx, id); err != nil {
		return fmt.Errorf("dlq: delete %s: %w", id, err)
	}
	return nil
}

// Purge removes the letters f selects and returns how many it removed.
// Filter{} removes every letter; Filter{State: StateReplayed} removes those
// already replayed.
func (q *Queue) Purge(ctx context.Context, f Filter) (int, error) {
	n, err := q.store.Purge(ctx, f)
	if err != nil {
		return n, fmt.Errorf("dlq: purge: %w", err)
	}
	return n, nil
}
