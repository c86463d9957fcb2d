//! Engine shards in virtual time (issue 11, step 3 of the shards plan): calls routed by
//! Call-ID to the shard that owns them, agents registered on one shard and rung by
//! another, the call cap shared by all, and the handoff of a message that reached the
//! wrong shard. The harness is `ivr_tests::sharded::ShardedNet`.

mod queue_common;
use queue_common::*;

use ivr_audio::{Codec, Digit};
use ivr_engine::call_slots::CallSlots;
use ivr_engine::{CallHandle, Event};
use ivr_queues::AgentState;
use ivr_sip::Transport;
use ivr_sip::message::{CoreHeaders, Message};
use ivr_tests::caller::{Caller, SipNet, response};
use ivr_tests::sharded::{Link, ShardedNet};
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

/// Connect `caller` (answered at once): 200, then ACK. Returns the call and its shard.
fn connect(net: &mut ShardedNet, caller: &mut Caller) -> (CallHandle, u16) {
    let invite = caller.invite(true);
    net.send_sip(caller.transport, caller.addr, &invite);
    let msgs = net.take_sip(caller.addr);
    let ok = response(&msgs, 200)
        .unwrap_or_else(|| panic!("200 OK: {msgs:?}"))
        .clone();
    caller.on_response(&ok);
    let ack = caller.ack(None);
    net.send_sip(caller.transport, caller.addr, &ack);
    let call_id = ok.call_id().expect("a Call-ID").to_string();
    let shard = net.shard_of_call_id(&call_id);
    let call = net
        .calls_on(shard)
        .into_iter()
        .find(|(_, id)| *id == call_id)
        .map(|(c, _)| c)
        .expect("the call started on its Call-ID's shard");
    (call, shard)
}

/// `caller` presses a key on its call (RFC 4733, 20 ms between packets).
fn press(net: &mut ShardedNet, caller: &mut Caller, call: CallHandle, digit: Digit) {
    for p in caller.key_packets(digit, 101) {
        net.send_rtp(call.leg(0), caller.media, &p);
        net.advance(Duration::from_millis(20));
    }
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
        let (_, shard) = connect(&mut net, &mut first);
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
        connect(&mut net, &mut third);
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
    let (call, shard) = connect(&mut net, &mut caller);
    assert_eq!(shard, caller_shard);
    net.advance(Duration::from_millis(500));
    press(&mut net, &mut caller, call, Digit::D1);
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
