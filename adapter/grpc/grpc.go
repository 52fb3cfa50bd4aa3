package grpc

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/handoffhq/handoff/breaker"
	"github.com/handoffhq/handoff/bulkhead"
	"github.com/handoffhq/handoff/idempotency"
	"github.com/handoffhq/handoff/resilience"
	"github.com/handoffhq/handoff/retry"
	"github.com/handoffhq/handoff/throttle"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	gogrpc "google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// MetadataIdempotencyKey is the metadata key carrying an idempotency key.
const MetadataIdempotencyKey = "idempotency-key"

// MetadataPushback is the trailer a server sets to tell clients when to retry
// (gRPC's retry pushback, in milliseconds).
const MetadataPushback = "grpc-retry-pushback-ms"

// ErrInvalidOption is returned for an option that breaks its rule.
var ErrInvalidOption = errors.New("grpc: invalid option")

// ClientOption configures [UnaryClientInterceptor].
type ClientOption func(*client) error

type client struct {
	name       string
	idempotent func(method string) bool
	mp         metric.MeterProvider
}

// WithName names the dependency in events and metrics (default "grpc").
func WithName(name string) ClientOption {
	return func(c *client) error {
		if name == "" {
			return fmt.Errorf("%w: WithName: must not be empty", ErrInvalidOption)
		}
		c.name = name
		return nil
	}
}

// WithIdempotent restricts retries to the methods f accepts (full method
// names, "/pkg.Service/Method") and calls carrying idempotency-key metadata.
// By default every method may be retried: configuring a retry policy on the
// interceptor is the choice to retry, as in gRPC's own service config.
func WithIdempotent(f func(fullMethod string) bool) ClientOption {
	return func(c *client) error {
		if f == nil {
			return fmt.Errorf("%w: WithIdempotent: must not be nil", ErrInvalidOption)
		}
		c.idempotent = f
		return nil
	}
}

// WithMeterProvider sets the meter provider (default: the global one).
func WithMeterProvider(mp metric.MeterProvider) ClientOption {
	return func(c *client) error {
		if mp == nil {
			return fmt.Errorf("%w: WithMeterProvider: must not be nil", ErrInvalidOption)
		}
		c.mp = mp
		return nil
	}
}

// Classify is the interceptor's [resilience.Classifier] for gRPC status
// codes: UNAVAILABLE is retried, a breaker failure and overload;
// RESOURCE_EXHAUSTED is retried and overload but not a breaker failure (the
// server answered, asking to slow down); DEADLINE_EXCEEDED is a failure,
// retried only when the policy's per-try timeout (not the caller's deadline)
// expired; UNKNOWN, INTERNAL and DATA_LOSS are failures not retried; the
// other codes mean the dependency answered (no failure, no retry). A
// malformed or negative pushback trailer forbids the retry.
func Classify(err error) resilience.Verdict {
	var ae *attemptError
	if !errors.As(err, &ae) {
		return resilience.DefaultClassify(err)
	}
	var v resilience.Verdict
	switch ae.code {
	case codes.Unavailable:
		v = resilience.Retry | resilience.Failure | resilience.Overload
	case codes.ResourceExhausted:
		v = resilience.Retry | resilience.Overload
	case codes.DeadlineExceeded:
		v = resilience.Failure
		if ae.perTry {
			v |= resilience.Retry
		}
	case codes.Unknown, codes.Internal, codes.DataLoss:
		v = resilience.Failure
	}
	if ae.final {
		v &^= resilience.Retry
	}
	return v
}

// outcome labels a failed attempt on the attempts counter with its code.
func outcome(err error) (string, []attribute.KeyValue) {
	return "error", []attribute.KeyValue{attribute.String("rpc.grpc.status_code", status.Code(err).String())}
}

