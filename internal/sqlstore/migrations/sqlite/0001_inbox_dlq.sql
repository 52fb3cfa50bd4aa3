-- Inbox marks and dead letters. Times are INTEGER microseconds since the Unix epoch (UTC).
CREATE TABLE handoff_inbox (
    consumer    TEXT    NOT NULL,
    message_id  TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (consumer, message_id)
) WITHOUT ROWID;
CREATE INDEX handoff_inbox_received ON handoff_inbox (received_at);

CREATE TABLE handoff_dlq (
    id            TEXT    PRIMARY KEY,
    consumer      TEXT    NOT NULL,
    topic         TEXT    NOT NULL,
    class         TEXT    NOT NULL,
    message_id    TEXT    NOT NULL,
    attrs         TEXT    NOT NULL,
    data          BLOB,
    errors        TEXT    NOT NULL,
    stack         TEXT    NOT NULL,
    attempts      INTEGER NOT NULL,
    first_failure INTEGER NOT NULL,
    last_failure  INTEGER NOT NULL,
    replayed_at   INTEGER,
    replay_count  INTEGER NOT NULL DEFAULT 0,
    claim_token   TEXT,
    claim_until   INTEGER
);
CREATE INDEX handoff_dlq_consumer ON handoff_dlq (consumer, id);
CREATE INDEX handoff_dlq_consumer_open ON handoff_dlq (consumer) WHERE replayed_at IS NULL;
CREATE INDEX handoff_dlq_topic ON handoff_dlq (topic, id);
CREATE INDEX handoff_dlq_class ON handoff_dlq (class, id);
CREATE INDEX handoff_dlq_last_failure ON handoff_dlq (last_failure);

CREATE TABLE handoff_dlq_consumers (
    consumer TEXT PRIMARY KEY,
    touched  INTEGER NOT NULL DEFAULT 0
);
