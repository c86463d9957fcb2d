//! Transferring a call with REFER, the engine as *transferor* (RFC 3515, with the in-dialog
//! request rules of RFC 3261 §12.2.1.1 and the implicit subscription of RFC 6665).
//!
//! The caller (the *transferee*) is asked, inside the dialog it has with us, to call the
//! configured destination itself. [`ReferTransfer`] owns that one REFER and the subscription
//! it creates:
//!
//! - RFC 3515 §2.4.1, RFC 3261 §12.2.1.1: the REFER is built from the caller's [`Dialog`]:
//!   its Request-URI, `Route` headers and next hop follow the route set, its CSeq is the
//!   dialog's next. It carries `Refer-To` (the destination, RFC 3515 §2.1), `Referred-By`
//!   (RFC 3892 §3) and a `Contact` (RFC 3261 §8.1.1.8: a REFER can establish a dialog);
//! - RFC 3261 §17.1.2: it travels on a non-INVITE client transaction
//!   ([`ClientNonInvite`]): retransmitted on Timer E over UDP, given up on Timer F (which
//!   counts as 408, §8.1.3.1);
//! - RFC 3515 §2.4.2: a 2xx (202 Accepted, or 200) is [`ReferEvent::Accepted`]; any final
//!   non-2xx (405, 501, 403, 481, 603...) is [`ReferEvent::Refused`] with its status, so the
//!   owner can fall back to a bridged call;
//! - RFC 3515 §2.4.4, §2.4.5, RFC 6665 §4.1.3: each NOTIFY of the implicit subscription
//!   (`Event: refer`, a `Subscription-State`, a `message/sipfrag` body whose status line
//!   reports the transferee's INVITE) is answered by [`ReferTransfer::handle_notify`], which
//!   returns the response to send: 200 OK, or 400 / 415 / 481 / 489 for a NOTIFY it cannot
//!   use. A NOTIFY may arrive before the REFER's 202 (RFC 6665 §4.1.2.4): it implies the
//!   acceptance;
//! - the sipfrag's status decides the outcome: 1xx → [`ReferEvent::Progress`], 2xx →
//!   [`ReferEvent::Succeeded`], 3xx-6xx → [`ReferEvent::Failed`]; a subscription that ends
//!   (`terminated`) before any final status is a failure too;
//! - the owner bounds the wait for a final NOTIFY ([`ReferConfig::final_notify_timeout`],
//!   counted from the acceptance): when it passes, [`ReferEvent::TimedOut`].
//!
//! Exactly one of `Refused`, `Succeeded`, `Failed`, `TimedOut` is reported, once. What to do
//! next (BYE the caller after `Succeeded`, bridge after `Refused`, take the caller back to the
//! menu after `Failed`) is the owner's.
//!
//! Routing, for the owner: responses whose top Via branch and CSeq method match the REFER
//! ([`ReferTransfer::matches_response`]) go to [`ReferTransfer::handle_response`]; NOTIFYs of
//! the caller's dialog ([`ReferTransfer::matches_notify`]) go, after the dialog's CSeq check
//! ([`Dialog::accept_remote_seq`], §12.2.2) and through the owner's server transaction (which
//! absorbs their retransmissions, §17.2.2), to [`ReferTransfer::handle_notify`].
//!
//! An engine leg drives it like this:
//!
//! ```
//! use ivr_sip::dialog::Dialog;
//! use ivr_sip::digest::RandomSource;
//! use ivr_sip::refer::{ReferConfig, ReferEvent, ReferTransfer};
//! use ivr_sip::{HeaderName, NameAddr, Request, Response, Transport, Uri};
//! use std::time::Instant;
//!
//! /// Start the transfer on the caller's dialog (its CSeq advances by one).
//! fn start(now: Instant, dialog: &mut Dialog, rng: &mut dyn RandomSource) -> ReferTransfer {
//!     let config = ReferConfig::new(
//!         Uri::parse("sip:desk@192.0.2.10").unwrap(), // only ever a configured destination
//!         NameAddr::parse("<sip:ivr@192.0.2.1>", HeaderName::From).unwrap(),
//!         Uri::parse("sip:ivr@192.0.2.1:5060").unwrap(),
//!         Transport::Udp,
//!         "192.0.2.1:5060".into(),
//!     );
//!     ReferTransfer::new(now, dialog, config, rng)
//! }
//!
//! /// One turn of the owner's loop: inputs in, then drain.
//! fn turn(t: &mut ReferTransfer, now: Instant, response: Option<Response>, notify: Option<Request>) {
//!     if let Some(r) = response.filter(|r| t.matches_response(r)) {
//!         t.handle_response(now, r);
//!     }
//!     if let Some(n) = notify.filter(|n| t.matches_notify(n)) {
//!         let answer: Response = t.handle_notify(now, &n);
//!         let _ = answer; // send it on the NOTIFY's server transaction
//!     }
//!     t.handle_timeout(now);
//!     while let Some(tx) = t.poll_transmit() {
//!         let _ = (tx.next_hop, tx.transport, tx.message); // send the REFER (or its retransmission)
//!     }
//!     while let Some(event) = t.poll_event() {
//!         match event {
//!             ReferEvent::Refused(_status) => { /* 405/501/403...: bridge instead */ }
//!             ReferEvent::Succeeded => { /* the caller reached the destination: BYE our leg */ }
//!             ReferEvent::Failed(_) | ReferEvent::TimedOut => { /* back to the menu */ }
//!             _ => { /* Accepted, Progress, BadNotify: log */ }
//!         }
//!     }
//!     // Sleep until t.poll_timeout() or the next message.
//! }
//! ```

