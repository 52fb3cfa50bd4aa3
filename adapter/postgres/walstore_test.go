package postgres

import (
	"bytes"
	"testing"

	"github.com/handoffhq/handoff/outbox"
)

// A logical decoding message with the outbox's prefix may come from anyone
// who can call pg_logical_emit_message: decoding it never panics, and what
// this package encodes decodes to the same event.
func FuzzDecodeWALEvent(f *testing.F) {
	f.Add(encodeWALEvent(outbox.Row{Topic: "orders", Key: "k", MessageID: "id-1", Envelope: []byte(`{"id":"id-1"}`)}))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{2})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeWALEvent(b)
		if err != nil {
			return
		}
		again, err := decodeWALEvent(encodeWALEvent(r))
		if err != nil || again.Topic != r.Topic || again.Key != r.Key || again.MessageID != r.MessageID || !bytes.Equal(again.Envelope, r.Envelope) {
			t.Fatalf("round trip of %+v: %+v, %v", r, again, err)
		}
	})
}
