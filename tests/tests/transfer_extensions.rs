//! The SIP extensions on the outgoing leg of a bridged transfer, in virtual time: session
//! timers (RFC 4028 §7: the engine as UAC of the INVITE, then refresher or watcher of the
//! leg's own timer), reliable provisionals (RFC 3262: the engine PRACKs the destination's
//! reliable 1xx), and a 422 answered with a larger interval. The caller dials the engine and
//! presses 0; a scripted destination answers as each test says.

use ivr_audio::{Codec, Digit};
use ivr_engine::{CallHandle, EndReason, Event, LegHandle};
use ivr_sip::header::HeaderName;
use ivr_sip::message::{CoreHeaders, Message, Request, Response, StatusCode};
use ivr_sip::session_timer::Policy;
use ivr_tests::caller::{Caller, Net, request, response};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const DESK: &str = "127.0.0.1:7300";
const UDP: ivr_sip::Transport = ivr_sip::Transport::Udp;

/// 0 transfers to the desk (bridged).
fn menus() -> Arc<ivr_menus::Menus> {
    let destinations = format!(
        r#"destinations:
  desk:
    uri: "sip:desk@{DESK}"
    mode: bridge
    ring_timeout: 30
    on_failure: {{ play: sales_en }}
"#
    );
    let options = "      \"0\": { transfer: desk }\n";
    let rest = "    on_failure: { hangup: goodbye_en }\n";
    let yaml = ivr_tests::caller::menu_file("", &destinations, options, rest);
    ivr_tests::caller::demo_variant(&yaml)
}

/// An engine whose session timers are `min_se`/`interval`, and whose silent legs are not
/// ended for silence (the tests send no audio for minutes).
fn net(min_se: u32, interval: u32) -> Net {
    Net::with_config(menus(), |c| {
        c.session_timer = Policy { min_se, interval };
        c.media_timeout = Duration::from_secs(3600);
        c.hold_timeout = Duration::from_secs(3600);
    })
}

/// The scripted destination.
struct Desk {
    addr: SocketAddr,
    media: SocketAddr,
    seq: u16,
    ts: u32,
}

impl Desk {
    fn new() -> Desk {
        Desk {
            addr: DESK.parse().unwrap(),
            media: "127.0.0.1:7302".parse().unwrap(),
            seq: 1,
            ts: 1000,
        }
    }

    fn sdp(&self) -> String {
        format!(
            "v=0\r\no=desk 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
            self.media.port()
        )
    }

    /// A response to `req` with tag `desk1`, these header lines, and SDP if given.
    fn respond(
        &self,
        req: &Request,
        code: u16,
        extra: &[(&str, &str)],
        sdp: Option<&str>,
    ) -> Vec<u8> {
        let mut r = Response::to_request(req, StatusCode::new(code).unwrap());
        let to = req.headers.get(&HeaderName::To).unwrap().to_string();
        if !to.contains(";tag=") && code > 100 {
            r.headers.set(HeaderName::To, format!("{to};tag=desk1"));
        }
        if code > 100 && code < 300 {
            r.headers
                .push(HeaderName::Contact, format!("<sip:desk@{}>", self.addr));
        }
        for (n, v) in extra {
            r.headers.push(HeaderName::from_wire(n), *v);
        }
        if let Some(s) = sdp {
            r.headers.push(HeaderName::ContentType, "application/sdp");
            r.body = s.as_bytes().to_vec();
        }
        r.to_bytes()
    }

    /// A request in the dialog `invite` + our 2xx made.
    fn in_dialog(
        &self,
        invite: &Request,
        method: &str,
        cseq: u32,
        extra: &str,
        sdp: &str,
    ) -> Vec<u8> {
        let from = invite.headers.get(&HeaderName::From).unwrap();
        let to = invite.headers.get(&HeaderName::To).unwrap();
        let contact = invite.headers.get(&HeaderName::Contact).unwrap();
        let target = contact.trim_start_matches('<').trim_end_matches('>');
        let ctype = if sdp.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        format!(
            "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-desk-{method}-{cseq}\r\n\
             Max-Forwards: 70\r\nFrom: {to};tag=desk1\r\nTo: {from}\r\nCall-ID: {cid}\r\n\
             CSeq: {cseq} {method}\r\nContact: <sip:desk@{me}>\r\n{extra}{ctype}Content-Length: {len}\r\n\r\n{sdp}",
            me = self.addr,
            cid = invite.call_id().unwrap(),
            len = sdp.len()
        )
        .into_bytes()
    }

