//! What the virtual-time scenario tests (`uac.rs`, `refer.rs`) share: the one clock read that
//! anchors a virtual clock, and a deterministic random source for branches and cnonces.

use ivr_sip::digest::RandomSource;
use std::time::Instant;

/// An arbitrary starting point for a test's virtual clock (the one place tests read it).
#[allow(clippy::disallowed_methods)]
pub fn epoch() -> Instant {
    Instant::now()
}

/// A linear congruential generator: deterministic, distinct values, nothing secret.
pub struct Counter(pub u64);

impl RandomSource for Counter {
    fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0
    }
}
