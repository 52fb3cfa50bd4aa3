-- The observed topology (topology.Shared): one row per edge and route,
-- counts added by every process that observed it. The latency summary is
-- the sum (total_ns) and a histogram of call counts per bucket of
-- topologystore.LatencyBounds (b0..b11, b12 above the largest), so rows
-- merge by adding. Rows not seen for the retention period are deleted.
CREATE TABLE IF NOT EXISTS handoff_topology_edges (
    from_node TEXT NOT NULL,
    to_node   TEXT NOT NULL,
    kind      TEXT NOT NULL,
    route     TEXT NOT NULL,
    protocol  TEXT NOT NULL DEFAULT '',
    calls     INTEGER NOT NULL,
    errors    INTEGER NOT NULL,
    total_ns  INTEGER NOT NULL,
    b0 INTEGER NOT NULL DEFAULT 0,
    b1 INTEGER NOT NULL DEFAULT 0,
    b2 INTEGER NOT NULL DEFAULT 0,
    b3 INTEGER NOT NULL DEFAULT 0,
    b4 INTEGER NOT NULL DEFAULT 0,
    b5 INTEGER NOT NULL DEFAULT 0,
    b6 INTEGER NOT NULL DEFAULT 0,
    b7 INTEGER NOT NULL DEFAULT 0,
    b8 INTEGER NOT NULL DEFAULT 0,
    b9 INTEGER NOT NULL DEFAULT 0,
    b10 INTEGER NOT NULL DEFAULT 0,
    b11 INTEGER NOT NULL DEFAULT 0,
    b12 INTEGER NOT NULL DEFAULT 0,
    last_seen INTEGER NOT NULL,
    PRIMARY KEY (from_node, to_node, kind, route)
);
CREATE INDEX IF NOT EXISTS handoff_topology_edges_seen ON handoff_topology_edges (last_seen);
