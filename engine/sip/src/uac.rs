//! Placing a call: the UAC side of an INVITE, from the first request to an answered dialog
//! or a failure the menus can act on (RFC 3261 §13.2, §9.1, §12.1.2, §22; RFC 6026).
//!
//! [`OutgoingCall`] sits on top of the INVITE client transaction ([`ClientInvite`]) and owns
//! every transaction the attempt needs: the INVITE (and the re-sent INVITEs that answer digest
//! challenges), its CANCEL, and the BYEs that release answers we do not keep. It speaks the
//! crate's sans-IO vocabulary: `handle_response`, `handle_timeout`, commands
//! ([`OutgoingCall::cancel`], [`OutgoingCall::bye`]), and `poll_transmit` / `poll_event` /
//! `poll_timeout`.
//!
//! What it does, by RFC section:
//! - §8.1.2: with a pre-loaded route set (an outbound proxy), the INVITE carries `Route`
//!   headers and goes to the first route; loose and strict routers as in [`crate::route`].
//! - §13.2.2.1, §12.1.2: a 1xx with a To tag creates an early dialog (reported with its SDP:
//!   early media); a 2xx creates the confirmed dialog.
//! - §13.2.2.4: the ACK for a 2xx is a new request built by us, outside the transaction, and
//!   sent again for every retransmission of that 2xx; when the INVITE forked and several 2xx
//!   arrive, each is ACKed, the first is kept and the others get a BYE (up to 16 forks: a
//!   callee inventing a new To tag each time is not followed further).
//! - §9.1: CANCEL only after a provisional response; asked earlier, it goes out when the first
//!   1xx arrives. A 2xx that crosses the CANCEL is ACKed and released with BYE. If no final
//!   response follows the CANCEL within 64·T1, the attempt is given up.
//! - §22.2, §22.3: a 401 or 407 is answered once per challenge with the configured
//!   credentials (a new INVITE: same Call-ID and From tag, CSeq + 1, new branch); the same
//!   realm challenging again without `stale=true` is a failure, not a loop.
//! - Final failures map to a [`FailureKind`] (busy, no answer, rejected, failed) for a menu's
//!   `on_failure`.
//! - RFC 3262 (the UAC side of reliable provisionals, `Supported: 100rel` on every INVITE):
//!   a 1xx with `Require: 100rel` and `RSeq` is PRACKed in its early dialog (`RAck`, §7.2),
//!   with the RSeq state kept per early dialog (§4): the first one and each one higher by
//!   one are acted on; a retransmission of the last one gets the same PRACK again (a
//!   retransmission of it, same branch) and is not reported twice; any other RSeq is
//!   dropped unacknowledged. An SDP in a reliable 1xx is the answer to our offer (§5): a
//!   2xx of that dialog without a body is answered by it.
//! - RFC 4028 §7.1-§7.4 (with [`OutgoingConfig::session_timer`]): the INVITE carries
//!   `Supported: timer`, `Session-Expires` (without `refresher`: the callee chooses) and
//!   `Min-SE`; a 422 whose Min-SE is larger than the interval asked is answered with a new
//!   INVITE asking for that much (§7.3; a few rounds, each larger); the kept 2xx's
//!   `Session-Expires` is read into [`AnswerExtensions`] for the owner to run the timer.
//!
//! How long it may ring is the owner's decision: it calls [`OutgoingCall::cancel`] with
//! [`CancelReason::RingTimeout`]. Timer B only bounds the wait for a first response.
//!
//! Routing: the owner hands every response whose Call-ID is [`OutgoingCall::call_id`] to
//! [`OutgoingCall::handle_response`] (it ignores those that match none of its transactions).
//! Requests from the callee (its BYE, re-INVITE) belong to the dialog and are the owner's.
//!
//! An owner's loop, in short:
//!
//! ```
//! use ivr_sip::uac::{CancelReason, OutgoingCall, UacEvent};
//! use std::time::Instant;
//!
//! fn drive(call: &mut OutgoingCall, now: Instant, ring_deadline: Instant) {
//!     if now >= ring_deadline {
//!         call.cancel(now, CancelReason::RingTimeout); // a no-op once answered or failed
//!     }
//!     call.handle_timeout(now);
//!     while let Some(t) = call.poll_transmit() {
//!         // Resolve t.next_hop (ivr_sip::route::socket_of for IP literals) and send
//!         // t.message.to_bytes() over t.transport.
//!         let _ = (t.next_hop, t.message);
//!     }
//!     while let Some(event) = call.poll_event() {
//!         match event {
//!             UacEvent::Progress { sdp: Some(_early_media), .. } => { /* play it to the caller */ }
//!             UacEvent::Answered { dialog, sdp } => { /* bridge; keep `dialog` */ let _ = (dialog, sdp); }
//!             UacEvent::Failed(f) => { /* the menu's on_failure, by f.kind */ let _ = f; }
//!             _ => {}
//!         }
//!     }
//!     // Sleep until call.poll_timeout() or the next datagram (handle_response).
//! }
//! ```

use crate::Transport;
use crate::dialog::Dialog;
use crate::digest::{Challenge, ClientAuth, Credentials, RandomSource};
use crate::header::{HeaderName, NameAddr};
use crate::ids::{CallId, Tag};
use crate::message::{CoreHeaders, Message, Method, Request, Response, StatusCode};
use crate::reliable::RAck;
use crate::route::RouteSet;
use crate::session_timer::{self, Agreement, Policy, Refresher};
use crate::transaction::layer::MAGIC_COOKIE;
use crate::transaction::{ClientEvent, ClientInvite, ClientNonInvite, TimerConfig};
use crate::uri::Uri;
use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

