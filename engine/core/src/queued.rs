//! Callers waiting in call-center queues, and the agents they are bridged to.
//!
//! The [`Hub`](crate::hub::Hub) owns the one [`QueueCenter`](ivr_queues::QueueCenter)
//! (crate `ivr-queues`), the only holder of queue and agent state. This module is the
//! engine's side: it turns what calls and registrations do into the center's [`Input`]s,
//! sent to the hub as [`HubMsg`]s, and carries out the center's outputs the hub addresses to
//! this engine ([`ShardMsg`]) on calls and legs.
//!
//! - `queue: NAME` in the menus makes the call's application [`App::Queued`]: the caller
//!   hears the queue's `music` in a loop (the ringing tone if it has none) and its
//!   `announcement` each time the center says one is due, and the center is told
//!   [`Input::Enter`].
//! - [`Output::Offer`](QOut::Offer): a new outgoing leg on the caller's call per phone of the agent rings
//!   it (an INVITE to each contact it registered, sent to the address and transport that
//!   REGISTER came from, since agents sit behind NAT; a static agent's `uri:`); the first
//!   phone to answer takes the offer, the others are cancelled. It carries `X-IVR-Queue`,
//!   `X-IVR-Path` (the menus the caller came through) and `X-IVR-Variables`. How long it rings is the center's
//!   decision ([`Output::CancelOffer`](QOut::CancelOffer) → CANCEL). A 2xx is [`Input::OfferAnswered`]; the
//!   center answers [`Output::Connect`](QOut::Connect) (bridge, as transfers do: [`crate::bridge`]) or
//!   [`Output::Release`](QOut::Release) (BYE: nobody wants that answer any more). Any other final answer
//!   is [`Input::OfferFailed`].
//! - [`Output::Exit`](QOut::Exit) and [`Output::Refused`](QOut::Refused): the caller is back in the menus and the
//!   queue's `on_timeout` acts ([`MenuRun::queue_left`]).
//! - The caller hanging up is [`Input::Leave`]; once bridged, either side's BYE ends both
//!   legs and is [`Input::CallEnded`] (the agent wraps up).
//! - Agents (`login: on_register`, the default): an agent with at least one live
//!   registration is logged in; a static agent always is (the hub's registrar decides:
//!   [`crate::hub_agents`]).
//!   With `login: manual`, and for anyone through feature codes or staff, see
//!   [`crate::agent_desk`].
//!
//! Every queue event is logged in the call's span ([`Event::Queue`]).

use crate::call::{App, CallHandle, LegHandle};
use crate::dial::{self, Dial};
use crate::engine::Engine;
use crate::hub_msg::{AgentTarget, HubMsg, HubOutput, ShardMsg};
use crate::io::{Event, Output};
use crate::leg::LegPhase;
use crate::outgoing::{Located, send_uac, uri_user};
use ivr_menus::{MenuRun, Menus, QueueId};
use ivr_queues::{
    AgentId, CallRef, Input, LeaveReason, OfferFailure, OfferId, Output as QOut, QueueName, Waiter,
};
use ivr_sip::header::HeaderName;
use ivr_sip::message::CoreHeaders;
use ivr_sip::transaction::Peer;
use ivr_sip::uac::{CancelReason, FailureKind, OutgoingCall, UacEvent};
use ivr_sip::uri::Uri;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// The most legs a call may have: a caller who waits through more offers than this leaves
/// the queue (to its `on_timeout`), since legs are never reused.
const MAX_LEGS: usize = u8::MAX as usize;

/// A caller in a queue: waiting (agents may be ringing for it), then bridged to an agent.
#[derive(Debug)]
pub struct Queued {
    /// The caller's menu run, resumed with the queue's `on_timeout` if it leaves unserved.
    pub run: Box<MenuRun>,
    /// The queue, in the run's menus.
    pub queue: QueueId,
    /// Agents ringing for this caller (several with `ring_all`).
    pub rings: Vec<AgentRing>,
    /// The agent the caller is bridged to (or, while `whisper`, about to be).
    pub agent: Option<AgentRing>,
    /// The agent hears the queue's `whisper` before the caller is put through
    /// ([`crate::whisper`]), at the latest at this time; the caller hears the music
    /// meanwhile.
    pub whisper: Option<Instant>,
    /// The callback number dialogue, after the caller pressed the `callback` exit key
    /// ([`crate::queue_callback`]); the caller keeps its place meanwhile.
    pub dialogue: Option<Box<ivr_voicemail::Deposit>>,
    /// The callback request was taken: the confirmation plays, then the call ends.
    pub leaving: bool,
    /// The number the caller asked to be called back on (sent with `RequestCallback`).
    pub asked: Option<String>,
    /// For a queued callback's own call: the call to the caller (leg 0).
    pub callback: Option<Box<crate::queue_callback::CallbackCall>>,
}

