package registry_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoffhq/handoff/adapter/mysql"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/internal/testenv"
	"github.com/handoffhq/handoff/registry"
)

// stores returns a fresh registry store per database: SQLite always,
// PostgreSQL and MySQL when reachable (required in CI).
func stores(t *testing.T) map[string]func(t *testing.T) registry.Store {
	return map[string]func(t *testing.T) registry.Store{
		"sqlite": func(t *testing.T) registry.Store { return sqliteStore(t) },
		"postgres": func(t *testing.T) registry.Store {
			db, err := postgres.Open(context.Background(), testenv.PostgresURL(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			migrate(t, db, postgres.Migrate)
			return postgres.RegistryStore(db)
		},
		"mysql": func(t *testing.T) registry.Store {
			db, err := mysql.Open(context.Background(), testenv.MySQLDSN(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			migrate(t, db, mysql.Migrate)
			return mysql.RegistryStore(db)
		},
	}
}

func sqliteStore(t testing.TB) registry.Store {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	migrate(t, db, sqlite.Migrate)
	return sqlite.RegistryStore(db)
}

func migrate(t testing.TB, db *sql.DB, m func(context.Context, *sql.DB) error) {
	t.Helper()
	if err := m(context.Background(), db); err != nil {
		t.Fatal(err)
	}
}

// api is a test client of the raw REST API.
type api struct {
	t    *testing.T
	url  string
	auth string
}

func newAPI(t *testing.T, st registry.Store, opts ...registry.ServerOption) *api {
	t.Helper()
	quiet := registry.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv, err := registry.NewServer(st, append([]registry.ServerOption{quiet}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &api{t: t, url: hs.URL}
}

// call sends a request and returns the status and the decoded body.
func (a *api) call(method, path string, body any) (int, any) {
	a.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, a.url+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	if a.auth != "" {
		req.Header.Set("Authorization", a.auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out any
	if len(raw) > 0 && json.Unmarshal(raw, &out) != nil {
		out = string(raw)
	}
	return resp.StatusCode, out
}

// ok calls and fails the test unless the status is 200.
func (a *api) ok(method, path string, body any) any {
	a.t.Helper()
	st, out := a.call(method, path, body)
	if st != 200 {
		a.t.Fatalf("%s %s: status %d: %v", method, path, st, out)
	}
	return out
}

// fails calls and checks the status and error_code of an error.
func (a *api) fails(method, path string, body any, status, code int) string {
	a.t.Helper()
	st, out := a.call(method, path, body)
	m, _ := out.(map[string]any)
	if st != status || m == nil || int(m["error_code"].(float64)) != code {
		a.t.Fatalf("%s %s: got %d %v, want %d with error_code %d", method, path, st, out, status, code)
	}
	return m["message"].(string)
}

func idOf(v any) int { return int(v.(map[string]any)["id"].(float64)) }

const (
	avroV1 = `{"type":"record","name":"Order","namespace":"acme","fields":[{"name":"id","type":"string"}]}`
	// V2 adds a field with a default: backward compatible.
	avroV2 = `{"type":"record","name":"Order","namespace":"acme","fields":[{"name":"id","type":"string"},{"name":"total","type":"long","default":0}]}`
	// V3 adds a field without a default: not backward compatible.
	avroV3 = `{"type":"record","name":"Order","namespace":"acme","fields":[{"name":"id","type":"string"},{"name":"total","type":"long","default":0},{"name":"currency","type":"string"}]}`
)

func avro(s string) map[string]any { return map[string]any{"schema": s} }

func TestServer(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("RegisterAndRead", func(t *testing.T) { testRegisterAndRead(t, open(t)) })
			t.Run("Compatibility", func(t *testing.T) { testCompatibility(t, open(t)) })
			t.Run("Deletes", func(t *testing.T) { testDeletes(t, open(t)) })
			t.Run("References", func(t *testing.T) { testReferences(t, open(t)) })
			t.Run("ConfigAndMode", func(t *testing.T) { testConfigAndMode(t, open(t)) })
			t.Run("ConcurrentRegistrations", func(t *testing.T) { testConcurrent(t, open(t)) })
		})
	}
}

func testRegisterAndRead(t *testing.T, st registry.Store) {
	a := newAPI(t, st)
	id1 := idOf(a.ok("POST", "/subjects/orders-value/versions", avro(avroV1)))
	// The same schema again, even with other whitespace: same id, no new version.
	spaced := strings.ReplaceAll(avroV1, ",", ", ")
	if id := idOf(a.ok("POST", "/subjects/orders-value/versions", avro(spaced))); id != id1 {
		t.Fatalf("re-registering gave id %d, want %d", id, id1)
	}
	// The same schema in another subject: same id.
	if id := idOf(a.ok("POST", "/subjects/other-value/versions", avro(avroV1))); id != id1 {
		t.Fatalf("same schema in another subject gave id %d, want %d", id, id1)
	}
	// Unknown fields are accepted; metadata and ruleSet come back unchanged.
	v2 := map[string]any{"schema": avroV2, "futureField": 1,
		"metadata": map[string]any{"properties": map[string]any{"owner": "team-a"}},
		"ruleSet":  map[string]any{"domainRules": []any{map[string]any{"name": "r1", "kind": "CONDITION"}}}}
	id2 := idOf(a.ok("POST", "/subjects/orders-value/versions", v2))
	if id2 == id1 {
		t.Fatal("a new schema got the old id")
	}
	// Confluent Platform 8's answer: the GUID and the rest of the schema,
	// and the schema by GUID; the latest version by metadata.
	full := a.ok("POST", "/subjects/orders-value/versions", v2).(map[string]any)
	guid, _ := full["guid"].(string)
	if len(guid) != 36 || full["version"].(float64) != 2 || full["subject"] != "orders-value" {
		t.Fatalf("registration answer = %v", full)
	}
	if got := a.ok("GET", "/schemas/guids/"+guid, nil).(map[string]any); got["schema"] != avroV2 {
		t.Fatalf("by guid = %v", got)
	}
	a.fails("GET", "/schemas/guids/00000000-0000-8000-8000-000000000000", nil, 404, registry.CodeSchemaNotFound)
	if got := a.ok("GET", "/subjects/orders-value/metadata?key=owner&value=team-a", nil).(map[string]any); got["version"].(float64) != 2 {
		t.Fatalf("latest with metadata = %v", got)
	}
	a.fails("GET", "/subjects/orders-value/metadata?key=owner&value=team-b", nil, 404, registry.CodeSchemaNotFound)
	// A registration or look-up without metadata inherits the latest
	// version's (as Confluent's registry does): the bare schema is version 2.
	if got := a.ok("POST", "/subjects/orders-value/versions", avro(avroV2)).(map[string]any); got["version"].(float64) != 2 || int(got["id"].(float64)) != id2 {
		t.Fatalf("bare re-registration of version 2 = %v", got)
	}
	if got := a.ok("POST", "/subjects/orders-value", avro(avroV2)).(map[string]any); got["version"].(float64) != 2 {
		t.Fatalf("bare look-up of version 2 = %v", got)
	}
	if got := a.ok("GET", "/subjects/orders-value/versions", nil); fmt.Sprint(got) != "[1 2]" {
		t.Fatalf("versions = %v", got)
	}
	latest := a.ok("GET", "/subjects/orders-value/versions/latest", nil).(map[string]any)
	if latest["version"].(float64) != 2 || int(latest["id"].(float64)) != id2 || latest["schema"] != avroV2 {
		t.Fatalf("latest = %v", latest)
	}
	if _, has := latest["schemaType"]; has {
		t.Fatalf("AVRO must omit schemaType, as Confluent does: %v", latest)
	}
	md, _ := json.Marshal(latest["metadata"])
	rs, _ := json.Marshal(latest["ruleSet"])
	if string(md) != `{"properties":{"owner":"team-a"}}` || !strings.Contains(string(rs), `"r1"`) {
		t.Fatalf("metadata/ruleSet not round-tripped: %s %s", md, rs)
	}
	if got := a.ok("GET", "/subjects/orders-value/versions/-1", nil).(map[string]any); got["version"].(float64) != 2 {
		t.Fatalf("version -1 = %v", got)
	}
	byID := a.ok("GET", fmt.Sprintf("/schemas/ids/%d", id1), nil).(map[string]any)
	if byID["schema"] != avroV1 {
		t.Fatalf("by id = %v", byID)
	}
	if raw := a.ok("GET", fmt.Sprintf("/schemas/ids/%d/schema", id1), nil); raw.(map[string]any)["name"] != "Order" {
		t.Fatalf("raw schema = %v", raw)
	}
	if got := a.ok("GET", fmt.Sprintf("/schemas/ids/%d/subjects", id1), nil); fmt.Sprint(got) != "[orders-value other-value]" {
		t.Fatalf("subjects of id = %v", got)
	}
	vs := a.ok("GET", fmt.Sprintf("/schemas/ids/%d/versions", id1), nil).([]any)
	if len(vs) != 2 {
		t.Fatalf("versions of id = %v", vs)
	}
	if got := a.ok("GET", "/subjects", nil); fmt.Sprint(got) != "[orders-value other-value]" {
		t.Fatalf("subjects = %v", got)
	}
	if got := a.ok("GET", "/subjects?subjectPrefix=orders", nil); fmt.Sprint(got) != "[orders-value]" {
		t.Fatalf("subjects by prefix = %v", got)
	}
	if got := a.ok("GET", "/schemas/types", nil); len(got.([]any)) != 3 {
		t.Fatalf("types = %v", got)
	}
	// Look-up finds the version; the JSON type is reported.
	found := a.ok("POST", "/subjects/orders-value", avro(avroV1)).(map[string]any)
	if found["version"].(float64) != 1 || int(found["id"].(float64)) != id1 || found["subject"] != "orders-value" {
		t.Fatalf("lookup = %v", found)
	}
	js := map[string]any{"schemaType": "JSON", "schema": `{"type":"object","properties":{"a":{"type":"string"}}}`}
	jid := idOf(a.ok("POST", "/subjects/j/versions", js))
	if got := a.ok("GET", fmt.Sprintf("/schemas/ids/%d", jid), nil).(map[string]any); got["schemaType"] != "JSON" {
		t.Fatalf("JSON schema by id = %v", got)
	}
	// A subject with a slash, escaped in the path.
	a.ok("POST", "/subjects/"+strings.ReplaceAll("team/orders", "/", "%2F")+"/versions", avro(avroV1))
	if got := a.ok("GET", "/subjects/team%2Forders/versions/1", nil).(map[string]any); got["subject"] != "team/orders" {
		t.Fatalf("escaped subject = %v", got)
	}

	// Subjects are compared byte for byte: case and trailing spaces count.
	a.ok("POST", "/subjects/Case/versions", avro(avroV1))
	a.ok("POST", "/subjects/case/versions", avro(avroV3))
	a.ok("POST", "/subjects/case%20/versions", avro(`"int"`))
	for _, sub := range []string{"Case", "case", "case%20"} {
		if got := a.ok("GET", "/subjects/"+sub+"/versions", nil); fmt.Sprint(got) != "[1]" {
			t.Fatalf("subject %q versions = %v: subjects that differ only in case or spaces were merged", sub, got)
		}
	}

	// Errors, with Confluent's codes.
	a.fails("GET", "/subjects/nope/versions", nil, 404, registry.CodeSubjectNotFound)
	a.fails("GET", "/subjects/orders-value/versions/9", nil, 404, registry.CodeVersionNotFound)
	a.fails("GET", "/subjects/orders-value/versions/0", nil, 422, registry.CodeInvalidVersion)
	a.fails("GET", "/subjects/orders-value/versions/abc", nil, 422, registry.CodeInvalidVersion)
	a.fails("GET", "/schemas/ids/99999", nil, 404, registry.CodeSchemaNotFound)
	a.fails("POST", "/subjects/orders-value", avro(`{"type":"record","name":"X","fields":[]}`), 404, registry.CodeSchemaNotFound)
	a.fails("POST", "/subjects/nope", avro(avroV1), 404, registry.CodeSubjectNotFound)
	msg := a.fails("POST", "/subjects/x/versions", avro(`{"type":"record","name":"X","fields":[{"name":"a"}]}`), 422, registry.CodeInvalidSchema)
	if !strings.Contains(msg, "nvalid schema") {
		t.Fatalf("invalid schema message = %q", msg)
	}
	a.fails("POST", "/subjects/x/versions", map[string]any{"schema": ""}, 422, registry.CodeInvalidSchema)
	msg = a.fails("POST", "/subjects/x/versions", map[string]any{"schema": avroV1, "schemaType": "XML"}, 422, registry.CodeInvalidSchema)
	if !strings.Contains(msg, "schemaType") {
		t.Fatalf("bad schemaType message should name the field: %q", msg)
	}
	a.fails("POST", "/subjects/x/versions", `{"schema": `, 400, 400)
	a.fails("GET", "/no/such/path", nil, 404, 404)
}

func testCompatibility(t *testing.T, st registry.Store) {
	a := newAPI(t, st)
	a.ok("POST", "/subjects/s/versions", avro(avroV1))
	a.ok("POST", "/subjects/s/versions", avro(avroV2))
	// BACKWARD (the default) refuses V3, and says why.
	msg := a.fails("POST", "/subjects/s/versions", avro(avroV3), 409, registry.CodeIncompatibleSchema)
	if !strings.Contains(msg, "READER_FIELD_MISSING_DEFAULT_VALUE") || !strings.Contains(msg, "currency") {
		t.Fatalf("409 must explain the violation: %q", msg)
	}
	// The check endpoint, verbose and not.
	res := a.ok("POST", "/compatibility/subjects/s/versions/latest?verbose=true", avro(avroV3)).(map[string]any)
	if res["is_compatible"] != false || len(res["messages"].([]any)) == 0 {
		t.Fatalf("verbose check = %v", res)
	}
	res = a.ok("POST", "/compatibility/subjects/s/versions/1", avro(avroV2)).(map[string]any)
	if res["is_compatible"] != true {
		t.Fatalf("check against version 1 = %v", res)
	}
	res = a.ok("POST", "/compatibility/subjects/s/versions", avro(avroV2)).(map[string]any)
	if res["is_compatible"] != true {
		t.Fatalf("check against all = %v", res)
	}
	// A brand-new subject: nothing to be incompatible with (as Confluent).
	if res := a.ok("POST", "/compatibility/subjects/nope/versions/latest", avro(avroV1)).(map[string]any); res["is_compatible"] != true {
		t.Fatalf("check of a new subject = %v", res)
	}
	a.fails("POST", "/compatibility/subjects/nope/versions/1", avro(avroV1), 404, registry.CodeSubjectNotFound)
	a.fails("POST", "/compatibility/subjects/s/versions/7", avro(avroV1), 404, registry.CodeVersionNotFound)
	// NONE lets it through.
	a.ok("PUT", "/config/s", map[string]any{"compatibility": "NONE"})
	a.ok("POST", "/subjects/s/versions", avro(avroV3))
	// FORWARD_TRANSITIVE: removing the id field (no default in V1) breaks
	// old readers of version 1.
	a.ok("PUT", "/config/s", map[string]any{"compatibility": "FORWARD_TRANSITIVE"})
	noID := `{"type":"record","name":"Order","namespace":"acme","fields":[{"name":"total","type":"long","default":0},{"name":"currency","type":"string"}]}`
	msg = a.fails("POST", "/subjects/s/versions", avro(noID), 409, registry.CodeIncompatibleSchema)
	if !strings.Contains(msg, "writer") {
		t.Fatalf("a FORWARD break names the writer direction: %q", msg)
	}
}

func testDeletes(t *testing.T, st registry.Store) {
	a := newAPI(t, st)
	a.ok("PUT", "/config", map[string]any{"compatibility": "NONE"})
	id1 := idOf(a.ok("POST", "/subjects/d/versions", avro(avroV1)))
	a.ok("POST", "/subjects/d/versions", avro(avroV3))

	// A version: soft, then again (40406), then permanent; permanent first is 40407.
	a.fails("DELETE", "/subjects/d/versions/1?permanent=true", nil, 404, registry.CodeSchemaVersionNotSoftDeleted)
	if got := a.ok("DELETE", "/subjects/d/versions/1", nil); got.(float64) != 1 {
		t.Fatalf("delete version = %v", got)
	}
	a.fails("DELETE", "/subjects/d/versions/1", nil, 404, registry.CodeSchemaVersionSoftDeleted)
	a.fails("GET", "/subjects/d/versions/1", nil, 404, registry.CodeVersionNotFound)
	if got := a.ok("GET", "/subjects/d/versions/1?deleted=true", nil).(map[string]any); int(got["id"].(float64)) != id1 {
		t.Fatalf("soft-deleted version with deleted=true = %v", got)
	}
	if got := a.ok("GET", "/subjects/d/versions?deleted=true", nil); fmt.Sprint(got) != "[1 2]" {
		t.Fatalf("versions with deleted = %v", got)
	}
	if got := a.ok("GET", "/subjects/d/versions", nil); fmt.Sprint(got) != "[2]" {
		t.Fatalf("live versions = %v", got)
	}
	a.ok("DELETE", "/subjects/d/versions/1?permanent=true", nil)
	a.fails("GET", "/subjects/d/versions/1?deleted=true", nil, 404, registry.CodeVersionNotFound)
	// The schema was used by nothing else: its id is gone.
	a.fails("GET", fmt.Sprintf("/schemas/ids/%d", id1), nil, 404, registry.CodeSchemaNotFound)

	// A subject: permanent first is 40405; soft; soft again 40404; permanent.
	a.fails("DELETE", "/subjects/d?permanent=true", nil, 404, registry.CodeSubjectNotSoftDeleted)
	if got := a.ok("DELETE", "/subjects/d", nil); fmt.Sprint(got) != "[2]" {
		t.Fatalf("delete subject = %v", got)
	}
	a.fails("DELETE", "/subjects/d", nil, 404, registry.CodeSubjectSoftDeleted)
	a.fails("GET", "/subjects/d/versions", nil, 404, registry.CodeSubjectNotFound)
	if got := a.ok("GET", "/subjects?deleted=true", nil); fmt.Sprint(got) != "[d]" {
		t.Fatalf("subjects with deleted = %v", got)
	}
	if got := a.ok("GET", "/subjects", nil); fmt.Sprint(got) != "[]" {
		t.Fatalf("subjects = %v", got)
	}
	// Registering after a soft delete continues the numbering.
	a.ok("POST", "/subjects/d/versions", avro(avroV1))
	if got := a.ok("GET", "/subjects/d/versions", nil); fmt.Sprint(got) != "[3]" {
		t.Fatalf("versions after re-register = %v", got)
	}
	a.ok("DELETE", "/subjects/d", nil)
	a.ok("DELETE", "/subjects/d?permanent=true", nil)
	a.fails("DELETE", "/subjects/d", nil, 404, registry.CodeSubjectNotFound)
}

func testReferences(t *testing.T, st registry.Store) {
	a := newAPI(t, st)
	addr := `{"type":"record","name":"Address","namespace":"acme","fields":[{"name":"zip","type":"string"}]}`
	a.ok("POST", "/subjects/address/versions", avro(addr))
	cust := map[string]any{
		"schema":     `{"type":"record","name":"Customer","namespace":"acme","fields":[{"name":"address","type":"acme.Address"}]}`,
		"references": []any{map[string]any{"name": "acme.Address", "subject": "address", "version": 1}},
	}
	cid := idOf(a.ok("POST", "/subjects/customer/versions", cust))
	got := a.ok("GET", "/subjects/customer/versions/1", nil).(map[string]any)
	refs, _ := json.Marshal(got["references"])
	if string(refs) != `[{"name":"acme.Address","subject":"address","version":1}]` {
		t.Fatalf("references = %s", refs)
	}
	if got := a.ok("GET", "/subjects/address/versions/1/referencedby", nil); fmt.Sprint(got) != fmt.Sprintf("[%d]", cid) {
		t.Fatalf("referencedby = %v", got)
	}
	// A referenced schema can never be deleted: not the version, not the subject.
	a.fails("DELETE", "/subjects/address/versions/1", nil, 422, registry.CodeReferenceExists)
	a.fails("DELETE", "/subjects/address", nil, 422, registry.CodeReferenceExists)
	// Without the reference, the name does not resolve.
	a.fails("POST", "/subjects/c2/versions", map[string]any{"schema": cust["schema"]}, 422, registry.CodeInvalidSchema)
	// A reference to a version that does not exist.
	bad := map[string]any{"schema": cust["schema"], "references": []any{map[string]any{"name": "acme.Address", "subject": "address", "version": 5}}}
	a.fails("POST", "/subjects/c2/versions", bad, 422, registry.CodeInvalidSchema)
	// Once the referencing subject is gone for good, the reference may go.
	a.ok("DELETE", "/subjects/customer", nil)
	a.fails("DELETE", "/subjects/address", nil, 422, registry.CodeReferenceExists) // soft-deleted versions still reference it
	a.ok("DELETE", "/subjects/customer?permanent=true", nil)
	a.ok("DELETE", "/subjects/address", nil)
}

func testConfigAndMode(t *testing.T, st registry.Store) {
	a := newAPI(t, st)
	if got := a.ok("GET", "/config", nil).(map[string]any); got["compatibilityLevel"] != "BACKWARD" {
		t.Fatalf("default config = %v", got)
	}
	if got := a.ok("PUT", "/config", map[string]any{"compatibility": "full_transitive"}).(map[string]any); got["compatibility"] != "FULL_TRANSITIVE" {
		t.Fatalf("put config = %v", got)
	}
	a.fails("GET", "/config/s", nil, 404, registry.CodeSubjectCompatibilityNotSet)
	if got := a.ok("GET", "/config/s?defaultToGlobal=true", nil).(map[string]any); got["compatibilityLevel"] != "FULL_TRANSITIVE" {
		t.Fatalf("config with defaultToGlobal = %v", got)
	}
	a.ok("PUT", "/config/s", map[string]any{"compatibility": "NONE"})
	if got := a.ok("GET", "/config/s", nil).(map[string]any); got["compatibilityLevel"] != "NONE" {
		t.Fatalf("subject config = %v", got)
	}
	msg := a.fails("PUT", "/config/s", map[string]any{"compatibility": "SIDEWAYS"}, 422, registry.CodeInvalidCompatibilityLevel)
	if !strings.Contains(msg, "compatibility") {
		t.Fatalf("message should name the field: %q", msg)
	}
	if got := a.ok("DELETE", "/config/s", nil).(map[string]any); got["compatibilityLevel"] != "NONE" {
		t.Fatalf("delete config = %v", got)
	}
	a.fails("DELETE", "/config/s", nil, 404, registry.CodeSubjectCompatibilityNotSet)

	if got := a.ok("GET", "/mode", nil).(map[string]any); got["mode"] != "READWRITE" {
		t.Fatalf("mode = %v", got)
	}
	a.fails("PUT", "/mode", map[string]any{"mode": "SOMETIMES"}, 422, registry.CodeInvalidMode)
	a.ok("PUT", "/mode/ro", map[string]any{"mode": "READONLY"})
	a.fails("POST", "/subjects/ro/versions", avro(avroV1), 422, registry.CodeOperationNotPermitted)
	a.ok("DELETE", "/mode/ro", nil)
	a.ok("POST", "/subjects/ro/versions", avro(avroV1))
	// A global READONLY_OVERRIDE freezes even a subject whose own mode is READWRITE.
	a.ok("PUT", "/mode/ro", map[string]any{"mode": "READWRITE"})
	a.ok("PUT", "/mode?force=true", map[string]any{"mode": "READONLY_OVERRIDE"})
	a.fails("POST", "/subjects/ro/versions", avro(avroV2), 422, registry.CodeOperationNotPermitted)
	a.fails("DELETE", "/subjects/ro", nil, 422, registry.CodeOperationNotPermitted)
	a.ok("PUT", "/mode", map[string]any{"mode": "READWRITE"})
	a.ok("DELETE", "/mode/ro", nil)

	// IMPORT keeps given ids and versions, and refuses to overwrite an id.
	a.fails("PUT", "/mode", map[string]any{"mode": "IMPORT"}, 422, registry.CodeOperationNotPermitted)
	a.ok("PUT", "/mode/imp", map[string]any{"mode": "IMPORT"})
	imp := map[string]any{"schema": avroV2, "id": 500, "version": 7}
	if id := idOf(a.ok("POST", "/subjects/imp/versions", imp)); id != 500 {
		t.Fatalf("imported id = %d", id)
	}
	if got := a.ok("GET", "/subjects/imp/versions/7", nil).(map[string]any); got["id"].(float64) != 500 {
		t.Fatalf("imported version = %v", got)
	}
	a.fails("POST", "/subjects/imp/versions", map[string]any{"schema": avroV3, "id": 500, "version": 8}, 422, registry.CodeOperationNotPermitted)
	// A schema stored already under another id may not be imported under a new one.
	a.fails("POST", "/subjects/imp/versions", map[string]any{"schema": avroV1, "id": 600, "version": 9}, 422, registry.CodeOperationNotPermitted)
	a.ok("PUT", "/mode/imp", map[string]any{"mode": "READWRITE"})
	// New ids continue after imported ones.
	if id := idOf(a.ok("POST", "/subjects/after/versions", avro(`{"type":"enum","name":"E","symbols":["A"]}`))); id <= 500 {
		t.Fatalf("new id %d after importing id 500", id)
	}
}

func testConcurrent(t *testing.T, st registry.Store) {
	a := newAPI(t, st)
	a.ok("PUT", "/config", map[string]any{"compatibility": "NONE"})
	const n = 8
	ids := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Half register one schema in one subject, half in their own.
			subject := "shared"
			if i%2 == 1 {
				subject = fmt.Sprintf("own-%d", i)
			}
			st, out := a.call("POST", "/subjects/"+subject+"/versions", avro(avroV2))
			if st != 200 {
				t.Errorf("register %d: %d %v", i, st, out)
				return
			}
			ids[i] = idOf(out)
		}()
	}
	wg.Wait()
	for i := range ids {
		if ids[i] != ids[0] {
			t.Fatalf("one schema got several ids: %v", ids)
		}
	}
	if got := a.ok("GET", "/subjects/shared/versions", nil); fmt.Sprint(got) != "[1]" {
		t.Fatalf("concurrent registrations of one schema made versions %v", got)
	}
	// Rounds of one new schema into many subjects at once: each insert of
	// the schema row waits for the first, then finds it; none fails.
	for round := range 10 {
		text := fmt.Sprintf(`{"type":"record","name":"R%d","fields":[{"name":"a","type":"string"}]}`, round)
		ids := make([]int, 12)
		var wg sync.WaitGroup
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, out := a.call("POST", fmt.Sprintf("/subjects/r%d-%d/versions", round, i), avro(text))
				if st != 200 {
					t.Errorf("round %d register %d: %d %v", round, i, st, out)
					return
				}
				ids[i] = idOf(out)
			}()
		}
		wg.Wait()
		for i := range ids {
			if ids[i] != ids[0] {
				t.Fatalf("round %d: one schema got several ids: %v", round, ids)
			}
		}
	}
	// Different schemas into one subject at once: versions 1..n, no gaps,
	// each checked against the one before (NONE here, so all pass).
	a.ok("PUT", "/config/many", map[string]any{"compatibility": "NONE"})
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			text := fmt.Sprintf(`{"type":"record","name":"M%d","fields":[{"name":"a","type":"string"}]}`, i)
			if st, out := a.call("POST", "/subjects/many/versions", avro(text)); st != 200 {
				t.Errorf("register %d: %d %v", i, st, out)
			}
		}()
	}
	wg.Wait()
	if got := a.ok("GET", "/subjects/many/versions", nil); fmt.Sprint(got) != "[1 2 3 4 5 6 7 8 9 10]" {
		t.Fatalf("concurrent versions of one subject = %v", got)
	}
}

