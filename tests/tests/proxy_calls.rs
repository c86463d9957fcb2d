//! Calls through a record-routing proxy, in virtual time: Record-Route copied into the
//! dialog-creating responses (RFC 3261 §12.1.1), the engine's BYE following the route set
//! (§12.2.1.1, loose and strict routers), OPTIONS as a health probe, 100 Trying first, and
//! the two RFC 4475 messages a proxy may pass on (`insuf`, `sdp01`).

use ivr_engine::{EndReason, Event, Input, Output};
use ivr_sip::Transport;
use ivr_sip::header::HeaderName;
use ivr_sip::message::CoreHeaders;
use ivr_tests::caller::{Caller, Net, request, response};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

fn demo() -> Arc<ivr_menus::Menus> {
    Arc::new(ivr_server::config::load_demo().expect("demo compiles"))
}

/// The proxy in front of the engine: every message of the caller comes from here.
const PROXY: &str = "127.0.0.1:7100";

/// Two Record-Route lines, the first with two values, as three proxies would add them.
const RECORD_ROUTE: &str = "Record-Route: <sip:127.0.0.1:7100;lr;ftag=x>, <sip:p2.example.com;lr>\r\n\
                            Record-Route: <sip:127.0.0.1:7300;lr>\r\n";

fn proxy() -> SocketAddr {
    PROXY.parse().unwrap()
}

/// `msg` with header lines `extra` added after Max-Forwards.
fn with_headers(msg: Vec<u8>, extra: &str) -> Vec<u8> {
    String::from_utf8(msg)
        .unwrap()
        .replacen(
            "Max-Forwards: 70\r\n",
            &format!("Max-Forwards: 70\r\n{extra}"),
            1,
        )
        .into_bytes()
}

fn record_routes(r: &ivr_sip::Response) -> Vec<String> {
    r.headers
        .get_all(&HeaderName::RecordRoute)
        .map(str::to_string)
        .collect()
}

const EXPECTED_RR: [&str; 2] = [
    "<sip:127.0.0.1:7100;lr;ftag=x>, <sip:p2.example.com;lr>",
    "<sip:127.0.0.1:7300;lr>",
];

/// The SIP messages the engine outputs now, with their transport and destination, unparsed
/// (other outputs are dropped).
fn sip_outputs(net: &mut Net) -> Vec<(Transport, SocketAddr, Vec<u8>)> {
    let mut sent = Vec::new();
    loop {
        match net.engine.poll_output() {
            Output::Timeout(_) => return sent,
            Output::Sip {
                transport,
                to,
                data,
                ..
            } => sent.push((transport, to, data)),
            _ => {}
        }
    }
}

/// Dial through the proxy with `rr` Record-Route lines; returns the call.
fn connect_via_proxy(net: &mut Net, caller: &mut Caller, rr: &str) -> ivr_engine::CallHandle {
    let invite = with_headers(caller.invite(true), rr);
    net.send_sip(Transport::Udp, proxy(), &invite);
    let msgs = net.take_sip(proxy());
    let ok = response(&msgs, 200).expect("200 OK").clone();
    caller.on_response(&ok);
    let ack = with_headers(caller.ack(None), "Route: <sip:127.0.0.1:7300;lr>\r\n");
    net.send_sip(Transport::Udp, proxy(), &ack);
    net.last_call().expect("a call")
}

#[test]
fn record_route_is_copied_into_180_200_and_retransmissions() {
    let mut net = Net::with_config(demo(), |c| c.answer_delay = Duration::from_millis(500));
    let mut caller = Caller::new("127.0.0.1:7101", "rr");
    let invite = with_headers(caller.invite(true), RECORD_ROUTE);
    net.send_sip(Transport::Udp, proxy(), &invite);
    let msgs = net.take_sip(proxy());
    let trying = response(&msgs, 100).expect("100 Trying");
    assert!(record_routes(trying).is_empty(), "a 100 creates no dialog");
    let ringing = response(&msgs, 180).expect("180 Ringing");
    assert!(ringing.party_to().unwrap().tag().is_some());
    assert_eq!(record_routes(ringing), EXPECTED_RR);
    net.advance(Duration::from_millis(500));
    let ok = response(&net.take_sip(proxy()), 200)
        .expect("200 OK")
        .clone();
    assert_eq!(record_routes(&ok), EXPECTED_RR);
    // No ACK yet: the 2xx is retransmitted (Timer G), Record-Route and all.
    net.advance(Duration::from_millis(600));
    let again = net.take_sip(proxy());
    let retransmitted = response(&again, 200).expect("200 retransmitted");
    assert_eq!(record_routes(retransmitted), EXPECTED_RR);
    assert!(
        net.take_sip(caller.addr).is_empty(),
        "nothing goes around the proxy"
    );
}

