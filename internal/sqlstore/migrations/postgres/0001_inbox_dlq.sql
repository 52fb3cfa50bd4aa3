-- Inbox marks and dead letters.
CREATE TABLE handoff_inbox (
    consumer    VARCHAR(255) NOT NULL,
    message_id  VARCHAR(255) NOT NULL,
    received_at TIMESTAMPTZ  NOT NULL,
    PRIMARY KEY (consumer, message_id)
);
CREATE INDEX handoff_inbox_received ON handoff_inbox (received_at);

CREATE TABLE handoff_dlq (
    id            VARCHAR(64)  COLLATE "C" PRIMARY KEY,
    consumer      VARCHAR(255) NOT NULL,
    topic         VARCHAR(255) NOT NULL,
    class         VARCHAR(64)  NOT NULL,
    message_id    VARCHAR(255) NOT NULL,
    attrs         TEXT         NOT NULL,
    data          BYTEA,
    errors        TEXT         NOT NULL,
    stack         TEXT         NOT NULL,
    attempts      INTEGER      NOT NULL,
    first_failure TIMESTAMPTZ  NOT NULL,
    last_failure  TIMESTAMPTZ  NOT NULL,
    replayed_at   TIMESTAMPTZ,
    replay_count  INTEGER      NOT NULL DEFAULT 0,
    claim_token   VARCHAR(64),
    claim_until   TIMESTAMPTZ
);
CREATE INDEX handoff_dlq_consumer ON handoff_dlq (consumer, id);
CREATE INDEX handoff_dlq_consumer_open ON handoff_dlq (consumer) WHERE replayed_at IS NULL;
CREATE INDEX handoff_dlq_topic ON handoff_dlq (topic, id);
CREATE INDEX handoff_dlq_class ON handoff_dlq (class, id);
CREATE INDEX handoff_dlq_last_failure ON handoff_dlq (last_failure);

-- One row per consumer with dead letters: Add, replay and delete lock it, so
-- "is this the consumer's first open letter" is decided one at a time.
CREATE TABLE handoff_dlq_consumers (
    consumer VARCHAR(255) PRIMARY KEY,
    touched  BIGINT NOT NULL DEFAULT 0
);
