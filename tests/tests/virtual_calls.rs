//! Whole calls through `ivr-engine` in virtual time: no sockets, no sleeping.

use ivr_audio::{Codec, Digit};
use ivr_engine::EndReason;
use ivr_sip::Transport;
use ivr_sip::message::{CoreHeaders, Message};
use ivr_tests::caller::{Caller, Net, demo_variant, request, response};
use std::sync::Arc;
use std::time::Duration;

fn demo() -> Arc<ivr_menus::Menus> {
    Arc::new(ivr_server::config::load_demo().expect("demo compiles"))
}

fn connect(net: &mut Net, caller: &mut Caller) -> ivr_engine::CallHandle {
    net.connect(caller)
}

fn press(net: &mut Net, caller: &mut Caller, call: ivr_engine::CallHandle, digit: Digit) {
    net.press(caller, call, digit)
}

#[test]
fn caller_chooses_english_then_goodbye_and_the_engine_hangs_up() {
    let mut net = Net::new(demo());
    let mut caller = Caller::new("127.0.0.1:7000", "happy");
    let call = connect(&mut net, &mut caller);
    net.advance(Duration::from_secs(2));
    // The greeting flows: 50 packets per second, PCMU (first codec offered), to the caller's media address.
    let rtp = &net.rtp_of(call);
    assert!(
        (99..=101).contains(&rtp.len()),
        "{} packets in 2 s",
        rtp.len()
    );
    assert!(
        rtp.iter()
            .all(|p| p.to == caller.media && p.data[1] & 0x7F == 0)
    );
    // What was sent is the French greeting, frame for frame.
    let menus = demo();
    let greeting = menus.prompt(menus.find_prompt("lang_fr").unwrap()).clone();
    for (i, p) in rtp.iter().take(50).enumerate() {
        assert_eq!(
            &p.data[12..],
            greeting.frame(Codec::Pcmu, i).unwrap(),
            "frame {i}"
        );
    }
    press(&mut net, &mut caller, call, Digit::D2);
    assert_eq!(net.menus_entered(), ["language", "main_en"]);
    net.advance(Duration::from_secs(1));
    press(&mut net, &mut caller, call, Digit::D9);
    // Keys are reported once each, though each press sent three end packets.
    let keys: Vec<_> = net
        .events
        .iter()
        .filter(|e| matches!(e, ivr_engine::Event::Digit { .. }))
        .collect();
    assert_eq!(keys.len(), 2);
    // The goodbye (2.6 s) plays, then the engine sends BYE.
    net.advance(Duration::from_secs(2));
    assert!(
        request(&net.take_sip(caller.addr), "BYE").is_none(),
        "not before the goodbye ends"
    );
    net.advance(Duration::from_secs(1));
    let msgs = net.take_sip(caller.addr);
    let bye = request(&msgs, "BYE")
        .expect("BYE after the goodbye")
        .clone();
    assert_eq!(bye.party_to().unwrap().tag(), Some("tag-happy"));
    assert_eq!(bye.party_from().unwrap().tag(), caller.to_tag.as_deref());
    net.send_sip(Transport::Udp, caller.addr, &caller.ok_to(&bye));
    assert_eq!(net.ended(call), Some(EndReason::MenuHangup));
    assert!(net.media.is_empty(), "media socket closed");
}

#[test]
fn silence_replays_the_menu_then_says_goodbye() {
    let mut net = Net::new(demo());
    let mut caller = Caller::new("127.0.0.1:7001", "silent");
    let call = connect(&mut net, &mut caller);
    // Keep sending audio so the media timeout stays away; press nothing.
    for _ in 0..(60 * 50) {
        let p = caller.audio_packet();
        net.send_rtp(call.leg(0), caller.media, &p);
        net.advance(Duration::from_millis(20));
        if net.ended(call).is_some() || !net.sip.is_empty() {
            break;
        }
    }
    // 3 tries of (6.3 s prompt + 5 s wait) with no-input prompts between, then the goodbye.
    let msgs = net.take_sip(caller.addr);
    let bye = request(&msgs, "BYE").expect("the engine hangs up after the retries");
    net.send_sip(Transport::Udp, caller.addr, &caller.ok_to(bye));
    assert_eq!(net.ended(call), Some(EndReason::MenuHangup));
    assert_eq!(net.menus_entered(), ["language"]);
}

