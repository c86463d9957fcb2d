//! Survey comments through the staff API, black box, as an attacker tries them (issue #12
//! review): only a key a stored call record links is served, only to staff who see every
//! mailbox, never another file; hostile `Range` headers (several ranges, huge, negative,
//! reversed, a thousand of them) get a 206 of the file's bytes, a 400 or a 416, never more than
//! the file, never a server error; a bad `limit` is a 400.

use ivr_tests::http;
use ivr_tests::process::{Ivr, run};
use ivr_voicemail::calls::{CallAnswer, CallRecord};
use ivr_voicemail::store::Store;

const PASSWORD: &str = "a long staff password";
/// The comment a call record links.
const KEY: &str = "comment-1795000000-0a1b2c3d";
/// A comment file no call record links (left by a crash, say): never served.
const ORPHAN: &str = "comment-1795000000-00000bad";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A data folder with one call whose survey comment is `KEY.wav`, an orphan comment file,
/// a message's WAV, and two users: `boss` (every mailbox) and `alice` (`messages`).
/// Returns their tokens and the comment's bytes.
fn seed(data: &std::path::Path, database: Option<&str>) -> (String, String, Vec<u8>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let db = database
            .map(str::to_string)
            .unwrap_or_else(|| format!("sqlite://{}", data.join("callbacks.db").display()));
        let store = Store::open(&db).await.unwrap();
        let started = now_ms() - 3_600_000;
        let record = CallRecord {
            call_id: "c1@192.0.2.1".into(),
            caller: Some("<img src=x onerror=alert(1)>".into()),
            started_ms: started,
            ended_ms: started + 30_000,
            duration_ms: 30_000,
            end_reason: "caller_hung_up".into(),
            answers: vec![CallAnswer {
                survey: "after_call".into(),
                question: "comment".into(),
                answer: None,
                outcome: "answered".into(),
                recording: Some(KEY.into()),
            }],
            ..Default::default()
        };
        store.insert_calls(&[record]).await.unwrap();
    });
    let vm = data.join("voicemail");
    std::fs::create_dir_all(&vm).unwrap();
    let tone = ivr_audio::tone::sine(8000, 440.0, 24_000, 8000.0);
    let bytes = ivr_audio::wav::encode_pcm16(8000, &tone);
    for name in [KEY, ORPHAN, "1795000000-aaaa0001"] {
        std::fs::write(vm.join(format!("{name}.wav")), &bytes).unwrap();
    }
    let token = |user: &str, mailbox: &str| {
        let users = ["staff", "--users", "staff.yaml"];
        let add = [&users[..], &["add-user", user, "--mailbox", mailbox]].concat();
        let (code, _, err) = run(data, &add, &format!("{PASSWORD}\n"));
        assert_eq!(code, 0, "{err}");
        let (code, out, err) = run(data, &[&users[..], &["add-token", user]].concat(), "");
        assert_eq!(code, 0, "{err}");
        format!("Bearer {}", out.trim())
    };
    (token("boss", "*"), token("alice", "messages"), bytes)
}

#[test]
fn comments_are_served_to_whole_site_staff_only_and_hostile_ranges_get_nothing_more() {
    suite(None);
}

#[test]
fn comments_on_postgresql() {
    if let Some(url) = ivr_tests::pg::fresh_database("ivr_bb_comments") {
        suite(Some(url));
    }
}