/// What the owner configures for one outgoing call.
#[derive(Debug, Clone)]
pub struct OutgoingConfig {
    /// The Request-URI: whom we call.
    pub request_uri: Uri,
    /// The To header (no tag).
    pub to: NameAddr,
    /// The From header; its tag is replaced by `local_tag`.
    pub from: NameAddr,
    /// Our From tag (random, RFC 3261 §19.3).
    pub local_tag: Tag,
    /// The Call-ID (random, §8.1.1.4).
    pub call_id: CallId,
    /// The first CSeq number (§8.1.1.5: any value below 2**31).
    pub cseq: u32,
    /// Our Contact URI (where the callee sends in-dialog requests).
    pub contact: Uri,
    /// The transport the call uses, for Via and retransmission timers.
    pub transport: Transport,
    /// Our Via sent-by, `host:port` (§18.1.1).
    pub sent_by: String,
    /// A pre-loaded route set, first hop first (§8.1.2): an outbound proxy or a trunk's
    /// proxies. Empty: the request goes to the Request-URI.
    pub route: Vec<NameAddr>,
    /// The SDP offer, sent as `application/sdp`; `None` sends an offerless INVITE.
    pub sdp_offer: Option<Vec<u8>>,
    /// Credentials for trunks that challenge (§22.2, §22.3); `None`: a 401/407 is a failure.
    pub credentials: Option<Credentials>,
    /// Extra header lines for the INVITE (User-Agent, P-Asserted-Identity...).
    pub extra_headers: Vec<(HeaderName, String)>,
    /// The RFC 3261 timer values.
    pub timers: TimerConfig,
    /// Session timers to offer (RFC 4028 §7.1): the interval asked for and our Min-SE.
    /// `None`: no `Session-Expires`, and `timer` is not in Supported.
    pub session_timer: Option<Policy>,
}

/// What the kept 2xx said about the extensions, for the owner's dialog (RFC 4028 §7.2,
/// RFC 3311).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AnswerExtensions {
    /// The session timer agreed (`refresher` in the terms of the INVITE transaction: use
    /// [`Agreement::who`] with `we_are_uac = true`); `None`: the session does not expire
    /// (no timer offered, or the 2xx had no `Session-Expires`, §7.2).
    pub session: Option<Agreement>,
    /// The Min-SE our INVITE carried last (raised by a 422, §7.3): the floor of later
    /// refreshes.
    pub min_se: u32,
    /// The 2xx's Allow lists UPDATE: refresh with it (RFC 4028 §7.4, RFC 3311).
    pub allows_update: bool,
}

/// A message to send and the URI whose address it goes to (§8.1.2, §12.2.1.1: the first
/// route, or the target). Resolving a host name (RFC 3263) is the driver's job;
/// [`crate::route::socket_of`] does IP literals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where it goes.
    pub next_hop: Uri,
    /// UDP or TCP.
    pub transport: Transport,
    /// The message.
    pub message: Message,
}

/// Why the owner cancels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CancelReason {
    /// The caller hung up or the owner no longer needs the leg.
    Abandoned,
    /// It rang longer than the owner allows.
    RingTimeout,
}

/// The broad outcome a menu's `on_failure` distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// 486 Busy Here, 600 Busy Everywhere.
    Busy,
    /// 408, 480, 487, no response at all (Timer B), a ring timeout or a cancelled attempt.
    NoAnswer,
    /// Other 4xx and 6xx: the destination or a proxy refused (403, 404, 603...).
    Rejected,
    /// 3xx (redirects are not followed), 5xx, authentication that did not succeed.
    Failed,
}

/// What ended the attempt, precisely (for logs and call records).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureCause {
    /// A final non-2xx response.
    Status(StatusCode),
    /// No response at all within Timer B (RFC 3261 §17.1.1.2), or no final response within
    /// 64·T1 after a CANCEL (§9.1).
    Timeout,
    /// The owner cancelled.
    Cancelled(CancelReason),
    /// A 401/407 we could not answer: no credentials, no supported challenge, or the same
    /// realm challenged our answer again (wrong credentials).
    Authentication(StatusCode),
}

/// A failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Failure {
    /// The class, for `on_failure`.
    pub kind: FailureKind,
    /// The detail.
    pub cause: FailureCause,
}

impl FailureKind {
    /// The class of a final non-2xx status.
    pub fn of_status(status: StatusCode) -> FailureKind {
        match status.code() {
            486 | 600 => FailureKind::Busy,
            408 | 480 | 487 => FailureKind::NoAnswer,
            400..=499 | 600..=699 => FailureKind::Rejected,
            _ => FailureKind::Failed,
        }
    }
}

impl Failure {
    /// The failure for a cause.
    pub fn new(cause: FailureCause) -> Failure {
        let kind = match cause {
            FailureCause::Status(s) => FailureKind::of_status(s),
            FailureCause::Timeout | FailureCause::Cancelled(_) => FailureKind::NoAnswer,
            FailureCause::Authentication(_) => FailureKind::Failed,
        };
        Failure { kind, cause }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({:?})", self.kind, self.cause)
    }
}

/// What the call tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UacEvent {
    /// A provisional response (§13.2.2.1). With a To tag it created or updated an early
    /// dialog (`remote_tag`); a body is early SDP (183 Session Progress: early media).
    Progress {
        /// 100..=199.
        status: StatusCode,
        /// The early dialog's remote tag, if the response had one.
        remote_tag: Option<Tag>,
        /// The SDP answer carried, if any.
        sdp: Option<Vec<u8>>,
    },
    /// A challenge is being answered: a new INVITE went out (§22.2, §22.3).
    Authenticating {
        /// 401 or 407.
        status: StatusCode,
        /// The realm answered.
        realm: String,
    },
    /// The first 2xx: the confirmed dialog (§12.1.2). Its ACK is already queued.
    Answered {
        /// The dialog; in-dialog requests from here on follow it.
        dialog: Box<Dialog>,
        /// The 2xx's body (the SDP answer, or the offer for an offerless INVITE).
        sdp: Vec<u8>,
    },
    /// Another 2xx (a fork, §13.2.2.4, or one that crossed our CANCEL): ACKed and released
    /// with BYE.
    Released {
        /// The remote tag of the released dialog.
        remote_tag: Tag,
    },
    /// The attempt ended without an answer we keep. Reported once.
    Failed(Failure),
}

