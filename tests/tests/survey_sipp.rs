//! Satisfaction survey, black box (issue #12): the real `ivr` binary on 127.0.0.1, a SIPp
//! caller who presses 1 to join a queue whose action asks for a survey, a static SIPp agent
//! who answers and hangs up after a second; the caller stays on the line, answers the two
//! questions with RFC 2833 keys (SIPp's `dtmf_2833_*.pcap`), and the engine hangs up. Then
//! `ivr calls export --json` shows the answers with the call record, and `ivr calls report`
//! sums them.

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

    // 1 joins the queue at 1.2 s; the agent answers at once and hangs up a second later;
    // 4 comes at about 5 s, during or after the first question, 9 two seconds later.
    let caller = keys_scenario(
        dir.path(),
        "survey",
        &[(1200, '1'), (3800, '4'), (2000, '9')],
        KeysEnd::EngineHangsUp,
    );
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
    let scores: Vec<(&str, u64, f64)> = report["surveys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            (
                q["question"].as_str().unwrap(),
                q["answered"].as_u64().unwrap(),
                q["average"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        scores,
        [("rating", 1, 4.0), ("recommend", 1, 9.0)],
        "{report:#}"
    );
    let hour = report["surveys"][0]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["asked"] == 1)
        .expect("the hour it was asked in");
    assert_eq!(hour["answers"]["4"], 1, "{hour:#}");
}
