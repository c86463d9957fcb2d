//! Satisfaction survey, black box (issue #12): the real `ivr` binary on 127.0.0.1, a SIPp
//! caller who presses 1 to join a queue whose action asks for a survey, a static SIPp agent
//! who answers and hangs up after a second; the caller stays on the line, answers the two
//! questions with RFC 2833 keys (SIPp's `dtmf_2833_*.pcap`), then, after the comment's
//! beep, streams two seconds of audio as RTP (SIPp's `rtp_stream`) and presses `#`; the
//! engine thanks and hangs up. Then `ivr calls export --json` shows the answers with the
//! call record, `ivr calls report` sums them, the comment's WAV holds what was streamed
//! (sample for sample, the audio sent once recording began), `ivr calls show` names it,
//! and the staff API and page serve it.

use ivr_tests::process::{Ivr, run};
use ivr_tests::sipp::{self, KeysEnd, keys_scenario, scenario};
use serde_json::Value;
use std::time::{Duration, Instant};

#[test]
fn a_sipp_caller_answers_the_survey_with_rfc_2833_keys_after_the_sipp_agent_hangs_up() {
    let dir = tempfile::tempdir().unwrap();
    // The agent answers, talks for a second, hangs up.
    let agent_xml = std::fs::read_to_string(scenario("agent_hangs_up.xml"))
        .unwrap()
        .replace("@HOLD_MS@", "1000");
    let agent_path = dir.path().join("agent_hangs_up.xml");
    std::fs::write(&agent_path, agent_xml).unwrap();
    let mut agent = sipp::spawn_uas(&["-sf", agent_path.to_str().unwrap(), "-m", "1"]);

    let config = dir.path().join("survey.yaml");
    std::fs::write(
        &config,
        format!(
            r#"entry: main
prompts:
  hi: {{ silence: 1 }}
  question: {{ silence: 1.5 }}
  thanks: {{ silence: 0.5 }}
queues:
  sales: {{ agent_timeout: 10 }}
agents:
  desk:
    uri: sip:desk@{agent}
    queues: {{ sales: 0 }}
surveys:
  after_call:
    thanks: thanks
    questions:
      - {{ name: rating, prompt: question, keys: 1-5, timeout: 10 }}
      - {{ name: recommend, prompt: question, keys: 0-9, timeout: 10 }}
      - {{ name: comment, prompt: question, record: {{ max_length: 10, silence: 3 }} }}
menus:
  main:
    prompt: hi
    timeout: 10
    options:
      "1": {{ queue: {{ name: sales, survey: after_call }} }}
"#,
            agent = agent.addr
        ),
    )
    .unwrap();
    let (code, out, err) = run(dir.path(), &["check", config.to_str().unwrap()], "");
    assert_eq!(code, 0, "{out}{err}");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let ivr = Ivr::start_in(&data, &["--config", config.to_str().unwrap()]);

    // What the caller says as its comment: 2 s of a pseudo-random signal (loud enough to
    // be voice, and never the same frame twice), as raw µ-law for SIPp's rtp_stream.
    let mut x = 0x1234_5678u32;
    let said: Vec<i16> = (0..16_000)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((x >> 16) as i16) / 8
        })
        .collect();
    let audio = dir.path().join("comment.ulaw");
    sipp::ulaw_message(&audio, &said);
    let heard: Vec<i16> = said
        .iter()
        .map(|s| ivr_audio::Codec::Pcmu.decode(ivr_audio::Codec::Pcmu.encode(*s)))
        .collect();

    // 1 joins the queue at 1.2 s; the agent answers at once and hangs up a second later;
    // 4 comes at about 5 s, during or after the first question, 9 two seconds later. The
    // comment's prompt (1.5 s) and beep (0.25 s) follow: 2.5 s after 9 the caller streams
    // its comment (2 s), and presses # 2.6 s after the stream began.
    let caller = keys_scenario(
        dir.path(),
        "survey",
        &[(1200, '1'), (3800, '4'), (2000, '9'), (2500, '#')],
        KeysEnd::EngineHangsUp,
    );
    let pound = r#"<nop><action><exec play_pcap_audio="/usr/share/sip-tester/dtmf_2833_pound.pcap"/></action></nop>"#;
    let text = std::fs::read_to_string(&caller).unwrap();
    assert!(text.contains(pound));
    let text = text.replace(
        pound,
        &format!(
            "<nop><action><exec rtp_stream=\"{},1,0\"/></action></nop>\n  <pause milliseconds=\"2600\"/>\n  {pound}",
            audio.display()
        ),
    );
    std::fs::write(&caller, text).unwrap();
    let run_caller = sipp::run(ivr.sip, &["-sf", &caller, "-m", "1"]);
    assert_eq!(
        run_caller.code,
        0,
        "the engine hung up after the survey:\n{}\n{}\nagent:\n{}",
        run_caller.output,
        ivr.log(),
        agent.output()
    );
    let end = Instant::now() + Duration::from_secs(10);
    while agent.try_finish().is_none() {
        assert!(
            Instant::now() < end,
            "the agent's SIPp never ended:\n{}",
            agent.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // The record reaches the store shortly after the call.
    let data_dir = data.to_str().unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    let record = loop {
        let (code, out, err) = run(
            dir.path(),
            &["calls", "export", "--json", "--data-dir", data_dir],
            "",
        );
        assert_eq!(code, 0, "{err}");
        let records: Vec<Value> = serde_json::from_str(&out).unwrap();
        if let Some(r) = records.into_iter().next() {
            break r;
        }
        assert!(Instant::now() < end, "no record: {}", ivr.log());
        std::thread::sleep(Duration::from_millis(200));
    };
    let answers: Vec<(String, Value, String)> = record["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["question"].as_str().unwrap().to_string(),
                a["answer"].clone(),
                a["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        answers,
        [
            ("rating".into(), Value::from("4"), "answered".into()),
            ("recommend".into(), Value::from("9"), "answered".into()),
            ("comment".into(), Value::Null, "answered".into()),
        ],
        "{record:#}\n{}",
        ivr.log()
    );
    assert_eq!(record["end_reason"], "destination_hung_up");
    assert!(
        ivr.log()
            .contains("survey: the other side hung up, the caller is asked"),
        "{}",
        ivr.log()
    );
    assert_eq!(record["agent"], "desk");
    // The report sums the answers: each question's score, per hour too.
    let (code, out, err) = run(
        dir.path(),
        &["calls", "report", "--json", "--data-dir", data_dir],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let scores: Vec<(&str, u64, Option<f64>)> = report["surveys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            (
                q["question"].as_str().unwrap(),
                q["answered"].as_u64().unwrap(),
                q["average"].as_f64(),
            )
        })
        .collect();
    // The comment counts as answered (the caller spoke), with no score.
    assert_eq!(
        scores,
        [
            ("rating", 1, Some(4.0)),
            ("recommend", 1, Some(9.0)),
            ("comment", 1, None)
        ],
        "{report:#}"
    );
    let hour = report["surveys"][0]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["asked"] == 1)
        .expect("the hour it was asked in");
    assert_eq!(hour["answers"]["4"], 1, "{hour:#}");

    // The comment: linked to its answer by key, in the voicemail folder as WAV.
    let key = record["answers"][2]["recording"]
        .as_str()
        .unwrap_or_else(|| panic!("no recording: {record:#}"))
        .to_string();
    assert!(key.starts_with("comment-"), "{key}");
    let vm = data.join("voicemail");
    let bytes = std::fs::read(vm.join(format!("{key}.wav"))).unwrap();
    let wav = ivr_audio::wav::decode(&bytes).unwrap();
    assert_eq!(wav.rate, 8000);
    let got = wav.samples;
    // It is what was streamed once recording began: the frames from some packet on, sample
    // for sample, to the end of the stream (then # ended it). Recording began after the
    // beep, at most 0.75 s after the stream started on a slow machine, so at least 1.25 s.
    assert!(
        (10_000..=16_000).contains(&got.len()),
        "{} samples recorded\n{}",
        got.len(),
        ivr.log()
    );
    let start = (0..heard.len() / 160)
        .map(|f| f * 160)
        .find(|&o| heard[o..].starts_with(&got[..160]))
        .unwrap_or_else(|| panic!("the comment's first frame is nowhere in what was sent"));
    assert_eq!(
        &got[..],
        &heard[start..start + got.len()],
        "the comment is the audio sent, sample for sample (from packet {})",
        start / 160
    );
    assert_eq!(start + got.len(), heard.len(), "to the end of the stream");
    eprintln!(
        "comment: {} of the {} samples streamed recorded (from packet {}), sample for sample",
        got.len(),
        heard.len(),
        start / 160
    );
    // Its record beside it, kept for a crash, went once the call record was stored.
    let end = Instant::now() + Duration::from_secs(5);
    while vm.join(format!("{key}.json")).exists() {
        assert!(Instant::now() < end, "the comment's KEY.json stays");
        std::thread::sleep(Duration::from_millis(50));
    }
    let call_id = record["call_id"].as_str().unwrap();
    let (code, shown, err) = run(
        dir.path(),
        &["calls", "show", call_id, "--data-dir", data_dir],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        shown.contains(&format!("comment          answered  comment {key}.wav")),
        "{shown}"
    );

    // Staff who see every mailbox hear it through the API; a scoped user does not.
    let token = |user: &str, mailbox: &str| {
        let users = ["staff", "--users", "staff.yaml"];
        let add = [&users[..], &["add-user", user, "--mailbox", mailbox]].concat();
        let (code, _, err) = run(&data, &add, "a long staff password\n");
        assert_eq!(code, 0, "{err}");
        let (code, out, err) = run(&data, &[&users[..], &["add-token", user]].concat(), "");
        assert_eq!(code, 0, "{err}");
        format!("Bearer {}", out.trim())
    };
    let (all, scoped) = (token("boss", "*"), token("alice", "messages"));
    let http = ivr.http.unwrap();
    let get = |path: &str, auth: &str| {
        ivr_tests::http::request(http, "GET", path, &[("Authorization", auth)], b"").unwrap()
    };
    let list = get("/api/comments", &all);
    assert_eq!(list.status, 200, "{}", list.text());
    assert_eq!(list.json()[0]["recording"], key.as_str());
    let wav = get(&format!("/api/comments/{key}"), &all);
    assert_eq!(wav.status, 200);
    assert_eq!(wav.header("content-type"), Some("audio/wav"));
    assert_eq!(wav.body, bytes, "the file, as it is");
    assert_eq!(
        get(&format!("/api/comments/{key}"), &scoped).status,
        404,
        "not for staff of some mailboxes only"
    );
    let none = get("/api/comments", &scoped);
    assert_eq!((none.status, none.json()), (200, serde_json::json!([])));
    assert_eq!(get("/api/comments/comment-1-2", &all).status, 404);
    assert_eq!(get("/api/comments/..%2Fcallbacks.db", &all).status, 404);
    assert_eq!(
        ivr_tests::http::get(http, &format!("/api/comments/{key}")).status,
        401
    );

    // The staff page's Reports tab lists it with a player that loads it; a screenshot is
    // kept.
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let logs = manifest.join("../target/ci-logs");
    std::fs::create_dir_all(&logs).unwrap();
    let shot = logs.join("staff-comments.png");
    let out = std::process::Command::new("python3")
        .arg(manifest.join("scripts/comments_browser.py"))
        .args([
            &format!("http://{http}"),
            "boss",
            "a long staff password",
            &key,
        ])
        .arg(&shot)
        .output()
        .expect("python3 runs (scripts/test.sh installs playwright and chromium)");
    assert!(
        out.status.success(),
        "browser test failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprint!("{}", String::from_utf8_lossy(&out.stdout));
}

/// The `.wav.part` files in `dir`, each with the audio its header counts (ms): what reached
/// the disk for sure, flushed every second.
fn flushed_ms(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u64)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let path = e.ok()?.path();
            if !path.to_string_lossy().ends_with(".wav.part") {
                return None;
            }
            let mut head = [0u8; 44];
            use std::io::Read;
            std::fs::File::open(&path)
                .ok()?
                .read_exact(&mut head)
                .ok()?;
            let data = u32::from_le_bytes([head[40], head[41], head[42], head[43]]);
            Some((path, u64::from(data) / 16))
        })
        .collect()
}

