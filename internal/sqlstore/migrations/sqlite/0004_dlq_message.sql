-- The relay holds a key while the dead letter of its refused row is open: it
-- finds the letter by message id.
CREATE INDEX IF NOT EXISTS handoff_dlq_message ON handoff_dlq (message_id);