// UnaryClientInterceptor returns an interceptor applying p, the composed
// policy of package resilience (see there for the order and guarantees),
// to every unary call of the connection it is installed on (one
// dependency). Attempts are classified by [Classify] unless p has its own
// Classify; telemetry is added to p's own Observer. p.Timeout is the
// per-try timeout.
func UnaryClientInterceptor(p resilience.Policy, opts ...ClientOption) (gogrpc.UnaryClientInterceptor, error) {
	c := &client{name: "grpc"}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOption, err)
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	tel, err := resilience.NewTelemetry(c.name, resilience.WithMeterProvider(c.mp), resilience.WithOutcome(outcome))
	if err != nil {
		return nil, fmt.Errorf("grpc: %w", err)
	}
	if p.Classify == nil {
		p.Classify = Classify
	}
	p.Observer = resilience.Observers(p.Observer, tel)
	once := p // at most one attempt: methods not known to be idempotent
	if once.Retry != nil && once.Retry.MaxAttempts != 1 {
		r := *once.Retry
		r.MaxAttempts = 1
		once.Retry = &r
	}
	perTry := p.Timeout > 0
	return func(ctx context.Context, method string, req, reply any, cc *gogrpc.ClientConn, invoker gogrpc.UnaryInvoker, callOpts ...gogrpc.CallOption) error {
		pol := &p
		if c.idempotent != nil && !c.idempotent(method) && !hasKey(ctx) {
			pol = &once
		}
		err := pol.Do(ctx, func(actx context.Context, _ int) error {
			return attempt(ctx, actx, perTry, method, req, reply, cc, invoker, callOpts)
		})
		return unwrapResult(err)
	}, nil
}

func hasKey(ctx context.Context) bool {
	md, _ := metadata.FromOutgoingContext(ctx)
	return len(md.Get(MetadataIdempotencyKey)) > 0
}

func isStatus(err error) bool {
	_, ok := status.FromError(err)
	return ok
}

// attemptError carries an attempt's gRPC status through the policies.
type attemptError struct {
	err    error
	code   codes.Code
	perTry bool // DeadlineExceeded from the per-try timeout
	final  bool // the server's pushback said not to retry
}

func (e *attemptError) Error() string { return e.err.Error() }
func (e *attemptError) Unwrap() error { return e.err }

// GRPCStatus lets status.FromError see the original status.
func (e *attemptError) GRPCStatus() *status.Status { s, _ := status.FromError(e.err); return s }

