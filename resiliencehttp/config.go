package resiliencehttp

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
	"github.com/handoffhq/handoff/resilience"
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
// dependency gets one attempt; with one, max_attempts 0 (or left out) means
// retry.DefaultMaxAttempts, as in package retry.
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
// The policies' own rules are checked by building them through their
// constructors (breaker.New, bulkhead.New, retry.Policy.Validate, ...), so
// each rule exists once; a value a constructor refuses is reported at the
// key path of its field, with the constructor's words.
func (c *Config) Validate() error {
	var errs []*ConfigError
	add := func(path, rule string) { errs = append(errs, &ConfigError{Path: path, Rule: rule}) }
	if c.Default != nil {
		if len(c.Default.Hosts) > 0 || c.Default.PathPrefix != "" {
			add("default", "must not set hosts or path_prefix (it applies to unmatched hosts)")
		}
		c.Default.build("default", "default", add)
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
				add(fmt.Sprintf("%s.hosts[%d]", path, i), fmt.Sprintf("must be a host or host:port, got %q", h))
				continue
			}
			rk := strings.ToLower(h) + d.PathPrefix
			if other, dup := routes[rk]; dup {
				add(path+".hosts", fmt.Sprintf("%s%s is already routed to %s", h, d.PathPrefix, other))
			}
			routes[rk] = name
		}
		if d.PathPrefix != "" && !strings.HasPrefix(d.PathPrefix, "/") {
			add(path+".path_prefix", "must start with /")
		}
		d.build(path, name, add)
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

// Policy builds the policy the config declares; name names the breaker,
// bulkhead and the other parts (in their events and metrics) and prefixes
// the path of a [ConfigError].
func (d *DependencyConfig) Policy(name string) (Policy, error) {
	var first error
	p := d.build(name, name, func(path, rule string) {
		if first == nil {
			first = &ConfigError{Path: path, Rule: rule}
		}
	})
	if first != nil {
		return Policy{}, first
	}
	return p, nil
}

// probe is one field's value tried alone through its constructor.
type probe struct {
	key string
	err error
}

// probes reports the fields whose value a constructor refuses, and whether
// there were none (then the caller builds the whole section, and reports a
// refusal of the combination at the section's path).
func probes(path string, add func(path, rule string), ps ...probe) bool {
	ok := true
	for _, p := range ps {
		if p.err != nil {
			add(path+"."+p.key, p.err.Error())
			ok = false
		}
	}
	return ok
}

func breakerProbe(o breaker.Option) error { _, err := breaker.New("", o); return err }

func bulkheadProbe(max int, o ...bulkhead.Option) error {
	_, err := bulkhead.New("", max, o...)
	return err
}

func throttleProbe(o throttle.Option) error { _, err := throttle.New("", o); return err }

func budgetProbe(ratio float64, o ...retry.BudgetOption) error {
	_, err := retry.NewBudget(ratio, o...)
	return err
}

func retryProbe(p retry.Policy) error { return p.Validate() }

