-- Notifications to deliver (webhooks), written in the same transaction as the request they
-- announce, so none is lost across restarts; delivered rows are kept for the record.
CREATE TABLE outbox (
    seq BIGSERIAL PRIMARY KEY,
    request_id TEXT NOT NULL,
    event TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    delivered_at BIGINT,
    last_error TEXT
);
CREATE INDEX outbox_due ON outbox (delivered_at, next_attempt_at);
