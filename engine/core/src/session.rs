//! A leg's SIP extensions: session timers (RFC 4028), UPDATE (RFC 3311) and reliable
//! provisionals (RFC 3262, in `prack.rs`). The protocol machines live in `ivr-sip`
//! ([`ivr_sip::session_timer`], [`ivr_sip::reliable`]); this module wires them into the
//! answering leg: what the INVITE asked for, the 2xx, refreshes received (re-INVITE,
//! UPDATE) and sent (when we are the refresher), and the BYE when the session expires.
//!
//! Outgoing (UAC) legs of bridged transfers run the same machinery from their answer on:
//! [`ivr_sip::uac::OutgoingCall`] offers the timer in the INVITE and reads the 2xx (RFC 4028
//! §7.1-§7.4), and [`Leg::uac_answered`] starts the leg's own clock with `we_are_uac =
//! true`. From there refreshes sent and received, and the BYE at expiry, are the ones below.

use crate::ctx::Ctx;
use crate::error::RequestError;
use crate::extensions::{OutRefresh, allows_update, negotiate, peer_min_se};
use crate::io::EndReason;
use crate::leg::{Leg, LegEvent, LegPhase};
use crate::sdp::{self, Direction};
use ivr_sip::header::HeaderName;
use ivr_sip::message::{CoreHeaders, Method, Request, Response};
use ivr_sip::session_timer::{self, Agreement, RefreshOutcome, SessionTimer, TimerEvent};
use ivr_sip::transaction::ServerKey;
use std::time::{Duration, Instant};

