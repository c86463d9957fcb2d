//! Random sequences of caller actions at random times, in virtual time: the engine never
//! panics, answers every request, and every call it started ends once the caller hangs up.

use ivr_audio::Digit;
use ivr_sip::Transport;
use ivr_sip::message::CoreHeaders;
use ivr_tests::caller::{Caller, Net};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
enum Step {
    Invite { offer: bool },
    Ack,
    Cancel,
    Bye,
    Reinvite { hold: bool },
    Key(u8),
    Info(u8),
    Options,
    Garbage(Vec<u8>),
    Wait(u16),
}

/// A transaction as a UAS tells them apart (RFC 3261 §17.2.3): the top Via's branch and the
/// CSeq method (a CANCEL shares its INVITE's branch).
type TxKey = (String, String);

/// The transaction of a request the caller sent, unless it is an ACK (answered by nothing)
/// or bytes that are no request.
fn request_key(bytes: &[u8]) -> Option<TxKey> {
    match ivr_sip::parse_message(bytes, ivr_sip::parse::Framing::Datagram).ok()? {
        ivr_sip::Message::Request(r) if r.method != ivr_sip::Method::Ack => Some((
            r.top_via().ok()?.branch()?.to_string(),
            r.method.to_string(),
        )),
        _ => None,
    }
}

/// The transaction a final response ends.
fn final_key(r: &ivr_sip::Response) -> Option<TxKey> {
    if r.status.is_provisional() {
        return None;
    }
    Some((
        r.top_via().ok()?.branch()?.to_string(),
        r.cseq().ok()?.method.to_string(),
    ))
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        any::<bool>().prop_map(|offer| Step::Invite { offer }),
        Just(Step::Ack),
        Just(Step::Cancel),
        Just(Step::Bye),
        any::<bool>().prop_map(|hold| Step::Reinvite { hold }),
        (0u8..16).prop_map(Step::Key),
        (0u8..16).prop_map(Step::Info),
        Just(Step::Options),
        proptest::collection::vec(any::<u8>(), 0..80).prop_map(Step::Garbage),
        (0u16..8000).prop_map(Step::Wait),
    ]
}

proptest! {
    // 64 cases by default; PROPTEST_CASES=N runs a longer hunt.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_sequence_of_caller_actions_is_handled(steps in proptest::collection::vec(step(), 1..40), delay in 0u64..2) {
        let menus = Arc::new(ivr_server::config::load_demo().expect("demo"));
        let mut net = Net::with_config(menus, |c| {
            c.answer_delay = Duration::from_millis(delay * 700);
            c.hold_timeout = Duration::from_secs(60);
        });
        let mut caller = Caller::new("127.0.0.1:7100", "seq");
        // Every request sent, and every transaction that got its final answer.
        let mut asked: BTreeSet<TxKey> = BTreeSet::new();
        let mut answered: BTreeSet<TxKey> = BTreeSet::new();
        for s in steps {
            let msg: Option<Vec<u8>> = match s {
                Step::Invite { offer } => Some(caller.invite(offer)),
                Step::Ack => Some(caller.ack(Some(&caller.offer()))),
                Step::Cancel => Some(caller.cancel()),
                Step::Bye => Some(caller.in_dialog("BYE", "", "")),
                Step::Reinvite { hold } => {
                    let sdp = if hold { caller.offer().replace("sendrecv", "inactive") } else { caller.offer() };
                    Some(caller.in_dialog("INVITE", "Content-Type: application/sdp\r\n", &sdp))
                }
                Step::Key(k) => {
                    if let Some(call) = net.last_call() {
                        for p in caller.key_packets(Digit::from_event_code(k).unwrap(), 101) {
                            net.send_rtp(call.leg(0), caller.media, &p);
                        }
                    }
                    None
                }
                Step::Info(k) => Some(caller.in_dialog("INFO", "Content-Type: application/dtmf\r\n", &Digit::from_event_code(k).unwrap().to_string())),
                Step::Options => Some(caller.raw("OPTIONS", "", "")),
                Step::Garbage(g) => Some(g),
                Step::Wait(ms) => {
                    net.advance(Duration::from_millis(ms as u64));
                    None
                }
            };
            if let Some(m) = msg {
                asked.extend(request_key(&m));
                net.send_sip(Transport::Udp, caller.addr, &m);
            }
            for r in net.take_sip(caller.addr) {
                if let ivr_sip::Message::Response(r) = r {
                    answered.extend(final_key(&r));
                    caller.on_response(&r);
                } else if let ivr_sip::Message::Request(req) = r {
                    // Answer the engine's requests (its BYE) as a phone would.
                    net.send_sip(Transport::Udp, caller.addr, &caller.ok_to(&req));
                }
            }
        }
        // Hang up whatever is left, and let every timer run out.
        let bye = caller.in_dialog("BYE", "", "");
        asked.extend(request_key(&bye));
        net.send_sip(Transport::Udp, caller.addr, &bye);
        for _ in 0..10 {
            net.advance(Duration::from_secs(10));
            for r in net.take_sip(caller.addr) {
                match r {
                    ivr_sip::Message::Request(req) => {
                        net.send_sip(Transport::Udp, caller.addr, &caller.ok_to(&req));
                    }
                    ivr_sip::Message::Response(r) => answered.extend(final_key(&r)),
                }
            }
        }
        let unanswered: Vec<&TxKey> = asked.difference(&answered).collect();
        prop_assert!(unanswered.is_empty(), "requests with no final answer: {:?}", unanswered);
        prop_assert_eq!(net.engine.call_count(), 0, "every call ended: {:?}", net.events);
        prop_assert!(net.media.is_empty(), "every media socket closed");
    }
}

