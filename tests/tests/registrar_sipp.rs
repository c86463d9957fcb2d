//! Black box: SIPp as an agent's phone registering with the real `ivr` binary on 127.0.0.1
//! (digest, refresh, un-REGISTER), and refused for a wrong password or an unknown user.
//! The entry comes from `ivr agents add`, as an operator would make it.
//!
//! SIPp 3.6 reads only the first challenge and knows only MD5, so the engine runs with
//! `--register-md5-first`; SHA-256 is covered by the virtual-time tests (`registrar.rs`).

use ivr_tests::http;
use ivr_tests::process::{Ivr, run};
use ivr_tests::sipp::{self, scenario};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const PASSWORD: &str = "correct horse battery";

fn engine() -> (Ivr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (code, entry, err) = run(
        dir.path(),
        &[
            "agents", "add", "alice", "--user", "1001", "--queue", "sales=1",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(code, 0, "{err}");
    let config = dir.path().join("agents.yaml");
    std::fs::write(
        &config,
        format!(
            "entry: main\nprompts:\n  hi: {{ silence: 1 }}\nqueues:\n  sales: {{}}\nmenus:\n  main:\n    prompt: hi\n    options:\n      \"1\": {{ queue: sales }}\nagents:\n{entry}"
        ),
    )
    .unwrap();
    let ivr = Ivr::start(&["--config", config.to_str().unwrap(), "--register-md5-first"]);
    (ivr, dir)
}

fn sipp_register(ivr: &Ivr, file: &str, user: &str, password: &str, transport: &str) -> sipp::Run {
    let args = [
        "-sf",
        scenario(file),
        "-s",
        user,
        "-au",
        user,
        "-ap",
        password,
        "-m",
        "1",
        "-t",
        transport,
    ];
    sipp::run(ivr.sip, &args)
}

#[test]
fn sipp_registers_refreshes_and_unregisters_with_digest() {
    let (ivr, _dir) = engine();
    for transport in ["u1", "t1"] {
        let run = sipp_register(&ivr, "register_digest.xml", "1001", PASSWORD, transport);
        assert_eq!(
            run.code,
            0,
            "{transport}:\n{}\n--- engine log ---\n{}",
            run.output,
            ivr.log()
        );
    }
    let registered = ivr.wait_for(&["agent registered", "\"agent\":\"alice\""], 2, WAIT);
    assert_eq!(registered.len(), 2, "{}", ivr.log());
    assert!(
        registered[1].contains("\"transport\":\"TCP\""),
        "{}",
        registered[1]
    );
    let gone = ivr.wait_for(&["agent unregistered", "\"agent\":\"alice\""], 2, WAIT);
    assert_eq!(gone.len(), 2, "{}", ivr.log());
    let metrics = http::get(ivr.http.expect("http"), "/metrics").text();
    assert!(metrics.contains("ivr_agents_registered 0"), "{metrics}");
}

#[test]
fn the_registrar_refuses_a_wrong_password_and_an_unknown_user_alike() {
    let (ivr, _dir) = engine();
    let wrong = sipp_register(
        &ivr,
        "register_refused.xml",
        "1001",
        "not the password",
        "u1",
    );
    assert_eq!(
        wrong.code,
        0,
        "{}\n--- engine log ---\n{}",
        wrong.output,
        ivr.log()
    );
    let unknown = sipp_register(&ivr, "register_refused.xml", "2002", PASSWORD, "u1");
    assert_eq!(
        unknown.code,
        0,
        "{}\n--- engine log ---\n{}",
        unknown.output,
        ivr.log()
    );
    let refused = ivr.wait_for(
        &["REGISTER refused: wrong password or unknown user"],
        2,
        WAIT,
    );
    assert_eq!(refused.len(), 2, "{}", ivr.log());
    assert_eq!(ivr.count(&["agent registered"]), 0, "{}", ivr.log());
    let metrics = http::get(ivr.http.expect("http"), "/metrics").text();
    assert!(
        metrics.contains("ivr_register_auth_failures_total 2"),
        "{metrics}"
    );
}
