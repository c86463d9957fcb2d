//! Bridged transfers in virtual time: a scripted caller dials the engine, presses 0, and the
//! engine calls a scripted destination (`Callee`) and bridges the two legs. No sockets, no
//! sleeping.

use ivr_audio::{Codec, Digit};
use ivr_engine::{CallHandle, EndReason, Event, LegHandle};
use ivr_sip::header::HeaderName;
use ivr_sip::message::{CoreHeaders, Message, Request, Response, StatusCode};
use ivr_sip::uac::FailureKind;
use ivr_tests::caller::{Caller, Net, request, response};
use proptest::prelude::*;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const DESK: &str = "127.0.0.1:7100";

/// Menus on the demo's prompts: 0 transfers to the desk (bridged), 9 hangs up.
fn menus(extra: &str) -> Arc<ivr_menus::Menus> {
    menus_at(&format!("sip:desk@{DESK}"), "{ play: sales_en }", extra)
}

/// [`menus`] with the desk at `uri` and its `on_failure`.
fn menus_at(uri: &str, on_failure: &str, extra: &str) -> Arc<ivr_menus::Menus> {
    menus_mode(uri, "bridge", on_failure, extra)
}

/// [`menus_at`] with the desk's transfer `mode`.
fn menus_mode(uri: &str, mode: &str, on_failure: &str, extra: &str) -> Arc<ivr_menus::Menus> {
    let yaml = format!(
        r#"
entry: main
prompts:
  main_en: prompts/main_en.wav
  invalid_en: prompts/invalid_en.wav
  noinput_en: prompts/noinput_en.wav
  goodbye_en: prompts/goodbye_en.wav
  sales_en: prompts/sales_en.wav
destinations:
  desk:
    uri: "{uri}"
    mode: {mode}
    ring_timeout: 10
    on_failure: {on_failure}
{extra}
mailboxes:
  box: {{ greeting: sales_en, callback_number: none }}
menus:
  main:
    prompt: main_en
    timeout: 6
    retries: 5
    invalid: invalid_en
    no_input: noinput_en
    options:
      "0": {{ transfer: desk }}
      "9": {{ hangup: goodbye_en }}
    on_failure: {{ hangup: goodbye_en }}
"#
    );
    ivr_tests::caller::demo_variant(&yaml)
}

/// The scripted destination: answers the engine's INVITE as a test says.
struct Callee {
    addr: SocketAddr,
    media: SocketAddr,
    seq: u16,
    ts: u32,
}

impl Callee {
    fn new() -> Callee {
        Callee {
            addr: DESK.parse().unwrap(),
            media: "127.0.0.1:7102".parse().unwrap(),
            seq: 100,
            ts: 5000,
        }
    }

    /// An answer in `codec` with telephone-event 101, `direction` as given.
    fn sdp(&self, codec: Codec, direction: &str) -> String {
        let pt = codec.payload_type();
        format!(
            "v=0\r\no=desk 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP {pt} 101\r\na=rtpmap:{pt} {name}/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na={direction}\r\n",
            port = self.media.port(),
            name = codec.encoding_name()
        )
    }

    /// A response to `req` with our tag (and Contact, SDP if given).
    fn respond(&self, req: &Request, code: u16, tag: &str, sdp: Option<&str>) -> Vec<u8> {
        let mut r = Response::to_request(req, StatusCode::new(code).unwrap());
        let to = req.headers.get(&HeaderName::To).unwrap().to_string();
        if !to.contains(";tag=") && code > 100 {
            r.headers.set(HeaderName::To, format!("{to};tag={tag}"));
        }
        if code > 100 && code < 300 {
            r.headers
                .push(HeaderName::Contact, format!("<sip:desk@{}>", self.addr));
        }
        if let Some(s) = sdp {
            r.headers.push(HeaderName::ContentType, "application/sdp");
            r.body = s.as_bytes().to_vec();
        }
        r.to_bytes()
    }

    /// A request inside the dialog `invite` + our 2xx made (BYE, re-INVITE).
    fn in_dialog(
        &self,
        invite: &Request,
        tag: &str,
        method: &str,
        cseq: u32,
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
             Max-Forwards: 70\r\nFrom: {to};tag={tag}\r\nTo: {from}\r\nCall-ID: {cid}\r\n\
             CSeq: {cseq} {method}\r\nContact: <sip:desk@{me}>\r\n{ctype}Content-Length: {len}\r\n\r\n{sdp}",
            me = self.addr,
            cid = invite.call_id().unwrap(),
            len = sdp.len()
        )
        .into_bytes()
    }

    /// A 20 ms audio packet in `codec` carrying `pcm`.
    fn audio(&mut self, codec: Codec, pcm: &[i16]) -> Vec<u8> {
        let mut p = vec![0x80, codec.payload_type()];
        p.extend_from_slice(&self.seq.to_be_bytes());
        p.extend_from_slice(&self.ts.to_be_bytes());
        p.extend_from_slice(&0xDE5Cu32.to_be_bytes());
        p.extend(pcm.iter().map(|s| codec.encode(*s)));
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(pcm.len() as u32);
        p
    }
}

/// Connect `caller`, let the menu start, press 0: returns the call and the INVITE the
/// engine sent the desk.
fn dial_desk(net: &mut Net, caller: &mut Caller, callee: &Callee) -> (CallHandle, Request) {
    let call = net.connect(caller);
    net.advance(Duration::from_millis(500));
    net.press(caller, call, Digit::D0);
    let msgs = net.take_sip(callee.addr);
    let invite = request(&msgs, "INVITE")
        .expect("the engine calls the desk")
        .clone();
    (call, invite)
}

fn leg1(call: CallHandle) -> LegHandle {
    call.leg(1)
}

/// A test waveform: never a silent frame.
fn waveform(n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let t = i as f64 / 8000.0;
            (6000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin() + 1500.0) as i16
        })
        .collect()
}

/// The payload bytes of the packets the engine sent on `leg` from index `from` on, minus
/// all-silence frames (an underrun or the wait before relayed audio starts).
fn relayed(net: &Net, leg: LegHandle, from: usize, codec: Codec) -> Vec<u8> {
    let silence = codec.silence();
    net.rtp
        .get(&leg)
        .map(|v| &v[from.min(v.len())..])
        .unwrap_or(&[])
        .iter()
        .filter(|p| p.data[1] & 0x7F == codec.payload_type())
        .map(|p| &p.data[12..])
        .filter(|pl| pl.iter().any(|b| *b != silence))
        .flatten()
        .copied()
        .collect()
}

fn sent_count(net: &Net, leg: LegHandle) -> usize {
    net.rtp.get(&leg).map_or(0, Vec::len)
}

