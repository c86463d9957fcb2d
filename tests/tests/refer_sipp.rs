//! Interop, black box: `ivr_sip::refer::ReferTransfer` transfers a real SIPp caller.
//!
//! A SIPp UAC calls a tiny answering side built here from the crate's own pieces (one UDP
//! socket on 127.0.0.1, the real clock, a transaction layer and the dialog from answering the
//! INVITE, RFC 3261 §12.1.1), which then sends the REFER. `refer_accept.xml` checks the
//! REFER's Refer-To and Referred-By, answers 202 and reports NOTIFY 100 then NOTIFY 200
//! (terminated) with `Event: refer;id=<the REFER's CSeq>`; `refer_refuse.xml` answers 405.
//! Either way the answering side ends the call with BYE, which the scenario waits for. No
//! engine involved: this proves the REFER side alone talks to a foreign implementation. The
//! same scenarios drive the engine's own REFER transfers in `transfer_sipp.rs`.

use ivr_sip::dialog::Dialog;
use ivr_sip::digest::RandomSource;
use ivr_sip::message::CoreHeaders;
use ivr_sip::parse::{Framing, parse_message};
use ivr_sip::refer::{ReferConfig, ReferEvent, ReferTransfer};
use ivr_sip::route::socket_of;
use ivr_sip::transaction::{Peer, TimerConfig, TransactionLayer, TxEvent};
use ivr_sip::{HeaderName, Message, Method, NameAddr, Response, StatusCode, Transport, Uri};
use ivr_tests::sipp::{self, scenario};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// The engine's own generator, as the crate's random source (branches only).
struct Rng(ivr_engine::rng::Rng);
impl RandomSource for Rng {
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
}

/// What one call did.
struct Outcome {
    events: Vec<ReferEvent>,
    /// The REFER as sent.
    refer: Option<ivr_sip::Request>,
    /// Whether our BYE got its 200.
    bye_answered: bool,
    sipp: sipp::Run,
}

