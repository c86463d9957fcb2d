//! Callback requests through the engine in virtual time: the deposit dialogue, the audio
//! handed to the recorder in order, and what is submitted when the caller hangs up.

use ivr_audio::Digit;
use ivr_engine::{Input, VoicemailCmd, VoicemailReport};
use ivr_tests::caller::{Caller, Net, request};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

fn demo() -> Arc<ivr_menus::Menus> {
    Arc::new(ivr_server::config::load_demo().expect("demo compiles"))
}

/// Wait (in virtual time) until the engine starts recording.
fn until_recording(net: &mut Net) {
    for _ in 0..200 {
        if net
            .voicemail
            .iter()
            .any(|c| matches!(c, VoicemailCmd::Start { .. }))
        {
            return;
        }
        net.advance(Duration::from_millis(100));
    }
    panic!("the recording never started: {:?}", net.events);
}

fn tone(len: usize) -> Vec<i16> {
    ivr_audio::tone::sine(8000, 440.0, len, 8000.0)
}

/// How long a recording takes the caller's packets after the caller's BYE (the engine's
/// `linger::LINGER`).
const LINGER: Duration = Duration::from_millis(200);

/// The recording's samples, and whether it was stopped and submitted.
fn recorded(net: &Net) -> (Vec<i16>, bool, bool) {
    let mut frames = Vec::new();
    let (mut stopped, mut submitted) = (false, false);
    for cmd in &net.voicemail {
        match cmd {
            VoicemailCmd::Frame { frame, .. } => frames.extend_from_slice(frame.pcm()),
            VoicemailCmd::Stop { .. } => stopped = true,
            VoicemailCmd::Submit { .. } => submitted = true,
            _ => {}
        }
    }
    (frames, stopped, submitted)
}

/// A caller hangs up while recording: the BYE is answered and the call ends at once (its
/// slot free, `CallEnded` out), but the packets sent just before the BYE and delivered up
/// to [`LINGER`] after it are in the message, in their places; packets later than that
/// are not, and they do not extend the time.
#[test]
fn a_recording_takes_the_packets_in_flight_after_the_bye() {
    let mut net = Net::new(demo());
    let mut caller = Caller::new("127.0.0.1:7203", "vm-linger");
    let call = net.connect(&mut caller);
    net.press(&mut caller, call, Digit::D2); // English
    net.press(&mut caller, call, Digit::D4); // leave a message
    net.press(&mut caller, call, Digit::D1); // this number
    until_recording(&mut net);

    // Three seconds of tone, 150 packets; the caller hangs up after sending 100 of them.
    let pcm = tone(24_000);
    let packets = caller.audio_packets(&pcm);
    // 90 arrive on time (each 20 ms), packets 90..99 are delayed in the network.
    for p in &packets[..90] {
        net.send_rtp(call.leg(0), caller.media, p);
        net.advance(Duration::from_millis(20));
    }
    net.advance(Duration::from_millis(180));
    let bye = caller.in_dialog("BYE", "", "");
    net.send_sip(caller.transport, caller.addr, &bye);
    // The BYE is answered at once, and the call is over for everyone.
    let msgs = net.take_sip(caller.addr);
    assert!(
        ivr_tests::caller::response(&msgs, 200).is_some(),
        "{msgs:?}"
    );
    assert_eq!(net.ended(call), Some(ivr_engine::EndReason::CallerHungUp));
    assert_eq!(net.engine.call_count(), 0, "no slot is held");
    let (_, stopped, _) = recorded(&net);
    assert!(!stopped, "the recording takes the packets in flight");
    assert!(
        net.call_records().is_empty(),
        "the record waits for the request it names"
    );

    // 100 ms later, the ten in flight arrive in a burst, two of them swapped (within the
    // reorder buffer's 60 ms), and a stray copy of one.
    net.advance(Duration::from_millis(100));
    for i in [90, 91, 93, 92, 94, 95, 96, 97, 98, 99] {
        net.send_rtp(call.leg(0), caller.media, &packets[i]);
    }
    net.send_rtp(call.leg(0), caller.media, &packets[95]);
    // More packets keep coming: they do not extend the time, and after it they are not
    // recorded.
    for p in &packets[100..104] {
        net.advance(Duration::from_millis(20));
        net.send_rtp(call.leg(0), caller.media, p);
    }
    net.advance(LINGER - Duration::from_millis(180));
    let (frames, stopped, submitted) = recorded(&net);
    assert!(stopped && submitted, "finished {LINGER:?} after the BYE");
    assert!(net.media.is_empty(), "the media socket is closed");
    for p in &packets[104..110] {
        net.send_rtp(call.leg(0), caller.media, p);
        net.advance(Duration::from_millis(20));
    }
    assert_eq!(
        recorded(&net).0.len(),
        frames.len(),
        "nothing after the linger"
    );

    let decoded: Vec<i16> = pcm
        .iter()
        .map(|x| ivr_audio::Codec::Pcmu.decode(ivr_audio::Codec::Pcmu.encode(*x)))
        .collect();
    // Packets 100..103 came within the time (the recording does not know the BYE's
    // moment, only its own clock); everything up to them is in place, sample for sample.
    let wrong: Vec<usize> = (0..frames.len() / 160)
        .filter(|f| frames[f * 160..(f + 1) * 160] != decoded[f * 160..(f + 1) * 160])
        .collect();
    assert_eq!(
        (frames.len(), wrong),
        (104 * 160, vec![]),
        "every packet in flight is recorded, in its place"
    );
    let request = net
        .voicemail
        .iter()
        .find_map(|c| match c {
            VoicemailCmd::Submit { request, .. } => Some(request.clone()),
            _ => None,
        })
        .unwrap();
    assert!(request.hung_up && request.has_message);
    assert_eq!(request.duration_ms, 104 * 20);
    let records = net.call_records();
    let [record] = &records[..] else {
        panic!("one record: {records:?}")
    };
    assert_eq!(record.request_id.as_deref(), Some(request.id.as_str()));
    assert_eq!(record.end_reason, "caller_hung_up");
}

