//! An engine's place among the shards of one process (issue 11: every core used).
//!
//! A process may run several engines ("shards"), each on its own thread; a call lives on
//! the shard its Call-ID hashes to ([`ivr_sip::route_key`]), so that every message of the
//! call reaches the engine that holds it. This module holds what an engine knows of that:
//! its index, how many there are and the routing key, the call handles it hands out (its
//! index in their top 16 bits, so a handle names a call across shards), and the Call-IDs
//! it makes for the calls it places, chosen so that the answers come back to it.
//! An engine made with [`crate::Engine::new`] is shard 0 of 1, and behaves as before.

use crate::hub_msg::ShardId;
use crate::rng::Rng;
use ivr_sip::route_key::{RouteKey, shard_of};

/// Draws of a Call-ID before giving up on steering it (per shard; the expected number is
/// the shard count). Past it the Call-ID is used as drawn: a message for it that reaches
/// another shard is handed over, which costs a copy, never a call.
const STEER_DRAWS: u32 = 64;

/// Which shard an engine is, of how many, and the key that routes messages among them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardSpec {
    /// This engine's index, `0..count`.
    pub index: ShardId,
    /// Engines in the process (at least 1).
    pub count: u16,
    /// The secret key Call-IDs are hashed with (the same for every shard of a process).
    pub key: RouteKey,
}

impl Default for ShardSpec {
    /// The only shard.
    fn default() -> ShardSpec {
        ShardSpec {
            index: 0,
            count: 1,
            key: RouteKey::new([0; 16]),
        }
    }
}

impl ShardSpec {
    /// The first call handle this shard hands out: its index in the top 16 bits, counting
    /// from 1 below them (2^48 calls before they could run into the next shard's).
    pub fn first_handle(&self) -> u64 {
        (u64::from(self.index) << 48) | 1
    }

    /// The shard a Call-ID belongs to.
    pub fn shard_of(&self, call_id: &str) -> ShardId {
        if self.count <= 1 {
            return 0;
        }
        shard_of(self.key.of_call_id(call_id), self.count)
    }

    /// Whether a Call-ID belongs to this shard.
    pub fn owns(&self, call_id: &str) -> bool {
        self.shard_of(call_id) == self.index
    }

    /// A new Call-ID `TOKEN@host` for a call this shard places, steered so that the
    /// answers to it are routed back here. One shard draws once (the random sequence of a
    /// single engine is unchanged).
    pub fn new_call_id(&self, rng: &mut Rng, host: std::net::IpAddr) -> String {
        let mut id = format!("{}@{host}", rng.token());
        for _ in 1..STEER_DRAWS.saturating_mul(u32::from(self.count)) {
            if self.owns(&id) {
                break;
            }
            id = format!("{}@{host}", rng.token());
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_carry_the_shard_and_one_shard_is_unchanged() {
        let one = ShardSpec::default();
        assert_eq!(one.first_handle(), 1);
        let third = ShardSpec {
            index: 2,
            count: 3,
            ..one
        };
        assert_eq!(
            crate::hub_msg::shard_of_call(ivr_queues::CallRef(third.first_handle())),
            2
        );
        // One shard: the same draws as before steering existed.
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let ip = "192.0.2.1".parse().unwrap();
        assert_eq!(
            one.new_call_id(&mut a, ip),
            format!("{}@192.0.2.1", b.token())
        );
        assert_eq!(a.token(), b.token());
    }

    /// Every Call-ID a shard makes routes home, for 1 to 8 shards (10,000 each).
    #[test]
    fn steered_call_ids_route_home() {
        let key = RouteKey::new(*b"steering test k!");
        let ip = "192.0.2.1".parse().unwrap();
        for count in 1..=8u16 {
            for index in 0..count {
                let spec = ShardSpec { index, count, key };
                let mut rng = Rng::new(u64::from(count) << 8 | u64::from(index));
                for _ in 0..10_000 / usize::from(count) {
                    let id = spec.new_call_id(&mut rng, ip);
                    assert_eq!(shard_of(key.of_call_id(&id), count), index, "{id}");
                }
            }
        }
    }
}
