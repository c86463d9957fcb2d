//! Call records on their way from the engine loop to the store (issue #12): they wait here
//! while the store is behind, and go out in batches written off the loop.
//!
//! Memory is bounded over the whole way: the records waiting *and* those in batches still
//! being written count against [`MAX_RECORDS`] (a batch holds its count until it is
//! dropped), so a slow store under a flood of short calls cannot pile up batches of
//! thousands each behind every write slot. Past the bound the oldest waiting records are
//! dropped, and said once per episode (at its start, then at most once a minute with the
//! running total), not once per record or per round. While the server stops nothing is
//! dropped: the records then are those of the calls just hung up, bounded by `--max-calls`.

use ivr_voicemail::calls::CallRecord;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tracing::warn;

/// Most call records held between the engine and the store (waiting and being written).
pub const MAX_RECORDS: usize = 10_000;

/// Most records written in one transaction: a stop that gives up on a slow store keeps
/// the batches already committed.
pub const CHUNK: usize = 500;

/// How often a drop episode that goes on is said again.
const SAY_AGAIN: Duration = Duration::from_secs(60);

/// The records between the engine loop and the store.
#[derive(Debug, Default)]
pub struct RecordQueue {
    waiting: Vec<CallRecord>,
    in_flight: Arc<AtomicUsize>,
    /// Dropped since the episode began (0: none is going on).
    dropped: u64,
    /// When the episode was last said.
    said: Option<Instant>,
}

/// Records handed to a store write; their room is given back when it is dropped.
#[derive(Debug)]
pub struct Batch {
    /// The records, oldest first.
    pub records: Vec<CallRecord>,
    in_flight: Arc<AtomicUsize>,
}

impl Drop for Batch {
    fn drop(&mut self) {
        self.in_flight
            .fetch_sub(self.records.len(), Ordering::Relaxed);
    }
}

impl RecordQueue {
    /// A record made by the engine.
    pub fn push(&mut self, record: CallRecord) {
        self.waiting.push(record);
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Records waiting and being written.
    pub fn held(&self) -> usize {
        self.waiting.len() + self.in_flight.load(Ordering::Relaxed)
    }

    /// End of a round at `now`: the waiting records as one batch if a store write may
    /// start (`may_write`), else none, the oldest dropped past [`MAX_RECORDS`] unless the
    /// server is `stopping`.
    pub fn round(&mut self, now: Instant, may_write: bool, stopping: bool) -> Option<Batch> {
        if self.waiting.is_empty() {
            return None;
        }
        if may_write {
            if self.dropped > 0 {
                warn!(
                    dropped = self.dropped,
                    "the store caught up: call records dropped while it was behind"
                );
                self.dropped = 0;
                self.said = None;
            }
            let records = std::mem::take(&mut self.waiting);
            self.in_flight.fetch_add(records.len(), Ordering::Relaxed);
            return Some(Batch {
                records,
                in_flight: self.in_flight.clone(),
            });
        }
        let over = self.held().saturating_sub(MAX_RECORDS);
        if over == 0 || stopping {
            return None;
        }
        let over = over.min(self.waiting.len());
        self.waiting.drain(..over);
        self.dropped += over as u64;
        if self.said.is_none_or(|s| now.duration_since(s) >= SAY_AGAIN) {
            self.said = Some(now);
            warn!(
                dropped = self.dropped,
                "the store is behind: the oldest call records dropped (said again each minute while it lasts)"
            );
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: usize) -> CallRecord {
        CallRecord {
            call_id: format!("c{n}"),
            ..CallRecord::default()
        }
    }

    fn fill(q: &mut RecordQueue, from: usize, n: usize) {
        for i in from..from + n {
            q.push(record(i));
        }
    }

    /// Batches still being written count against the bound: a store slow enough that
    /// every write slot holds a large batch does not let memory grow past it.
    #[test]
    fn batches_being_written_count_against_the_bound() {
        let now = Instant::now();
        let mut q = RecordQueue::default();
        fill(&mut q, 0, MAX_RECORDS);
        let first = q.round(now, true, false).expect("a write may start");
        assert_eq!(first.records.len(), MAX_RECORDS);
        // The store is slow: every slot busy, a flood of short calls goes on.
        let mut batches = vec![first];
        for round in 1..=5 {
            fill(&mut q, round * MAX_RECORDS, MAX_RECORDS);
            assert!(q.round(now, false, false).is_none());
            assert!(q.held() <= MAX_RECORDS, "held {}", q.held());
            // A slot frees up: what waits goes, still within the bound.
            if let Some(b) = q.round(now, true, false) {
                batches.push(b);
            }
            assert!(q.held() <= MAX_RECORDS, "held {}", q.held());
        }
        drop(batches);
        assert_eq!(q.held(), 0, "written batches give their room back");
        fill(&mut q, 0, 3);
        let b = q.round(now, true, false).unwrap();
        assert_eq!(
            b.records
                .iter()
                .map(|r| r.call_id.as_str())
                .collect::<Vec<_>>(),
            ["c0", "c1", "c2"]
        );
    }

    /// The oldest are dropped past the bound; while stopping nothing is.
    #[test]
    fn the_oldest_go_past_the_bound_but_none_at_a_stop() {
        let now = Instant::now();
        let mut q = RecordQueue::default();
        fill(&mut q, 0, MAX_RECORDS + 5);
        assert!(q.round(now, false, true).is_none());
        assert_eq!(q.held(), MAX_RECORDS + 5, "a stop keeps every record");
        assert!(q.round(now, false, false).is_none());
        assert_eq!(q.held(), MAX_RECORDS);
        let b = q.round(now, true, false).unwrap();
        assert_eq!(b.records[0].call_id, "c5", "the oldest went");
        assert_eq!(q.dropped, 0, "the episode is over once a write starts");
    }

    /// A drop episode is said at its start and then at most once a minute, however many
    /// rounds drop records.
    #[test]
    fn drops_are_said_once_a_minute_not_per_round() {
        let t0 = Instant::now();
        let mut q = RecordQueue::default();
        fill(&mut q, 0, MAX_RECORDS);
        for i in 0..1_000 {
            fill(&mut q, MAX_RECORDS + i, 1);
            let _ = q.round(t0 + Duration::from_millis(i as u64), false, false);
        }
        assert_eq!(q.dropped, 1_000);
        assert_eq!(q.said, Some(t0), "said once in the first second");
        let later = t0 + SAY_AGAIN + Duration::from_secs(1);
        fill(&mut q, 0, 1);
        let _ = q.round(later, false, false);
        assert_eq!(q.said, Some(later));
    }
}
