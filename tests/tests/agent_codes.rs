//! Agents' feature codes in virtual time: an INVITE to `*41` / `*42` / `*43` is challenged
//! with digest like a REGISTER, and once answered logs the agent in, out, or pauses it; the
//! engine answers, beeps and hangs up. A spoofed From without credentials changes nothing.
//! Also `login: manual` (registration only makes the agent reachable) and staff requests
//! through `Engine::agent_request`, and the live queue view.

use ivr_audio::Digit;
use ivr_engine::agent_desk::AgentAction;
use ivr_engine::{EndReason, Event};
use ivr_queues::AgentState;
use ivr_sip::Transport;
use ivr_sip::digest::{Algorithm, Challenge, Credentials, answer, ha1};
use ivr_sip::header::HeaderName;
use ivr_sip::message::{CoreHeaders, Message, Request, Response};
use ivr_tests::caller::{Caller, Net, request, response};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

fn menus(login: &str) -> Arc<ivr_menus::Menus> {
    let alice = format!(
        "  alice:\n    password: \"ha1:ivr:{}:{}\"\n    queues: {{ sales: 0 }}\n    login: {login}\n",
        ha1(Algorithm::Md5, "alice", "ivr", "pw-alice"),
        ha1(Algorithm::Sha256, "alice", "ivr", "pw-alice")
    );
    let yaml = format!(
        "entry: main\nprompts: {{ hi: {{ silence: 1 }} }}\nmenus:\n  main:\n    prompt: hi\n    timeout: 6\n    retries: 5\n    options: {{ \"1\": {{ queue: sales }} }}\nqueues:\n  sales: {{ agent_timeout: 10, max_wait: 120 }}\nagents:\n{alice}"
    );
    Arc::new(ivr_menus::compile(&yaml, &mut |_| Err("no files".into())).expect("config compiles"))
}

const PHONE: &str = "127.0.0.1:7300";

fn phone() -> SocketAddr {
    PHONE.parse().unwrap()
}

