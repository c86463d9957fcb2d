//! Queued callbacks in the callback-request store, kept by the [`Hub`]: each request the
//! center takes in a caller's place is stored as a callback request of kind
//! `queue_callback` (its mailbox and queue are the queue's name), its status follows what
//! becomes of it, staff closing it cancels it, and the requests still waiting at a restart
//! go back in line.
//!
//! The hub does no I/O: it asks its owner with [`HubOutput::QueueCallback`] and hears back
//! with [`HubMsg::RestoreCallbacks`](crate::hub_msg::HubMsg::RestoreCallbacks) (at start) and
//! [`HubMsg::CancelCallback`](crate::hub_msg::HubMsg::CancelCallback) (staff).

use crate::hub::Hub;
use crate::hub_msg::HubOutput;
use crate::io::QueueCallbackCmd;
use ivr_queues::{CallRef, CallbackId, Input, QueueEvent, QueueName};
use std::time::Instant;

impl Hub {
    /// Seconds since the Unix epoch at `now`, by the last wall clock (0 before one came).
    fn wall_seconds(&self, now: Instant) -> u64 {
        let Some((at, wall)) = self.wall_anchor else {
            return 0;
        };
        let wall = wall + now.saturating_duration_since(at);
        wall.duration_since(std::time::SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    fn store_cmd(&mut self, cmd: QueueCallbackCmd) {
        self.out.push_back(HubOutput::QueueCallback(cmd));
    }

    /// The center took `callback` in the place of the caller on `call`: store the request
    /// the call sent with its `RequestCallback`, under a new id (returned).
    pub(crate) fn store_callback(&mut self, call: CallRef, callback: CallbackId) -> String {
        let wall = self.last_now.map_or(0, |now| self.wall_seconds(now));
        let id = format!("{wall}-{:08x}", self.rng.next_u32());
        let Some(mut request) = self.drafts.remove(&call) else {
            return id;
        };
        // The center moved the caller's entry, priority and all, to the request.
        request.priority = self
            .center
            .priority(&ivr_queues::Waiter::Callback(callback))
            .unwrap_or(0);
        request.id = id.clone();
        request.received_at = wall;
        self.store_ids.insert(callback, id.clone());
        self.store_cmd(QueueCallbackCmd::Store(request));
        id
    }

    /// What became of a stored callback, for its status.
    pub(crate) fn callback_store_event(&mut self, event: &QueueEvent) {
        let (callback, status, note) = match event {
            QueueEvent::CallbackConnected {
                callback, agent, ..
            } => (
                *callback,
                "called_back",
                format!("connected to agent {agent}"),
            ),
            QueueEvent::CallbackFailed {
                callback,
                attempt,
                retrying: false,
                ..
            } => (
                *callback,
                "no_answer",
                format!("given up after {attempt} attempt(s)"),
            ),
            QueueEvent::CallbackCancelled { callback, .. } => {
                // Staff closed it: their status stands.
                self.store_ids.remove(callback);
                return;
            }
            _ => return,
        };
        if let Some(id) = self.store_ids.remove(&callback) {
            self.store_cmd(QueueCallbackCmd::Status { id, status, note });
        }
    }

    /// The next restored request goes to the center once the one before is settled (its
    /// outputs all polled): one the center did not take back (its queue gone or without
    /// callbacks, a number no longer allowed, a duplicate number) is closed as `no_answer`
    /// with a note. Returns whether there may be more output.
    pub(crate) fn next_restore(&mut self) -> bool {
        if let Some(id) = self.restoring.take() {
            self.store_cmd(QueueCallbackCmd::Status {
                id,
                status: "no_answer",
                note: "not restored after a restart: the queue has no callbacks now, or the \
                       number is not allowed or already waiting"
                    .into(),
            });
            return true;
        }
        let Some(r) = self.restore_queue.pop_front() else {
            return false;
        };
        let Some(now) = self.last_now else {
            return false;
        };
        self.restoring = Some(r.id.clone());
        // The current config's rules (pattern, prefixes) decide, not those it was taken
        // under: a number they no longer allow is never called.
        let allowed = self
            .menus
            .queues()
            .iter()
            .find(|q| q.name == r.queue)
            .and_then(|q| q.callback.as_ref())
            .is_some_and(|cb| cb.allows(&r.number));
        if allowed {
            let input = Input::RestoreCallback {
                queue: QueueName::new(r.queue),
                number: r.number,
                priority: r.priority.min(ivr_menus::MAX_PRIORITY),
            };
            self.center.handle(now, input);
        }
        true
    }

    /// The center put a restored request back in line as `callback`.
    pub(crate) fn callback_restored(&mut self, callback: CallbackId) {
        if let Some(id) = self.restoring.take() {
            self.store_ids.insert(callback, id);
        }
    }

    /// Staff closed the stored request `id`: cancel it in the center.
    pub(crate) fn cancel_stored_callback(&mut self, now: Instant, id: &str) {
        let found = self
            .store_ids
            .iter()
            .find(|(_, v)| v.as_str() == id)
            .map(|(k, _)| *k);
        if let Some(callback) = found {
            self.center.handle(now, Input::CancelCallback(callback));
        }
    }
}