    /// A 20 ms PCMA packet.
    fn audio(&mut self) -> Vec<u8> {
        let mut p = vec![0x80, 8];
        p.extend_from_slice(&self.seq.to_be_bytes());
        p.extend_from_slice(&self.ts.to_be_bytes());
        p.extend_from_slice(&0xDE5Cu32.to_be_bytes());
        p.extend((0..160).map(|i| Codec::Pcma.encode(((i % 40) * 300) as i16)));
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(160);
        p
    }
}

fn header<'a>(m: &'a ivr_sip::message::Headers, name: &str) -> Option<&'a str> {
    m.get(&HeaderName::from_wire(name))
}

fn requests<'a>(msgs: &'a [Message], method: &str) -> Vec<&'a Request> {
    msgs.iter()
        .filter_map(|m| match m {
            Message::Request(r) if r.method.as_str() == method => Some(r),
            _ => None,
        })
        .collect()
}

fn leg1(call: CallHandle) -> LegHandle {
    call.leg(1)
}

/// Connect a caller, press 0: the call and the engine's INVITE to the desk.
fn dial(net: &mut Net, caller: &mut Caller, desk: &Desk) -> (CallHandle, Request) {
    let call = net.connect(caller);
    net.advance(Duration::from_millis(500));
    net.press(caller, call, Digit::D0);
    let msgs = net.take_sip(desk.addr);
    let invite = request(&msgs, "INVITE")
        .unwrap_or_else(|| panic!("the engine calls the desk: {msgs:?} {:?}", net.events))
        .clone();
    (call, invite)
}

/// Answer `invite` with 200 and `extra`; check the ACK.
fn answer(net: &mut Net, desk: &Desk, invite: &Request, extra: &[(&str, &str)]) {
    let ok = desk.respond(invite, 200, extra, Some(&desk.sdp()));
    net.send_sip(UDP, desk.addr, &ok);
    let msgs = net.take_sip(desk.addr);
    assert!(
        request(&msgs, "ACK").is_some(),
        "the 2xx is acknowledged: {msgs:?}"
    );
    assert!(
        net.events
            .iter()
            .any(|e| matches!(e, Event::Bridged { .. }))
    );
}

fn cseq(r: &Request) -> u32 {
    r.cseq().unwrap().seq
}

fn branch(r: &Request) -> String {
    r.top_via().unwrap().branch().unwrap().to_string()
}

#[test]
fn the_invite_offers_timers_and_100rel_and_the_engine_refreshes_when_the_desk_says_uac() {
    let mut net = net(90, 1800);
    let mut caller = Caller::new("127.0.0.1:7310", "ext-out-1");
    let desk = Desk::new();
    let (call, invite) = dial(&mut net, &mut caller, &desk);
    // RFC 4028 §7.1, RFC 3262 §4: what we support, the interval we ask, our Min-SE; the
    // refresher is left to the desk.
    let supported = header(&invite.headers, "Supported").unwrap();
    assert!(
        supported.contains("timer") && supported.contains("100rel"),
        "{supported}"
    );
    assert_eq!(header(&invite.headers, "Session-Expires"), Some("1800"));
    assert_eq!(header(&invite.headers, "Min-SE"), Some("90"));
    answer(
        &mut net,
        &desk,
        &invite,
        &[
            ("Session-Expires", "120;refresher=uac"),
            ("Require", "timer"),
        ],
    );
    let offered = String::from_utf8(invite.body.clone()).unwrap();
    let mut last_cseq = cseq(&invite);
    for round in 1..=3 {
        // Nothing before half the interval.
        net.advance(Duration::from_secs(59));
        assert!(
            requests(&net.take_sip(desk.addr), "INVITE").is_empty(),
            "round {round}"
        );
        net.advance(Duration::from_secs(1));
        let msgs = net.take_sip(desk.addr);
        let refresh = request(&msgs, "INVITE")
            .unwrap_or_else(|| panic!("a re-INVITE at 60 s, round {round}: {msgs:?}"))
            .clone();
        // In the dialog, the same SDP (RFC 3264 §8: same version), offering to refresh.
        assert!(cseq(&refresh) > last_cseq);
        last_cseq = cseq(&refresh);
        assert_eq!(refresh.call_id().unwrap(), invite.call_id().unwrap());
        assert_eq!(refresh.uri.to_string(), format!("sip:desk@{DESK}"));
        assert!(refresh.party_to().unwrap().tag() == Some("desk1"));
        assert_eq!(
            header(&refresh.headers, "Session-Expires"),
            Some("120;refresher=uac")
        );
        assert_eq!(header(&refresh.headers, "Min-SE"), Some("90"));
        assert_eq!(String::from_utf8(refresh.body.clone()).unwrap(), offered);
        let ok = desk.respond(
            &refresh,
            200,
            &[
                ("Session-Expires", "120;refresher=uac"),
                ("Require", "timer"),
            ],
            Some(&desk.sdp()),
        );
        net.send_sip(UDP, desk.addr, &ok);
        let msgs = net.take_sip(desk.addr);
        let ack = request(&msgs, "ACK").expect("the refresh's 2xx is ACKed");
        assert_eq!(cseq(ack), cseq(&refresh));
    }
    // Each leg has its own timer: the caller, who asked for none, is never refreshed.
    assert!(requests(&net.take_sip(caller.addr), "INVITE").is_empty());
    assert_eq!(net.ended(call), None);
}

