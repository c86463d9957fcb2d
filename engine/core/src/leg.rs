//! One leg of a call: one SIP dialog and its RTP stream. Today every leg is the answering
//! side (UAS) of an INVITE; outgoing (UAC) legs come with transfers (issue 9's second part).
//!
//! A leg owns what only it can decide (quinn-proto's `Connection` to the engine's
//! `Endpoint`): answering its INVITE, its in-dialog requests (ACK, BYE, re-INVITE, INFO,
//! OPTIONS, and UPDATE and PRACK in [`crate::session`] and `prack.rs`), its BYE, and its
//! timers (ringing, RTP pacing, media inactivity, the session timer, reliable 180s). It
//! tells its call what happened through [`Leg::poll_event`]; the engine routes inputs to it
//! and keeps the indexes.

use crate::ctx::{Ctx, set_to_tag};
use crate::error::RequestError;
use crate::handle::LegHandle;
use crate::io::{EndReason, Event, Output};
use crate::media::{MediaSession, Received};
use crate::proxy;
use crate::sdp::{self, Direction, LocalSession, Negotiated, RemoteAudio, SdpError};
use crate::srtp::{MasterKey, SrtpSession};
use ivr_audio::{Digit, Prompt};
use ivr_sip::Tag;
use ivr_sip::dialog::{Dialog, DialogError};
use ivr_sip::header::HeaderName;
use ivr_sip::message::{Method, Request, Response, StatusCode};
use ivr_sip::transaction::{ClientKey, Peer, ServerKey};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

/// Where a leg is in its life. Each phase carries what is valid in it.
#[derive(Debug)]
pub enum LegPhase {
    /// The INVITE is accepted; waiting for the driver to open an RTP socket.
    OpeningMedia {
        /// The remote offer, if the INVITE had one (else this is a late-offer call).
        offer: Option<RemoteAudio>,
    },
    /// 180 Ringing sent; the 200 OK goes out at `until` (the configured answer delay).
    Ringing {
        /// The remote offer, if any.
        offer: Option<RemoteAudio>,
        /// When to answer.
        until: Instant,
    },
    /// 200 OK sent; waiting for the ACK.
    Answered {
        /// The remote offer (`None` for a late offer: the answer comes in the ACK).
        offer: Option<RemoteAudio>,
    },
    /// Confirmed dialog, media flowing.
    Active,
    /// We sent BYE and wait for its answer.
    Ending {
        /// The BYE's transaction.
        bye: ClientKey,
    },
    /// An outgoing leg whose INVITE is pending: the call's transfer
    /// ([`crate::outgoing`]) drives it until it is answered (then [`LegPhase::Active`]).
    Calling,
    /// The leg is over (its peer hung up, or its outgoing call failed); the call's other
    /// legs may go on a little longer while they end.
    Closed,
}

/// What a leg tells its call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegEvent {
    /// The dialog is confirmed and media flows: the call's application starts.
    Connected,
    /// A key (RFC 4733, in-band or SIP INFO).
    Digit(Digit),
    /// Everything asked to play has been sent.
    PlaybackFinished,
    /// The leg is over (the peer hung up or cancelled, or our BYE was answered).
    Closed(EndReason),
    /// The leg cannot go on (no ACK, unusable answer, no media): end the call.
    Failed(EndReason),
}

/// The outcome of [`Leg::hang_up`].
#[derive(Debug)]
pub enum HangUp {
    /// Nothing to do: already hanging up, or not answered in a way we can end.
    Nothing,
    /// The INVITE was refused (503); the leg is over.
    Refused,
    /// A BYE went out in this client transaction.
    Bye(ClientKey),
    /// The BYE could not be sent; the leg is over.
    Failed,
}

