//! `ivr queues report` on a store holding a known queue event log: the figures printed (JSON
//! and table) are the exact ones the log gives.

use ivr_queues::log::{Kind, Row};
use ivr_tests::process::run;

fn row(at_s: i64, kind: Kind, call: &str, agent: &str, wait_s: Option<i64>) -> Row {
    let mut r = Row::new(at_s * 1000, kind);
    r.queue = (kind != Kind::Agent).then(|| "sales".to_string());
    r.call = (!call.is_empty()).then(|| call.to_string());
    r.agent = (!agent.is_empty()).then(|| agent.to_string());
    r.wait_ms = wait_s.map(|w| w * 1000);
    r
}

/// Ten callers: 6 answered (4 within 20 s), 2 abandoned (one after 3 s), 1 timed out, 1
/// asked to be called back; alice talks 2 minutes then wraps up for 30 s.
fn fixture() -> Vec<Row> {
    let mut rows = vec![Row::new(0, Kind::Start)];
    for i in 0..10 {
        rows.push(row(10 + i, Kind::Enter, &format!("c{i}"), "", None));
    }
    for (i, wait) in [5, 10, 15, 20, 40, 90].iter().enumerate() {
        rows.push(row(
            100 + i as i64,
            Kind::Answer,
            &format!("c{i}"),
            "alice",
            Some(*wait),
        ));
    }
    rows.push(row(200, Kind::Abandon, "c6", "", Some(3)));
    rows.push(row(201, Kind::Abandon, "c7", "", Some(75)));
    rows.push(row(300, Kind::Timeout, "c8", "", Some(180)));
    rows.push(row(301, Kind::CallbackRequested, "callback#1", "", None));
    let mut done = row(400, Kind::Complete, "c0", "alice", None);
    done.talk_ms = Some(120_000);
    rows.push(done);
    let mut wrap = row(400, Kind::Agent, "", "alice", None);
    wrap.detail = Some("wrap_up".into());
    rows.push(wrap);
    let mut free = row(430, Kind::Agent, "", "alice", None);
    free.detail = Some("available".into());
    rows.push(free);
    rows
}

#[test]
fn the_report_gives_the_figures_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ivr-data");
    std::fs::create_dir_all(&data).unwrap();
    let url = format!("sqlite://{}", data.join("callbacks.db").display());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let store = ivr_voicemail::store::Store::open(&url).await.unwrap();
            store.insert_queue_events(&fixture()).await.unwrap();
        });
    let window = ["--from", "1970-01-01", "--to", "1970-01-02"];
    let args = [&["queues", "report", "--json"][..], &window[..]].concat();
    let (code, out, err) = run(dir.path(), &args, "");
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    let sales = &r["queues"][0];
    assert_eq!(sales["queue"], "sales");
    assert_eq!(sales["entered"], 10);
    assert_eq!(sales["left_the_line"], 10);
    assert_eq!(sales["answered"], 6);
    assert_eq!(sales["answered_in_time"], 4);
    assert_eq!(sales["service_level_percent"], 40.0);
    assert_eq!(sales["abandoned"], 2);
    assert_eq!(sales["short_abandons"], 1);
    assert_eq!(sales["abandon_rate_percent"], 20.0);
    assert_eq!(sales["timed_out"], 1);
    assert_eq!(sales["callbacks_requested"], 1);
    assert_eq!(sales["average_wait_ms"], 30_000);
    assert_eq!(sales["longest_wait_ms"], 180_000);
    let alice = &r["agents"][0];
    assert_eq!(alice["answered"], 6);
    assert_eq!(alice["talk_ms"], 120_000);
    assert_eq!(alice["wrap_up_ms"], 30_000);

    let args = [&["queues", "report"][..], &window[..]].concat();
    let (code, table, err) = run(dir.path(), &args, "");
    assert_eq!(code, 0, "{err}");
    let line = table
        .lines()
        .find(|l| l.starts_with("sales"))
        .unwrap_or_else(|| panic!("a row for sales:\n{table}"));
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cells[1..7], ["10", "10", "6", "4", "40.0%", "2"], "{table}");

    let (code, _, err) = run(
        dir.path(),
        &[
            "queues",
            "report",
            "--from",
            "1970-01-02",
            "--to",
            "1970-01-01",
        ],
        "",
    );
    assert_eq!(code, 1);
    assert!(err.contains("--from must be before --to"), "{err}");
}
