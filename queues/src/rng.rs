//! Randomness is an input: the center draws from an injected source, so tests are
//! deterministic and the `random` strategy can be checked.

/// A source of random bits.
pub trait RandomSource: Send {
    /// The next 64 random bits.
    fn next_u64(&mut self) -> u64;
}

/// A small seeded generator (SplitMix64) for tests and for drivers that seed it from the OS.
/// Not for secrets: it only spreads calls over agents.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
}

impl RandomSource for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A uniform index below `n` (`n > 0`), without modulo bias worth speaking of for the small
/// `n` of agent lists (Lemire's multiply-shift).
pub(crate) fn below(rng: &mut dyn RandomSource, n: usize) -> usize {
    debug_assert!(n > 0);
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_is_in_range_and_spread() {
        let mut rng = SplitMix64::new(7);
        let mut counts = [0u32; 5];
        for _ in 0..5000 {
            counts[below(&mut rng, 5)] += 1;
        }
        for c in counts {
            assert!((900..1100).contains(&c), "{counts:?}");
        }
    }
}