use crate::Transport;
use crate::dialog::Dialog;
use crate::digest::RandomSource;
use crate::header::{HeaderName, NameAddr, Params};
use crate::ids::{CallId, Tag};
use crate::message::{CoreHeaders, HeaderError, Method, Request, Response, StatusCode};
use crate::transaction::{ClientEvent, ClientNonInvite, TimerConfig};
use crate::uac::{Transmit, new_branch, via_value};
use crate::uri::Uri;
use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

/// How long to wait, after the REFER was accepted, for the NOTIFY that reports the
/// transferee's final answer, by default: the destination may ring for a while.
pub const DEFAULT_FINAL_NOTIFY_TIMEOUT: Duration = Duration::from_secs(120);

/// The longest sipfrag status line read (RFC 3420 bodies of a REFER NOTIFY start with one;
/// a real one is about 30 octets). Longer first lines are refused, not scanned.
pub const MAX_STATUS_LINE: usize = 256;

/// `Refer-To` (RFC 3515 §2.1).
fn refer_to() -> HeaderName {
    HeaderName::Other("Refer-To".into())
}

/// `Referred-By` (RFC 3892 §3).
fn referred_by() -> HeaderName {
    HeaderName::Other("Referred-By".into())
}

/// `Event` (RFC 6665 §8.2.1).
fn event_header() -> HeaderName {
    HeaderName::Other("Event".into())
}

/// `Subscription-State` (RFC 6665 §8.2.3).
fn subscription_state_header() -> HeaderName {
    HeaderName::Other("Subscription-State".into())
}

/// What the owner configures for one transfer.
#[derive(Debug, Clone)]
pub struct ReferConfig {
    /// The destination the caller is asked to call (`Refer-To`, RFC 3515 §2.1). Only ever a
    /// destination from the configuration: nothing taken from a request (toll fraud).
    pub refer_to: Uri,
    /// Who refers (`Referred-By`, RFC 3892 §3): our address of record.
    pub referred_by: NameAddr,
    /// Our Contact URI (RFC 3261 §8.1.1.8: a request that can establish a dialog carries one).
    pub contact: Uri,
    /// The transport the caller's dialog uses, for Via and retransmission timers.
    pub transport: Transport,
    /// Our Via sent-by, `host:port` (RFC 3261 §18.1.1).
    pub sent_by: String,
    /// How long after the acceptance a final NOTIFY may take (see
    /// [`DEFAULT_FINAL_NOTIFY_TIMEOUT`]).
    pub final_notify_timeout: Duration,
    /// Extra header lines for the REFER (User-Agent...).
    pub extra_headers: Vec<(HeaderName, String)>,
    /// The RFC 3261 timer values.
    pub timers: TimerConfig,
}