#[test]
fn a_desk_allowing_update_is_refreshed_with_update() {
    let mut net = net(90, 1800);
    let mut caller = Caller::new("127.0.0.1:7311", "ext-out-2");
    let desk = Desk::new();
    let (_call, invite) = dial(&mut net, &mut caller, &desk);
    answer(
        &mut net,
        &desk,
        &invite,
        &[
            ("Session-Expires", "100;refresher=uac"),
            ("Allow", "INVITE, ACK, BYE, CANCEL, UPDATE"),
        ],
    );
    net.advance(Duration::from_secs(50));
    let msgs = net.take_sip(desk.addr);
    let update = request(&msgs, "UPDATE").expect("UPDATE at 50 s").clone();
    assert!(update.body.is_empty(), "a refresh without an offer");
    assert_eq!(
        header(&update.headers, "Session-Expires"),
        Some("100;refresher=uac")
    );
    net.send_sip(
        UDP,
        desk.addr,
        &desk.respond(
            &update,
            200,
            &[("Session-Expires", "100;refresher=uac")],
            None,
        ),
    );
    net.advance(Duration::from_secs(50));
    assert!(
        request(&net.take_sip(desk.addr), "UPDATE").is_some(),
        "and again"
    );
}

#[test]
fn a_desk_that_refreshes_then_stops_gets_both_legs_ended_at_expiry() {
    let mut net = net(90, 1800);
    let mut caller = Caller::new("127.0.0.1:7312", "ext-out-3");
    let desk = Desk::new();
    let (call, invite) = dial(&mut net, &mut caller, &desk);
    answer(
        &mut net,
        &desk,
        &invite,
        &[("Session-Expires", "90;refresher=uas")],
    );
    // The desk refreshes at 45 s (it is the UAC of its re-INVITE: refresher=uac).
    net.advance(Duration::from_secs(45));
    assert!(net.take_sip(desk.addr).is_empty(), "we do not refresh");
    let reinvite = desk.in_dialog(
        &invite,
        "INVITE",
        10,
        "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n",
        &desk.sdp(),
    );
    net.send_sip(UDP, desk.addr, &reinvite);
    let msgs = net.take_sip(desk.addr);
    let ok = response(&msgs, 200).expect("the refresh is accepted");
    assert_eq!(
        header(&ok.headers, "Session-Expires"),
        Some("90;refresher=uac")
    );
    let ack = desk.in_dialog(&invite, "ACK", 10, "", "");
    net.send_sip(UDP, desk.addr, &ack);
    // Then it stops. Expiry: 90 - min(32, 90/3) = 60 s after the refresh (RFC 4028 §10),
    // not 60 s after the answer.
    net.advance(Duration::from_secs(30));
    assert!(net.take_sip(desk.addr).is_empty());
    assert_eq!(net.ended(call), None);
    net.advance(Duration::from_secs(29));
    assert!(
        request(&net.take_sip(desk.addr), "BYE").is_none(),
        "not yet"
    );
    net.advance(Duration::from_secs(1));
    let bye = request(&net.take_sip(desk.addr), "BYE")
        .expect("the desk's leg gets BYE")
        .clone();
    assert!(cseq(&bye) > cseq(&invite));
    let msgs = net.take_sip(caller.addr);
    let caller_bye = request(&msgs, "BYE").expect("the caller's leg too").clone();
    net.send_sip(UDP, desk.addr, &desk.respond(&bye, 200, &[], None));
    net.send_sip(UDP, caller.addr, &caller.ok_to(&caller_bye));
    assert_eq!(net.ended(call), Some(EndReason::SessionExpired));
    assert_eq!(net.engine.call_count(), 0);
}

