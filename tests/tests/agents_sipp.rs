//! Black box: agents' feature codes and the staff queue view with the real `ivr` binary on
//! 127.0.0.1. SIPp, as an agent's phone, dials `*42` with digest (MD5 first, as SIPp 3.6
//! needs; its registering is `registrar_sipp.rs`); the staff API lists queues and agents, pauses and unpauses an agent, and refuses
//! a user acting on another agent. A SIPp caller waiting in the queue is listed with the menus
//! it came through, on the API and the staff page.

use ivr_tests::http;
use ivr_tests::process::{Ivr, run};
use ivr_tests::sipp::{self, scenario};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);
const AGENT_PASSWORD: &str = "correct horse battery";
const STAFF_PASSWORD: &str = "a long staff password";

/// The engine with agents alice (registering, `login: manual`) and desk (static, at `desk`); staff users
/// boss (every mailbox: a supervisor) and bob. Returns their API tokens.
fn engine(desk: &str) -> (Ivr, tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (code, entry, err) = run(
        dir.path(),
        &[
            "agents", "add", "alice", "--user", "1001", "--queue", "sales",
        ],
        &format!("{AGENT_PASSWORD}\n"),
    );
    assert_eq!(code, 0, "{err}");
    let config = dir.path().join("agents.yaml");
    std::fs::write(
        &config,
        format!(
            "entry: main\nprompts:\n  hi: {{ silence: 1 }}\nqueues:\n  sales: {{}}\nmenus:\n  main:\n    prompt: hi\n    options:\n      \"1\": {{ goto: support }}\n  support:\n    prompt: hi\n    options:\n      \"2\": {{ queue: sales }}\nagents:\n{entry}    login: manual\n  desk:\n    uri: {desk}\n    queues: {{ sales: }}\n"
        ),
    )
    .unwrap();
    let mut tokens = Vec::new();
    for (user, mailbox) in [("boss", "*"), ("bob", "messages")] {
        let users = ["staff", "--users", "staff.yaml"];
        let add = [&users[..], &["add-user", user, "--mailbox", mailbox]].concat();
        let (code, _, err) = run(dir.path(), &add, &format!("{STAFF_PASSWORD}\n"));
        assert_eq!(code, 0, "{err}");
        let token = [&users[..], &["add-token", user]].concat();
        let (code, out, err) = run(dir.path(), &token, "");
        assert_eq!(code, 0, "{err}");
        tokens.push(out.trim().to_string());
    }
    let ivr = Ivr::start_in(
        dir.path(),
        &["--config", config.to_str().unwrap(), "--register-md5-first"],
    );
    let bob = tokens.pop().unwrap();
    let boss = tokens.pop().unwrap();
    (ivr, dir, boss, bob)
}

fn agent<'a>(queues: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    queues["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {queues}"))
}

