package dlq_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/handoffhq/handoff/dlq"
)

func serve(t *testing.T, q *dlq.Queue, opts ...dlq.HandlerOption) *httptest.Server {
	t.Helper()
	h, err := dlq.NewHandler(q, opts...)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/dead-letters/", http.StripPrefix("/dead-letters", h))
	mux.Handle("/dead-letters", http.StripPrefix("/dead-letters", h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func call(t *testing.T, method, u, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(b)
}

// The list is the CLI's JSON ([] when empty), filtered, paged with a Link
// header that a client follows to the end; a bad parameter gets 400 naming it.
func TestHandler_ListsFiltersAndPages(t *testing.T) {
	q, _ := newQueue(t)
	srv := serve(t, q)
	base := srv.URL + "/dead-letters"
	if res, body := call(t, "GET", base, ""); res.StatusCode != 200 || strings.TrimSpace(body) != "[]" {
		t.Fatalf("empty list: %d %q, want 200 []", res.StatusCode, body)
	}
	var want []string
	for i := range 7 {
		l := letter("billing")
		if i%2 == 1 {
			l = letter("shipping")
		}
		mustAdd(t, q, l)
		if l.Consumer == "billing" {
			want = append(want, l.ID)
		}
	}
	var got []string
	next, pages := base+"?consumer=billing&limit=2", 0
	for next != "" {
		res, body := call(t, "GET", next, "")
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("GET %s: %d %s", next, res.StatusCode, body)
		}
		var ls []*dlq.Letter
		if err := json.Unmarshal([]byte(body), &ls); err != nil {
			t.Fatalf("page %s: %v", body, err)
		}
		for _, l := range ls {
			got = append(got, l.ID)
		}
		pages++
		next = ""
		if link := res.Header.Get("Link"); link != "" {
			ref := strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
			u, _ := url.Parse(res.Request.URL.String())
			n, err := u.Parse(ref)
			if err != nil {
				t.Fatalf("Link %q: %v", link, err)
			}
			next = n.String()
		}
		if pages > 10 {
			t.Fatal("paging does not end")
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || pages != 3 {
		t.Fatalf("paged %v in %d pages, want %v in 3", got, pages, want)
	}
	for _, bad := range []string{"state=closed", "since=yesterday", "limit=-1", "limit=5000"} {
		res, body := call(t, "GET", base+"?"+bad, "")
		name, _, _ := strings.Cut(bad, "=")
		if res.StatusCode != 400 || !strings.Contains(body, name) {
			t.Errorf("GET ?%s: %d %s, want 400 naming %s", bad, res.StatusCode, body, name)
		}
	}
	res, body := call(t, "GET", base+"/"+want[0], "")
	var one dlq.Letter
	if err := json.Unmarshal([]byte(body), &one); res.StatusCode != 200 || err != nil || one.ID != want[0] {
		t.Fatalf("GET one: %d %s %v", res.StatusCode, body, err)
	}
	if res, _ := call(t, "GET", base+"/nope", ""); res.StatusCode != 404 {
		t.Errorf("GET missing: %d, want 404", res.StatusCode)
	}
	if res, _ := call(t, "DELETE", base+"/"+want[0], ""); res.StatusCode != 405 {
		t.Errorf("DELETE without WithWrites: %d, want 405", res.StatusCode)
	}
}

// With WithWrites: edit, replay (to the letter's group) and delete.
func TestHandler_WritesEditReplayDelete(t *testing.T) {
	q, _ := newQueue(t)
	pub := &flakyPublisher{}
	srv := serve(t, q, dlq.WithWrites(pub))
	base := srv.URL + "/dead-letters/"
	a, b := letter("billing"), letter("billing")
	mustAdd(t, q, a)
	mustAdd(t, q, b)
	if res, body := call(t, "PUT", base+a.ID+"/data", `{"order":`); res.StatusCode != 422 || !strings.Contains(body, "data") {
		t.Fatalf("PUT invalid JSON: %d %s, want 422", res.StatusCode, body)
	}
	if res, body := call(t, "PUT", base+a.ID+"/data", `{"order":8}`); res.StatusCode != 200 || !strings.Contains(body, `"order":8`) {
		t.Fatalf("PUT data: %d %s", res.StatusCode, body)
	}
	if res, body := call(t, "POST", base+a.ID+"/replay", ""); res.StatusCode != 200 || !strings.Contains(body, `"state":"replayed"`) {
		t.Fatalf("POST replay: %d %s", res.StatusCode, body)
	}
	if len(pub.group) != 1 || pub.group[0] != "billing" || string(pub.msgs[0].Data) != `{"order":8}` {
		t.Fatalf("replay sent %v to groups %v", pub.msgs, pub.group)
	}
	if res, _ := call(t, "POST", base+a.ID+"/replay", ""); res.StatusCode != 409 {
		t.Errorf("second replay: %d, want 409", res.StatusCode)
	}
	if res, _ := call(t, "DELETE", base+b.ID, ""); res.StatusCode != 204 {
		t.Errorf("DELETE: %d, want 204", res.StatusCode)
	}
	if _, err := q.Get(context.Background(), b.ID); err == nil {
		t.Error("letter still there after DELETE")
	}
}
