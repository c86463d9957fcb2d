//! Queued callbacks: the caller's place in line passes to a callback request.
//!
//! 1. A waiting caller confirms a number ([`Input::RequestCallback`](crate::Input)): the
//!    entry keeps its arrival order and becomes [`Waiter::Callback`]; the caller's timers
//!    (max wait, announcements) stop; the engine hangs up.
//! 2. At its turn the request is offered to an agent like a caller. When the agent answers,
//!    [`Output::DialCallback`]: the engine calls the caller on the agent's behalf.
//! 3. [`Input::CallbackConnected`](crate::Input) makes it a connected call like any other;
//!    [`Input::CallbackFailed`](crate::Input) frees the agent (no wrap-up: nobody talked) and,
//!    while attempts remain, puts the request back in its place, not offered again before
//!    the queue's `retry_delay`.
//!
//! One pending request per number (waiting or being dialled). Staff may cancel a request;
//! one being dialled is not retried.

use crate::agent::AgentState;
use crate::center::{CallbackEntry, Connected, Dialing, Entry, QueueCenter, callback_refusal};
use crate::ids::{AgentId, CallRef, CallbackId, OfferId, QueueName, Waiter};
use crate::messages::{Output, QueueEvent};
use crate::timers::Timer;
use std::time::{Duration, Instant};

impl QueueCenter {
    pub(crate) fn request_callback(&mut self, now: Instant, call: CallRef, number: String) {
        if let Some(reason) = callback_refusal(self, call, &number) {
            self.out.push_back(Output::CallbackRefused { call, reason });
            return;
        }
        let Some((queue, _, mut entry)) = self.take_waiter(now, Waiter::Caller(call)) else {
            return;
        };
        let id = CallbackId(self.next_callback);
        self.next_callback += 1;
        entry.waiter = Waiter::Callback(id);
        entry.offers.clear();
        entry.callback = Some(CallbackEntry {
            number: number.clone(),
            attempts: 0,
            not_before: None,
            cancelled: false,
        });
        let Some(q) = self.queues.get_mut(&queue) else {
            return;
        };
        let position = q.insert(entry);
        self.waiting.insert(Waiter::Callback(id), queue.clone());
        self.callback_numbers.insert(number, id);
        self.out.push_back(Output::CallbackAccepted {
            call,
            callback: id,
            position,
        });
        self.emit(
            now,
            QueueEvent::CallbackRequested {
                queue,
                callback: id,
                call,
                position,
            },
        );
    }

    /// A request kept across a restart: a new entry at the end of the line for its
    /// priority (behind whoever waits at that priority or higher).
    pub(crate) fn restore_callback(
        &mut self,
        now: Instant,
        queue: QueueName,
        number: String,
        priority: u8,
    ) {
        let offered = self
            .queues
            .get(&queue)
            .is_some_and(|q| !q.retired && q.config.callback.is_some());
        if !offered
            || !crate::center::valid_number(&number, self.limits.max_number_len)
            || self.callback_numbers.contains_key(&number)
            || self.callback_numbers.len() >= self.limits.max_callbacks
        {
            return;
        }
        let id = CallbackId(self.next_callback);
        self.next_callback += 1;
        let seq = self.next_seq;
        self.next_seq += 1;
        let entry = Entry {
            waiter: Waiter::Callback(id),
            seq,
            priority,
            entered: now,
            caller: Some(number.clone()),
            offers: Vec::new(),
            tried: Vec::new(),
            told_position: None,
            told_wait: None,
            callback: Some(CallbackEntry {
                number: number.clone(),
                attempts: 0,
                not_before: None,
                cancelled: false,
            }),
        };
        let Some(q) = self.queues.get_mut(&queue) else {
            return;
        };
        let position = q.insert(entry);
        self.waiting.insert(Waiter::Callback(id), queue);
        self.callback_numbers.insert(number.clone(), id);
        self.out.push_back(Output::CallbackRestored {
            callback: id,
            number,
            position,
        });
    }

