package resiliencehttp

import (
	"reflect"

	"go.opentelemetry.io/otel/trace"
)

// isGlobalDelegate reports whether tp is the OpenTelemetry global package's
// own provider, which stands in (and delegates) until otel.SetTracerProvider
// is called. Its type is unexported, so it is recognised by name.
func isGlobalDelegate(tp trace.TracerProvider) bool {
	t := reflect.TypeOf(tp)
	return t != nil && t.Kind() == reflect.Pointer && t.Elem().PkgPath() == "go.opentelemetry.io/otel/internal/global"
}
