package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/handoffhq/handoff/schema"
)

// fakeRegistry is an in-memory fake of Confluent's REST API, enough for the
// client and the serializers: it counts requests per route, records the
// last request of each, and can hold GET /schemas/ids/{id} at a gate.
type fakeRegistry struct {
	mu       sync.Mutex
	schemas  []fakeSchema // id-1 → schema
	subjects map[string][]fakeVersion
	order    []string // subjects in registration order
	global   string
	levels   map[string]string

	counts map[string]int           // route pattern → requests
	last   map[string]*http.Request // route pattern → last request
	bodies map[string][]byte        // route pattern → last body

	gate chan struct{} // if not nil, GET /schemas/ids/{id} waits for it to close
}

type fakeSchema struct {
	Schema     string      `json:"schema"`
	SchemaType string      `json:"schemaType,omitempty"`
	References []Reference `json:"references,omitempty"`
}

type fakeVersion struct {
	version, id int
	deleted     bool
}

func newFakeRegistry() *fakeRegistry {
	return &fakeRegistry{
		subjects: map[string][]fakeVersion{},
		global:   "BACKWARD",
		levels:   map[string]string{},
		counts:   map[string]int{},
		last:     map[string]*http.Request{},
		bodies:   map[string][]byte{},
	}
}

// count returns how many requests reached the route pattern, e.g.
// "GET /schemas/ids/{id}".
func (f *fakeRegistry) count(pattern string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[pattern]
}

func (f *fakeRegistry) lastRequest(pattern string) (*http.Request, []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last[pattern], f.bodies[pattern]
}

func fakeError(w http.ResponseWriter, code int, msg string) {
	e := &Error{Code: code}
	w.Header().Set("Content-Type", ContentType)
	w.WriteHeader(e.HTTPStatus())
	_ = json.NewEncoder(w).Encode(map[string]any{"error_code": code, "message": msg})
}

func fakeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", ContentType)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeRegistry) handler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern string, h func(w http.ResponseWriter, r *http.Request, body []byte)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			var body []byte
			if r.Body != nil {
				body, _ = io.ReadAll(r.Body)
			}
			f.mu.Lock()
			f.counts[pattern]++
			f.last[pattern], f.bodies[pattern] = r, body
			gate := f.gate
			f.mu.Unlock()
			if pattern == "GET /schemas/ids/{id}" && gate != nil {
				select {
				case <-gate:
				case <-r.Context().Done():
					return
				}
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			h(w, r, body)
		})
	}
	decodeSpec := func(w http.ResponseWriter, body []byte) (fakeSchema, bool) {
		var s fakeSchema
		if err := json.Unmarshal(body, &s); err != nil || s.Schema == "" {
			fakeError(w, CodeInvalidSchema, "Invalid schema: empty or not JSON")
			return s, false
		}
		return s, true
	}
	route("POST /subjects/{subject}/versions", func(w http.ResponseWriter, r *http.Request, body []byte) {
		s, ok := decodeSpec(w, body)
		if !ok {
			return
		}
		subject := r.PathValue("subject")
		id := f.idOf(s)
		if id == 0 {
			f.schemas = append(f.schemas, s)
			id = len(f.schemas)
		}
		vs := f.subjects[subject]
		for _, v := range vs {
			if v.id == id && !v.deleted {
				fakeJSON(w, map[string]int{"id": id})
				return
			}
		}
		if _, ok := f.subjects[subject]; !ok {
			f.order = append(f.order, subject)
		}
		next := 1
		if len(vs) > 0 {
			next = vs[len(vs)-1].version + 1
		}
		f.subjects[subject] = append(vs, fakeVersion{version: next, id: id})
		fakeJSON(w, map[string]int{"id": id})
	})
	route("POST /subjects/{subject}", func(w http.ResponseWriter, r *http.Request, body []byte) {
		s, ok := decodeSpec(w, body)
		if !ok {
			return
		}
		subject := r.PathValue("subject")
		vs, ok := f.subjects[subject]
		if !ok {
			fakeError(w, CodeSubjectNotFound, fmt.Sprintf("Subject '%s' not found.", subject))
			return
		}
		id := f.idOf(s)
		for _, v := range vs {
			if v.id == id && !v.deleted {
				fakeJSON(w, f.registered(subject, v))
				return
			}
		}
		fakeError(w, CodeSchemaNotFound, "Schema not found")
	})
	route("GET /schemas/ids/{id}", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		id, err := strconv.Atoi(r.PathValue("id"))
		if err != nil || id < 1 || id > len(f.schemas) {
			fakeError(w, CodeSchemaNotFound, "Schema "+r.PathValue("id")+" not found")
			return
		}
		fakeJSON(w, f.schemas[id-1])
	})
	route("GET /subjects", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		out := []string{}
		for _, s := range f.order {
			if f.live(s) != nil {
				out = append(out, s)
			}
		}
		fakeJSON(w, out)
	})
	route("GET /subjects/{subject}/versions", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		vs := f.live(r.PathValue("subject"))
		if vs == nil {
			fakeError(w, CodeSubjectNotFound, "Subject not found")
			return
		}
		out := []int{}
		for _, v := range vs {
			out = append(out, v.version)
		}
		fakeJSON(w, out)
	})
	route("GET /subjects/{subject}/versions/{version}", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		subject := r.PathValue("subject")
		v, ok := f.find(w, subject, r.PathValue("version"))
		if ok {
			fakeJSON(w, f.registered(subject, v))
		}
	})
	route("POST /compatibility/subjects/{subject}/versions/{version}", func(w http.ResponseWriter, r *http.Request, body []byte) {
		s, ok := decodeSpec(w, body)
		if !ok {
			return
		}
		if _, ok := f.find(w, r.PathValue("subject"), r.PathValue("version")); !ok {
			return
		}
		// The fake's rule: a schema mentioning BREAKING is incompatible.
		res := CompatibilityResult{IsCompatible: !strings.Contains(s.Schema, "BREAKING")}
		if !res.IsCompatible && r.URL.Query().Get("verbose") == "true" {
			res.Messages = []string{"READER_FIELD_MISSING_DEFAULT_VALUE at /breaking"}
		}
		fakeJSON(w, res)
	})
	route("GET /config", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		fakeJSON(w, map[string]string{"compatibilityLevel": f.global})
	})
	route("GET /config/{subject}", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		l, ok := f.levels[r.PathValue("subject")]
		if !ok {
			fakeError(w, CodeSubjectCompatibilityNotSet, "Subject does not have subject-level compatibility configured")
			return
		}
		fakeJSON(w, map[string]string{"compatibilityLevel": l})
	})
	setConfig := func(w http.ResponseWriter, r *http.Request, body []byte) {
		var req struct {
			Compatibility string `json:"compatibility"`
		}
		_ = json.Unmarshal(body, &req)
		l, err := schema.ParseLevel(req.Compatibility)
		if err != nil {
			fakeError(w, CodeInvalidCompatibilityLevel, "Invalid compatibility level")
			return
		}
		if s := r.PathValue("subject"); s != "" {
			f.levels[s] = string(l)
		} else {
			f.global = string(l)
		}
		fakeJSON(w, map[string]string{"compatibility": string(l)})
	}
	route("PUT /config", setConfig)
	route("PUT /config/{subject}", setConfig)
	route("DELETE /subjects/{subject}", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		subject := r.PathValue("subject")
		vs, ok := f.subjects[subject]
		if !ok {
			fakeError(w, CodeSubjectNotFound, "Subject not found")
			return
		}
		permanent := r.URL.Query().Get("permanent") == "true"
		live := f.live(subject)
		out := []int{}
		switch {
		case permanent && live != nil:
			fakeError(w, CodeSubjectNotSoftDeleted, "Subject was not deleted first before being permanently deleted")
			return
		case permanent:
			for _, v := range vs {
				out = append(out, v.version)
			}
			delete(f.subjects, subject)
			f.order = slices.DeleteFunc(f.order, func(s string) bool { return s == subject })
		case live == nil:
			fakeError(w, CodeSubjectSoftDeleted, "Subject was soft deleted")
			return
		default:
			for i := range vs {
				if !vs[i].deleted {
					vs[i].deleted = true
					out = append(out, vs[i].version)
				}
			}
		}
		fakeJSON(w, out)
	})
	route("DELETE /subjects/{subject}/versions/{version}", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		subject := r.PathValue("subject")
		n, err := strconv.Atoi(r.PathValue("version"))
		vs := f.subjects[subject]
		i := slices.IndexFunc(vs, func(v fakeVersion) bool { return v.version == n })
		if err != nil || i < 0 {
			fakeError(w, CodeVersionNotFound, "Version not found")
			return
		}
		permanent := r.URL.Query().Get("permanent") == "true"
		switch {
		case permanent && !vs[i].deleted:
			fakeError(w, CodeSchemaVersionNotSoftDeleted, "Version was not deleted first")
			return
		case permanent:
			f.subjects[subject] = slices.Delete(vs, i, i+1)
		case vs[i].deleted:
			fakeError(w, CodeSchemaVersionSoftDeleted, "Version was soft deleted")
			return
		default:
			vs[i].deleted = true
		}
		fakeJSON(w, n)
	})
	return mux
}

