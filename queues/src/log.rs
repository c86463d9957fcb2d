//! The queue event log as stored: one flat [`Row`] per [`QueueEvent`], with wall-clock time,
//! so that a store (SQLite, PostgreSQL) keeps it and [`crate::report`] reads it back.
//!
//! The center's events carry an `Instant`; the engine turns it into Unix milliseconds (it
//! knows the wall clock) and names calls by something that outlives the process (the SIP
//! Call-ID), since [`CallRef`]s start again at every start. A [`Kind::Start`] row, written
//! when the engine starts, ends every agent state the previous run left open.

use crate::agent::{AgentState, PauseReason};
use crate::ids::{CallRef, Waiter};
use crate::messages::{OfferFailure, QueueEvent};
use std::fmt;

/// What a row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The engine started: agent states of the previous run are over.
    Start,
    /// A caller joined a queue.
    Enter,
    /// An agent was rung.
    Offer,
    /// An offer ended unanswered (`detail`: no_answer, busy, rejected, unreachable).
    OfferFailed,
    /// An agent answered (`wait_ms`: how long the waiter had waited).
    Answer,
    /// The agent hung up before the caller was put through; the caller is back in line
    /// (`wait_ms`: the wait its `Answer` row reported, which this row undoes).
    Requeue,
    /// A waiting caller hung up.
    Abandon,
    /// A waiting caller pressed an exit key (`detail`: the key).
    ExitKey,
    /// A waiting caller reached the max wait.
    Timeout,
    /// A waiting caller was sent out because no agent works the queue.
    LeaveEmpty,
    /// A call was transferred away.
    Transfer,
    /// A connected call ended (`talk_ms`).
    Complete,
    /// A caller asked to be called back, keeping its place.
    CallbackRequested,
    /// A callback is being dialled (`detail`: the attempt).
    CallbackDialing,
    /// The called-back caller answered.
    CallbackConnected,
    /// A callback attempt failed (`detail`: `attempt N, retrying` or `attempt N, final`).
    CallbackFailed,
    /// Staff cancelled a callback.
    CallbackCancelled,
    /// An agent's state changed (`detail`: the state).
    Agent,
}

impl Kind {
    /// Every kind, in declaration order.
    pub const ALL: [Kind; 18] = [
        Kind::Start,
        Kind::Enter,
        Kind::Offer,
        Kind::OfferFailed,
        Kind::Answer,
        Kind::Requeue,
        Kind::Abandon,
        Kind::ExitKey,
        Kind::Timeout,
        Kind::LeaveEmpty,
        Kind::Transfer,
        Kind::Complete,
        Kind::CallbackRequested,
        Kind::CallbackDialing,
        Kind::CallbackConnected,
        Kind::CallbackFailed,
        Kind::CallbackCancelled,
        Kind::Agent,
    ];

    /// Its stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Start => "start",
            Kind::Enter => "enter",
            Kind::Offer => "offer",
            Kind::OfferFailed => "offer_failed",
            Kind::Answer => "answer",
            Kind::Requeue => "requeue",
            Kind::Abandon => "abandon",
            Kind::ExitKey => "exit_key",
            Kind::Timeout => "timeout",
            Kind::LeaveEmpty => "leave_empty",
            Kind::Transfer => "transfer",
            Kind::Complete => "complete",
            Kind::CallbackRequested => "callback_requested",
            Kind::CallbackDialing => "callback_dialing",
            Kind::CallbackConnected => "callback_connected",
            Kind::CallbackFailed => "callback_failed",
            Kind::CallbackCancelled => "callback_cancelled",
            Kind::Agent => "agent",
        }
    }

    /// The kind a stored name names.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// When, in Unix milliseconds.
    pub at_ms: i64,
    /// What.
    pub kind: Kind,
    /// The queue, if the event has one.
    pub queue: Option<String>,
    /// The caller (its call's name) or the callback (`callback#N`).
    pub call: Option<String>,
    /// The agent, if any.
    pub agent: Option<String>,
    /// The caller's place in line (1 = next), if the event has one.
    pub position: Option<i64>,
    /// How long the caller had waited, if the event has it.
    pub wait_ms: Option<i64>,
    /// How long the call lasted (for [`Kind::Complete`]).
    pub talk_ms: Option<i64>,
    /// The rest: a failure's cause, a key, an agent's state, an attempt.
    pub detail: Option<String>,
}