#[test]
fn an_agent_dials_a_feature_code_with_digest_and_staff_pause_it_through_the_api() {
    // desk's phone: a SIPp UAS that answers one queue call (checking `X-IVR-Queue`); no
    // caller reaches it before the end.
    let tmp = tempfile::tempdir().unwrap();
    let media = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let answer = std::fs::read_to_string(scenario("agent_answer.xml"))
        .unwrap()
        .replace(
            "@MEDIA_PORT@",
            &media.local_addr().unwrap().port().to_string(),
        );
    let answer_path = tmp.path().join("agent_answer.xml");
    std::fs::write(&answer_path, answer).unwrap();
    let desk_phone = sipp::spawn_uas(&["-sf", answer_path.to_str().unwrap(), "-m", "1"]);
    let (ivr, _dir, boss, bob) = engine(&format!("sip:desk@{}", desk_phone.addr));
    let addr = ivr.http.unwrap();
    let call = |token: &str, method: &str, path: &str| {
        let auth = format!("Bearer {token}");
        http::request(addr, method, path, &[("Authorization", auth.as_str())], b"").unwrap()
    };
    let view = || {
        let r = call(&boss, "GET", "/api/queues");
        assert_eq!(r.status, 200, "{}", r.text());
        serde_json::from_str::<serde_json::Value>(&r.text()).unwrap()
    };

    // Staff log alice in (manual: registering alone would not).
    assert_eq!(call(&boss, "POST", "/api/agents/alice/login").status, 204);
    assert_eq!(agent(&view(), "alice")["state"], "available");

    // SIPp, as alice's phone, dials *42 with digest: alice logs out.
    let r = sipp::run(
        ivr.sip,
        &[
            "-sf",
            scenario("feature_code_digest.xml"),
            "-s",
            "1001",
            "-au",
            "1001",
            "-ap",
            AGENT_PASSWORD,
            "-key",
            "code",
            "*42",
            "-auth_uri",
            &format!("*42@{}", ivr.sip),
            "-m",
            "1",
        ],
    );
    assert_eq!(r.code, 0, "{}\n--- engine log ---\n{}", r.output, ivr.log());
    let logged = ivr.wait_for(&["agent feature call", "\"code\":\"*42\""], 1, WAIT);
    assert_eq!(logged.len(), 1, "{}", ivr.log());
    let v = view();
    assert_eq!(agent(&v, "alice")["state"], "logged_out", "{v}");
    assert_eq!(agent(&v, "alice")["login"], "manual");
    assert_eq!(v["queues"][0]["name"], "sales");
    assert_eq!(agent(&v, "desk")["state"], "available", "static: logged in");

    // A supervisor pauses desk, with a reason; the view shows it.
    let auth = format!("Bearer {boss}");
    let r = http::request(
        addr,
        "POST",
        "/api/agents/desk/pause",
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ],
        br#"{"reason": "lunch"}"#,
    )
    .unwrap();
    assert_eq!(r.status, 204, "{}", r.text());
    let v = view();
    assert_eq!(agent(&v, "desk")["state"], "paused");
    assert_eq!(agent(&v, "desk")["pause_reason"], "lunch");
    // bob may act on his own agent only (there is none named bob): 403, desk unchanged.
    assert_eq!(call(&bob, "POST", "/api/agents/desk/unpause").status, 403);
    assert_eq!(call(&bob, "GET", "/api/queues").status, 200);
    assert_eq!(call(&boss, "POST", "/api/agents/nobody/login").status, 404);
    assert_eq!(call(&boss, "POST", "/api/agents/desk/dance").status, 404);
    assert_eq!(call(&boss, "POST", "/api/agents/desk/unpause").status, 204);
    assert_eq!(agent(&view(), "desk")["state"], "available");
    // A cross-site browser write is refused like every staff action.
    let r = http::request(
        addr,
        "POST",
        "/api/agents/desk/pause",
        &[
            ("Authorization", auth.as_str()),
            ("Sec-Fetch-Site", "cross-site"),
        ],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(agent(&view(), "desk")["state"], "available");
    // The OpenAPI document lists the new routes.
    let doc: serde_json::Value =
        serde_json::from_str(&http::get(addr, "/api/openapi.json").text()).unwrap();
    assert!(doc["paths"]["/api/queues"].is_object());
    assert!(doc["paths"]["/api/agents/{name}/{action}"].is_object());
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["Waiting"]["properties"]["path"]["type"], "array",
        "{schemas}"
    );
    assert!(
        schemas["Agent"]["properties"]["caller_path"].is_object(),
        "{schemas}"
    );

    // The staff page's Queues tab in headless Chromium: the supervisor pauses and unpauses
    // desk with its buttons; a screenshot is kept with the build's logs.
    let logs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ci-logs");
    std::fs::create_dir_all(&logs).unwrap();
    let shot = logs.join("staff-queues.png");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/queues_browser.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .args([&format!("http://{addr}"), "boss", STAFF_PASSWORD, "desk"])
        .arg(&shot)
        .output()
        .expect("python3 runs (scripts/test.sh installs playwright and chromium)");
    assert!(
        out.status.success(),
        "browser test failed:\n{}\n{}\n--- engine ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        ivr.log()
    );
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "a screenshot was taken"
    );
    assert!(
        ivr.log().contains("\"by\":\"boss\""),
        "staff actions are logged with who"
    );

    // Two SIPp callers press 1 then 2 (main -> support -> queue sales) while nobody can
    // answer (desk paused, alice logged out): the view lists them with the menus they came
    // through. Then desk is unpaused, its phone answers the first: desk's line shows that
    // caller's path, the second still waits with its own; the Queues tab shows both.
    assert_eq!(call(&boss, "POST", "/api/agents/desk/pause").status, 204);
    let audio = tmp.path().join("caller.ulaw");
    sipp::ulaw_message(&audio, &[0i16; 8000]);
    let play = r#"<nop><action><exec play_pcap_audio="/usr/share/sip-tester/dtmf_2833_1.pcap"/></action></nop>"#;
    let xml = std::fs::read_to_string(scenario("queue_caller.xml"))
        .unwrap()
        .replace("@AUDIO@", audio.to_str().unwrap())
        .replace(
            play,
            &format!(
                "{play}\n  <pause milliseconds=\"1500\"/>\n  {}",
                play.replace("dtmf_2833_1", "dtmf_2833_2")
            ),
        );
    let xml_path = tmp.path().join("caller.xml");
    std::fs::write(&xml_path, xml).unwrap();
    let target = ivr.sip.to_string();
    let caller = || sipp::spawn_uas(&[&target, "-sf", xml_path.to_str().unwrap(), "-m", "1"]);
    let until = |what: &str, done: &dyn Fn(&serde_json::Value) -> bool| {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let v = view();
            if done(&v) {
                return v;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: {v}\n{}",
                ivr.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let waiting = |v: &serde_json::Value| v["queues"][0]["waiting"].as_array().map_or(0, Vec::len);
    let _callers = (caller(), caller());
    let v = until("both callers join sales", &|v| waiting(v) == 2);
    for w in v["queues"][0]["waiting"].as_array().unwrap() {
        assert_eq!(w["path"], serde_json::json!(["main", "support"]), "{w}");
        assert_eq!(w["caller"], "+••••0100", "masked as before");
    }
    assert!(agent(&v, "desk")["caller_path"].is_null(), "not on a call");
    assert_eq!(call(&boss, "POST", "/api/agents/desk/unpause").status, 204);
    let v = until("desk answers the first caller", &|v| {
        agent(v, "desk")["state"] == "on_call" && waiting(v) == 1
    });
    assert_eq!(
        agent(&v, "desk")["caller_path"],
        serde_json::json!(["main", "support"]),
        "{v}"
    );
    assert_eq!(
        v["queues"][0]["waiting"][0]["path"],
        serde_json::json!(["main", "support"])
    );
    let shot = logs.join("staff-queues-path.png");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .args([&format!("http://{addr}"), "boss", STAFF_PASSWORD, "desk"])
        .arg(&shot)
        .args(["main › support", "on_call"])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "browser test failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
}
