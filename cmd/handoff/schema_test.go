package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/registry"
	"github.com/handoffhq/handoff/schema"
)

var sampleDir = filepath.Join("..", "..", "system", "testdata", "sample")

// sampleRegistry serves a registry holding the sample's order.placed-value
// v1 at BACKWARD.
func sampleRegistry(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := sqlite.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	srv, err := registry.NewServer(sqlite.RegistryStore(db), registry.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	c, err := registry.NewClient(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	v1, err := os.ReadFile(filepath.Join(sampleDir, "schemas", "order.placed-value.v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetConfig(ctx, "order.placed-value", schema.Backward); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(ctx, "order.placed-value", registry.SchemaSpec{Type: schema.JSON, Text: string(v1)}); err != nil {
		t.Fatal(err)
	}
	return hs.URL
}

// handoff schema impact against a live registry: a removed field read by
// no consumer is safe for the known ones although BACKWARD refuses it; one
// read by shipping breaks it, exit 1, with the migration.
func TestSchemaImpactCLI(t *testing.T) {
	reg := sampleRegistry(t)
	file := filepath.Join(sampleDir, "handoff.yaml")
	pacts := filepath.Join(sampleDir, "pacts")
	newSchema := func(name string) string { return filepath.Join(sampleDir, "schemas", name) }

	out, err := runCLI(t, "schema", "impact", "order.placed-value", newSchema("order.placed-value.v2-drops-total.json"),
		"--registry", reg, "--file", file, "--pacts", pacts)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"compatibility (BACKWARD): refused", "known consumers:      safe for known consumers",
		"removed  /total", "ok         shipping (team-logistics) [declared]: reads /id"} {
		if !strings.Contains(out, want) {
			t.Errorf("drops-total lacks %q:\n%s", want, out)
		}
	}

	out, err = runCLI(t, "schema", "impact", "order.placed-value", newSchema("order.placed-value.v2-drops-id.json"),
		"--registry", reg, "--file", file, "--pacts", pacts)
	if !errors.Is(err, errImpactUnsafe) {
		t.Fatalf("drops-id: err = %v\n%s", err, out)
	}
	for _, want := range []string{"BREAKS 1 known consumer(s)", "BREAKS     shipping (team-logistics)", "reads /id, which the new version removes",
		"1. Keep /id in the new version"} {
		if !strings.Contains(out, want) {
			t.Errorf("drops-id lacks %q:\n%s", want, out)
		}
	}
	out, _ = runCLI(t, "schema", "impact", "order.placed-value", newSchema("order.placed-value.v2-drops-id.json"),
		"--old", newSchema("order.placed-value.v1.json"), "--file", file, "--pacts", pacts, "--json")
	var v struct {
		Compatible            bool
		SafeForKnownConsumers bool `json:"safe_for_known_consumers"`
		Consumers             []struct {
			Service string
			Breaks  []struct{ Field struct{ Path string } }
		}
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.SafeForKnownConsumers || len(v.Consumers) != 1 || len(v.Consumers[0].Breaks) != 1 {
		t.Fatalf("--json: %v %+v\n%s", err, v, out)
	}

	for _, args := range [][]string{
		{"schema", "impact", "order.placed-value"},
		{"schema", "impact", "order.placed-value", newSchema("order.placed-value.v1.json")},
		{"schema", "impact", "order.placed-value", newSchema("order.placed-value.v1.json"), "--registry", reg, "--old", "x"},
		{"schema", "impact", "no.such-value", newSchema("order.placed-value.v1.json"), "--registry", reg},
		{"schema", "nope"},
	} {
		if out, err := runCLI(t, args...); err == nil {
			t.Errorf("%v accepted:\n%s", args, out)
		}
	}
}
