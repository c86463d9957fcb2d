//! A message's routing key: its Call-ID, read from the raw bytes without parsing the message.
//!
//! An engine split into shards gives each call to one shard, chosen by its Call-ID, so that
//! every message of a call (RFC 3261 §8.1.1.4: the Call-ID is the same for all requests and
//! responses of a dialog, and of the transactions before it: CANCEL, ACK, PRACK) reaches the
//! shard that holds it. The datagram must be routed before it is parsed (parsing is the
//! shard's work), so this reads only what it needs, allocates nothing and never panics.
//!
//! **Agreement with the parser**: for every message [`crate::parse::parse_message`] accepts,
//! [`RouteKey::of_message`] equals [`RouteKey::of_call_id`] of the parsed Call-ID. The hash
//! leaves out spaces and tabs, so header folding (RFC 3261 §7.3.1, which the parser replaces
//! by one space) and the trimming around the value cannot make the two differ; two Call-IDs
//! that differ only in white space go to the same shard, which is harmless. The key is
//! secret (SipHash-1-3 keyed from the operating system's randomness), so a caller cannot
//! choose Call-IDs that all land on one shard.

use crate::parse::Limits;
use siphasher::sip::SipHasher13;
use std::hash::Hasher;

/// The keyed hash that routes messages to shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteKey {
    k0: u64,
    k1: u64,
}

impl RouteKey {
    /// A key from 16 secret bytes (shared by every shard of one process).
    pub fn new(key: [u8; 16]) -> RouteKey {
        let (a, b) = key.split_at(8);
        RouteKey {
            k0: u64::from_le_bytes(a.try_into().unwrap_or_default()),
            k1: u64::from_le_bytes(b.try_into().unwrap_or_default()),
        }
    }

    fn hasher(&self) -> SipHasher13 {
        SipHasher13::new_with_keys(self.k0, self.k1)
    }

    /// The hash of a parsed Call-ID (spaces and tabs left out).
    pub fn of_call_id(&self, call_id: &str) -> u64 {
        let mut h = self.hasher();
        feed(&mut h, call_id.as_bytes());
        h.finish()
    }

    /// The hash of a source address (for messages with no Call-ID to read), keyed like the
    /// Call-IDs' so that the sources spread over the shards and none can be aimed; an
    /// IPv4-mapped IPv6 address hashes as its IPv4 address.
    pub fn of_source(&self, ip: std::net::IpAddr) -> u64 {
        let mut h = self.hasher();
        match ip.to_canonical() {
            std::net::IpAddr::V4(a) => h.write(&a.octets()),
            std::net::IpAddr::V6(a) => h.write(&a.octets()),
        }
        h.finish()
    }

    /// The hash of the Call-ID of the message in `bytes`, read as the parser reads it
    /// (leading CRLFs skipped, header lines up to the first blank line, the long or compact
    /// name in any case, folded lines joined), or `None` when it has none to read: empty
    /// input (a CRLF keep-alive), too large, or no Call-ID header before the blank line.
    /// The first Call-ID header counts (a message with two is refused by the parser).
    pub fn of_message(&self, bytes: &[u8], limits: &Limits) -> Option<u64> {
        if bytes.len() > limits.max_message {
            return None;
        }
        let start = bytes.iter().position(|b| !matches!(b, b'\r' | b'\n'))?;
        let bytes = &bytes[start..];
        let head = match find(bytes, b"\r\n\r\n") {
            Some(end) => &bytes[..end],
            None => bytes,
        };
        let mut lines = CrlfLines { rest: Some(head) };
        lines.next(); // the start line
        let mut current: Option<SipHasher13> = None;
        // A Call-ID name read on a line with no colon: the parser unfolds before it splits
        // at the colon, so `Call-ID<CRLF> : value` names the header too.
        let mut named = false;
        for line in lines {
            if matches!(line.first(), Some(b' ' | b'\t')) {
                // A continuation of the header before it.
                if let Some(h) = current.as_mut() {
                    feed(h, line);
                } else if named {
                    match line.iter().position(|&b| b == b':') {
                        Some(colon) if is_blank(&line[..colon]) => {
                            let mut h = self.hasher();
                            feed(&mut h, &line[colon + 1..]);
                            current = Some(h);
                            named = false;
                        }
                        None if is_blank(line) => {}
                        // Anything else in the name is no token: the parser refuses it.
                        _ => named = false,
                    }
                }
                continue;
            }
            if let Some(h) = current {
                return Some(h.finish());
            }
            named = false;
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                named = is_call_id(trim_end(line));
                continue;
            };
            if is_call_id(trim_end(&line[..colon])) {
                let mut h = self.hasher();
                feed(&mut h, &line[colon + 1..]);
                current = Some(h);
            }
        }
        current.map(|h| h.finish())
    }
}

