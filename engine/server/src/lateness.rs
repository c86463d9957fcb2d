//! How far from their 20 ms schedule RTP packets leave (late, or early by up to the
//! engine's send lead), as the loop sends them:
//! a fixed histogram of 0.1 ms buckets (the last collects everything from 51.1 ms up), kept
//! in atomics so that `/metrics` can read it while the loop writes (no lock, no allocation
//! per packet). Each engine loop (one per shard) writes a histogram of its own, so a count
//! is bumped with a plain load and store and no cache line is shared between loops; readers
//! add them up.
//!
//! `/metrics` shows it as `ivr_rtp_send_lateness_seconds` with buckets from 0.1 ms to 50 ms;
//! two readings a window apart give the window's own figures (a benchmark's steady state,
//! without the ramp-up before it). The stop logs the whole run's percentiles.

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const BUCKETS: usize = 512;
/// Bucket bounds shown in `/metrics`, in tenths of a millisecond (multiples of the buckets).
const SHOWN: [usize; 9] = [1, 2, 5, 10, 20, 50, 100, 200, 500];

/// The lateness histogram of one loop (its only writer).
pub struct Hist {
    buckets: [AtomicU64; BUCKETS],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Default for Hist {
    fn default() -> Hist {
        Hist {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }
}

fn bump(a: &AtomicU64, by: u64) {
    // One writer (the loop): no read-modify-write instruction needed.
    a.store(
        a.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

impl Hist {
    /// A packet left `late` after its time (called by its loop only).
    pub fn record(&self, late: Duration) {
        let us = late.as_micros().min(u128::from(u64::MAX)) as u64;
        let i = ((us / 100) as usize).min(BUCKETS - 1);
        bump(&self.buckets[i], 1);
        bump(&self.count, 1);
        bump(&self.sum_us, us);
    }
}

/// The lateness histograms of a process's loops, read as one.
#[derive(Default)]
pub struct Lateness {
    hists: OnceLock<Box<[Hist]>>,
}

impl Lateness {
    /// Give the process `loops` histograms (the first call decides; at least one). Without
    /// it there is one.
    pub fn split(&self, loops: usize) {
        let _ = self
            .hists
            .set((0..loops.max(1)).map(|_| Hist::default()).collect());
    }

    fn hists(&self) -> &[Hist] {
        self.hists.get_or_init(|| Box::new([Hist::default()]))
    }

    /// Loop `i`'s histogram (the last one if there are fewer).
    pub fn writer(&self, i: usize) -> &Hist {
        let h = self.hists();
        &h[i.min(h.len() - 1)]
    }

    fn sum(&self, f: impl Fn(&Hist) -> &AtomicU64) -> u64 {
        self.hists()
            .iter()
            .map(|h| f(h).load(Ordering::Relaxed))
            .sum()
    }

    /// Packets recorded.
    pub fn count(&self) -> u64 {
        self.sum(|h| &h.count)
    }

    fn bucket(&self, i: usize) -> u64 {
        self.sum(|h| &h.buckets[i])
    }

    /// The lateness below which a fraction `p` of packets left, in milliseconds (to the
    /// 0.1 ms bucket; NaN before any packet).
    pub fn percentile_ms(&self, p: f64) -> f64 {
        let target = (self.count() as f64 * p).ceil() as u64;
        let mut seen = 0;
        for i in 0..BUCKETS {
            seen += self.bucket(i);
            if seen >= target.max(1) {
                return (i + 1) as f64 / 10.0;
            }
        }
        f64::NAN
    }
}

/// The `/metrics` face of a shared [`Lateness`].
#[derive(Clone, Default)]
pub struct LatenessMetric(pub Arc<Lateness>);

impl std::fmt::Debug for Lateness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lateness")
            .field("count", &self.count())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for LatenessMetric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl EncodeMetric for LatenessMetric {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let l = &self.0;
        let mut shown = Vec::with_capacity(SHOWN.len() + 1);
        let mut from = 0;
        let mut total = 0;
        for &upto in &SHOWN {
            let n: u64 = (from..upto).map(|i| l.bucket(i)).sum();
            shown.push((upto as f64 / 10_000.0, n));
            total += n;
            from = upto;
        }
        let rest: u64 = (from..BUCKETS).map(|i| l.bucket(i)).sum();
        shown.push((f64::INFINITY, rest));
        total += rest;
        let sum = l.sum(|h| &h.sum_us) as f64 / 1e6;
        encoder.encode_histogram::<NoLabelSet>(sum, total, &shown, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_the_exposition_agree() {
        let l = Arc::new(Lateness::default());
        // Two loops' histograms read as one.
        l.split(2);
        for (i, us) in [50, 50, 150, 900, 4_000, 90_000].into_iter().enumerate() {
            l.writer(i % 2).record(Duration::from_micros(us));
        }
        assert_eq!(l.count(), 6);
        assert_eq!(l.percentile_ms(0.5), 0.2);
        assert_eq!(l.percentile_ms(1.0), 51.2);
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register(
            "ivr_rtp_send_lateness_seconds",
            "h",
            LatenessMetric(l.clone()),
        );
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "ivr_rtp_send_lateness_seconds_bucket{le=\"0.0001\"} 2",
            "ivr_rtp_send_lateness_seconds_bucket{le=\"0.001\"} 4",
            "ivr_rtp_send_lateness_seconds_bucket{le=\"0.005\"} 5",
            "ivr_rtp_send_lateness_seconds_bucket{le=\"0.05\"} 5",
            "ivr_rtp_send_lateness_seconds_bucket{le=\"+Inf\"} 6",
            "ivr_rtp_send_lateness_seconds_count 6",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }
}