#[test]
fn caller_bye_mid_prompt_is_answered_and_media_stops() {
    let mut net = Net::new(demo());
    let mut caller = Caller::new("127.0.0.1:7002", "bye");
    let call = connect(&mut net, &mut caller);
    net.advance(Duration::from_millis(500));
    let bye = caller.in_dialog("BYE", "", "");
    net.send_sip(Transport::Udp, caller.addr, &bye);
    assert!(response(&net.take_sip(caller.addr), 200).is_some());
    assert_eq!(net.ended(call), Some(EndReason::CallerHungUp));
    let sent = net.rtp_of(call).len();
    net.advance(Duration::from_secs(1));
    assert_eq!(net.rtp_of(call).len(), sent, "no RTP after BYE");
    // A retransmitted BYE gets the same answer (the transaction absorbs it), not a 481.
    net.send_sip(Transport::Udp, caller.addr, &bye);
    let again = net.take_sip(caller.addr);
    assert!(response(&again, 200).is_some(), "{again:?}");
}

#[test]
fn lost_ack_gets_200_retransmitted_then_bye_after_timer_h() {
    let mut net = Net::new(demo());
    let mut caller = Caller::new("127.0.0.1:7003", "noack");
    let invite = caller.invite(true);
    net.send_sip(Transport::Udp, caller.addr, &invite);
    let call = net.last_call().unwrap();
    let first = net.take_sip(caller.addr);
    assert!(response(&first, 200).is_some());
    let t0 = net.now;
    let mut resent = vec![];
    for _ in 0..70 {
        net.advance(Duration::from_millis(500));
        for s in net.sip.drain(..).collect::<Vec<_>>() {
            let text = String::from_utf8_lossy(&s.data).to_string();
            if text.starts_with("SIP/2.0 200") {
                resent.push((s.at - t0).as_millis());
            }
            if text.starts_with("BYE") {
                resent.push(99_999);
            }
        }
    }
    assert_eq!(&resent[..5], &[500, 1500, 3500, 7500, 11500], "{resent:?}");
    assert_eq!(
        resent.last(),
        Some(&99_999),
        "BYE after Timer H: {resent:?}"
    );
    assert!(resent.iter().filter(|t| **t < 99_999).all(|t| *t <= 32_000));
    // Timer H ended the call, for that reason, and freed its slot when the BYE went out
    // (issue 8: not 32 s later, when the BYE's own transaction gives up, Timer F).
    assert_eq!(net.ended(call), Some(EndReason::AckTimeout));
    assert_eq!(net.engine.call_count(), 0, "{:?}", net.events);
    net.advance(Duration::from_secs(40));
    assert_eq!(net.ended(call), Some(EndReason::AckTimeout));
    assert_eq!(net.engine.call_count(), 0, "{:?}", net.events);
    assert!(net.media.is_empty(), "the media sockets are closed");
}

#[test]
fn late_offer_gets_our_offer_and_the_answer_comes_in_the_ack() {
    let mut net = Net::new(demo());
    let mut caller = Caller::new("127.0.0.1:7004", "late");
    let invite = caller.invite(false);
    net.send_sip(Transport::Udp, caller.addr, &invite);
    let msgs = net.take_sip(caller.addr);
    let ok = response(&msgs, 200).unwrap().clone();
    let offer = String::from_utf8(ok.body.clone()).unwrap();
    assert!(
        offer.contains("m=audio")
            && offer.contains("PCMA/8000")
            && offer.contains("telephone-event/8000"),
        "{offer}"
    );
    caller.on_response(&ok);
    let answer = caller.offer().replace("RTP/AVP 0 8 101", "RTP/AVP 8 101");
    let ack = caller.ack(Some(&answer));
    net.send_sip(Transport::Udp, caller.addr, &ack);
    let call = net.last_call().unwrap();
    net.advance(Duration::from_millis(200));
    let rtp = &net.rtp_of(call);
    assert!(rtp.len() >= 10);
    assert!(
        rtp.iter().all(|p| p.data[1] & 0x7F == 8),
        "PCMA as answered"
    );
}

