//! Tests of the registrar machine (`registrar.rs`): digest with both algorithms, stale and
//! replayed nonces, wrong passwords and unknown users, bindings on a virtual clock.

use super::*;
use crate::digest::{Credentials, answer, ha1};
use crate::message::Message;
use crate::parse::{Framing, parse_message};
use crate::transaction::Peer;
use crate::{Transport, test_epoch};

const REALM: &str = "ivr";

fn peer(port: u16) -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: ([203, 0, 113, 7], port).into(),
    }
}

fn account(user: &str, password: &str) -> Account {
    Account {
        owner: format!("agent-{user}"),
        user: user.into(),
        ha1_md5: ha1(Algorithm::Md5, user, REALM, password),
        ha1_sha256: ha1(Algorithm::Sha256, user, REALM, password),
    }
}

fn registrar(_now: Instant) -> Registrar {
    let mut r = Registrar::new(RegistrarConfig::default(), REALM, [7; 32]);
    r.set_accounts(
        REALM,
        vec![account("alice", "secret"), account("bob", "hunter2")],
    );
    r
}

/// A REGISTER for `user` with extra header lines.
fn register(user: &str, call_id: &str, cseq: u32, extra: &str) -> Request {
    let text = format!(
        "REGISTER sip:ivr.example SIP/2.0\r\n\
         Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK{call_id}{cseq}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@ivr.example>;tag=f1\r\n\
         To: <sip:{user}@ivr.example>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} REGISTER\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    );
    match parse_message(text.as_bytes(), Framing::Datagram) {
        Ok(Message::Request(r)) => r,
        other => panic!("test REGISTER does not parse: {other:?}"),
    }
}

fn challenges(reply: &RegisterReply) -> Vec<Challenge> {
    reply
        .headers
        .iter()
        .filter(|(n, _)| n.as_str().eq_ignore_ascii_case("WWW-Authenticate"))
        .map(|(_, v)| Challenge::parse(v).unwrap())
        .collect()
}

/// The Authorization line answering `c` as `user`/`password` with `nc`.
fn auth_line(c: &Challenge, user: &str, password: &str, nc: u32) -> String {
    let creds = Credentials {
        username: user.into(),
        password: password.into(),
    };
    let a = answer(
        c,
        &creds,
        "REGISTER",
        "sip:ivr.example",
        Some(("0a4f113b".into(), nc)),
    );
    format!("Authorization: {a}\r\n")
}

/// Challenge, then answer with `alg`: the reply to the answered REGISTER.
fn register_with(
    r: &mut Registrar,
    now: Instant,
    alg: Algorithm,
    (user, password): (&str, &str),
    cseq: u32,
    extra: &str,
) -> RegisterReply {
    let first = r.handle_register(now, &register(user, "c1", cseq, extra), peer(5060));
    assert_eq!(first.status, StatusCode::UNAUTHORIZED);
    let c = challenges(&first)
        .into_iter()
        .find(|c| c.algorithm == alg)
        .unwrap();
    let extra = format!("{extra}{}", auth_line(&c, user, password, 1));
    r.handle_register(now, &register(user, "c1", cseq + 1, &extra), peer(5060))
}

const CONTACT: &str = "Contact: <sip:alice@10.0.0.2:5060>\r\n";

#[test]
fn challenge_offers_sha256_then_md5_with_qop_auth() {
    let t0 = test_epoch();
    let mut r = registrar(t0);
    let reply = r.handle_register(t0, &register("alice", "c1", 1, CONTACT), peer(5060));
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(!reply.auth_failed);
    let c = challenges(&reply);
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].algorithm, Algorithm::Sha256);
    assert_eq!(c[1].algorithm, Algorithm::Md5);
    assert!(c.iter().all(|c| c.qop_auth && !c.stale && c.realm == REALM));
    assert_eq!(r.binding_count(), 0, "a challenge binds nothing");
}

#[test]
fn both_algorithms_register_and_the_200_lists_the_binding() {
    for alg in [Algorithm::Sha256, Algorithm::Md5] {
        let t0 = test_epoch();
        let mut r = registrar(t0);
        let ok = register_with(&mut r, t0, alg, ("alice", "secret"), 1, CONTACT);
        assert_eq!(ok.status, StatusCode::OK, "{alg}");
        let contacts: Vec<&String> = ok
            .headers
            .iter()
            .filter(|(n, _)| *n == HeaderName::Contact)
            .map(|(_, v)| v)
            .collect();
        assert_eq!(contacts, ["<sip:alice@10.0.0.2:5060>;expires=3600"]);
        let b = &r.bindings("alice")[0];
        assert_eq!(b.source, peer(5060));
        assert_eq!(r.registered_count(), 1);
        assert!(matches!(
            r.poll_event(),
            Some(RegistrarEvent::Registered { owner, expires: 3600, .. }) if owner == "agent-alice"
        ));
    }
}

