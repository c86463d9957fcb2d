//! Figures from the queue event log ([`crate::log::Row`]s): what `ivr queues report` prints.
//!
//! Every figure comes from events alone, each counted once, so the same log always gives the
//! same report. The definitions (also in `docs/queues.md`):
//!
//! - **Left the line**: callers whose wait ended in the window, however it ended: answered,
//!   abandoned (hung up while waiting), timed out (max wait), pressed an exit key, sent out
//!   because no agent worked the queue, asked to be called back (keeping their place), or
//!   transferred away while waiting. Callers still waiting are not counted anywhere.
//! - **Service level**: answered within the threshold (default 20 s) ÷ left the line. Every
//!   abandon counts against it, short ones too; their number is shown beside it
//!   (`short_abandons`: under 5 s) for those who exclude them.
//! - **Abandon rate**: abandoned ÷ left the line. Timeouts, exit keys and callback requests
//!   are not abandons: the caller was served another way, and each has its own count.
//! - **Waits**: the average over answered callers; the longest over every caller who left.
//! - **Agents**: answered offers (callers and callbacks), talk time from completed calls,
//!   unanswered offers (no answer or declined), and the time spent in wrap-up and paused,
//!   measured between the agent's state changes. A state still open at the end of the window
//!   counts up to the end; a [`Kind::Start`] row (the engine restarted) ends it. The state an
//!   agent was in before the window's first event is not known and not counted.

use crate::log::{Kind, Row};
use std::collections::BTreeMap;
use std::time::Duration;

/// Abandons shorter than this are also counted apart (`short_abandons`).
pub const SHORT_ABANDON: Duration = Duration::from_secs(5);

/// One queue's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueFigures {
    /// The queue.
    pub queue: String,
    /// Callers who joined.
    pub entered: u64,
    /// Callers whose wait ended (see the module's definitions).
    pub left_the_line: u64,
    /// Callers answered by an agent.
    pub answered: u64,
    /// Of those, answered within the service-level threshold.
    pub answered_in_time: u64,
    /// Callers who hung up while waiting.
    pub abandoned: u64,
    /// Of those, within [`SHORT_ABANDON`].
    pub short_abandons: u64,
    /// Callers who reached the max wait.
    pub timed_out: u64,
    /// Callers who left with an exit key.
    pub exit_keys: u64,
    /// Callers sent out because no agent worked the queue.
    pub left_empty: u64,
    /// Callers who asked to be called back.
    pub callbacks_requested: u64,
    /// Callbacks that reached the caller.
    pub callbacks_connected: u64,
    /// Callbacks given up after their last attempt.
    pub callbacks_failed: u64,
    /// Callers transferred away while waiting.
    pub transferred: u64,
    /// Sum of answered callers' waits, in ms.
    pub answered_wait_ms: u64,
    /// The longest wait of a caller who left, in ms.
    pub longest_wait_ms: u64,
    /// Completed calls.
    pub completed: u64,
    /// Their talk time, in ms.
    pub talk_ms: u64,
}

impl QueueFigures {
    /// Answered in time ÷ left the line, as a percentage (`None` if nobody left).
    pub fn service_level(&self) -> Option<f64> {
        percent(self.answered_in_time, self.left_the_line)
    }

    /// Abandoned ÷ left the line, as a percentage.
    pub fn abandon_rate(&self) -> Option<f64> {
        percent(self.abandoned, self.left_the_line)
    }

    /// The average wait of answered callers.
    pub fn average_wait(&self) -> Option<Duration> {
        (self.answered > 0).then(|| Duration::from_millis(self.answered_wait_ms / self.answered))
    }

    /// The average talk time of completed calls.
    pub fn average_talk(&self) -> Option<Duration> {
        (self.completed > 0).then(|| Duration::from_millis(self.talk_ms / self.completed))
    }
}

/// One agent's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentFigures {
    /// The agent.
    pub agent: String,
    /// Offers rung.
    pub offers: u64,
    /// Offers answered (callers and callbacks).
    pub answered: u64,
    /// Offers not answered or declined.
    pub unanswered: u64,
    /// Completed calls.
    pub completed: u64,
    /// Their talk time, in ms.
    pub talk_ms: u64,
    /// Time in wrap-up, in ms.
    pub wrap_up_ms: u64,
    /// Time paused, in ms.
    pub paused_ms: u64,
}

/// The report over one window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// The window's start, Unix ms (inclusive).
    pub from_ms: i64,
    /// Its end, Unix ms (exclusive).
    pub to_ms: i64,
    /// The service-level threshold.
    pub threshold: Duration,
    /// Per queue, by name.
    pub queues: Vec<QueueFigures>,
    /// Per agent, by name.
    pub agents: Vec<AgentFigures>,
}

