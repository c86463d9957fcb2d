//! Fuzz target bodies for the engine's parsers of network input (run by `tests/fuzz`).

use crate::media::MediaSession;
use crate::sdp::{self, Direction, LocalSession, Negotiated};
use ivr_audio::Codec;
use std::time::Instant;

/// Parse SDP as an offer; if it negotiates, the answer we build must parse back with the
/// chosen codec (and, for RTP/SAVP, our key).
pub fn sdp_offer(data: &[u8]) {
    let Ok(offer) = sdp::parse_remote(data) else {
        return;
    };
    let Ok(n) = sdp::negotiate(&offer) else {
        return;
    };
    let local = LocalSession {
        id: 1,
        version: 1,
        addr: ([127, 0, 0, 1], 20000).into(),
    };
    let ours = crate::srtp::KeyGen::new(&crate::srtp::KeySeed([2; 32])).next_key();
    let answer = match offer.crypto {
        Some(_) => sdp::build_secure_answer(&local, &offer, &n, &ours),
        None => sdp::build_answer(&local, &offer, &n),
    };
    let back = sdp::parse_remote(&answer).expect("our answer parses");
    assert_eq!(back.codecs.first().map(|c| c.1), Some(n.codec));
    if offer.crypto.is_some() {
        assert_eq!(
            back.crypto.map(|c| c.key),
            Some(ours),
            "our key in the answer"
        );
    }
}

/// A PCMU media session with RFC 4733 events, as the fuzz bodies drive it.
fn session(now: Instant) -> MediaSession {
    let neg = Negotiated {
        codec: Codec::Pcmu,
        pt: 0,
        dtmf_pt: Some(101),
        direction: Direction::SendRecv,
    };
    MediaSession::new(now, neg, ([127, 0, 0, 1], 4000).into(), 1, 2, 3)
}

/// The datagrams in a fuzz input: each one a length byte and up to that many bytes.
fn datagrams(mut rest: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let (&len, tail) = rest.split_first()?;
        let (pkt, next) = tail.split_at(usize::from(len).min(tail.len()));
        rest = next;
        Some(pkt)
    })
}

/// Feed datagrams (length-prefixed in the input) to a media session as RTP and RTCP.
pub fn rtp(data: &[u8], now: Instant) {
    let mut m = session(now);
    for pkt in datagrams(data) {
        let _ = m.handle_rtp(now, ([127, 0, 0, 1], 4000).into(), pkt);
        let _ = m.handle_rtcp(now, pkt);
        let _ = ivr_audio::rfc4733::EventPayload::parse(pkt);
    }
}

/// Feed datagrams (length-prefixed in the input) to an SRTP media session: whatever comes,
/// nothing panics; and a packet we protect ourselves always unprotects to itself.
pub fn srtp(data: &[u8], now: Instant) {
    use crate::srtp::{KeyGen, KeySeed, SrtpSession};
    let key = KeyGen::new(&KeySeed([1; 32])).next_key();
    let mut m = session(now);
    m.set_srtp(Box::new(SrtpSession::new(&key, &key)));
    let mut ours = SrtpSession::new(&key, &key);
    let mut theirs = SrtpSession::new(&key, &key);
    for pkt in datagrams(data) {
        let _ = m.handle_rtp(now, ([127, 0, 0, 1], 4000).into(), pkt);
        let mut buf = [0u8; 300];
        if pkt.len() + crate::srtp::TAG_LEN <= buf.len() {
            buf[..pkt.len()].copy_from_slice(pkt);
            if let Ok(n) = ours.protect(&mut buf, pkt.len()) {
                // A replayed sequence number may be refused; anything accepted is the original.
                if let Ok(plain) = theirs.unprotect(&buf[..n]) {
                    assert_eq!(plain, pkt);
                }
            }
        }
    }
}
