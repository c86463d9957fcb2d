//! The engine's vocabulary with its driver: [`Input`]s in, [`Output`]s out, [`Event`]s for
//! logs and tests, and the voicemail work the driver does for it.

use crate::handle::{CallHandle, LegHandle};
use crate::media::RtpBuf;
use ivr_audio::Digit;
use ivr_audio::reorder::Frame;
use ivr_sip::Transport;
use ivr_voicemail::{CallbackRequest, RecordingId};
use std::net::SocketAddr;
use std::time::Instant;

/// Something that happened to the engine, handed in by the driver.
#[derive(Debug)]
pub enum Input<'a> {
    /// A UDP datagram, or one message cut from a TCP stream by [`ivr_sip::framing`].
    Sip {
        /// How it came.
        transport: Transport,
        /// From where (for TCP: the connection's remote address).
        from: SocketAddr,
        /// The bytes.
        data: &'a [u8],
    },
    /// A datagram on a leg's RTP port.
    Rtp {
        /// The leg.
        leg: LegHandle,
        /// Its source.
        from: SocketAddr,
        /// The bytes.
        data: &'a [u8],
    },
    /// A datagram on a leg's RTCP port (RTP port + 1).
    Rtcp {
        /// The leg.
        leg: LegHandle,
        /// The bytes.
        data: &'a [u8],
    },
    /// The RTP socket asked for by [`Output::OpenMedia`] is open at `local`.
    MediaOpened {
        /// The leg.
        leg: LegHandle,
        /// The socket's address.
        local: SocketAddr,
    },
    /// No RTP socket could be opened.
    MediaFailed {
        /// The leg.
        leg: LegHandle,
    },
    /// The answer to [`Output::Locate`]: where the leg's next hop is, in the order to try
    /// (RFC 3263 §4); empty when DNS found nothing usable.
    Located {
        /// The leg.
        leg: LegHandle,
        /// The targets, best first.
        targets: Vec<ivr_sip::transaction::Peer>,
    },
    /// The deadline given by [`Output::Timeout`] (or any time) has come.
    Timeout,
    /// Stop taking calls (INVITE and OPTIONS get 503, so a proxy's health probe sends new
    /// calls elsewhere) and let the calls in progress go on; [`Event::Drained`] comes when
    /// the last one ends. [`Input::Shutdown`] later hangs up the rest.
    Drain,
    /// Stop taking calls and hang up every call.
    Shutdown,
    /// What the wall clock says now (schedules need it). Send it at start and now and then;
    /// the engine counts forward from the last one with the monotonic clock.
    WallClock(std::time::SystemTime),
    /// The outcome of voicemail work asked for by [`Output::Voicemail`].
    Voicemail(VoicemailReport),
    /// Queued callbacks kept in the store across a restart, oldest first: back in line in
    /// that order ([`QueueCallbackCmd`] follows them by their store id).
    RestoreCallbacks(Vec<RestoredCallback>),
    /// Staff closed a queued callback (by its store id): it is cancelled (one being dialled
    /// is not retried).
    CancelCallback(String),
    /// A message from the hub about one of this engine's calls or offers (an engine made
    /// with [`crate::Engine::new_shard`], whose hub runs elsewhere; FIFO per shard).
    Hub(crate::hub_msg::ShardMsg),
}

