package outbox_test

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/outbox"
)

// oldSize is how Message.Size counted before it was an upper bound of the
// encoded size: data and attribute values only.
func oldSize(m *handoff.Message) int {
	n := len(m.Data) + len(m.ID) + len(m.Source) + len(m.Type) + len(m.SpecVersion) +
		len(m.Subject) + len(m.DataContentType) + len(m.DataSchema) + len(m.PartitionKey) +
		len(m.TraceParent) + len(m.TraceState) + len(m.CorrelationID) + len(m.CausationID)
	if !m.Time.IsZero() {
		n += 30
	}
	for k, v := range m.Extensions {
		n += len(k) + len(v)
	}
	return n
}

// justUnder returns a message oldSize counts as under bytes by a few.
func justUnder(bytes int) *handoff.Message {
	m := handoff.NewMessage("/orders", "order.placed", nil)
	m.DataContentType = "application/octet-stream"
	m.PartitionKey = "customer-7"
	m.Data = []byte(strings.Repeat("x", bytes-oldSize(m)-8))
	return m
}

func newWriter(t *testing.T, opts ...outbox.Option) (*outbox.Writer, func(*handoff.Message) error) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "o.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := sqlite.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	w, err := outbox.New(sqlite.OutboxStore(db), opts...)
	if err != nil {
		t.Fatal(err)
	}
	add := func(m *handoff.Message) error {
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if err := w.Add(ctx, tx, "orders", m); err != nil {
			return err
		}
		return tx.Commit()
	}
	return w, add
}

// A message a few bytes under the writer's old limit (1 MiB, counting data
// and attribute values only) is over NATS's max_payload with its headers,
// and over franz-go's batch limit: the default limit refuses it at Add,
// naming the size, the limit and the way out.
func TestWriter_RefusesAtAddWhatNoBrokerWouldTake(t *testing.T) {
	_, add := newWriter(t)
	m := justUnder(1 << 20)
	err := add(m)
	var ve *handoff.ValidationError
	if !errors.As(err, &ve) || ve.Attribute != "data" {
		t.Fatalf("Add of %d bytes (old count) = %v, want a ValidationError on data", oldSize(m), err)
	}
	for _, want := range []string{"over the limit of " + strconv.Itoa(handoff.DefaultMaxMessageSize), strconv.Itoa(m.Size()) + " bytes", "claim-check"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if err := add(justUnder(handoff.DefaultMaxMessageSize / 2)); err != nil {
		t.Errorf("Add of half the limit: %v", err)
	}
}

// With WithBrokerLimit the broker's own limit decides, with the broker's
// words; WithMaxMessageSize still applies on top.
func TestWriter_WithBrokerLimitAsksTheBroker(t *testing.T) {
	b, err := memory.NewBroker(memory.WithMaxMessageSize(4096))
	if err != nil {
		t.Fatal(err)
	}
	_, add := newWriter(t, outbox.WithBrokerLimit(b))
	if err := add(justUnder(4096)); err == nil || !strings.Contains(err.Error(), "the broker would refuse it") || !strings.Contains(err.Error(), "limit of 4096") {
		t.Fatalf("Add over the broker's limit = %v, want the broker's refusal", err)
	}
	if err := add(justUnder(2048)); err != nil {
		t.Fatalf("Add under the broker's limit: %v", err)
	}
	unlimited, _ := memory.NewBroker()
	_, add = newWriter(t, outbox.WithBrokerLimit(unlimited))
	if err := add(justUnder(2 << 20)); err != nil {
		t.Fatalf("the broker's limit replaces the default: Add of 2 MiB to a broker without a limit = %v", err)
	}
	_, add = newWriter(t, outbox.WithBrokerLimit(unlimited), outbox.WithMaxMessageSize(1024))
	if err := add(justUnder(4096)); err == nil || !strings.Contains(err.Error(), "limit of 1024") {
		t.Fatalf("WithMaxMessageSize with a broker limit = %v, want it applied", err)
	}
}
