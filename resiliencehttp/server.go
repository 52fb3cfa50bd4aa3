package resiliencehttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/handoffhq/handoff/resilience"
)

// HeaderTimeout carries the caller's remaining time, in whole milliseconds,
// from [Transport] to [Server] (the HTTP counterpart of gRPC's grpc-timeout).
// Remaining time rather than an absolute deadline, because clocks skew
// between hosts. The value is rounded down, but the transit time of the
// request is not subtracted: a server's deadline is later than its caller's
// by that much (as with grpc-timeout). The caller's own deadline still ends
// its wait.
const HeaderTimeout = "Request-Timeout"

// ErrInvalidOption is returned by constructors for an option that breaks its rule.
var ErrInvalidOption = errors.New("resilient: invalid option")

// Server is HTTP server middleware that turns the incoming Request-Timeout
// header into the request context's deadline, refuses work whose deadline has
// already passed, and sheds load when too many requests are in flight.
//
// Expired work is answered with 504 Gateway Timeout (as gRPC maps
// DEADLINE_EXCEEDED) without calling the handler; shed requests get 503
// Service Unavailable with Retry-After.
type Server struct {
	maxTimeout  time.Duration
	defTimeout  time.Duration
	minLeft     time.Duration
	maxInFlight int64
	retryAfter  string
	inFlight    atomic.Int64
	log         *slog.Logger

	mp      metric.MeterProvider
	shed    metric.Int64Counter
	expired metric.Int64Counter
}

// ServerOption configures a [Server].
type ServerOption func(*Server) error

// WithMaxTimeout bounds the deadline a caller may ask for (default: unbounded).
func WithMaxTimeout(d time.Duration) ServerOption {
	return func(s *Server) error {
		if d <= 0 {
			return fmt.Errorf("%w: WithMaxTimeout: must be > 0, got %v", ErrInvalidOption, d)
		}
		s.maxTimeout = d
		return nil
	}
}

// WithDefaultTimeout sets the deadline of requests that carry no
// Request-Timeout header (default: none, only WithMaxTimeout applies).
func WithDefaultTimeout(d time.Duration) ServerOption {
	return func(s *Server) error {
		if d <= 0 {
			return fmt.Errorf("%w: WithDefaultTimeout: must be > 0, got %v", ErrInvalidOption, d)
		}
		s.defTimeout = d
		return nil
	}
}

// WithMinTimeLeft refuses (504) requests arriving with less than d left:
// work that cannot finish in time is not started (default 0: only expired
// requests are refused).
func WithMinTimeLeft(d time.Duration) ServerOption {
	return func(s *Server) error {
		if d < 0 {
			return fmt.Errorf("%w: WithMinTimeLeft: must be ≥ 0, got %v", ErrInvalidOption, d)
		}
		s.minLeft = d
		return nil
	}
}

// WithMaxInFlight sheds requests beyond n running at once with 503 (default:
// no limit).
func WithMaxInFlight(n int) ServerOption {
	return func(s *Server) error {
		if n < 1 {
			return fmt.Errorf("%w: WithMaxInFlight: must be ≥ 1, got %d", ErrInvalidOption, n)
		}
		s.maxInFlight = int64(n)
		return nil
	}
}

// WithShedRetryAfter sets the Retry-After of shed responses (default 1s,
// rounded up to whole seconds).
func WithShedRetryAfter(d time.Duration) ServerOption {
	return func(s *Server) error {
		if d <= 0 {
			return fmt.Errorf("%w: WithShedRetryAfter: must be > 0, got %v", ErrInvalidOption, d)
		}
		s.retryAfter = strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
		return nil
	}
}

// WithServerMeterProvider sets the meter provider (default: the global one).
func WithServerMeterProvider(mp metric.MeterProvider) ServerOption {
	return func(s *Server) error {
		if mp == nil {
			return fmt.Errorf("%w: WithServerMeterProvider: must not be nil", ErrInvalidOption)
		}
		s.mp = mp
		return nil
	}
}

// WithServerLogger sets the logger (default discards).
func WithServerLogger(l *slog.Logger) ServerOption {
	return func(s *Server) error {
		if l == nil {
			return fmt.Errorf("%w: WithServerLogger: must not be nil", ErrInvalidOption)
		}
		s.log = l
		return nil
	}
}

// NewServer returns server middleware; wrap handlers with [Server.Wrap].
func NewServer(opts ...ServerOption) (*Server, error) {
	s := &Server{retryAfter: "1", log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	if s.mp == nil {
		s.mp = otel.GetMeterProvider()
	}
	m := s.mp.Meter(ScopeName)
	var err error
	if s.shed, err = m.Int64Counter("resilient.server.shed", metric.WithDescription("Requests shed because too many were in flight.")); err != nil {
		return nil, fmt.Errorf("resilient: server metrics: %w", err)
	}
	if s.expired, err = m.Int64Counter("resilient.server.expired", metric.WithDescription("Requests refused because their deadline had passed or was too near.")); err != nil {
		return nil, fmt.Errorf("resilient: server metrics: %w", err)
	}
	return s, nil
}

// InFlight returns the number of requests running now.
func (s *Server) InFlight() int { return int(s.inFlight.Load()) }

// ParseTimeout parses a Request-Timeout value (whole milliseconds, ≥ 0).
func ParseTimeout(v string) (time.Duration, error) {
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms < 0 {
		return 0, fmt.Errorf("resilient: %s %q: must be whole milliseconds ≥ 0", HeaderTimeout, v)
	}
	if ms > int64(time.Duration(1<<62)/time.Millisecond) {
		ms = int64(time.Duration(1<<62) / time.Millisecond)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// Wrap returns next behind the middleware.
func (s *Server) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		span := trace.SpanFromContext(ctx)
		if s.maxInFlight > 0 {
			if n := s.inFlight.Add(1); n > s.maxInFlight {
				s.inFlight.Add(-1)
				s.shed.Add(ctx, 1, metric.WithAttributes(attribute.String("http.route", r.URL.Path)))
				span.AddEvent(resilience.EventNameShed, trace.WithAttributes(attribute.Int64("resilient.in_flight", n-1)))
				w.Header().Set("Retry-After", s.retryAfter)
				writeText(w, http.StatusServiceUnavailable, "overloaded, retry later")
				return
			}
			defer s.inFlight.Add(-1)
		} else {
			s.inFlight.Add(1)
			defer s.inFlight.Add(-1)
		}

		timeout, has := time.Duration(0), false
		if v := r.Header.Get(HeaderTimeout); v != "" {
			d, err := ParseTimeout(v)
			if err != nil {
				writeText(w, http.StatusBadRequest, err.Error())
				return
			}
			timeout, has = d, true
		} else if s.defTimeout > 0 {
			timeout, has = s.defTimeout, true
		}
		if s.maxTimeout > 0 && (!has || timeout > s.maxTimeout) {
			timeout, has = s.maxTimeout, true
		}
		if has {
			if timeout <= s.minLeft || timeout == 0 {
				s.expired.Add(ctx, 1)
				span.AddEvent(resilience.EventNameDeadlineExpired, trace.WithAttributes(resilience.AttrTimeLeft.Int64(timeout.Milliseconds())))
				writeText(w, http.StatusGatewayTimeout, "deadline exceeded before the work started")
				return
			}
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		next.ServeHTTP(w, r)
	})
}

func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n")
}