/// What the driver must do.
#[derive(Debug)]
pub enum Output {
    /// Send a SIP message.
    Sip {
        /// Over what.
        transport: Transport,
        /// To where (for TCP: the connection).
        to: SocketAddr,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Send an RTP packet from the leg's socket.
    Rtp {
        /// The leg.
        leg: LegHandle,
        /// To where.
        to: SocketAddr,
        /// The packet.
        packet: RtpBuf,
        /// When it was due; the driver measures how far from it the packet left (it may
        /// leave up to `EngineConfig::rtp_send_lead` early).
        due: Instant,
    },
    /// Voicemail work: write, finish or delete a recording, or store a callback request.
    Voicemail(VoicemailCmd),
    /// A queued callback for the store.
    QueueCallback(QueueCallbackCmd),
    /// Open an RTP (and RTCP) socket for the leg; answer with [`Input::MediaOpened`] or [`Input::MediaFailed`].
    OpenMedia {
        /// The leg.
        leg: LegHandle,
    },
    /// Find the leg's next hop, a host name, by DNS (RFC 3263 §4: NAPTR, SRV, A/AAAA);
    /// answer with [`Input::Located`]. The engine itself never resolves.
    Locate {
        /// The leg.
        leg: LegHandle,
        /// The URI to locate (the destination's, or its outbound proxy's).
        uri: ivr_sip::Uri,
    },
    /// Close the leg's media sockets.
    CloseMedia {
        /// The leg.
        leg: LegHandle,
    },
    /// Something to log or count.
    Event(Event),
    /// For the hub (an engine made with [`crate::Engine::new_shard`]): hand it to the hub
    /// as coming from this shard, in order (a lost message would leave the center wrong).
    Hub(crate::hub_msg::HubMsg),
    /// A SIP message whose Call-ID belongs to another shard (RFC 3261 §8.1.1.4: every
    /// message of a dialog carries its Call-ID): hand the bytes to `shard` as they came.
    /// Only a sharded engine emits it, and only when the router's pre-parser disagreed
    /// with the full parse.
    Handoff {
        /// The shard the Call-ID belongs to.
        shard: crate::hub_msg::ShardId,
        /// How it came.
        transport: Transport,
        /// From where.
        from: SocketAddr,
        /// The bytes, as received.
        data: Vec<u8>,
    },
    /// Nothing more now; call again with [`Input::Timeout`] at this time (or on any input).
    Timeout(Option<Instant>),
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The caller sent BYE.
    CallerHungUp,
    /// The caller cancelled before the answer.
    Cancelled,
    /// The menu hung up.
    MenuHangup,
    /// No RTP or RTCP for the media timeout.
    MediaTimeout,
    /// The caller held the call for longer than the hold timeout.
    HoldTimeout,
    /// The 2xx was never acknowledged.
    AckTimeout,
    /// The engine is shutting down.
    Shutdown,
    /// No RTP port could be opened.
    MediaUnavailable,
    /// The SDP in the ACK was unusable.
    BadAnswer,
    /// The menus sent the call to a service this engine does not run yet (see
    /// [`Event::LeftMenus`]).
    Unavailable,
    /// The session timer ran out with no refresh, or our refresh failed (RFC 4028 §10).
    SessionExpired,
    /// A reliable provisional response was never PRACKed (RFC 3262 §3).
    NoPrack,
    /// The destination of a bridged transfer hung up.
    DestinationHungUp,
    /// The caller was transferred by REFER (the destination answered it): we hung up.
    Transferred,
}

impl EndReason {
    /// Every reason, in the order `/metrics` lists them.
    pub const ALL: [EndReason; 14] = [
        EndReason::CallerHungUp,
        EndReason::Cancelled,
        EndReason::MenuHangup,
        EndReason::MediaTimeout,
        EndReason::HoldTimeout,
        EndReason::AckTimeout,
        EndReason::Shutdown,
        EndReason::MediaUnavailable,
        EndReason::BadAnswer,
        EndReason::Unavailable,
        EndReason::SessionExpired,
        EndReason::NoPrack,
        EndReason::DestinationHungUp,
        EndReason::Transferred,
    ];

    /// The reason's name in call records and `/metrics` labels (`caller_hung_up`,
    /// `menu_hangup`, `shutdown`...).
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::CallerHungUp => "caller_hung_up",
            EndReason::Cancelled => "cancelled",
            EndReason::MenuHangup => "menu_hangup",
            EndReason::MediaTimeout => "media_timeout",
            EndReason::HoldTimeout => "hold_timeout",
            EndReason::AckTimeout => "ack_timeout",
            EndReason::Shutdown => "shutdown",
            EndReason::MediaUnavailable => "media_unavailable",
            EndReason::BadAnswer => "bad_answer",
            EndReason::Unavailable => "service_unavailable",
            EndReason::SessionExpired => "session_expired",
            EndReason::NoPrack => "no_prack",
            EndReason::DestinationHungUp => "destination_hung_up",
            EndReason::Transferred => "transferred",
        }
    }
}