#[test]
fn a_422_is_answered_with_a_new_invite_at_the_larger_interval() {
    let mut net = net(90, 90);
    let mut caller = Caller::new("127.0.0.1:7313", "ext-out-4");
    let desk = Desk::new();
    let (call, invite) = dial(&mut net, &mut caller, &desk);
    assert_eq!(header(&invite.headers, "Session-Expires"), Some("90"));
    net.send_sip(
        UDP,
        desk.addr,
        &desk.respond(&invite, 422, &[("Min-SE", "300")], None),
    );
    let msgs = net.take_sip(desk.addr);
    assert!(
        request(&msgs, "ACK").is_some(),
        "the 422 is ACKed (RFC 3261 §17.1.1.3)"
    );
    let again = request(&msgs, "INVITE")
        .expect("a new INVITE (RFC 4028 §7.3)")
        .clone();
    assert_eq!(again.call_id().unwrap(), invite.call_id().unwrap());
    assert_eq!(
        again.party_from().unwrap().tag(),
        invite.party_from().unwrap().tag()
    );
    assert_eq!(cseq(&again), cseq(&invite) + 1);
    assert_ne!(branch(&again), branch(&invite));
    assert_eq!(header(&again.headers, "Session-Expires"), Some("300"));
    assert_eq!(header(&again.headers, "Min-SE"), Some("300"));
    assert_eq!(again.body, invite.body, "the same offer");
    answer(
        &mut net,
        &desk,
        &again,
        &[("Session-Expires", "300;refresher=uac")],
    );
    // Our refreshes keep the Min-SE the 422 named.
    net.advance(Duration::from_secs(150));
    let msgs = net.take_sip(desk.addr);
    let refresh = request(&msgs, "INVITE").expect("a refresh at 150 s");
    assert_eq!(header(&refresh.headers, "Min-SE"), Some("300"));
    assert_eq!(net.ended(call), None);
}

#[test]
fn a_422_not_raising_the_interval_fails_the_transfer() {
    let mut net = net(90, 90);
    let mut caller = Caller::new("127.0.0.1:7314", "ext-out-5");
    let desk = Desk::new();
    let (_call, invite) = dial(&mut net, &mut caller, &desk);
    net.send_sip(
        UDP,
        desk.addr,
        &desk.respond(&invite, 422, &[("Min-SE", "90")], None),
    );
    let msgs = net.take_sip(desk.addr);
    assert!(request(&msgs, "INVITE").is_none(), "no loop: {msgs:?}");
    assert!(
        net.events
            .iter()
            .any(|e| matches!(e, Event::TransferFailed { .. }))
    );
}

#[test]
fn a_desk_without_session_expires_in_its_2xx_is_never_refreshed_nor_expired() {
    let mut net = net(90, 90);
    let mut caller = Caller::new("127.0.0.1:7315", "ext-out-6");
    let desk = Desk::new();
    let (call, invite) = dial(&mut net, &mut caller, &desk);
    answer(&mut net, &desk, &invite, &[]);
    net.advance(Duration::from_secs(600));
    assert!(
        net.take_sip(desk.addr).is_empty(),
        "RFC 4028 §7.2: no session expiration"
    );
    assert_eq!(net.ended(call), None);
}

/// A reliable 1xx (RFC 3262 §3) to `invite` with `rseq`.
fn reliable(desk: &Desk, invite: &Request, code: u16, rseq: u32, sdp: Option<&str>) -> Vec<u8> {
    let rseq = rseq.to_string();
    desk.respond(invite, code, &[("Require", "100rel"), ("RSeq", &rseq)], sdp)
}

