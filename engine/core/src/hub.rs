//! The hub: the one owner of queue and agent state, reached by messages.
//!
//! The [`Hub`] holds the [`QueueCenter`] (crate `ivr-queues`) and what goes with it: the
//! Call-ID, caller and menu path of each call in a queue (for the queue log and the queue
//! view), the queued-callback store's bookkeeping (`hub_store.rs`), the agents' registrar
//! (`hub_agents.rs`) and the tables that say which engine (shard) owns an offer or a queued
//! callback. Engines talk to it only with
//! [`HubMsg`] and hear back [`HubOutput`]s ([`crate::hub_msg`]); it reads no call.
//!
//! It is sans-IO like the rest of the crate: [`Hub::handle`], [`Hub::handle_timeout`],
//! [`Hub::poll_output`], [`Hub::poll_timeout`]. The center's outputs are turned into hub
//! outputs one at a time, as they are polled, so an owner that answers each output before
//! polling the next (the embedded hub of [`crate::Engine::new`]) sees them in the very order
//! the center made them, with its answers' outputs after the ones already made.

use crate::handle::CallHandle;
use crate::hub_msg::{HubMsg, HubOutput, ShardId, ShardMsg, shard_of_call};
use crate::io::RestoredCallback;
use ivr_menus::Menus;
use ivr_menus::agents::{LoginMode, Reach};
use ivr_queues::{
    AgentConfig, AgentId, AgentState, CallRef, CallbackId, CenterConfig, EmptyRule, Input, Limits,
    Membership, OfferId, Output as QOut, QueueCenter, QueueConfig, QueueEvent, QueueName, Strategy,
    ValidConfig, Waiter,
};
use ivr_voicemail::CallbackRequest;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// What the hub keeps of a call in a queue, from its `Enter` to its `CallGone`: neither
/// changes while the call waits or talks to an agent.
#[derive(Debug)]
pub(crate) struct CallRow {
    /// The call's SIP Call-ID (queue events name calls by it).
    pub(crate) call_id: String,
    /// The caller's number, if known.
    pub(crate) caller: Option<String>,
    /// The menus the caller came through.
    pub(crate) path: Vec<String>,
}