#[test]
fn a_message_left_in_english_with_the_caller_id_as_the_number() {
    let mut net = Net::new(demo());
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    net.engine.handle_input(net.now, Input::WallClock(wall));
    let mut caller = Caller::new("127.0.0.1:7200", "vm-en");
    let call = net.connect(&mut caller);
    net.press(&mut caller, call, Digit::D2); // English
    net.press(&mut caller, call, Digit::D4); // leave a message
    net.advance(Duration::from_secs(1));
    assert!(
        net.events.iter().any(
            |e| matches!(e, ivr_engine::Event::Playing { prompt, language, .. }
            if prompt == "vm_offer_caller_id" && language.as_deref() == Some("en"))
        ),
        "the caller ID is offered, in English: {:?}",
        net.events
    );
    net.press(&mut caller, call, Digit::D1); // call me back on this number
    until_recording(&mut net);

    // Two seconds of a tone: packet 20 lost, 40 and 41 swapped.
    let pcm = tone(16_000);
    let mut packets = caller.audio_packets(&pcm);
    packets.swap(40, 41);
    packets.remove(20);
    for p in &packets {
        net.send_rtp(call.leg(0), caller.media, p);
        net.advance(Duration::from_millis(20));
    }
    // Hang up mid-message; the recording is finished once the packets in flight had
    // their time (see `a_recording_takes_the_packets_in_flight_after_the_bye`).
    let bye = caller.in_dialog("BYE", "", "");
    net.send_sip(caller.transport, caller.addr, &bye);
    net.advance(LINGER);

    let mut frames: Vec<i16> = Vec::new();
    let mut started = None;
    let mut submitted = None;
    let mut stopped = false;
    for cmd in &net.voicemail {
        match cmd {
            VoicemailCmd::Start { recording, request } => {
                started = Some((*recording, request.clone()));
            }
            VoicemailCmd::Frame { frame, .. } => frames.extend_from_slice(frame.pcm()),
            VoicemailCmd::Stop { .. } => stopped = true,
            VoicemailCmd::Submit {
                recording, request, ..
            } => submitted = Some((*recording, request.clone())),
            VoicemailCmd::Discard { .. } => panic!("nothing is discarded"),
            VoicemailCmd::StartComment { .. } => panic!("no survey here"),
        }
    }
    let (recording, start) = started.expect("started");
    assert_eq!(start.mailbox, "messages");
    assert_eq!(start.callback_number.as_deref(), Some("+15551234"));
    assert_eq!(
        start.received_at, 1_800_000_000,
        "stamped with the driver's wall clock"
    );
    assert!(stopped, "the recording is finished on hang-up");
    let (sub_recording, request) = submitted.expect("submitted");
    assert_eq!(sub_recording, Some(recording));
    assert_eq!(request.id, start.id);
    assert_eq!(request.caller_id.as_deref(), Some("+15551234"));
    assert_eq!(request.callback_number.as_deref(), Some("+15551234"));
    assert_eq!(request.language.as_deref(), Some("en"));
    assert_eq!(request.menu_path, ["language", "main_en"]);
    assert!(request.hung_up && request.has_message);
    // Every sample in its place: the lost packet is silence, the swap undone.
    assert_eq!(frames.len(), 16_000, "the duration is kept");
    assert_eq!(request.duration_ms, 2_000);
    let decoded = |s: &[i16]| -> Vec<i16> {
        s.iter()
            .map(|x| ivr_audio::Codec::Pcmu.decode(ivr_audio::Codec::Pcmu.encode(*x)))
            .collect()
    };
    assert_eq!(frames[..3200], decoded(&pcm[..3200])[..]);
    assert!(frames[3200..3360].iter().all(|s| *s == 0), "lost packet");
    assert_eq!(frames[3360..], decoded(&pcm[3360..])[..]);

    // The store answers; the call is over, so nothing more happens: no message to the
    // caller, no voicemail work, no event, and the call stays ended.
    assert_eq!(net.ended(call), Some(ivr_engine::EndReason::CallerHungUp));
    let _ = net.take_sip(caller.addr);
    let (commands, events) = (net.voicemail.len(), net.events.len());
    net.engine.handle_input(
        net.now,
        Input::Voicemail(VoicemailReport::Stored { call, ok: true }),
    );
    net.pump();
    net.advance(Duration::from_secs(5));
    assert!(net.take_sip(caller.addr).is_empty());
    assert_eq!(
        net.voicemail.len(),
        commands,
        "{:?}",
        &net.voicemail[commands..]
    );
    assert_eq!(net.events.len(), events, "{:?}", &net.events[events..]);
    assert_eq!(net.engine.call_count(), 0);
}