impl ReferConfig {
    /// A configuration with the default timers, the default final-NOTIFY timeout and no
    /// extra headers.
    pub fn new(
        refer_to: Uri,
        referred_by: NameAddr,
        contact: Uri,
        transport: Transport,
        sent_by: String,
    ) -> ReferConfig {
        ReferConfig {
            refer_to,
            referred_by,
            contact,
            transport,
            sent_by,
            final_notify_timeout: DEFAULT_FINAL_NOTIFY_TIMEOUT,
            extra_headers: Vec::new(),
            timers: TimerConfig::default(),
        }
    }
}

/// Why a transfer the caller accepted did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferFailure {
    /// The transferee's INVITE to the destination ended with this final status (the sipfrag
    /// of a NOTIFY, RFC 3515 §2.4.5): 486 busy, 480 no answer, 404...
    Status(StatusCode),
    /// The subscription was terminated (RFC 6665 §4.1.3) before any final status was
    /// reported.
    SubscriptionEnded,
}

impl fmt::Display for TransferFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransferFailure::Status(s) => write!(f, "the destination answered {s}"),
            TransferFailure::SubscriptionEnded => {
                f.write_str("the subscription ended without a final status")
            }
        }
    }
}

/// What the transfer tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferEvent {
    /// The caller accepted the REFER (a 2xx, RFC 3515 §2.4.2, or a first NOTIFY before it).
    /// Reported once.
    Accepted,
    /// The caller reported progress of its INVITE to the destination (a 1xx sipfrag: 100
    /// Trying, 180 Ringing...).
    Progress(StatusCode),
    /// The destination answered the caller (a 2xx sipfrag). Final.
    Succeeded,
    /// The caller's INVITE to the destination failed. Final.
    Failed(TransferFailure),
    /// The caller refused the REFER with this final status (405, 501, 403, 603...), or sent
    /// no answer at all (408, RFC 3261 §8.1.3.1). The owner may bridge instead. Final.
    Refused(StatusCode),
    /// No final NOTIFY within [`ReferConfig::final_notify_timeout`] of the acceptance. Final.
    TimedOut,
    /// A NOTIFY of the dialog was unusable and answered with an error (logged by the owner;
    /// the transfer goes on).
    BadNotify(NotifyError),
}

/// Where the transfer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferPhase {
    /// The REFER is pending.
    Referring,
    /// Accepted; waiting for the final NOTIFY.
    Accepted,
    /// The outcome was reported.
    Done,
}

/// A `message/sipfrag` body that cannot be read as a status line (RFC 3420, RFC 3515
/// §2.4.5). Hostile input gives one of these, never a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SipfragError {
    /// The body is empty.
    #[error("empty sipfrag")]
    Empty,
    /// The first line is longer than [`MAX_STATUS_LINE`].
    #[error("sipfrag first line longer than {MAX_STATUS_LINE} octets")]
    TooLong,
    /// The first line holds bytes that are not printable ASCII (or UTF-8 text in the reason).
    #[error("sipfrag first line is not text")]
    NotText,
    /// The first line does not start with `SIP/2.0 ` (a request line, or garbage).
    #[error("sipfrag does not start with a SIP/2.0 status line")]
    NotStatusLine,
    /// The status code is not three digits within 100-699.
    #[error("sipfrag status code is not 100-699")]
    BadStatus,
}

/// The status line at the head of a `message/sipfrag` body (RFC 3420 §2, RFC 3261 §7.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipfragStatus {
    /// The status code.
    pub status: StatusCode,
    /// The reason phrase (may be empty).
    pub reason: String,
}

