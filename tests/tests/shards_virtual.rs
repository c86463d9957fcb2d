//! Engine shards in virtual time (issue 11, step 3 of the shards plan): calls routed by
//! Call-ID to the shard that owns them, agents registered on one shard and rung by
//! another, the call cap shared by all, and the handoff of a message that reached the
//! wrong shard. The harness is `ivr_tests::sharded::ShardedNet`.

mod queue_common;
use queue_common::*;

use ivr_audio::{Codec, Digit};
use ivr_engine::Event;
use ivr_engine::call_slots::CallSlots;
use ivr_queues::AgentState;
use ivr_sip::Transport;
use ivr_sip::message::{CoreHeaders, Message};
use ivr_tests::caller::{Caller, SipNet, response};
use ivr_tests::sharded::{Link, ShardedNet};
use proptest::prelude::*;
use std::time::Duration;

fn demo() -> std::sync::Arc<ivr_menus::Menus> {
    std::sync::Arc::new(ivr_server::config::load_demo().expect("demo compiles"))
}

/// No 481 (no such call or transaction) among `msgs`: every message met its call.
fn no_481(msgs: &[Message]) -> bool {
    response(msgs, 481).is_none()
}

/// A Call-ID of the form `{prefix}{n}-test` that belongs to shard `shard`.
fn call_id_on(net: &ShardedNet, prefix: &str, shard: u16) -> String {
    (0..)
        .map(|n| format!("{prefix}{n}-test"))
        .find(|id| net.shard_of_call_id(id) == shard)
        .expect("some Call-ID hashes there")
}

/// 200 callers over 4 shards: each call lives on the shard its Call-ID hashes to, and its
/// CANCEL, ACK, OPTIONS and BYE reach that shard (no 481 anywhere); no handoff is needed.
#[test]
fn calls_live_on_their_call_ids_shard_and_every_message_finds_them() {
    let mut net = ShardedNet::with_config(demo(), 4, Link::Immediate, |c| {
        c.answer_delay = Duration::from_secs(1)
    });
    let mut callers: Vec<Caller> = (0..200u16)
        .map(|i| {
            Caller::new(
                &format!("127.0.0.1:{}", 10_000 + 2 * i),
                &format!("c{i}-test"),
            )
        })
        .collect();
    for c in &mut callers {
        let invite = c.invite(true);
        net.send_sip(c.transport, c.addr, &invite);
    }
    // A quarter give up before the answer.
    for c in callers.iter_mut().step_by(4) {
        let cancel = c.cancel();
        net.send_sip(c.transport, c.addr, &cancel);
        let msgs = net.take_sip(c.addr);
        assert!(response(&msgs, 487).is_some(), "cancelled: {msgs:?}");
        assert!(no_481(&msgs));
    }
    net.advance(Duration::from_millis(1100));
    for (i, c) in callers.iter_mut().enumerate().filter(|(i, _)| i % 4 != 0) {
        let msgs = net.take_sip(c.addr);
        let ok = response(&msgs, 200)
            .unwrap_or_else(|| panic!("caller {i} answered: {msgs:?}"))
            .clone();
        c.on_response(&ok);
        let ack = c.ack(None);
        net.send_sip(c.transport, c.addr, &ack);
        let options = c.raw("OPTIONS", "", "");
        net.send_sip(c.transport, c.addr, &options);
        let bye = c.in_dialog("BYE", "", "");
        net.send_sip(c.transport, c.addr, &bye);
        let msgs = net.take_sip(c.addr);
        assert!(no_481(&msgs), "caller {i}: {msgs:?}");
        assert_eq!(
            msgs.iter()
                .filter(|m| matches!(m, Message::Response(r) if r.status.code() == 200))
                .count(),
            2,
            "OPTIONS and BYE answered: {msgs:?}"
        );
    }
    net.advance(Duration::from_secs(1));
    for shard in 0..4u16 {
        let calls = net.calls_on(shard);
        assert!(calls.len() >= 20, "shard {shard} has {} calls", calls.len());
        for (call, id) in calls {
            assert_eq!(net.shard_of_call_id(&id), shard, "{id}");
            assert_eq!(call.0 >> 48, u64::from(shard), "the handle names its shard");
        }
    }
    let started = net
        .events()
        .filter(|e| matches!(e, Event::CallStarted { .. }))
        .count();
    assert_eq!(started, 200);
    assert_eq!(net.call_count(), 0, "every call ended");
    assert!(net.handoffs.is_empty(), "the router never missed");
}

