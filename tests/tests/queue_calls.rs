//! Call-center queues in virtual time: a scripted caller chooses `queue: sales`, the engine's
//! queue center offers the call to scripted agents (registered with digest, or static), and
//! the engine rings them, bridges the one who answers, cancels the others, and sends callers
//! nobody served to the queue's `on_timeout`. No sockets, no sleeping.

mod queue_common;
use queue_common::*;

use ivr_audio::{Codec, Digit};
use ivr_engine::{CallHandle, EndReason, Event};
use ivr_queues::{AgentState, QueueEvent};
use ivr_sip::Transport;
use ivr_sip::header::HeaderName;
use ivr_sip::message::{CoreHeaders, Request};
use ivr_tests::caller::{Caller, Net, request, response};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn a_registered_agent_is_rung_at_its_source_answers_and_talks_both_ways() {
    let mut net = Net::new(menus("longest_idle", &registered("alice", "pw-alice")));
    let mut alice = Agent::new("alice", 7200);
    // Behind NAT: its contact names a private address; the REGISTER comes from 7200.
    alice.register(&mut net, "pw-alice", "10.9.9.9:5060");
    assert_eq!(state(&net, "alice"), AgentState::Available, "logged in");

    let mut caller = Caller::new("127.0.0.1:7000", "queue-1");
    let call = join(&mut net, &mut caller);
    assert!(
        net.events
            .iter()
            .any(|e| matches!(e, Event::LeftMenus { to, .. } if to == "queue sales"))
    );
    let invite = alice.take_invite(&mut net);
    assert_eq!(invite.uri.to_string(), "sip:alice@10.9.9.9:5060");
    let header = |n: &str| {
        invite
            .headers
            .get(&HeaderName::from_wire(n))
            .map(str::to_string)
    };
    assert_eq!(header("X-IVR-Queue").as_deref(), Some("sales"));
    assert_eq!(header("X-IVR-Path").as_deref(), Some("main"));
    assert_eq!(header("X-IVR-Variables").as_deref(), Some("account=4711"));
    assert!(matches!(state(&net, "alice"), AgentState::Ringing { .. }));
    // While it rings the caller hears the queue's music.
    net.advance(Duration::from_secs(1));
    assert!(hears_sound(&net, call, 10), "music plays");

    alice.answer(&mut net, &invite, Codec::Pcma);
    assert!(net.events.iter().any(|e| matches!(e,
        Event::Bridged { destination, call_id, .. }
            if destination == "agent alice" && call_id == invite.call_id().unwrap())));
    assert!(matches!(state(&net, "alice"), AgentState::OnCall { .. }));
    assert!(
        queue_events(&net)
            .iter()
            .any(|e| matches!(e, QueueEvent::Answer { agent, .. } if agent.0 == "alice"))
    );

    // Caller -> agent: PCMU in, PCMA out, sample by sample.
    let agent_leg = call.leg(1);
    let start = sent_count(&net, agent_leg);
    let pcm = waveform(160 * 25);
    let mut expected = Vec::new();
    for p in caller.audio_packets(&pcm) {
        expected.extend(
            p[12..]
                .iter()
                .map(|u| Codec::Pcma.encode(Codec::Pcmu.decode(*u))),
        );
        net.send_rtp(call.leg(0), caller.media, &p);
        net.advance(Duration::from_millis(20));
    }
    net.advance(Duration::from_millis(200));
    let got = relayed(&net, agent_leg, start, Codec::Pcma);
    assert!(got == expected, "the agent hears the caller");
    assert!(
        net.rtp[&agent_leg][start..]
            .iter()
            .all(|p| p.to == alice.media),
        "to the agent's media address"
    );

    // Agent -> caller: PCMA in, PCMU out.
    let start = sent_count(&net, call.leg(0));
    let mut expected = Vec::new();
    for chunk in waveform(160 * 25).chunks(160) {
        let p = alice.audio(Codec::Pcma, chunk);
        expected.extend(
            p[12..]
                .iter()
                .map(|a| Codec::Pcmu.encode(Codec::Pcma.decode(*a))),
        );
        net.send_rtp(agent_leg, alice.media, &p);
        net.advance(Duration::from_millis(20));
    }
    net.advance(Duration::from_millis(200));
    assert!(
        relayed(&net, call.leg(0), start, Codec::Pcmu) == expected,
        "the caller hears the agent"
    );

    // The agent hangs up: the caller's leg gets BYE, the agent wraps up (0 s: available).
    alice.send(&mut net, &alice.bye(&invite));
    assert!(response(&net.take_sip(alice.addr), 200).is_some());
    let msgs = net.take_sip(caller.addr);
    let bye = request(&msgs, "BYE")
        .expect("the caller's leg ends")
        .clone();
    net.send_sip(Transport::Udp, caller.addr, &caller.ok_to(&bye));
    assert_eq!(net.ended(call), Some(EndReason::DestinationHungUp));
    assert!(
        queue_events(&net)
            .iter()
            .any(|e| matches!(e, QueueEvent::Complete { agent, .. } if agent.0 == "alice"))
    );
    net.advance(Duration::from_millis(100));
    assert_eq!(state(&net, "alice"), AgentState::Available);
    assert!(net.media.is_empty(), "both media sockets closed");
    assert_eq!(net.engine.queue_waiting("sales"), 0);
    // The call's record (issue #12): the queue, the agent and how long the caller waited.
    let [record] = &net.call_records()[..] else {
        panic!("one call record: {:?}", net.call_records())
    };
    let r = (
        record.exit.as_deref(),
        record.exit_to.as_deref(),
        record.queue.as_deref(),
        record.agent.as_deref(),
        record.queue_wait_ms,
        record.end_reason.as_str(),
    );
    assert_eq!(
        r,
        (
            Some("queue"),
            Some("sales"),
            Some("sales"),
            Some("alice"),
            // The key acts on its first packet; the press lasts 120 ms, then 1 s of ringing.
            Some(1_120),
            "destination_hung_up"
        )
    );
}

