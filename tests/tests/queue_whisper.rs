//! The agent's whisper in virtual time: the agent hears the queue's `whisper:` prompt before
//! the caller, either side hanging up during it, and the dead agent leg left without timers
//! or dialog. No sockets, no sleeping.

mod queue_common;
use queue_common::*;

use ivr_audio::Codec;
use ivr_engine::{CallHandle, EndReason, Event};
use ivr_queues::{AgentState, QueueEvent};
use ivr_sip::Transport;
use ivr_sip::header::HeaderName;
use ivr_sip::message::{CoreHeaders, Request};
use ivr_tests::caller::{Caller, Net, request, response};
use std::sync::Arc;
use std::time::Duration;

/// Menus whose queue whispers `whisper_en` to the agent and has 3 s of wrap-up.
fn whisper_menus(agents: &str) -> Arc<ivr_menus::Menus> {
    menus_with(
        "linear",
        agents,
        "    whisper: whisper_en\n    wrap_up: 3\n",
    )
}

/// The whisper's payload in `codec`, as [`relayed`] collects it (all-silence frames left out).
fn whisper_payload(menus: &ivr_menus::Menus, codec: Codec) -> Vec<u8> {
    let id = menus.find_prompt("whisper_en").expect("the whisper prompt");
    let prompt = menus.prompt_in(id, 0);
    (0..prompt.frame_count())
        .filter_map(|i| prompt.frame(codec, i))
        .filter(|f| f.iter().any(|b| *b != codec.silence()))
        .flatten()
        .copied()
        .collect()
}

/// A static agent answers the caller of a queue with a whisper: returns the caller's call
/// and the agent's INVITE, with the whisper just begun.
fn answered_with_whisper(
    net: &mut Net,
    caller: &mut Caller,
    desk: &Agent,
) -> (CallHandle, Request) {
    let call = join(net, caller);
    let invite = desk.take_invite(net);
    desk.answer(net, &invite, Codec::Pcma);
    assert!(matches!(state(net, "desk"), AgentState::OnCall { .. }));
    assert!(
        !net.events
            .iter()
            .any(|e| matches!(e, Event::Bridged { .. })),
        "not bridged during the whisper"
    );
    (call, invite)
}

#[test]
fn the_agent_hears_the_whisper_before_any_of_the_callers_audio_then_they_talk() {
    let menus = whisper_menus(&fixed("desk", "127.0.0.1:7310"));
    let whisper = whisper_payload(&menus, Codec::Pcma);
    assert!(whisper.len() > 8000, "a whisper of more than a second");
    let mut net = Net::new(menus);
    let desk = Agent::new("desk", 7310);
    let mut caller = Caller::new("127.0.0.1:7030", "queue-whisper-1");
    let (call, _) = answered_with_whisper(&mut net, &mut caller, &desk);
    let agent_leg = call.leg(1);
    // The caller talks all along; the agent hears the whisper first, and the caller hears
    // the queue's music meanwhile.
    // Noise that never repeats: where the agent's audio begins in it is unambiguous.
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let pcm: Vec<i16> = (0..160 * 250)
        .map(|_| {
            // xorshift64 (Marsaglia)
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 52) as i16 - 2048
        })
        .collect();
    let mut talk = Vec::new();
    let mut bridged_after = None;
    for (i, p) in caller.audio_packets(&pcm).into_iter().enumerate() {
        talk.extend(
            p[12..]
                .iter()
                .map(|u| Codec::Pcma.encode(Codec::Pcmu.decode(*u))),
        );
        net.send_rtp(call.leg(0), caller.media, &p);
        net.advance(Duration::from_millis(20));
        if bridged_after.is_none()
            && net.events.iter().any(
                |e| matches!(e, Event::Bridged { destination, .. } if destination == "agent desk"),
            )
        {
            bridged_after = Some(i);
            assert!(
                hears_sound(&net, call, 10),
                "the caller heard music until then"
            );
        }
    }
    let bridged_after = bridged_after.expect("bridged once the whisper has played");
    // (The whisper began with the answer, a few packets before this loop.)
    assert!(
        (bridged_after + 5) * 160 >= whisper.len(),
        "not before the whisper's end ({bridged_after} packets)"
    );
    let got = relayed(&net, agent_leg, 0, Codec::Pcma);
    assert!(
        got.starts_with(&whisper),
        "the agent hears the whisper first ({} bytes of {})",
        got.len(),
        whisper.len()
    );
    // Then the caller, from the packet the bridge began with: none of it before.
    let after = &got[whisper.len()..];
    assert!(after.len() >= 160 * 50, "then the caller's audio");
    let first = &after[..160];
    let at = talk
        .windows(160)
        .position(|w| w == first)
        .expect("what follows the whisper is the caller's audio");
    assert!(
        at >= bridged_after * 160 - 160 * 2,
        "none from before the bridge: at {at}, bridged after {bridged_after}, whisper {}, got {}",
        whisper.len(),
        got.len()
    );
    assert!(
        talk[at..].starts_with(after),
        "the caller's audio, in order"
    );
}

