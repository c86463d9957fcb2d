//! Satisfaction surveys in virtual time (issue #12): after a bridged queue call the agent
//! hangs up, the caller stays on the line, hears the questions, answers them with RFC 4733
//! keys, hears the thanks and is hung up; the answers go into the call record. A caller
//! who hangs up first gets no survey; invalid keys and timeouts are asked again, then left
//! unanswered. A recorded question takes the caller's comment after a beep: `#`, silence
//! or the hang-up end it, what was said is kept (and linked to the answer), an empty one
//! is dropped. No sockets, no sleeping.

mod queue_common;
use queue_common::*;

use ivr_audio::{Codec, Digit};
use ivr_engine::{CallHandle, EndReason, Event, Input, VoicemailCmd, VoicemailReport};
use ivr_queues::AgentState;
use ivr_sip::Transport;
use ivr_sip::message::Request;
use ivr_tests::caller::{Caller, Net, demo_variant, request, response};
use ivr_voicemail::calls::CallAnswer;
use std::sync::Arc;
use std::time::Duration;

/// Menus whose key 1 joins `sales` with the `after_call` survey (the agent is `desk` at
/// `agent`); key 2 joins it without a survey; key 3 transfers to `desk` (bridged) with the
/// survey.
fn survey_menus(agent: &str) -> Arc<ivr_menus::Menus> {
    let yaml = format!(
        r#"
entry: main
prompts:
  main_en: prompts/main_en.wav
  sales_en: prompts/sales_en.wav
  rate: prompts/sales_en.wav
  recommend: prompts/operator_en.wav
  thanks: prompts/goodbye_en.wav
  oops: prompts/invalid_en.wav
queues:
  sales:
    music: sales_en
    agent_timeout: 10
agents:
  desk:
    uri: sip:desk@{agent}
    queues: {{ sales: 0 }}
destinations:
  operator: {{ uri: "sip:desk@{agent}", mode: bridge }}
surveys:
  after_call:
    invalid: oops
    thanks: thanks
    retries: 1
    questions:
      - {{ name: rating, prompt: rate, keys: 1-5, timeout: 4s }}
      - {{ name: recommend, prompt: recommend, keys: 0-9, timeout: 4s }}
  with_comment:
    thanks: thanks
    questions:
      - {{ name: rating, prompt: rate, keys: 1-5, timeout: 4s }}
      - {{ name: comment, prompt: recommend, record: {{ max_length: 4s, silence: 2s }} }}
menus:
  main:
    prompt: main_en
    options:
      "1": {{ queue: {{ name: sales, survey: after_call }} }}
      "2": {{ queue: sales }}
      "3": {{ transfer: {{ name: operator, survey: after_call }} }}
      "4": {{ queue: {{ name: sales, survey: with_comment }} }}
"#
    );
    demo_variant(&yaml)
}

/// The length of a prompt of `menus`, in milliseconds.
fn ms(menus: &ivr_menus::Menus, name: &str) -> u64 {
    let p = menus.prompt(menus.find_prompt(name).unwrap());
    (p.frame_count() * 20) as u64
}

/// Prompts played to `call` from event `from` on, by name.
fn played(net: &Net, call: CallHandle, from: usize) -> Vec<String> {
    net.events[from..]
        .iter()
        .filter_map(|e| match e {
            Event::Playing {
                call: c, prompt, ..
            } if *c == call => Some(prompt.clone()),
            _ => None,
        })
        .collect()
}

/// The caller presses `key` (1 or 2) and `desk` answers: bridged, talking for 3 s.
fn bridged(net: &mut Net, caller: &mut Caller, desk: &Agent, key: Digit) -> (CallHandle, Request) {
    let call = net.connect(caller);
    net.advance(Duration::from_millis(500));
    net.press(caller, call, key);
    let invite = desk.take_invite(net);
    desk.answer(net, &invite, Codec::Pcmu);
    assert!(
        net.events
            .iter()
            .any(|e| matches!(e, Event::Bridged { .. })),
        "bridged to the agent"
    );
    wait(net, caller, call, 3);
    (call, invite)
}

/// The agent hangs up; the engine answers it and leaves the caller up.
fn agent_hangs_up(net: &mut Net, caller: &Caller, desk: &Agent, invite: &Request) {
    desk.send(net, &desk.bye(invite));
    assert!(response(&net.take_sip(desk.addr), 200).is_some());
    assert!(
        request(&net.take_sip(caller.addr), "BYE").is_none(),
        "the caller stays for the survey"
    );
}

