//! `/metrics` of the real binary, read by Python's `prometheus_client` parsers (the
//! OpenMetrics one, which is strict, and the classic Prometheus text one), after a call
//! through a menu whose name needs escaping in a label value.

use ivr_tests::http;
use ivr_tests::process::Ivr;
use ivr_tests::sipp::{self, scenario};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A quote, a backslash, a line break and a non-ASCII letter: all legal in a YAML key.
const MENU: &str = "café \"main\" \\ 1\nsecond line";

#[test]
fn metrics_parse_as_openmetrics_with_an_escaped_menu_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    // The name written as a YAML double-quoted string.
    let yaml_name = "\"café \\\"main\\\" \\\\ 1\\nsecond line\"";
    std::fs::write(
        &config,
        format!(
            "entry: {yaml_name}\nprompts:\n  hello: {{ say: \"Hello.\", voice: en-us }}\nmenus:\n  {yaml_name}:\n    prompt: hello\n    options:\n      \"1\": {{ hangup: hello }}\n"
        ),
    )
    .unwrap();
    let ivr = Ivr::start(&["--config", config.to_str().unwrap()]);
    let run = sipp::run(
        ivr.sip,
        &["-sf", scenario("hold_then_bye.xml"), "-m", "1", "-d", "500"],
    );
    assert_eq!(run.code, 0, "{}", run.output);
    // The engine logs the end of the call after it counted it.
    assert_eq!(
        ivr.wait_for(&["call ended"], 1, Duration::from_secs(20))
            .len(),
        1,
        "{}",
        ivr.log()
    );
    let reply = http::get(ivr.http.expect("http"), "/metrics");
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let text = reply.text();
    for parser in ["openmetrics", "prometheus"] {
        let samples = parse(parser, &text);
        let value = |name: &str, labels: &[(&str, &str)]| -> Option<f64> {
            samples.iter().find_map(|s| {
                let same = s[0] == name
                    && s[1].as_object().is_some_and(|l| {
                        l.len() == labels.len()
                            && labels
                                .iter()
                                .all(|(k, v)| l.get(*k).and_then(|x| x.as_str()) == Some(*v))
                    });
                same.then(|| s[2].as_f64()).flatten()
            })
        };
        assert_eq!(
            value("ivr_menu_entries_total", &[("menu", MENU)]),
            Some(1.0),
            "{parser}: {samples:?}\n{text}"
        );
        assert_eq!(value("ivr_calls_total", &[]), Some(1.0), "{parser}");
        assert_eq!(value("ivr_calls_active", &[]), Some(0.0), "{parser}");
        assert_eq!(
            value("ivr_calls_ended_total", &[("reason", "caller_hung_up")]),
            Some(1.0),
            "{parser}"
        );
        assert_eq!(
            value("ivr_config_reloads_total", &[("result", "invalid")]),
            Some(0.0),
            "{parser}"
        );
        assert_eq!(value("ivr_config_generation", &[]), Some(1.0), "{parser}");
    }
}

/// Every sample as `[name, {labels}, value]`, from `prometheus_client`'s `parser`
/// (`openmetrics` or `prometheus`, the classic text format).
fn parse(parser: &str, text: &str) -> Vec<serde_json::Value> {
    let module = match parser {
        "openmetrics" => "prometheus_client.openmetrics.parser",
        _ => "prometheus_client.parser",
    };
    let program = format!(
        "import json, sys\n\
         from {module} import text_string_to_metric_families\n\
         out = [[s.name, s.labels, s.value] for f in text_string_to_metric_families(sys.stdin.read()) for s in f.samples]\n\
         print(json.dumps(out))"
    );
    let mut py = Command::new("python3")
        .args(["-c", &program])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 with prometheus_client (scripts/test.sh installs it)");
    py.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{parser} parser refused /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).unwrap()
}
