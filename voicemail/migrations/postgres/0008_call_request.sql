-- Outcomes from the request itself (issue #12): the callback request a call left, if it
-- left one (callback_requests.id), so reports count a call as leaving a request only when
-- one was stored, not whenever it went to voicemail. Records written before this column
-- are linked by their Call-ID to a request received while the call lasted.
ALTER TABLE calls ADD COLUMN request_id TEXT;
UPDATE calls SET request_id = (
    SELECT MIN(r.id) FROM callback_requests r
    WHERE r.call_id = calls.call_id
      AND r.received_at * 1000 >= calls.started_ms - 1000
      AND r.received_at * 1000 <= calls.ended_ms
) WHERE exit_kind IN ('voicemail', 'callback') AND request_id IS NULL;