/// `kill -9` while a SIPp caller speaks its comment: at the restart the comment's WAV is
/// repaired and the call's record, kept beside it, is stored (end reason `recovered`, the
/// comment `hangup`), the WAV holding what was sent sample for sample, at least what was
/// flushed before the kill.
#[test]
fn after_kill_9_mid_comment_the_comment_and_its_call_record_are_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let agent_xml = std::fs::read_to_string(scenario("agent_hangs_up.xml"))
        .unwrap()
        .replace("@HOLD_MS@", "500");
    let agent_path = dir.path().join("agent_hangs_up.xml");
    std::fs::write(&agent_path, agent_xml).unwrap();
    let mut agent = sipp::spawn_uas(&["-sf", agent_path.to_str().unwrap(), "-m", "1"]);
    let config = dir.path().join("survey.yaml");
    std::fs::write(
        &config,
        format!(
            r#"entry: main
prompts:
  hi: {{ silence: 0.5 }}
  question: {{ silence: 0.5 }}
queues:
  sales: {{ agent_timeout: 10 }}
agents:
  desk:
    uri: sip:desk@{agent}
    queues: {{ sales: 0 }}
surveys:
  after_call:
    questions:
      - {{ name: comment, prompt: question, record: {{ max_length: 30, silence: 5 }} }}
menus:
  main:
    prompt: hi
    timeout: 10
    options:
      "1": {{ queue: {{ name: sales, survey: after_call }} }}
"#,
            agent = agent.addr
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut ivr = Ivr::start_in(&data, &["--config", config.to_str().unwrap()]);

    // 8 s of what the caller says (it is cut by the kill).
    let mut x = 0x0bad_cafe_u32;
    let said: Vec<i16> = (0..64_000)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((x >> 16) as i16) / 8
        })
        .collect();
    let audio = dir.path().join("comment.ulaw");
    sipp::ulaw_message(&audio, &said);
    let heard: Vec<i16> = said
        .iter()
        .map(|s| ivr_audio::Codec::Pcmu.decode(ivr_audio::Codec::Pcmu.encode(*s)))
        .collect();
    // 1 at 0.8 s joins the queue; the agent answers and hangs up 0.5 s later; the comment's
    // prompt (0.5 s) and beep (0.25 s): the caller starts speaking 2.5 s after its key.
    let caller = keys_scenario(
        dir.path(),
        "crash",
        &[(800, '1'), (2500, '#')],
        KeysEnd::EngineHangsUp,
    );
    let pound = r#"<nop><action><exec play_pcap_audio="/usr/share/sip-tester/dtmf_2833_pound.pcap"/></action></nop>"#;
    let text = std::fs::read_to_string(&caller).unwrap().replace(
        pound,
        &format!(
            "<nop><action><exec rtp_stream=\"{},1,0\"/></action></nop>\n  <pause milliseconds=\"8000\"/>",
            audio.display()
        ),
    );
    std::fs::write(&caller, text).unwrap();
    let target = ivr.sip;
    // The caller is left without an engine: SIPp is stopped after 12 s.
    let sipp_run =
        std::thread::spawn(move || sipp::run_for(target, &["-sf", &caller, "-m", "1"], 12));

    // Kill once the comment's header counts 2 s (flushed twice): mid-comment, with audio
    // both flushed and not yet flushed.
    let vm = data.join("voicemail");
    let end = Instant::now() + Duration::from_secs(15);
    let part = loop {
        if let Some((path, _)) = flushed_ms(&vm).into_iter().find(|(_, ms)| *ms >= 2000) {
            break path;
        }
        assert!(
            Instant::now() < end,
            "the comment never reached 2 s: {:?}\n{}",
            flushed_ms(&vm),
            ivr.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    ivr.kill9();
    let key = part
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_end_matches(".wav.part")
        .to_string();
    assert!(key.starts_with("comment-"), "{key}");
    assert!(
        vm.join(format!("{key}.json")).exists(),
        "its record beside it"
    );

    // Restart on the same data.
    let ivr = Ivr::start_in(&data, &["--config", config.to_str().unwrap()]);
    let recovered = ivr.wait_for(
        &["recovered callback requests left by the last run"],
        1,
        Duration::from_secs(10),
    );
    assert_eq!(recovered.len(), 1, "{}", ivr.log());
    assert!(recovered[0].contains("\"comments\":1"), "{}", recovered[0]);
    let (code, out, err) = run(
        dir.path(),
        &[
            "calls",
            "export",
            "--json",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let records: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(records.len(), 1, "{out}");
    let r = &records[0];
    assert_eq!(r["end_reason"], "recovered");
    assert_eq!(r["agent"], "desk");
    assert_eq!(r["answers"][0]["question"], "comment");
    assert_eq!(r["answers"][0]["outcome"], "hangup");
    assert_eq!(r["answers"][0]["recording"], key.as_str());
    assert!(!part.exists() && !vm.join(format!("{key}.json")).exists());
    let wav =
        ivr_audio::wav::decode(&std::fs::read(vm.join(format!("{key}.wav"))).unwrap()).unwrap();
    let got = wav.samples;
    assert!(got.len() >= 16_000, "{} samples", got.len());
    let start = (0..heard.len() / 160)
        .map(|f| f * 160)
        .find(|&o| heard[o..].starts_with(&got[..160]))
        .unwrap_or_else(|| panic!("the comment's first frame is nowhere in what was sent"));
    assert_eq!(
        &got[..],
        &heard[start..start + got.len()],
        "sample for sample (from packet {})",
        start / 160
    );
    eprintln!(
        "recovered after kill -9: a comment of {} samples (from packet {}), sample for sample",
        got.len(),
        start / 160
    );
    let run_caller = sipp_run.join().unwrap();
    assert_ne!(run_caller.code, 0, "the call cannot have completed");
    drop(ivr);
    let _ = agent.try_finish();
}