/// One SIP dialog (UAS) with its media.
#[derive(Debug)]
pub struct Leg {
    /// The handle.
    pub handle: LegHandle,
    /// The peer the INVITE came from.
    pub peer: Peer,
    /// The INVITE's server transaction.
    pub invite_key: ServerKey,
    /// The INVITE.
    pub invite: Request,
    /// Our To tag.
    pub local_tag: Tag,
    /// The dialog, once answered.
    pub dialog: Option<Dialog>,
    /// Our SDP session (once the media socket is open).
    pub local_sdp: Option<LocalSession>,
    /// The media stream, once negotiated.
    pub media: Option<MediaSession>,
    /// The phase.
    pub phase: LegPhase,
    /// A re-INVITE being served (RFC 3261 §14.2: one at a time).
    pub reinvite: Option<ServerKey>,
    /// The deadline the engine indexes for this leg.
    pub(crate) indexed: Option<Instant>,
    /// Session timers, UPDATE and PRACK (RFC 4028, 3311, 3262): see [`crate::session`].
    pub(crate) ext: crate::extensions::Extensions,
    pub(crate) events: VecDeque<LegEvent>,
    /// Our SRTP master key, when the offer was RTP/SAVP (made when answering).
    srtp_key: Option<MasterKey>,
}

impl Leg {
    /// A leg for an accepted INVITE, waiting for its media socket.
    pub fn new(
        handle: LegHandle,
        peer: Peer,
        invite_key: ServerKey,
        invite: Request,
        local_tag: Tag,
        offer: Option<RemoteAudio>,
    ) -> Leg {
        Leg {
            handle,
            peer,
            invite_key,
            invite,
            local_tag,
            dialog: None,
            local_sdp: None,
            media: None,
            phase: LegPhase::OpeningMedia { offer },
            reinvite: None,
            indexed: None,
            ext: Default::default(),
            events: VecDeque::new(),
            srtp_key: None,
        }
    }

    /// An outgoing leg (UAC) whose INVITE waits for its media socket; the call's transfer
    /// fills in `invite` (and `invite_key`, which matches no server transaction) when it
    /// sends it. `peer` is the first hop.
    pub fn outgoing(
        handle: LegHandle,
        peer: Peer,
        invite_key: ServerKey,
        invite: Request,
        local_tag: Tag,
    ) -> Leg {
        let mut leg = Leg::new(handle, peer, invite_key, invite, local_tag, None);
        leg.phase = LegPhase::Calling;
        leg
    }

    /// Our Contact in this dialog: a SIPS URI when the INVITE asked for one over TLS
    /// (RFC 5630 §4.1), else one naming the transport the INVITE came on.
    pub(crate) fn contact(&self, ctx: &Ctx) -> String {
        let sips = self.invite.uri.scheme() == "sips";
        ctx.contact(self.peer.transport, sips)
    }

    /// The leg with what its INVITE asked of the extensions (RFC 4028, RFC 3262).
    pub(crate) fn with_ext(mut self, ext: crate::extensions::Extensions) -> Leg {
        self.ext = ext;
        self
    }