fn suite(database: Option<String>) {
    let data = tempfile::tempdir().unwrap();
    let (boss, alice, bytes) = seed(data.path(), database.as_deref());
    let mut args = vec![];
    if let Some(db) = &database {
        args.extend(["--database", db.as_str()]);
    }
    let ivr = Ivr::start_in(data.path(), &args);
    let addr = ivr.http.unwrap();
    let get = |path: &str, auth: &str, extra: &[(&str, &str)]| {
        let mut h = vec![("Authorization", auth)];
        h.extend_from_slice(extra);
        http::request(addr, "GET", path, &h, b"").unwrap()
    };
    let url = format!("/api/comments/{KEY}");

    // The list: boss sees the comment; alice none; a bad limit is refused.
    let list = get("/api/comments", &boss, &[]);
    assert_eq!(list.status, 200, "{}", list.text());
    assert_eq!(list.json()[0]["recording"], KEY);
    let none = get("/api/comments", &alice, &[]);
    assert_eq!((none.status, none.json()), (200, serde_json::json!([])));
    for bad in ["0", "101", "-1", "abc", "99999999999999999999"] {
        let r = get(&format!("/api/comments?limit={bad}"), &boss, &[]);
        assert_eq!(r.status, 400, "limit={bad}: {}", r.text());
    }

    // The file: to boss only, and only a linked key names one.
    let whole = get(&url, &boss, &[]);
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body, bytes);
    assert_eq!(get(&url, &alice, &[]).status, 404);
    assert_eq!(http::get(addr, &url).status, 401);
    for path in [
        format!("/api/comments/{ORPHAN}"),
        "/api/comments/..%2Fcallbacks.db".into(),
        "/api/comments/comment-..%2F1795000000-aaaa0001".into(),
        "/api/comments/comment-1795000000-0A1B2C3D".into(),
        format!("/api/comments/{KEY}.wav"),
        format!("/api/comments/{KEY}%00"),
        format!("/api/comments/{KEY}%2F"),
        "/api/comments/1795000000-aaaa0001".into(),
    ] {
        assert_eq!(get(&path, &boss, &[]).status, 404, "{path}");
    }

    // Ranges: one is served exactly; anything else is the whole file or a 416.
    let part = get(&url, &boss, &[("Range", "bytes=44-143")]);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, bytes[44..144]);
    let tail = get(&url, &boss, &[("Range", "bytes=-10")]);
    assert_eq!(
        (tail.status, &tail.body[..]),
        (206, &bytes[bytes.len() - 10..])
    );
    let many: String = (0..1000)
        .map(|i| format!("{i}-{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let many = format!("bytes={many}");
    for range in [
        "bytes=0-1,10-20",
        "bytes=0-99999999999999999999999",
        "bytes=99999999999999999999999-",
        "bytes=-0",
        "bytes=-99999999999",
        "bytes=5-1",
        "bytes=--1",
        "bytes=-1-2",
        "bytes=",
        "bytes=0-0,-1",
        "items=0-10",
        "bytes=\u{0}",
        &many,
    ] {
        let r = get(&url, &boss, &[("Range", range)]);
        let shown = &range[..range.len().min(40)];
        assert!(
            matches!(r.status, 200 | 206 | 400 | 416),
            "Range {shown}: {}",
            r.status
        );
        assert!(
            r.body.len() <= bytes.len(),
            "Range {shown}: more than the file"
        );
        if r.status == 200 {
            assert_eq!(r.body, bytes, "Range {shown}");
        }
        if r.status == 206 {
            let served = r.header("content-range").unwrap_or_default().to_string();
            let (from, to) = served
                .strip_prefix("bytes ")
                .and_then(|s| s.split('/').next())
                .and_then(|s| s.split_once('-'))
                .map(|(a, b)| (a.parse::<usize>().unwrap(), b.parse::<usize>().unwrap()))
                .unwrap_or_else(|| panic!("Range {shown}: Content-Range {served:?}"));
            assert_eq!(r.body, bytes[from..=to], "Range {shown}");
        }
    }
    // Two Range headers.
    let two = get(
        &url,
        &boss,
        &[("Range", "bytes=0-1"), ("Range", "bytes=2-3")],
    );
    assert!(
        matches!(two.status, 200 | 206 | 400 | 416),
        "{}",
        two.status
    );
    // The server is still there.
    assert_eq!(get(&url, &boss, &[]).status, 200);
}
