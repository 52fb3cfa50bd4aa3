-- Sagas (package saga): one row per instance, its history in
-- handoff_saga_events. Times are Unix microseconds from the coordinators'
-- clocks. due_at is the instance's durable timer (NULL: nothing due until
-- a reply or an operator), found through a partial index, never by a scan.
CREATE TABLE IF NOT EXISTS handoff_saga (
    id             TEXT    PRIMARY KEY,
    name           TEXT    NOT NULL,
    version        TEXT    NOT NULL,
    correlation_id TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    step_no        INTEGER NOT NULL,
    steps          TEXT    NOT NULL,
    data           TEXT    NOT NULL,
    due_at         BIGINT,
    deadline       BIGINT  NOT NULL,
    lease_owner    TEXT    NOT NULL,
    lease_until    BIGINT  NOT NULL,
    epoch          BIGINT  NOT NULL,
    events         INTEGER NOT NULL,
    error          TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL,
    ended_at       BIGINT
);
CREATE INDEX IF NOT EXISTS handoff_saga_due ON handoff_saga (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS handoff_saga_correlation ON handoff_saga (correlation_id);
CREATE INDEX IF NOT EXISTS handoff_saga_inflight ON handoff_saga (name, version, step_no) WHERE ended_at IS NULL;
CREATE INDEX IF NOT EXISTS handoff_saga_ended ON handoff_saga (ended_at) WHERE ended_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS handoff_saga_events (
    saga_id     TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    at          BIGINT  NOT NULL,
    kind        TEXT    NOT NULL,
    step        TEXT    NOT NULL,
    attempt     INTEGER NOT NULL,
    gen         INTEGER NOT NULL,
    duration_us BIGINT  NOT NULL,
    error       TEXT    NOT NULL,
    owner       TEXT    NOT NULL,
    epoch       BIGINT  NOT NULL,
    PRIMARY KEY (saga_id, seq)
);
