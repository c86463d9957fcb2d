//! `ivr callbacks export --csv` read back by Python's `csv` module: awkward text survives
//! quoting, and every field a spreadsheet would run as a formula comes back defused.

use ivr_tests::process::ivr_binary;
use ivr_voicemail::CallbackRequest;
use ivr_voicemail::store::{Status, Store};
use std::io::Write;
use std::process::{Command, Stdio};

const ID: &str = "1795000000-cccc0003";

#[test]
fn export_reads_back_in_python_with_quotes_commas_newlines_and_formulas() {
    let data = tempfile::tempdir().unwrap();
    let request = CallbackRequest {
        id: ID.into(),
        mailbox: "=cmd|' /C calc'!A0".into(),
        caller_id: Some("Bob, \"the builder\"\nsecond line".into()),
        called: None,
        call_id: "c1@test".into(),
        received_at: 1_795_000_000,
        callback_number: Some("+15551234".into()),
        duration_ms: 4200,
        language: Some("\t=1+1".into()),
        menu_path: vec!["-main".into(), "sales, \"east\"".into()],
        variables: Vec::new(),
        hung_up: false,
        has_message: true,
        email_to: Vec::new(),
        kind: Default::default(),
        queue: None,
        priority: 0,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let db = format!("sqlite://{}", data.path().join("callbacks.db").display());
        let store = Store::open(&db).await.unwrap();
        store
            .insert(&request, false, 1_795_000_001, Default::default())
            .await
            .unwrap();
        // Claimed by a user name that starts with a carriage return and an '@'.
        store
            .set_status(ID, Status::Claimed, "\r@SUM(1+1)", None, 1_795_000_002)
            .await
            .unwrap();
    });
    let out = Command::new(ivr_binary())
        .args(["callbacks", "export", "--csv", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = python_csv(&out.stdout);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        rows[0],
        [
            "id",
            "received_at",
            "mailbox",
            "caller_id",
            "callback_number",
            "duration_ms",
            "language",
            "status",
            "assignee",
            "recovered",
            "menu_path"
        ]
    );
    assert_eq!(
        rows[1],
        [
            ID,
            "2026-11-18 11:06:40Z",
            "'=cmd|' /C calc'!A0",
            "Bob, \"the builder\"\nsecond line",
            "+15551234",
            "4200",
            "'\t=1+1",
            "claimed",
            "'\r@SUM(1+1)",
            "false",
            "'-main > sales, \"east\"",
        ]
    );
}

/// The rows as Python's `csv.reader` (RFC 4180 dialect "excel") reads them.
fn python_csv(bytes: &[u8]) -> Vec<Vec<String>> {
    let mut py = Command::new("python3")
        .args([
            "-c",
            "import csv, io, json, sys\n\
             rows = list(csv.reader(io.TextIOWrapper(sys.stdin.buffer, encoding='utf-8', newline=''), strict=True))\n\
             print(json.dumps(rows))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 (scripts/test.sh needs it)");
    py.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(out.status.success(), "python's csv refused the export");
    serde_json::from_slice(&out.stdout).unwrap()
}
