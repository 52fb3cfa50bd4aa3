package httpguard

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestGuard(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	cases := []struct {
		name   string
		g      Guard
		method string
		host   string
		hdr    map[string]string
		want   int
	}{
		{"loopback host", Guard{Hosts: LoopbackHosts}, "GET", "127.0.0.1:8080", nil, 200},
		{"localhost", Guard{Hosts: LoopbackHosts}, "POST", "localhost:8080", map[string]string{"Content-Type": "application/json"}, 200},
		{"IPv6 loopback", Guard{Hosts: LoopbackHosts}, "GET", "[::1]:8080", nil, 200},
		{"rebound DNS name", Guard{Hosts: LoopbackHosts}, "GET", "attacker.example:8080", nil, 421},
		{"foreign Origin on a write", Guard{}, "POST", "127.0.0.1:8080", map[string]string{"Origin": "https://attacker.example", "Content-Type": "application/json"}, 403},
		{"own Origin on a write", Guard{}, "POST", "127.0.0.1:8080", map[string]string{"Origin": "http://127.0.0.1:8080", "Content-Type": "application/json"}, 200},
		{"null Origin", Guard{}, "PUT", "127.0.0.1:8080", map[string]string{"Origin": "null"}, 403},
		{"Sec-Fetch-Site cross-site", Guard{}, "DELETE", "127.0.0.1:8080", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"foreign Origin on a read", Guard{}, "GET", "127.0.0.1:8080", map[string]string{"Origin": "https://attacker.example"}, 200},
		{"text/plain write", Guard{}, "POST", "127.0.0.1:8080", map[string]string{"Content-Type": "text/plain"}, 415},
		{"form write", Guard{}, "POST", "127.0.0.1:8080", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415},
		{"registry content type", Guard{}, "POST", "127.0.0.1:8080", map[string]string{"Content-Type": "application/vnd.schemaregistry.v1+json"}, 200},
		{"no token", Guard{Token: "s3cret"}, "GET", "h", nil, 401},
		{"wrong token", Guard{Token: "s3cret"}, "GET", "h", map[string]string{"Authorization": "Bearer s3cre"}, 401},
		{"bearer token", Guard{Token: "s3cret"}, "POST", "h", map[string]string{"Authorization": "Bearer s3cret"}, 200},
		{"basic auth password", Guard{Token: "s3cret"}, "POST", "h", map[string]string{"Authorization": "Basic dTpzM2NyZXQ="}, 200},
		{"open reads", Guard{Token: "s3cret", OpenReads: true}, "GET", "h", nil, 200},
		{"open reads, write", Guard{Token: "s3cret", OpenReads: true}, "POST", "h", nil, 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(c.method, "/x", strings.NewReader("{}"))
			r.Host = c.host
			for k, v := range c.hdr {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			c.g.Wrap(ok).ServeHTTP(w, r)
			if w.Code != c.want {
				t.Fatalf("status %d, want %d: %s", w.Code, c.want, w.Body)
			}
			if c.want != 200 && !strings.Contains(w.Body.String(), `"error_code"`) {
				t.Fatalf("refusal not in the error shape: %s", w.Body)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "localhost:1": true, "[::1]:80": true,
		"0.0.0.0:8080": false, ":8080": false, "192.168.1.2:80": false, "[::]:80": false,
	} {
		if IsLoopback(addr) != want {
			t.Errorf("IsLoopback(%q) = %v", addr, !want)
		}
	}
}

// serve runs NewServer(h, t) on a loopback port and returns its address.
func serve(t *testing.T, h http.Handler, to Timeouts) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(h, to)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// waitClosed reads conn until the server closes it; the generous deadline
// only keeps a broken server from hanging the test.
func waitClosed(t *testing.T, conn net.Conn) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("the server kept the connection: %v", err)
	}
}

// A client that sends its body slowly, or never, loses the connection at
// the read timeout.
func TestNewServer_ClosesSlowBody(t *testing.T) {
	errc := make(chan error, 1)
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		errc <- err
	}), Timeouts{Read: 200 * time.Millisecond})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
	waitClosed(t, conn)
	var ne net.Error
	if err := <-errc; !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("the handler read %v, want a timeout", err)
	}
}

// An idle keep-alive connection is closed at the idle timeout.
func TestNewServer_ClosesIdleKeepAlive(t *testing.T) {
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		Timeouts{Idle: 200 * time.Millisecond})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("first request: %v %v", resp, err)
	}
	io.ReadAll(resp.Body)
	if resp.Close {
		t.Fatal("the server closed after the answer, not after idling")
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Fatalf("idle connection: %q %v, want EOF", rest, err)
	}
}

func TestNewServer_Defaults(t *testing.T) {
	s := NewServer(http.NotFoundHandler(), Timeouts{Write: -1})
	if s.ReadHeaderTimeout == 0 || s.ReadTimeout == 0 || s.IdleTimeout == 0 || s.MaxHeaderBytes == 0 || s.WriteTimeout != 0 {
		t.Fatalf("%+v", s)
	}
}

// A guard with scoped tokens asks Need for each request's scope: 401
// without a token of the set, 403 with one whose scope is too low.
func TestGuard_ScopedTokens(t *testing.T) {
	var ts Tokens
	for _, st := range []struct {
		s   Scope
		tok string
	}{{ScopeRead, "r"}, {ScopeWrite, "w"}, {ScopeAdmin, "a"}} {
		if err := ts.Add(st.s, st.tok); err != nil {
			t.Fatal(err)
		}
	}
	g := Guard{Scoped: ts, Need: func(r *http.Request) Scope {
		if r.Method == http.MethodDelete {
			return ScopeAdmin
		}
		if r.Method == http.MethodGet {
			return ScopeRead
		}
		return ScopeWrite
	}}
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for _, c := range []struct {
		method, tok string
		want        int
	}{
		{"GET", "", 401}, {"GET", "x", 401}, {"GET", "r", 200},
		{"POST", "r", 403}, {"POST", "w", 200}, {"POST", "a", 200},
		{"DELETE", "w", 403}, {"DELETE", "a", 200},
	} {
		req := httptest.NewRequest(c.method, "http://h/x", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		if c.tok != "" {
			req.Header.Set("Authorization", "Bearer "+c.tok)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s with token %q: %d %s, want %d", c.method, c.tok, rec.Code, rec.Body, c.want)
		}
	}
}
