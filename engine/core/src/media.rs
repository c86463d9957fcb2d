//! One call's RTP stream (RFC 3550): paced G.711 sending, symmetric latching, and RFC 4733
//! key detection on receive.
//!
//! Sending is continuous while our direction allows it: prompt frames when something plays,
//! silence otherwise, so timestamps stay continuous and NAT bindings stay open. Deadlines
//! advance from the previous deadline (`previous + 20 ms`), so a long prompt does not drift;
//! when the owner is late by more than [`MAX_CATCH_UP`] frames the stream skips ahead
//! (timestamps included) instead of bursting. No heap allocation happens per packet.

use crate::sdp::{Direction, Negotiated};
use crate::srtp::{SrtpSession, TAG_LEN};
use ivr_audio::dtmf::DtmfDetector;
use ivr_audio::rfc4733::EventTracker;
use ivr_audio::{Digit, FRAME_SAMPLES, Prompt};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The RTP packet interval.
pub const PTIME: Duration = Duration::from_millis(20);
/// RTP fixed header length (RFC 3550 §5.1) with no CSRCs.
pub const RTP_HEADER_LEN: usize = 12;
/// The largest packet the engine sends: header plus 20 ms of G.711.
pub const MAX_PACKET: usize = RTP_HEADER_LEN + FRAME_SAMPLES;
/// Frames sent at once to catch up after a late wake-up; beyond this the stream skips.
pub const MAX_CATCH_UP: u32 = 3;

/// An RTP packet held inline, so sending never touches the heap.
#[derive(Clone, Copy)]
pub struct RtpBuf {
    len: u16,
    /// Room for the SRTP tag after the packet.
    bytes: [u8; MAX_PACKET + TAG_LEN],
}

impl RtpBuf {
    /// The packet bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl std::fmt::Debug for RtpBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RtpBuf({} bytes)", self.len)
    }
}

/// Why a received packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// Not an RTP version 2 packet.
    #[error("not an RTP packet")]
    Malformed,
    /// A payload type that was not negotiated.
    #[error("unexpected payload type {0}")]
    PayloadType(u8),
    /// An SRTP packet that failed authentication or replay checks (RFC 3711 §3.3).
    #[error("SRTP packet refused")]
    Srtp,
}

/// The most samples one received packet is decoded to (60 ms); longer packets are cut.
pub const MAX_DECODED: usize = 480;

/// What a received packet was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Audio in the negotiated codec, decoded once: its RTP timestamp and how many samples
    /// [`MediaSession::decoded`] now holds (key detection and recording share them).
    Audio {
        /// The RTP timestamp (RFC 3550 §5.1).
        timestamp: u32,
        /// The number of decoded samples.
        samples: u16,
    },
    /// The first packet of a new RFC 4733 key event.
    Digit(Digit),
    /// Another packet of an event already reported, or RTCP multiplexed on the RTP port.
    Other,
}

/// One call's media stream.
#[derive(Debug)]
pub struct MediaSession {
    neg: Negotiated,
    remote: SocketAddr,
    latched: bool,
    ssrc: u32,
    seq: u16,
    ts: u32,
    next_send: Instant,
    playout: VecDeque<Prompt>,
    frame: usize,
    playback_finished: bool,
    marker: bool,
    dtmf: EventTracker,
    /// In-band key detection, used when the peer did not negotiate RFC 4733 events.
    inband: Option<Box<DtmfDetector>>,
    /// The last audio packet, decoded (8 kHz PCM); `decoded_len` samples are valid.
    decoded: [i16; MAX_DECODED],
    decoded_len: usize,
    last_rx: Instant,
    sent: u64,
    received: u64,
    /// Audio relayed from the other leg of a bridged call, sent when nothing plays.
    feed: Option<Box<crate::relay::Feed>>,
    /// RFC 4733 relay: (the source's event timestamp, ours for that event).
    event_ts: Option<(u32, u32)>,
    /// The last RFC 4733 packet received, for a bridge to pass on.
    last_event: Option<crate::relay::EventPacket>,
    /// SRTP keys, when the stream is RTP/SAVP (`crate::srtp`).
    srtp: Option<Box<SrtpSession>>,
}