/// One offer: an outgoing leg ringing one agent's phone.
#[derive(Debug)]
pub struct AgentRing {
    /// The center's offer.
    pub offer: OfferId,
    /// Whose phone.
    pub agent: AgentId,
    /// The outgoing leg.
    pub leg: LegHandle,
    /// The Request-URI (the registered contact, or the static URI).
    pub target: Uri,
    /// Where every message of the attempt goes for the target's host.
    pub located: Located,
    /// The INVITE attempt; `None` while the leg waits for its RTP socket.
    pub uac: Option<Box<OutgoingCall>>,
    /// The agent answered (waiting for the center's `Connect`, or connected).
    pub answered: bool,
    /// A static agent's host name is being located by DNS (RFC 3263) before the leg opens
    /// its socket.
    pub locating: bool,
}

impl Queued {
    /// The next deadline: the agents' INVITE transactions.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.rings
            .iter()
            .chain(self.agent.as_ref())
            .filter_map(|r| r.uac.as_ref()?.poll_timeout())
            .chain(self.dialogue.as_ref().and_then(|d| d.poll_timeout()))
            .chain(self.callback.as_ref().and_then(|c| c.poll_timeout()))
            .chain(self.whisper)
            .min()
    }

    /// Where audio from `from` is relayed: between the caller and the agent, once bridged
    /// (not while the agent hears the whisper).
    pub fn relays(&self, from: LegHandle) -> Option<LegHandle> {
        if self.whisper.is_some() {
            return None;
        }
        let agent = self.agent.as_ref()?.leg;
        let caller = agent.call.leg(0);
        if from == caller {
            Some(agent)
        } else if from == agent {
            Some(caller)
        } else {
            None
        }
    }
}

/// The engine's side of the queues: which of its calls rings for each offer, the queued
/// callbacks' own calls, and what waits to be told to the [`Hub`](crate::hub::Hub). The
/// center and everything around it is the hub's.
pub struct Queueing {
    /// The hub when it is embedded in this engine ([`Engine::new`]).
    pub(crate) hub: Option<Box<crate::hub::Hub>>,
    /// Offers out, by the call they ring for.
    offers: HashMap<OfferId, CallHandle>,
    /// Each callback request's own call, while an offer or a dial is out for it.
    pub(crate) callback_calls: HashMap<ivr_queues::CallbackId, CallHandle>,
    /// REGISTERs handed to the hub and not answered yet.
    pub(crate) registers: usize,
    /// Feature-code INVITEs waiting for the hub's authentication, and whether the caller
    /// cancelled meanwhile ([`crate::feature_codes`]; embedded, answered before the next
    /// message, so always empty between inputs).
    pub(crate) parked: HashMap<ivr_sip::transaction::ServerKey, bool>,
    /// Whether the hub's outputs are being carried out (the loop picks up what is added
    /// meanwhile).
    draining: bool,
}

impl std::fmt::Debug for Queueing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queueing")
            .field("offers", &self.offers.len())
            .finish_non_exhaustive()
    }
}

impl Queueing {
    /// The engine's side, with the hub embedded (static agents are logged in at the first
    /// input; the registrar's nonces keyed with `secret`).
    pub fn new(
        menus: &Arc<Menus>,
        seed: u64,
        registrar: ivr_sip::registrar::RegistrarConfig,
        secret: [u8; 32],
    ) -> Queueing {
        let hub = crate::hub::Hub::new(menus.clone(), seed, 1, registrar, secret);
        Queueing {
            hub: Some(Box::new(hub)),
            offers: HashMap::new(),
            callback_calls: HashMap::new(),
            registers: 0,
            parked: HashMap::new(),
            draining: false,
        }
    }

    /// The engine's side of a shard whose hub runs elsewhere ([`Engine::new_shard`]): what
    /// it tells the hub goes out as [`Output::Hub`]; reloads and syncs are the hub owner's.
    pub fn external() -> Queueing {
        Queueing {
            hub: None,
            offers: HashMap::new(),
            callback_calls: HashMap::new(),
            registers: 0,
            parked: HashMap::new(),
            draining: false,
        }
    }

    /// Whether something waits to be told to the center at its next sync (O(1): asked
    /// after every input, RTP included).
    pub(crate) fn has_pending(&self) -> bool {
        self.hub.as_ref().is_some_and(|h| h.has_pending())
    }

    /// The embedded hub (`None` once the hub runs elsewhere).
    pub(crate) fn hub(&self) -> Option<&crate::hub::Hub> {
        self.hub.as_deref()
    }
}

/// How a failed INVITE counts for the center.
fn offer_failure(kind: FailureKind) -> OfferFailure {
    match kind {
        FailureKind::Busy => OfferFailure::Busy,
        FailureKind::NoAnswer => OfferFailure::NoAnswer,
        FailureKind::Rejected => OfferFailure::Rejected,
        FailureKind::Failed => OfferFailure::Unreachable,
    }
}

/// Text safe in a header value: printable ASCII, at most `max` characters.
fn header_safe(s: &str, max: usize) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(max)
        .collect()
}

impl Engine {
    // ---- agents ----

    /// Have the hub hand the center what came up since the last input: new menus'
    /// configuration (then static agents log in), agents' presence and requests. Then
    /// carry out what it asks.
    pub(crate) fn queues_sync(&mut self, now: Instant) {
        if self.queueing.has_pending() {
            self.hub_send(now, HubMsg::Sync);
        }
        self.drain_queues(now);
    }

