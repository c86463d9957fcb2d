//! Hot reload, black box: calls in progress during a reload finish normally, new calls get
//! the new menus, and a broken file changes nothing (the errors are logged).

use ivr_tests::http;
use ivr_tests::process::{Ivr, log_call, log_time};
use ivr_tests::sipp::{self, scenario};
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn copy_demo(to: &Path) {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo");
    std::fs::create_dir_all(to.join("prompts")).unwrap();
    std::fs::copy(demo.join("config.yaml"), to.join("config.yaml")).unwrap();
    for f in std::fs::read_dir(demo.join("prompts")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), to.join("prompts").join(f.file_name())).unwrap();
    }
}

/// Replace the config the way editors do: write a new file, then rename it over the old one.
fn replace_config(dir: &Path, text: &str) {
    let tmp = dir.join(".config.yaml.new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join("config.yaml")).unwrap();
}

/// The handle of the `n`-th call the engine started (1: the first), from its log (with
/// shards, `IVR_SHARDS`, handles are numbered per shard: the second call is not `call-2`).
fn nth_call(ivr: &Ivr, n: usize) -> String {
    let started = ivr.wait_for(&["\"message\":\"call started\""], n, WAIT);
    assert!(
        started.len() >= n,
        "{} calls started: {}",
        started.len(),
        ivr.log()
    );
    log_call(&started[n - 1]).expect("a call span")
}

fn menu_of_call(ivr: &Ivr, call: &str, menu: &str) -> bool {
    let needle_call = format!("\"call\":\"{call}\"");
    let needle_menu = format!("\"menu\":\"{menu}\"");
    !ivr.wait_for(&[&needle_call, &needle_menu], 1, WAIT)
        .is_empty()
}

#[test]
fn reload_during_calls_keeps_them_and_serves_new_calls_with_the_new_menu() {
    let dir = tempfile::tempdir().unwrap();
    copy_demo(dir.path());
    let config = dir.path().join("config.yaml");
    let ivr = Ivr::start(&["--config", config.to_str().unwrap()]);
    let target = ivr.sip;

    // Call 1 waits in the language menu for 6 s, across the reload, then presses 2.
    let first = std::thread::spawn(move || {
        sipp::run(
            target,
            &[
                "-sf",
                scenario("wait_press_two_bye.xml"),
                "-m",
                "1",
                "-d",
                "6000",
            ],
        )
    });
    assert_eq!(
        ivr.wait_for(&["\"answered\""], 1, WAIT).len(),
        1,
        "{}",
        ivr.log()
    );

    // The new config starts calls in English, and its language menu's 2 leads to French.
    let original = std::fs::read_to_string(&config).unwrap();
    let reloaded = original
        .replace("entry: language", "entry: main_en")
        .replace(
            "\"2\": { language: en, goto: main_en }",
            "\"2\": { language: en, goto: main_fr }",
        );
    assert_eq!(
        reloaded.matches("main_fr }").count(),
        original.matches("main_fr }").count() + 1
    );
    replace_config(dir.path(), &reloaded);
    let done = ivr.wait_for(&["config reloaded"], 1, WAIT);
    assert_eq!(done.len(), 1, "{}", ivr.log());

    // Call 2 starts after the reload: straight into the English menu.
    let run = sipp::run(
        target,
        &["-sf", scenario("hold_then_bye.xml"), "-m", "1", "-d", "500"],
    );
    assert_eq!(run.code, 0, "{}", run.output);
    assert!(
        menu_of_call(&ivr, &nth_call(&ivr, 2), "main_en"),
        "{}",
        ivr.log()
    );

    // Call 1 presses 2 after the reload and goes where its own menus say (main_en), not
    // where the new ones would (main_fr); then it finishes normally.
    let run = first.join().unwrap();
    assert_eq!(run.code, 0, "{}", run.output);
    let key = ivr
        .call_event(&nth_call(&ivr, 1), "key")
        .unwrap_or_else(|| panic!("call 1 pressed no key:\n{}", ivr.log()));
    assert!(
        log_time(&key) > log_time(&done[0]),
        "call 1 pressed 2 before the reload, so it proves nothing: SIPp's 6 s pause was too short on this machine\n{}",
        ivr.log()
    );
    assert!(
        menu_of_call(&ivr, &nth_call(&ivr, 1), "main_en"),
        "{}",
        ivr.log()
    );
    assert!(
        ivr.call_event(&nth_call(&ivr, 1), "menu")
            .is_some_and(|l| l.contains("\"menu\":\"language\"")),
        "call 1 started in the menus it had"
    );
    let first = format!("\"call\":\"{}\"", nth_call(&ivr, 1));
    assert!(
        !ivr.log()
            .lines()
            .any(|l| l.contains(&first) && l.contains("\"menu\":\"main_fr\"")),
        "call 1 followed the new menus:\n{}",
        ivr.log()
    );
    assert_eq!(
        ivr.wait_for(&["call ended", "CallerHungUp", &first], 1, WAIT)
            .len(),
        1,
        "{}",
        ivr.log()
    );
    assert!(menu_of_call(&ivr, &nth_call(&ivr, 1), "language"));

    // A broken file: every error is logged, and the running config stays.
    replace_config(
        dir.path(),
        &original
            .replace("entry: language", "entry: lnaguage")
            .replace("goto: main_fr", "goto: main_fe"),
    );
    let failed = ivr.wait_for(&["config reload failed"], 2, WAIT);
    assert!(
        failed
            .iter()
            .any(|l| l.contains("unknown menu 'lnaguage' (did you mean 'language'?)")),
        "{failed:?}"
    );
    assert!(
        failed
            .iter()
            .any(|l| l.contains("unknown menu 'main_fe' (did you mean 'main_fr'?)")),
        "{failed:?}"
    );
    let run = sipp::run(
        target,
        &["-sf", scenario("hold_then_bye.xml"), "-m", "1", "-d", "500"],
    );
    assert_eq!(run.code, 0, "{}", run.output);
    assert!(
        menu_of_call(&ivr, &nth_call(&ivr, 3), "main_en"),
        "{}",
        ivr.log()
    );
}

#[test]
fn sighup_reloads_the_config() {
    let dir = tempfile::tempdir().unwrap();
    copy_demo(dir.path());
    let config = dir.path().join("config.yaml");
    let ivr = Ivr::start(&["--config", config.to_str().unwrap()]);
    ivr.signal("HUP");
    let lines = ivr.wait_for(&["reloading config", "SIGHUP"], 1, WAIT);
    assert_eq!(lines.len(), 1, "{}", ivr.log());
    assert_eq!(
        ivr.wait_for(&["config reloaded"], 1, WAIT).len(),
        1,
        "{}",
        ivr.log()
    );
}

fn metric(ivr: &Ivr, name: &str) -> Option<u64> {
    let text = http::get(ivr.http.expect("http"), "/metrics").text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn admin_reload_status_and_metrics_show_a_refused_config() {
    let dir = tempfile::tempdir().unwrap();
    copy_demo(dir.path());
    let config = dir.path().join("config.yaml");
    let ivr = Ivr::start(&["--config", config.to_str().unwrap()]);
    let addr = ivr.http.expect("the engine serves HTTP");
    assert_eq!(metric(&ivr, "ivr_config_generation"), Some(1));
    assert_eq!(metric(&ivr, "ivr_config_last_reload_successful"), Some(1));

    // A valid reload by request: 200, and the generation moves on.
    let r = http::request(addr, "POST", "/admin/reload", &[], b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["result"], "reloaded");
    assert_eq!(r.json()["menus"], 3);
    assert_eq!(metric(&ivr, "ivr_config_generation"), Some(2));

    // A broken file (the watcher may try it first): refused with every error, visible in
    // the status and the metrics, and calls still get the running menus.
    let original = std::fs::read_to_string(&config).unwrap();
    replace_config(
        dir.path(),
        &original.replace("entry: language", "entry: lnaguage"),
    );
    let r = http::request(addr, "POST", "/admin/reload", &[], b"").unwrap();
    assert_eq!(r.status, 422, "{}", r.text());
    let errors = r.json()["errors"].clone();
    assert!(
        errors[0]
            .as_str()
            .is_some_and(|e| e.contains("unknown menu 'lnaguage' (did you mean 'language'?)")),
        "{errors}"
    );
    let status = http::get(addr, "/admin/status").json();
    assert_eq!(
        status["config"]["last_reload"]["result"], "invalid",
        "{status}"
    );
    assert_eq!(status["config"]["generation"], 2, "{status}");
    assert_eq!(metric(&ivr, "ivr_config_last_reload_successful"), Some(0));
    assert!(metric(&ivr, "ivr_config_reloads_total{result=\"invalid\"}").unwrap() >= 1);
    let run = sipp::run(
        ivr.sip,
        &["-sf", scenario("hold_then_bye.xml"), "-m", "1", "-d", "500"],
    );
    assert_eq!(run.code, 0, "{}", run.output);
    assert!(
        menu_of_call(&ivr, &nth_call(&ivr, 1), "language"),
        "{}",
        ivr.log()
    );
    assert_eq!(metric(&ivr, "ivr_calls_total"), Some(1));
    assert_eq!(
        metric(&ivr, "ivr_calls_ended_total{reason=\"caller_hung_up\"}"),
        Some(1)
    );

    // Fixed: accepted again.
    replace_config(dir.path(), &original);
    let r = http::request(addr, "POST", "/admin/reload", &[], b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(metric(&ivr, "ivr_config_last_reload_successful"), Some(1));
}

#[test]
fn admin_endpoints_want_the_token_when_one_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "0123456789abcdef-secret\n").unwrap();
    let ivr = Ivr::start(&["--admin-token-file", token_file.to_str().unwrap()]);
    let addr = ivr.http.expect("http");
    let r = http::get(addr, "/admin/status");
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.header("www-authenticate").is_some());
    let wrong = [("Authorization", "Bearer 0123456789abcdef-secreT")];
    assert_eq!(
        http::request(addr, "GET", "/admin/status", &wrong, b"")
            .unwrap()
            .status,
        401
    );
    let right = [("Authorization", "Bearer 0123456789abcdef-secret")];
    let r = http::request(addr, "GET", "/admin/status", &right, b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["config"]["source"], "<embedded demo>");
    // The embedded demo has no file to reload.
    let r = http::request(addr, "POST", "/admin/reload", &right, b"").unwrap();
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["result"], "no_file");
    // Metrics need no token.
    assert_eq!(http::get(addr, "/metrics").status, 200);
}

