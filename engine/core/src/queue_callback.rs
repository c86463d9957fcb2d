//! Keys a caller presses while waiting in a queue (`exit_keys:`), and queued callbacks.
//!
//! - An exit key bound to an action (`{ voicemail: box }`, `{ goto: menu }`...) takes the
//!   caller out of the line ([`Input::Leave`] with [`LeaveReason::ExitKey`]) and back to the
//!   menus, where the action runs as if chosen in the menu the queue was chosen from.
//! - An exit key bound to `callback` starts the number dialogue of the voicemail deposit
//!   ([`Deposit::number_dialogue`]: "press 1 to be called back on the number you are calling
//!   from, or enter another"; a typed number is read back and confirmed). The caller stays in
//!   line meanwhile (an agent answering takes the call as usual). A confirmed number the
//!   queue's `callback:` allows (digits and a leading `+` only, its pattern and prefixes) is
//!   [`Input::RequestCallback`]; [`QOut::CallbackAccepted`](ivr_queues::Output::CallbackAccepted)
//!   plays the queue's `confirmed` prompt and hangs up (the request keeps the caller's
//!   place); [`QOut::CallbackRefused`](ivr_queues::Output::CallbackRefused) (a number already
//!   waiting, too many requests, a number not allowed) plays the invalid-number notice and
//!   the caller keeps waiting with the music.
//!
//! - At the request's turn the center offers it to an agent ([`QOut::Offer`] for a
//!   [`Waiter::Callback`]): the engine makes a call of its own for it, whose leg 0 is the
//!   caller-to-be (not dialled yet) and whose further legs ring the agent as for any offer.
//!   When the agent answers, the center asks [`QOut::DialCallback`]: leg 0 calls the number
//!   through the queue's `callback.via` destination (the number as the user part of its URI,
//!   through its `proxy` if set, with its credentials and `ring_timeout`); the agent is in
//!   the dialog meanwhile (their BYE fails the attempt). The caller answering bridges both
//!   legs ([`Input::CallbackConnected`]); anything else (busy, no answer, refused, the agent
//!   gone) hangs up the agent and is [`Input::CallbackFailed`]: the center retries in place.

use crate::call::{App, Call, CallHandle, LegHandle};
use crate::dial::{self, Dial};
use crate::engine::Engine;
use crate::hub_msg::HubMsg;
use crate::io::{EndReason, Event, Output};
use crate::leg::LegPhase;
use crate::outgoing::Located;
use crate::queued::Queued;
use ivr_audio::Digit;
use ivr_menus::handoff::ExitKey;
use ivr_menus::{MenuRun, QueueId};
use ivr_queues::{
    AgentId, CallRef, CallbackId, CallbackRefusal, Input, LeaveReason, OfferFailure, OfferId,
    Output as QOut, QueueName, Waiter,
};
use ivr_sip::CallId;
use ivr_sip::header::HeaderName;
use ivr_sip::message::CoreHeaders;
use ivr_sip::uac::{CancelReason, OutgoingCall, UacEvent};
use ivr_sip::uri::Uri;
use ivr_voicemail::{Action, CallbackRequest, Deposit, RequestKind, Say, SystemPrompt};
use std::net::SocketAddr;
use std::time::Instant;

/// The call to the caller of a queued callback: leg 0 of the callback's own call.
#[derive(Debug)]
pub struct CallbackCall {
    /// The center's request.
    pub id: CallbackId,
    /// The agent's answered offer, once the center asked to dial (`None` before, and once
    /// the attempt was reported failed).
    pub offer: Option<OfferId>,
    /// Where the INVITE goes.
    pub located: Option<Located>,
    /// The INVITE attempt to the caller.
    pub uac: Option<Box<OutgoingCall>>,
    /// When a ringing caller is given up (the destination's `ring_timeout`).
    pub ring_until: Option<Instant>,
}

impl CallbackCall {
    /// The attempt's next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let uac = self.uac.as_ref().and_then(|u| u.poll_timeout());
        [uac, self.ring_until].into_iter().flatten().min()
    }
}

/// `sip:NUMBER@HOST...` for a destination URI `sip:USER@HOST...`: the number (digits with
/// an optional leading `+`, nothing else) replaces the user part. `None` for anything
/// else (a `tel:` destination, a number with other characters).
pub fn callback_target(destination: &str, number: &str) -> Option<Uri> {
    let digits = number.strip_prefix('+').unwrap_or(number);
    if digits.is_empty() || digits.len() > 32 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (scheme, rest) = destination.split_once(':')?;
    if !matches!(scheme, "sip" | "sips") {
        return None;
    }
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    Uri::parse(&format!("{scheme}:{number}@{host}")).ok()
}