/// Answer one SIPp call running `scenario_name`, transfer it, hang up after the outcome.
fn transfer(scenario_name: &str) -> Outcome {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let local = socket.local_addr().expect("address");
    let file = scenario(scenario_name);
    let sipp = std::thread::spawn(move || sipp::run(local, &["-sf", file, "-m", "1"]));

    let mut rng = Rng(ivr_engine::rng::Rng::new(u64::from(std::process::id())));
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let mut dialog: Option<Dialog> = None;
    let mut refer: Option<ReferTransfer> = None;
    let mut peer: Option<Peer> = None;
    let mut events = Vec::new();
    let mut refer_sent = None;
    let mut bye_key = None;
    let mut invite_key = None;
    let mut bye_answered = false;
    let mut buf = vec![0u8; 65_535];
    let give_up = Instant::now() + Duration::from_secs(60);
    let via = |branch: u64| format!("SIP/2.0/UDP {local};branch=z9hG4bK{branch:016x};rport");
    loop {
        let now = Instant::now();
        // Out: the transaction layer's messages, then the REFER's.
        while let Some((to, m)) = layer.poll_transmit() {
            assert_eq!(to.addr.ip(), local.ip(), "loopback only");
            socket.send_to(&m.to_bytes(), to.addr).expect("send");
        }
        if let Some(t) = refer.as_mut() {
            while let Some(tx) = t.poll_transmit() {
                let (addr, _) = socket_of(&tx.next_hop).expect("an IP literal next hop");
                assert_eq!(addr.ip(), local.ip(), "loopback only");
                if let Message::Request(r) = &tx.message {
                    refer_sent.get_or_insert_with(|| r.clone());
                }
                socket.send_to(&tx.message.to_bytes(), addr).expect("send");
            }
            while let Some(e) = t.poll_event() {
                let done = matches!(
                    e,
                    ReferEvent::Succeeded
                        | ReferEvent::Refused(_)
                        | ReferEvent::Failed(_)
                        | ReferEvent::TimedOut
                );
                events.push(e);
                if done && let (Some(d), Some(p)) = (dialog.as_mut(), peer) {
                    // What the engine does after a transfer (or, here, after a refusal
                    // instead of bridging): end our leg.
                    let bye = d.request(Method::Bye, via(rng.next_u64()));
                    bye_key = layer.send_request(now, bye, p);
                }
            }
        }
        if sipp.is_finished() {
            break;
        }
        assert!(now < give_up, "SIPp did not finish");
        let wait = refer
            .as_ref()
            .and_then(|t| t.poll_timeout())
            .into_iter()
            .chain(layer.poll_timeout())
            .min()
            .map_or(Duration::from_millis(50), |d| {
                d.saturating_duration_since(now)
            })
            .clamp(Duration::from_millis(1), Duration::from_millis(50));
        socket.set_read_timeout(Some(wait)).expect("timeout");
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                let Ok(m) = parse_message(&buf[..n], Framing::Datagram) else {
                    panic!(
                        "unparsable from SIPp: {}",
                        String::from_utf8_lossy(&buf[..n])
                    );
                };
                let now = Instant::now();
                let from = Peer {
                    transport: Transport::Udp,
                    addr: from,
                };
                match m {
                    Message::Response(r)
                        if refer.as_ref().is_some_and(|t| t.matches_response(&r)) =>
                    {
                        if let Some(t) = refer.as_mut() {
                            t.handle_response(now, r);
                        }
                    }
                    m => layer.handle_message(now, m, from),
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("recv: {e}"),
        }
        let now = Instant::now();
        layer.handle_timeout(now);
        if let Some(t) = refer.as_mut() {
            t.handle_timeout(now);
        }
        while let Some(ev) = layer.poll_event() {
            match ev {
                TxEvent::Request {
                    key,
                    request,
                    peer: from,
                } => match request.method {
                    Method::Invite => {
                        let tag = "ivrtag".into();
                        let d = Dialog::from_invite(&request, &tag, 100).expect("dialog");
                        let mut ok = Response::to_request(&request, StatusCode::OK);
                        ok.headers.set(HeaderName::To, d.local.to_string());
                        ok.headers
                            .push(HeaderName::Contact, format!("<sip:ivr@{local}>"));
                        ok.headers.push(HeaderName::ContentType, "application/sdp");
                        ok.body = format!(
                            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
                             t=0 0\r\nm=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
                            local.port() + 2
                        )
                        .into_bytes();
                        layer.respond(now, &key, ok);
                        invite_key = Some(key);
                        dialog = Some(d);
                        peer = Some(from);
                    }
                    Method::Ack => {
                        if let Some(d) = dialog.as_mut()
                            && refer.is_none()
                        {
                            // §13.3.1.4: the ACK for our 2xx stops its retransmissions.
                            if let Some(k) = &invite_key {
                                layer.ack_received(now, k);
                            }
                            let config = ReferConfig::new(
                                Uri::parse("sip:desk@127.0.0.1:5999").expect("uri"),
                                NameAddr::parse("<sip:ivr@127.0.0.1>", HeaderName::From)
                                    .expect("referred-by"),
                                Uri::parse(&format!("sip:ivr@{local}")).expect("contact"),
                                Transport::Udp,
                                local.to_string(),
                            );
                            refer = Some(ReferTransfer::new(now, d, config, &mut rng));
                        }
                    }
                    Method::Notify => {
                        let t = refer.as_mut().expect("a NOTIFY after our REFER");
                        assert!(t.matches_notify(&request), "{request:?}");
                        if let Some(d) = dialog.as_mut() {
                            d.accept_remote_seq(&request).expect("CSeq in order");
                        }
                        let answer = t.handle_notify(now, &request);
                        layer.respond(now, &key, answer);
                    }
                    other => panic!("unexpected {other} from SIPp"),
                },
                TxEvent::Response { key, response }
                    if Some(&key) == bye_key.as_ref() && response.status == StatusCode::OK =>
                {
                    bye_answered = true;
                }
                _ => {}
            }
        }
    }
    Outcome {
        events,
        refer: refer_sent,
        bye_answered,
        sipp: sipp.join().expect("sipp thread"),
    }
}

#[test]
fn sipp_accepts_the_refer_and_reports_the_transfer() {
    let out = transfer("refer_accept.xml");
    assert_eq!(out.sipp.code, 0, "SIPp failed:\n{}", out.sipp.output);
    assert_eq!(sipp::stat(&out.sipp.output, "Successful call"), Some(1));
    assert_eq!(
        out.events,
        [
            ReferEvent::Accepted,
            ReferEvent::Progress(StatusCode::TRYING),
            ReferEvent::Succeeded,
        ]
    );
    let refer = out.refer.expect("a REFER was sent");
    assert_eq!(
        refer.headers.get(&HeaderName::from_wire("Refer-To")),
        Some("<sip:desk@127.0.0.1:5999>")
    );
    assert_eq!(
        refer.cseq().expect("CSeq").seq,
        101,
        "the dialog's next CSeq"
    );
    assert!(out.bye_answered, "SIPp answered our BYE");
}

#[test]
fn sipp_refuses_the_refer_with_405() {
    let out = transfer("refer_refuse.xml");
    assert_eq!(out.sipp.code, 0, "SIPp failed:\n{}", out.sipp.output);
    assert_eq!(
        out.events,
        [ReferEvent::Refused(StatusCode::METHOD_NOT_ALLOWED)]
    );
    assert!(out.bye_answered, "SIPp answered our BYE");
}