impl Row {
    /// A row of `kind` at `at_ms` with nothing else.
    pub fn new(at_ms: i64, kind: Kind) -> Row {
        Row {
            at_ms,
            kind,
            queue: None,
            call: None,
            agent: None,
            position: None,
            wait_ms: None,
            talk_ms: None,
            detail: None,
        }
    }

    /// The row for the center's `event` at `at_ms`, naming calls with `call_name`.
    pub fn of(event: &QueueEvent, at_ms: i64, call_name: &dyn Fn(CallRef) -> String) -> Row {
        let waiter = |w: &Waiter| match w {
            Waiter::Caller(c) => call_name(*c),
            Waiter::Callback(cb) => cb.to_string(),
        };
        let ms = |d: &std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let pos = |p: &usize| i64::try_from(*p).unwrap_or(i64::MAX);
        let mut r = Row::new(at_ms, Kind::Start);
        match event {
            QueueEvent::Enter {
                queue,
                call,
                position,
                priority,
            } => {
                r.kind = Kind::Enter;
                r.queue = Some(queue.to_string());
                r.call = Some(call_name(*call));
                r.position = Some(pos(position));
                r.detail = (*priority != 0).then(|| format!("priority {priority}"));
            }
            QueueEvent::Offer {
                queue,
                waiter: w,
                agent,
                ..
            } => {
                r.kind = Kind::Offer;
                r.queue = Some(queue.to_string());
                r.call = Some(waiter(w));
                r.agent = Some(agent.to_string());
            }
            QueueEvent::OfferFailed {
                queue,
                waiter: w,
                agent,
                why,
            } => {
                r.kind = Kind::OfferFailed;
                r.queue = Some(queue.to_string());
                r.call = Some(waiter(w));
                r.agent = Some(agent.to_string());
                r.detail = Some(
                    match why {
                        OfferFailure::NoAnswer => "no_answer",
                        OfferFailure::Busy => "busy",
                        OfferFailure::Rejected => "rejected",
                        OfferFailure::Unreachable => "unreachable",
                    }
                    .to_string(),
                );
            }
            QueueEvent::Answer {
                queue,
                waiter: w,
                agent,
                wait,
            } => {
                r.kind = Kind::Answer;
                r.queue = Some(queue.to_string());
                r.call = Some(waiter(w));
                r.agent = Some(agent.to_string());
                r.wait_ms = Some(ms(wait));
            }
            QueueEvent::Requeue {
                queue,
                call,
                agent,
                wait,
            } => {
                r.kind = Kind::Requeue;
                r.queue = Some(queue.to_string());
                r.call = Some(call_name(*call));
                r.agent = Some(agent.to_string());
                r.wait_ms = Some(ms(wait));
            }
            QueueEvent::Abandon {
                queue,
                call,
                position,
                wait,
            }
            | QueueEvent::Timeout {
                queue,
                call,
                position,
                wait,
            }
            | QueueEvent::LeaveEmpty {
                queue,
                call,
                position,
                wait,
            } => {
                r.kind = match event {
                    QueueEvent::Abandon { .. } => Kind::Abandon,
                    QueueEvent::Timeout { .. } => Kind::Timeout,
                    _ => Kind::LeaveEmpty,
                };
                r.queue = Some(queue.to_string());
                r.call = Some(call_name(*call));
                r.position = Some(pos(position));
                r.wait_ms = Some(ms(wait));
            }
            QueueEvent::ExitKey {
                queue,
                call,
                key,
                position,
                wait,
            } => {
                r.kind = Kind::ExitKey;
                r.queue = Some(queue.to_string());
                r.call = Some(call_name(*call));
                r.position = Some(pos(position));
                r.wait_ms = Some(ms(wait));
                r.detail = Some(key.to_string());
            }
            QueueEvent::Transfer { queue, call, agent } => {
                r.kind = Kind::Transfer;
                r.queue = Some(queue.to_string());
                r.call = Some(call_name(*call));
                r.agent = agent.as_ref().map(ToString::to_string);
            }
            QueueEvent::Complete {
                queue,
                call,
                agent,
                talk,
            } => {
                r.kind = Kind::Complete;
                r.queue = Some(queue.to_string());
                r.call = Some(call_name(*call));
                r.agent = Some(agent.to_string());
                r.talk_ms = Some(ms(talk));
            }
            QueueEvent::CallbackRequested {
                queue,
                callback,
                call,
                position,
            } => {
                r.kind = Kind::CallbackRequested;
                r.queue = Some(queue.to_string());
                r.call = Some(callback.to_string());
                r.position = Some(pos(position));
                r.detail = Some(format!("asked on {}", call_name(*call)));
            }
            QueueEvent::CallbackDialing {
                queue,
                callback,
                agent,
                attempt,
            } => {
                r.kind = Kind::CallbackDialing;
                r.queue = Some(queue.to_string());
                r.call = Some(callback.to_string());
                r.agent = Some(agent.to_string());
                r.detail = Some(format!("attempt {attempt}"));
            }
            QueueEvent::CallbackConnected {
                queue,
                callback,
                agent,
                ..
            } => {
                r.kind = Kind::CallbackConnected;
                r.queue = Some(queue.to_string());
                r.call = Some(callback.to_string());
                r.agent = Some(agent.to_string());
            }
            QueueEvent::CallbackFailed {
                queue,
                callback,
                attempt,
                retrying,
            } => {
                r.kind = Kind::CallbackFailed;
                r.queue = Some(queue.to_string());
                r.call = Some(callback.to_string());
                let then = if *retrying { "retrying" } else { "final" };
                r.detail = Some(format!("attempt {attempt}, {then}"));
            }
            QueueEvent::CallbackCancelled { queue, callback } => {
                r.kind = Kind::CallbackCancelled;
                r.queue = Some(queue.to_string());
                r.call = Some(callback.to_string());
            }
            QueueEvent::Agent { agent, state } => {
                r.kind = Kind::Agent;
                r.agent = Some(agent.to_string());
                r.detail = Some(state_name(state));
            }
        }
        r
    }
}

