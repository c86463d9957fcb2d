//! [`QueueCenter`]: the one owner of queue and agent state.

use crate::agent::{AfterCall, Agent, AgentState, PauseReason};
use crate::config::{EmptyRule, Limits, QueueConfig, ValidConfig};
use crate::estimate::{HandleTimes, estimated_wait};
use crate::ids::{AgentId, CallRef, CallbackId, OfferId, QueueName, Waiter};
use crate::messages::{
    CallbackRefusal, ExitReason, Input, LeaveReason, LoggedEvent, OfferFailure, Output, QueueEvent,
    RefuseReason,
};
use crate::rng::RandomSource;
use crate::strategy::{Candidate, choose};
use crate::timers::{Timer, Timers};
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// One place in line: a caller on the line or a callback request.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) waiter: Waiter,
    /// Arrival order across all queues; a callback keeps its caller's.
    pub(crate) seq: u64,
    pub(crate) priority: u8,
    pub(crate) entered: Instant,
    pub(crate) caller: Option<String>,
    /// Outstanding offers (several for ring-all).
    pub(crate) offers: Vec<OfferId>,
    /// Agents whose offer for this waiter failed this round: the others are tried first.
    pub(crate) tried: Vec<AgentId>,
    /// What the caller last heard.
    pub(crate) told_position: Option<usize>,
    pub(crate) told_wait: Option<Duration>,
    pub(crate) callback: Option<CallbackEntry>,
}

impl Entry {
    fn key(&self) -> (Reverse<u8>, u64) {
        (Reverse(self.priority), self.seq)
    }
}

/// A callback request's own data.
#[derive(Debug, Clone)]
pub(crate) struct CallbackEntry {
    pub(crate) number: String,
    /// Attempts made so far.
    pub(crate) attempts: u32,
    /// Not offered before this (between attempts).
    pub(crate) not_before: Option<Instant>,
    /// Staff cancelled it while it was being dialled: no further attempt.
    pub(crate) cancelled: bool,
}

/// One queue as the center keeps it.
#[derive(Debug)]
pub(crate) struct Queue {
    pub(crate) config: QueueConfig,
    /// Removed by a reload: takes nobody new, serves who waits, goes when empty.
    pub(crate) retired: bool,
    /// Member agents in member order, with penalties.
    pub(crate) members: Vec<(AgentId, u32)>,
    /// Waiting, in service order: priority (higher first), then arrival.
    pub(crate) entries: Vec<Entry>,
    /// Round-robin memory: the agent last offered a call.
    pub(crate) last_offered: Option<AgentId>,
    pub(crate) handle: HandleTimes,
}

impl Queue {
    pub(crate) fn new(config: QueueConfig) -> Self {
        Queue {
            config,
            retired: false,
            members: Vec::new(),
            entries: Vec::new(),
            last_offered: None,
            handle: HandleTimes::default(),
        }
    }

    /// 1 = next.
    pub(crate) fn position(&self, waiter: &Waiter) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.waiter == *waiter)
            .map(|i| i + 1)
    }

    /// Puts an entry in its place; returns its position.
    pub(crate) fn insert(&mut self, entry: Entry) -> usize {
        let key = entry.key();
        let at = self.entries.partition_point(|e| e.key() < key);
        self.entries.insert(at, entry);
        at + 1
    }

    /// Takes an entry out, with the position it had.
    pub(crate) fn remove(&mut self, waiter: &Waiter) -> Option<(usize, Entry)> {
        let i = self.entries.iter().position(|e| e.waiter == *waiter)?;
        Some((i + 1, self.entries.remove(i)))
    }

    pub(crate) fn entry_mut(&mut self, waiter: &Waiter) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.waiter == *waiter)
    }
}

/// An outstanding offer.
#[derive(Debug, Clone)]
pub(crate) struct Offer {
    pub(crate) agent: AgentId,
    pub(crate) queue: QueueName,
    pub(crate) waiter: Waiter,
}

/// A caller talking to an agent.
#[derive(Debug, Clone)]
pub(crate) struct Connected {
    pub(crate) agent: AgentId,
    pub(crate) queue: QueueName,
    pub(crate) answered: Instant,
    /// A caller's place in line, kept until the call ends in case the agent hangs up before
    /// the caller is put through ([`Input::Requeue`]); `None` for a callback's call.
    pub(crate) entry: Option<Entry>,
}

/// A callback whose agent answered, while the caller is dialled.
#[derive(Debug, Clone)]
pub(crate) struct Dialing {
    pub(crate) agent: AgentId,
    pub(crate) queue: QueueName,
    pub(crate) entry: Entry,
}