#[test]
fn reinvite_hold_stops_media_and_resume_restarts_it() {
    let mut net = Net::new(demo());
    let mut caller = Caller::new("127.0.0.1:7005", "hold");
    let call = connect(&mut net, &mut caller);
    net.advance(Duration::from_millis(200));
    let hold_sdp = caller.offer().replace("a=sendrecv", "a=sendonly");
    let reinvite = caller.in_dialog("INVITE", "Content-Type: application/sdp\r\n", &hold_sdp);
    net.send_sip(Transport::Udp, caller.addr, &reinvite);
    let msgs = net.take_sip(caller.addr);
    let ok = response(&msgs, 200).expect("200 to the re-INVITE");
    let answer = String::from_utf8_lossy(&ok.body);
    assert!(answer.contains("a=recvonly"), "{answer}");
    assert!(
        answer.contains("o=ivr ") && answer.contains(" 2 IN IP4"),
        "version incremented: {answer}"
    );
    let ack = caller.ack(None);
    net.send_sip(Transport::Udp, caller.addr, &ack);
    let before = net.rtp_of(call).len();
    net.advance(Duration::from_secs(1));
    assert_eq!(net.rtp_of(call).len(), before, "no RTP while held");
    let resume = caller.in_dialog(
        "INVITE",
        "Content-Type: application/sdp\r\n",
        &caller.offer(),
    );
    net.send_sip(Transport::Udp, caller.addr, &resume);
    assert!(
        String::from_utf8_lossy(&response(&net.take_sip(caller.addr), 200).unwrap().body)
            .contains("a=sendrecv")
    );
    let ack = caller.ack(None);
    net.send_sip(Transport::Udp, caller.addr, &ack);
    net.advance(Duration::from_millis(400));
    assert!(net.rtp_of(call).len() >= before + 19, "RTP resumes");
}

#[test]
fn cancel_while_ringing_gets_200_and_487() {
    let mut net = Net::with_config(demo(), |c| c.answer_delay = Duration::from_secs(3));
    let mut caller = Caller::new("127.0.0.1:7006", "cancel");
    let invite = caller.invite(true);
    net.send_sip(Transport::Udp, caller.addr, &invite);
    assert!(response(&net.take_sip(caller.addr), 180).is_some());
    net.advance(Duration::from_secs(1));
    let cancel = caller.cancel();
    net.send_sip(Transport::Udp, caller.addr, &cancel);
    let msgs = net.take_sip(caller.addr);
    assert!(
        response(&msgs, 200).is_some() && response(&msgs, 487).is_some(),
        "{msgs:?}"
    );
    let call = net.last_call().unwrap();
    assert_eq!(net.ended(call), Some(EndReason::Cancelled));
    net.advance(Duration::from_secs(5));
    assert!(
        response(&net.take_sip(caller.addr), 200).is_none(),
        "never answered after CANCEL"
    );
}

#[test]
fn no_media_from_the_caller_ends_the_call() {
    let mut net = Net::with_config(demo(), |c| c.media_timeout = Duration::from_secs(10));
    let mut caller = Caller::new("127.0.0.1:7007", "mute");
    let call = connect(&mut net, &mut caller);
    net.advance(Duration::from_secs(9));
    assert!(request(&net.take_sip(caller.addr), "BYE").is_none());
    net.advance(Duration::from_secs(2));
    assert!(request(&net.take_sip(caller.addr), "BYE").is_some());
    net.advance(Duration::from_secs(40));
    assert_eq!(net.ended(call), Some(EndReason::MediaTimeout));
}

#[test]
fn sip_info_keys_work_like_rfc4733() {
    let mut net = Net::new(demo());
    let mut caller = Caller::new("127.0.0.1:7008", "info");
    let _call = connect(&mut net, &mut caller);
    let info = caller.in_dialog(
        "INFO",
        "Content-Type: application/dtmf-relay\r\n",
        "Signal=1\r\nDuration=160\r\n",
    );
    net.send_sip(Transport::Udp, caller.addr, &info);
    assert!(response(&net.take_sip(caller.addr), 200).is_some());
    assert_eq!(net.menus_entered(), ["language", "main_fr"]);
}

