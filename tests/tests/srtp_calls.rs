//! SRTP calls in virtual time: RTP/SAVP offers over TLS are answered with our SDES key and
//! the media both ways is SRTP (checked with the same RFC 3711 transform on the caller's
//! side); over UDP such offers are refused with 488 (the keys travelled in clear); a
//! re-offer cannot switch profile; forged packets do not count; and the SRTP path
//! allocates nothing per packet (an instrumented allocator, as tests/tests/no_alloc.rs).

use ivr_engine::srtp::{KeyGen, KeySeed, MasterKey, SrtpSession};
use ivr_engine::{Input, Output};
use ivr_sip::Transport;
use ivr_tests::caller::{Caller, Net, response};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Held by each test: the allocator counts every thread.
static TURN: Mutex<()> = Mutex::new(());

fn menus() -> Arc<ivr_menus::Menus> {
    let yaml = "entry: m\nprompts:\n  long: long.wav\nmenus:\n  m:\n    prompt: long\n    options:\n      \"1\": { repeat: true }\n";
    Arc::new(
        ivr_menus::compile(yaml, &mut |_| {
            Ok(ivr_audio::wav::encode_pcm16(
                8000,
                &ivr_audio::tone::sine(8000, 440.0, 8000 * 60, 8000.0),
            ))
        })
        .expect("menu compiles"),
    )
}

fn savp_offer(caller: &Caller, key: &MasterKey) -> String {
    caller.offer().replace("RTP/AVP", "RTP/SAVP").replace(
        "a=sendrecv\r\n",
        &format!(
            "a=sendrecv\r\na=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{k}\r\n\
                 a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{k}|2^31\r\n",
            k = key.to_base64()
        ),
    )
}

/// Dial over `transport` with an RTP/SAVP offer; the final answer.
fn dial(
    net: &mut Net,
    transport: Transport,
    n: u16,
    key: &MasterKey,
) -> (Caller, ivr_sip::message::Response) {
    let mut caller = Caller::new(&format!("127.0.0.1:{}", 10_000 + n * 2), &format!("s{n}"));
    caller.transport = transport;
    let invite = caller.invite_with_sdp(&savp_offer(&caller, key));
    net.send_sip(transport, caller.addr, &invite);
    let msgs = net.take_sip(caller.addr);
    let last = msgs
        .iter()
        .filter_map(|m| match m {
            ivr_sip::message::Message::Response(r) if r.status.code() >= 200 => Some(r.clone()),
            _ => None,
        })
        .next_back()
        .expect("a final answer");
    (caller, last)
}

