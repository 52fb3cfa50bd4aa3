package sqlstore

import "github.com/handoffhq/handoff/saga"

// ListQuery exposes List's statement to the plan tests.
func (s *SagaStore) ListQuery(f saga.ListFilter) (string, []any, error) { return s.listQuery(f) }