    /// The hub's timers (bindings' expiry, then the center's).
    pub(crate) fn queues_timeout(&mut self, now: Instant) {
        if let Some(hub) = self.queueing.hub.as_mut() {
            hub.handle_timeout(now);
        }
        self.drain_queues(now);
    }

    /// The hub's next deadline (when embedded).
    pub(crate) fn queues_poll_timeout(&self) -> Option<Instant> {
        self.queueing.hub().and_then(|h| h.poll_timeout())
    }

    /// Tell the hub something; what it answers is carried out at the next drain.
    pub(crate) fn hub_send(&mut self, now: Instant, msg: HubMsg) {
        match self.queueing.hub.as_mut() {
            Some(hub) => hub.handle(now, msg),
            // The hub's owner answers with `Input::Hub`, later.
            None => self.ctx.outputs.push_back(Output::Hub(msg)),
        }
    }

    /// Tell the center something and carry out what it asks.
    pub(crate) fn queue_input(&mut self, now: Instant, input: Input) {
        self.hub_input(now, HubMsg::Queue(input));
    }

    /// Tell the hub something and carry out what it asks.
    pub(crate) fn hub_input(&mut self, now: Instant, msg: HubMsg) {
        self.hub_send(now, msg);
        self.drain_queues(now);
    }

    /// New menus: the hub's registrar and view follow now, the center at the next input.
    /// What the registrar reports of it (agents whose accounts are gone) is logged now when
    /// an input came before (a reload may come before any).
    pub(crate) fn queues_reload(&mut self, menus: &Arc<Menus>) {
        // A hub elsewhere is reloaded (and synced) by its owner, before its shards; the
        // embedded one keeps the new configuration pending for the next sync.
        if let Some(hub) = self.queueing.hub.as_mut() {
            // `HubMsg::Reload`, which needs no time.
            hub.reload(menus.clone());
        }
        if let Some(now) = self.last_now {
            self.drain_queues(now);
        }
    }

    /// Carry out the hub's outputs (re-entrant calls leave the work to the outer loop).
    pub(crate) fn drain_queues(&mut self, now: Instant) {
        if self.queueing.draining {
            return;
        }
        self.queueing.draining = true;
        while let Some(out) = self.queueing.hub.as_mut().and_then(|h| h.poll_output()) {
            self.hub_output(now, out);
        }
        self.queueing.draining = false;
    }

    /// One output of the embedded hub.
    fn hub_output(&mut self, now: Instant, out: HubOutput) {
        match out {
            HubOutput::Shard { msg, .. } => self.hub_message(now, msg),
            HubOutput::Event {
                call,
                call_id,
                at,
                event,
            } => self.ctx.event(Event::Queue {
                call,
                call_id,
                at,
                event,
            }),
            HubOutput::QueueCallback(cmd) => self.ctx.outputs.push_back(Output::QueueCallback(cmd)),
            HubOutput::AuthFailed { from, method } => {
                // The embedded engine is the source gate.
                self.admission.auth_failed(now, from.ip());
                self.ctx.event(Event::AuthFailed { from, method });
            }
            HubOutput::Agent { change, registered } => {
                self.ctx.event(Event::Agent { change, registered })
            }
        }
    }

    /// A message from the hub about one of this engine's calls or offers.
    pub(crate) fn hub_message(&mut self, now: Instant, msg: ShardMsg) {
        match msg {
            ShardMsg::Center(out) => self.queue_output(now, out, Vec::new()),
            ShardMsg::Offer { out, targets } => self.queue_output(now, out, targets),
            ShardMsg::RegisterReply { key, req, answer } => {
                self.register_reply(now, key, &req, answer)
            }
            ShardMsg::Authenticated {
                key,
                req,
                peer,
                answer,
            } => self.feature_answer(now, key, *req, peer, answer),
            ShardMsg::CallbackAccepted { call, store_id, .. } => {
                let handle = CallHandle(call.0);
                let queue = self.calls.get(&handle).and_then(|c| match &c.app {
                    App::Queued(q) => Some(q.run.menus().queue(q.queue).name.clone()),
                    _ => None,
                });
                if let Some(queue) = queue {
                    self.cdr_callback(handle, &queue, &store_id);
                }
                self.callback_accepted(now, handle);
            }
            ShardMsg::QueueEvent { call, at, event } => self.cdr_queue_event(call, at, &event),
        }
    }