#[test]
fn nobody_answers_within_max_wait_so_on_timeout_runs_with_announcements_meanwhile() {
    // bob is configured but never registers: not logged in, never rung.
    let mut net = Net::new(menus("longest_idle", &registered("bob", "pw-bob")));
    let mut caller = Caller::new("127.0.0.1:7010", "queue-2");
    let call = join(&mut net, &mut caller);
    assert_eq!(net.engine.queue_waiting("sales"), 1);
    wait(&mut net, &mut caller, call, 45);
    let announced = net
        .events
        .iter()
        .filter(|e| matches!(e, Event::Playing { prompt, .. } if prompt == "invalid_en"))
        .count();
    assert_eq!(announced, 2, "the announcement at 20 s and 40 s");
    assert!(net.ended(call).is_none(), "still waiting at 45 s");
    wait(&mut net, &mut caller, call, 16);
    assert!(
        queue_events(&net)
            .iter()
            .any(|e| matches!(e, QueueEvent::Timeout { .. }))
    );
    assert!(
        net.events
            .iter()
            .any(|e| matches!(e, Event::Playing { prompt, .. } if prompt == "goodbye_en")),
        "on_timeout: hang up with goodbye"
    );
    wait(&mut net, &mut caller, call, 10);
    let msgs = net.take_sip(caller.addr);
    let bye = request(&msgs, "BYE").expect("the engine hangs up").clone();
    net.send_sip(Transport::Udp, caller.addr, &caller.ok_to(&bye));
    assert_eq!(net.ended(call), Some(EndReason::MenuHangup));
    assert_eq!(net.engine.queue_waiting("sales"), 0);
}

#[test]
fn a_caller_hanging_up_while_the_agent_rings_cancels_it_and_frees_the_agent() {
    let mut net = Net::new(menus("linear", &fixed("desk", "127.0.0.1:7300")));
    let desk = Agent::new("desk", 7300);
    let mut caller = Caller::new("127.0.0.1:7020", "queue-3");
    let call = join(&mut net, &mut caller);
    let invite = desk.take_invite(&mut net);
    assert_eq!(invite.uri.to_string(), "sip:desk@127.0.0.1:7300");
    desk.send(&mut net, &desk.respond(&invite, 180, None));
    net.advance(Duration::from_secs(2));
    let bye = caller.in_dialog("BYE", "", "");
    net.send_sip(Transport::Udp, caller.addr, &bye);
    assert_eq!(net.ended(call), Some(EndReason::CallerHungUp));
    let msgs = net.take_sip(desk.addr);
    let cancel = request(&msgs, "CANCEL").expect("the ringing phone is cancelled");
    desk.send(&mut net, &desk.respond(cancel, 200, None));
    desk.send(&mut net, &desk.respond(&invite, 487, None));
    assert!(request(&net.take_sip(desk.addr), "ACK").is_some());
    assert!(
        queue_events(&net)
            .iter()
            .any(|e| matches!(e, QueueEvent::Abandon { .. }))
    );
    assert_eq!(state(&net, "desk"), AgentState::Available, "not stuck");
    assert_eq!(net.engine.queue_waiting("sales"), 0);
    net.advance(Duration::from_secs(40));
    assert!(net.media.is_empty());
    assert!(
        net.take_sip(desk.addr).is_empty(),
        "nothing more for the desk"
    );
}

