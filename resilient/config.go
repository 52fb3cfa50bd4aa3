package resilient

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/handoffhq/handoff/breaker"
	"github.com/handoffhq/handoff/bulkhead"
	"github.com/handoffhq/handoff/fallback"
	"github.com/handoffhq/handoff/hedge"
	"github.com/handoffhq/handoff/retry"
	"github.com/handoffhq/handoff/throttle"
	"gopkg.in/yaml.v3"
)

// Config declares the policy of each dependency, usually loaded from YAML
// with [LoadConfig]:
//
//	default:                  # optional: hosts no dependency matches (one state per host)
//	  timeout: 2s
//	dependencies:
//	  payments:
//	    hosts: [payments.internal:8443]   # default: the dependency's name
//	    path_prefix: /v1                  # optional
//	    timeout: 800ms                    # per-try timeout
//	    retry:
//	      max_attempts: 3
//	      initial_backoff: 50ms
//	      max_backoff: 1s
//	      multiplier: 2
//	      min_attempt_time: 100ms
//	      max_retry_after: 5s
//	      budget: {ratio: 0.1, max_tokens: 10, min_per_second: 1}
//	    breaker:
//	      window: count        # or time
//	      size: 100            # count window
//	      duration: 1m         # time window
//	      failure_rate: 50
//	      slow_call_threshold: 2s
//	      slow_call_rate: 80
//	      minimum_calls: 20
//	      open_duration: 30s
//	      half_open_probes: 3
//	    bulkhead: {max_concurrent: 20, max_queue: 10, max_wait: 100ms}
//	    throttle: {k: 2, window: 2m}
//	    hedge: {delay: 50ms, max_hedges: 1, percentile: 95}
//	    fallback: {cache_entries: 1000, max_stale: 5m}
type Config struct {
	Default      *DependencyConfig            `yaml:"default"`
	Dependencies map[string]*DependencyConfig `yaml:"dependencies"`
}

// DependencyConfig is the policy of one dependency. A nil section is off.
type DependencyConfig struct {
	Hosts      []string        `yaml:"hosts"`
	PathPrefix string          `yaml:"path_prefix"`
	Timeout    time.Duration   `yaml:"timeout"`
	Retry      *RetryConfig    `yaml:"retry"`
	Breaker    *BreakerConfig  `yaml:"breaker"`
	Bulkhead   *BulkheadConfig `yaml:"bulkhead"`
	Throttle   *ThrottleConfig `yaml:"throttle"`
	Hedge      *HedgeConfig    `yaml:"hedge"`
	Fallback   *FallbackConfig `yaml:"fallback"`
}

// RetryConfig configures [retry.Policy]. Without a retry section a
// dependency gets one attempt.
type RetryConfig struct {
	MaxAttempts    int           `yaml:"max_attempts"`
	InitialBackoff time.Duration `yaml:"initial_backoff"`
	MaxBackoff     time.Duration `yaml:"max_backoff"`
	Multiplier     float64       `yaml:"multiplier"`
	MinAttemptTime time.Duration `yaml:"min_attempt_time"`
	MaxRetryAfter  time.Duration `yaml:"max_retry_after"`
	Budget         *BudgetConfig `yaml:"budget"`
}

// BudgetConfig configures [retry.Budget].
type BudgetConfig struct {
	Ratio        float64 `yaml:"ratio"`
	MaxTokens    int     `yaml:"max_tokens"`
	MinPerSecond float64 `yaml:"min_per_second"`
}

// BreakerConfig configures [breaker.Breaker]; zero fields keep its defaults.
type BreakerConfig struct {
	Window            string        `yaml:"window"`
	Size              int           `yaml:"size"`
	Duration          time.Duration `yaml:"duration"`
	FailureRate       float64       `yaml:"failure_rate"`
	SlowCallThreshold time.Duration `yaml:"slow_call_threshold"`
	SlowCallRate      float64       `yaml:"slow_call_rate"`
	MinimumCalls      int           `yaml:"minimum_calls"`
	OpenDuration      time.Duration `yaml:"open_duration"`
	HalfOpenProbes    int           `yaml:"half_open_probes"`
}

// BulkheadConfig configures [bulkhead.Bulkhead].
type BulkheadConfig struct {
	MaxConcurrent int           `yaml:"max_concurrent"`
	MaxQueue      int           `yaml:"max_queue"`
	MaxWait       time.Duration `yaml:"max_wait"`
}