/// The owner of the queue center and the state around it.
pub struct Hub {
    /// The one owner of queue and agent state.
    pub(crate) center: QueueCenter,
    /// The current menus (queue and agent names, callback rules, static agents).
    pub(crate) menus: Arc<Menus>,
    /// How many shards it serves (1 when embedded).
    shards: ShardId,
    /// A configuration to hand the center at the next [`HubMsg::Sync`].
    pending_config: Option<ValidConfig>,
    /// Agents' registrations and the digest state of their authentication
    /// ([`crate::hub_agents`]).
    pub(crate) registrar: ivr_sip::registrar::Registrar,
    /// Agents' presence changes and requests for the center at the next [`HubMsg::Sync`].
    pub(crate) pending: Vec<Input>,
    /// Each call that entered a queue (or a queued callback's own call), until it is gone.
    pub(crate) rows: HashMap<CallRef, CallRow>,
    /// Calls gone whose rows go at the next poll that finds the center's outputs all routed.
    gone: Vec<CallRef>,
    /// A caller's callback request the center accepted, until its `CallbackAccepted` is
    /// polled (at most one per output waiting).
    pub(crate) drafts: HashMap<CallRef, Box<CallbackRequest>>,
    /// Each stored callback request's id in the store, by the center's id.
    pub(crate) store_ids: HashMap<CallbackId, String>,
    /// The store id of the request being restored.
    pub(crate) restoring: Option<String>,
    /// Restored requests not handed to the center yet (one at a time, each after the
    /// outputs of the one before).
    pub(crate) restore_queue: VecDeque<RestoredCallback>,
    /// Which shard rings for each offer out.
    offer_shards: HashMap<OfferId, ShardId>,
    /// Which shard makes each queued callback's call.
    callback_shards: HashMap<CallbackId, ShardId>,
    /// The shard the next new queued callback goes to (round robin).
    next_callback_shard: ShardId,
    /// Store ids' random part.
    pub(crate) rng: crate::rng::Rng,
    /// The last [`HubMsg::WallClock`]: (when it came, what it said).
    pub(crate) wall_anchor: Option<(Instant, SystemTime)>,
    /// The time of the last message or timeout.
    pub(crate) last_now: Option<Instant>,
    /// Outputs made and not polled yet.
    pub(crate) out: VecDeque<HubOutput>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("shards", &self.shards)
            .field("rows", &self.rows.len())
            .field("offers", &self.offer_shards.len())
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub for `menus` serving `shards` engines (at least 1), its registrar's nonces
    /// keyed with `secret` (drawn from the OS by the driver). Static agents are logged in at
    /// the first [`HubMsg::Sync`].
    pub fn new(
        menus: Arc<Menus>,
        seed: u64,
        shards: ShardId,
        registrar: ivr_sip::registrar::RegistrarConfig,
        secret: [u8; 32],
    ) -> Hub {
        let (realm, accounts) = crate::hub_agents::accounts(&menus);
        let mut registrar = ivr_sip::registrar::Registrar::new(registrar, &realm, secret);
        registrar.set_accounts(&realm, accounts);
        let (config, pending) = match center_config(&menus).validate() {
            Ok(c) => (c, Some(())),
            // The menus' ranges rule these errors out; an empty center is the safe answer.
            Err(_) => (empty_config(), None),
        };
        let center = QueueCenter::new(config.clone(), Box::new(ivr_queues::SplitMix64::new(seed)));
        Hub {
            center,
            menus,
            shards: shards.max(1),
            pending_config: pending.map(|_| config),
            registrar,
            pending: Vec::new(),
            rows: HashMap::new(),
            gone: Vec::new(),
            drafts: HashMap::new(),
            store_ids: HashMap::new(),
            restoring: None,
            restore_queue: VecDeque::new(),
            offer_shards: HashMap::new(),
            callback_shards: HashMap::new(),
            next_callback_shard: 0,
            rng: crate::rng::Rng::new(seed ^ 0x5354_4f52_4549_4453),
            wall_anchor: None,
            last_now: None,
            out: VecDeque::new(),
        }
    }

    /// Take one message from an engine (or the owner); an embedded hub hears only shard 0.
    pub fn handle(&mut self, now: Instant, msg: HubMsg) {
        self.handle_from(now, 0, msg);
    }

    /// Take one message from the engine `shard` (answers to it go back there).
    pub fn handle_from(&mut self, now: Instant, shard: ShardId, msg: HubMsg) {
        self.last_now = Some(now);
        match msg {
            HubMsg::Queue(input) => {
                if let Input::OfferFailed { offer, .. } = &input {
                    self.offer_shards.remove(offer);
                }
                self.center.handle(now, input);
            }
            HubMsg::Enter {
                call,
                queue,
                priority,
                caller,
                call_id,
                path,
            } => {
                self.rows.insert(
                    call,
                    CallRow {
                        call_id,
                        caller: caller.clone(),
                        path,
                    },
                );
                let input = Input::Enter {
                    call,
                    queue,
                    priority,
                    caller,
                };
                self.center.handle(now, input);
            }
            HubMsg::CallbackCall { call, call_id } => {
                let row = CallRow {
                    call_id,
                    caller: None,
                    path: Vec::new(),
                };
                self.rows.insert(call, row);
            }
            HubMsg::RequestCallback {
                call,
                number,
                request,
            } => {
                // The center answers at once: `CallbackAccepted` (the caller stops waiting,
                // the draft is stored when that output is polled, even if the call is gone
                // by then) or `CallbackRefused` (it still waits: no draft kept).
                let caller = Waiter::Caller(call);
                if self.center.priority(&caller).is_some() {
                    self.drafts.insert(call, request);
                }
                self.center
                    .handle(now, Input::RequestCallback { call, number });
                if self.center.priority(&caller).is_some() {
                    self.drafts.remove(&call);
                }
            }
            // The row goes once the outputs made before are polled (the call's abandon
            // is logged with its Call-ID).
            HubMsg::CallGone(call) => self.gone.push(call),
            HubMsg::Reload(menus) => self.reload(menus),
            HubMsg::Sync => self.sync(now),
            HubMsg::WallClock(wall) => self.wall_anchor = Some((now, wall)),
            HubMsg::RestoreCallbacks(list) => self.restore_queue.extend(list),
            HubMsg::CancelCallback(id) => self.cancel_stored_callback(now, &id),
            HubMsg::Register { key, req, peer } => self.register(now, shard, key, req, peer),
            HubMsg::Authenticate {
                key,
                req,
                peer,
                code,
            } => self.authenticate(now, shard, key, req, peer, code),
            // The agent was authenticated against the current accounts, so it exists.
            HubMsg::Agent { agent, action } => {
                let _ = self.agent_request(&agent, action);
            }
        }
    }