// idOf returns the id of an identical stored schema, or 0. The caller holds
// f.mu.
func (f *fakeRegistry) idOf(s fakeSchema) int {
	for i, have := range f.schemas {
		if have.Schema == s.Schema && have.SchemaType == s.SchemaType && slices.Equal(have.References, s.References) {
			return i + 1
		}
	}
	return 0
}

func (f *fakeRegistry) live(subject string) []fakeVersion {
	var out []fakeVersion
	for _, v := range f.subjects[subject] {
		if !v.deleted {
			out = append(out, v)
		}
	}
	return out
}

func (f *fakeRegistry) find(w http.ResponseWriter, subject, version string) (fakeVersion, bool) {
	vs := f.live(subject)
	if vs == nil {
		fakeError(w, CodeSubjectNotFound, fmt.Sprintf("Subject '%s' not found.", subject))
		return fakeVersion{}, false
	}
	if version == "latest" || version == "-1" {
		return vs[len(vs)-1], true
	}
	n, err := strconv.Atoi(version)
	if err != nil || n < 1 {
		fakeError(w, CodeInvalidVersion, "The specified version '"+version+"' is not a valid version id.")
		return fakeVersion{}, false
	}
	for _, v := range vs {
		if v.version == n {
			return v, true
		}
	}
	fakeError(w, CodeVersionNotFound, "Version "+version+" not found.")
	return fakeVersion{}, false
}

func (f *fakeRegistry) registered(subject string, v fakeVersion) Registered {
	s := f.schemas[v.id-1]
	return Registered{Subject: subject, Version: v.version, ID: v.id, SchemaType: s.SchemaType, Schema: s.Schema, References: s.References}
}

// newTestClient starts the fake behind an httptest.Server and returns a
// client of it.
func newTestClient(t testing.TB, opts ...ClientOption) (*Client, *fakeRegistry) {
	t.Helper()
	f := newFakeRegistry()
	srv := httptest.NewServer(f.handler())
	t.Cleanup(srv.Close)
	c, err := NewClient(srv.URL+"/", opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c, f
}

// handlerTransport serves requests with a handler in memory: no network, so
// a test can run in a synctest bubble.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	return rec.Result(), nil
}

const (
	avroUser = `{"type":"record","name":"User","namespace":"acme","fields":[{"name":"name","type":"string"}]}`
	jsonUser = `{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}`
)

func asRegistryError(t testing.TB, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	return e
}

func TestClient_NewClientRefusesBadInput(t *testing.T) {
	tests := []struct {
		name string
		url  string
		opts []ClientOption
	}{
		{"relative url", "localhost:8081", nil},
		{"ftp", "ftp://example.com", nil},
		{"query", "http://example.com/?a=b", nil},
		{"nil http client", "http://example.com", []ClientOption{WithHTTPClient(nil)}},
		{"zero cache", "http://example.com", []ClientOption{WithCacheSize(0)}},
		{"two auths", "http://example.com", []ClientOption{WithToken("t"), WithBasicAuth("u", "p")}},
		{"empty user", "http://example.com", []ClientOption{WithBasicAuth("", "p")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewClient(tt.url, tt.opts...); err == nil {
				t.Fatal("NewClient succeeded, want an error")
			}
		})
	}
	c, err := NewClient("https://example.com/registry/")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.BaseURL(); got != "https://example.com/registry" {
		t.Errorf("BaseURL = %q", got)
	}
}

