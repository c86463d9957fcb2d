//! The messages calls and staff send the center, and what it asks of the engine.

use crate::agent::AgentState;
use crate::config::ValidConfig;
use crate::ids::{AgentId, CallRef, CallbackId, OfferId, QueueName, Waiter};
use std::time::{Duration, Instant};

/// A message to the center.
#[derive(Debug, Clone)]
pub enum Input {
    /// A caller joins a queue (answered by [`Output::Joined`] or [`Output::Refused`]).
    Enter {
        /// The caller's call.
        call: CallRef,
        /// The queue.
        queue: QueueName,
        /// Higher is served first; equal priorities are served in arrival order.
        priority: u8,
        /// The caller's number (shown on the agent's phone), if known.
        caller: Option<String>,
    },
    /// A caller leaves: hung up, pressed an exit key, or was transferred, while waiting or
    /// while talking to an agent. Unknown calls are ignored (the center already let go).
    Leave {
        /// The call.
        call: CallRef,
        /// Why.
        reason: LeaveReason,
    },
    /// A connected call is over (either side hung up): the agent goes to wrap-up.
    CallEnded {
        /// The call.
        call: CallRef,
    },
    /// The agent of a connected caller hung up before the caller was put through (while the
    /// agent heard the queue's whisper): the caller goes back to its place in line, as in
    /// Asterisk's app_queue when the agent hangs up during its announcement. The agent is
    /// free again without wrap-up (nobody talked), after the queue's `retry` rest, and is
    /// tried for that caller only after the others. Ignored for a callback's call and for
    /// calls the center does not hold as connected.
    Requeue {
        /// The caller's call.
        call: CallRef,
    },
    /// An agent logs in to all its queues.
    AgentLogin(AgentId),
    /// An agent logs out (after its current call, if on one).
    AgentLogout(AgentId),
    /// An agent pauses (after its current call, if on one).
    AgentPause {
        /// The agent.
        agent: AgentId,
        /// Why, as the agent or staff gave it ("lunch"); cut to
        /// [`Limits::max_reason_len`](crate::Limits::max_reason_len).
        reason: String,
    },
    /// An agent resumes taking calls (or cancels a pause asked for during a call).
    AgentUnpause(AgentId),
    /// An agent's phone became reachable (registered) or unreachable. Unreachable agents are
    /// not offered calls. Agents start reachable.
    AgentReachable {
        /// The agent.
        agent: AgentId,
        /// Whether it can be rung.
        reachable: bool,
    },
    /// The agent answered an offer.
    OfferAnswered(OfferId),
    /// An offer ended without an answer.
    OfferFailed {
        /// The offer.
        offer: OfferId,
        /// How.
        why: OfferFailure,
    },
    /// A waiting caller confirmed a number to be called back on; answered by
    /// [`Output::CallbackAccepted`] (the engine then says goodbye and hangs up) or
    /// [`Output::CallbackRefused`] (the caller keeps waiting on the line).
    RequestCallback {
        /// The waiting caller.
        call: CallRef,
        /// The number to call back.
        number: String,
    },
    /// The caller answered the callback call the engine placed after
    /// [`Output::DialCallback`]; `call` names that new call from now on.
    CallbackConnected {
        /// The callback.
        callback: CallbackId,
        /// The engine's new call (bridged with the agent).
        call: CallRef,
    },
    /// The callback call to the caller failed (no answer, busy, unreachable).
    CallbackFailed(CallbackId),
    /// Staff cancel a pending callback.
    CancelCallback(CallbackId),
    /// A callback request kept across a restart goes back in line, behind whoever waits
    /// at its priority or higher (at start: nobody; restore them oldest first to keep their
    /// order); answered by [`Output::CallbackRestored`], or nothing if refused (unknown
    /// queue or one without callbacks, a bad or duplicate number, too many pending).
    RestoreCallback {
        /// Its queue.
        queue: QueueName,
        /// The number to call back.
        number: String,
        /// The caller's priority when the request was taken.
        priority: u8,
    },
    /// A new configuration (reload): agents stay logged in, waiting callers stay.
    Reconfigure(ValidConfig),
}

/// Why a caller left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveReason {
    /// The caller hung up.
    Hangup,
    /// The caller pressed one of the queue's exit keys.
    ExitKey(char),
    /// The call was transferred away (by the caller's choice or the agent).
    Transferred,
}

/// How an offer ended without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferFailure {
    /// The phone rang and nobody answered (also the center's own ring timeout). Counts
    /// towards the no-answer pause.
    NoAnswer,
    /// The phone was busy. Does not count towards the no-answer pause.
    Busy,
    /// The agent declined. Counts towards the no-answer pause.
    Rejected,
    /// The phone could not be reached. Does not count towards the no-answer pause (the
    /// registration tells reachability).
    Unreachable,
}

