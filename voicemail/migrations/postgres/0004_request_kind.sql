-- Callback requests of two kinds: left in a mailbox (voicemail), or a queued callback that
-- keeps a caller's place in a queue (queue_callback, with the queue's name).
ALTER TABLE callback_requests ADD COLUMN kind TEXT NOT NULL DEFAULT 'voicemail';
ALTER TABLE callback_requests ADD COLUMN queue TEXT;