/// Where the attempt is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The INVITE is pending.
    Inviting,
    /// A 2xx was kept.
    Answered,
    /// Ended without an answer ([`UacEvent::Failed`] reported).
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cancel {
    NotAsked,
    /// Asked before any provisional response: sent on the first one (§9.1).
    Pending(CancelReason),
    /// Sent at this time.
    Sent(CancelReason, Instant),
}

#[derive(Debug)]
enum TxKind {
    Invite(ClientInvite),
    Cancel(ClientNonInvite),
    Bye(ClientNonInvite),
    Prack(ClientNonInvite),
}

#[derive(Debug)]
struct Tx {
    branch: String,
    next_hop: Uri,
    kind: TxKind,
}

impl Tx {
    fn method(&self) -> Method {
        match self.kind {
            TxKind::Invite(_) => Method::Invite,
            TxKind::Cancel(_) => Method::Cancel,
            TxKind::Bye(_) => Method::Bye,
            TxKind::Prack(_) => Method::Prack,
        }
    }

    fn is_terminated(&self) -> bool {
        match &self.kind {
            TxKind::Invite(t) => t.is_terminated(),
            TxKind::Cancel(t) | TxKind::Bye(t) | TxKind::Prack(t) => t.is_terminated(),
        }
    }
}

/// A challenge answered: which header, the realm, and the client state (nonce, nc).
#[derive(Debug)]
struct Answered {
    proxy: bool,
    auth: ClientAuth,
}

/// An answer (2xx) we acknowledged, with its ACK kept for the 2xx's retransmissions.
#[derive(Debug)]
struct Acked {
    remote_tag: Tag,
    ack: Request,
    next_hop: Uri,
}

/// Most challenges answered per attempt: a `stale=true` loop ends here too.
const MAX_AUTH_ROUNDS: usize = 4;

/// Most 422s answered per attempt (RFC 4028 §7.3: one per proxy that raises Min-SE; each
/// must raise it, so a loop cannot form, but a chain of them is cut here).
const MAX_422_ROUNDS: usize = 3;

/// Most early dialogs (forks) kept per attempt: each remote tag in a 1xx makes one, and
/// tags are the far end's to choose.
const MAX_EARLY: usize = 16;

/// Most answered forks (2xx remote tags) followed per attempt: each is ACKed, all but the
/// first are released with a BYE transaction, and tags are the far end's to choose. Further
/// 2xx are not ACKed (the far end's Timer H ends them, §13.3.1.4).
const MAX_ANSWERED: usize = 16;

/// Most PRACK transactions alive at once: each in-order reliable provisional makes one
/// (alive up to 64·T1), and the far end chooses how many it sends.
const MAX_PRACKS: usize = 16;

/// The reliable provisionals of one early dialog (RFC 3262 §4).
#[derive(Debug)]
struct Reliable {
    remote_tag: Tag,
    /// The RSeq and CSeq of the last in-order reliable provisional.
    last: (u32, u32),
    /// Its PRACK and where it went, sent again for its retransmissions.
    prack: (Request, Uri),
    /// The SDP of a reliable provisional: the answer to our offer (§5).
    answer: Option<Vec<u8>>,
}

/// One outgoing INVITE attempt (RFC 3261 §13.2). See the module documentation.
pub struct OutgoingCall {
    config: OutgoingConfig,
    rng: Box<dyn RandomSource + Send>,
    phase: Phase,
    /// The INVITE in force (the last one sent).
    invite: Request,
    invite_branch: String,
    invite_next_hop: Uri,
    provisional_seen: bool,
    cancel: Cancel,
    auths: Vec<Answered>,
    auth_rounds: usize,
    txs: Vec<Tx>,
    acked: Vec<Acked>,
    early: Vec<Dialog>,
    reliable: Vec<Reliable>,
    /// The Session-Expires and Min-SE of the INVITE in force (RFC 4028 §7.1).
    session_expires: Option<(u32, u32)>,
    rounds_422: usize,
    answer_ext: AnswerExtensions,
    dialog: Option<Dialog>,
    bye_sent: bool,
    transmits: VecDeque<Transmit>,
    events: VecDeque<UacEvent>,
}

impl fmt::Debug for OutgoingCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingCall")
            .field("call_id", &self.config.call_id)
            .field("phase", &self.phase)
            .field("cancel", &self.cancel)
            .field("txs", &self.txs.len())
            .finish_non_exhaustive()
    }
}

