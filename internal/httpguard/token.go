package httpguard

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
)

// Token is a secret a request presents as "Authorization: Bearer <token>"
// or as the password of HTTP basic auth (what Confluent's and Pact's
// clients send). Only its SHA-256 is kept, and it is compared in constant
// time. The zero Token is unset and matches nothing.
type Token struct {
	sum [32]byte
	set bool
}

// NewToken returns the token s; an empty s is the unset Token.
func NewToken(s string) Token {
	if s == "" {
		return Token{}
	}
	return Token{sum: sha256.Sum256([]byte(s)), set: true}
}

// IsSet reports whether the token is set.
func (t Token) IsSet() bool { return t.set }

// PresentedBy reports whether r carries the token: as a bearer token, as
// the password of basic auth, or as basic auth's "user:password" whole.
func (t Token) PresentedBy(r *http.Request) bool {
	if !t.set {
		return false
	}
	given := presented(r)
	ok := false
	for _, g := range given {
		h := sha256.Sum256([]byte(g))
		ok = subtle.ConstantTimeCompare(h[:], t.sum[:]) == 1 || ok
	}
	return ok
}