/// The one owner of queue and agent state (see the crate documentation).
pub struct QueueCenter {
    pub(crate) limits: Limits,
    pub(crate) queues: BTreeMap<QueueName, Queue>,
    pub(crate) agents: BTreeMap<AgentId, Agent>,
    /// Who waits where (callers and callbacks).
    pub(crate) waiting: HashMap<Waiter, QueueName>,
    /// Numbers with a pending callback (waiting or being dialled).
    pub(crate) callback_numbers: HashMap<String, CallbackId>,
    pub(crate) offers: HashMap<OfferId, Offer>,
    pub(crate) connected: HashMap<CallRef, Connected>,
    pub(crate) dialing: HashMap<CallbackId, Dialing>,
    /// Callers who joined in this step: their entry announcement follows the dispatch.
    pub(crate) fresh: Vec<CallRef>,
    pub(crate) timers: Timers,
    pub(crate) out: VecDeque<Output>,
    pub(crate) rng: Box<dyn RandomSource>,
    pub(crate) next_offer: u64,
    pub(crate) next_callback: u64,
    pub(crate) next_seq: u64,
}

impl std::fmt::Debug for QueueCenter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueCenter")
            .field("queues", &self.queues.keys().collect::<Vec<_>>())
            .field("agents", &self.agents.len())
            .field("waiting", &self.waiting.len())
            .field("offers", &self.offers.len())
            .field("connected", &self.connected.len())
            .finish_non_exhaustive()
    }
}

impl QueueCenter {
    /// A center with this configuration; every agent starts logged out and reachable.
    pub fn new(config: ValidConfig, rng: Box<dyn RandomSource>) -> Self {
        let mut center = QueueCenter {
            limits: Limits::default(),
            queues: BTreeMap::new(),
            agents: BTreeMap::new(),
            waiting: HashMap::new(),
            callback_numbers: HashMap::new(),
            offers: HashMap::new(),
            connected: HashMap::new(),
            dialing: HashMap::new(),
            fresh: Vec::new(),
            timers: Timers::default(),
            out: VecDeque::new(),
            rng,
            next_offer: 1,
            next_callback: 1,
            next_seq: 0,
        };
        center.apply_config(config.0);
        center
    }

    /// Feeds one message; then drain [`poll_output`](Self::poll_output).
    pub fn handle(&mut self, now: Instant, input: Input) {
        match input {
            Input::Enter {
                call,
                queue,
                priority,
                caller,
            } => self.enter(now, call, queue, priority, caller),
            Input::Leave { call, reason } => self.leave(now, call, reason),
            Input::CallEnded { call } => self.end_call(now, call, false),
            Input::Requeue { call } => self.requeue(now, call),
            Input::AgentLogin(agent) => self.login(now, &agent),
            Input::AgentLogout(agent) => self.logout(now, &agent),
            Input::AgentPause { agent, reason } => {
                let reason: String = reason.chars().take(self.limits.max_reason_len).collect();
                self.pause(now, &agent, PauseReason::Requested(reason))
            }
            Input::AgentUnpause(agent) => self.unpause(now, &agent),
            Input::AgentReachable { agent, reachable } => {
                if let Some(a) = self.agents.get_mut(&agent) {
                    a.reachable = reachable;
                }
            }
            Input::OfferAnswered(offer) => self.answered(now, offer),
            Input::OfferFailed { offer, why } => self.offer_failed(now, offer, why),
            Input::RequestCallback { call, number } => self.request_callback(now, call, number),
            Input::RestoreCallback {
                queue,
                number,
                priority,
            } => self.restore_callback(now, queue, number, priority),
            Input::CallbackConnected { callback, call } => {
                self.callback_connected(now, callback, call)
            }
            Input::CallbackFailed(callback) => self.callback_failed(now, callback),
            Input::CancelCallback(callback) => self.cancel_callback(now, callback),
            Input::Reconfigure(config) => self.reconfigure(now, config),
        }
        self.settle(now);
    }

