//! Bridged transfers: the engine calls a configured destination on a second leg (UAC) and,
//! once it answers, relays audio between the two legs ([`crate::bridge`]).
//!
//! The call's application becomes [`App::Transfer`], whose [`Stage`] says where it is:
//! - [`Stage::Dialing`]: the outgoing leg waits for its RTP socket (the SDP offer needs it);
//!   the caller hears a locally generated ringing tone.
//! - [`Stage::Ringing`]: the INVITE is out ([`OutgoingCall`] runs its transactions, digest
//!   answers, CANCEL and fork handling, RFC 3261 §13.2, §9.1, §22). A 183 with SDP (early
//!   media) is relayed to the caller instead of the local tone. The destination's
//!   `ring_timeout` ends the ringing with CANCEL.
//! - [`Stage::Bridged`]: answered; both legs are [`LegPhase::Active`] and RTP is relayed
//!   both ways. Either side's BYE ends both legs.
//!
//! A failure (busy, no answer, refused, no route) closes the outgoing leg and hands the
//! caller back to the menu the transfer was chosen from, which acts on the destination's
//! `on_failure`. A caller who hangs up while the destination rings makes the engine CANCEL
//! it; the [`OutgoingCall`] then lives on, detached from the ended call, until its
//! transactions end.
//!
//! Only destinations defined in the menus can be called: nothing taken from a request
//! chooses where the engine calls out (toll fraud).
//!
//! A next hop (the destination's URI or its `proxy`) that is a host name is located by DNS
//! first ([`Stage::Locating`]): the engine asks the driver ([`Output::Locate`]) and gets the
//! targets in RFC 3263 order ([`Input::Located`](crate::io::Input::Located)). The INVITE goes
//! to the first; when one gives no response at all within [`FAILOVER_AFTER`] (or its
//! transaction times out, or it answers 503), a fresh INVITE goes to the next (§4.3,
//! [`Event::FailedOver`]). Ringing's limit counts from the first INVITE and is not renewed.
//! DNS that finds nothing fails the transfer ([`Event::RouteUnresolved`]).

use crate::call::{App, CallHandle, LegHandle};
use crate::dial::{self, Dial};
use crate::engine::Engine;
use crate::io::{EndReason, Event, Output};
use crate::leg::LegPhase;
use crate::media::MediaSession;
use crate::sdp::{self};
use ivr_menus::{DestinationId, MenuRun};
use ivr_sip::CallId;
use ivr_sip::message::CoreHeaders;
use ivr_sip::transaction::Peer;
use ivr_sip::uac::{CancelReason, Failure, FailureCause, FailureKind, OutgoingCall, UacEvent};
use ivr_sip::uri::Uri;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

/// A call handed to a bridged transfer.
#[derive(Debug)]
pub struct Transfer {
    /// The caller's menu run, resumed if the transfer fails.
    pub run: Box<MenuRun>,
    /// Where the call goes.
    pub dest: DestinationId,
    /// The outgoing leg.
    pub leg: LegHandle,
    /// Where the transfer is.
    pub stage: Stage,
    /// Where the INVITE goes, when DNS located it.
    pub route: Route,
}

/// How long one DNS target may stay silent (not even `100 Trying`) before the INVITE goes to
/// the next (RFC 3263 §4.3 fails over on a timeout; Timer B's 32 s would outlast ringing).
pub const FAILOVER_AFTER: std::time::Duration = std::time::Duration::from_secs(4);

/// Most DNS targets one transfer tries.
pub const MAX_TARGETS: usize = 8;

/// The outcome of DNS for a transfer's next hop (RFC 3263 §4), and when ringing ends.
#[derive(Debug, Default)]
pub struct Route {
    /// The host name that was located, and the target in use.
    pub located: Option<Located>,
    /// The targets not tried yet, best first.
    pub spare: VecDeque<Peer>,
    /// When ringing gives up: set by the first INVITE, kept across failovers.
    pub ring_until: Option<Instant>,
}

/// A host name DNS resolved, and the target its messages go to now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The name, as in the URI.
    pub host: String,
    /// The target.
    pub peer: Peer,
}