#[test]
fn the_caller_hanging_up_during_the_whisper_hangs_up_the_agent_who_wraps_up() {
    let mut net = Net::new(whisper_menus(&fixed("desk", "127.0.0.1:7320")));
    let desk = Agent::new("desk", 7320);
    let mut caller = Caller::new("127.0.0.1:7040", "queue-whisper-2");
    let (call, invite) = answered_with_whisper(&mut net, &mut caller, &desk);
    net.advance(Duration::from_millis(300));
    let bye = caller.in_dialog("BYE", "", "");
    net.send_sip(Transport::Udp, caller.addr, &bye);
    let msgs = net.take_sip(desk.addr);
    let agent_bye = request(&msgs, "BYE").expect("the agent's leg gets BYE");
    assert_eq!(agent_bye.call_id().unwrap(), invite.call_id().unwrap());
    desk.send(&mut net, &desk.respond(agent_bye, 200, None));
    assert_eq!(net.ended(call), Some(EndReason::CallerHungUp));
    assert!(
        !net.events
            .iter()
            .any(|e| matches!(e, Event::Bridged { .. })),
        "never bridged"
    );
    assert!(
        queue_events(&net)
            .iter()
            .any(|e| matches!(e, QueueEvent::Complete { agent, .. } if agent.0 == "desk"))
    );
    assert!(matches!(state(&net, "desk"), AgentState::WrapUp { .. }));
    net.advance(Duration::from_secs(3));
    assert_eq!(
        state(&net, "desk"),
        AgentState::Available,
        "free after wrap-up"
    );
    assert_eq!(net.engine.queue_waiting("sales"), 0);
    assert!(net.media.is_empty(), "both media sockets closed");
}

#[test]
fn the_agent_hanging_up_during_the_whisper_puts_the_caller_back_in_its_place() {
    let mut net = Net::new(whisper_menus(&fixed("desk", "127.0.0.1:7330")));
    let desk = Agent::new("desk", 7330);
    let mut caller = Caller::new("127.0.0.1:7050", "queue-whisper-3");
    let (call, invite) = answered_with_whisper(&mut net, &mut caller, &desk);
    net.advance(Duration::from_millis(300));
    desk.send(&mut net, &desk.bye(&invite));
    assert!(response(&net.take_sip(desk.addr), 200).is_some());
    assert!(net.ended(call).is_none(), "the caller stays");
    assert!(
        net.take_sip(caller.addr).is_empty(),
        "nothing for the caller"
    );
    assert_eq!(net.engine.queue_waiting("sales"), 1, "back in line");
    assert!(
        queue_events(&net)
            .iter()
            .any(|e| matches!(e, QueueEvent::Requeue { agent, .. } if agent.0 == "desk"))
    );
    assert_eq!(state(&net, "desk"), AgentState::Available, "no wrap-up");
    wait(&mut net, &mut caller, call, 2);
    assert!(hears_sound(&net, call, 10), "the music goes on");
    // After its rest the agent is rung again for the caller; this time it listens.
    wait(&mut net, &mut caller, call, 5);
    let again = desk.take_invite(&mut net);
    desk.answer(&mut net, &again, Codec::Pcma);
    wait(&mut net, &mut caller, call, 8);
    assert!(
        net.events.iter().any(
            |e| matches!(e, Event::Bridged { destination, .. } if destination == "agent desk")
        )
    );
    assert_eq!(net.engine.queue_waiting("sales"), 0);
}

