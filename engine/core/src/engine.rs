//! The engine: it routes inputs to calls and their legs and keeps the indexes (quinn-proto's
//! `Endpoint`); legs ([`crate::leg`]) and calls ([`crate::call`]) own their state.

use crate::admission::Admission;
use crate::call::{App, Call, CallHandle, LegHandle};
pub use crate::config::{ALLOW, EngineConfig};
use crate::ctx::{Ctx, set_to_tag};
use crate::error::{RequestError, Unavailable};
use crate::handle::TimerOwner;
use crate::io::VoicemailReport;
pub use crate::io::{EndReason, Event, Input, Output};
use crate::leg::{HangUp, Leg, LegEvent, LegPhase};
use crate::media::Received;
use crate::proxy;
use crate::rng::Rng;
use crate::sdp::{self, RemoteAudio};
use crate::voicemail::{DepositCall, DepositOut, VmIo};
use ivr_audio::Digit;
use ivr_menus::{MailboxId, MenuOutput, MenuRun, Menus, Route};
use ivr_sip::header::HeaderName;
use ivr_sip::message::{CoreHeaders, Message, Method, Request, StatusCode};
use ivr_sip::parse::{Framing, error_response, parse_message};
use ivr_sip::transaction::{ClientKey, Peer, ServerKey, TransactionLayer, TxEvent};
use ivr_sip::{CallId, Tag, Transport};
use ivr_voicemail::CallbackRequest;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// An INVITE that may become a call: its offer, entry menu and slot under the call cap.
type Accepted = (
    Option<RemoteAudio>,
    ivr_menus::MenuId,
    crate::call_slots::CallSlot,
);

/// What a client transaction the engine started is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A leg's BYE: its answer (or timeout) ends the call.
    Bye,
    /// A leg's session refresh (RFC 4028): its answers go to the leg.
    Refresh,
}

/// The call-control engine: routes inputs to calls and legs, and keeps the indexes
/// (transactions, dialogs, deadlines). The legs and calls own their state.
pub struct Engine {
    pub(crate) ctx: Ctx,
    pub(crate) menus: Arc<Menus>,
    pub(crate) calls: HashMap<CallHandle, Call>,
    /// INVITE server transaction -> the leg it created.
    by_invite: HashMap<ServerKey, LegHandle>,
    /// (Call-ID, our tag) -> leg; a leg counts as a dialog once it has answered.
    pub(crate) by_dialog: HashMap<(CallId, Tag), LegHandle>,
    /// Outgoing calls (bridged transfers) by their Call-ID -> the call they belong to.
    pub(crate) uac_calls: HashMap<CallId, CallHandle>,
    /// Outgoing calls whose call ended, finishing their transactions (CANCEL, BYE, ACKs).
    pub(crate) detached: Vec<crate::outgoing::Detached>,
    /// The ringing tone a caller hears while a destination rings, made once.
    pub(crate) ringback: ivr_audio::Prompt,
    /// Our client transactions -> the leg that sent them, and why.
    clients: HashMap<ClientKey, (LegHandle, Purpose)>,
    /// Every owner's earliest deadline, lazily deleted: an entry counts only while it equals
    /// the owner's `indexed` value. Push and pop reuse the heap's storage, so pacing RTP
    /// never allocates (a `BTreeSet` frees and reallocates nodes as entries come and go).
    deadlines: BinaryHeap<Reverse<(Instant, TimerOwner)>>,
    /// Reused list of owners due in one wake-up (kept to avoid allocating per tick).
    due_scratch: Vec<TimerOwner>,
    pub(crate) next_handle: u64,
    shutting_down: bool,
    drained: bool,
    /// The last [`Input::WallClock`]: (when it came, what it said).
    pub(crate) wall_anchor: Option<(Instant, std::time::SystemTime)>,
    /// The record beep, made once.
    pub(crate) beep: ivr_audio::Prompt,
    /// A short silence between confirmation beeps.
    pub(crate) gap: ivr_audio::Prompt,
    /// The next recording's number.
    pub(crate) next_recording: u64,
    /// Recordings finishing after their caller's BYE ([`crate::linger`]).
    pub(crate) linger: crate::linger::Linger,
    /// The time of the input being handled (for work done where no time is passed down).
    pub(crate) last_now: Option<Instant>,
    /// Per-source limits and the calls waiting for their ACK.
    pub(crate) admission: Admission,
    /// The queue center and its glue (see [`crate::queued`]).
    pub(crate) queueing: crate::queued::Queueing,
    /// The cap on calls in progress (shared with the other shards, if any).
    pub(crate) slots: crate::call_slots::CallSlots,
}

impl Engine {
    /// An engine serving `menus`.
    pub fn new(config: EngineConfig, menus: Arc<Menus>) -> Engine {
        let mut keys = crate::srtp::KeyGen::new(&config.srtp_seed);
        let mut secret = [0u8; 32];
        keys.fill(&mut secret);
        let seed = config.seed ^ 0x5157_4555_4553;
        let queueing = crate::queued::Queueing::new(&menus, seed, config.registrar, secret);
        Engine::with_queueing(config, menus, keys, queueing)
    }

    /// An engine around `queueing` (the hub inside it or elsewhere), drawing SRTP keys
    /// from `keys`.
    pub(crate) fn with_queueing(
        config: EngineConfig,
        menus: Arc<Menus>,
        keys: crate::srtp::KeyGen,
        queueing: crate::queued::Queueing,
    ) -> Engine {
        let config_first_handle = config.shard.first_handle();
        let mut admission = Admission::new(config.admission, config.trusted_proxies.clone());
        if let Some(shared) = config.source_calls.clone() {
            admission.share_source_calls(shared);
        }
        let slots = config
            .call_slots
            .clone()
            .unwrap_or_else(|| crate::call_slots::CallSlots::new(config.max_calls));
        Engine {
            slots,
            admission,
            queueing,
            ctx: Ctx {
                layer: TransactionLayer::new(config.timers),
                rng: Rng::new(config.seed),
                keys,
                config,
                outputs: VecDeque::new(),
            },
            menus,
            calls: HashMap::new(),
            by_invite: HashMap::new(),
            by_dialog: HashMap::new(),
            uac_calls: HashMap::new(),
            detached: Vec::new(),
            ringback: crate::outgoing::ringback(),
            clients: HashMap::new(),
            deadlines: BinaryHeap::new(),
            due_scratch: Vec::new(),
            next_handle: config_first_handle,
            shutting_down: false,
            drained: false,
            wall_anchor: None,
            beep: ivr_audio::Prompt::from_samples("beep", &ivr_audio::tone::beep()),
            gap: ivr_audio::Prompt::from_samples("silence", &[0; 1600]),
            next_recording: 1,
            linger: crate::linger::Linger::default(),
            last_now: None,
        }
    }

