-- Sagas (package saga): one row per instance, its history in
-- handoff_saga_events. Times are Unix microseconds from the coordinators'
-- clocks. due_at is the instance's durable timer (NULL: nothing due until
-- a reply or an operator), found through an index, never by a scan.
CREATE TABLE IF NOT EXISTS handoff_saga (
    id             VARCHAR(128) NOT NULL PRIMARY KEY,
    name           VARCHAR(100) NOT NULL,
    version        VARCHAR(64)  NOT NULL,
    correlation_id VARCHAR(255) NOT NULL,
    status         VARCHAR(20)  NOT NULL,
    step_no        INT          NOT NULL,
    steps          MEDIUMTEXT   NOT NULL,
    data           MEDIUMTEXT   NOT NULL,
    due_at         BIGINT       NULL,
    deadline       BIGINT       NOT NULL,
    lease_owner    VARCHAR(100) NOT NULL,
    lease_until    BIGINT       NOT NULL,
    epoch          BIGINT       NOT NULL,
    events         INT          NOT NULL,
    error          TEXT         NOT NULL,
    created_at     BIGINT       NOT NULL,
    updated_at     BIGINT       NOT NULL,
    ended_at       BIGINT       NULL,
    INDEX handoff_saga_due (due_at),
    INDEX handoff_saga_correlation (correlation_id),
    INDEX handoff_saga_inflight (ended_at, name, version, step_no)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS handoff_saga_events (
    saga_id     VARCHAR(128) NOT NULL,
    seq         INT          NOT NULL,
    at          BIGINT       NOT NULL,
    kind        VARCHAR(40)  NOT NULL,
    step        VARCHAR(100) NOT NULL,
    attempt     INT          NOT NULL,
    gen         INT          NOT NULL,
    duration_us BIGINT       NOT NULL,
    error       TEXT         NOT NULL,
    owner       VARCHAR(100) NOT NULL,
    epoch       BIGINT       NOT NULL,
    PRIMARY KEY (saga_id, seq)
) ENGINE=InnoDB;
