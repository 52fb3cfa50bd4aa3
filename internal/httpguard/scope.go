package httpguard

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"unicode"
)

// Scope is what a token may do. Each scope includes those below it:
// admin ⊇ write ⊇ read. The zero Scope is no scope at all (no valid
// token). Which scope a request needs is the server's to say, in its
// route table.
type Scope uint8

// The scopes, lowest first.
const (
	ScopeRead Scope = iota + 1
	ScopeWrite
	ScopeAdmin
)

// String returns "read", "write", "admin", or "none" for the zero Scope.
func (s Scope) String() string {
	switch s {
	case ScopeRead:
		return "read"
	case ScopeWrite:
		return "write"
	case ScopeAdmin:
		return "admin"
	case 0:
		return "none"
	}
	return fmt.Sprintf("Scope(%d)", uint8(s))
}

// ParseScope reads a scope's name: read, write or admin.
func ParseScope(name string) (Scope, error) {
	switch name {
	case "read":
		return ScopeRead, nil
	case "write":
		return ScopeWrite, nil
	case "admin":
		return ScopeAdmin, nil
	}
	return 0, fmt.Errorf("unknown scope %q: want read, write or admin", name)
}

// Tokens is a set of tokens, each with a scope. Only each token's SHA-256
// is kept, and a request's token is compared with every one in constant
// time. The zero Tokens holds none.
type Tokens struct {
	sums   [][32]byte
	scopes []Scope
}

// Add adds token with scope. The token must not be empty or be in the set
// already (under any scope).
func (ts *Tokens) Add(scope Scope, token string) error {
	if scope < ScopeRead || scope > ScopeAdmin {
		return fmt.Errorf("scope %v: want read, write or admin", scope)
	}
	if token == "" {
		return errors.New("token is empty")
	}
	sum := sha256.Sum256([]byte(token))
	for i, s := range ts.sums {
		if s == sum {
			return fmt.Errorf("token given twice (already with the %s scope)", ts.scopes[i])
		}
	}
	ts.sums = append(ts.sums, sum)
	ts.scopes = append(ts.scopes, scope)
	return nil
}

func checkToken(token string) error {
	if token == "" {
		return errors.New("token is empty")
	}
	if strings.IndexFunc(token, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return errors.New("token has a space or control character")
	}
	return nil
}

// Len is the number of tokens in the set.
func (ts Tokens) Len() int { return len(ts.sums) }

// ScopeOf returns the scope of the token r presents (as a bearer token, as
// the password of basic auth, or as basic auth's "user:password" whole),
// or the zero Scope when it presents none of the set. Every token of the
// set is compared, each in constant time.
func (ts Tokens) ScopeOf(r *http.Request) Scope {
	best := 0
	for _, g := range presented(r) {
		h := sha256.Sum256([]byte(g))
		for i := range ts.sums {
			eq := subtle.ConstantTimeCompare(h[:], ts.sums[i][:])
			sc := int(ts.scopes[i])
			higher := subtle.ConstantTimeLessOrEq(best+1, sc)
			best = subtle.ConstantTimeSelect(eq&higher, sc, best)
		}
	}
	return Scope(best)
}

// Refusal says why r may not use a route that needs scope need: 401 when
// it presents no token of the set, 403 when its token's scope is too low;
// 0 when it may. The message names the scope needed.
func (ts Tokens) Refusal(r *http.Request, need Scope) (status int, message string) {
	have := ts.ScopeOf(r)
	switch {
	case have == 0:
		return http.StatusUnauthorized, "a valid token is required"
	case have < need:
		return http.StatusForbidden, fmt.Sprintf("this request needs a token with the %s scope; the token given has the %s scope", need, have)
	}
	return 0, ""
}

// ScopedToken is one line of a token file.
type ScopedToken struct {
	Line  int
	Scope Scope
	Token string
}

// ParseTokenFile reads a token file: one "scope:token" a line (scope read,
// write or admin; the token is the rest of the line), blank lines and
// lines starting with # ignored, spaces around scope and token trimmed.
// A bad line is an error naming the file (name), the line and the rule:
// an unknown scope, an empty token, a token with spaces, a token given
// twice. A file without tokens is an error too.
func ParseTokenFile(name string, r io.Reader) ([]ScopedToken, error) {
	var out []ScopedToken
	seen := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fail := func(format string, args ...any) error {
			return fmt.Errorf("token file %s line %d: %s", name, n, fmt.Sprintf(format, args...))
		}
		scope, tok, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fail("want scope:token (scope read, write or admin)")
		}
		s, err := ParseScope(strings.TrimSpace(scope))
		if err != nil {
			return nil, fail("%v", err)
		}
		tok = strings.TrimSpace(tok)
		if err := checkToken(tok); err != nil {
			return nil, fail("%v", err)
		}
		if prev, dup := seen[tok]; dup {
			return nil, fail("token given twice (first on line %d)", prev)
		}
		seen[tok] = n
		out = append(out, ScopedToken{Line: n, Scope: s, Token: tok})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("token file %s: %w", name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("token file %s: no tokens: want lines of scope:token", name)
	}
	return out, nil
}

// ReadTokenFile reads the token file at path, as ParseTokenFile does, and
// returns its permission bits too: a caller should warn when its group
// or others may read it (GroupOrOthersRead), the tokens being secrets.
func ReadTokenFile(path string) ([]ScopedToken, os.FileMode, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("token file: %w", err)
	}
	toks, err := ParseTokenFile(path, f)
	return toks, fi.Mode().Perm(), err
}

// GroupOrOthersRead reports whether perm lets a file's group or others
// read it.
func GroupOrOthersRead(perm os.FileMode) bool { return perm&0o044 != 0 }

// presented returns the secrets r's Authorization header carries: a
// bearer token, or basic auth's password and its "user:password" whole.
func presented(r *http.Request) []string {
	auth := r.Header.Get("Authorization")
	switch {
	case len(auth) > 7 && strings.EqualFold(auth[:7], "bearer "):
		return []string{strings.TrimSpace(auth[7:])}
	case len(auth) > 6 && strings.EqualFold(auth[:6], "basic "):
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(auth[6:]))
		if err != nil {
			return nil
		}
		user, pass, _ := strings.Cut(string(raw), ":")
		return []string{pass, user + ":" + pass}
	}
	return nil
}
