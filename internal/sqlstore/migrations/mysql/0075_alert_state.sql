-- The alerts firing among the processes that share this database
-- (alert.WithState): one row per alert key, its last episode. A transition
-- is one conditional statement, whose affected-row count tells the one
-- process that changed it (and so notifies).
CREATE TABLE IF NOT EXISTS handoff_alert_state (
    alert_key       VARBINARY(512) NOT NULL PRIMARY KEY,
    alert_condition VARBINARY(255) NOT NULL,
    status          VARBINARY(16) NOT NULL,
    subject         TEXT NOT NULL,
    severity        TEXT NOT NULL,
    summary         TEXT NOT NULL,
    details         TEXT NOT NULL,
    fired_at        DATETIME(6) NOT NULL,
    resolved_at     DATETIME(6),
    updated_at      DATETIME(6) NOT NULL
) ENGINE=InnoDB;
CREATE INDEX IF NOT EXISTS handoff_alert_state_firing ON handoff_alert_state (alert_condition, status);
