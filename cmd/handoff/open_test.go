package main

import (
	"bytes"
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/internal/testenv"
)

// Every command that takes --db refuses a missing or malformed value the
// same way: the error names the flag and the forms it accepts.
func TestCLI_BadDBNamesTheFlagAndTheForms(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HANDOFF_DB", "")
	commands := [][]string{
		{"relay", "--broker", "nats://127.0.0.1:1"},
		{"registry", "serve", "--addr", "127.0.0.1:0"},
		{"contract", "broker", "--addr", "127.0.0.1:0"},
		{"dlq", "list"},
	}
	for _, c := range []struct{ spec, says string }{
		{"", "--db is required, or HANDOFF_DB"},
		{"redis://127.0.0.1:6379", `unsupported scheme "redis"`},
		{"mysql://root@127.0.0.1:3306", "names no database"},
		{"mysql://", "not a MySQL URL or DSN"},
		{"sqlite:", "no file path"},
		{"postgres://", "not a PostgreSQL URL"},
	} {
		for _, args := range commands {
			args := append(append([]string{}, args...), "--db", c.spec)
			if args[0] == "dlq" && c.spec == "" {
				continue // dlq's --db defaults to handoff dev's database
			}
			err := run(context.Background(), args, nil, &bytes.Buffer{}, &bytes.Buffer{})
			if err == nil {
				t.Errorf("%q: no error", args)
				continue
			}
			for _, want := range []string{"--db", c.says, "postgres://", "mysql://", "SQLite file"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%q: error %q does not say %q", args, err, want)
				}
			}
		}
	}
	// A command that does not migrate does not create the file either.
	err := run(context.Background(), []string{"dlq", "list", "--db", filepath.Join(dir, "none.db")}, nil, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "--db") || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("dlq list on a missing file: %v", err)
	}
}

// The SQLite forms all name the same file; the MySQL URL form becomes the
// driver's DSN.
func TestOpenDB_Forms(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "h.db")
	abs, _ := filepath.Abs(path)
	for _, spec := range []string{path, "sqlite:" + path, "sqlite://" + abs, "file:" + path, (&url.URL{Scheme: "file", Path: abs}).String()} {
		db, err := openDB(ctx, "db", spec, dbOpen{migrate: true})
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		if db.kind != sqliteDB {
			t.Fatalf("%s: kind %v", spec, db.kind)
		}
		if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS forms (spec TEXT)`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO forms VALUES (?)`, spec); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	check, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close()
	var n int
	if err := check.QueryRow(`SELECT count(*) FROM forms`).Scan(&n); err != nil || n != 5 {
		t.Fatalf("rows in the one file: %d, %v", n, err)
	}

	for spec, want := range map[string]string{
		"mysql://root@127.0.0.1/test":                   "root@tcp(127.0.0.1:3306)/test",
		"mysql://u:p%40ss@db.example:3307/app?tls=true": "u:p@ss@tcp(db.example:3307)/app?tls=true",
		"mysql://root@tcp(127.0.0.1:3306)/test":         "root@tcp(127.0.0.1:3306)/test",
	} {
		kind, dsn, err := parseDB(spec)
		if err != nil || kind != mysqlDB || dsn != want {
			t.Errorf("parseDB(%s) = %v %q %v, want %q", spec, kind, dsn, err, want)
		}
	}
}

// The URL form of MySQL opens the same server as the driver's DSN.
func TestOpenDB_MySQLURL(t *testing.T) {
	dsn := testenv.MySQLDSN(t)
	u := "mysql://" + strings.Replace(strings.Replace(dsn, "tcp(", "", 1), ")/", "/", 1)
	db, err := openDB(context.Background(), "db", u, dbOpen{})
	if err != nil {
		t.Fatalf("%s: %v", u, err)
	}
	defer db.Close()
	if err := db.PingContext(context.Background()); err != nil {
		t.Fatal(err)
	}
}