#[test]
fn engine_bye_is_retransmitted_on_a_lossy_network() {
    let mut net = Net::new(demo());
    let mut caller = Caller::new("127.0.0.1:7009", "lossy");
    let call = connect(&mut net, &mut caller);
    press(&mut net, &mut caller, call, Digit::D2);
    press(&mut net, &mut caller, call, Digit::D9);
    // Nobody answers: the BYE is "lost" and retransmitted on Timer E (+0.5 s, +1.5 s...).
    net.advance(Duration::from_secs(5));
    let copies = net.take_sip(caller.addr);
    let n = copies
        .iter()
        .filter(|m| matches!(m, Message::Request(r) if r.method.as_str() == "BYE"))
        .count();
    assert!(n >= 3, "{n} copies of the BYE: {copies:?}");
    // The call ended when its BYE was sent (issue 8 item 11): its slot and the end log do
    // not wait for a peer that may have vanished; the BYE's transaction runs on its own.
    assert_eq!(net.ended(call), Some(EndReason::MenuHangup));
    let bye = request(&copies, "BYE").unwrap().clone();
    net.send_sip(Transport::Udp, caller.addr, &caller.ok_to(&bye));
    net.advance(Duration::from_secs(1));
    assert!(
        request(&net.take_sip(caller.addr), "BYE").is_none(),
        "the answered BYE is not sent again"
    );
}

#[test]
fn refusals_carry_the_right_status_and_headers() {
    let mut net = Net::with_config(demo(), |c| c.max_calls = 1);
    let mut a = Caller::new("127.0.0.1:7010", "first");
    connect(&mut net, &mut a);
    let mut b = Caller::new("127.0.0.1:7011", "second");
    type Case = (Vec<u8>, u16, Option<(&'static str, &'static str)>);
    let cases: Vec<Case> = vec![
        (b.invite(true), 503, Some(("Retry-After", "5"))),
        (
            b.raw("REGISTER", "", ""),
            405,
            Some(("Allow", ivr_engine::ALLOW)),
        ),
        (
            b.raw("FROBNICATE", "", ""),
            501,
            Some(("Allow", ivr_engine::ALLOW)),
        ),
        (
            b.raw("OPTIONS", "", ""),
            200,
            Some(("Accept", "application/sdp")),
        ),
        (b.raw("BYE", "", ""), 481, None),
    ];
    for (msg, status, header) in cases {
        net.send_sip(Transport::Udp, b.addr, &msg);
        let msgs = net.take_sip(b.addr);
        let r = response(&msgs, status).unwrap_or_else(|| panic!("no {status}: {msgs:?}"));
        assert!(
            r.party_to().unwrap().tag().is_some(),
            "final responses carry a To tag"
        );
        if let Some((name, value)) = header {
            assert_eq!(
                r.headers.get(&ivr_sip::HeaderName::from_wire(name)),
                Some(value),
                "{status}"
            );
        }
    }
    // Once the first call ends, capacity frees up; the SDP checks come next.
    let mut c = Caller::new("127.0.0.1:7012", "third");
    let bye = a.in_dialog("BYE", "", "");
    net.send_sip(Transport::Udp, a.addr, &bye);
    let cases = vec![
        (
            c.invite_with_sdp(&c.offer().replace("RTP/AVP 0 8 101", "RTP/AVP 18 101")),
            488,
        ),
        (c.invite_with_sdp("this is not sdp"), 400),
        (c.raw("INVITE", "Require: 100rel, foo\r\n", ""), 420),
        (
            c.raw("INVITE", "Content-Type: text/plain\r\n", "hello"),
            415,
        ),
    ];
    for (msg, status) in cases {
        net.send_sip(Transport::Udp, c.addr, &msg);
        let msgs = net.take_sip(c.addr);
        let r = response(&msgs, status).unwrap_or_else(|| panic!("no {status}: {msgs:?}"));
        if status == 420 {
            assert_eq!(
                r.headers.get(&ivr_sip::HeaderName::Unsupported),
                Some("foo"),
                "100rel is supported (RFC 3262), foo is not"
            );
        }
        // each refused INVITE is ACKed by the caller; the engine's transaction absorbs it
    }
    // Max-Forwards: 0 on an INVITE addressed to this endpoint: it is processed, not refused
    // (483 is a proxy's answer, RFC 3261 §16.3; RFC 4475 §3.3.11; docs/architecture.md).
    let zero_mf = String::from_utf8(c.invite(true))
        .unwrap()
        .replace("Max-Forwards: 70", "Max-Forwards: 0");
    assert!(zero_mf.contains("Max-Forwards: 0\r\n"));
    net.send_sip(Transport::Udp, c.addr, zero_mf.as_bytes());
    let msgs = net.take_sip(c.addr);
    assert!(response(&msgs, 200).is_some(), "answered: {msgs:?}");
    assert!(response(&msgs, 483).is_none(), "{msgs:?}");
    let tel = String::from_utf8(c.raw("OPTIONS", "", ""))
        .unwrap()
        .replacen("sip:service@127.0.0.1:5060", "tel:+15551234", 1);
    net.send_sip(Transport::Udp, c.addr, tel.as_bytes());
    assert!(response(&net.take_sip(c.addr), 416).is_some());
}