#[test]
fn wrong_password_and_unknown_user_get_the_same_answer() {
    let t0 = test_epoch();
    let mut r = registrar(t0);
    let wrong = register_with(&mut r, t0, Algorithm::Md5, ("alice", "guess"), 1, CONTACT);
    let unknown = register_with(&mut r, t0, Algorithm::Md5, ("mallory", "x"), 1, CONTACT);
    let unknown_sha = register_with(&mut r, t0, Algorithm::Sha256, ("mallory", "x"), 1, CONTACT);
    for reply in [&wrong, &unknown, &unknown_sha] {
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert!(reply.auth_failed);
    }
    assert_eq!(wrong, unknown);
    assert_eq!(wrong, unknown_sha);
    assert_eq!(r.binding_count(), 0);
    assert_eq!(r.poll_event(), None);
}

#[test]
fn a_nonce_answers_only_from_the_address_it_was_sent_to() {
    let t0 = test_epoch();
    let mut r = registrar(t0);
    let agent = peer(5060);
    let forger = Peer {
        addr: "192.0.2.66:5060".parse().unwrap(),
        ..agent
    };
    let first = r.handle_register(t0, &register("alice", "c1", 1, CONTACT), agent);
    let c = challenges(&first).remove(0);
    // A forger replaying the agent's nonce with wrong passwords from another address gets
    // fresh challenges, not failures: it cannot get the agent's address banned...
    let extra = format!("{CONTACT}{}", auth_line(&c, "alice", "guess", 1));
    let forged = r.handle_register(t0, &register("alice", "c1", 2, &extra), forger);
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    assert!(!forged.auth_failed);
    // ...nor does the right password help from elsewhere.
    let extra = format!("{CONTACT}{}", auth_line(&c, "alice", "secret", 1));
    let elsewhere = r.handle_register(t0, &register("alice", "c1", 3, &extra), forger);
    assert_eq!(elsewhere.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.binding_count(), 0);
    // The challenge's own address: a wrong answer counts, the right one registers.
    let extra = format!("{CONTACT}{}", auth_line(&c, "alice", "guess", 1));
    let wrong = r.handle_register(t0, &register("alice", "c1", 4, &extra), agent);
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert!(wrong.auth_failed);
    let extra = format!("{CONTACT}{}", auth_line(&c, "alice", "secret", 1));
    let ok = r.handle_register(t0, &register("alice", "c1", 5, &extra), agent);
    assert_eq!(ok.status, StatusCode::OK);
    // Another port of the same host (a TCP phone reconnecting) is the same address.
    let extra = format!("{CONTACT}{}", auth_line(&c, "alice", "secret", 2));
    let moved = r.handle_register(t0, &register("alice", "c1", 6, &extra), peer(40000));
    assert_eq!(moved.status, StatusCode::OK);
}

/// A host is one address however the socket names it: a challenge sent over an IPv4
/// socket is answered over a dual-stack one (say TLS on `[::]`) from the IPv4-mapped
/// address, and the other way round.
#[test]
fn a_nonce_answers_from_the_ipv4_mapped_form_of_its_address() {
    let t0 = test_epoch();
    let mut r = registrar(t0);
    let v4 = peer(5060);
    let mapped = Peer {
        transport: Transport::Tls,
        addr: "[::ffff:203.0.113.7]:5061".parse().unwrap(),
    };
    let first = r.handle_register(t0, &register("alice", "c1", 1, CONTACT), v4);
    let c = challenges(&first).remove(0);
    let extra = format!("{CONTACT}{}", auth_line(&c, "alice", "secret", 1));
    let ok = r.handle_register(t0, &register("alice", "c1", 2, &extra), mapped);
    assert_eq!(ok.status, StatusCode::OK);
    let first = r.handle_register(t0, &register("alice", "c1", 3, CONTACT), mapped);
    let c = challenges(&first).remove(0);
    let extra = format!("{CONTACT}{}", auth_line(&c, "alice", "secret", 1));
    let ok = r.handle_register(t0, &register("alice", "c1", 4, &extra), v4);
    assert_eq!(ok.status, StatusCode::OK);
}