impl Located {
    /// Where a message for `next_hop` goes: our target if `next_hop` names our host.
    pub(crate) fn route(&self, next_hop: &Uri) -> Option<Peer> {
        let s = next_hop.as_sip()?;
        s.host.eq_ignore_ascii_case(&self.host).then_some(self.peer)
    }
}

/// An outgoing attempt that finishes its transactions after its call let go of it.
#[derive(Debug)]
pub struct Detached {
    /// The attempt.
    pub uac: OutgoingCall,
    /// Where its host-named next hop is.
    pub located: Option<Located>,
}

/// The ring timeout of a pending INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ring {
    /// It may ring until then.
    Until(Instant),
    /// Given up (CANCEL sent, or waiting for a provisional response to send it).
    Cancelled,
}

/// The phases of a bridged transfer.
#[derive(Debug)]
pub enum Stage {
    /// `mode: refer`: the caller's phone was asked to call the destination (REFER on its
    /// dialog, [`crate::referral`]).
    Referring {
        /// The REFER and its subscription.
        refer: Box<ivr_sip::refer::ReferTransfer>,
    },
    /// The next hop is a host name: DNS is asked (the caller hears ringing).
    Locating,
    /// The outgoing leg waits for its RTP socket.
    Dialing,
    /// The INVITE is pending.
    Ringing {
        /// The INVITE attempt.
        uac: Box<OutgoingCall>,
        /// When ringing gives up (the destination's `ring_timeout`).
        ring: Ring,
        /// Whether the destination's early media (183 with SDP) is relayed to the caller.
        early_media: bool,
        /// Whether this target has answered anything (even `100 Trying`).
        heard: bool,
        /// When a silent target is given up for the next DNS target (none: no spare).
        failover_at: Option<Instant>,
    },
    /// Answered: audio flows between the legs.
    Bridged {
        /// The attempt, kept to acknowledge retransmitted 2xx and release forks (§13.2.2.4).
        uac: Box<OutgoingCall>,
    },
}

impl Transfer {
    /// The next deadline: ringing's end and the INVITE's transaction timers.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.stage {
            Stage::Referring { refer } => refer.poll_timeout(),
            Stage::Locating | Stage::Dialing => None,
            Stage::Ringing {
                uac,
                ring,
                heard,
                failover_at,
                ..
            } => {
                let until = match ring {
                    Ring::Until(until) => Some(*until),
                    Ring::Cancelled => None,
                };
                let failover = failover_at.filter(|_| !*heard);
                [uac.poll_timeout(), until, failover]
                    .into_iter()
                    .flatten()
                    .min()
            }
            Stage::Bridged { uac } => uac.poll_timeout(),
        }
    }

    /// Which legs' audio is relayed now, as (from, to): none while dialing or ringing with
    /// the local tone, the destination to the caller during early media, both ways once
    /// bridged.
    pub fn relays(&self, from: LegHandle) -> Option<LegHandle> {
        let caller = self.leg.call.leg(0);
        match (&self.stage, from) {
            (Stage::Bridged { .. }, f) if f == caller => Some(self.leg),
            (Stage::Bridged { .. }, f) if f == self.leg => Some(caller),
            (
                Stage::Ringing {
                    early_media: true, ..
                },
                f,
            ) if f == self.leg => Some(caller),
            _ => None,
        }
    }

    /// Whether the caller hears the locally generated ringing tone.
    pub fn plays_ringback(&self) -> bool {
        matches!(
            self.stage,
            Stage::Locating
                | Stage::Dialing
                | Stage::Ringing {
                    early_media: false,
                    ..
                }
        )
    }
}

/// A ringing tone, one cadence (ITU-T E.180 style: 440+480 Hz, 1 s on, 3 s off), played in a
/// loop to the caller while the destination rings without early media.
pub(crate) fn ringback() -> ivr_audio::Prompt {
    let on = 8000;
    let mut samples = vec![0i16; 4 * 8000];
    let a = ivr_audio::tone::sine(8000, 440.0, on, 3000.0);
    let b = ivr_audio::tone::sine(8000, 480.0, on, 3000.0);
    for (i, s) in samples.iter_mut().take(on).enumerate() {
        *s = a[i].saturating_add(b[i]);
    }
    ivr_audio::Prompt::from_samples("ringback", &samples)
}

