//! The staff side, black box: users made with `ivr staff`, the JSON API with a token
//! (access control, audio with HTTP Range, status changes, notes, the OpenAPI document),
//! and the `/staff` page in headless Chromium.

use ivr_tests::http;
use ivr_tests::process::Ivr;
use ivr_voicemail::CallbackRequest;
use ivr_voicemail::store::{Status, Store};
use std::process::Command;

const PASSWORD: &str = "a long staff password";

/// The wall clock in seconds since the epoch, as the engine reads it. The engine sweeps
/// requests older than `--retention-days` with the real clock, so seeded requests are
/// stamped relative to it: a fixed date would be swept once the calendar passes it.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A request received an hour ago. Ids are opaque to the store and the API (the time in
/// the fixed ids below is never read), so they can stay fixed.
fn request(id: &str, mailbox: &str) -> CallbackRequest {
    CallbackRequest {
        id: id.into(),
        mailbox: mailbox.into(),
        caller_id: Some("+33612345678".into()),
        called: Some("service".into()),
        call_id: format!("call-{id}"),
        received_at: now() - 3600,
        callback_number: Some("+33612345678".into()),
        duration_ms: 3000,
        language: Some("en".into()),
        menu_path: vec!["language".into(), "main_en".into()],
        variables: vec![],
        hung_up: true,
        has_message: true,
        email_to: vec![],
        kind: Default::default(),
        queue: None,
        priority: 0,
    }
}

/// A data folder with two requests (mailboxes `messages` and `doctor`), their WAVs, and a
/// user `alice` who sees `messages` only. Returns alice's API token.
fn seed(data: &std::path::Path) -> String {
    seed_in(data, None)
}

/// [`seed`] with the store at `database` (default: SQLite in the data folder).
fn seed_in(data: &std::path::Path, database: Option<&str>) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let db = database
            .map(str::to_string)
            .unwrap_or_else(|| format!("sqlite://{}", data.join("callbacks.db").display()));
        let store = Store::open(&db).await.unwrap();
        for (id, mailbox) in [
            ("1795000000-aaaa0001", "messages"),
            ("1795000000-bbbb0002", "doctor"),
        ] {
            store
                .insert(&request(id, mailbox), false, now(), Default::default())
                .await
                .unwrap();
        }
    });
    let vm = data.join("voicemail");
    std::fs::create_dir_all(&vm).unwrap();
    let tone = ivr_audio::tone::sine(8000, 440.0, 24_000, 8000.0);
    for id in ["1795000000-aaaa0001", "1795000000-bbbb0002"] {
        std::fs::write(
            vm.join(format!("{id}.wav")),
            ivr_audio::wav::encode_pcm16(8000, &tone),
        )
        .unwrap();
    }
    let users = ["staff", "--users", "staff.yaml"];
    let add = [&users[..], &["add-user", "alice", "--mailbox", "messages"]].concat();
    let (code, _, err) = ivr_tests::process::run(data, &add, &format!("{PASSWORD}\n"));
    assert_eq!(code, 0, "{err}");
    let token = [&users[..], &["add-token", "alice"]].concat();
    let (code, out, err) = ivr_tests::process::run(data, &token, "");
    assert_eq!(code, 0, "{err}");
    out.trim().to_string()
}

#[test]
fn the_api_serves_only_what_a_user_may_see() {
    api_suite(None);
}

#[test]
fn the_api_on_postgresql() {
    if let Some(url) = ivr_tests::pg::fresh_database("ivr_bb_api") {
        api_suite(Some(url));
    }
}

