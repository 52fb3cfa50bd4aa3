-- Idempotency-Key records (package idempotency): one row per scoped key.
-- Times are Unix milliseconds from the middleware's clock.
CREATE TABLE IF NOT EXISTS handoff_idempotency (
    idem_key     VARBINARY(1024) NOT NULL PRIMARY KEY,
    fingerprint  VARBINARY(255)  NOT NULL,
    token        VARBINARY(255)  NOT NULL,
    done         TINYINT         NOT NULL,
    status       INT             NOT NULL,
    header       MEDIUMTEXT      NOT NULL,
    body         LONGBLOB        NULL,
    locked_until BIGINT          NOT NULL,
    expires_at   BIGINT          NOT NULL,
    INDEX handoff_idempotency_expires (expires_at)
) ENGINE=InnoDB;
