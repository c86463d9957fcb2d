//! The audio a bridged leg sends: decoded samples from the other leg, queued here until the
//! leg's own send clock takes them 20 ms at a time (str0m's `chat.rs` model: the engine
//! moves media between legs by handle; no leg holds a reference to another).
//!
//! The queue absorbs jitter without bursts: output starts once [`PRIME`] samples are queued,
//! an underrun sends silence and primes again, and more than [`CAPACITY`] samples (a peer
//! sending faster than our clock, or a burst after a gap) drop the oldest, bounding the
//! delay. Samples are PCM, so each leg encodes in its own codec (PCMU↔PCMA transcoding is
//! decode on receive, encode on send). Fixed storage: nothing is allocated per packet.

use ivr_audio::FRAME_SAMPLES;

/// Samples queued before output starts (40 ms): the jitter a relayed stream absorbs.
pub const PRIME: usize = 2 * FRAME_SAMPLES;
/// The most samples queued (200 ms); beyond it the oldest are dropped.
pub const CAPACITY: usize = 10 * FRAME_SAMPLES;

/// A bounded FIFO of 8 kHz samples from the other leg.
#[derive(Debug, Clone)]
pub struct Feed {
    buf: [i16; CAPACITY],
    head: usize,
    len: usize,
    primed: bool,
    dropped: u64,
}

impl Default for Feed {
    fn default() -> Self {
        Feed {
            buf: [0; CAPACITY],
            head: 0,
            len: 0,
            primed: false,
            dropped: 0,
        }
    }
}

impl Feed {
    /// Queue samples received on the other leg. Copies in at most two runs (the ring's
    /// end, then its start): no per-sample arithmetic on the relay path.
    pub fn push(&mut self, pcm: &[i16]) {
        let mut pcm = pcm;
        if pcm.len() > CAPACITY {
            // More than the queue holds: only the newest CAPACITY samples can stay.
            let skip = pcm.len() - CAPACITY;
            self.dropped += (skip + self.len) as u64;
            pcm = &pcm[skip..];
            self.head = 0;
            self.len = 0;
        }
        let free = CAPACITY - self.len;
        if pcm.len() > free {
            // Full: drop the oldest samples so the delay stays bounded.
            let drop = pcm.len() - free;
            self.head = (self.head + drop) % CAPACITY;
            self.len -= drop;
            self.dropped += drop as u64;
        }
        let tail = (self.head + self.len) % CAPACITY;
        let first = (CAPACITY - tail).min(pcm.len());
        self.buf[tail..tail + first].copy_from_slice(&pcm[..first]);
        self.buf[..pcm.len() - first].copy_from_slice(&pcm[first..]);
        self.len += pcm.len();
        if self.len >= PRIME {
            self.primed = true;
        }
    }

    /// Take the next 20 ms, if output has started and enough is queued; `false` means send
    /// silence (and wait for [`PRIME`] samples again).
    pub fn pop_frame(&mut self, out: &mut [i16; FRAME_SAMPLES]) -> bool {
        if !self.primed || self.len < FRAME_SAMPLES {
            self.primed = false;
            return false;
        }
        let first = (CAPACITY - self.head).min(FRAME_SAMPLES);
        out[..first].copy_from_slice(&self.buf[self.head..self.head + first]);
        out[first..].copy_from_slice(&self.buf[..FRAME_SAMPLES - first]);
        self.head = (self.head + FRAME_SAMPLES) % CAPACITY;
        self.len -= FRAME_SAMPLES;
        true
    }

    /// Forget what is queued (the other leg went on hold or stopped).
    pub fn clear(&mut self) {
        self.len = 0;
        self.primed = false;
    }

    /// Samples queued now.
    pub fn queued(&self) -> usize {
        self.len
    }

    /// Samples dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// An RFC 4733 packet as received (after SRTP), for the other leg to re-send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    /// The event's RTP timestamp in the source stream.
    pub timestamp: u32,
    /// The marker bit (the event's first packet).
    pub marker: bool,
    len: u8,
    bytes: [u8; EventPacket::MAX],
}

impl EventPacket {
    /// The most payload kept: four events of 4 bytes (RFC 4733 §2.3 with redundancy).
    pub const MAX: usize = 16;

    /// A received event payload; `None` if shorter than one event or longer than [`Self::MAX`].
    pub fn new(timestamp: u32, marker: bool, payload: &[u8]) -> Option<EventPacket> {
        if payload.len() < 4 || payload.len() > Self::MAX {
            return None;
        }
        let mut bytes = [0; Self::MAX];
        bytes[..payload.len()].copy_from_slice(payload);
        Some(EventPacket {
            timestamp,
            marker,
            len: payload.len() as u8,
            bytes,
        })
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primes_then_plays_in_order_then_underruns_to_silence() {
        let mut f = Feed::default();
        let mut out = [0i16; FRAME_SAMPLES];
        let a: Vec<i16> = (0..FRAME_SAMPLES as i16).collect();
        f.push(&a);
        assert!(!f.pop_frame(&mut out), "not primed with one frame");
        // 30 ms packets (SIPp's A-law capture) are cut into 20 ms frames.
        let b: Vec<i16> = (1000..1000 + 240).collect();
        f.push(&b);
        assert!(f.pop_frame(&mut out));
        assert_eq!(out.to_vec(), a);
        assert!(f.pop_frame(&mut out));
        assert_eq!(&out[..], &b[..FRAME_SAMPLES]);
        assert_eq!(f.queued(), 80);
        assert!(!f.pop_frame(&mut out), "underrun");
        f.push(&[7; 100]);
        assert!(!f.pop_frame(&mut out), "primes again after an underrun");
    }

    #[test]
    fn wraps_around_the_ring_in_order() {
        let mut f = Feed::default();
        let mut out = [0i16; FRAME_SAMPLES];
        let mut next = 0i16;
        let mut expect = 0i16;
        // 30 ms in, 20 ms out, many times round the ring.
        for _ in 0..200 {
            let chunk: Vec<i16> = (0..240).map(|i| next.wrapping_add(i)).collect();
            next = next.wrapping_add(240);
            f.push(&chunk);
            while f.queued() >= 2 * FRAME_SAMPLES && f.pop_frame(&mut out) {
                for s in out {
                    assert_eq!(s, expect);
                    expect = expect.wrapping_add(1);
                }
            }
        }
        assert_eq!(f.dropped(), 0);
    }

    #[test]
    fn overflow_drops_the_oldest() {
        let mut f = Feed::default();
        let all: Vec<i16> = (0..(CAPACITY + 160) as i16).collect();
        f.push(&all);
        assert_eq!((f.queued(), f.dropped()), (CAPACITY, 160));
        let mut out = [0i16; FRAME_SAMPLES];
        assert!(f.pop_frame(&mut out));
        assert_eq!(out[0], 160);
    }
}
