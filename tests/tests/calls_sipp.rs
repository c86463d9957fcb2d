//! Call records, black box (issue #12): 50 SIPp callers take six different paths through
//! the embedded demo with RFC 2833 keys, all at once; then `ivr calls export --json` holds
//! one record per call with the path each took, and the report counts them exactly. Calls still in progress at SIGTERM are recorded too. On
//! SQLite and on PostgreSQL.

use ivr_tests::process::{Ivr, run};
use ivr_tests::sipp::{self, KeysEnd, keys_scenario};
use serde_json::Value;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

/// `ivr ARGS --data-dir DATA` (and `--database URL` if given), which must succeed: its
/// standard output.
fn ivr_on(data: &std::path::Path, database: Option<&str>, args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.extend_from_slice(&["--data-dir", data.to_str().unwrap()]);
    if let Some(url) = database {
        all.extend_from_slice(&["--database", url]);
    }
    let (code, out, err) = run(std::path::Path::new("."), &all, "");
    assert_eq!(code, 0, "{err}");
    out
}

/// `ivr calls export --json` (more arguments in `extra`) on the engine's data, or on
/// `database` if given.
fn export(data: &std::path::Path, database: Option<&str>, extra: &[&str]) -> Vec<Value> {
    let out = ivr_on(
        data,
        database,
        &[&["calls", "export", "--json"], extra].concat(),
    );
    serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// `ivr calls report --json` after [`PATHS`]: their counts per menu and per outcome.
fn check_report(data: &std::path::Path, database: Option<&str>, http: std::net::SocketAddr) {
    let report = |extra: &[&str]| -> Value {
        let out = ivr_on(
            data,
            database,
            &[&["calls", "report", "--json"], extra].concat(),
        );
        serde_json::from_str(&out).unwrap()
    };
    let r = report(&[]);
    assert_eq!(r["calls"], 50, "{r:#}");
    let o = &r["outcomes"];
    let outcomes: Vec<u64> = [
        "self_served",
        "callback_request",
        "voicemail_left_nothing",
        "reached_agent",
        "abandoned_in_queue",
        "transferred",
        "hung_up_in_menus",
        "other",
    ]
    .iter()
    .map(|k| o[k].as_u64().unwrap())
    .collect();
    // goodbye; nobody; message (hung up in the greeting: no request); nobody; operator;
    // nobody; quiet, invalid and back.
    assert_eq!(outcomes, [9, 0, 8, 0, 9, 0, 24, 0], "{o:#}");
    // (menu, presentations, invalid, hang-ups), the menus callers give up in most first.
    let menus: Vec<(&str, u64, u64, u64)> = r["menus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let n = |k: &str| m[k].as_u64().unwrap();
            (
                m["menu"].as_str().unwrap(),
                n("presentations"),
                n("invalid"),
                n("hangups"),
            )
        })
        .collect();
    assert_eq!(
        menus,
        [
            ("main_fr", 16, 0, 8),
            ("main_en", 42, 8, 8),
            ("language", 58, 0, 8)
        ]
    );
    let language = &r["menus"][2]["keys"];
    assert_eq!(
        (
            &language[0]["key"],
            &language[0]["count"],
            &language[1]["key"]
        ),
        (&Value::from("2"), &Value::from(34), &Value::from("1")),
        "{language:#}"
    );
    let hours: u64 = r["per_hour"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["calls"].as_u64().unwrap())
        .sum();
    assert_eq!(hours, 50);
    // The message caller hung up during the mailbox's greeting: no request was left.
    assert_eq!(r["callbacks"]["created"], 0, "{r:#}");
    assert_eq!(
        r["surveys"],
        Value::Array(Vec::new()),
        "no survey in these calls"
    );
    assert_eq!(report(&["--entry", "language"])["calls"], 50);
    assert_eq!(report(&["--entry", "nowhere"])["calls"], 0);
    // The demo's flow with the share of calls on each way out of a menu.
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/demo/config.yaml");
    let graph = ivr_on(data, database, &["graph", demo, "--stats", ".."]);
    for edge in [
        "m_language -->|\"2 (en) (68.0%, 34 calls)\"| m_main_en",
        "m_language -->|\"1 (fr) (32.0%, 16 calls)\"| m_main_fr",
        "m_main_en -->|\"5 (18.0%, 9 calls)\"| x_queue_operators",
        "m_main_en -.->|\"invalid (x2) / 6 s timeout (x2): repeat (16.0%, 8 calls)\"| m_main_en",
    ] {
        assert!(
            graph.lines().any(|l| l.trim() == edge),
            "{edge} not in\n{graph}"
        );
    }
    // The same document from the API, for a staff user (the users file is read as it changes).
    let users = ["staff", "--data-dir", data.to_str().unwrap()];
    let add = [&users[..], &["add-user", "ann", "--mailbox", "messages"]].concat();
    let (code, _, err) = run(data, &add, "a long staff password\n");
    assert_eq!(code, 0, "{err}");
    let (code, token, err) = run(data, &[&users[..], &["add-token", "ann"]].concat(), "");
    assert_eq!(code, 0, "{err}");
    let path = "/api/reports/calls?entry=language";
    let auth = format!("Bearer {}", token.trim());
    let api =
        ivr_tests::http::request(http, "GET", path, &[("Authorization", &auth)], b"").unwrap();
    assert_eq!(api.status, 200, "{}", api.text());
    let mut cli = report(&["--entry", "language"]);
    assert_eq!(api.json(), cli, "the API and the CLI give the same numbers");
    cli["entry"] = Value::Null;
    assert_eq!(cli, r);
    assert_eq!(ivr_tests::http::get(http, path).status, 401, "staff only");
    if database.is_none() {
        // The staff page's Reports tab in headless Chromium; its screenshot is kept.
        let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let logs = manifest.join("../target/ci-logs");
        std::fs::create_dir_all(&logs).unwrap();
        let shot = logs.join("staff-reports.png");
        // The report as an operator reads it in a terminal, kept beside the screenshot.
        let text = ivr_on(data, database, &["calls", "report"]);
        assert!(text.contains("50"), "{text}");
        std::fs::write(logs.join("calls-report.txt"), text).unwrap();
        let out = std::process::Command::new("python3")
            .arg(manifest.join("scripts/reports_browser.py"))
            .args([
                &format!("http://{http}"),
                "ann",
                "a long staff password",
                "50",
                "main_fr",
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
        assert!(
            std::fs::metadata(&shot).unwrap().len() > 10_000,
            "a screenshot"
        );
    }
}

/// A record's steps as `menu outcome [key] prompt` lines.
fn steps(r: &Value) -> Vec<String> {
    r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let key = s["key"]
                .as_str()
                .map(|k| format!(" {k}"))
                .unwrap_or_default();
            format!(
                "{} {}{key} {}",
                s["menu"].as_str().unwrap(),
                s["outcome"].as_str().unwrap(),
                s["prompt"].as_str().unwrap()
            )
        })
        .collect()
}