impl OfferFailure {
    /// Whether it counts towards [`QueueConfig::max_no_answer`](crate::QueueConfig::max_no_answer).
    pub fn counts_as_no_answer(self) -> bool {
        matches!(self, OfferFailure::NoAnswer | OfferFailure::Rejected)
    }
}

/// What the center asks of the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The caller is in the queue at `position` (1 = next).
    Joined {
        /// The call.
        call: CallRef,
        /// The queue.
        queue: QueueName,
        /// Its place.
        position: usize,
    },
    /// The caller was not let in; the engine goes on as after a timeout.
    Refused {
        /// The call.
        call: CallRef,
        /// The queue asked for.
        queue: QueueName,
        /// Why.
        reason: RefuseReason,
    },
    /// Ring the agent's phones for this waiter; report [`Input::OfferAnswered`] or
    /// [`Input::OfferFailed`]. The center cancels it itself after the ring timeout.
    Offer {
        /// The offer.
        offer: OfferId,
        /// Who to ring.
        agent: AgentId,
        /// For which queue.
        queue: QueueName,
        /// For whom.
        waiter: Waiter,
        /// The caller's number, for the agent's display.
        caller: Option<String>,
    },
    /// Stop ringing: the ring timed out, another phone answered (ring-all), the caller left,
    /// or the agent logged out or paused. An answer that still arrives is
    /// [`Output::Release`]d.
    CancelOffer {
        /// The offer.
        offer: OfferId,
        /// Whose phone.
        agent: AgentId,
    },
    /// The agent answered an offer nobody wants any more (the caller hung up as it was
    /// answered, another phone took it first): hang up the agent's leg. The agent is free.
    Release {
        /// The offer.
        offer: OfferId,
    },
    /// Bridge the caller with the agent who answered `offer`.
    Connect {
        /// The caller.
        call: CallRef,
        /// The agent.
        agent: AgentId,
        /// The answered offer (names the agent's leg).
        offer: OfferId,
    },
    /// Tell a waiting caller where they stand. `periodic`: the queue's periodic announcement
    /// is due (play it). `position` and `estimated_wait` are present only when they changed
    /// since the caller last heard them (and the queue announces them).
    Announce {
        /// The caller.
        call: CallRef,
        /// Whether this is the periodic announcement (false: the one on entry).
        periodic: bool,
        /// The new position (1 = next).
        position: Option<usize>,
        /// The new estimated wait, whole minutes.
        estimated_wait: Option<Duration>,
    },
    /// The caller leaves the queue (`on_timeout` in the menus).
    Exit {
        /// The caller.
        call: CallRef,
        /// The queue.
        queue: QueueName,
        /// Why.
        reason: ExitReason,
    },
    /// The callback request is queued in the caller's place: confirm and hang up.
    CallbackAccepted {
        /// The caller's (ending) call.
        call: CallRef,
        /// The request.
        callback: CallbackId,
        /// Its place.
        position: usize,
    },
    /// A restored callback request is back in line ([`Input::RestoreCallback`]).
    CallbackRestored {
        /// Its new id.
        callback: CallbackId,
        /// Its number.
        number: String,
        /// Its place.
        position: usize,
    },
    /// The callback request was not taken; the caller keeps waiting on the line.
    CallbackRefused {
        /// The caller.
        call: CallRef,
        /// Why.
        reason: CallbackRefusal,
    },
    /// The agent answered the callback's offer: call the caller now and bridge them; report
    /// [`Input::CallbackConnected`] or [`Input::CallbackFailed`].
    DialCallback {
        /// The request.
        callback: CallbackId,
        /// The agent on the line (the answered offer's leg).
        agent: AgentId,
        /// The answered offer.
        offer: OfferId,
        /// The number to call.
        number: String,
        /// 1 for the first attempt.
        attempt: u32,
    },
    /// A record for the queue event log.
    Event(LoggedEvent),
}

/// Why a caller was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefuseReason {
    /// No such queue (or it was removed by a reload).
    UnknownQueue,
    /// The queue holds its `max_waiting`.
    Full,
    /// The queue's `join_when_empty` rule applies.
    NoAgents,
    /// The call is already in a queue or talking to an agent.
    AlreadyQueued,
}

/// Why a waiting caller was sent out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// It waited the queue's `max_wait`.
    MaxWait,
    /// The queue's `leave_when_empty` rule applies.
    Empty,
}

/// Why a callback request was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackRefusal {
    /// The queue does not offer callbacks.
    NotOffered,
    /// The call is not waiting in a queue.
    NotWaiting,
    /// The number already has a pending callback (one per number).
    Duplicate,
    /// [`Limits::max_callbacks`](crate::Limits::max_callbacks) are pending.
    Full,
    /// The number is empty, too long, or not digits (with an optional leading `+`).
    BadNumber,
}

