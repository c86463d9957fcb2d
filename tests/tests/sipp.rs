//! Black-box tests: the real `ivr` binary on 127.0.0.1, driven by SIPp over UDP and TCP.

use ivr_tests::process::Ivr;
use ivr_tests::sipp::{self, scenario};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn transport_args(tcp: bool) -> Vec<&'static str> {
    if tcp {
        vec!["-t", "t1"]
    } else {
        vec!["-t", "u1"]
    }
}

/// The demo config, edited by `edit`, written to a temp dir with its prompt paths made
/// absolute. Returns the dir (keep it alive) and the file.
fn demo_config(
    name: &str,
    edit: impl FnOnce(String) -> String,
) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo");
    let config = std::fs::read_to_string(demo.join("config.yaml"))
        .unwrap()
        .replace("prompts/", &format!("{}/prompts/", demo.display()));
    let path = dir.path().join(name);
    let edited = edit(config.clone());
    assert_ne!(edited, config, "the edit of the demo config applied");
    std::fs::write(&path, edited).unwrap();
    (dir, path)
}

/// Run a scenario file over UDP or TCP with extra SIPp arguments; it must succeed.
fn run_ok(ivr: &Ivr, file: &str, extra: &[&str], tcp: bool) -> sipp::Run {
    let mut args = vec!["-sf", scenario(file)];
    args.extend_from_slice(extra);
    args.extend(transport_args(tcp));
    let run = sipp::run(ivr.sip, &args);
    assert_ok(&run, ivr);
    run
}

fn assert_ok(run: &sipp::Run, ivr: &Ivr) {
    assert_eq!(
        run.code,
        0,
        "SIPp failed:\n{}\n--- engine log ---\n{}",
        run.output,
        ivr.log()
    );
}

/// The built-in `uac` scenario completes 100 calls with no failure (the README's first check).
#[test]
fn builtin_uac_completes_100_calls_over_udp() {
    let ivr = Ivr::start(&[]);
    let run = sipp::run(ivr.sip, &["-sn", "uac", "-m", "100", "-r", "50"]);
    assert_ok(&run, &ivr);
    assert_eq!(
        sipp::stat(&run.output, "Successful call"),
        Some(100),
        "{}",
        run.output
    );
    assert_eq!(
        ivr.wait_for(&["call ended", "CallerHungUp"], 100, WAIT)
            .len(),
        100
    );
}

#[test]
fn builtin_uac_over_tcp() {
    let ivr = Ivr::start(&[]);
    let run = sipp::run(ivr.sip, &["-sn", "uac", "-m", "30", "-r", "30", "-t", "t1"]);
    assert_ok(&run, &ivr);
    assert_eq!(
        ivr.wait_for(&["call ended", "CallerHungUp"], 30, WAIT)
            .len(),
        30
    );
}

