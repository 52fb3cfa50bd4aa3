// Package topologyotlp receives OpenTelemetry traces over OTLP/HTTP and
// feeds their spans into a topology graph as observed edges: point any
// service's OTLP trace exporter at it, and the calls, publishes and
// consumes it makes appear in the graph. It feeds any topology.Observer:
// a *topology.Graph in memory, or a *topology.Shared that batches the
// edges into a store several servers share.
//
//	g := topology.New()
//	rcv, _ := topologyotlp.New(g)
//	mux.Handle("POST /v1/traces", rcv)
//
// It takes both encodings of OTLP/HTTP's ExportTraceServiceRequest: binary
// protobuf (application/x-protobuf, the exporters' default) and JSON
// (application/json), gzip-compressed or not, and answers as the protocol
// asks: an ExportTraceServiceResponse in the request's encoding, 400 with
// a google.rpc.Status for a body that does not decode, 413 for a body over
// the limit (compressed or not), 415 for another content type.
//
// Spans are turned into edges by topology.Observations, one request at a
// time: a client span whose server span arrives in another request (the
// usual case when each service exports its own spans) is resolved by its
// peer.service or server.address, not joined to the server span. The
// receiver keeps no spans: it is not a trace store.
//
// It lives apart from package topology because it links the OTLP protobuf
// types, which core packages never do.
package topologyotlp

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/handoffhq/handoff/topology"
)

// DefaultMaxBytes is the default limit of a request body, after
// decompression.
const DefaultMaxBytes = 8 << 20

// Content types of OTLP/HTTP.
const (
	ContentTypeProtobuf = "application/x-protobuf"
	ContentTypeJSON     = "application/json"
)

// Receiver is an http.Handler for POST /v1/traces.
type Receiver struct {
	g        topology.Observer
	resolve  topology.Resolver
	maxBytes int64
	log      *slog.Logger
}

// Option configures a Receiver.
type Option func(*Receiver) error

// WithMaxBytes sets the largest body taken, after decompression (default
// DefaultMaxBytes); a larger one is refused with 413 and records nothing.
func WithMaxBytes(n int64) Option {
	return func(r *Receiver) error {
		if n <= 0 || n > topology.MaxOTLPSize {
			return fmt.Errorf("topologyotlp: WithMaxBytes(%d): must be between 1 and %d", n, topology.MaxOTLPSize)
		}
		r.maxBytes = n
		return nil
	}
}

// WithResolver names the services behind addresses of client spans whose
// server side is not in the same request (see topology.Resolver).
func WithResolver(resolve topology.Resolver) Option {
	return func(r *Receiver) error { r.resolve = resolve; return nil }
}

// WithLogger sets the logger of refused requests (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(r *Receiver) error {
		if l == nil {
			return errors.New("topologyotlp: WithLogger: logger must not be nil")
		}
		r.log = l
		return nil
	}
}

// New returns a receiver recording into g: a *topology.Graph, a
// *topology.Shared, or any other topology.Observer.
func New(g topology.Observer, opts ...Option) (*Receiver, error) {
	if g == nil {
		return nil, errors.New("topologyotlp: New: graph must not be nil")
	}
	r := &Receiver{g: g, maxBytes: DefaultMaxBytes, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// errTooLarge marks a body over the limit.
var errTooLarge = errors.New("body too large")

// ServeHTTP takes one export.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		rc.fail(w, ContentTypeJSON, http.StatusMethodNotAllowed, "OTLP/HTTP takes POST")
		return
	}
	mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if mt != ContentTypeProtobuf && mt != ContentTypeJSON {
		rc.fail(w, ContentTypeJSON, http.StatusUnsupportedMediaType,
			fmt.Sprintf("Content-Type %q: send %s or %s", req.Header.Get("Content-Type"), ContentTypeProtobuf, ContentTypeJSON))
		return
	}
	body, err := rc.read(w, req)
	switch {
	case errors.Is(err, errTooLarge):
		rc.fail(w, mt, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: larger than %d bytes", rc.maxBytes))
		return
	case err != nil:
		rc.fail(w, mt, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	var spans []topology.Span
	if mt == ContentTypeJSON {
		spans, err = topology.ReadOTLP(bytes.NewReader(body))
	} else {
		spans, err = decodeProtobuf(body)
	}
	if err != nil {
		rc.fail(w, mt, http.StatusBadRequest, err.Error())
		return
	}
	if _, err := topology.ObserveSpans(rc.g, spans, rc.resolve); err != nil {
		rc.fail(w, mt, http.StatusBadRequest, err.Error())
		return
	}
	rc.reply(w, mt, http.StatusOK, &coltrace.ExportTraceServiceResponse{})
}

// read reads the body, gunzipping it when it says so, up to the limit.
func (rc *Receiver) read(w http.ResponseWriter, req *http.Request) ([]byte, error) {
	var r io.Reader = http.MaxBytesReader(w, req.Body, rc.maxBytes)
	switch enc := req.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, tooLarge(err)
		}
		defer zr.Close()
		r = zr
	default:
		return nil, fmt.Errorf("Content-Encoding %q: send gzip or none", enc)
	}
	b, err := io.ReadAll(io.LimitReader(r, rc.maxBytes+1))
	if err != nil {
		return nil, tooLarge(err)
	}
	if int64(len(b)) > rc.maxBytes {
		return nil, errTooLarge
	}
	return b, nil
}

func tooLarge(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errTooLarge
	}
	return err
}