fn api_suite(database: Option<String>) {
    let data = tempfile::tempdir().unwrap();
    let token = seed_in(data.path(), database.as_deref());
    let mut args = vec![];
    if let Some(db) = &database {
        args.extend(["--database", db.as_str()]);
    }
    let ivr = Ivr::start_in(data.path(), &args);
    let addr = ivr.http.unwrap();
    let auth = format!("Bearer {token}");
    let with = |method: &str, path: &str, extra: &[(&str, &str)], body: &[u8]| {
        let mut h = vec![("Authorization", auth.as_str())];
        h.extend_from_slice(extra);
        http::request(addr, method, path, &h, body).unwrap()
    };

    // Without a token: 401. With one: alice's mailbox only.
    assert_eq!(http::get(addr, "/api/callbacks").status, 401);
    assert_eq!(
        http::request(
            addr,
            "GET",
            "/api/callbacks",
            &[("Authorization", "Bearer ivr_wrong")],
            b""
        )
        .unwrap()
        .status,
        401
    );
    let list = with("GET", "/api/callbacks", &[], b"");
    assert_eq!(list.status, 200, "{}", list.text());
    let ids: Vec<String> = list
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["1795000000-aaaa0001"]);
    assert_eq!(
        with("GET", "/api/callbacks?mailbox=doctor", &[], b"").json(),
        serde_json::json!([])
    );
    assert_eq!(
        with("GET", "/api/callbacks/1795000000-bbbb0002", &[], b"").status,
        404,
        "another mailbox does not exist for alice"
    );
    assert_eq!(
        with("GET", "/api/callbacks/1795000000-bbbb0002/audio", &[], b"").status,
        404
    );
    assert_eq!(
        with(
            "GET",
            "/api/callbacks/..%2F..%2Fcallbacks.db/audio",
            &[],
            b""
        )
        .status,
        404
    );
    assert_eq!(with("GET", "/api/callbacks?limit=0", &[], b"").status, 400);
    assert_eq!(
        with("GET", "/api/callbacks?status=bogus", &[], b"").status,
        400
    );

    // The detail, and the audio: whole, and by range.
    let one = with("GET", "/api/callbacks/1795000000-aaaa0001", &[], b"");
    assert_eq!(one.json()["callback"]["callback_number"], "+33612345678");
    assert_eq!(one.json()["history"][0]["action"], "created");
    let audio = with("GET", "/api/callbacks/1795000000-aaaa0001/audio", &[], b"");
    assert_eq!(audio.status, 200);
    assert_eq!(audio.header("content-type"), Some("audio/wav"));
    assert_eq!(audio.body.len(), 44 + 48_000);
    let part = with(
        "GET",
        "/api/callbacks/1795000000-aaaa0001/audio",
        &[("Range", "bytes=44-143")],
        b"",
    );
    assert_eq!(part.status, 206);
    assert_eq!(part.header("content-range"), Some("bytes 44-143/48044"));
    assert_eq!(part.body, audio.body[44..144]);
    assert_eq!(
        with(
            "GET",
            "/api/callbacks/1795000000-aaaa0001/audio",
            &[("Range", "bytes=99999-")],
            b""
        )
        .status,
        416
    );

    // Claim, note, resolve: each change is in the history, by alice.
    let json = [("Content-Type", "application/json")];
    let claimed = with(
        "POST",
        "/api/callbacks/1795000000-aaaa0001/status",
        &json,
        br#"{"status":"claimed"}"#,
    );
    assert_eq!(claimed.status, 200, "{}", claimed.text());
    assert_eq!(claimed.json()["assignee"], "alice");
    assert_eq!(
        with(
            "POST",
            "/api/callbacks/1795000000-aaaa0001/notes",
            &json,
            br#"{"text":"no answer at 10:00"}"#
        )
        .status,
        204
    );
    assert_eq!(
        with(
            "POST",
            "/api/callbacks/1795000000-aaaa0001/status",
            &json,
            br#"{"status":"sideways"}"#
        )
        .status,
        400
    );
    assert_eq!(
        with(
            "POST",
            "/api/callbacks/1795000000-aaaa0001/status",
            &json,
            b"not json"
        )
        .status,
        400
    );
    assert_eq!(
        with(
            "POST",
            "/api/callbacks/1795000000-bbbb0002/status",
            &json,
            br#"{"status":"resolved"}"#
        )
        .status,
        404
    );
    let mine = with("GET", "/api/callbacks?mine=true", &[], b"");
    assert_eq!(mine.json().as_array().unwrap().len(), 1);
    let history =
        with("GET", "/api/callbacks/1795000000-aaaa0001", &[], b"").json()["history"].clone();
    let actions: Vec<(String, String)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["actor"].as_str().unwrap().to_string(),
                c["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        actions[1..],
        [
            ("alice".to_string(), "status".to_string()),
            ("alice".to_string(), "note".to_string())
        ]
    );

    // The OpenAPI document describes these routes and is valid JSON.
    let doc = http::get(addr, "/api/openapi.json");
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    for path in [
        "/api/callbacks",
        "/api/callbacks/{id}",
        "/api/callbacks/{id}/audio",
        "/api/callbacks/{id}/status",
        "/api/callbacks/{id}/notes",
        "/api/reports/calls",
        "/api/comments",
        "/api/comments/{id}",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
}