/// Run from the config's own folder (`cd /etc/ivr && ivr serve --config config.yaml`), the
/// default data folder `./ivr-data` lies inside the folder the config comes from. A call
/// that leaves a message writes there for seconds (the recording, the database), other files
/// appear beside the config, the config is touched and a prompt rewritten with the same
/// bytes: none of it is a reload. Then one real edit is exactly one.
#[test]
fn the_engines_own_writes_and_unchanged_files_never_reload() {
    let dir = tempfile::tempdir().unwrap();
    copy_demo(dir.path());
    let ivr = Ivr::start_from(
        Some(dir.path()),
        Path::new("ivr-data"),
        &["--config", "config.yaml"],
    );
    let message = dir.path().join("message.ulaw");
    let prompt =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo/prompts/support_en.wav");
    let speech = ivr_audio::wav::decode(&std::fs::read(prompt).unwrap()).unwrap();
    sipp::ulaw_message(&message, &speech.samples);
    let scenario = sipp::voicemail_scenario(dir.path(), &message, "+33612345678");
    let target = ivr.sip;
    let call =
        std::thread::spawn(move || sipp::run(target, &["-sf", &scenario, "-m", "1", "-d", "3000"]));
    assert_eq!(
        ivr.wait_for(&["recording the caller's message"], 1, WAIT)
            .len(),
        1,
        "{}",
        ivr.log()
    );
    let status = std::process::Command::new("touch")
        .arg(dir.path().join("config.yaml"))
        .status()
        .unwrap();
    assert!(status.success());
    let wav = dir.path().join("prompts/lang_fr.wav");
    std::fs::write(&wav, std::fs::read(&wav).unwrap()).unwrap();
    let run = call.join().unwrap();
    assert_eq!(run.code, 0, "{}\n{}", run.output, ivr.log());
    assert_eq!(
        ivr.wait_for(&["callback request stored"], 1, WAIT).len(),
        1,
        "{}",
        ivr.log()
    );
    assert!(
        dir.path().join("ivr-data/callbacks.db").exists(),
        "the data folder is inside the config's folder"
    );
    // Voicemail is a hand-off the engine runs: said at INFO, and no warning (issue 13).
    let log = ivr.log();
    assert!(
        log.lines().any(|l| l.contains("left the menus")
            && l.contains("\"to\":\"voicemail messages\"")
            && l.contains("\"level\":\"INFO\"")),
        "{log}"
    );
    assert!(!log.contains("\"level\":\"WARN\""), "{log}");

    // One real edit: one reload, and it is the first.
    let original = std::fs::read_to_string(dir.path().join("config.yaml")).unwrap();
    replace_config(
        dir.path(),
        &original.replace("entry: language", "entry: main_en"),
    );
    assert_eq!(
        ivr.wait_for(&["config reloaded"], 1, WAIT).len(),
        1,
        "{}",
        ivr.log()
    );
    let reloads = ivr.wait_for(&["reloading config"], 1, WAIT);
    assert_eq!(reloads.len(), 1, "{}", ivr.log());
    assert_eq!(metric(&ivr, "ivr_config_generation"), Some(2));
}