/// The callback request a waiting caller makes, as its call knows it; the hub fills in its
/// id, time and priority when the center takes it ([`crate::hub_store`]).
fn callback_draft(call: &Call) -> CallbackRequest {
    let (queue, language, variables, number) = match &call.app {
        App::Queued(q) => {
            let menus = q.run.menus();
            (
                menus.queue(q.queue).name.clone(),
                menus.languages().get(q.run.language()).cloned(),
                q.run.variables().to_vec(),
                q.asked.clone(),
            )
        }
        _ => (String::new(), None, Vec::new(), None),
    };
    CallbackRequest {
        id: String::new(),
        mailbox: queue.clone(),
        caller_id: call.caller.clone(),
        called: call.legs.first().and_then(|l| l.invite.uri.user()),
        call_id: call.call_id.to_string(),
        received_at: 0,
        callback_number: number,
        duration_ms: 0,
        language,
        menu_path: call.path.clone(),
        variables,
        hung_up: false,
        has_message: false,
        email_to: Vec::new(),
        kind: RequestKind::QueueCallback,
        queue: Some(queue),
        priority: 0,
    }
}

impl Engine {
    /// A key from a waiting caller: the number dialogue's if it runs, else the queue's exit
    /// key, if one is bound to it (other keys do nothing).
    pub(crate) fn queued_digit(&mut self, now: Instant, handle: CallHandle, digit: Digit) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let caller = call.caller.clone();
        let App::Queued(q) = &mut call.app else {
            return;
        };
        if q.agent.is_some() || q.leaving || q.callback.is_some() {
            return;
        }
        if let Some(d) = q.dialogue.as_mut() {
            d.handle_digit(now, digit);
            return self.drive_dialogue(now, handle);
        }
        let queue = q.run.menus().queue(q.queue);
        let Some((_, key)) = queue.exit_keys.iter().find(|(k, _)| *k == digit) else {
            return;
        };
        match key.clone() {
            ExitKey::Action(action) => {
                let input = Input::Leave {
                    call: CallRef(handle.0),
                    reason: LeaveReason::ExitKey(digit.as_char()),
                };
                self.hub_send(now, HubMsg::Queue(input));
                self.queue_exit_key(now, handle, digit, action);
                self.drain_queues(now);
            }
            ExitKey::Callback => {
                let Some(cb) = queue.callback.as_ref() else {
                    return;
                };
                let mut d = Deposit::number_dialogue(&cb.number_pattern, caller.as_deref());
                d.start(now);
                q.dialogue = Some(Box::new(d));
                call.caller_leg().stop();
                self.drive_dialogue(now, handle);
            }
        }
        self.reindex(handle);
    }

    /// Carry out what the number dialogue asks; its end asks the center for the callback.
    pub(crate) fn drive_dialogue(&mut self, now: Instant, handle: CallHandle) {
        loop {
            let Some(call) = self.calls.get_mut(&handle) else {
                return;
            };
            let App::Queued(q) = &mut call.app else {
                return;
            };
            let Some(action) = q.dialogue.as_mut().and_then(|d| d.poll_action()) else {
                return;
            };
            match action {
                Action::Play(says) => {
                    let menus = q.run.menus();
                    let lang = q.run.language();
                    let named = |id: ivr_menus::PromptId| {
                        (
                            menus.prompt_name(id).to_string(),
                            menus.prompt_in(id, lang).clone(),
                        )
                    };
                    let mut prompts = Vec::new();
                    for say in says {
                        match say {
                            Say::Digit(digit) => {
                                prompts.extend(menus.digit_prompt(digit.as_char()).map(named))
                            }
                            Say::System(s) => {
                                prompts.extend(menus.find_prompt(s.name()).map(named))
                            }
                            Say::Greeting | Say::Saved | Say::Beep => {}
                        }
                    }
                    self.play(handle, prompts);
                }
                Action::StopPlayback => call.caller_leg().stop(),
                Action::Submit(sub) => {
                    q.dialogue = None;
                    let allowed = q
                        .run
                        .menus()
                        .queue(q.queue)
                        .callback
                        .as_ref()
                        .and_then(|cb| sub.callback_number.filter(|n| cb.allows(n)));
                    match allowed {
                        Some(number) => {
                            q.asked = Some(number.clone());
                            let request = Box::new(callback_draft(call));
                            let msg = HubMsg::RequestCallback {
                                call: CallRef(handle.0),
                                number,
                                request,
                            };
                            self.hub_input(now, msg);
                        }
                        None => self.callback_refused(handle, CallbackRefusal::BadNumber),
                    }
                }
                Action::StartRecording
                | Action::StopRecording
                | Action::DiscardRecording
                | Action::PlayRecording
                | Action::Hangup => {}
            }
        }
    }

    /// The center took the request in the caller's place: the `confirmed` prompt, then
    /// hang up (at once without one).
    pub(crate) fn callback_accepted(&mut self, now: Instant, handle: CallHandle) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let App::Queued(q) = &mut call.app else {
            return;
        };
        q.leaving = true;
        q.dialogue = None;
        let menus = q.run.menus();
        let lang = q.run.language();
        let confirmed: Vec<_> = menus
            .queue(q.queue)
            .callback
            .iter()
            .flat_map(|cb| cb.confirmed.iter())
            .map(|id| {
                (
                    menus.prompt_name(*id).to_string(),
                    menus.prompt_in(*id, lang).clone(),
                )
            })
            .collect();
        if confirmed.is_empty() {
            self.end_call(now, handle, EndReason::MenuHangup);
        } else {
            self.play(handle, confirmed);
        }
    }

    /// The request was not taken (or the number is not allowed): the invalid-number notice,
    /// then the music again; the caller keeps its place.
    pub(crate) fn callback_refused(&mut self, handle: CallHandle, _reason: CallbackRefusal) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let App::Queued(q) = &mut call.app else {
            return;
        };
        q.dialogue = None;
        let menus = q.run.menus();
        let lang = q.run.language();
        let notice: Vec<_> = menus
            .find_prompt(SystemPrompt::InvalidNumber.name())
            .map(|id| {
                (
                    menus.prompt_name(id).to_string(),
                    menus.prompt_in(id, lang).clone(),
                )
            })
            .into_iter()
            .collect();
        if notice.is_empty() {
            self.play_music(handle);
        } else {
            self.play(handle, notice);
        }
    }

    /// The number dialogue's deadline passed (no key, end of an entry, silence confirms).
    pub(crate) fn dialogue_timeout(&mut self, now: Instant, handle: CallHandle) {
        if let Some(call) = self.calls.get_mut(&handle)
            && let App::Queued(q) = &mut call.app
            && let Some(d) = q.dialogue.as_mut()
        {
            d.handle_timeout(now);
            self.drive_dialogue(now, handle);
        }
    }

    /// What played to a caller in the dialogue or leaving after a callback request ended.
    /// Returns whether it was theirs (else the music goes on).
    pub(crate) fn dialogue_playback_finished(&mut self, now: Instant, handle: CallHandle) -> bool {
        let Some(call) = self.calls.get_mut(&handle) else {
            return false;
        };
        let App::Queued(q) = &mut call.app else {
            return false;
        };
        if q.leaving {
            self.end_call(now, handle, EndReason::MenuHangup);
            return true;
        }
        match q.dialogue.as_mut() {
            Some(d) => {
                d.handle_playback_finished(now);
                self.drive_dialogue(now, handle);
                true
            }
            None => false,
        }
    }
}