/// The destination sends `pcm` in PCMA, one packet each 20 ms; returns what the caller
/// should hear (the same codes, transcoded to PCMU).
fn speak_pcma(net: &mut Net, callee: &mut Callee, call: CallHandle, pcm: &[i16]) -> Vec<u8> {
    let mut expected = Vec::new();
    for chunk in pcm.chunks(160) {
        let p = callee.audio(Codec::Pcma, chunk);
        expected.extend(
            p[12..]
                .iter()
                .map(|a| Codec::Pcmu.encode(Codec::Pcma.decode(*a))),
        );
        net.send_rtp(leg1(call), callee.media, &p);
        net.advance(Duration::from_millis(20));
    }
    expected
}

/// The caller sends a packet every 200 ms, `n` times (its media stays alive).
fn caller_talks(net: &mut Net, caller: &mut Caller, call: CallHandle, n: usize) {
    for _ in 0..n {
        let p = caller.audio_packet();
        net.send_rtp(call.leg(0), caller.media, &p);
        net.advance(Duration::from_millis(200));
    }
}

/// Answer the INVITE with 180 then 200 (PCMA), and check the ACK.
fn answer(net: &mut Net, callee: &Callee, invite: &Request, codec: Codec) {
    let ringing = callee.respond(invite, 180, "desk1", None);
    net.send_sip(ivr_sip::Transport::Udp, callee.addr, &ringing);
    let ok = callee.respond(invite, 200, "desk1", Some(&callee.sdp(codec, "sendrecv")));
    net.send_sip(ivr_sip::Transport::Udp, callee.addr, &ok);
    let msgs = net.take_sip(callee.addr);
    assert!(
        request(&msgs, "ACK").is_some(),
        "the 2xx is acknowledged: {msgs:?}"
    );
}

#[test]
fn pcmu_caller_and_pcma_destination_hear_each_other_sample_by_sample_then_a_bye_ends_both() {
    let mut net = Net::new(menus(""));
    let mut caller = Caller::new("127.0.0.1:7000", "bridge-1");
    let mut callee = Callee::new();
    let (call, invite) = dial_desk(&mut net, &mut caller, &callee);
    // The offer has both laws and telephone-event; the request goes to the configured URI.
    let offer = String::from_utf8_lossy(&invite.body).to_string();
    assert!(
        offer.contains("PCMU/8000")
            && offer.contains("PCMA/8000")
            && offer.contains("telephone-event")
    );
    assert_eq!(invite.uri.to_string(), format!("sip:desk@{DESK}"));
    assert!(
        net.events
            .iter()
            .any(|e| matches!(e, Event::LeftMenus { to, .. } if to == "transfer desk"))
    );
    answer(&mut net, &callee, &invite, Codec::Pcma);
    assert!(
        net.events
            .iter()
            .any(|e| matches!(e, Event::Bridged { destination, call_id, .. }
                if destination == "desk" && call_id == invite.call_id().unwrap()))
    );

    // Caller -> destination: PCMU in, PCMA out, sample by sample (G.711 transcoding).
    let to_callee_start = sent_count(&net, leg1(call));
    let pcm = waveform(160 * 50);
    let packets = caller.audio_packets(&pcm);
    let mut expected = Vec::new();
    for p in &packets {
        expected.extend(
            p[12..]
                .iter()
                .map(|u| Codec::Pcma.encode(Codec::Pcmu.decode(*u))),
        );
        net.send_rtp(call.leg(0), caller.media, p);
        net.advance(Duration::from_millis(20));
    }
    net.advance(Duration::from_millis(200));
    let got = relayed(&net, leg1(call), to_callee_start, Codec::Pcma);
    assert_eq!(
        got.len(),
        expected.len(),
        "every sample relayed, none twice"
    );
    assert!(
        got == expected,
        "the destination hears the caller's audio, transcoded"
    );
    // Paced by the destination leg's clock: one packet per 20 ms, its own SSRC, consecutive
    // sequence numbers and timestamps.
    let sent = &net.rtp[&leg1(call)][to_callee_start..];
    for w in sent.windows(2) {
        let (a, b) = (&w[0].data, &w[1].data);
        assert_eq!(b[8..12], a[8..12], "one SSRC");
        let seq = |d: &[u8]| u16::from_be_bytes([d[2], d[3]]);
        let ts = |d: &[u8]| u32::from_be_bytes([d[4], d[5], d[6], d[7]]);
        assert_eq!(seq(b), seq(a).wrapping_add(1));
        assert_eq!(ts(b), ts(a).wrapping_add(160));
        assert_eq!(w[1].at - w[0].at, Duration::from_millis(20), "no burst");
        assert_eq!(w[1].to, callee.media);
    }

    // Destination -> caller: PCMA in, PCMU out.
    let to_caller_start = sent_count(&net, call.leg(0));
    let pcm = waveform(160 * 30);
    let expected = speak_pcma(&mut net, &mut callee, call, &pcm);
    net.advance(Duration::from_millis(200));
    let got = relayed(&net, call.leg(0), to_caller_start, Codec::Pcmu);
    assert!(
        got == expected,
        "the caller hears the destination, transcoded ({} of {} bytes)",
        got.len(),
        expected.len()
    );

    // The destination hangs up: the engine answers it and hangs up on the caller.
    let bye = callee.in_dialog(&invite, "desk1", "BYE", 1, "");
    net.send_sip(ivr_sip::Transport::Udp, callee.addr, &bye);
    assert!(response(&net.take_sip(callee.addr), 200).is_some());
    let msgs = net.take_sip(caller.addr);
    let bye = request(&msgs, "BYE")
        .expect("the caller's leg gets BYE")
        .clone();
    net.send_sip(ivr_sip::Transport::Udp, caller.addr, &caller.ok_to(&bye));
    assert_eq!(net.ended(call), Some(EndReason::DestinationHungUp));
    assert_eq!(net.engine.call_count(), 0);
    assert!(net.media.is_empty(), "both media sockets closed");
}

