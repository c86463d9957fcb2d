//! The hub's registrar alone: REGISTER answered to the shard that sent it, failed
//! authentications reported for the source gate, presence applied at the next sync, offers
//! carrying the agent's phones newest first, and the feature-code pause toggle resolved
//! from the center's state at the hub.

use crate::agent_desk::AgentAction;
use crate::hub::Hub;
use crate::hub_msg::{FeatureAnswer, HubMsg, HubOutput, RegisterAnswer, ShardMsg};
use ivr_menus::Menus;
use ivr_menus::agents::AgentCode;
use ivr_queues::{AgentId, AgentState, CallRef, Output as QOut, QueueName};
use ivr_sip::digest::{Algorithm, Challenge, Credentials, answer, ha1};
use ivr_sip::message::{Message, Request};
use ivr_sip::parse::{Framing, parse_message};
use ivr_sip::registrar::RegisterReply;
use ivr_sip::transaction::{Peer, ServerKey};
use ivr_sip::{StatusCode, Transport};
use std::sync::Arc;
use std::time::Instant;

/// Queue `sales`, worked by `alice`, who registers (password `pw`) and logs in on
/// registration.
fn menus() -> Arc<Menus> {
    let yaml = format!(
        "entry: main\nprompts: {{ hi: {{ silence: 1 }} }}\nmenus:\n  main:\n    prompt: hi\n    \
         options: {{ \"1\": {{ queue: sales }} }}\nqueues:\n  sales: {{ agent_timeout: 10, \
         max_wait: 120 }}\nagents:\n  alice:\n    password: \"ha1:ivr:{}:{}\"\n    \
         queues: {{ sales: 0 }}\n",
        ha1(Algorithm::Md5, "alice", "ivr", "pw"),
        ha1(Algorithm::Sha256, "alice", "ivr", "pw")
    );
    match ivr_menus::compile(&yaml, &mut |_| Err("no files".into())) {
        Ok(m) => Arc::new(m),
        Err(e) => panic!("{e:?}"),
    }
}

fn hub(shards: u16) -> Hub {
    let registrar = ivr_sip::registrar::RegistrarConfig::default();
    Hub::new(menus(), 7, shards, registrar, [9; 32])
}

fn peer(port: u16) -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: ([203, 0, 113, 7], port).into(),
    }
}

/// A request from alice's phone on `port`.
fn request(method: &str, uri: &str, call_id: &str, cseq: u32, port: u16, extra: &str) -> Request {
    let text = format!(
        "{method} {uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 203.0.113.7:{port};branch=z9hG4bK{call_id}{cseq}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@ivr.example>;tag=f1\r\n\
         To: <sip:alice@ivr.example>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:alice@10.0.0.{port}:5060>\r\n\
         {extra}Content-Length: 0\r\n\r\n",
        port = port % 250
    );
    match parse_message(text.as_bytes(), Framing::Datagram) {
        Ok(Message::Request(r)) => r,
        other => panic!("test request does not parse: {other:?}"),
    }
}

fn key(req: &Request) -> ServerKey {
    ServerKey::of(req).unwrap_or_else(|| panic!("no key"))
}

fn drain(hub: &mut Hub) -> Vec<HubOutput> {
    std::iter::from_fn(|| hub.poll_output()).collect()
}

/// The registrar's reply among `outs` (to a REGISTER or a feature-code INVITE), with the
/// shard it goes to.
fn reply(outs: &[HubOutput]) -> (u16, RegisterReply) {
    for o in outs {
        match o {
            HubOutput::Shard {
                shard,
                msg:
                    ShardMsg::RegisterReply {
                        answer: RegisterAnswer::Reply(r),
                        ..
                    },
            } => return (*shard, r.clone()),
            HubOutput::Shard {
                shard,
                msg:
                    ShardMsg::Authenticated {
                        answer: FeatureAnswer::Refused(r),
                        ..
                    },
            } => return (*shard, r.clone()),
            _ => {}
        }
    }
    panic!("no reply in {outs:?}")
}

/// The first SHA-256 challenge of a 401.
fn challenge(r: &RegisterReply) -> Challenge {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    r.headers
        .iter()
        .filter(|(n, _)| n.as_str().eq_ignore_ascii_case("WWW-Authenticate"))
        .filter_map(|(_, v)| Challenge::parse(v).ok())
        .find(|c| c.algorithm == Algorithm::Sha256)
        .unwrap_or_else(|| panic!("no challenge in {r:?}"))
}

