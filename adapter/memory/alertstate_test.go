package memory_test

import (
	"testing"

	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/alert/alertstate"
	"github.com/handoffhq/handoff/handofftest"
)

func TestAlertState(t *testing.T) {
	handofftest.RunAlertState(t, func(testing.TB) alertstate.Store { return memory.NewAlertState() })
}
