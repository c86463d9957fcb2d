//! The JSON Schema given to editors accepts every example config and refuses a typo,
//! checked with Python's jsonschema (installed by the test command).

use std::path::PathBuf;
use std::process::Command;

fn check(files: &[PathBuf]) -> std::process::Output {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("python3")
        .arg(root.join("tests/scripts/schema_check.py"))
        .arg(root.join("docs/ivr-menus.schema.json"))
        .args(files)
        .output()
        .expect("python3 is needed for the schema check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "pip install jsonschema pyyaml (the test command does): {stderr}"
    );
    out
}

#[test]
fn every_example_validates_against_the_schema() {
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let files: Vec<PathBuf> = ["demo", "medical-office", "shop"]
        .iter()
        .map(|e| examples.join(e).join("config.yaml"))
        .collect();
    let out = check(&files);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_schema_refuses_a_typo() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "entry: m\nprompts:\n  a: { fiel: x.wav }\nmenus:\n  m:\n    prompt: a\n    optoins: {}\n",
    )
    .unwrap();
    let out = check(&[bad]);
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `queue:` takes a name or `{ name, priority }` (0-9): the schema accepts both forms and
/// refuses a priority out of range or a field the compiler does not know, as `ivr check`.
#[test]
fn the_schema_takes_both_forms_of_a_queue_action() {
    let dir = tempfile::tempdir().unwrap();
    let config = |file: &str, option: &str| {
        let path = dir.path().join(file);
        std::fs::write(
            &path,
            format!(
                "entry: m\nprompts:\n  a: a.wav\nqueues:\n  sales: {{}}\nmenus:\n  m:\n    prompt: a\n    options:\n      \"1\": {{ queue: sales }}\n      \"2\": {option}\n"
            ),
        )
        .unwrap();
        path
    };
    let good = config("good.yaml", "{ queue: { name: sales, priority: 5 } }");
    let out = check(&[good]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for (i, bad) in [
        "{ queue: { name: sales, priority: 10 } }",
        "{ queue: { name: sales, prio: 1 } }",
        "{ queue: { priority: 1 } }",
        "{ queue: { name: sales, priority: \"${vip}\" } }",
    ]
    .iter()
    .enumerate()
    {
        let out = check(&[config(&format!("bad{i}.yaml"), bad)]);
        assert!(
            !out.status.success(),
            "{bad}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