impl OutgoingCall {
    /// Start the call: the INVITE is built and queued (§8.1.1, §13.2.1). `rng` draws branches
    /// and digest cnonces.
    pub fn new(
        now: Instant,
        config: OutgoingConfig,
        mut rng: Box<dyn RandomSource + Send>,
    ) -> OutgoingCall {
        let branch = new_branch(rng.as_mut());
        let route_set = RouteSet::from(config.route.clone());
        let target = route_set.target(&config.request_uri);
        let mut invite = Request::new(Method::Invite, target.request_uri);
        invite.headers.push(HeaderName::Via, via(&config, &branch));
        invite.headers.push(HeaderName::MaxForwards, "70");
        for r in &target.routes {
            invite.headers.push(HeaderName::Route, r.as_str());
        }
        let mut from = config.from.clone();
        from.params.set("tag", Some(config.local_tag.to_string()));
        invite.headers.push(HeaderName::From, from.to_string());
        invite.headers.push(HeaderName::To, config.to.to_string());
        invite
            .headers
            .push(HeaderName::CallId, config.call_id.as_str());
        invite
            .headers
            .push(HeaderName::CSeq, format!("{} INVITE", config.cseq));
        invite
            .headers
            .push(HeaderName::Contact, format!("<{}>", config.contact));
        for (n, v) in &config.extra_headers {
            invite.headers.push(n.clone(), v.as_str());
        }
        // RFC 3262 §4 and RFC 4028 §7.1: what we support, and the session interval asked.
        let session_expires = config
            .session_timer
            .map(|p| (p.interval.max(p.min_se), p.min_se));
        match session_expires {
            Some((interval, min_se)) => {
                invite.headers.push(
                    HeaderName::Supported,
                    format!("{}, {}", session_timer::TAG, crate::reliable::TAG),
                );
                invite
                    .headers
                    .push(HeaderName::SessionExpires, interval.to_string());
                invite.headers.push(HeaderName::MinSe, min_se.to_string());
            }
            None => invite
                .headers
                .push(HeaderName::Supported, crate::reliable::TAG),
        }
        if let Some(sdp) = &config.sdp_offer {
            invite
                .headers
                .push(HeaderName::ContentType, "application/sdp");
            invite.body = sdp.clone();
        }
        let mut call = OutgoingCall {
            rng,
            phase: Phase::Inviting,
            invite_branch: String::new(),
            invite_next_hop: target.next_hop,
            invite: invite.clone(),
            provisional_seen: false,
            cancel: Cancel::NotAsked,
            auths: Vec::new(),
            auth_rounds: 0,
            txs: Vec::new(),
            acked: Vec::new(),
            early: Vec::new(),
            reliable: Vec::new(),
            session_expires,
            rounds_422: 0,
            answer_ext: AnswerExtensions::default(),
            dialog: None,
            bye_sent: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            config,
        };
        call.send_invite(now, invite, branch);
        call
    }

    fn send_invite(&mut self, now: Instant, invite: Request, branch: String) {
        let tx = ClientInvite::new(
            now,
            invite.clone(),
            self.config.transport.is_reliable(),
            self.config.timers,
        );
        self.invite = invite;
        self.invite_branch = branch.clone();
        self.provisional_seen = false;
        self.txs.push(Tx {
            branch,
            next_hop: self.invite_next_hop.clone(),
            kind: TxKind::Invite(tx),
        });
    }

    /// The Call-ID: responses carrying it belong here.
    pub fn call_id(&self) -> &CallId {
        &self.config.call_id
    }

    /// Our From tag.
    pub fn local_tag(&self) -> &Tag {
        &self.config.local_tag
    }

    /// Where the attempt is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The INVITE in force (the last one sent).
    pub fn invite(&self) -> &Request {
        &self.invite
    }

    /// The confirmed dialog, once answered.
    pub fn dialog(&self) -> Option<&Dialog> {
        self.dialog.as_ref()
    }

    /// The early dialogs, one per remote tag that sent a 1xx with a tag (§12.1.2).
    pub fn early_dialogs(&self) -> &[Dialog] {
        &self.early
    }

    /// What the kept 2xx said about session timers and UPDATE (default before an answer).
    pub fn answer_extensions(&self) -> AnswerExtensions {
        self.answer_ext
    }

    /// Whether every transaction has ended: the owner may drop the machine. After an answer
    /// this lasts 64·T1 (RFC 6026 Timer M), during which retransmitted 2xx are re-ACKed.
    pub fn is_finished(&self) -> bool {
        self.phase != Phase::Inviting && self.txs.iter().all(Tx::is_terminated)
    }

    /// Whether `response` belongs to one of this call's transactions (top Via branch and
    /// CSeq method, §17.1.3).
    pub fn matches(&self, response: &Response) -> bool {
        self.find(response).is_some()
    }

    fn find(&self, response: &Response) -> Option<usize> {
        let branch = response.top_via().ok()?.branch()?.to_string();
        let method = response.cseq().ok()?.method;
        self.txs
            .iter()
            .position(|t| t.branch == branch && t.method() == method)
    }

    /// A response arrived. Returns false if it matches none of this call's transactions
    /// (dropped, §17.1.3).
    pub fn handle_response(&mut self, now: Instant, response: Response) -> bool {
        let Some(i) = self.find(&response) else {
            return false;
        };
        match &mut self.txs[i].kind {
            TxKind::Invite(t) => t.handle_response(now, response),
            TxKind::Cancel(t) | TxKind::Bye(t) | TxKind::Prack(t) => {
                t.handle_response(now, response)
            }
        }
        self.drain_tx(now, i);
        self.collect();
        true
    }