/// A message that reaches a shard its Call-ID does not belong to is handed to the right
/// one, which serves it; the wrong shard does nothing else with it.
#[test]
fn a_message_on_the_wrong_shard_is_handed_over() {
    let mut net = ShardedNet::new(demo(), 3, Link::Immediate);
    let id = call_id_on(&net, "lost", 2);
    let mut caller = Caller::new("127.0.0.1:7000", &id);
    let invite = caller.invite(true);
    net.send_sip_to(0, Transport::Udp, caller.addr, &invite);
    assert_eq!(net.handoffs.len(), 1);
    assert_eq!(net.handoffs[0].shard, 2);
    assert_eq!(net.handoffs[0].data, invite, "the bytes as they came");
    assert!(net.calls_on(0).is_empty() && net.engines[0].sip.is_empty());
    assert_eq!(net.calls_on(2).len(), 1, "the owner took the call");
    let msgs = net.take_sip(caller.addr);
    assert!(response(&msgs, 200).is_some(), "{msgs:?}");
}

/// One call cap for all shards (`--max-calls 1`): the second call gets 503 whichever shard
/// its Call-ID lands on, and the slot is free again when the first ends.
#[test]
fn the_call_cap_is_shared_by_every_shard() {
    for (first_shard, second_shard) in [(0, 1), (1, 0), (1, 1)] {
        let slots = CallSlots::new(1);
        let mut net = ShardedNet::with_config(demo(), 2, Link::Immediate, |c| {
            c.call_slots = Some(slots.clone())
        });
        let mut first = Caller::new("127.0.0.1:7000", &call_id_on(&net, "a", first_shard));
        let (_, shard) = connect_on_shard(&mut net, &mut first);
        assert_eq!(shard, first_shard);
        let mut second = Caller::new("127.0.0.1:7100", &call_id_on(&net, "b", second_shard));
        let invite = second.invite(true);
        net.send_sip(second.transport, second.addr, &invite);
        let msgs = net.take_sip(second.addr);
        assert!(response(&msgs, 503).is_some(), "at the cap: {msgs:?}");
        assert_eq!(slots.in_use(), 1);

        let bye = first.in_dialog("BYE", "", "");
        net.send_sip(first.transport, first.addr, &bye);
        assert_eq!(slots.in_use(), 0, "given back when the call ends");
        let mut third = Caller::new("127.0.0.1:7200", &call_id_on(&net, "c", second_shard));
        connect_on_shard(&mut net, &mut third);
        assert_eq!(slots.in_use(), 1);
    }
}

