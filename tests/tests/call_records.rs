//! Call records in virtual time (issue #12): the path a caller takes through the menus is
//! recorded step by step, with exact times, and a call still running at shutdown is
//! recorded too. A call that went to voicemail names the request it left, if it left one.

use ivr_audio::Digit;
use ivr_engine::Input;
use ivr_tests::caller::{Caller, Net, demo_variant};
use ivr_voicemail::calls::{CallRecord, CallStep};
use std::time::{Duration, SystemTime};

/// The demo with a way back: `#` in the English main menu retraces the last `goto`.
fn menus() -> std::sync::Arc<ivr_menus::Menus> {
    let yaml = include_str!("../../examples/demo/config.yaml").replace(
        "      \"0\": { goto: language }\n      \"9\": { hangup: goodbye_en }",
        "      \"0\": { goto: language }\n      \"#\": { back: true }\n      \"9\": { hangup: goodbye_en }",
    );
    demo_variant(&yaml)
}

/// When the test's calls start, on the wall clock (2027-01-15 08:00:00Z).
const T0_MS: i64 = 1_800_000_000_000;

fn net() -> Net {
    let mut net = Net::with_config(menus(), |c| c.media_timeout = Duration::from_secs(600));
    let wall = SystemTime::UNIX_EPOCH + Duration::from_millis(T0_MS as u64);
    net.engine.handle_input(net.now, Input::WallClock(wall));
    net
}

fn step(menu: &str, at: i64, outcome: &str, key: Option<&str>, prompt: &str) -> CallStep {
    CallStep {
        menu: menu.into(),
        at_ms: T0_MS + at,
        outcome: outcome.into(),
        key: key.map(str::to_string),
        prompt: prompt.into(),
    }
}

/// The length of a prompt of the demo, in milliseconds.
fn ms(name: &str) -> i64 {
    let m = menus();
    let p = m.prompt(m.find_prompt(name).unwrap());
    (p.frame_count() * 20) as i64
}

#[test]
fn a_path_through_the_menus_is_recorded_step_by_step() {
    let mut net = net();
    let mut caller = Caller::new("127.0.0.1:7000", "path-1");
    let call_start = net.now;
    let call = net.connect(&mut caller);
    // 1. language: "2" during the greeting (barge-in) -> English.
    net.advance(Duration::from_millis(1_000));
    net.press(&mut caller, call, Digit::D2);
    // 2. main_en: "7" during its prompt: no such option.
    net.advance(Duration::from_millis(940));
    net.press(&mut caller, call, Digit::D7);
    // 3. The invalid-key notice, the whole menu prompt, then the 6 s timeout.
    let heard = ms("invalid_en") + ms("main_en") + ms("operator_en");
    net.advance(Duration::from_millis(heard as u64 + 6_000));
    // 4. The no-input notice plays; "#" during it goes back to the language menu.
    net.advance(Duration::from_millis(500));
    net.press(&mut caller, call, Digit::Pound);
    // 5. language, heard to the end this time, then "2".
    net.advance(Duration::from_millis(
        (ms("lang_fr") + ms("lang_en")) as u64 + 1_000,
    ));
    net.press(&mut caller, call, Digit::D2);
    // 6. main_en: "4" leaves a message (the mailbox takes over), then the caller hangs up.
    net.advance(Duration::from_millis(500));
    net.press(&mut caller, call, Digit::D4);
    net.advance(Duration::from_millis(2_000));
    let bye = caller.in_dialog("BYE", "", "");
    net.send_sip(caller.transport, caller.addr, &bye);
    let end = net.now;
    assert_eq!(end - call_start, Duration::from_millis(44_880));
    net.advance(Duration::from_millis(100));

    let got = net.call_records();
    assert_eq!(got.len(), 1, "one record per call");
    let r = &got[0];
    // Key presses act on their first RFC 4733 packet; `press` takes 120 ms (6 packets).
    let k1 = 1_000;
    let k2 = k1 + 120 + 940;
    // The notice starts with the key; the test waited from the end of the press.
    let timeout = k2 + heard + 6_000;
    let k3 = timeout + 120 + 500;
    let k4 = k3 + 120 + ms("lang_fr") + ms("lang_en") + 1_000;
    let k5 = k4 + 120 + 500;
    assert_eq!(
        r.steps,
        [
            step("language", 0, "key", Some("2"), "interrupted"),
            step("main_en", k1, "invalid", Some("7"), "interrupted"),
            step("main_en", k2, "timeout", None, "full"),
            step("main_en", timeout, "key", Some("#"), "interrupted"),
            step("language", k3, "key", Some("2"), "full"),
            step("main_en", k4, "key", Some("4"), "interrupted"),
        ]
    );
    let expected = CallRecord {
        call_id: "path-1".into(),
        started_ms: T0_MS,
        answered_ms: Some(T0_MS),
        ended_ms: T0_MS + k5 + 120 + 2_000,
        duration_ms: k5 + 120 + 2_000,
        caller: Some("+15551234".into()),
        called: Some("service".into()),
        end_reason: "caller_hung_up".into(),
        entry: Some("language".into()),
        language: Some("en".into()),
        exit: Some("voicemail".into()),
        exit_to: Some("messages".into()),
        queue: None,
        queue_wait_ms: None,
        agent: None,
        steps: r.steps.clone(),
        steps_truncated: false,
        answers: Vec::new(),
        // The caller hung up while the caller ID was offered: nothing given, no request.
        request_id: None,
    };
    assert_eq!(r, &expected);
}