impl MediaSession {
    /// A stream to `remote` with the negotiated parameters; random `ssrc`, `seq` and `ts` (RFC 3550 §5.1).
    pub fn new(
        now: Instant,
        neg: Negotiated,
        remote: SocketAddr,
        ssrc: u32,
        seq: u16,
        ts: u32,
    ) -> Self {
        MediaSession {
            neg,
            remote,
            latched: false,
            ssrc,
            seq,
            ts,
            next_send: now,
            playout: VecDeque::new(),
            frame: 0,
            playback_finished: false,
            marker: true,
            dtmf: EventTracker::new(),
            inband: neg.dtmf_pt.is_none().then(|| Box::new(DtmfDetector::new())),
            decoded: [0; MAX_DECODED],
            decoded_len: 0,
            last_rx: now,
            sent: 0,
            received: 0,
            feed: None,
            event_ts: None,
            last_event: None,
            srtp: None,
        }
    }

    /// Send and receive SRTP with these keys from now on.
    pub fn set_srtp(&mut self, srtp: Box<SrtpSession>) {
        self.srtp = Some(srtp);
    }

    /// The SRTP keys, if the stream is secure (a re-offer may bring a new inbound key).
    pub fn srtp_mut(&mut self) -> Option<&mut SrtpSession> {
        self.srtp.as_deref_mut()
    }

    /// A re-INVITE changed the stream (hold, resume, new address or codec).
    pub fn update(&mut self, now: Instant, neg: Negotiated, remote: SocketAddr) {
        let was_sending = self.neg.direction.sends();
        if remote != self.remote {
            self.remote = remote;
            self.latched = false;
        }
        self.neg = neg;
        if neg.dtmf_pt.is_some() {
            self.inband = None;
        } else if self.inband.is_none() && self.feed.is_none() {
            self.inband = Some(Box::new(DtmfDetector::new()));
        }
        if !was_sending && neg.direction.sends() {
            self.next_send = now;
            self.marker = true;
        }
        self.last_rx = now;
    }

    /// The negotiated parameters.
    pub fn negotiated(&self) -> &Negotiated {
        &self.neg
    }

    /// Where packets go (the latched source once the peer has sent).
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// Replace whatever plays with `prompts`.
    pub fn play(&mut self, prompts: Vec<Prompt>) {
        self.playout = prompts.into();
        self.frame = 0;
        self.playback_finished = self.playout.is_empty();
    }

    /// The negotiated audio codec.
    pub fn codec(&self) -> ivr_audio::Codec {
        self.neg.codec
    }

    /// Stop playing; silence follows.
    pub fn stop(&mut self) {
        self.playout.clear();
        self.frame = 0;
        self.playback_finished = false;
    }

    /// Whether a prompt is playing.
    pub fn is_playing(&self) -> bool {
        !self.playout.is_empty()
    }

    /// Whether everything asked to play has been sent since the last call (clears the flag).
    pub fn take_playback_finished(&mut self) -> bool {
        std::mem::take(&mut self.playback_finished)
    }

    /// When the next packet is due, if we send at all.
    pub fn next_send(&self) -> Option<Instant> {
        self.neg.direction.sends().then_some(self.next_send)
    }

    /// (packets sent, packets received).
    pub fn counters(&self) -> (u64, u64) {
        (self.sent, self.received)
    }

