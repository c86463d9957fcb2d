//! What a new user meets first, black box: the real `ivr` binary, its messages and exit
//! codes, one test per rough edge found by trying it as a newcomer would (issue 13).

use ivr_tests::process::{Ivr, ivr_binary};
use ivr_tests::sipp;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// A hand-off logs no warning: here a queue with nobody logged in sends the caller to its
/// `on_timeout` (hang up); a voicemail call logs none either (checked on the call
/// `reload.rs` places with its data folder inside the config's folder).
#[test]
fn a_hand_off_to_a_queue_with_nobody_to_answer_is_logged_without_a_warning() {
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("queue.yaml");
    std::fs::write(
        &config,
        "entry: main\nprompts:\n  hi: { silence: 1 }\nqueues:\n  q: { join_when_empty: none_logged_in }\nmenus:\n  main:\n    prompt: hi\n    options:\n      \"9\": { queue: q }\n",
    )
    .unwrap();
    let ivr = Ivr::start(&["--config", config.to_str().unwrap()]);
    // The engine hangs up while SIPp still waits to send its BYE: its exit code says nothing.
    sipp::run(
        ivr.sip,
        &["-sf", sipp::scenario("press_nine.xml"), "-m", "1"],
    );
    let ended = ivr.wait_for(&["call ended"], 1, WAIT);
    assert_eq!(ended.len(), 1, "{}", ivr.log());
    let log = ivr.log();
    assert!(
        log.contains("left the menus") && log.contains("queue q"),
        "{log}"
    );
    let warned: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"level\":\"WARN\"") && l.contains("call"))
        .collect();
    assert!(warned.is_empty(), "{log}");
}

/// Run `ivr ARGS` to the end, with `stdin` as its input; (exit code, stdout, stderr).
fn ivr_in(dir: &Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    ivr_tests::process::run(dir, args, stdin)
}

/// Run `ivr ARGS` from `dir` to the end; (exit code, stdout, stderr).
fn ivr(dir: &Path, args: &[&str]) -> (i32, String, String) {
    ivr_in(dir, args, "")
}

fn demo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo")
}

const PASSWORD: &str = "correct horse battery";

/// A user's mailboxes must exist in the config the server runs: a typo is refused with a
/// suggestion, and nothing is written.
#[test]
fn a_staff_user_with_a_mailbox_the_config_lacks_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = ivr_in(
        dir.path(),
        &["staff", "add-user", "bob", "--mailbox", "mesages"],
        PASSWORD,
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("unknown mailbox 'mesages' (did you mean 'messages'?)"),
        "{err}"
    );
    assert!(!dir.path().join("ivr-data/staff.yaml").exists());
    // With --config, its mailboxes count; `*` always does.
    let config = dir.path().join("clinic.yaml");
    std::fs::write(
        &config,
        "entry: m\nprompts:\n  hi: { silence: 1 }\nmailboxes:\n  doctor: { greeting: hi }\nmenus:\n  m:\n    prompt: hi\n    options:\n      \"1\": { voicemail: doctor }\n",
    )
    .unwrap();
    let (code, _, err) = ivr_in(
        dir.path(),
        &[
            "staff",
            "--config",
            "clinic.yaml",
            "add-user",
            "bob",
            "--mailbox",
            "doctor",
            "--mailbox",
            "*",
        ],
        PASSWORD,
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = ivr_in(
        dir.path(),
        &[
            "staff",
            "--config",
            "clinic.yaml",
            "add-user",
            "eve",
            "--mailbox",
            "messages",
        ],
        PASSWORD,
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("the mailboxes of clinic.yaml are doctor"),
        "{err}"
    );
}

