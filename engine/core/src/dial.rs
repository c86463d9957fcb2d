//! Placing outgoing legs: the one place that builds what every outgoing leg shares, used by
//! bridged transfers ([`crate::outgoing`]), agents rung for a queue caller
//! ([`crate::queued`]) and the call to a queued callback's caller
//! ([`crate::queue_callback`]).
//!
//! An outgoing leg lives in three steps, each a function here:
//! 1. [`outgoing_leg`]: the leg is made with a placeholder INVITE (its Call-ID, and a
//!    branch no server transaction has) while the driver opens its RTP socket;
//! 2. [`Dial::invite`]: the socket is open, our SDP offer names it and the INVITE goes out
//!    ([`OutgoingCall`] runs its transactions, RFC 3261 §13.2, §9.1, §22);
//! 3. on a 2xx, [`negotiate_answer`] reads the SDP answer (RFC 3264 §6), the
//!    [`Engine::relay_media`] stream carries the leg's audio to a bridge, and
//!    [`confirm_leg`] makes the leg a confirmed dialog the engine routes requests to.
//!
//! Each caller keeps its own state (a transfer's stage, an agent's ring, a callback's
//! attempt): these functions only build and hand back, and do no I/O.

use crate::call::{Call, LegHandle};
use crate::ctx::Ctx;
use crate::engine::Engine;
use crate::leg::{Leg, LegPhase};
use crate::media::MediaSession;
use crate::outgoing::{Located, send_uac};
use crate::rng::Rng;
use crate::sdp::{self, Direction, LocalSession, Negotiated, SdpError};
use ivr_sip::digest::Credentials;
use ivr_sip::header::{HeaderName, NameAddr, Params};
use ivr_sip::message::{CoreHeaders, Method, Request};
use ivr_sip::transaction::{Peer, ServerKey};
use ivr_sip::uac::{AnswerExtensions, CancelReason, OutgoingCall, OutgoingConfig};
use ivr_sip::uri::Uri;
use ivr_sip::{CallId, Tag, Transport};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// Where a placeholder peer points before DNS answers (nothing is ever sent there).
pub(crate) const UNKNOWN_PEER: Peer = Peer {
    transport: Transport::Udp,
    addr: SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0),
};

/// The next hop for `uri` when it names an IP address (with `;transport=tcp`, TCP; else
/// UDP); `None` for a host name, which DNS must locate first (RFC 3263).
pub(crate) fn hop_peer(uri: &Uri) -> Option<Peer> {
    let (addr, transport) = ivr_sip::route::socket_of(uri)?;
    let transport = match transport.as_deref() {
        Some(t) if t.eq_ignore_ascii_case("tcp") => Transport::Tcp,
        _ => Transport::Udp,
    };
    Some(Peer { transport, addr })
}

/// A new outgoing leg to `target` through `peer`, waiting for its RTP socket: a fresh local
/// tag and a placeholder INVITE (a Call-ID of its own, a branch no server transaction has)
/// until [`Dial::invite`] sends the real one. `None` if the placeholder has no key.
pub(crate) fn outgoing_leg(ctx: &mut Ctx, leg: LegHandle, target: Uri, peer: Peer) -> Option<Leg> {
    let local_tag = Tag::from(ctx.rng.token());
    let sip = ctx.config.sip_addr;
    let mut invite = Request::new(Method::Invite, target);
    invite.headers.push(
        HeaderName::Via,
        format!(
            "SIP/2.0/{} {sip};branch=z9hG4bK{}",
            peer.transport.via_token(),
            ctx.rng.token()
        ),
    );
    // Steered to this shard, so that the answers come back to it.
    let call_id = ctx.config.shard.new_call_id(&mut ctx.rng, sip.ip());
    invite.headers.push(HeaderName::CallId, call_id);
    let key = ServerKey::of(&invite)?;
    Some(Leg::outgoing(leg, peer, key, invite, local_tag))
}

/// Our SDP session for an outgoing leg whose RTP socket is open at `local` (the engine's
/// media address, that port; a fresh session id, RFC 4566 §5.2).
pub(crate) fn open_session(ctx: &mut Ctx, l: &mut Leg, local: SocketAddr) -> LocalSession {
    let session = LocalSession {
        id: ctx.rng.next_u64() >> 2,
        version: 1,
        addr: SocketAddr::new(ctx.config.media_ip, local.port()),
    };
    l.local_sdp = Some(session);
    session
}

/// What one outgoing INVITE says beyond what every one says: where it goes, who it is from,
/// how it is routed and authenticated, and the headers of its own.
#[derive(Debug)]
pub(crate) struct Dial {
    /// The Request-URI and To.
    pub target: Uri,
    /// The From user part: the caller's number ([`crate::outgoing::uri_user`]), else `ivr`.
    pub from_user: Option<String>,
    /// Whether our Contact is a SIPS URI (RFC 5630 §4.1).
    pub sips: bool,
    /// A first hop other than the target (loose routing: a Route header, RFC 3261 §16.12).
    pub proxy: Option<String>,
    /// For a digest challenge (RFC 3261 §22.2).
    pub credentials: Option<(String, String)>,
    /// Headers after User-Agent (`X-IVR-Queue`...).
    pub extra_headers: Vec<(HeaderName, String)>,
    /// A Call-ID of its own (a failover's fresh INVITE), instead of the leg's.
    pub fresh_call_id: bool,
}

