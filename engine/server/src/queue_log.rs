//! The queue event log: one `info` line per [`QueueEvent`], in the call's span when the
//! event concerns a call (agents' state changes are logged on their own).

use ivr_queues::{AgentState, QueueEvent};
use tracing::info;

/// Log one queue event.
pub fn log(event: &QueueEvent) {
    match event {
        QueueEvent::Enter {
            queue,
            position,
            priority,
            ..
        } => info!(%queue, position, priority, "queue: caller joined"),
        QueueEvent::Offer {
            queue,
            agent,
            offer,
            ..
        } => info!(%queue, %agent, %offer, "queue: ringing an agent"),
        QueueEvent::OfferFailed {
            queue, agent, why, ..
        } => info!(%queue, %agent, why = ?why, "queue: the agent did not take the call"),
        QueueEvent::Answer {
            queue, agent, wait, ..
        } => info!(%queue, %agent, wait_ms = wait.as_millis() as u64, "queue: agent answered"),
        QueueEvent::Requeue { queue, agent, .. } => {
            info!(%queue, %agent, "queue: the agent hung up during the whisper, caller back in line")
        }
        QueueEvent::Abandon {
            queue,
            position,
            wait,
            ..
        } => {
            info!(%queue, position, wait_ms = wait.as_millis() as u64, "queue: caller hung up while waiting")
        }
        QueueEvent::ExitKey {
            queue,
            key,
            position,
            wait,
            ..
        } => {
            info!(%queue, %key, position, wait_ms = wait.as_millis() as u64, "queue: caller left by key")
        }
        QueueEvent::Timeout {
            queue,
            position,
            wait,
            ..
        } => info!(%queue, position, wait_ms = wait.as_millis() as u64, "queue: max wait reached"),
        QueueEvent::LeaveEmpty {
            queue,
            position,
            wait,
            ..
        } => {
            info!(%queue, position, wait_ms = wait.as_millis() as u64, "queue: no agents left, caller sent out")
        }
        QueueEvent::Transfer { queue, agent, .. } => {
            info!(%queue, agent = agent.as_ref().map(|a| a.0.as_str()).unwrap_or(""), "queue: call transferred")
        }
        QueueEvent::Complete {
            queue, agent, talk, ..
        } => info!(%queue, %agent, talk_ms = talk.as_millis() as u64, "queue: call completed"),
        QueueEvent::CallbackRequested {
            queue,
            callback,
            position,
            ..
        } => info!(%queue, %callback, position, "queue: callback requested"),
        QueueEvent::CallbackDialing {
            queue,
            callback,
            agent,
            attempt,
        } => info!(%queue, %callback, %agent, attempt, "queue: calling the caller back"),
        QueueEvent::CallbackConnected {
            queue,
            callback,
            agent,
            ..
        } => info!(%queue, %callback, %agent, "queue: callback connected"),
        QueueEvent::CallbackFailed {
            queue,
            callback,
            attempt,
            retrying,
        } => info!(%queue, %callback, attempt, retrying, "queue: callback attempt failed"),
        QueueEvent::CallbackCancelled { queue, callback } => {
            info!(%queue, %callback, "queue: callback cancelled")
        }
        QueueEvent::Agent { agent, state } => {
            info!(%agent, state = state_name(state), "agent state")
        }
    }
}

/// The stored row for `event` (at `at` on the engine's clock), naming its call by `call_id`
/// (the SIP Call-ID, which outlives the process; the engine's number if unknown).
pub fn row(
    event: &QueueEvent,
    at: std::time::Instant,
    call_id: Option<&str>,
) -> ivr_queues::log::Row {
    let age = std::time::Instant::now().saturating_duration_since(at);
    let wall = std::time::SystemTime::now()
        .checked_sub(age)
        .unwrap_or(std::time::SystemTime::UNIX_EPOCH);
    let at_ms = crate::clock::unix_millis(wall);
    ivr_queues::log::Row::of(event, at_ms, &|c| {
        call_id.map_or_else(|| c.to_string(), str::to_string)
    })
}

/// An agent state's name, for logs and metrics labels.
pub fn state_name(state: &AgentState) -> &'static str {
    match state {
        AgentState::LoggedOut => "logged_out",
        AgentState::Available => "available",
        AgentState::Ringing { .. } => "ringing",
        AgentState::OnCall { .. } => "on_call",
        AgentState::WrapUp { .. } => "wrap_up",
        AgentState::Paused { .. } => "paused",
    }
}