#[test]
fn ring_all_rings_both_the_first_answer_wins_and_the_other_is_cancelled() {
    let agents = format!(
        "{}{}",
        fixed("ann", "127.0.0.1:7400"),
        fixed("ben", "127.0.0.1:7500")
    );
    let mut net = Net::new(menus("ring_all", &agents));
    let ann = Agent::new("ann", 7400);
    let ben = Agent::new("ben", 7500);
    let mut caller = Caller::new("127.0.0.1:7030", "queue-4");
    let call = join(&mut net, &mut caller);
    let to_ann = ann.take_invite(&mut net);
    let to_ben = ben.take_invite(&mut net);
    ann.send(&mut net, &ann.respond(&to_ann, 180, None));
    ben.send(&mut net, &ben.respond(&to_ben, 180, None));
    net.advance(Duration::from_secs(3));
    ben.answer(&mut net, &to_ben, Codec::Pcmu);
    let msgs = net.take_sip(ann.addr);
    let cancel = request(&msgs, "CANCEL").expect("the other phone stops ringing");
    ann.send(&mut net, &ann.respond(cancel, 200, None));
    ann.send(&mut net, &ann.respond(&to_ann, 487, None));
    assert!(net.events.iter().any(|e| matches!(e,
        Event::Bridged { destination, .. } if destination == "agent ben")));
    assert!(matches!(state(&net, "ben"), AgentState::OnCall { .. }));
    assert_eq!(state(&net, "ann"), AgentState::Available);

    // The caller's audio reaches ben (leg 2: ann's was leg 1).
    let ben_leg = call.leg(2);
    let start = sent_count(&net, ben_leg);
    for p in caller.audio_packets(&waveform(160 * 10)) {
        net.send_rtp(call.leg(0), caller.media, &p);
        net.advance(Duration::from_millis(20));
    }
    net.advance(Duration::from_millis(200));
    assert!(!relayed(&net, ben_leg, start, Codec::Pcmu).is_empty());

    // The caller hangs up: ben's leg gets BYE, ben wraps up.
    let bye = caller.in_dialog("BYE", "", "");
    net.send_sip(Transport::Udp, caller.addr, &bye);
    let msgs = net.take_sip(ben.addr);
    let bye = request(&msgs, "BYE").expect("the agent's leg ends").clone();
    ben.send(&mut net, &ben.respond(&bye, 200, None));
    assert_eq!(net.ended(call), Some(EndReason::CallerHungUp));
    assert_eq!(state(&net, "ben"), AgentState::Available);
}

#[test]
fn an_agent_who_does_not_answer_is_cancelled_at_agent_timeout_and_the_next_is_rung() {
    let agents = format!(
        "{}{}",
        fixed("ann", "127.0.0.1:7400"),
        fixed("ben", "127.0.0.1:7500")
    );
    let mut net = Net::new(menus("linear", &agents));
    let ann = Agent::new("ann", 7400);
    let ben = Agent::new("ben", 7500);
    let mut caller = Caller::new("127.0.0.1:7040", "queue-5");
    let _call = join(&mut net, &mut caller);
    let to_ann = ann.take_invite(&mut net);
    assert!(net.take_sip(ben.addr).is_empty(), "linear: ann first");
    ann.send(&mut net, &ann.respond(&to_ann, 180, None));
    net.advance(Duration::from_secs(11));
    let msgs = net.take_sip(ann.addr);
    let cancel = request(&msgs, "CANCEL").expect("cancelled at agent_timeout");
    ann.send(&mut net, &ann.respond(cancel, 200, None));
    // ann answers as the CANCEL crosses: the engine acknowledges and hangs up that answer.
    ann.send(
        &mut net,
        &ann.respond(&to_ann, 200, Some(&ann.sdp(Codec::Pcmu))),
    );
    let msgs = net.take_sip(ann.addr);
    assert!(
        request(&msgs, "ACK").is_some() && request(&msgs, "BYE").is_some(),
        "{msgs:?}"
    );
    assert_eq!(
        state(&net, "ann"),
        AgentState::Available,
        "not on a call nobody is on"
    );
    let to_ben = ben.take_invite(&mut net);
    ben.answer(&mut net, &to_ben, Codec::Pcmu);
    assert!(net.events.iter().any(|e| matches!(e,
        Event::Bridged { destination, .. } if destination == "agent ben")));
    assert!(queue_events(&net).iter().any(|e| matches!(e,
        QueueEvent::OfferFailed { agent, .. } if agent.0 == "ann")));
}

