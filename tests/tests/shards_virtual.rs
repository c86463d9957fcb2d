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

/// One thing a caller or an agent's phone does, for the property test (as in
/// `queue_calls.rs`).
#[derive(Debug, Clone)]
enum Act {
    /// A new caller joins the queue.
    Call,
    /// Caller `i` (of those still on) hangs up.
    HangUp(u8),
    /// An agent phone answers pending INVITE `i` with this status.
    Respond(u8, u16),
    /// An agent hangs up answered call `i`.
    AgentBye(u8),
    /// Time passes (milliseconds).
    Wait(u16),
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        2 => Just(Act::Call),
        1 => any::<u8>().prop_map(Act::HangUp),
        4 => (any::<u8>(), prop::sample::select(vec![180u16, 200, 486, 487, 603]))
            .prop_map(|(i, c)| Act::Respond(i, c)),
        1 => any::<u8>().prop_map(Act::AgentBye),
        2 => (1u16..12_000).prop_map(Act::Wait),
    ]
}

use ivr_sip::message::Request;
use proptest::prelude::*;

/// The INVITEs the phones got: (phone, request, final answer sent, answered 2xx).
type Invites = Vec<(usize, Request, bool, bool)>;

/// Take what the phones were sent: INVITEs are kept, CANCEL and BYE answered 200 (a
/// CANCEL's INVITE then 487).
fn collect(net: &mut ShardedNet, phones: &[Agent], invites: &mut Invites) {
    for (p, phone) in phones.iter().enumerate() {
        for m in net.take_sip(phone.addr) {
            if let Message::Request(r) = m {
                match r.method.as_str() {
                    "INVITE" => invites.push((p, r, false, false)),
                    "CANCEL" => {
                        phone.send(net, &phone.respond(&r, 200, None));
                        if let Some(i) = invites
                            .iter_mut()
                            .find(|i| i.1.call_id().unwrap() == r.call_id().unwrap() && !i.2)
                        {
                            i.2 = true;
                            let answer = phone.respond(&i.1, 487, None);
                            phone.send(net, &answer);
                        }
                    }
                    "BYE" => phone.send(net, &phone.respond(&r, 200, None)),
                    _ => {}
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// `queue_calls.rs`'s crossings over three shards whose hub messages take 5 ms each
    /// way, or up to 20 ms at random (each link still first in, first out): whatever callers and phones do and whenever, once every caller has hung up and
    /// time has passed, no call is left on any shard, nobody waits, no agent is left
    /// ringing, on a call or in wrap-up, no socket is left open, and nothing was handed
    /// over.
    #[test]
    fn no_agent_or_caller_is_left_behind_over_delayed_links(
        acts in proptest::collection::vec(act(), 1..30),
        ring_all in any::<bool>(),
        jitter in any::<Option<u64>>(),
    ) {
        let agents = format!("{}{}", fixed("ann", "127.0.0.1:7400"), fixed("ben", "127.0.0.1:7500"));
        let strategy = if ring_all { "ring_all" } else { "round_robin" };
        let link = match jitter {
            Some(seed) => Link::Jittered { seed, max: Duration::from_millis(20) },
            None => Link::Delayed(Duration::from_millis(5)),
        };
        let mut net = ShardedNet::new(menus(strategy, &agents), 3, link);
        let phones = [Agent::new("ann", 7400), Agent::new("ben", 7500)];
        let mut callers: Vec<(Caller, CallHandle)> = Vec::new();
        let mut invites: Invites = Vec::new();
        for (n, a) in acts.into_iter().enumerate() {
            match a {
                Act::Call => {
                    let port = 8000 + 2 * n as u16;
                    let mut c = Caller::new(&format!("127.0.0.1:{port}"), &format!("prop-{n}"));
                    let (call, _) = connect(&mut net, &mut c);
                    net.advance(Duration::from_millis(500));
                    press(&mut net, &mut c, call, Digit::D1);
                    callers.push((c, call));
                }
                Act::HangUp(i) if !callers.is_empty() => {
                    let (mut c, _) = callers.remove(usize::from(i) % callers.len());
                    let bye = c.in_dialog("BYE", "", "");
                    net.send_sip(Transport::Udp, c.addr, &bye);
                }
                Act::Respond(i, code) => {
                    let open: Vec<usize> = (0..invites.len()).filter(|k| !invites[*k].2).collect();
                    if let Some(&k) = open.get(usize::from(i) % open.len().max(1)) {
                        let (p, r) = (invites[k].0, invites[k].1.clone());
                        let phone = &phones[p];
                        let sdp = phone.sdp(Codec::Pcmu);
                        let body = (code == 200).then_some(sdp.as_str());
                        phone.send(&mut net, &phone.respond(&r, code, body));
                        if code >= 200 {
                            invites[k].2 = true;
                            invites[k].3 = code == 200;
                        }
                    }
                }
                Act::AgentBye(i) => {
                    let up: Vec<usize> = (0..invites.len()).filter(|k| invites[*k].3).collect();
                    if let Some(&k) = up.get(usize::from(i) % up.len().max(1)) {
                        let phone = &phones[invites[k].0];
                        phone.send(&mut net, &phone.bye(&invites[k].1));
                        invites[k].3 = false;
                    }
                }
                Act::Wait(ms) => {
                    for (c, call) in &mut callers {
                        let p = c.audio_packet();
                        net.send_rtp(call.leg(0), c.media, &p);
                    }
                    net.advance(Duration::from_millis(u64::from(ms)));
                }
                _ => {}
            }
            collect(&mut net, &phones, &mut invites);
        }
        for (mut c, _) in callers.drain(..) {
            let bye = c.in_dialog("BYE", "", "");
            net.send_sip(Transport::Udp, c.addr, &bye);
            collect(&mut net, &phones, &mut invites);
        }
        for _ in 0..8 {
            net.advance(Duration::from_secs(10));
            collect(&mut net, &phones, &mut invites);
        }
        prop_assert_eq!(net.call_count(), 0);
        prop_assert_eq!(net.hub.waiting("sales"), 0);
        for (agent, s) in net.hub.agent_states() {
            prop_assert!(
                matches!(s, AgentState::Available | AgentState::Paused { .. }),
                "{} is left {:?}", agent, s
            );
        }
        for shard in &net.engines {
            prop_assert!(shard.media.is_empty(), "sockets left open: {:?}", shard.media.keys().collect::<Vec<_>>());
        }
        prop_assert!(net.handoffs.is_empty());
    }
}

/// Queue `sales` worked by the static `desk` (127.0.0.1:7300), whose exit key 3 asks for
/// a callback through `trunk` (127.0.0.1:7400) to numbers starting with `+1` (as in
/// `queue_exit_keys.rs`).
fn callback_menus() -> std::sync::Arc<ivr_menus::Menus> {
    callback_menus_for("\"+1\"")
}

/// [`callback_menus`] allowing numbers that start with `allowed` (YAML list items).
fn callback_menus_for(allowed: &str) -> std::sync::Arc<ivr_menus::Menus> {
    let yaml = r#"
entry: main
prompts:
  main_en: prompts/main_en.wav
  goodbye_en: prompts/goodbye_en.wav
  sales_en: prompts/sales_en.wav
  thanks: prompts/invalid_en.wav
destinations:
  trunk: { uri: "sip:trunk@127.0.0.1:7400", mode: bridge }
queues:
  sales:
    music: sales_en
    max_wait: 600
    on_timeout: { hangup: goodbye_en }
    exit_keys:
      "3": callback
    callback:
      via: trunk
      retries: 1
      retry_delay: 30
      allowed_prefixes: [ALLOWED]
      confirmed: thanks
agents:
  desk:
    uri: sip:desk@127.0.0.1:7300
    queues: { sales: 0 }
menus:
  main:
    prompt: main_en
    timeout: 6
    retries: 5
    options:
      "1": { queue: sales }
"#
    .replace("ALLOWED", allowed);
    ivr_tests::caller::demo_variant(&yaml)
}

/// Connect `caller`, join `sales`; returns the call and its shard.
fn join_sales(net: &mut ShardedNet, caller: &mut Caller) -> (CallHandle, u16) {
    let (call, shard) = connect(net, caller);
    net.advance(Duration::from_millis(500));
    press(net, caller, call, Digit::D1);
    net.advance(Duration::from_millis(500));
    (call, shard)
}

/// A queued callback is offered by the hub to a shard other than the caller's (round
/// robin from shard 0): that shard makes the callback's call, rings the agent, dials the
/// caller through the trunk (both Call-IDs steered home) and bridges them.
#[test]
fn a_queued_callback_is_dialled_and_bridged_on_the_shard_the_hub_chose() {
    let mut net = ShardedNet::new(callback_menus(), 3, Link::Delayed(Duration::from_millis(2)));
    let desk = Agent::new("desk", 7300);
    let mut trunk = Agent::new("trunk", 7400);
    // The desk takes a first caller (shard 2): it is busy while the request lines up.
    let mut busy = Caller::new("127.0.0.1:7050", &call_id_on(&net, "busy", 2));
    join_sales(&mut net, &mut busy);
    let first = desk.take_invite(&mut net);
    desk.answer(&mut net, &first, Codec::Pcmu);
    // A caller on shard 1 asks for a callback (this number) and is hung up on.
    let mut caller = Caller::new("127.0.0.1:7060", &call_id_on(&net, "cb", 1));
    let (call, _) = join_sales(&mut net, &mut caller);
    press(&mut net, &mut caller, call, Digit::D3);
    press(&mut net, &mut caller, call, Digit::D1);
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

/// The queue events the hub logged, in order.
fn hub_queue_events(net: &ShardedNet) -> Vec<ivr_queues::QueueEvent> {
    net.hub_events
        .iter()
        .filter_map(|e| match e {
            Event::Queue { event, .. } => Some(event.clone()),
            _ => None,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// `queue_exit_keys.rs`'s order property over three shards with delayed hub links:
    /// callers arrive on their shards while the only agent is busy, some ask for a callback
    /// (typing a number) and hang up; once the agent is free everyone is served in arrival
    /// order, a callback in its caller's place, dialled on the shard the hub chose.
    #[test]
    fn a_callback_keeps_its_place_among_random_arrivals_over_delayed_links(
        arrivals in proptest::collection::vec((any::<bool>(), 0u64..8), 1..6)
    ) {
        use ivr_queues::{QueueEvent, Waiter};
        let link = Link::Delayed(Duration::from_millis(5));
        let mut net = ShardedNet::with_config(callback_menus_for("\"0\""), 3, link, |c| {
            c.media_timeout = Duration::from_secs(3600)
        });
        let desk = Agent::new("desk", 7300);
        let trunk = Agent::new("trunk", 7400);
        let mut busy = Caller::new("127.0.0.1:7050", "busy");
        join_sales(&mut net, &mut busy);
        let first = desk.take_invite(&mut net);
        desk.answer(&mut net, &first, Codec::Pcmu);
        let mut arrived = Vec::new();
        for (i, (callback, pause)) in arrivals.iter().enumerate() {
            let mut c = Caller::new(&format!("127.0.0.1:{}", 7600 + i * 10), &format!("r{i}"));
            let (call, _) = join_sales(&mut net, &mut c);
            if *callback {
                press(&mut net, &mut c, call, Digit::D3);
                for d in format!("049000000{i}").chars().filter_map(Digit::from_char).chain([Digit::Pound]) {
                    press(&mut net, &mut c, call, d);
                }
                net.advance(Duration::from_secs(1));
                press(&mut net, &mut c, call, Digit::D1);
                net.advance(Duration::from_secs(5));
                let msgs = net.take_sip(c.addr);
                let bye = ivr_tests::caller::request(&msgs, "BYE").expect("hung up after the request").clone();
                net.send_sip(Transport::Udp, c.addr, &c.ok_to(&bye));
            }
            arrived.push(call);
            net.advance(Duration::from_secs(*pause));
        }
        let bye = busy.in_dialog("BYE", "", "");
        net.send_sip(Transport::Udp, busy.addr, &bye);
        net.advance(Duration::from_millis(200));
        let take_offer = |net: &mut ShardedNet| {
            let msgs = net.take_sip(desk.addr);
            for m in &msgs {
                if let Message::Request(r) = m && r.method.as_str() == "BYE" {
                    desk.send(net, &desk.respond(r, 200, None));
                }
            }
            ivr_tests::caller::request(&msgs, "INVITE").cloned()
        };
        let mut invite = take_offer(&mut net).expect("the desk is offered the next waiter");
        let mut served = Vec::new();
        for _ in 0..arrivals.len() {
            let events = hub_queue_events(&net);
            let offered = events.iter().rev().find_map(|e| match e {
                QueueEvent::Offer { waiter, .. } => Some(*waiter),
                _ => None,
            }).expect("an offer");
            let who = match offered {
                Waiter::Caller(c) => c,
                Waiter::Callback(id) => events.iter().find_map(|e| match e {
                    QueueEvent::CallbackRequested { callback, call, .. } if *callback == id => Some(*call),
                    _ => None,
                }).expect("its request"),
            };
            served.push(CallHandle(who.0));
            desk.answer(&mut net, &invite, Codec::Pcmu);
            if matches!(offered, Waiter::Callback(_)) {
                net.advance(Duration::from_millis(100));
                let dial = trunk.take_invite(&mut net);
                trunk.answer(&mut net, &dial, Codec::Pcmu);
            }
            net.advance(Duration::from_secs(2));
            // A branch of its own per BYE: the same one twice within Timer J would be
            // taken for a retransmission (RFC 3261 §17.2.3).
            let bye = String::from_utf8(desk.bye(&invite)).expect("text").replace(
                "z9hG4bK-desk-bye",
                &format!("z9hG4bK-desk-{}-bye", served.len()),
            );
            desk.send(&mut net, bye.as_bytes());
            net.advance(Duration::from_millis(200));
            net.take_sip(trunk.addr);
            match take_offer(&mut net) {
                Some(next) => invite = next,
                None => break,
            }
        }
        prop_assert_eq!(served, arrived);
        prop_assert!(net.hub.queue_line("sales").is_empty());
        prop_assert!(net.handoffs.is_empty());
    }
}

/// A bridged transfer whose first DNS target stays silent fails over to the next with a
/// fresh INVITE (`fresh_call_id`): both Call-IDs are steered to the caller's shard, so the
/// late target's ringing and the next target's answer reach the call there, on whichever
/// of three shards it lives; nothing is handed over.
#[test]
fn a_transfer_failing_over_to_the_next_dns_target_hears_its_answers_on_the_callers_shard() {
    let yaml = r#"
entry: main
prompts:
  main_en: prompts/main_en.wav
  goodbye_en: prompts/goodbye_en.wav
  sales_en: prompts/sales_en.wav
destinations:
  desk: { uri: "sip:desk@pbx.example.com", mode: bridge, ring_timeout: 10, on_failure: { play: sales_en } }
menus:
  main:
    prompt: main_en
    timeout: 6
    retries: 5
    options:
      "0": { transfer: desk }
      "9": { hangup: goodbye_en }
"#;
    let mut net = ShardedNet::new(ivr_tests::caller::demo_variant(yaml), 3, Link::Immediate);
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
        let (call, shard) = connect(&mut net, &mut caller);
        assert_eq!(shard, home);
        net.advance(Duration::from_millis(500));
        press(&mut net, &mut caller, call, Digit::D0);
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