#[test]
fn a_number_entered_is_read_back_and_the_saved_prompt_ends_the_call() {
    let mut net = Net::new(demo());
    let mut caller = Caller::new("127.0.0.1:7201", "vm-fr");
    let call = net.connect(&mut caller);
    net.press(&mut caller, call, Digit::D1); // French
    net.press(&mut caller, call, Digit::D4);
    net.advance(Duration::from_secs(1));
    for d in "0491234567#".chars() {
        net.press(&mut caller, call, Digit::from_char(d).unwrap());
    }
    net.advance(Duration::from_millis(200));
    let heard: Vec<String> = net
        .events
        .iter()
        .filter_map(|e| match e {
            ivr_engine::Event::Playing { prompt, .. } => Some(prompt.clone()),
            _ => None,
        })
        .collect();
    let readback: Vec<String> = ["vm_you_entered"]
        .into_iter()
        .map(str::to_string)
        .chain("0491234567".chars().map(|c| format!("digit_{c}")))
        .chain(["vm_confirm_number".to_string()])
        .collect();
    assert!(
        heard.ends_with(&readback),
        "the number is read back: {heard:?}"
    );
    net.advance(Duration::from_secs(12)); // the digits, the confirm prompt
    net.press(&mut caller, call, Digit::D1); // that's right
    until_recording(&mut net);
    let pcm = tone(8_000);
    for p in caller.audio_packets(&pcm) {
        net.send_rtp(call.leg(0), caller.media, &p);
        net.advance(Duration::from_millis(20));
    }
    net.press(&mut caller, call, Digit::Pound); // done
    let submitted = net.voicemail.iter().find_map(|c| match c {
        VoicemailCmd::Submit { call, request, .. } => Some((*call, request.clone())),
        _ => None,
    });
    let (c, req) = submitted.expect("submitted when the caller presses #");
    assert_eq!(req.callback_number.as_deref(), Some("0491234567"));
    assert_eq!(req.language.as_deref(), Some("fr"));
    assert!(!req.hung_up);
    assert!(
        (1_000..=1_200).contains(&req.duration_ms),
        "{}",
        req.duration_ms
    );
    // Stored: the caller hears the saved prompt, then the engine hangs up.
    net.engine.handle_input(
        net.now,
        Input::Voicemail(VoicemailReport::Stored { call: c, ok: true }),
    );
    net.pump();
    net.advance(Duration::from_millis(100));
    assert!(
        net.events.iter().any(
            |e| matches!(e, ivr_engine::Event::Playing { prompt, .. } if prompt == "vm_saved")
        )
    );
    net.advance(Duration::from_secs(8));
    let msgs = net.take_sip(caller.addr);
    assert!(request(&msgs, "BYE").is_some(), "the engine hangs up");
}