    /// The agent answered a callback's offer: dial the caller.
    pub(crate) fn start_dialing(
        &mut self,
        now: Instant,
        id: CallbackId,
        offer: OfferId,
        agent: AgentId,
        queue: QueueName,
        mut entry: Entry,
    ) {
        let Some(cb) = entry.callback.as_mut() else {
            return;
        };
        cb.attempts += 1;
        let (number, attempt) = (cb.number.clone(), cb.attempts);
        self.dialing.insert(
            id,
            Dialing {
                agent: agent.clone(),
                queue: queue.clone(),
                entry,
            },
        );
        self.out.push_back(Output::DialCallback {
            callback: id,
            agent: agent.clone(),
            offer,
            number,
            attempt,
        });
        self.emit(
            now,
            QueueEvent::CallbackDialing {
                queue,
                callback: id,
                agent,
                attempt,
            },
        );
    }

    pub(crate) fn callback_connected(&mut self, now: Instant, id: CallbackId, call: CallRef) {
        if self.connected.contains_key(&call) || self.waiting.contains_key(&Waiter::Caller(call)) {
            // The engine named a call it already has with us (its bug): this attempt cannot be
            // tracked, so count it as failed rather than leave the agent on a call forever.
            self.callback_failed(now, id);
            return;
        }
        let Some(d) = self.dialing.remove(&id) else {
            return;
        };
        if let Some(cb) = &d.entry.callback {
            self.callback_numbers.remove(&cb.number);
        }
        self.connected.insert(
            call,
            Connected {
                agent: d.agent.clone(),
                queue: d.queue.clone(),
                answered: now,
                entry: None,
            },
        );
        let state = AgentState::OnCall {
            waiter: Waiter::Caller(call),
            queue: d.queue.clone(),
        };
        self.set_state(now, &d.agent, state);
        self.emit(
            now,
            QueueEvent::CallbackConnected {
                queue: d.queue,
                callback: id,
                call,
                agent: d.agent,
            },
        );
    }

    pub(crate) fn callback_failed(&mut self, now: Instant, id: CallbackId) {
        let Some(d) = self.dialing.remove(&id) else {
            return;
        };
        // Nobody talked: no wrap-up, and the agent's idle time runs on.
        self.after_call(now, &d.agent, Duration::ZERO);
        let mut entry = d.entry;
        let Some(cb) = entry.callback.as_mut() else {
            return;
        };
        let attempt = cb.attempts;
        let config = self
            .queues
            .get(&d.queue)
            .and_then(|q| q.config.callback.clone());
        let retrying = !cb.cancelled && config.as_ref().is_some_and(|c| attempt <= c.retries);
        self.emit(
            now,
            QueueEvent::CallbackFailed {
                queue: d.queue.clone(),
                callback: id,
                attempt,
                retrying,
            },
        );
        let (Some(config), true) = (config, retrying) else {
            self.callback_numbers.remove(&cb.number);
            return;
        };
        let Some(q) = self.queues.get_mut(&d.queue) else {
            self.callback_numbers.remove(&cb.number);
            return;
        };
        if !config.retry_delay.is_zero() {
            cb.not_before = Some(now + config.retry_delay);
            self.timers
                .set(Timer::CallbackRetry(id), now + config.retry_delay);
        }
        entry.offers.clear();
        entry.tried.clear();
        q.insert(entry);
        self.waiting.insert(Waiter::Callback(id), d.queue);
    }

    pub(crate) fn cancel_callback(&mut self, now: Instant, id: CallbackId) {
        if let Some((queue, _, entry)) = self.take_waiter(now, Waiter::Callback(id)) {
            if let Some(cb) = entry.callback {
                self.callback_numbers.remove(&cb.number);
            }
            self.emit(
                now,
                QueueEvent::CallbackCancelled {
                    queue,
                    callback: id,
                },
            );
        } else if let Some(d) = self.dialing.get_mut(&id)
            && let Some(cb) = d.entry.callback.as_mut()
            && !cb.cancelled
        {
            cb.cancelled = true;
            let queue = d.queue.clone();
            self.emit(
                now,
                QueueEvent::CallbackCancelled {
                    queue,
                    callback: id,
                },
            );
        }
    }
}