#[test]
fn caller_bye_ends_the_destination_leg_and_keys_pass_through_retimestamped() {
    let mut net = Net::new(menus(""));
    let mut caller = Caller::new("127.0.0.1:7010", "bridge-2");
    let callee = Callee::new();
    let (call, invite) = dial_desk(&mut net, &mut caller, &callee);
    answer(&mut net, &callee, &invite, Codec::Pcmu);
    let start = sent_count(&net, leg1(call));
    net.press(&mut caller, call, Digit::D5);
    let events: Vec<_> = net.rtp[&leg1(call)][start..]
        .iter()
        .filter(|p| p.data[1] & 0x7F == 101)
        .collect();
    assert_eq!(events.len(), 6, "every RFC 4733 packet passed on");
    let audio = net.rtp[&leg1(call)][start..]
        .iter()
        .find(|p| p.data[1] & 0x7F == 0)
        .expect("audio too");
    let ssrc = &audio.data[8..12];
    let ts0 = &events[0].data[4..8];
    for e in &events {
        assert_eq!(&e.data[8..12], ssrc, "the destination leg's SSRC");
        assert_eq!(&e.data[4..8], ts0, "one timestamp for the event");
        assert_eq!(e.data[12], Digit::D5.event_code());
    }
    assert!(
        events[0].data[1] & 0x80 != 0,
        "the marker of the event's start"
    );
    assert_ne!(
        ts0,
        1000u32.to_be_bytes(),
        "re-timestamped into the destination's stream"
    );
    // No menu acts on the key any more.
    assert!(!net.menus_entered().iter().skip(1).any(|_| true));

    let bye = caller.in_dialog("BYE", "", "");
    net.send_sip(ivr_sip::Transport::Udp, caller.addr, &bye);
    let msgs = net.take_sip(callee.addr);
    let bye = request(&msgs, "BYE")
        .expect("the destination gets BYE")
        .clone();
    assert_eq!(bye.call_id().unwrap(), invite.call_id().unwrap());
    // The call is over once its BYE is sent (issue 8, item 11): its slot does not wait
    // for a destination that may have vanished; the BYE's transaction runs on its own.
    assert_eq!(net.ended(call), Some(EndReason::CallerHungUp));
    assert_eq!(net.engine.call_count(), 0);
    net.send_sip(
        ivr_sip::Transport::Udp,
        callee.addr,
        &callee.respond(&bye, 200, "desk1", None),
    );
    assert_eq!(net.engine.call_count(), 0);
    assert!(
        net.take_sip(callee.addr).is_empty(),
        "the BYE's 200 is absorbed by its transaction"
    );
}

#[test]
fn busy_destination_sends_the_caller_to_on_failure_and_the_menu_goes_on() {
    let mut net = Net::new(menus(""));
    let mut caller = Caller::new("127.0.0.1:7020", "bridge-3");
    let callee = Callee::new();
    let (call, invite) = dial_desk(&mut net, &mut caller, &callee);
    // While it rings the caller hears the ringing tone (not silence).
    net.advance(Duration::from_millis(500));
    let ringing = net
        .rtp_of(call)
        .iter()
        .rev()
        .take(10)
        .any(|p| p.data[12..].iter().any(|b| *b != 0xFF));
    assert!(ringing, "a ringing tone plays");
    net.send_sip(
        ivr_sip::Transport::Udp,
        callee.addr,
        &callee.respond(&invite, 486, "desk1", None),
    );
    let msgs = net.take_sip(callee.addr);
    assert!(request(&msgs, "ACK").is_some(), "the 486 is acknowledged");
    assert!(net.events.iter().any(
        |e| matches!(e, Event::TransferFailed { failure, .. } if failure.kind == FailureKind::Busy)
    ));
    // on_failure: play sales_en, then the menu again.
    assert!(
        net.events
            .iter()
            .rev()
            .any(|e| matches!(e, Event::Playing { prompt, .. } if prompt == "sales_en"))
    );
    assert!(net.media.contains_key(&call.leg(0)) && !net.media.contains_key(&leg1(call)));
    net.advance(Duration::from_secs(1));
    net.press(&mut caller, call, Digit::D9);
    net.advance(Duration::from_secs(5));
    let msgs = net.take_sip(caller.addr);
    assert!(
        request(&msgs, "BYE").is_some(),
        "the menu still runs the call"
    );
}