/// Which of `n` shards a hash belongs to (`n` ≥ 1).
pub fn shard_of(hash: u64, n: u16) -> u16 {
    // Multiply-shift: uniform for any n, no division.
    ((u128::from(hash) * u128::from(n.max(1))) >> 64) as u16
}

/// Feed `bytes` to `h` without its spaces and tabs.
fn feed(h: &mut SipHasher13, bytes: &[u8]) {
    for piece in bytes.split(|b| matches!(b, b' ' | b'\t')) {
        h.write(piece);
    }
}

/// `Call-ID` or its compact form `i` (RFC 3261 §7.3.3, §20.8), in any case.
fn is_call_id(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"call-id") || name.eq_ignore_ascii_case(b"i")
}

fn is_blank(s: &[u8]) -> bool {
    s.iter().all(|b| matches!(b, b' ' | b'\t'))
}

fn trim_end(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The lines of a header block split on CRLF, as the parser splits them.
struct CrlfLines<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Iterator for CrlfLines<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        match find(rest, b"\r\n") {
            Some(i) => {
                self.rest = Some(&rest[i + 2..]);
                Some(&rest[..i])
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::CoreHeaders;
    use crate::parse::{Framing, parse_message};
    use proptest::prelude::*;

    const KEY: RouteKey = RouteKey {
        k0: 0x0123_4567_89ab_cdef,
        k1: 0xfedc_ba98_7654_3210,
    };

    /// Sources spread over the shards (IPv4 ones too: their addresses are small numbers,
    /// and `shard_of` reads the hash's top bits), and a mapped address is its IPv4 one.
    #[test]
    fn sources_spread_over_the_shards() {
        let v4 = |i: u8| std::net::IpAddr::from([192, 0, 2, i]);
        let mut seen = [0usize; 4];
        for i in 0..=255 {
            seen[usize::from(shard_of(KEY.of_source(v4(i)), 4))] += 1;
        }
        assert!(seen.iter().all(|&n| n > 20), "{seen:?}");
        let mapped = std::net::IpAddr::V6(std::net::Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped());
        assert_eq!(KEY.of_source(mapped), KEY.of_source(v4(7)));
    }

    /// Whenever the parser accepts `bytes`, the raw read agrees with it.
    fn agrees(bytes: &[u8]) -> Result<bool, String> {
        let raw = KEY.of_message(bytes, &Limits::default());
        for framing in [Framing::Datagram, Framing::Stream] {
            if let Ok(msg) = parse_message(bytes, framing) {
                let id = match &msg {
                    crate::Message::Request(r) => r.call_id(),
                    crate::Message::Response(r) => r.call_id(),
                }
                .map_err(|e| format!("{e:?}"))?;
                if raw != Some(KEY.of_call_id(id)) {
                    return Err(format!(
                        "Call-ID {id:?} parsed, raw read {raw:?} in {:?}",
                        String::from_utf8_lossy(bytes)
                    ));
                }
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn invite(call_id_line: &str) -> String {
        format!(
            "INVITE sip:ivr@example.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc\r\n\
             From: <sip:alice@example.com>;tag=1\r\n\
             To: <sip:ivr@example.com>\r\n\
             {call_id_line}\r\n\
             CSeq: 1 INVITE\r\n\
             Content-Length: 0\r\n\r\n"
        )
    }

    /// An INVITE with `line` as its Call-ID header parses, and its raw read is `hash`.
    fn routes_as(line: &str, hash: u64) {
        let msg = invite(line);
        assert_eq!(agrees(msg.as_bytes()), Ok(true), "{line:?}");
        assert_eq!(
            KEY.of_message(msg.as_bytes(), &Limits::default()),
            Some(hash),
            "{line:?}"
        );
    }

    #[test]
    fn the_forms_a_call_id_takes_on_the_wire_route_alike() {
        let plain = KEY.of_call_id("abc@host");
        for line in [
            "Call-ID: abc@host",
            "call-id:abc@host",
            "CALL-ID \t:  abc@host \t",
            "i: abc@host",
            "I:abc@host",
            "Call-ID:\r\n abc@host",
            "Call-ID: abc@\r\n\thost",
        ] {
            routes_as(line, plain);
        }
        // A different Call-ID, another hash; leading CRLFs (keep-alives) are skipped.
        let other = format!("\r\n\r\n{}", invite("Call-ID: abd@host"));
        assert_ne!(
            KEY.of_message(other.as_bytes(), &Limits::default()),
            Some(plain)
        );
        assert_eq!(agrees(other.as_bytes()), Ok(true));
    }

    /// RFC 3261 §7.3.1 folding may fall between a header's name and its colon: the parser
    /// unfolds first and then splits at the colon, so `Call-ID<CRLF> : abc@host` is a
    /// Call-ID header whose value is `abc@host`. The raw read must agree.
    #[test]
    fn a_fold_between_the_name_and_the_colon_still_agrees() {
        let plain = KEY.of_call_id("abc@host");
        for line in [
            "Call-ID\r\n : abc@host",
            "Call-ID \r\n\t:abc@host",
            "i\r\n :abc@host",
            "Call-ID\r\n \r\n\t : abc@host",
        ] {
            routes_as(line, plain);
        }
    }

    #[test]
    fn what_has_no_call_id_to_read_has_no_key() {
        let limits = Limits::default();
        for bytes in [
            &b""[..],
            b"\r\n\r\n",
            b"garbage",
            b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\n\r\nCall-ID: in-the-body",
            b"INVITE sip:a@b SIP/2.0\r\nX-Call-ID: abc\r\nCall-IDs: abc\r\n\r\n",
            // A continuation before any header belongs to no header.
            b"INVITE sip:a@b SIP/2.0\r\n Call-ID: abc\r\n\r\n",
        ] {
            assert_eq!(KEY.of_message(bytes, &limits), None, "{bytes:?}");
        }
        let big = invite("Call-ID: abc").into_bytes();
        let small = Limits {
            max_message: big.len() - 1,
            ..limits
        };
        assert_eq!(KEY.of_message(&big, &small), None);
        // The first of two Call-ID headers (the parser refuses such a message anyway).
        let two = invite("Call-ID: first\r\ni: second");
        assert_eq!(
            KEY.of_message(two.as_bytes(), &limits),
            Some(KEY.of_call_id("first"))
        );
    }

    #[test]
    fn shards_are_spread_and_in_range() {
        let key = RouteKey::new(*b"0123456789abcdef");
        for n in 1..=8u16 {
            let mut counts = vec![0u32; usize::from(n)];
            for i in 0..8000 {
                let s = shard_of(key.of_call_id(&format!("{i}@host")), n);
                assert!(s < n);
                counts[usize::from(s)] += 1;
            }
            let even = 8000 / u32::from(n);
            assert!(
                counts
                    .iter()
                    .all(|&c| c > even * 8 / 10 && c < even * 12 / 10),
                "{n} shards: {counts:?}"
            );
        }
        assert_eq!(shard_of(u64::MAX, 0), 0);
    }

    /// One SP/HT/CRLF-laden way of writing a value on the wire.
    fn wire_value() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                "[A-Za-z0-9@.!%*_+`'~()<>:\\\\\"/\\[\\]?{}-]{1,6}",
                Just(" ".to_string()),
                Just("\t".to_string()),
                Just("\r\n ".to_string()),
                Just("\r\n\t\t".to_string()),
                Just("é".to_string()),
            ],
            1..12,
        )
        .prop_map(|v| v.concat())
    }

    proptest! {
        /// The agreement the shards rest on, over names, folding, white space and the
        /// header's place among the others; a value with something besides white space in
        /// it always parses.
        #[test]
        fn the_raw_read_agrees_with_the_parser(
            name in prop_oneof![Just("Call-ID"), Just("call-id"), Just("CALL-ID"), Just("i"), Just("I")],
            gap in "[ \t]{0,2}",
            value in wire_value(),
            place in 0usize..6,
            crlfs in 0usize..3,
        ) {
            let mut lines = vec![
                "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc",
                "From: <sip:alice@example.com>;tag=1",
                "To: <sip:ivr@example.com>",
                "CSeq: 1 INVITE",
                "Content-Length: 0",
            ];
            let line = format!("{name}{gap}:{value}");
            lines.insert(place.min(lines.len()), &line);
            let msg = format!(
                "{}INVITE sip:ivr@example.com SIP/2.0\r\n{}\r\n\r\n",
                "\r\n".repeat(crlfs),
                lines.join("\r\n")
            );
            let parsed = agrees(msg.as_bytes());
            prop_assert!(parsed.is_ok(), "{:?}", parsed);
            let blank = value.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
            prop_assert!(blank || parsed == Ok(true), "not parsed: {:?}", msg);
        }

        /// Random edits of a valid message: whatever the parser still accepts, the raw read
        /// agrees with; nothing panics.
        #[test]
        fn edited_messages_agree_or_are_refused(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), prop_oneof![
                Just(&b" "[..]), Just(&b"\t"[..]), Just(&b"\r\n"[..]), Just(&b"\r\n "[..]),
                Just(&b":"[..]), Just(&b"i"[..]), Just(&b"x"[..]), Just(&b""[..]),
            ], any::<bool>()), 1..4),
        ) {
            let mut bytes = invite("Call-ID: a b@c").into_bytes();
            for (at, insert, delete) in edits {
                let i = at.index(bytes.len());
                if delete {
                    bytes.remove(i);
                }
                bytes.splice(i..i, insert.iter().copied());
            }
            prop_assert!(agrees(&bytes).is_ok(), "{:?}", agrees(&bytes));
        }

        /// Arbitrary bytes never panic the read, and agree wherever they parse.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            prop_assert!(agrees(&bytes).is_ok());
        }
    }
}