impl Engine {
    /// Whether `handle` is a queued callback's own call.
    pub(crate) fn is_callback_call(&self, handle: CallHandle) -> bool {
        self.calls
            .get(&handle)
            .is_some_and(|c| matches!(&c.app, App::Queued(q) if q.callback.is_some()))
    }

    /// The center offers a callback request to `agent`: a call of its own (leg 0 for the
    /// caller, not dialled yet) whose further legs ring the agent's phones (`targets`) as
    /// for a caller.
    pub(crate) fn callback_ring(
        &mut self,
        now: Instant,
        callback: CallbackId,
        offer: OfferId,
        agent: AgentId,
        queue: &QueueName,
        targets: Vec<crate::hub_msg::AgentTarget>,
    ) -> Result<(), OfferFailure> {
        if let Some(old) = self.queueing.callback_calls.get(&callback).copied() {
            // An earlier offer's call that was not let go: a fresh call for this one.
            self.finish_callback_call(old);
        }
        let Some(qid) = self.menus.queues().iter().position(|q| q.name == queue.0) else {
            return Err(OfferFailure::Unreachable);
        };
        let handle = CallHandle(self.next_handle);
        self.next_handle += 1;
        let sip = self.ctx.config.sip_addr;
        let Ok(uri) = Uri::parse(&format!("sip:callback@{sip}")) else {
            return Err(OfferFailure::Unreachable);
        };
        // Leg 0 is the caller-to-be: a placeholder until the caller is dialled.
        let Some(leg) = dial::outgoing_leg(&mut self.ctx, handle.leg(0), uri, dial::UNKNOWN_PEER)
        else {
            return Err(OfferFailure::Unreachable);
        };
        let call_id = leg.invite.call_id().unwrap_or_default().to_string();
        let queued = Queued {
            run: Box::new(MenuRun::new(self.menus.clone())),
            queue: QueueId(qid),
            rings: Vec::new(),
            agent: None,
            whisper: None,
            dialogue: None,
            leaving: false,
            asked: None,
            callback: Some(Box::new(CallbackCall {
                id: callback,
                offer: None,
                located: None,
                uac: None,
                ring_until: None,
            })),
        };
        self.calls.insert(
            handle,
            Call {
                handle,
                call_id: CallId::from(call_id.clone()),
                caller: None,
                legs: vec![leg],
                app: App::Queued(Box::new(queued)),
                created: now,
                connected: None,
                end_reason: None,
                path: Vec::new(),
                trace: crate::cdr::Trace::none(),
                indexed: None,
                // Decided by the center already: it counts, unchecked, as it always did.
                slot: self.slots.take(),
            },
        );
        self.ctx.event(Event::CallStarted {
            call: handle,
            call_id: call_id.clone(),
            from: String::new(),
            caller: None,
            to: format!("callback {}", queue.0),
        });
        let msg = HubMsg::CallbackCall {
            call: CallRef(handle.0),
            call_id,
        };
        self.hub_send(now, msg);
        self.queueing.callback_calls.insert(callback, handle);
        let rung = self.ring_agent(now, handle, offer, agent, targets);
        if rung.is_err() {
            self.finish_callback_call(handle);
        }
        rung
    }

