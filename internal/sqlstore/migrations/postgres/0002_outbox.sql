-- The transactional outbox and the relay's partition leases.
CREATE TABLE IF NOT EXISTS handoff_outbox (
    id            BIGSERIAL   PRIMARY KEY,
    topic         TEXT        NOT NULL,
    partition_no  INT         NOT NULL,
    partition_key TEXT        NOT NULL DEFAULT '',
    message_id    TEXT        NOT NULL,
    envelope      BYTEA       NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    attempts      INT         NOT NULL DEFAULT 0,
    failed_at     TIMESTAMPTZ NULL,
    failure       TEXT        NULL
);
CREATE INDEX IF NOT EXISTS handoff_outbox_partition ON handoff_outbox (partition_no, id);
CREATE INDEX IF NOT EXISTS handoff_outbox_failed ON handoff_outbox (partition_key, id) WHERE failed_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS handoff_outbox_message ON handoff_outbox (message_id);

-- One row per partition key: writers of one key lock it, so their rows are
-- numbered in commit order.
CREATE TABLE IF NOT EXISTS handoff_outbox_keys (
    partition_key TEXT   PRIMARY KEY,
    writes        BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE IF NOT EXISTS handoff_outbox_leases (
    partition_no INT         PRIMARY KEY,
    owner        TEXT        NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS handoff_relays (
    owner      TEXT        PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL
);
