-- Callback requests and the history of every change to them. Flags are 0/1 integers (the
-- runtime-generic driver reads no SQLite BOOLEAN).
CREATE TABLE callback_requests (
    id TEXT PRIMARY KEY NOT NULL,
    mailbox TEXT NOT NULL,
    caller_id TEXT,
    called TEXT,
    call_id TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    callback_number TEXT,
    duration_ms BIGINT NOT NULL,
    language TEXT,
    menu_path TEXT NOT NULL,
    variables TEXT NOT NULL,
    hung_up INTEGER NOT NULL,
    has_message INTEGER NOT NULL,
    recovered INTEGER NOT NULL,
    status TEXT NOT NULL,
    assignee TEXT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX callback_requests_by_mailbox ON callback_requests (mailbox, status, received_at);

CREATE TABLE callback_history (
    seq BIGSERIAL PRIMARY KEY,
    request_id TEXT NOT NULL REFERENCES callback_requests (id) ON DELETE CASCADE,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX callback_history_by_request ON callback_history (request_id, seq);