#[test]
fn the_engines_bye_follows_the_route_set_to_the_proxy() {
    let mut net = Net::new(demo());
    let mut caller = Caller::new("127.0.0.1:7102", "bye");
    let call = connect_via_proxy(&mut net, &mut caller, RECORD_ROUTE);
    net.advance(Duration::from_millis(100));
    net.engine.handle_input(net.now, Input::Shutdown);
    net.pump();
    assert!(
        net.take_sip(caller.addr).is_empty(),
        "not straight to the caller"
    );
    let msgs = net.take_sip(proxy());
    let bye = request(&msgs, "BYE").expect("BYE to the proxy").clone();
    // Loose routing: Request-URI = the caller's Contact, the route set in Route, in order.
    assert_eq!(bye.uri.to_string(), format!("sip:caller@{}", caller.addr));
    let routes: Vec<&str> = bye.headers.get_all(&HeaderName::Route).collect();
    assert_eq!(
        routes,
        [
            "<sip:127.0.0.1:7100;lr;ftag=x>",
            "<sip:p2.example.com;lr>",
            "<sip:127.0.0.1:7300;lr>"
        ]
    );
    assert!(bye.top_via().unwrap().transport == "UDP");
    net.send_sip(Transport::Udp, proxy(), &caller.ok_to(&bye));
    assert_eq!(net.ended(call), Some(EndReason::Shutdown));
}

#[test]
fn a_tcp_route_is_reached_over_tcp() {
    let mut net = Net::new(demo());
    let mut caller = Caller::new("127.0.0.1:7103", "tcp-route");
    connect_via_proxy(
        &mut net,
        &mut caller,
        "Record-Route: <sip:127.0.0.1:7105;transport=tcp;lr>\r\n",
    );
    net.engine.handle_input(net.now, Input::Shutdown);
    let sent = sip_outputs(&mut net);
    let (transport, to, data) = sent
        .iter()
        .find(|(_, _, d)| d.starts_with(b"BYE "))
        .expect("a BYE");
    assert_eq!(
        (*transport, to.to_string()),
        (Transport::Tcp, "127.0.0.1:7105".into())
    );
    assert!(String::from_utf8_lossy(data).contains("Via: SIP/2.0/TCP "));
}

#[test]
fn a_strict_router_gets_the_request_uri_and_the_log_says_so() {
    let mut net = Net::new(demo());
    let mut caller = Caller::new("127.0.0.1:7104", "strict");
    connect_via_proxy(
        &mut net,
        &mut caller,
        "Record-Route: <sip:127.0.0.1:7100>, <sip:127.0.0.1:7300;lr>\r\n",
    );
    net.engine.handle_input(net.now, Input::Shutdown);
    net.pump();
    let bye = request(&net.take_sip(proxy()), "BYE")
        .expect("BYE to the strict router")
        .clone();
    assert_eq!(bye.uri.to_string(), "sip:127.0.0.1:7100");
    let routes: Vec<&str> = bye.headers.get_all(&HeaderName::Route).collect();
    assert_eq!(
        routes,
        [
            "<sip:127.0.0.1:7300;lr>".to_string(),
            format!("<sip:caller@{}>", caller.addr)
        ]
    );
    assert!(net.events.iter().any(
        |e| matches!(e, Event::StrictRoute { next_hop, .. } if next_hop == "sip:127.0.0.1:7100")
    ));
}

#[test]
fn a_reinvite_answer_carries_record_route() {
    let mut net = Net::new(demo());
    let mut caller = Caller::new("127.0.0.1:7106", "reinvite");
    connect_via_proxy(&mut net, &mut caller, RECORD_ROUTE);
    net.advance(Duration::from_millis(100));
    let offer = caller.offer();
    let reinvite = with_headers(
        caller.in_dialog("INVITE", "Content-Type: application/sdp\r\n", &offer),
        RECORD_ROUTE,
    );
    net.send_sip(Transport::Udp, proxy(), &reinvite);
    let ok = response(&net.take_sip(proxy()), 200)
        .expect("200 to the re-INVITE")
        .clone();
    assert_eq!(record_routes(&ok), EXPECTED_RR);
}