// build builds the policy, reporting every value the constructors refuse
// to add; what it returns is complete only when add was not called. A zero
// value keeps the constructor's default: a value is only ever passed on,
// never checked here.
func (d *DependencyConfig) build(path, name string, add func(path, rule string)) Policy {
	var p Policy
	p.Timeout = d.Timeout
	if err := (&resilience.Policy{Timeout: d.Timeout}).Validate(); err != nil {
		add(path+".timeout", err.Error())
	}
	if r := d.Retry; r != nil {
		rp := path + ".retry"
		pol := retry.Policy{MaxAttempts: r.MaxAttempts, MinAttemptTime: r.MinAttemptTime, MaxRetryAfter: r.MaxRetryAfter,
			Backoff: retry.Backoff{Initial: r.InitialBackoff, Max: r.MaxBackoff, Multiplier: r.Multiplier}}
		ok := probes(rp, add,
			probe{"max_attempts", retryProbe(retry.Policy{MaxAttempts: r.MaxAttempts})},
			probe{"initial_backoff", retryProbe(retry.Policy{Backoff: retry.Backoff{Initial: r.InitialBackoff}})},
			probe{"max_backoff", retryProbe(retry.Policy{Backoff: retry.Backoff{Max: r.MaxBackoff}})},
			probe{"multiplier", retryProbe(retry.Policy{Backoff: retry.Backoff{Multiplier: r.Multiplier}})},
			probe{"min_attempt_time", retryProbe(retry.Policy{MinAttemptTime: r.MinAttemptTime})},
			probe{"max_retry_after", retryProbe(retry.Policy{MaxRetryAfter: r.MaxRetryAfter})},
		)
		if ok {
			if err := retryProbe(pol); err != nil {
				add(rp+".max_backoff", err.Error()) // the one rule across fields: max ≥ initial
			}
		}
		if b := r.Budget; b != nil {
			bp := rp + ".budget"
			var opts []retry.BudgetOption
			if b.MaxTokens != 0 {
				opts = append(opts, retry.WithMaxTokens(b.MaxTokens))
			}
			if b.MinPerSecond != 0 {
				opts = append(opts, retry.WithMinRetriesPerSecond(b.MinPerSecond))
			}
			if probes(bp, add, probe{"ratio", budgetProbe(b.Ratio)},
				probe{"max_tokens", ifSet(b.MaxTokens != 0, func() error { return budgetProbe(0, retry.WithMaxTokens(b.MaxTokens)) })},
				probe{"min_per_second", ifSet(b.MinPerSecond != 0, func() error { return budgetProbe(0, retry.WithMinRetriesPerSecond(b.MinPerSecond)) })}) {
				budget, err := retry.NewBudget(b.Ratio, opts...)
				if err != nil {
					add(bp, err.Error())
				}
				pol.Budget = budget
			}
		}
		p.Retry = &pol
	}
	if b := d.Breaker; b != nil {
		bp := path + ".breaker"
		var ps []probe
		var opts []breaker.Option
		opt := func(key string, set bool, o breaker.Option) {
			if set {
				ps = append(ps, probe{key, breakerProbe(o)})
				opts = append(opts, o)
			}
		}
		switch b.Window {
		case "", "count":
			if b.Duration != 0 {
				add(bp+".duration", "only applies to window: time")
			}
			opt("size", b.Size != 0, breaker.WithCountWindow(b.Size))
		case "time":
			if b.Size != 0 {
				add(bp+".size", "only applies to window: count")
			}
			opt("duration", true, breaker.WithTimeWindow(b.Duration))
		default:
			add(bp+".window", fmt.Sprintf("must be count or time, got %q", b.Window))
		}
		opt("failure_rate", b.FailureRate != 0, breaker.WithFailureRate(b.FailureRate))
		if b.SlowCallThreshold != 0 || b.SlowCallRate != 0 {
			// One option, two fields: each is tried with a value known to pass for the other.
			ps = append(ps, probe{"slow_call_threshold", breakerProbe(breaker.WithSlowCalls(b.SlowCallThreshold, 100))},
				probe{"slow_call_rate", breakerProbe(breaker.WithSlowCalls(time.Second, b.SlowCallRate))})
			opts = append(opts, breaker.WithSlowCalls(b.SlowCallThreshold, b.SlowCallRate))
		}
		opt("minimum_calls", b.MinimumCalls != 0, breaker.WithMinimumCalls(b.MinimumCalls))
		opt("open_duration", b.OpenDuration != 0, breaker.WithOpenDuration(b.OpenDuration))
		opt("half_open_probes", b.HalfOpenProbes != 0, breaker.WithHalfOpenProbes(b.HalfOpenProbes))
		if probes(bp, add, ps...) {
			br, err := breaker.New(name, opts...)
			if err != nil {
				add(bp, err.Error())
			}
			p.Breaker = br
		}
	}
	if b := d.Bulkhead; b != nil {
		bp := path + ".bulkhead"
		var opts []bulkhead.Option
		if b.MaxQueue != 0 {
			opts = append(opts, bulkhead.WithMaxQueue(b.MaxQueue))
		}
		if b.MaxWait != 0 {
			opts = append(opts, bulkhead.WithMaxWait(b.MaxWait))
		}
		if probes(bp, add, probe{"max_concurrent", bulkheadProbe(b.MaxConcurrent)},
			probe{"max_queue", bulkheadProbe(1, bulkhead.WithMaxQueue(b.MaxQueue))},
			probe{"max_wait", bulkheadProbe(1, bulkhead.WithMaxWait(b.MaxWait))}) {
			bh, err := bulkhead.New(name, b.MaxConcurrent, opts...)
			if err != nil {
				add(bp, err.Error())
			}
			p.Bulkhead = bh
		}
	}
	if th := d.Throttle; th != nil {
		tp := path + ".throttle"
		var ps []probe
		var opts []throttle.Option
		if th.K != 0 {
			ps = append(ps, probe{"k", throttleProbe(throttle.WithK(th.K))})
			opts = append(opts, throttle.WithK(th.K))
		}
		if th.Window != 0 {
			ps = append(ps, probe{"window", throttleProbe(throttle.WithWindow(th.Window))})
			opts = append(opts, throttle.WithWindow(th.Window))
		}
		if probes(tp, add, ps...) {
			tt, err := throttle.New(name, opts...)
			if err != nil {
				add(tp, err.Error())
			}
			p.Throttle = tt
		}
	}
	if h := d.Hedge; h != nil {
		hp := path + ".hedge"
		var opts []hedge.Option
		if h.MaxHedges != 0 {
			opts = append(opts, hedge.WithMaxHedges(h.MaxHedges))
		}
		if h.Percentile != 0 {
			opts = append(opts, hedge.WithPercentile(h.Percentile, h.Delay))
		}
		hedgeProbe := func(o ...hedge.Option) error { _, err := hedge.New("", time.Millisecond, o...); return err }
		if probes(hp, add, probe{"delay", ifSet(true, func() error { _, err := hedge.New("", h.Delay); return err })},
			probe{"max_hedges", ifSet(h.MaxHedges != 0, func() error { return hedgeProbe(hedge.WithMaxHedges(h.MaxHedges)) })},
			probe{"percentile", ifSet(h.Percentile != 0, func() error { return hedgeProbe(hedge.WithPercentile(h.Percentile, 0)) })}) {
			hg, err := hedge.New(name, h.Delay, opts...)
			if err != nil {
				add(hp, err.Error())
			}
			p.Hedge = hg
		}
	}
	if f := d.Fallback; f != nil {
		fp := path + ".fallback"
		cacheProbe := func(o fallback.Option) error { _, err := fallback.New[string, *CachedResponse](nil, o); return err }
		if probes(fp, add, probe{"cache_entries", cacheProbe(fallback.WithCache(f.CacheEntries, time.Minute))},
			probe{"max_stale", cacheProbe(fallback.WithCache(1, f.MaxStale))}) {
			fb, err := fallback.New[string, *CachedResponse](nil, fallback.WithCache(f.CacheEntries, f.MaxStale), fallback.WithName(name))
			if err != nil {
				add(fp, err.Error())
			}
			p.Fallback = fb
		}
	}
	return p
}

// ifSet runs check when the field is set.
func ifSet(set bool, check func() error) error {
	if !set {
		return nil
	}
	return check()
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
		var first error
		p := d.build("dependencies."+name, name, func(path, rule string) {
			if first == nil {
				first = &ConfigError{Path: path, Rule: rule}
			}
		})
		if first != nil {
			return nil, first
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
