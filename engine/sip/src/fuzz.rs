//! Fuzz target bodies (run by `tests/fuzz` with cargo-fuzz; compiled in normal builds so
//! they always type-check). Each must never panic on any input.

use crate::framing::{Frame, StreamFramer};
use crate::message::CoreHeaders;
use crate::parse::{Framing, error_response, parse_message};
use crate::{Message, Transport};

/// Parse a datagram; whatever parses must print and parse back to the same message, and
/// every typed header accessor must be safe to call.
pub fn parse_datagram(data: &[u8]) {
    match parse_message(data, Framing::Datagram) {
        Ok(msg) => {
            let printed = msg.to_bytes();
            let again = parse_message(&printed, Framing::Stream);
            assert_eq!(
                again.as_ref().ok(),
                Some(&msg),
                "print/parse round trip changed the message"
            );
            touch_headers(&msg);
        }
        Err(e) => {
            if let Some(r) = error_response(&e) {
                let _ = r.to_bytes();
            }
        }
    }
}

fn touch_headers(msg: &Message) {
    // The extension headers (RFC 4028, RFC 3262) are read from outside input too.
    let headers = msg.headers();
    let _ = (
        crate::session_timer::negotiate_uas(headers, &Default::default()),
        crate::session_timer::refresh_outcome(
            200,
            headers,
            90,
            &crate::session_timer::Agreement {
                interval: 90,
                refresher: crate::session_timer::Refresher::Uac,
                peer_supports: true,
            },
        ),
        crate::session_timer::refresh_outcome(
            422,
            headers,
            90,
            &crate::session_timer::Agreement {
                interval: 90,
                refresher: crate::session_timer::Refresher::Uas,
                peer_supports: false,
            },
        ),
        crate::reliable::RAck::of(headers),
        crate::reliable::supported(headers),
    );
    match msg {
        Message::Request(r) => {
            let _ = (
                r.top_via(),
                r.cseq(),
                r.party_from(),
                r.party_to(),
                r.contact(),
                r.uri.user(),
            );
            let mut r = r.clone();
            let _ = crate::transaction::ServerKey::of(&r);
            let mut layer = crate::transaction::TransactionLayer::new(Default::default());
            let now = crate::fuzz_epoch();
            let peer = crate::transaction::Peer {
                transport: Transport::Udp,
                addr: ([127, 0, 0, 1], 5060).into(),
            };
            r.body.clear();
            layer.handle_message(now, Message::Request(r), peer);
            while layer.poll_event().is_some() {}
            while layer.poll_transmit().is_some() {}
        }
        Message::Response(r) => {
            let _ = (
                r.top_via(),
                r.cseq(),
                r.party_from(),
                r.party_to(),
                r.contact(),
            );
        }
    }
}