#[test]
fn an_expired_nonce_with_the_right_password_is_stale() {
    let t0 = test_epoch();
    let mut r = registrar(t0);
    let first = r.handle_register(t0, &register("alice", "c1", 1, CONTACT), peer(5060));
    let c = challenges(&first).remove(0);
    let later = t0 + Duration::from_secs(301);
    let extra = format!("{CONTACT}{}", auth_line(&c, "alice", "secret", 1));
    let stale = r.handle_register(later, &register("alice", "c1", 2, &extra), peer(5060));
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
    assert!(challenges(&stale).iter().all(|c| c.stale));
    assert!(!stale.auth_failed);
    // The same old nonce with a wrong password is a failure, not stale.
    let extra = format!("{CONTACT}{}", auth_line(&c, "alice", "nope", 1));
    let wrong = r.handle_register(later, &register("alice", "c1", 3, &extra), peer(5060));
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    // The fresh nonce works.
    let fresh = challenges(&stale).remove(0);
    let extra = format!("{CONTACT}{}", auth_line(&fresh, "alice", "secret", 1));
    let ok = r.handle_register(later, &register("alice", "c1", 4, &extra), peer(5060));
    assert_eq!(ok.status, StatusCode::OK);
}

#[test]
fn a_replayed_answer_is_challenged_again_and_a_higher_nc_is_accepted() {
    let t0 = test_epoch();
    let mut r = registrar(t0);
    let first = r.handle_register(t0, &register("alice", "c1", 1, CONTACT), peer(5060));
    let c = challenges(&first).remove(0);
    let extra = format!("{CONTACT}{}", auth_line(&c, "alice", "secret", 1));
    let req = register("alice", "c1", 2, &extra);
    assert_eq!(
        r.handle_register(t0, &req, peer(5060)).status,
        StatusCode::OK
    );
    let replay = r.handle_register(t0, &req, peer(9999));
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert!(challenges(&replay)[0].stale);
    assert_eq!(
        r.bindings("alice")[0].source,
        peer(5060),
        "the replay moved nothing"
    );
    let extra = format!("{CONTACT}{}", auth_line(&c, "alice", "secret", 2));
    let next = r.handle_register(t0, &register("alice", "c1", 3, &extra), peer(5060));
    assert_eq!(next.status, StatusCode::OK);
}

#[test]
fn an_account_registers_only_its_own_address() {
    let t0 = test_epoch();
    let mut r = registrar(t0);
    let first = r.handle_register(t0, &register("bob", "c1", 1, CONTACT), peer(5060));
    let c = challenges(&first).remove(0);
    // Authenticated as alice, registering bob's address of record.
    let extra = format!("{CONTACT}{}", auth_line(&c, "alice", "secret", 1));
    let reply = r.handle_register(t0, &register("bob", "c1", 2, &extra), peer(5060));
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(r.binding_count(), 0);
}

#[test]
fn too_brief_gets_423_and_too_long_is_lowered() {
    let t0 = test_epoch();
    let mut r = registrar(t0);
    let brief = format!("{CONTACT}Expires: 10\r\n");
    let reply = register_with(&mut r, t0, Algorithm::Md5, ("alice", "secret"), 1, &brief);
    assert_eq!(reply.status, StatusCode::INTERVAL_TOO_BRIEF);
    assert!(
        reply
            .headers
            .iter()
            .any(|(n, v)| n.as_str() == "Min-Expires" && v == "60")
    );
    let long = "Contact: <sip:alice@10.0.0.2:5060>;expires=999999\r\n";
    let reply = register_with(&mut r, t0, Algorithm::Md5, ("alice", "secret"), 10, long);
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply
            .headers
            .iter()
            .any(|(_, v)| v.ends_with("expires=3600"))
    );
}

