// Package timeparam reads the time bounds of the HTTP APIs' list filters
// (dead letters, sagas): an RFC 3339 time, or a duration back from now.
package timeparam

import (
	"fmt"
	"time"
)

// Parse reads s, the value of query parameter name: "" is the zero time
// (no bound), a duration such as 1h is now minus it, anything else must be
// an RFC 3339 time. Errors name the parameter and the rule.
func Parse(name, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%s: duration %q must not be negative", name, s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %q must be an RFC 3339 time or a duration back from now such as 1h", name, s)
	}
	return t, nil
}