    /// Forget a callback's call that has nothing left to do (its offer failed or was
    /// cancelled before the caller was dialled).
    pub(crate) fn callback_call_idle(&mut self, handle: CallHandle) {
        let idle = self.calls.get(&handle).is_some_and(|c| {
            matches!(&c.app, App::Queued(q) if q.rings.is_empty() && q.agent.is_none()
                && q.callback.as_ref().is_some_and(|cb| cb.offer.is_none()))
        });
        if idle {
            self.finish_callback_call(handle);
        }
    }

    fn finish_callback_call(&mut self, handle: CallHandle) {
        if let Some(call) = self.calls.get(&handle)
            && let App::Queued(q) = &call.app
            && let Some(cb) = &q.callback
        {
            self.queueing.callback_calls.remove(&cb.id);
        }
        self.finish_call(handle, EndReason::MenuHangup);
    }

    /// The agent answered a callback's offer: call the number through the queue's trunk;
    /// the agent is in the dialog meanwhile.
    pub(crate) fn dial_callback(
        &mut self,
        now: Instant,
        callback: CallbackId,
        offer: OfferId,
        number: &str,
    ) {
        let Some(handle) = self.queueing.callback_calls.get(&callback).copied() else {
            self.hub_send(now, HubMsg::Queue(Input::CallbackFailed(callback)));
            return;
        };
        let ringback = self.ringback.clone();
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let App::Queued(q) = &mut call.app else {
            return;
        };
        let menus = q.run.menus().clone();
        // The agent hears the queue's whisper first, then the ringing tone.
        let mut agent_hears = crate::whisper::prompts(q);
        agent_hears.push(ringback);
        // The rules current now decide (a reload may have tightened them since the request
        // was taken): a number they do not allow is never dialled, the attempt fails.
        let trunk = menus
            .queue(q.queue)
            .callback
            .as_ref()
            .filter(|cb| cb.allows(number))
            .map(|cb| menus.destination(cb.via).clone());
        let Some(cb) = q.callback.as_mut() else {
            return;
        };
        cb.offer = Some(offer);
        let route = trunk.as_ref().and_then(|d| {
            let target = callback_target(&d.uri, number)?;
            let hop = Uri::parse(d.proxy.as_deref().unwrap_or(&d.uri)).ok()?;
            let peer = dial::hop_peer(&hop)?;
            let host = hop.as_sip()?.host.clone();
            Some((target, peer, host, d.ring_timeout))
        });
        // The agent's answer: in the dialog from now on (their BYE ends the attempt); they
        // hear the whisper, then a ringing tone while the caller's phone rings.
        if let Some(r) = q.rings.iter().find(|r| r.offer == offer && r.answered) {
            let extensions = r.uac.as_ref().map(|u| u.answer_extensions());
            if let Some(l) = call.legs.get_mut(usize::from(r.leg.index)) {
                dial::confirm_leg(&mut self.by_dialog, now, l, extensions);
                l.play(agent_hears);
            }
        }
        let Some((target, peer, host, ring)) = route else {
            // A tel: trunk, or a host name (only IP addresses are dialled for callbacks).
            self.ctx.event(Event::RouteUnresolved {
                call: handle,
                next_hop: trunk.map(|d| d.uri).unwrap_or_default(),
            });
            return self.callback_dial_failed(now, handle);
        };
        cb.located = Some(Located { host, peer });
        cb.ring_until = Some(now + ring);
        if let Some(l) = call.legs.first_mut() {
            l.peer = peer;
            l.invite.uri = target;
        }
        self.ctx
            .outputs
            .push_back(Output::OpenMedia { leg: handle.leg(0) });
        self.reindex(handle);
    }

