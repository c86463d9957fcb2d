//! A small deterministic generator for tags, branches, SSRCs and SDP session ids.
//!
//! The engine is pure, so it does not read the OS's randomness: the driver seeds it once at
//! start. SplitMix64 (Steele et al., 2014) is plenty for identifiers that only need to be
//! unique and hard to guess by accident; nothing here is a secret.

/// SplitMix64.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// A 16-hex-digit token.
    pub fn token(&mut self) -> String {
        format!("{:016x}", self.next_u64())
    }
}

/// Outgoing calls ([`ivr_sip::uac::OutgoingCall`]) draw branches and digest cnonces from
/// their own generator, seeded from the engine's.
impl ivr_sip::digest::RandomSource for Rng {
    fn next_u64(&mut self) -> u64 {
        Rng::next_u64(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_differ() {
        let mut r = Rng::new(1);
        let a = r.token();
        let b = r.token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
    }
}