/// The engine hangs the caller up; the caller answers its BYE.
fn caller_is_hung_up(net: &mut Net, caller: &Caller) {
    let msgs = net.take_sip(caller.addr);
    let bye = request(&msgs, "BYE").expect("the engine hangs up after the survey");
    net.send_sip(Transport::Udp, caller.addr, &caller.ok_to(bye));
    net.advance(Duration::from_millis(100));
}

fn answer(question: &str, key: Option<&str>, outcome: &str) -> CallAnswer {
    CallAnswer {
        survey: "after_call".into(),
        question: question.into(),
        answer: key.map(str::to_string),
        outcome: outcome.into(),
        recording: None,
    }
}

/// A 440 Hz tone of `len` samples (8 kHz), loud enough to count as voice.
fn tone(len: usize) -> Vec<i16> {
    ivr_audio::tone::sine(8000, 440.0, len, 8000.0)
}

/// `pcm` as the engine hears it through PCMU.
fn through_pcmu(pcm: &[i16]) -> Vec<i16> {
    pcm.iter()
        .map(|s| Codec::Pcmu.decode(Codec::Pcmu.encode(*s)))
        .collect()
}

/// The caller of a `with_comment` survey: bridged by key 4, the agent hangs up, the
/// rating is 3, and the comment's prompt and beep play (the caller sending silence) until
/// its recording starts. Returns the call and the comment's key.
fn until_comment(net: &mut Net, caller: &mut Caller, desk: &Agent) -> (CallHandle, String) {
    let (call, invite) = bridged(net, caller, desk, Digit::D4);
    agent_hangs_up(net, caller, desk, &invite);
    net.advance(Duration::from_millis(300));
    net.press(caller, call, Digit::D3);
    for _ in 0..1_000 {
        if let Some(key) = net.voicemail.iter().find_map(|c| match c {
            VoicemailCmd::StartComment { key, .. } => Some(key.clone()),
            _ => None,
        }) {
            assert!(
                played(net, call, 0).ends_with(&["recommend".into(), "beep".into()]),
                "the prompt, then the beep: {:?}",
                played(net, call, 0)
            );
            return (call, key);
        }
        let p = caller.audio_packet();
        net.send_rtp(call.leg(0), caller.media, &p);
        net.advance(Duration::from_millis(20));
    }
    panic!("the comment never started recording");
}

/// Send `pcm` as 20 ms packets in real (virtual) time.
fn speak(net: &mut Net, caller: &mut Caller, call: CallHandle, pcm: &[i16]) {
    for p in caller.audio_packets(pcm) {
        net.send_rtp(call.leg(0), caller.media, &p);
        net.advance(Duration::from_millis(20));
    }
}

/// What the recorder was asked for the comment: its samples, and whether it was stopped
/// (kept) or discarded.
fn recorded(net: &Net) -> (Vec<i16>, bool, bool) {
    let mut samples = Vec::new();
    let (mut stopped, mut discarded) = (false, false);
    let mut ours = None;
    for c in &net.voicemail {
        match c {
            VoicemailCmd::StartComment { recording, .. } => ours = Some(*recording),
            VoicemailCmd::Frame { recording, frame } if Some(*recording) == ours => {
                samples.extend_from_slice(frame.pcm())
            }
            VoicemailCmd::Stop { recording } if Some(*recording) == ours => stopped = true,
            VoicemailCmd::Discard { recording } if Some(*recording) == ours => discarded = true,
            _ => {}
        }
    }
    (samples, stopped, discarded)
}

/// The comment's answer as the record should have it.
fn comment(outcome: &str, key: Option<&str>) -> CallAnswer {
    CallAnswer {
        survey: "with_comment".into(),
        question: "comment".into(),
        answer: None,
        outcome: outcome.into(),
        recording: key.map(str::to_string),
    }
}

fn rated() -> CallAnswer {
    CallAnswer {
        survey: "with_comment".into(),
        ..answer("rating", Some("3"), "answered")
    }
}