/// One path: the number called (names the record), the keys, the end, and what the record
/// must say: (exit, exit_to, end_reason, language, steps).
struct Path {
    name: &'static str,
    /// How many callers take it (all at once).
    count: usize,
    keys: &'static [(u32, char)],
    end: KeysEnd,
    exit: Option<&'static str>,
    exit_to: Option<&'static str>,
    reason: &'static str,
    language: &'static str,
    steps: &'static [&'static str],
}

/// How many callers [`PATHS`] has in all.
fn callers() -> usize {
    PATHS.iter().map(|p| p.count).sum()
}

/// The demo's paths; each key comes a second after the last, well inside the prompts
/// (the language prompt lasts 6.3 s, the main menus' 23 s), so each one interrupts.
const PATHS: &[Path] = &[
    Path {
        name: "quiet",
        count: 8,
        keys: &[],
        end: KeysEnd::HangUpAfter(1_500),
        exit: None,
        exit_to: None,
        reason: "caller_hung_up",
        language: "fr",
        steps: &["language hangup unfinished"],
    },
    Path {
        name: "goodbye",
        count: 9,
        keys: &[(1_000, '2'), (1_000, '9')],
        end: KeysEnd::EngineHangsUp,
        exit: Some("hangup"),
        exit_to: None,
        reason: "menu_hangup",
        language: "en",
        steps: &["language key 2 interrupted", "main_en key 9 interrupted"],
    },
    Path {
        name: "message",
        count: 8,
        keys: &[(1_000, '1'), (1_000, '4')],
        end: KeysEnd::HangUpAfter(1_500),
        exit: Some("voicemail"),
        exit_to: Some("messages"),
        reason: "caller_hung_up",
        language: "fr",
        steps: &["language key 1 interrupted", "main_fr key 4 interrupted"],
    },
    Path {
        name: "invalid",
        count: 8,
        keys: &[(1_000, '2'), (1_000, '7')],
        end: KeysEnd::HangUpAfter(1_000),
        exit: None,
        exit_to: None,
        reason: "caller_hung_up",
        language: "en",
        steps: &[
            "language key 2 interrupted",
            "main_en invalid 7 interrupted",
            "main_en hangup unfinished",
        ],
    },
    Path {
        name: "back",
        count: 8,
        keys: &[(1_000, '2'), (1_000, '0'), (1_000, '1')],
        end: KeysEnd::HangUpAfter(1_000),
        exit: None,
        exit_to: None,
        reason: "caller_hung_up",
        language: "fr",
        steps: &[
            "language key 2 interrupted",
            "main_en key 0 interrupted",
            "language key 1 interrupted",
            "main_fr hangup unfinished",
        ],
    },
    Path {
        name: "operator",
        count: 9,
        keys: &[(1_000, '2'), (1_000, '5')],
        end: KeysEnd::HangUpAfter(2_000),
        exit: Some("queue"),
        exit_to: Some("operators"),
        reason: "caller_hung_up",
        language: "en",
        steps: &["language key 2 interrupted", "main_en key 5 interrupted"],
    },
];