#[test]
fn reliable_183_is_pracked_once_per_rseq_and_its_sdp_is_the_answer() {
    let mut net = net(90, 1800);
    let mut caller = Caller::new("127.0.0.1:7316", "ext-out-7");
    let mut desk = Desk::new();
    let (call, invite) = dial(&mut net, &mut caller, &desk);
    let sdp = desk.sdp();
    net.send_sip(
        UDP,
        desk.addr,
        &reliable(&desk, &invite, 183, 7, Some(&sdp)),
    );
    let msgs = net.take_sip(desk.addr);
    let prack = request(&msgs, "PRACK").expect("the 183 is PRACKed").clone();
    let rack = format!("7 {} INVITE", cseq(&invite));
    assert_eq!(header(&prack.headers, "RAck"), Some(rack.as_str()));
    assert_eq!(
        prack.uri.to_string(),
        format!("sip:desk@{DESK}"),
        "to the 183's Contact"
    );
    assert_eq!(
        prack.party_to().unwrap().tag(),
        Some("desk1"),
        "in the early dialog"
    );
    assert_eq!(cseq(&prack), cseq(&invite) + 1);
    net.send_sip(UDP, desk.addr, &desk.respond(&prack, 200, &[], None));
    // Early media: the desk's audio reaches the caller.
    let before = net.rtp.get(&call.leg(0)).map_or(0, Vec::len);
    for _ in 0..10 {
        let p = desk.audio();
        net.send_rtp(leg1(call), desk.media, &p);
        net.advance(Duration::from_millis(20));
    }
    let heard = |net: &Net| {
        net.rtp.get(&call.leg(0)).map_or(0, |v| {
            v[before.min(v.len())..]
                .iter()
                .filter(|p| p.data[12..].iter().any(|b| *b != Codec::Pcmu.silence()))
                .count()
        })
    };
    let first = heard(&net);
    assert!(first >= 5, "early media relayed: {first}");
    // The 183 again (its PRACK's 200 was lost, say): PRACKed again, the same request.
    net.send_sip(
        UDP,
        desk.addr,
        &reliable(&desk, &invite, 183, 7, Some(&sdp)),
    );
    let msgs = net.take_sip(desk.addr);
    let again = request(&msgs, "PRACK").expect("the retransmission is PRACKed");
    assert_eq!(
        branch(again),
        branch(&prack),
        "a retransmission of the same PRACK"
    );
    assert_eq!(cseq(again), cseq(&prack));
    // ... and acted on once: the early media goes on without a new stream.
    for _ in 0..10 {
        let p = desk.audio();
        net.send_rtp(leg1(call), desk.media, &p);
        net.advance(Duration::from_millis(20));
    }
    assert!(heard(&net) >= first + 8, "the relay goes on");
    // Out of order (RFC 3262 §4): RSeq 9 before 8 is not acknowledged.
    net.send_sip(UDP, desk.addr, &reliable(&desk, &invite, 180, 9, None));
    assert!(request(&net.take_sip(desk.addr), "PRACK").is_none());
    // The next in order is.
    net.send_sip(UDP, desk.addr, &reliable(&desk, &invite, 180, 8, None));
    let msgs = net.take_sip(desk.addr);
    let second = request(&msgs, "PRACK").expect("RSeq 8 is PRACKed").clone();
    let rack = format!("8 {} INVITE", cseq(&invite));
    assert_eq!(header(&second.headers, "RAck"), Some(rack.as_str()));
    assert_eq!(cseq(&second), cseq(&prack) + 1);
    net.send_sip(UDP, desk.addr, &desk.respond(&second, 200, &[], None));
    // A 2xx without SDP: the 183's was the answer (RFC 3262 §5).
    net.send_sip(UDP, desk.addr, &desk.respond(&invite, 200, &[], None));
    let msgs = net.take_sip(desk.addr);
    let ack = request(&msgs, "ACK").expect("ACKed");
    assert_eq!(cseq(ack), cseq(&invite));
    assert!(
        net.events
            .iter()
            .any(|e| matches!(e, Event::Bridged { .. }))
    );
    assert!(
        !net.events
            .iter()
            .any(|e| matches!(e, Event::TransferFailed { .. }))
    );
    // The caller hangs up: the desk's BYE comes after the PRACKs' CSeq numbers.
    let bye = caller.in_dialog("BYE", "", "");
    net.send_sip(UDP, caller.addr, &bye);
    let msgs = net.take_sip(desk.addr);
    let bye = request(&msgs, "BYE").expect("the desk gets BYE");
    assert!(
        cseq(bye) > cseq(&second),
        "{} after {}",
        cseq(bye),
        cseq(&second)
    );
}

