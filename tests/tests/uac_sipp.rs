//! Interop, black box: `ivr_sip::uac::OutgoingCall` places a call to a real SIPp UAS that
//! challenges the INVITE with a 401 and checks the digest answer with SIPp's own code
//! (`verifyauth`, MD5, qop=auth), then rings, answers and takes our BYE.
//!
//! The machine is driven by a tiny UDP loop here (one socket on 127.0.0.1, the real clock):
//! no engine involved, so this proves the SIP side alone talks to a foreign implementation.

use ivr_sip::digest::{Credentials, RandomSource};
use ivr_sip::parse::{Framing, parse_message};
use ivr_sip::route::socket_of;
use ivr_sip::transaction::TimerConfig;
use ivr_sip::uac::{FailureCause, OutgoingCall, OutgoingConfig, UacEvent};
use ivr_sip::{CSeq, HeaderName, Message, Method, NameAddr, Transport, Uri};
use ivr_tests::sipp::{self, scenario};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

struct Splitmix(u64);
impl RandomSource for Splitmix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// What one call did: the machine's events, the responses received, SIPp's run.
struct Outcome {
    events: Vec<UacEvent>,
    responses: Vec<(u16, Method)>,
    sipp: sipp::Run,
}

/// Call the SIPp UAS with `password`, hang up once answered, and run until SIPp exits.
fn call(password: &str) -> Outcome {
    let mut uas = sipp::spawn_uas(&["-sf", scenario("uas_digest.xml"), "-m", "1"]);
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let local = socket.local_addr().expect("address");
    let to = format!("<sip:service@{}>", uas.addr);
    let config = OutgoingConfig {
        request_uri: Uri::parse(&format!("sip:service@{}", uas.addr)).expect("uri"),
        to: NameAddr::parse(&to, HeaderName::To).expect("to"),
        from: NameAddr::parse("<sip:ivr@127.0.0.1>", HeaderName::From).expect("from"),
        local_tag: format!("t{}", std::process::id()).into(),
        call_id: format!("uac-sipp-{}-{password}@127.0.0.1", std::process::id()).into(),
        cseq: 1,
        contact: Uri::parse(&format!("sip:ivr@{local}")).expect("contact"),
        transport: Transport::Udp,
        sent_by: local.to_string(),
        route: Vec::new(),
        sdp_offer: Some(
            format!(
                "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                 m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
                local.port() + 2
            )
            .into_bytes(),
        ),
        credentials: Some(Credentials {
            username: "ivr".into(),
            password: password.into(),
        }),
        extra_headers: Vec::new(),
        timers: TimerConfig::default(),
        session_timer: None,
    };
    let mut uac = OutgoingCall::new(
        Instant::now(),
        config,
        Box::new(Splitmix(u64::from(std::process::id()))),
    );
    let mut events = Vec::new();
    let mut responses = Vec::new();
    let mut buf = vec![0u8; 65_535];
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        while let Some(t) = uac.poll_transmit() {
            let (addr, _) = socket_of(&t.next_hop).expect("an IP literal next hop");
            assert_eq!(addr.ip(), local.ip(), "loopback only");
            socket.send_to(&t.message.to_bytes(), addr).expect("send");
        }
        while let Some(e) = uac.poll_event() {
            if matches!(e, UacEvent::Answered { .. }) {
                assert!(uac.bye(Instant::now()));
            }
            events.push(e);
        }
        if let Some(run) = uas.try_finish() {
            return Outcome {
                events,
                responses,
                sipp: run,
            };
        }
        let now = Instant::now();
        assert!(now < give_up, "SIPp did not finish:\n{}", uas.output());
        // Wake for the machine's next deadline, and at least every 100 ms to see SIPp exit.
        let wait = uac
            .poll_timeout()
            .map_or(Duration::from_millis(100), |d| {
                d.saturating_duration_since(now)
            })
            .clamp(Duration::from_millis(1), Duration::from_millis(100));
        socket.set_read_timeout(Some(wait)).expect("timeout");
        match socket.recv_from(&mut buf) {
            Ok((n, _)) => {
                if let Ok(Message::Response(r)) = parse_message(&buf[..n], Framing::Datagram) {
                    let method = r
                        .headers
                        .get(&HeaderName::CSeq)
                        .and_then(|c| CSeq::parse(c).ok());
                    responses.push((r.status.code(), method.map_or(Method::Invite, |c| c.method)));
                    uac.handle_response(Instant::now(), r);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("recv: {e}"),
        }
        uac.handle_timeout(Instant::now());
    }
}

#[test]
fn sipp_challenges_verifies_our_digest_and_answers() {
    let out = call("secret");
    assert_eq!(out.sipp.code, 0, "SIPp failed:\n{}", out.sipp.output);
    assert_eq!(sipp::stat(&out.sipp.output, "Successful call"), Some(1));
    assert!(
        out.events
            .iter()
            .any(|e| matches!(e, UacEvent::Authenticating { status, realm } if status.code() == 401 && realm == "sipp.test")),
        "{:?}",
        out.events
    );
    assert!(
        out.events
            .iter()
            .any(|e| matches!(e, UacEvent::Answered { .. })),
        "{:?}",
        out.events
    );
    assert!(out.responses.contains(&(180, Method::Invite)));
    assert!(
        out.responses.contains(&(200, Method::Bye)),
        "SIPp answered our BYE: {:?}",
        out.responses
    );
}

/// The negative control: with the wrong password SIPp's check fails, it answers 403, and the
/// machine reports a rejected call (so the test above is not passing by accident).
#[test]
fn sipp_refuses_a_wrong_password() {
    let out = call("wrong");
    assert_ne!(out.sipp.code, 0, "SIPp's scenario fails on a bad digest");
    let failed: Vec<_> = out
        .events
        .iter()
        .filter_map(|e| match e {
            UacEvent::Failed(f) => Some(f.cause),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 1, "{:?}", out.events);
    assert!(
        matches!(failed[0], FailureCause::Status(s) if s.code() == 403),
        "{failed:?}"
    );
    assert!(
        !out.events
            .iter()
            .any(|e| matches!(e, UacEvent::Answered { .. }))
    );
}