    /// Fire the deadlines due at `now` (spurious calls are harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        for i in 0..self.txs.len() {
            match &mut self.txs[i].kind {
                TxKind::Invite(t) => t.handle_timeout(now),
                TxKind::Cancel(t) | TxKind::Bye(t) | TxKind::Prack(t) => t.handle_timeout(now),
            }
            self.drain_tx(now, i);
        }
        if let Cancel::Sent(reason, at) = self.cancel
            && self.phase == Phase::Inviting
            && now >= at + self.config.timers.timeout()
        {
            // §9.1: no final response 64·T1 after the CANCEL: consider the INVITE cancelled.
            let branch = self.invite_branch.clone();
            self.txs
                .retain(|t| !(t.branch == branch && t.method() == Method::Invite));
            self.fail(FailureCause::Cancelled(reason));
        }
        self.collect();
    }

    /// Give up the pending INVITE (§9.1): the caller hung up, or it rang too long. Before any
    /// provisional response the CANCEL waits for one. A no-op once answered or failed
    /// (after an answer, use [`OutgoingCall::bye`]).
    pub fn cancel(&mut self, now: Instant, reason: CancelReason) {
        if self.phase != Phase::Inviting || self.cancel != Cancel::NotAsked {
            return;
        }
        self.cancel = Cancel::Pending(reason);
        if self.provisional_seen {
            self.send_cancel(now);
        }
    }

    /// End an answered call with BYE on the kept dialog (§15.1.1). Returns false if there is
    /// no answered call to end, or its BYE was already sent. The owner may instead build the
    /// BYE from [`Self::dialog`] itself.
    pub fn bye(&mut self, now: Instant) -> bool {
        if self.phase != Phase::Answered || self.bye_sent {
            return false;
        }
        self.bye_sent = true;
        let Some(mut d) = self.dialog.take() else {
            return false;
        };
        self.send_bye(now, &mut d);
        self.dialog = Some(d);
        true
    }

    /// The next message to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if let Some(t) = self.transmits.pop_front() {
            return Some(t);
        }
        let transport = self.config.transport;
        self.txs.iter_mut().find_map(|t| {
            let m = match &mut t.kind {
                TxKind::Invite(x) => x.poll_transmit(),
                TxKind::Cancel(x) | TxKind::Bye(x) | TxKind::Prack(x) => x.poll_transmit(),
            }?;
            Some(Transmit {
                next_hop: t.next_hop.clone(),
                transport,
                message: m,
            })
        })
    }

    /// The next event for the owner.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<UacEvent> {
        self.events.pop_front()
    }

    /// The next deadline.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let txs = self.txs.iter().filter_map(|t| match &t.kind {
            TxKind::Invite(x) => x.poll_timeout(),
            TxKind::Cancel(x) | TxKind::Bye(x) | TxKind::Prack(x) => x.poll_timeout(),
        });
        let cancel = match self.cancel {
            Cancel::Sent(_, at) if self.phase == Phase::Inviting => {
                Some(at + self.config.timers.timeout())
            }
            _ => None,
        };
        txs.chain(cancel).min()
    }

    /// Drop ended transactions whose transmits were drained (their messages are queued in
    /// the machines until polled, so only terminated ones with nothing left go).
    fn collect(&mut self) {
        // Keep terminated transactions until their last message is polled: a ClientInvite
        // that terminates on an error response still has its ACK queued.
        let mut pending = VecDeque::new();
        let transport = self.config.transport;
        for t in self.txs.iter_mut().filter(|t| t.is_terminated()) {
            loop {
                let m = match &mut t.kind {
                    TxKind::Invite(x) => x.poll_transmit(),
                    TxKind::Cancel(x) | TxKind::Bye(x) | TxKind::Prack(x) => x.poll_transmit(),
                };
                let Some(message) = m else { break };
                pending.push_back(Transmit {
                    next_hop: t.next_hop.clone(),
                    transport,
                    message,
                });
            }
        }
        self.transmits.extend(pending);
        self.txs.retain(|t| !t.is_terminated());
        // The INVITE transaction ended without a final answer we acted on (Timer M after a
        // 2xx without To tag, which creates no dialog, §12.1.2): the attempt is over.
        let invite_alive = self
            .txs
            .iter()
            .any(|t| t.branch == self.invite_branch && t.method() == Method::Invite);
        if self.phase == Phase::Inviting && !invite_alive {
            let cause = match self.cancel {
                Cancel::NotAsked => FailureCause::Timeout,
                Cancel::Pending(r) | Cancel::Sent(r, _) => FailureCause::Cancelled(r),
            };
            self.fail(cause);
        }
    }

    fn drain_tx(&mut self, now: Instant, i: usize) {
        loop {
            let ev = match &mut self.txs[i].kind {
                TxKind::Invite(t) => t.poll_event(),
                TxKind::Cancel(t) | TxKind::Bye(t) | TxKind::Prack(t) => t.poll_event(),
            };
            let Some(ev) = ev else { break };
            // Only the INVITE in force drives the call; older ones (answered challenges)
            // absorb their retransmissions themselves; CANCEL and BYE outcomes change nothing.
            let current = matches!(self.txs[i].kind, TxKind::Invite(_))
                && self.txs[i].branch == self.invite_branch;
            if !current {
                continue;
            }
            match ev {
                ClientEvent::Response(r) => self.on_invite_response(now, r),
                ClientEvent::Timeout => {
                    if self.phase == Phase::Inviting {
                        let cause = match self.cancel {
                            Cancel::NotAsked => FailureCause::Timeout,
                            Cancel::Pending(r) | Cancel::Sent(r, _) => FailureCause::Cancelled(r),
                        };
                        self.fail(cause);
                    }
                }
            }
        }
    }

    fn fail(&mut self, cause: FailureCause) {
        if self.phase == Phase::Inviting {
            self.phase = Phase::Failed;
            self.events.push_back(UacEvent::Failed(Failure::new(cause)));
        }
    }

    fn on_invite_response(&mut self, now: Instant, r: Response) {
        let status = r.status;
        if status.is_provisional() {
            self.on_provisional(now, r);
        } else if status.is_success() {
            self.on_2xx(now, r);
        } else if self.phase == Phase::Inviting {
            if matches!(status.code(), 401 | 407) && self.cancel == Cancel::NotAsked {
                if let Err(cause) = self.answer_challenge(now, &r) {
                    self.fail(cause);
                }
                return;
            }
            if status.code() == 422 && self.cancel == Cancel::NotAsked && self.retry_422(now, &r) {
                return;
            }
            // Once the owner cancelled, whatever final answer comes (487 normally) is the
            // end it asked for.
            let cause = match self.cancel {
                Cancel::Sent(reason, _) | Cancel::Pending(reason) => {
                    FailureCause::Cancelled(reason)
                }
                Cancel::NotAsked => FailureCause::Status(status),
            };
            self.fail(cause);
        }
    }

    fn on_provisional(&mut self, now: Instant, r: Response) {
        if self.phase != Phase::Inviting {
            return;
        }
        self.provisional_seen = true;
        if matches!(self.cancel, Cancel::Pending(_)) {
            self.send_cancel(now);
        }
        let remote_tag = r.party_to().ok().and_then(|t| t.tag().map(Tag::from));
        // §12.1.2: a 101-199 with a To tag creates an early dialog (100 never does, §8.2.6.2).
        if let Some(tag) = &remote_tag
            && r.status.code() > 100
            && let Ok(d) = Dialog::from_response(&self.invite, &r)
        {
            let room = self.early.len() < MAX_EARLY;
            match self.early.iter_mut().find(|e| e.id.remote_tag == *tag) {
                // §12.2.1.2: the remote target follows the latest Contact; a new INVITE
                // (after a challenge or a 422) numbers on from its own CSeq.
                Some(e) => {
                    e.remote_target = d.remote_target;
                    e.local_seq = e.local_seq.max(d.local_seq);
                }
                None if room => self.early.push(d),
                None => {}
            }
        }
        // RFC 3262 §4: a reliable one is PRACKed, and acted on only when in order.
        if let Some(tag) = &remote_tag
            && r.status.code() > 100
            && crate::reliable::required(&r.headers)
            && let Some(rseq) = r
                .headers
                .get(&HeaderName::RSeq)
                .and_then(|v| v.trim().parse::<u32>().ok())
            && !self.on_reliable(now, tag, rseq, &r)
        {
            return;
        }
        let sdp = (!r.body.is_empty()).then_some(r.body);
        self.events.push_back(UacEvent::Progress {
            status: r.status,
            remote_tag,
            sdp,
        });
    }

    /// A reliable provisional with `rseq` from the early dialog `tag` (RFC 3262 §4): PRACK
    /// it and return true if it is new and in order; send its PRACK again and return false
    /// if it is a retransmission of the last one; return false (no PRACK) otherwise.
    fn on_reliable(&mut self, now: Instant, tag: &Tag, rseq: u32, r: &Response) -> bool {
        let Some(cseq) = r.cseq().ok().map(|c| c.seq) else {
            return false;
        };
        let known = self.reliable.iter().position(|x| x.remote_tag == *tag);
        if let Some(i) = known {
            let (last, last_cseq) = self.reliable[i].last;
            if (rseq, cseq) == (last, last_cseq) {
                // A retransmission: our PRACK (or its 200) was lost, or crossed it.
                let (prack, next_hop) = self.reliable[i].prack.clone();
                self.transmits.push_back(Transmit {
                    next_hop,
                    transport: self.config.transport,
                    message: Message::Request(prack),
                });
                return false;
            }
            // A new INVITE (after a challenge or a 422) starts its own RSeq space (§3: per
            // transaction); only the INVITE in force reaches here.
            if cseq == last_cseq && rseq != last.wrapping_add(1) {
                return false; // Out of order: not acknowledged.
            }
        }
        let live = self
            .txs
            .iter()
            .filter(|t| t.method() == Method::Prack)
            .count();
        if live >= MAX_PRACKS {
            return false; // A flood of provisionals: acted on when one ends.
        }
        let Some(dialog) = self.early.iter_mut().find(|e| e.id.remote_tag == *tag) else {
            return false; // No Contact, or too many forks: no dialog to PRACK in.
        };
        let branch = new_branch(self.rng.as_mut());
        let next_hop = dialog.target().next_hop;
        let mut prack = dialog.request(Method::Prack, via(&self.config, &branch));
        let rack = RAck {
            rseq,
            cseq,
            method: Method::Invite,
        };
        prack.headers.push(
            HeaderName::RAck,
            format!("{} {} {}", rack.rseq, rack.cseq, rack.method),
        );
        let tx = ClientNonInvite::new(
            now,
            prack.clone(),
            self.config.transport.is_reliable(),
            self.config.timers,
        );
        self.txs.push(Tx {
            branch,
            next_hop: next_hop.clone(),
            kind: TxKind::Prack(tx),
        });
        let answer = (!r.body.is_empty()).then(|| r.body.clone());
        match known {
            Some(i) => {
                let x = &mut self.reliable[i];
                if x.last.1 != cseq {
                    x.answer = None; // A new INVITE: a new offer, a new answer.
                }
                x.last = (rseq, cseq);
                x.prack = (prack, next_hop);
                // §5: only the first SDP is the answer; later ones in this dialog are not
                // offers we take (UPDATE would be).
                x.answer = x.answer.take().or(answer);
            }
            None => self.reliable.push(Reliable {
                remote_tag: tag.clone(),
                last: (rseq, cseq),
                prack: (prack, next_hop),
                answer,
            }),
        }
        true
    }

    fn on_2xx(&mut self, now: Instant, r: Response) {
        let Some(tag) = r.party_to().ok().and_then(|t| t.tag().map(Tag::from)) else {
            return; // A 2xx without To tag creates no dialog (§12.1.2) and cannot be ACKed.
        };
        if let Some(a) = self.acked.iter().find(|a| a.remote_tag == tag) {
            // §13.2.2.4: a retransmission of a 2xx we acknowledged: the same ACK again.
            self.transmits.push_back(Transmit {
                next_hop: a.next_hop.clone(),
                transport: self.config.transport,
                message: Message::Request(a.ack.clone()),
            });
            return;
        }
        if self.acked.len() >= MAX_ANSWERED {
            return; // A hostile fork storm: no ACK, no BYE, nothing kept.
        }
        let Ok(mut dialog) = Dialog::from_response(&self.invite, &r) else {
            return; // No Contact or a malformed route: nowhere to send the ACK.
        };
        // The early dialog becomes this one (§12.1.2): its PRACKs used CSeq numbers.
        if let Some(e) = self.early.iter().find(|e| e.id.remote_tag == tag) {
            dialog.local_seq = dialog.local_seq.max(e.local_seq);
        }
        // RFC 3262 §5: the answer came in a reliable provisional; the 2xx need not repeat it.
        let early_answer = self
            .reliable
            .iter_mut()
            .find(|x| x.remote_tag == tag)
            .and_then(|x| x.answer.take());
        let body = match (r.body.is_empty(), early_answer) {
            (true, Some(a)) => a,
            _ => r.body.clone(),
        };
        let target = dialog.target();
        let ack = self.ack_for(&dialog);
        self.transmits.push_back(Transmit {
            next_hop: target.next_hop.clone(),
            transport: self.config.transport,
            message: Message::Request(ack.clone()),
        });
        self.acked.push(Acked {
            remote_tag: tag.clone(),
            ack,
            next_hop: target.next_hop,
        });
        self.early.retain(|e| e.id.remote_tag != tag);
        let keep = self.phase == Phase::Inviting && self.cancel == Cancel::NotAsked;
        if keep {
            self.phase = Phase::Answered;
            self.answer_ext = self.read_answer(&r);
            self.dialog = Some(dialog.clone());
            self.events.push_back(UacEvent::Answered {
                dialog: Box::new(dialog),
                sdp: body,
            });
            return;
        }
        // §13.2.2.4 (fork) and §9.1 (crossed the CANCEL): ACK, then BYE.
        self.send_bye(now, &mut dialog);
        self.events
            .push_back(UacEvent::Released { remote_tag: tag });
        if let Cancel::Pending(reason) | Cancel::Sent(reason, _) = self.cancel {
            self.fail(FailureCause::Cancelled(reason));
        }
    }

    /// RFC 4028 §7.2 on the kept 2xx: its `Session-Expires` is the session's timer (never
    /// under the Min-SE we sent, §9 forbids it, and obeying would make us refresh without
    /// pause); without one the session does not expire.
    fn read_answer(&self, r: &Response) -> AnswerExtensions {
        let min_se = self.session_expires.map_or(0, |(_, m)| m);
        let session = match (
            self.session_expires,
            session_timer::session_expires(&r.headers),
        ) {
            (Some(_), Ok(Some(se))) => Some(Agreement {
                interval: se.delta.max(min_se),
                // §9: the UAS always names one; if not, we refresh (it does no harm).
                refresher: se.refresher.unwrap_or(Refresher::Uac),
                peer_supports: session_timer::supports_timer(&r.headers),
            }),
            _ => None,
        };
        let allows_update = r
            .headers
            .values(&HeaderName::Allow)
            .any(|m| m.trim().eq_ignore_ascii_case(Method::Update.as_str()));
        AnswerExtensions {
            session,
            min_se,
            allows_update,
        }
    }

    /// A 422 (RFC 4028 §7.3): a new INVITE asking for the response's Min-SE, if it is
    /// larger than what we asked. Returns false when that does not apply (the 422 ends the
    /// attempt).
    fn retry_422(&mut self, now: Instant, r: &Response) -> bool {
        let Some((asked, _)) = self.session_expires else {
            return false;
        };
        let Ok(Some(min)) = session_timer::min_se(&r.headers) else {
            return false;
        };
        if min <= asked || self.rounds_422 >= MAX_422_ROUNDS {
            return false;
        }
        self.rounds_422 += 1;
        self.session_expires = Some((min, min));
        let mut invite = self.invite.clone();
        invite
            .headers
            .set(HeaderName::SessionExpires, min.to_string());
        invite.headers.set(HeaderName::MinSe, min.to_string());
        self.resend_invite(now, invite);
        true
    }

    /// The ACK for a 2xx (§13.2.2.4): built like an in-dialog request with the INVITE's CSeq
    /// number, a new branch, and the INVITE's credentials (§22.1).
    fn ack_for(&mut self, dialog: &Dialog) -> Request {
        let target = dialog.target();
        let branch = new_branch(self.rng.as_mut());
        let mut ack = Request::new(Method::Ack, target.request_uri);
        ack.headers
            .push(HeaderName::Via, via(&self.config, &branch));
        ack.headers.push(HeaderName::MaxForwards, "70");
        for r in target.routes {
            ack.headers.push(HeaderName::Route, r);
        }
        ack.headers.push(HeaderName::From, dialog.local.to_string());
        ack.headers.push(HeaderName::To, dialog.remote.to_string());
        ack.headers
            .push(HeaderName::CallId, self.config.call_id.as_str());
        let seq = self
            .invite
            .cseq()
            .map(|c| c.seq)
            .unwrap_or(self.config.cseq);
        ack.headers.push(HeaderName::CSeq, format!("{seq} ACK"));
        for name in [authorization(false), authorization(true)] {
            ack.headers.copy_from(&self.invite.headers, &name);
        }
        ack
    }

    fn send_bye(&mut self, now: Instant, dialog: &mut Dialog) {
        let branch = new_branch(self.rng.as_mut());
        let next_hop = dialog.target().next_hop;
        let bye = dialog.request(Method::Bye, via(&self.config, &branch));
        let tx = ClientNonInvite::new(
            now,
            bye,
            self.config.transport.is_reliable(),
            self.config.timers,
        );
        self.txs.push(Tx {
            branch,
            next_hop,
            kind: TxKind::Bye(tx),
        });
    }

    /// The CANCEL for the INVITE in force (§9.1): same Request-URI, Call-ID, From, To, CSeq
    /// number and Route, and the INVITE's top Via (so it shares its branch), sent to the same
    /// next hop.
    fn send_cancel(&mut self, now: Instant) {
        let Cancel::Pending(reason) = self.cancel else {
            return;
        };
        let inv = &self.invite;
        let mut c = Request::new(Method::Cancel, inv.uri.clone());
        if let Some(v) = inv.headers.values(&HeaderName::Via).next() {
            c.headers.push(HeaderName::Via, v);
        }
        for n in [
            HeaderName::MaxForwards,
            HeaderName::From,
            HeaderName::To,
            HeaderName::CallId,
        ] {
            c.headers.copy_from(&inv.headers, &n);
        }
        let seq = inv.cseq().map(|s| s.seq).unwrap_or(self.config.cseq);
        c.headers.push(HeaderName::CSeq, format!("{seq} CANCEL"));
        c.headers.copy_from(&inv.headers, &HeaderName::Route);
        let tx = ClientNonInvite::new(
            now,
            c,
            self.config.transport.is_reliable(),
            self.config.timers,
        );
        self.txs.push(Tx {
            branch: self.invite_branch.clone(),
            next_hop: self.invite_next_hop.clone(),
            kind: TxKind::Cancel(tx),
        });
        self.cancel = Cancel::Sent(reason, now);
    }

    /// Answer a 401/407 (§22.2, §22.3) with a new INVITE, or say why not.
    fn answer_challenge(&mut self, now: Instant, r: &Response) -> Result<(), FailureCause> {
        let status = r.status;
        let proxy = status.code() == 407;
        let give_up = FailureCause::Authentication(status);
        if self.config.credentials.is_none() {
            return Err(give_up);
        }
        if self.auth_rounds >= MAX_AUTH_ROUNDS {
            return Err(give_up);
        }
        // RFC 8760 §2.4: use the topmost challenge whose algorithm we support.
        let header = challenge_header(proxy);
        let challenge = r
            .headers
            .get_all(&header)
            .find_map(|v| Challenge::parse(v).ok())
            .ok_or(give_up)?;
        match self
            .auths
            .iter_mut()
            .find(|a| a.proxy == proxy && a.auth.challenge.realm == challenge.realm)
        {
            // The realm refused our answer: wrong credentials, unless only the nonce aged
            // (stale=true, RFC 7616 §3.3) and it is a new one.
            Some(a) if !challenge.stale || challenge.nonce == a.auth.challenge.nonce => {
                return Err(give_up);
            }
            Some(a) => a.auth = ClientAuth::new(challenge.clone()),
            None => self.auths.push(Answered {
                proxy,
                auth: ClientAuth::new(challenge.clone()),
            }),
        }
        self.auth_rounds += 1;
        self.events.push_back(UacEvent::Authenticating {
            status,
            realm: challenge.realm,
        });
        self.resend_invite(now, self.invite.clone());
        Ok(())
    }

    /// Send `invite` as a new INVITE of the same attempt (§22.2, RFC 4028 §7.3): same
    /// Call-ID and From tag, CSeq + 1, a new branch, and an answer to every challenge
    /// answered so far.
    fn resend_invite(&mut self, now: Instant, mut invite: Request) {
        let branch = new_branch(self.rng.as_mut());
        invite
            .headers
            .set(HeaderName::Via, via(&self.config, &branch));
        // Above the PRACKs sent in the early dialogs of the INVITE it replaces, too.
        let prack_seq = self.early.iter().map(|e| e.local_seq).max().unwrap_or(0);
        let seq = invite
            .cseq()
            .map(|c| c.seq)
            .unwrap_or(self.config.cseq)
            .max(prack_seq)
            + 1;
        invite
            .headers
            .set(HeaderName::CSeq, format!("{seq} INVITE"));
        invite.headers.remove(&authorization(false));
        invite.headers.remove(&authorization(true));
        if let Some(creds) = &self.config.credentials {
            let uri = invite.uri.to_string();
            for a in &mut self.auths {
                let value = a
                    .auth
                    .authorize(creds, "INVITE", &uri, self.rng.as_mut())
                    .to_string();
                invite.headers.push(authorization(a.proxy), value);
            }
        }
        self.send_invite(now, invite, branch);
    }
}