    /// The caller's leg has its RTP socket: send the INVITE with our offer.
    pub(crate) fn callback_media_opened(
        &mut self,
        now: Instant,
        leg: LegHandle,
        local: SocketAddr,
    ) {
        let Some(call) = self.calls.get_mut(&leg.call) else {
            self.ctx.outputs.push_back(Output::CloseMedia { leg });
            return;
        };
        let App::Queued(q) = &mut call.app else {
            return;
        };
        let menus = q.run.menus().clone();
        let queue = menus.queue(q.queue);
        let trunk = queue
            .callback
            .as_ref()
            .map(|cb| menus.destination(cb.via).clone());
        let Some(cb) = q.callback.as_mut().filter(|cb| cb.uac.is_none()) else {
            self.ctx.outputs.push_back(Output::CloseMedia { leg });
            return;
        };
        let Some(l) = call.legs.get_mut(usize::from(leg.index)) else {
            return;
        };
        dial::open_session(&mut self.ctx, l, local);
        let (proxy, credentials) = trunk.map(|d| (d.proxy, d.credentials)).unwrap_or_default();
        let dial = Dial {
            target: l.invite.uri.clone(),
            from_user: None,
            sips: false,
            proxy,
            credentials,
            extra_headers: vec![(
                HeaderName::Other("X-IVR-Queue".into()),
                queue
                    .name
                    .chars()
                    .filter(char::is_ascii_graphic)
                    .take(64)
                    .collect(),
            )],
            fresh_call_id: false,
        };
        let Some(uac) = dial.invite(&mut self.ctx, now, l) else {
            return self.callback_dial_failed(now, leg.call);
        };
        self.uac_calls.insert(uac.call_id().clone(), leg.call);
        cb.uac = Some(Box::new(uac));
        self.drive_rings(now, leg.call);
        self.reindex(leg.call);
    }

    /// What the call to the caller reported.
    pub(crate) fn callback_event(&mut self, now: Instant, handle: CallHandle, event: UacEvent) {
        match event {
            UacEvent::Answered { dialog, sdp } => {
                self.callback_answered(now, handle, *dialog, &sdp)
            }
            UacEvent::Failed(_) => self.callback_dial_failed(now, handle),
            UacEvent::Progress { .. }
            | UacEvent::Authenticating { .. }
            | UacEvent::Released { .. } => {}
        }
    }

    /// The caller answered: bridge them with the agent.
    fn callback_answered(
        &mut self,
        now: Instant,
        handle: CallHandle,
        dialog: ivr_sip::dialog::Dialog,
        body: &[u8],
    ) {
        let Ok((n, addr)) = dial::negotiate_answer(body) else {
            if let Some(call) = self.calls.get_mut(&handle)
                && let App::Queued(q) = &mut call.app
                && let Some(uac) = q.callback.as_mut().and_then(|cb| cb.uac.as_mut())
            {
                uac.bye(now);
            }
            self.drive_rings(now, handle);
            return self.callback_dial_failed(now, handle);
        };
        let Some(media) = self.relay_media(now, n, addr, handle.leg(0)) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let App::Queued(q) = &mut call.app else {
            return;
        };
        let Some(cb) = q.callback.as_mut() else {
            return;
        };
        let Some(offer) = cb.offer else { return };
        cb.ring_until = None;
        let id = cb.id;
        let extensions = cb.uac.as_ref().map(|u| u.answer_extensions());
        let ring = q.rings.iter().find(|r| r.offer == offer);
        let agent = ring.map(|r| r.agent.clone());
        if let Some(l) = ring.and_then(|r| call.legs.get_mut(usize::from(r.leg.index))) {
            // The ringing tone stops: the caller's audio follows.
            l.stop();
        }
        let l = call.caller_leg();
        l.media = Some(media);
        l.dialog = Some(dialog);
        dial::confirm_leg(&mut self.by_dialog, now, l, extensions);
        call.connected = Some(now);
        let Some(agent) = agent else {
            // The agent's leg is gone: nobody to talk to.
            return self.callback_dial_failed(now, handle);
        };
        self.connect_agent(now, handle, offer, agent);
        self.queue_input(
            now,
            Input::CallbackConnected {
                callback: id,
                call: CallRef(handle.0),
            },
        );
        self.reindex(handle);
    }