    /// Runs the timers due at `now` (a spurious call is a harmless no-op).
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            match timer {
                Timer::Ring(offer) => {
                    if let Some(o) = self.offers.get(&offer) {
                        let agent = o.agent.clone();
                        self.out.push_back(Output::CancelOffer { offer, agent });
                        self.offer_failed(now, offer, OfferFailure::NoAnswer);
                    }
                }
                Timer::WrapUp(agent) => {
                    if matches!(self.agent_state(&agent), Some(AgentState::WrapUp { .. })) {
                        self.set_state(now, &agent, AgentState::Available);
                    }
                }
                Timer::Rest(agent) => {
                    if let Some(a) = self.agents.get_mut(&agent) {
                        a.rest_until = None;
                    }
                }
                Timer::MaxWait(call) => self.exit(now, call, ExitReason::MaxWait),
                Timer::Announce(call) => self.periodic_announce(now, call),
                Timer::CallbackRetry(id) => {
                    if let Some(e) = self.entry_mut(&Waiter::Callback(id))
                        && let Some(cb) = e.callback.as_mut()
                    {
                        cb.not_before = None;
                    }
                }
            }
        }
        self.settle(now);
    }

    /// The next message for the engine.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// An agent's state (`None`: no such agent).
    pub fn agent_state(&self, agent: &AgentId) -> Option<&AgentState> {
        self.agents.get(agent).map(|a| &a.state)
    }

    /// Every agent and its state, by id.
    pub fn agents(&self) -> impl Iterator<Item = (&AgentId, &AgentState)> {
        self.agents.iter().map(|(id, a)| (id, &a.state))
    }

    /// Who waits in a queue, in service order (callers and callbacks).
    pub fn waiting(&self, queue: &QueueName) -> Vec<Waiter> {
        self.queues
            .get(queue)
            .map(|q| q.entries.iter().map(|e| e.waiter).collect())
            .unwrap_or_default()
    }

    /// Who waits in a queue, in service order, each with when it joined (for the staff
    /// page's wait times).
    pub fn waiting_since(&self, queue: &QueueName) -> Vec<(Waiter, Instant)> {
        self.queues
            .get(queue)
            .map(|q| q.entries.iter().map(|e| (e.waiter, e.entered)).collect())
            .unwrap_or_default()
    }

    /// An agent's answered calls (every queue, since the center started) and whether it is
    /// reachable; `None`: no such agent.
    pub fn agent_summary(&self, agent: &AgentId) -> Option<(u64, bool)> {
        self.agents
            .get(agent)
            .map(|a| (a.calls.values().sum(), a.reachable))
    }

    /// A waiter's queue and position (1 = next).
    pub fn position(&self, waiter: &Waiter) -> Option<(&QueueName, usize)> {
        let queue = self.waiting.get(waiter)?;
        Some((queue, self.queues.get(queue)?.position(waiter)?))
    }

    /// A waiter's priority (a caller's from `Enter`, kept by its callback request), while
    /// it waits or is being dialled.
    pub fn priority(&self, waiter: &Waiter) -> Option<u8> {
        if let Some(queue) = self.waiting.get(waiter) {
            let q = self.queues.get(queue)?;
            return q
                .entries
                .iter()
                .find(|e| e.waiter == *waiter)
                .map(|e| e.priority);
        }
        match waiter {
            Waiter::Callback(id) => self.dialing.get(id).map(|d| d.entry.priority),
            Waiter::Caller(_) => None,
        }
    }

    /// Pending callback requests (waiting or being dialled), for the staff page.
    pub fn callbacks(&self) -> Vec<(CallbackId, &QueueName, &str)> {
        let mut list: Vec<_> = self
            .callback_numbers
            .iter()
            .filter_map(|(number, id)| {
                let queue = match self.waiting.get(&Waiter::Callback(*id)) {
                    Some(q) => q,
                    None => &self.dialing.get(id)?.queue,
                };
                Some((*id, queue, number.as_str()))
            })
            .collect();
        list.sort();
        list
    }

    /// The estimated wait a caller at `position` would hear now (see the crate
    /// documentation for the formula); `None` when no agent works the queue.
    pub fn estimated_wait(&self, queue: &QueueName, position: usize) -> Option<Duration> {
        let q = self.queues.get(queue)?;
        let agents = self.working_agents(q);
        estimated_wait(
            position,
            q.handle.average(q.config.default_handle_time),
            agents,
        )
    }

    // ---- helpers -------------------------------------------------------------------------

    pub(crate) fn emit(&mut self, now: Instant, event: QueueEvent) {
        self.out
            .push_back(Output::Event(LoggedEvent { at: now, event }));
    }

    /// Moves an agent to a state, logging it.
    pub(crate) fn set_state(&mut self, now: Instant, agent: &AgentId, state: AgentState) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        if a.state == state {
            return;
        }
        if matches!(a.state, AgentState::WrapUp { .. }) {
            self.timers.cancel(&Timer::WrapUp(agent.clone()));
        }
        if let AgentState::WrapUp { until } = state {
            self.timers.set(Timer::WrapUp(agent.clone()), until);
        }
        a.state = state.clone();
        self.emit(
            now,
            QueueEvent::Agent {
                agent: agent.clone(),
                state,
            },
        );
        if self
            .agents
            .get(agent)
            .is_some_and(|a| a.retired && !a.logged_in())
        {
            self.drop_agent(agent);
        }
    }

    fn drop_agent(&mut self, agent: &AgentId) {
        self.agents.remove(agent);
        self.timers.cancel(&Timer::Rest(agent.clone()));
        self.timers.cancel(&Timer::WrapUp(agent.clone()));
    }

    pub(crate) fn entry_mut(&mut self, waiter: &Waiter) -> Option<&mut Entry> {
        let queue = self.waiting.get(waiter)?;
        self.queues.get_mut(queue)?.entry_mut(waiter)
    }

    /// Member agents that work the queue (see [`Agent::active`]).
    pub(crate) fn working_agents(&self, q: &Queue) -> usize {
        q.members
            .iter()
            .filter(|(id, _)| self.agents.get(id).is_some_and(|a| a.active()))
            .count()
    }

    fn queue_is_empty_by(&self, q: &Queue, rule: EmptyRule) -> bool {
        match rule {
            EmptyRule::Never => false,
            EmptyRule::NoneLoggedIn => !q.members.iter().any(|(id, _)| {
                self.agents
                    .get(id)
                    .is_some_and(|a| !a.retired && a.logged_in())
            }),
            EmptyRule::NoneActive => self.working_agents(q) == 0,
        }
    }

    /// Stops ringing one offer; the agent's state is the caller's to set.
    pub(crate) fn withdraw_offer(&mut self, offer: OfferId) -> Option<Offer> {
        let o = self.offers.remove(&offer)?;
        self.timers.cancel(&Timer::Ring(offer));
        if let Some(e) = self.entry_mut(&o.waiter) {
            e.offers.retain(|x| *x != offer);
        }
        self.out.push_back(Output::CancelOffer {
            offer,
            agent: o.agent.clone(),
        });
        Some(o)
    }

    /// Withdraws a leaving entry's offers; their agents are free again.
    fn free_offers(&mut self, now: Instant, offers: &[OfferId]) {
        for offer in offers {
            if let Some(o) = self.withdraw_offer(*offer) {
                self.set_state(now, &o.agent, AgentState::Available);
            }
        }
    }

    /// Takes a waiting caller or callback out of line, with its offers and timers.
    pub(crate) fn take_waiter(
        &mut self,
        now: Instant,
        waiter: Waiter,
    ) -> Option<(QueueName, usize, Entry)> {
        let queue = self.waiting.remove(&waiter)?;
        let (position, entry) = self.queues.get_mut(&queue)?.remove(&waiter)?;
        self.free_offers(now, &entry.offers);
        match waiter {
            Waiter::Caller(call) => {
                self.timers.cancel(&Timer::MaxWait(call));
                self.timers.cancel(&Timer::Announce(call));
            }
            Waiter::Callback(id) => self.timers.cancel(&Timer::CallbackRetry(id)),
        }
        self.forget_retired_queue(&queue);
        Some((queue, position, entry))
    }

    /// A retired queue goes once nobody waits in it.
    pub(crate) fn forget_retired_queue(&mut self, queue: &QueueName) {
        if self
            .queues
            .get(queue)
            .is_some_and(|q| q.retired && q.entries.is_empty())
        {
            self.queues.remove(queue);
        }
    }

    // ---- callers ---------------------------------------------------------------------------

    fn enter(
        &mut self,
        now: Instant,
        call: CallRef,
        queue: QueueName,
        priority: u8,
        caller: Option<String>,
    ) {
        let refuse = |reason| Output::Refused {
            call,
            queue: queue.clone(),
            reason,
        };
        if self.waiting.contains_key(&Waiter::Caller(call)) || self.connected.contains_key(&call) {
            self.out.push_back(refuse(RefuseReason::AlreadyQueued));
            return;
        }
        let Some(q) = self.queues.get(&queue).filter(|q| !q.retired) else {
            self.out.push_back(refuse(RefuseReason::UnknownQueue));
            return;
        };
        if q.entries.len() >= q.config.max_waiting {
            self.out.push_back(refuse(RefuseReason::Full));
            return;
        }
        if self.queue_is_empty_by(q, q.config.join_when_empty) {
            self.out.push_back(refuse(RefuseReason::NoAgents));
            return;
        }
        let caller = caller.filter(|n| valid_number(n, self.limits.max_number_len));
        let seq = self.next_seq;
        self.next_seq += 1;
        let entry = Entry {
            waiter: Waiter::Caller(call),
            seq,
            priority,
            entered: now,
            caller,
            offers: Vec::new(),
            tried: Vec::new(),
            told_position: None,
            told_wait: None,
            callback: None,
        };
        let Some(q) = self.queues.get_mut(&queue) else {
            return;
        };
        let position = q.insert(entry);
        let (max_wait, announce_every) = (q.config.max_wait, q.config.announce_every);
        self.waiting.insert(Waiter::Caller(call), queue.clone());
        if let Some(d) = max_wait {
            self.timers.set(Timer::MaxWait(call), now + d);
        }
        if let Some(d) = announce_every {
            self.timers.set(Timer::Announce(call), now + d);
        }
        self.fresh.push(call);
        self.out.push_back(Output::Joined {
            call,
            queue: queue.clone(),
            position,
        });
        self.emit(
            now,
            QueueEvent::Enter {
                queue,
                call,
                position,
                priority,
            },
        );
    }

    fn leave(&mut self, now: Instant, call: CallRef, reason: LeaveReason) {
        if self.connected.contains_key(&call) {
            self.end_call(now, call, reason == LeaveReason::Transferred);
            return;
        }
        let Some((queue, position, entry)) = self.take_waiter(now, Waiter::Caller(call)) else {
            return; // already gone (served, timed out, turned into a callback)
        };
        let wait = now.saturating_duration_since(entry.entered);
        let event = match reason {
            LeaveReason::Hangup => QueueEvent::Abandon {
                queue,
                call,
                position,
                wait,
            },
            LeaveReason::ExitKey(key) => QueueEvent::ExitKey {
                queue,
                call,
                key,
                position,
                wait,
            },
            LeaveReason::Transferred => QueueEvent::Transfer {
                queue,
                call,
                agent: None,
            },
        };
        self.emit(now, event);
    }

    /// Sends a waiting caller out (max wait, or nobody to answer).
    fn exit(&mut self, now: Instant, call: CallRef, reason: ExitReason) {
        let Some((queue, position, entry)) = self.take_waiter(now, Waiter::Caller(call)) else {
            return;
        };
        let wait = now.saturating_duration_since(entry.entered);
        self.out.push_back(Output::Exit {
            call,
            queue: queue.clone(),
            reason,
        });
        let event = match reason {
            ExitReason::MaxWait => QueueEvent::Timeout {
                queue,
                call,
                position,
                wait,
            },
            ExitReason::Empty => QueueEvent::LeaveEmpty {
                queue,
                call,
                position,
                wait,
            },
        };
        self.emit(now, event);
    }

    /// A connected call is over: the agent wraps up (or does what it asked for meanwhile).
    fn end_call(&mut self, now: Instant, call: CallRef, transferred: bool) {
        let Some(c) = self.connected.remove(&call) else {
            return;
        };
        let talk = now.saturating_duration_since(c.answered);
        let wrap_up = self.wrap_up_of(&c.agent, &c.queue);
        let window = self.limits.handle_time_window;
        if let Some(q) = self.queues.get_mut(&c.queue) {
            q.handle.record(talk + wrap_up, window);
        }
        let event = if transferred {
            QueueEvent::Transfer {
                queue: c.queue.clone(),
                call,
                agent: Some(c.agent.clone()),
            }
        } else {
            QueueEvent::Complete {
                queue: c.queue.clone(),
                call,
                agent: c.agent.clone(),
                talk,
            }
        };
        self.emit(now, event);
        if let Some(a) = self.agents.get_mut(&c.agent) {
            a.idle_since = Some(now);
            // The answer held (see `answered`): the no-answer count starts again.
            a.no_answer = 0;
        }
        self.after_call(now, &c.agent, wrap_up);
    }

    /// The agent hung up before the caller was put through: the caller is back in its place
    /// (same priority and arrival, its timers as they were), the agent free after a rest.
    fn requeue(&mut self, now: Instant, call: CallRef) {
        if self.connected.get(&call).is_none_or(|c| c.entry.is_none()) {
            return;
        }
        let Some(Connected {
            agent,
            queue,
            answered,
            entry: Some(mut entry),
        }) = self.connected.remove(&call)
        else {
            return;
        };
        let wait = answered.saturating_duration_since(entry.entered);
        // The answer did not hold: it is taken back, and counts as an unanswered offer, so
        // a phone that answers and hangs up at once, again and again, is paused by
        // `max_no_answer` like one that never answers (rather than bounce every caller).
        let mut no_answer = 0;
        if let Some(a) = self.agents.get_mut(&agent) {
            if let Some(n) = a.calls.get_mut(&queue) {
                *n = n.saturating_sub(1);
            }
            a.no_answer += 1;
            no_answer = a.no_answer;
        }
        let (retry, max_no_answer) = self
            .queues
            .get(&queue)
            .map(|q| (q.config.retry, q.config.max_no_answer))
            .unwrap_or_default();
        // Nobody talked: no wrap-up (a pause or logout asked for meanwhile applies now).
        self.after_call(now, &agent, Duration::ZERO);
        if max_no_answer > 0
            && no_answer >= max_no_answer
            && self.agent_state(&agent) == Some(&AgentState::Available)
        {
            let reason = PauseReason::NoAnswer { offers: no_answer };
            self.set_state(now, &agent, AgentState::Paused { reason });
        }
        if !retry.is_zero()
            && let Some(a) = self.agents.get_mut(&agent)
        {
            a.rest_until = Some(now + retry);
            self.timers.set(Timer::Rest(agent.clone()), now + retry);
        }
        self.emit(
            now,
            QueueEvent::Requeue {
                queue: queue.clone(),
                call,
                agent: agent.clone(),
                wait,
            },
        );
        entry.offers.clear();
        if !entry.tried.contains(&agent) {
            entry.tried.push(agent);
        }
        let Some(q) = self.queues.get_mut(&queue) else {
            // Its queue went with a reload meanwhile: nobody is left to serve it. Logged, so
            // the report counts the caller as having left the line (its answer was undone).
            self.out.push_back(Output::Exit {
                call,
                queue: queue.clone(),
                reason: ExitReason::Empty,
            });
            let wait = now.saturating_duration_since(entry.entered);
            self.emit(
                now,
                QueueEvent::LeaveEmpty {
                    queue,
                    call,
                    position: 1,
                    wait,
                },
            );
            return;
        };
        let (max_wait, every) = (q.config.max_wait, q.config.announce_every);
        let entered = entry.entered;
        q.insert(entry);
        self.waiting.insert(Waiter::Caller(call), queue);
        if let Some(d) = max_wait {
            if entered + d <= now {
                // Its max wait ran out during the whisper: out now, before the dispatch
                // rings a phone for it only to cancel it at the next timeout.
                self.exit(now, call, ExitReason::MaxWait);
                return;
            }
            self.timers.set(Timer::MaxWait(call), entered + d);
        }
        if let Some(d) = every {
            self.timers.set(Timer::Announce(call), now + d);
        }
    }

    /// The wrap-up an agent takes after a call from a queue (its own wins).
    fn wrap_up_of(&self, agent: &AgentId, queue: &QueueName) -> Duration {
        let own = self.agents.get(agent).and_then(|a| a.config.wrap_up);
        own.or_else(|| self.queues.get(queue).map(|q| q.config.wrap_up))
            .unwrap_or_default()
    }

    /// Leaves `OnCall`: a logout or pause asked for during the call, else wrap-up.
    pub(crate) fn after_call(&mut self, now: Instant, agent: &AgentId, wrap_up: Duration) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        if !matches!(a.state, AgentState::OnCall { .. }) {
            return;
        }
        let next = match a.after_call.take() {
            Some(AfterCall::Logout) => AgentState::LoggedOut,
            Some(AfterCall::Pause(reason)) => AgentState::Paused { reason },
            None if wrap_up.is_zero() => AgentState::Available,
            None => AgentState::WrapUp {
                until: now + wrap_up,
            },
        };
        self.set_state(now, agent, next);
    }

    // ---- agents ---------------------------------------------------------------------------

    fn login(&mut self, now: Instant, agent: &AgentId) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        if a.retired || a.logged_in() {
            return;
        }
        a.idle_since = Some(now);
        a.no_answer = 0;
        a.rest_until = None;
        self.set_state(now, agent, AgentState::Available);
    }

    /// Cancels the offer an agent's phone rings for, if any; the waiter is offered again.
    fn stop_ringing(&mut self, agent: &AgentId) {
        if let Some(AgentState::Ringing { offer }) = self.agent_state(agent).cloned() {
            self.withdraw_offer(offer);
        }
    }

    fn logout(&mut self, now: Instant, agent: &AgentId) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        match a.state {
            AgentState::LoggedOut => {}
            AgentState::OnCall { .. } => a.after_call = Some(AfterCall::Logout),
            _ => {
                self.stop_ringing(agent);
                self.set_state(now, agent, AgentState::LoggedOut);
            }
        }
    }

    fn pause(&mut self, now: Instant, agent: &AgentId, reason: PauseReason) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        match a.state {
            AgentState::LoggedOut => {}
            AgentState::OnCall { .. } => a.after_call = Some(AfterCall::Pause(reason)),
            _ => {
                self.stop_ringing(agent);
                self.set_state(now, agent, AgentState::Paused { reason });
            }
        }
    }

    fn unpause(&mut self, now: Instant, agent: &AgentId) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        match a.state {
            AgentState::Paused { .. } => {
                a.no_answer = 0;
                self.set_state(now, agent, AgentState::Available);
            }
            AgentState::OnCall { .. } => {
                if matches!(a.after_call, Some(AfterCall::Pause(_))) {
                    a.after_call = None;
                }
            }
            _ => {}
        }
    }

    // ---- offers ---------------------------------------------------------------------------

    fn answered(&mut self, now: Instant, offer: OfferId) {
        let Some(o) = self.offers.remove(&offer) else {
            // Cancelled meanwhile (the caller left, another phone answered, the ring timed
            // out): the agent's leg has nobody to talk to.
            self.out.push_back(Output::Release { offer });
            return;
        };
        self.timers.cancel(&Timer::Ring(offer));
        let Some((queue, _, entry)) = self.take_waiter(now, o.waiter) else {
            // Unreachable while the state is consistent; free the agent rather than strand it.
            self.set_state(now, &o.agent, AgentState::Available);
            self.out.push_back(Output::Release { offer });
            return;
        };
        let wait = now.saturating_duration_since(entry.entered);
        if let Some(a) = self.agents.get_mut(&o.agent) {
            // A callback's agent answered; a caller's answer holds only once they talk (the
            // agent may hang up during the whisper: `requeue`), so its count is reset then.
            if matches!(o.waiter, Waiter::Callback(_)) {
                a.no_answer = 0;
            }
            *a.calls.entry(queue.clone()).or_default() += 1;
        }
        self.set_state(
            now,
            &o.agent,
            AgentState::OnCall {
                waiter: o.waiter,
                queue: queue.clone(),
            },
        );
        self.emit(
            now,
            QueueEvent::Answer {
                queue: queue.clone(),
                waiter: o.waiter,
                agent: o.agent.clone(),
                wait,
            },
        );
        match o.waiter {
            Waiter::Caller(call) => {
                self.connected.insert(
                    call,
                    Connected {
                        agent: o.agent.clone(),
                        queue,
                        answered: now,
                        entry: Some(entry),
                    },
                );
                self.out.push_back(Output::Connect {
                    call,
                    agent: o.agent,
                    offer,
                });
            }
            Waiter::Callback(id) => self.start_dialing(now, id, offer, o.agent, queue, entry),
        }
    }

    fn offer_failed(&mut self, now: Instant, offer: OfferId, why: OfferFailure) {
        let Some(o) = self.offers.remove(&offer) else {
            return;
        };
        self.timers.cancel(&Timer::Ring(offer));
        if let Some(e) = self.entry_mut(&o.waiter) {
            e.offers.retain(|x| *x != offer);
            if !e.tried.contains(&o.agent) {
                e.tried.push(o.agent.clone());
            }
        }
        let (retry, max_no_answer) = self
            .queues
            .get(&o.queue)
            .map(|q| (q.config.retry, q.config.max_no_answer))
            .unwrap_or_default();
        self.emit(
            now,
            QueueEvent::OfferFailed {
                queue: o.queue.clone(),
                waiter: o.waiter,
                agent: o.agent.clone(),
                why,
            },
        );
        let Some(a) = self.agents.get_mut(&o.agent) else {
            return;
        };
        if a.state != (AgentState::Ringing { offer }) {
            return;
        }
        if why.counts_as_no_answer() {
            a.no_answer += 1;
        }
        let offers = a.no_answer;
        if !retry.is_zero() {
            a.rest_until = Some(now + retry);
            self.timers.set(Timer::Rest(o.agent.clone()), now + retry);
        }
        let next = if max_no_answer > 0 && offers >= max_no_answer {
            AgentState::Paused {
                reason: PauseReason::NoAnswer { offers },
            }
        } else {
            AgentState::Available
        };
        self.set_state(now, &o.agent, next);
    }

    // ---- the step's end: empty rules, dispatch, entry announcements -------------------------

    fn settle(&mut self, now: Instant) {
        self.leave_empty_queues(now);
        self.dispatch(now);
        for call in std::mem::take(&mut self.fresh) {
            self.entry_announce(now, call);
        }
    }

    fn leave_empty_queues(&mut self, now: Instant) {
        let mut out = Vec::new();
        for q in self.queues.values() {
            if !q.retired && self.queue_is_empty_by(q, q.config.leave_when_empty) {
                out.extend(q.entries.iter().filter_map(|e| match e.waiter {
                    Waiter::Caller(call) => Some(call),
                    Waiter::Callback(_) => None,
                }));
            }
        }
        for call in out {
            self.exit(now, call, ExitReason::Empty);
        }
    }

    /// Free agents this queue may ring now, in member order.
    fn candidates(&self, now: Instant, q: &Queue) -> Vec<Candidate> {
        q.members
            .iter()
            .enumerate()
            .filter_map(|(order, (id, penalty))| {
                let a = self.agents.get(id).filter(|a| a.offerable(now))?;
                Some(Candidate {
                    agent: id.clone(),
                    order,
                    penalty: *penalty,
                    idle_since: a.idle_since,
                    calls: a.calls.get(&q.config.name).copied().unwrap_or(0),
                })
            })
            .collect()
    }

    /// Offers free agents to waiters: across all queues, the highest priority first, then
    /// the longest waiting (arrival order); each waiter by its queue's strategy.
    fn dispatch(&mut self, now: Instant) {
        let mut pending: Vec<((Reverse<u8>, u64), QueueName, Waiter)> = Vec::new();
        for (name, q) in &self.queues {
            if q.entries.iter().all(|e| !e.offers.is_empty()) || self.candidates(now, q).is_empty()
            {
                continue;
            }
            pending.extend(
                q.entries
                    .iter()
                    .filter(|e| e.offers.is_empty())
                    .filter(|e| {
                        e.callback
                            .as_ref()
                            .is_none_or(|c| c.not_before.is_none_or(|t| t <= now))
                    })
                    .map(|e| (e.key(), name.clone(), e.waiter)),
            );
        }
        pending.sort();
        let mut exhausted: Vec<QueueName> = Vec::new();
        for (_, queue, waiter) in pending {
            if exhausted.contains(&queue) {
                continue;
            }
            let Some(q) = self.queues.get(&queue) else {
                continue;
            };
            let mut candidates = self.candidates(now, q);
            if candidates.is_empty() {
                exhausted.push(queue);
                continue;
            }
            // Agents that already let this waiter's offer go are tried again only when every
            // free agent has been tried (a new round).
            let Some(entry) = q.entries.iter().find(|e| e.waiter == waiter) else {
                continue;
            };
            if candidates.iter().all(|c| entry.tried.contains(&c.agent)) {
                if let Some(e) = self
                    .queues
                    .get_mut(&queue)
                    .and_then(|q| q.entry_mut(&waiter))
                {
                    e.tried.clear();
                }
            } else {
                candidates.retain(|c| !entry.tried.contains(&c.agent));
            }
            let Some(q) = self.queues.get(&queue) else {
                continue;
            };
            let last = q
                .last_offered
                .as_ref()
                .and_then(|l| q.members.iter().position(|(m, _)| m == l));
            let chosen = choose(q.config.strategy, &candidates, last, self.rng.as_mut());
            for agent in chosen {
                self.make_offer(now, &queue, waiter, agent);
            }
        }
    }

    fn make_offer(&mut self, now: Instant, queue: &QueueName, waiter: Waiter, agent: AgentId) {
        let offer = OfferId(self.next_offer);
        self.next_offer += 1;
        let Some(q) = self.queues.get_mut(queue) else {
            return;
        };
        q.last_offered = Some(agent.clone());
        let ring = q.config.agent_timeout;
        let Some(e) = q.entry_mut(&waiter) else {
            return;
        };
        e.offers.push(offer);
        let caller = e.caller.clone();
        self.offers.insert(
            offer,
            Offer {
                agent: agent.clone(),
                queue: queue.clone(),
                waiter,
            },
        );
        self.timers.set(Timer::Ring(offer), now + ring);
        self.set_state(now, &agent, AgentState::Ringing { offer });
        self.out.push_back(Output::Offer {
            offer,
            agent: agent.clone(),
            queue: queue.clone(),
            waiter,
            caller,
        });
        self.emit(
            now,
            QueueEvent::Offer {
                queue: queue.clone(),
                waiter,
                agent,
                offer,
            },
        );
    }

    // ---- announcements -------------------------------------------------------------------

    fn entry_announce(&mut self, now: Instant, call: CallRef) {
        let waiter = Waiter::Caller(call);
        let Some(queue) = self.waiting.get(&waiter) else {
            return;
        };
        let Some(q) = self.queues.get(queue) else {
            return;
        };
        let ringing = q
            .entries
            .iter()
            .any(|e| e.waiter == waiter && !e.offers.is_empty());
        if ringing || !(q.config.announce_position || q.config.announce_wait) {
            return;
        }
        self.announce(now, call, false);
    }

    fn periodic_announce(&mut self, now: Instant, call: CallRef) {
        let waiter = Waiter::Caller(call);
        let Some(queue) = self.waiting.get(&waiter) else {
            return;
        };
        let Some(q) = self.queues.get(queue) else {
            return;
        };
        let Some(every) = q.config.announce_every else {
            return;
        };
        self.timers.set(Timer::Announce(call), now + every);
        // While an agent's phone rings for this caller, "all our agents are busy" would lie.
        if q.entries
            .iter()
            .any(|e| e.waiter == waiter && !e.offers.is_empty())
        {
            return;
        }
        self.announce(now, call, true);
    }

    /// Tells the caller what changed since they last heard.
    fn announce(&mut self, _now: Instant, call: CallRef, periodic: bool) {
        let waiter = Waiter::Caller(call);
        let Some(queue) = self.waiting.get(&waiter).cloned() else {
            return;
        };
        let Some(q) = self.queues.get(&queue) else {
            return;
        };
        let Some(position) = q.position(&waiter) else {
            return;
        };
        let (say_position, say_wait) = (q.config.announce_position, q.config.announce_wait);
        let wait = if say_wait {
            self.estimated_wait(&queue, position)
        } else {
            None
        };
        let Some(e) = self
            .queues
            .get_mut(&queue)
            .and_then(|q| q.entry_mut(&waiter))
        else {
            return;
        };
        let position = (say_position && e.told_position != Some(position)).then_some(position);
        let estimated_wait = wait.filter(|w| e.told_wait != Some(*w));
        if position.is_some() {
            e.told_position = position;
        }
        if estimated_wait.is_some() {
            e.told_wait = estimated_wait;
        }
        if periodic || position.is_some() || estimated_wait.is_some() {
            self.out.push_back(Output::Announce {
                call,
                periodic,
                position,
                estimated_wait,
            });
        }
    }
}

/// A callback number: 1 to `max` characters, digits with an optional leading `+`.
pub(crate) fn valid_number(number: &str, max: usize) -> bool {
    let digits = number.strip_prefix('+').unwrap_or(number);
    !digits.is_empty() && number.len() <= max && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Why a callback request cannot be taken, if it cannot.
pub(crate) fn callback_refusal(
    center: &QueueCenter,
    call: CallRef,
    number: &str,
) -> Option<CallbackRefusal> {
    let Some(queue) = center.waiting.get(&Waiter::Caller(call)) else {
        return Some(CallbackRefusal::NotWaiting);
    };
    if center
        .queues
        .get(queue)
        .is_none_or(|q| q.retired || q.config.callback.is_none())
    {
        return Some(CallbackRefusal::NotOffered);
    }
    if !valid_number(number, center.limits.max_number_len) {
        return Some(CallbackRefusal::BadNumber);
    }
    if center.callback_numbers.contains_key(number) {
        return Some(CallbackRefusal::Duplicate);
    }
    if center.callback_numbers.len() >= center.limits.max_callbacks {
        return Some(CallbackRefusal::Full);
    }
    None
}