/// An agent whose REGISTER landed on one shard is rung by the caller's shard: the INVITE's
/// Call-ID is steered home, so the agent's answers reach that shard, and the audio is
/// bridged there.
#[test]
fn an_agent_registered_on_one_shard_is_rung_and_bridged_by_another() {
    let mut net = ShardedNet::new(
        menus("longest_idle", &registered("alice", "pw-alice")),
        4,
        Link::Immediate,
    );
    let mut alice = Agent::new("alice", 7200);
    alice.register(&mut net, "pw-alice", "10.9.9.9:5060");
    let reg_shard = net.shard_of_call_id("reg-alice");
    assert!(
        net.hub
            .agent_states()
            .iter()
            .any(|(a, s)| a == "alice" && *s == AgentState::Available),
        "logged in at the hub"
    );
    let caller_shard = (reg_shard + 1) % 4;
    let mut caller = Caller::new("127.0.0.1:7000", &call_id_on(&net, "q", caller_shard));
    let (call, shard) = connect_on_shard(&mut net, &mut caller);
    assert_eq!(shard, caller_shard);
    net.advance(Duration::from_millis(500));
    net.press(&mut caller, call, Digit::D1);
    let invite = alice.take_invite(&mut net);
    let agent_call_id = invite.call_id().expect("a Call-ID").to_string();
    assert_eq!(
        net.shard_of_call_id(&agent_call_id),
        caller_shard,
        "steered to the caller's shard"
    );
    alice.answer(&mut net, &invite, Codec::Pcma);
    let home = &net.engines[usize::from(caller_shard)];
    assert!(home.events.iter().any(|e| matches!(e,
        Event::Bridged { destination, call_id, .. }
            if destination == "agent alice" && *call_id == agent_call_id)));

    // Agent -> caller, relayed on the caller's shard.
    let agent_leg = call.leg(1);
    let start = sent_count(&net.engines[usize::from(caller_shard)], call.leg(0));
    for chunk in waveform(160 * 10).chunks(160) {
        let p = alice.audio(Codec::Pcma, chunk);
        net.send_rtp(agent_leg, alice.media, &p);
        net.advance(Duration::from_millis(20));
    }
    net.advance(Duration::from_millis(200));
    let home = &net.engines[usize::from(caller_shard)];
    assert!(!relayed(home, call.leg(0), start, Codec::Pcmu).is_empty());

    // The agent hangs up: its BYE reaches the caller's shard.
    alice.send(&mut net, &alice.bye(&invite));
    let msgs = net.take_sip(alice.addr);
    assert!(response(&msgs, 200).is_some(), "BYE answered: {msgs:?}");
    assert!(net.handoffs.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// `queue_calls.rs`'s crossings ([`crossings`]) over three shards whose hub messages
    /// take 5 ms each way, or up to 20 ms at random (each link still first in, first out):
    /// whatever callers and phones do and whenever, once every caller has hung up and time
    /// has passed, no call is left on any shard, nobody waits, no agent is left ringing, on
    /// a call or in wrap-up, no socket is left open, and nothing was handed over.
    #[test]
    fn no_agent_or_caller_is_left_behind_over_delayed_links(
        acts in proptest::collection::vec(act(), 1..30),
        ring_all in any::<bool>(),
        jitter in any::<Option<u64>>(),
    ) {
        let link = match jitter {
            Some(seed) => Link::Jittered { seed, max: Duration::from_millis(20) },
            None => Link::Delayed(Duration::from_millis(5)),
        };
        let mut net = ShardedNet::new(crossings_menus(ring_all), 3, link);
        crossings(&mut net, acts)?;
        prop_assert!(net.handoffs.is_empty());
    }
}

/// A queued callback is offered by the hub to a shard other than the caller's (round
/// robin from shard 0): that shard makes the callback's call, rings the agent, dials the
/// caller through the trunk (both Call-IDs steered home) and bridges them.
#[test]
fn a_queued_callback_is_dialled_and_bridged_on_the_shard_the_hub_chose() {
    let mut net = ShardedNet::new(
        callback_menus("\"+1\"", true),
        3,
        Link::Delayed(Duration::from_millis(2)),
    );
    let desk = Agent::new("desk", 7300);
    let mut trunk = Agent::new("trunk", 7400);
    // The desk takes a first caller (shard 2): it is busy while the request lines up.
    let mut busy = Caller::new("127.0.0.1:7050", &call_id_on(&net, "busy", 2));
    join_in_line(&mut net, &mut busy);
    let first = desk.take_invite(&mut net);
    desk.answer(&mut net, &first, Codec::Pcmu);
    // A caller on shard 1 asks for a callback (this number) and is hung up on.
    let mut caller = Caller::new("127.0.0.1:7060", &call_id_on(&net, "cb", 1));
    let call = join_in_line(&mut net, &mut caller);
    net.press(&mut caller, call, Digit::D3);
    net.press(&mut caller, call, Digit::D1);
    net.advance(Duration::from_secs(5));
    let msgs = net.take_sip(caller.addr);
    let bye = ivr_tests::caller::request(&msgs, "BYE")
        .unwrap_or_else(|| panic!("the engine hangs up: {msgs:?}"))
        .clone();
    net.send_sip(Transport::Udp, caller.addr, &caller.ok_to(&bye));
    assert!(matches!(
        &net.queue_callbacks[..],
        [ivr_engine::QueueCallbackCmd::Store(_)]
    ));

    // The first call ends: the hub offers the callback to shard 0.
    let bye = busy.in_dialog("BYE", "", "");
    net.send_sip(Transport::Udp, busy.addr, &bye);
    net.advance(Duration::from_millis(200));
    let msgs = net.take_sip(desk.addr);
    for m in &msgs {
        if let Message::Request(r) = m
            && r.method.as_str() == "BYE"
        {
            desk.send(&mut net, &desk.respond(r, 200, None));
        }
    }
    let invite = ivr_tests::caller::request(&msgs, "INVITE")
        .unwrap_or_else(|| panic!("the desk is offered the callback: {msgs:?}"))
        .clone();
    let cb = net
        .engines
        .iter()
        .enumerate()
        .find_map(|(s, n)| {
            n.events.iter().find_map(|e| match e {
                Event::CallStarted { call, to, .. } if to == "callback sales" => Some((s, *call)),
                _ => None,
            })
        })
        .expect("a callback call");
    assert_eq!(cb.0, 0, "made on the shard the hub chose");
    assert_eq!(net.shard_of_call_id(invite.call_id().unwrap()), 0);
    desk.answer(&mut net, &invite, Codec::Pcmu);
    net.advance(Duration::from_millis(500));
    let dial = trunk.take_invite(&mut net);
    assert_eq!(dial.uri.to_string(), "sip:+15551234@127.0.0.1:7400");
    assert_eq!(net.shard_of_call_id(dial.call_id().unwrap()), 0);
    trunk.answer(&mut net, &dial, Codec::Pcmu);
    let home = &net.engines[0];
    assert!(home.events.iter().any(|e| matches!(e,
        Event::Bridged { call, destination, .. } if *call == cb.1 && destination == "agent desk")));
    // The trunk's audio reaches the desk.
    let start = sent_count(&net.engines[0], cb.1.leg(1));
    for chunk in waveform(160 * 10).chunks(160) {
        let p = trunk.audio(Codec::Pcmu, chunk);
        net.send_rtp(cb.1.leg(0), trunk.media, &p);
        net.advance(Duration::from_millis(20));
    }
    assert!(!relayed(&net.engines[0], cb.1.leg(1), start, Codec::Pcmu).is_empty());
    assert!(net.handoffs.is_empty());
}

/// A request from alice's phone (127.0.0.1:7300) to `*41`, in the feature call `feat-1`.
fn feature_req(
    method: &str,
    cseq: u32,
    branch: &str,
    to_tag: Option<&str>,
    extra: &str,
) -> Vec<u8> {
    let body = if method == "INVITE" {
        "v=0\r\no=p 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio 8300 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    } else {
        ""
    };
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    let tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    format!(
        "{method} sip:*41@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7300;branch={branch};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=ph-feat\r\nTo: <sip:*41@127.0.0.1>{tag}\r\n\
         Call-ID: feat-1\r\nCSeq: {cseq} {method}\r\nContact: <sip:alice@127.0.0.1:7300>\r\n\
         {extra}{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A feature-code INVITE parked while the hub authenticates it (its answer delayed) and
/// cancelled meanwhile: the CANCEL is answered 200 (not 481), the INVITE 487 when the
/// hub's answer comes, and it never becomes a call nor logs the agent in.
#[test]
fn a_parked_feature_call_cancelled_before_the_hubs_answer_is_not_a_call() {
    use ivr_sip::digest::{Algorithm, Challenge, Credentials, answer};
    use ivr_sip::header::HeaderName;
    let alice = registered("alice", "pw-alice").replace("queues:", "login: manual\n    queues:");
    let link = Link::Delayed(Duration::from_millis(50));
    let mut net = ShardedNet::new(menus("linear", &alice), 2, link);
    let phone: std::net::SocketAddr = "127.0.0.1:7300".parse().unwrap();
    let before = net.hub.agent_states();
    net.send_sip(
        Transport::Udp,
        phone,
        &feature_req("INVITE", 1, "z9hG4bKf1", None, ""),
    );
    net.advance(Duration::from_millis(200));
    let msgs = net.take_sip(phone);
    let challenge = response(&msgs, 401)
        .unwrap_or_else(|| panic!("challenged: {msgs:?}"))
        .clone();
    let tag = challenge
        .party_to()
        .ok()
        .and_then(|t| t.tag().map(str::to_string));
    net.send_sip(
        Transport::Udp,
        phone,
        &feature_req("ACK", 1, "z9hG4bKf1", tag.as_deref(), ""),
    );
    let c = challenge
        .headers
        .get_all(&HeaderName::from_wire("WWW-Authenticate"))
        .map(|v| Challenge::parse(v).unwrap())
        .find(|c| c.algorithm == Algorithm::Sha256)
        .expect("a SHA-256 challenge");
    let creds = Credentials {
        username: "alice".into(),
        password: "pw-alice".into(),
    };
    let a = answer(
        &c,
        &creds,
        "INVITE",
        "sip:*41@127.0.0.1",
        Some(("c0ffee".into(), 1)),
    );
    let auth = format!("Authorization: {a}\r\n");
    net.send_sip(
        Transport::Udp,
        phone,
        &feature_req("INVITE", 2, "z9hG4bKf2", None, &auth),
    );
    // Parked: the hub's answer is 50 ms away. The phone gives up.
    net.send_sip(
        Transport::Udp,
        phone,
        &feature_req("CANCEL", 2, "z9hG4bKf2", None, ""),
    );
    let msgs = net.take_sip(phone);
    assert!(
        msgs.iter().any(|m| matches!(m, Message::Response(r)
            if r.status.code() == 200 && r.cseq().is_ok_and(|c| c.method.as_str() == "CANCEL"))),
        "the CANCEL is answered: {msgs:?}"
    );
    assert!(no_481(&msgs));
    net.advance(Duration::from_millis(200));
    let msgs = net.take_sip(phone);
    assert!(
        response(&msgs, 487).is_some(),
        "the INVITE ends 487: {msgs:?}"
    );
    assert!(
        response(&msgs, 200).is_none(),
        "and is not answered: {msgs:?}"
    );
    assert_eq!(
        net.events()
            .filter(|e| matches!(e, Event::CallStarted { .. }))
            .count(),
        0,
        "no call"
    );
    assert_eq!(net.hub.agent_states(), before, "nobody logged in");
    assert_eq!(net.call_count(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// `queue_exit_keys.rs`'s order property ([`callback_order`]) over three shards with
    /// delayed hub links: callers arrive on their shards while the only agent is busy, some
    /// ask for a callback (typing a number) and hang up; once the agent is free everyone is
    /// served in arrival order, a callback in its caller's place, dialled on the shard the
    /// hub chose; nothing is handed over.
    #[test]
    fn a_callback_keeps_its_place_among_random_arrivals_over_delayed_links(
        arrivals in proptest::collection::vec((any::<bool>(), 0u64..8), 1..6)
    ) {
        let link = Link::Delayed(Duration::from_millis(5));
        let mut net = ShardedNet::with_config(callback_menus("\"0\"", true), 3, link, |c| {
            c.media_timeout = Duration::from_secs(3600)
        });
        callback_order(&mut net, &arrivals)?;
        prop_assert!(net.handoffs.is_empty());
    }
}

/// A bridged transfer whose first DNS target stays silent fails over to the next with a
/// fresh INVITE (`fresh_call_id`): both Call-IDs are steered to the caller's shard, so the
/// late target's ringing and the next target's answer reach the call there, on whichever
/// of three shards it lives; nothing is handed over.
#[test]
fn a_transfer_failing_over_to_the_next_dns_target_hears_its_answers_on_the_callers_shard() {
    let destinations = r#"destinations:
  desk: { uri: "sip:desk@pbx.example.com", mode: bridge, ring_timeout: 10, on_failure: { play: sales_en } }
"#;
    let options = r#"      "0": { transfer: desk }
      "9": { hangup: goodbye_en }
"#;
    let yaml = ivr_tests::caller::menu_file("", destinations, options, "");
    let mut net = ShardedNet::new(ivr_tests::caller::demo_variant(&yaml), 3, Link::Immediate);
    let dead: std::net::SocketAddr = "127.0.0.1:7190".parse().unwrap();
    let desk = Agent::new("desk", 7300);
    for shard in &mut net.engines {
        let targets = [dead, desk.addr]
            .into_iter()
            .map(|addr| ivr_sip::transaction::Peer {
                transport: Transport::Udp,
                addr,
            })
            .collect();
        shard.dns.insert("pbx.example.com".into(), targets);
    }
    for home in 0..3 {
        let addr = format!("127.0.0.1:{}", 7096 + 10 * home);
        let mut caller = Caller::new(&addr, &call_id_on(&net, "fo", home));
        let (call, shard) = connect_on_shard(&mut net, &mut caller);
        assert_eq!(shard, home);
        net.advance(Duration::from_millis(500));
        net.press(&mut caller, call, Digit::D0);
        let first = net.take_sip(dead);
        let first = ivr_tests::caller::request(&first, "INVITE")
            .expect("the first target is tried first")
            .clone();
        net.advance(Duration::from_millis(4000));
        let invite = desk.take_invite(&mut net);
        let (a, b) = (first.call_id().unwrap(), invite.call_id().unwrap());
        assert_ne!(a, b, "a fresh INVITE for the next target");
        assert_eq!(net.shard_of_call_id(a), home, "steered home");
        assert_eq!(net.shard_of_call_id(b), home, "steered home");
        // The given-up target rings late: its answer finds the call and gets CANCEL.
        let mut late =
            ivr_sip::Response::to_request(&first, ivr_sip::StatusCode::new(180).unwrap());
        let to = first
            .headers
            .get(&ivr_sip::HeaderName::To)
            .unwrap()
            .to_string();
        late.headers
            .set(ivr_sip::HeaderName::To, format!("{to};tag=late"));
        net.send_sip(Transport::Udp, dead, &late.to_bytes());
        let msgs = net.take_sip(dead);
        assert!(
            ivr_tests::caller::request(&msgs, "CANCEL").is_some(),
            "the late target is cancelled: {msgs:?}"
        );
        desk.answer(&mut net, &invite, Codec::Pcmu);
        let here = &net.engines[usize::from(home)];
        assert!(here.events.iter().any(|e| matches!(e,
            Event::FailedOver { from, to, .. } if *from == dead && *to == desk.addr)));
        assert!(here.events.iter().any(|e| matches!(e,
            Event::Bridged { call: c, call_id, .. } if *c == call && call_id == b)));
        // The caller hangs up; the desk gets BYE.
        let bye = caller.in_dialog("BYE", "", "");
        net.send_sip(Transport::Udp, caller.addr, &bye);
        assert!(ivr_tests::caller::request(&net.take_sip(desk.addr), "BYE").is_some());
    }
    assert!(net.handoffs.is_empty(), "{:?}", net.handoffs);
}