func TestClient_RegisterSendsConfluentBodyAndCachesID(t *testing.T) {
	c, f := newTestClient(t)
	ctx := context.Background()

	id, err := c.Register(ctx, "users-value", SchemaSpec{Text: avroUser})
	if err != nil {
		t.Fatal(err)
	}
	r, body := f.lastRequest("POST /subjects/{subject}/versions")
	if ct := r.Header.Get("Content-Type"); ct != ContentType {
		t.Errorf("Content-Type = %q, want %q", ct, ContentType)
	}
	if !strings.HasPrefix(r.Header.Get("Accept"), ContentType) {
		t.Errorf("Accept = %q", r.Header.Get("Accept"))
	}
	var sent map[string]any
	if err := json.Unmarshal(body, &sent); err != nil {
		t.Fatal(err)
	}
	if _, ok := sent["schemaType"]; ok {
		t.Errorf("body %s has schemaType for AVRO, want it omitted", body)
	}
	if sent["schema"] != avroUser {
		t.Errorf("body schema = %v", sent["schema"])
	}

	// Registering again, even with other whitespace, is answered from the cache.
	again, err := c.Register(ctx, "users-value", SchemaSpec{Type: schema.Avro, Text: " " + avroUser + "\n"})
	if err != nil || again != id {
		t.Fatalf("second Register = %d, %v; want %d", again, err, id)
	}
	if n := f.count("POST /subjects/{subject}/versions"); n != 1 {
		t.Errorf("register requests = %d, want 1", n)
	}
	// The registration primed id → schema.
	if got, err := c.SchemaByID(ctx, id); err != nil || got.Schema != avroUser {
		t.Errorf("SchemaByID = %+v, %v", got, err)
	}
	if n := f.count("GET /schemas/ids/{id}"); n != 0 {
		t.Errorf("GET /schemas/ids requests = %d, want 0", n)
	}

	// JSON: schemaType and references are sent.
	refs := []Reference{{Name: "user.json", Subject: "users-value", Version: 1}}
	if _, err := c.Register(ctx, "orders-value", SchemaSpec{Type: schema.JSON, Text: jsonUser, References: refs, Metadata: json.RawMessage(`{"properties":{"owner":"x"}}`)}); err != nil {
		t.Fatal(err)
	}
	_, body = f.lastRequest("POST /subjects/{subject}/versions")
	var sentJSON struct {
		SchemaType string          `json:"schemaType"`
		References []Reference     `json:"references"`
		Metadata   json.RawMessage `json:"metadata"`
	}
	if err := json.Unmarshal(body, &sentJSON); err != nil {
		t.Fatal(err)
	}
	if sentJSON.SchemaType != "JSON" || !slices.Equal(sentJSON.References, refs) || len(sentJSON.Metadata) == 0 {
		t.Errorf("body = %s", body)
	}
}

func TestClient_LookupFindsRegisteredSchema(t *testing.T) {
	c, f := newTestClient(t)
	ctx := context.Background()
	id, err := c.Register(ctx, "users-value", SchemaSpec{Text: avroUser})
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Lookup(ctx, "users-value", SchemaSpec{Text: avroUser})
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != id || r.Version != 1 || r.Subject != "users-value" || r.Schema != avroUser {
		t.Errorf("Lookup = %+v", r)
	}
	_, err = c.Lookup(ctx, "users-value", SchemaSpec{Text: `"string"`})
	if e := asRegistryError(t, err); e.Code != CodeSchemaNotFound || e.Status != 404 || !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup of unregistered schema: %+v", e)
	}
	_, err = c.Lookup(ctx, "nobody", SchemaSpec{Text: avroUser})
	if e := asRegistryError(t, err); e.Code != CodeSubjectNotFound {
		t.Errorf("Lookup under unknown subject: %+v", e)
	}
	if n := f.count("POST /subjects/{subject}"); n != 3 {
		t.Errorf("lookup requests = %d, want 3", n)
	}
}

func TestClient_SchemaByIDIsCached(t *testing.T) {
	c, f := newTestClient(t)
	ctx := context.Background()
	seedFake(t, f, "users-value", fakeSchema{Schema: jsonUser, SchemaType: "JSON"})
	for range 3 {
		r, err := c.SchemaByID(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if r.ID != 1 || r.Schema != jsonUser || r.SchemaType != "JSON" {
			t.Fatalf("SchemaByID = %+v", r)
		}
	}
	if n := f.count("GET /schemas/ids/{id}"); n != 1 {
		t.Errorf("requests = %d, want 1", n)
	}
	_, err := c.SchemaByID(ctx, 99)
	if e := asRegistryError(t, err); e.Code != CodeSchemaNotFound || e.HTTPStatus() != 404 {
		t.Errorf("unknown id: %+v", e)
	}
	// Errors are not cached.
	_, _ = c.SchemaByID(ctx, 99)
	if n := f.count("GET /schemas/ids/{id}"); n != 3 {
		t.Errorf("requests = %d, want 3", n)
	}
}

func TestClient_CacheIsBounded(t *testing.T) {
	c, f := newTestClient(t, WithCacheSize(1))
	ctx := context.Background()
	seedFake(t, f, "a", fakeSchema{Schema: `"string"`})
	seedFake(t, f, "b", fakeSchema{Schema: `"int"`})
	for _, id := range []int{1, 2, 1} {
		if _, err := c.SchemaByID(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.count("GET /schemas/ids/{id}"); n != 3 {
		t.Errorf("requests = %d, want 3 (id 1 evicted by id 2)", n)
	}
	if n := c.byID.len(); n != 1 {
		t.Errorf("cache holds %d entries, want 1", n)
	}
}

func TestClient_ConcurrentCallersOfOneIDShareOneRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeRegistry()
		seedFake(t, f, "users-value", fakeSchema{Schema: avroUser})
		f.gate = make(chan struct{})
		c, err := NewClient("http://registry.test", WithHTTPClient(&http.Client{Transport: handlerTransport{f.handler()}}))
		if err != nil {
			t.Fatal(err)
		}
		const callers = 8
		var wg sync.WaitGroup
		results := make([]Registered, callers)
		errs := make([]error, callers)
		for i := range callers {
			wg.Go(func() { results[i], errs[i] = c.SchemaByID(context.Background(), 1) })
		}
		synctest.Wait() // every caller is blocked: one at the gate, the rest on it
		if n := f.count("GET /schemas/ids/{id}"); n != 1 {
			t.Errorf("requests while held = %d, want 1", n)
		}
		close(f.gate)
		wg.Wait()
		for i := range callers {
			if errs[i] != nil || results[i].Schema != avroUser {
				t.Errorf("caller %d: %+v, %v", i, results[i], errs[i])
			}
		}
		if n := f.count("GET /schemas/ids/{id}"); n != 1 {
			t.Errorf("requests = %d, want 1", n)
		}
	})
}