    /// The call to the caller failed (or the agent left): the agent is hung up, the center
    /// retries in place, and the callback's call ends.
    pub(crate) fn callback_dial_failed(&mut self, now: Instant, handle: CallHandle) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let App::Queued(q) = &mut call.app else {
            return;
        };
        let Some(cb) = q.callback.as_mut() else {
            return;
        };
        let id = cb.id;
        let dialing = cb.offer.take().is_some();
        cb.ring_until = None;
        let (uac, located) = (cb.uac.take(), cb.located.clone());
        // The agent's answered leg is hung up by the call's end (BYE in its dialog).
        let rings = std::mem::take(&mut q.rings);
        if let Some(l) = call.legs.first_mut()
            && !matches!(l.phase, LegPhase::Active)
        {
            l.phase = LegPhase::Closed;
            l.media = None;
            self.ctx
                .outputs
                .push_back(Output::CloseMedia { leg: handle.leg(0) });
        }
        for ring in rings {
            self.drop_ring(now, ring, false);
        }
        if let Some(uac) = uac {
            self.let_go(now, *uac, located, false);
        }
        self.queueing.callback_calls.remove(&id);
        if dialing {
            self.hub_send(now, HubMsg::Queue(Input::CallbackFailed(id)));
        }
        self.end_call(now, handle, EndReason::DestinationHungUp);
        self.drain_queues(now);
    }

    /// The caller rang past the trunk's `ring_timeout`: CANCEL (the attempt then fails).
    pub(crate) fn callback_timeout(&mut self, now: Instant, handle: CallHandle) {
        if let Some(call) = self.calls.get_mut(&handle)
            && let App::Queued(q) = &mut call.app
            && let Some(cb) = q.callback.as_mut()
            && cb.ring_until.is_some_and(|t| t <= now)
        {
            cb.ring_until = None;
            if let Some(uac) = cb.uac.as_mut() {
                uac.cancel(now, CancelReason::RingTimeout);
            }
        }
    }

    /// A callback's call is gone: its attempt to the caller finishes detached, and the
    /// center hears what became of it (`None`: nothing to tell).
    pub(crate) fn detach_callback(
        &mut self,
        now: Instant,
        cb: CallbackCall,
        bridged: bool,
        handle: CallHandle,
    ) -> Option<Input> {
        if self.queueing.callback_calls.get(&cb.id) == Some(&handle) {
            self.queueing.callback_calls.remove(&cb.id);
        }
        if let Some(uac) = cb.uac {
            self.let_go(now, *uac, cb.located, false);
        }
        if bridged {
            Some(Input::CallEnded {
                call: CallRef(handle.0),
            })
        } else if cb.offer.is_some() {
            Some(Input::CallbackFailed(cb.id))
        } else {
            None
        }
    }

    /// The center's output for a callback's offer (an offer with the phones to ring).
    pub(crate) fn callback_output(
        &mut self,
        now: Instant,
        out: QOut,
        targets: Vec<crate::hub_msg::AgentTarget>,
    ) {
        match out {
            QOut::Offer {
                offer,
                agent,
                queue,
                waiter: Waiter::Callback(callback),
                ..
            } => {
                let rung = self.callback_ring(now, callback, offer, agent, &queue, targets);
                if let Err(why) = rung {
                    self.hub_send(now, HubMsg::Queue(Input::OfferFailed { offer, why }));
                }
            }
            QOut::DialCallback {
                callback,
                offer,
                number,
                ..
            } => self.dial_callback(now, callback, offer, &number),
            _ => {}
        }
    }
}
