-- Satisfaction surveys (issue #12): the answers a caller gave after the agent or the
-- destination of a bridged call hung up, one row per question asked, with the call record
-- (calls.seq). `answer` is the key pressed (none unless `outcome` is `answered`); `outcome`
-- is `answered`, `timeout`, `invalid` or `hangup`.
CREATE TABLE call_answers (
    call_seq BIGINT NOT NULL,
    idx BIGINT NOT NULL,
    survey TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT,
    outcome TEXT NOT NULL,
    PRIMARY KEY (call_seq, idx)
);
CREATE INDEX call_answers_question ON call_answers (survey, question);