// ThrottleConfig configures [throttle.Throttle]; zero fields keep its defaults.
type ThrottleConfig struct {
	K      float64       `yaml:"k"`
	Window time.Duration `yaml:"window"`
}

// HedgeConfig configures [hedge.Hedger] (GET and HEAD only).
type HedgeConfig struct {
	Delay      time.Duration `yaml:"delay"`
	MaxHedges  int           `yaml:"max_hedges"`
	Percentile float64       `yaml:"percentile"`
}

// FallbackConfig configures a last-good-response cache for GET requests.
type FallbackConfig struct {
	CacheEntries int           `yaml:"cache_entries"`
	MaxStale     time.Duration `yaml:"max_stale"`
}

// ConfigError is one rule a [Config] breaks, at a key path such as
// "dependencies.payments.retry.max_attempts".
type ConfigError struct {
	Path string
	Rule string
}

func (e *ConfigError) Error() string { return e.Path + ": " + e.Rule }

// ErrInvalidConfig is matched (errors.Is) by every error of [LoadConfig] and
// [Config.Validate].
var ErrInvalidConfig = errors.New("resilient: invalid config")

// Is reports whether target is [ErrInvalidConfig].
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// LoadConfig reads a YAML config, rejecting unknown keys, and validates it.
// A validation error joins one [*ConfigError] per broken rule, in key order.
func LoadConfig(r io.Reader) (*Config, error) {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: empty document", ErrInvalidConfig)
		}
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks every rule and returns the broken ones joined, or nil.
func (c *Config) Validate() error {
	var errs []*ConfigError
	add := func(path, format string, args ...any) {
		errs = append(errs, &ConfigError{Path: path, Rule: fmt.Sprintf(format, args...)})
	}
	if c.Default != nil {
		if len(c.Default.Hosts) > 0 || c.Default.PathPrefix != "" {
			add("default", "must not set hosts or path_prefix (it applies to unmatched hosts)")
		}
		c.Default.validate("default", add)
	}
	routes := map[string]string{}
	for _, name := range sortedKeys(c.Dependencies) {
		d := c.Dependencies[name]
		path := "dependencies." + name
		if d == nil {
			add(path, "must not be empty")
			continue
		}
		if name == "" {
			add(path, "name must not be empty")
		}
		for i, h := range d.hosts(name) {
			if h == "" || strings.ContainsAny(h, "/ ") {
				add(fmt.Sprintf("%s.hosts[%d]", path, i), "must be a host or host:port, got %q", h)
				continue
			}
			rk := strings.ToLower(h) + d.PathPrefix
			if other, dup := routes[rk]; dup {
				add(path+".hosts", "%s%s is already routed to %s", h, d.PathPrefix, other)
			}
			routes[rk] = name
		}
		if d.PathPrefix != "" && !strings.HasPrefix(d.PathPrefix, "/") {
			add(path+".path_prefix", "must start with /")
		}
		d.validate(path, add)
	}
	if len(errs) == 0 {
		return nil
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Path < errs[j].Path })
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return errors.Join(out...)
}

func (d *DependencyConfig) hosts(name string) []string {
	if len(d.Hosts) > 0 {
		return d.Hosts
	}
	return []string{name}
}

