package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/handoffhq/handoff/saga"
)

// CountsByName returns how many unfinished sagas each saga name has in
// each status (running, compensating, stuck), read through the index of
// unfinished sagas: ended sagas are not scanned. (Counts, saga.Lister's,
// counts every status over every saga, without names.)
func (s *SagaStore) CountsByName(ctx context.Context) ([]saga.Count, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, status, COUNT(*) FROM handoff_saga
		WHERE ended_at IS NULL GROUP BY name, status ORDER BY name, status`)
	if err != nil {
		return nil, fmt.Errorf("saga counts: %w", err)
	}
	defer rows.Close()
	var out []saga.Count
	for rows.Next() {
		var c saga.Count
		if err := rows.Scan(&c.Name, &c.Status, &c.Sagas); err != nil {
			return nil, fmt.Errorf("saga counts: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Unleased returns, for each outbox partition that has pending rows and
// that no live lease covers now, the time since which its oldest pending
// row has been waiting uncovered: the later of that row's creation and the
// end of the partition's last lease (the creation when it never had one).
// Leases are timed by the relays' clocks, as Claim times them; a partition
// whose rows are all failed (held by their dead letter) is not listed.
func (s *OutboxStore) Unleased(ctx context.Context) (map[int]time.Time, error) {
	rows, err := s.db.Query(ctx, s.d.q(`SELECT o.partition_no, MIN(o.created_at), MAX(l.expires_at)
		FROM handoff_outbox o LEFT JOIN handoff_outbox_leases l ON l.partition_no = o.partition_no
		WHERE o.failed_at IS NULL AND (l.partition_no IS NULL OR l.expires_at <= ?)
		GROUP BY o.partition_no`), s.d.timeArg(s.now().UTC()))
	if err != nil {
		return nil, fmt.Errorf("unleased partitions: %w", err)
	}
	defer rows.Close()
	out := map[int]time.Time{}
	for rows.Next() {
		var p int
		var oldest, expired time.Time
		if err := rows.Scan(&p, timeScan{&oldest}, timeScan{&expired}); err != nil {
			return nil, fmt.Errorf("unleased partitions: %w", err)
		}
		out[p] = oldest
		if expired.After(oldest) {
			out[p] = expired
		}
	}
	return out, rows.Err()
}