#[test]
fn a_recording_that_cannot_be_written_gets_an_apology() {
    let mut net = Net::new(demo());
    let mut caller = Caller::new("127.0.0.1:7202", "vm-full");
    let call = net.connect(&mut caller);
    net.press(&mut caller, call, Digit::D2);
    net.press(&mut caller, call, Digit::D4);
    net.press(&mut caller, call, Digit::D1);
    until_recording(&mut net);
    let recording = net
        .voicemail
        .iter()
        .find_map(|c| match c {
            VoicemailCmd::Start { recording, .. } => Some(*recording),
            _ => None,
        })
        .unwrap();
    // The disk is full.
    net.engine.handle_input(
        net.now,
        Input::Voicemail(VoicemailReport::RecordingFailed { recording }),
    );
    net.pump();
    net.advance(Duration::from_millis(100));
    assert!(
        net.events.iter().any(
            |e| matches!(e, ivr_engine::Event::Playing { prompt, .. } if prompt == "vm_sorry")
        ),
        "{:?}",
        net.events
    );
    assert!(
        !net.voicemail
            .iter()
            .any(|c| matches!(c, VoicemailCmd::Submit { .. })),
        "nothing is submitted for a failed recording"
    );
    // The writer is told to drop it: when the failure was the driver refusing a frame (the
    // writer behind), the writer still holds the file open, and at a stop would finish it
    // for a recovery that stores a message the caller was told was not saved.
    assert!(
        net.voicemail
            .iter()
            .any(|c| matches!(c, VoicemailCmd::Discard { recording: r } if *r == recording)),
        "{:?}",
        net.voicemail
            .iter()
            .filter(|c| !matches!(c, VoicemailCmd::Frame { .. }))
            .collect::<Vec<_>>()
    );
}

/// A caller whose RTP timestamps jump 4.9 s ahead at each 20 ms packet (the reorder
/// buffer fills such gaps with silence) leaves a message no longer than the mailbox's
/// `max_length` (120 s in the demo): a hostile stream does not fill the disk faster than
/// time passes (without the cap, 1,000 packets made 81 minutes).
#[test]
fn jumping_timestamps_record_no_more_than_the_max_length() {
    let mut net = Net::new(demo());
    let mut caller = Caller::new("127.0.0.1:7230", "vm-jump");
    let call = net.connect(&mut caller);
    net.press(&mut caller, call, Digit::D2); // English
    net.press(&mut caller, call, Digit::D4); // leave a message
    net.advance(Duration::from_secs(1));
    net.press(&mut caller, call, Digit::D1); // call me back on this number
    until_recording(&mut net);
    let loud: Vec<u8> = tone(160)
        .iter()
        .map(|s| ivr_audio::Codec::Pcmu.encode(*s))
        .collect();
    for i in 0..1_000u32 {
        let mut p = vec![0x80, 0];
        p.extend_from_slice(&(30_000u16.wrapping_add(i as u16)).to_be_bytes());
        p.extend_from_slice(&i.wrapping_mul(39_200).to_be_bytes());
        p.extend_from_slice(&0x0BAD_5EED_u32.to_be_bytes());
        p.extend_from_slice(&loud);
        net.send_rtp(call.leg(0), caller.media, &p);
        net.advance(Duration::from_millis(20));
    }
    let samples: usize = net
        .voicemail
        .iter()
        .map(|c| match c {
            VoicemailCmd::Frame { frame, .. } => frame.pcm().len(),
            _ => 0,
        })
        .sum();
    assert!(
        samples <= 120 * 8_000,
        "{samples} samples for a message of at most 120 s"
    );
}