/// A call still in the menus when the engine shuts down is ended and recorded: reason
/// `shutdown`, its open step `ended` with the prompt unfinished.
#[test]
fn a_call_in_progress_at_shutdown_is_recorded() {
    let mut net = net();
    let mut caller = Caller::new("127.0.0.1:7002", "path-2");
    let call = net.connect(&mut caller);
    net.advance(Duration::from_millis(300));
    net.press(&mut caller, call, Digit::D1);
    net.advance(Duration::from_millis(880));
    net.engine.handle_input(net.now, Input::Shutdown);
    net.pump();
    let got = net.call_records();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.end_reason, "shutdown");
    assert_eq!((r.ended_ms - T0_MS, r.duration_ms), (1_300, 1_300));
    assert_eq!(r.language.as_deref(), Some("fr"));
    assert_eq!((r.exit.as_deref(), r.exit_to.as_deref()), (None, None));
    assert_eq!(
        r.steps,
        [
            step("language", 0, "key", Some("1"), "interrupted"),
            step("main_fr", 300, "ended", None, "unfinished"),
        ]
    );
}

/// What a caller sends (Call-ID, From user, Request-URI user) is bounded and cleaned before
/// it goes into a record: a record waits in memory and stays in the store for a year, so a
/// caller must not make it large; and a NUL (`%00`) is refused by PostgreSQL's text, which
/// would fail the whole batch the record is written in.
#[test]
fn caller_text_in_a_record_is_bounded_and_clean() {
    let mut net = net();
    // The Call-ID is long in every request of the call (not in the Via branch or the tag).
    let long_id = format!("{}@x", "c".repeat(7_000));
    let lengthen = |m: Vec<u8>| {
        String::from_utf8(m).unwrap().replacen(
            "Call-ID: cid\r\n",
            &format!("Call-ID: {long_id}\r\n"),
            1,
        )
    };
    let mut caller = Caller::new("127.0.0.1:7004", "cid");
    let invite = lengthen(caller.invite(true))
        .replacen(
            "sip:+15551234@",
            &format!("sip:%00%1b[2J{}%00%1b[2J@", "5".repeat(7_000)),
            1,
        )
        .replacen(
            "INVITE sip:service@",
            &format!("INVITE sip:{}%00%0d@", "7".repeat(7_000)),
            1,
        );
    net.send_sip(caller.transport, caller.addr, invite.as_bytes());
    let msgs = net.take_sip(caller.addr);
    let ok = ivr_tests::caller::response(&msgs, 200)
        .unwrap_or_else(|| panic!("the call is answered: {msgs:?}"))
        .clone();
    caller.on_response(&ok);
    let ack = lengthen(caller.ack(None));
    net.send_sip(caller.transport, caller.addr, ack.as_bytes());
    net.advance(Duration::from_millis(500));
    let bye = lengthen(caller.in_dialog("BYE", "", ""));
    net.send_sip(caller.transport, caller.addr, bye.as_bytes());
    net.advance(Duration::from_millis(100));
    let got = net.call_records();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    let fields = [
        ("call_id", Some(r.call_id.as_str())),
        ("caller", r.caller.as_deref()),
        ("called", r.called.as_deref()),
    ];
    for (name, value) in fields {
        let value = value.unwrap_or_else(|| panic!("{name} kept"));
        assert!(
            value.len() <= ivr_engine::cdr::MAX_TEXT,
            "{name}: {} bytes",
            value.len()
        );
        assert!(!value.chars().any(char::is_control), "{name}: {value:?}");
    }
    assert!(r.call_id.starts_with("cccc"), "{}", r.call_id);
    // A caller ID keeps its tail (the last digits tell callers apart).
    assert!(
        r.caller
            .as_deref()
            .unwrap()
            .ends_with("555\u{fffd}\u{fffd}[2J"),
        "{:?}",
        r.caller
    );
    assert!(r.called.as_deref().unwrap().starts_with("777"));
}

