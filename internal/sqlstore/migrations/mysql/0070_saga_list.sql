-- Saga listings (saga.Lister): newest first by (created_at, id), whole or
-- by status, saga name or correlation id, read through these indexes a
-- page at a time. The correlation id's index takes the order too, and
-- replaces the one without it.
CREATE INDEX IF NOT EXISTS handoff_saga_created ON handoff_saga (created_at, id);
CREATE INDEX IF NOT EXISTS handoff_saga_status_created ON handoff_saga (status, created_at, id);
CREATE INDEX IF NOT EXISTS handoff_saga_name_created ON handoff_saga (name, created_at, id);
CREATE INDEX IF NOT EXISTS handoff_saga_correlation_created ON handoff_saga (correlation_id, created_at, id);
DROP INDEX IF EXISTS handoff_saga_correlation ON handoff_saga;
