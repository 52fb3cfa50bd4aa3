package dlq_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/dlq"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, got, "", "  "); err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", name, err, got)
	}
	buf.WriteByte('\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("%s changed: the JSON of a letter is a stable interface.\ngot:\n%s\nwant:\n%s", name, buf.Bytes(), want)
	}
}

func goldenLetters() (open, replayed *dlq.Letter) {
	at := time.Date(2026, 3, 14, 9, 26, 53, 589000000, time.UTC)
	m := &handoff.Message{ID: "01960a2c-4a3b-7c2d-9e1f-0a1b2c3d4e5f", Source: "/shop/orders", Type: "order.placed",
		SpecVersion: "1.0", Subject: "o-7", Time: at.Add(-time.Minute), DataContentType: "application/json",
		PartitionKey: "customer-7", Data: []byte(`{"order":"o-7","total":-1}`)}
	open = &dlq.Letter{ID: "01960a2c-5b00-7000-8000-000000000001", Consumer: "shipping", Topic: "orders",
		Message: m, Class: dlq.ClassSchema, Attempts: 1, FirstFailure: at, LastFailure: at,
		Errors: []string{"schema: /total: must be >= 0"}}
	binary := m.Clone()
	binary.DataContentType = "application/octet-stream"
	binary.Data = []byte{0xff, 0x00, 0x10}
	binary.Extensions = map[string]string{dlq.ExtReplayOf: "01960a2c-5b00-7000-8000-000000000000", dlq.ExtReplayCount: "1"}
	replayed = &dlq.Letter{ID: "01960a2c-5b00-7000-8000-000000000002", Consumer: "billing", Topic: "orders",
		Message: binary, Class: dlq.ClassPanic, Attempts: 3, FirstFailure: at.Add(-time.Hour), LastFailure: at,
		ReplayedAt: at.Add(time.Hour), ReplayCount: 1, Errors: []string{"consumer: handler panicked: boom"},
		Stack: "goroutine 7 [running]:\nmain.handle()"}
	return open, replayed
}

// The JSON of a letter, of a list and of an empty list is pinned by golden
// files: lower-case keys, [] for empty lists, unset times left out.
func TestLetterJSON_Golden(t *testing.T) {
	open, replayed := goldenLetters()
	for name, l := range map[string]*dlq.Letter{"letter_open.json": open, "letter_replayed.json": replayed} {
		b, err := l.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		golden(t, name, b)
	}
	b, err := dlq.MarshalList(nil)
	if err != nil || string(b) != "[]" {
		t.Errorf("MarshalList(nil) = %s, %v; want []", b, err)
	}
	bare := &dlq.Letter{ID: "x", Consumer: "c", Topic: "t", Class: dlq.ClassHandler}
	b, err = dlq.MarshalList([]*dlq.Letter{bare})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "list_bare.json", b)
}

// What MarshalJSON writes, UnmarshalJSON reads back.
func TestLetterJSON_RoundTrip(t *testing.T) {
	open, replayed := goldenLetters()
	for _, l := range []*dlq.Letter{open, replayed} {
		b, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		var got dlq.Letter
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(&got, l) {
			t.Errorf("round trip changed the letter:\n got %+v\nwant %+v", &got, l)
		}
	}
}
