//! Agents registering with the engine, in virtual time: digest challenge and answer,
//! bindings reached at the REGISTER's source, expiry on the engine's clock, a reload that
//! keeps bindings, and a password guesser banned by admission.

use ivr_engine::Event;
use ivr_sip::Transport;
use ivr_sip::digest::{Algorithm, Challenge, Credentials, answer, ha1};
use ivr_sip::message::{Message, Response};
use ivr_sip::registrar::RegistrarEvent;
use ivr_tests::caller::{Net, response};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const BASE: &str = "entry: main\nprompts: { hi: { silence: 1 } }\nmenus:\n  main:\n    prompt: hi\n    options: { \"1\": { queue: sales } }\nqueues:\n  sales: {}\n";

fn agent_entry(name: &str, user: &str, password: &str) -> String {
    format!(
        "  {name}:\n    user: {user}\n    password: \"ha1:ivr:{}:{}\"\n    queues: {{ sales: 0 }}\n",
        ha1(Algorithm::Md5, user, "ivr", password),
        ha1(Algorithm::Sha256, user, "ivr", password)
    )
}

fn menus(agents: &str) -> Arc<ivr_menus::Menus> {
    let yaml = format!("{BASE}agents:\n{agents}");
    Arc::new(ivr_menus::compile(&yaml, &mut |_| Err("no files".into())).expect("config compiles"))
}

fn register(user: &str, cseq: u32, extra: &str) -> Vec<u8> {
    format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 10.1.1.1:5060;rport;branch=z9hG4bKreg{cseq}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@127.0.0.1>;tag=r1\r\n\
         To: <sip:{user}@127.0.0.1>\r\n\
         Call-ID: reg-{user}\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: <sip:{user}@10.1.1.1:5060>\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn only_response(net: &mut Net, to: SocketAddr) -> Option<Response> {
    net.take_sip(to).into_iter().find_map(|m| match m {
        Message::Response(r) => Some(r),
        Message::Request(_) => None,
    })
}

/// REGISTER, take the challenge for `alg`, answer it: the final response.
fn register_with(
    net: &mut Net,
    from: SocketAddr,
    (user, password): (&str, &str),
    cseq: u32,
    alg: Algorithm,
    extra: &str,
) -> Response {
    net.send_sip(Transport::Udp, from, &register(user, cseq, extra));
    let challenge = only_response(net, from).expect("a challenge");
    assert_eq!(challenge.status.code(), 401);
    let name = ivr_sip::HeaderName::from_wire("WWW-Authenticate");
    let c = challenge
        .headers
        .get_all(&name)
        .map(|v| Challenge::parse(v).unwrap())
        .find(|c| c.algorithm == alg)
        .expect("a challenge for the algorithm");
    let creds = Credentials {
        username: user.into(),
        password: password.into(),
    };
    let a = answer(
        &c,
        &creds,
        "REGISTER",
        "sip:127.0.0.1",
        Some(("c0ffee".into(), 1)),
    );
    let extra = format!("{extra}Authorization: {a}\r\n");
    net.send_sip(Transport::Udp, from, &register(user, cseq + 1, &extra));
    only_response(net, from).expect("a final response")
}

fn agent_events(net: &Net) -> Vec<RegistrarEvent> {
    net.events
        .iter()
        .filter_map(|e| match e {
            Event::Agent { change, .. } => Some(change.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn an_agent_registers_is_reached_at_its_source_and_expires() {
    let mut net = Net::new(menus(&agent_entry("alice", "1001", "alice's password")));
    // Behind NAT: the REGISTER comes from the router's public address.
    let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let ok = register_with(
        &mut net,
        from,
        ("1001", "alice's password"),
        1,
        Algorithm::Sha256,
        "Expires: 120\r\n",
    );
    assert_eq!(ok.status.code(), 200);
    assert_eq!(
        ok.headers.get(&ivr_sip::HeaderName::Contact),
        Some("<sip:1001@10.1.1.1:5060>;expires=120")
    );
    let b = &net.engine.agent_bindings("1001")[0];
    assert_eq!(b.source.addr, from, "reached where the REGISTER came from");
    assert_eq!(net.engine.registered_agents(), 1);
    assert!(matches!(&agent_events(&net)[..],
        [RegistrarEvent::Registered { owner, .. }] if owner == "alice"));

    // A reload that keeps alice (and adds bob) keeps her binding.
    let both = format!(
        "{}{}",
        agent_entry("alice", "1001", "alice's password"),
        agent_entry("bob", "1002", "bob's password")
    );
    net.engine.set_menus(menus(&both));
    assert_eq!(net.engine.agent_bindings("1001").len(), 1);

    // Not refreshed: gone at 120 s on the engine's clock, not before.
    net.advance(Duration::from_secs(119));
    assert_eq!(net.engine.registered_agents(), 1);
    net.advance(Duration::from_secs(2));
    assert_eq!(net.engine.registered_agents(), 0);
    assert!(matches!(agent_events(&net).last(),
        Some(RegistrarEvent::Expired { owner, .. }) if owner == "alice"));
}

#[test]
fn wrong_passwords_are_refused_like_unknown_users_and_a_guesser_is_banned() {
    let mut net = Net::with_config(
        menus(&agent_entry("alice", "1001", "alice's password")),
        |c| c.admission.auth_failures = 3,
    );
    let from: SocketAddr = "127.0.0.1:40001".parse().unwrap();
    let wrong = register_with(&mut net, from, ("1001", "guess"), 1, Algorithm::Md5, "");
    let unknown = register_with(&mut net, from, ("9999", "guess"), 10, Algorithm::Md5, "");
    assert_eq!(wrong.status.code(), 403);
    assert_eq!(unknown.status.code(), 403);
    let names = |r: &Response| {
        r.headers
            .iter()
            .map(|h| h.name.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&wrong),
        names(&unknown),
        "the same answer, nothing to enumerate"
    );
    assert_eq!(wrong.reason, unknown.reason);
    assert_eq!(net.engine.registered_agents(), 0);
    // The third failure bans the source: even the right password gets no answer now.
    let third = register_with(&mut net, from, ("1001", "guess"), 20, Algorithm::Md5, "");
    assert_eq!(third.status.code(), 403);
    net.send_sip(Transport::Udp, from, &register("1001", 30, ""));
    assert!(only_response(&mut net, from).is_none(), "banned: no answer");
    assert!(net.events.iter().any(|e| matches!(
        e,
        Event::Admission(ivr_engine::admission::AdmissionEvent::Banned { .. })
    )));
}

#[test]
fn without_registering_agents_register_is_not_allowed() {
    let static_only = "  desk:\n    uri: sip:desk@127.0.0.1:5099\n    queues: { sales: 1 }\n";
    let mut net = Net::new(menus(static_only));
    let from: SocketAddr = "127.0.0.1:40002".parse().unwrap();
    net.send_sip(Transport::Udp, from, &register("desk", 1, ""));
    let msgs = net.take_sip(from);
    assert!(response(&msgs, 405).is_some(), "{msgs:?}");
}
