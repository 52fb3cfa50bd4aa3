package topologyotlp_test

import (
	"compress/gzip"
	"io"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

func gzipWriter(w io.Writer) *gzip.Writer { return gzip.NewWriter(w) }

// shortIDs is a request with a span whose ids are too short.
func shortIDs() []byte {
	b, _ := proto.Marshal(&coltrace.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource:   &resourcepb.Resource{},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{TraceId: []byte{1}, SpanId: []byte{2}, Kind: tracepb.Span_SPAN_KIND_CLIENT}}}},
	}}})
	return b
}