#[test]
fn a_lost_prack_is_sent_again_by_its_transaction_and_for_the_retransmitted_180() {
    let mut net = net(90, 1800);
    let mut caller = Caller::new("127.0.0.1:7317", "ext-out-8");
    let desk = Desk::new();
    let (call, invite) = dial(&mut net, &mut caller, &desk);
    net.send_sip(UDP, desk.addr, &reliable(&desk, &invite, 180, 1, None));
    let lost = request(&net.take_sip(desk.addr), "PRACK")
        .expect("PRACK")
        .clone();
    // Lost on the way. Its transaction sends it again at T1 (RFC 3261 §17.1.2.2) ...
    net.advance(Duration::from_millis(500));
    let msgs = net.take_sip(desk.addr);
    assert_eq!(requests(&msgs, "PRACK").len(), 1, "{msgs:?}");
    // ... and the desk's retransmitted 180 (RFC 3262 §3) brings it again too.
    net.send_sip(UDP, desk.addr, &reliable(&desk, &invite, 180, 1, None));
    let msgs = net.take_sip(desk.addr);
    let again = request(&msgs, "PRACK").expect("PRACKed again");
    assert_eq!(branch(again), branch(&lost));
    net.send_sip(UDP, desk.addr, &desk.respond(again, 200, &[], None));
    // The ringing tone plays on; then the answer bridges as usual.
    answer(&mut net, &desk, &invite, &[]);
    assert_eq!(net.ended(call), None);
    // The PRACK transaction is over: nothing more is sent.
    net.advance(Duration::from_secs(40));
    assert!(requests(&net.take_sip(desk.addr), "PRACK").is_empty());
}

#[test]
fn a_desk_refreshing_with_update_keeps_its_leg_and_a_481_to_our_refresh_ends_both() {
    let mut net = net(90, 1800);
    let mut caller = Caller::new("127.0.0.1:7318", "ext-out-9");
    let desk = Desk::new();
    let (call, invite) = dial(&mut net, &mut caller, &desk);
    answer(
        &mut net,
        &desk,
        &invite,
        &[("Session-Expires", "90;refresher=uas")],
    );
    // The desk refreshes by UPDATE at 45 s and 90 s, naming us the refresher the second
    // time (RFC 4028 §9: the refresher is the refresh request's choice).
    for (at, cseq, refresher) in [(45, 20, "uac"), (45, 21, "uas")] {
        net.advance(Duration::from_secs(at));
        let update = desk.in_dialog(
            &invite,
            "UPDATE",
            cseq,
            &format!("Supported: timer\r\nSession-Expires: 90;refresher={refresher}\r\n"),
            "",
        );
        net.send_sip(UDP, desk.addr, &update);
        let msgs = net.take_sip(desk.addr);
        let ok = response(&msgs, 200).expect("the UPDATE is accepted");
        let expected = format!("90;refresher={refresher}");
        assert_eq!(
            header(&ok.headers, "Session-Expires"),
            Some(expected.as_str())
        );
    }
    assert_eq!(net.ended(call), None, "kept past the first expiry");
    // Now we refresh, 45 s later; the desk says the dialog is gone (§10: BYE).
    net.advance(Duration::from_secs(45));
    let msgs = net.take_sip(desk.addr);
    let refresh = request(&msgs, "INVITE").expect("our refresh").clone();
    net.send_sip(UDP, desk.addr, &desk.respond(&refresh, 481, &[], None));
    let msgs = net.take_sip(desk.addr);
    assert!(request(&msgs, "BYE").is_some(), "{msgs:?}");
    assert!(request(&net.take_sip(caller.addr), "BYE").is_some());
    assert_eq!(net.ended(call), Some(EndReason::SessionExpired));
}