#[test]
fn bindings_expire_on_the_clock_and_refresh_moves_the_source() {
    let t0 = test_epoch();
    let mut r = registrar(t0);
    let extra = format!("{CONTACT}Expires: 120\r\n");
    register_with(
        &mut r,
        t0,
        Algorithm::Sha256,
        ("alice", "secret"),
        1,
        &extra,
    );
    let _ = r.poll_event();
    assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(120)));
    // A refresh from another port (the NAT mapping changed), same Call-ID, higher CSeq.
    let t1 = t0 + Duration::from_secs(100);
    let first = r.handle_register(t1, &register("alice", "c1", 3, &extra), peer(6000));
    let c = challenges(&first).remove(0);
    let auth = format!("{extra}{}", auth_line(&c, "alice", "secret", 1));
    let ok = r.handle_register(t1, &register("alice", "c1", 4, &auth), peer(6000));
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(r.bindings("alice").len(), 1);
    assert_eq!(r.bindings("alice")[0].source, peer(6000));
    assert_eq!(r.poll_event(), None, "a refresh is not a new registration");
    r.handle_timeout(t0 + Duration::from_secs(200));
    assert_eq!(r.binding_count(), 1, "refreshed until t1 + 120");
    r.handle_timeout(t1 + Duration::from_secs(120));
    assert_eq!(r.binding_count(), 0);
    assert!(matches!(
        r.poll_event(),
        Some(RegistrarEvent::Expired { .. })
    ));
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn cseq_must_rise_within_a_call_id() {
    let t0 = test_epoch();
    let mut r = registrar(t0);
    register_with(&mut r, t0, Algorithm::Md5, ("alice", "secret"), 10, CONTACT);
    // Same Call-ID, lower CSeq (an old REGISTER arriving late): refused, nothing changed.
    let first = r.handle_register(t0, &register("alice", "c1", 5, CONTACT), peer(5060));
    let c = challenges(&first).remove(0);
    let extra = format!(
        "{CONTACT}Expires: 0\r\n{}",
        auth_line(&c, "alice", "secret", 1)
    );
    let old = r.handle_register(t0, &register("alice", "c1", 5, &extra), peer(5060));
    assert_eq!(old.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.binding_count(), 1);
    // Another Call-ID (the phone restarted) may change it whatever its CSeq.
    let extra = format!(
        "{CONTACT}Expires: 0\r\n{}",
        auth_line(&c, "alice", "secret", 2)
    );
    let restart = r.handle_register(t0, &register("alice", "c2", 1, &extra), peer(5060));
    assert_eq!(restart.status, StatusCode::OK);
    assert_eq!(r.binding_count(), 0);
}

#[test]
fn unregister_one_contact_then_all_with_the_wildcard() {
    let t0 = test_epoch();
    let mut r = registrar(t0);
    let two = "Contact: <sip:alice@10.0.0.2:5060>, <sip:alice@10.0.0.3:5060>\r\n";
    let ok = register_with(&mut r, t0, Algorithm::Md5, ("alice", "secret"), 1, two);
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(r.bindings("alice").len(), 2);
    let one = "Contact: <sip:alice@10.0.0.2:5060>;expires=0\r\n";
    let ok = register_with(&mut r, t0, Algorithm::Md5, ("alice", "secret"), 3, one);
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(r.bindings("alice").len(), 1);
    // `*` without Expires: 0 is refused; with it, everything goes.
    let bad = register_with(
        &mut r,
        t0,
        Algorithm::Md5,
        ("alice", "secret"),
        5,
        "Contact: *\r\n",
    );
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let all = "Contact: *\r\nExpires: 0\r\n";
    let ok = register_with(&mut r, t0, Algorithm::Md5, ("alice", "secret"), 7, all);
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(r.binding_count(), 0);
    let events: Vec<_> = std::iter::from_fn(|| r.poll_event()).collect();
    let unregistered = events
        .iter()
        .filter(|e| matches!(e, RegistrarEvent::Unregistered { .. }))
        .count();
    assert_eq!(unregistered, 2);
}

#[test]
fn contacts_past_the_cap_replace_the_one_expiring_first() {
    let t0 = test_epoch();
    let mut r = registrar(t0);
    for i in 0..6u32 {
        let extra = format!(
            "Contact: <sip:alice@10.0.0.{i}:5060>;expires={}\r\n",
            100 + i
        );
        let ok = register_with(
            &mut r,
            t0,
            Algorithm::Md5,
            ("alice", "secret"),
            10 * i + 1,
            &extra,
        );
        assert_eq!(ok.status, StatusCode::OK);
    }
    let hosts: Vec<String> = r
        .bindings("alice")
        .iter()
        .map(|b| b.contact.uri.to_string())
        .collect();
    assert_eq!(hosts.len(), 5);
    assert!(
        !hosts.contains(&"sip:alice@10.0.0.0:5060".to_string()),
        "{hosts:?}"
    );
    // More contacts in one request than the cap: refused.
    let many: String = (0..6)
        .map(|i| format!("Contact: <sip:alice@10.0.1.{i}>\r\n"))
        .collect();
    let reply = register_with(&mut r, t0, Algorithm::Md5, ("alice", "secret"), 100, &many);
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
}

#[test]
fn a_reload_keeps_bindings_of_accounts_that_remain() {
    let t0 = test_epoch();
    let mut r = registrar(t0);
    register_with(&mut r, t0, Algorithm::Md5, ("alice", "secret"), 1, CONTACT);
    let bob = "Contact: <sip:bob@10.0.0.9>\r\n";
    register_with(&mut r, t0, Algorithm::Md5, ("bob", "hunter2"), 1, bob);
    while r.poll_event().is_some() {}
    r.set_accounts(REALM, vec![account("alice", "new password")]);
    assert_eq!(r.bindings("alice").len(), 1);
    assert_eq!(r.bindings("bob").len(), 0);
    assert!(
        matches!(r.poll_event(), Some(RegistrarEvent::Unregistered { owner, .. }) if owner == "agent-bob")
    );
}

