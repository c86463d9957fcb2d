//! RFC 4733 telephone-event payloads and the receive-side event tracker.

use crate::Digit;

/// One decoded telephone-event payload (RFC 4733 §2.3, figure 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPayload {
    /// Event code (0-15 are DTMF keys).
    pub event: u8,
    /// The E bit: this packet ends the event.
    pub end: bool,
    /// Power level in -dBm0 (0-63).
    pub volume: u8,
    /// Duration so far, in timestamp units.
    pub duration: u16,
}

/// Why a telephone-event payload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Fewer than the 4 octets of one event.
    #[error("telephone-event payload of {0} octets is shorter than 4")]
    TooShort(usize),
}

impl EventPayload {
    /// Decode the first event of a payload (RFC 4733 §2.3). Extra octets (redundant
    /// events, RFC 4733 §2.5.1.5) are ignored.
    pub fn parse(payload: &[u8]) -> Result<EventPayload, EventError> {
        if payload.len() < 4 {
            return Err(EventError::TooShort(payload.len()));
        }
        Ok(EventPayload {
            event: payload[0],
            end: payload[1] & 0x80 != 0,
            volume: payload[1] & 0x3F,
            duration: u16::from_be_bytes([payload[2], payload[3]]),
        })
    }

    /// Encode into 4 octets.
    pub fn encode(&self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (if self.end { 0x80 } else { 0 }) | (self.volume & 0x3F),
            d[0],
            d[1],
        ]
    }

    /// The DTMF key, if the event is one.
    pub fn digit(&self) -> Option<Digit> {
        Digit::from_event_code(self.event)
    }
}

/// Turns a stream of telephone-event packets into key presses, once each.
///
/// An event is identified by its RTP timestamp (RFC 4733 §2.5.1.1: all packets of one
/// event carry the event's start timestamp). A key is reported on the first packet of a
/// new event, so a lost marker bit or lost end packets do not lose the key, and the three
/// redundant end packets (§2.5.1.4) do not repeat it.
#[derive(Debug, Default, Clone)]
pub struct EventTracker {
    last: Option<(u32, u8)>,
}

impl EventTracker {
    /// A tracker that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed one packet's RTP timestamp and payload; returns a key when a new event starts.
    pub fn on_packet(&mut self, rtp_timestamp: u32, payload: &[u8]) -> Option<Digit> {
        let ev = EventPayload::parse(payload).ok()?;
        let key = (rtp_timestamp, ev.event);
        if self.last == Some(key) {
            return None;
        }
        self.last = Some(key);
        ev.digit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_fields() {
        let p = EventPayload::parse(&[5, 0x8A, 0x03, 0x20]).unwrap();
        assert_eq!(
            p,
            EventPayload {
                event: 5,
                end: true,
                volume: 10,
                duration: 800
            }
        );
        assert_eq!(p.digit(), Some(Digit::D5));
        assert_eq!(
            EventPayload::parse(&[1, 2, 3]),
            Err(EventError::TooShort(3))
        );
    }

    #[test]
    fn one_key_per_event_even_with_repeated_ends_and_no_marker() {
        let mut t = EventTracker::new();
        let start = |d| {
            EventPayload {
                event: 1,
                end: false,
                volume: 10,
                duration: d,
            }
            .encode()
        };
        let end = EventPayload {
            event: 1,
            end: true,
            volume: 10,
            duration: 800,
        }
        .encode();
        // first packet lost its marker bit: the tracker never looks at the marker anyway
        assert_eq!(t.on_packet(1000, &start(160)), Some(Digit::D1));
        assert_eq!(t.on_packet(1000, &start(320)), None);
        for _ in 0..3 {
            assert_eq!(t.on_packet(1000, &end), None);
        }
        // the same key pressed again is a new event with a new timestamp
        assert_eq!(t.on_packet(2600, &start(160)), Some(Digit::D1));
        // only end packets of an event arriving (start lost): still reported once
        let end9 = EventPayload {
            event: 9,
            end: true,
            volume: 10,
            duration: 800,
        }
        .encode();
        assert_eq!(t.on_packet(5000, &end9), Some(Digit::D9));
        assert_eq!(t.on_packet(5000, &end9), None);
    }

    proptest! {
        #[test]
        fn encode_parse_round_trip(event in any::<u8>(), end in any::<bool>(), volume in 0u8..64, duration in any::<u16>()) {
            let p = EventPayload { event, end, volume, duration };
            prop_assert_eq!(EventPayload::parse(&p.encode()).unwrap(), p);
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..16), ts in any::<u32>()) {
            let _ = EventTracker::new().on_packet(ts, &bytes);
        }
    }
}