/// A request from the phone to `uri`, for the feature call `cid`.
fn req(
    method: &str,
    uri: &str,
    cid: &str,
    cseq: u32,
    branch: &str,
    to_tag: Option<&str>,
    extra: &str,
) -> Vec<u8> {
    let body = if method == "INVITE" {
        "v=0\r\no=p 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 8300 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
            .to_string()
    } else {
        String::new()
    };
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    let tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let method_cseq = if method == "ACK" { "ACK" } else { method };
    format!(
        "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {PHONE};branch={branch};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=ph-{cid}\r\nTo: <{uri}>{tag}\r\n\
         Call-ID: {cid}\r\nCSeq: {cseq} {method_cseq}\r\nContact: <sip:alice@{PHONE}>\r\n\
         {extra}{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn final_response(msgs: &[Message]) -> Option<Response> {
    msgs.iter().find_map(|m| match m {
        Message::Response(r) if r.status.code() >= 200 => Some(r.clone()),
        _ => None,
    })
}

fn to_tag(r: &Response) -> Option<String> {
    r.party_to().ok().and_then(|t| t.tag().map(str::to_string))
}

/// Dial `code` from the phone: the first INVITE is challenged (401, ACKed); with a
/// password, answer the challenge. Returns the final response to the answered INVITE (or
/// the 401 when no password is given).
fn dial(net: &mut Net, code: &str, cid: &str, password: Option<&str>) -> Response {
    dial_answering_for(net, code, code, cid, password)
}

/// [`dial`], with the digest answer computed for `answered` (a code other than the one
/// dialled: an answer moved to another Request-URI).
fn dial_answering_for(
    net: &mut Net,
    code: &str,
    answered: &str,
    cid: &str,
    password: Option<&str>,
) -> Response {
    let uri = format!("sip:{code}@127.0.0.1");
    net.send_sip(
        Transport::Udp,
        phone(),
        &req("INVITE", &uri, cid, 1, &format!("z9hG4bK{cid}1"), None, ""),
    );
    let msgs = net.take_sip(phone());
    let challenge = final_response(&msgs).expect("an answer");
    assert_eq!(challenge.status.code(), 401, "challenged: {msgs:?}");
    let tag = to_tag(&challenge);
    net.send_sip(
        Transport::Udp,
        phone(),
        &req(
            "ACK",
            &uri,
            cid,
            1,
            &format!("z9hG4bK{cid}1"),
            tag.as_deref(),
            "",
        ),
    );
    let Some(password) = password else {
        return challenge;
    };
    let c = challenge
        .headers
        .get_all(&HeaderName::from_wire("WWW-Authenticate"))
        .map(|v| Challenge::parse(v).unwrap())
        .find(|c| c.algorithm == Algorithm::Sha256)
        .expect("a SHA-256 challenge");
    let creds = Credentials {
        username: "alice".into(),
        password: password.into(),
    };
    let a = answer(
        &c,
        &creds,
        "INVITE",
        &format!("sip:{answered}@127.0.0.1"),
        Some(("c0ffee".into(), 1)),
    );
    let auth = format!("Authorization: {a}\r\n");
    net.send_sip(
        Transport::Udp,
        phone(),
        &req(
            "INVITE",
            &uri,
            cid,
            2,
            &format!("z9hG4bK{cid}2"),
            None,
            &auth,
        ),
    );
    net.advance(Duration::from_millis(10));
    let msgs = net.take_sip(phone());
    let last = final_response(&msgs).expect("a final answer");
    if last.status.is_success() {
        let tag = to_tag(&last);
        net.send_sip(
            Transport::Udp,
            phone(),
            &req(
                "ACK",
                &uri,
                cid,
                2,
                &format!("z9hG4bK{cid}3"),
                tag.as_deref(),
                "",
            ),
        );
    } else {
        net.send_sip(
            Transport::Udp,
            phone(),
            &req(
                "ACK",
                &uri,
                cid,
                2,
                &format!("z9hG4bK{cid}2"),
                to_tag(&last).as_deref(),
                "",
            ),
        );
    }
    last
}

/// After a feature call was answered: the beeps play, then the engine hangs up (BYE).
fn hung_up_after_beeps(net: &mut Net) {
    net.advance(Duration::from_secs(2));
    let msgs = net.take_sip(phone());
    let bye: Request = request(&msgs, "BYE").expect("the engine hangs up").clone();
    let ok = Response::to_request(&bye, ivr_sip::message::StatusCode::OK).to_bytes();
    net.send_sip(Transport::Udp, phone(), &ok);
    let call = net.last_call().unwrap();
    assert_eq!(net.ended(call), Some(EndReason::MenuHangup));
}

fn state(net: &Net) -> AgentState {
    net.engine
        .agent_states()
        .into_iter()
        .find(|(a, _)| a == "alice")
        .map(|(_, s)| s)
        .expect("a known agent")
}

/// REGISTER alice from the phone (digest, SHA-256).
fn register(net: &mut Net) {
    let reg = |cseq: u32, extra: &str| {
        format!(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {PHONE};rport;branch=z9hG4bKreg{cseq}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=r1\r\nTo: <sip:alice@127.0.0.1>\r\n\
             Call-ID: reg-alice\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:alice@{PHONE}>\r\n\
             Expires: 300\r\n{extra}Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    };
    net.send_sip(Transport::Udp, phone(), &reg(1, ""));
    let msgs = net.take_sip(phone());
    let c = response(&msgs, 401)
        .expect("a challenge")
        .headers
        .get_all(&HeaderName::from_wire("WWW-Authenticate"))
        .map(|v| Challenge::parse(v).unwrap())
        .find(|c| c.algorithm == Algorithm::Sha256)
        .unwrap();
    let creds = Credentials {
        username: "alice".into(),
        password: "pw-alice".into(),
    };
    let a = answer(
        &c,
        &creds,
        "REGISTER",
        "sip:127.0.0.1",
        Some(("beef".into(), 1)),
    );
    net.send_sip(
        Transport::Udp,
        phone(),
        &reg(2, &format!("Authorization: {a}\r\n")),
    );
    assert!(response(&net.take_sip(phone()), 200).is_some());
}

/// A caller joins `sales`; whether alice's phone is rung within 3 s.
fn caller_rings_alice(net: &mut Net, id: &str) -> bool {
    let mut caller = Caller::new("127.0.0.1:7010", id);
    let call = net.connect(&mut caller);
    net.advance(Duration::from_millis(500));
    net.press(&mut caller, call, Digit::D1);
    for _ in 0..3 {
        let p = caller.audio_packet();
        net.send_rtp(call.leg(0), caller.media, &p);
        net.advance(Duration::from_secs(1));
    }
    let msgs = net.take_sip(phone());
    request(&msgs, "INVITE").is_some()
}

#[test]
fn manual_agents_log_in_out_and_pause_by_feature_codes_with_digest() {
    let mut net = Net::new(menus("manual"));
    register(&mut net);
    assert_eq!(
        state(&net),
        AgentState::LoggedOut,
        "manual: registering does not log in"
    );

    // *41, answered with the right password: logged in, answered, beeps, hung up.
    let ok = dial(&mut net, "*41", "f1", Some("pw-alice"));
    assert_eq!(ok.status.code(), 200, "{ok:?}");
    assert_eq!(state(&net), AgentState::Available);
    hung_up_after_beeps(&mut net);
    assert!(net.events.iter().any(
        |e| matches!(e, Event::FeatureCode { agent, code, .. } if agent == "alice" && code == "*41")
    ));
    // ... and is offered a queued call.
    assert!(
        caller_rings_alice(&mut net, "q1"),
        "a logged-in agent is rung"
    );
}

#[test]
fn logout_and_pause_codes_take_the_agent_out_of_the_offers() {
    let mut net = Net::new(menus("on_register"));
    register(&mut net);
    assert_eq!(
        state(&net),
        AgentState::Available,
        "on_register: registering logs in"
    );

    // *43 pauses: not offered calls.
    let ok = dial(&mut net, "*43", "f2", Some("pw-alice"));
    assert_eq!(ok.status.code(), 200);
    hung_up_after_beeps(&mut net);
    assert!(
        matches!(state(&net), AgentState::Paused { .. }),
        "{:?}",
        state(&net)
    );
    assert!(
        !caller_rings_alice(&mut net, "q2"),
        "a paused agent is not rung"
    );
    // *43 again unpauses: the waiting caller rings it.
    let ok = dial(&mut net, "*43", "f3", Some("pw-alice"));
    assert_eq!(ok.status.code(), 200);
    assert!(
        matches!(state(&net), AgentState::Ringing { .. }),
        "unpaused: rung for the waiting caller: {:?}",
        state(&net)
    );

    // *42 logs out (still registered).
    let mut net = Net::new(menus("on_register"));
    register(&mut net);
    let ok = dial(&mut net, "*42", "f4", Some("pw-alice"));
    assert_eq!(ok.status.code(), 200);
    hung_up_after_beeps(&mut net);
    assert_eq!(state(&net), AgentState::LoggedOut);
    assert_eq!(
        net.engine.registered_agents(),
        1,
        "registration stays: only reachable"
    );
    assert!(
        !caller_rings_alice(&mut net, "q3"),
        "a logged-out agent is not rung"
    );
}

#[test]
fn a_spoofed_from_without_credentials_or_a_wrong_password_changes_nothing() {
    let mut net = Net::new(menus("manual"));
    register(&mut net);
    // No Authorization at all: 401 only, no call, no change.
    let c = dial(&mut net, "*41", "s1", None);
    assert_eq!(c.status.code(), 401);
    assert_eq!(state(&net), AgentState::LoggedOut);
    assert_eq!(net.engine.call_count(), 0);
    // A wrong password: 403, counted as an authentication failure.
    let r = dial(&mut net, "*41", "s2", Some("guess-guess"));
    assert_eq!(r.status.code(), 403);
    assert_eq!(state(&net), AgentState::LoggedOut);
    assert!(net.events.iter().any(|e| matches!(
        e,
        Event::AuthFailed {
            method: "INVITE",
            ..
        }
    )));
    assert_eq!(net.engine.call_count(), 0);
}

/// A caller's number comes from the From header (anyone writes any): the queue view every
/// staff page polls keeps a bounded tail of it, not kilobytes per waiting caller.
#[test]
fn the_queue_view_bounds_a_hostile_callers_number() {
    let mut net = Net::new(menus("manual"));
    long_from_joins_sales(&mut net);
    let view = net.engine.queue_view(net.now);
    let shown = view.queues[0].waiting[0].caller.clone().expect("a number");
    assert!(shown.len() <= 32, "{} characters", shown.len());
    assert!(shown.ends_with("1234"), "the last digits stay: {shown}");
}

/// A caller whose From user is 6,000 digits ending in 1234 connects and joins `sales`.
fn long_from_joins_sales(net: &mut Net) {
    let mut caller = Caller::new("127.0.0.1:7020", "long-from");
    let long = format!("{}1234", "9".repeat(6000));
    let invite = String::from_utf8(caller.invite(true))
        .unwrap()
        .replace("sip:+15551234@", &format!("sip:{long}@"));
    net.send_sip(Transport::Udp, caller.addr, invite.as_bytes());
    let msgs = net.take_sip(caller.addr);
    let ok = response(&msgs, 200).expect("answered").clone();
    caller.on_response(&ok);
    let ack = caller.ack(None);
    net.send_sip(Transport::Udp, caller.addr, &ack);
    let call = net.last_call().expect("a call");
    net.advance(Duration::from_millis(500));
    net.press(&mut caller, call, Digit::D1);
    net.advance(Duration::from_secs(1));
}

/// The From of the agent's INVITE shows the caller's number: a hostile caller's kilobytes
/// are not copied into it (a UDP INVITE of several kilobytes is fragmented, and phones
/// that drop it leave the offer unanswered: enough of them pause the agents).
#[test]
fn a_hostile_callers_long_number_stays_out_of_the_agents_invite() {
    let mut net = Net::new(menus("on_register"));
    register(&mut net);
    long_from_joins_sales(&mut net);
    let msgs = net.take_sip(phone());
    let invite = request(&msgs, "INVITE").expect("alice is rung");
    let from = invite.headers.get(&HeaderName::From).unwrap();
    assert!(from.len() < 100, "From of {} bytes", from.len());
}

#[test]
fn staff_requests_reach_the_center_and_the_queue_view_shows_callers_and_agents() {
    let mut net = Net::new(menus("manual"));
    let now = net.now;
    // Logged in by staff without a registration: logged in, but not reachable.
    net.engine
        .agent_request(now, "alice", AgentAction::Login, "boss")
        .unwrap();
    assert_eq!(state(&net), AgentState::Available);
    assert!(
        net.engine
            .agent_request(now, "nobody", AgentAction::Login, "boss")
            .is_err()
    );
    let view = net.engine.queue_view(now);
    assert!(!view.agents[0].reachable, "{view:?}");
    register(&mut net);
    net.engine
        .agent_request(
            now,
            "alice",
            AgentAction::Pause {
                reason: "lunch".into(),
            },
            "boss",
        )
        .unwrap();
    assert!(matches!(state(&net), AgentState::Paused { .. }));
    assert!(!caller_rings_alice(&mut net, "v1"));
    net.advance(Duration::from_secs(4));
    let view = net.engine.queue_view(net.now);
    assert_eq!(view.queues[0].name, "sales");
    assert_eq!(view.queues[0].waiting.len(), 1);
    let w = &view.queues[0].waiting[0];
    assert_eq!(w.position, 1);
    assert!(w.waited >= Duration::from_secs(6), "{w:?}");
    assert_eq!(w.caller.as_deref(), Some("+15551234"));
    assert_eq!(view.agents[0].name, "alice");
    assert!(view.agents[0].reachable && view.agents[0].registrations == 1);
    let now = net.now;
    net.engine
        .agent_request(now, "alice", AgentAction::Unpause, "boss")
        .unwrap();
    net.advance(Duration::from_millis(10));
    assert!(
        request(&net.take_sip(phone()), "INVITE").is_some(),
        "unpaused: rung"
    );
}
