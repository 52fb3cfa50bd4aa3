package topology

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/handoffhq/handoff/system"
)

// SpanKind is OpenTelemetry's span kind, numbered as in OTLP.
type SpanKind int

// Span kinds.
const (
	KindUnspecified SpanKind = 0
	KindInternal    SpanKind = 1
	KindServer      SpanKind = 2
	KindClient      SpanKind = 3
	KindProducer    SpanKind = 4
	KindConsumer    SpanKind = 5
)

// Span is the part of an OpenTelemetry span the graph reads: which service
// emitted it (the resource's service.name), its kind, its parent, its
// attributes (HTTP, RPC and messaging semantic conventions), its times and
// whether it failed.
type Span struct {
	TraceID, SpanID, ParentSpanID string
	Service                       string
	Kind                          SpanKind
	Name                          string
	Attrs                         map[string]string
	Start, End                    time.Time
	Error                         bool
}

// Resolver names the service behind a network address (server.address or
// server.address:server.port) for client spans whose server side was not
// traced; nil or "" leaves the address itself as the node.
type Resolver func(address string) string

// Observations turns spans into handoffs:
//
//   - a CLIENT span whose child is a SERVER span of another service is a
//     synchronous call from the client's service to the server's, with the
//     server's http.route (or the RPC method) as the route;
//   - a CLIENT span without a traced server side calls its peer.service,
//     else the service resolve names for server.address, else the address;
//   - a PRODUCER span publishes to its messaging.destination.name, a
//     CONSUMER span consumes from it (asynchronous);
//
// Protocols follow the conventions: rpc.system (grpc), messaging.system
// (nats, kafka, rabbitmq as amqp), else http when an HTTP method is set.
// Spans of other kinds, and client spans without any peer, are skipped.
func Observations(spans []Span, resolve Resolver) []Observation {
	children := map[string][]*Span{}
	for i := range spans {
		s := &spans[i]
		if s.ParentSpanID != "" {
			children[s.TraceID+"/"+s.ParentSpanID] = append(children[s.TraceID+"/"+s.ParentSpanID], s)
		}
	}
	var out []Observation
	for i := range spans {
		s := &spans[i]
		if s.Service == "" {
			continue
		}
		o := Observation{Err: s.Error, Duration: s.End.Sub(s.Start), Protocol: protocol(s.Attrs)}
		if o.Duration < 0 {
			o.Duration = 0
		}
		switch s.Kind {
		case KindClient:
			o.From, o.Kind = s.Service, system.Sync
			o.Route = route(s.Attrs)
			for _, c := range children[s.TraceID+"/"+s.SpanID] {
				if c.Kind == KindServer && c.Service != "" && c.Service != s.Service {
					o.To = c.Service
					if r := route(c.Attrs); r != "" {
						o.Route = r
					}
					break
				}
			}
			if o.To == "" {
				o.To = peer(s.Attrs, resolve)
			}
			if o.Protocol == "" && (s.Attrs["http.request.method"] != "" || s.Attrs["http.method"] != "") {
				o.Protocol = "http"
			}
		case KindProducer, KindConsumer:
			dest := first(s.Attrs, "messaging.destination.name", "messaging.destination")
			if dest == "" {
				continue
			}
			o.Kind = system.Async
			if s.Kind == KindProducer {
				o.From, o.To, o.Route = s.Service, dest, "publish"
			} else {
				o.From, o.To, o.Route = dest, s.Service, "consume"
			}
		default:
			continue
		}
		if o.To == "" || o.From == o.To {
			continue
		}
		out = append(out, o)
	}
	return out
}

func first(a map[string]string, keys ...string) string {
	for _, k := range keys {
		if v := a[k]; v != "" {
			return v
		}
	}
	return ""
}

func protocol(a map[string]string) string {
	if a["rpc.system"] == "grpc" {
		return "grpc"
	}
	switch m := a["messaging.system"]; m {
	case "":
	case "rabbitmq":
		return "amqp"
	default:
		return m
	}
	if first(a, "http.request.method", "http.method") != "" {
		return "http"
	}
	return ""
}

func route(a map[string]string) string {
	if svc, m := a["rpc.service"], a["rpc.method"]; svc != "" && m != "" {
		return svc + "/" + m
	}
	method := first(a, "http.request.method", "http.method")
	if r := a["http.route"]; r != "" {
		return strings.TrimSpace(method + " " + r)
	}
	return ""
}

func peer(a map[string]string, resolve Resolver) string {
	if p := a["peer.service"]; p != "" {
		return p
	}
	addr := first(a, "server.address", "net.peer.name")
	if addr == "" {
		return ""
	}
	if port := first(a, "server.port", "net.peer.port"); port != "" {
		addr += ":" + port
	}
	if resolve != nil {
		if s := resolve(addr); s != "" {
			return s
		}
	}
	return addr
}

// Budget of ReadOTLP.
const (
	MaxOTLPSize  = 64 << 20
	MaxOTLPSpans = 1_000_000
)