/// `ivr staff` takes the folder and file flags `ivr serve` takes, by the same names.
#[test]
fn staff_takes_the_data_dir_and_staff_users_flags_of_serve() {
    let dir = tempfile::tempdir().unwrap();
    let add = |args: &[&str]| {
        let mut all = vec!["staff"];
        all.extend(args);
        all.extend(["add-user", "alice", "--mailbox", "messages"]);
        let (code, _, err) = ivr_in(dir.path(), &all, PASSWORD);
        assert_eq!(code, 0, "{all:?}: {err}");
    };
    add(&["--data-dir", "data"]);
    assert!(dir.path().join("data/staff.yaml").exists());
    add(&["--staff-users", "people.yaml"]);
    assert!(dir.path().join("people.yaml").exists());
    add(&["--users", "old-name.yaml"]);
    assert!(dir.path().join("old-name.yaml").exists());
}

/// The documented way to sign in from a script (docs/voicemail.md) works as written.
#[test]
fn the_documented_curl_sign_in_works() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/voicemail.md"))
            .unwrap();
    let block = doc
        .split("<!-- sign-in example: tested -->\n```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the sign-in example in docs/voicemail.md");
    let data = tempfile::tempdir().unwrap();
    let (code, _, err) = ivr_in(
        data.path(),
        &[
            "staff",
            "--data-dir",
            ".",
            "add-user",
            "alice",
            "--mailbox",
            "messages",
        ],
        PASSWORD,
    );
    assert_eq!(code, 0, "{err}");
    let ivr = Ivr::start_in(data.path(), &[]);
    let http = ivr.http.expect("http");
    let script = block.replace("127.0.0.1:8080", &http.to_string());
    let run = |password: &str| {
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .env("PASSWORD", password)
            .current_dir(data.path())
            .output()
            .expect("bash")
    };
    let out = run(PASSWORD);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed, serde_json::json!([]), "no request yet");
    assert!(!run("wrong password").status.success());
}

/// An empty glob in a CI job (`ivr check configs/*.yaml` with nothing there, under
/// nullglob) must fail, not check nothing.
#[test]
fn check_and_test_without_a_file_fail() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in ["check", "test"] {
        let (code, out, err) = ivr(dir.path(), &[cmd]);
        assert_eq!(code, 2, "{cmd}: {out}{err}");
        assert!(err.contains("<FILES>"), "{cmd}: {err}");
    }
}

/// Given the config instead of a scenario file, `ivr test` says what it wants.
#[test]
fn test_given_a_config_says_it_wants_scenarios_and_config() {
    let config = demo().join("config.yaml");
    let (code, out, err) = ivr(&demo(), &["test", config.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("this is a menu config, not a scenario file"),
        "{err}"
    );
    assert!(err.contains("ivr test SCENARIOS.yaml --config"), "{err}");
    assert!(!err.contains("unknown field"), "{err}");
}

/// A missing config is said once; a busy SIP port says how to choose another.
#[test]
fn serve_errors_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = ivr(
        dir.path(),
        &["serve", "--config", "nope.yaml", "--http", "off"],
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");

    let busy = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let (code, _, err) = ivr(
        dir.path(),
        &[
            "serve",
            "--listen",
            &addr,
            "--http",
            "off",
            "--data-dir",
            "d",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("binding SIP on {addr}")), "{err}");
    assert!(err.contains("--listen ADDR:PORT"), "{err}");
}

/// `ivr check` validates `say:` prompts without espeak-ng (and warns that serving needs
/// it); where espeak-ng is installed, an unknown voice is still an error.
#[test]
fn check_needs_no_speech_synthesizer() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.yaml"),
        "entry: m\nprompts:\n  hi: { say: \"Hello\", voice: en-us }\nmenus:\n  m:\n    prompt: hi\n    options:\n      \"1\": { repeat: true }\n",
    )
    .unwrap();
    let empty = tempfile::tempdir().unwrap();
    let (code, out, err) = output(
        Command::new(ivr_binary())
            .args(["check", "c.yaml"])
            .current_dir(dir.path())
            .env("PATH", empty.path()),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("espeak-ng, which this machine lacks"), "{out}");
    assert!(out.contains("c.yaml: ok (1 menus"), "{out}");

    let text = std::fs::read_to_string(dir.path().join("c.yaml")).unwrap();
    std::fs::write(
        dir.path().join("c.yaml"),
        text.replace("en-us", "no-such-voice"),
    )
    .unwrap();
    let (code, out, err) = ivr(dir.path(), &["check", "c.yaml"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("espeak-ng has no voice 'no-such-voice'"),
        "{err}"
    );
}