/// Read the status line of a `message/sipfrag` body (RFC 3420; RFC 3515 §2.4.5 requires it
/// to start with one). Only the first line is looked at, at most [`MAX_STATUS_LINE`] octets;
/// the header fields that may follow are ignored. Lenient where peers differ harmlessly
/// (LF or CRLF, a missing reason phrase, `sip/2.0` in lower case), strict otherwise.
pub fn parse_sipfrag(body: &[u8]) -> Result<SipfragStatus, SipfragError> {
    if body.is_empty() {
        return Err(SipfragError::Empty);
    }
    let window = &body[..body.len().min(MAX_STATUS_LINE + 2)];
    let line = match window.iter().position(|&b| b == b'\n') {
        Some(i) => &window[..i],
        None if body.len() > MAX_STATUS_LINE => return Err(SipfragError::TooLong),
        None => window,
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > MAX_STATUS_LINE {
        return Err(SipfragError::TooLong);
    }
    let line = std::str::from_utf8(line).map_err(|_| SipfragError::NotText)?;
    if line.chars().any(|c| c.is_control() && c != '\t') {
        return Err(SipfragError::NotText);
    }
    // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (RFC 3261 §7.2).
    let (version, rest) = line
        .split_at_checked(8)
        .ok_or(SipfragError::NotStatusLine)?;
    if !version.eq_ignore_ascii_case("SIP/2.0 ") {
        return Err(SipfragError::NotStatusLine);
    }
    let (code, reason) = match rest.split_once(' ') {
        Some((c, r)) => (c, r.trim()),
        None => (rest, ""),
    };
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SipfragError::BadStatus);
    }
    let status = code
        .parse::<u16>()
        .ok()
        .and_then(StatusCode::new)
        .ok_or(SipfragError::BadStatus)?;
    Ok(SipfragStatus {
        status,
        reason: reason.to_string(),
    })
}

/// `Subscription-State` values (RFC 6665 §4.1.3, §8.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionState {
    /// `active`.
    Active,
    /// `pending`.
    Pending,
    /// `terminated`: no more NOTIFYs will come.
    Terminated,
}

impl SubscriptionState {
    /// Read a `Subscription-State` value: its first token, case-insensitively (parameters such
    /// as `expires` and `reason` are checked for syntax, not used). An extension value gives
    /// `None`: RFC 6665 §8.2.3 lets a subscriber treat unknown values as it sees fit, and this
    /// one just keeps waiting.
    pub fn parse(value: &str) -> Result<Option<SubscriptionState>, NotifyError> {
        let (token, params) = match value.find(';') {
            Some(i) => (value[..i].trim(), &value[i..]),
            None => (value.trim(), ""),
        };
        if token.is_empty() || !token.bytes().all(crate::header::is_token_byte) {
            return Err(NotifyError::BadSubscriptionState);
        }
        Params::parse(params).map_err(|_| NotifyError::BadSubscriptionState)?;
        Ok(match token.to_ascii_lowercase().as_str() {
            "active" => Some(SubscriptionState::Active),
            "pending" => Some(SubscriptionState::Pending),
            "terminated" => Some(SubscriptionState::Terminated),
            _ => None,
        })
    }
}

/// Why a NOTIFY was not used. Each maps to the status it is answered with
/// (`StatusCode::from(&error)`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// Not a NOTIFY of this transfer's dialog.
    #[error("not a NOTIFY of this dialog")]
    NotOurs,
    /// A header is missing or malformed.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The `Event` header is absent or names another package than `refer` (RFC 6665 §8.2.1).
    #[error("Event is not refer")]
    BadEvent,
    /// The `Event` header's `id` is not our REFER's CSeq (RFC 3515 §2.4.6): another
    /// subscription, which does not exist here (RFC 6665 §4.1.3).
    #[error("Event id {0} names no subscription of ours")]
    UnknownId(String),
    /// The subscription already ended (terminated, or timed out on our side).
    #[error("the subscription has ended")]
    Ended,
    /// `Subscription-State` is absent or malformed (RFC 6665 §8.2.3).
    #[error("missing or malformed Subscription-State")]
    BadSubscriptionState,
    /// The body is not `message/sipfrag` (RFC 3515 §2.4.5).
    #[error("body is not message/sipfrag")]
    NotSipfrag,
    /// The sipfrag body cannot be read.
    #[error(transparent)]
    Sipfrag(#[from] SipfragError),
}

