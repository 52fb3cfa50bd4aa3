-- The observed topology (topology.Shared): one row per edge and route,
-- counts added by every process that observed it. The latency summary is
-- the sum (total_ns) and a histogram of call counts per bucket of
-- topologystore.LatencyBounds (b0..b11, b12 above the largest), so rows
-- merge by adding. Rows not seen for the retention period are deleted.
CREATE TABLE IF NOT EXISTS handoff_topology_edges (
    from_node VARBINARY(512) NOT NULL,
    to_node   VARBINARY(512) NOT NULL,
    kind      VARBINARY(16) NOT NULL,
    route     VARBINARY(512) NOT NULL,
    protocol  VARBINARY(512) NOT NULL DEFAULT '',
    calls     BIGINT NOT NULL,
    errors    BIGINT NOT NULL,
    total_ns  BIGINT NOT NULL,
    b0 BIGINT NOT NULL DEFAULT 0,
    b1 BIGINT NOT NULL DEFAULT 0,
    b2 BIGINT NOT NULL DEFAULT 0,
    b3 BIGINT NOT NULL DEFAULT 0,
    b4 BIGINT NOT NULL DEFAULT 0,
    b5 BIGINT NOT NULL DEFAULT 0,
    b6 BIGINT NOT NULL DEFAULT 0,
    b7 BIGINT NOT NULL DEFAULT 0,
    b8 BIGINT NOT NULL DEFAULT 0,
    b9 BIGINT NOT NULL DEFAULT 0,
    b10 BIGINT NOT NULL DEFAULT 0,
    b11 BIGINT NOT NULL DEFAULT 0,
    b12 BIGINT NOT NULL DEFAULT 0,
    last_seen DATETIME(6) NOT NULL,
    PRIMARY KEY (from_node, to_node, kind, route)
) ENGINE=InnoDB;
CREATE INDEX IF NOT EXISTS handoff_topology_edges_seen ON handoff_topology_edges (last_seen);