#[test]
fn an_agent_that_unregisters_logs_out_and_one_that_expires_is_not_rung() {
    let mut net = Net::new(menus("linear", &registered("alice", "pw-alice")));
    let alice = Agent::new("alice", 7200);
    alice.register(&mut net, "pw-alice", "127.0.0.1:7200");
    assert_eq!(state(&net, "alice"), AgentState::Available);
    alice.register_as(&mut net, "pw-alice", "*", 0, 5);
    assert_eq!(
        state(&net, "alice"),
        AgentState::LoggedOut,
        "no binding left"
    );

    // Registered again, then the binding expires: still logged in, but not rung.
    alice.register_as(&mut net, "pw-alice", "<sip:alice@127.0.0.1:7200>", 60, 9);
    assert_eq!(state(&net, "alice"), AgentState::Available);
    net.advance(Duration::from_secs(61));
    assert_eq!(net.engine.registered_agents(), 0);
    let mut caller = Caller::new("127.0.0.1:7050", "queue-6");
    let call = join(&mut net, &mut caller);
    wait(&mut net, &mut caller, call, 5);
    assert!(
        request(&net.take_sip(alice.addr), "INVITE").is_none(),
        "an unreachable agent is not rung"
    );
    assert_eq!(net.engine.queue_waiting("sales"), 1);
}

#[test]
fn a_caller_behind_another_hears_its_position_and_estimated_wait() {
    let mut net = Net::new(menus("linear", &fixed("desk", "127.0.0.1:7300")));
    let desk = Agent::new("desk", 7300);
    let mut first = Caller::new("127.0.0.1:7060", "queue-7");
    let _a = join(&mut net, &mut first);
    let invite = desk.take_invite(&mut net);
    desk.answer(&mut net, &invite, Codec::Pcmu);
    let before = net.events.len();
    let mut second = Caller::new("127.0.0.1:7062", "queue-8");
    let b = join(&mut net, &mut second);
    let heard: Vec<String> = net.events[before..]
        .iter()
        .filter_map(|e| match e {
            Event::Playing { call, prompt, .. } if *call == b && prompt != "main_en" => {
                Some(prompt.clone())
            }
            _ => None,
        })
        .collect();
    // First in line; one agent working (on a call), 3 minutes assumed per call: 3 minutes.
    assert_eq!(
        heard,
        [
            "queue_position",
            "number_1",
            "queue_wait",
            "number_3",
            "queue_minutes"
        ]
    );
    assert_eq!(net.engine.queue_waiting("sales"), 1);
}

/// Key 2 joins `sales` with priority 5: a caller who arrives after two others waiting at
/// priority 0 goes ahead of them (position 1 at entry) and is the next one offered.
#[test]
fn a_priority_caller_who_arrives_later_is_offered_before_earlier_callers() {
    let mut net = Net::new(menus("linear", &fixed("desk", "127.0.0.1:7300")));
    let desk = Agent::new("desk", 7300);
    let mut first = Caller::new("127.0.0.1:7080", "prio-1");
    let a = join(&mut net, &mut first);
    let invite = desk.take_invite(&mut net);
    desk.answer(&mut net, &invite, Codec::Pcmu);
    // Two callers at priority 0, then one at priority 5, a few seconds apart.
    let mut b_caller = Caller::new("127.0.0.1:7082", "prio-2");
    let b = join(&mut net, &mut b_caller);
    wait(&mut net, &mut b_caller, b, 3);
    let mut c_caller = Caller::new("127.0.0.1:7084", "prio-3");
    let c = join(&mut net, &mut c_caller);
    wait(&mut net, &mut c_caller, c, 3);
    let mut vip = Caller::new("127.0.0.1:7086", "prio-vip");
    let v = net.connect(&mut vip);
    net.advance(Duration::from_millis(500));
    net.press(&mut vip, v, Digit::D2);
    assert_eq!(net.engine.queue_waiting("sales"), 3);
    let entered: Vec<(u64, usize, u8)> = queue_events(&net)
        .iter()
        .filter_map(|e| match e {
            QueueEvent::Enter {
                call,
                position,
                priority,
                ..
            } => Some((call.0, *position, *priority)),
            _ => None,
        })
        .collect();
    assert_eq!(
        entered,
        [(a.0, 1, 0), (b.0, 1, 0), (c.0, 2, 0), (v.0, 1, 5)],
        "the priority caller goes ahead of the two who waited longer"
    );
    let view = net.engine.queue_view(net.now);
    let order: Vec<usize> = view.queues[0].waiting.iter().map(|w| w.position).collect();
    assert_eq!(order, [1, 2, 3]);

    // The desk's call ends: the priority caller is offered, not the earlier two.
    let offers = |net: &Net| -> Vec<u64> {
        queue_events(net)
            .iter()
            .filter_map(|e| match e {
                QueueEvent::Offer {
                    waiter: ivr_queues::Waiter::Caller(c),
                    ..
                } => Some(c.0),
                _ => None,
            })
            .collect()
    };
    assert_eq!(offers(&net), [a.0]);
    desk.send(&mut net, &desk.bye(&invite));
    let msgs = net.take_sip(first.addr);
    let bye = request(&msgs, "BYE").expect("the first call ends").clone();
    net.send_sip(Transport::Udp, first.addr, &first.ok_to(&bye));
    wait(&mut net, &mut vip, v, 1);
    assert_eq!(offers(&net), [a.0, v.0], "the priority caller is next");
    let to_desk = desk.take_invite(&mut net);
    desk.answer(&mut net, &to_desk, Codec::Pcmu);
    assert!(net.ended(v).is_none());
    assert_eq!(
        net.engine.queue_waiting("sales"),
        2,
        "the two earlier callers still wait, in their order"
    );
}