/// Feed a byte stream to the TCP framer in chunks whose sizes come from the input; every
/// frame must parse without panicking.
pub fn stream(data: &[u8]) {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk.max(1));
    let mut framer = StreamFramer::new();
    for piece in rest.chunks(chunk) {
        framer.push(piece);
        loop {
            match framer.next_frame() {
                Ok(Some(Frame::Message(m))) => {
                    let _ = parse_message(&m, Framing::Stream);
                }
                Ok(Some(Frame::Ping)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
}

/// Parse a digest challenge and an answer (outside input: a trunk's 401/407, a REGISTER's
/// Authorization); whatever parses must print and parse back to the same value.
pub fn digest_header(data: &[u8]) {
    use crate::digest::{Authorization, Challenge};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = Challenge::parse(text) {
        assert_eq!(Challenge::parse(&c.to_string()).as_ref(), Ok(&c));
    }
    if let Ok(a) = Authorization::parse(text) {
        assert_eq!(Authorization::parse(&a.to_string()).as_ref(), Ok(&a));
        let _ = a.expected_response("INVITE", "00");
    }
}

/// Deterministic "randomness" for the sequence targets' branches and cnonces.
struct Lcg(u64);

impl crate::digest::RandomSource for Lcg {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1);
        self.0
    }
}

/// Drive an outgoing call with responses, timeouts and commands chosen by the input, and
/// check what must always hold: at most one answer or one failure, never both; every new
/// 2xx acknowledged; and once the owner cancels and time passes, nothing left alive.
pub fn uac_sequence(data: &[u8]) {
    use crate::StatusCode;
    use crate::header::{HeaderName, NameAddr};
    use crate::uac::{CancelReason, OutgoingCall, OutgoingConfig, Phase, UacEvent};
    use crate::{Method, Request, Response, Uri};
    use std::time::Duration;

    let (Ok(uri), Ok(to), Ok(from)) = (
        Uri::parse("sip:agent@127.0.0.1:5070"),
        NameAddr::parse("<sip:agent@127.0.0.1:5070>", HeaderName::To),
        NameAddr::parse("<sip:ivr@127.0.0.1>", HeaderName::From),
    ) else {
        return;
    };
    let config = OutgoingConfig {
        request_uri: uri.clone(),
        to,
        from,
        local_tag: "l".into(),
        call_id: "c".into(),
        cseq: 1,
        contact: uri,
        transport: Transport::Udp,
        sent_by: "127.0.0.1:5060".into(),
        route: Vec::new(),
        sdp_offer: None,
        credentials: Some(crate::digest::Credentials {
            username: "u".into(),
            password: "p".into(),
        }),
        extra_headers: Vec::new(),
        timers: Default::default(),
        session_timer: Some(crate::session_timer::Policy::default()),
    };
    let mut now = crate::fuzz_epoch();
    let mut call = OutgoingCall::new(now, config, Box::new(Lcg(1)));
    #[derive(Default)]
    struct Seen {
        sent: Vec<Request>,
        answered: usize,
        failed: usize,
    }
    impl Seen {
        fn drain(&mut self, call: &mut OutgoingCall) {
            while let Some(t) = call.poll_transmit() {
                if let Message::Request(r) = t.message {
                    self.sent.push(r);
                }
            }
            while let Some(e) = call.poll_event() {
                match e {
                    UacEvent::Answered { .. } => self.answered += 1,
                    UacEvent::Failed(_) => self.failed += 1,
                    _ => {}
                }
            }
        }
    }
    let mut seen = Seen::default();
    let mut tags_2xx: Vec<String> = Vec::new();
    seen.drain(&mut call);
    for op in data.chunks(3) {
        let [kind, a, b] = [op[0], *op.get(1).unwrap_or(&0), *op.get(2).unwrap_or(&0)];
        match kind % 5 {
            0 | 1 => {
                let Some(req) = seen
                    .sent
                    .iter()
                    .filter(|r| r.method != Method::Ack)
                    .nth(usize::from(a) % 8)
                    .cloned()
                else {
                    continue;
                };
                let codes = [100, 180, 183, 200, 200, 401, 407, 486, 487, 500, 422];
                let code = codes[usize::from(b) % codes.len()];
                let Some(status) = StatusCode::new(code) else {
                    continue;
                };
                let mut r = Response::to_request(&req, status);
                let tag = ["", "x", "y"][usize::from(b / 16) % 3];
                if !tag.is_empty()
                    && let Ok(mut t) = r.party_to()
                {
                    t.params.set("tag", Some(tag.to_string()));
                    r.headers.set(HeaderName::To, t.to_string());
                }
                r.headers
                    .push(HeaderName::Contact, "<sip:peer@127.0.0.1:5070>");
                if code == 422 {
                    // RFC 4028 §7.4: larger than asked (retried), or not (a failure).
                    let min = 1700 + u32::from(a) * 10;
                    r.headers.push(HeaderName::MinSe, min.to_string());
                }
                if (180..=183).contains(&code) && a % 2 == 0 {
                    // RFC 3262: reliable, RSeq in order, repeated, or out of order.
                    r.headers.push(HeaderName::Require, "100rel");
                    r.headers.push(HeaderName::RSeq, (b % 4).to_string());
                }
                if code == 401 || code == 407 {
                    let h = if code == 401 {
                        "WWW-Authenticate"
                    } else {
                        "Proxy-Authenticate"
                    };
                    let stale = if b % 2 == 0 { "" } else { ", stale=true" };
                    r.headers.push(
                        HeaderName::from_wire(h),
                        format!("Digest realm=\"r\", nonce=\"n{}\", qop=auth{stale}", a % 3),
                    );
                }
                // A 2xx the machine must ACK: to the INVITE in force, while that is pending
                // or answered (a 2xx after a final error on the same transaction is dropped).
                let branch = |r: &Request| {
                    r.top_via()
                        .ok()
                        .and_then(|v| v.branch().map(str::to_string))
                };
                let must_ack = code == 200
                    && !tag.is_empty()
                    && branch(&req) == branch(call.invite())
                    && req.method == Method::Invite
                    && call.matches(&r)
                    && matches!(call.phase(), Phase::Inviting | Phase::Answered);
                if must_ack && !tags_2xx.iter().any(|t| t == tag) {
                    tags_2xx.push(tag.to_string());
                }
                call.handle_response(now, r);
            }
            2 => {
                now += Duration::from_millis(u64::from(a) * 100 + u64::from(b));
                call.handle_timeout(now);
            }
            3 => call.cancel(
                now,
                if a % 2 == 0 {
                    CancelReason::Abandoned
                } else {
                    CancelReason::RingTimeout
                },
            ),
            _ => {
                let _ = call.bye(now);
            }
        }
        seen.drain(&mut call);
        assert!(
            seen.answered + seen.failed <= 1,
            "answered {}, failed {}",
            seen.answered,
            seen.failed
        );
    }
    // Each such 2xx got its own ACK (§13.2.2.4): a new transaction, so a branch no INVITE has.
    let branch = |r: &Request| {
        r.top_via()
            .ok()
            .and_then(|v| v.branch().map(str::to_string))
    };
    let invites: Vec<_> = seen
        .sent
        .iter()
        .filter(|r| r.method == Method::Invite)
        .map(branch)
        .collect();
    for tag in &tags_2xx {
        assert!(
            seen.sent.iter().any(|r| r.method == Method::Ack
                && !invites.contains(&branch(r))
                && r.party_to()
                    .ok()
                    .and_then(|t| t.tag().map(str::to_string))
                    .as_deref()
                    == Some(tag.as_str())),
            "no ACK for the 2xx tagged {tag}"
        );
    }
    call.cancel(now, CancelReason::Abandoned);
    for _ in 0..200 {
        match call.poll_timeout() {
            Some(at) => {
                now = now.max(at);
                call.handle_timeout(now);
                seen.drain(&mut call);
            }
            None => break,
        }
    }
    assert!(
        call.poll_timeout().is_none(),
        "deadlines left after the owner gave up: {call:?}"
    );
    assert_ne!(
        call.phase(),
        Phase::Inviting,
        "no outcome reported: {call:?}"
    );
}

/// Drive a transfer by REFER with responses, NOTIFYs (well formed or hostile) and time chosen
/// by the input, and check what must always hold: every NOTIFY gets an answer on its own
/// transaction; `Accepted` at most once and before any progress; exactly one outcome once
/// time has run out, and nothing reported after it but complaints about NOTIFYs.
pub fn refer_sequence(data: &[u8]) {
    use crate::dialog::Dialog;
    use crate::header::{HeaderName, NameAddr};
    use crate::refer::{ReferConfig, ReferEvent, ReferTransfer};
    use crate::{Method, Response, StatusCode, Uri};
    use std::time::Duration;

    let invite = "INVITE sip:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
        From: <sip:caller@127.0.0.1>;tag=c\r\nTo: <sip:ivr@127.0.0.1>\r\nCall-ID: f\r\n\
        CSeq: 1 INVITE\r\nContact: <sip:caller@127.0.0.1:5070>\r\nContent-Length: 0\r\n\r\n";
    let (Ok(Message::Request(invite)), Ok(dest), Ok(by), Ok(contact)) = (
        parse_message(invite.as_bytes(), Framing::Datagram),
        Uri::parse("sip:desk@127.0.0.1:5080"),
        NameAddr::parse("<sip:ivr@127.0.0.1>", HeaderName::From),
        Uri::parse("sip:ivr@127.0.0.1:5060"),
    ) else {
        return;
    };
    let Ok(mut dialog) = Dialog::from_invite(&invite, &"i".into(), 10) else {
        return;
    };
    let mut now = crate::fuzz_epoch();
    let config = ReferConfig::new(dest, by, contact, Transport::Udp, "127.0.0.1:5060".into());
    let mut t = ReferTransfer::new(now, &mut dialog, config, &mut Lcg(1));
    let refer = t.request().clone();
    let mut events = Vec::new();
    let mut notify_seq = 1u32;
    let drain = |t: &mut ReferTransfer, events: &mut Vec<ReferEvent>| {
        while t.poll_transmit().is_some() {}
        while let Some(e) = t.poll_event() {
            events.push(e);
        }
    };
    for op in data.chunks(4) {
        let [kind, a, b, c] = [0, 1, 2, 3].map(|i| op.get(i).copied().unwrap_or(0));
        match kind % 4 {
            0 => {
                let codes = [100, 202, 200, 403, 405, 501, 603, 481];
                if let Some(status) = StatusCode::new(codes[usize::from(a) % codes.len()]) {
                    t.handle_response(now, Response::to_request(&refer, status));
                }
            }
            1 => {
                notify_seq += u32::from(c % 2);
                let mut n = crate::Request::new(Method::Notify, invite.uri.clone());
                n.headers.push(
                    HeaderName::Via,
                    format!("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKn{notify_seq}"),
                );
                n.headers
                    .push(HeaderName::From, "<sip:caller@127.0.0.1>;tag=c");
                n.headers.push(HeaderName::To, "<sip:ivr@127.0.0.1>;tag=i");
                n.headers.push(HeaderName::CallId, "f");
                n.headers
                    .push(HeaderName::CSeq, format!("{notify_seq} NOTIFY"));
                let events_h = ["refer", "refer;id=11", "refer;id=9", "presence", "refer;;"];
                if a % 7 != 6 {
                    n.headers.push(
                        HeaderName::from_wire("Event"),
                        events_h[usize::from(a) % events_h.len()],
                    );
                }
                let states = [
                    "active",
                    "pending",
                    "terminated",
                    "terminated;reason=x",
                    "",
                    "a b",
                ];
                if b % 7 != 6 {
                    n.headers.push(
                        HeaderName::from_wire("Subscription-State"),
                        states[usize::from(b) % states.len()],
                    );
                }
                let types = [
                    "message/sipfrag",
                    "message/sipfrag;version=2.0",
                    "text/plain",
                ];
                n.headers.push(
                    HeaderName::ContentType,
                    types[usize::from(a / 8) % types.len()],
                );
                let bodies: [&[u8]; 8] = [
                    b"SIP/2.0 100 Trying\r\n",
                    b"SIP/2.0 180 Ringing",
                    b"SIP/2.0 200 OK\r\n",
                    b"SIP/2.0 486 Busy Here\r\n",
                    b"",
                    b"SIP/2.0 99 x",
                    b"\xff\xfe\x00",
                    b"INVITE sip:a@b SIP/2.0\r\n",
                ];
                n.body = bodies[usize::from(b / 8) % bodies.len()].to_vec();
                if c > 200 {
                    n.body = vec![c; usize::from(b) * 4];
                }
                let answer = t.handle_notify(now, &n);
                assert_eq!(
                    answer.cseq().ok().map(|c| c.seq),
                    Some(notify_seq),
                    "the answer belongs to the NOTIFY"
                );
                let code = answer.status.code();
                assert!(code == 200 || (400..500).contains(&code), "{code}");
            }
            2 => {
                now += Duration::from_millis(u64::from(a) * 1000 + u64::from(b));
                t.handle_timeout(now);
            }
            _ => {
                if let Some(at) = t.poll_timeout() {
                    now = now.max(at);
                    t.handle_timeout(now);
                }
            }
        }
        drain(&mut t, &mut events);
    }
    // Let time run out: every deadline fires, an outcome must be there.
    for _ in 0..1000 {
        let Some(at) = t.poll_timeout() else { break };
        now = now.max(at);
        t.handle_timeout(now);
        drain(&mut t, &mut events);
    }
    assert!(t.poll_timeout().is_none(), "deadlines left: {t:?}");
    let is_final = |e: &ReferEvent| {
        matches!(
            e,
            ReferEvent::Succeeded
                | ReferEvent::Failed(_)
                | ReferEvent::Refused(_)
                | ReferEvent::TimedOut
        )
    };
    let finals: Vec<usize> = (0..events.len())
        .filter(|&i| is_final(&events[i]))
        .collect();
    assert_eq!(finals.len(), 1, "one outcome: {events:?}");
    let accepted: Vec<usize> = (0..events.len())
        .filter(|&i| events[i] == ReferEvent::Accepted)
        .collect();
    assert!(accepted.len() <= 1, "{events:?}");
    for (i, e) in events.iter().enumerate() {
        if matches!(
            e,
            ReferEvent::Progress(_) | ReferEvent::Succeeded | ReferEvent::Failed(_)
        ) {
            assert!(accepted.first().is_some_and(|&a| a < i), "{events:?}");
        }
        if i > finals[0] {
            assert!(matches!(e, ReferEvent::BadNotify(_)), "{events:?}");
        }
    }
}

/// Feed a registrar requests built from the input, with time passing between them, some
/// answered with the right password for the last challenge, and check what must always
/// hold: no panic, no account above its contact cap, no binding left past its expiry once
/// the clock has moved, and no success for a request the fuzzer did not answer rightly.
pub fn register_sequence(data: &[u8]) {
    use crate::digest::{Algorithm, Challenge, Credentials, answer, ha1};
    use crate::header::HeaderName;
    use crate::registrar::{Account, Registrar, RegistrarConfig};
    use crate::transaction::Peer;
    let config = RegistrarConfig::default();
    let mut r = Registrar::new(config, "ivr", [9; 32]);
    r.set_accounts(
        "ivr",
        vec![Account {
            owner: "alice".into(),
            user: "alice".into(),
            ha1_md5: ha1(Algorithm::Md5, "alice", "ivr", "pw"),
            ha1_sha256: ha1(Algorithm::Sha256, "alice", "ivr", "pw"),
        }],
    );
    let credentials = Credentials {
        username: "alice".into(),
        password: "pw".into(),
    };
    let www = HeaderName::from_wire("WWW-Authenticate");
    let mut last: Option<Challenge> = None;
    let mut now = crate::fuzz_epoch();
    // Chunks separated by a NUL byte. The first byte of each: its low 6 bits are 16-second
    // steps to wait, its top bit asks for the right answer to the last challenge (nc from
    // the second byte), bit 6 picks SHA-256 over MD5 for it.
    for chunk in data.split(|b| *b == 0).take(64) {
        let Some((&control, rest)) = chunk.split_first() else {
            continue;
        };
        now += std::time::Duration::from_secs(u64::from(control & 0x3f) * 16);
        r.handle_timeout(now);
        assert!(r.bindings("alice").iter().all(|b| b.expires_at > now));
        let Ok(Message::Request(mut req)) = parse_message(rest, Framing::Datagram) else {
            continue;
        };
        let answered = control & 0x80 != 0;
        if answered && let Some(c) = &last {
            let mut c = c.clone();
            c.algorithm = if control & 0x40 != 0 {
                Algorithm::Sha256
            } else {
                Algorithm::Md5
            };
            let nc = u32::from(rest.first().copied().unwrap_or(1));
            let uri = req.uri.to_string();
            let a = answer(
                &c,
                &credentials,
                req.method.as_str(),
                &uri,
                Some(("f".into(), nc)),
            );
            req.headers
                .push(HeaderName::from_wire("Authorization"), a.to_string());
        }
        let peer = Peer {
            transport: Transport::Udp,
            addr: ([192, 0, 2, 1], 5060).into(),
        };
        let reply = r.handle_register(now, &req, peer);
        assert!(
            answered || !reply.status.is_success(),
            "a REGISTER without the password succeeded"
        );
        if let Some((_, v)) = reply.headers.iter().find(|(n, _)| *n == www) {
            last = Challenge::parse(v).ok();
        }
        assert!(r.bindings("alice").len() <= config.max_contacts);
        while r.poll_event().is_some() {}
    }
}

/// The Call-ID read from raw bytes to route a message to its shard
/// ([`crate::route_key`]) must agree with the parser on every message the parser accepts,
/// in either framing, and never panic.
pub fn route_key(data: &[u8]) {
    use crate::route_key::RouteKey;
    let key = RouteKey::new(*b"fuzz route key!!");
    let raw = key.of_message(data, &crate::parse::Limits::default());
    for framing in [Framing::Datagram, Framing::Stream] {
        if let Ok(msg) = parse_message(data, framing) {
            let id = match &msg {
                Message::Request(r) => r.call_id(),
                Message::Response(r) => r.call_id(),
            };
            if let Ok(id) = id {
                assert_eq!(
                    raw,
                    Some(key.of_call_id(id)),
                    "the raw read disagrees with the parsed Call-ID {id:?}"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    /// Found by the property below: a 2xx without To tag (no dialog, §12.1.2) put the INVITE
    /// transaction in Accepted, Timer M ended it, and the call stayed "inviting" forever.
    #[test]
    fn tagless_2xx_then_timer_m_still_ends_the_attempt() {
        super::uac_sequence(&[
            88, 0, 0, 0, 0, 193, 2, 250, 0, 2, 250, 0, 2, 250, 0, 2, 250, 0, 2, 250, 0,
        ]);
    }

    /// The seed in `tests/fuzz/seeds/refer`: 202, NOTIFY 100 active, NOTIFY 200 terminated.
    #[test]
    fn refer_seed_runs() {
        super::refer_sequence(&[0, 1, 0, 0, 1, 0, 0, 1, 1, 0, 21, 1]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1_000))]

        /// The REFER operation-sequence target on random inputs, in the normal suite.
        #[test]
        fn refer_sequences_hold_their_invariants(data in proptest::collection::vec(any::<u8>(), 0..120)) {
            super::refer_sequence(&data);
        }

        /// The UAC operation-sequence target on random inputs, in the normal suite.
        #[test]
        fn uac_sequences_hold_their_invariants(data in proptest::collection::vec(any::<u8>(), 0..120)) {
            super::uac_sequence(&data);
        }

        /// Digest headers built from pieces that matter (quotes, escapes, commas, names).
        #[test]
        fn digest_headers_round_trip(parts in proptest::collection::vec(
            prop_oneof![
                Just("Digest ".to_string()),
                Just("realm=".to_string()),
                Just("nonce=".to_string()),
                Just("qop=".to_string()),
                Just("username=".to_string()),
                Just("uri=".to_string()),
                Just("response=".to_string()),
                Just("nc=".to_string()),
                Just("cnonce=".to_string()),
                Just("algorithm=SHA-256".to_string()),
                Just("\"".to_string()),
                Just("\\".to_string()),
                Just(", ".to_string()),
                Just("auth".to_string()),
                "[a-z0-9 /=]{0,6}",
            ],
            0..24,
        )) {
            super::digest_header(parts.concat().as_bytes());
        }
    }
}
