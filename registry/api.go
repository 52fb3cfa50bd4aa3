package registry

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/handoffhq/handoff/registry/registrystore"
)

// Reference names another registered schema that a schema uses: Name is
// how the schema's text refers to it (a JSON Schema $ref URL, an Avro full
// type name, a Protobuf import path).
type Reference = registrystore.Reference

// Registered is a schema as the registry's API returns it. SchemaType is
// empty for AVRO, as in Confluent's API. Metadata and RuleSet are kept as
// given and returned unchanged. GUID is the schema's id in Confluent
// Platform 8's GUID form (handoff derives it from the schema's content).
type Registered struct {
	Subject    string          `json:"subject,omitempty"`
	Version    int             `json:"version,omitempty"`
	ID         int             `json:"id,omitempty"`
	GUID       string          `json:"guid,omitempty"`
	SchemaType string          `json:"schemaType,omitempty"`
	Schema     string          `json:"schema"`
	References []Reference     `json:"references,omitempty"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
	RuleSet    json.RawMessage `json:"ruleSet,omitempty"`
}

// CompatibilityResult is the body of a compatibility check. Messages (with
// verbose=true) has one line per violation.
type CompatibilityResult struct {
	IsCompatible bool     `json:"is_compatible"`
	Messages     []string `json:"messages,omitempty"`
}

// Error codes, as in Confluent's registry. An HTTP status is the code's first
// three digits.
const (
	CodeUnauthorized                = 40101
	CodeForbidden                   = 40301
	CodeSubjectNotFound             = 40401
	CodeVersionNotFound             = 40402
	CodeSchemaNotFound              = 40403
	CodeSubjectSoftDeleted          = 40404
	CodeSubjectNotSoftDeleted       = 40405
	CodeSchemaVersionSoftDeleted    = 40406
	CodeSchemaVersionNotSoftDeleted = 40407
	CodeSubjectCompatibilityNotSet  = 40408
	CodeSubjectModeNotSet           = 40409
	CodeIncompatibleSchema          = 409
	CodeInvalidSchema               = 42201
	CodeInvalidVersion              = 42202
	CodeInvalidCompatibilityLevel   = 42203
	CodeInvalidMode                 = 42204
	CodeOperationNotPermitted       = 42205
	CodeReferenceExists             = 42206
	CodeInvalidSubject              = 42208
	// CodeTooManyRequests (handoff's own, HTTP 429) answers a request
	// that finds every parse slot taken; the answer has Retry-After.
	CodeTooManyRequests         = 42901
	CodeBackendStore            = 50001
	CodeOperationTimeout        = 50002
	CodeRequestForwardingFailed = 50003
)

// Error is the registry's error: the body {"error_code": 40401,
// "message": "..."} and the HTTP status it came with.
type Error struct {
	Code    int    `json:"error_code"`
	Message string `json:"message"`
	Status  int    `json:"-"`

	retryAfter int // seconds, for the Retry-After header
}

func (e *Error) Error() string {
	return fmt.Sprintf("registry: %s (error_code %d)", e.Message, e.Code)
}

// HTTPStatus is the HTTP status for the error's code.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	c := e.Code
	for c >= 1000 {
		c /= 10
	}
	return c
}

// Sentinels matched by errors.Is against an *Error's code.
var (
	ErrNotFound     = errors.New("registry: not found")
	ErrIncompatible = errors.New("registry: schema is incompatible")
	ErrInvalid      = errors.New("registry: invalid request")
	ErrUnauthorized = errors.New("registry: unauthorized")
)

// Is matches the sentinels: ErrNotFound for every 404xx, ErrIncompatible
// for 409, ErrInvalid for every 422xx, ErrUnauthorized for 401xx and 403xx.
func (e *Error) Is(target error) bool {
	s := e.HTTPStatus()
	switch target {
	case ErrNotFound:
		return s == 404
	case ErrIncompatible:
		return s == 409
	case ErrInvalid:
		return s == 422
	case ErrUnauthorized:
		return s == 401 || s == 403
	}
	return false
}
