package saga

import "errors"

// Observer is told of the history events each transition of a saga
// records, with the saga as the transition left it (metrics, tests). It is
// called in the transition's transaction, once its writes are done and
// before it commits: a transaction that then fails (and is run again after
// a conflict) may have its events told twice, and a Start or HandleReply
// whose caller rolls back may have told events that never happened. So
// counts taken from it are at least once. It must be quick, must not
// block, and must not change in or events.
type Observer interface {
	ObserveSaga(in *Instance, events []Event)
}

// WithObserver sets the hook told of every transition's events.
func WithObserver(o Observer) Option {
	return func(c *Coordinator) error {
		if o == nil {
			return errors.New("saga: WithObserver: observer must not be nil")
		}
		c.observer = o
		return nil
	}
}
