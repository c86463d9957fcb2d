//! The messages between engines and the [`Hub`](crate::hub::Hub), the one owner of queue
//! and agent state.
//!
//! An engine tells the hub what its calls do with [`HubMsg`]; the hub answers with
//! [`HubOutput`]s, of which [`HubOutput::Shard`] carries a [`ShardMsg`] addressed to the
//! engine (shard) that owns the call or the offer it names. Nothing else crosses: no engine
//! reads the center, and the hub reads no call. Embedded in one engine ([`crate::Engine::new`])
//! the messages are handed over synchronously, in the order they were made; a later step
//! carries them over channels between threads.

use crate::agent_desk::AgentAction;
use crate::handle::CallHandle;
use crate::io::{QueueCallbackCmd, RestoredCallback};
use ivr_menus::Menus;
use ivr_menus::agents::AgentCode;
use ivr_queues::{CallRef, CallbackId, Input, QueueEvent, QueueName};
use ivr_sip::message::Request;
use ivr_sip::registrar::{RegisterReply, RegistrarEvent};
use ivr_sip::transaction::{Peer, ServerKey};
use ivr_sip::uri::Uri;
use ivr_voicemail::CallbackRequest;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// The index of an engine (shard) among those the hub serves; an embedded hub serves one,
/// shard 0.
pub type ShardId = u16;

/// The shard a call belongs to: the top 16 bits of its handle (0 for every call of an
/// engine made with [`crate::Engine::new`]).
pub fn shard_of_call(call: CallRef) -> ShardId {
    // The shift leaves 16 bits: the cast keeps them all.
    (call.0 >> 48) as ShardId
}

/// What an engine tells the hub.
#[derive(Debug)]
pub enum HubMsg {
    /// A center input with nothing beside it (offers failing or answered, callers leaving,
    /// calls ending, agents' presence and requests, requeues, callbacks connected or failed).
    Queue(Input),
    /// A caller joins `queue` ([`Input::Enter`]); the Call-ID, caller and path are kept
    /// beside the center until [`HubMsg::CallGone`], for the queue log and the queue view.
    Enter {
        /// The caller's call.
        call: CallRef,
        /// The queue.
        queue: QueueName,
        /// The `queue:` action's priority.
        priority: u8,
        /// The caller's number, if known.
        caller: Option<String>,
        /// The call's SIP Call-ID.
        call_id: String,
        /// The menus the caller came through.
        path: Vec<String>,
    },
    /// A queued callback's own call started: its Call-ID names it in the queue log.
    CallbackCall {
        /// The callback's call.
        call: CallRef,
        /// Its SIP Call-ID.
        call_id: String,
    },
    /// A waiting caller asks to be called back on `number` ([`Input::RequestCallback`]).
    /// `request` is what the store keeps if the center takes it: the hub fills in its id,
    /// time and priority.
    RequestCallback {
        /// The caller's call.
        call: CallRef,
        /// The number to call back.
        number: String,
        /// The request as the call knows it.
        request: Box<CallbackRequest>,
    },
    /// The call is gone (sent after its `Leave` or `CallEnded`): its row beside the center
    /// is dropped.
    CallGone(CallRef),
    /// New menus: the hub's view follows now, the center at the next [`HubMsg::Sync`].
    Reload(Arc<Menus>),
    /// Hand the center a configuration that came with [`HubMsg::Reload`] (or at start),
    /// and log static agents in.
    Sync,
    /// The wall clock at `now` (stamps of stored callback requests).
    WallClock(SystemTime),
    /// The store's requests still waiting at the last stop, to put back in line.
    RestoreCallbacks(Vec<RestoredCallback>),
    /// Staff closed the stored request with this id.
    CancelCallback(String),
    /// A REGISTER outside any dialog (RFC 3261 §10.3), for the hub's registrar. The engine
    /// keeps the server transaction; the request comes back with the answer
    /// ([`ShardMsg::RegisterReply`]) for the engine to build the response from.
    Register {
        /// The REGISTER's server transaction.
        key: ServerKey,
        /// The request.
        req: Box<Request>,
        /// Where it came from (agents are reached there: NAT).
        peer: Peer,
    },
    /// An INVITE dialling a feature code, parked by its engine until the hub's registrar
    /// has authenticated it (RFC 3261 §22.2); answered with [`ShardMsg::Authenticated`].
    Authenticate {
        /// The INVITE's server transaction.
        key: ServerKey,
        /// The request (handed back with the answer).
        req: Box<Request>,
        /// Where it came from.
        peer: Peer,
        /// The code it dials.
        code: AgentCode,
    },
    /// An authenticated feature call's request, applied at the next [`HubMsg::Sync`]
    /// (the engine logged it).
    Agent {
        /// Whose phone.
        agent: String,
        /// What it asks for.
        action: AgentAction,
    },
}

