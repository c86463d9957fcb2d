//! Every example config passes `ivr check`, and its scenarios pass `ivr test` (the real binary).

use ivr_tests::process::ivr_binary;
use std::path::PathBuf;
use std::process::Command;

fn examples() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("config.yaml").exists())
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no examples found");
    out
}

#[test]
fn every_example_checks_clean() {
    for ex in examples() {
        let out = Command::new(ivr_binary())
            .arg("check")
            .arg(ex.join("config.yaml"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            ex.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_example_ships_scenarios_that_pass() {
    for ex in examples() {
        let scenarios = ex.join("scenarios.yaml");
        assert!(scenarios.exists(), "{} has no scenarios.yaml", ex.display());
        let out = Command::new(ivr_binary())
            .arg("test")
            .arg(&scenarios)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}:\n{text}{}",
            ex.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.lines().filter(|l| l.starts_with("PASS")).count() >= 3,
            "{text}"
        );
    }
}

#[test]
fn failing_scenarios_and_broken_files_set_the_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/demo/config.yaml");
    let failing = dir.path().join("fail.yaml");
    std::fs::write(
        &failing,
        "scenarios:\n  - name: wrong\n    steps: [press 2, expect menu main_fr]\n",
    )
    .unwrap();
    let out = Command::new(ivr_binary())
        .arg("test")
        .arg(&failing)
        .arg("--config")
        .arg(&demo)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("expected menu main_fr, but the caller is still in menu main_en"),
        "{text}"
    );
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "scenarios:\n  - name: x\n    steps: [dance]\n").unwrap();
    let out = Command::new(ivr_binary())
        .arg("test")
        .arg(&broken)
        .arg("--config")
        .arg(&demo)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(ivr_binary())
        .arg("check")
        .arg(dir.path().join("missing.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn simulate_reads_keys_and_waits_from_stdin_and_tells_what_is_heard() {
    use std::io::Write;
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/demo/config.yaml");
    let mut child = Command::new(ivr_binary())
        .arg("simulate")
        .arg(&demo)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"2\nwait 3s\nbogus!\n9\nwait 3s\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for expected in [
        "enters menu language",
        "plays lang_fr (3.7 s)",
        "enters menu main_en",
        "? 'bogus!'",
        "plays goodbye_en (2.6 s)",
        "hangs up",
        "call over",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

/// `ivr check` names a calendar file's broken or unsupported recurrence with its line.
#[test]
fn check_reports_a_broken_calendar_rule_with_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("menus.yaml"),
        "entry: main\nschedules:\n  office:\n    timezone: America/New_York\n    hours: { mon-fri: [\"09:00-17:00\"] }\n    holidays_ics: [good.ics, bad.ics, hourly.ics]\nmenus:\n  main: { schedule: office, open: main2, closed: main2 }\n  main2: { options: { \"1\": { hangup: true } } }\n",
    )
    .unwrap();
    let event = |rule: &str| {
        format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nSUMMARY:x\r\nDTSTART;VALUE=DATE:20261126\r\n{rule}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        )
    };
    std::fs::write(
        dir.path().join("good.ics"),
        event("RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4TH"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bad.ics"),
        event("RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4THU"),
    )
    .unwrap();
    std::fs::write(dir.path().join("hourly.ics"), event("RRULE:FREQ=HOURLY")).unwrap();
    let out = Command::new(ivr_binary())
        .arg("check")
        .arg(dir.path().join("menus.yaml"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("schedules.office.holidays_ics: bad.ics:6: RRULE: "),
        "{text}"
    );
    assert!(
        text.contains("hourly.ics:6: FREQ=HOURLY (holidays recur at most daily) is not supported"),
        "{text}"
    );
    assert!(!text.contains("good.ics"), "{text}");
}