/// The `100 Trying` to an INVITE is the first thing the engine outputs for it, before it
/// asks for media or does anything else, even with 200 calls playing prompts.
#[test]
fn trying_comes_first_even_under_load() {
    let mut net = Net::new(demo());
    let mut callers: Vec<Caller> = (0..200)
        .map(|i| Caller::new(&format!("127.0.0.1:{}", 8000 + i), &format!("load-{i}")))
        .collect();
    for c in &mut callers {
        net.connect(c);
    }
    net.advance(Duration::from_millis(200));
    let mut late = Caller::new("127.0.0.1:7107", "late");
    let invite = late.invite(true);
    net.engine.handle_input(
        net.now,
        Input::Sip {
            transport: Transport::Udp,
            from: late.addr,
            data: &invite,
        },
    );
    match net.engine.poll_output() {
        Output::Sip { to, data, .. } => {
            assert_eq!(to, late.addr);
            assert!(
                data.starts_with(b"SIP/2.0 100 Trying\r\n"),
                "{}",
                String::from_utf8_lossy(&data)
            );
        }
        other => panic!("100 Trying first, got {other:?}"),
    }
    net.pump();
    assert!(response(&net.take_sip(late.addr), 200).is_some());
}

#[test]
fn options_answer_503_while_draining_and_calls_go_on() {
    let mut net = Net::new(demo());
    let mut a = Caller::new("127.0.0.1:7108", "drain");
    let call = net.connect(&mut a);
    let mut probe = Caller::new(PROXY, "probe");
    let options = probe.raw("OPTIONS", "", "");
    net.send_sip(Transport::Udp, proxy(), &options);
    assert!(response(&net.take_sip(proxy()), 200).is_some(), "serving");
    net.engine.handle_input(net.now, Input::Drain);
    net.pump();
    let options = probe.raw("OPTIONS", "", "");
    net.send_sip(Transport::Udp, proxy(), &options);
    let msgs = net.take_sip(proxy());
    let r = response(&msgs, 503).expect("503 while draining");
    assert!(r.headers.get(&HeaderName::RetryAfter).is_some());
    let mut b = Caller::new("127.0.0.1:7109", "refused");
    let invite = b.invite(true);
    net.send_sip(Transport::Udp, b.addr, &invite);
    assert!(response(&net.take_sip(b.addr), 503).is_some());
    // The call in progress goes on until its caller hangs up.
    net.advance(Duration::from_secs(2));
    assert!(request(&net.take_sip(a.addr), "BYE").is_none());
    assert_eq!(net.ended(call), None);
    let bye = a.in_dialog("BYE", "", "");
    net.send_sip(Transport::Udp, a.addr, &bye);
    assert_eq!(net.ended(call), Some(EndReason::CallerHungUp));
    assert!(net.events.contains(&Event::Drained));
}

fn torture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../engine/sip/tests/data/rfc4475")
        .join(name);
    std::fs::read(path).unwrap()
}

/// RFC 4475 §3.3.1 `insuf` (no Call-ID, From, To): 400 naming them. §3.3.15 `sdp01` (Accept
/// excludes application/sdp): 406 saying why, with a Warning (RFC 3261 §20.43).
#[test]
fn insuf_gets_400_naming_the_headers_and_sdp01_gets_406() {
    let mut net = Net::new(demo());
    let from: SocketAddr = "127.0.0.1:7110".parse().unwrap();
    // The 400 lacks the headers the INVITE lacked, so it is read as text.
    let insuf = torture("insuf.dat");
    net.engine.handle_input(
        net.now,
        Input::Sip {
            transport: Transport::Udp,
            from,
            data: &insuf,
        },
    );
    let (_, to, data) = sip_outputs(&mut net)
        .into_iter()
        .next()
        .expect("an answer to insuf");
    assert_eq!(to, from);
    let text = String::from_utf8(data).unwrap();
    assert!(
        text.starts_with("SIP/2.0 400 Bad Request (missing Call-ID, From, To)\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nVia: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf"));
    assert!(text.contains("\r\nCSeq: 193942 INVITE\r\n"));
    net.pump();
    net.send_sip(Transport::Udp, from, &torture("sdp01.dat"));
    // Its Via has no port and no rport: the answer goes to port 5060 of the source's
    // address (RFC 3261 §18.2.2).
    let msgs = net.take_sip("127.0.0.1:5060".parse().unwrap());
    assert!(response(&msgs, 200).is_none());
    let r = response(&msgs, 406).expect("406 to sdp01");
    assert_eq!(r.reason, "Not Acceptable (Accept excludes application/sdp)");
    assert_eq!(r.headers.get(&HeaderName::Accept), Some("application/sdp"));
    assert!(
        r.headers
            .get(&HeaderName::Other("Warning".into()))
            .is_some_and(|w| w.starts_with("399 "))
    );
    assert!(net.last_call().is_none(), "no call was started");
}