#[test]
fn savp_over_tls_is_answered_with_srtp_both_ways() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let mut net = Net::new(menus());
    let theirs = KeyGen::new(&KeySeed([9; 32])).next_key();
    let (mut caller, ok) = dial(&mut net, Transport::Tls, 1, &theirs);
    assert_eq!(ok.status.code(), 200);
    let answer = String::from_utf8(ok.body.clone()).unwrap();
    assert!(answer.contains("RTP/SAVP"), "{answer}");
    assert!(
        answer.contains("a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:"),
        "{answer}"
    );
    let contact = ok
        .headers
        .get(&ivr_sip::header::HeaderName::Contact)
        .unwrap();
    assert!(contact.contains("transport=tls"), "{contact}");
    let ours = ivr_engine::sdp::parse_remote(&ok.body)
        .unwrap()
        .crypto
        .expect("the engine's key")
        .key;
    assert_ne!(ours, theirs, "each side keys its own direction");
    caller.on_response(&ok);
    let ack = caller.ack(None);
    net.send_sip(Transport::Tls, caller.addr, &ack);
    let call = net.last_call().unwrap();
    let mut srtp = SrtpSession::new(&theirs, &ours);

    // What the engine sends is SRTP: it authenticates and decrypts with its key to the
    // prompt's G.711 (the tone, not silence).
    net.advance(Duration::from_millis(200));
    let sent = net.rtp_of(call).to_vec();
    assert!(sent.len() >= 5);
    for p in &sent {
        assert_eq!(
            p.data.len(),
            12 + 160 + 10,
            "RTP header, 20 ms of G.711, the tag"
        );
        let plain = srtp.unprotect(&p.data).expect("authentic SRTP").to_vec();
        assert!(
            plain[12..].iter().any(|&b| b != 0xFF && b != 0xD5),
            "prompt audio"
        );
    }

    // What the caller sends counts only when it is SRTP under its key.
    for mut p in caller.audio_packets(&[0; 160 * 10]) {
        let len = p.len();
        p.resize(len + 10, 0);
        let n = srtp.protect(&mut p, len).unwrap();
        net.send_rtp(call.leg(0), caller.media, &p[..n]);
    }
    let mut forged = caller.audio_packet();
    forged.extend_from_slice(&[0u8; 10]);
    net.send_rtp(call.leg(0), caller.media, &forged);
    let plain = caller.audio_packet();
    net.send_rtp(call.leg(0), caller.media, &plain);

    // A re-offer of plain RTP cannot downgrade the call.
    let offer = caller.offer();
    let reinvite = caller.in_dialog("INVITE", "Content-Type: application/sdp\r\n", &offer);
    net.send_sip(Transport::Tls, caller.addr, &reinvite);
    assert!(response(&net.take_sip(caller.addr), 488).is_some());

    // A re-INVITE without SDP: our offer in the 2xx keeps the call SRTP, with our key.
    let reinvite = caller.in_dialog("INVITE", "", "");
    net.send_sip(Transport::Tls, caller.addr, &reinvite);
    let msgs = net.take_sip(caller.addr);
    let ok = response(&msgs, 200).expect("re-INVITE answered");
    let offer = ivr_engine::sdp::parse_remote(&ok.body).unwrap();
    assert!(offer.secure, "{}", String::from_utf8_lossy(&ok.body));
    assert_eq!(offer.crypto.map(|c| c.key), Some(ours.clone()));

    let bye = caller.in_dialog("BYE", "", "");
    net.send_sip(Transport::Tls, caller.addr, &bye);
    assert_eq!(
        received(&net),
        vec![10],
        "the ten SRTP packets, not the forged or plain ones"
    );
}

/// Each ended call's count of RTP packets taken as media.
fn received(net: &Net) -> Vec<u64> {
    net.events
        .iter()
        .filter_map(|e| match e {
            ivr_engine::Event::CallEnded { packets, .. } => Some(packets.1),
            _ => None,
        })
        .collect()
}

#[test]
fn savp_over_udp_is_refused() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let mut net = Net::new(menus());
    let key = KeyGen::new(&KeySeed([9; 32])).next_key();
    let (_, answer) = dial(&mut net, Transport::Udp, 2, &key);
    assert_eq!(answer.status.code(), 488, "{answer:?}");
    let (_, answer) = dial(&mut net, Transport::Tcp, 3, &key);
    assert_eq!(answer.status.code(), 488, "{answer:?}");
    assert!(net.last_call().is_none());
}

