//! Putting a caller's audio back in order for recording (RFC 3550 §5.1 timestamps).
//!
//! Packets are written into a ring of samples at the place their RTP timestamp says, held
//! for [`Reorder::new`]'s `delay`, and released in order as whole 20 ms frames. A sample no
//! packet filled is released as silence, so lost packets keep the recording's length right.
//! A packet older than what was already released is dropped; a jump of more than
//! [`MAX_GAP`] samples (a new stream, a long hold) restarts the timeline without filling it.
//! The ring is allocated once: pushing and releasing never allocate.

use crate::FRAME_SAMPLES;

/// The ring's size in samples (about 1 s at 8 kHz; a power of two).
const RING: usize = 8192;
/// The longest gap filled with silence: 5 s. Longer jumps restart the timeline.
pub const MAX_GAP: u32 = 40_000;

/// One released frame of 20 ms (the last one of a recording may be shorter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// The samples; only the first `len` count.
    pub samples: [i16; FRAME_SAMPLES],
    /// How many samples count.
    pub len: usize,
    /// How many of them no packet filled (silence put in place of lost audio).
    pub missing: usize,
}

impl Frame {
    /// The samples that count.
    pub fn pcm(&self) -> &[i16] {
        &self.samples[..self.len]
    }
}

/// What became of a pushed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Placed on the timeline.
    Placed,
    /// Older than audio already released: dropped.
    Late,
    /// Too far from the timeline: the timeline restarted at it.
    Restarted,
}

/// The reorder buffer of one recording.
#[derive(Debug)]
pub struct Reorder {
    ring: Box<[i16]>,
    have: Box<[bool]>,
    /// Samples held back before release (the reordering window).
    delay: u32,
    /// The timestamp of the next sample to release, once a packet has come.
    next: Option<u32>,
    /// One past the newest sample placed.
    end: u32,
    /// Whether any frame has been released (until then the start may still move back).
    started: bool,
}

impl Reorder {
    /// A buffer that holds audio `delay` samples (at most half a second) before releasing
    /// it, so packets up to that late still find their place.
    pub fn new(delay: u32) -> Reorder {
        Reorder {
            ring: vec![0; RING].into_boxed_slice(),
            have: vec![false; RING].into_boxed_slice(),
            delay: delay.min(RING as u32 / 2),
            next: None,
            end: 0,
            started: false,
        }
    }

    /// Forget everything held and start a new timeline (reusing the ring).
    pub fn reset(&mut self) {
        self.have.fill(false);
        self.next = None;
        self.end = 0;
        self.started = false;
    }

    /// Place a packet's samples, which start at RTP timestamp `ts`. Frames that are ready
    /// go to `out` (before a restart, everything held is released first).
    pub fn push(&mut self, ts: u32, samples: &[i16], out: &mut impl FnMut(&Frame)) -> Pushed {
        let samples = &samples[..samples.len().min(RING / 2)];
        let Some(next) = self.next else {
            self.next = Some(ts);
            self.end = ts;
            self.place(ts, samples);
            self.release(false, out);
            return Pushed::Placed;
        };
        let behind = next.wrapping_sub(ts);
        let ahead = ts.wrapping_sub(next);
        let result =
            if behind != 0 && behind < u32::MAX / 2 && !self.started && behind <= self.delay {
                // Earlier than the first packet, and nothing released yet: the start moves back.
                self.next = Some(ts);
                self.place(ts, samples);
                Pushed::Placed
            } else if behind != 0 && behind < u32::MAX / 2 {
                // Starts before the next sample to release.
                if behind as usize >= samples.len() {
                    return Pushed::Late;
                }
                // The part not yet released still counts.
                self.place(next, &samples[behind as usize..]);
                Pushed::Placed
            } else if ahead > MAX_GAP {
                self.release(true, out);
                self.next = Some(ts);
                self.end = ts;
                self.started = false;
                self.place(ts, samples);
                Pushed::Restarted
            } else {
                // Make room: audio more than a ring behind this packet's end is released now
                // (as silence where nothing came).
                let end = ts.wrapping_add(samples.len() as u32);
                while end.wrapping_sub(self.next.unwrap_or(ts)) as usize > RING {
                    self.emit_frame(FRAME_SAMPLES, out);
                }
                self.place(ts, samples);
                Pushed::Placed
            };
        self.release(false, out);
        result
    }

    /// Release everything held (the recording ends).
    pub fn flush(&mut self, out: &mut impl FnMut(&Frame)) {
        self.release(true, out);
    }

    fn place(&mut self, ts: u32, samples: &[i16]) {
        for (i, s) in samples.iter().enumerate() {
            let at = ts.wrapping_add(i as u32) as usize % RING;
            self.ring[at] = *s;
            self.have[at] = true;
        }
        let last = ts.wrapping_add(samples.len() as u32);
        let next = self.next.unwrap_or(ts);
        if last.wrapping_sub(next) > self.end.wrapping_sub(next) {
            self.end = last;
        }
    }

    /// Release whole frames older than the window (all of them with `all`, the last one
    /// possibly short).
    fn release(&mut self, all: bool, out: &mut impl FnMut(&Frame)) {
        let Some(next) = self.next else { return };
        let mut held = self.end.wrapping_sub(next) as usize;
        let keep = if all { 0 } else { self.delay as usize };
        while held >= keep + FRAME_SAMPLES {
            self.emit_frame(FRAME_SAMPLES, out);
            held -= FRAME_SAMPLES;
        }
        if all && held > 0 {
            self.emit_frame(held, out);
        }
    }