impl Dial {
    /// The INVITE with our offer for the leg's session ([`open_session`]), as an
    /// [`OutgoingCall`] that has queued it; the leg's `invite` becomes it. `None` if the
    /// leg has no session yet or a header would not parse (a broken `proxy:`).
    pub(crate) fn invite(self, ctx: &mut Ctx, now: Instant, l: &mut Leg) -> Option<OutgoingCall> {
        let session = l.local_sdp?;
        let sip = ctx.config.sip_addr;
        let transport = l.peer.transport;
        let contact = ctx.contact(transport, self.sips);
        let contact = contact.trim_start_matches('<').trim_end_matches('>');
        let from = format!("<sip:{}@{sip}>", self.from_user.as_deref().unwrap_or("ivr"));
        let route = self
            .proxy
            .as_deref()
            .map(|p| NameAddr::parse(&format!("<{p}>"), HeaderName::Route))
            .transpose();
        let (Ok(contact), Ok(from), Ok(route)) = (
            Uri::parse(contact),
            NameAddr::parse(&from, HeaderName::From),
            route,
        ) else {
            return None;
        };
        let mut extra_headers = vec![(HeaderName::UserAgent, ctx.config.user_agent.clone())];
        extra_headers.extend(self.extra_headers);
        let config = OutgoingConfig {
            to: NameAddr {
                display: None,
                uri: self.target.clone(),
                params: Params::default(),
            },
            request_uri: self.target,
            from,
            local_tag: l.local_tag.clone(),
            call_id: if self.fresh_call_id {
                CallId::from(ctx.config.shard.new_call_id(&mut ctx.rng, sip.ip()))
            } else {
                CallId::from(l.invite.call_id().unwrap_or_default())
            },
            cseq: ctx.rng.next_u32() & 0x7FFF,
            contact,
            transport,
            sent_by: sip.to_string(),
            route: route.into_iter().collect(),
            sdp_offer: Some(sdp::build_offer(&session, Direction::SendRecv)),
            credentials: self
                .credentials
                .map(|(username, password)| Credentials { username, password }),
            extra_headers,
            timers: ctx.config.timers,
            session_timer: Some(ctx.config.session_timer),
        };
        let rng = Box::new(Rng::new(ctx.rng.next_u64()));
        let uac = OutgoingCall::new(now, config, rng);
        l.invite = uac.invite().clone();
        Some(uac)
    }
}

/// The SDP answer of a 2xx (or a 183's early media) against our offer: the negotiated
/// stream and where to send it (RFC 3264 §6).
pub(crate) fn negotiate_answer(body: &[u8]) -> Result<(Negotiated, SocketAddr), SdpError> {
    sdp::parse_remote(body).and_then(|r| sdp::accept_answer(&r).map(|n| (n, r.addr)))
}

/// An outgoing leg whose answer is taken: a confirmed dialog ([`LegPhase::Active`]) with
/// its own session timer from its 2xx (RFC 4028; `None`: none negotiated), found by its
/// dialog from now on. Returns its Call-ID.
pub(crate) fn confirm_leg(
    by_dialog: &mut HashMap<(CallId, Tag), LegHandle>,
    now: Instant,
    l: &mut Leg,
    extensions: Option<AnswerExtensions>,
) -> CallId {
    l.phase = LegPhase::Active;
    if let Some(e) = extensions {
        l.uac_answered(now, e);
    }
    let call_id = CallId::from(l.invite.call_id().unwrap_or_default());
    by_dialog.insert((call_id.clone(), l.local_tag.clone()), l.handle);
    call_id
}

/// The calling leg's side of a bridge: what played to it stops, and it sends what the
/// other leg relays (a stream that relays already keeps its queue).
pub(crate) fn bridge_caller(call: &mut Call) {
    let caller = call.caller_leg();
    caller.stop();
    if let Some(m) = caller.media.as_mut()
        && m.feed_mut().is_none()
    {
        m.set_relay(true);
    }
}

impl Engine {
    /// A fresh stream for an outgoing leg's answer: it relays (its keys are not listened
    /// to), and like a caller's leg it may latch onto the host our INVITE went to, since a
    /// peer behind NAT sends from there.
    /// `None` if the leg is gone.
    pub(crate) fn relay_media(
        &mut self,
        now: Instant,
        n: Negotiated,
        addr: SocketAddr,
        leg: LegHandle,
    ) -> Option<MediaSession> {
        let peer = self.leg_mut(leg)?.peer.addr.ip();
        let mut media = self.new_media(now, n, addr);
        media.set_relay(true);
        media.allow_latch_from(peer);
        Some(media)
    }

    /// Let go of an outgoing attempt: CANCEL while it rings, BYE on its dialog if `bye`
    /// (an answer nobody takes), send what that queues; it then finishes its transactions
    /// detached from any call.
    pub(crate) fn let_go(
        &mut self,
        now: Instant,
        mut uac: OutgoingCall,
        located: Option<Located>,
        bye: bool,
    ) {
        uac.cancel(now, CancelReason::Abandoned);
        if bye {
            uac.bye(now);
        }
        while let Some(tx) = uac.poll_transmit() {
            send_uac(&mut self.ctx, None, tx, located.as_ref());
        }
        self.detach_uac(uac, located);
    }
}