// OTLP/JSON (the OTLP HTTP exporter's "application/json" body of an
// ExportTraceServiceRequest).
type otlpRequest struct {
	ResourceSpans []struct {
		Resource struct {
			Attributes []otlpAttr `json:"attributes"`
		} `json:"resource"`
		ScopeSpans []struct {
			Spans []struct {
				TraceID           string     `json:"traceId"`
				SpanID            string     `json:"spanId"`
				ParentSpanID      string     `json:"parentSpanId"`
				Name              string     `json:"name"`
				Kind              SpanKind   `json:"kind"`
				StartTimeUnixNano otlpUint   `json:"startTimeUnixNano"`
				EndTimeUnixNano   otlpUint   `json:"endTimeUnixNano"`
				Attributes        []otlpAttr `json:"attributes"`
				Status            struct {
					Code int `json:"code"`
				} `json:"status"`
			} `json:"spans"`
		} `json:"scopeSpans"`
	} `json:"resourceSpans"`
}

type otlpAttr struct {
	Key   string `json:"key"`
	Value struct {
		StringValue *string          `json:"stringValue"`
		IntValue    *otlpUint        `json:"intValue"`
		BoolValue   *bool            `json:"boolValue"`
		DoubleValue *float64         `json:"doubleValue"`
		Other       *json.RawMessage `json:"arrayValue"`
	} `json:"value"`
}

// otlpUint reads OTLP/JSON's 64-bit integers, written as strings (or, by
// some encoders, as numbers).
type otlpUint int64

func (u *otlpUint) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("not a 64-bit integer: %s", b)
	}
	*u = otlpUint(n)
	return nil
}

// ReadOTLP decodes OTLP/JSON trace exports (one ExportTraceServiceRequest
// per JSON value; several may follow each other, as in a collector's file
// exporter output) into spans. Bad input is refused with the request and
// span it was in; size and span count are bounded.
func ReadOTLP(r io.Reader) ([]Span, error) {
	dec := json.NewDecoder(io.LimitReader(r, MaxOTLPSize+1))
	var spans []Span
	for n := 0; ; n++ {
		var req otlpRequest
		err := dec.Decode(&req)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("topology: OTLP request %d: %w", n, err)
		}
		if dec.InputOffset() > MaxOTLPSize {
			return nil, fmt.Errorf("topology: OTLP input larger than %d bytes", MaxOTLPSize)
		}
		for ri, rs := range req.ResourceSpans {
			service := ""
			for _, a := range rs.Resource.Attributes {
				if a.Key == "service.name" && a.Value.StringValue != nil {
					service = *a.Value.StringValue
				}
			}
			for _, ss := range rs.ScopeSpans {
				for si, sp := range ss.Spans {
					if len(spans) >= MaxOTLPSpans {
						return nil, fmt.Errorf("topology: more than %d spans", MaxOTLPSpans)
					}
					if sp.SpanID == "" || sp.TraceID == "" {
						return nil, fmt.Errorf("topology: OTLP request %d, resourceSpans[%d], span %d: traceId and spanId are required", n, ri, si)
					}
					if sp.Kind < KindUnspecified || sp.Kind > KindConsumer {
						return nil, fmt.Errorf("topology: OTLP request %d, span %s: kind %d is not a span kind", n, sp.SpanID, sp.Kind)
					}
					s := Span{TraceID: sp.TraceID, SpanID: sp.SpanID, ParentSpanID: sp.ParentSpanID, Service: service,
						Kind: sp.Kind, Name: sp.Name, Attrs: map[string]string{}, Error: sp.Status.Code == 2,
						Start: time.Unix(0, int64(sp.StartTimeUnixNano)), End: time.Unix(0, int64(sp.EndTimeUnixNano))}
					for _, a := range sp.Attributes {
						switch v := a.Value; {
						case v.StringValue != nil:
							s.Attrs[a.Key] = *v.StringValue
						case v.IntValue != nil:
							s.Attrs[a.Key] = strconv.FormatInt(int64(*v.IntValue), 10)
						case v.BoolValue != nil:
							s.Attrs[a.Key] = strconv.FormatBool(*v.BoolValue)
						case v.DoubleValue != nil:
							s.Attrs[a.Key] = strconv.FormatFloat(*v.DoubleValue, 'g', -1, 64)
						}
					}
					spans = append(spans, s)
				}
			}
		}
	}
	sort.SliceStable(spans, func(i, j int) bool { return spans[i].Start.Before(spans[j].Start) })
	return spans, nil
}

// ObserveSpans records the observations of spans in g and returns how many
// it recorded.
func (g *Graph) ObserveSpans(spans []Span, resolve Resolver) (int, error) {
	return ObserveSpans(g, spans, resolve)
}

// ObserveSpans gives the observations of spans to o (a Graph, or a Shared
// graph) and returns how many it gave. A Shared graph takes all of them or,
// if it refuses one, none.
func ObserveSpans(o Observer, spans []Span, resolve Resolver) (int, error) {
	obs := Observations(spans, resolve)
	if s, ok := o.(*Shared); ok {
		if err := s.observeAll(obs); err != nil {
			return 0, err
		}
		return len(obs), nil
	}
	for _, ob := range obs {
		if err := o.Observe(ob); err != nil {
			return 0, err
		}
	}
	return len(obs), nil
}