    /// Serve new calls with `menus`; calls in progress keep the snapshot they started with.
    pub fn set_menus(&mut self, menus: Arc<Menus>) {
        self.queues_reload(&menus);
        self.menus = menus;
    }

    /// Number of calls in progress.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// Feed one input.
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        self.last_now = Some(now);
        match input {
            Input::Sip {
                transport,
                from,
                data,
            } => self.handle_sip(now, transport, from, data),
            Input::Rtp { leg, from, data } => self.handle_rtp(now, leg, from, data),
            Input::Rtcp { leg, data } => {
                let resumed = self.leg_mut(leg).is_some_and(|l| {
                    let was_heard = l.heard();
                    l.handle_rtcp(now, data);
                    !was_heard && l.heard()
                });
                if resumed {
                    self.reindex(leg.call);
                }
            }
            Input::MediaOpened { leg, local } => self.media_opened(now, leg, local),
            Input::MediaFailed { leg } => self.media_failed(now, leg),
            Input::Located { leg, targets } => self.located(now, leg, targets),
            Input::Timeout => self.handle_timeout(now),
            Input::Drain => self.shutting_down = true,
            Input::Shutdown => self.shutdown(now),
            Input::WallClock(wall) => {
                self.wall_anchor = Some((now, wall));
                // A hub elsewhere hears the wall clock from its own owner.
                if self.queueing.hub().is_some() {
                    self.hub_send(now, crate::hub_msg::HubMsg::WallClock(wall));
                }
            }
            Input::Voicemail(report) => self.voicemail_report(now, report),
            Input::RestoreCallbacks(list) => {
                // Queues and agents of the current config first.
                self.queues_sync(now);
                self.hub_input(now, crate::hub_msg::HubMsg::RestoreCallbacks(list));
            }
            Input::CancelCallback(id) => {
                self.hub_input(now, crate::hub_msg::HubMsg::CancelCallback(id));
            }
            Input::Hub(msg) => {
                self.hub_message(now, msg);
                self.drain_queues(now);
            }
        }
        self.queues_sync(now);
        // What the layer's requests changed (an agent registered, an agent's key code)
        // reaches the center now. Most inputs (every RTP packet) give the layer nothing to
        // handle and leave nothing for the center: no second round for them.
        if self.drain_layer(now) || self.queueing.has_pending() {
            self.queues_sync(now);
            self.drain_layer(now);
        }
        self.check_drained();
        while let Some(e) = self.admission.poll_event() {
            self.ctx.event(Event::Admission(e));
        }
    }

    /// The next output; [`Output::Timeout`] means "nothing more for now".
    #[must_use]
    pub fn poll_output(&mut self) -> Output {
        if let Some(o) = self.ctx.outputs.pop_front() {
            return o;
        }
        let owners = self.deadlines.peek().map(|Reverse((at, _))| *at);
        let next = [
            owners,
            self.ctx.layer.poll_timeout(),
            self.detached_timeout(),
            self.queues_poll_timeout(),
            self.linger.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        Output::Timeout(next)
    }

    pub(crate) fn leg_mut(&mut self, leg: LegHandle) -> Option<&mut Leg> {
        leg_in(&mut self.calls, leg)
    }

    // ---- SIP in ----

    fn handle_sip(&mut self, now: Instant, transport: Transport, from: SocketAddr, data: &[u8]) {
        let framing = if transport.is_reliable() {
            Framing::Stream
        } else {
            Framing::Datagram
        };
        // A source over its request rate is not read at all (see admission.rs); with the
        // gate in front of the shards, it was counted there.
        if !self.ctx.config.gate_in_front && !self.admission.request(now, from.ip()) {
            return;
        }
        let peer = Peer {
            transport,
            addr: from,
        };
        match parse_message(data, framing) {
            Ok(msg) if self.handoff(&msg, transport, from, data) => {}
            Ok(msg) => self.ctx.layer.handle_message(now, msg, peer),
            Err(e) => {
                if let Some(mut resp) = error_response(&e) {
                    // RFC 3261 §8.2.6.2: a final response carries a To tag.
                    let tag = Tag::from(self.ctx.rng.token());
                    set_to_tag(&mut resp, &tag);
                    resp.headers
                        .push(HeaderName::Server, self.ctx.config.user_agent.clone());
                    self.ctx.layer.send_stateless(peer, Message::Response(resp));
                }
                self.ctx.event(Event::BadMessage {
                    from,
                    error: e.to_string(),
                });
            }
        }
    }

    /// Send what the transaction layer has to send and handle what it reports; returns
    /// whether it reported anything (requests, responses, timeouts), which may have left
    /// work for the queue center.
    pub(crate) fn drain_layer(&mut self, now: Instant) -> bool {
        let mut handled = false;
        loop {
            while let Some((peer, msg)) = self.ctx.layer.poll_transmit() {
                self.ctx.outputs.push_back(Output::Sip {
                    transport: peer.transport,
                    to: peer.addr,
                    data: msg.to_bytes(),
                });
            }
            let Some(ev) = self.ctx.layer.poll_event() else {
                break;
            };
            handled = true;
            match ev {
                TxEvent::Request { key, request, peer } => self.on_request(now, key, request, peer),
                TxEvent::Response { key, response } => {
                    if let Some(&(leg, Purpose::Refresh)) = self.clients.get(&key) {
                        self.refresh_response(now, leg, &key, &response);
                    } else if !response.status.is_provisional() {
                        self.client_done(&key);
                    }
                }
                TxEvent::ClientTimeout(key) => {
                    if let Some(&(leg, Purpose::Refresh)) = self.clients.get(&key) {
                        if let Some(l) = self.leg_mut(leg)
                            && l.ext.is_refresh(&key)
                        {
                            l.refresh_timed_out();
                        }
                        self.leg_events(now, leg);
                    }
                    self.client_done(&key)
                }
                TxEvent::AckTimeout(key) => {
                    // RFC 3261 §13.3.1.4, for re-INVITEs too (§14.2): no ACK for our 2xx
                    // in 64·T1, the session ends with BYE. (A re-INVITE left without its
                    // ACK would keep our offer in its 2xx pending, and refuse every offer
                    // after it with 491.)
                    let leg = self.by_invite.get(&key).copied().or_else(|| {
                        self.calls
                            .values()
                            .flat_map(|c| &c.legs)
                            .find(|l| l.reinvite.as_ref() == Some(&key))
                            .map(|l| l.handle)
                    });
                    if let Some(leg) = leg {
                        self.end_call(now, leg.call, EndReason::AckTimeout);
                    }
                }
                TxEvent::StrayResponse(r) => self.outgoing_response(now, r),
            }
        }
        handled
    }

    /// Refuse a request outside any leg (with the tag of the leg its INVITE made, if any).
    fn reject(&mut self, now: Instant, key: &ServerKey, req: &Request, error: RequestError) {
        let tag = self
            .by_invite
            .get(key)
            .and_then(|h| self.calls.get(&h.call)?.legs.get(usize::from(h.index)))
            .map(|l| l.local_tag.clone());
        self.ctx.reject(now, key, req, error, tag.as_ref());
    }

    fn on_request(&mut self, now: Instant, key: ServerKey, req: Request, peer: Peer) {
        if req.method == Method::Ack {
            if let Some(leg) = self.dialog_of(&req) {
                if let Some(l) = leg_in(&mut self.calls, leg) {
                    l.handle_ack(&mut self.ctx, now, &req);
                }
                self.leg_events(now, leg);
                self.reindex(leg.call);
            }
            return;
        }
        if !matches!(req.uri.scheme(), "sip" | "sips") {
            return self.reject(now, &key, &req, RequestError::UnsupportedScheme);
        }
        // RFC 3261 §8.2.2.3: every request but CANCEL and ACK is refused if it requires an
        // extension we lack (we support `timer` and `100rel`).
        if req.method != Method::Cancel
            && let Some(tags) = unsupported_required(&req)
        {
            return self.reject(now, &key, &req, RequestError::BadExtension(tags));
        }
        let Ok(to) = req.party_to() else { return };
        if to.tag().is_some() {
            // In a dialog: the leg handles it.
            let Some(leg) = self.dialog_of(&req) else {
                return self.reject(now, &key, &req, RequestError::NoSuchCall);
            };
            // A NOTIFY of a REFER we sent on this dialog belongs to the transfer.
            if req.method == Method::Notify && self.refer_notify(now, leg, &key, &req) {
                return;
            }
            if let Some(l) = leg_in(&mut self.calls, leg) {
                // RFC 4568 §8.3: an SRTP call's offers and answers carry our SDES key; one
                // that came over other than TLS would have it answered in clear.
                let srtp = l.media.as_mut().is_some_and(|m| m.srtp_mut().is_some());
                if srtp
                    && peer.transport != Transport::Tls
                    && matches!(req.method, Method::Invite | Method::Update)
                {
                    let e = RequestError::Sdp(crate::sdp::SdpError::KeysInClear);
                    return self.reject(now, &key, &req, e);
                }
                l.handle_request(&mut self.ctx, now, key, req);
            }
            self.leg_events(now, leg);
            self.reindex(leg.call);
            return;
        }
        match req.method {
            Method::Cancel => self.on_cancel(now, &key, &req),
            // A proxy's health probe: 503 while draining, so it sends new calls elsewhere.
            Method::Options if self.shutting_down => self.reject(
                now,
                &key,
                &req,
                RequestError::Unavailable(Unavailable::ShuttingDown),
            ),
            Method::Options => {
                let mut r = self.ctx.reply(&req, StatusCode::OK, None);
                r.headers.push(HeaderName::Allow, ALLOW);
                r.headers.push(HeaderName::Accept, "application/sdp");
                r.headers
                    .push(HeaderName::Supported, crate::config::SUPPORTED);
                self.ctx.layer.respond(now, &key, r);
            }
            Method::Invite => self.on_invite(now, key, req, peer),
            Method::Register => self.on_register(now, key, req, peer),
            // RFC 6665 §4.1.3: NOTIFY outside a dialog matches no subscription of ours.
            Method::Bye | Method::Info | Method::Notify => {
                self.reject(now, &key, &req, RequestError::NoSuchCall)
            }
            Method::Other(_) => self.reject(now, &key, &req, RequestError::NotImplemented),
            _ => self.reject(now, &key, &req, RequestError::NotAllowed),
        }
    }

    /// Whether a new INVITE can become a call, and with what offer and entry menu, and its
    /// slot under the call cap (given back if the INVITE is refused after all).
    fn accept_invite(&self, req: &Request, caller: Option<&str>) -> Result<Accepted, RequestError> {
        if self.shutting_down {
            return Err(RequestError::Unavailable(Unavailable::ShuttingDown));
        }
        let Some(slot) = self.slots.try_reserve() else {
            return Err(RequestError::Unavailable(Unavailable::AtCapacity));
        };
        // Our answer (or offer) is SDP: a caller that accepts no SDP cannot take it
        // (RFC 3261 §21.4.7; RFC 4475 §3.3.15 `sdp01`).
        if !proxy::accepts_sdp(req) {
            return Err(RequestError::SdpNotAccepted);
        }
        // RFC 3261 §12.1.1: the route set comes from Record-Route; one we cannot read would
        // leave in-dialog requests with nowhere to go.
        ivr_sip::route::RouteSet::uas(&req.headers).map_err(RequestError::RouteSet)?;
        let offer = if req.body.is_empty() {
            None
        } else {
            let ctype = req
                .headers
                .get(&HeaderName::ContentType)
                .unwrap_or("")
                .to_ascii_lowercase();
            if !ctype.starts_with("application/sdp") {
                return Err(RequestError::NotSdp);
            }
            let offer = sdp::parse_remote(&req.body)
                .and_then(|o| sdp::negotiate(&o).map(|_| o))
                .map_err(RequestError::Sdp)?;
            Some(offer)
        };
        if !matches!(req.contact(), Ok(Some(_))) {
            return Err(RequestError::MissingContact);
        }
        // Caller routing, then the called number (the Request-URI user part), pick the start.
        match self.menus.route(req.uri.user().as_deref(), caller) {
            Route::Menu(m) => Ok((offer, m, slot)),
            Route::Reject => Err(RequestError::Declined),
        }
    }

    fn on_invite(&mut self, now: Instant, key: ServerKey, req: Request, peer: Peer) {
        if !self.admission.may_call(now, peer.addr.ip()) {
            let why = RequestError::Unavailable(Unavailable::SourceLimit);
            return self.ctx.reject_stateless(&key, &req, why);
        }
        if let Some(oldest) = self.admission.pending_to_evict() {
            self.evict(now, oldest);
        }
        // A feature code waits for the hub's registrar to authenticate it.
        if let Some(code) = self.feature_code(&req) {
            return self.feature_park(now, key, req, peer, code);
        }
        self.invite_accepted(now, key, req, peer, None);
    }

    /// A new INVITE past admission (and, dialling a feature code, authenticated as
    /// `feature`): a call, or a refusal.
    pub(crate) fn invite_accepted(
        &mut self,
        now: Instant,
        key: ServerKey,
        req: Request,
        peer: Peer,
        feature: Option<crate::feature_codes::FeatureCall>,
    ) {
        let caller = proxy::caller_id(&req, peer.addr.ip(), &self.ctx.config.trusted_proxies);
        let (offer, entry, slot) = match self.accept_invite(&req, caller.as_deref()) {
            Ok(accepted) => accepted,
            // Refusals for lack of room cost nothing to ask for: no transaction is kept.
            Err(
                e @ RequestError::Unavailable(Unavailable::AtCapacity | Unavailable::ShuttingDown),
            ) => {
                return self.ctx.reject_stateless(&key, &req, e);
            }
            Err(e) => return self.reject(now, &key, &req, e),
        };
        // RFC 4568 §8.3: SDES keys are only as safe as the signalling that carries them.
        if offer.as_ref().is_some_and(|o| o.secure) && peer.transport != Transport::Tls {
            let e = RequestError::Sdp(crate::sdp::SdpError::KeysInClear);
            return self.reject(now, &key, &req, e);
        }
        let ext = match crate::extensions::Extensions::for_invite(&mut self.ctx, &req) {
            Ok(ext) => ext,
            Err(e) => return self.reject(now, &key, &req, e),
        };
        let handle = CallHandle(self.next_handle);
        self.next_handle += 1;
        let call_id = CallId::from(req.call_id().unwrap_or_default());
        self.ctx.event(Event::CallStarted {
            call: handle,
            call_id: call_id.to_string(),
            from: req
                .party_from()
                .map(|f| f.uri.to_string())
                .unwrap_or_default(),
            caller: caller.clone(),
            to: req.uri.to_string(),
        });
        let leg = handle.leg(0);
        let local_tag = Tag::from(self.ctx.rng.token());
        let mut run = MenuRun::new_at(self.menus.clone(), entry);
        if let Some((at, wall)) = self.wall_anchor {
            run.set_wall_clock(at, wall);
        }
        self.by_invite.insert(key.clone(), leg);
        self.by_dialog
            .insert((call_id.clone(), local_tag.clone()), leg);
        let trace = match feature {
            Some(_) => crate::cdr::Trace::none(),
            None => crate::cdr::Trace::caller(
                call_id.as_str(),
                caller.clone(),
                req.uri.user(),
                &self.menus.menu(entry).name,
            ),
        };
        let call = Call {
            handle,
            call_id,
            caller,
            legs: vec![Leg::new(leg, peer, key, req, local_tag, offer).with_ext(ext)],
            app: match feature {
                Some(f) => App::Feature(Box::new(f)),
                None => App::Menu(Box::new(run)),
            },
            created: now,
            connected: None,
            end_reason: None,
            path: Vec::new(),
            trace,
            indexed: None,
            slot,
        };
        if let App::Feature(f) = &call.app {
            self.feature_apply(now, f);
        }
        self.calls.insert(handle, call);
        self.admission.call_started(now, handle, peer.addr.ip());
        self.ctx.outputs.push_back(Output::OpenMedia { leg });
    }

    /// Drop a call still waiting for its ACK to make room (see admission.rs): a 2xx stops
    /// being retransmitted and the call is forgotten without a BYE (its peer, perhaps a
    /// spoofed address, is sent nothing more); one not yet answered is refused with 503.
    fn evict(&mut self, now: Instant, handle: CallHandle) {
        self.admission.evicted(handle);
        let answered = self.calls.get(&handle).and_then(|c| {
            let leg = c.legs.first()?;
            matches!(leg.phase, LegPhase::Answered { .. }).then(|| leg.invite_key.clone())
        });
        match answered {
            Some(key) => {
                self.ctx.layer.ack_received(now, &key);
                self.finish_call(handle, EndReason::AckTimeout);
            }
            None => self.end_call(now, handle, EndReason::AckTimeout),
        }
        // end_call may leave a call whose legs could not be ended; it must not stay pending.
        self.admission.call_confirmed(handle);
    }

    fn media_opened(&mut self, now: Instant, leg: LegHandle, local: SocketAddr) {
        if leg.index == 0 && self.is_callback_call(leg.call) {
            return self.callback_media_opened(now, leg, local);
        }
        if leg.index > 0 && self.leg_mut(leg).is_some() {
            if self.is_queued(leg.call) {
                return self.queued_media_opened(now, leg, local);
            }
            return self.outgoing_media_opened(now, leg, local);
        }
        let Some(l) = leg_in(&mut self.calls, leg) else {
            // The call ended (CANCEL) while the socket was being opened.
            self.ctx.outputs.push_back(Output::CloseMedia { leg });
            return;
        };
        l.media_opened(&mut self.ctx, now, local);
        self.reindex(leg.call);
    }

    fn media_failed(&mut self, now: Instant, leg: LegHandle) {
        if leg.index == 0 && self.is_callback_call(leg.call) {
            return self.queued_media_failed(now, leg);
        }
        if leg.index > 0 && self.leg_mut(leg).is_some() && self.is_queued(leg.call) {
            return self.queued_media_failed(now, leg);
        }
        if leg.index > 0 && self.leg_mut(leg).is_some() {
            // An outgoing leg with no port: the transfer fails; the caller stays.
            let f = ivr_sip::uac::Failure::new(ivr_sip::uac::FailureCause::Status(
                StatusCode::SERVICE_UNAVAILABLE,
            ));
            return self.transfer_failed(now, leg.call, f);
        }
        let Some(l) = self.leg_mut(leg) else {
            return;
        };
        let (key, invite) = (l.invite_key.clone(), l.invite.clone());
        let why = RequestError::Unavailable(Unavailable::NoMediaPort);
        self.reject(now, &key, &invite, why);
        self.finish_call(leg.call, EndReason::MediaUnavailable);
    }

    fn on_cancel(&mut self, now: Instant, key: &ServerKey, req: &Request) {
        let invite_key = key.invite_for_cancel();
        if self.cancel_parked(now, &invite_key, key, req) {
            return;
        }
        // RFC 3261 §9.2: no matching INVITE transaction means 481.
        let Some(leg) = self.by_invite.get(&invite_key).copied() else {
            return self.reject(now, key, req, RequestError::NoSuchCall);
        };
        let ok = self.ctx.reply(req, StatusCode::OK, None);
        self.ctx.layer.respond(now, key, ok);
        if let Some(l) = leg_in(&mut self.calls, leg) {
            l.cancel(&mut self.ctx, now);
        }
        self.leg_events(now, leg);
    }

    /// What a leg told its call, carried out.
    fn leg_events(&mut self, now: Instant, leg: LegHandle) {
        while let Some(event) = self.leg_mut(leg).and_then(Leg::poll_event) {
            match event {
                LegEvent::Connected => {
                    self.admission.call_confirmed(leg.call);
                    if let Some(call) = self.calls.get_mut(&leg.call) {
                        call.connected = Some(now);
                        if let App::Menu(run) = &mut call.app {
                            run.start(now);
                        }
                        self.feature_connected(leg.call);
                        self.apply_app(now, leg.call);
                    }
                }
                LegEvent::Digit(d) => self.on_digit(now, leg.call, d),
                LegEvent::PlaybackFinished => {
                    if let Some(call) = self.calls.get_mut(&leg.call) {
                        match &mut call.app {
                            App::Menu(run) => run.handle_playback_finished(now),
                            App::Deposit(d) => d.deposit.handle_playback_finished(now),
                            App::Transfer(_) => self.transfer_playback_finished(leg.call),
                            App::Queued(_) => self.queued_playback_finished(now, leg),
                            App::Feature(_) => {
                                self.end_call(now, leg.call, EndReason::MenuHangup);
                                continue;
                            }
                            App::Survey(s) => s.survey.handle_playback_finished(now),
                        }
                        self.apply_app(now, leg.call);
                    }
                }
                LegEvent::Closed(reason) => self.leg_closed(now, leg, reason),
                LegEvent::Failed(reason) => self.end_call(now, leg.call, reason),
            }
        }
    }

    /// A client transaction ended (final answer or timeout).
    fn client_done(&mut self, key: &ClientKey) {
        let Some((leg, purpose)) = self.clients.remove(key) else {
            return;
        };
        match purpose {
            Purpose::Refresh => {}
            Purpose::Bye => {
                let reason = self
                    .calls
                    .get(&leg.call)
                    .and_then(|c| c.end_reason)
                    .unwrap_or(EndReason::MenuHangup);
                self.finish_call(leg.call, reason);
            }
        }
    }

    /// An answer to a leg's session refresh: the leg reads it (a re-INVITE's 2xx is
    /// ACKed each time it comes, so the entry stays until the next refresh or the end of
    /// the call: one per leg at most).
    fn refresh_response(
        &mut self,
        now: Instant,
        leg: LegHandle,
        key: &ClientKey,
        response: &ivr_sip::Response,
    ) {
        if let Some(l) = leg_in(&mut self.calls, leg)
            && l.ext.is_refresh(key)
        {
            l.handle_refresh_response(&mut self.ctx, now, response);
        }
        self.leg_events(now, leg);
        self.reindex(leg.call);
    }

    // ---- media and the call's application ----

    fn handle_rtp(&mut self, now: Instant, leg: LegHandle, from: SocketAddr, data: &[u8]) {
        if self.take_rtp(now, leg, from, data) {
            // The peer's first packet after sending toward it stopped (it was unheard for
            // `send_without_peer`): sending resumes now, so the leg's deadline moved from
            // the media timeout to now and must be indexed again.
            self.reindex(leg.call);
        }
    }

    /// [`Engine::handle_rtp`]'s work; `true` if the packet was the first heard from the
    /// peer (its leg's deadline may have moved earlier).
    fn take_rtp(&mut self, now: Instant, leg: LegHandle, from: SocketAddr, data: &[u8]) -> bool {
        let Some(Call { legs, app, .. }) = self.calls.get_mut(&leg.call) else {
            // The call ended; its recording may still take the last packets.
            self.linger_rtp(now, leg, from, data);
            return false;
        };
        let Some(l) = legs.get_mut(usize::from(leg.index)) else {
            return false;
        };
        let was_heard = l.heard();
        let received = l.handle_rtp(&mut self.ctx, now, from, data);
        let resumed = !was_heard && l.heard();
        if let App::Transfer(t) = app {
            // Bridged (or early media): the audio goes to the other leg, keys too.
            if let Some(to) = t.relays(leg) {
                let out = &mut self.ctx.outputs;
                crate::bridge::relay(out, now, legs, leg, to, received);
            }
            return resumed;
        }
        if let App::Queued(q) = app {
            // Bridged to an agent: relayed like a transfer. Waiting: keys are logged only.
            if let Some(to) = q.relays(leg) {
                let out = &mut self.ctx.outputs;
                crate::bridge::relay(out, now, legs, leg, to, received);
            } else if let Some(Received::Digit(d)) = received {
                self.on_digit(now, leg.call, d);
            }
            return resumed;
        }
        match received {
            Some(Received::Digit(d)) => self.on_digit(now, leg.call, d),
            Some(Received::Audio { timestamp, .. }) => {
                match (app, &l.media) {
                    (App::Deposit(d), Some(media)) => {
                        d.handle_audio(now, timestamp, media.decoded(), &mut self.ctx.outputs);
                    }
                    (App::Survey(s), Some(media)) if s.survey.is_recording() => {
                        s.handle_audio(now, timestamp, media.decoded(), &mut self.ctx.outputs);
                    }
                    _ => return resumed,
                }
                self.apply_app(now, leg.call);
                self.reindex(leg.call);
            }
            _ => {}
        }
        resumed
    }

    fn on_digit(&mut self, now: Instant, handle: CallHandle, digit: Digit) {
        self.ctx.event(Event::Digit {
            call: handle,
            digit,
        });
        if self
            .calls
            .get(&handle)
            .is_some_and(|c| matches!(c.app, App::Queued(_)))
        {
            self.queued_digit(now, handle, digit);
            self.apply_app(now, handle);
            self.reindex(handle);
            return;
        }
        if let Some(call) = self.calls.get_mut(&handle) {
            match &mut call.app {
                App::Menu(run) => run.handle_digit(now, digit),
                App::Deposit(d) => d.deposit.handle_digit(now, digit),
                App::Survey(s) => s.survey.handle_digit(now, digit),
                App::Transfer(_) | App::Queued(_) | App::Feature(_) => {}
            }
            self.apply_app(now, handle);
        }
        self.reindex(handle);
    }

    /// Carry out what the call's application asks.
    pub(crate) fn apply_app(&mut self, now: Instant, handle: CallHandle) {
        loop {
            let Some(call) = self.calls.get_mut(&handle) else {
                return;
            };
            match &mut call.app {
                App::Transfer(_) | App::Queued(_) | App::Feature(_) => return,
                App::Survey(_) => {
                    if !self.apply_survey(now, handle) {
                        return;
                    }
                }
                App::Menu(run) => {
                    let Some(out) = run.poll_output() else {
                        return;
                    };
                    self.apply_menu(now, handle, out);
                }
                App::Deposit(d) => {
                    let mut io = VmIo {
                        outputs: &mut self.ctx.outputs,
                        next_recording: &mut self.next_recording,
                        beep: &self.beep,
                    };
                    let Some(out) = d.poll(now, handle, &mut io) else {
                        return;
                    };
                    match out {
                        DepositOut::Play(prompts) => self.play(handle, prompts),
                        DepositOut::PlayMessage(prompt) => call.caller_leg().play(vec![prompt]),
                        DepositOut::StopPlayback => call.caller_leg().stop(),
                        DepositOut::Hangup => {
                            if matches!(
                                call.caller_leg().phase,
                                LegPhase::Active | LegPhase::Answered { .. }
                            ) {
                                self.end_call(now, handle, EndReason::MenuHangup);
                            }
                        }
                    }
                }
            }
        }
    }

    fn apply_menu(&mut self, now: Instant, handle: CallHandle, out: MenuOutput) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let App::Menu(run) = &call.app else { return };
        match out {
            MenuOutput::Play(ids) => {
                let menus = run.menus();
                let prompts = ids
                    .iter()
                    .map(|id| (menus.prompt_name(*id).to_string(), run.prompt(*id).clone()))
                    .collect();
                self.play(handle, prompts);
            }
            MenuOutput::StopPlayback => call.caller_leg().stop(),
            MenuOutput::Entered(id) => {
                let menu = run.menus().menu(id).name.clone();
                if call.path.len() < crate::call::PATH_LIMIT {
                    call.path.push(menu.clone());
                }
                self.ctx.event(Event::MenuEntered { call: handle, menu });
            }
            MenuOutput::Hangup => {
                self.cdr_left_menus(handle, "hangup", None);
                self.end_call(now, handle, EndReason::MenuHangup)
            }
            MenuOutput::Handoff(h) => {
                let to = run.menus().handoff_name(h);
                if let Some((kind, name)) = to.split_once(' ') {
                    let kind = kind.to_string();
                    self.cdr_left_menus(handle, &kind, Some(name.to_string()));
                }
                let Some(call) = self.calls.get_mut(&handle) else {
                    return;
                };
                let App::Menu(run) = &call.app else { return };
                self.ctx.event(Event::LeftMenus { call: handle, to });
                match h {
                    ivr_menus::Handoff::Voicemail(m) => self.start_deposit(now, handle, m),
                    ivr_menus::Handoff::Transfer(d) => match run.menus().destination(d).mode {
                        ivr_menus::handoff::TransferMode::Bridge => {
                            self.start_transfer(now, handle, d)
                        }
                        ivr_menus::handoff::TransferMode::Refer => self.start_refer(now, handle, d),
                    },
                    ivr_menus::Handoff::Queue(q, priority) => {
                        self.start_queue(now, handle, q, priority)
                    }
                }
            }
        }
    }

    /// The menus handed `handle` to `mailbox`: the call leaves a callback request.
    fn start_deposit(&mut self, now: Instant, handle: CallHandle, mailbox: MailboxId) {
        let wall = self.wall_seconds(now);
        let id = format!("{wall}-{:08x}", self.ctx.rng.next_u32());
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let App::Menu(run) = &call.app else { return };
        let menus = run.menus().clone();
        let mb = menus.mailbox(mailbox);
        let request = CallbackRequest {
            id,
            mailbox: mb.name.clone(),
            caller_id: call.caller.clone(),
            called: call.legs.first().and_then(|l| l.invite.uri.user()),
            call_id: call.call_id.to_string(),
            received_at: wall,
            callback_number: None,
            duration_ms: 0,
            language: menus.languages().get(run.language()).cloned(),
            menu_path: call.path.clone(),
            variables: run.variables().to_vec(),
            hung_up: false,
            has_message: false,
            email_to: mb.email.clone(),
            kind: Default::default(),
            queue: None,
            priority: 0,
        };
        let language = run.language();
        let deposit = DepositCall::new(now, menus, language, mailbox, request);
        call.app = App::Deposit(Box::new(deposit));
        self.apply_app(now, handle);
    }

    /// Seconds since the Unix epoch at `now`, from the driver's wall clock (0 if none).
    pub(crate) fn wall_seconds(&self, now: Instant) -> u64 {
        let Some((at, wall)) = self.wall_anchor else {
            return 0;
        };
        let wall = wall + now.saturating_duration_since(at);
        wall.duration_since(std::time::SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    /// A report from the driver about voicemail work.
    fn voicemail_report(&mut self, now: Instant, report: VoicemailReport) {
        if self.survey_recording_failed(&report) {
            return;
        }
        let handle = match &report {
            VoicemailReport::Stored { call, .. } => Some(*call),
            VoicemailReport::RecordingFailed { recording } => self
                .calls
                .values()
                .find(|c| matches!(&c.app, App::Deposit(d) if d.recording == Some(*recording)))
                .map(|c| c.handle),
        };
        let Some(handle) = handle else { return };
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let App::Deposit(d) = &mut call.app else {
            return;
        };
        d.handle_report(now, &report);
        self.apply_app(now, handle);
        self.reindex(handle);
    }

    /// The call is ending (either side): a caller leaving a message keeps it.
    fn deposit_hangup(&mut self, now: Instant, handle: CallHandle) {
        // So does a caller leaving a survey comment.
        self.survey_hangup(now, handle);
        if let Some(call) = self.calls.get_mut(&handle)
            && let App::Deposit(d) = &mut call.app
        {
            if d.deposit.is_done() {
                return;
            }
            d.handle_hangup(now);
            self.apply_app(now, handle);
        }
    }

    /// Play prompts (named for the log) to the caller, in the caller's language, replacing
    /// what plays; each start is an [`Event::Playing`].
    pub(crate) fn play(&mut self, handle: CallHandle, prompts: Vec<(String, ivr_audio::Prompt)>) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let language = call.app.language_name();
        let mut recordings = Vec::with_capacity(prompts.len());
        for (name, prompt) in prompts {
            recordings.push(prompt);
            self.ctx.event(Event::Playing {
                call: handle,
                prompt: name,
                language: language.clone(),
            });
        }
        call.caller_leg().play(recordings);
    }

    // ---- timers ----

    fn handle_timeout(&mut self, now: Instant) {
        self.ctx.layer.handle_timeout(now);
        // Take every due owner first, then run them: one that (wrongly) re-arms a deadline
        // in the past is seen again on the next wake-up instead of spinning here forever.
        let mut due = std::mem::take(&mut self.due_scratch);
        while let Some(&Reverse((at, owner))) = self.deadlines.peek() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            if self.take_indexed(owner, at) {
                due.push(owner);
            }
        }
        for owner in due.drain(..) {
            match owner {
                TimerOwner::Leg(leg) => {
                    if let Some(l) = leg_in(&mut self.calls, leg) {
                        l.handle_timeout(&mut self.ctx, now);
                    }
                    self.leg_events(now, leg);
                    self.reindex(leg.call);
                }
                TimerOwner::App(handle) => {
                    if let Some(call) = self.calls.get_mut(&handle) {
                        match &mut call.app {
                            App::Menu(run) => run.handle_timeout(now),
                            App::Deposit(d) => d.deposit.handle_timeout(now),
                            App::Transfer(_) => self.transfer_timeout(now, handle),
                            App::Queued(_) => self.queued_timeout(now, handle),
                            App::Survey(s) => s.survey.handle_timeout(now),
                            App::Feature(_) => {}
                        }
                        self.apply_app(now, handle);
                    }
                    self.reindex(handle);
                }
            }
        }
        self.due_scratch = due;
        self.linger_timeout(now);
        self.drive_detached(now);
        self.queues_timeout(now);
    }

    /// Whether `owner` still has `at` indexed; if so it is cleared (the timer fires).
    fn take_indexed(&mut self, owner: TimerOwner, at: Instant) -> bool {
        let slot = match owner {
            TimerOwner::Leg(leg) => self.leg_mut(leg).map(|l| &mut l.indexed),
            TimerOwner::App(handle) => self.calls.get_mut(&handle).map(|c| &mut c.indexed),
        };
        match slot {
            Some(s) if *s == Some(at) => {
                *s = None;
                true
            }
            _ => false,
        }
    }

    /// Index the earliest deadline of each of the call's legs and of its application.
    pub(crate) fn reindex(&mut self, handle: CallHandle) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        for leg in &mut call.legs {
            if let Some(key) = leg.ext.take_stale_client() {
                self.clients.remove(&key);
            }
            if let Some(key) = leg.ext.take_new_client() {
                self.clients.insert(key, (leg.handle, Purpose::Refresh));
            }
            let next = leg.poll_timeout(&self.ctx);
            if leg.indexed != next {
                leg.indexed = next;
                if let Some(at) = next {
                    self.deadlines
                        .push(Reverse((at, TimerOwner::Leg(leg.handle))));
                }
            }
        }
        let next = call.app_timeout();
        if call.indexed != next {
            call.indexed = next;
            if let Some(at) = next {
                self.deadlines.push(Reverse((at, TimerOwner::App(handle))));
            }
        }
    }

    // ---- ending calls ----

    /// End a call from our side: BYE on answered legs, a final error on the others. The
    /// call ends when its BYE is sent: its slot, `ivr_calls_active` and its end log do not
    /// wait for a peer that may have vanished (Timer F, 32 s); the BYE's transaction runs on
    /// its own, and a stop waits for it (see `check_drained`).
    pub(crate) fn end_call(&mut self, now: Instant, handle: CallHandle, reason: EndReason) {
        // A caller leaving a message keeps it, whoever ends the call.
        self.deposit_hangup(now, handle);
        // A destination still ringing is cancelled, and so are agents ringing.
        self.abandon_transfer(now, handle);
        self.abandon_queue(now, handle);
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let mut finished = false;
        for leg in &mut call.legs {
            match leg.hang_up(&mut self.ctx, now) {
                HangUp::Nothing => {}
                HangUp::Refused | HangUp::Failed => finished = true,
                HangUp::Bye(key) => {
                    self.clients.insert(key, (leg.handle, Purpose::Bye));
                    call.end_reason.get_or_insert(reason);
                    finished = true;
                }
            }
        }
        // Over once no leg waits for the answer to its BYE.
        let waiting = call
            .legs
            .iter()
            .any(|l| matches!(l.phase, LegPhase::Ending { .. }));
        if finished || !waiting {
            self.finish_call(handle, reason);
        } else {
            self.reindex(handle);
        }
    }

    /// Forget a call.
    pub(crate) fn finish_call(&mut self, handle: CallHandle, reason: EndReason) {
        // A caller who hung up while recording: the recording takes the packets still in
        // flight a moment longer (see `crate::linger`); the call ends now all the same.
        let linger = self.calls.get(&handle).is_some_and(|c| {
            c.legs.len() == 1 && crate::linger::wants_linger(c.end_reason.unwrap_or(reason), &c.app)
        });
        if !linger && let Some(now) = self.last_now {
            self.deposit_hangup(now, handle);
        }
        let outbound = self.is_callback_call(handle);
        let Some(mut call) = self.calls.remove(&handle) else {
            return;
        };
        let reason = call.end_reason.unwrap_or(reason);
        let ended = self.last_now.unwrap_or(call.created);
        let mut record = self.cdr_finish(&mut call, ended, reason);
        // A queued callback's own call was never admitted.
        if let Some(first) = call.legs.first().filter(|_| !outbound) {
            self.admission.call_ended(handle, first.peer.addr.ip());
        }
        for leg in &call.legs {
            if let Some(key) = leg.ext.refresh_key() {
                self.clients.remove(key);
            }
            self.by_invite.remove(&leg.invite_key);
            let call_id = CallId::from(leg.invite.call_id().unwrap_or_default());
            self.by_dialog.remove(&(call_id, leg.local_tag.clone()));
            if !linger && !matches!(leg.phase, LegPhase::Ending { .. } | LegPhase::Closed) {
                self.ctx
                    .outputs
                    .push_back(Output::CloseMedia { leg: leg.handle });
            }
        }
        let packets = call.legs.first().map(Leg::counters).unwrap_or_default();
        let call_id = call.call_id.to_string();
        let app = match call.app {
            App::Queued(q) => {
                self.detach_queued(App::Queued(q), handle);
                None
            }
            App::Deposit(d) if linger => {
                if let (Some(leg), Some(now)) = (call.legs.pop(), self.last_now) {
                    // The record waits for the request the deposit submits when the
                    // linger ends (it names it); the call has ended all the same.
                    self.start_linger(now, handle, leg, d, record.take());
                }
                None
            }
            app => Some(app),
        };
        if let Some(app) = app {
            self.detach_transfer(app);
        }
        // After the call's `Leave` or `CallEnded` (above), so the abandon is logged with it.
        if let Some(now) = self.last_now {
            let gone = crate::hub_msg::HubMsg::CallGone(ivr_queues::CallRef(handle.0));
            self.hub_send(now, gone);
        }
        self.ctx.event(Event::CallEnded {
            call: handle,
            call_id,
            reason,
            packets,
        });
        if let Some(record) = record {
            self.ctx.event(record);
        }
    }

    fn shutdown(&mut self, now: Instant) {
        self.shutting_down = true;
        self.end_all_lingering(now);
        let handles: Vec<CallHandle> = self.calls.keys().copied().collect();
        for h in handles {
            self.end_call(now, h, EndReason::Shutdown);
        }
    }

    fn check_drained(&mut self) {
        // The BYEs still in flight count: a stop sends them to the end.
        if self.shutting_down
            && !self.drained
            && self.calls.is_empty()
            && self.linger.is_empty()
            && !self.clients.values().any(|(_, p)| *p == Purpose::Bye)
        {
            self.drained = true;
            self.ctx.event(Event::Drained);
        }
    }

    /// The leg whose dialog a request belongs to (it must have answered, and not be closed:
    /// a closed leg of a call that goes on, such as an agent who hung up during the
    /// whisper, gets 481 for a late BYE rather than it ending the call).
    fn dialog_of(&self, req: &Request) -> Option<LegHandle> {
        let tag = Tag::from(req.party_to().ok()?.tag()?);
        let leg = *self
            .by_dialog
            .get(&(CallId::from(req.call_id().ok()?), tag))?;
        let l = self
            .calls
            .get(&leg.call)?
            .legs
            .get(usize::from(leg.index))?;
        (l.dialog.is_some() && !matches!(l.phase, LegPhase::Closed)).then_some(leg)
    }
}