#[test]
fn a_comment_is_recorded_after_the_beep_and_pound_ends_it() {
    let menus = survey_menus("127.0.0.1:7460");
    let mut net = Net::new(menus.clone());
    let desk = Agent::new("desk", 7460);
    let mut caller = Caller::new("127.0.0.1:7050", "survey-6");
    let (call, key) = until_comment(&mut net, &mut caller, &desk);
    assert!(ivr_voicemail::calls::is_comment_key(&key), "{key}");
    // What a crash would find beside the audio: the record so far, the comment linked.
    let kept = net.voicemail.iter().find_map(|c| match c {
        VoicemailCmd::StartComment { record, .. } => Some(record.clone()),
        _ => None,
    });
    let kept = kept.unwrap();
    assert_eq!(kept.answers, [rated(), comment("hangup", Some(&key))]);
    assert_eq!(kept.agent.as_deref(), Some("desk"));

    let pcm = tone(8_000);
    speak(&mut net, &mut caller, call, &pcm);
    let mark = net.events.len();
    net.press(&mut caller, call, Digit::Pound);
    assert_eq!(played(&net, call, mark), ["thanks"], "# ends the comment");
    let (samples, stopped, discarded) = recorded(&net);
    assert!(stopped && !discarded);
    // Everything said, in order, and (the key's own packets being no audio) nothing more.
    assert_eq!(samples, through_pcmu(&pcm));
    net.advance(Duration::from_millis(ms(&menus, "thanks") + 500));
    caller_is_hung_up(&mut net, &caller);
    let r = &net.call_records()[0];
    assert_eq!(r.answers, [rated(), comment("answered", Some(&key))]);
}

#[test]
fn hanging_up_mid_comment_keeps_what_was_said() {
    let mut net = Net::new(survey_menus("127.0.0.1:7470"));
    let desk = Agent::new("desk", 7470);
    let mut caller = Caller::new("127.0.0.1:7052", "survey-7");
    let (call, key) = until_comment(&mut net, &mut caller, &desk);
    let pcm = tone(6_000);
    speak(&mut net, &mut caller, call, &pcm);
    let bye = caller.in_dialog("BYE", "", "");
    net.send_sip(Transport::Udp, caller.addr, &bye);
    net.advance(Duration::from_millis(100));
    assert!(net.ended(call).is_some());
    let (samples, stopped, discarded) = recorded(&net);
    assert!(stopped && !discarded, "kept, not dropped");
    assert_eq!(samples, through_pcmu(&pcm), "to the last packet");
    let r = &net.call_records()[0];
    assert_eq!(r.answers, [rated(), comment("hangup", Some(&key))]);
}

/// A caller whose RTP timestamps jump 4.9 s ahead at each 20 ms packet (the reorder
/// buffer fills such gaps with silence) records no more than the comment's length: a
/// hostile stream does not fill the disk faster than time passes.
#[test]
fn jumping_timestamps_record_no_more_than_the_max_length() {
    let mut net = Net::new(survey_menus("127.0.0.1:7495"));
    let desk = Agent::new("desk", 7495);
    let mut caller = Caller::new("127.0.0.1:7059", "survey-11");
    let (call, _) = until_comment(&mut net, &mut caller, &desk);
    let loud: Vec<u8> = tone(160).iter().map(|s| Codec::Pcmu.encode(*s)).collect();
    for i in 0..100u32 {
        let mut p = vec![0x80, 0];
        p.extend_from_slice(&(30_000u16 + i as u16).to_be_bytes());
        p.extend_from_slice(&(i * 39_200).to_be_bytes());
        p.extend_from_slice(&0x0BAD_5EED_u32.to_be_bytes());
        p.extend_from_slice(&loud);
        net.send_rtp(call.leg(0), caller.media, &p);
        net.advance(Duration::from_millis(20));
    }
    let (samples, _, _) = recorded(&net);
    assert!(
        samples.len() <= 4 * 8_000,
        "{} samples for a 4 s comment",
        samples.len()
    );
}

#[test]
fn a_stop_mid_comment_keeps_it_too() {
    let mut net = Net::new(survey_menus("127.0.0.1:7475"));
    let desk = Agent::new("desk", 7475);
    let mut caller = Caller::new("127.0.0.1:7053", "survey-7s");
    let (call, key) = until_comment(&mut net, &mut caller, &desk);
    let pcm = tone(3_200);
    speak(&mut net, &mut caller, call, &pcm);
    // SIGTERM: the driver asks the engine to hang up every call.
    let now = net.now;
    net.engine.handle_input(now, Input::Shutdown);
    net.advance(Duration::from_millis(100));
    assert_eq!(net.ended(call), Some(EndReason::DestinationHungUp));
    let (samples, stopped, discarded) = recorded(&net);
    assert!(stopped && !discarded);
    assert_eq!(samples, through_pcmu(&pcm));
    assert_eq!(
        net.call_records()[0].answers,
        [rated(), comment("hangup", Some(&key))]
    );
}