func TestClient_WaiterTakesOverWhenTheFirstCallerGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeRegistry()
		seedFake(t, f, "users-value", fakeSchema{Schema: avroUser})
		f.gate = make(chan struct{})
		c, err := NewClient("http://registry.test", WithHTTPClient(&http.Client{Transport: handlerTransport{f.handler()}}))
		if err != nil {
			t.Fatal(err)
		}
		first, cancel := context.WithCancel(context.Background())
		var firstErr, secondErr error
		var second Registered
		var wg sync.WaitGroup
		wg.Go(func() { _, firstErr = c.SchemaByID(first, 1) })
		synctest.Wait()
		wg.Go(func() { second, secondErr = c.SchemaByID(context.Background(), 1) })
		synctest.Wait()
		cancel() // the first caller's request ends; the second asks again
		synctest.Wait()
		close(f.gate)
		wg.Wait()
		if n := f.count("GET /schemas/ids/{id}"); n != 2 {
			t.Errorf("requests = %d, want 2", n)
		}
		if !errors.Is(firstErr, context.Canceled) {
			t.Errorf("first caller: %v, want context.Canceled", firstErr)
		}
		if secondErr != nil || second.Schema != avroUser {
			t.Errorf("second caller: %+v, %v", second, secondErr)
		}
	})
}

// seedFake registers a schema at the fake directly.
func seedFake(t testing.TB, f *fakeRegistry, subject string, s fakeSchema) int {
	t.Helper()
	b, _ := json.Marshal(s)
	req := httptest.NewRequest(http.MethodPost, "/subjects/"+escape(subject)+"/versions", strings.NewReader(string(b)))
	rec := httptest.NewRecorder()
	f.handler().ServeHTTP(rec, req)
	var resp struct{ ID int }
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp.ID == 0 {
		t.Fatalf("seed %s: %s", subject, rec.Body)
	}
	f.mu.Lock()
	clear(f.counts)
	f.mu.Unlock()
	return resp.ID
}