    /// [`HubMsg::Reload`]: the registrar and the view follow `menus` now (bindings of
    /// accounts that remain are kept), the center at the next [`HubMsg::Sync`] (a
    /// configuration the center would refuse is not handed over).
    pub fn reload(&mut self, menus: Arc<Menus>) {
        if let Ok(c) = center_config(&menus).validate() {
            self.pending_config = Some(c);
        }
        // The registrar's changes are read against the menus before, as they always were.
        self.registrar_reload(&menus);
        self.menus = menus;
    }

    /// A new configuration reaches the center (agents stay logged in, waiting callers
    /// stay; a configuration the center refused keeps the old one), then static agents
    /// with `login: on_register` log in; then agents' presence changes and requests made
    /// since the last sync, in order.
    fn sync(&mut self, now: Instant) {
        if let Some(config) = self.pending_config.take() {
            self.center.handle(now, Input::Reconfigure(config));
            for a in self.menus.agents() {
                if matches!(a.reach, Reach::Static(_)) && a.login == LoginMode::OnRegister {
                    let id = AgentId::new(a.name.clone());
                    self.center.handle(now, Input::AgentLogin(id));
                }
            }
        }
        for input in std::mem::take(&mut self.pending) {
            self.center.handle(now, input);
        }
    }

    /// The timers: bindings expire (their presence changes wait for the next
    /// [`HubMsg::Sync`]), then the center's (a call before a deadline is a harmless
    /// no-op).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = Some(now);
        self.registrar.handle_timeout(now);
        self.registrar_events();
        if self.center.poll_timeout().is_some_and(|t| t <= now) {
            self.center.handle_timeout(now);
        }
    }

    /// The next deadline (the center's or a binding's expiry).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.center.poll_timeout(), self.registrar.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// The next output, `None` when there is nothing more for now.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<HubOutput> {
        loop {
            if let Some(o) = self.out.pop_front() {
                return Some(o);
            }
            if let Some(q) = self.center.poll_output() {
                self.route(q);
                continue;
            }
            for call in self.gone.drain(..) {
                self.rows.remove(&call);
            }
            if !self.next_restore() {
                return None;
            }
        }
    }

    /// Whether a configuration, a presence change or an agent's request waits for
    /// [`HubMsg::Sync`].
    pub fn has_pending(&self) -> bool {
        self.pending_config.is_some() || !self.pending.is_empty()
    }

    /// The shard a new queued callback is offered on (round robin), or the one it is on.
    fn callback_shard(&mut self, callback: CallbackId) -> ShardId {
        if let Some(s) = self.callback_shards.get(&callback) {
            return *s;
        }
        let s = self.next_callback_shard;
        self.next_callback_shard = (s + 1) % self.shards;
        self.callback_shards.insert(callback, s);
        s
    }

    pub(crate) fn send_shard(&mut self, shard: ShardId, msg: ShardMsg) {
        self.out.push_back(HubOutput::Shard { shard, msg });
    }

    /// Turn one center output into hub outputs: to the shard that owns what it names, to
    /// the log, to the store.
    fn route(&mut self, out: QOut) {
        match out {
            QOut::Joined { .. } => {}
            QOut::CallbackAccepted { call, callback, .. } => {
                let store_id = self.store_callback(call, callback);
                let msg = ShardMsg::CallbackAccepted {
                    call,
                    callback,
                    store_id,
                };
                self.send_shard(shard_of_call(call), msg);
            }
            QOut::CallbackRestored { callback, .. } => self.callback_restored(callback),
            QOut::CallbackRefused { call, .. }
            | QOut::Refused { call, .. }
            | QOut::Exit { call, .. }
            | QOut::Announce { call, .. } => {
                self.send_shard(shard_of_call(call), ShardMsg::Center(out));
            }
            QOut::Connect { call, offer, .. } => {
                self.offer_shards.remove(&offer);
                self.send_shard(shard_of_call(call), ShardMsg::Center(out));
            }
            QOut::Offer {
                offer,
                waiter,
                ref agent,
                ..
            } => {
                let shard = match waiter {
                    Waiter::Caller(call) => shard_of_call(call),
                    Waiter::Callback(cb) => self.callback_shard(cb),
                };
                // The phones are read now, by the registrar's owner: no engine keeps a copy.
                let targets = self.agent_targets(agent);
                self.offer_shards.insert(offer, shard);
                self.send_shard(shard, ShardMsg::Offer { out, targets });
            }
            QOut::CancelOffer { offer, .. } | QOut::Release { offer } => {
                // An offer already failed, answered elsewhere or connected: nobody rings.
                if let Some(shard) = self.offer_shards.remove(&offer) {
                    self.send_shard(shard, ShardMsg::Center(out));
                }
            }
            QOut::DialCallback {
                callback, offer, ..
            } => {
                // The answered offer is over: the center names it no more (no `Connect`,
                // `CancelOffer` or `Release` follows a callback's answer).
                self.offer_shards.remove(&offer);
                let shard = self.callback_shard(callback);
                self.send_shard(shard, ShardMsg::Center(out));
            }
            QOut::Event(e) => self.event(e.at, e.event),
        }
    }

    /// A queue event: the store follows callbacks, the call's shard its call record, and
    /// the log everything.
    fn event(&mut self, at: Instant, event: QueueEvent) {
        self.callback_store_event(&event);
        match &event {
            QueueEvent::CallbackConnected { callback, .. }
            | QueueEvent::CallbackCancelled { callback, .. }
            | QueueEvent::CallbackFailed {
                callback,
                retrying: false,
                ..
            } => {
                self.callback_shards.remove(callback);
            }
            _ => {}
        }
        let call = event_call(&event);
        let call_id = call.and_then(|c| self.rows.get(&c).map(|r| r.call_id.clone()));
        if let Some(c) = call {
            let msg = ShardMsg::QueueEvent {
                call: c,
                at,
                event: event.clone(),
            };
            self.send_shard(shard_of_call(c), msg);
        }
        self.out.push_back(HubOutput::Event {
            call: call.map(|c| CallHandle(c.0)),
            call_id,
            at,
            event,
        });
    }

    // ---- views ----

    /// Callers waiting in `queue` now.
    pub fn waiting(&self, queue: &str) -> usize {
        self.center.waiting(&QueueName::new(queue)).len()
    }

    /// The line of the queue named `queue`, first to be served first.
    pub fn queue_line(&self, queue: &str) -> Vec<Waiter> {
        self.center.waiting(&QueueName::new(queue))
    }

    /// Each queue of the current config with the callers waiting in it.
    pub fn queues_waiting(&self) -> Vec<(String, usize)> {
        self.menus
            .queues()
            .iter()
            .map(|q| (q.name.clone(), self.waiting(&q.name)))
            .collect()
    }

    /// Each agent with its state in the queue center.
    pub fn agent_states(&self) -> Vec<(String, AgentState)> {
        self.center
            .agents()
            .map(|(a, s)| (a.0.clone(), s.clone()))
            .collect()
    }

    /// How many offers and queued callbacks the routing tables hold (tests: none is left
    /// behind).
    pub fn routing_len(&self) -> (usize, usize) {
        (self.offer_shards.len(), self.callback_shards.len())
    }
}

