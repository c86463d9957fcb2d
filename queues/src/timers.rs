//! The center's deadlines: one index, each timer named by what it belongs to.

use crate::ids::{AgentId, CallRef, CallbackId, OfferId};
use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

/// A deadline's owner and meaning.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Timer {
    /// An offer rang for the queue's `agent_timeout`.
    Ring(OfferId),
    /// An agent's wrap-up ends.
    WrapUp(AgentId),
    /// An agent's rest after a failed offer ends.
    Rest(AgentId),
    /// A caller reaches the queue's `max_wait`.
    MaxWait(CallRef),
    /// A caller's next periodic announcement.
    Announce(CallRef),
    /// A callback's next attempt may start.
    CallbackRetry(CallbackId),
}

/// Deadlines by time, and by owner for cancelling.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    by_time: BTreeSet<(Instant, Timer)>,
    by_timer: HashMap<Timer, Instant>,
}

impl Timers {
    /// Arms (or re-arms) a timer.
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.cancel(&timer);
        self.by_time.insert((at, timer.clone()));
        self.by_timer.insert(timer, at);
    }

    /// Disarms a timer (a no-op when it is not armed).
    pub(crate) fn cancel(&mut self, timer: &Timer) {
        if let Some(at) = self.by_timer.remove(timer) {
            self.by_time.remove(&(at, timer.clone()));
        }
    }

    /// When the timer fires, if armed.
    pub(crate) fn get(&self, timer: &Timer) -> Option<Instant> {
        self.by_timer.get(timer).copied()
    }

    /// The soonest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Takes one timer due at `now`, soonest first.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        let (at, _) = self.by_time.first()?;
        if *at > now {
            return None;
        }
        let (_, timer) = self.by_time.pop_first()?;
        self.by_timer.remove(&timer);
        Some(timer)
    }
}
