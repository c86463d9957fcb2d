//! The process-wide cap on calls (`--max-calls`), shared by every shard.
//!
//! A cap divided among shards could not refuse the second call of `--max-calls 1` on
//! whichever shard it lands, so the shards share one counter: a new INVITE reserves a slot
//! with a compare-and-swap ([`CallSlots::try_reserve`]) and the [`CallSlot`] it gets is kept
//! by the call, released when the call ends or, before that, on any later refusal of the
//! INVITE (the guard is dropped). An engine made alone has a counter of its own, which
//! counts exactly its calls, as `calls.len()` did.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The shared count of calls in progress and its cap.
#[derive(Clone, Debug)]
pub struct CallSlots {
    used: Arc<AtomicUsize>,
    max: usize,
}

impl CallSlots {
    /// Room for `max` calls at once.
    pub fn new(max: usize) -> CallSlots {
        CallSlots {
            used: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    /// A slot for a new call, or `None` when `max` are taken.
    pub fn try_reserve(&self) -> Option<CallSlot> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| CallSlot {
                used: self.used.clone(),
            })
    }

    /// A slot taken past the cap (a queued callback's own call, which the center already
    /// decided to make; it counts toward the cap for the calls after it).
    pub fn take(&self) -> CallSlot {
        self.used.fetch_add(1, Ordering::AcqRel);
        CallSlot {
            used: self.used.clone(),
        }
    }

    /// Calls holding a slot now, over every shard.
    pub fn in_use(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.max
    }
}

/// One call's slot, given back when dropped.
#[derive(Debug)]
pub struct CallSlot {
    used: Arc<AtomicUsize>,
}

impl Drop for CallSlot {
    fn drop(&mut self) {
        self.used.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_shared_and_given_back() {
        let a = CallSlots::new(2);
        let b = a.clone();
        let one = a.try_reserve();
        let two = b.try_reserve();
        assert!(one.is_some() && two.is_some());
        assert!(a.try_reserve().is_none() && b.try_reserve().is_none());
        drop(one);
        assert_eq!(b.in_use(), 1);
        let three = b.try_reserve();
        assert!(three.is_some());
        // Past the cap on purpose, then back.
        let extra = a.take();
        assert_eq!(a.in_use(), 3);
        drop((two, three, extra));
        assert_eq!(a.in_use(), 0);
        assert!(CallSlots::new(0).try_reserve().is_none());
    }

    /// Threads racing for the last slots never take more than the cap.
    #[test]
    fn racing_reservations_respect_the_cap() {
        let slots = CallSlots::new(8);
        let held: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let slots = slots.clone();
                    s.spawn(move || {
                        (0..100)
                            .filter_map(|_| slots.try_reserve())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
        assert_eq!(held.len(), 8);
        assert_eq!(slots.in_use(), 8);
    }
}