    fn emit_frame(&mut self, len: usize, out: &mut impl FnMut(&Frame)) {
        let Some(next) = self.next else { return };
        let mut frame = Frame {
            samples: [0; FRAME_SAMPLES],
            len,
            missing: 0,
        };
        for i in 0..len {
            let at = next.wrapping_add(i as u32) as usize % RING;
            if self.have[at] {
                frame.samples[i] = self.ring[at];
                self.have[at] = false;
            } else {
                frame.missing += 1;
            }
        }
        let next = next.wrapping_add(len as u32);
        self.next = Some(next);
        self.started = true;
        if self.end.wrapping_sub(next) > u32::MAX / 2 {
            self.end = next;
        }
        out(&frame);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ramp(start: u32, len: usize) -> Vec<i16> {
        (0..len)
            .map(|i| ((start as usize + i) % 30_000) as i16 + 1)
            .collect()
    }

    fn collect(r: &mut Reorder, packets: &[(u32, Vec<i16>)]) -> (Vec<i16>, usize) {
        let mut pcm = Vec::new();
        let mut missing = 0;
        let mut out = |f: &Frame| {
            pcm.extend_from_slice(f.pcm());
            missing += f.missing;
        };
        for (ts, s) in packets {
            r.push(*ts, s, &mut out);
        }
        r.flush(&mut out);
        (pcm, missing)
    }

    #[test]
    fn in_order_audio_comes_out_whole() {
        let packets: Vec<(u32, Vec<i16>)> = (0..50)
            .map(|i| (1000 + i * 160, ramp(i * 160, 160)))
            .collect();
        let (pcm, missing) = collect(&mut Reorder::new(480), &packets);
        assert_eq!(pcm, ramp(0, 8000));
        assert_eq!(missing, 0);
    }

    #[test]
    fn reordered_packets_find_their_place_and_losses_become_silence() {
        let mut packets: Vec<(u32, Vec<i16>)> =
            (0..50u32).map(|i| (i * 160, ramp(i * 160, 160))).collect();
        packets.swap(10, 12); // late by two packets: within the 60 ms window
        packets.remove(30); // lost
        let (pcm, missing) = collect(&mut Reorder::new(480), &packets);
        assert_eq!(pcm.len(), 8000, "the length is kept");
        assert_eq!(missing, 160);
        let mut want = ramp(0, 8000);
        want[30 * 160..31 * 160].fill(0);
        assert_eq!(pcm, want);
    }

    #[test]
    fn thirty_ms_packets_and_timestamp_wrap() {
        let start = u32::MAX - 1000;
        let packets: Vec<(u32, Vec<i16>)> = (0..40u32)
            .map(|i| (start.wrapping_add(i * 240), ramp(i * 240, 240)))
            .collect();
        let (pcm, missing) = collect(&mut Reorder::new(480), &packets);
        assert_eq!(pcm, ramp(0, 9600));
        assert_eq!(missing, 0);
    }

    #[test]
    fn too_late_is_dropped_and_a_big_jump_restarts() {
        let mut r = Reorder::new(160);
        let mut n = 0;
        let mut out = |f: &Frame| n += f.len;
        for i in 0..10u32 {
            assert_eq!(r.push(i * 160, &ramp(0, 160), &mut out), Pushed::Placed);
        }
        assert_eq!(r.push(0, &ramp(0, 160), &mut out), Pushed::Late);
        assert_eq!(
            r.push(10 * 160 + MAX_GAP + 1, &ramp(0, 160), &mut out),
            Pushed::Restarted
        );
        r.flush(&mut out);
        assert_eq!(n, 11 * 160, "no silence for the jump");
    }

    #[test]
    fn a_gap_within_the_limit_is_filled() {
        let mut packets = vec![(0u32, ramp(0, 160))];
        packets.push((160 + 16_000, ramp(0, 160))); // 2 s of nothing (silence suppression)
        let (pcm, missing) = collect(&mut Reorder::new(480), &packets);
        assert_eq!(pcm.len(), 320 + 16_000);
        assert_eq!(missing, 16_000);
    }

    proptest! {
        /// Whatever the order within the window and whatever is lost, the output is the
        /// stream with lost packets as silence, of the right length.
        #[test]
        fn shuffles_within_the_window_are_undone(
            n in 1usize..120,
            delays in proptest::collection::vec(0usize..3, 120),
            lost in proptest::collection::vec(0usize..120, 0..10),
        ) {
            // Each packet arrives up to two packets late (the window is three).
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by_key(|&i| i + delays[i]);
            let packets: Vec<(u32, Vec<i16>)> = order
                .iter()
                .filter(|i| !lost.contains(i) || **i == 0 || **i == n - 1)
                .map(|&i| (500 + i as u32 * 160, ramp(i as u32 * 160, 160)))
                .collect();
            let (pcm, _) = collect(&mut Reorder::new(480), &packets);
            let mut want = ramp(0, n * 160);
            for &l in &lost {
                if l < n && l != 0 && l != n - 1 {
                    want[l * 160..(l + 1) * 160].fill(0);
                }
            }
            prop_assert_eq!(pcm, want);
        }
    }
}
