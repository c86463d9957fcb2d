//! Picking agents: penalty levels first, then the queue's strategy within the level.

use crate::config::Strategy;
use crate::ids::AgentId;
use crate::rng::{RandomSource, below};
use std::time::Instant;

/// A free agent, as a strategy sees it.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub(crate) agent: AgentId,
    /// Its place in the queue's member order.
    pub(crate) order: usize,
    pub(crate) penalty: u32,
    pub(crate) idle_since: Option<Instant>,
    /// Calls answered from this queue.
    pub(crate) calls: u64,
}

/// The agents to ring for one waiter: all of the lowest level for ring-all, else one.
/// `candidates` are in member order; `last_offered` is the member order of the agent the
/// queue last offered a call to (round-robin memory). Empty only when `candidates` is.
pub(crate) fn choose(
    strategy: Strategy,
    candidates: &[Candidate],
    last_offered: Option<usize>,
    rng: &mut dyn RandomSource,
) -> Vec<AgentId> {
    let Some(level) = candidates.iter().map(|c| c.penalty).min() else {
        return Vec::new();
    };
    let level: Vec<&Candidate> = candidates.iter().filter(|c| c.penalty == level).collect();
    let pick = match strategy {
        Strategy::RingAll => return level.iter().map(|c| c.agent.clone()).collect(),
        Strategy::Linear => level.first().copied(),
        Strategy::RoundRobin => match last_offered {
            Some(last) => level
                .iter()
                .find(|c| c.order > last)
                .or(level.first())
                .copied(),
            None => level.first().copied(),
        },
        // `None` (never idle yet) cannot happen for a logged-in agent; it sorts first.
        Strategy::LongestIdle => level
            .iter()
            .min_by_key(|c| (c.idle_since, c.order))
            .copied(),
        Strategy::FewestCalls => level.iter().min_by_key(|c| (c.calls, c.order)).copied(),
        Strategy::Random => level.get(below(rng, level.len())).copied(),
    };
    pick.map(|c| vec![c.agent.clone()]).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;
    use std::time::Duration;

    fn cands(now: Instant) -> Vec<Candidate> {
        // member order: a(0) b(1) c(2) d(3); d is at a higher penalty.
        [
            ("a", 0, 30, 5),
            ("b", 0, 10, 2),
            ("c", 0, 20, 2),
            ("d", 1, 0, 0),
        ]
        .iter()
        .enumerate()
        .map(|(order, (name, penalty, idle_ago, calls))| Candidate {
            agent: AgentId::new(*name),
            order,
            penalty: *penalty,
            idle_since: Some(now - Duration::from_secs(*idle_ago)),
            calls: *calls,
        })
        .collect()
    }

    fn pick(s: Strategy, last: Option<usize>) -> Vec<String> {
        let now = crate::test_epoch() + Duration::from_secs(100);
        let mut rng = SplitMix64::new(1);
        choose(s, &cands(now), last, &mut rng)
            .into_iter()
            .map(|a| a.0)
            .collect()
    }

    #[test]
    fn each_strategy_within_the_lowest_level() {
        assert_eq!(pick(Strategy::RingAll, None), ["a", "b", "c"]);
        assert_eq!(pick(Strategy::Linear, Some(0)), ["a"]);
        assert_eq!(pick(Strategy::RoundRobin, None), ["a"]);
        assert_eq!(pick(Strategy::RoundRobin, Some(0)), ["b"]);
        assert_eq!(
            pick(Strategy::RoundRobin, Some(2)),
            ["a"],
            "wraps, skipping level 1"
        );
        assert_eq!(pick(Strategy::LongestIdle, None), ["a"]);
        assert_eq!(
            pick(Strategy::FewestCalls, None),
            ["b"],
            "ties go to member order"
        );
        let r = pick(Strategy::Random, None);
        assert!(r.len() == 1 && r[0] != "d");
    }

    #[test]
    fn the_higher_level_only_when_the_lower_is_empty() {
        let now = crate::test_epoch();
        let only_d: Vec<_> = cands(now).into_iter().filter(|c| c.penalty == 1).collect();
        let mut rng = SplitMix64::new(1);
        assert_eq!(
            choose(Strategy::Linear, &only_d, None, &mut rng),
            [AgentId::new("d")]
        );
        assert!(choose(Strategy::RingAll, &[], None, &mut rng).is_empty());
    }
}