    /// The next thing the call must hear about.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<LegEvent> {
        self.events.pop_front()
    }

    /// Whether the dialog is confirmed and media flows.
    pub fn is_active(&self) -> bool {
        matches!(self.phase, LegPhase::Active)
    }

    /// (RTP packets sent, received).
    pub fn counters(&self) -> (u64, u64) {
        self.media
            .as_ref()
            .map(|m| m.counters())
            .unwrap_or_default()
    }

    /// Replace what plays with `prompts`.
    pub fn play(&mut self, prompts: Vec<Prompt>) {
        if let Some(m) = self.media.as_mut() {
            m.play(prompts);
        }
    }

    /// Stop playing.
    pub fn stop(&mut self) {
        if let Some(m) = self.media.as_mut() {
            m.stop();
        }
    }

    /// The leg's next deadline: the answer while ringing; the next RTP packet (less the
    /// send lead, `EngineConfig::rtp_send_lead`) and the media inactivity limit while
    /// active; none otherwise.
    pub(crate) fn poll_timeout(&self, ctx: &Ctx) -> Option<Instant> {
        // A closed leg of a call that goes on (an agent who hung up during the whisper) has
        // nothing left to do: its session timer would refresh a finished dialog, then
        // expire and end the whole call.
        if matches!(self.phase, LegPhase::Closed) {
            return None;
        }
        let own = match self.phase {
            // An answer held for a PRACK (RFC 3262 §3) waits for it, not for the clock.
            LegPhase::Ringing { until, .. } => (!self.ext.answer_held()).then_some(until),
            LegPhase::Active => self.media.as_ref().map(|m| {
                let silence =
                    m.inactivity_deadline(ctx.config.media_timeout, ctx.config.hold_timeout);
                let lead = ctx.config.rtp_send_lead;
                m.next_send()
                    .map_or(silence, |d| d.checked_sub(lead).unwrap_or(d).min(silence))
            }),
            _ => None,
        };
        match (own, self.ext_poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Time passed: answer when the ringing is over, send the RTP packets due, and give up on
    /// a peer that sends nothing.
    pub(crate) fn handle_timeout(&mut self, ctx: &mut Ctx, now: Instant) {
        if matches!(self.phase, LegPhase::Closed) {
            return;
        }
        self.ext_timeout(ctx, now);
        if let LegPhase::Ringing { until, .. } = self.phase {
            if now >= until && !self.ext.answer_held() {
                self.answer(ctx, now);
            }
            return;
        }
        let Some(m) = self.media.as_mut() else {
            return;
        };
        // Packets due within the lead leave now (see `EngineConfig::rtp_send_lead`).
        let send_by = now + ctx.config.rtp_send_lead;
        while let Some(due) = m.next_send().filter(|d| *d <= send_by) {
            let Some(packet) = m.poll_packet(send_by) else {
                break;
            };
            ctx.outputs.push_back(Output::Rtp {
                leg: self.handle,
                to: m.remote(),
                packet,
                due,
            });
        }
        if m.take_playback_finished() {
            self.events.push_back(LegEvent::PlaybackFinished);
        }
        if m.inactivity_deadline(ctx.config.media_timeout, ctx.config.hold_timeout) <= now {
            self.events.push_back(LegEvent::Failed(if m.peer_on_hold() {
                EndReason::HoldTimeout
            } else {
                EndReason::MediaTimeout
            }));
        }
    }

    /// The RTP socket is open at `local`: answer now, or ring first.
    pub(crate) fn media_opened(&mut self, ctx: &mut Ctx, now: Instant, local: SocketAddr) {
        let LegPhase::OpeningMedia { offer } = &mut self.phase else {
            return;
        };
        let offer = offer.take();
        self.local_sdp = Some(LocalSession {
            id: ctx.rng.next_u64() >> 2,
            version: 1,
            addr: SocketAddr::new(ctx.config.media_ip, local.port()),
        });
        if ctx.config.answer_delay.is_zero() {
            self.phase = LegPhase::Ringing { offer, until: now };
            self.answer(ctx, now);
        } else {
            self.phase = LegPhase::Ringing {
                offer,
                until: now + ctx.config.answer_delay,
            };
            let mut r = Response::to_request(&self.invite, StatusCode::RINGING);
            set_to_tag(&mut r, &self.local_tag);
            proxy::copy_record_route(&mut r, &self.invite);
            r.headers.push(HeaderName::Contact, self.contact(ctx));
            r.headers
                .push(HeaderName::Server, ctx.config.user_agent.clone());
            self.make_reliable(ctx, now, &mut r);
            ctx.layer.respond(now, &self.invite_key, r);
        }
    }

    /// Send the 200 OK with our answer, or our offer for a late-offer INVITE (unless a
    /// reliable 180 carried it: then the PRACK answered it and the 2xx has no body).
    pub(crate) fn answer(&mut self, ctx: &mut Ctx, now: Instant) {
        if !self.ext.may_answer() {
            return self.ext.hold_answer();
        }
        let LegPhase::Ringing { offer, .. } = &mut self.phase else {
            return;
        };
        let offer = offer.take();
        let Some(session) = self.local_sdp else {
            return;
        };
        let body = match &offer {
            Some(o) => match sdp::negotiate(o) {
                Ok(n) => match &o.crypto {
                    Some(_) => {
                        let ours = self.srtp_key.get_or_insert_with(|| ctx.keys.next_key());
                        sdp::build_secure_answer(&session, o, &n, ours)
                    }
                    None => sdp::build_answer(&session, o, &n),
                },
                Err(_) => return, // checked at INVITE time
            },
            None if self.ext.offered_early() => Vec::new(),
            None => sdp::build_offer(&session, Direction::SendRecv),
        };
        let dialog = match self.dialog.take() {
            // The early dialog of a reliable 180 (RFC 3261 §12.1.1) is confirmed.
            Some(d) => d,
            None => match Dialog::from_invite(
                &self.invite,
                &self.local_tag,
                ctx.rng.next_u32() & 0xFFFF,
            ) {
                Ok(d) => d,
                Err(_) => return, // Contact and tags were checked at INVITE time
            },
        };
        let mut r = Response::to_request(&self.invite, StatusCode::OK);
        set_to_tag(&mut r, &self.local_tag);
        proxy::copy_record_route(&mut r, &self.invite);
        r.headers.push(HeaderName::Contact, self.contact(ctx));
        r.headers.push(HeaderName::Allow, crate::config::ALLOW);
        r.headers
            .push(HeaderName::Server, ctx.config.user_agent.clone());
        if !body.is_empty() {
            r.headers.push(HeaderName::ContentType, "application/sdp");
        }
        r.body = body;
        self.dialog = Some(dialog);
        self.phase = LegPhase::Answered { offer };
        self.ext_answered(now, &mut r);
        ctx.layer.respond(now, &self.invite_key, r);
        ctx.event(Event::CallAnswered {
            call: self.handle.call,
        });
    }

    /// A CANCEL for our INVITE arrived (its 200 is sent): end the INVITE with 487 if it is
    /// still pending (RFC 3261 §9.2).
    pub(crate) fn cancel(&mut self, ctx: &mut Ctx, now: Instant) {
        if ctx.layer.is_pending_invite(&self.invite_key) {
            let mut r = Response::to_request(&self.invite, StatusCode::REQUEST_TERMINATED);
            set_to_tag(&mut r, &self.local_tag);
            ctx.layer.respond(now, &self.invite_key, r);
            self.events
                .push_back(LegEvent::Closed(EndReason::Cancelled));
        }
    }

    /// An ACK in our dialog: the call is confirmed (its SDP may carry the answer), or a
    /// re-INVITE is.
    pub(crate) fn handle_ack(&mut self, ctx: &mut Ctx, now: Instant, ack: &Request) {
        ctx.layer.ack_received(now, &self.invite_key);
        if let Some(k) = &self.reinvite {
            ctx.layer.ack_received(now, k);
        }
        match std::mem::replace(&mut self.phase, LegPhase::Active) {
            LegPhase::Answered { offer } => {
                let negotiated = match (&offer, self.ext.take_early_answer()) {
                    (Some(o), _) => sdp::negotiate(o).map(|n| (n, o.addr)),
                    // Our offer was in a reliable 180, the answer in its PRACK (RFC 3262 §5).
                    (None, Some(early)) => Ok(early),
                    // Late offer: the answer is in the ACK (RFC 3261 §13.2.1).
                    (None, None) => sdp::parse_remote(&ack.body)
                        .and_then(|a| sdp::accept_answer(&a).map(|n| (n, a.addr))),
                };
                match negotiated {
                    Ok((n, addr)) => {
                        self.start_media(ctx, now, n, addr);
                        let theirs = offer.as_ref().and_then(|o| o.crypto.as_ref());
                        if let (Some(t), Some(ours), Some(m)) =
                            (theirs, &self.srtp_key, self.media.as_mut())
                        {
                            m.set_srtp(Box::new(SrtpSession::new(ours, &t.key)));
                        }
                    }
                    Err(_) => self
                        .events
                        .push_back(LegEvent::Failed(EndReason::BadAnswer)),
                }
            }
            LegPhase::Active => {
                self.ext.offer_answered();
                // An ACK for a re-INVITE 2xx that offered: it carries the answer.
                if !ack.body.is_empty()
                    && let Ok(a) = sdp::parse_remote(&ack.body)
                {
                    self.apply_answer(now, &a);
                }
            }
            other => self.phase = other,
        }
    }

    fn start_media(&mut self, ctx: &mut Ctx, now: Instant, n: Negotiated, addr: SocketAddr) {
        let (ssrc, seq, ts) = (
            ctx.rng.next_u32(),
            ctx.rng.next_u32() as u16,
            ctx.rng.next_u32(),
        );
        let mut media = MediaSession::new(now, n, addr, ssrc, seq, ts);
        media.allow_latch_from(self.peer.addr.ip());
        media.limit_send_without_peer(ctx.config.send_without_peer);
        self.media = Some(media);
        self.events.push_back(LegEvent::Connected);
    }

    /// A request inside our dialog (not ACK).
    pub(crate) fn handle_request(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        key: ServerKey,
        req: Request,
    ) {
        let seq_ok = match self.dialog.as_mut() {
            Some(d) => d.accept_remote_seq(&req),
            None => return,
        };
        if let Err(DialogError::OldCSeq { .. }) = seq_ok {
            return ctx.reject(now, &key, &req, RequestError::OldCSeq, None);
        }
        match req.method {
            Method::Bye => {
                let ok = ctx.reply(&req, StatusCode::OK, None);
                ctx.layer.respond(now, &key, ok);
                // RFC 3261 §15.1.2: a BYE in the early dialog (a reliable 180 made one)
                // ends the INVITE with 487, as a CANCEL would.
                self.cancel(ctx, now);
                self.events
                    .push_back(LegEvent::Closed(EndReason::CallerHungUp));
            }
            Method::Invite => self.handle_reinvite(ctx, now, key, req),
            Method::Update => self.handle_update(ctx, now, key, req),
            Method::Prack => self.handle_prack(ctx, now, key, req),
            Method::Info => {
                let digit = dtmf_from_info(&req);
                let ok = ctx.reply(&req, StatusCode::OK, None);
                ctx.layer.respond(now, &key, ok);
                if let Some(d) = digit {
                    self.events.push_back(LegEvent::Digit(d));
                }
            }
            Method::Options => {
                let mut r = ctx.reply(&req, StatusCode::OK, None);
                r.headers.push(HeaderName::Allow, crate::config::ALLOW);
                ctx.layer.respond(now, &key, r);
            }
            // RFC 6665 §4.1.3: a NOTIFY for no subscription of ours (a REFER's is taken
            // before the leg sees it).
            Method::Notify => ctx.reject(now, &key, &req, RequestError::NoSuchCall, None),
            Method::Other(_) => ctx.reject(now, &key, &req, RequestError::NotImplemented, None),
            _ => ctx.reject(now, &key, &req, RequestError::NotAllowed, None),
        }
    }

    /// A re-INVITE (RFC 3261 §14.2): hold, resume, or a new address.
    fn handle_reinvite(&mut self, ctx: &mut Ctx, now: Instant, key: ServerKey, req: Request) {
        let busy = self
            .reinvite
            .as_ref()
            .is_some_and(|k| ctx.layer.is_pending_invite(k));
        // RFC 3261 §14.2: one INVITE at a time each way; ours (a session refresh) counts.
        let busy = busy || self.ext.invite_in_flight();
        if busy || !matches!(self.phase, LegPhase::Active) || self.media.is_none() {
            return ctx.reject(now, &key, &req, RequestError::Pending, None);
        }
        let agreement = match self.check_refresh(ctx, &req) {
            Ok(a) => a,
            Err(e) => return ctx.reject(now, &key, &req, e, None),
        };
        let Some(mut local) = self.local_sdp else {
            return;
        };
        local.version += 1;
        let body = if req.body.is_empty() {
            // Offer in the 2xx, answer in the ACK.
            self.ext.offer_in_2xx();
            let dir = self
                .media
                .as_ref()
                .map(|m| m.negotiated().direction)
                .unwrap_or(Direction::SendRecv);
            self.local_offer(
                &local,
                if dir == Direction::Inactive {
                    Direction::SendRecv
                } else {
                    dir
                },
            )
        } else {
            match self.answer_offer(now, &local, &req.body) {
                Ok(answer) => answer,
                Err(e) => return ctx.reject(now, &key, &req, RequestError::Sdp(e), None),
            }
        };
        self.local_sdp = Some(local);
        if let Some(d) = self.dialog.as_mut() {
            d.refresh_target(&req);
        }
        self.reinvite = Some(key.clone());
        let mut r = self.target_refresh_ok(ctx, &req);
        r.headers.push(HeaderName::ContentType, "application/sdp");
        r.body = body;
        self.refreshed_by_peer(now, agreement, &mut r);
        ctx.layer.respond(now, &key, r);
    }

    /// The 200 to a target refresh request in our dialog (re-INVITE, UPDATE): the
    /// Record-Route copied, our Contact, the Server header.
    pub(crate) fn target_refresh_ok(&self, ctx: &Ctx, req: &Request) -> Response {
        let mut r = Response::to_request(req, StatusCode::OK);
        proxy::copy_record_route(&mut r, req);
        r.headers.push(HeaderName::Contact, self.contact(ctx));
        r.headers
            .push(HeaderName::Server, ctx.config.user_agent.clone());
        r
    }

    /// Answer an offer received in the dialog (re-INVITE, UPDATE): the media follows it and
    /// our answer is built on `local` (RFC 3264 §8).
    pub(crate) fn answer_offer(
        &mut self,
        now: Instant,
        local: &LocalSession,
        body: &[u8],
    ) -> Result<Vec<u8>, SdpError> {
        let offer = sdp::parse_remote(body)?;
        let n = sdp::negotiate(&offer)?;
        if offer.secure != self.srtp_key.is_some() {
            return Err(SdpError::ProfileChanged);
        }
        if let Some(m) = self.media.as_mut() {
            m.update(now, n, offer.addr);
            // RFC 4568 §7.1.4: a re-offer may bring a new key for the peer's direction.
            if let (Some(s), Some(c)) = (m.srtp_mut(), &offer.crypto) {
                s.set_inbound(&c.key);
            }
        }
        Ok(match &self.srtp_key {
            Some(ours) => sdp::build_secure_answer(local, &offer, &n, ours),
            None => sdp::build_answer(local, &offer, &n),
        })
    }

    /// Our offer in this dialog (a re-INVITE without SDP, a session refresh): RTP/SAVP
    /// with our key when the call is SRTP, so an offer of ours never downgrades it.
    pub(crate) fn local_offer(&self, local: &LocalSession, direction: Direction) -> Vec<u8> {
        match &self.srtp_key {
            Some(ours) => sdp::build_secure_offer(local, direction, ours),
            None => sdp::build_offer(local, direction),
        }
    }

    /// The peer answered an offer of ours in this dialog: take the new media parameters
    /// (and the peer's key, if it sent a new one).
    pub(crate) fn apply_answer(&mut self, now: Instant, answer: &RemoteAudio) {
        let Ok(n) = sdp::accept_answer(answer) else {
            return;
        };
        if let Some(m) = self.media.as_mut() {
            m.update(now, n, answer.addr);
            if let (Some(s), Some(c)) = (m.srtp_mut(), &answer.crypto) {
                s.set_inbound(&c.key);
            }
        }
    }

    /// A datagram on our RTP port; what it was, for the call (digits are also queued as
    /// events). A bad one is reported and dropped.
    pub(crate) fn handle_rtp(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        from: SocketAddr,
        data: &[u8],
    ) -> Option<Received> {
        let media = self.media.as_mut()?;
        match media.handle_rtp(now, from, data) {
            Ok(r) => Some(r),
            // Reported once per call: a spray must not flood the log.
            Err(crate::media::RtpError::NotFromPeer) if media.strangers() > 1 => None,
            Err(e) => {
                ctx.event(Event::BadRtp {
                    leg: self.handle,
                    error: e.to_string(),
                });
                None
            }
        }
    }

    /// Whether the peer has sent anything since the stream (or its address) began; true
    /// without media (nothing waits for the peer there).
    pub(crate) fn heard(&self) -> bool {
        self.media.as_ref().is_none_or(MediaSession::heard)
    }

    /// A datagram on our RTCP port.
    pub fn handle_rtcp(&mut self, now: Instant, data: &[u8]) {
        if let Some(m) = self.media.as_mut() {
            m.handle_rtcp(now, data);
        }
    }

    /// End the leg from our side: BYE if answered (along the route set), 503 if not.
    pub(crate) fn hang_up(&mut self, ctx: &mut Ctx, now: Instant) -> HangUp {
        match &self.phase {
            LegPhase::Ending { .. } | LegPhase::Calling | LegPhase::Closed => HangUp::Nothing,
            LegPhase::OpeningMedia { .. } | LegPhase::Ringing { .. } => {
                let why = RequestError::Unavailable(crate::error::Unavailable::Ending);
                let (key, invite) = (self.invite_key.clone(), self.invite.clone());
                ctx.reject(now, &key, &invite, why, Some(&self.local_tag));
                HangUp::Refused
            }
            LegPhase::Answered { .. } | LegPhase::Active => {
                let Some((bye, peer)) = self.new_request(ctx, Method::Bye) else {
                    return HangUp::Nothing;
                };
                self.stop();
                match ctx.layer.send_request(now, bye, peer) {
                    Some(key) => {
                        self.phase = LegPhase::Ending { bye: key.clone() };
                        ctx.outputs
                            .push_back(Output::CloseMedia { leg: self.handle });
                        HangUp::Bye(key)
                    }
                    None => HangUp::Failed,
                }
            }
        }
    }
}

impl Leg {
    /// A new request in our dialog, and where it goes (RFC 3261 §12.2.1.1: the route set
    /// decides the Request-URI, the Route headers and the next hop; the Via names the
    /// transport used to get there). `None` before the dialog exists.
    pub(crate) fn new_request(&mut self, ctx: &mut Ctx, method: Method) -> Option<(Request, Peer)> {
        let dialog = self.dialog.as_mut()?;
        let target = dialog.target();
        let hop = proxy::next_hop(self.peer, &target);
        let peer = hop.peer;
        let branch = format!("z9hG4bK{}", ctx.rng.token());
        let via = format!(
            "SIP/2.0/{} {};branch={branch};rport",
            peer.transport.via_token(),
            ctx.config.sip_addr_for(peer.transport)
        );
        let mut req = dialog.request(method, via);
        req.headers
            .push(HeaderName::UserAgent, ctx.config.user_agent.clone());
        let next_hop = target.next_hop.to_string();
        let call = self.handle.call;
        if hop.unresolved {
            ctx.event(Event::RouteUnresolved { call, next_hop });
        } else if target.strict {
            ctx.event(Event::StrictRoute { call, next_hop });
        }
        Some((req, peer))
    }
}

/// A key from a SIP INFO body: `application/dtmf-relay` (`Signal=5`) or `application/dtmf` (`5`).
fn dtmf_from_info(req: &Request) -> Option<Digit> {
    let ctype = req
        .headers
        .get(&HeaderName::ContentType)?
        .to_ascii_lowercase();
    let body = std::str::from_utf8(&req.body).ok()?;
    let value = if ctype.starts_with("application/dtmf-relay") {
        body.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            k.trim().eq_ignore_ascii_case("signal").then(|| v.trim())
        })?
    } else if ctype.starts_with("application/dtmf") {
        body.trim()
    } else {
        return None;
    };
    let mut chars = value.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Digit::from_char(c),
        _ => value.parse::<u8>().ok().and_then(Digit::from_event_code),
    }
}
