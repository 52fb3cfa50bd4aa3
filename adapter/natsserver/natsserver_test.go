package natsserver

import (
	"strings"
	"testing"
)

func TestOptions_Validated(t *testing.T) {
	for _, o := range []Option{WithPort(0), WithMaxPayload(1), WithReadyTimeout(0), WithLogger(nil), nil} {
		if _, err := Start(t.TempDir(), o); err == nil || !strings.HasPrefix(err.Error(), "natsserver: ") {
			t.Errorf("option accepted or error unnamed: %v", err)
		}
	}
	if _, err := Start(""); err == nil {
		t.Error("Start with no directory accepted")
	}
}

// BenchmarkStart measures starting a server on a fresh directory until it
// accepts connections (the start of handoff dev).
func BenchmarkStart(b *testing.B) {
	for b.Loop() {
		e, err := Start(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		e.Shutdown()
	}
}