/// The agent hangs up during the whisper; later its dead dialog sends another BYE (a new
/// transaction: a broken or hostile phone). The caller, back in line, must not be hung up.
#[test]
fn a_second_bye_in_the_dialog_of_an_agent_who_hung_up_during_the_whisper_is_refused() {
    let mut net = Net::new(whisper_menus(&fixed("desk", "127.0.0.1:7340")));
    let desk = Agent::new("desk", 7340);
    let mut caller = Caller::new("127.0.0.1:7060", "queue-whisper-4");
    let (call, invite) = answered_with_whisper(&mut net, &mut caller, &desk);
    net.advance(Duration::from_millis(300));
    desk.send(&mut net, &desk.bye(&invite));
    assert!(response(&net.take_sip(desk.addr), 200).is_some());
    assert_eq!(net.engine.queue_waiting("sales"), 1, "back in line");
    wait(&mut net, &mut caller, call, 1);
    let again = String::from_utf8(desk.bye(&invite))
        .unwrap()
        .replace("CSeq: 1 BYE", "CSeq: 2 BYE")
        .replace("-bye\r\n", "-bye2\r\n");
    desk.send(&mut net, again.as_bytes());
    assert!(
        response(&net.take_sip(desk.addr), 481).is_some(),
        "that dialog is gone"
    );
    assert!(net.ended(call).is_none(), "the caller stays");
    assert_eq!(net.engine.queue_waiting("sales"), 1, "still in line");
    assert!(
        net.take_sip(caller.addr).is_empty(),
        "nothing for the caller"
    );
}

/// An agent whose answer set a session timer with us as the refresher (RFC 4028) hangs up
/// during the whisper: its dead leg must neither refresh nor expire, which would send a
/// re-INVITE into a finished dialog and hang up the caller waiting on in the queue.
#[test]
fn the_session_timer_of_an_agent_who_hung_up_during_the_whisper_dies_with_its_leg() {
    let menus = menus_with(
        "linear",
        &fixed("desk", "127.0.0.1:7350"),
        "    whisper: whisper_en\n    max_wait: 120\n",
    );
    let mut net = Net::new(menus);
    let desk = Agent::new("desk", 7350);
    let mut caller = Caller::new("127.0.0.1:7070", "queue-whisper-5");
    let call = join(&mut net, &mut caller);
    let invite = desk.take_invite(&mut net);
    desk.send(&mut net, &desk.respond(&invite, 180, None));
    let ok = String::from_utf8(desk.respond(&invite, 200, Some(&desk.sdp(Codec::Pcma))))
        .unwrap()
        .replacen(
            "\r\n",
            "\r\nRequire: timer\r\nSession-Expires: 90;refresher=uac\r\n",
            1,
        );
    desk.send(&mut net, ok.as_bytes());
    assert!(request(&net.take_sip(desk.addr), "ACK").is_some());
    assert!(matches!(state(&net, "desk"), AgentState::OnCall { .. }));
    net.advance(Duration::from_millis(300));
    desk.send(&mut net, &desk.bye(&invite));
    assert!(response(&net.take_sip(desk.addr), 200).is_some());
    // The caller waits on (the desk is rung again and lets it ring), past the dead
    // session's refresh (45 s after the answer) and expiry (60 s).
    let dead = invite.call_id().unwrap().to_string();
    for _ in 0..70 {
        wait(&mut net, &mut caller, call, 1);
        let msgs = net.take_sip(desk.addr);
        assert!(
            !msgs
                .iter()
                .any(|m| m.headers().get(&HeaderName::CallId) == Some(dead.as_str())),
            "nothing more in the finished dialog: {msgs:?}"
        );
        assert!(net.ended(call).is_none(), "the caller is not hung up");
    }
}

/// An agent's phone that answers `a=sendonly` (or `inactive`) is sent nothing, so the
/// whisper, paced by the packets sent, would never end: the caller must still be put
/// through once the whisper's time has passed, not wait with music until a timeout.
#[test]
fn the_caller_is_put_through_even_if_the_whisper_cannot_be_sent_to_the_agent() {
    let menus = whisper_menus(&fixed("desk", "127.0.0.1:7370"));
    let id = menus.find_prompt("whisper_en").expect("the whisper prompt");
    let length = Duration::from_millis(20 * menus.prompt_in(id, 0).frame_count() as u64);
    let mut net = Net::new(menus);
    let desk = Agent::new("desk", 7370);
    let mut caller = Caller::new("127.0.0.1:7090", "queue-whisper-7");
    let call = join(&mut net, &mut caller);
    let invite = desk.take_invite(&mut net);
    desk.send(&mut net, &desk.respond(&invite, 180, None));
    let sdp = desk.sdp(Codec::Pcma).replace("a=sendrecv", "a=sendonly");
    desk.send(&mut net, &desk.respond(&invite, 200, Some(&sdp)));
    assert!(request(&net.take_sip(desk.addr), "ACK").is_some());
    assert!(matches!(state(&net, "desk"), AgentState::OnCall { .. }));
    let bridged = |net: &Net| {
        net.events
            .iter()
            .any(|e| matches!(e, Event::Bridged { destination, .. } if destination == "agent desk"))
    };
    wait(&mut net, &mut caller, call, length.as_secs() + 2);
    assert!(bridged(&net), "put through after the whisper's time");
    assert!(net.ended(call).is_none());
}
