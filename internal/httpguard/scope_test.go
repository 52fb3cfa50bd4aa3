package httpguard

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseScope(t *testing.T) {
	for _, s := range []Scope{ScopeRead, ScopeWrite, ScopeAdmin} {
		got, err := ParseScope(s.String())
		if err != nil || got != s {
			t.Errorf("ParseScope(%q) = %v, %v", s, got, err)
		}
	}
	for _, bad := range []string{"", "Read", "none", "root"} {
		if _, err := ParseScope(bad); err == nil || !strings.Contains(err.Error(), "want read, write or admin") {
			t.Errorf("ParseScope(%q): %v, want an error naming the scopes", bad, err)
		}
	}
	if !(ScopeRead < ScopeWrite && ScopeWrite < ScopeAdmin) {
		t.Fatal("scopes are not ordered read < write < admin")
	}
}

func testTokens(t *testing.T) Tokens {
	t.Helper()
	var ts Tokens
	for _, st := range []ScopedToken{{Scope: ScopeRead, Token: "r3ad"}, {Scope: ScopeWrite, Token: "wr1te"},
		{Scope: ScopeAdmin, Token: "adm1n"}, {Scope: ScopeWrite, Token: "ci:pass"}} {
		if err := ts.Add(st.Scope, st.Token); err != nil {
			t.Fatal(err)
		}
	}
	return ts
}

// A token's scope includes the lower ones: a request needing scope N
// passes with a token of scope >= N, gets 403 naming N below, 401 without
// a token of the set.
func TestTokens_Refusal(t *testing.T) {
	ts := testTokens(t)
	basic := func(user, pass string) string {
		r := httptest.NewRequest("GET", "/", nil)
		r.SetBasicAuth(user, pass)
		return r.Header.Get("Authorization")
	}
	auths := []struct {
		name, header string
		scope        Scope
	}{
		{"none", "", 0},
		{"wrong", "Bearer nope", 0},
		{"prefix of a token", "Bearer adm1", 0},
		{"read", "Bearer r3ad", ScopeRead},
		{"write", "Bearer wr1te", ScopeWrite},
		{"admin", "bearer  adm1n ", ScopeAdmin},
		{"admin as basic password", basic("anyone", "adm1n"), ScopeAdmin},
		{"user:password whole", basic("ci", "pass"), ScopeWrite},
		{"bad basic", "Basic !!", 0},
	}
	for _, a := range auths {
		for _, need := range []Scope{ScopeRead, ScopeWrite, ScopeAdmin} {
			r := httptest.NewRequest("GET", "/", nil)
			if a.header != "" {
				r.Header.Set("Authorization", a.header)
			}
			if got := ts.ScopeOf(r); got != a.scope {
				t.Fatalf("%s: ScopeOf = %v, want %v", a.name, got, a.scope)
			}
			want := 0
			switch {
			case a.scope == 0:
				want = 401
			case a.scope < need:
				want = 403
			}
			st, msg := ts.Refusal(r, need)
			if st != want {
				t.Errorf("%s needing %s: %d %q, want %d", a.name, need, st, msg, want)
			}
			if st == 403 && !strings.Contains(msg, "the "+need.String()+" scope") {
				t.Errorf("%s needing %s: message %q does not name the scope needed", a.name, need, msg)
			}
		}
	}
}

func TestTokens_Add(t *testing.T) {
	ts := testTokens(t)
	if err := ts.Add(ScopeAdmin, "r3ad"); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("a token added twice: %v", err)
	}
	if err := ts.Add(ScopeRead, ""); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("an empty token: %v", err)
	}
	if err := ts.Add(0, "x"); err == nil {
		t.Error("the zero scope was accepted")
	}
	if ts.Len() != 4 {
		t.Errorf("Len = %d after refusals, want 4", ts.Len())
	}
	var none Tokens
	if none.ScopeOf(httptest.NewRequest("GET", "/", nil)) != 0 {
		t.Error("the empty set gave a scope")
	}
}

func TestParseTokenFile(t *testing.T) {
	cases := []struct {
		name, text string
		want       []ScopedToken
		err        string // in the error; "" for none
	}{
		{"scopes and comments", "# CI\nread:r1\n\n  write : w1  \n\tadmin:a:b\n# end\n",
			[]ScopedToken{{2, ScopeRead, "r1"}, {4, ScopeWrite, "w1"}, {5, ScopeAdmin, "a:b"}}, ""},
		{"CRLF", "read:r1\r\nadmin:a1\r\n", []ScopedToken{{1, ScopeRead, "r1"}, {2, ScopeAdmin, "a1"}}, ""},
		{"unknown scope", "read:r1\nroot:x\n", nil, `f.txt line 2: unknown scope "root": want read, write or admin`},
		{"upper-case scope", "ADMIN:x\n", nil, `line 1: unknown scope "ADMIN"`},
		{"no colon", "# c\nr1\n", nil, "line 2: want scope:token"},
		{"empty token", "write:   \n", nil, "line 1: token is empty"},
		{"empty scope", ":tok\n", nil, `line 1: unknown scope ""`},
		{"space in token", "write:a b\n", nil, "line 1: token has a space"},
		{"duplicate token", "read:t1\nwrite:t2\nadmin:t1\n", nil, "line 3: token given twice (first on line 1)"},
		{"duplicate, same scope", "read:t1\nread:t1\n", nil, "line 2: token given twice"},
		{"no tokens", "# nothing\n\n", nil, "no tokens"},
		{"empty file", "", nil, "no tokens"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseTokenFile("f.txt", strings.NewReader(c.text))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "f.txt") {
					t.Fatalf("err %v, want one naming f.txt and %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("token %d: %+v, want %+v", i, got[i], c.want[i])
				}
			}
		})
	}
}

func TestReadTokenFile_Mode(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		mode os.FileMode
		open bool
	}{{0o600, false}, {0o400, false}, {0o640, true}, {0o604, true}} {
		p := filepath.Join(dir, c.mode.String())
		if err := os.WriteFile(p, []byte("admin:x\n"), c.mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, c.mode) // past the umask
		toks, perm, err := ReadTokenFile(p)
		if err != nil || len(toks) != 1 || perm != c.mode || GroupOrOthersRead(perm) != c.open {
			t.Errorf("mode %v: %v %v %v, want open=%v", c.mode, toks, perm, err, c.open)
		}
	}
	if _, _, err := ReadTokenFile(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "token file") {
		t.Errorf("missing file: %v", err)
	}
}