/// The Authorization line answering `c` for `method` to `uri` with `password`.
fn auth(c: &Challenge, method: &str, uri: &str, password: &str, nc: u32) -> String {
    let creds = Credentials {
        username: "alice".into(),
        password: password.into(),
    };
    let a = answer(c, &creds, method, uri, Some(("0a4f113b".into(), nc)));
    format!("Authorization: {a}\r\n")
}

/// REGISTER from `port` (Call-ID `cid`), challenged then answered with `password`: the
/// hub's outputs for the answer.
fn register(hub: &mut Hub, now: Instant, cid: &str, port: u16, password: &str) -> Vec<HubOutput> {
    let uri = "sip:ivr.example";
    let first = request("REGISTER", uri, cid, 1, port, "");
    let msg = HubMsg::Register {
        key: key(&first),
        req: Box::new(first),
        peer: peer(port),
    };
    hub.handle(now, msg);
    let c = challenge(&reply(&drain(hub)).1);
    let second = request(
        "REGISTER",
        uri,
        cid,
        2,
        port,
        &auth(&c, "REGISTER", uri, password, 1),
    );
    let msg = HubMsg::Register {
        key: key(&second),
        req: Box::new(second),
        peer: peer(port),
    };
    hub.handle(now, msg);
    drain(hub)
}

/// A feature-code INVITE to `*43` from shard `shard`, challenged then answered with
/// `password`: the hub's outputs for the answer.
fn toggle(hub: &mut Hub, now: Instant, shard: u16, cid: &str, password: &str) -> Vec<HubOutput> {
    let uri = "sip:*43@ivr.example";
    let park = |hub: &mut Hub, req: Request| {
        let msg = HubMsg::Authenticate {
            key: key(&req),
            req: Box::new(req),
            peer: peer(5060),
            code: AgentCode::PauseToggle,
        };
        hub.handle_from(now, shard, msg);
        drain(hub)
    };
    let first = park(hub, request("INVITE", uri, cid, 1, 5060, ""));
    let (to, r) = reply(&first);
    assert_eq!(
        to, shard,
        "the answer goes back to the shard that parked it"
    );
    let c = challenge(&r);
    let auth = auth(&c, "INVITE", uri, password, 1);
    park(hub, request("INVITE", uri, cid, 2, 5060, &auth))
}