/// Events for logs, metrics and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An INVITE was accepted for processing.
    CallStarted {
        /// The call.
        call: CallHandle,
        /// Its Call-ID.
        call_id: String,
        /// The From URI.
        from: String,
        /// The caller's number (P-Asserted-Identity from a trusted proxy, else From), if given.
        caller: Option<String>,
        /// The Request-URI.
        to: String,
    },
    /// The 200 OK was sent.
    CallAnswered {
        /// The call.
        call: CallHandle,
    },
    /// The caller entered a menu.
    MenuEntered {
        /// The call.
        call: CallHandle,
        /// The menu name.
        menu: String,
    },
    /// A prompt started playing (its config name, in the caller's language).
    Playing {
        /// The call.
        call: CallHandle,
        /// The prompt's name in the config.
        prompt: String,
        /// The caller's language, if the config has languages.
        language: Option<String>,
    },
    /// A message started (`true`) or stopped being recorded.
    Recording {
        /// The call.
        call: CallHandle,
        /// Started or stopped.
        started: bool,
    },
    /// A callback request was handed to the store.
    CallbackRequest {
        /// The call.
        call: CallHandle,
        /// The request's id.
        id: String,
        /// The mailbox.
        mailbox: String,
        /// The number to call back, if any.
        number: Option<String>,
        /// The message's length.
        duration_ms: u64,
    },
    /// The menus handed the call to a mailbox, a queue or a transfer.
    LeftMenus {
        /// The call.
        call: CallHandle,
        /// Where to: `voicemail sales`, `queue support`, `transfer callcenter`.
        to: String,
    },
    /// A key was received (RFC 4733 or SIP INFO).
    Digit {
        /// The call.
        call: CallHandle,
        /// The key.
        digit: Digit,
    },
    /// The call's record (issue #12), right after its [`Event::CallEnded`]: for the store.
    CallRecord(Box<ivr_voicemail::calls::CallRecord>),
    /// The call is over.
    CallEnded {
        /// The call.
        call: CallHandle,
        /// Its Call-ID.
        call_id: String,
        /// Why.
        reason: EndReason,
        /// (RTP packets sent, received).
        packets: (u64, u64),
    },
    /// A request was refused with an error status.
    Rejected {
        /// Its method.
        method: String,
        /// The Call-ID, if readable.
        call_id: String,
        /// The status sent.
        status: u16,
        /// The reason phrase sent.
        reason: String,
    },
    /// A message could not be parsed (a request got a 400/505 if it could be addressed).
    BadMessage {
        /// Its source.
        from: SocketAddr,
        /// What was wrong.
        error: String,
    },
    /// A datagram on an RTP port was dropped.
    BadRtp {
        /// The leg.
        leg: LegHandle,
        /// What was wrong.
        error: String,
    },
    /// A bridged transfer's destination answered: the legs are bridged.
    Bridged {
        /// The call.
        call: CallHandle,
        /// The destination's name in the menus.
        destination: String,
        /// The outgoing leg's own Call-ID (its dialog with the destination).
        call_id: String,
    },
    /// A REFER transfer succeeded: the caller's phone reached the destination (a NOTIFY
    /// with a 2xx sipfrag); the engine hangs up its leg.
    Referred {
        /// The call.
        call: CallHandle,
        /// The destination's name in the menus.
        destination: String,
    },
    /// A bridged transfer reached no one (busy, no answer, refused, no route); the caller
    /// is back in the menus, which act on the destination's `on_failure`.
    TransferFailed {
        /// The call.
        call: CallHandle,
        /// The destination's name in the menus.
        destination: String,
        /// What happened.
        failure: ivr_sip::uac::Failure,
    },
    /// The agent or the destination hung up a bridged call whose caller asked for a
    /// survey: the caller stays on the line for its questions ([`crate::survey_call`]).
    SurveyStarted {
        /// The call.
        call: CallHandle,
        /// The survey's name in the menus.
        survey: String,
    },
    /// After [`Input::Shutdown`] or [`Input::Drain`]: every call has ended.
    Drained,
    /// Admission refused, banned or dropped something (see [`crate::admission`]).
    Admission(crate::admission::AdmissionEvent),
    /// An agent's phone registered, unregistered or expired (see [`crate::registration`]).
    Agent {
        /// What changed.
        change: ivr_sip::registrar::RegistrarEvent,
        /// Agents with a phone registered, after the change.
        registered: usize,
    },
    /// A queue event ([`crate::queued`]): a caller joined, an agent was offered the call,
    /// answered, the caller gave up... and agents' state changes (`call` is `None`).
    Queue {
        /// The call it concerns, if any.
        call: Option<CallHandle>,
        /// That call's SIP Call-ID (what names it in the stored queue log, across restarts).
        call_id: Option<String>,
        /// When it happened.
        at: std::time::Instant,
        /// What happened.
        event: ivr_queues::QueueEvent,
    },
    /// A REGISTER's digest authentication failed (wrong password or unknown user).
    AuthFailed {
        /// Its source.
        from: SocketAddr,
        /// REGISTER, or INVITE (a feature code).
        method: &'static str,
    },
    /// An authenticated agent's phone dialled a feature code ([`crate::feature_codes`]).
    FeatureCode {
        /// The agent.
        agent: String,
        /// What it dialled.
        code: String,
        /// From where.
        from: SocketAddr,
    },
    /// An agent's request reached the queue center ([`crate::agent_desk`]).
    AgentRequest {
        /// The agent.
        agent: String,
        /// login, logout, pause, unpause.
        action: &'static str,
        /// Who asked: the agent itself (feature code) or a staff user.
        by: String,
    },
    /// An in-dialog request could not follow the route set as RFC 3261 §12.2.1.1 says: its
    /// next hop is a host name (the engine does not resolve names), so it went where the
    /// INVITE came from. For a bridged transfer: the destination, its proxy or a hop of its
    /// answer is a host name; the message was not sent (the transfer fails to `on_failure`).
    RouteUnresolved {
        /// The call.
        call: CallHandle,
        /// The next hop's URI.
        next_hop: String,
    },
    /// A bridged transfer's destination did not answer at one of its DNS targets (no
    /// response in time, or 503): the INVITE goes to the next one (RFC 3263 §4.3).
    FailedOver {
        /// The call.
        call: CallHandle,
        /// The target that failed.
        from: SocketAddr,
        /// The target tried now.
        to: SocketAddr,
        /// Why: `no response` or a status code.
        why: String,
    },
    /// An in-dialog request was sent to a strict router (no `;lr`) with the RFC 3261
    /// §12.2.1.1 rewrite (Request-URI = the router, remote target as the last Route).
    StrictRoute {
        /// The call.
        call: CallHandle,
        /// The router's URI.
        next_hop: String,
    },
}