#[test]
fn srtp_media_allocates_nothing_per_packet() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let mut net = Net::with_config(menus(), |c| c.media_timeout = Duration::from_secs(600));
    let speech = ivr_audio::tone::sine(8000, 300.0, 8000 * 6, 6000.0);
    let mut incoming = Vec::new();
    for i in 0..20 {
        let theirs = KeyGen::new(&KeySeed([i as u8; 32])).next_key();
        let (mut caller, ok) = dial(&mut net, Transport::Tls, 10 + i, &theirs);
        assert_eq!(ok.status.code(), 200);
        let ours = ivr_engine::sdp::parse_remote(&ok.body)
            .unwrap()
            .crypto
            .unwrap()
            .key;
        caller.on_response(&ok);
        let ack = caller.ack(None);
        net.send_sip(Transport::Tls, caller.addr, &ack);
        let call = net.last_call().unwrap();
        let mut srtp = SrtpSession::new(&theirs, &ours);
        let packets: Vec<Vec<u8>> = caller
            .audio_packets(&speech)
            .into_iter()
            .map(|mut p| {
                let len = p.len();
                p.resize(len + 10, 0);
                let n = srtp.protect(&mut p, len).unwrap();
                p.truncate(n);
                p
            })
            .collect();
        incoming.push((call.leg(0), caller.media, packets));
    }
    // Warm up, then measure five seconds of SRTP both ways.
    for n in 0..50 {
        for (leg, from, packets) in &incoming {
            net.send_rtp(*leg, *from, &packets[n]);
        }
        net.advance(Duration::from_millis(20));
    }
    net.rtp.clear();
    let (start, end) = (net.now, net.now + Duration::from_secs(5));
    let (mut fed, mut sent, mut allocations) = (50, 0usize, 0usize);
    loop {
        let region = Region::new(GLOBAL);
        let due = 50 + ((net.now - start).as_millis() / 20) as usize;
        while fed < due.min(299) {
            for (leg, from, packets) in &incoming {
                let input = Input::Rtp {
                    leg: *leg,
                    from: *from,
                    data: &packets[fed],
                };
                net.engine.handle_input(net.now, input);
            }
            fed += 1;
        }
        let next = loop {
            match net.engine.poll_output() {
                Output::Timeout(t) => break t,
                Output::Rtp { .. } => sent += 1,
                other => panic!("unexpected output {other:?}"),
            }
        };
        let Some(t) = next.filter(|t| *t <= end) else {
            break;
        };
        net.now = t;
        net.engine.handle_input(net.now, Input::Timeout);
        let change = region.change();
        allocations += change.allocations + change.reallocations;
    }
    assert!(sent >= 20 * 249, "{sent} packets sent");
    // The engine took the callers' SRTP as media: hang up and read the counts.
    net.engine.handle_input(net.now, Input::Shutdown);
    net.advance(Duration::from_secs(40));
    let counted = received(&net);
    assert_eq!(counted.len(), 20);
    assert!(counted.iter().all(|n| *n >= 299), "{counted:?}");
    assert_eq!(allocations, 0, "heap allocations with SRTP both ways");
}

#[test]
fn a_sips_request_gets_a_sips_contact() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let mut net = Net::new(menus());
    for (transport, uri, contact) in [
        (Transport::Tls, "sips:", "<sips:ivr@"),
        (Transport::Tls, "sip:", ";transport=tls>"),
        (Transport::Tcp, "sip:", ";transport=tcp>"),
    ] {
        let mut caller = Caller::new("127.0.0.1:10100", &format!("sips-{uri}-{transport:?}"));
        caller.transport = transport;
        let invite = String::from_utf8(caller.invite(true)).unwrap();
        let invite = invite.replacen("INVITE sip:", &format!("INVITE {uri}"), 1);
        net.send_sip(transport, caller.addr, invite.as_bytes());
        let msgs = net.take_sip(caller.addr);
        let ok = response(&msgs, 200).expect("answered");
        let value = ok
            .headers
            .get(&ivr_sip::header::HeaderName::Contact)
            .unwrap();
        assert!(value.contains(contact), "{uri} over {transport:?}: {value}");
    }
}

/// A caller's RTP packet as SRTP under `srtp`, with its SSRC and sequence number set.
fn srtp_packet(caller: &mut Caller, srtp: &mut SrtpSession, ssrc: u32, seq: u16) -> Vec<u8> {
    let mut p = caller.audio_packet();
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    let len = p.len();
    p.resize(len + 10, 0);
    let n = srtp.protect(&mut p, len).unwrap();
    p.truncate(n);
    p
}

