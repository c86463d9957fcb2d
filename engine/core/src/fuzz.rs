//! Fuzz target bodies for the engine's parsers of network input (run by `tests/fuzz`).

use crate::media::MediaSession;
use crate::sdp::{self, Direction, LocalSession, Negotiated};
use ivr_audio::Codec;
use std::time::Instant;

/// Parse SDP as an offer; if it negotiates, the answer we build must parse back with the
/// chosen codec.
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
    let answer = sdp::build_answer(&local, &offer, &n);
    let back = sdp::parse_remote(&answer).expect("our answer parses");
    assert_eq!(back.codecs.first().map(|c| c.1), Some(n.codec));
}

/// Feed datagrams (length-prefixed in the input) to a media session as RTP and RTCP.
pub fn rtp(data: &[u8], now: Instant) {
    let neg = Negotiated {
        codec: Codec::Pcmu,
        pt: 0,
        dtmf_pt: Some(101),
        direction: Direction::SendRecv,
    };
    let mut m = MediaSession::new(now, neg, ([127, 0, 0, 1], 4000).into(), 1, 2, 3);
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let take = usize::from(len).min(tail.len());
        let (pkt, next) = tail.split_at(take);
        let _ = m.handle_rtp(now, ([127, 0, 0, 1], 4000).into(), pkt);
        let _ = m.handle_rtcp(now, pkt);
        let _ = ivr_audio::rfc4733::EventPayload::parse(pkt);
        rest = next;
    }
}
