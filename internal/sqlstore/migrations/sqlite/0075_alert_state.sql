-- The alerts firing among the processes that share this database
-- (alert.WithState): one row per alert key, its last episode. A transition
-- is one conditional statement, whose affected-row count tells the one
-- process that changed it (and so notifies).
CREATE TABLE IF NOT EXISTS handoff_alert_state (
    alert_key       TEXT PRIMARY KEY,
    alert_condition TEXT NOT NULL,
    status          TEXT NOT NULL,
    subject         TEXT NOT NULL,
    severity        TEXT NOT NULL,
    summary         TEXT NOT NULL,
    details         TEXT NOT NULL,
    fired_at        INTEGER NOT NULL,
    resolved_at     INTEGER,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS handoff_alert_state_firing ON handoff_alert_state (alert_condition, status);