#[test]
fn shutdown_hangs_up_and_refuses_new_calls() {
    let mut net = Net::new(demo());
    let mut a = Caller::new("127.0.0.1:7013", "up");
    let call = connect(&mut net, &mut a);
    net.engine
        .handle_input(net.now, ivr_engine::Input::Shutdown);
    net.pump();
    let bye = request(&net.take_sip(a.addr), "BYE")
        .expect("BYE on shutdown")
        .clone();
    let mut b = Caller::new("127.0.0.1:7014", "late-comer");
    let invite = b.invite(true);
    net.send_sip(Transport::Udp, b.addr, &invite);
    assert!(response(&net.take_sip(b.addr), 503).is_some());
    net.send_sip(Transport::Udp, a.addr, &a.ok_to(&bye));
    assert_eq!(net.ended(call), Some(EndReason::Shutdown));
    assert!(net.events.contains(&ivr_engine::Event::Drained));
}

#[test]
fn no_free_media_port_gives_503() {
    let mut net = Net::new(demo());
    net.ports_available = false;
    let mut a = Caller::new("127.0.0.1:7015", "noport");
    let invite = a.invite(true);
    net.send_sip(Transport::Udp, a.addr, &invite);
    let msgs = net.take_sip(a.addr);
    assert!(response(&msgs, 503).is_some(), "{msgs:?}");
    assert_eq!(
        net.ended(net.last_call().unwrap()),
        Some(EndReason::MediaUnavailable)
    );
}

#[test]
fn answer_delay_rings_then_answers() {
    let mut net = Net::with_config(demo(), |c| c.answer_delay = Duration::from_millis(1500));
    let mut caller = Caller::new("127.0.0.1:7016", "ring");
    let invite = caller.invite(true);
    net.send_sip(Transport::Udp, caller.addr, &invite);
    let msgs = net.take_sip(caller.addr);
    assert!(
        response(&msgs, 180).is_some() && response(&msgs, 200).is_none(),
        "{msgs:?}"
    );
    net.advance(Duration::from_millis(1400));
    assert!(
        response(&net.take_sip(caller.addr), 200).is_none(),
        "not before the delay"
    );
    net.advance(Duration::from_millis(100));
    let ok = response(&net.take_sip(caller.addr), 200)
        .expect("answered after 1.5 s")
        .clone();
    caller.on_response(&ok);
    let ack = caller.ack(None);
    net.send_sip(Transport::Udp, caller.addr, &ack);
    net.advance(Duration::from_millis(100));
    assert!(net.rtp_of(net.last_call().unwrap()).len() >= 5);
}

#[test]
fn the_called_number_picks_the_entry_menu() {
    let yaml = ivr_server::config::DEMO_CONFIG.replace(
        "entry: language\n",
        "entry: language\nentries:\n  english: main_en\n",
    );
    let mut net = Net::new(demo_variant(&yaml));
    let mut caller = Caller::new("127.0.0.1:7017", "entry");
    let invite =
        String::from_utf8(caller.invite(true))
            .unwrap()
            .replacen("sip:service@", "sip:english@", 1);
    net.send_sip(Transport::Udp, caller.addr, invite.as_bytes());
    let ok = response(&net.take_sip(caller.addr), 200).unwrap().clone();
    caller.on_response(&ok);
    let ack = caller.ack(None);
    net.send_sip(Transport::Udp, caller.addr, &ack);
    assert_eq!(net.menus_entered(), ["main_en"]);
    // Any other number gets the default entry.
    let mut other = Caller::new("127.0.0.1:7018", "default");
    connect(&mut net, &mut other);
    assert_eq!(net.menus_entered(), ["main_en", "language"]);
}

