-- Inbox marks and dead letters. Keys are VARBINARY so that they compare
-- byte for byte (no case folding, no trailing-space padding). DDL commits
-- implicitly in MySQL, so each statement is safe to run again.
CREATE TABLE IF NOT EXISTS handoff_inbox (
    consumer    VARBINARY(255) NOT NULL,
    message_id  VARBINARY(255) NOT NULL,
    received_at DATETIME(6)    NOT NULL,
    PRIMARY KEY (consumer, message_id),
    INDEX handoff_inbox_received (received_at)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS handoff_dlq (
    id            VARBINARY(64)  NOT NULL PRIMARY KEY,
    consumer      VARBINARY(255) NOT NULL,
    topic         VARBINARY(255) NOT NULL,
    class         VARBINARY(64)  NOT NULL,
    message_id    VARBINARY(255) NOT NULL,
    attrs         MEDIUMTEXT     NOT NULL,
    data          LONGBLOB,
    errors        MEDIUMTEXT     NOT NULL,
    stack         MEDIUMTEXT     NOT NULL,
    attempts      INT            NOT NULL,
    first_failure DATETIME(6)    NOT NULL,
    last_failure  DATETIME(6)    NOT NULL,
    replayed_at   DATETIME(6)    NULL,
    replay_count  INT            NOT NULL DEFAULT 0,
    claim_token   VARBINARY(64)  NULL,
    claim_until   DATETIME(6)    NULL,
    INDEX handoff_dlq_consumer (consumer, id),
    INDEX handoff_dlq_consumer_open (consumer, replayed_at),
    INDEX handoff_dlq_topic (topic, id),
    INDEX handoff_dlq_class (class, id),
    INDEX handoff_dlq_last_failure (last_failure)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS handoff_dlq_consumers (
    consumer VARBINARY(255) NOT NULL PRIMARY KEY,
    touched  BIGINT         NOT NULL DEFAULT 0
) ENGINE=InnoDB;