impl Engine {
    /// Whether the call waits in (or was bridged from) a queue.
    fn is_queued(&self, handle: CallHandle) -> bool {
        self.calls
            .get(&handle)
            .is_some_and(|c| matches!(c.app, App::Queued(_)))
    }

    /// Callers waiting in the queue named `queue` now.
    pub fn queue_waiting(&self, queue: &str) -> usize {
        self.queueing.hub().map_or(0, |h| h.waiting(queue))
    }

    /// Each queue of the current config with the callers waiting in it.
    pub fn queues_waiting(&self) -> Vec<(String, usize)> {
        self.queueing
            .hub()
            .map(|h| h.queues_waiting())
            .unwrap_or_default()
    }

    /// Each agent with its state in the queue center.
    pub fn agent_states(&self) -> Vec<(String, ivr_queues::AgentState)> {
        self.queueing
            .hub()
            .map(|h| h.agent_states())
            .unwrap_or_default()
    }

    /// The live queue view at `now` (see [`crate::hub_view`]).
    pub fn queue_view(&self, now: Instant) -> crate::agent_desk::QueueView {
        self.queueing
            .hub()
            .map(|h| h.queue_view(now))
            .unwrap_or_default()
    }

    /// The line of the queue named `queue`, first to be served first: callers on the line
    /// and callback requests keeping their place.
    pub fn queue_line(&self, queue: &str) -> Vec<ivr_queues::Waiter> {
        self.queueing
            .hub()
            .map(|h| h.queue_line(queue))
            .unwrap_or_default()
    }

    /// The embedded hub (`None` once it runs elsewhere).
    pub fn hub(&self) -> Option<&crate::hub::Hub> {
        self.queueing.hub()
    }
}

/// The leg `leg` names, among `calls`.
fn leg_in(calls: &mut HashMap<CallHandle, Call>, leg: LegHandle) -> Option<&mut Leg> {
    calls.get_mut(&leg.call)?.leg_mut(leg)
}

/// Tags in Require we do not support, for a 420 (RFC 3261 §8.2.2.3). We support session
/// timers (RFC 4028) and reliable provisionals (RFC 3262).
fn unsupported_required(req: &Request) -> Option<String> {
    let ours = [ivr_sip::session_timer::TAG, ivr_sip::reliable::TAG];
    let tags: Vec<&str> = req
        .headers
        .values(&HeaderName::Require)
        .map(str::trim)
        .filter(|t| !ours.iter().any(|o| o.eq_ignore_ascii_case(t)))
        .collect();
    (!tags.is_empty()).then(|| tags.join(", "))
}
