//! Reliable provisional responses on the answering leg (RFC 3262): the 180 made reliable
//! when the INVITE requires `100rel`, its retransmission, PRACK matching, and the 2xx held
//! until the PRACK of a 180 that carried our offer. The bookkeeping is
//! [`ivr_sip::reliable::ReliableProvisionals`].
//!
//! Outgoing legs PRACK the far end's reliable provisionals in `ivr_sip::uac`
//! (`OutgoingCall`), per early dialog, before the leg is bridged.

use crate::ctx::Ctx;
use crate::error::RequestError;
use crate::io::EndReason;
use crate::leg::{Leg, LegEvent, LegPhase};
use crate::sdp::{self, Direction};
use ivr_sip::dialog::Dialog;
use ivr_sip::header::HeaderName;
use ivr_sip::message::{Request, Response, StatusCode};
use ivr_sip::reliable::{Prack, RAck};
use ivr_sip::transaction::ServerKey;
use std::time::Instant;

impl Leg {
    /// Make our 180 reliable if the INVITE required it (RFC 3262 §3): `Require: 100rel`,
    /// `RSeq`, retransmitted until PRACKed. An INVITE without an offer gets ours in it, as
    /// the first reliable non-failure response must carry it (§5); the PRACK then answers
    /// and the 2xx waits for it. The 180 creates the early dialog the PRACK arrives in
    /// (RFC 3261 §12.1.1).
    pub(crate) fn make_reliable(&mut self, ctx: &mut Ctx, now: Instant, r: &mut Response) {
        let late_offer = matches!(self.phase, LegPhase::Ringing { offer: None, .. });
        let Some(rel) = self.ext.reliable.as_mut() else {
            return;
        };
        if late_offer && let Some(local) = self.local_sdp {
            r.headers.push(HeaderName::ContentType, "application/sdp");
            r.body = sdp::build_offer(&local, Direction::SendRecv);
        }
        if !rel.send(now, r) {
            r.body.clear();
            r.headers.remove(&HeaderName::ContentType);
            return;
        }
        self.ext.offered_early = late_offer;
        if self.dialog.is_none() {
            let seq = ctx.rng.next_u32() & 0xFFFF;
            // Contact and tags were checked at INVITE time.
            self.dialog = Dialog::from_invite(&self.invite, &self.local_tag, seq).ok();
        }
    }

    /// Retransmit the reliable 180 when due; after 64·T1 without PRACK, refuse the INVITE
    /// with a 5xx (RFC 3262 §3).
    pub(crate) fn prack_timeout(&mut self, ctx: &mut Ctx, now: Instant) {
        let Some(rel) = self.ext.reliable.as_mut() else {
            return;
        };
        rel.handle_timeout(now);
        while let Some(r) = rel.poll_retransmit() {
            ctx.layer.respond(now, &self.invite_key, r);
        }
        if rel.gave_up() {
            self.ext.reliable = None;
            if ctx.layer.is_pending_invite(&self.invite_key) {
                let (key, invite) = (self.invite_key.clone(), self.invite.clone());
                ctx.reject(
                    now,
                    &key,
                    &invite,
                    RequestError::NoPrack,
                    Some(&self.local_tag),
                );
                self.events.push_back(LegEvent::Closed(EndReason::NoPrack));
            }
        }
    }

    /// A PRACK (RFC 3262 §3, §7.2): 200 if its RAck names the provisional we retransmit,
    /// else 481. If that provisional carried our offer, the PRACK carries the answer. A 2xx
    /// held for it goes now.
    pub(crate) fn handle_prack(
        &mut self,
        ctx: &mut Ctx,
        now: Instant,
        key: ServerKey,
        req: Request,
    ) {
        let rack = RAck::of(&req.headers);
        let outcome = self
            .ext
            .reliable
            .as_mut()
            .map_or(Prack::NoMatch, |r| r.handle_prack(rack.as_ref()));
        let Prack::Acknowledged { had_sdp } = outcome else {
            return ctx.reject(now, &key, &req, RequestError::NoSuchProvisional, None);
        };
        let ok = ctx.reply(&req, StatusCode::OK, None);
        ctx.layer.respond(now, &key, ok);
        if had_sdp && self.ext.offered_early {
            let answer = sdp::parse_remote(&req.body)
                .and_then(|a| sdp::accept_answer(&a).map(|n| (n, a.addr)));
            match answer {
                Ok(a) => self.ext.early_answer = Some(a),
                // An answer we cannot use: the session cannot start (RFC 3264 §6).
                Err(_) => {
                    self.ext.answer_held = false;
                    self.events
                        .push_back(LegEvent::Failed(EndReason::BadAnswer));
                    return;
                }
            }
        }
        if self.ext.answer_held {
            self.ext.answer_held = false;
            self.answer(ctx, now);
        }
    }
}
