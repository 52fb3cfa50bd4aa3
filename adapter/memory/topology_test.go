package memory_test

import (
	"testing"

	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/handofftest"
	"github.com/handoffhq/handoff/topology/topologystore"
)

func TestTopologyStore(t *testing.T) {
	handofftest.RunTopologyStore(t, func(testing.TB) topologystore.Store { return memory.NewTopologyStore() })
}