/// A command for the driver's recorder and store.
#[derive(Debug)]
// Frames travel inline on purpose: recording must not allocate per packet.
#[allow(clippy::large_enum_variant)]
pub enum VoicemailCmd {
    /// Start writing a recording; `request` is what is known so far (keep it next to the
    /// audio, so a crash loses neither).
    Start {
        /// The recording.
        recording: RecordingId,
        /// The request as known at the start of the message.
        request: Box<CallbackRequest>,
    },
    /// Start writing a survey comment (a recorded question, [`crate::survey_call`]) as
    /// `KEY.wav`; `record` is the call's record as known at its start, kept beside the
    /// audio until the call's record is stored, so a crash loses neither. It goes on with
    /// [`VoicemailCmd::Frame`] and ends with [`VoicemailCmd::Stop`] (kept) or
    /// [`VoicemailCmd::Discard`] (nothing said); it is never submitted: the call record
    /// names it.
    StartComment {
        /// The recording.
        recording: RecordingId,
        /// Its store key (see `ivr_voicemail::calls::is_comment_key`).
        key: String,
        /// The call record so far, its comment answer included.
        record: Box<ivr_voicemail::calls::CallRecord>,
    },
    /// 20 ms of the caller's audio (8 kHz, 16-bit).
    Frame {
        /// The recording.
        recording: RecordingId,
        /// The samples.
        frame: Frame,
    },
    /// The message is over: finish the file and make it durable.
    Stop {
        /// The recording.
        recording: RecordingId,
    },
    /// Delete the recording (re-recorded or cancelled).
    Discard {
        /// The recording.
        recording: RecordingId,
    },
    /// Store the request (with the stopped recording, if it has one) and answer with
    /// [`VoicemailReport::Stored`].
    Submit {
        /// The call, for the answer.
        call: CallHandle,
        /// The recording, if the request has a message.
        recording: Option<RecordingId>,
        /// The request.
        request: Box<CallbackRequest>,
    },
}

/// What the driver reports about voicemail work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoicemailReport {
    /// A recording could not be written (disk full, unwritable folder).
    RecordingFailed {
        /// The recording.
        recording: RecordingId,
    },
    /// A submitted request was stored, or not.
    Stored {
        /// The call.
        call: CallHandle,
        /// Whether it was.
        ok: bool,
    },
}

/// A queued callback request kept in the store, handed back at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredCallback {
    /// Its store id.
    pub id: String,
    /// Its queue.
    pub queue: String,
    /// The number to call back.
    pub number: String,
    /// The caller's priority in the queue when the request was taken.
    pub priority: u8,
}

/// What the store records of queued callbacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueCallbackCmd {
    /// A request taken in a caller's place: stored as a callback request of kind
    /// `queue_callback` (status `new`).
    Store(Box<ivr_voicemail::CallbackRequest>),
    /// Its status changed (`called_back` once the caller answered, `no_answer` once the
    /// last attempt failed, `resolved` once cancelled), with a note for its history.
    Status {
        /// Its store id.
        id: String,
        /// The new status's name.
        status: &'static str,
        /// Why.
        note: String,
    },
}