#[test]
fn every_request_gets_a_final_answer() {
    let menus = Arc::new(ivr_server::config::load_demo().expect("demo"));
    let mut net = Net::new(menus);
    let mut caller = Caller::new("127.0.0.1:7101", "answers");
    // Outside a dialog: OPTIONS is served; methods of no dialog get 481 (RFC 3261 §15.1.2,
    // RFC 6086 §4.2.2, and NOTIFY for no subscription, RFC 6665 §4.1.3); known methods this endpoint does not serve 405 (§8.2.1); unknown
    // ones 501 (§8.2.1).
    for (method, status) in [
        ("OPTIONS", 200),
        ("REGISTER", 405),
        ("SUBSCRIBE", 405),
        ("MESSAGE", 405),
        ("INFO", 481),
        ("BYE", 481),
        ("UPDATE", 405),
        ("PRACK", 405),
        ("NOTIFY", 481),
        ("REFER", 405),
        ("XYZ", 501),
    ] {
        let m = caller.raw(method, "", "");
        net.send_sip(Transport::Udp, caller.addr, &m);
        let msgs = net.take_sip(caller.addr);
        let finals: Vec<u16> = msgs
            .iter()
            .filter_map(|m| match m {
                ivr_sip::Message::Response(r) if !r.status.is_provisional() => {
                    Some(r.status.code())
                }
                _ => None,
            })
            .collect();
        assert_eq!(finals, [status], "{method}: {msgs:?}");
    }
}

/// Found by the property test in CI: two INVITEs with one Call-ID and From tag and no To tag
/// make two calls; the caller acknowledges the second, which is on hold from its first offer,
/// and hangs up only the first. The held call must still end (hold timeout), not live forever.
#[test]
fn a_call_held_from_the_start_and_forgotten_ends() {
    let menus = Arc::new(ivr_server::config::load_demo().expect("demo"));
    let mut net = Net::with_config(menus, |c| {
        c.answer_delay = Duration::from_millis(700);
        c.hold_timeout = Duration::from_secs(60);
    });
    let mut caller = Caller::new("127.0.0.1:7102", "twice");
    let exchange = |net: &mut Net, caller: &mut Caller, m: Option<Vec<u8>>| {
        if let Some(m) = m {
            net.send_sip(Transport::Udp, caller.addr, &m);
        }
        for r in net.take_sip(caller.addr) {
            match r {
                ivr_sip::Message::Response(r) => caller.on_response(&r),
                ivr_sip::Message::Request(req) => {
                    net.send_sip(Transport::Udp, caller.addr, &caller.ok_to(&req))
                }
            }
        }
    };
    let offer = caller.offer();
    let m = caller.in_dialog("INVITE", "Content-Type: application/sdp\r\n", &offer);
    exchange(&mut net, &mut caller, Some(m));
    let hold = offer.replace("sendrecv", "inactive");
    let m = caller.in_dialog("INVITE", "Content-Type: application/sdp\r\n", &hold);
    exchange(&mut net, &mut caller, Some(m));
    net.advance(Duration::from_millis(700));
    exchange(&mut net, &mut caller, None);
    let m = caller.ack(Some(&offer));
    exchange(&mut net, &mut caller, Some(m));
    net.advance(Duration::from_millis(500));
    exchange(&mut net, &mut caller, None);
    let m = caller.in_dialog("BYE", "", "");
    exchange(&mut net, &mut caller, Some(m));
    let first = ivr_engine::CallHandle(1);
    let second = ivr_engine::CallHandle(2);
    assert_eq!(net.ended(first), Some(ivr_engine::EndReason::CallerHungUp));
    assert_eq!(net.ended(second), None, "the held call is not ended early");
    for _ in 0..10 {
        net.advance(Duration::from_secs(10));
        exchange(&mut net, &mut caller, None);
    }
    assert_eq!(net.ended(second), Some(ivr_engine::EndReason::HoldTimeout));
    assert_eq!(
        net.engine.call_count(),
        0,
        "every call ended: {:?}",
        net.events
    );
    assert!(net.media.is_empty(), "every media socket closed");
}
