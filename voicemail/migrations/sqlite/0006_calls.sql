-- Call records (issue #12): one row per call, written by the engine when the call ends,
-- and its path through the menus, one row per step (so reports can count the keys, invalid
-- keys, timeouts and hang-ups of each menu in SQL). Times are Unix milliseconds. A Call-ID
-- comes from the caller and is not unique: rows are named by seq.
CREATE TABLE calls (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL,
    started_ms BIGINT NOT NULL,
    answered_ms BIGINT,
    ended_ms BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    caller TEXT,
    called TEXT,
    end_reason TEXT NOT NULL,
    entry TEXT,
    language TEXT,
    exit_kind TEXT,
    exit_to TEXT,
    queue TEXT,
    queue_wait_ms BIGINT,
    agent TEXT,
    steps_truncated BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX calls_started ON calls (started_ms);
CREATE INDEX calls_call_id ON calls (call_id);
CREATE TABLE call_steps (
    call_seq BIGINT NOT NULL,
    idx BIGINT NOT NULL,
    menu TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    pressed TEXT,
    prompt TEXT NOT NULL,
    PRIMARY KEY (call_seq, idx)
);
CREATE INDEX call_steps_menu ON call_steps (menu, outcome);
