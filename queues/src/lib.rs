//! Call-center queues: the one owner of queue and agent state, as a sans-IO machine.
//!
//! Calls do not hold references to queues or agents: they send [`QueueCenter`] messages
//! ([`Input`]: enter, leave, offer answered or failed, call ended, agent log in/out/pause,
//! callback requests, reload) and the engine carries out what it asks ([`Output`]: ring an
//! agent, cancel a ring, bridge, announce, send a caller out, dial a callback). Time is an
//! input (`now` on every call, [`QueueCenter::poll_timeout`] / [`QueueCenter::handle_timeout`]
//! for its deadlines) and so is randomness ([`RandomSource`]). Today the center lives beside
//! the engine; with shards it is reached over channels, with several nodes its state moves
//! behind the same messages.
//!
//! ```
//! use ivr_queues::*;
//! use std::time::{Duration, Instant};
//!
//! # #[allow(clippy::disallowed_methods)] let t0 = Instant::now();
//! let config = CenterConfig {
//!     queues: vec![QueueConfig::new("sales")],
//!     agents: vec![AgentConfig::new("alice", &["sales"])],
//!     limits: Limits::default(),
//! };
//! let mut center = QueueCenter::new(config.validate().unwrap(), Box::new(SplitMix64::new(1)));
//! center.handle(t0, Input::AgentLogin(AgentId::new("alice")));
//! center.handle(t0, Input::Enter {
//!     call: CallRef(7), queue: QueueName::new("sales"), priority: 0, caller: None,
//! });
//! let mut offer = None;
//! while let Some(out) = center.poll_output() {
//!     match out {
//!         Output::Offer { offer: o, .. } => offer = Some(o), // ring alice's phones
//!         Output::Event(_) => {}                             // the queue log
//!         _ => {}
//!     }
//! }
//! center.handle(t0 + Duration::from_secs(3), Input::OfferAnswered(offer.unwrap()));
//! assert!(std::iter::from_fn(|| center.poll_output())
//!     .any(|o| matches!(o, Output::Connect { call: CallRef(7), .. })));
//! ```
//!
//! # How queues decide
//!
//! **Who is served first.** Each queue's line is ordered by priority (higher first), then
//! arrival. When agents are free, the center offers them to waiters across all queues in that
//! order (so an agent shared by two queues takes whoever has waited longest, priority first),
//! each waiter by its own queue's strategy. A waiter whose phone is ringing keeps its place;
//! the next waiter may ring another free agent meanwhile.
//!
//! **Which agent.** A free agent is logged in, `Available`, reachable, and not resting after a
//! failed offer (the queue's `retry`). Among a queue's free members, only the lowest penalty
//! level is used: a higher level is rung only when no agent of a lower one is free (busy,
//! ringing, in wrap-up, paused, logged out or unreachable). Within the level:
//!
//! | strategy | picks |
//! |---|---|
//! | `RingAll` | every free agent of the level; the first answer wins, the others are cancelled |
//! | `RoundRobin` | the next free agent in member order after the one last offered (memory per queue) |
//! | `LongestIdle` | the agent whose last call ended (or who logged in) the longest ago |
//! | `FewestCalls` | the agent who answered the fewest calls from this queue |
//! | `Linear` | always the first free agent in member order |
//! | `Random` | a uniformly random free agent |
//!
//! Ties go to member order (the order of agents in the configuration). An agent whose offer
//! for a waiter failed is not rung again for that waiter until every other free agent has
//! been tried (then a new round starts), whatever its level.
//!
//! **Ringing.** Every offer rings for the queue's `agent_timeout`; then the center cancels it
//! and counts a no-answer. After `max_no_answer` unanswered (or rejected) offers in a row the
//! agent is paused with [`PauseReason::NoAnswer`]; an answer resets the count. A busy or
//! unreachable phone does not count. Answers that arrive for an offer already cancelled (the
//! caller hung up as the agent answered, another phone won a ring-all) get
//! [`Output::Release`]: the agent is free, never stuck.
//!
//! **After the call.** The agent's own wrap-up, else the queue's; a pause or logout asked for
//! during the call replaces it.
//!
//! **Estimated wait.** For the caller at position `p` (1 = next) in a queue where `n` agents
//! work (member agents logged in, not paused, reachable; busy ones count, they will be free
//! again) and a call takes `h` on average:
//!
//! ```text
//! estimated wait = ceil_to_whole_minutes(p × h ÷ n), at least 1 minute, at most a day
//! ```
//!
//! `h` is the mean handle time (talk + wrap-up) of the queue's last
//! [`Limits::handle_time_window`] completed calls; before the first, the queue's
//! `default_handle_time`. With `n = 0` there is no estimate and none is announced: the center
//! does not invent one. Example: position 3, 3-minute calls, 2 agents → 4.5 → "5 minutes".
//!
//! **Announcements.** On entry (unless an agent is already ringing for the caller) and every
//! `announce_every`, [`Output::Announce`] carries the position and estimated wait **only when
//! they changed** since the caller last heard them. While an agent's phone rings for the
//! caller, the periodic announcement is skipped ("all our agents are busy" would be false).
//!
//! **Bounds.** At most `max_waiting` per queue ([`RefuseReason::Full`]), at most
//! [`Limits::max_callbacks`] pending callbacks ([`CallbackRefusal::Full`]), one per number;
//! pause reasons and numbers are cut or refused at fixed lengths.

mod agent;
mod callback;
mod center;
mod config;
mod estimate;
mod ids;
pub mod log;
mod messages;
mod reload;
pub mod report;
mod rng;
mod strategy;
mod timers;

pub use agent::{AgentState, PauseReason};
pub use center::QueueCenter;
pub use config::{
    AgentConfig, CallbackConfig, CenterConfig, ConfigError, EmptyRule, Limits, MAX_DURATION,
    Membership, QueueConfig, Strategy, ValidConfig,
};
pub use estimate::{MAX_ESTIMATE, estimated_wait};
pub use ids::{AgentId, CallRef, CallbackId, OfferId, QueueName, Waiter};
pub use messages::{
    CallbackRefusal, ExitReason, Input, LeaveReason, LoggedEvent, OfferFailure, Output, QueueEvent,
    RefuseReason,
};
pub use rng::{RandomSource, SplitMix64};

/// An arbitrary starting point for tests' virtual clocks (the one place tests read the clock).
#[cfg(test)]
#[allow(clippy::disallowed_methods)]
pub(crate) fn test_epoch() -> std::time::Instant {
    std::time::Instant::now()
}
