//! What a leg keeps for its SIP extensions (session timers, RFC 4028; UPDATE, RFC 3311;
//! reliable provisionals, RFC 3262): the state, and what an initial INVITE asks for. The
//! behaviour is in `session.rs` and `prack.rs` (as `impl Leg`); this module knows nothing of
//! the leg, so `leg.rs` can hold an [`Extensions`] without an import circle.

use crate::ctx::Ctx;
use crate::error::RequestError;
use crate::sdp::Negotiated;
use ivr_sip::header::HeaderName;
use ivr_sip::message::{Method, Request};
use ivr_sip::reliable::ReliableProvisionals;
use ivr_sip::session_timer::{self, Agreement, Refusal, SessionTimer};
use ivr_sip::transaction::{ClientKey, Peer};
use std::net::SocketAddr;

/// Our session refresh in flight (RFC 4028 §7.4).
#[derive(Debug)]
pub(crate) struct OutRefresh {
    pub(crate) key: ClientKey,
    pub(crate) method: Method,
    /// The interval asked for.
    pub(crate) interval: u32,
    /// Its final answer came (a re-INVITE's 2xx may still be retransmitted).
    pub(crate) done: bool,
    /// The ACK of a re-INVITE's 2xx, sent again for each retransmitted 2xx.
    pub(crate) ack: Option<(Request, Peer)>,
}

/// What a leg keeps for the extensions.
#[derive(Debug, Default)]
pub struct Extensions {
    /// The session timer agreement in force (from the INVITE, then each refresh).
    pub(crate) agreement: Option<Agreement>,
    /// The clock, from the 2xx on.
    pub(crate) timer: Option<SessionTimer>,
    pub(crate) refresh: Option<OutRefresh>,
    /// A client transaction the engine must route back to this leg (taken at reindex).
    pub(crate) new_client: Option<ClientKey>,
    /// The refresh it replaced, for the engine to forget.
    pub(crate) stale_client: Option<ClientKey>,
    /// The peer lists UPDATE in Allow: refresh with it, not with a re-INVITE (RFC 4028 §7.4).
    pub(crate) peer_allows_update: bool,
    /// Reliable provisionals, when the INVITE required them.
    pub(crate) reliable: Option<ReliableProvisionals>,
    /// The answer is due but waits for a PRACK (RFC 3262 §3).
    pub(crate) answer_held: bool,
    /// Our offer went in a reliable 180 (late-offer INVITE, RFC 3262 §5).
    pub(crate) offered_early: bool,
    /// The answer to that offer, from the PRACK.
    pub(crate) early_answer: Option<(Negotiated, SocketAddr)>,
    /// We offered in a 2xx (late-offer re-INVITE) and wait for the ACK's answer.
    pub(crate) offer_in_2xx: bool,
    /// Our refreshes refused in a row (491, 5xx...), for the back-off between retries.
    pub(crate) refresh_failures: u32,
    /// The largest Min-SE the peer's requests and 422s named in this dialog (RFC 4028
    /// §7.4: our refreshes carry it).
    pub(crate) peer_min_se: u32,
}

impl Extensions {
    /// What an initial INVITE asks for: the session timer agreement (RFC 4028 §9: a 422
    /// when its interval is under our Min-SE) and reliable provisionals (RFC 3262 §3).
    pub(crate) fn for_invite(ctx: &mut Ctx, req: &Request) -> Result<Extensions, RequestError> {
        let agreement = negotiate(ctx, req)?;
        let reliable = ivr_sip::reliable::required(&req.headers)
            .then(|| ReliableProvisionals::new(ctx.config.timers.t1, ctx.rng.next_u32()));
        Ok(Extensions {
            agreement,
            peer_min_se: peer_min_se(req),
            peer_allows_update: allows_update(req),
            reliable,
            ..Extensions::default()
        })
    }

    /// The Min-SE our refreshes carry, and under which no answer may take the interval
    /// (RFC 4028 §7.4, §9): ours, or a larger one the peer or a proxy named.
    pub(crate) fn min_se(&self, ctx: &Ctx) -> u32 {
        ctx.config.session_timer.min_se.max(self.peer_min_se)
    }

    /// Whether the 2xx may go now (RFC 3262 §3).
    pub(crate) fn may_answer(&self) -> bool {
        self.reliable.as_ref().is_none_or(|r| r.may_send_2xx())
    }

    /// The answer is due but waits for the PRACK.
    pub(crate) fn hold_answer(&mut self) {
        self.answer_held = true;
    }

    /// Whether the answer waits for a PRACK.
    pub(crate) fn answer_held(&self) -> bool {
        self.answer_held
    }

    /// Whether our offer went in a reliable 180.
    pub(crate) fn offered_early(&self) -> bool {
        self.offered_early
    }

    /// The PRACK's answer to our early offer, once.
    pub(crate) fn take_early_answer(&mut self) -> Option<(Negotiated, SocketAddr)> {
        self.early_answer.take()
    }

    /// We put an offer in a 2xx.
    pub(crate) fn offer_in_2xx(&mut self) {
        self.offer_in_2xx = true;
    }

    /// The ACK came (with the answer to an offer in our 2xx, if we made one).
    pub(crate) fn offer_answered(&mut self) {
        self.offer_in_2xx = false;
    }

    /// Whether our own re-INVITE is unanswered (RFC 3261 §14.2 glare).
    pub(crate) fn invite_in_flight(&self) -> bool {
        self.refresh
            .as_ref()
            .is_some_and(|r| r.method == Method::Invite && !r.done)
    }

    /// A client transaction for the engine to route back to this leg.
    pub(crate) fn take_new_client(&mut self) -> Option<ClientKey> {
        self.new_client.take()
    }

    /// A refresh the engine no longer needs to route (a newer one replaced it).
    pub(crate) fn take_stale_client(&mut self) -> Option<ClientKey> {
        self.stale_client.take()
    }

    /// Our latest refresh's transaction, while the engine routes it to us.
    pub(crate) fn refresh_key(&self) -> Option<&ClientKey> {
        self.refresh.as_ref().map(|r| &r.key)
    }

    /// Whether `key` is our refresh.
    pub(crate) fn is_refresh(&self, key: &ClientKey) -> bool {
        self.refresh.as_ref().is_some_and(|r| &r.key == key)
    }

    /// Whether an offer of ours waits for its answer (RFC 3311 §5.2 glare): in a 2xx, or in
    /// our re-INVITE.
    pub(crate) fn offer_pending(&self) -> bool {
        self.offer_in_2xx || self.invite_in_flight()
    }
}

/// RFC 4028 §9 on a request we received, in the engine's terms.
pub(crate) fn negotiate(ctx: &Ctx, req: &Request) -> Result<Option<Agreement>, RequestError> {
    session_timer::negotiate_uas(&req.headers, &ctx.config.session_timer).map_err(|e| match e {
        Refusal::TooSmall { min_se } => RequestError::IntervalTooSmall(min_se),
        Refusal::Malformed(h) => RequestError::BadHeader(h),
    })
}

/// A request's Min-SE (0 if none, or unreadable: such a request is refused anyway).
pub(crate) fn peer_min_se(req: &Request) -> u32 {
    session_timer::min_se(&req.headers)
        .ok()
        .flatten()
        .unwrap_or(0)
}

/// Whether a request's Allow lists UPDATE.
pub(crate) fn allows_update(req: &Request) -> bool {
    req.headers
        .values(&HeaderName::Allow)
        .any(|m| m.trim() == Method::Update.as_str())
}