#[test]
fn in_band_tones_work_when_the_phone_has_no_rfc4733() {
    let mut net = Net::new(demo());
    let mut caller = Caller::new("127.0.0.1:7019", "inband");
    let offer = caller.offer_without_telephone_event();
    let invite = caller.invite_with_sdp(&offer);
    net.send_sip(Transport::Udp, caller.addr, &invite);
    let ok = response(&net.take_sip(caller.addr), 200).unwrap().clone();
    assert!(
        !String::from_utf8_lossy(&ok.body).contains("telephone-event"),
        "none offered, none answered"
    );
    caller.on_response(&ok);
    let ack = caller.ack(None);
    net.send_sip(Transport::Udp, caller.addr, &ack);
    let call = net.last_call().unwrap();
    // 80 ms of the "2" tone, then silence, as a phone sends it in the audio.
    let (lo, hi) = Digit::D2.frequencies();
    let a = ivr_audio::tone::sine(8000, lo as f64, 640, 6000.0);
    let b = ivr_audio::tone::sine(8000, hi as f64, 640, 6000.0);
    let mut pcm: Vec<i16> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
    pcm.extend(vec![0i16; 1600]);
    for p in caller.audio_packets(&pcm) {
        net.send_rtp(call.leg(0), caller.media, &p);
        net.advance(Duration::from_millis(20));
    }
    assert_eq!(net.menus_entered(), ["language", "main_en"]);
}

#[test]
fn callers_are_routed_by_caller_id_and_blocked_ones_declined() {
    let yaml = ivr_server::config::DEMO_CONFIG.replace(
        "entry: language\n",
        "entry: language\ncallers:\n  - match: [\"+1555*\"]\n    goto: main_en\n  - match: [\"+1900*\", anonymous]\n    reject: true\n",
    );
    // P-Asserted-Identity is believed from 127.0.0.1 (a trusted proxy) only.
    let mut net = Net::with_config(demo_variant(&yaml), |c| {
        c.trusted_proxies = vec![[127, 0, 0, 1].into()];
    });
    // The scripted caller's From is sip:+15551234@...: a VIP, straight to English.
    let mut vip = Caller::new("127.0.0.1:7020", "vip");
    connect(&mut net, &mut vip);
    assert_eq!(net.menus_entered(), ["main_en"]);
    // P-Asserted-Identity (RFC 3325) wins over From: this one is blocked before answering.
    let mut blocked = Caller::new("127.0.0.1:7021", "blocked");
    let invite = String::from_utf8(blocked.invite(true)).unwrap().replacen(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nP-Asserted-Identity: <sip:+19005550000@carrier.example>\r\n",
        1,
    );
    net.send_sip(Transport::Udp, blocked.addr, invite.as_bytes());
    let msgs = net.take_sip(blocked.addr);
    let r = response(&msgs, 603).unwrap_or_else(|| panic!("603 Decline: {msgs:?}"));
    assert_eq!(r.reason, "Decline");
    assert!(response(&msgs, 200).is_none());
    // The same P-Asserted-Identity from an address that is not a trusted proxy is not
    // believed (RFC 3325 §2): the From (a VIP) counts.
    let mut forged = Caller::new("127.0.0.2:7021", "forged");
    let invite = String::from_utf8(forged.invite(true)).unwrap().replacen(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nP-Asserted-Identity: <sip:+19005550000@carrier.example>\r\n",
        1,
    );
    net.send_sip(Transport::Udp, forged.addr, invite.as_bytes());
    let msgs = net.take_sip(forged.addr);
    assert!(response(&msgs, 200).is_some(), "{msgs:?}");
    assert!(response(&msgs, 603).is_none());
    // A withheld number counts as anonymous.
    let mut anon = Caller::new("127.0.0.1:7022", "anon");
    let invite = String::from_utf8(anon.invite(true)).unwrap().replacen(
        "<sip:+15551234@",
        "<sip:anonymous@",
        1,
    );
    net.send_sip(Transport::Udp, anon.addr, invite.as_bytes());
    assert!(response(&net.take_sip(anon.addr), 603).is_some());
}