/// The longest caller number copied into a From header: anything longer is no phone number
/// (the caller writes its own From) and would only swell the INVITE past what UDP carries
/// whole (RFC 3261 §18.1.1).
const MAX_FROM_USER: usize = 32;

/// Only URI user characters we know to be safe in a From header, and a number of a sane
/// length (else none: the From is the engine's own).
pub(crate) fn uri_user(s: &str) -> Option<String> {
    let u: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '*' | '#' | '.' | '-' | '_'))
        .take(MAX_FROM_USER + 1)
        .collect();
    (!u.is_empty() && u.len() <= MAX_FROM_USER).then_some(u)
}

impl Engine {
    /// The menus handed `handle` to a bridged destination: open the outgoing leg's media
    /// socket, ring the caller meanwhile.
    pub(crate) fn start_transfer(&mut self, now: Instant, handle: CallHandle, dest: DestinationId) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let App::Menu(run) = &mut call.app else {
            return;
        };
        let menus = run.menus().clone();
        let d = menus.destination(dest);
        // The first hop: the proxy if one is configured, else the destination itself.
        let hop_uri = d.proxy.as_deref().unwrap_or(&d.uri);
        let hop_parsed = Uri::parse(hop_uri).ok().filter(|u| u.as_sip().is_some());
        // An IP literal is the peer; a host name is located by DNS first (RFC 3263): a
        // placeholder peer until DNS answers.
        let hop = hop_parsed.as_ref().map(|u| match dial::hop_peer(u) {
            Some(peer) => (peer, None),
            None => (dial::UNKNOWN_PEER, Some(u.clone())),
        });
        let target = Uri::parse(&d.uri);
        let (Some((peer, locate)), Ok(index), Ok(target)) =
            (hop, u8::try_from(call.legs.len()), target)
        else {
            self.ctx.event(Event::RouteUnresolved {
                call: handle,
                next_hop: hop_uri.to_string(),
            });
            return self.transfer_failed(
                now,
                handle,
                Failure::new(FailureCause::Status(
                    ivr_sip::message::StatusCode::SERVICE_UNAVAILABLE,
                )),
            );
        };
        let leg = handle.leg(index);
        let Some(l) = dial::outgoing_leg(&mut self.ctx, leg, target, peer) else {
            return;
        };
        call.legs.push(l);
        let run = std::mem::replace(run, Box::new(MenuRun::new(menus)));
        call.app = App::Transfer(Box::new(Transfer {
            run,
            dest,
            leg,
            stage: if locate.is_some() {
                Stage::Locating
            } else {
                Stage::Dialing
            },
            route: Route::default(),
        }));
        call.caller_leg().play(vec![self.ringback.clone()]);
        match locate {
            Some(uri) => self.ctx.outputs.push_back(Output::Locate { leg, uri }),
            None => self.ctx.outputs.push_back(Output::OpenMedia { leg }),
        }
    }

    /// DNS answered for the outgoing leg's next hop: use the first target and keep the rest
    /// for failover, then open the leg's media. Nothing found fails the transfer.
    pub(crate) fn located(&mut self, now: Instant, leg: LegHandle, targets: Vec<Peer>) {
        let Some(call) = self.calls.get_mut(&leg.call) else {
            return;
        };
        if matches!(call.app, App::Queued(_)) {
            return self.queued_located(leg, targets);
        }
        let App::Transfer(t) = &mut call.app else {
            return;
        };
        if t.leg != leg || !matches!(t.stage, Stage::Locating) {
            return;
        }
        let d = t.run.menus().destination(t.dest);
        let hop = d.proxy.as_deref().unwrap_or(&d.uri).to_string();
        let host = Uri::parse(&hop)
            .ok()
            .and_then(|u| u.as_sip().map(|s| s.host.clone()));
        // Only targets our SIP socket can send to: an IPv4 socket reaches no AAAA target (and
        // an IPv6 one bound to an address no A target); a dual-stack `[::]` reaches both.
        let ours = self.ctx.config.sip_addr.ip();
        let reachable = |p: &Peer| {
            p.addr.is_ipv4() == ours.is_ipv4() || (ours.is_ipv6() && ours.is_unspecified())
        };
        let mut targets: VecDeque<Peer> = targets
            .into_iter()
            .filter(reachable)
            .take(MAX_TARGETS)
            .collect();
        let (Some(first), Some(host), Some(l)) = (
            targets.pop_front(),
            host,
            call.legs.get_mut(usize::from(leg.index)),
        ) else {
            self.ctx.event(Event::RouteUnresolved {
                call: leg.call,
                next_hop: hop,
            });
            let f = Failure::new(FailureCause::Status(
                ivr_sip::message::StatusCode::SERVICE_UNAVAILABLE,
            ));
            return self.transfer_failed(now, leg.call, f);
        };
        l.peer = first;
        t.route.located = Some(Located { host, peer: first });
        t.route.spare = targets;
        t.stage = Stage::Dialing;
        self.ctx.outputs.push_back(Output::OpenMedia { leg });
    }

    /// The outgoing leg's RTP socket is open: send the INVITE with our offer.
    pub(crate) fn outgoing_media_opened(
        &mut self,
        now: Instant,
        leg: LegHandle,
        local: SocketAddr,
    ) {
        let Some(call) = self.calls.get_mut(&leg.call) else {
            return;
        };
        let App::Transfer(t) = &mut call.app else {
            return;
        };
        if t.leg != leg || !matches!(t.stage, Stage::Dialing) {
            return;
        }
        let Some(l) = call.legs.get_mut(usize::from(leg.index)) else {
            return;
        };
        dial::open_session(&mut self.ctx, l, local);
        self.send_invite(now, leg, false);
    }

    /// Send the outgoing leg's INVITE (with our offer) to its peer: the first, or after a
    /// failover the next DNS target, each with a Call-ID of its own.
    fn send_invite(&mut self, now: Instant, leg: LegHandle, fresh_call_id: bool) {
        let Some(call) = self.calls.get_mut(&leg.call) else {
            return;
        };
        let App::Transfer(t) = &mut call.app else {
            return;
        };
        let d = t.run.menus().destination(t.dest).clone();
        let caller = call.caller.as_deref().and_then(uri_user);
        let Some(l) = call.legs.get_mut(usize::from(leg.index)) else {
            return;
        };
        let dial = Uri::parse(&d.uri).ok().map(|target| Dial {
            target,
            from_user: caller,
            sips: d.uri.starts_with("sips:"),
            proxy: d.proxy,
            credentials: d.credentials,
            extra_headers: Vec::new(),
            fresh_call_id,
        });
        let Some(uac) = dial.and_then(|dial| dial.invite(&mut self.ctx, now, l)) else {
            let f = Failure::new(FailureCause::Status(
                ivr_sip::message::StatusCode::SERVICE_UNAVAILABLE,
            ));
            return self.transfer_failed(now, leg.call, f);
        };
        self.uac_calls.insert(uac.call_id().clone(), leg.call);
        let until = *t.route.ring_until.get_or_insert(now + d.ring_timeout);
        t.stage = Stage::Ringing {
            uac: Box::new(uac),
            ring: Ring::Until(until),
            early_media: false,
            heard: false,
            failover_at: (!t.route.spare.is_empty()).then_some(now + FAILOVER_AFTER),
        };
        self.drive_transfer(now, leg.call);
    }

    /// The INVITE's current target failed (silent, timed out or 503): try the next one with
    /// a fresh INVITE (RFC 3263 §4.3). False if there is none left, or ringing is over.
    fn fail_over(&mut self, now: Instant, handle: CallHandle, why: &str) -> bool {
        let Some(call) = self.calls.get_mut(&handle) else {
            return false;
        };
        let App::Transfer(t) = &mut call.app else {
            return false;
        };
        let ringing = matches!(
            t.stage,
            Stage::Ringing {
                ring: Ring::Until(until),
                ..
            } if until > now
        );
        if !ringing {
            return false;
        }
        let Some(next) = t.route.spare.pop_front() else {
            return false;
        };
        let leg = t.leg;
        let old = t.route.located.as_ref().map(|l| l.peer.addr);
        let located = t.route.located.clone();
        if let Some(l) = t.route.located.as_mut() {
            l.peer = next;
        }
        let Stage::Ringing { uac, .. } = std::mem::replace(&mut t.stage, Stage::Dialing) else {
            return false;
        };
        if let Some(l) = call.legs.get_mut(usize::from(leg.index)) {
            l.peer = next;
        }
        let mut uac = *uac;
        // The silent target may still wake up: a late provisional gets the CANCEL.
        uac.cancel(now, CancelReason::Abandoned);
        self.detach_uac(uac, located);
        self.ctx.event(Event::FailedOver {
            call: handle,
            from: old.unwrap_or(next.addr),
            to: next.addr,
            why: why.to_string(),
        });
        self.send_invite(now, leg, true);
        true
    }

    /// A response no engine transaction matched: it may be for an outgoing call (attached
    /// to a call, or detached and finishing its transactions).
    pub(crate) fn outgoing_response(&mut self, now: Instant, response: ivr_sip::Response) {
        let Ok(id) = response.call_id() else { return };
        let id = CallId::from(id);
        if let Some(handle) = self.uac_calls.get(&id).copied() {
            if self
                .calls
                .get(&handle)
                .is_some_and(|c| matches!(c.app, App::Queued(_)))
            {
                return self.queued_response(now, handle, response);
            }
            let Some(response) = self.refer_response(now, handle, response) else {
                return;
            };
            if let Some(call) = self.calls.get_mut(&handle)
                && let App::Transfer(t) = &mut call.app
            {
                match &mut t.stage {
                    Stage::Ringing { uac, heard, .. } => {
                        // Any answer, even 100 Trying: this target is alive.
                        *heard |= uac.matches(&response);
                        uac.handle_response(now, response);
                    }
                    Stage::Bridged { uac } => {
                        uac.handle_response(now, response);
                    }
                    _ => {}
                }
            }
            self.drive_transfer(now, handle);
            self.reindex(handle);
        } else if let Some(d) = self.detached.iter_mut().find(|d| *d.uac.call_id() == id) {
            d.uac.handle_response(now, response);
            self.drive_detached(now);
        }
    }

    /// The transfer's timer: ringing's end, or the INVITE's transaction timers.
    pub(crate) fn transfer_timeout(&mut self, now: Instant, handle: CallHandle) {
        if let Some(call) = self.calls.get_mut(&handle)
            && let App::Transfer(t) = &mut call.app
        {
            match &mut t.stage {
                Stage::Ringing {
                    uac,
                    ring,
                    heard,
                    failover_at,
                    ..
                } => {
                    if let Ring::Until(until) = *ring
                        && now >= until
                    {
                        uac.cancel(now, CancelReason::RingTimeout);
                        *ring = Ring::Cancelled;
                        if !*heard {
                            // §9.1: no CANCEL before a provisional response, and this target
                            // sent none: ringing is over now, not at its Timer B (32 s). The
                            // attempt finishes detached (CANCEL if the target wakes up).
                            let f =
                                Failure::new(FailureCause::Cancelled(CancelReason::RingTimeout));
                            return self.transfer_failed(now, handle, f);
                        }
                    }
                    uac.handle_timeout(now);
                    // A target silent for FAILOVER_AFTER is given up for the next one.
                    if !*heard
                        && failover_at.is_some_and(|at| now >= at)
                        && self.fail_over(now, handle, "no response")
                    {
                        self.drive_transfer(now, handle);
                        return;
                    }
                }
                Stage::Bridged { uac } => uac.handle_timeout(now),
                Stage::Referring { refer } => refer.handle_timeout(now),
                Stage::Locating | Stage::Dialing => {}
            }
        }
        self.drive_refer(now, handle);
        self.drive_transfer(now, handle);
    }

    /// The ringing tone ended: play it again while the destination still rings.
    pub(crate) fn transfer_playback_finished(&mut self, handle: CallHandle) {
        if let Some(call) = self.calls.get_mut(&handle)
            && let App::Transfer(t) = &call.app
            && t.plays_ringback()
        {
            call.caller_leg().play(vec![self.ringback.clone()]);
        }
    }

    /// The call is ending from our side: a destination still ringing gets CANCEL.
    pub(crate) fn abandon_transfer(&mut self, now: Instant, handle: CallHandle) {
        if let Some(call) = self.calls.get_mut(&handle)
            && let App::Transfer(t) = &mut call.app
            && let Stage::Ringing { uac, ring, .. } = &mut t.stage
        {
            uac.cancel(now, CancelReason::Abandoned);
            *ring = Ring::Cancelled;
            self.drive_transfer(now, handle);
        }
    }

    /// The call is gone: its outgoing attempt, if any, finishes its transactions detached.
    pub(crate) fn detach_transfer(&mut self, app: App) {
        if let App::Transfer(t) = app
            && let Stage::Ringing { uac, .. } | Stage::Bridged { uac } = t.stage
        {
            self.detach_uac(*uac, t.route.located);
        }
    }

    pub(crate) fn detach_uac(&mut self, uac: OutgoingCall, located: Option<Located>) {
        self.uac_calls.remove(uac.call_id());
        if !uac.is_finished() {
            self.detached.push(Detached { uac, located });
        }
    }

    /// Run the detached attempts' timers and send what they queue; forget finished ones.
    pub(crate) fn drive_detached(&mut self, now: Instant) {
        if self.detached.is_empty() {
            return;
        }
        for d in &mut self.detached {
            d.uac.handle_timeout(now);
            while let Some(t) = d.uac.poll_transmit() {
                send_uac(&mut self.ctx, None, t, d.located.as_ref());
            }
            while d.uac.poll_event().is_some() {}
        }
        self.detached.retain(|d| !d.uac.is_finished());
    }

    /// The detached attempts' next deadline.
    pub(crate) fn detached_timeout(&self) -> Option<Instant> {
        self.detached
            .iter()
            .filter_map(|d| d.uac.poll_timeout())
            .min()
    }

    /// Send what the call's attempt queued and act on what it reports.
    fn drive_transfer(&mut self, now: Instant, handle: CallHandle) {
        loop {
            let Some(call) = self.calls.get_mut(&handle) else {
                return;
            };
            let App::Transfer(t) = &mut call.app else {
                return;
            };
            let (Stage::Ringing { uac, .. } | Stage::Bridged { uac }) = &mut t.stage else {
                return;
            };
            while let Some(tx) = uac.poll_transmit() {
                send_uac(&mut self.ctx, Some(handle), tx, t.route.located.as_ref());
            }
            let Some(event) = uac.poll_event() else {
                return;
            };
            match event {
                UacEvent::Progress {
                    sdp: Some(body), ..
                } => self.early_media(now, handle, &body),
                UacEvent::Progress { .. }
                | UacEvent::Authenticating { .. }
                | UacEvent::Released { .. } => {}
                UacEvent::Answered { dialog, sdp } => self.answered(now, handle, *dialog, &sdp),
                UacEvent::Failed(f) => {
                    // RFC 3263 §4.3: a timeout or a 503 moves on to the next DNS target.
                    let why = match f.cause {
                        FailureCause::Timeout => Some("no response".to_string()),
                        FailureCause::Status(s) if s.code() == 503 => Some(s.code().to_string()),
                        _ => None,
                    };
                    if !why.is_some_and(|why| self.fail_over(now, handle, &why)) {
                        self.transfer_failed(now, handle, f);
                    }
                }
            }
        }
    }

    /// A 183 with SDP: relay the destination's early media to the caller.
    fn early_media(&mut self, now: Instant, handle: CallHandle, body: &[u8]) {
        let Ok((n, addr)) = dial::negotiate_answer(body) else {
            return;
        };
        let leg = match self.calls.get(&handle).map(|c| &c.app) {
            Some(App::Transfer(t))
                if matches!(
                    t.stage,
                    Stage::Ringing {
                        early_media: false,
                        ..
                    }
                ) =>
            {
                t.leg
            }
            _ => return,
        };
        // Its audio is relayed, not listened to for keys.
        let Some(media) = self.relay_media(now, n, addr, leg) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let App::Transfer(t) = &mut call.app else {
            return;
        };
        if let Stage::Ringing { early_media, .. } = &mut t.stage {
            *early_media = true;
        }
        if let Some(l) = call.legs.get_mut(usize::from(t.leg.index)) {
            l.media = Some(media);
        }
        let caller = call.caller_leg();
        caller.stop();
        if let Some(m) = caller.media.as_mut() {
            m.set_relay(true);
        }
    }

    /// A fresh stream with random SSRC, sequence number and timestamp (RFC 3550 §5.1).
    pub(crate) fn new_media(
        &mut self,
        now: Instant,
        n: sdp::Negotiated,
        addr: SocketAddr,
    ) -> MediaSession {
        let (ssrc, seq, ts) = (
            self.ctx.rng.next_u32(),
            self.ctx.rng.next_u32() as u16,
            self.ctx.rng.next_u32(),
        );
        let mut media = MediaSession::new(now, n, addr, ssrc, seq, ts);
        media.limit_send_without_peer(self.ctx.config.send_without_peer);
        media
    }

    /// The destination answered: bridge.
    fn answered(
        &mut self,
        now: Instant,
        handle: CallHandle,
        dialog: ivr_sip::dialog::Dialog,
        body: &[u8],
    ) {
        let Ok((n, addr)) = dial::negotiate_answer(body) else {
            // An answer we cannot use: release it, and the transfer failed.
            if let Some(call) = self.calls.get_mut(&handle)
                && let App::Transfer(t) = &mut call.app
                && let Stage::Ringing { uac, .. } = &mut t.stage
            {
                uac.bye(now);
                while let Some(tx) = uac.poll_transmit() {
                    send_uac(&mut self.ctx, Some(handle), tx, t.route.located.as_ref());
                }
            }
            let f = Failure::new(FailureCause::Status(
                ivr_sip::message::StatusCode::NOT_ACCEPTABLE_HERE,
            ));
            return self.transfer_failed(now, handle, f);
        };
        let leg = match self.calls.get(&handle).map(|c| &c.app) {
            Some(App::Transfer(t)) => t.leg,
            _ => return,
        };
        let Some(fresh) = self.relay_media(now, n, addr, leg) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let App::Transfer(t) = &mut call.app else {
            return;
        };
        let uac = match std::mem::replace(&mut t.stage, Stage::Dialing) {
            Stage::Ringing { uac, .. } | Stage::Bridged { uac } => uac,
            Stage::Locating | Stage::Dialing | Stage::Referring { .. } => return,
        };
        let extensions = uac.answer_extensions();
        t.stage = Stage::Bridged { uac };
        let destination = t.run.menus().destination(t.dest).name.clone();
        let Some(l) = call.legs.get_mut(usize::from(t.leg.index)) else {
            return;
        };
        match l.media.as_mut() {
            // Early media's stream goes on, with the answer's parameters.
            Some(m) => m.update(now, n, addr),
            None => l.media = Some(fresh),
        }
        l.dialog = Some(dialog);
        let call_id = dial::confirm_leg(&mut self.by_dialog, now, l, Some(extensions));
        dial::bridge_caller(call);
        self.ctx.event(Event::Bridged {
            call: handle,
            destination,
            call_id: call_id.to_string(),
        });
        self.reindex(handle);
    }

    /// The transfer did not reach anyone: close the outgoing leg and let the menu act on
    /// the destination's `on_failure`.
    pub(crate) fn transfer_failed(&mut self, now: Instant, handle: CallHandle, failure: Failure) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let (destination, leg) = match &call.app {
            // Failed before the leg was made (no route): the run is still the app.
            App::Menu(run) => match run.handed_off() {
                Some(ivr_menus::Handoff::Transfer(d)) => {
                    (run.menus().destination(d).name.clone(), None)
                }
                _ => return,
            },
            App::Transfer(t) => (
                t.run.menus().destination(t.dest).name.clone(),
                Some((t.leg, t.run.menus().clone())),
            ),
            App::Deposit(_) | App::Queued(_) | App::Feature(_) | App::Survey(_) => return,
        };
        if let Some((leg, menus)) = leg {
            if let Some(l) = call.legs.get_mut(usize::from(leg.index)) {
                l.phase = LegPhase::Closed;
                l.media = None;
                self.ctx.outputs.push_back(Output::CloseMedia { leg });
            }
            let old = std::mem::replace(&mut call.app, App::Menu(Box::new(MenuRun::new(menus))));
            if let App::Transfer(t) = old {
                let t = *t;
                call.app = App::Menu(t.run);
                if let Stage::Ringing { uac, .. } | Stage::Bridged { uac } = t.stage {
                    self.detach_uac(*uac, t.route.located);
                }
            }
        }
        self.ctx.event(Event::TransferFailed {
            call: handle,
            destination,
            failure,
        });
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let caller = call.caller_leg();
        caller.stop();
        if let Some(m) = caller.media.as_mut() {
            m.set_relay(false);
        }
        if let App::Menu(run) = &mut call.app {
            let outcome = match failure.kind {
                FailureKind::Busy => "busy",
                FailureKind::NoAnswer => "no answer",
                FailureKind::Rejected => "refused",
                FailureKind::Failed => "failed",
            };
            run.transfer_failed(now, outcome);
        }
        self.apply_app(now, handle);
        self.reindex(handle);
    }

    /// A leg's peer hung up (BYE) or cancelled. Alone, the call is over; bridged, the other
    /// leg is hung up too (either side's BYE ends both).
    pub(crate) fn leg_closed(&mut self, now: Instant, leg: LegHandle, reason: EndReason) {
        if leg.index > 0 && self.whisper_hangup(now, leg) {
            // An agent who hung up during the whisper: the caller waits on in the queue.
            return;
        }
        if leg.index > 0 && self.start_survey(now, leg) {
            // The caller stays for the survey its action asked for.
            return;
        }
        let Some(call) = self.calls.get_mut(&leg.call) else {
            return;
        };
        if call.legs.len() == 1 {
            return self.finish_call(leg.call, reason);
        }
        let reason = if leg.index == 0 {
            reason
        } else {
            EndReason::DestinationHungUp
        };
        if let Some(l) = call.leg_mut(leg) {
            l.phase = LegPhase::Closed;
            l.media = None;
            self.ctx.outputs.push_back(Output::CloseMedia { leg });
        }
        call.pending_reason(reason);
        self.end_call(now, leg.call, reason);
    }
}

/// Send one of an outgoing call's messages to its next hop: an IP literal, or the host name
/// DNS located for the transfer (`located`). Another host name (a Record-Route or Contact of
/// the answer, say) is not resolved: the message is dropped (reported for `call`, if it
/// still exists) and the transaction's timers report the failure.
pub(crate) fn send_uac(
    ctx: &mut crate::ctx::Ctx,
    call: Option<CallHandle>,
    t: ivr_sip::uac::Transmit,
    located: Option<&Located>,
) {
    // The located host first: DNS's target for a host name, or where an agent's REGISTER
    // came from for its contact's host (NAT: the contact's own address may be private).
    let to = located
        .and_then(|l| l.route(&t.next_hop))
        .map(|p| p.addr)
        .or_else(|| ivr_sip::route::socket_of(&t.next_hop).map(|(addr, _)| addr));
    let Some(to) = to else {
        if let Some(call) = call {
            ctx.event(Event::RouteUnresolved {
                call,
                next_hop: t.next_hop.to_string(),
            });
        }
        return;
    };
    ctx.outputs.push_back(Output::Sip {
        transport: t.transport,
        to,
        data: t.message.to_bytes(),
    });
}