// fail answers with a google.rpc.Status, as OTLP/HTTP asks.
func (rc *Receiver) fail(w http.ResponseWriter, mt string, status int, msg string) {
	rc.log.Warn("topologyotlp: export refused", "status", status, "err", msg)
	rc.reply(w, mt, status, &spb.Status{Code: grpcCode(status), Message: "topologyotlp: " + msg})
}

func grpcCode(status int) int32 {
	switch status {
	case http.StatusBadRequest, http.StatusUnsupportedMediaType:
		return 3 // INVALID_ARGUMENT
	case http.StatusRequestEntityTooLarge:
		return 8 // RESOURCE_EXHAUSTED
	}
	return 12 // UNIMPLEMENTED
}

func (rc *Receiver) reply(w http.ResponseWriter, mt string, status int, m proto.Message) {
	var b []byte
	var err error
	if mt == ContentTypeProtobuf {
		b, err = proto.Marshal(m)
	} else {
		mt = ContentTypeJSON
		b, err = protojson.Marshal(m)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", mt)
	w.WriteHeader(status)
	w.Write(b)
}

// decodeProtobuf turns a binary ExportTraceServiceRequest into spans, as
// topology.ReadOTLP does JSON: ids in hex, service.name from the resource.
func decodeProtobuf(b []byte) ([]topology.Span, error) {
	var req coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		return nil, fmt.Errorf("not an OTLP ExportTraceServiceRequest: %w", err)
	}
	var spans []topology.Span
	for ri, rs := range req.GetResourceSpans() {
		service := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for si, sp := range ss.GetSpans() {
				if len(spans) >= topology.MaxOTLPSpans {
					return nil, fmt.Errorf("more than %d spans", topology.MaxOTLPSpans)
				}
				if len(sp.GetTraceId()) != 16 || len(sp.GetSpanId()) != 8 {
					return nil, fmt.Errorf("resourceSpans[%d], span %d: traceId must be 16 bytes and spanId 8 (got %d and %d)",
						ri, si, len(sp.GetTraceId()), len(sp.GetSpanId()))
				}
				kind := topology.SpanKind(sp.GetKind())
				if kind < topology.KindUnspecified || kind > topology.KindConsumer {
					return nil, fmt.Errorf("span %x: kind %d is not a span kind", sp.GetSpanId(), sp.GetKind())
				}
				s := topology.Span{TraceID: hex.EncodeToString(sp.GetTraceId()), SpanID: hex.EncodeToString(sp.GetSpanId()),
					Service: service, Kind: kind, Name: sp.GetName(), Attrs: map[string]string{},
					Error: sp.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR,
					Start: time.Unix(0, int64(sp.GetStartTimeUnixNano())), End: time.Unix(0, int64(sp.GetEndTimeUnixNano()))}
				if p := sp.GetParentSpanId(); len(p) > 0 {
					s.ParentSpanID = hex.EncodeToString(p)
				}
				for _, a := range sp.GetAttributes() {
					if v, ok := scalar(a.GetValue()); ok {
						s.Attrs[a.GetKey()] = v
					}
				}
				spans = append(spans, s)
			}
		}
	}
	return spans, nil
}

// scalar renders a string, int, bool or double attribute as ReadOTLP does;
// arrays, maps and bytes are left out.
func scalar(v *commonpb.AnyValue) (string, bool) {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue, true
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10), true
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue), true
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64), true
	}
	return "", false
}