/// A caller that changes SSRC mid-call (a new stream: its sequence numbers start anywhere,
/// RFC 3550 §5.1) is still heard (RFC 3711 §3.2.3: a receive state per SSRC); a re-INVITE
/// with a new key (RFC 4568 §7.1.4) is taken, and the old key's packets no longer count.
#[test]
fn a_new_ssrc_and_a_new_key_are_heard_and_the_old_key_is_not() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let mut net = Net::new(menus());
    let theirs = KeyGen::new(&KeySeed([21; 32])).next_key();
    let (mut caller, ok) = dial(&mut net, Transport::Tls, 40, &theirs);
    assert_eq!(ok.status.code(), 200);
    let ours = ivr_engine::sdp::parse_remote(&ok.body)
        .unwrap()
        .crypto
        .unwrap()
        .key;
    caller.on_response(&ok);
    let ack = caller.ack(None);
    net.send_sip(Transport::Tls, caller.addr, &ack);
    let call = net.last_call().unwrap();
    let leg = call.leg(0);
    // The caller's side keeps a context per SSRC it sends (RFC 3711 §3.2.3).
    let mut old = SrtpSession::new(&theirs, &ours);
    let mut old2 = SrtpSession::new(&theirs, &ours);
    // Five packets of a first stream near 40,000, then five of a second stream starting
    // "behind" it at 100 (the old receive state would estimate them a ROC ahead).
    for seq in 40_000..40_005 {
        let p = srtp_packet(&mut caller, &mut old, 0x1111, seq);
        net.send_rtp(leg, caller.media, &p);
    }
    net.advance(Duration::from_millis(100));
    for seq in 100..105 {
        let p = srtp_packet(&mut caller, &mut old2, 0x2222, seq);
        net.send_rtp(leg, caller.media, &p);
    }
    net.advance(Duration::from_millis(100));

    // Rekey: a re-INVITE with a new key for the caller's direction.
    let new_key = KeyGen::new(&KeySeed([22; 32])).next_key();
    let offer = savp_offer(&caller, &new_key);
    let reinvite = caller.in_dialog("INVITE", "Content-Type: application/sdp\r\n", &offer);
    net.send_sip(Transport::Tls, caller.addr, &reinvite);
    let msgs = net.take_sip(caller.addr);
    let ok = response(&msgs, 200).expect("re-INVITE answered");
    let answer = ivr_engine::sdp::parse_remote(&ok.body).unwrap();
    assert_eq!(answer.crypto.map(|c| c.key), Some(ours.clone()));
    let ack = caller.ack(None);
    net.send_sip(Transport::Tls, caller.addr, &ack);
    // Old-key packets (new sequence numbers) no longer count; new-key ones do, from
    // sequence numbers the old key had already used (a new crypto context).
    for seq in 105..110 {
        let p = srtp_packet(&mut caller, &mut old2, 0x2222, seq);
        net.send_rtp(leg, caller.media, &p);
    }
    let mut new = SrtpSession::new(&new_key, &ours);
    for seq in 100..104 {
        let p = srtp_packet(&mut caller, &mut new, 0x2222, seq);
        net.send_rtp(leg, caller.media, &p);
    }
    net.advance(Duration::from_millis(100));
    let bye = caller.in_dialog("BYE", "", "");
    net.send_sip(Transport::Tls, caller.addr, &bye);
    assert_eq!(
        received(&net),
        vec![5 + 5 + 4],
        "both streams under the first key, then only the new key"
    );
}

/// RFC 4568 §8.3: in an SRTP call set up over TLS, a re-INVITE or UPDATE that arrives over
/// UDP is refused (488): its answer, or our offer in its 2xx, would carry our key in clear.
#[test]
fn an_srtp_call_answers_no_offer_over_udp() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let mut net = Net::new(menus());
    let theirs = KeyGen::new(&KeySeed([31; 32])).next_key();
    let (mut caller, ok) = dial(&mut net, Transport::Tls, 50, &theirs);
    assert_eq!(ok.status.code(), 200);
    caller.on_response(&ok);
    let ack = caller.ack(None);
    net.send_sip(Transport::Tls, caller.addr, &ack);
    let offer = savp_offer(&caller, &theirs);
    for (method, extra, body) in [
        ("INVITE", "", ""),
        (
            "INVITE",
            "Content-Type: application/sdp\r\n",
            offer.as_str(),
        ),
        (
            "UPDATE",
            "Content-Type: application/sdp\r\n",
            offer.as_str(),
        ),
    ] {
        let req = caller.in_dialog(method, extra, body);
        net.send_sip(Transport::Udp, caller.addr, &req);
        let msgs = net.take_sip(caller.addr);
        for m in &msgs {
            if let ivr_sip::message::Message::Response(r) = m {
                assert!(
                    !String::from_utf8_lossy(&r.body).contains("inline:"),
                    "{method}: our key over UDP"
                );
            }
        }
        assert!(response(&msgs, 488).is_some(), "{method} over UDP: 488");
    }
    // Over TLS the same re-INVITE is answered, with our key.
    let req = caller.in_dialog("INVITE", "", "");
    net.send_sip(Transport::Tls, caller.addr, &req);
    let msgs = net.take_sip(caller.addr);
    let ok = response(&msgs, 200).expect("re-INVITE over TLS");
    assert!(String::from_utf8_lossy(&ok.body).contains("inline:"));
}