#[test]
fn router_menus_use_the_wall_clock_the_driver_gives() {
    let yaml = ivr_server::config::DEMO_CONFIG
        .replace(
            "entry: language\n",
            "entry: start\nschedules:\n  office:\n    timezone: Europe/Paris\n    hours:\n      mon-fri: [\"09:00-18:00\"]\n",
        )
        .replace("menus:\n", "menus:\n  start:\n    schedule: office\n    open: language\n    closed: main_en\n");
    let mut net = Net::new(demo_variant(&yaml));
    // Tuesday 2026-11-24 17:59:30 in Paris (16:59:30 UTC): open
    let wall = std::time::UNIX_EPOCH + Duration::from_secs(1_795_021_170);
    net.engine
        .handle_input(net.now, ivr_engine::Input::WallClock(wall));
    let mut a = Caller::new("127.0.0.1:7023", "open");
    connect(&mut net, &mut a);
    assert_eq!(net.menus_entered(), ["start", "language"]);
    // A minute later by the engine's own clock (no new wall-clock input): closed.
    net.advance(Duration::from_secs(60));
    let mut b = Caller::new("127.0.0.1:7024", "closed");
    connect(&mut net, &mut b);
    assert_eq!(
        net.menus_entered(),
        ["start", "language", "start", "main_en"]
    );
}

#[test]
fn a_queue_with_nobody_logged_in_sends_the_caller_to_its_on_timeout() {
    // The queue refuses callers while no agent is logged in: on_timeout (hang up) acts.
    // The demo has queues already: one more, in that section.
    let yaml = include_str!("../../examples/demo/config.yaml")
        .replace(
            "      \"1\": { language: fr, goto: main_fr }",
            "      \"1\": { language: fr, goto: main_fr }\n      \"5\": { queue: sales }",
        )
        .replacen(
            "\nqueues:\n",
            "\nqueues:\n  sales: { music: lang_en, join_when_empty: none_logged_in }\n",
            1,
        );
    assert!(yaml.contains("\"5\": { queue: sales }"), "the edit applied");
    let mut net = Net::new(demo_variant(&yaml));
    let mut caller = Caller::new("127.0.0.1:7060", "away");
    let call = connect(&mut net, &mut caller);
    press(&mut net, &mut caller, call, Digit::D5);
    assert!(net.events.iter().any(|e| matches!(e,
        ivr_engine::Event::LeftMenus { call: c, to } if *c == call && to == "queue sales")));
    let msgs = net.take_sip(caller.addr);
    let bye = request(&msgs, "BYE").expect("the engine hangs up");
    let ok = caller.ok_to(bye);
    net.send_sip(caller.transport, caller.addr, &ok);
    assert_eq!(net.ended(call), Some(EndReason::MenuHangup));
}

#[test]
fn a_caller_heard_after_the_unheard_limit_gets_audio_again_at_once() {
    // The engine stops sending toward a peer that has sent nothing for 5 s
    // (`SEND_WITHOUT_PEER`); the peer's first packet must bring the audio back at once,
    // not when some unrelated timer (here the 30 s media timeout) next looks at the leg.
    let mut net = Net::new(demo());
    let mut caller = Caller::new("127.0.0.1:7031", "late-talker");
    let call = connect(&mut net, &mut caller);
    net.advance(Duration::from_secs(7));
    let stopped = net.rtp_of(call).len();
    assert!(
        (245..=255).contains(&stopped),
        "about 5 s of packets toward a silent peer: {stopped}"
    );
    net.advance(Duration::from_secs(1));
    assert_eq!(
        net.rtp_of(call).len(),
        stopped,
        "nothing more while unheard"
    );
    // The caller speaks at last: one packet, then the engine's own pace.
    let packet = caller.audio_packet();
    net.send_rtp(call.leg(0), caller.media, &packet);
    net.advance(Duration::from_secs(1));
    let resumed = net.rtp_of(call).len() - stopped;
    assert!(
        resumed >= 45,
        "{resumed} packets in the second after the caller was heard"
    );
}
