-- Survey comments (issue #12): `GET /api/comments/{id}` asks whether a call record links
-- a key (each time a browser's player fetches a range of it), and the staff page lists
-- the newest comments every few seconds. Without an index each is a scan of every answer
-- (about 90 ms for 900,000 answers on SQLite); only answers with a comment are indexed.
CREATE INDEX call_answers_recording ON call_answers (recording) WHERE recording IS NOT NULL;
