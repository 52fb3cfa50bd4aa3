package sqlstore

import (
	"reflect"
	"testing"
	"time"

	"github.com/handoffhq/handoff"
)

func TestSplitStatements(t *testing.T) {
	for _, c := range []struct {
		name string
		src  string
		want []string
	}{
		{"empty", "", nil},
		{"comments only", "-- nothing\n\n", nil},
		{"two", "CREATE TABLE a (x INT);\n-- note\nCREATE INDEX i ON a (x);\n", []string{"CREATE TABLE a (x INT)", "CREATE INDEX i ON a (x)"}},
		{"multi-line", "CREATE TABLE a (\n  x INT\n);\n", []string{"CREATE TABLE a (\n  x INT\n)"}},
		{"last without semicolon", "SELECT 1;\nSELECT 2\n", []string{"SELECT 1", "SELECT 2"}},
		{"semicolon inside a line stays", "INSERT INTO a VALUES (';');\n", []string{"INSERT INTO a VALUES (';')"}},
		{"dollar-quoted body", "CREATE FUNCTION f() RETURNS trigger AS $$\nBEGIN\n  RETURN NEW;\nEND;\n$$ LANGUAGE plpgsql;\nSELECT 1;\n",
			[]string{"CREATE FUNCTION f() RETURNS trigger AS $$\nBEGIN\n  RETURN NEW;\nEND;\n$$ LANGUAGE plpgsql", "SELECT 1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := SplitStatements(c.src); !reflect.DeepEqual(got, c.want) {
				t.Errorf("SplitStatements = %q, want %q", got, c.want)
			}
		})
	}
}

// Every dialect must carry the same numbered migrations, so that adding one
// to a single directory is caught.
func TestMigrations_SameVersionsInEveryDialect(t *testing.T) {
	var want []int
	for i, d := range []*Dialect{Postgres(), MySQL(), SQLite()} {
		ms, err := Migrations(d)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 0 {
			t.Fatalf("%s has no migrations", d.Name)
		}
		var vs []int
		for j, m := range ms {
			if j > 0 && m.Version <= ms[j-1].Version {
				t.Errorf("%s: migration %s has version %d, not above %d", d.Name, m.Name, m.Version, ms[j-1].Version)
			}
			if len(m.Statements) == 0 {
				t.Errorf("%s: migration %s is empty", d.Name, m.Name)
			}
			vs = append(vs, m.Version)
		}
		if i == 0 {
			want = vs
		} else if !reflect.DeepEqual(vs, want) {
			t.Errorf("%s versions %v, postgres has %v", d.Name, vs, want)
		}
	}
}

func TestDialect_Placeholders(t *testing.T) {
	q := "SELECT a FROM t WHERE b = ? AND c IN (?, ?) LIMIT ?"
	if got, want := Postgres().q(q), "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3) LIMIT $4"; got != want {
		t.Errorf("postgres: %s, want %s", got, want)
	}
	if got := MySQL().q(q); got != q {
		t.Errorf("mysql rewrote the query: %s", got)
	}
}

func TestTimeScan(t *testing.T) {
	want := time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC)
	for _, c := range []struct {
		name string
		v    any
		want time.Time
	}{
		{"NULL", nil, time.Time{}},
		{"time in another zone", want.In(time.FixedZone("x", 3600)), want},
		{"micros", want.UnixMicro(), want},
		{"mysql text", []byte("2026-01-02 03:04:05.678901"), want},
		{"rfc3339", want.Format(time.RFC3339Nano), want},
	} {
		var got time.Time
		if err := (timeScan{&got}).Scan(c.v); err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !got.Equal(c.want) || (!got.IsZero() && got.Location() != time.UTC) {
			t.Errorf("%s: %v, want %v in UTC", c.name, got, c.want)
		}
	}
	var got time.Time
	if err := (timeScan{&got}).Scan("yesterday"); err == nil {
		t.Error("Scan of garbage: no error")
	}
	if err := (timeScan{&got}).Scan(1.5); err == nil {
		t.Error("Scan of a float: no error")
	}
}

func TestDialect_TimeArgTruncatesToMicroseconds(t *testing.T) {
	in := time.Date(2026, 1, 2, 3, 4, 5, 678901234, time.FixedZone("x", 3600))
	if got := SQLite().timeArg(in); got != in.Truncate(time.Microsecond).UnixMicro() {
		t.Errorf("sqlite: %v", got)
	}
	got, ok := Postgres().timeArg(in).(time.Time)
	if !ok || got.Nanosecond() != 678901000 || got.Location() != time.UTC {
		t.Errorf("postgres: %v", got)
	}
	if Postgres().timeArg(time.Time{}) != nil {
		t.Error("zero time is not NULL")
	}
}

func TestMessageEncodingRoundTrips(t *testing.T) {
	m := handoff.NewMessage("/s", "com.example.t", []byte{0, 1, 2})
	m.DataContentType = "application/octet-stream"
	m.Subject, m.DataSchema, m.PartitionKey = "s", "https://example.com/s", "k"
	m.TraceParent, m.TraceState, m.CorrelationID, m.CausationID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "a=b", "c", "d"
	m.Extensions = map[string]string{"id": "collides with nothing", "tenant": "acme"}
	attrs, data, err := encodeMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeMessage(attrs, data)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Time.Equal(m.Time) {
		t.Errorf("time %v, want %v", got.Time, m.Time)
	}
	got.Time = m.Time
	if !reflect.DeepEqual(got, m) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, m)
	}
	attrs, _, _ = encodeMessage(nil)
	if got, err := decodeMessage(attrs, nil); got != nil || err != nil {
		t.Errorf("nil message: %v, %v", got, err)
	}
	if _, err := decodeMessage("{not json", nil); err == nil {
		t.Error("corrupt attributes: no error")
	}
}
