//! Queued callbacks in the callback-request store: each request the center takes in a
//! caller's place is stored as a callback request of kind `queue_callback` (its mailbox and
//! queue are the queue's name), its status follows what becomes of it, staff closing it
//! cancels it, and the requests still waiting at a restart go back in line.
//!
//! The engine does no I/O: it asks the driver with [`Output::QueueCallback`] and hears back
//! with [`crate::Input::RestoreCallbacks`] (at start) and [`crate::Input::CancelCallback`]
//! (staff).

use crate::call::{App, CallHandle};
use crate::engine::Engine;
use crate::io::{Output, QueueCallbackCmd, RestoredCallback};
use ivr_queues::{CallbackId, Input, QueueEvent, QueueName};
use ivr_voicemail::{CallbackRequest, RequestKind};
use std::time::Instant;

impl Engine {
    /// The center took `callback` in the place of the caller on `handle`: store it.
    pub(crate) fn store_callback(
        &mut self,
        now: Instant,
        handle: CallHandle,
        callback: CallbackId,
    ) {
        let wall = self.wall_seconds(now);
        let id = format!("{wall}-{:08x}", self.ctx.rng.next_u32());
        let Some(call) = self.calls.get(&handle) else {
            return;
        };
        let App::Queued(q) = &call.app else { return };
        let menus = q.run.menus();
        let queue = menus.queue(q.queue).name.clone();
        // The center moved the caller's entry, priority and all, to the request.
        let priority = self
            .queueing
            .center
            .priority(&ivr_queues::Waiter::Callback(callback))
            .unwrap_or(0);
        let exit_to = queue.clone();
        let request = CallbackRequest {
            id: id.clone(),
            mailbox: queue.clone(),
            caller_id: call.caller.clone(),
            called: call.legs.first().and_then(|l| l.invite.uri.user()),
            call_id: call.call_id.to_string(),
            received_at: wall,
            callback_number: q.asked.clone(),
            duration_ms: 0,
            language: menus.languages().get(q.run.language()).cloned(),
            menu_path: call.path.clone(),
            variables: q.run.variables().to_vec(),
            hung_up: false,
            has_message: false,
            email_to: Vec::new(),
            kind: RequestKind::QueueCallback,
            queue: Some(queue),
            priority,
        };
        self.cdr_callback(handle, &exit_to, &id);
        self.queueing.store_ids.insert(callback, id);
        self.ctx
            .outputs
            .push_back(Output::QueueCallback(QueueCallbackCmd::Store(Box::new(
                request,
            ))));
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
                self.queueing.store_ids.remove(callback);
                return;
            }
            _ => return,
        };
        if let Some(id) = self.queueing.store_ids.remove(&callback) {
            self.ctx
                .outputs
                .push_back(Output::QueueCallback(QueueCallbackCmd::Status {
                    id,
                    status,
                    note,
                }));
        }
    }

    /// The requests still waiting at the last stop, oldest first: back in line in that
    /// order, each at the priority it was taken with. One the center cannot take back (its queue gone or without callbacks, a
    /// duplicate number) is closed as `no_answer` with a note.
    pub(crate) fn restore_callbacks(&mut self, now: Instant, list: Vec<RestoredCallback>) {
        // Queues and agents of the current config first.
        self.queues_sync(now);
        for r in list {
            self.queueing.restoring = Some(r.id.clone());
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
                self.queue_input(now, input);
            }
            if let Some(id) = self.queueing.restoring.take() {
                self.ctx
                    .outputs
                    .push_back(Output::QueueCallback(QueueCallbackCmd::Status {
                        id,
                        status: "no_answer",
                        note: "not restored after a restart: the queue has no callbacks now, or \
                               the number is not allowed or already waiting"
                            .into(),
                    }));
            }
        }
    }

    /// The center put a restored request back in line as `callback`.
    pub(crate) fn callback_restored(&mut self, callback: CallbackId) {
        if let Some(id) = self.queueing.restoring.take() {
            self.queueing.store_ids.insert(callback, id);
        }
    }

    /// Staff closed the stored request `id`: cancel it in the center.
    pub(crate) fn cancel_stored_callback(&mut self, now: Instant, id: &str) {
        let found = self
            .queueing
            .store_ids
            .iter()
            .find(|(_, v)| v.as_str() == id)
            .map(|(k, _)| *k);
        if let Some(callback) = found {
            self.queue_input(now, Input::CancelCallback(callback));
        }
    }
}
