//! Callback requests, black box: the real `ivr` binary, a SIPp caller that picks the
//! voicemail option with RFC 2833 digits, streams a known recording as RTP and hangs up
//! mid-message; then what is on disk and in the store is checked against what was sent.

use ivr_tests::http;
use ivr_tests::process::Ivr;
use ivr_voicemail::store::{Filter, Store};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// The demo's `support_en` prompt: speech, about 6 s.
fn source() -> Vec<i16> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/demo/prompts/support_en.wav");
    let wav = ivr_audio::wav::decode(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(wav.rate, 8000);
    wav.samples
}

/// Normalized correlation of `a` with `b` shifted by `lag` (b[i + lag] against a[i]).
fn correlation(a: &[i16], b: &[i16], lag: usize) -> f64 {
    let n = a.len().min(b.len().saturating_sub(lag));
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for i in 0..n {
        let (x, y) = (a[i] as f64, b[i + lag] as f64);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        0.0
    } else {
        ab / (aa.sqrt() * bb.sqrt())
    }
}

/// Write the scenario with the audio file and caller ID in place; returns its path.
fn scenario(dir: &std::path::Path, audio: &std::path::Path, caller: &str) -> String {
    let template = std::fs::read_to_string(ivr_tests::sipp::scenario("voicemail.xml")).unwrap();
    let text = template
        .replace("@AUDIO@", &audio.display().to_string())
        .replace("@CALLER@", caller);
    let path = dir.join("voicemail.xml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn a_message_streamed_and_cut_by_a_hang_up_is_stored_whole() {
    leave_a_message_and_work_through_it(None);
}

/// The same black-box run with the store in PostgreSQL (a fresh database on the server
/// scripts/test.sh starts).
#[test]
fn the_same_in_postgresql() {
    if let Some(url) = ivr_tests::pg::fresh_database("ivr_bb_voicemail") {
        leave_a_message_and_work_through_it(Some(url));
    }
}

/// A SIPp caller leaves a message; the files, the store (SQLite in the data folder, or
/// `database`), the webhook and the CLI are checked.
fn leave_a_message_and_work_through_it(database: Option<String>) {
    let work = tempfile::tempdir().unwrap();
    // What the caller says, as raw µ-law for SIPp's rtp_stream (payload type 0).
    let said = source();
    let ulaw: Vec<u8> = said
        .iter()
        .map(|s| ivr_audio::Codec::Pcmu.encode(*s))
        .collect();
    let audio = work.path().join("message.ulaw");
    std::fs::write(&audio, &ulaw).unwrap();
    let heard: Vec<i16> = ulaw
        .iter()
        .map(|c| ivr_audio::Codec::Pcmu.decode(*c))
        .collect();

    // The webhook receiver, and the shared secret.
    let sink = ivr_tests::http::Sink::start(0, 200);
    let secret_file = work.path().join("secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    let hook = format!("http://{}/hook", sink.addr);
    let mut args = vec![
        "--webhook-url",
        hook.as_str(),
        "--webhook-secret-file",
        secret_file.to_str().unwrap(),
    ];
    if let Some(db) = &database {
        args.extend(["--database", db.as_str()]);
    }
    let ivr = Ivr::start(&args);
    let scenario = scenario(work.path(), &audio, "+33612345678");
    // Hang up 3 s into the ~6 s message.
    let run = ivr_tests::sipp::run(ivr.sip, &["-sf", &scenario, "-m", "1", "-d", "3000"]);
    assert_eq!(
        run.code,
        0,
        "SIPp:\n{}\n--- engine ---\n{}",
        run.output,
        ivr.log()
    );
    let stored = ivr.wait_for(&["callback request stored"], 1, WAIT);
    assert_eq!(stored.len(), 1, "{}", ivr.log());

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", ivr.data_dir().join("callbacks.db").display()));
    let requests = rt.block_on(async {
        let store = Store::open(&db).await.unwrap();
        store.list(&Filter::default()).await.unwrap()
    });
    assert_eq!(requests.len(), 1, "{requests:?}");
    let r = &requests[0];
    assert_eq!(r.request.mailbox, "messages");
    assert_eq!(r.request.caller_id.as_deref(), Some("+33612345678"));
    assert_eq!(r.request.callback_number.as_deref(), Some("0491234567"));
    assert_eq!(r.request.language.as_deref(), Some("en"));
    assert_eq!(r.request.menu_path, ["language", "main_en"]);
    assert!(r.request.has_message && r.request.hung_up && !r.recovered);

    // The webhook came, signed, with the request.
    let hooks = sink.wait(1, WAIT);
    assert_eq!(hooks.len(), 1, "{}", ivr.log());
    check_hook(&hooks[0], &r.request.id);

    // The WAV: 8 kHz 16-bit mono, as long as the row says, and what was said.
    let wav_path = ivr
        .data_dir()
        .join("voicemail")
        .join(format!("{}.wav", r.request.id));
    let bytes = std::fs::read(&wav_path).unwrap();
    let wav = ivr_audio::wav::decode(&bytes).unwrap();
    assert_eq!(wav.rate, 8000);
    let got = wav.samples;
    assert_eq!(r.request.duration_ms, got.len() as u64 / 8);
    // The hang-up came 3 s into the stream: the message is as long as the audio sent.
    let ms = r.request.duration_ms as i64;
    assert!(
        (ms - 3000).abs() <= 100,
        "recorded {ms} ms of the 3000 ms sent before the hang-up"
    );
    // Aligned with what was sent: search the lag (the recording starts with the first
    // packet, so it is at or near 0).
    let (lag, best) = (0..800)
        .map(|lag| (lag, correlation(&got, &heard, lag)))
        .fold((0, f64::MIN), |a, b| if b.1 > a.1 { b } else { a });
    assert!(
        best > 0.95,
        "correlation with the audio sent: {best:.3} at lag {lag}"
    );
    eprintln!("recorded {ms} ms; correlation {best:.4} at lag {lag}");
    // And well above chance: the same audio shifted by half a second does not match.
    assert!(correlation(&got, &heard, lag + 4000) < 0.5);
    // Staff work through it from the terminal.
    let cli = |args: &[&str]| -> String {
        let out = std::process::Command::new(ivr_tests::process::ivr_binary())
            .arg("callbacks")
            .args(args)
            .arg("--data-dir")
            .arg(ivr.data_dir())
            .args(["--database", &db])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ivr callbacks {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let id = r.request.id.as_str();
    let list = cli(&["list", "--status", "new"]);
    assert!(
        list.contains(id) && list.contains("0491234567") && list.contains("1 request(s)"),
        "{list}"
    );
    let shown = cli(&["show", id]);
    assert!(
        shown.contains("menus:           language > main_en"),
        "{shown}"
    );
    assert!(
        shown
            .lines()
            .any(|l| l.contains(" caller ") && l.contains(" created")),
        "{shown}"
    );
    cli(&["claim", id, "--as", "alice"]);
    let resolved = cli(&[
        "resolve",
        id,
        "--as",
        "alice",
        "--note",
        "called back, all good",
    ]);
    assert!(
        resolved.contains("status:          resolved (alice)"),
        "{resolved}"
    );
    let history = cli(&["show", id]);
    assert!(
        history.contains("alice      note       called back, all good"),
        "{history}"
    );
    let csv = cli(&["export", "--csv"]);
    assert!(csv.starts_with("id,received_at,mailbox,"), "{csv}");
    assert!(
        csv.contains(&format!("{id},")) && csv.contains(",resolved,alice,"),
        "{csv}"
    );
    let exported = work.path().join("out.wav");
    cli(&["export-audio", id, "-o", exported.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(&exported).unwrap(),
        bytes,
        "the exported WAV is the recording"
    );
    let none = std::process::Command::new(ivr_tests::process::ivr_binary())
        .args([
            "callbacks",
            "export-audio",
            "../../etc/passwd",
            "--data-dir",
        ])
        .arg(ivr.data_dir())
        .output()
        .unwrap();
    assert!(!none.status.success(), "ids never become paths");

    // No file is left waiting for recovery.
    let leftovers: Vec<String> = std::fs::read_dir(ivr.data_dir().join("voicemail"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| !n.ends_with(".wav"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

const SECRET: &str = "webhook-secret-for-tests-0123456789";

/// A webhook request is a signed POST announcing request `id`.
fn check_hook(h: &ivr_tests::http::Received, id: &str) {
    assert_eq!(h.line, "POST /hook HTTP/1.1");
    assert_eq!(h.header("content-type"), Some("application/json"));
    assert_eq!(h.header("x-ivr-event"), Some("callback_request.created"));
    let stamp = h.header("x-ivr-timestamp").unwrap();
    assert!(stamp.parse::<u64>().is_ok(), "{stamp}");
    let signature = h.header("x-ivr-signature").unwrap();
    assert_eq!(
        signature,
        receiver_signature(SECRET, stamp, &h.body),
        "the signature verifies with the shared secret"
    );
    // The check can fail: one byte of the body changed, and it no longer verifies.
    let mut tampered = h.body.clone();
    tampered[0] ^= 1;
    assert_ne!(signature, receiver_signature(SECRET, stamp, &tampered));
    let body = String::from_utf8(h.body.clone()).unwrap();
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["request"]["id"], id);
    assert_eq!(json["request"]["mailbox"], "messages");
    assert_eq!(json["request"]["callback_number"], "0491234567");
}

/// The signature a receiver computes, as the docs tell it to: HMAC-SHA256 with the shared
/// secret over `"{timestamp}.{body}"`, hex, prefixed `sha256=`. Computed by Python's
/// standard library, not by the engine's code under test (scripts/test.sh makes sure
/// python3 is there).
fn receiver_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    use std::io::Write;
    let mut py = std::process::Command::new("python3")
        .args([
            "-c",
            "import hashlib, hmac, sys\n\
             msg = sys.argv[2].encode() + b'.' + sys.stdin.buffer.read()\n\
             print('sha256=' + hmac.new(sys.argv[1].encode(), msg, hashlib.sha256).hexdigest())",
            secret,
            timestamp,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (scripts/test.sh installs it)");
    py.stdin.take().unwrap().write_all(body).unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(out.status.success(), "python3 failed to compute the HMAC");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Every stored request of the engine in `data`.
fn stored(data: &std::path::Path) -> Vec<ivr_voicemail::store::Stored> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = format!("sqlite://{}", data.join("callbacks.db").display());
    rt.block_on(async {
        let store = Store::open(&db).await.unwrap();
        store.list(&Filter::default()).await.unwrap()
    })
}

fn recording(data: &std::path::Path, id: &str) -> Vec<i16> {
    let bytes = std::fs::read(data.join("voicemail").join(format!("{id}.wav"))).unwrap();
    ivr_audio::wav::decode(&bytes).unwrap().samples
}

fn sent_audio(work: &std::path::Path) -> (std::path::PathBuf, Vec<i16>) {
    let ulaw: Vec<u8> = source()
        .iter()
        .map(|s| ivr_audio::Codec::Pcmu.encode(*s))
        .collect();
    let audio = work.join("message.ulaw");
    std::fs::write(&audio, &ulaw).unwrap();
    let heard = ulaw
        .iter()
        .map(|c| ivr_audio::Codec::Pcmu.decode(*c))
        .collect();
    (audio, heard)
}

#[test]
fn fifty_concurrent_messages_are_all_stored_with_no_frame_lost() {
    let work = tempfile::tempdir().unwrap();
    let (audio, heard) = sent_audio(work.path());
    let ivr = Ivr::start(&[]);
    let scenario = scenario(work.path(), &audio, "+33612345678");
    let run = ivr_tests::sipp::run(
        ivr.sip,
        &[
            "-sf", &scenario, "-m", "50", "-l", "50", "-r", "25", "-d", "3000",
        ],
    );
    assert_eq!(run.code, 0, "SIPp:\n{}", run.output);
    assert_eq!(
        ivr.wait_for(&["callback request stored"], 50, WAIT).len(),
        50,
        "{}",
        ivr.log()
    );
    let requests = stored(ivr.data_dir());
    assert_eq!(requests.len(), 50);
    let mut worst = f64::MAX;
    for r in &requests {
        let got = recording(ivr.data_dir(), &r.request.id);
        let ms = got.len() as i64 / 8;
        assert!((ms - 3000).abs() <= 100, "{}: {ms} ms", r.request.id);
        // Sample for sample what was sent: no frame lost or misplaced.
        let c = correlation(&got, &heard, 0);
        worst = worst.min(c);
        assert!(c > 0.999, "{}: correlation {c:.4}", r.request.id);
    }
    eprintln!("50 recordings, each 3000 ± 100 ms, worst correlation {worst:.5}");
}

#[test]
fn after_kill_9_during_twenty_recordings_every_one_is_recovered() {
    let work = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let (audio, heard) = sent_audio(work.path());
    let mut ivr = Ivr::start_in(data.path(), &[]);
    let scenario = scenario(work.path(), &audio, "+33612345678");
    let target = ivr.sip;
    // Twenty callers who would keep talking for a long time.
    let sipp = std::thread::spawn(move || {
        ivr_tests::sipp::run(
            target,
            &[
                "-sf", &scenario, "-m", "20", "-l", "20", "-r", "20", "-d", "20000", "-timeout",
                "25s",
            ],
        )
    });
    let started = ivr.wait_for(&["recording the caller's message"], 20, WAIT);
    assert_eq!(started.len(), 20, "{}", ivr.log());
    std::thread::sleep(Duration::from_millis(5000));
    let ivr_log = ivr.log();
    ivr.kill9();
    let killed_at = std::time::SystemTime::now();

    // Restart on the same data: every recording is repaired and stored, marked recovered.
    let ivr = Ivr::start_in(data.path(), &[]);
    let recovered = ivr.wait_for(
        &["recovered callback requests left by the last run"],
        1,
        WAIT,
    );
    assert_eq!(recovered.len(), 1, "{}", ivr.log());
    let requests = stored(data.path());
    assert_eq!(requests.len(), 20, "{requests:?}");
    let mut missing = Vec::new();
    for r in &requests {
        assert!(r.recovered, "{} is marked recovered", r.request.id);
        assert_eq!(r.request.callback_number.as_deref(), Some("0491234567"));
        // SIPp starts streaming 15.8 s after its INVITE (the scenario's pauses): the call's
        // start, from the engine's log, plus 15.8 s.
        let log = ivr_log.clone();
        let line = log
            .lines()
            .find(|l| {
                l.contains("\"call started\"")
                    && l.contains(&format!("\"call_id\":\"{}\"", r.request.call_id))
            })
            .unwrap_or_else(|| panic!("no start for {}", r.request.call_id));
        let stamp = line
            .split("\"timestamp\":\"")
            .nth(1)
            .and_then(|t| t.split('"').next())
            .unwrap();
        let call_start: jiff::Timestamp = stamp.parse().unwrap();
        let killed: jiff::Timestamp = killed_at.try_into().unwrap();
        let spoken_ms = killed.duration_since(call_start).as_millis() as i64 - 15_800;
        let got = recording(data.path(), &r.request.id);
        let ms = got.len() as i64 / 8;
        assert_eq!(r.request.duration_ms as i64, ms);
        assert!(
            ms >= spoken_ms - 1000 - 150 && ms <= spoken_ms + 100,
            "{}: {ms} ms recovered of about {spoken_ms} ms spoken (at most the last second may be missing)",
            r.request.id
        );
        assert!(correlation(&got, &heard, 0) > 0.999, "{}", r.request.id);
        missing.push(spoken_ms - ms);
    }
    missing.sort();
    eprintln!(
        "20 recordings recovered after kill -9; missing audio per recording: min {} ms, max {} ms",
        missing[0],
        missing[missing.len() - 1]
    );
    let _ = sipp.join();
}

#[test]
fn a_webhook_that_cannot_be_delivered_waits_in_the_outbox_across_a_restart() {
    let work = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let (audio, _) = sent_audio(work.path());
    let secret_file = work.path().join("secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    // A port nobody listens on yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hook = format!("http://127.0.0.1:{port}/hook");
    let args = [
        "--webhook-url",
        hook.as_str(),
        "--webhook-secret-file",
        secret_file.to_str().unwrap(),
    ];
    let mut ivr = Ivr::start_in(data.path(), &args);
    let scenario = scenario(work.path(), &audio, "+33612345678");
    let run = ivr_tests::sipp::run(ivr.sip, &["-sf", &scenario, "-m", "1", "-d", "1000"]);
    assert_eq!(run.code, 0, "{}", run.output);
    assert_eq!(
        ivr.wait_for(&["webhook not delivered"], 2, WAIT).len(),
        2,
        "{}",
        ivr.log()
    );
    assert!(ivr.terminate().success());
    // The receiver comes up; the restarted engine delivers from its outbox.
    let sink = ivr_tests::http::Sink::start(port, 200);
    let ivr = Ivr::start_in(data.path(), &args);
    let hooks = sink.wait(1, WAIT);
    assert_eq!(hooks.len(), 1, "{}", ivr.log());
    let id = stored(data.path())[0].request.id.clone();
    check_hook(&hooks[0], &id);
    assert_eq!(ivr.wait_for(&["webhook delivered"], 1, WAIT).len(), 1);
}

#[test]
fn a_mailbox_with_addresses_gets_the_request_by_email_with_the_recording() {
    let work = tempfile::tempdir().unwrap();
    let (audio, _) = sent_audio(work.path());
    // The demo, with an address on its mailbox.
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo");
    let config = std::fs::read_to_string(demo.join("config.yaml"))
        .unwrap()
        .replace("prompts/", &format!("{}/prompts/", demo.display()));
    let edited = config.replace(
        "    max_length: 120\n",
        "    max_length: 120\n    email: [desk@example.com]\n",
    );
    assert_ne!(edited, config, "the edit applied");
    let config_path = work.path().join("config.yaml");
    std::fs::write(&config_path, edited).unwrap();

    let smtp = ivr_tests::smtp::SmtpSink::start();
    let url = format!("smtp://{}", smtp.addr);
    let ivr = Ivr::start(&[
        "--config",
        config_path.to_str().unwrap(),
        "--smtp-url",
        &url,
        "--mail-from",
        "IVR <ivr@example.com>",
    ]);
    let scenario = scenario(work.path(), &audio, "+33612345678");
    let run = ivr_tests::sipp::run(ivr.sip, &["-sf", &scenario, "-m", "1", "-d", "2000"]);
    assert_eq!(run.code, 0, "{}", run.output);
    let mails = smtp.wait(1, WAIT);
    assert_eq!(mails.len(), 1, "{}", ivr.log());
    let m = &mails[0];
    assert_eq!(m.to, ["<desk@example.com>"]);
    assert!(
        m.data
            .contains("Subject: Callback request: 0491234567 (messages)"),
        "{}",
        m.data
    );
    assert!(m.data.contains("Call back: 0491234567"), "{}", m.data);
    // The attachment is the stored recording, byte for byte.
    let id = stored(ivr.data_dir())[0].request.id.clone();
    let wav = std::fs::read(ivr.data_dir().join("voicemail").join(format!("{id}.wav"))).unwrap();
    let marker = format!("filename=\"{id}.wav\"");
    let after = m
        .data
        .split(&marker)
        .nth(1)
        .expect("an attachment named by the request");
    let b64: String = after
        .split("\r\n\r\n")
        .nth(1)
        .unwrap()
        .split("\r\n--")
        .next()
        .unwrap()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    use base64::Engine;
    let attached = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert_eq!(attached, wav);
    assert_eq!(ivr.wait_for(&["callback e-mail sent"], 1, WAIT).len(), 1);
}

#[test]
fn an_unwritable_voicemail_folder_gets_the_caller_an_apology_and_keeps_the_engine_up() {
    let work = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    // The recordings' folder cannot be made: a file is in the way.
    std::fs::write(data.path().join("voicemail"), b"not a folder").unwrap();
    let (audio, _) = sent_audio(work.path());
    let ivr = Ivr::start_in(data.path(), &[]);
    let scenario = scenario(work.path(), &audio, "+33612345678");
    let run = ivr_tests::sipp::run(ivr.sip, &["-sf", &scenario, "-m", "1", "-d", "500"]);
    assert_eq!(run.code, 0, "{}\n{}", run.output, ivr.log());
    assert_eq!(
        ivr.wait_for(&["voicemail recording failed"], 1, WAIT).len(),
        1,
        "{}",
        ivr.log()
    );
    assert_eq!(
        ivr.wait_for(&["\"playing\"", "\"prompt\":\"vm_sorry\""], 1, WAIT)
            .len(),
        1,
        "the caller hears the apology:\n{}",
        ivr.log()
    );
    let metrics = http::get(ivr.http.unwrap(), "/metrics").text();
    assert!(
        metrics.contains("ivr_recording_failures_total 1"),
        "{metrics}"
    );
    assert!(stored(data.path()).is_empty(), "nothing half-stored");
    // The engine still answers calls.
    let again = ivr_tests::sipp::run(ivr.sip, &["-sn", "uac", "-m", "3"]);
    assert_eq!(again.code, 0, "{}", again.output);
}