func TestClient_SubjectsVersionsLatestVersion(t *testing.T) {
	c, f := newTestClient(t)
	ctx := context.Background()
	seedFake(t, f, "users-value", fakeSchema{Schema: `"string"`})
	seedFake(t, f, "users-value", fakeSchema{Schema: `["null","string"]`})
	seedFake(t, f, "orders-value", fakeSchema{Schema: jsonUser, SchemaType: "JSON"})

	subjects, err := c.Subjects(ctx)
	if err != nil || !slices.Equal(subjects, []string{"users-value", "orders-value"}) {
		t.Errorf("Subjects = %v, %v", subjects, err)
	}
	versions, err := c.Versions(ctx, "users-value")
	if err != nil || !slices.Equal(versions, []int{1, 2}) {
		t.Errorf("Versions = %v, %v", versions, err)
	}
	latest, err := c.Latest(ctx, "users-value")
	if err != nil || latest.Version != 2 || latest.ID != 2 || latest.Schema != `["null","string"]` {
		t.Errorf("Latest = %+v, %v", latest, err)
	}
	v1, err := c.Version(ctx, "users-value", 1)
	if err != nil || v1.Version != 1 || v1.ID != 1 || v1.Subject != "users-value" {
		t.Errorf("Version 1 = %+v, %v", v1, err)
	}
	j, err := c.Latest(ctx, "orders-value")
	if err != nil || j.SchemaType != "JSON" {
		t.Errorf("Latest JSON = %+v, %v", j, err)
	}
	// Latest is never cached: a new version shows.
	seedFake(t, f, "users-value", fakeSchema{Schema: `"bytes"`})
	if latest, err = c.Latest(ctx, "users-value"); err != nil || latest.Version != 3 {
		t.Errorf("Latest after a new version = %+v, %v", latest, err)
	}
	_, err = c.Version(ctx, "users-value", 9)
	if e := asRegistryError(t, err); e.Code != CodeVersionNotFound || !errors.Is(err, ErrNotFound) {
		t.Errorf("missing version: %+v", e)
	}
	_, err = c.Versions(ctx, "nobody")
	if e := asRegistryError(t, err); e.Code != CodeSubjectNotFound {
		t.Errorf("missing subject: %+v", e)
	}
	// What Latest and Version returned primed id → schema.
	if _, err := c.SchemaByID(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if n := f.count("GET /schemas/ids/{id}"); n != 0 {
		t.Errorf("GET /schemas/ids requests = %d, want 0", n)
	}
}

func TestClient_CheckCompatibility(t *testing.T) {
	c, f := newTestClient(t)
	ctx := context.Background()
	seedFake(t, f, "users-value", fakeSchema{Schema: avroUser})

	res, err := c.CheckCompatibility(ctx, "users-value", "latest", SchemaSpec{Text: `{"type":"string","doc":"fine"}`}, false)
	if err != nil || !res.IsCompatible {
		t.Errorf("compatible: %+v, %v", res, err)
	}
	res, err = c.CheckCompatibility(ctx, "users-value", "1", SchemaSpec{Text: `{"type":"string","doc":"BREAKING"}`}, true)
	if err != nil || res.IsCompatible || len(res.Messages) != 1 {
		t.Errorf("incompatible, verbose: %+v, %v", res, err)
	}
	r, _ := f.lastRequest("POST /compatibility/subjects/{subject}/versions/{version}")
	if r.URL.Query().Get("verbose") != "true" || r.PathValue("version") != "1" {
		t.Errorf("request %s", r.URL)
	}
	res, err = c.CheckCompatibility(ctx, "users-value", "", SchemaSpec{Text: `{"type":"string","doc":"BREAKING"}`}, false)
	if err != nil || res.IsCompatible || len(res.Messages) != 0 {
		t.Errorf("incompatible, not verbose: %+v, %v", res, err)
	}
	r, _ = f.lastRequest("POST /compatibility/subjects/{subject}/versions/{version}")
	if r.URL.RawQuery != "" || r.PathValue("version") != "latest" {
		t.Errorf("request %s", r.URL)
	}
	if _, err := c.CheckCompatibility(ctx, "users-value", "one", SchemaSpec{Text: avroUser}, false); err == nil {
		t.Error("version \"one\" accepted")
	}
	_, err = c.CheckCompatibility(ctx, "users-value", "7", SchemaSpec{Text: avroUser}, false)
	if e := asRegistryError(t, err); e.Code != CodeVersionNotFound {
		t.Errorf("missing version: %+v", e)
	}
}

func TestClient_Config(t *testing.T) {
	c, _ := newTestClient(t)
	ctx := context.Background()
	if l, err := c.Config(ctx, ""); err != nil || l != schema.Backward {
		t.Errorf("global Config = %q, %v", l, err)
	}
	_, err := c.Config(ctx, "users-value")
	if e := asRegistryError(t, err); e.Code != CodeSubjectCompatibilityNotSet || !errors.Is(err, ErrNotFound) {
		t.Errorf("unset subject level: %+v", e)
	}
	if err := c.SetConfig(ctx, "users-value", schema.FullTransitive); err != nil {
		t.Fatal(err)
	}
	if l, err := c.Config(ctx, "users-value"); err != nil || l != schema.FullTransitive {
		t.Errorf("subject Config = %q, %v", l, err)
	}
	if err := c.SetConfig(ctx, "", schema.None); err != nil {
		t.Fatal(err)
	}
	if l, err := c.Config(ctx, ""); err != nil || l != schema.None {
		t.Errorf("global Config after set = %q, %v", l, err)
	}
	err = c.SetConfig(ctx, "", "SIDEWAYS")
	if e := asRegistryError(t, err); e.Code != CodeInvalidCompatibilityLevel || !errors.Is(err, ErrInvalid) {
		t.Errorf("bad level: %+v", e)
	}
}

func TestClient_DeleteSubjectAndVersion(t *testing.T) {
	c, f := newTestClient(t)
	ctx := context.Background()
	if _, err := c.Register(ctx, "users-value", SchemaSpec{Text: `"string"`}); err != nil {
		t.Fatal(err)
	}
	seedFake(t, f, "users-value", fakeSchema{Schema: `"int"`})

	if err := c.DeleteVersion(ctx, "users-value", 2, false); err != nil {
		t.Fatal(err)
	}
	err := c.DeleteVersion(ctx, "users-value", 2, false)
	if e := asRegistryError(t, err); e.Code != CodeSchemaVersionSoftDeleted {
		t.Errorf("second soft delete: %+v", e)
	}
	if err := c.DeleteVersion(ctx, "users-value", 2, true); err != nil {
		t.Fatal(err)
	}
	r, _ := f.lastRequest("DELETE /subjects/{subject}/versions/{version}")
	if r.URL.Query().Get("permanent") != "true" {
		t.Errorf("permanent delete sent %s", r.URL)
	}

	_, err = c.DeleteSubject(ctx, "users-value", true)
	if e := asRegistryError(t, err); e.Code != CodeSubjectNotSoftDeleted {
		t.Errorf("permanent before soft: %+v", e)
	}
	got, err := c.DeleteSubject(ctx, "users-value", false)
	if err != nil || !slices.Equal(got, []int{1}) {
		t.Errorf("DeleteSubject = %v, %v", got, err)
	}
	if got, err = c.DeleteSubject(ctx, "users-value", true); err != nil || !slices.Equal(got, []int{1}) {
		t.Errorf("permanent DeleteSubject = %v, %v", got, err)
	}
	// The delete dropped the cached registration: registering again reaches
	// the registry.
	before := f.count("POST /subjects/{subject}/versions")
	if _, err := c.Register(ctx, "users-value", SchemaSpec{Text: `"string"`}); err != nil {
		t.Fatal(err)
	}
	if n := f.count("POST /subjects/{subject}/versions"); n != before+1 {
		t.Errorf("register requests = %d, want %d", n, before+1)
	}
	if vs, err := c.Versions(ctx, "users-value"); err != nil || len(vs) != 1 {
		t.Errorf("Versions after re-register = %v, %v", vs, err)
	}
}

func TestClient_ErrorsCarryCodeAndStatus(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       string
		wantCode   int
		wantStatus int
		wantMsg    string
		is         error
	}{
		{"registry error", 404, `{"error_code":40401,"message":"Subject 'x' not found."}`, 40401, 404, "Subject 'x' not found.", ErrNotFound},
		{"incompatible", 409, `{"error_code":409,"message":"incompatible"}`, 409, 409, "incompatible", ErrIncompatible},
		{"unauthorized", 401, `{"error_code":40101,"message":"no"}`, 40101, 401, "no", ErrUnauthorized},
		{"invalid", 422, `{"error_code":42201,"message":"bad schema"}`, 42201, 422, "bad schema", ErrInvalid},
		{"text body", 502, "bad gateway\n", 502, 502, "bad gateway", nil},
		{"empty body", 500, "", 500, 500, "Internal Server Error", nil},
		{"json without code", 503, `{"oops":true}`, 503, 503, `{"oops":true}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c, err := NewClient(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Subjects(context.Background())
			e := asRegistryError(t, err)
			if e.Code != tt.wantCode || e.Status != tt.wantStatus || e.Message != tt.wantMsg {
				t.Errorf("error = %+v, want code %d status %d message %q", e, tt.wantCode, tt.wantStatus, tt.wantMsg)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
		})
	}
}

func TestClient_RefusesBadAnswers(t *testing.T) {
	tests := []struct {
		name string
		body string
		call func(*Client) error
	}{
		{"not json", "<html>", func(c *Client) error { _, err := c.Subjects(context.Background()); return err }},
		{"no id", `{}`, func(c *Client) error {
			_, err := c.Register(context.Background(), "s", SchemaSpec{Text: `"string"`})
			return err
		}},
		{"negative id", `{"id":-4}`, func(c *Client) error {
			_, err := c.Register(context.Background(), "s", SchemaSpec{Text: `"string"`})
			return err
		}},
		{"bad level", `{"compatibilityLevel":"SIDEWAYS"}`, func(c *Client) error { _, err := c.Config(context.Background(), ""); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c, err := NewClient(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.call(c); err == nil {
				t.Error("succeeded, want an error")
			}
		})
	}
}

func TestClient_EscapesSubjectsInPaths(t *testing.T) {
	c, f := newTestClient(t)
	ctx := context.Background()
	for _, subject := range []string{"a/b", "a b?c#d", "ünï%2F"} {
		t.Run(subject, func(t *testing.T) {
			id, err := c.Register(ctx, subject, SchemaSpec{Text: avroUser})
			if err != nil {
				t.Fatal(err)
			}
			r, _ := f.lastRequest("POST /subjects/{subject}/versions")
			if got := r.PathValue("subject"); got != subject {
				t.Errorf("server saw subject %q, want %q (path %s)", got, subject, r.URL.EscapedPath())
			}
			latest, err := c.Latest(ctx, subject)
			if err != nil || latest.ID != id || latest.Subject != subject {
				t.Errorf("Latest = %+v, %v", latest, err)
			}
			if _, err := c.Versions(ctx, subject); err != nil {
				t.Error(err)
			}
			if err := c.SetConfig(ctx, subject, schema.Full); err != nil {
				t.Error(err)
			}
			if l, err := c.Config(ctx, subject); err != nil || l != schema.Full {
				t.Errorf("Config = %q, %v", l, err)
			}
		})
	}
	r, _ := f.lastRequest("GET /subjects/{subject}/versions/{version}")
	if !strings.Contains(r.URL.EscapedPath(), "%C3%BC") || !strings.Contains(r.URL.EscapedPath(), "%252F") {
		t.Errorf("escaped path %s", r.URL.EscapedPath())
	}
	subjects, err := c.Subjects(ctx)
	if err != nil || !slices.Contains(subjects, "a/b") {
		t.Errorf("Subjects = %v, %v", subjects, err)
	}
}

func TestClient_SendsCredentials(t *testing.T) {
	tests := []struct {
		name string
		opt  ClientOption
		want string
	}{
		{"token", WithToken("s3cret"), "Bearer s3cret"},
		{"basic", WithBasicAuth("ann", "pw"), "Basic YW5uOnB3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := newTestClient(t, tt.opt)
			if _, err := c.Subjects(context.Background()); err != nil {
				t.Fatal(err)
			}
			r, _ := f.lastRequest("GET /subjects")
			if got := r.Header.Get("Authorization"); got != tt.want {
				t.Errorf("Authorization = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestClient_ResolveFlattensReferences(t *testing.T) {
	c, f := newTestClient(t)
	ctx := context.Background()
	const (
		country = `{"type":"enum","name":"Country","namespace":"acme","symbols":["NL","FR"]}`
		address = `{"type":"record","name":"Address","namespace":"acme","fields":[{"name":"country","type":"acme.Country"}]}`
		order   = `{"type":"record","name":"Order","namespace":"acme","fields":[{"name":"ship","type":"acme.Address"},{"name":"bill","type":"acme.Address"}]}`
	)
	seedFake(t, f, "country", fakeSchema{Schema: country})
	seedFake(t, f, "address", fakeSchema{Schema: address, References: []Reference{{Name: "acme.Country", Subject: "country", Version: 1}}})
	id := seedFake(t, f, "order", fakeSchema{Schema: order, References: []Reference{
		{Name: "acme.Address", Subject: "address", Version: 1},
		{Name: "acme.Country", Subject: "country", Version: 1},
	}})
	for range 2 {
		r, err := c.SchemaByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.Resolve(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"acme.Address": address, "acme.Country": country}
		if s.Type != schema.Avro || s.Text != order || len(s.References) != 2 ||
			s.References["acme.Address"] != want["acme.Address"] || s.References["acme.Country"] != want["acme.Country"] {
			t.Errorf("Resolve = %+v", s)
		}
	}
	// Each referenced version was fetched once.
	if n := f.count("GET /subjects/{subject}/versions/{version}"); n != 2 {
		t.Errorf("version requests = %d, want 2", n)
	}
	refs, err := c.resolveRefs(ctx, []Reference{{Name: "acme.Address", Subject: "address", Version: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 2 || refs[0].name != "acme.Country" || refs[1].name != "acme.Address" {
		t.Errorf("resolveRefs order = %+v, want dependencies first", refs)
	}
}

func TestClient_ResolveRefusesBadReferences(t *testing.T) {
	c, f := newTestClient(t)
	ctx := context.Background()
	// The fake does not check references, so a cycle can be made.
	seedFake(t, f, "x", fakeSchema{Schema: `"string"`, References: []Reference{{Name: "y", Subject: "y", Version: 1}}})
	seedFake(t, f, "y", fakeSchema{Schema: `"int"`, References: []Reference{{Name: "x", Subject: "x", Version: 1}}})
	seedFake(t, f, "z", fakeSchema{Schema: `"long"`})
	seedFake(t, f, "w", fakeSchema{Schema: `"double"`})
	tests := []struct {
		name string
		refs []Reference
		want string
	}{
		{"cycle", []Reference{{Name: "x", Subject: "x", Version: 1}}, "cycle"},
		{"missing", []Reference{{Name: "q", Subject: "q", Version: 1}}, "not found"},
		{"one name, two schemas", []Reference{{Name: "n", Subject: "z", Version: 1}, {Name: "n", Subject: "w", Version: 1}}, "two different"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Resolve(ctx, Registered{Schema: `"string"`, References: tt.refs})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Resolve error = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := c.Resolve(ctx, Registered{SchemaType: "XML", Schema: "<a/>"}); !errors.Is(err, schema.ErrInvalidSchema) {
		t.Errorf("unknown type: %v", err)
	}
}