/// The feature answer among `outs`.
fn feature(outs: &[HubOutput]) -> &FeatureAnswer {
    outs.iter()
        .find_map(|o| match o {
            HubOutput::Shard {
                msg: ShardMsg::Authenticated { answer, .. },
                ..
            } => Some(answer),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no feature answer in {outs:?}"))
}

fn state(hub: &Hub) -> Option<AgentState> {
    hub.agent_states()
        .into_iter()
        .find(|(a, _)| a == "alice")
        .map(|(_, s)| s)
}

#[test]
fn a_register_is_answered_to_its_shard_and_a_wrong_password_is_reported_for_the_gate() {
    let t0 = crate::test_epoch();
    let mut hub = hub(3);
    let req = request("REGISTER", "sip:ivr.example", "r1", 1, 5060, "");
    let msg = HubMsg::Register {
        key: key(&req),
        req: Box::new(req),
        peer: peer(5060),
    };
    hub.handle_from(t0, 2, msg);
    let outs = drain(&mut hub);
    let (shard, r) = reply(&outs);
    assert_eq!(shard, 2);
    assert!(!r.auth_failed, "a challenge is no failure");
    assert!(
        !outs
            .iter()
            .any(|o| matches!(o, HubOutput::AuthFailed { .. })),
        "{outs:?}"
    );
    let outs = register(&mut hub, t0, "r1", 5060, "wrong");
    let (_, r) = reply(&outs);
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.auth_failed);
    assert!(
        matches!(
            outs.first(),
            Some(HubOutput::AuthFailed { from, method: "REGISTER" }) if *from == peer(5060).addr
        ),
        "the gate hears of it before the reply goes: {outs:?}"
    );
    assert_eq!(hub.registered_agents(), 0);
}

#[test]
fn registrations_log_in_at_the_next_sync_and_offers_carry_the_phones_newest_first() {
    let t0 = crate::test_epoch();
    let mut hub = hub(1);
    hub.handle(t0, HubMsg::Sync);
    drain(&mut hub);
    let outs = register(&mut hub, t0, "r1", 5061, "pw");
    assert_eq!(reply(&outs).1.status, StatusCode::OK);
    assert!(
        outs.iter()
            .any(|o| matches!(o, HubOutput::Agent { registered: 1, .. })),
        "{outs:?}"
    );
    register(&mut hub, t0, "r2", 5062, "pw");
    assert_eq!(hub.agent_bindings("alice").len(), 2);
    // Presence waits for the sync, as it waited in the engine.
    assert!(hub.has_pending());
    assert_eq!(state(&hub), Some(AgentState::LoggedOut));
    hub.handle(t0, HubMsg::Sync);
    assert!(!hub.has_pending());
    assert_eq!(state(&hub), Some(AgentState::Available));
    drain(&mut hub);
    let call = CallRef(1);
    let enter = HubMsg::Enter {
        call,
        queue: QueueName::new("sales"),
        priority: 0,
        caller: None,
        call_id: "c1".into(),
        path: Vec::new(),
    };
    hub.handle(t0, enter);
    let outs = drain(&mut hub);
    let targets = outs
        .iter()
        .find_map(|o| match o {
            HubOutput::Shard {
                msg:
                    ShardMsg::Offer {
                        out: QOut::Offer { agent, .. },
                        targets,
                    },
                ..
            } => {
                assert_eq!(*agent, AgentId::new("alice"));
                Some(targets.clone())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no offer in {outs:?}"));
    let peers: Vec<u16> = targets.iter().map(|t| t.peer.addr.port()).collect();
    assert_eq!(peers, [5062, 5061], "newest registration first");
    assert!(targets.iter().all(|t| !t.locate));
    assert_eq!(targets[0].uri.to_string(), "sip:alice@10.0.0.62:5060");
}

#[test]
fn the_pause_toggle_is_resolved_from_the_agents_state_at_the_hub() {
    let t0 = crate::test_epoch();
    let mut hub = hub(2);
    hub.handle(t0, HubMsg::Sync);
    register(&mut hub, t0, "r1", 5061, "pw");
    hub.handle(t0, HubMsg::Sync);
    assert_eq!(state(&hub), Some(AgentState::Available));
    drain(&mut hub);

    let outs = toggle(&mut hub, t0, 1, "f1", "pw");
    let FeatureAnswer::Ok { agent, action } = feature(&outs) else {
        panic!("{outs:?}");
    };
    assert_eq!(agent, "alice");
    assert!(matches!(action, AgentAction::Pause { .. }), "{action:?}");
    let applied = HubMsg::Agent {
        agent: agent.clone(),
        action: action.clone(),
    };
    hub.handle(t0, applied);
    hub.handle(t0, HubMsg::Sync);
    assert!(matches!(state(&hub), Some(AgentState::Paused { .. })));

    let outs = toggle(&mut hub, t0, 1, "f2", "pw");
    assert!(
        matches!(
            feature(&outs),
            FeatureAnswer::Ok {
                action: AgentAction::Unpause,
                ..
            }
        ),
        "{outs:?}"
    );

    let outs = toggle(&mut hub, t0, 0, "f3", "guess");
    let FeatureAnswer::Refused(r) = feature(&outs) else {
        panic!("{outs:?}");
    };
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        outs.iter().any(|o| matches!(
            o,
            HubOutput::AuthFailed {
                method: "INVITE",
                ..
            }
        )),
        "{outs:?}"
    );
}

#[test]
fn agent_requests_wait_for_the_sync_and_unknown_agents_are_refused() {
    let t0 = crate::test_epoch();
    let mut hub = hub(1);
    hub.handle(t0, HubMsg::Sync);
    assert!(hub.agent_request("bob", AgentAction::Login).is_err());
    assert!(!hub.has_pending());
    assert!(hub.agent_request("alice", AgentAction::Login).is_ok());
    assert!(hub.has_pending());
    hub.handle(t0, HubMsg::Sync);
    // Logged in, but with no phone registered it is not rung: reachable false.
    assert!(matches!(state(&hub), Some(s) if s != AgentState::LoggedOut));
}