/// The call a queue event names (a caller; callback requests name none).
fn event_call(event: &QueueEvent) -> Option<CallRef> {
    match event {
        QueueEvent::Enter { call, .. }
        | QueueEvent::Abandon { call, .. }
        | QueueEvent::Requeue { call, .. }
        | QueueEvent::ExitKey { call, .. }
        | QueueEvent::Timeout { call, .. }
        | QueueEvent::LeaveEmpty { call, .. }
        | QueueEvent::Transfer { call, .. }
        | QueueEvent::Complete { call, .. } => Some(*call),
        QueueEvent::Offer { waiter, .. }
        | QueueEvent::OfferFailed { waiter, .. }
        | QueueEvent::Answer { waiter, .. } => match waiter {
            Waiter::Caller(c) => Some(*c),
            Waiter::Callback(_) => None,
        },
        _ => None,
    }
}

fn empty_config() -> ValidConfig {
    CenterConfig::default()
        .validate()
        .unwrap_or_else(|_| unreachable!("an empty configuration is valid"))
}

/// The center's configuration for the menus' `queues:` and `agents:`.
pub fn center_config(menus: &Menus) -> CenterConfig {
    let queues = menus
        .queues()
        .iter()
        .map(|q| {
            let mut c = QueueConfig::new(q.name.clone());
            c.strategy = match q.strategy {
                ivr_menus::handoff::Strategy::RingAll => Strategy::RingAll,
                ivr_menus::handoff::Strategy::RoundRobin => Strategy::RoundRobin,
                ivr_menus::handoff::Strategy::LongestIdle => Strategy::LongestIdle,
                ivr_menus::handoff::Strategy::FewestCalls => Strategy::FewestCalls,
                ivr_menus::handoff::Strategy::Random => Strategy::Random,
                ivr_menus::handoff::Strategy::Linear => Strategy::Linear,
            };
            c.agent_timeout = q.agent_timeout;
            c.wrap_up = q.wrap_up;
            c.max_wait = Some(q.max_wait);
            c.announce_every = Some(q.announce_every);
            c.announce_position = q.announce_position;
            c.announce_wait = q.announce_wait;
            c.join_when_empty = empty_rule(q.join_when_empty);
            c.leave_when_empty = empty_rule(q.leave_when_empty);
            c.max_no_answer = q.max_no_answer;
            c.callback = q.callback.as_ref().map(|cb| ivr_queues::CallbackConfig {
                retries: cb.retries,
                retry_delay: cb.retry_delay,
            });
            c
        })
        .collect();
    let agents = menus
        .agents()
        .iter()
        .map(|a| AgentConfig {
            id: AgentId::new(a.name.clone()),
            queues: a
                .queues
                .iter()
                .map(|(q, penalty)| Membership {
                    queue: QueueName::new(menus.queue(*q).name.clone()),
                    penalty: *penalty,
                })
                .collect(),
            wrap_up: None,
        })
        .collect();
    CenterConfig {
        queues,
        agents,
        limits: Limits::default(),
    }
}

fn empty_rule(r: ivr_menus::handoff::EmptyRule) -> EmptyRule {
    match r {
        ivr_menus::handoff::EmptyRule::Never => EmptyRule::Never,
        ivr_menus::handoff::EmptyRule::NoneLoggedIn => EmptyRule::NoneLoggedIn,
        ivr_menus::handoff::EmptyRule::NoneActive => EmptyRule::NoneActive,
    }
}

#[cfg(test)]
#[path = "hub_tests.rs"]
mod tests;