/// How an agent's state is stored: `logged_out`, `available`, `ringing`, `on_call`,
/// `wrap_up`, `paused` or `paused: REASON`.
pub fn state_name(state: &AgentState) -> String {
    match state {
        AgentState::LoggedOut => "logged_out".into(),
        AgentState::Available => "available".into(),
        AgentState::Ringing { .. } => "ringing".into(),
        AgentState::OnCall { .. } => "on_call".into(),
        AgentState::WrapUp { .. } => "wrap_up".into(),
        AgentState::Paused {
            reason: PauseReason::Requested(r),
        } if r.is_empty() => "paused".into(),
        AgentState::Paused {
            reason: PauseReason::Requested(r),
        } => format!("paused: {r}"),
        AgentState::Paused {
            reason: PauseReason::NoAnswer { offers },
        } => format!("paused: {offers} offers unanswered"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AgentId, CallbackId, QueueName};
    use std::time::Duration;

    fn name(c: CallRef) -> String {
        format!("sip-{}", c.0)
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
        assert_eq!(Kind::parse("nonsense"), None);
    }

    #[test]
    fn events_become_rows_with_wall_time_and_durable_call_names() {
        let q = QueueName::new("sales");
        let r = Row::of(
            &QueueEvent::Abandon {
                queue: q.clone(),
                call: CallRef(3),
                position: 2,
                wait: Duration::from_millis(41_500),
            },
            1_000,
            &name,
        );
        assert_eq!(r.kind, Kind::Abandon);
        assert_eq!(r.queue.as_deref(), Some("sales"));
        assert_eq!(r.call.as_deref(), Some("sip-3"));
        assert_eq!((r.position, r.wait_ms), (Some(2), Some(41_500)));
        let r = Row::of(
            &QueueEvent::Answer {
                queue: q.clone(),
                waiter: Waiter::Callback(CallbackId(9)),
                agent: AgentId::new("alice"),
                wait: Duration::from_secs(5),
            },
            2_000,
            &name,
        );
        assert_eq!(r.call.as_deref(), Some("callback#9"));
        assert_eq!(r.agent.as_deref(), Some("alice"));
        let r = Row::of(
            &QueueEvent::Agent {
                agent: AgentId::new("bob"),
                state: AgentState::Paused {
                    reason: PauseReason::NoAnswer { offers: 3 },
                },
            },
            3_000,
            &name,
        );
        assert_eq!(r.detail.as_deref(), Some("paused: 3 offers unanswered"));
    }
}