    /// A center output for one of this engine's calls or offers (an offer with the phones
    /// to ring).
    fn queue_output(&mut self, now: Instant, out: QOut, targets: Vec<AgentTarget>) {
        if matches!(
            out,
            QOut::Offer {
                waiter: Waiter::Callback(_),
                ..
            } | QOut::DialCallback { .. }
        ) {
            return self.callback_output(now, out, targets);
        }
        match out {
            QOut::CallbackRefused { call, reason } => {
                self.callback_refused(CallHandle(call.0), reason)
            }
            QOut::Refused { call, reason, .. } => {
                let outcome = match reason {
                    ivr_queues::RefuseReason::Full => "full",
                    ivr_queues::RefuseReason::NoAgents => "no agents",
                    ivr_queues::RefuseReason::UnknownQueue => "closed",
                    ivr_queues::RefuseReason::AlreadyQueued => "refused",
                };
                self.queue_left(now, CallHandle(call.0), outcome);
            }
            QOut::Exit { call, reason, .. } => {
                let outcome = match reason {
                    ivr_queues::ExitReason::MaxWait => "timeout",
                    ivr_queues::ExitReason::Empty => "no agents",
                };
                self.queue_left(now, CallHandle(call.0), outcome);
            }
            QOut::Offer {
                offer,
                agent,
                waiter: Waiter::Caller(call),
                ..
            } => {
                let handle = CallHandle(call.0);
                if let Err(why) = self.ring_agent(now, handle, offer, agent, targets) {
                    self.hub_send(now, HubMsg::Queue(Input::OfferFailed { offer, why }));
                }
            }
            QOut::CancelOffer { offer, .. } => self.stop_ring(now, offer),
            QOut::Release { offer } => self.stop_ring(now, offer),
            QOut::Connect { call, agent, offer } => {
                self.connect_agent(now, CallHandle(call.0), offer, agent)
            }
            QOut::Announce {
                call,
                periodic,
                position,
                estimated_wait,
            } => self.announce(CallHandle(call.0), periodic, position, estimated_wait),
            // The hub keeps these (and callbacks' offers are handled above).
            QOut::Offer { .. }
            | QOut::DialCallback { .. }
            | QOut::Joined { .. }
            | QOut::CallbackAccepted { .. }
            | QOut::CallbackRestored { .. }
            | QOut::Event(_) => {}
        }
    }

    // ---- the caller ----