    /// The next packet if one is due at `now`. Call until it returns `None`.
    pub fn poll_packet(&mut self, now: Instant) -> Option<RtpBuf> {
        if !self.neg.direction.sends() || now < self.next_send {
            return None;
        }
        let behind = ((now - self.next_send).as_micros() / PTIME.as_micros()) as u32;
        if behind > MAX_CATCH_UP {
            // Too late to catch up without a burst: skip the missed frames, keeping time right.
            let skip = behind - MAX_CATCH_UP;
            self.next_send += PTIME * skip;
            self.ts = self.ts.wrapping_add(FRAME_SAMPLES as u32 * skip);
            for _ in 0..skip {
                self.advance_frame();
            }
        }
        let mut buf = RtpBuf {
            len: MAX_PACKET as u16,
            bytes: [0; MAX_PACKET + TAG_LEN],
        };
        // RFC 3550 §5.1: V=2, no padding, no extension, no CSRC.
        buf.bytes[0] = 0x80;
        buf.bytes[1] = (u8::from(self.marker) << 7) | (self.neg.pt & 0x7F);
        buf.bytes[2..4].copy_from_slice(&self.seq.to_be_bytes());
        buf.bytes[4..8].copy_from_slice(&self.ts.to_be_bytes());
        buf.bytes[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        let payload = &mut buf.bytes[RTP_HEADER_LEN..MAX_PACKET];
        match self
            .playout
            .front()
            .and_then(|p| p.frame(self.neg.codec, self.frame))
        {
            Some(frame) => payload.copy_from_slice(frame),
            None => {
                let mut pcm = [0i16; FRAME_SAMPLES];
                if self.feed.as_mut().is_some_and(|f| f.pop_frame(&mut pcm)) {
                    // Relayed audio, encoded in this leg's codec (the transcoding step).
                    ivr_audio::g711::encode_into(self.neg.codec, &pcm, payload);
                } else {
                    payload.fill(self.neg.codec.silence());
                }
            }
        }
        self.advance_frame();
        self.marker = false;
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(FRAME_SAMPLES as u32);
        self.next_send += PTIME;
        self.sent += 1;
        if let Some(s) = self.srtp.as_mut() {
            // The buffer has room for the tag and holds a well-formed header.
            if let Ok(n) = s.protect(&mut buf.bytes, MAX_PACKET) {
                buf.len = n as u16;
            }
        }
        Some(buf)
    }

    fn advance_frame(&mut self) {
        let Some(p) = self.playout.front() else {
            return;
        };
        self.frame += 1;
        if self.frame >= p.frame_count() {
            self.playout.pop_front();
            self.frame = 0;
            if self.playout.is_empty() {
                self.playback_finished = true;
            }
        }
    }

    /// A datagram arrived on our RTP port from `from`.
    pub fn handle_rtp(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &[u8],
    ) -> Result<Received, RtpError> {
        // SRTP (RFC 3711): check and decrypt first, then handle the RTP packet. RTCP
        // multiplexed here (SRTCP) only counts as liveness, as in plain RTP.
        let rtcp = data.len() >= 2 && (192..=223).contains(&data[1]);
        if !rtcp && let Some(mut s) = self.srtp.take() {
            let r = match s.unprotect(data) {
                Ok(plain) => self.handle_rtp(now, from, plain),
                Err(_) => Err(RtpError::Srtp),
            };
            self.srtp = Some(s);
            return r;
        }
        // RFC 5761 §4: payload types 64-95 (octet 192-223) on the RTP port are RTCP.
        if data.len() >= 2 && (192..=223).contains(&data[1]) && data[0] >> 6 == 2 {
            self.last_rx = now;
            return Ok(Received::Other);
        }
        let packet = rtp_types::RtpPacket::parse(data).map_err(|_| RtpError::Malformed)?;
        let pt = packet.payload_type();
        let kind = if pt == self.neg.pt {
            // Decoded once, here; the in-band detector and the recorder share the samples.
            let payload = packet.payload();
            let n = payload.len().min(MAX_DECODED);
            ivr_audio::g711::decode_into(self.neg.codec, &payload[..n], &mut self.decoded[..n]);
            self.decoded_len = n;
            let key = self
                .inband
                .as_mut()
                .and_then(|detector| inband_key(detector, &self.decoded[..n]));
            match key {
                Some(d) => Received::Digit(d),
                None => Received::Audio {
                    timestamp: packet.timestamp(),
                    // At most MAX_DECODED, so it fits in 16 bits.
                    samples: n as u16,
                },
            }
        } else if Some(pt) == self.neg.dtmf_pt {
            self.last_event = crate::relay::EventPacket::new(
                packet.timestamp(),
                packet.marker_bit(),
                packet.payload(),
            );
            match self.dtmf.on_packet(packet.timestamp(), packet.payload()) {
                Some(d) => Received::Digit(d),
                None => Received::Other,
            }
        } else if ivr_audio::Codec::from_payload_type(pt).is_some() || pt == 13 {
            // The other G.711 law or comfort noise (RFC 3389): tolerated, not used.
            Received::Other
        } else {
            return Err(RtpError::PayloadType(pt));
        };
        // Symmetric RTP (RFC 4961): send to where the peer's packets come from.
        if !self.latched {
            self.remote = from;
            self.latched = true;
        }
        self.last_rx = now;
        self.received += 1;
        Ok(kind)
    }

    /// Start (or stop) sending audio relayed from another leg when nothing plays. The queue
    /// is allocated here, once per bridge, never per packet.
    ///
    /// While relaying, in-band key detection is off: keys are not acted on in a bridge (the
    /// tones reach the other side as audio), and the detector is most of a packet's cost.
    pub fn set_relay(&mut self, on: bool) {
        self.feed = on.then(Box::default);
        self.inband = (!on && self.neg.dtmf_pt.is_none()).then(|| Box::new(DtmfDetector::new()));
    }

    /// The relay queue, while relaying.
    pub fn feed_mut(&mut self) -> Option<&mut crate::relay::Feed> {
        self.feed.as_deref_mut()
    }

    /// The RFC 4733 packet [`MediaSession::handle_rtp`] last received (decrypted, if SRTP),
    /// for a bridge to pass on; taken once.
    pub fn take_event(&mut self) -> Option<crate::relay::EventPacket> {
        self.last_event.take()
    }

    /// An RFC 4733 packet from the other leg, re-sent in this stream (RFC 4733 §2.5.1.5 for
    /// the re-timestamping): our SSRC, our next sequence number, our payload type, and a
    /// timestamp taken from our clock when the event starts and kept for its duration;
    /// protected if this leg is SRTP. `None` if this leg negotiated no telephone-event.
    pub fn relay_event(&mut self, ev: &crate::relay::EventPacket) -> Option<RtpBuf> {
        let pt = self.neg.dtmf_pt?;
        if !self.neg.direction.sends() {
            return None;
        }
        let ts = match self.event_ts {
            Some((src, ours)) if src == ev.timestamp => ours,
            _ => {
                self.event_ts = Some((ev.timestamp, self.ts));
                self.ts
            }
        };
        let payload = ev.payload();
        let len = RTP_HEADER_LEN + payload.len();
        let mut buf = RtpBuf {
            len: len as u16,
            bytes: [0; MAX_PACKET + TAG_LEN],
        };
        buf.bytes[0] = 0x80;
        buf.bytes[1] = (u8::from(ev.marker) << 7) | (pt & 0x7F);
        buf.bytes[2..4].copy_from_slice(&self.seq.to_be_bytes());
        buf.bytes[4..8].copy_from_slice(&ts.to_be_bytes());
        buf.bytes[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        buf.bytes[RTP_HEADER_LEN..len].copy_from_slice(payload);
        self.seq = self.seq.wrapping_add(1);
        self.sent += 1;
        if let Some(s) = self.srtp.as_mut() {
            // The buffer has room for the tag and holds a well-formed header.
            buf.len = s.protect(&mut buf.bytes, len).ok()? as u16;
        }
        Some(buf)
    }

    /// The last audio packet [`MediaSession::handle_rtp`] reported as [`Received::Audio`],
    /// decoded to 8 kHz PCM.
    pub fn decoded(&self) -> &[i16] {
        &self.decoded[..self.decoded_len]
    }

    /// An RTCP packet arrived on the next port (RFC 3550 §11): it proves the peer is alive.
    pub fn handle_rtcp(&mut self, now: Instant, data: &[u8]) -> bool {
        let ok = data.len() >= 8 && data[0] >> 6 == 2 && (200..=207).contains(&data[1]);
        if ok {
            self.last_rx = now;
        }
        ok
    }

    /// Whether the peer has put us on hold (RFC 3264 §8.4: it offered `sendonly` or
    /// `inactive`), so it is not expected to send media.
    pub fn peer_on_hold(&self) -> bool {
        matches!(
            self.neg.direction,
            Direction::SendOnly | Direction::Inactive
        )
    }

    /// When the call counts as dead for lack of media: `timeout` after the peer's last packet
    /// while it is meant to send, `hold_timeout` after it while it holds the call.
    pub fn inactivity_deadline(&self, timeout: Duration, hold_timeout: Duration) -> Instant {
        let limit = if self.peer_on_hold() {
            hold_timeout
        } else {
            timeout
        };
        self.last_rx + limit
    }
}

/// Look for in-band keys in one packet's decoded audio.
fn inband_key(detector: &mut DtmfDetector, pcm: &[i16]) -> Option<Digit> {
    let mut found = None;
    detector.feed(pcm, |d| found = Some(d));
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use ivr_audio::Codec;
    use ivr_audio::rfc4733::EventPayload;

    fn neg(direction: Direction) -> Negotiated {
        Negotiated {
            codec: Codec::Pcmu,
            pt: 0,
            dtmf_pt: Some(101),
            direction,
        }
    }

    fn session(now: Instant) -> MediaSession {
        MediaSession::new(
            now,
            neg(Direction::SendRecv),
            "127.0.0.1:6000".parse().unwrap(),
            0x1234,
            65534,
            u32::MAX - 159,
        )
    }

    fn header(p: &RtpBuf) -> (bool, u16, u32, u32) {
        let b = p.as_slice();
        (
            b[1] & 0x80 != 0,
            u16::from_be_bytes([b[2], b[3]]),
            u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        )
    }

    #[test]
    fn paced_packets_with_wrapping_seq_and_timestamp() {
        let t0 = crate::test_epoch();
        let mut m = session(t0);
        let p = m.poll_packet(t0).unwrap();
        assert_eq!(header(&p), (true, 65534, u32::MAX - 159, 0x1234));
        assert!(m.poll_packet(t0).is_none(), "next one is 20 ms later");
        let p = m.poll_packet(t0 + PTIME).unwrap();
        assert_eq!(header(&p), (false, 65535, 0, 0x1234));
        let p = m
            .poll_packet(t0 + PTIME * 2 + Duration::from_millis(3))
            .unwrap();
        assert_eq!(header(&p).1, 0);
        // the deadline advanced from the previous one, not from the late wake-up
        assert_eq!(m.next_send(), Some(t0 + PTIME * 3));
    }

    #[test]
    fn plays_prompt_frames_then_reports_finished_then_silence() {
        let t0 = crate::test_epoch();
        let mut m = session(t0);
        let prompt = Prompt::from_samples("p", &vec![8000i16; 320]);
        m.play(vec![prompt.clone()]);
        let a = m.poll_packet(t0).unwrap();
        assert_eq!(&a.as_slice()[12..], prompt.frame(Codec::Pcmu, 0).unwrap());
        assert!(!m.take_playback_finished());
        let _ = m.poll_packet(t0 + PTIME).unwrap();
        assert!(m.take_playback_finished());
        let s = m.poll_packet(t0 + PTIME * 2).unwrap();
        assert!(s.as_slice()[12..].iter().all(|b| *b == 0xFF));
    }

    #[test]
    fn long_prompt_does_not_drift() {
        let t0 = crate::test_epoch();
        let mut m = session(t0);
        m.play(vec![Prompt::from_samples(
            "long",
            &vec![100i16; 160 * 3000],
        )]);
        let mut now = t0;
        let mut sent = 0;
        // wake up with a jittery 1-3 ms lateness, as a real timer would
        while sent < 3000 {
            let due = m.next_send().unwrap();
            now = due + Duration::from_millis(1 + (sent % 3) as u64);
            while m.poll_packet(now).is_some() {
                sent += 1;
            }
        }
        assert_eq!(m.next_send(), Some(t0 + PTIME * 3000));
        assert!(m.take_playback_finished());
        let _ = now;
    }

    #[test]
    fn very_late_wake_up_skips_instead_of_bursting() {
        let t0 = crate::test_epoch();
        let mut m = session(t0);
        let _ = m.poll_packet(t0);
        let late = t0 + Duration::from_secs(1);
        let burst = std::iter::from_fn(|| m.poll_packet(late)).count();
        assert!(burst <= MAX_CATCH_UP as usize + 1, "burst of {burst}");
        // timestamps still advanced by the full second
        let p = m.poll_packet(late + PTIME).unwrap();
        let ts = header(&p).2;
        assert_eq!(ts.wrapping_sub(u32::MAX - 159), 8000 + 160);
    }

    #[test]
    fn receive_latches_and_reports_keys_once() {
        let t0 = crate::test_epoch();
        let mut m = session(t0);
        let from: SocketAddr = "127.0.0.1:7777".parse().unwrap();
        let mut pkt = [0u8; 16];
        pkt[0] = 0x80;
        pkt[1] = 101;
        pkt[4..8].copy_from_slice(&5000u32.to_be_bytes());
        pkt[12..].copy_from_slice(
            &EventPayload {
                event: 3,
                end: false,
                volume: 10,
                duration: 160,
            }
            .encode(),
        );
        assert_eq!(m.handle_rtp(t0, from, &pkt), Ok(Received::Digit(Digit::D3)));
        assert_eq!(m.remote(), from);
        pkt[12..].copy_from_slice(
            &EventPayload {
                event: 3,
                end: true,
                volume: 10,
                duration: 800,
            }
            .encode(),
        );
        for _ in 0..3 {
            assert_eq!(m.handle_rtp(t0, from, &pkt), Ok(Received::Other));
        }
        assert_eq!(m.handle_rtp(t0, from, &[1, 2, 3]), Err(RtpError::Malformed));
        pkt[1] = 96;
        assert_eq!(m.handle_rtp(t0, from, &pkt), Err(RtpError::PayloadType(96)));
        // RTCP multiplexed on the RTP port (SR, PT 200) is not audio
        let rtcp = [0x80, 200, 0, 6, 0, 0, 0, 1];
        assert_eq!(m.handle_rtp(t0, from, &rtcp), Ok(Received::Other));
        assert!(m.handle_rtcp(t0, &rtcp));
        assert!(!m.handle_rtcp(t0, &pkt));
    }

    #[test]
    fn hold_stops_sending_and_inactivity_follows_direction() {
        let t0 = crate::test_epoch();
        let mut m = session(t0);
        let (timeout, hold) = (Duration::from_secs(30), Duration::from_secs(1800));
        assert_eq!(m.inactivity_deadline(timeout, hold), t0 + timeout);
        assert!(!m.peer_on_hold());
        m.update(t0, neg(Direction::Inactive), m.remote());
        assert!(m.poll_packet(t0).is_none());
        assert!(m.peer_on_hold());
        assert_eq!(m.inactivity_deadline(timeout, hold), t0 + hold);
        m.update(t0 + PTIME, neg(Direction::SendRecv), m.remote());
        let p = m.poll_packet(t0 + PTIME).unwrap();
        assert!(header(&p).0, "marker set on resume");
    }
}