impl Leg {
    /// The extensions' next deadline: the session timer once answered, the reliable 180's
    /// retransmission while ringing.
    pub(crate) fn ext_poll_timeout(&self) -> Option<Instant> {
        let timer = self.ext.timer.as_ref().and_then(SessionTimer::poll_timeout);
        let reliable = self.ext.reliable.as_ref().and_then(|r| r.poll_timeout());
        match (timer, reliable) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Time passed: retransmit the reliable 180, refresh, or end an expired session.
    pub(crate) fn ext_timeout(&mut self, ctx: &mut Ctx, now: Instant) {
        self.prack_timeout(ctx, now);
        let Some(timer) = self.ext.timer.as_mut() else {
            return;
        };
        timer.handle_timeout(now);
        while let Some(ev) = self.ext.timer.as_mut().and_then(SessionTimer::poll_event) {
            match ev {
                TimerEvent::Refresh => self.send_refresh(ctx, now, None),
                TimerEvent::Expired => {
                    // RFC 4028 §10: BYE before the session expires.
                    self.ext.timer = None;
                    self.events
                        .push_back(LegEvent::Failed(EndReason::SessionExpired));
                }
            }
        }
    }

    /// The initial 2xx goes out: say what we support, put the agreed session timer in it
    /// (RFC 4028 §9) and start its clock; reliable provisionals are over.
    pub(crate) fn ext_answered(&mut self, now: Instant, r: &mut Response) {
        r.headers
            .push(HeaderName::Supported, crate::config::SUPPORTED);
        if let Some(rel) = self.ext.reliable.as_mut() {
            rel.finish();
        }
        self.ext.answer_held = false;
        if let Some(a) = self.ext.agreement {
            a.decorate_response(&mut r.headers);
            self.ext.timer = Some(SessionTimer::new(now, a.duration(), a.who(false)));
        }
    }

    /// An outgoing leg's INVITE was answered (RFC 4028 §7.2): the timer its 2xx agreed
    /// runs on this leg alone, refreshed by us when the 2xx said `refresher=uac`; our
    /// refreshes carry the Min-SE the INVITE ended with, by UPDATE if the 2xx allows it.
    pub(crate) fn uac_answered(&mut self, now: Instant, answer: ivr_sip::uac::AnswerExtensions) {
        self.ext.peer_allows_update = answer.allows_update;
        self.ext.peer_min_se = self.ext.peer_min_se.max(answer.min_se);
        if let Some(a) = answer.session {
            self.ext.agreement = Some(a);
            self.ext.timer = Some(SessionTimer::new(now, a.duration(), a.who(true)));
        }
    }

    /// RFC 4028 §9 for a re-INVITE or UPDATE from the peer (its Min-SE is remembered for
    /// our own refreshes, §7.4).
    pub(crate) fn check_refresh(
        &mut self,
        ctx: &Ctx,
        req: &Request,
    ) -> Result<Option<Agreement>, RequestError> {
        let agreement = negotiate(ctx, req)?;
        self.ext.peer_min_se = self.ext.peer_min_se.max(peer_min_se(req));
        Ok(agreement)
    }

    /// We answer a refresh from the peer with 2xx: the session is refreshed. A request
    /// that names no timer keeps the one in force (a re-INVITE for hold still shows the
    /// peer is there).
    pub(crate) fn refreshed_by_peer(
        &mut self,
        now: Instant,
        agreement: Option<Agreement>,
        r: &mut Response,
    ) {
        r.headers
            .push(HeaderName::Supported, crate::config::SUPPORTED);
        if let Some(a) = agreement {
            a.decorate_response(&mut r.headers);
            self.ext.agreement = Some(a);
            let who = a.who(false);
            match self.ext.timer.as_mut() {
                Some(t) => t.refreshed(now, a.duration(), who),
                None => self.ext.timer = Some(SessionTimer::new(now, a.duration(), who)),
            }
        } else if let Some(t) = self.ext.timer.as_mut() {
            t.refreshed(now, t.interval(), t.who());
        }
    }

    /// An UPDATE (RFC 3311): a session refresh, with or without an offer. An offer while
    /// ours is unanswered is glare: 491 (§5.2). In the early dialog of a reliable 180 an
    /// offer is taken once the dialog's first offer/answer is done (our offer in the 180,
    /// the answer in its PRACK, RFC 3262 §5): its answer is what the media starts with at
    /// the ACK. Before that, 500 with Retry-After (§5.2).
    pub(crate) fn handle_update(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        key: ServerKey,
        req: Request,
    ) {
        let offer = !req.body.is_empty();
        // Early dialog, our offer in the reliable 180 answered by its PRACK.
        let early_done = self.media.is_none() && self.ext.early_answer.is_some();
        if offer {
            // Ours waits in a 2xx, our re-INVITE, our late-offer 2xx, or a reliable 180
            // not PRACKed yet (RFC 3262 §5).
            let in_180 = self.ext.offered_early
                && self.ext.reliable.as_ref().is_some_and(|r| r.is_pending());
            let offer_in_2xx =
                matches!(self.phase, LegPhase::Answered { offer: None }) && !early_done;
            if self.ext.offer_pending() || in_180 || offer_in_2xx {
                return ctx.reject(now, &key, &req, RequestError::Pending, None);
            }
            if self.media.is_none() && !early_done {
                // Early: the INVITE's offer is not answered yet (§5.2: 500, retry later).
                return ctx.reject(now, &key, &req, RequestError::OfferUnanswered, None);
            }
        }
        let agreement = match self.check_refresh(ctx, &req) {
            Ok(a) => a,
            Err(e) => return ctx.reject(now, &key, &req, e, None),
        };
        let mut body = Vec::new();
        if offer {
            let Some(mut local) = self.local_sdp else {
                return;
            };
            local.version += 1;
            body = match self.answer_offer(now, &local, &req.body) {
                Ok(b) => b,
                Err(e) => return ctx.reject(now, &key, &req, RequestError::Sdp(e), None),
            };
            if early_done {
                // Checked by `answer_offer`: the media starts on this at the ACK.
                self.ext.early_answer = sdp::parse_remote(&req.body)
                    .and_then(|o| sdp::negotiate(&o).map(|n| (n, o.addr)))
                    .ok();
            }
            self.local_sdp = Some(local);
        }
        if let Some(d) = self.dialog.as_mut() {
            // UPDATE is a target refresh request (RFC 3311 §5.2).
            d.refresh_target(&req);
        }
        if allows_update(&req) {
            self.ext.peer_allows_update = true;
        }
        let mut r = self.target_refresh_ok(ctx, &req);
        if !body.is_empty() {
            r.headers.push(HeaderName::ContentType, "application/sdp");
            r.body = body;
        }
        // Before the 2xx of the INVITE the session has not started: nothing to refresh.
        // After it, this is a session refresh request (RFC 4028 §9) even in a call that
        // had no timer: one starts.
        let started = matches!(self.phase, LegPhase::Answered { .. } | LegPhase::Active);
        if started || agreement.is_none() {
            self.refreshed_by_peer(now, agreement, &mut r);
        } else {
            r.headers
                .push(HeaderName::Supported, crate::config::SUPPORTED);
        }
        ctx.layer.respond(now, &key, r);
    }

    /// We are the refresher and half the interval passed: send UPDATE if the peer takes it,
    /// else a re-INVITE offering the session unchanged (RFC 4028 §7.4, RFC 3264 §8: same
    /// version). `interval` overrides the one in force (after a 422).
    pub(crate) fn send_refresh(&mut self, ctx: &mut Ctx, now: Instant, interval: Option<u32>) {
        if self.ext.refresh.as_ref().is_some_and(|r| !r.done) {
            return;
        }
        if !matches!(self.phase, LegPhase::Active) || self.ext.offer_in_2xx {
            // Not confirmed yet, or a negotiation of theirs is half done: soon again.
            if let Some(t) = self.ext.timer.as_mut() {
                t.retry_at(now + Duration::from_secs(1));
            }
            return;
        }
        let Some(interval) = interval.or_else(|| {
            self.ext
                .timer
                .as_ref()
                .map(|t| t.interval().as_secs() as u32)
        }) else {
            return;
        };
        let method = if self.ext.peer_allows_update {
            Method::Update
        } else {
            Method::Invite
        };
        let Some((mut req, peer)) = self.new_request(ctx, method.clone()) else {
            return;
        };
        req.headers.push(HeaderName::Contact, self.contact(ctx));
        req.headers.push(HeaderName::Allow, crate::config::ALLOW);
        let min_se = self.ext.min_se(ctx);
        let interval = interval.max(min_se);
        session_timer::decorate_request(&mut req.headers, interval, min_se);
        if method == Method::Invite
            && let Some(local) = self.local_sdp
        {
            let dir = self
                .media
                .as_ref()
                .map(|m| m.negotiated().direction)
                .unwrap_or(Direction::SendRecv);
            req.headers.push(HeaderName::ContentType, "application/sdp");
            req.body = self.local_offer(&local, dir);
        }
        if let Some(key) = ctx.layer.send_request(now, req, peer) {
            self.ext.new_client = Some(key.clone());
            self.ext.stale_client = self.ext.refresh.take().map(|r| r.key);
            self.ext.refresh = Some(OutRefresh {
                key,
                method,
                interval,
                done: false,
                ack: None,
            });
        }
    }

    /// The answer to our refresh (RFC 4028 §7.2, §7.3, §10). A re-INVITE's 2xx is ACKed,
    /// each time it comes.
    pub(crate) fn handle_refresh_response(&mut self, ctx: &mut Ctx, now: Instant, resp: &Response) {
        let status = resp.status;
        if status.is_provisional() {
            return;
        }
        let Some(out) = self.ext.refresh.as_mut() else {
            return;
        };
        if out.done {
            if status.is_success()
                && let Some((ack, peer)) = out.ack.clone()
            {
                ctx.layer
                    .send_stateless(peer, ivr_sip::Message::Request(ack));
            }
            return;
        }
        out.done = true;
        let (method, asked) = (out.method.clone(), out.interval);
        if method == Method::Invite && status.is_success() {
            self.ack_refresh(ctx, now, resp);
        }
        let previous = self.ext.agreement.unwrap_or(Agreement {
            interval: asked,
            refresher: session_timer::Refresher::Uac,
            peer_supports: false,
        });
        match session_timer::refresh_outcome(status.code(), &resp.headers, asked, &previous) {
            RefreshOutcome::Refreshed(mut a) => {
                // RFC 4028 §9: the UAS must not go under the Min-SE we sent (§5: it is
                // there against peers that would make us refresh without pause). A 2xx
                // that does anyway is held to it, not obeyed with a refresh every 0.5 s.
                a.interval = a.interval.max(self.ext.min_se(ctx));
                self.ext.refresh_failures = 0;
                self.ext.agreement = Some(a);
                if let Some(t) = self.ext.timer.as_mut() {
                    t.refreshed(now, a.duration(), a.who(true));
                }
            }
            RefreshOutcome::TimerOff => self.ext.timer = None,
            // §7.3: retried at once with the larger interval, a few times in a row (one
            // per proxy that raises it); a peer that raises it every time gets the back-off.
            RefreshOutcome::Retry { interval } if self.ext.refresh_failures < 3 => {
                self.ext.refresh_failures += 1;
                self.ext.peer_min_se = self.ext.peer_min_se.max(interval);
                self.send_refresh(ctx, now, Some(interval));
            }
            RefreshOutcome::Retry { interval } => {
                self.ext.peer_min_se = self.ext.peer_min_se.max(interval);
                self.refresh_failed(ctx, now);
            }
            RefreshOutcome::Gone => self
                .events
                .push_back(LegEvent::Failed(EndReason::SessionExpired)),
            RefreshOutcome::Failed => self.refresh_failed(ctx, now),
        }
    }

    /// Our refresh was refused: try again later, while the session lasts.
    fn refresh_failed(&mut self, ctx: &mut Ctx, now: Instant) {
        // RFC 3261 §14.1: after a 491 the side that did not make the Call-ID waits
        // 0 to 2 s; other failures are tried again the same way while time is left,
        // but a peer that refuses every time gets them ever further apart (1, 2,
        // 4... s more each time), not one re-INVITE a second until the expiry.
        let failures = self.ext.refresh_failures;
        self.ext.refresh_failures = failures.saturating_add(1);
        let backoff = Duration::from_secs((1u64 << failures.min(20)) - 1);
        let jitter = Duration::from_millis(u64::from(ctx.rng.next_u32() % 2000));
        let wait = backoff + jitter;
        if let Some(t) = self.ext.timer.as_mut() {
            t.retry_at(now + wait);
        }
    }

    /// Our refresh got no answer in time (RFC 4028 §10: end the session).
    pub(crate) fn refresh_timed_out(&mut self) {
        if self.ext.refresh.as_ref().is_some_and(|r| !r.done) {
            self.events
                .push_back(LegEvent::Failed(EndReason::SessionExpired));
        }
    }

    /// ACK a 2xx to our re-INVITE (RFC 3261 §13.2.2.4), taking its answer.
    fn ack_refresh(&mut self, ctx: &mut Ctx, now: Instant, resp: &Response) {
        if !resp.body.is_empty()
            && let Ok(a) = sdp::parse_remote(&resp.body)
        {
            self.apply_answer(now, &a);
        }
        let Some(cseq) = resp.cseq().ok().map(|c| c.seq) else {
            return;
        };
        let Some((mut ack, peer)) = self.new_request(ctx, Method::Ack) else {
            return;
        };
        // The ACK has the INVITE's CSeq number and does not use one of its own.
        if let Some(d) = self.dialog.as_mut() {
            d.local_seq = d.local_seq.saturating_sub(1);
        }
        ack.headers.set(HeaderName::CSeq, format!("{cseq} ACK"));
        ctx.layer
            .send_stateless(peer, ivr_sip::Message::Request(ack.clone()));
        if let Some(out) = self.ext.refresh.as_mut() {
            out.ack = Some((ack, peer));
        }
    }
}
