-- The trace journal (saga.Trace): what happened to messages that carry a
-- correlation id. A row is written in the transaction that did it: "sent"
-- with the outbox row, "handled" with the inbox mark and the handler's
-- writes, "deadlettered" with the dead letter. at is Unix microseconds
-- from the writer's clock; id breaks ties.
CREATE TABLE IF NOT EXISTS handoff_trace (
    id             BIGSERIAL    PRIMARY KEY,
    correlation_id VARCHAR(255) NOT NULL,
    at             BIGINT       NOT NULL,
    kind           VARCHAR(20)  NOT NULL,
    message_id     VARCHAR(255) NOT NULL,
    causation_id   VARCHAR(255) NOT NULL,
    topic          VARCHAR(255) NOT NULL,
    type           VARCHAR(255) NOT NULL,
    actor          VARCHAR(255) NOT NULL,
    error          TEXT         NOT NULL
);
CREATE INDEX IF NOT EXISTS handoff_trace_correlation ON handoff_trace (correlation_id, id);
CREATE INDEX IF NOT EXISTS handoff_trace_at ON handoff_trace (at);
