package resiliencehttp_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/handoffhq/handoff/breaker"
	"github.com/handoffhq/handoff/resiliencehttp"
	"github.com/handoffhq/handoff/retry"
)

const fullConfig = `
default:
  timeout: 2s
  retry: {max_attempts: 2}
dependencies:
  payments:
    hosts: [payments.internal:8443]
    path_prefix: /v1
    timeout: 800ms
    retry:
      max_attempts: 3
      initial_backoff: 1ms
      max_backoff: 5ms
      multiplier: 2
      min_attempt_time: 1ms
      max_retry_after: 5s
      budget: {ratio: 0.1, max_tokens: 10, min_per_second: 1}
    breaker:
      window: count
      size: 20
      failure_rate: 50
      slow_call_threshold: 2s
      slow_call_rate: 80
      minimum_calls: 5
      open_duration: 30s
      half_open_probes: 2
    bulkhead: {max_concurrent: 20, max_queue: 10, max_wait: 100ms}
    throttle: {k: 2, window: 2m}
    hedge: {delay: 50ms, max_hedges: 1, percentile: 95}
    fallback: {cache_entries: 100, max_stale: 5m}
  inventory:
    breaker: {window: time, duration: 1m}
`

func TestLoadConfig_Valid(t *testing.T) {
	cfg, err := resiliencehttp.LoadConfig(strings.NewReader(fullConfig))
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Dependencies["payments"]
	if p.Retry.MaxAttempts != 3 || p.Retry.Budget.Ratio != 0.1 || p.Breaker.Size != 20 || p.Bulkhead.MaxWait.Milliseconds() != 100 ||
		p.Hedge.Percentile != 95 || p.Fallback.CacheEntries != 100 || p.Timeout.Milliseconds() != 800 {
		t.Fatalf("decoded %+v", p)
	}
	if _, err := cfg.Transport(nil); err != nil {
		t.Fatalf("Transport: %v", err)
	}
}