fn output(command: &mut Command) -> (i32, String, String) {
    let out = command.output().expect("run ivr");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Durations take units everywhere (`5s`, `1m30s`), and words meaning another field get a
/// suggestion (`retry:` for `repeat:`).
#[test]
fn durations_take_units_and_synonyms_get_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let good = "entry: m\nprompts:\n  hi: { silence: 500ms }\nmailboxes:\n  box: { greeting: hi, max_length: 1m30s, silence: 5s }\nmenus:\n  m:\n    prompt: hi\n    timeout: 5s\n    inter_digit_timeout: 2\n    options:\n      \"1\": { voicemail: box }\n      \"2\": { repeat: true }\n";
    std::fs::write(dir.path().join("c.yaml"), good).unwrap();
    let (code, out, err) = ivr(dir.path(), &["check", "c.yaml"]);
    assert_eq!(code, 0, "{out}{err}");
    std::fs::write(
        dir.path().join("c.yaml"),
        good.replace("{ repeat: true }", "{ retry: true }")
            .replace("timeout: 5s", "timeout: 5 s"),
    )
    .unwrap();
    let (code, out, err) = ivr(dir.path(), &["check", "c.yaml"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("unknown field 'retry' (did you mean 'repeat'?"),
        "{err}"
    );
    assert!(
        err.contains("menus.m.timeout: expected a number of seconds or a duration"),
        "{err}"
    );
    // The server's duration flags read the same way.
    let (code, out, err) = ivr(
        dir.path(),
        &[
            "serve",
            "--media-timeout",
            "1m30s",
            "--hold-timeout",
            "30m",
            "--print-config",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("media-timeout: \"1m30s\""), "{out}");
    let (code, _, err) = ivr(dir.path(), &["serve", "--media-timeout", "soon"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("'soon' is not a duration"), "{err}");
}

/// The top-level help says what the program is for, not how it is built.
#[test]
fn help_describes_the_program() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = ivr(dir.path(), &["--help"]);
    assert_eq!(code, 0);
    let first = out.lines().next().unwrap_or_default();
    assert!(
        first.contains("IVR") && first.contains("SIP calls"),
        "{out}"
    );
    assert!(!out.contains("driver"), "{out}");
}

/// The start line logs the HTTP address (or `off`) once, and a shutdown without calls
/// logs no `NaN` pacing figures.
#[test]
fn the_start_and_stop_logs_read_right() {
    let mut ivr = Ivr::start(&[]);
    let http = ivr.http.expect("http").to_string();
    let serving = ivr.wait_for(&["\"serving\""], 1, WAIT);
    assert_eq!(serving.len(), 1, "{}", ivr.log());
    assert!(
        serving[0].contains(&format!("\"http\":\"{http}\"")),
        "{}",
        serving[0]
    );
    assert!(ivr.terminate().success());
    let log = ivr.log();
    assert!(log.contains("no packet sent"), "{log}");
    assert!(!log.contains("NaN"), "{log}");

    let off = Ivr::start(&["--http", "off"]);
    let serving = off.wait_for(&["\"serving\""], 1, WAIT);
    assert!(
        serving
            .first()
            .is_some_and(|l| l.contains("\"http\":\"off\"")),
        "{}",
        off.log()
    );
}

/// The server's settings file: `ivr serve` flags by name. The command line beats the
/// environment, which beats the file; `--print-config` shows each value and its origin, as
/// a file that reads back the same; `ivr staff` and `ivr callbacks` take the keys they share.
#[test]
fn a_settings_file_configures_serve_staff_and_callbacks() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ivr.yaml"),
        "# the service's settings\nlisten: 127.0.0.1:0\nhttp: 127.0.0.1:0\ndata_dir: data\nmax-calls: 7\nretention-days: 30\nlog-format: json\nrtp-ports: 30000-30099\nsip-trusted-proxy: [127.0.0.2, 127.0.0.3]\n",
    )
    .unwrap();
    let printed = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["serve", "--settings", "ivr.yaml", "--print-config"];
        args.extend(extra);
        let mut c = Command::new(ivr_binary());
        c.args(&args).current_dir(dir.path());
        for (k, v) in env {
            c.env(k, v);
        }
        let (code, out, err) = output(&mut c);
        assert_eq!(code, 0, "{err}");
        out
    };
    let out = printed(&["--max-calls", "9"], &[("IVR_RETENTION_DAYS", "12")]);
    let line = |key: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{key}:")))
            .unwrap_or_else(|| panic!("{key} in {out}"))
            .to_string()
    };
    assert!(
        line("data-dir").contains("\"data\"") && line("data-dir").contains("# settings file"),
        "{out}"
    );
    assert!(
        line("max-calls").contains("\"9\"") && line("max-calls").contains("# command line"),
        "{out}"
    );
    assert!(
        line("retention-days").contains("\"12\"")
            && line("retention-days").contains("# environment IVR_RETENTION_DAYS"),
        "{out}"
    );
    assert!(line("hold-timeout").contains("# default"), "{out}");
    // A repeatable flag is a list (--sip-trusted-proxy).
    assert!(
        line("sip-trusted-proxy").contains("[\"127.0.0.2\", \"127.0.0.3\"]"),
        "{out}"
    );

    // What it prints is a settings file that gives the same values back.
    std::fs::write(dir.path().join("printed.yaml"), &out).unwrap();
    let (code, again, err) = ivr(
        dir.path(),
        &["serve", "--settings", "printed.yaml", "--print-config"],
    );
    assert_eq!(code, 0, "{err}");
    let values = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split(" #").next().unwrap_or_default().trim().to_string())
            .collect()
    };
    assert_eq!(values(&again), values(&out));

    // A mistake names the file, the line and the key, with a suggestion.
    std::fs::write(
        dir.path().join("bad.yaml"),
        "listen: 127.0.0.1:0\nmax-cals: 3\n",
    )
    .unwrap();
    let (code, _, err) = ivr(dir.path(), &["serve", "--settings", "bad.yaml"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bad.yaml:2:1: max-cals: not a setting (did you mean 'max-calls'?)"),
        "{err}"
    );

    // The server runs with it: the data folder is the file's.
    let mut child = Command::new(ivr_binary())
        .args(["serve", "--settings", "ivr.yaml"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        first.starts_with("ivr listening sip udp=127.0.0.1:"),
        "{first}"
    );
    assert!(dir.path().join("data/callbacks.db").exists());

    // ivr staff and ivr callbacks find the same data folder through the file.
    let (code, _, err) = ivr_in(
        dir.path(),
        &[
            "staff",
            "--settings",
            "ivr.yaml",
            "add-user",
            "alice",
            "--mailbox",
            "messages",
        ],
        PASSWORD,
    );
    assert_eq!(code, 0, "{err}");
    assert!(dir.path().join("data/staff.yaml").exists());
    let (code, out, err) = ivr(dir.path(), &["callbacks", "--settings", "ivr.yaml", "list"]);
    assert_eq!(code, 0, "{out}{err}");
}

/// `ivr doctor` checks what serve would need, with serve's flags, and says how to fix it.
#[test]
fn doctor_finds_what_a_deployment_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = ivr(
        dir.path(),
        &[
            "doctor",
            "--listen",
            "127.0.0.1:0",
            "--http",
            "off",
            "--data-dir",
            "data",
            "--max-calls",
            "10",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ok    data folder data is writable"), "{out}");
    assert!(
        out.contains("ok    callback store sqlite://data/callbacks.db: reachable"),
        "{out}"
    );

    // Everything wrong at once: each is a FAIL with a fix.
    std::fs::write(dir.path().join("not-a-folder"), "x").unwrap();
    std::fs::write(
        dir.path().join("c.yaml"),
        "entry: m\nprompts:\n  hi: { say: \"Hello\", voice: en }\nmenus:\n  m:\n    prompt: hi\n    options:\n      \"1\": { repeat: true }\n",
    )
    .unwrap();
    let busy = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let sip = busy.local_addr().unwrap().to_string();
    let empty = tempfile::tempdir().unwrap();
    let (code, out, err) = output(
        Command::new(ivr_binary())
            .args([
                "doctor",
                "--config",
                "c.yaml",
                "--listen",
                &sip,
                "--http",
                "off",
                "--data-dir",
                "not-a-folder",
                "--database",
                "mysql://nobody:secret@127.0.0.1/none",
            ])
            .current_dir(dir.path())
            .env("PATH", empty.path()),
    );
    assert_eq!(code, 1, "{out}{err}");
    for failed in [
        "FAIL  say: prompts need espeak-ng",
        &format!("FAIL  SIP {sip}:"),
        "FAIL  data folder not-a-folder:",
        "FAIL  callback store mysql://nobody:***@127.0.0.1/none:",
    ] {
        let at = out
            .find(failed)
            .unwrap_or_else(|| panic!("{failed} in {out}"));
        assert!(
            out[at..]
                .lines()
                .nth(1)
                .is_some_and(|l| l.trim_start().starts_with("fix: ")),
            "{out}"
        );
    }
    assert!(out.ends_with("not ready: fix the FAIL lines\n"), "{out}");
}

/// Shell completions and man pages come from the clap definitions, for every command.
#[test]
fn completions_and_man_pages_generate() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = ivr(dir.path(), &["completions", shell]);
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("print-config") && out.contains("doctor"),
            "{shell}: {out}"
        );
    }
    let (_, bash, _) = ivr(dir.path(), &["completions", "bash"]);
    std::fs::write(dir.path().join("ivr.bash"), bash).unwrap();
    let syntax = Command::new("bash")
        .args(["-n", "ivr.bash"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(syntax.success());
    let (code, _, err) = ivr(dir.path(), &["man", "man"]);
    assert_eq!(code, 0, "{err}");
    for page in [
        "ivr.1",
        "ivr-serve.1",
        "ivr-doctor.1",
        "ivr-staff.1",
        "ivr-callbacks.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join("man").join(page)).unwrap();
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{page}: {text}"
        );
    }
    let serve = std::fs::read_to_string(dir.path().join("man/ivr-serve.1")).unwrap();
    assert!(serve.contains("IVR_LISTEN"), "the page names the variables");
}

/// `ivr simulate` follows a call into a mailbox: the number, the greeting and beep, the
/// message, the request stored, the goodbye.
#[test]
fn simulate_plays_the_voicemail_dialogue() {
    let config = demo().join("config.yaml");
    let (code, out, err) = ivr_in(
        &demo(),
        &[
            "simulate",
            config.to_str().unwrap(),
            "--caller",
            "+33612345678",
        ],
        "2\n4\n1\nwait 6s\ntalk 3s\n#\nwait 10s\n",
    );
    assert_eq!(code, 0, "{err}");
    for step in [
        "leaves the menus: voicemail messages",
        "plays vm_offer_caller_id",
        "plays vm_greeting, beep",
        "records the message",
        "caller presses #",
        "stores the request in mailbox messages: number +33612345678, a 4.1 s message",
        "plays vm_saved",
        "hangs up",
        "call over",
    ] {
        assert!(out.contains(step), "{step} in {out}");
    }
}