func (d *DependencyConfig) validate(path string, add func(path, format string, args ...any)) {
	if d.Timeout < 0 {
		add(path+".timeout", "must be ≥ 0")
	}
	if r := d.Retry; r != nil {
		p := path + ".retry"
		if r.MaxAttempts < 1 {
			add(p+".max_attempts", "must be ≥ 1")
		}
		if r.InitialBackoff < 0 {
			add(p+".initial_backoff", "must be ≥ 0")
		}
		if r.MaxBackoff < 0 {
			add(p+".max_backoff", "must be ≥ 0")
		} else if r.MaxBackoff > 0 && r.MaxBackoff < r.InitialBackoff {
			add(p+".max_backoff", "must be ≥ initial_backoff")
		}
		if r.Multiplier != 0 && r.Multiplier < 1 {
			add(p+".multiplier", "must be ≥ 1")
		}
		if r.MinAttemptTime < 0 {
			add(p+".min_attempt_time", "must be ≥ 0")
		}
		if r.MaxRetryAfter < 0 {
			add(p+".max_retry_after", "must be ≥ 0")
		}
		if b := r.Budget; b != nil {
			if !(b.Ratio >= 0 && b.Ratio <= 10) {
				add(p+".budget.ratio", "must be in [0, 10]")
			}
			if b.MaxTokens < 0 {
				add(p+".budget.max_tokens", "must be ≥ 1 (or omitted for 10)")
			}
			if b.MinPerSecond < 0 {
				add(p+".budget.min_per_second", "must be ≥ 0")
			}
		}
	}
	if b := d.Breaker; b != nil {
		p := path + ".breaker"
		switch b.Window {
		case "", "count":
			if b.Duration != 0 {
				add(p+".duration", "only applies to window: time")
			}
			if b.Size < 0 {
				add(p+".size", "must be ≥ 1")
			}
		case "time":
			if b.Duration <= 0 {
				add(p+".duration", "must be > 0 for window: time")
			}
			if b.Size != 0 {
				add(p+".size", "only applies to window: count")
			}
		default:
			add(p+".window", "must be count or time, got %q", b.Window)
		}
		if b.FailureRate != 0 && !(b.FailureRate > 0 && b.FailureRate <= 100) {
			add(p+".failure_rate", "must be in (0, 100]")
		}
		if (b.SlowCallThreshold == 0) != (b.SlowCallRate == 0) {
			add(p+".slow_call_rate", "slow_call_threshold and slow_call_rate go together")
		}
		if b.SlowCallThreshold < 0 {
			add(p+".slow_call_threshold", "must be > 0")
		}
		if b.SlowCallRate != 0 && !(b.SlowCallRate > 0 && b.SlowCallRate <= 100) {
			add(p+".slow_call_rate", "must be in (0, 100]")
		}
		if b.MinimumCalls < 0 {
			add(p+".minimum_calls", "must be ≥ 1, or 0 for the default")
		}
		if b.OpenDuration < 0 {
			add(p+".open_duration", "must be > 0, or 0 for the default")
		}
		if b.HalfOpenProbes < 0 {
			add(p+".half_open_probes", "must be ≥ 1, or 0 for the default")
		}
	}
	if b := d.Bulkhead; b != nil {
		p := path + ".bulkhead"
		if b.MaxConcurrent < 1 {
			add(p+".max_concurrent", "must be ≥ 1")
		}
		if b.MaxQueue < 0 {
			add(p+".max_queue", "must be ≥ 0")
		}
		if b.MaxWait < 0 {
			add(p+".max_wait", "must be ≥ 0")
		}
	}
	if th := d.Throttle; th != nil {
		p := path + ".throttle"
		if th.K != 0 && th.K < 1 {
			add(p+".k", "must be ≥ 1")
		}
		if th.Window < 0 {
			add(p+".window", "must be > 0")
		}
	}
	if h := d.Hedge; h != nil {
		p := path + ".hedge"
		if h.Delay <= 0 {
			add(p+".delay", "must be > 0")
		}
		if h.MaxHedges < 0 {
			add(p+".max_hedges", "must be ≥ 1")
		}
		if h.Percentile != 0 && !(h.Percentile > 0 && h.Percentile < 100) {
			add(p+".percentile", "must be in (0, 100)")
		}
	}
	if f := d.Fallback; f != nil {
		p := path + ".fallback"
		if f.CacheEntries < 1 {
			add(p+".cache_entries", "must be ≥ 1")
		}
		if f.MaxStale <= 0 {
			add(p+".max_stale", "must be > 0")
		}
	}
}