    /// The menus handed `handle` to `queue`: the caller waits with music, and joins with
    /// the `queue:` action's priority.
    pub(crate) fn start_queue(
        &mut self,
        now: Instant,
        handle: CallHandle,
        queue: QueueId,
        priority: u8,
    ) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let App::Menu(run) = &mut call.app else {
            return;
        };
        let menus = run.menus().clone();
        let name = menus.queue(queue).name.clone();
        let run = std::mem::replace(run, Box::new(MenuRun::new(menus)));
        call.app = App::Queued(Box::new(Queued {
            run,
            queue,
            rings: Vec::new(),
            agent: None,
            whisper: None,
            dialogue: None,
            leaving: false,
            asked: None,
            callback: None,
        }));
        let caller = call.caller.clone();
        let call_id = call.call_id.to_string();
        let path = call.path.clone();
        self.play_music(handle);
        let msg = HubMsg::Enter {
            call: CallRef(handle.0),
            queue: QueueName::new(name),
            priority,
            caller,
            call_id,
            path,
        };
        self.hub_input(now, msg);
        self.reindex(handle);
    }

    /// The queue's music (or the ringing tone), from the start.
    pub(crate) fn play_music(&mut self, handle: CallHandle) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let App::Queued(q) = &call.app else { return };
        let music = &q.run.menus().queue(q.queue).music;
        let prompts = if music.is_empty() {
            vec![self.ringback.clone()]
        } else {
            music.iter().map(|id| q.run.prompt(*id).clone()).collect()
        };
        call.caller_leg().play(prompts);
    }

    /// The periodic announcement (if `periodic`), then the position and the estimated wait
    /// the center says changed, then the music again: `queue_position` ("You are number"),
    /// the position in the number words of the caller's language (`number_1`...; see
    /// `ivr_menus::numbers`) and `queue_position_end` ("in line."); `queue_wait` ("Your
    /// expected wait is about"), the minutes and `queue_minutes` ("minutes.", or
    /// `queue_minute` for one). The config's own recordings, else the built-in ones
    /// (`ivr_menus::handoff::QUEUE_PROMPTS`); a missing prompt leaves that part out.
    fn announce(
        &mut self,
        handle: CallHandle,
        periodic: bool,
        position: Option<usize>,
        wait: Option<std::time::Duration>,
    ) {
        let Some(call) = self.calls.get(&handle) else {
            return;
        };
        let App::Queued(q) = &call.app else { return };
        if q.agent.is_some() || q.dialogue.is_some() || q.leaving {
            return;
        }
        let menus = q.run.menus();
        let rule = menus
            .languages()
            .get(q.run.language())
            .and_then(|l| ivr_menus::numbers::Rule::for_language(l))
            .unwrap_or(ivr_menus::numbers::Rule::English);
        let mut ids = Vec::new();
        if periodic {
            ids.extend(menus.queue(q.queue).announcement.iter().copied());
        }
        let mut say = |intro: &str, n: u64, outro: Option<&str>| {
            if let Some(intro) = menus.find_prompt(intro) {
                ids.push(intro);
                let words = ivr_menus::numbers::tokens(rule, &n.to_string());
                ids.extend(words.iter().filter_map(|w| menus.find_prompt(w)));
                ids.extend(outro.and_then(|o| menus.find_prompt(o)));
            }
        };
        if let Some(p) = position {
            say("queue_position", p as u64, Some("queue_position_end"));
        }
        if let Some(w) = wait {
            let minutes = w.as_secs().div_ceil(60);
            // "one minute", when the config has the singular; else "one minutes".
            let unit = if minutes == 1 && menus.find_prompt("queue_minute").is_some() {
                "queue_minute"
            } else {
                "queue_minutes"
            };
            say("queue_wait", minutes, Some(unit));
        }
        let prompts: Vec<_> = ids
            .iter()
            .map(|id| {
                (
                    menus.prompt_name(*id).to_string(),
                    q.run.prompt(*id).clone(),
                )
            })
            .collect();
        if !prompts.is_empty() {
            self.play(handle, prompts);
        }
    }

    /// What played to a waiting caller ended: the music goes on (also while the agent hears
    /// the whisper). What played to an agent's leg ended: see [`crate::whisper`].
    pub(crate) fn queued_playback_finished(&mut self, now: Instant, leg: LegHandle) {
        let handle = leg.call;
        if leg.index != 0 && !self.is_callback_call(handle) {
            return self.agent_playback_finished(leg);
        }
        if leg.index != 0 {
            return self.callback_agent_playback_finished(leg);
        }
        if self.dialogue_playback_finished(now, handle) {
            return;
        }
        if let Some(call) = self.calls.get(&handle)
            && let App::Queued(q) = &call.app
            && (q.agent.is_none() || q.whisper.is_some())
        {
            self.play_music(handle);
        }
    }

    /// The caller leaves the queue unserved: back to the menus, whose `on_timeout` acts.
    fn queue_left(&mut self, now: Instant, handle: CallHandle, outcome: &str) {
        self.leave_queue(now, handle, |run, now| run.queue_left(now, outcome));
    }

    /// The caller pressed an exit key bound to `action` (the center was told): back to the
    /// menus, where the action runs.
    pub(crate) fn queue_exit_key(
        &mut self,
        now: Instant,
        handle: CallHandle,
        key: ivr_audio::Digit,
        action: ivr_menus::Action,
    ) {
        self.leave_queue(now, handle, |run, now| run.queue_exit(now, key, action));
    }

    /// Back to the menus from a queue (unless bridged): the rings stop, then `then` tells
    /// the run what to do.
    fn leave_queue(
        &mut self,
        now: Instant,
        handle: CallHandle,
        then: impl FnOnce(&mut MenuRun, Instant),
    ) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let App::Queued(q) = &call.app else { return };
        if q.agent.is_some() {
            return;
        }
        let menus = q.run.menus().clone();
        let old = std::mem::replace(&mut call.app, App::Menu(Box::new(MenuRun::new(menus))));
        let App::Queued(q) = old else { return };
        let q = *q;
        call.app = App::Menu(q.run);
        call.caller_leg().stop();
        for ring in q.rings {
            let bye = ring.answered;
            self.drop_ring(now, ring, bye);
        }
        if let Some(call) = self.calls.get_mut(&handle)
            && let App::Menu(run) = &mut call.app
        {
            then(run, now);
        }
        self.apply_app(now, handle);
        self.reindex(handle);
    }

    /// The call is ending from our side: agents still ringing get CANCEL.
    pub(crate) fn abandon_queue(&mut self, now: Instant, handle: CallHandle) {
        if let Some(call) = self.calls.get_mut(&handle)
            && let App::Queued(q) = &mut call.app
        {
            for r in &mut q.rings {
                if let Some(uac) = r.uac.as_mut() {
                    uac.cancel(now, CancelReason::Abandoned);
                }
            }
            if let Some(uac) = q.callback.as_mut().and_then(|c| c.uac.as_mut()) {
                uac.cancel(now, CancelReason::Abandoned);
            }
            self.drive_rings(now, handle);
        }
    }

    /// The call is gone: the center hears why (a waiting caller left; a bridged call ended),
    /// and the agents' attempts finish their transactions detached.
    pub(crate) fn detach_queued(&mut self, app: App, handle: CallHandle) {
        let App::Queued(q) = app else { return };
        let mut q = *q;
        // Calls only end while an input is handled, which sets the time.
        let Some(now) = self.last_now else { return };
        for ring in q.rings {
            let bye = ring.answered;
            self.drop_ring(now, ring, bye);
        }
        let call = CallRef(handle.0);
        if let Some(cb) = q.callback.take() {
            let bridged = q.agent.is_some();
            if let Some(ring) = q.agent {
                self.drop_ring(now, ring, false);
            }
            if let Some(input) = self.detach_callback(now, *cb, bridged, handle) {
                self.queue_input(now, input);
            }
            return;
        }
        let input = match q.agent {
            Some(ring) => {
                // Its leg's own BYE (the call's end) hangs the agent up.
                self.drop_ring(now, ring, false);
                Input::CallEnded { call }
            }
            None => Input::Leave {
                call,
                reason: LeaveReason::Hangup,
            },
        };
        self.queue_input(now, input);
    }

    // ---- the agents' legs ----

    /// Ring `agent` for the caller on `handle`: a new leg per phone it has (`targets`, read
    /// by the hub when it routed the offer: each registered binding, newest first, or its
    /// static URI), whose INVITE goes once its RTP socket is open. The first phone to answer
    /// takes the offer; the others are cancelled.
    pub(crate) fn ring_agent(
        &mut self,
        now: Instant,
        handle: CallHandle,
        offer: OfferId,
        agent: AgentId,
        targets: Vec<AgentTarget>,
    ) -> Result<(), OfferFailure> {
        if targets.is_empty() {
            return Err(OfferFailure::Unreachable);
        }
        let Some(call) = self.calls.get(&handle) else {
            return Err(OfferFailure::Unreachable);
        };
        let App::Queued(q) = &call.app else {
            return Err(OfferFailure::Unreachable);
        };
        if q.agent.is_some() {
            return Err(OfferFailure::Unreachable);
        }
        if call.legs.len() + targets.len() > MAX_LEGS {
            // Out of legs: the caller leaves for `on_timeout` rather than wait forever.
            let input = Input::Leave {
                call: CallRef(handle.0),
                reason: LeaveReason::Transferred,
            };
            self.hub_send(now, HubMsg::Queue(input));
            self.queue_left(now, handle, "too many offers");
            return Err(OfferFailure::Unreachable);
        }
        for AgentTarget {
            uri: target,
            peer,
            locate,
        } in targets
        {
            let Some(host) = target.as_sip().map(|s| s.host.clone()) else {
                continue;
            };
            let Some(call) = self.calls.get_mut(&handle) else {
                break;
            };
            let App::Queued(q) = &mut call.app else {
                break;
            };
            let Ok(index) = u8::try_from(call.legs.len()) else {
                break;
            };
            let leg = handle.leg(index);
            let Some(l) = dial::outgoing_leg(&mut self.ctx, leg, target.clone(), peer) else {
                continue;
            };
            call.legs.push(l);
            let locate_uri = locate.then(|| target.clone());
            q.rings.push(AgentRing {
                offer,
                agent: agent.clone(),
                leg,
                target,
                located: Located { host, peer },
                uac: None,
                answered: false,
                locating: locate,
            });
            self.queueing.offers.insert(offer, handle);
            self.ctx.outputs.push_back(match locate_uri {
                Some(uri) => Output::Locate { leg, uri },
                None => Output::OpenMedia { leg },
            });
        }
        if self.queueing.offers.contains_key(&offer) {
            Ok(())
        } else {
            Err(OfferFailure::Unreachable)
        }
    }

    /// DNS answered for a static agent's host: its leg goes to the first target our SIP
    /// socket can reach (RFC 3263 order) and opens its socket; nothing found fails that phone.
    pub(crate) fn queued_located(&mut self, leg: LegHandle, targets: Vec<Peer>) {
        let now = self.last_now;
        let ours = self.ctx.config.sip_addr.ip();
        let reachable = |p: &Peer| {
            p.addr.is_ipv4() == ours.is_ipv4() || (ours.is_ipv6() && ours.is_unspecified())
        };
        let first = targets.into_iter().find(reachable);
        let Some(call) = self.calls.get_mut(&leg.call) else {
            return;
        };
        let App::Queued(q) = &mut call.app else {
            return;
        };
        let Some(ring) = q.rings.iter_mut().find(|r| r.leg == leg && r.locating) else {
            return;
        };
        let Some(first) = first else {
            self.ctx.event(Event::RouteUnresolved {
                call: leg.call,
                next_hop: ring.target.to_string(),
            });
            if let Some(now) = now {
                self.agent_failed(now, leg.call, leg, OfferFailure::Unreachable);
            }
            return;
        };
        ring.locating = false;
        ring.located.peer = first;
        if let Some(l) = call.legs.get_mut(usize::from(leg.index)) {
            l.peer = first;
        }
        self.ctx.outputs.push_back(Output::OpenMedia { leg });
    }

    /// An agent's leg has its RTP socket: send the INVITE with our offer.
    pub(crate) fn queued_media_opened(&mut self, now: Instant, leg: LegHandle, local: SocketAddr) {
        let Some(call) = self.calls.get_mut(&leg.call) else {
            return;
        };
        let App::Queued(q) = &mut call.app else {
            return;
        };
        let Some(ring) = q.rings.iter_mut().find(|r| r.leg == leg && r.uac.is_none()) else {
            // Its offer is gone already: the socket is not wanted.
            self.ctx.outputs.push_back(Output::CloseMedia { leg });
            return;
        };
        let Some(l) = call.legs.get_mut(usize::from(leg.index)) else {
            return;
        };
        dial::open_session(&mut self.ctx, l, local);
        let menus = q.run.menus();
        let mut extra = vec![(
            HeaderName::Other("X-IVR-Queue".into()),
            header_safe(&menus.queue(q.queue).name, 64),
        )];
        let vars: Vec<String> = q
            .run
            .variables()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !vars.is_empty() {
            // What the caller typed or the menus set (an account number...), for the agent's
            // screen: printable ASCII, bounded.
            extra.push((
                HeaderName::Other("X-IVR-Variables".into()),
                header_safe(&vars.join("; "), 512),
            ));
        }
        if !call.path.is_empty() {
            let path = call.path.join("/");
            extra.push((
                HeaderName::Other("X-IVR-Path".into()),
                header_safe(&path, 512),
            ));
        }
        let dial = Dial {
            target: ring.target.clone(),
            from_user: call.caller.as_deref().and_then(uri_user),
            sips: false,
            proxy: None,
            credentials: None,
            extra_headers: extra,
            fresh_call_id: false,
        };
        let Some(uac) = dial.invite(&mut self.ctx, now, l) else {
            return;
        };
        self.uac_calls.insert(uac.call_id().clone(), leg.call);
        ring.uac = Some(Box::new(uac));
        self.drive_rings(now, leg.call);
        self.reindex(leg.call);
    }

    /// An agent's leg got no RTP socket: that offer failed.
    pub(crate) fn queued_media_failed(&mut self, now: Instant, leg: LegHandle) {
        if leg.index == 0 {
            return self.callback_dial_failed(now, leg.call);
        }
        let Some(call) = self.calls.get_mut(&leg.call) else {
            return;
        };
        let App::Queued(q) = &mut call.app else {
            return;
        };
        if !q.rings.iter().any(|r| r.leg == leg) {
            return;
        }
        self.agent_failed(now, leg.call, leg, OfferFailure::Unreachable);
    }

    /// A response for one of the call's agent legs.
    pub(crate) fn queued_response(
        &mut self,
        now: Instant,
        handle: CallHandle,
        response: ivr_sip::Response,
    ) {
        let Ok(id) = response.call_id() else { return };
        if let Some(call) = self.calls.get_mut(&handle)
            && let App::Queued(q) = &mut call.app
            && let Some(uac) = q
                .rings
                .iter_mut()
                .chain(q.agent.as_mut())
                .filter_map(|r| r.uac.as_mut())
                .chain(q.callback.as_mut().and_then(|c| c.uac.as_mut()))
                .find(|u| u.call_id().as_str() == id)
        {
            uac.handle_response(now, response);
        }
        self.drive_rings(now, handle);
        self.reindex(handle);
    }

    /// The agents' INVITE timers.
    pub(crate) fn queued_timeout(&mut self, now: Instant, handle: CallHandle) {
        if let Some(call) = self.calls.get_mut(&handle)
            && let App::Queued(q) = &mut call.app
        {
            for uac in q
                .rings
                .iter_mut()
                .chain(q.agent.as_mut())
                .filter_map(|r| r.uac.as_mut())
                .chain(q.callback.as_mut().and_then(|c| c.uac.as_mut()))
            {
                uac.handle_timeout(now);
            }
        }
        self.callback_timeout(now, handle);
        self.drive_rings(now, handle);
        self.dialogue_timeout(now, handle);
        self.whisper_timeout(now, handle);
    }

    /// Send what the agents' attempts queued and act on what they report.
    pub(crate) fn drive_rings(&mut self, now: Instant, handle: CallHandle) {
        let mut events = Vec::new();
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let App::Queued(q) = &mut call.app else {
            return;
        };
        for r in q.rings.iter_mut().chain(q.agent.as_mut()) {
            let Some(uac) = r.uac.as_mut() else { continue };
            while let Some(tx) = uac.poll_transmit() {
                send_uac(&mut self.ctx, Some(handle), tx, Some(&r.located));
            }
            while let Some(e) = uac.poll_event() {
                events.push((r.leg, e));
            }
        }
        if let Some(cb) = q.callback.as_mut()
            && let Some(uac) = cb.uac.as_mut()
        {
            while let Some(tx) = uac.poll_transmit() {
                send_uac(&mut self.ctx, Some(handle), tx, cb.located.as_ref());
            }
            while let Some(e) = uac.poll_event() {
                events.push((handle.leg(0), e));
            }
        }
        for (leg, event) in events {
            if leg.index == 0 {
                // The call to a queued callback's caller.
                self.callback_event(now, handle, event);
                continue;
            }
            match event {
                UacEvent::Answered { dialog, sdp } => {
                    self.agent_answered(now, handle, leg, *dialog, &sdp)
                }
                UacEvent::Failed(f) => self.agent_failed(now, handle, leg, offer_failure(f.kind)),
                UacEvent::Progress { .. }
                | UacEvent::Authenticating { .. }
                | UacEvent::Released { .. } => {}
            }
        }
    }

    /// One of an agent's phones failed: forget its leg; once none of the offer's phones is
    /// left ringing, tell the center (with how the last one ended).
    fn agent_failed(
        &mut self,
        now: Instant,
        handle: CallHandle,
        leg: LegHandle,
        why: OfferFailure,
    ) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let App::Queued(q) = &mut call.app else {
            return;
        };
        let Some(i) = q.rings.iter().position(|r| r.leg == leg) else {
            return;
        };
        let ring = q.rings.remove(i);
        let offer = ring.offer;
        let others = q.rings.iter().any(|r| r.offer == offer);
        // Its offer stays known while other phones ring for it.
        let keep = others.then_some(handle);
        self.drop_ring(now, ring, false);
        if let Some(handle) = keep {
            self.queueing.offers.insert(offer, handle);
            return;
        }
        self.callback_call_idle(handle);
        self.queue_input(now, Input::OfferFailed { offer, why });
    }

    /// One of an agent's phones answered: its leg gets its media from the answer, the offer's
    /// other phones are let go, and the center decides (bridge, or release).
    fn agent_answered(
        &mut self,
        now: Instant,
        handle: CallHandle,
        leg: LegHandle,
        dialog: ivr_sip::dialog::Dialog,
        body: &[u8],
    ) {
        let Ok((n, addr)) = dial::negotiate_answer(body) else {
            // An answer we cannot use: release it; that phone failed.
            if let Some(call) = self.calls.get_mut(&handle)
                && let App::Queued(q) = &mut call.app
                && let Some(r) = q.rings.iter_mut().find(|r| r.leg == leg)
                && let Some(uac) = r.uac.as_mut()
            {
                uac.bye(now);
            }
            self.drive_rings(now, handle);
            return self.agent_failed(now, handle, leg, OfferFailure::Rejected);
        };
        let Some(media) = self.relay_media(now, n, addr, leg) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let App::Queued(q) = &mut call.app else {
            return;
        };
        let Some(ring) = q.rings.iter_mut().find(|r| r.leg == leg) else {
            return;
        };
        ring.answered = true;
        let offer = ring.offer;
        if let Some(l) = call.legs.get_mut(usize::from(leg.index)) {
            l.media = Some(media);
            l.dialog = Some(dialog);
        }
        // The agent's other phones stop ringing (or, answered too, are hung up).
        let (siblings, kept): (Vec<AgentRing>, Vec<AgentRing>) = std::mem::take(&mut q.rings)
            .into_iter()
            .partition(|r| r.offer == offer && r.leg != leg);
        q.rings = kept;
        for r in siblings {
            let bye = r.answered;
            self.drop_ring(now, r, bye);
        }
        self.queueing.offers.insert(offer, handle);
        self.queue_input(now, Input::OfferAnswered(offer));
    }

    /// The center chose this answer: bridge the caller and the agent.
    pub(crate) fn connect_agent(
        &mut self,
        now: Instant,
        handle: CallHandle,
        offer: OfferId,
        agent: AgentId,
    ) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let App::Queued(q) = &mut call.app else {
            return;
        };
        let Some(i) = q.rings.iter().position(|r| r.offer == offer && r.answered) else {
            return;
        };
        let ring = q.rings.remove(i);
        self.queueing.offers.remove(&offer);
        let leg = ring.leg;
        let extensions = ring.uac.as_ref().map(|u| u.answer_extensions());
        q.agent = Some(ring);
        let dialogue = q.dialogue.take().is_some();
        let Some(l) = call.legs.get_mut(usize::from(leg.index)) else {
            return;
        };
        dial::confirm_leg(&mut self.by_dialog, now, l, extensions);
        if !self.start_whisper(now, handle, leg) {
            self.put_through(handle, &agent);
        } else if dialogue {
            // The caller was in the callback number dialogue: the music until put through.
            self.play_music(handle);
        }
        self.reindex(handle);
    }

    /// Bridge the caller with its agent's answered leg: the caller's playback stops and the
    /// audio flows both ways.
    pub(crate) fn put_through(&mut self, handle: CallHandle, agent: &AgentId) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let App::Queued(q) = &call.app else { return };
        let Some(leg) = q.agent.as_ref().map(|r| r.leg) else {
            return;
        };
        let Some(l) = call.leg_mut(leg) else { return };
        let call_id = l.invite.call_id().unwrap_or_default().to_string();
        dial::bridge_caller(call);
        self.ctx.event(Event::Bridged {
            call: handle,
            destination: format!("agent {agent}"),
            call_id,
        });
    }

    /// Stop ringing every phone of `offer` (the center cancelled it), or hang up its answer
    /// (`Release`: the center does not want it any more).
    fn stop_ring(&mut self, now: Instant, offer: OfferId) {
        let Some(handle) = self.queueing.offers.remove(&offer) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let App::Queued(q) = &mut call.app else {
            return;
        };
        let (gone, kept): (Vec<AgentRing>, Vec<AgentRing>) = std::mem::take(&mut q.rings)
            .into_iter()
            .partition(|r| r.offer == offer);
        q.rings = kept;
        for ring in gone {
            // Phones still ringing get CANCEL; one that answered (a `Release`) gets BYE.
            let bye = ring.answered;
            self.drop_ring(now, ring, bye);
        }
        self.reindex(handle);
        self.callback_call_idle(handle);
    }

    /// Let go of an agent's leg: CANCEL if it rings, BYE on the attempt's dialog if `bye`
    /// (an answer nobody takes), close its socket unless it is a bridged leg (whose own BYE
    /// ends it); the attempt finishes its transactions detached from the call.
    pub(crate) fn drop_ring(&mut self, now: Instant, ring: AgentRing, bye: bool) {
        self.queueing.offers.remove(&ring.offer);
        if let Some(call) = self.calls.get_mut(&ring.leg.call)
            && let Some(l) = call.legs.get_mut(usize::from(ring.leg.index))
            && !matches!(
                l.phase,
                LegPhase::Closed | LegPhase::Ending { .. } | LegPhase::Active
            )
        {
            l.phase = LegPhase::Closed;
            l.media = None;
            self.ctx
                .outputs
                .push_back(Output::CloseMedia { leg: ring.leg });
        }
        if let Some(uac) = ring.uac {
            self.let_go(now, *uac, Some(ring.located), bye);
        }
    }
}
