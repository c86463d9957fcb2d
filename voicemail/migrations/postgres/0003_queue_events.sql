-- The queue event log (enter, offer, answer, abandon with position and wait, timeout,
-- transfer, callback, agent states), one row per event of the queue center, written by the
-- engine as events happen; `ivr queues report` reads it. Times are Unix milliseconds.
CREATE TABLE queue_events (
    seq BIGSERIAL PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    queue TEXT,
    waiter TEXT,
    agent TEXT,
    position BIGINT,
    wait_ms BIGINT,
    talk_ms BIGINT,
    detail TEXT
);
CREATE INDEX queue_events_at ON queue_events (at_ms);