func TestServer_Auth(t *testing.T) {
	st := stores(t)["sqlite"](t)
	for _, open := range []bool{false, true} {
		a := newAPI(t, st, registry.WithRequiredToken("s3cret"), registry.WithOpenReads(open))
		a.fails("POST", "/subjects/a/versions", avro(avroV1), 401, registry.CodeUnauthorized)
		a.fails("PUT", "/config", map[string]any{"compatibility": "NONE"}, 401, registry.CodeUnauthorized)
		a.auth = "Bearer wrong"
		a.fails("DELETE", "/subjects/a", nil, 401, registry.CodeUnauthorized)
		a.auth = ""
		if open {
			a.ok("GET", "/subjects", nil)
			a.ok("GET", "/config", nil)
		} else {
			a.fails("GET", "/subjects", nil, 401, registry.CodeUnauthorized)
		}
		a.auth = "Bearer s3cret"
		a.ok("POST", "/subjects/a/versions", avro(avroV1))
		a.ok("GET", "/subjects", nil)
		// Basic auth, as Confluent clients send basic.auth.user.info.
		a.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte("ci:s3cret"))
		a.ok("POST", "/subjects/a/versions", avro(avroV1))
		a.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte("ci:nope"))
		a.fails("POST", "/subjects/a/versions", avro(avroV1), 401, registry.CodeUnauthorized)
	}
	if _, err := registry.NewServer(st, registry.WithRequiredToken("")); err == nil {
		t.Fatal("an empty token must be refused")
	}
}