/// A queue event with its time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    /// When it happened.
    pub at: Instant,
    /// What happened.
    pub event: QueueEvent,
}

/// What the queue event log records (for reports: service level, abandon rate, agents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueEvent {
    /// A caller joined.
    Enter {
        /// The queue.
        queue: QueueName,
        /// The caller.
        call: CallRef,
        /// Its place at entry.
        position: usize,
        /// Its priority.
        priority: u8,
    },
    /// An agent was rung.
    Offer {
        /// The queue.
        queue: QueueName,
        /// For whom.
        waiter: Waiter,
        /// Who.
        agent: AgentId,
        /// The offer.
        offer: OfferId,
    },
    /// An offer ended unanswered (the center's ring timeout is `NoAnswer`).
    OfferFailed {
        /// The queue.
        queue: QueueName,
        /// For whom.
        waiter: Waiter,
        /// Who.
        agent: AgentId,
        /// How.
        why: OfferFailure,
    },
    /// An agent answered.
    Answer {
        /// The queue.
        queue: QueueName,
        /// For whom.
        waiter: Waiter,
        /// Who.
        agent: AgentId,
        /// How long the waiter had waited.
        wait: Duration,
    },
    /// The agent hung up before the caller was put through ([`Input::Requeue`]): the caller
    /// is back in line. It undoes the [`QueueEvent::Answer`] of that call in reports.
    Requeue {
        /// The queue.
        queue: QueueName,
        /// The caller.
        call: CallRef,
        /// The agent.
        agent: AgentId,
        /// The wait its `Answer` reported.
        wait: Duration,
    },
    /// A waiting caller hung up.
    Abandon {
        /// The queue.
        queue: QueueName,
        /// The caller.
        call: CallRef,
        /// Its place when it hung up.
        position: usize,
        /// How long it had waited.
        wait: Duration,
    },
    /// A waiting caller pressed an exit key.
    ExitKey {
        /// The queue.
        queue: QueueName,
        /// The caller.
        call: CallRef,
        /// The key.
        key: char,
        /// Its place.
        position: usize,
        /// How long it had waited.
        wait: Duration,
    },
    /// A waiting caller reached the max wait.
    Timeout {
        /// The queue.
        queue: QueueName,
        /// The caller.
        call: CallRef,
        /// Its place.
        position: usize,
        /// How long it had waited.
        wait: Duration,
    },
    /// A waiting caller was sent out by the leave-when-empty rule.
    LeaveEmpty {
        /// The queue.
        queue: QueueName,
        /// The caller.
        call: CallRef,
        /// Its place.
        position: usize,
        /// How long it had waited.
        wait: Duration,
    },
    /// A call was transferred away (waiting: `agent` is `None`).
    Transfer {
        /// The queue.
        queue: QueueName,
        /// The call.
        call: CallRef,
        /// The agent it was talking to, if any.
        agent: Option<AgentId>,
    },
    /// A connected call ended.
    Complete {
        /// The queue.
        queue: QueueName,
        /// The call.
        call: CallRef,
        /// The agent.
        agent: AgentId,
        /// How long they talked.
        talk: Duration,
    },
    /// A callback request took the caller's place.
    CallbackRequested {
        /// The queue.
        queue: QueueName,
        /// The request.
        callback: CallbackId,
        /// The caller's call that asked.
        call: CallRef,
        /// Its place.
        position: usize,
    },
    /// The caller is being called back (the agent is on the line).
    CallbackDialing {
        /// The queue.
        queue: QueueName,
        /// The request.
        callback: CallbackId,
        /// The agent.
        agent: AgentId,
        /// 1 for the first attempt.
        attempt: u32,
    },
    /// The caller answered the callback.
    CallbackConnected {
        /// The queue.
        queue: QueueName,
        /// The request.
        callback: CallbackId,
        /// The new call.
        call: CallRef,
        /// The agent.
        agent: AgentId,
    },
    /// A callback attempt failed.
    CallbackFailed {
        /// The queue.
        queue: QueueName,
        /// The request.
        callback: CallbackId,
        /// The failed attempt (1 = first).
        attempt: u32,
        /// Whether another attempt will follow (in its place in line).
        retrying: bool,
    },
    /// Staff cancelled a callback.
    CallbackCancelled {
        /// The queue.
        queue: QueueName,
        /// The request.
        callback: CallbackId,
    },
    /// An agent's state changed.
    Agent {
        /// The agent.
        agent: AgentId,
        /// Its new state.
        state: AgentState,
    },
}