/// A caller who gives up while it rings (CANCEL) has a record: the call was taken, never
/// answered, and the admin counts it as abandoned. An INVITE refused outright (here 503, at
/// capacity) has none: it never became a call, and recording refusals would let a flood
/// of INVITEs write to the store (the log says each refusal).
#[test]
fn a_call_cancelled_while_ringing_is_recorded_a_refused_one_is_not() {
    let mut net = Net::with_config(menus(), |c| {
        c.answer_delay = Duration::from_secs(3);
        c.max_calls = 1;
    });
    let wall = SystemTime::UNIX_EPOCH + Duration::from_millis(T0_MS as u64);
    net.engine.handle_input(net.now, Input::WallClock(wall));
    let mut ringing = Caller::new("127.0.0.1:7006", "ringing");
    let invite = ringing.invite(true);
    net.send_sip(ringing.transport, ringing.addr, &invite);
    net.advance(Duration::from_millis(400));
    let mut refused = Caller::new("127.0.0.1:7008", "refused");
    let invite = refused.invite(true);
    net.send_sip(refused.transport, refused.addr, &invite);
    let msgs = net.take_sip(refused.addr);
    assert!(
        ivr_tests::caller::response(&msgs, 503).is_some(),
        "{msgs:?}"
    );
    net.advance(Duration::from_millis(600));
    let cancel = ringing.cancel();
    net.send_sip(ringing.transport, ringing.addr, &cancel);
    net.advance(Duration::from_millis(100));
    let got = net.call_records();
    assert_eq!(got.len(), 1, "{got:?}");
    let r = &got[0];
    assert_eq!(r.call_id, "ringing");
    assert_eq!(r.end_reason, "cancelled");
    assert_eq!(r.answered_ms, None);
    assert_eq!((r.started_ms, r.duration_ms), (T0_MS, 1_000));
    assert!(r.steps.is_empty(), "{:?}", r.steps);
}

/// A caller who hangs up during the mailbox's greeting leaves no request, and its record
/// names none; one who leaves a message has its record name the request stored.
#[test]
fn a_record_names_the_request_left_and_none_after_a_hang_up_in_the_greeting() {
    let yaml = include_str!("../../examples/demo/config.yaml").replace(
        "    greeting: vm_greeting\n",
        "    greeting: vm_greeting\n    callback_number: none\n",
    );
    let menus = demo_variant(&yaml);
    let mut net = Net::with_config(menus, |c| c.media_timeout = Duration::from_secs(600));
    let wall = SystemTime::UNIX_EPOCH + Duration::from_millis(T0_MS as u64);
    net.engine.handle_input(net.now, Input::WallClock(wall));
    let start = net.now;
    let greeting = Duration::from_millis(ms("vm_greeting") as u64);
    let mut byes = Vec::new();
    for (addr, name, wait) in [
        ("127.0.0.1:7010", "greeting-1", greeting / 2),
        (
            "127.0.0.1:7012",
            "message-1",
            greeting + Duration::from_secs(3),
        ),
    ] {
        let mut caller = Caller::new(addr, name);
        let call = net.connect(&mut caller);
        net.press(&mut caller, call, Digit::D2);
        net.press(&mut caller, call, Digit::D4);
        net.advance(wait);
        let bye = caller.in_dialog("BYE", "", "");
        net.send_sip(caller.transport, caller.addr, &bye);
        // The call ends at the BYE, even one whose recording still takes the packets in
        // flight for a moment (the engine's `linger::LINGER`, 200 ms).
        assert!(net.ended(call).is_some(), "{name} ends at the BYE");
        byes.push(T0_MS + (net.now - start).as_millis() as i64);
        net.advance(Duration::from_millis(300));
    }
    let submitted: Vec<(String, bool)> = net
        .voicemail
        .iter()
        .filter_map(|c| match c {
            ivr_engine::VoicemailCmd::Submit { request, .. } => {
                Some((request.id.clone(), request.has_message))
            }
            _ => None,
        })
        .collect();
    let [(id, true)] = &submitted[..] else {
        panic!("one request, with a message: {submitted:?}")
    };
    let records = net.call_records();
    let what: Vec<(&str, Option<&str>, Option<&str>)> = records
        .iter()
        .map(|r| (&*r.call_id, r.exit.as_deref(), r.request_id.as_deref()))
        .collect();
    assert_eq!(
        what,
        [
            ("greeting-1", Some("voicemail"), None),
            ("message-1", Some("voicemail"), Some(id.as_str())),
        ]
    );
    let ended: Vec<i64> = records.iter().map(|r| r.ended_ms).collect();
    assert_eq!(ended, byes, "each record ends at its BYE");
}