/// The staff view shows the menus each caller came through: for a caller waiting, and for
/// the caller an agent is talking to.
#[test]
fn the_queue_view_shows_the_menus_each_caller_came_through() {
    let mut net = Net::new(menus("linear", &fixed("desk", "127.0.0.1:7300")));
    let desk = Agent::new("desk", 7300);
    let mut first = Caller::new("127.0.0.1:7090", "path-1");
    let a = net.connect(&mut first);
    net.advance(Duration::from_millis(500));
    net.press(&mut first, a, Digit::D3);
    net.advance(Duration::from_millis(500));
    net.press(&mut first, a, Digit::D1);
    let view = net.engine.queue_view(net.now);
    assert_eq!(view.queues[0].waiting[0].path, ["main", "support"]);
    let invite = desk.take_invite(&mut net);
    assert_eq!(
        invite.headers.get(&HeaderName::Other("X-IVR-Path".into())),
        Some("main/support"),
        "the agent's phone gets the same path"
    );
    desk.answer(&mut net, &invite, Codec::Pcmu);
    let mut second = Caller::new("127.0.0.1:7092", "path-2");
    let _b = join(&mut net, &mut second);
    let view = net.engine.queue_view(net.now);
    let waiting: Vec<&[String]> = view.queues[0].waiting.iter().map(|w| &w.path[..]).collect();
    assert_eq!(waiting, [["main"]]);
    let desk_line = view.agents.iter().find(|l| l.name == "desk").unwrap();
    assert!(matches!(desk_line.state, Some(AgentState::OnCall { .. })));
    assert_eq!(
        desk_line.caller_path.as_deref(),
        Some(&["main".to_string(), "support".to_string()][..])
    );
}

#[test]
fn a_reload_keeps_the_agent_logged_in_and_the_waiting_caller_in_line() {
    let mut net = Net::new(menus("linear", &fixed("desk", "127.0.0.1:7300")));
    let desk = Agent::new("desk", 7300);
    let mut first = Caller::new("127.0.0.1:7070", "queue-9");
    let a = join(&mut net, &mut first);
    let invite = desk.take_invite(&mut net);
    desk.answer(&mut net, &invite, Codec::Pcmu);
    let mut second = Caller::new("127.0.0.1:7072", "queue-10");
    let b = join(&mut net, &mut second);
    assert_eq!(net.engine.queue_waiting("sales"), 1);

    // A new config (another strategy, the same agent).
    net.engine
        .set_menus(menus("ring_all", &fixed("desk", "127.0.0.1:7300")));
    wait(&mut net, &mut second, b, 1);
    assert_eq!(
        net.engine.queue_waiting("sales"),
        1,
        "the waiting caller stays"
    );
    assert!(
        matches!(state(&net, "desk"), AgentState::OnCall { .. }),
        "desk stays on its call"
    );

    // The first call ends: the desk is offered the second caller.
    desk.send(&mut net, &desk.bye(&invite));
    let msgs = net.take_sip(first.addr);
    let bye = request(&msgs, "BYE")
        .expect("the first caller's leg ends")
        .clone();
    net.send_sip(Transport::Udp, first.addr, &first.ok_to(&bye));
    assert_eq!(net.ended(a), Some(EndReason::DestinationHungUp));
    wait(&mut net, &mut second, b, 1);
    let msgs = net.take_sip(desk.addr);
    assert!(
        msgs.iter()
            .any(|m| matches!(m, ivr_sip::message::Message::Request(r)
            if r.method.as_str() == "INVITE" && r.call_id().unwrap() != invite.call_id().unwrap())),
        "the second caller rings the desk: {msgs:?}"
    );
}

