//! SIP transactions (RFC 3261 §17, amended by RFC 6026), as four sans-IO machines.
//!
//! Each machine is fed the messages that belong to it and the current time, and hands back
//! messages to send, events for the transaction user, and its next deadline. Time never
//! passes inside: a machine only learns the time through `now` arguments, so tests run the
//! RFC timers on a virtual clock.

mod client_invite;
mod client_non_invite;
pub mod layer;
mod server_invite;
mod server_non_invite;

pub use client_invite::ClientInvite;
pub use client_non_invite::ClientEvent;
pub use client_non_invite::ClientNonInvite;
pub use layer::{ClientKey, Peer, ServerKey, TransactionLayer, TxEvent};
pub use server_invite::ServerInvite;
pub use server_non_invite::ServerNonInvite;

use std::time::{Duration, Instant};

/// The RFC 3261 timer base values (§17.1.1.1, table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// T1, the RTT estimate: 500 ms.
    pub t1: Duration,
    /// T2, the cap on non-INVITE and 2xx retransmit intervals: 4 s.
    pub t2: Duration,
    /// T4, how long a message may stay in the network: 5 s.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// 64·T1, the transaction timeout (Timers B, F, H, J, L, M).
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }
}

/// A transaction's timers, named as in RFC 3261 §17 and RFC 6026.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// INVITE client: retransmit the INVITE.
    A,
    /// INVITE client: give up waiting for a response.
    B,
    /// INVITE client: absorb final-response retransmissions after the ACK.
    D,
    /// Non-INVITE client: retransmit the request.
    E,
    /// Non-INVITE client: give up.
    F,
    /// INVITE server: retransmit the final response (and, for 2xx, RFC 3261 §13.3.1.4).
    G,
    /// INVITE server: give up waiting for the ACK.
    H,
    /// INVITE server: absorb ACK retransmissions.
    I,
    /// Non-INVITE server: absorb request retransmissions.
    J,
    /// Non-INVITE client: absorb response retransmissions.
    K,
    /// INVITE server (RFC 6026): leave the Accepted state.
    L,
    /// INVITE client (RFC 6026): leave the Accepted state.
    M,
}

const TIMERS: [Timer; 12] = [
    Timer::A,
    Timer::B,
    Timer::D,
    Timer::E,
    Timer::F,
    Timer::G,
    Timer::H,
    Timer::I,
    Timer::J,
    Timer::K,
    Timer::L,
    Timer::M,
];

/// A small fixed table of armed timers.
#[derive(Debug, Clone, Default)]
pub struct TimerTable {
    deadlines: [Option<Instant>; 12],
}

impl TimerTable {
    fn slot(t: Timer) -> usize {
        TIMERS.iter().position(|x| *x == t).unwrap_or(0)
    }

    /// Arm `timer` to fire at `at`.
    pub fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[Self::slot(timer)] = Some(at);
    }

    /// Disarm `timer`.
    pub fn cancel(&mut self, timer: Timer) {
        self.deadlines[Self::slot(timer)] = None;
    }

    /// Disarm everything.
    pub fn clear(&mut self) {
        self.deadlines = [None; 12];
    }

    /// When `timer` fires, if armed.
    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[Self::slot(timer)]
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Disarm and return the earliest timer due at `now`, with the deadline it had.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Timer, Instant)> {
        let (i, _) = self
            .deadlines
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.map(|d| (i, d)))
            .filter(|(_, d)| *d <= now)
            .min_by_key(|(_, d)| *d)?;
        let at = self.deadlines[i].take()?;
        Some((TIMERS[i], at))
    }
}

/// Whether a response status is provisional, 2xx, or another final.
pub(crate) fn is_2xx(status: crate::StatusCode) -> bool {
    status.is_success()
}