#[test]
fn silence_ends_a_comment_and_an_empty_one_is_left_unanswered() {
    // Speaking, then silent: 2 s of silence end it, kept.
    let menus = survey_menus("127.0.0.1:7480");
    let mut net = Net::new(menus.clone());
    let desk = Agent::new("desk", 7480);
    let mut caller = Caller::new("127.0.0.1:7054", "survey-8");
    let (call, key) = until_comment(&mut net, &mut caller, &desk);
    let pcm = tone(4_000);
    speak(&mut net, &mut caller, call, &pcm);
    let mark = net.events.len();
    speak(&mut net, &mut caller, call, &vec![0; 8_000 * 19 / 10]);
    assert!(
        played(&net, call, mark).is_empty(),
        "1.9 s: still recording"
    );
    speak(&mut net, &mut caller, call, &vec![0; 8_000 / 5]);
    assert_eq!(
        played(&net, call, mark),
        ["thanks"],
        "2 s of silence end it"
    );
    let (samples, stopped, _) = recorded(&net);
    assert!(stopped);
    assert_eq!(&samples[..4_000], &through_pcmu(&pcm)[..]);
    assert!(samples[4_000..].iter().all(|s| *s == 0));
    net.advance(Duration::from_millis(ms(&menus, "thanks") + 500));
    caller_is_hung_up(&mut net, &caller);
    assert_eq!(
        net.call_records()[0].answers,
        [rated(), comment("answered", Some(&key))]
    );

    // Nothing said: the silence ends it, dropped, unanswered; no recording named.
    let menus = survey_menus("127.0.0.1:7481");
    let mut net = Net::new(menus.clone());
    let desk = Agent::new("desk", 7481);
    let mut quiet = Caller::new("127.0.0.1:7056", "survey-9");
    let (call, _) = until_comment(&mut net, &mut quiet, &desk);
    let mark = net.events.len();
    speak(&mut net, &mut quiet, call, &vec![0; 8_000 * 21 / 10]);
    assert_eq!(played(&net, call, mark), ["thanks"]);
    let (_, stopped, discarded) = recorded(&net);
    assert!(discarded && !stopped, "an empty comment is not kept");
    net.advance(Duration::from_millis(ms(&menus, "thanks") + 500));
    caller_is_hung_up(&mut net, &quiet);
    assert_eq!(
        net.call_records()[0].answers,
        [rated(), comment("timeout", None)]
    );
}

#[test]
fn a_comment_is_as_long_as_its_max_length_and_a_lost_recording_is_not_named() {
    let menus = survey_menus("127.0.0.1:7490");
    let mut net = Net::new(menus.clone());
    let desk = Agent::new("desk", 7490);
    let mut caller = Caller::new("127.0.0.1:7058", "survey-10");
    let (call, _) = until_comment(&mut net, &mut caller, &desk);
    // Talking without a pause for 5 s: the recording stops at 4 s (the bound of what one
    // caller costs).
    speak(&mut net, &mut caller, call, &tone(40_000));
    let (samples, stopped, _) = recorded(&net);
    assert!(stopped);
    assert!(
        (4 * 8_000 - 160..=4 * 8_000 + 480).contains(&samples.len()),
        "{}",
        samples.len()
    );
    // The recorder reports it could not write it: the record names no file.
    let recording = net
        .voicemail
        .iter()
        .find_map(|c| match c {
            VoicemailCmd::StartComment { recording, .. } => Some(*recording),
            _ => None,
        })
        .unwrap();
    let now = net.now;
    net.engine.handle_input(
        now,
        Input::Voicemail(VoicemailReport::RecordingFailed { recording }),
    );
    net.advance(Duration::from_millis(ms(&menus, "thanks") + 500));
    caller_is_hung_up(&mut net, &caller);
    assert_eq!(
        net.call_records()[0].answers,
        [rated(), comment("answered", None)]
    );
}