// A registration after a restart parses the earlier version, references
// included, inside its transaction: on a store with one connection it must
// not wait for a second (it once did, for ever).
func TestServer_RegistersAfterRestartOnOneConnection(t *testing.T) {
	db, err := sqlite.Open(context.Background(), "file:restart?mode=memory&cache=shared")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	migrate(t, db, sqlite.Migrate)
	st := sqlite.RegistryStore(db)
	addr := `{"type":"record","name":"Address","namespace":"acme","fields":[{"name":"zip","type":"string"}]}`
	ref := []any{map[string]any{"name": "acme.Address", "subject": "address", "version": 1}}
	v1 := `{"type":"record","name":"Customer","namespace":"acme","fields":[{"name":"address","type":"acme.Address"}]}`
	v2 := `{"type":"record","name":"Customer","namespace":"acme","fields":[{"name":"address","type":"acme.Address"},{"name":"n","type":"int","default":0}]}`
	a := newAPI(t, st)
	a.ok("POST", "/subjects/address/versions", avro(addr))
	a.ok("POST", "/subjects/customer/versions", map[string]any{"schema": v1, "references": ref})
	restarted := newAPI(t, st) // a new server: nothing cached
	done := make(chan int, 1)
	go func() {
		st, _ := restarted.call("POST", "/subjects/customer/versions", map[string]any{"schema": v2, "references": ref})
		done <- st
	}()
	select {
	case code := <-done:
		if code != 200 {
			t.Fatalf("registration after restart: status %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("registration after restart hangs: it waits for a second connection while holding the only one")
	}
}

// With its database gone, the registry keeps serving the schemas it has
// cached by id (what serializers and deserializers ask for), refuses writes
// with 50001, and what it accepted before is there after a restart.
func TestServer_DatabaseOutage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	open := func() *sql.DB {
		db, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		migrate(t, db, sqlite.Migrate)
		return db
	}
	db := open()
	a := newAPI(t, sqlite.RegistryStore(db))
	id := idOf(a.ok("POST", "/subjects/s/versions", avro(avroV1)))
	a.ok("GET", fmt.Sprintf("/schemas/ids/%d", id), nil)
	db.Close() // the database goes away

	if got := a.ok("GET", fmt.Sprintf("/schemas/ids/%d", id), nil).(map[string]any); got["schema"] != avroV1 {
		t.Fatalf("cached id during the outage = %v", got)
	}
	a.fails("POST", "/subjects/s/versions", avro(avroV2), 500, registry.CodeBackendStore)
	a.fails("GET", "/subjects/s/versions", nil, 500, registry.CodeBackendStore)

	// Back: a new server on the same file has what was accepted, not the
	// refused write.
	db = open()
	defer db.Close()
	b := newAPI(t, sqlite.RegistryStore(db))
	if got := b.ok("GET", "/subjects/s/versions", nil); fmt.Sprint(got) != "[1]" {
		t.Fatalf("versions after the outage = %v", got)
	}
	if got := idOf(b.ok("POST", "/subjects/s/versions", avro(avroV2))); got == id {
		t.Fatalf("version 2 got version 1's id")
	}
}

// countingStore counts the subject-version reads a server makes.
type countingStore struct {
	registry.Store
	mu    sync.Mutex
	reads int
}

func (c *countingStore) Versions(ctx context.Context, subject string) ([]registry.VersionRow, error) {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return c.Store.Versions(ctx, subject)
}

// References are resolved once per (subject, version): a chain where each
// level references the one below twice costs reads linear in its depth,
// not exponential.
func TestServer_ReferencesResolvedOnceEach(t *testing.T) {
	st := &countingStore{Store: sqliteStore(t)}
	a := newAPI(t, st)
	const depth = 14
	a.ok("POST", "/subjects/l0/versions", avro(`{"type":"record","name":"L0","fields":[{"name":"x","type":"int"}]}`))
	for k := 1; k <= depth; k++ {
		below := fmt.Sprintf("L%d", k-1)
		ref := map[string]any{"name": below, "subject": fmt.Sprintf("l%d", k-1), "version": 1}
		a.ok("POST", fmt.Sprintf("/subjects/l%d/versions", k), map[string]any{
			"schema":     fmt.Sprintf(`{"type":"record","name":"L%d","fields":[{"name":"a","type":%q},{"name":"b","type":%q}]}`, k, below, below),
			"references": []any{ref, ref},
		})
	}
	st.mu.Lock()
	st.reads = 0
	st.mu.Unlock()
	top := map[string]any{"name": fmt.Sprintf("L%d", depth), "subject": fmt.Sprintf("l%d", depth), "version": 1}
	a.ok("POST", "/subjects/top/versions", map[string]any{
		"schema":     fmt.Sprintf(`{"type":"record","name":"Top","fields":[{"name":"l","type":"L%d"}]}`, depth),
		"references": []any{top, top},
	})
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.reads > 4*depth+20 {
		t.Fatalf("%d subject reads for a reference chain of depth %d: references are resolved more than once each", st.reads, depth)
	}
}