#[test]
fn each_sipp_path_is_in_the_export_and_sigterm_records_calls_in_progress() {
    paths_then_sigterm(None);
}

/// The same with the store in PostgreSQL.
#[test]
fn the_same_in_postgresql() {
    let Some(url) = ivr_tests::pg::fresh_database("ivr_calls_sipp") else {
        return;
    };
    paths_then_sigterm(Some(&url));
}

/// Every path of [`PATHS`] at once, the export checked against each; then SIGTERM with
/// two callers in the menus. The store is `database`, or SQLite in the data folder.
fn paths_then_sigterm(database: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let mut ivr = match database {
        Some(url) => Ivr::start(&["--database", url]),
        None => Ivr::start(&[]),
    };
    let target = ivr.sip;
    // Every path at once: the test lasts as long as the longest.
    let runs: Vec<_> = PATHS
        .iter()
        .map(|p| {
            let xml = keys_scenario(dir.path(), p.name, p.keys, p.end);
            let n = p.count.to_string();
            std::thread::spawn(move || sipp::run(target, &["-sf", &xml, "-m", &n, "-l", &n]))
        })
        .collect();
    for (p, r) in PATHS.iter().zip(runs) {
        let r = r.join().unwrap();
        assert_eq!(r.code, 0, "{}: {}\n{}", p.name, r.output, ivr.log());
    }
    // Written as each call ended (not only at stop): all there while the engine runs.
    let until = Instant::now() + WAIT;
    let records = loop {
        let got = export(ivr.data_dir(), database, &[]);
        if got.len() >= callers() || Instant::now() > until {
            break got;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(records.len(), callers(), "{records:#?}");
    for (p, r) in PATHS.iter().flat_map(|p| {
        let mine: Vec<&Value> = records.iter().filter(|r| r["called"] == p.name).collect();
        assert_eq!(mine.len(), p.count, "records for {}: {records:#?}", p.name);
        mine.into_iter().map(move |r| (p, r))
    }) {
        let what = p.name;
        assert_eq!(steps(r), p.steps, "{what}");
        assert_eq!(r["exit"].as_str(), p.exit, "{what}");
        assert_eq!(r["exit_to"].as_str(), p.exit_to, "{what}");
        assert_eq!(r["end_reason"], p.reason, "{what}");
        assert_eq!(r["language"], p.language, "{what}");
        assert_eq!(r["entry"], "language", "{what}");
        assert_eq!(r["caller"], "+33612345678", "{what}");
        assert_eq!(r["steps_truncated"], false, "{what}");
        assert_eq!(r["request_id"], Value::Null, "{what}: none left a request");
        let (start, answer, end) = (
            r["started_ms"].as_i64().unwrap(),
            r["answered_ms"].as_i64().unwrap(),
            r["ended_ms"].as_i64().unwrap(),
        );
        assert!(start <= answer && answer <= end, "{what}: {r:#}");
        assert_eq!(r["duration_ms"].as_i64().unwrap(), end - start, "{what}");
        let keys_ms: u32 = p.keys.iter().map(|k| k.0).sum();
        assert!(
            r["duration_ms"].as_i64().unwrap() >= i64::from(keys_ms),
            "{what}: {r:#}"
        );
        if p.name == "operator" {
            // Nobody answers the demo's operator here: the caller gave up after ~2 s.
            assert_eq!(r["queue"], "operators");
            assert_eq!(r["agent"], Value::Null);
            let wait = r["queue_wait_ms"].as_i64().unwrap();
            assert!((1_500..5_000).contains(&wait), "waited {wait} ms");
        } else {
            assert_eq!(r["queue"], Value::Null, "{what}");
        }
    }
    // Numbers masked on request: all but the last 3 digits.
    let masked = export(ivr.data_dir(), database, &["--mask-numbers"]);
    assert!(
        masked.iter().all(|r| r["caller"] == "+********678"),
        "{masked:#?}"
    );
    check_report(ivr.data_dir(), database, ivr.http.expect("http"));
    // Per-menu counters in /metrics.
    let metrics = ivr_tests::http::get(ivr.http.expect("http"), "/metrics").text();
    for line in [
        "ivr_menu_keys_total{menu=\"language\",key=\"2\"} 34",
        "ivr_menu_keys_total{menu=\"language\",key=\"1\"} 16",
        "ivr_menu_keys_total{menu=\"main_en\",key=\"invalid\"} 8",
        "ivr_menu_exits_total{menu=\"main_en\",reason=\"queue\"} 9",
        "ivr_menu_exits_total{menu=\"language\",reason=\"caller_hung_up\"} 8",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} missing in\n{metrics}"
        );
    }

    // SIGTERM with two callers still in the language menu: both are hung up and recorded.
    let waiting = std::thread::spawn(move || {
        sipp::run(
            target,
            &[
                "-sf",
                sipp::scenario("wait_for_bye.xml"),
                "-m",
                "2",
                "-l",
                "2",
            ],
        )
    });
    assert_eq!(
        ivr.wait_for(&["\"answered\""], callers() + 2, WAIT).len(),
        callers() + 2
    );
    let status = ivr.terminate();
    assert!(status.success(), "{status:?}\n{}", ivr.log());
    let run = waiting.join().unwrap();
    assert_eq!(run.code, 0, "{}", run.output);
    let records = export(ivr.data_dir(), database, &[]);
    let stopped: Vec<&Value> = records
        .iter()
        .filter(|r| r["end_reason"] == "shutdown")
        .collect();
    assert_eq!(records.len(), callers() + 2, "{records:#?}");
    assert_eq!(stopped.len(), 2, "{records:#?}");
    for r in stopped {
        assert_eq!(steps(r), ["language ended unfinished"], "{r:#}");
        assert_eq!(r["exit"], Value::Null);
    }
}
