-- The trace journal (saga.Trace): what happened to messages that carry a
-- correlation id. A row is written in the transaction that did it: "sent"
-- with the outbox row, "handled" with the inbox mark and the handler's
-- writes, "deadlettered" with the dead letter. at is Unix microseconds
-- from the writer's clock; id breaks ties.
CREATE TABLE IF NOT EXISTS handoff_trace (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    correlation_id TEXT    NOT NULL,
    at             BIGINT  NOT NULL,
    kind           TEXT    NOT NULL,
    message_id     TEXT    NOT NULL,
    causation_id   TEXT    NOT NULL,
    topic          TEXT    NOT NULL,
    type           TEXT    NOT NULL,
    actor          TEXT    NOT NULL,
    error          TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS handoff_trace_correlation ON handoff_trace (correlation_id, id);
CREATE INDEX IF NOT EXISTS handoff_trace_at ON handoff_trace (at);