/// The driver refuses a frame of the comment (the recorder is behind) and reports the
/// recording failed while the caller is still speaking: the engine gives the comment up,
/// and must tell the recorder so (a `Discard`): else the recorder keeps the file open for
/// ever (a descriptor per such call) and its `KEY.json` is left to be recovered as a
/// second record of the call at the next start.
#[test]
fn a_comment_given_up_mid_recording_is_discarded_in_the_recorder() {
    let menus = survey_menus("127.0.0.1:7491");
    let mut net = Net::new(menus.clone());
    let desk = Agent::new("desk", 7491);
    let mut caller = Caller::new("127.0.0.1:7060", "survey-12");
    let (call, _) = until_comment(&mut net, &mut caller, &desk);
    speak(&mut net, &mut caller, call, &tone(8_000));
    let recording = net
        .voicemail
        .iter()
        .find_map(|c| match c {
            VoicemailCmd::StartComment { recording, .. } => Some(*recording),
            _ => None,
        })
        .unwrap();
    let now = net.now;
    net.engine.handle_input(
        now,
        Input::Voicemail(VoicemailReport::RecordingFailed { recording }),
    );
    speak(&mut net, &mut caller, call, &tone(8_000));
    net.advance(Duration::from_millis(ms(&menus, "thanks") + 5_000));
    caller_is_hung_up(&mut net, &caller);
    let (_, stopped, discarded) = recorded(&net);
    assert!(
        discarded && !stopped,
        "the recorder is told to drop it: {:?}",
        net.voicemail
            .iter()
            .filter(|c| !matches!(c, VoicemailCmd::Frame { .. }))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        net.call_records()[0].answers,
        [rated(), comment("answered", None)]
    );
}

#[test]
fn after_the_agent_hangs_up_the_caller_answers_the_survey_and_the_record_keeps_it() {
    let menus = survey_menus("127.0.0.1:7410");
    let mut net = Net::new(menus.clone());
    let desk = Agent::new("desk", 7410);
    let mut caller = Caller::new("127.0.0.1:7040", "survey-1");
    let (call, invite) = bridged(&mut net, &mut caller, &desk, Digit::D1);
    let mark = net.events.len();
    agent_hangs_up(&mut net, &caller, &desk, &invite);
    assert_eq!(played(&net, call, mark), ["rate"], "the first question");
    assert!(net.events[mark..].iter().any(
        |e| matches!(e, Event::SurveyStarted { call: c, survey } if *c == call && survey == "after_call")
    ));
    assert!(
        !matches!(state(&net, "desk"), AgentState::OnCall { .. }),
        "the agent is free of the call at once"
    );
    // 4 during the first question (it stops), then 9 after the second.
    net.advance(Duration::from_millis(800));
    net.press(&mut caller, call, Digit::D4);
    assert_eq!(played(&net, call, mark), ["rate", "recommend"]);
    net.advance(Duration::from_millis(ms(&menus, "recommend") + 1_000));
    net.press(&mut caller, call, Digit::D9);
    assert_eq!(played(&net, call, mark), ["rate", "recommend", "thanks"]);
    assert!(net.ended(call).is_none(), "the thanks play to the end");
    assert!(hears_sound(&net, call, 5), "the caller hears them");
    net.advance(Duration::from_millis(ms(&menus, "thanks") + 500));
    caller_is_hung_up(&mut net, &caller);
    assert_eq!(net.ended(call), Some(EndReason::DestinationHungUp));
    let records = net.call_records();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(
        r.answers,
        [
            answer("rating", Some("4"), "answered"),
            answer("recommend", Some("9"), "answered"),
        ]
    );
    assert_eq!(r.end_reason, "destination_hung_up");
    assert_eq!(r.agent.as_deref(), Some("desk"));
    assert_eq!(
        (r.exit.as_deref(), r.exit_to.as_deref()),
        (Some("queue"), Some("sales"))
    );
}

#[test]
fn a_caller_who_hangs_up_first_gets_no_survey() {
    let mut net = Net::new(survey_menus("127.0.0.1:7420"));
    let desk = Agent::new("desk", 7420);
    let mut caller = Caller::new("127.0.0.1:7042", "survey-2");
    let (call, _) = bridged(&mut net, &mut caller, &desk, Digit::D1);
    let mark = net.events.len();
    let bye = caller.in_dialog("BYE", "", "");
    net.send_sip(Transport::Udp, caller.addr, &bye);
    let msgs = net.take_sip(desk.addr);
    let agent_bye = request(&msgs, "BYE").expect("the agent is hung up");
    desk.send(&mut net, &desk.respond(agent_bye, 200, None));
    net.advance(Duration::from_secs(10));
    assert!(played(&net, call, mark).is_empty(), "no question played");
    assert!(
        !net.events
            .iter()
            .any(|e| matches!(e, Event::SurveyStarted { .. }))
    );
    assert_eq!(net.ended(call), Some(EndReason::CallerHungUp));
    let r = &net.call_records()[0];
    assert!(r.answers.is_empty(), "{:?}", r.answers);
    assert_eq!(r.end_reason, "caller_hung_up");
}