impl From<&NotifyError> for StatusCode {
    fn from(e: &NotifyError) -> StatusCode {
        match e {
            NotifyError::NotOurs | NotifyError::UnknownId(_) | NotifyError::Ended => {
                StatusCode::CALL_DOES_NOT_EXIST
            }
            NotifyError::BadEvent => StatusCode::BAD_EVENT,
            NotifyError::NotSipfrag => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            NotifyError::Header(_)
            | NotifyError::BadSubscriptionState
            | NotifyError::Sipfrag(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// One transfer by REFER (RFC 3515) in an established dialog. See the module documentation.
#[derive(Debug)]
pub struct ReferTransfer {
    config: ReferConfig,
    call_id: CallId,
    local_tag: Tag,
    remote_tag: Tag,
    /// The REFER's CSeq number: the `id` of the subscription's Event (RFC 3515 §2.4.6).
    seq: u32,
    branch: String,
    next_hop: Uri,
    tx: ClientNonInvite,
    phase: ReferPhase,
    /// When the acceptance was seen (the final-NOTIFY deadline counts from here).
    accepted_at: Option<Instant>,
    /// The subscription ended: terminated by the notifier, or timed out here.
    subscription_over: bool,
    /// The CSeq of the last NOTIFY handled, so a duplicate is answered without a new event.
    last_notify: Option<u32>,
    events: VecDeque<ReferEvent>,
}

impl ReferTransfer {
    /// Build the REFER on `dialog` (which advances its CSeq, RFC 3261 §12.2.1.1) and queue it
    /// on a new non-INVITE client transaction. `rng` draws the branch.
    pub fn new(
        now: Instant,
        dialog: &mut Dialog,
        config: ReferConfig,
        rng: &mut dyn RandomSource,
    ) -> ReferTransfer {
        let branch = new_branch(rng);
        let next_hop = dialog.target().next_hop;
        let mut refer = dialog.request(
            Method::Refer,
            via_value(config.transport, &config.sent_by, &branch),
        );
        let seq = dialog.local_seq;
        refer
            .headers
            .push(HeaderName::Contact, format!("<{}>", config.contact));
        // Angle brackets always: a URI with parameters or headers must not leak them into
        // the header's own parameters (RFC 3261 §20.10, RFC 3515 §2.1).
        refer
            .headers
            .push(refer_to(), format!("<{}>", config.refer_to));
        let mut by = config.referred_by.clone();
        by.params.0.retain(|(n, _)| !n.eq_ignore_ascii_case("tag"));
        refer.headers.push(referred_by(), by.to_string());
        for (n, v) in &config.extra_headers {
            refer.headers.push(n.clone(), v.as_str());
        }
        let tx = ClientNonInvite::new(now, refer, config.transport.is_reliable(), config.timers);
        ReferTransfer {
            call_id: dialog.id.call_id.clone(),
            local_tag: dialog.id.local_tag.clone(),
            remote_tag: dialog.id.remote_tag.clone(),
            seq,
            branch,
            next_hop,
            tx,
            phase: ReferPhase::Referring,
            accepted_at: None,
            subscription_over: false,
            last_notify: None,
            events: VecDeque::new(),
            config,
        }
    }

    /// The REFER as sent.
    pub fn request(&self) -> &Request {
        self.tx.request()
    }

    /// The REFER's CSeq number (the subscription's `id`, RFC 3515 §2.4.6).
    pub fn seq(&self) -> u32 {
        self.seq
    }

    /// Where the transfer is.
    pub fn phase(&self) -> ReferPhase {
        self.phase
    }

    /// Whether the outcome was reported, the REFER transaction ended and no more NOTIFY is
    /// expected: the owner may drop the machine (a later NOTIFY deserves 481).
    pub fn is_finished(&self) -> bool {
        self.phase == ReferPhase::Done && self.tx.is_terminated() && self.subscription_over
    }

    /// Whether `response` answers our REFER (top Via branch and CSeq method, RFC 3261
    /// §17.1.3).
    pub fn matches_response(&self, response: &Response) -> bool {
        let branch_ok = response
            .top_via()
            .ok()
            .is_some_and(|v| v.branch() == Some(self.branch.as_str()));
        branch_ok
            && response
                .cseq()
                .is_ok_and(|c| c.method == Method::Refer && c.seq == self.seq)
    }

    /// Whether `request` is a NOTIFY inside the dialog the REFER was sent in (Call-ID, our
    /// tag in To, the peer's in From: RFC 3261 §12.2.2). Its Event is checked by
    /// [`Self::handle_notify`], which answers a wrong one.
    pub fn matches_notify(&self, request: &Request) -> bool {
        request.method == Method::Notify
            && request.call_id().is_ok_and(|c| c == self.call_id.as_str())
            && request
                .party_to()
                .is_ok_and(|t| t.tag() == Some(self.local_tag.as_str()))
            && request
                .party_from()
                .is_ok_and(|f| f.tag().unwrap_or_default() == self.remote_tag.as_str())
    }

    /// A response to the REFER arrived (ignored if it does not match, see
    /// [`Self::matches_response`]).
    pub fn handle_response(&mut self, now: Instant, response: Response) {
        if !self.matches_response(&response) {
            return;
        }
        self.tx.handle_response(now, response);
        self.drain_tx(now);
    }

    /// A NOTIFY of the caller's dialog (RFC 3515 §2.4.4, RFC 6665 §4.1.3). Returns the
    /// response to send on its server transaction: 200 OK when used; an error status
    /// otherwise (also reported as [`ReferEvent::BadNotify`]).
    pub fn handle_notify(&mut self, now: Instant, notify: &Request) -> Response {
        match self.use_notify(now, notify) {
            Ok(()) => Response::to_request(notify, StatusCode::OK),
            Err(e) => {
                let status = StatusCode::from(&e);
                let mut r = Response::to_request(notify, status);
                if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
                    // RFC 3261 §21.4.13: say what we accept.
                    r.headers.push(HeaderName::Accept, "message/sipfrag");
                }
                self.events.push_back(ReferEvent::BadNotify(e));
                r
            }
        }
    }

    fn use_notify(&mut self, now: Instant, notify: &Request) -> Result<(), NotifyError> {
        if !self.matches_notify(notify) {
            return Err(NotifyError::NotOurs);
        }
        let seq = notify.cseq()?.seq;
        self.check_event(notify)?;
        if self.subscription_over {
            // RFC 6665 §4.1.3: a NOTIFY for a subscription that no longer exists.
            return Err(NotifyError::Ended);
        }
        if self.last_notify == Some(seq) {
            return Ok(()); // a retransmission the owner did not absorb: same answer, no news
        }
        let state = notify
            .headers
            .get(&subscription_state_header())
            .ok_or(NotifyError::BadSubscriptionState)
            .and_then(SubscriptionState::parse)?;
        let terminated = state == Some(SubscriptionState::Terminated);
        let sipfrag = if notify.body.is_empty() && terminated {
            // A final NOTIFY with no body (reason=noresource, timeout...): nothing to report
            // but the end.
            None
        } else {
            let ctype = notify
                .headers
                .get(&HeaderName::ContentType)
                .map(|c| c.split(';').next().unwrap_or_default().trim());
            if !ctype.is_some_and(|c| c.eq_ignore_ascii_case("message/sipfrag")) {
                return Err(NotifyError::NotSipfrag);
            }
            Some(parse_sipfrag(&notify.body)?)
        };
        self.last_notify = Some(seq);
        self.accept(now);
        if terminated {
            self.subscription_over = true;
        }
        if self.phase == ReferPhase::Done {
            return Ok(());
        }
        match sipfrag.map(|s| s.status) {
            Some(s) if s.is_success() => self.finish(ReferEvent::Succeeded),
            Some(s) if !s.is_provisional() => {
                self.finish(ReferEvent::Failed(TransferFailure::Status(s)));
            }
            Some(s) => {
                self.events.push_back(ReferEvent::Progress(s));
                if terminated {
                    self.finish(ReferEvent::Failed(TransferFailure::SubscriptionEnded));
                }
            }
            None => self.finish(ReferEvent::Failed(TransferFailure::SubscriptionEnded)),
        }
        Ok(())
    }

    /// `Event: refer`, with an `id` (if any) equal to our REFER's CSeq (RFC 3515 §2.4.6,
    /// RFC 6665 §8.2.1; event types compare case-insensitively here, being tokens we
    /// do not expect to collide).
    fn check_event(&self, notify: &Request) -> Result<(), NotifyError> {
        let value = notify
            .headers
            .get(&event_header())
            .ok_or(NotifyError::BadEvent)?;
        let (package, params) = match value.find(';') {
            Some(i) => (value[..i].trim(), &value[i..]),
            None => (value.trim(), ""),
        };
        if !package.eq_ignore_ascii_case("refer") {
            return Err(NotifyError::BadEvent);
        }
        let params = Params::parse(params).map_err(|_| NotifyError::BadEvent)?;
        match params.get("id") {
            None => Ok(()),
            Some(Some(id)) if id.parse::<u32>().ok() == Some(self.seq) => Ok(()),
            Some(id) => Err(NotifyError::UnknownId(id.unwrap_or_default().to_string())),
        }
    }

    /// Fire the deadlines due at `now` (spurious calls are harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tx.handle_timeout(now);
        self.drain_tx(now);
        if let Some(deadline) = self.final_deadline()
            && now >= deadline
        {
            self.subscription_over = true;
            self.finish(ReferEvent::TimedOut);
        }
    }

    /// The next message to send (the REFER, or its retransmission).
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.tx.poll_transmit().map(|message| Transmit {
            next_hop: self.next_hop.clone(),
            transport: self.config.transport,
            message,
        })
    }

    /// The next event for the owner.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ReferEvent> {
        self.events.pop_front()
    }