#[test]
fn every_phone_an_agent_registered_rings_and_the_first_to_answer_takes_the_call() {
    let mut net = Net::new(menus("linear", &registered("alice", "pw-alice")));
    let alice = Agent::new("alice", 7200);
    // A desk phone and a softphone, both behind the same NAT (one REGISTER, two Contacts).
    alice.register_as(
        &mut net,
        "pw-alice",
        "<sip:alice@10.0.0.5:5060>, <sip:alice@10.0.0.6:5062>",
        300,
        1,
    );
    assert_eq!(net.engine.agent_bindings("alice").len(), 2);
    let mut caller = Caller::new("127.0.0.1:7080", "queue-11");
    let call = join(&mut net, &mut caller);
    let msgs = net.take_sip(alice.addr);
    let invites: Vec<Request> = msgs
        .iter()
        .filter_map(|m| match m {
            ivr_sip::message::Message::Request(r) if r.method.as_str() == "INVITE" => {
                Some(r.clone())
            }
            _ => None,
        })
        .collect();
    let mut uris: Vec<String> = invites.iter().map(|i| i.uri.to_string()).collect();
    uris.sort();
    assert_eq!(uris, ["sip:alice@10.0.0.5:5060", "sip:alice@10.0.0.6:5062"]);
    for i in &invites {
        alice.send(&mut net, &alice.respond(i, 180, None));
    }
    // The softphone answers: the desk phone is cancelled, the caller bridged.
    let (soft, desk) = if invites[0].uri.to_string().ends_with("5062") {
        (&invites[0], &invites[1])
    } else {
        (&invites[1], &invites[0])
    };
    alice.send(
        &mut net,
        &alice.respond(soft, 200, Some(&alice.sdp(Codec::Pcmu))),
    );
    let msgs = net.take_sip(alice.addr);
    assert!(
        request(&msgs, "ACK").is_some(),
        "the answer is acknowledged"
    );
    let cancel = request(&msgs, "CANCEL").expect("the other phone stops ringing");
    assert_eq!(cancel.call_id().unwrap(), desk.call_id().unwrap());
    alice.send(&mut net, &alice.respond(cancel, 200, None));
    alice.send(&mut net, &alice.respond(desk, 487, None));
    assert!(net.events.iter().any(|e| matches!(e,
        Event::Bridged { call_id, .. } if call_id == soft.call_id().unwrap())));
    assert!(matches!(state(&net, "alice"), AgentState::OnCall { .. }));
    // One offer, answered: no failure was reported for the cancelled phone.
    assert!(
        !queue_events(&net)
            .iter()
            .any(|e| matches!(e, QueueEvent::OfferFailed { .. }))
    );
    let bye = caller.in_dialog("BYE", "", "");
    net.send_sip(Transport::Udp, caller.addr, &bye);
    assert_eq!(net.ended(call), Some(EndReason::CallerHungUp));
}