// unwrapResult returns the error to hand the caller: the last attempt's
// status error when retries ran out, so status.Code works on it.
func unwrapResult(err error) error {
	if err == nil {
		return nil
	}
	var ae *attemptError
	if errors.As(err, &ae) {
		var ee *retry.ExhaustedError
		if errors.As(err, &ee) && (ee.Reason == retry.ReasonContext || ee.Reason == retry.ReasonDeadline) && ae.code != codes.DeadlineExceeded {
			return status.Error(codes.DeadlineExceeded, err.Error())
		}
		return ae.err
	}
	if errors.Is(err, retry.ErrInsufficientTime) {
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	if errors.Is(err, breaker.ErrOpen) || errors.Is(err, bulkhead.ErrFull) || errors.Is(err, throttle.ErrThrottled) {
		return status.Error(codes.Unavailable, err.Error())
	}
	if isStatus(err) {
		return err
	}
	return status.FromContextError(err).Err()
}

// attempt invokes the call once on actx (the policy's attempt context) and
// turns its status and pushback trailer into an attemptError.
func attempt(ctx, actx context.Context, perTry bool, method string, req, reply any,
	cc *gogrpc.ClientConn, invoker gogrpc.UnaryInvoker, callOpts []gogrpc.CallOption) error {
	var trailer metadata.MD
	opts := append(callOpts[:len(callOpts):len(callOpts)], gogrpc.Trailer(&trailer))
	err := invoker(actx, method, req, reply, cc, opts...)
	if err == nil {
		return nil
	}
	code := status.Code(err)
	ae := &attemptError{err: err, code: code, perTry: code == codes.DeadlineExceeded && perTry && ctx.Err() == nil}
	if v := trailer.Get(MetadataPushback); len(v) > 0 {
		ms, perr := strconv.ParseInt(v[0], 10, 64)
		if perr != nil || ms < 0 {
			// A malformed or negative pushback means "do not retry".
			ae.final = true
			return ae
		}
		return retry.After(ae, time.Duration(ms)*time.Millisecond)
	}
	return ae
}

// ServerOption configures [UnaryServerInterceptor].
type ServerOption func(*server) error

type server struct {
	maxInFlight int64
	inFlight    atomic.Int64
	pushback    string
	minLeft     time.Duration
	idem        *idempotency.Middleware
	scope       func(ctx context.Context) string
	mp          metric.MeterProvider
	shed        metric.Int64Counter
}

// WithMaxInFlight sheds calls beyond n running at once with
// ResourceExhausted and a pushback trailer.
func WithMaxInFlight(n int, pushback time.Duration) ServerOption {
	return func(s *server) error {
		if n < 1 {
			return fmt.Errorf("%w: WithMaxInFlight: n must be ≥ 1, got %d", ErrInvalidOption, n)
		}
		if pushback < 0 {
			return fmt.Errorf("%w: WithMaxInFlight: pushback must be ≥ 0, got %v", ErrInvalidOption, pushback)
		}
		s.maxInFlight = int64(n)
		s.pushback = strconv.FormatInt(pushback.Milliseconds(), 10)
		return nil
	}
}

// WithMinTimeLeft refuses calls whose deadline leaves less than d, with
// DeadlineExceeded, without calling the handler.
func WithMinTimeLeft(d time.Duration) ServerOption {
	return func(s *server) error {
		if d < 0 {
			return fmt.Errorf("%w: WithMinTimeLeft: must be ≥ 0, got %v", ErrInvalidOption, d)
		}
		s.minLeft = d
		return nil
	}
}

// WithIdempotency makes calls carrying idempotency-key metadata run once per
// key (and per scope, when scope is not nil), using m's store and settings.
// A completed call's response (or a non-transient error status) is
// replayed to repeats, with the trailer idempotent-replayed: true. Repeats
// with a different request get InvalidArgument; a repeat while the first
// runs gets Aborted (after m's wait). Transient errors (Unavailable,
// Internal, Unknown, DeadlineExceeded, ResourceExhausted, Canceled, Aborted,
// DataLoss) are not stored, so the client can retry. Responses are stored as
// protobuf bytes and decoded with the global registry.
func WithIdempotency(m *idempotency.Middleware, scope func(ctx context.Context) string) ServerOption {
	return func(s *server) error {
		if m == nil {
			return fmt.Errorf("%w: WithIdempotency: middleware must not be nil", ErrInvalidOption)
		}
		s.idem, s.scope = m, scope
		return nil
	}
}

// WithServerMeterProvider sets the meter provider (default: the global one).
func WithServerMeterProvider(mp metric.MeterProvider) ServerOption {
	return func(s *server) error {
		if mp == nil {
			return fmt.Errorf("%w: WithServerMeterProvider: must not be nil", ErrInvalidOption)
		}
		s.mp = mp
		return nil
	}
}

// UnaryServerInterceptor returns the server interceptor.
func UnaryServerInterceptor(opts ...ServerOption) (gogrpc.UnaryServerInterceptor, error) {
	s := &server{}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	if s.mp == nil {
		s.mp = otel.GetMeterProvider()
	}
	var err error
	if s.shed, err = s.mp.Meter(resilience.ScopeName).Int64Counter("resilient.server.shed"); err != nil {
		return nil, fmt.Errorf("grpc: metrics: %w", err)
	}
	return s.intercept, nil
}

func (s *server) intercept(ctx context.Context, req any, info *gogrpc.UnaryServerInfo, handler gogrpc.UnaryHandler) (any, error) {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	if s.maxInFlight > 0 && n > s.maxInFlight {
		s.shed.Add(ctx, 1, metric.WithAttributes(attribute.String("rpc.method", info.FullMethod)))
		trace.SpanFromContext(ctx).AddEvent(resilience.EventNameShed)
		gogrpc.SetTrailer(ctx, metadata.Pairs(MetadataPushback, s.pushback))
		return nil, status.Error(codes.ResourceExhausted, "overloaded, retry later")
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= s.minLeft {
		trace.SpanFromContext(ctx).AddEvent(resilience.EventNameDeadlineExpired)
		return nil, status.Error(codes.DeadlineExceeded, "deadline too near to start the work")
	}
	if s.idem != nil {
		md, _ := metadata.FromIncomingContext(ctx)
		if keys := md.Get(MetadataIdempotencyKey); len(keys) > 0 {
			return s.idempotent(ctx, keys[0], req, info, handler)
		}
	}
	return handler(ctx, req)
}

func (s *server) idempotent(ctx context.Context, raw string, req any, info *gogrpc.UnaryServerInfo, handler gogrpc.UnaryHandler) (any, error) {
	key, err := idempotency.ParseKey(raw)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	msg, ok := req.(proto.Message)
	if !ok {
		return handler(ctx, req) // not protobuf: cannot fingerprint or store
	}
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		return nil, status.Error(codes.Internal, "fingerprint request: "+err.Error())
	}
	fp := idempotency.Fingerprint("GRPC", info.FullMethod, body)
	scoped := "grpc:" + key
	if s.scope != nil {
		sc := s.scope(ctx)
		scoped = "grpc:" + strconv.Itoa(len(sc)) + ":" + sc + ":" + key
	}
	lease, old, err := s.idem.Acquire(ctx, scoped, fp)
	switch {
	case errors.Is(err, idempotency.ErrMismatch):
		return nil, status.Error(codes.InvalidArgument, "idempotency key reused with a different request")
	case errors.Is(err, idempotency.ErrInProgress):
		return nil, status.Error(codes.Aborted, "a call with this idempotency key is in progress")
	case err != nil && ctx.Err() != nil:
		return nil, status.FromContextError(ctx.Err()).Err()
	case err != nil:
		return nil, status.Error(codes.Unavailable, "idempotency store: "+err.Error())
	case old != nil:
		gogrpc.SetTrailer(ctx, metadata.Pairs("idempotent-replayed", "true"))
		return replayGRPC(old)
	}
	done := false
	defer func() {
		if !done {
			lease.Release(ctx) // the handler panicked
		}
	}()
	resp, herr := handler(ctx, req)
	done = true
	code := status.Code(herr)
	switch code {
	case codes.Unavailable, codes.Internal, codes.Unknown, codes.DeadlineExceeded, codes.ResourceExhausted,
		codes.Canceled, codes.Aborted, codes.DataLoss:
		lease.Release(ctx)
		return resp, herr
	}
	var stored []byte
	typeName := ""
	if herr == nil {
		m, ok := resp.(proto.Message)
		if !ok {
			lease.Release(ctx)
			return resp, herr
		}
		if stored, err = proto.Marshal(m); err != nil {
			lease.Release(ctx)
			return resp, herr
		}
		typeName = string(m.ProtoReflect().Descriptor().FullName())
	} else {
		stored = []byte(status.Convert(herr).Message())
	}
	hdr := map[string][]string{"Grpc-Type": {typeName}}
	lease.Complete(ctx, int(code), hdr, stored)
	return resp, herr
}

func replayGRPC(rec *idempotency.Record) (any, error) {
	code := codes.Code(rec.Status)
	if code != codes.OK {
		return nil, status.Error(code, string(rec.Body))
	}
	name := ""
	if v := rec.Header["Grpc-Type"]; len(v) > 0 {
		name = v[0]
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(name))
	if err != nil {
		return nil, status.Error(codes.Internal, "replay: response type "+name+": "+err.Error())
	}
	m := mt.New().Interface()
	if err := proto.Unmarshal(rec.Body, m); err != nil {
		return nil, status.Error(codes.Internal, "replay: "+err.Error())
	}
	return m, nil
}
