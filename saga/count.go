package saga

// Count is how many unfinished sagas of one name are in one status
// (Running, Compensating or Stuck): what the SQL stores' CountsByName
// returns, for the handoff.saga.instances gauge and the stuck-saga alert.
// Ended sagas are not counted: handoff.saga.events counts them as they end.
type Count struct {
	Name   string
	Status Status
	Sagas  int
}