/// One phone to ring for an offer: where the agent is reached, read by the hub's registrar
/// when the offer is routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentTarget {
    /// The Request-URI (a registered contact, or a static agent's URI).
    pub uri: Uri,
    /// Where the INVITE goes (the address the REGISTER came from, because of NAT).
    pub peer: Peer,
    /// A static agent's host name to locate by DNS (RFC 3263) first; `peer` is a
    /// placeholder until then.
    pub locate: bool,
}

/// The hub's answer to a REGISTER.
#[derive(Debug)]
pub enum RegisterAnswer {
    /// No agent registers in the config: 405.
    NotAllowed,
    /// The registrar's reply.
    Reply(RegisterReply),
}

/// The hub's answer to a feature-code INVITE.
#[derive(Debug)]
pub enum FeatureAnswer {
    /// Authenticated as `agent`, asking for `action` (a pause toggle resolved from the
    /// agent's state at the hub).
    Ok {
        /// Whose phone.
        agent: String,
        /// What to apply once the call is accepted.
        action: AgentAction,
    },
    /// The reply to send instead (a challenge, or 403).
    Refused(RegisterReply),
    /// No agent registers in the config (any more): an ordinary call after all.
    NotAFeature,
}

/// What the hub tells the engine (shard) that owns a call or an offer.
#[derive(Debug)]
pub enum ShardMsg {
    /// A center output naming one of the shard's calls or offers: `Refused`, `Exit`,
    /// `CancelOffer`, `Release`, `Connect`, `Announce`, `CallbackRefused`,
    /// `DialCallback`.
    Center(ivr_queues::Output),
    /// The center took a callback request in the caller's place; it is stored as
    /// `store_id`.
    CallbackAccepted {
        /// The caller's call.
        call: CallRef,
        /// The center's id for the request.
        callback: CallbackId,
        /// Its id in the store.
        store_id: String,
    },
    /// [`ivr_queues::Output::Offer`] (for a caller or a queued callback) with the phones
    /// to ring, newest registration first.
    Offer {
        /// The center's output.
        out: ivr_queues::Output,
        /// Where the agent is reached now (empty: unreachable).
        targets: Vec<AgentTarget>,
    },
    /// The answer to [`HubMsg::Register`].
    RegisterReply {
        /// The REGISTER's server transaction.
        key: ServerKey,
        /// The request, back.
        req: Box<Request>,
        /// What to answer.
        answer: RegisterAnswer,
    },
    /// The answer to [`HubMsg::Authenticate`].
    Authenticated {
        /// The INVITE's server transaction.
        key: ServerKey,
        /// The request, back.
        req: Box<Request>,
        /// Where it came from.
        peer: Peer,
        /// The verdict.
        answer: FeatureAnswer,
    },
    /// A queue event about one of the shard's calls, for its call record.
    QueueEvent {
        /// The call.
        call: CallRef,
        /// When it happened.
        at: Instant,
        /// What happened.
        event: QueueEvent,
    },
}

/// What the hub hands its owner, in order.
#[derive(Debug)]
pub enum HubOutput {
    /// For the shard `shard`.
    Shard {
        /// The engine that owns what `msg` names.
        shard: ShardId,
        /// The message.
        msg: ShardMsg,
    },
    /// A queue event for the log (and the queue log table).
    Event {
        /// The call it concerns, if any.
        call: Option<CallHandle>,
        /// That call's SIP Call-ID.
        call_id: Option<String>,
        /// When it happened.
        at: Instant,
        /// What happened.
        event: QueueEvent,
    },
    /// A command for the queued-callback store.
    QueueCallback(QueueCallbackCmd),
    /// A failed authentication (REGISTER or feature code) from `from`: the owner of the
    /// source gate counts it toward the source's ban.
    AuthFailed {
        /// The source.
        from: SocketAddr,
        /// The request's method.
        method: &'static str,
    },
    /// What happened to an agent's registrations, with how many agents are registered now.
    Agent {
        /// The change.
        change: RegistrarEvent,
        /// Agents with a phone registered.
        registered: usize,
    },
}