#[test]
fn when_every_phone_of_the_agent_fails_the_offer_fails_once() {
    let mut net = Net::new(menus("linear", &registered("alice", "pw-alice")));
    let alice = Agent::new("alice", 7200);
    alice.register_as(
        &mut net,
        "pw-alice",
        "<sip:alice@10.0.0.5:5060>, <sip:alice@10.0.0.6:5062>",
        300,
        1,
    );
    let mut caller = Caller::new("127.0.0.1:7090", "queue-12");
    let _call = join(&mut net, &mut caller);
    let msgs = net.take_sip(alice.addr);
    let invites: Vec<Request> = msgs
        .iter()
        .filter_map(|m| match m {
            ivr_sip::message::Message::Request(r) if r.method.as_str() == "INVITE" => {
                Some(r.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(invites.len(), 2);
    alice.send(&mut net, &alice.respond(&invites[0], 486, None));
    assert!(
        !queue_events(&net)
            .iter()
            .any(|e| matches!(e, QueueEvent::OfferFailed { .. })),
        "the other phone still rings"
    );
    assert!(matches!(state(&net, "alice"), AgentState::Ringing { .. }));
    alice.send(&mut net, &alice.respond(&invites[1], 603, None));
    let failed: Vec<_> = queue_events(&net)
        .into_iter()
        .filter(|e| matches!(e, QueueEvent::OfferFailed { .. }))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(
        net.engine.queue_waiting("sales"),
        1,
        "the caller still waits"
    );
}

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever callers and agents' phones do and whenever, with ring-all or round robin
    /// over two agents ([`crossings`]): the engine never panics, and once every caller has
    /// hung up and time has passed, no call is left, nobody waits, no agent is left
    /// ringing, on a call or in wrap-up, and no socket is left open.
    #[test]
    fn no_agent_or_caller_is_left_behind(acts in proptest::collection::vec(act(), 1..30), ring_all in any::<bool>()) {
        let mut net = Net::new(crossings_menus(ring_all));
        crossings(&mut net, acts)?;
    }
}

#[test]
fn a_static_agent_named_by_host_is_located_by_dns_first() {
    let agents = format!(
        "{}{}",
        fixed("desk", "pbx.example.test"),
        fixed("gone", "nowhere.example.test")
    );
    let mut net = Net::new(menus("linear", &agents));
    let desk = Agent::new("desk", 7300);
    net.dns.insert(
        "pbx.example.test".into(),
        vec![ivr_sip::transaction::Peer {
            transport: Transport::Udp,
            addr: desk.addr,
        }],
    );
    let mut caller = Caller::new("127.0.0.1:7096", "queue-13");
    let call = join(&mut net, &mut caller);
    assert_eq!(net.located, ["sip:desk@pbx.example.test"]);
    let invite = desk.take_invite(&mut net);
    assert_eq!(invite.uri.to_string(), "sip:desk@pbx.example.test");
    // desk declines: the next agent's host is not found, so that offer fails at once.
    desk.send(&mut net, &desk.respond(&invite, 603, None));
    wait(&mut net, &mut caller, call, 1);
    assert_eq!(
        net.located,
        ["sip:desk@pbx.example.test", "sip:gone@nowhere.example.test"]
    );
    assert!(net.events.iter().any(|e| matches!(e,
        Event::RouteUnresolved { next_hop, .. } if next_hop == "sip:gone@nowhere.example.test")));
    assert!(queue_events(&net).iter().any(|e| matches!(e,
        QueueEvent::OfferFailed { agent, why: ivr_queues::OfferFailure::Unreachable, .. }
            if agent.0 == "gone")));
    assert_eq!(
        net.engine.queue_waiting("sales"),
        1,
        "the caller still waits"
    );
}

/// Menus with no queue prompts of their own (the built-in ones are used), in `languages`
/// (the first the default), `sales` worked by `agents`; `position: false` turns the
/// position announcement off.
fn plain_menus(languages: &str, agents: &str, position: bool) -> Arc<ivr_menus::Menus> {
    let yaml = format!(
        r#"
entry: main
languages:
  enabled: [{languages}]
prompts:
  main: prompts/main_en.wav
  goodbye: prompts/goodbye_en.wav
queues:
  sales:
    strategy: linear
    max_wait: 600
    announce_position: {position}
    on_timeout: {{ hangup: goodbye }}
agents:
{agents}
menus:
  main:
    prompt: main
    options:
      "1": {{ queue: sales }}
"#
    );
    ivr_tests::caller::demo_variant(&yaml)
}

/// What `call` was played (name, language) from event `from` on, menus and music aside.
fn announced(net: &Net, from: usize, call: CallHandle) -> Vec<(String, Option<String>)> {
    net.events[from..]
        .iter()
        .filter_map(|e| match e {
            Event::Playing {
                call: c,
                prompt,
                language,
            } if *c == call && prompt != "main" => Some((prompt.clone(), language.clone())),
            _ => None,
        })
        .collect()
}

/// Two agents on calls and two callers waiting: the fifth caller is number 3 in line, and
/// 3 × 3 min ÷ 2 agents = 4.5, so about 5 minutes. With no recordings of its own the config
/// gets the built-in phrases and number words, in the caller's language.
fn hears_position_3_and_5_minutes(language: &str) {
    let languages = if language == "en" { "en, fr" } else { "fr, en" };
    let agents = fixed("desk1", "127.0.0.1:7300") + &fixed("desk2", "127.0.0.1:7310");
    let menus = plain_menus(languages, &agents, true);
    let mut net = Net::new(menus.clone());
    for (i, desk) in [Agent::new("desk1", 7300), Agent::new("desk2", 7310)]
        .iter()
        .enumerate()
    {
        let mut c = Caller::new(&format!("127.0.0.1:{}", 7400 + 2 * i), &format!("ann-{i}"));
        join(&mut net, &mut c);
        let invite = desk.take_invite(&mut net);
        desk.answer(&mut net, &invite, Codec::Pcmu);
    }
    for i in 2..4 {
        let mut c = Caller::new(&format!("127.0.0.1:{}", 7400 + 2 * i), &format!("ann-{i}"));
        join(&mut net, &mut c);
    }
    let before = net.events.len();
    let mut fifth = Caller::new("127.0.0.1:7420", "ann-5");
    let call = join(&mut net, &mut fifth);
    let heard = announced(&net, before, call);
    let names: Vec<&str> = heard.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        names,
        [
            "queue_position",
            "number_3",
            "queue_position_end",
            "queue_wait",
            "number_5",
            "queue_minutes"
        ],
        "\"You are number 3 in line. Your expected wait is about 5 minutes.\""
    );
    assert!(heard.iter().all(|(_, l)| l.as_deref() == Some(language)));
    // And in that language's built-in voice.
    let lang = menus
        .languages()
        .iter()
        .position(|l| l == language)
        .unwrap();
    for name in names {
        let id = menus.find_prompt(name).unwrap();
        let builtin = ivr_server::builtin::prompt(name, language).unwrap();
        let builtin = ivr_audio::Prompt::from_wav(name, &builtin).unwrap();
        assert_eq!(
            menus.prompt_in(id, lang).frame_count(),
            builtin.frame_count(),
            "{name} in {language}"
        );
    }
    assert_eq!(net.engine.queue_waiting("sales"), 3);
}

#[test]
fn built_in_announcements_say_number_3_in_line_and_about_5_minutes_in_english() {
    hears_position_3_and_5_minutes("en");
}

#[test]
fn built_in_announcements_say_number_3_in_line_and_about_5_minutes_in_french() {
    hears_position_3_and_5_minutes("fr");
}

#[test]
fn no_estimate_no_wait_announcement_and_with_the_position_off_nothing_at_all() {
    // bob never registers: nobody works the queue, so the center gives no estimate.
    for position in [true, false] {
        let mut net = Net::new(plain_menus("en", &registered("bob", "pw-bob"), position));
        let before = net.events.len();
        let mut caller = Caller::new("127.0.0.1:7430", "ann-none");
        let call = join(&mut net, &mut caller);
        wait(&mut net, &mut caller, call, 70);
        let names: Vec<String> = announced(&net, before, call)
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        if position {
            assert_eq!(names, ["queue_position", "number_1", "queue_position_end"]);
        } else {
            assert!(names.is_empty(), "nothing plays: {names:?}");
        }
        assert_eq!(net.engine.queue_waiting("sales"), 1);
    }
}

#[test]
fn built_in_queue_phrases_are_left_out_for_a_language_without_them_and_never_mixed() {
    let agents = fixed("desk", "127.0.0.1:7300");
    // German has no built-in voice: no phrase for anyone, rather than English to a German.
    let menus = plain_menus("de, en", &agents, true);
    assert!(menus.find_prompt("queue_position").is_none());
    // English and French: each language has its own; Spanish adds its own number words.
    let menus = plain_menus("en, fr, es", &agents, true);
    for name in ["queue_position", "queue_wait", "number_5", "number_25"] {
        assert!(menus.find_prompt(name).is_some(), "{name}");
    }
    // A config recording one phrase of its own gets none of the built-in phrases.
    let yaml = format!(
        "entry: main\nprompts:\n  main: prompts/main_en.wav\n  queue_wait: prompts/main_en.wav\nqueues:\n  sales: {{}}\nagents:\n{agents}menus:\n  main:\n    prompt: main\n    options:\n      \"1\": {{ queue: sales }}\n"
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo");
    let own = ivr_menus::compile_full(
        &yaml,
        &mut |f| std::fs::read(dir.join(f)).map_err(|e| e.to_string()),
        &mut |_, _| Err("no text-to-speech here".into()),
        &mut ivr_server::builtin::prompt,
    )
    .unwrap();
    assert!(own.find_prompt("queue_position").is_none());
    assert!(
        own.find_prompt("number_5").is_some(),
        "numbers are a set of their own"
    );
}
