-- Idempotency-Key records (package idempotency): one row per scoped key.
-- Times are Unix milliseconds from the middleware's clock. The columns are
-- those the former idempotency.SQLStore created, so a table it made is kept.
CREATE TABLE IF NOT EXISTS handoff_idempotency (
    idem_key     TEXT    PRIMARY KEY,
    fingerprint  TEXT    NOT NULL,
    token        TEXT    NOT NULL,
    done         INTEGER NOT NULL,
    status       INTEGER NOT NULL,
    header       TEXT    NOT NULL,
    body         BYTEA,
    locked_until BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL
);
CREATE INDEX IF NOT EXISTS handoff_idempotency_expires ON handoff_idempotency (expires_at);
