// Package httpguard is what every HTTP server of the handoff binary shares
// against hostile clients: one server constructor with timeouts on every
// phase of a connection, and one guard in front of the handlers that
// refuses requests a browser on another site could make (DNS rebinding,
// cross-site writes) and checks a token in constant time; and scoped
// tokens (read ⊆ write ⊆ admin) read from a token file, for servers whose
// route table says which scope each route needs.
package httpguard

import (
	"encoding/json"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Timeouts bounds each phase of a connection. A zero field takes its
// default; a negative one turns it off.
type Timeouts struct {
	// ReadHeader: the request line and headers (default 5 s).
	ReadHeader time.Duration
	// Read: the whole request, body included (default 30 s): a body sent
	// a byte at a time cannot hold a connection longer.
	Read time.Duration
	// Write: from the end of the request headers to the end of the answer
	// (default 60 s). Turn it off for a server that streams answers.
	Write time.Duration
	// Idle: a keep-alive connection between requests (default 60 s).
	Idle time.Duration
	// MaxHeaderBytes bounds the request headers (default 64 KiB).
	MaxHeaderBytes int
}

func pick(v, def time.Duration) time.Duration {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// NewServer returns an http.Server for h with every timeout of t set.
func NewServer(h http.Handler, t Timeouts) *http.Server {
	mh := t.MaxHeaderBytes
	if mh <= 0 {
		mh = 64 << 10
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: pick(t.ReadHeader, 5*time.Second),
		ReadTimeout:       pick(t.Read, 30*time.Second),
		WriteTimeout:      pick(t.Write, 60*time.Second),
		IdleTimeout:       pick(t.Idle, 60*time.Second),
		MaxHeaderBytes:    mh,
	}
}

// Guard checks every request before its handler sees it.
type Guard struct {
	// Hosts, when not empty, are the host names (without port) a request's
	// Host header may carry: a server bound to loopback refuses any other,
	// so a page whose DNS name is rebound to 127.0.0.1 cannot reach it.
	Hosts []string
	// Token, when set, is needed by every request (by writes only with
	// OpenReads), as "Authorization: Bearer <token>" or the password of
	// HTTP basic auth. It is compared in constant time.
	Token string
	// OpenReads lets GET and HEAD requests through without the token.
	OpenReads bool
	// Scoped, when it holds tokens, replaces Token: a request needs a
	// token of the set whose scope covers Need's answer for it (401
	// without one, 403 when its scope is too low).
	Scoped Tokens
	// Need says which scope a request needs; nil: read for GET, HEAD and
	// OPTIONS, write for the rest.
	Need func(*http.Request) Scope
}

// LoopbackHosts are the names a loopback server answers to.
var LoopbackHosts = []string{"localhost", "127.0.0.1", "::1"}

// IsLoopback reports whether a listen address binds loopback only.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Wrap returns h behind the guard. Refusals are JSON in the registry's
// error shape ({"error_code": ..., "message": ...}), so Confluent clients
// read them: 421 for a foreign Host, 403 for a cross-site write, 415 for a
// write whose body is not JSON, 401 without the token.
func (g Guard) Wrap(h http.Handler) http.Handler {
	tok := NewToken(g.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(g.Hosts) > 0 && !g.hostAllowed(r.Host) {
			refuse(w, http.StatusMisdirectedRequest, 42101, fmt.Sprintf("Host %q is not this server's: it answers to %s", r.Host, strings.Join(g.Hosts, ", ")))
			return
		}
		safe := r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions
		if !safe {
			if why := crossSite(r); why != "" {
				refuse(w, http.StatusForbidden, 40302, "Cross-site request refused: "+why)
				return
			}
			if why := notJSON(r); why != "" {
				refuse(w, http.StatusUnsupportedMediaType, 41501, why)
				return
			}
		}
		if g.Scoped.Len() > 0 {
			if !(safe && g.OpenReads) {
				need := ScopeWrite
				if safe {
					need = ScopeRead
				}
				if g.Need != nil {
					need = g.Need(r)
				}
				switch st, msg := g.Scoped.Refusal(r, need); st {
				case http.StatusUnauthorized:
					w.Header().Set("WWW-Authenticate", `Bearer realm="handoff"`)
					refuse(w, st, 40101, "Unauthorized: "+msg)
					return
				case http.StatusForbidden:
					refuse(w, st, 40301, "Forbidden: "+msg)
					return
				}
			}
		} else if g.Token != "" && !(safe && g.OpenReads) && !tok.PresentedBy(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="handoff"`)
			refuse(w, http.StatusUnauthorized, 40101, "Unauthorized: a valid token is required")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (g Guard) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	for _, a := range g.Hosts {
		if strings.EqualFold(a, host) {
			return true
		}
	}
	return false
}

// crossSite says why a write comes from another site: an Origin header
// whose host is not the request's, or the browser's Sec-Fetch-Site.
func crossSite(r *http.Request) string {
	if s := r.Header.Get("Sec-Fetch-Site"); s == "cross-site" || s == "same-site" {
		return "Sec-Fetch-Site is " + s
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return ""
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
		return fmt.Sprintf("Origin %q is not this server (%s)", o, r.Host)
	}
	return ""
}

// notJSON refuses a body with a content type a browser may send to
// another site without asking first (text/plain, forms): the endpoints
// take JSON only.
func notJSON(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return ""
	}
	return fmt.Sprintf("Content-Type %q refused: send JSON (application/json)", ct)
}

func refuse(w http.ResponseWriter, status, code int, msg string) {
	b, _ := json.Marshal(struct {
		Code    int    `json:"error_code"`
		Message string `json:"message"`
	}{code, msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}