/// An admin reload while SIP keeps the loop busy: every request is answered and applied.
/// The loop takes what is queued behind the message it woke for in one batch; a reload
/// message (the request, or the loaded config) taken in such a batch must not be lost, or
/// the request never hears back and every later reload waits behind the lost one.
#[test]
fn reloads_are_answered_while_sip_keeps_the_loop_busy() {
    for shards in ["1", "2"] {
        let dir = tempfile::tempdir().unwrap();
        copy_demo(dir.path());
        let config = dir.path().join("config.yaml");
        let ivr = Ivr::start(&["--config", config.to_str().unwrap(), "--shards", shards]);
        let addr = ivr.http.expect("the engine serves HTTP");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flood = {
            let (stop, target) = (stop.clone(), ivr.sip);
            std::thread::spawn(move || {
                // OPTIONS, answered 200 (the answers are not read): each one goes
                // through the loop's input.
                let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                let junk = b"OPTIONS sip:ivr@127.0.0.1 SIP/2.0\r\n\
                    Via: SIP/2.0/UDP 127.0.0.1:9;rport;branch=z9hG4bK-flood\r\n\
                    From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:ivr@127.0.0.1>\r\n\
                    Call-ID: flood\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    for _ in 0..200 {
                        let _ = sock.send_to(junk, target);
                    }
                    std::thread::sleep(Duration::from_micros(500));
                }
            })
        };
        let mut answered = 0;
        for _ in 0..8 {
            match reload_within(addr, Duration::from_secs(5)) {
                Some(200) => answered += 1,
                other => {
                    eprintln!("reload answer: {other:?}");
                    break;
                }
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        flood.join().unwrap();
        assert_eq!(
            answered,
            8,
            "shards {shards}: a reload was lost under load\n{}",
            ivr.log()
        );
    }
}

/// `POST /admin/reload`, its status code if it comes within `wait`.
fn reload_within(addr: std::net::SocketAddr, wait: Duration) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, wait).ok()?;
    s.set_read_timeout(Some(wait)).ok()?;
    let head = format!(
        "POST /admin/reload HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    s.write_all(head.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    String::from_utf8_lossy(&raw)
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