#[test]
fn the_staff_page_signs_in_plays_and_resolves_in_chromium() {
    let data = tempfile::tempdir().unwrap();
    seed(data.path());
    let ivr = Ivr::start_in(data.path(), &[]);
    let base = format!("http://{}", ivr.http.unwrap());
    // The screenshot is kept with the build's logs.
    let logs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ci-logs");
    std::fs::create_dir_all(&logs).unwrap();
    let shot = logs.join("staff-page.png");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/staff_browser.py");
    let out = Command::new("python3")
        .arg(&script)
        .args([&base, "alice", PASSWORD])
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
    eprintln!("screenshot: {}", shot.display());
    // The browser's changes are in the store.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, history) = rt.block_on(async {
        let db = format!("sqlite://{}", data.path().join("callbacks.db").display());
        let store = Store::open(&db).await.unwrap();
        let s = store.get("1795000000-aaaa0001").await.unwrap();
        (
            s.status,
            store.history("1795000000-aaaa0001").await.unwrap(),
        )
    });
    assert_eq!(status, Status::Resolved);
    assert!(
        history.iter().any(|c| c.actor == "alice"
            && c.detail.as_deref() == Some("Called back, appointment booked"))
    );
}

#[test]
fn schemathesis_finds_nothing_wrong_with_the_api() {
    let data = tempfile::tempdir().unwrap();
    let token = seed(data.path());
    let ivr = Ivr::start_in(data.path(), &[]);
    let url = format!("http://{}/api/openapi.json", ivr.http.unwrap());
    // A fixed seed keeps CI repeatable; run it without --seed to explore further.
    let out = Command::new("schemathesis")
        .args(["run", &url, "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .args(["--max-examples", "50", "--seed", "42"])
        .env("NO_COLOR", "1")
        .output()
        .expect("schemathesis runs (scripts/test.sh installs it with pip)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{text}\n{}\n--- engine ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        ivr.log()
    );
    assert!(text.contains("passed"), "{text}");
    eprintln!(
        "{}",
        text.lines()
            .filter(|l| l.contains("generated"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn retention_deletes_old_requests_and_their_recordings() {
    let data = tempfile::tempdir().unwrap();
    seed(data.path());
    let now = now();
    let mut old = request("1700000000-0dd00003", "messages");
    old.received_at = now - 40 * 86_400;
    let recent_at = now - 86_400;
    let mut recent = request("1700000000-0dd00004", "messages");
    recent.received_at = recent_at;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = format!("sqlite://{}", data.path().join("callbacks.db").display());
    rt.block_on(async {
        let store = Store::open(&db).await.unwrap();
        store
            .insert(&old, false, now, Default::default())
            .await
            .unwrap();
        store
            .insert(&recent, false, now, Default::default())
            .await
            .unwrap();
    });
    let old_wav = data.path().join("voicemail/1700000000-0dd00003.wav");
    std::fs::write(&old_wav, ivr_audio::wav::encode_pcm16(8000, &[0; 800])).unwrap();

    let ivr = Ivr::start_in(data.path(), &["--retention-days", "30"]);
    let swept = ivr.wait_for(
        &["retention: old callback requests deleted"],
        1,
        std::time::Duration::from_secs(20),
    );
    assert_eq!(swept.len(), 1, "{}", ivr.log());
    assert!(swept[0].contains("\"deleted\":1"), "{}", swept[0]);
    assert!(!old_wav.exists(), "the old recording is deleted");
    let left: Vec<String> = rt.block_on(async {
        let store = Store::open(&db).await.unwrap();
        store
            .list(&ivr_voicemail::store::Filter::default())
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.request.id)
            .collect()
    });
    assert!(!left.contains(&"1700000000-0dd00003".to_string()));
    assert_eq!(left.len(), 3, "the recent ones stay: {left:?}");
}

#[test]
fn password_guessing_is_slowed_down() {
    let data = tempfile::tempdir().unwrap();
    seed(data.path());
    let ivr = Ivr::start_in(data.path(), &[]);
    let addr = ivr.http.unwrap();
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let login = |password: &str| {
        let body = format!("user=alice&password={}", password.replace(' ', "+"));
        http::request(addr, "POST", "/staff/login", &form, body.as_bytes()).unwrap()
    };
    for _ in 0..5 {
        assert_eq!(login("wrong guess").status, 401);
    }
    let locked = login(PASSWORD);
    assert_eq!(locked.status, 429, "even the right password waits now");
    assert_eq!(locked.header("retry-after"), Some("900"));
    assert!(locked.text().contains("Too many failed attempts"));
}
