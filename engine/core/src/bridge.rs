//! Relaying RTP between the legs of a bridged call (str0m's `examples/chat.rs` `propagate`):
//! the engine hands what one leg received to the other by [`LegHandle`]; no leg holds a
//! reference to another.
//!
//! - Audio: the receiving leg decoded the packet once ([`MediaSession::decoded`]); the
//!   samples join the other leg's relay queue ([`crate::relay::Feed`]) and leave on that
//!   leg's own 20 ms clock, in that leg's codec, SSRC, sequence numbers and timestamps. So
//!   PCMU↔PCMA is transcoded, jitter is absorbed and nothing is sent in bursts.
//! - RFC 4733 events: re-sent at once in the other leg's stream, re-timestamped
//!   ([`MediaSession::relay_event`]); dropped if that leg negotiated no telephone-event.
//! - Hold: a leg whose peer holds the call (`sendonly`/`inactive`, RFC 3264 §8.4) relays
//!   nothing; the other side hears silence.
//!
//! Nothing here allocates.

use crate::call::LegHandle;
use crate::io::Output;
use crate::leg::Leg;
use crate::media::Received;
use std::collections::VecDeque;
use std::time::Instant;

/// `from` received a packet (which it reported as `received`): pass it on to `to`.
pub(crate) fn relay(
    outputs: &mut VecDeque<Output>,
    now: Instant,
    legs: &mut [Leg],
    from: LegHandle,
    to: LegHandle,
    received: Option<Received>,
) {
    let Some(received) = received else { return };
    let Some((src, dst)) = pair(legs, usize::from(from.index), usize::from(to.index)) else {
        return;
    };
    let (Some(src), Some(dst)) = (src.media.as_mut(), dst.media.as_mut()) else {
        return;
    };
    // The source's peer put the call on hold (it offered sendonly or inactive, so we only
    // receive, RFC 3264 §8.4): what it sends (music on hold) is not relayed.
    if !src.negotiated().direction.sends() {
        return;
    }
    match received {
        Received::Audio { .. } => {
            if let Some(feed) = dst.feed_mut() {
                feed.push(src.decoded());
            }
        }
        Received::Digit(_) | Received::Other => {
            if let Some(ev) = src.take_event()
                && let Some(packet) = dst.relay_event(&ev)
            {
                outputs.push_back(Output::Rtp {
                    leg: to,
                    to: dst.remote(),
                    packet,
                    due: now,
                });
            }
        }
    }
}

/// Two distinct legs, mutably.
fn pair(legs: &mut [Leg], a: usize, b: usize) -> Option<(&mut Leg, &mut Leg)> {
    if a == b || a.max(b) >= legs.len() {
        return None;
    }
    if a < b {
        let (x, y) = legs.split_at_mut(b);
        Some((&mut x[a], &mut y[0]))
    } else {
        let (x, y) = legs.split_at_mut(a);
        Some((&mut y[0], &mut x[b]))
    }
}
