package dlq

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/handoffhq/handoff"
)

// letterJSON is the stable JSON shape of a letter (see Letter.MarshalJSON).
type letterJSON struct {
	ID           string          `json:"id"`
	Consumer     string          `json:"consumer"`
	Topic        string          `json:"topic"`
	Class        string          `json:"class"`
	State        string          `json:"state"`
	Attempts     int             `json:"attempts"`
	FirstFailure *time.Time      `json:"first_failure,omitempty"`
	LastFailure  *time.Time      `json:"last_failure,omitempty"`
	ReplayedAt   *time.Time      `json:"replayed_at,omitempty"`
	ReplayCount  int             `json:"replay_count"`
	Errors       []string        `json:"errors"`
	Stack        string          `json:"stack,omitempty"`
	Message      json.RawMessage `json:"message"`
	Cause        *Diagnosis      `json:"cause,omitempty"`
}

// States as the JSON names them.
const (
	stateOpen     = "open"
	stateReplayed = "replayed"
)

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// MarshalJSON encodes l in its stable JSON shape: the handoff CLI's --json and the
// /dead-letters HTTP API print it, and scripts read it. Keys are lower case
// (snake_case); every key is always present except the optional ones
// (unset times, an empty stack), which are left out; lists are [] when
// empty, never null; times are RFC 3339 in UTC; the message is the
// CloudEvents JSON structured mode (handoff.Message.MarshalJSON). The golden
// files in the package's testdata pin it. Fields may be added; none is renamed or removed.
//
//	{
//	  "id": "0197…",                  the letter's id
//	  "consumer": "billing",          the consumer group ("relay": the relay's)
//	  "topic": "orders",
//	  "class": "permanent",           one of the Class* constants
//	  "state": "open",                "open" or "replayed"
//	  "attempts": 1,
//	  "first_failure": "2026-…Z",
//	  "last_failure": "2026-…Z",
//	  "replayed_at": "2026-…Z",       only once replayed
//	  "replay_count": 0,
//	  "errors": ["…", "…"],           the error chain, outermost first
//	  "stack": "…",                   only for panics
//	  "message": {"id": "…", "specversion": "1.0", …, "data": {…}}
//	}
func (l *Letter) MarshalJSON() ([]byte, error) {
	j, err := l.toJSON()
	if err != nil {
		return nil, err
	}
	return marshal(j)
}

// MarshalDiagnosed encodes l as MarshalJSON does, with one more key, "cause":
// the root cause c finds ({"class", "rule", "playbook"}, the playbook's
// commands naming l). A nil c is DefaultClassifier. The HTTP API and the
// CLI's --json print this shape.
func MarshalDiagnosed(l *Letter, c *Classifier) ([]byte, error) {
	j, err := l.toJSON()
	if err != nil {
		return nil, err
	}
	d := c.Diagnose(l)
	j.Cause = &d
	return marshal(j)
}

// MarshalListDiagnosed is MarshalList with each letter's cause, as
// MarshalDiagnosed writes it.
func MarshalListDiagnosed(ls []*Letter, c *Classifier) ([]byte, error) {
	out := make([]json.RawMessage, 0, len(ls))
	for _, l := range ls {
		b, err := MarshalDiagnosed(l, c)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return marshal(out)
}

func (l *Letter) toJSON() (*letterJSON, error) {
	j := &letterJSON{ID: l.ID, Consumer: l.Consumer, Topic: l.Topic, Class: l.Class, State: stateOpen,
		Attempts: l.Attempts, FirstFailure: timePtr(l.FirstFailure), LastFailure: timePtr(l.LastFailure),
		ReplayedAt: timePtr(l.ReplayedAt), ReplayCount: l.ReplayCount, Errors: l.Errors, Stack: l.Stack,
		Message: json.RawMessage("null")}
	if !l.Open() {
		j.State = stateReplayed
	}
	if j.Errors == nil {
		j.Errors = []string{}
	}
	if l.Message != nil {
		b, err := l.Message.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("dlq: letter %s: encode message: %w", l.ID, err)
		}
		j.Message = b
	}
	return j, nil
}

// marshal is json.Marshal without HTML escaping: the JSON is for terminals
// and programs, where "<" reads better than "\u003c".
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// UnmarshalJSON decodes the JSON MarshalJSON writes.
func (l *Letter) UnmarshalJSON(b []byte) error {
	var j letterJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*l = Letter{ID: j.ID, Consumer: j.Consumer, Topic: j.Topic, Class: j.Class, Attempts: j.Attempts,
		ReplayCount: j.ReplayCount, Errors: j.Errors, Stack: j.Stack}
	for _, t := range []struct {
		dst *time.Time
		src *time.Time
	}{{&l.FirstFailure, j.FirstFailure}, {&l.LastFailure, j.LastFailure}, {&l.ReplayedAt, j.ReplayedAt}} {
		if t.src != nil {
			*t.dst = *t.src
		}
	}
	if len(j.Message) > 0 && !bytes.Equal(bytes.TrimSpace(j.Message), []byte("null")) {
		m := &handoff.Message{}
		if err := m.UnmarshalJSON(j.Message); err != nil {
			return fmt.Errorf("dlq: letter %s: decode message: %w", l.ID, err)
		}
		l.Message = m
	}
	return nil
}

// MarshalList encodes letters as a JSON array of their stable shape: [] when
// there are none, never null.
func MarshalList(ls []*Letter) ([]byte, error) {
	if ls == nil {
		ls = []*Letter{}
	}
	return marshal(ls)
}