/// (a) The caller hears the greeting, presses 2 (English) and 9 (goodbye) as RFC 2833 events,
/// and the engine plays the goodbye and hangs up.
fn dtmf_goodbye(tcp: bool) {
    let ivr = Ivr::start(&[]);
    run_ok(&ivr, "call_dtmf_goodbye.xml", &["-m", "1"], tcp);
    let log = ivr.log();
    assert!(log.contains(r#""menu":"language""#), "{log}");
    assert!(
        log.contains(r#""digit":"2""#) && log.contains(r#""menu":"main_en""#),
        "{log}"
    );
    assert!(log.contains(r#""digit":"9""#), "{log}");
    let ended = ivr.wait_for(&["call ended", "MenuHangup"], 1, WAIT);
    assert_eq!(ended.len(), 1, "{log}");
    // Prompts flowed for the whole call, and the goodbye (2.6 s) was played out before the
    // engine hung up: the call lasted at least 1.5 s + 1.5 s (SIPp's pauses) + 2.6 s.
    let ms = ivr.assert_paced(&ended[0]);
    assert!(ms >= 5600, "the call lasted {ms} ms:\n{log}");
}

#[test]
fn dtmf_choice_leads_to_goodbye_and_engine_hangup_udp() {
    dtmf_goodbye(false);
}

#[test]
fn dtmf_choice_leads_to_goodbye_and_engine_hangup_tcp() {
    dtmf_goodbye(true);
}

/// (b) CANCEL while the engine rings: 200 for the CANCEL, 487 for the INVITE.
#[test]
fn cancel_before_answer() {
    for tcp in [false, true] {
        let ivr = Ivr::start(&["--answer-delay-ms", "5000"]);
        run_ok(&ivr, "cancel.xml", &["-m", "1"], tcp);
        assert_eq!(
            ivr.wait_for(&["call ended", "Cancelled"], 1, WAIT).len(),
            1,
            "{}",
            ivr.log()
        );
    }
}

/// (c) 50 calls at once stay in the menu for 3 s, hearing prompts, then hang up.
fn fifty_concurrent(tcp: bool) {
    let ivr = Ivr::start(&[]);
    let extra = ["-m", "50", "-l", "50", "-r", "100", "-d", "3000"];
    run_ok(&ivr, "hold_then_bye.xml", &extra, tcp);
    let ended = ivr.wait_for(&["call ended", "CallerHungUp"], 50, WAIT);
    assert_eq!(ended.len(), 50, "{}", ivr.log());
    for line in &ended {
        // Prompts all along, by the engine's clock; SIPp hangs up 3 s after the ACK at the
        // earliest (later on a loaded machine, which changes nothing here).
        let ms = ivr.assert_paced(line);
        assert!(ms >= 3000, "a call lasted {ms} ms: {line}");
    }
    let max_concurrent = ivr
        .log()
        .lines()
        .filter(|l| l.contains("\"answered\""))
        .count();
    assert_eq!(max_concurrent, 50);
}

#[test]
fn fifty_concurrent_calls_udp() {
    fifty_concurrent(false);
}

#[test]
fn fifty_concurrent_calls_tcp() {
    fifty_concurrent(true);
}

/// (d) Malformed requests get 400 with a reason naming the fault; the engine keeps serving.
#[test]
fn malformed_requests_get_400_and_engine_keeps_serving() {
    let ivr = Ivr::start(&[]);
    let run = sipp::run(ivr.sip, &["-sf", scenario("malformed.xml"), "-m", "1"]);
    assert_ok(&run, &ivr);
    // A body shorter than its Content-Length, straight over UDP.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let local = sock.local_addr().unwrap();
    let msg = format!(
        "INVITE sip:service@{0} SIP/2.0\r\nVia: SIP/2.0/UDP {1};branch=z9hG4bKshort\r\nFrom: <sip:t@{1}>;tag=1\r\n\
         To: <sip:service@{0}>\r\nCall-ID: short-body\r\nCSeq: 1 INVITE\r\nContact: <sip:t@{1}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: 500\r\n\r\nv=0\r\n",
        ivr.sip, local
    );
    sock.send_to(msg.as_bytes(), ivr.sip).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = sock.recv_from(&mut buf).expect("a 400 answer");
    let resp = String::from_utf8_lossy(&buf[..n]);
    assert!(
        resp.starts_with(
            "SIP/2.0 400 Bad Request (body of 5 octets is shorter than Content-Length 500)"
        ),
        "{resp}"
    );
    let to = resp
        .lines()
        .find(|l| l.starts_with("To:"))
        .unwrap_or_default();
    assert!(
        to.contains(";tag="),
        "a final response carries a To tag: {to}"
    );
    // Garbage gets no answer and hurts nothing.
    sock.send_to(b"\x00\x01garbage\r\n\r\n", ivr.sip).unwrap();
    let run = sipp::run(ivr.sip, &["-sn", "uac", "-m", "5", "-r", "10"]);
    assert_ok(&run, &ivr);
}

/// (e) The caller hangs up in the middle of the greeting.
#[test]
fn bye_from_caller_mid_prompt() {
    for tcp in [false, true] {
        let ivr = Ivr::start(&[]);
        run_ok(&ivr, "hold_then_bye.xml", &["-m", "1", "-d", "1000"], tcp);
        let ended = ivr.wait_for(&["call ended", "CallerHungUp"], 1, WAIT);
        assert_eq!(ended.len(), 1, "{}", ivr.log());
        // The greeting flowed until the BYE, which came 1 s after the ACK at the earliest.
        let ms = ivr.assert_paced(&ended[0]);
        assert!(ms >= 1000, "the call lasted {ms} ms");
        // Mid-prompt: the call ended inside the greeting (lang_fr then lang_en, 6 s).
        assert!(ms < 6000, "the call outlasted the greeting: {ms} ms");
        let log = ivr.log();
        let played: Vec<&str> = log.lines().filter(|l| l.contains("\"playing\"")).collect();
        assert!(
            !played.is_empty() && played[0].contains("\"prompt\":\"lang_fr\""),
            "{log}"
        );
    }
}

/// SIGTERM: active calls get BYE, then the engine exits 0.
#[test]
fn sigterm_hangs_up_active_calls_and_exits_zero() {
    let mut ivr = Ivr::start(&[]);
    let target = ivr.sip;
    let caller = std::thread::spawn(move || {
        sipp::run(
            target,
            &[
                "-sf",
                scenario("wait_for_bye.xml"),
                "-m",
                "3",
                "-l",
                "3",
                "-r",
                "10",
            ],
        )
    });
    assert_eq!(
        ivr.wait_for(&["\"answered\""], 3, WAIT).len(),
        3,
        "{}",
        ivr.log()
    );
    let status = ivr.terminate();
    let run = caller.join().unwrap();
    assert_ok(&run, &ivr);
    assert!(status.success(), "exit status {status:?}\n{}", ivr.log());
    assert_eq!(ivr.wait_for(&["call ended", "Shutdown"], 3, WAIT).len(), 3);
}

/// A caller who presses nothing: the menu replays up to its retry limit, then says goodbye
/// and hangs up (a config with short prompts and a 1 s timeout keeps the test quick).
#[test]
fn silence_follows_the_timeout_path_to_the_retry_limit() {
    let dir = tempfile::tempdir().unwrap();
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo/prompts");
    let config = format!(
        "entry: main\nprompts:\n  hi: {0}/invalid_en.wav\n  again: {0}/noinput_en.wav\n  bye: {0}/goodbye_en.wav\n\
         menus:\n  main:\n    prompt: hi\n    timeout: 1\n    retries: {{ no_input: 2, invalid: 2 }}\n    no_input: again\n\
         \x20   options:\n      \"1\": {{ repeat: true }}\n    on_failure: {{ hangup: bye }}\n",
        demo.display()
    );
    let path = dir.path().join("silence.yaml");
    std::fs::write(&path, config).unwrap();
    let ivr = Ivr::start(&["--config", path.to_str().unwrap()]);
    // The caller sends media as a phone does (SIPp echoes the engine's own): the engine
    // stops sending after 5 s to a peer that never sends (issue 8), which would pause the
    // prompts of this 16 s call.
    let run = sipp::run(
        ivr.sip,
        &["-sf", scenario("wait_for_bye.xml"), "-m", "1", "-rtp_echo"],
    );
    assert_ok(&run, &ivr);
    let ended = ivr.wait_for(&["call ended", "MenuHangup"], 1, WAIT);
    assert_eq!(ended.len(), 1, "{}", ivr.log());
    // The retry limit, by the prompts played: hi, then for each of the two no-input
    // retries "again" and hi once more, then bye (retries: 0 would play hi, bye).
    let played: Vec<String> = ivr
        .log()
        .lines()
        .filter(|l| l.contains("\"playing\""))
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            v["fields"]["prompt"].as_str().map(str::to_string)
        })
        .collect();
    assert_eq!(played, ["hi", "again", "hi", "again", "hi", "bye"]);
    // Each no-input wait lasted the menu's 1 s timeout: hi (2.5 s) + 1 s, again (2 s),
    // hi + 1 s, again, hi + 1 s, then bye (2.6 s), about 16 s, all of it with prompts.
    let ms = ivr.assert_paced(&ended[0]);
    assert!(ms >= 15_000, "the call lasted {ms} ms");
}

/// A schedule that is closed at test time (no opening hours at all) routes the call to
/// the closed-hours menu.
#[test]
fn closed_hours_route() {
    let (_dir, path) = demo_config("closed.yaml", |c| {
        c.replace(
            "entry: language\n",
            "entry: start\nschedules:\n  never:\n    timezone: UTC\n    hours: {}\n",
        )
        .replace(
            "menus:\n",
            "menus:\n  start:\n    schedule: never\n    open: language\n    closed: main_en\n",
        )
    });
    let ivr = Ivr::start(&["--config", path.to_str().unwrap()]);
    let run = sipp::run(
        ivr.sip,
        &["-sf", scenario("hold_then_bye.xml"), "-m", "1", "-d", "500"],
    );
    assert_ok(&run, &ivr);
    assert_eq!(
        ivr.wait_for(&["\"menu\":\"start\""], 1, WAIT).len(),
        1,
        "{}",
        ivr.log()
    );
    assert_eq!(
        ivr.wait_for(&["\"menu\":\"main_en\""], 1, WAIT).len(),
        1,
        "{}",
        ivr.log()
    );
    assert!(!ivr.log().contains("\"menu\":\"language\""));
}

/// A caller dials a three-digit extension (RFC 2833) in the language menu and reaches the
/// menu it leads to.
#[test]
fn multi_digit_extension_entry() {
    let (_dir, path) = demo_config("ext.yaml", |c| {
        c.replace(
            "      \"2\": { language: en, goto: main_en }\n",
            "      \"2\": { language: en, goto: main_en }\n    extensions:\n      \"456\": { goto: main_fr }\n",
        )
    });
    let ivr = Ivr::start(&["--config", path.to_str().unwrap()]);
    for tcp in [false, true] {
        run_ok(&ivr, "extension.xml", &["-m", "1"], tcp);
    }
    let log = ivr.log();
    for d in ["4", "5", "6"] {
        assert!(log.contains(&format!("\"digit\":\"{d}\"")), "{log}");
    }
    assert_eq!(
        ivr.wait_for(&["\"menu\":\"main_fr\""], 2, WAIT).len(),
        2,
        "{log}"
    );
    assert_eq!(
        ivr.wait_for(&["call ended", "CallerHungUp"], 2, WAIT).len(),
        2
    );
}

/// Language selection: in the shop (English and Spanish), 9 switches the caller to Spanish
/// and the menu is heard again in Spanish, whether the shop is open or closed right now.
#[test]
fn language_selection_switches_the_prompts() {
    let shop =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/shop/config.yaml");
    let ivr = Ivr::start(&["--config", shop.to_str().unwrap()]);
    run_ok(&ivr, "press_nine.xml", &["-m", "1"], false);
    let log = ivr.log();
    let playing: Vec<&str> = log.lines().filter(|l| l.contains("\"playing\"")).collect();
    let first = playing
        .first()
        .unwrap_or_else(|| panic!("no prompt played:\n{log}"));
    assert!(first.contains("\"language\":\"en\""), "{first}");
    assert!(log.contains("\"digit\":\"9\""), "{log}");
    let spanish = playing
        .iter()
        .position(|l| l.contains("\"language\":\"es\""))
        .unwrap_or_else(|| panic!("nothing played in Spanish:\n{log}"));
    // The same menu prompt, now in Spanish.
    let prompt_of = |l: &str| {
        l.split("\"prompt\":\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .map(str::to_string)
    };
    assert_eq!(prompt_of(playing[spanish]), prompt_of(first), "{log}");
}
