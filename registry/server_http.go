package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
)

// --- replies, errors and request values ---

func reply(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, err = w.Write(b)
	return err
}

func writeErr(w http.ResponseWriter, e *Error) {
	b, _ := json.Marshal(e)
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(e.HTTPStatus())
	w.Write(b)
}

func errf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// decode reads a JSON body; unknown fields are accepted (and ignored, or
// kept where the API round-trips them).
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &Error{Code: 413, Status: 413, Message: fmt.Sprintf("request body larger than %d bytes", mbe.Limit)}
		}
		return &Error{Code: 400, Status: 400, Message: "malformed JSON body: " + err.Error()}
	}
	if dec.More() {
		return &Error{Code: 400, Status: 400, Message: "malformed JSON body: more than one JSON value"}
	}
	return nil
}

func queryBool(r *http.Request, name string) bool {
	v, _ := strconv.ParseBool(r.URL.Query().Get(name))
	return v
}

// parseID reads a schema id path segment.
func parseID(s string) (int, error) {
	id, err := strconv.Atoi(s)
	if err != nil || id < 0 || id > math.MaxInt32 {
		return 0, errf(CodeSchemaNotFound, "Schema %s not found", s)
	}
	return id, nil
}

// parseVersion reads a version: "latest", -1 (latest) or 1..2^31-1. It
// returns -1 for latest.
func parseVersion(s string) (int, error) {
	if s == "latest" || s == "-1" {
		return -1, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 || v > math.MaxInt32 {
		return 0, errf(CodeInvalidVersion, "The specified version '%s' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"", s)
	}
	return v, nil
}