/// A fresh RFC 3261 branch (§8.1.1.7: the magic cookie, then enough randomness to be unique).
pub(crate) fn new_branch(rng: &mut dyn RandomSource) -> String {
    format!(
        "{MAGIC_COOKIE}{:016x}{:08x}",
        rng.next_u64(),
        rng.next_u64() as u32
    )
}

fn via(config: &OutgoingConfig, branch: &str) -> String {
    via_value(config.transport, &config.sent_by, branch)
}

/// Our Via value (RFC 3261 §8.1.1.7, §18.1.1) for `transport` and `sent_by` (`host:port`).
pub(crate) fn via_value(transport: Transport, sent_by: &str, branch: &str) -> String {
    // RFC 3581: ask for rport so responses find us behind NAT.
    format!(
        "SIP/2.0/{} {sent_by};branch={branch};rport",
        transport.via_token()
    )
}

/// `Authorization` (401) or `Proxy-Authorization` (407), RFC 3261 §22.2, §22.3.
fn authorization(proxy: bool) -> HeaderName {
    HeaderName::from_wire(if proxy {
        "Proxy-Authorization"
    } else {
        "Authorization"
    })
}

/// `WWW-Authenticate` (401) or `Proxy-Authenticate` (407).
fn challenge_header(proxy: bool) -> HeaderName {
    HeaderName::from_wire(if proxy {
        "Proxy-Authenticate"
    } else {
        "WWW-Authenticate"
    })
}
