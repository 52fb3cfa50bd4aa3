-- The transactional outbox and the relay's partition leases. Times are
-- INTEGER microseconds since the Unix epoch.
CREATE TABLE IF NOT EXISTS handoff_outbox (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    topic         TEXT    NOT NULL,
    partition_no  INTEGER NOT NULL,
    partition_key TEXT    NOT NULL DEFAULT '',
    message_id    TEXT    NOT NULL,
    envelope      BLOB    NOT NULL,
    created_at    INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    failed_at     INTEGER NULL,
    failure       TEXT    NULL
);
CREATE INDEX IF NOT EXISTS handoff_outbox_partition ON handoff_outbox (partition_no, id);
CREATE INDEX IF NOT EXISTS handoff_outbox_failed ON handoff_outbox (partition_key, id) WHERE failed_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS handoff_outbox_message ON handoff_outbox (message_id);

CREATE TABLE IF NOT EXISTS handoff_outbox_keys (
    partition_key TEXT    PRIMARY KEY,
    writes        INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE IF NOT EXISTS handoff_outbox_leases (
    partition_no INTEGER PRIMARY KEY,
    owner        TEXT    NOT NULL,
    expires_at   INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS handoff_relays (
    owner      TEXT    PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