#[test]
fn without_survey_the_agent_hanging_up_ends_the_call() {
    let mut net = Net::new(survey_menus("127.0.0.1:7430"));
    let desk = Agent::new("desk", 7430);
    let mut caller = Caller::new("127.0.0.1:7044", "survey-3");
    let (call, invite) = bridged(&mut net, &mut caller, &desk, Digit::D2);
    desk.send(&mut net, &desk.bye(&invite));
    caller_is_hung_up(&mut net, &caller);
    assert_eq!(net.ended(call), Some(EndReason::DestinationHungUp));
    assert!(net.call_records()[0].answers.is_empty());
}

#[test]
fn invalid_keys_and_timeouts_are_asked_again_then_left_unanswered() {
    let menus = survey_menus("127.0.0.1:7440");
    let mut net = Net::new(menus.clone());
    let desk = Agent::new("desk", 7440);
    let mut caller = Caller::new("127.0.0.1:7046", "survey-4");
    let (call, invite) = bridged(&mut net, &mut caller, &desk, Digit::D1);
    let mark = net.events.len();
    agent_hangs_up(&mut net, &caller, &desk, &invite);
    // 7 is not 1-5: the invalid notice, then the question again; then no key: the one
    // retry is spent, the rating is left unanswered (timeout).
    net.advance(Duration::from_millis(500));
    net.press(&mut caller, call, Digit::D7);
    assert_eq!(played(&net, call, mark), ["rate", "oops"]);
    // (The key acted on its first packet, 120 ms ago.)
    net.advance(Duration::from_millis(
        ms(&menus, "oops") + ms(&menus, "rate") + 3_780,
    ));
    assert_eq!(
        played(&net, call, mark),
        ["rate", "oops", "rate"],
        "not yet"
    );
    net.advance(Duration::from_millis(200));
    assert_eq!(
        played(&net, call, mark),
        ["rate", "oops", "rate", "recommend"],
        "4 s after the question"
    );
    // The caller hangs up during the second question.
    net.advance(Duration::from_millis(500));
    let bye = caller.in_dialog("BYE", "", "");
    net.send_sip(Transport::Udp, caller.addr, &bye);
    net.advance(Duration::from_millis(100));
    assert!(net.ended(call).is_some());
    let r = &net.call_records()[0];
    assert_eq!(
        r.answers,
        [
            answer("rating", None, "timeout"),
            answer("recommend", None, "hangup"),
        ]
    );
    assert_eq!(
        r.end_reason, "destination_hung_up",
        "the bridged call ended on the agent's side"
    );
}

#[test]
fn after_a_bridged_transfer_the_destination_hanging_up_starts_the_survey_too() {
    let menus = survey_menus("127.0.0.1:7450");
    let mut net = Net::new(menus.clone());
    let desk = Agent::new("desk", 7450);
    let mut caller = Caller::new("127.0.0.1:7048", "survey-5");
    let (call, invite) = bridged(&mut net, &mut caller, &desk, Digit::D3);
    let mark = net.events.len();
    agent_hangs_up(&mut net, &caller, &desk, &invite);
    assert_eq!(played(&net, call, mark), ["rate"]);
    net.advance(Duration::from_millis(ms(&menus, "rate") + 500));
    net.press(&mut caller, call, Digit::D2);
    net.advance(Duration::from_millis(300));
    net.press(&mut caller, call, Digit::D0);
    net.advance(Duration::from_millis(ms(&menus, "thanks") + 500));
    caller_is_hung_up(&mut net, &caller);
    let r = &net.call_records()[0];
    assert_eq!(
        r.answers,
        [
            answer("rating", Some("2"), "answered"),
            answer("recommend", Some("0"), "answered"),
        ]
    );
    assert_eq!(
        (
            r.exit.as_deref(),
            r.exit_to.as_deref(),
            r.end_reason.as_str()
        ),
        (Some("transfer"), Some("operator"), "destination_hung_up")
    );
}