func TestLoadConfig_Errors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // every ConfigError, in order; or one substring of a decode error
	}{
		{"max attempts", "dependencies: {payments: {retry: {max_attempts: -1}}}",
			[]string{"dependencies.payments.retry.max_attempts: retry: MaxAttempts must be ≥ 1, or 0 for 3, got -1"}},
		{"negative timeout", "dependencies: {a: {timeout: -1s}}", []string{"dependencies.a.timeout: resilience: Timeout must be ≥ 0, got -1s"}},
		{"negative breaker settings", "dependencies: {a: {breaker: {minimum_calls: -1, half_open_probes: -2}}}", []string{
			"dependencies.a.breaker.half_open_probes: breaker: WithHalfOpenProbes: n must be in [1, 1048576], got -2",
			"dependencies.a.breaker.minimum_calls: breaker: WithMinimumCalls: n must be >= 1, got -1"}},
		// The rule that had drifted: the count window's cap is the breaker's own.
		{"count window over the cap", "dependencies: {a: {breaker: {size: 2000000}}}",
			[]string{"dependencies.a.breaker.size: breaker: WithCountWindow: size must be in [1, 1048576], got 2000000"}},
		{"minimum calls above the window", "dependencies: {a: {breaker: {size: 10, minimum_calls: 20}}}",
			[]string{"dependencies.a.breaker: breaker: WithMinimumCalls: n must not exceed the count window size"}},
		{"backoff order", "dependencies: {a: {retry: {max_attempts: 2, initial_backoff: 2s, max_backoff: 1s}}}",
			[]string{"dependencies.a.retry.max_backoff: retry: Backoff.Max 1s must be ≥ Initial 2s"}},
		{"multiplier", "dependencies: {a: {retry: {max_attempts: 2, multiplier: 0.5}}}",
			[]string{"dependencies.a.retry.multiplier: retry: Backoff.Multiplier must be ≥ 1 (or 0 for 2), got 0.5"}},
		{"budget ratio", "dependencies: {a: {retry: {max_attempts: 2, budget: {ratio: 11}}}}",
			[]string{"dependencies.a.retry.budget.ratio: retry: NewBudget: ratio must be in [0, 10], got 11"}},
		{"breaker window", "dependencies: {a: {breaker: {window: sliding}}}", []string{`dependencies.a.breaker.window: must be count or time, got "sliding"`}},
		{"time window needs duration", "dependencies: {a: {breaker: {window: time}}}",
			[]string{"dependencies.a.breaker.duration: breaker: WithTimeWindow: duration must be at least 10ms, got 0s"}},
		{"size with time window", "dependencies: {a: {breaker: {window: time, duration: 1m, size: 5}}}", []string{"dependencies.a.breaker.size: only applies to window: count"}},
		{"failure rate", "dependencies: {a: {breaker: {failure_rate: 150}}}",
			[]string{"dependencies.a.breaker.failure_rate: breaker: WithFailureRate: percent must be in (0, 100], got 150"}},
		{"slow calls pair", "dependencies: {a: {breaker: {slow_call_threshold: 1s}}}",
			[]string{"dependencies.a.breaker.slow_call_rate: breaker: WithSlowCalls: percent must be in (0, 100], got 0"}},
		{"bulkhead", "dependencies: {a: {bulkhead: {max_concurrent: 0, max_queue: -1}}}", []string{
			"dependencies.a.bulkhead.max_concurrent: bulkhead: New: maxConcurrent must be >= 1, got 0",
			"dependencies.a.bulkhead.max_queue: bulkhead: WithMaxQueue: n must be >= 0, got -1"}},
		{"throttle k", "dependencies: {a: {throttle: {k: 0.5}}}", []string{"dependencies.a.throttle.k: throttle: WithK: k must be in [1, 1000], got 0.5"}},
		{"hedge delay", "dependencies: {a: {hedge: {max_hedges: 1}}}", []string{"dependencies.a.hedge.delay: hedge: New: delay must be > 0, got 0s"}},
		{"hedge percentile", "dependencies: {a: {hedge: {delay: 1ms, percentile: 100}}}",
			[]string{"dependencies.a.hedge.percentile: hedge: WithPercentile: p must be in (0, 100), got 100"}},
		{"fallback", "dependencies: {a: {fallback: {cache_entries: 0, max_stale: 0s}}}", []string{
			"dependencies.a.fallback.cache_entries: fallback: WithCache: maxEntries must be >= 1, got 0",
			"dependencies.a.fallback.max_stale: fallback: WithCache: maxStale must be > 0, got 0s"}},
		{"bad host", "dependencies: {a: {hosts: [\"http://x\"]}}", []string{`dependencies.a.hosts[0]: must be a host or host:port, got "http://x"`}},
		{"path prefix", "dependencies: {a: {path_prefix: v1}}", []string{"dependencies.a.path_prefix: must start with /"}},
		{"duplicate route", "dependencies: {a: {hosts: [x]}, b: {hosts: [X]}}", []string{"dependencies.b.hosts: X is already routed to a"}},
		{"default with hosts", "default: {hosts: [x]}", []string{"default: must not set hosts or path_prefix (it applies to unmatched hosts)"}},
		{"empty dependency", "dependencies: {a: }", []string{"dependencies.a: must not be empty"}},
		{"errors sorted by path", "dependencies: {b: {timeout: -1s}, a: {retry: {max_attempts: -2}}}",
			[]string{"dependencies.a.retry.max_attempts: retry: MaxAttempts must be ≥ 1, or 0 for 3, got -2",
				"dependencies.b.timeout: resilience: Timeout must be ≥ 0, got -1s"}},
		{"unknown key", "dependencies: {a: {retries: {max_attempts: 2}}}", []string{"field retries not found"}},
		{"bad duration", "dependencies: {a: {timeout: soon}}", []string{"cannot unmarshal"}},
		{"empty", "", []string{"empty document"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := resiliencehttp.LoadConfig(strings.NewReader(tt.yaml))
			if !errors.Is(err, resiliencehttp.ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
			var got []string
			for _, e := range unjoin(err) {
				var ce *resiliencehttp.ConfigError
				if errors.As(e, &ce) {
					got = append(got, ce.Error())
				}
			}
			if got == nil { // a decode error: match a substring
				if !strings.Contains(err.Error(), tt.want[0]) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.want[0])
				}
				return
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestConfig_TransportRoutesByHostAndPrefix(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg, err := resiliencehttp.LoadConfig(strings.NewReader(`
default:
  retry: {max_attempts: 2, initial_backoff: 1ms}
dependencies:
  payments-v1:
    hosts: [pay.test]
    path_prefix: /v1
    retry: {max_attempts: 4, initial_backoff: 1ms}
    breaker: {minimum_calls: 4, size: 4}
  payments:
    hosts: [pay.test]
`))
		if err != nil {
			t.Fatal(err)
		}
		base := &fakeBase{answer: func(int, *http.Request) (*http.Response, error) { return respond(503, ""), nil }}
		tr, err := cfg.Transport(base)
		if err != nil {
			t.Fatal(err)
		}
		call := func(url string) int {
			before := base.Calls()
			req, _ := http.NewRequestWithContext(context.Background(), "GET", url, nil)
			resp, err := tr.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
			} else if !errors.Is(err, breaker.ErrOpen) {
				t.Fatal(err)
			}
			return base.Calls() - before
		}
		if n := call("http://pay.test/v1/charge"); n != 4 {
			t.Fatalf("/v1 made %d attempts, want 4 (payments-v1)", n)
		}
		if n := call("http://pay.test/v1/charge"); n != 0 {
			t.Fatalf("/v1 after 4 failures made %d attempts, want 0 (its breaker opened)", n)
		}
		if n := call("http://pay.test/v2/charge"); n != 1 {
			t.Fatalf("/v2 made %d attempts, want 1 (payments: no retry section)", n)
		}
		if n := call("http://other.test/"); n != 2 {
			t.Fatalf("unmatched host made %d attempts, want 2 (default)", n)
		}
	})
}

// Zero values agree everywhere: no retry section is one attempt; a retry
// section without max_attempts is retry.DefaultMaxAttempts, as in package
// retry and package resilience.
func TestConfig_ZeroValuesAgree(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg, err := resiliencehttp.LoadConfig(strings.NewReader(`
dependencies:
  once: {hosts: [once.test]}
  default-retries: {hosts: [retries.test], retry: {initial_backoff: 1ms}}
`))
		if err != nil {
			t.Fatal(err)
		}
		base := &fakeBase{answer: func(int, *http.Request) (*http.Response, error) { return respond(503, ""), nil }}
		tr, err := cfg.Transport(base)
		if err != nil {
			t.Fatal(err)
		}
		for host, want := range map[string]int{"once.test": 1, "retries.test": retry.DefaultMaxAttempts} {
			before := base.Calls()
			req, _ := http.NewRequest("GET", "http://"+host+"/x", nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := base.Calls() - before; got != want {
				t.Errorf("%s: %d attempts, want %d", host, got, want)
			}
		}
	})
}