    /// The next deadline: the REFER transaction's timers, and the final-NOTIFY deadline
    /// while it is awaited.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.tx
            .poll_timeout()
            .into_iter()
            .chain(self.final_deadline())
            .min()
    }

    fn final_deadline(&self) -> Option<Instant> {
        match (self.phase, self.accepted_at) {
            // A timeout past what Instant can hold is no deadline at all.
            (ReferPhase::Accepted, Some(at)) => at.checked_add(self.config.final_notify_timeout),
            _ => None,
        }
    }

    fn drain_tx(&mut self, now: Instant) {
        while let Some(ev) = self.tx.poll_event() {
            match ev {
                ClientEvent::Response(r) if r.status.is_provisional() => {}
                ClientEvent::Response(r) if r.status.is_success() => self.accept(now),
                ClientEvent::Response(r) => self.refuse(r.status),
                // RFC 3261 §8.1.3.1: a transaction timeout is a 408.
                ClientEvent::Timeout => self.refuse(StatusCode::REQUEST_TIMEOUT),
            }
        }
    }

    /// The REFER was accepted (its 2xx, or a NOTIFY that came first, RFC 6665 §4.1.2.4).
    fn accept(&mut self, now: Instant) {
        if self.phase == ReferPhase::Referring {
            self.phase = ReferPhase::Accepted;
            self.accepted_at = Some(now);
            self.events.push_back(ReferEvent::Accepted);
        }
    }

    /// A final non-2xx to the REFER: refused, unless a NOTIFY already showed it accepted.
    fn refuse(&mut self, status: StatusCode) {
        if self.phase == ReferPhase::Referring {
            self.subscription_over = true;
            self.finish(ReferEvent::Refused(status));
        }
    }

    fn finish(&mut self, event: ReferEvent) {
        if self.phase != ReferPhase::Done {
            self.phase = ReferPhase::Done;
            self.events.push_back(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sipfrag_status_lines() {
        let ok = |b: &[u8]| parse_sipfrag(b).map(|s| (s.status.code(), s.reason));
        assert_eq!(ok(b"SIP/2.0 200 OK\r\n"), Ok((200, "OK".into())));
        assert_eq!(ok(b"SIP/2.0 100 Trying"), Ok((100, "Trying".into())));
        assert_eq!(
            ok(b"sip/2.0 180 Ringing\nContact: <sip:x@y>\n"),
            Ok((180, "Ringing".into()))
        );
        assert_eq!(ok(b"SIP/2.0 503"), Ok((503, String::new())));
        assert_eq!(
            ok(b"SIP/2.0 486 Busy Here \r\n\r\n"),
            Ok((486, "Busy Here".into()))
        );
    }

    #[test]
    fn sipfrag_garbage_is_an_error() {
        use SipfragError::*;
        let e = |b: &[u8]| parse_sipfrag(b).unwrap_err();
        assert_eq!(e(b""), Empty);
        assert_eq!(e(b"INVITE sip:a@b SIP/2.0\r\n"), NotStatusLine);
        assert_eq!(e(b"SIP/2.0"), NotStatusLine);
        assert_eq!(e(b"SIP/3.0 200 OK"), NotStatusLine);
        assert_eq!(e(b"SIP/2.0 2000 OK"), BadStatus);
        assert_eq!(e(b"SIP/2.0 099 Low"), BadStatus);
        assert_eq!(e(b"SIP/2.0 700 High"), BadStatus);
        assert_eq!(e(b"SIP/2.0 +20 OK"), BadStatus);
        assert_eq!(e(b"SIP/2.0 200 O\x00K"), NotText);
        assert_eq!(e(b"SIP/2.0 200 \xff\xfe"), NotText);
        assert_eq!(e(b"SIP/2.0 \xc3"), NotText);
        assert_eq!(e(b"\xc3\xa9IP/2.0 200 OK"), NotStatusLine);
        let long = [b"SIP/2.0 200 ".as_slice(), &[b'x'; 4000]].concat();
        assert_eq!(e(&long), TooLong);
        let long_line = [long.as_slice(), b"\r\n"].concat();
        assert_eq!(e(&long_line), TooLong);
    }

    proptest::proptest! {
        /// Hostile bodies give an error or a status, never a panic, and a parsed status is
        /// always a real one.
        #[test]
        fn sipfrag_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            if let Ok(s) = parse_sipfrag(&body) {
                proptest::prop_assert!((100..=699).contains(&s.status.code()));
            }
        }

        /// Status lines as printed by our own responses read back.
        #[test]
        fn printed_status_lines_read_back(code in 100u16..700, reason in "[ -~]{0,40}") {
            let status = StatusCode::new(code).unwrap();
            let line = format!("SIP/2.0 {code} {reason}\r\nVia: x\r\n");
            let got = parse_sipfrag(line.as_bytes()).unwrap();
            proptest::prop_assert_eq!(got.status, status);
            proptest::prop_assert_eq!(got.reason, reason.trim());
        }
    }

    #[test]
    fn subscription_state_values() {
        use SubscriptionState::*;
        let p = SubscriptionState::parse;
        assert_eq!(p("active;expires=60"), Ok(Some(Active)));
        assert_eq!(p("Terminated;reason=noresource"), Ok(Some(Terminated)));
        assert_eq!(p("pending"), Ok(Some(Pending)));
        assert_eq!(p("waiting-for-godot"), Ok(None));
        assert_eq!(p(""), Err(NotifyError::BadSubscriptionState));
        assert_eq!(p("act ive"), Err(NotifyError::BadSubscriptionState));
        assert_eq!(p("active;;"), Err(NotifyError::BadSubscriptionState));
    }

    #[test]
    fn errors_map_to_statuses() {
        assert_eq!(StatusCode::from(&NotifyError::BadEvent).code(), 489);
        assert_eq!(StatusCode::from(&NotifyError::NotSipfrag).code(), 415);
        assert_eq!(StatusCode::from(&NotifyError::Ended).code(), 481);
        assert_eq!(
            StatusCode::from(&NotifyError::Sipfrag(SipfragError::Empty)).code(),
            400
        );
    }
}
