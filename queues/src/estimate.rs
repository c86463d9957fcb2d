//! The estimated wait, from live data (the formula is in the crate documentation).

use std::collections::VecDeque;
use std::time::Duration;

/// The estimate never says more than this (a day); longer is "a very long time" anyway.
pub const MAX_ESTIMATE: Duration = Duration::from_secs(24 * 3600);

/// The estimated wait of the caller at `position` (1 = next), when `agents` agents work the
/// queue and a call takes `handle` (talk + wrap-up) on average:
/// `ceil_to_minutes(position × handle ÷ agents)`, at least one minute, at most
/// [`MAX_ESTIMATE`]. `None` when no agent works the queue: then nobody can say.
pub fn estimated_wait(position: usize, handle: Duration, agents: usize) -> Option<Duration> {
    if agents == 0 || position == 0 {
        return None;
    }
    let total = handle.as_millis().saturating_mul(position as u128);
    let per_agent = total.div_ceil(agents as u128);
    let minutes = per_agent.div_ceil(60_000).max(1);
    let secs = minutes
        .saturating_mul(60)
        .min(MAX_ESTIMATE.as_secs() as u128);
    Some(Duration::from_secs(secs as u64))
}

/// The handle times of a queue's last completed calls.
#[derive(Debug, Clone, Default)]
pub(crate) struct HandleTimes {
    recent: VecDeque<Duration>,
}

impl HandleTimes {
    /// Records one completed call, keeping the last `window`.
    pub(crate) fn record(&mut self, handle: Duration, window: usize) {
        if window == 0 {
            return;
        }
        while self.recent.len() >= window {
            self.recent.pop_front();
        }
        self.recent.push_back(handle.min(MAX_ESTIMATE));
    }

    /// Their mean, or `fallback` before any.
    pub(crate) fn average(&self, fallback: Duration) -> Duration {
        if self.recent.is_empty() {
            return fallback;
        }
        let sum: Duration = self.recent.iter().sum();
        sum / self.recent.len() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn the_formula() {
        // 3 callers ahead-or-at × 3 min ÷ 2 agents = 4.5 min → 5 min.
        assert_eq!(estimated_wait(3, 3 * MIN, 2), Some(5 * MIN));
        // Exactly whole minutes stay as they are.
        assert_eq!(estimated_wait(2, 3 * MIN, 3), Some(2 * MIN));
        // Short calls still say at least a minute.
        assert_eq!(estimated_wait(1, Duration::from_secs(5), 10), Some(MIN));
        // Nobody works the queue: no estimate.
        assert_eq!(estimated_wait(1, 3 * MIN, 0), None);
        assert_eq!(
            estimated_wait(usize::MAX, Duration::MAX, 1),
            Some(MAX_ESTIMATE)
        );
    }

    #[test]
    fn average_over_a_window() {
        let mut h = HandleTimes::default();
        assert_eq!(h.average(3 * MIN), 3 * MIN);
        for s in [60, 120, 180, 240] {
            h.record(Duration::from_secs(s), 3);
        }
        assert_eq!(h.average(MIN), Duration::from_secs(180));
    }
}