#[test]
fn a_query_without_contact_lists_bindings() {
    let t0 = test_epoch();
    let mut r = registrar(t0);
    register_with(&mut r, t0, Algorithm::Md5, ("alice", "secret"), 1, CONTACT);
    let t1 = t0 + Duration::from_secs(600);
    let first = r.handle_register(t1, &register("alice", "c9", 1, ""), peer(5060));
    let c = challenges(&first).remove(1);
    let extra = auth_line(&c, "alice", "secret", 1);
    let q = r.handle_register(t1, &register("alice", "c9", 2, &extra), peer(5060));
    assert_eq!(q.status, StatusCode::OK);
    assert!(
        q.headers.iter().any(|(_, v)| v.ends_with(";expires=3000")),
        "{q:?}"
    );
}

#[test]
fn forgotten_nonces_count_as_replays_but_fresh_ones_work() {
    let t0 = test_epoch();
    let mut r = registrar(t0);
    let mut used = Vec::new();
    for i in 0..(NONCES_PER_USER as u32 + 1) {
        let first = r.handle_register(
            t0,
            &register("alice", "c1", 10 * i + 1, CONTACT),
            peer(5060),
        );
        let c = challenges(&first).remove(0);
        let extra = format!("{CONTACT}{}", auth_line(&c, "alice", "secret", 1));
        let ok = r.handle_register(t0, &register("alice", "c1", 10 * i + 2, &extra), peer(5060));
        assert_eq!(ok.status, StatusCode::OK);
        used.push(c);
    }
    // The first nonce was forgotten: even with a higher nc it is refused (stale).
    let extra = format!("{CONTACT}{}", auth_line(&used[0], "alice", "secret", 5));
    let old = r.handle_register(t0, &register("alice", "c1", 500, &extra), peer(5060));
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    assert!(challenges(&old)[0].stale);
    // A remembered one with a higher nc still works.
    let extra = format!("{CONTACT}{}", auth_line(&used[1], "alice", "secret", 2));
    let ok = r.handle_register(t0, &register("alice", "c1", 501, &extra), peer(5060));
    assert_eq!(ok.status, StatusCode::OK);
}

/// The fuzz body runs on a few hand-made inputs (a REGISTER, answered, then time passing).
#[test]
fn the_fuzz_body_holds_on_a_registration_and_its_expiry() {
    let reg = String::from_utf8(
        register(
            "alice",
            "c1",
            1,
            "Contact: <sip:alice@10.0.0.2>\r\nExpires: 60\r\n",
        )
        .to_bytes(),
    )
    .unwrap();
    let again = String::from_utf8(
        register(
            "alice",
            "c1",
            2,
            "Contact: <sip:alice@10.0.0.2>\r\nExpires: 60\r\n",
        )
        .to_bytes(),
    )
    .unwrap();
    let mut input = vec![0x01];
    input.extend_from_slice(reg.as_bytes());
    input.push(0);
    input.push(0x80);
    input.extend_from_slice(again.as_bytes());
    input.push(0);
    input.push(0x3f);
    crate::fuzz::register_sequence(&input);
    crate::fuzz::register_sequence(b"\x05garbage\x00\x80REGISTER sip:x SIP/2.0\r\n\r\n");
}

#[test]
fn md5_only_offers_md5_alone_and_refuses_a_sha256_answer() {
    let t0 = test_epoch();
    let config = RegistrarConfig {
        md5_only: true,
        ..RegistrarConfig::default()
    };
    let mut r = Registrar::new(config, REALM, [7; 32]);
    r.set_accounts(REALM, vec![account("alice", "secret")]);
    let first = r.handle_register(t0, &register("alice", "c1", 1, CONTACT), peer(5060));
    let c = challenges(&first);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].algorithm, Algorithm::Md5);
    // An answer in SHA-256 to our (MD5) nonce, with the right password: not offered, refused.
    let mut sha = c[0].clone();
    sha.algorithm = Algorithm::Sha256;
    let extra = format!("{CONTACT}{}", auth_line(&sha, "alice", "secret", 1));
    let refused = r.handle_register(t0, &register("alice", "c1", 2, &extra), peer(5060));
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let ok = register_with(&mut r, t0, Algorithm::Md5, ("alice", "secret"), 3, CONTACT);
    assert_eq!(ok.status, StatusCode::OK);
}