/// A caller back in the menus after a busy transfer who hangs up there: its call record
/// keeps the steps on both sides of the transfer, and no exit (it ended in the menus).
#[test]
fn a_call_record_after_a_busy_transfer_ends_in_the_menus() {
    let mut net = Net::new(menus(""));
    let mut caller = Caller::new("127.0.0.1:7021", "bridge-3b");
    let callee = Callee::new();
    let (_call, invite) = dial_desk(&mut net, &mut caller, &callee);
    net.advance(Duration::from_millis(500));
    net.send_sip(
        ivr_sip::Transport::Udp,
        callee.addr,
        &callee.respond(&invite, 486, "desk1", None),
    );
    net.advance(Duration::from_secs(1));
    let bye = caller.in_dialog("BYE", "", "");
    net.send_sip(caller.transport, caller.addr, &bye);
    let [record] = &net.call_records()[..] else {
        panic!("one call record: {:?}", net.call_records())
    };
    let steps: Vec<(&str, &str, Option<&str>, &str)> = record
        .steps
        .iter()
        .map(|s| {
            (
                s.menu.as_str(),
                s.outcome.as_str(),
                s.key.as_deref(),
                s.prompt.as_str(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("main", "key", Some("0"), "interrupted"),
            // on_failure plays sales_en (a notice), during which the caller hangs up.
            ("main", "hangup", None, "unfinished"),
        ]
    );
    assert_eq!((&record.exit, &record.exit_to), (&None, &None));
    assert_eq!(record.end_reason, "caller_hung_up");
}

#[test]
fn a_message_left_after_a_busy_transfer_says_where_the_call_went() {
    let desk = format!("sip:desk@{DESK}");
    let mut net = Net::new(menus_at(&desk, "{ voicemail: box }", ""));
    let mut caller = Caller::new("127.0.0.1:7097", "bridge-12");
    let callee = Callee::new();
    let (_call, invite) = dial_desk(&mut net, &mut caller, &callee);
    net.send_sip(
        ivr_sip::Transport::Udp,
        callee.addr,
        &callee.respond(&invite, 486, "desk1", None),
    );
    net.advance(Duration::from_secs(10));
    let request = net
        .voicemail
        .iter()
        .find_map(|c| match c {
            ivr_engine::VoicemailCmd::Start { request, .. } => Some(request.clone()),
            _ => None,
        })
        .expect("the caller is recording a message");
    assert!(
        request
            .variables
            .contains(&("transfer".to_string(), "desk: busy".to_string())),
        "{:?}",
        request.variables
    );
}

#[test]
fn no_answer_is_cancelled_at_the_ring_timeout_then_on_failure() {
    let mut net = Net::new(menus(""));
    let mut caller = Caller::new("127.0.0.1:7030", "bridge-4");
    let callee = Callee::new();
    let (call, invite) = dial_desk(&mut net, &mut caller, &callee);
    net.send_sip(
        ivr_sip::Transport::Udp,
        callee.addr,
        &callee.respond(&invite, 180, "desk1", None),
    );
    // Keep the caller's media alive while it rings.
    caller_talks(&mut net, &mut caller, call, 50);
    let msgs = net.take_sip(callee.addr);
    let cancel = request(&msgs, "CANCEL")
        .expect("CANCEL at the ring timeout (10 s)")
        .clone();
    net.send_sip(
        ivr_sip::Transport::Udp,
        callee.addr,
        &callee.respond(&cancel, 200, "desk1", None),
    );
    net.send_sip(
        ivr_sip::Transport::Udp,
        callee.addr,
        &callee.respond(&invite, 487, "desk1", None),
    );
    assert!(request(&net.take_sip(callee.addr), "ACK").is_some());
    assert!(net.events.iter().any(|e| matches!(e, Event::TransferFailed { failure, .. } if failure.kind == FailureKind::NoAnswer)));
    assert!(
        net.events
            .iter()
            .rev()
            .any(|e| matches!(e, Event::Playing { prompt, .. } if prompt == "sales_en"))
    );
    assert_eq!(net.ended(call), None);
}

#[test]
fn caller_hanging_up_while_the_destination_rings_cancels_it() {
    let mut net = Net::new(menus(""));
    let mut caller = Caller::new("127.0.0.1:7040", "bridge-5");
    let callee = Callee::new();
    let (call, invite) = dial_desk(&mut net, &mut caller, &callee);
    net.send_sip(
        ivr_sip::Transport::Udp,
        callee.addr,
        &callee.respond(&invite, 180, "desk1", None),
    );
    let bye = caller.in_dialog("BYE", "", "");
    net.send_sip(ivr_sip::Transport::Udp, caller.addr, &bye);
    assert!(response(&net.take_sip(caller.addr), 200).is_some());
    assert_eq!(net.ended(call), Some(EndReason::CallerHungUp));
    assert_eq!(net.engine.call_count(), 0);
    let msgs = net.take_sip(callee.addr);
    let cancel = request(&msgs, "CANCEL").expect("CANCEL").clone();
    assert_eq!(cancel.call_id().unwrap(), invite.call_id().unwrap());
    // The detached attempt still acknowledges the 487.
    net.send_sip(
        ivr_sip::Transport::Udp,
        callee.addr,
        &callee.respond(&cancel, 200, "desk1", None),
    );
    net.send_sip(
        ivr_sip::Transport::Udp,
        callee.addr,
        &callee.respond(&invite, 487, "desk1", None),
    );
    assert!(request(&net.take_sip(callee.addr), "ACK").is_some());
    net.advance(Duration::from_secs(60));
    assert!(
        matches!(net.engine.poll_output(), ivr_engine::Output::Timeout(None)),
        "nothing left running"
    );
}

#[test]
fn a_forked_second_answer_is_acknowledged_and_released() {
    let mut net = Net::new(menus(""));
    let mut caller = Caller::new("127.0.0.1:7050", "bridge-6");
    let callee = Callee::new();
    let (call, invite) = dial_desk(&mut net, &mut caller, &callee);
    let sdp = callee.sdp(Codec::Pcmu, "sendrecv");
    net.send_sip(
        ivr_sip::Transport::Udp,
        callee.addr,
        &callee.respond(&invite, 200, "fork-a", Some(&sdp)),
    );
    net.send_sip(
        ivr_sip::Transport::Udp,
        callee.addr,
        &callee.respond(&invite, 200, "fork-b", Some(&sdp)),
    );
    let msgs = net.take_sip(callee.addr);
    let acks: Vec<_> = msgs
        .iter()
        .filter(|m| matches!(m, Message::Request(r) if r.method.as_str() == "ACK"))
        .collect();
    assert_eq!(acks.len(), 2, "both answers acknowledged");
    let bye = request(&msgs, "BYE").expect("the second is released");
    assert!(bye.party_to().unwrap().tag() == Some("fork-b"));
    let bridged = net
        .events
        .iter()
        .filter(|e| matches!(e, Event::Bridged { .. }))
        .count();
    assert_eq!(bridged, 1);
    // The kept dialog is the first: its BYE ends the call.
    let bye = callee.in_dialog(&invite, "fork-a", "BYE", 1, "");
    net.send_sip(ivr_sip::Transport::Udp, callee.addr, &bye);
    assert!(response(&net.take_sip(callee.addr), 200).is_some());
    assert!(request(&net.take_sip(caller.addr), "BYE").is_some());
    let _ = call;
}

#[test]
fn a_digest_challenge_is_answered_with_the_destinations_credentials() {
    let mut net = Net::new(menus("    username: ivr\n    password: s3cret\n"));
    let mut caller = Caller::new("127.0.0.1:7060", "bridge-7");
    let callee = Callee::new();
    let (call, invite) = dial_desk(&mut net, &mut caller, &callee);
    let mut challenge = Response::to_request(&invite, StatusCode::new(407).unwrap());
    let to = invite.headers.get(&HeaderName::To).unwrap().to_string();
    challenge
        .headers
        .set(HeaderName::To, format!("{to};tag=px"));
    challenge.headers.push(
        HeaderName::Other("Proxy-Authenticate".into()),
        "Digest realm=\"desk.test\", nonce=\"n0nce\", algorithm=MD5",
    );
    net.send_sip(ivr_sip::Transport::Udp, callee.addr, &challenge.to_bytes());
    let msgs = net.take_sip(callee.addr);
    assert!(request(&msgs, "ACK").is_some(), "the 407 is acknowledged");
    let again = request(&msgs, "INVITE")
        .expect("a new INVITE with credentials")
        .clone();
    let auth = again
        .headers
        .get(&HeaderName::Other("Proxy-Authorization".into()))
        .expect("Proxy-Authorization");
    let auth = ivr_sip::digest::Authorization::parse(auth).unwrap();
    assert_eq!(
        (auth.username.as_str(), auth.realm.as_str()),
        ("ivr", "desk.test")
    );
    let ha1 = ivr_sip::digest::ha1(auth.algorithm, "ivr", "desk.test", "s3cret");
    assert_eq!(auth.response, auth.expected_response("INVITE", &ha1));
    answer(&mut net, &callee, &again, Codec::Pcmu);
    assert!(
        net.events
            .iter()
            .any(|e| matches!(e, Event::Bridged { .. }))
    );
    let _ = call;
}

#[test]
fn early_media_is_relayed_to_the_caller_instead_of_the_ringing_tone() {
    let mut net = Net::new(menus(""));
    let mut caller = Caller::new("127.0.0.1:7070", "bridge-8");
    let mut callee = Callee::new();
    let (call, invite) = dial_desk(&mut net, &mut caller, &callee);
    let sdp = callee.sdp(Codec::Pcma, "sendrecv");
    net.send_sip(
        ivr_sip::Transport::Udp,
        callee.addr,
        &callee.respond(&invite, 183, "desk1", Some(&sdp)),
    );
    let start = sent_count(&net, call.leg(0));
    let pcm = waveform(160 * 20);
    let expected = speak_pcma(&mut net, &mut callee, call, &pcm);
    net.advance(Duration::from_millis(200));
    assert!(
        relayed(&net, call.leg(0), start, Codec::Pcmu) == expected,
        "the caller hears the announcement"
    );
    assert!(
        !net.events
            .iter()
            .any(|e| matches!(e, Event::Bridged { .. })),
        "not answered yet"
    );
}

#[test]
fn a_destination_on_hold_plays_nothing_to_the_caller() {
    let mut net = Net::new(menus(""));
    let mut caller = Caller::new("127.0.0.1:7080", "bridge-9");
    let mut callee = Callee::new();
    let (call, invite) = dial_desk(&mut net, &mut caller, &callee);
    answer(&mut net, &callee, &invite, Codec::Pcmu);
    let hold = callee.in_dialog(
        &invite,
        "desk1",
        "INVITE",
        2,
        &callee.sdp(Codec::Pcmu, "sendonly"),
    );
    net.send_sip(ivr_sip::Transport::Udp, callee.addr, &hold);
    let msgs = net.take_sip(callee.addr);
    let ok = response(&msgs, 200).expect("hold accepted");
    assert!(String::from_utf8_lossy(&ok.body).contains("a=recvonly"));
    let start = sent_count(&net, call.leg(0));
    for chunk in waveform(160 * 20).chunks(160) {
        let p = callee.audio(Codec::Pcmu, chunk);
        net.send_rtp(leg1(call), callee.media, &p);
        net.advance(Duration::from_millis(20));
    }
    assert!(
        sent_count(&net, call.leg(0)) > start,
        "the caller's stream goes on"
    );
    assert!(
        relayed(&net, call.leg(0), start, Codec::Pcmu).is_empty(),
        "music on hold is not relayed"
    );
}

#[test]
fn a_silent_destination_leg_times_out_and_ends_both() {
    let mut net = Net::with_config(menus(""), |c| c.media_timeout = Duration::from_secs(5));
    let mut caller = Caller::new("127.0.0.1:7090", "bridge-10");
    let callee = Callee::new();
    let (call, invite) = dial_desk(&mut net, &mut caller, &callee);
    answer(&mut net, &callee, &invite, Codec::Pcmu);
    caller_talks(&mut net, &mut caller, call, 40);
    let msgs = net.take_sip(callee.addr);
    let bye = request(&msgs, "BYE")
        .expect("the silent leg gets BYE")
        .clone();
    net.send_sip(
        ivr_sip::Transport::Udp,
        callee.addr,
        &callee.respond(&bye, 200, "desk1", None),
    );
    let msgs = net.take_sip(caller.addr);
    let bye = request(&msgs, "BYE").expect("the caller's leg too").clone();
    net.send_sip(ivr_sip::Transport::Udp, caller.addr, &caller.ok_to(&bye));
    assert_eq!(net.ended(call), Some(EndReason::MediaTimeout));
}

/// The scripted DNS: `pbx.example.com` at these UDP targets, best first.
fn with_dns(net: &mut Net, targets: &[&str]) {
    let peers = targets
        .iter()
        .map(|t| ivr_sip::transaction::Peer {
            transport: ivr_sip::Transport::Udp,
            addr: t.parse().unwrap(),
        })
        .collect();
    net.dns.insert("pbx.example.com".into(), peers);
}

#[test]
fn a_destination_dns_finds_nothing_for_is_reported_and_fails_to_on_failure() {
    let mut net = Net::new(menus_at(
        "sip:desk@pbx.example.com",
        "{ play: sales_en }",
        "",
    ));
    let mut caller = Caller::new("127.0.0.1:7095", "bridge-11");
    let call = net.connect(&mut caller);
    net.advance(Duration::from_millis(500));
    net.press(&mut caller, call, Digit::D0);
    assert_eq!(net.located, ["sip:desk@pbx.example.com"], "DNS is asked");
    assert!(net.events.iter().any(|e| matches!(e,
        Event::RouteUnresolved { next_hop, .. } if next_hop == "sip:desk@pbx.example.com")));
    assert!(
        net.events
            .iter()
            .any(|e| matches!(e, Event::TransferFailed { .. }))
    );
    assert!(net.events.iter().rev().any(|e| matches!(e,
        Event::Playing { prompt, .. } if prompt == "sales_en")));
    assert!(
        net.sip.iter().all(|s| s.to == caller.addr),
        "nothing sent elsewhere"
    );
    assert!(!net.media.contains_key(&leg1(call)), "no socket left open");
    assert_eq!(net.ended(call), None);
}

#[test]
fn a_destination_named_by_host_is_located_then_called_at_its_target() {
    let mut net = Net::new(menus_at(
        "sip:desk@pbx.example.com",
        "{ play: sales_en }",
        "",
    ));
    with_dns(&mut net, &[DESK]);
    let mut caller = Caller::new("127.0.0.1:7096", "bridge-dns-1");
    let callee = Callee::new();
    let (call, invite) = dial_desk(&mut net, &mut caller, &callee);
    // RFC 3263: the Request-URI keeps the name; the datagram goes to what DNS gave.
    assert_eq!(invite.uri.to_string(), "sip:desk@pbx.example.com");
    answer(&mut net, &callee, &invite, Codec::Pcmu);
    assert!(
        net.events
            .iter()
            .any(|e| matches!(e, Event::Bridged { call: c, .. } if *c == call))
    );
    // The caller hangs up: the destination's BYE goes to its Contact (an IP).
    let bye = caller.in_dialog("BYE", "", "");
    net.send_sip(ivr_sip::Transport::Udp, caller.addr, &bye);
    let msgs = net.take_sip(callee.addr);
    assert!(request(&msgs, "BYE").is_some(), "the destination gets BYE");
}

#[test]
fn a_silent_dns_target_is_given_up_for_the_next_after_four_seconds() {
    let mut net = Net::new(menus_at(
        "sip:desk@pbx.example.com",
        "{ play: sales_en }",
        "",
    ));
    let dead: SocketAddr = "127.0.0.1:7190".parse().unwrap();
    with_dns(&mut net, &["127.0.0.1:7190", DESK]);
    let mut caller = Caller::new("127.0.0.1:7097", "bridge-dns-2");
    let callee = Callee::new();
    let call = net.connect(&mut caller);
    net.advance(Duration::from_millis(500));
    net.press(&mut caller, call, Digit::D0);
    let first = net.take_sip(dead);
    let first = request(&first, "INVITE")
        .expect("the first target is tried first")
        .clone();
    // The key's first packet chose the transfer; the press took 100 ms of packets since.
    net.advance(Duration::from_millis(3800));
    let early = net.take_sip(callee.addr);
    assert!(
        early.is_empty(),
        "not before {:?}: {early:?} {:?}",
        ivr_engine::outgoing::FAILOVER_AFTER,
        net.events
    );
    net.advance(Duration::from_millis(150));
    let msgs = net.take_sip(callee.addr);
    let invite = request(&msgs, "INVITE")
        .expect("then the next target")
        .clone();
    assert_ne!(
        invite.call_id().unwrap(),
        first.call_id().unwrap(),
        "a fresh INVITE, not a retransmission"
    );
    assert!(net.events.iter().any(|e| matches!(e,
        Event::FailedOver { from, to, .. } if *from == dead && *to == callee.addr)));
    answer(&mut net, &callee, &invite, Codec::Pcmu);
    assert!(
        net.events
            .iter()
            .any(|e| matches!(e, Event::Bridged { call: c, .. } if *c == call))
    );
    // The given-up target wakes up late and rings: it gets CANCEL, not a second bridge.
    let late = Response::to_request(&first, StatusCode::new(180).unwrap());
    let mut late = late;
    let to = first.headers.get(&HeaderName::To).unwrap().to_string();
    late.headers.set(HeaderName::To, format!("{to};tag=late"));
    net.send_sip(ivr_sip::Transport::Udp, dead, &late.to_bytes());
    let msgs = net.take_sip(dead);
    assert!(
        request(&msgs, "CANCEL").is_some(),
        "the late target is cancelled: {msgs:?}"
    );
    assert_eq!(net.ended(call), None);
}

#[test]
fn a_503_from_one_dns_target_moves_on_at_once_and_ringing_keeps_its_limit() {
    let mut net = Net::new(menus_at(
        "sip:desk@pbx.example.com",
        "{ play: sales_en }",
        "",
    ));
    let busy: SocketAddr = "127.0.0.1:7191".parse().unwrap();
    with_dns(&mut net, &["127.0.0.1:7191", DESK]);
    let mut caller = Caller::new("127.0.0.1:7098", "bridge-dns-3");
    let callee = Callee::new();
    let call = net.connect(&mut caller);
    net.advance(Duration::from_millis(500));
    net.press(&mut caller, call, Digit::D0);
    let msgs = net.take_sip(busy);
    let first = request(&msgs, "INVITE").unwrap().clone();
    net.advance(Duration::from_secs(3));
    let r = Response::to_request(&first, StatusCode::SERVICE_UNAVAILABLE);
    net.send_sip(ivr_sip::Transport::Udp, busy, &r.to_bytes());
    let msgs = net.take_sip(busy);
    assert!(request(&msgs, "ACK").is_some(), "the 503 is acknowledged");
    let msgs = net.take_sip(callee.addr);
    let invite = request(&msgs, "INVITE")
        .expect("the next target at once")
        .clone();
    // The desk rings without answering: ringing ends 10 s after the FIRST INVITE.
    let ringing = callee.respond(&invite, 180, "desk1", None);
    net.send_sip(ivr_sip::Transport::Udp, callee.addr, &ringing);
    net.advance(Duration::from_millis(6800));
    assert!(request(&net.take_sip(callee.addr), "CANCEL").is_none());
    net.advance(Duration::from_millis(400));
    let msgs = net.take_sip(callee.addr);
    assert!(
        request(&msgs, "CANCEL").is_some(),
        "the ring timeout counts from the first INVITE: {msgs:?}"
    );
}

/// The caller's answer to the engine's REFER.
fn answer_refer(net: &mut Net, caller: &Caller, status: u16) -> Request {
    let msgs = net.take_sip(caller.addr);
    let refer = request(&msgs, "REFER")
        .expect("the engine sends REFER to the caller")
        .clone();
    let r = Response::to_request(&refer, StatusCode::new(status).unwrap());
    net.send_sip(ivr_sip::Transport::Udp, caller.addr, &r.to_bytes());
    refer
}

/// The caller's NOTIFY of the transfer's progress (RFC 3515 §2.4.5).
/// Returns what the engine sent the caller (its answer, and a BYE if it hung up).
fn notify(net: &mut Net, caller: &mut Caller, sipfrag: &str, state: &str) -> Vec<Message> {
    let n = caller.in_dialog(
        "NOTIFY",
        &format!(
            "Event: refer\r\nSubscription-State: {state}\r\nContent-Type: message/sipfrag\r\n"
        ),
        sipfrag,
    );
    net.send_sip(ivr_sip::Transport::Udp, caller.addr, &n);
    let msgs = net.take_sip(caller.addr);
    assert!(response(&msgs, 200).is_some(), "NOTIFY answered: {msgs:?}");
    msgs
}

#[test]
fn a_caller_transferred_by_refer_is_notified_through_then_hung_up() {
    let desk = format!("sip:desk@{DESK}");
    let mut net = Net::new(menus_mode(&desk, "refer", "{ play: sales_en }", ""));
    let mut caller = Caller::new("127.0.0.1:7098", "refer-1");
    let call = net.connect(&mut caller);
    net.advance(Duration::from_millis(500));
    net.press(&mut caller, call, Digit::D0);
    let refer = answer_refer(&mut net, &caller, 202);
    let refer_to = refer
        .headers
        .get(&HeaderName::Other("Refer-To".into()))
        .expect("Refer-To");
    assert_eq!(
        refer_to,
        format!("<{desk}>"),
        "only the configured destination"
    );
    assert!(
        refer
            .headers
            .get(&HeaderName::Other("Referred-By".into()))
            .is_some()
    );
    let _ = notify(
        &mut net,
        &mut caller,
        "SIP/2.0 100 Trying\r\n",
        "active;expires=60",
    );
    assert_eq!(net.ended(call), None);
    let msgs = notify(
        &mut net,
        &mut caller,
        "SIP/2.0 200 OK\r\n",
        "terminated;reason=noresource",
    );
    let bye = request(&msgs, "BYE")
        .expect("the engine hangs up once transferred")
        .clone();
    net.send_sip(ivr_sip::Transport::Udp, caller.addr, &caller.ok_to(&bye));
    assert!(
        net.events
            .iter()
            .any(|e| matches!(e, Event::Referred { destination, .. } if destination == "desk"))
    );
    assert_eq!(net.ended(call), Some(EndReason::Transferred));
    assert!(
        net.take_sip(DESK.parse().unwrap()).is_empty(),
        "the engine never called the desk"
    );
}

#[test]
fn a_caller_refusing_refer_is_bridged_instead() {
    let desk = format!("sip:desk@{DESK}");
    let mut net = Net::new(menus_mode(&desk, "refer", "{ play: sales_en }", ""));
    let mut caller = Caller::new("127.0.0.1:7099", "refer-2");
    let callee = Callee::new();
    let call = net.connect(&mut caller);
    net.advance(Duration::from_millis(500));
    net.press(&mut caller, call, Digit::D0);
    answer_refer(&mut net, &caller, 405);
    let msgs = net.take_sip(callee.addr);
    let invite = request(&msgs, "INVITE")
        .expect("refused: the engine calls the desk itself")
        .clone();
    answer(&mut net, &callee, &invite, Codec::Pcma);
    assert!(
        net.events
            .iter()
            .any(|e| matches!(e, Event::Bridged { .. }))
    );
    assert_eq!(net.ended(call), None);
}

#[test]
fn a_refer_whose_destination_is_busy_returns_the_caller_to_on_failure() {
    let desk = format!("sip:desk@{DESK}");
    let mut net = Net::new(menus_mode(&desk, "refer", "{ play: sales_en }", ""));
    let mut caller = Caller::new("127.0.0.1:7101", "refer-3");
    let call = net.connect(&mut caller);
    net.advance(Duration::from_millis(500));
    net.press(&mut caller, call, Digit::D0);
    answer_refer(&mut net, &caller, 202);
    let _ = notify(
        &mut net,
        &mut caller,
        "SIP/2.0 486 Busy Here\r\n",
        "terminated;reason=noresource",
    );
    assert!(net.events.iter().any(
        |e| matches!(e, Event::TransferFailed { failure, .. } if failure.kind == FailureKind::Busy)
    ));
    assert!(
        net.events
            .iter()
            .rev()
            .any(|e| matches!(e, Event::Playing { prompt, .. } if prompt == "sales_en"))
    );
    assert_eq!(net.ended(call), None);
}

/// What the proptest does next.
#[derive(Debug, Clone)]
enum Step {
    CallerBye,
    CalleeBye,
    Ringing,
    Answer,
    Busy,
    Wait(u16),
    CallerRtp,
    CalleeRtp,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        Just(Step::CallerBye),
        Just(Step::CalleeBye),
        Just(Step::Ringing),
        Just(Step::Answer),
        Just(Step::Busy),
        (1u16..15_000).prop_map(Step::Wait),
        Just(Step::CallerRtp),
        Just(Step::CalleeRtp),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Whatever order the two legs' events come in, no leg is left alive when the other
    /// ended: every dialog that was set up is ended by a BYE (sent or received), every
    /// pending INVITE gets a final answer or a CANCEL, and the engine forgets the call.
    #[test]
    fn no_leg_outlives_the_other(steps in proptest::collection::vec(step(), 1..12)) {
        let mut net = Net::with_config(menus(""), |c| c.media_timeout = Duration::from_secs(20));
        let mut caller = Caller::new("127.0.0.1:7200", "prop");
        let mut callee = Callee::new();
        let (call, invite) = dial_desk(&mut net, &mut caller, &callee);
        let (mut answered, mut final_sent, mut callee_bye, mut caller_bye) = (false, false, false, false);
        let (mut callee_ended, mut caller_ended, mut rang) = (false, false, false);
        let mut cseq = 1;
        let desk: SocketAddr = DESK.parse().unwrap();
        let pump = |net: &mut Net, callee_ended: &mut bool, caller_ended: &mut bool, caller: &mut Caller| {
            // The peers answer what the engine sends them.
            for m in net.take_sip(desk) {
                if let Message::Request(r) = m {
                    match r.method.as_str() {
                        "BYE" => *callee_ended = true,
                        "CANCEL" => *callee_ended = true,
                        _ => {}
                    }
                    if r.method.as_str() != "ACK" {
                        let ok = Callee::new().respond(&r, 200, "desk1", None);
                        net.send_sip(ivr_sip::Transport::Udp, "127.0.0.1:7100".parse().unwrap(), &ok);
                    }
                }
            }
            for m in net.take_sip(caller.addr) {
                if let Message::Request(r) = m && r.method.as_str() == "BYE" {
                    *caller_ended = true;
                    let ok = caller.ok_to(&r);
                    net.send_sip(ivr_sip::Transport::Udp, caller.addr, &ok);
                }
            }
        };
        for s in steps {
            match s {
                Step::CallerBye if !caller_bye && !caller_ended => {
                    caller_bye = true;
                    let bye = caller.in_dialog("BYE", "", "");
                    net.send_sip(ivr_sip::Transport::Udp, caller.addr, &bye);
                }
                Step::CalleeBye if answered && !callee_bye && !callee_ended => {
                    callee_bye = true;
                    cseq += 1;
                    let bye = callee.in_dialog(&invite, "desk1", "BYE", cseq, "");
                    net.send_sip(ivr_sip::Transport::Udp, callee.addr, &bye);
                }
                Step::Ringing if !final_sent => {
                    rang = true;
                    net.send_sip(ivr_sip::Transport::Udp, callee.addr, &callee.respond(&invite, 180, "desk1", None));
                }
                Step::Answer if !final_sent => {
                    final_sent = true;
                    answered = true;
                    let sdp = callee.sdp(Codec::Pcma, "sendrecv");
                    net.send_sip(ivr_sip::Transport::Udp, callee.addr, &callee.respond(&invite, 200, "desk1", Some(&sdp)));
                }
                Step::Busy if !final_sent => {
                    final_sent = true;
                    net.send_sip(ivr_sip::Transport::Udp, callee.addr, &callee.respond(&invite, 486, "desk1", None));
                }
                Step::Wait(ms) => net.advance(Duration::from_millis(u64::from(ms))),
                Step::CallerRtp => {
                    let p = caller.audio_packet();
                    net.send_rtp(call.leg(0), caller.media, &p);
                }
                Step::CalleeRtp => {
                    let p = callee.audio(Codec::Pcma, &[100; 160]);
                    net.send_rtp(leg1(call), callee.media, &p);
                }
                _ => {}
            }
            pump(&mut net, &mut callee_ended, &mut caller_ended, &mut caller);
            // A pending INVITE whose CANCEL was answered gets its 487.
            if callee_ended && !final_sent {
                final_sent = true;
                net.send_sip(ivr_sip::Transport::Udp, callee.addr, &callee.respond(&invite, 487, "desk1", None));
            }
            if net.ended(call).is_some() {
                // One side ended the call: the other was told (or told us first).
                prop_assert!(caller_bye || caller_ended, "the caller's leg was left up");
                if answered {
                    prop_assert!(callee_bye || callee_ended, "the destination's dialog was left up");
                } else if !final_sent && rang {
                    // RFC 3261 §9.1: CANCEL once a provisional response came (before that it
                    // waits for one).
                    prop_assert!(callee_ended, "the pending INVITE was not cancelled");
                }
            }
        }
        // Let everything time out (media timeout, ring timeout, transactions), peers answering.
        for _ in 0..10 {
            net.advance(Duration::from_secs(10));
            pump(&mut net, &mut callee_ended, &mut caller_ended, &mut caller);
            if callee_ended && !final_sent {
                final_sent = true;
                net.send_sip(ivr_sip::Transport::Udp, callee.addr, &callee.respond(&invite, 487, "desk1", None));
            }
        }
        prop_assert!(net.ended(call).is_some(), "the call ended (media timeout at the latest)");
        prop_assert!(caller_bye || caller_ended, "the caller's leg was left up");
        if answered {
            prop_assert!(callee_bye || callee_ended, "the destination's dialog was left up");
        }
        prop_assert_eq!(net.engine.call_count(), 0);
    }
}

#[test]
fn a_notify_for_no_subscription_of_ours_gets_481_and_allow_names_notify() {
    // RFC 6665 §4.1.3: the engine takes NOTIFY only for a REFER it sent (RFC 3515).
    let mut net = Net::new(menus(""));
    let mut caller = Caller::new("127.0.0.1:7099", "notify-1");
    let _call = net.connect(&mut caller);
    let stray = caller.in_dialog(
        "NOTIFY",
        "Event: refer\r\nSubscription-State: active\r\nContent-Type: message/sipfrag\r\n",
        "SIP/2.0 200 OK",
    );
    net.send_sip(ivr_sip::Transport::Udp, caller.addr, &stray);
    let outside = caller.raw("NOTIFY", "Event: refer\r\n", "");
    net.send_sip(ivr_sip::Transport::Udp, caller.addr, &outside);
    let msgs = net.take_sip(caller.addr);
    let refused: Vec<u16> = msgs
        .iter()
        .filter_map(|m| match m {
            Message::Response(r)
                if r.headers
                    .get(&HeaderName::CSeq)
                    .is_some_and(|c| c.ends_with("NOTIFY")) =>
            {
                Some(r.status.code())
            }
            _ => None,
        })
        .collect();
    assert_eq!(refused, [481, 481], "{msgs:?}");
    assert!(ivr_engine::ALLOW.contains("NOTIFY"));
}

#[test]
fn silent_dns_targets_end_ringing_at_the_ring_timeout_not_at_timer_b() {
    let mut net = Net::new(menus_at(
        "sip:desk@pbx.example.com",
        "{ play: sales_en }",
        "",
    ));
    let (a, b): (SocketAddr, SocketAddr) = (
        "127.0.0.1:7192".parse().unwrap(),
        "127.0.0.1:7193".parse().unwrap(),
    );
    with_dns(&mut net, &["127.0.0.1:7192", "127.0.0.1:7193"]);
    let mut caller = Caller::new("127.0.0.1:7099", "bridge-dns-4");
    let call = net.connect(&mut caller);
    net.advance(Duration::from_millis(500));
    net.press(&mut caller, call, Digit::D0);
    let first = request(&net.take_sip(a), "INVITE").unwrap().clone();
    // Neither target answers anything. Ringing ends 10 s (ring_timeout) after the first
    // INVITE, whatever Timer B (32 s) of the second one says.
    caller_talks(&mut net, &mut caller, call, 52);
    assert!(request(&net.take_sip(b), "INVITE").is_some(), "failed over");
    assert!(
        net.events
            .iter()
            .any(|e| matches!(e, Event::TransferFailed { failure, .. } if failure.kind == FailureKind::NoAnswer)),
        "back to on_failure at the ring timeout: {:?}",
        net.events.iter().filter(|e| !matches!(e, Event::Playing { .. })).collect::<Vec<_>>()
    );
    assert!(net.events.iter().rev().any(|e| matches!(e,
        Event::Playing { prompt, .. } if prompt == "sales_en")));
    // The given-up attempts still CANCEL if their target wakes up.
    let mut late = Response::to_request(&first, StatusCode::new(180).unwrap());
    let to = first.headers.get(&HeaderName::To).unwrap().to_string();
    late.headers.set(HeaderName::To, format!("{to};tag=late"));
    net.send_sip(ivr_sip::Transport::Udp, a, &late.to_bytes());
    assert!(request(&net.take_sip(a), "CANCEL").is_some());
    assert_eq!(net.ended(call), None);
}

#[test]
fn dns_targets_of_the_other_address_family_are_skipped() {
    // The engine speaks IPv4 (SIP socket, Via, SDP c=): an AAAA target cannot be sent to
    // from its socket and would cost FAILOVER_AFTER of silence on every call.
    let mut net = Net::new(menus_at(
        "sip:desk@pbx.example.com",
        "{ play: sales_en }",
        "",
    ));
    with_dns(&mut net, &["[::1]:7100", "[2001:db8::7]:5060", DESK]);
    let mut caller = Caller::new("127.0.0.1:7089", "bridge-dns-5");
    let callee = Callee::new();
    let (call, invite) = dial_desk(&mut net, &mut caller, &callee);
    assert!(
        net.sip.iter().all(|s| s.to.is_ipv4()),
        "nothing sent to an IPv6 target: {:?}",
        net.sip.iter().map(|s| s.to).collect::<Vec<_>>()
    );
    answer(&mut net, &callee, &invite, Codec::Pcmu);
    assert!(
        net.events
            .iter()
            .any(|e| matches!(e, Event::Bridged { call: c, .. } if *c == call))
    );
    // Only targets of the other family: nothing usable, the transfer fails at once.
    let mut net = Net::new(menus_at(
        "sip:desk@pbx.example.com",
        "{ play: sales_en }",
        "",
    ));
    with_dns(&mut net, &["[::1]:7100"]);
    let mut caller = Caller::new("127.0.0.1:7088", "bridge-dns-6");
    let call = net.connect(&mut caller);
    net.advance(Duration::from_millis(500));
    net.press(&mut caller, call, Digit::D0);
    assert!(net.sip.iter().all(|s| s.to == caller.addr), "nothing sent");
    assert!(
        net.events
            .iter()
            .any(|e| matches!(e, Event::TransferFailed { .. }))
    );
    assert!(!net.media.contains_key(&leg1(call)), "no socket left open");
}