// Policy builds the policy the config declares; name names the breaker,
// bulkhead and other parts (in their events and metrics).
func (d *DependencyConfig) Policy(name string) (Policy, error) {
	var p Policy
	p.Retry.MaxAttempts = 1
	p.Retry.PerTryTimeout = d.Timeout
	wrap := func(section string, err error) error {
		return &ConfigError{Path: name + "." + section, Rule: err.Error()}
	}
	if r := d.Retry; r != nil {
		p.Retry.MaxAttempts = r.MaxAttempts
		p.Retry.Backoff = retry.Backoff{Initial: r.InitialBackoff, Max: r.MaxBackoff, Multiplier: r.Multiplier}
		p.Retry.MinAttemptTime = r.MinAttemptTime
		p.Retry.MaxRetryAfter = r.MaxRetryAfter
		if b := r.Budget; b != nil {
			var opts []retry.BudgetOption
			if b.MaxTokens > 0 {
				opts = append(opts, retry.WithMaxTokens(b.MaxTokens))
			}
			if b.MinPerSecond > 0 {
				opts = append(opts, retry.WithMinRetriesPerSecond(b.MinPerSecond))
			}
			budget, err := retry.NewBudget(b.Ratio, opts...)
			if err != nil {
				return p, wrap("retry.budget", err)
			}
			p.Retry.Budget = budget
		}
	}
	if b := d.Breaker; b != nil {
		var opts []breaker.Option
		if b.Window == "time" {
			opts = append(opts, breaker.WithTimeWindow(b.Duration))
		} else if b.Size > 0 {
			opts = append(opts, breaker.WithCountWindow(b.Size))
		}
		if b.FailureRate > 0 {
			opts = append(opts, breaker.WithFailureRate(b.FailureRate))
		}
		if b.SlowCallThreshold > 0 {
			opts = append(opts, breaker.WithSlowCalls(b.SlowCallThreshold, b.SlowCallRate))
		}
		if b.MinimumCalls > 0 {
			opts = append(opts, breaker.WithMinimumCalls(b.MinimumCalls))
		}
		if b.OpenDuration > 0 {
			opts = append(opts, breaker.WithOpenDuration(b.OpenDuration))
		}
		if b.HalfOpenProbes > 0 {
			opts = append(opts, breaker.WithHalfOpenProbes(b.HalfOpenProbes))
		}
		br, err := breaker.New(name, opts...)
		if err != nil {
			return p, wrap("breaker", err)
		}
		p.Breaker = br
	}
	if b := d.Bulkhead; b != nil {
		opts := []bulkhead.Option{bulkhead.WithMaxQueue(b.MaxQueue)}
		if b.MaxWait > 0 {
			opts = append(opts, bulkhead.WithMaxWait(b.MaxWait))
		}
		bh, err := bulkhead.New(name, b.MaxConcurrent, opts...)
		if err != nil {
			return p, wrap("bulkhead", err)
		}
		p.Bulkhead = bh
	}
	if th := d.Throttle; th != nil {
		var opts []throttle.Option
		if th.K > 0 {
			opts = append(opts, throttle.WithK(th.K))
		}
		if th.Window > 0 {
			opts = append(opts, throttle.WithWindow(th.Window))
		}
		tt, err := throttle.New(name, opts...)
		if err != nil {
			return p, wrap("throttle", err)
		}
		p.Throttle = tt
	}
	if h := d.Hedge; h != nil {
		var opts []hedge.Option
		if h.MaxHedges > 0 {
			opts = append(opts, hedge.WithMaxHedges(h.MaxHedges))
		}
		if h.Percentile > 0 {
			opts = append(opts, hedge.WithPercentile(h.Percentile, h.Delay))
		}
		hg, err := hedge.New(name, h.Delay, opts...)
		if err != nil {
			return p, wrap("hedge", err)
		}
		p.Hedge = hg
	}
	if f := d.Fallback; f != nil {
		fb, err := fallback.New[string, *CachedResponse](nil, fallback.WithCache(f.CacheEntries, f.MaxStale), fallback.WithName(name))
		if err != nil {
			return p, wrap("fallback", err)
		}
		p.Fallback = fb
	}
	return p, nil
}

type route struct {
	host, prefix, name string
}

// Transport builds a [Transport] over base with one policy per dependency,
// routed by host (and path prefix, longest first). Hosts no dependency
// matches get the default policy, one state per host, or none.
func (c *Config) Transport(base http.RoundTripper, opts ...TransportOption) (*Transport, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var routes []route
	var all []TransportOption
	for _, name := range sortedKeys(c.Dependencies) {
		d := c.Dependencies[name]
		p, err := d.Policy("dependencies." + name)
		if err != nil {
			return nil, err
		}
		all = append(all, WithPolicy(name, p))
		for _, h := range d.hosts(name) {
			routes = append(routes, route{strings.ToLower(h), d.PathPrefix, name})
		}
	}
	slices.SortStableFunc(routes, func(a, b route) int { return len(b.prefix) - len(a.prefix) })
	all = append(all, WithRoute(func(r *http.Request) string {
		host := strings.ToLower(r.URL.Host)
		for _, rt := range routes {
			if rt.host == host && strings.HasPrefix(r.URL.Path, rt.prefix) {
				return rt.name
			}
		}
		return host
	}))
	if c.Default != nil {
		def := c.Default
		all = append(all, WithDefaultPolicy(func(dep string) (Policy, error) { return def.Policy(dep) }))
	}
	return NewTransport(base, append(all, opts...)...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
