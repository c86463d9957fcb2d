-- A queued callback keeps the caller's priority in its queue (0-9, from the menus'
-- `queue: { name, priority }`), so a restart puts it back in line where it belongs.
ALTER TABLE callback_requests ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
