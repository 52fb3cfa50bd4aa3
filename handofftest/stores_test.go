package handofftest_test

import (
	"testing"

	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/handofftest"
)

func TestMemoryDLQStore(t *testing.T) {
	handofftest.RunDLQStore(t, func(t testing.TB) dlq.Store { return memory.NewDLQStore() })
}
