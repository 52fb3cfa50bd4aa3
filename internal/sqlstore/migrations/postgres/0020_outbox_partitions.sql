-- The outbox's partition count, a property of the outbox: the first writer
-- or relay to start records its count (one row, id 1); every writer and
-- relay then checks its own against it, so a relay can never claim fewer
-- partitions than the writers spread rows over.
CREATE TABLE IF NOT EXISTS handoff_outbox_config (
    id         INT         PRIMARY KEY CHECK (id = 1),
    partitions INT         NOT NULL CHECK (partitions BETWEEN 1 AND 4096),
    created_at TIMESTAMPTZ NOT NULL
);
