-- The transactional outbox and the relay's partition leases.
CREATE TABLE IF NOT EXISTS handoff_outbox (
    id            BIGINT         NOT NULL AUTO_INCREMENT PRIMARY KEY,
    topic         VARBINARY(255) NOT NULL,
    partition_no  INT            NOT NULL,
    partition_key VARBINARY(255) NOT NULL DEFAULT '',
    message_id    VARBINARY(255) NOT NULL,
    envelope      LONGBLOB       NOT NULL,
    created_at    DATETIME(6)    NOT NULL,
    attempts      INT            NOT NULL DEFAULT 0,
    failed_at     DATETIME(6)    NULL,
    failure       MEDIUMTEXT     NULL,
    INDEX handoff_outbox_partition (partition_no, id),
    INDEX handoff_outbox_failed (partition_key, failed_at),
    INDEX handoff_outbox_message (message_id)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS handoff_outbox_keys (
    partition_key VARBINARY(255) NOT NULL PRIMARY KEY,
    writes        BIGINT         NOT NULL DEFAULT 1
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS handoff_outbox_leases (
    partition_no INT            NOT NULL PRIMARY KEY,
    owner        VARBINARY(255) NOT NULL,
    expires_at   DATETIME(6)    NOT NULL
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS handoff_relays (
    owner      VARBINARY(255) NOT NULL PRIMARY KEY,
    expires_at DATETIME(6)    NOT NULL
) ENGINE=InnoDB;
