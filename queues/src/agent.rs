//! An agent's state: the explicit machine the center drives.
//!
//! ```text
//!              login                    offer                 answered
//! LoggedOut ─────────▶ Available ─────────────▶ Ringing ──────────────▶ OnCall
//!     ▲  ◀── logout ──  │ ▲  ▲ ◀── failed / cancelled ──┘                  │
//!     │                 │ │  └────────── wrap-up over ── WrapUp ◀─ ended ─┘
//!     │        pause    ▼ │ unpause                                        │
//!     └── logout ──── Paused ◀── N unanswered offers, or pause after call ─┘
//! ```
//!
//! - A pause or logout asked for while ringing cancels the offer at once; asked for during a
//!   call it waits for the call's end (and replaces the wrap-up).
//! - Every state but `OnCall` and `Ringing` leaves by itself or by the agent: `WrapUp` always
//!   has a deadline; `Available`, `Paused` and `LoggedOut` are the agent's choice. `Ringing`
//!   always has a ring deadline; `OnCall` ends with the call. The center's
//!   [`check_invariants`](crate::QueueCenter::check_invariants) checks this after every step
//!   in the property tests.

use crate::config::AgentConfig;
use crate::ids::{OfferId, QueueName, Waiter};
use std::collections::BTreeMap;
use std::time::Instant;

/// Where an agent stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentState {
    /// Not taking calls.
    LoggedOut,
    /// Free for an offer (if reachable and not resting after a failed offer).
    Available,
    /// Its phones ring for one offer.
    Ringing {
        /// The offer.
        offer: OfferId,
    },
    /// Talking (or, for a callback, waiting while the caller is dialled).
    OnCall {
        /// For whom.
        waiter: Waiter,
        /// From which queue.
        queue: QueueName,
    },
    /// After-call work until `until`.
    WrapUp {
        /// When it ends.
        until: Instant,
    },
    /// Logged in but not taking calls.
    Paused {
        /// Why.
        reason: PauseReason,
    },
}

/// Why an agent is paused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PauseReason {
    /// The agent or staff asked, with this reason.
    Requested(String),
    /// The center paused it after this many unanswered offers in a row.
    NoAnswer {
        /// How many.
        offers: u32,
    },
}

/// What an agent asked for during a call, applied when the call ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AfterCall {
    Logout,
    Pause(PauseReason),
}

/// One agent as the center keeps it.
#[derive(Debug, Clone)]
pub(crate) struct Agent {
    pub(crate) config: AgentConfig,
    /// Removed from the configuration: no new offers; dropped once logged out.
    pub(crate) retired: bool,
    pub(crate) state: AgentState,
    /// Registered (or otherwise reachable).
    pub(crate) reachable: bool,
    /// Since when it has been idle: its last call's end, or its login.
    pub(crate) idle_since: Option<Instant>,
    /// Not offered calls before this (after a failed offer).
    pub(crate) rest_until: Option<Instant>,
    /// Unanswered offers in a row.
    pub(crate) no_answer: u32,
    /// Asked for during a call.
    pub(crate) after_call: Option<AfterCall>,
    /// Calls answered per queue (fewest-calls).
    pub(crate) calls: BTreeMap<QueueName, u64>,
}

impl Agent {
    pub(crate) fn new(config: AgentConfig) -> Self {
        Agent {
            config,
            retired: false,
            state: AgentState::LoggedOut,
            reachable: true,
            idle_since: None,
            rest_until: None,
            no_answer: 0,
            after_call: None,
            calls: BTreeMap::new(),
        }
    }

    /// Logged in (in any state but `LoggedOut`).
    pub(crate) fn logged_in(&self) -> bool {
        self.state != AgentState::LoggedOut
    }

    /// Logged in, not paused (nor about to pause or log out), reachable: it works the queue
    /// (counts for the estimated wait and the `NoneActive` rule).
    pub(crate) fn active(&self) -> bool {
        !self.retired
            && self.reachable
            && self.after_call.is_none()
            && !matches!(
                self.state,
                AgentState::LoggedOut | AgentState::Paused { .. }
            )
    }

    /// Free for an offer now.
    pub(crate) fn offerable(&self, now: Instant) -> bool {
        !self.retired
            && self.reachable
            && self.state == AgentState::Available
            && self.rest_until.is_none_or(|t| t <= now)
    }
}