fn percent(n: u64, of: u64) -> Option<f64> {
    (of > 0).then(|| n as f64 * 100.0 / of as f64)
}

fn ms(v: Option<i64>) -> u64 {
    v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0)
}

impl Report {
    /// The figures of the `rows` in `[from_ms, to_ms)` (rows outside are ignored; order does
    /// not matter), with answers within `threshold` counted as in time.
    pub fn compute(rows: &[Row], from_ms: i64, to_ms: i64, threshold: Duration) -> Report {
        let mut rows: Vec<&Row> = rows
            .iter()
            .filter(|r| r.at_ms >= from_ms && r.at_ms < to_ms)
            .collect();
        rows.sort_by_key(|r| r.at_ms);
        let threshold_ms = u64::try_from(threshold.as_millis()).unwrap_or(u64::MAX);
        let short_ms = SHORT_ABANDON.as_millis() as u64;
        let mut queues: BTreeMap<String, QueueFigures> = BTreeMap::new();
        let mut agents: BTreeMap<String, AgentFigures> = BTreeMap::new();
        // Each agent's open state: (name, since).
        let mut open: BTreeMap<String, (String, i64)> = BTreeMap::new();
        // Answers counted in this window, by (queue or agent, call): a requeue undoes only
        // its own call's answer, and only if this window counted it (one before the window
        // was the earlier window's, and must not come off other calls' figures here).
        let mut agent_answers: BTreeMap<(String, String), u64> = BTreeMap::new();
        let mut caller_answers: BTreeMap<(String, String), u64> = BTreeMap::new();
        let take =
            |answers: &mut BTreeMap<(String, String), u64>, key: (String, String)| match answers
                .get_mut(&key)
            {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    true
                }
                Some(_) => answers.remove(&key).is_some(),
                None => false,
            };
        let call_of = |r: &Row| r.call.clone().unwrap_or_default();
        let close = |figures: &mut AgentFigures, state: &str, since: i64, until: i64| {
            let spent = u64::try_from(until.saturating_sub(since)).unwrap_or(0);
            if state == "wrap_up" {
                figures.wrap_up_ms += spent;
            } else if state.starts_with("paused") {
                figures.paused_ms += spent;
            }
        };
        for r in rows {
            if r.kind == Kind::Start {
                for (agent, (state, since)) in std::mem::take(&mut open) {
                    let f = agents.entry(agent.clone()).or_default();
                    f.agent = agent;
                    close(f, &state, since, r.at_ms);
                }
                continue;
            }
            if let Some(agent) = &r.agent {
                let f = agents.entry(agent.clone()).or_default();
                f.agent = agent.clone();
                match r.kind {
                    Kind::Offer => f.offers += 1,
                    Kind::Answer => {
                        f.answered += 1;
                        *agent_answers
                            .entry((agent.clone(), call_of(r)))
                            .or_default() += 1;
                    }
                    // The answer did not hold: the agent hung up before the caller was put
                    // through, which counts as declined.
                    Kind::Requeue => {
                        if take(&mut agent_answers, (agent.clone(), call_of(r))) {
                            f.answered = f.answered.saturating_sub(1);
                        }
                        f.unanswered += 1;
                    }
                    Kind::OfferFailed
                        if matches!(r.detail.as_deref(), Some("no_answer" | "rejected")) =>
                    {
                        f.unanswered += 1
                    }
                    Kind::Complete => {
                        f.completed += 1;
                        f.talk_ms += ms(r.talk_ms);
                    }
                    Kind::Agent => {
                        let state = r.detail.clone().unwrap_or_default();
                        if let Some((was, since)) = open.insert(agent.clone(), (state, r.at_ms)) {
                            close(f, &was, since, r.at_ms);
                        }
                    }
                    _ => {}
                }
            }
            let Some(queue) = &r.queue else { continue };
            let q = queues.entry(queue.clone()).or_default();
            q.queue = queue.clone();
            let caller = !r
                .call
                .as_deref()
                .is_some_and(|c| c.starts_with("callback#"));
            let wait = ms(r.wait_ms);
            let left = matches!(
                r.kind,
                Kind::Abandon
                    | Kind::Timeout
                    | Kind::ExitKey
                    | Kind::LeaveEmpty
                    | Kind::CallbackRequested
            ) || (r.kind == Kind::Answer && caller)
                || (r.kind == Kind::Transfer && r.agent.is_none());
            if left {
                q.left_the_line += 1;
                q.longest_wait_ms = q.longest_wait_ms.max(wait);
            }
            if r.kind == Kind::Requeue
                && caller
                && take(&mut caller_answers, (queue.clone(), call_of(r)))
            {
                // Back in line: its answer is undone (it leaves again later, counted then).
                q.left_the_line = q.left_the_line.saturating_sub(1);
                q.answered = q.answered.saturating_sub(1);
                q.answered_wait_ms = q.answered_wait_ms.saturating_sub(wait);
                if wait <= threshold_ms {
                    q.answered_in_time = q.answered_in_time.saturating_sub(1);
                }
            }
            match r.kind {
                Kind::Enter => q.entered += 1,
                Kind::Answer if caller => {
                    *caller_answers
                        .entry((queue.clone(), call_of(r)))
                        .or_default() += 1;
                    q.answered += 1;
                    q.answered_wait_ms += wait;
                    if wait <= threshold_ms {
                        q.answered_in_time += 1;
                    }
                }
                Kind::Abandon => {
                    q.abandoned += 1;
                    if wait < short_ms {
                        q.short_abandons += 1;
                    }
                }
                Kind::Timeout => q.timed_out += 1,
                Kind::ExitKey => q.exit_keys += 1,
                Kind::LeaveEmpty => q.left_empty += 1,
                Kind::CallbackRequested => q.callbacks_requested += 1,
                Kind::CallbackConnected => q.callbacks_connected += 1,
                Kind::CallbackFailed
                    if r.detail.as_deref().is_some_and(|d| d.ends_with("final")) =>
                {
                    q.callbacks_failed += 1
                }
                Kind::Transfer if r.agent.is_none() => q.transferred += 1,
                Kind::Complete => {
                    q.completed += 1;
                    q.talk_ms += ms(r.talk_ms);
                }
                _ => {}
            }
        }
        for (agent, (state, since)) in open {
            let f = agents.entry(agent.clone()).or_default();
            f.agent = agent;
            close(f, &state, since, to_ms);
        }
        Report {
            from_ms,
            to_ms,
            threshold,
            queues: queues.into_values().collect(),
            agents: agents.into_values().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(at: i64, kind: Kind, queue: &str, call: &str, agent: &str) -> Row {
        let mut r = Row::new(at, kind);
        r.queue = (!queue.is_empty()).then(|| queue.to_string());
        r.call = (!call.is_empty()).then(|| call.to_string());
        r.agent = (!agent.is_empty()).then(|| agent.to_string());
        r
    }

    fn waited(mut r: Row, ms: i64) -> Row {
        r.wait_ms = Some(ms);
        r
    }

    fn state(at: i64, agent: &str, s: &str) -> Row {
        let mut r = row(at, Kind::Agent, "", "", agent);
        r.detail = Some(s.to_string());
        r
    }

    /// A fixture with every outcome, and the exact figures it must give.
    #[test]
    fn a_fixture_gives_exact_figures() {
        let mut talk = row(200_000, Kind::Complete, "sales", "c1", "alice");
        talk.talk_ms = Some(120_000);
        let mut failed = row(40_000, Kind::OfferFailed, "sales", "c2", "bob");
        failed.detail = Some("no_answer".into());
        let mut busy = row(41_000, Kind::OfferFailed, "sales", "c2", "bob");
        busy.detail = Some("busy".into());
        let mut cb_final = row(300_000, Kind::CallbackFailed, "sales", "callback#1", "");
        cb_final.detail = Some("attempt 3, final".into());
        let mut cb_retry = row(250_000, Kind::CallbackFailed, "sales", "callback#1", "");
        cb_retry.detail = Some("attempt 2, retrying".into());
        let rows = vec![
            state(0, "alice", "available"),
            row(1_000, Kind::Enter, "sales", "c1", ""),
            row(2_000, Kind::Enter, "sales", "c2", ""),
            row(3_000, Kind::Enter, "sales", "c3", ""),
            row(4_000, Kind::Enter, "sales", "c4", ""),
            row(5_000, Kind::Enter, "sales", "c5", ""),
            row(6_000, Kind::Enter, "support", "c6", ""),
            row(10_000, Kind::Offer, "sales", "c1", "alice"),
            waited(row(16_000, Kind::Answer, "sales", "c1", "alice"), 15_000),
            state(16_000, "alice", "on_call"),
            waited(row(5_500, Kind::Abandon, "sales", "c3", ""), 2_500),
            waited(row(64_000, Kind::Abandon, "sales", "c4", ""), 60_000),
            waited(row(125_000, Kind::Timeout, "sales", "c5", ""), 120_000),
            waited(
                row(35_000, Kind::CallbackRequested, "sales", "callback#1", ""),
                0,
            ),
            row(39_000, Kind::Offer, "sales", "c2", "bob"),
            failed,
            busy,
            waited(row(47_000, Kind::Answer, "sales", "c2", "alice"), 45_000),
            talk,
            state(200_000, "alice", "wrap_up"),
            state(230_000, "alice", "available"),
            cb_retry,
            cb_final,
            state(100_000, "bob", "paused: lunch"),
        ];
        let r = Report::compute(&rows, 0, 400_000, Duration::from_secs(20));
        let sales = &r.queues[0];
        assert_eq!(sales.queue, "sales");
        assert_eq!(
            (
                sales.entered,
                sales.left_the_line,
                sales.answered,
                sales.answered_in_time
            ),
            (5, 6, 2, 1)
        );
        assert_eq!(
            (sales.abandoned, sales.short_abandons, sales.timed_out),
            (2, 1, 1)
        );
        assert_eq!((sales.callbacks_requested, sales.callbacks_failed), (1, 1));
        assert_eq!(sales.service_level(), Some(100.0 / 6.0));
        assert_eq!(sales.abandon_rate(), Some(200.0 / 6.0));
        assert_eq!(sales.average_wait(), Some(Duration::from_secs(30)));
        assert_eq!(sales.longest_wait_ms, 120_000);
        assert_eq!(sales.average_talk(), Some(Duration::from_secs(120)));
        let support = &r.queues[1];
        assert_eq!((support.entered, support.left_the_line), (1, 0));
        assert_eq!(
            support.service_level(),
            None,
            "nobody left: no figure invented"
        );
        let alice = &r.agents[0];
        assert_eq!(
            (alice.offers, alice.answered, alice.completed, alice.talk_ms),
            (1, 2, 1, 120_000)
        );
        assert_eq!(alice.wrap_up_ms, 30_000);
        let bob = &r.agents[1];
        assert_eq!(
            (bob.offers, bob.unanswered),
            (1, 1),
            "busy is not unanswered"
        );
        assert_eq!(bob.paused_ms, 300_000, "still paused at the window's end");
    }

    #[test]
    fn a_restart_ends_the_states_the_last_run_left_open() {
        let rows = vec![
            state(0, "alice", "wrap_up"),
            Row::new(10_000, Kind::Start),
            state(3_600_000, "alice", "available"),
        ];
        let r = Report::compute(&rows, 0, 4_000_000, Duration::from_secs(20));
        assert_eq!(r.agents[0].wrap_up_ms, 10_000);
    }

    /// The agent hung up during the whisper: the first answer is undone, the second counts.
    #[test]
    fn a_requeued_caller_counts_once() {
        let rows = vec![
            row(0, Kind::Enter, "sales", "c1", ""),
            waited(row(10_000, Kind::Answer, "sales", "c1", "alice"), 10_000),
            waited(row(12_000, Kind::Requeue, "sales", "c1", "alice"), 10_000),
            waited(row(40_000, Kind::Answer, "sales", "c1", "bob"), 40_000),
        ];
        let r = Report::compute(&rows, 0, 100_000, Duration::from_secs(20));
        let q = &r.queues[0];
        assert_eq!((q.entered, q.left_the_line, q.answered), (1, 1, 1));
        assert_eq!((q.answered_in_time, q.answered_wait_ms), (0, 40_000));
        let alice = r.agents.iter().find(|a| a.agent == "alice").expect("alice");
        assert_eq!((alice.answered, alice.unanswered), (0, 1));
    }

    /// A requeue whose answer fell before the window undoes nothing in it: that answer was
    /// counted by the earlier window, not this one's answers of other calls.
    #[test]
    fn a_requeue_whose_answer_is_before_the_window_takes_nothing_from_other_calls() {
        let rows = vec![
            row(5_000, Kind::Enter, "sales", "c1", ""),
            waited(row(9_000, Kind::Answer, "sales", "c1", "alice"), 4_000),
            row(10_000, Kind::Enter, "sales", "c2", ""),
            waited(row(11_000, Kind::Answer, "sales", "c2", "alice"), 1_000),
            waited(row(12_000, Kind::Requeue, "sales", "c1", "alice"), 4_000),
        ];
        let r = Report::compute(&rows, 10_000, 100_000, Duration::from_secs(20));
        let q = &r.queues[0];
        assert_eq!((q.entered, q.left_the_line, q.answered), (1, 1, 1));
        assert_eq!((q.answered_in_time, q.answered_wait_ms), (1, 1_000));
        let alice = r.agents.iter().find(|a| a.agent == "alice").expect("alice");
        assert_eq!((alice.answered, alice.unanswered), (1, 1));
    }

    #[test]
    fn rows_outside_the_window_are_not_counted() {
        let rows = vec![
            row(999, Kind::Enter, "sales", "c1", ""),
            row(1_000, Kind::Enter, "sales", "c2", ""),
            row(2_000, Kind::Enter, "sales", "c3", ""),
        ];
        let r = Report::compute(&rows, 1_000, 2_000, Duration::from_secs(20));
        assert_eq!(r.queues[0].entered, 1);
    }
}
