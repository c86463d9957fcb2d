//! The report from a fixture of records (exact figures), and the store's sums of the same
//! records (SQLite here; the PostgreSQL suite runs [`exercise`] too).

use super::*;
use crate::calls::{CallAnswer, CallStep};
use crate::store::{Notify, Status};
use crate::{CallbackRequest, RequestKind};

/// 2026-12-01T00:00:00Z.
pub(crate) const T0: i64 = 1_796_083_200_000;
const MIN: i64 = 60_000;

fn step(menu: &str, outcome: &str, key: Option<&str>) -> CallStep {
    CallStep {
        menu: menu.into(),
        at_ms: 0,
        outcome: outcome.into(),
        key: key.map(Into::into),
        prompt: "interrupted".into(),
    }
}

fn call(
    id: &str,
    started_ms: i64,
    entry: &str,
    steps: Vec<CallStep>,
    exit: Option<&str>,
    end_reason: &str,
    agent: Option<&str>,
) -> CallRecord {
    let steps = steps
        .into_iter()
        .enumerate()
        .map(|(i, s)| CallStep {
            at_ms: started_ms + 1_000 * i as i64,
            ..s
        })
        .collect();
    CallRecord {
        call_id: id.into(),
        started_ms,
        answered_ms: Some(started_ms + 50),
        ended_ms: started_ms + 30_000,
        duration_ms: 30_000,
        end_reason: end_reason.into(),
        entry: Some(entry.into()),
        exit: exit.map(Into::into),
        queue: (exit == Some("queue")).then(|| "support".into()),
        agent: agent.map(Into::into),
        steps,
        ..Default::default()
    }
}

/// The id of the request the `voicemail` call left (stored by [`exercise`]).
fn voicemail_request() -> String {
    format!("{}-report0", T0 / 1000 + 100)
}

/// Eight calls over two days: one of each outcome, two hung up in the menus, one that went
/// to voicemail and hung up in the greeting (no request).
pub(crate) fn fixture() -> Vec<CallRecord> {
    let key = |m: &str, k: &str| step(m, "key", Some(k));
    let mut calls = vec![
        call(
            "served",
            T0 + 10 * MIN,
            "main",
            vec![key("main", "1"), key("sales", "9")],
            Some("hangup"),
            "menu_hangup",
            None,
        ),
        call(
            "agent",
            T0 + 20 * MIN,
            "main",
            vec![
                step("main", "invalid", Some("7")),
                step("main", "timeout", None),
                key("main", "2"),
            ],
            Some("queue"),
            "destination_hung_up",
            Some("alice"),
        ),
        call(
            "abandoned",
            T0 + 65 * MIN,
            "main",
            vec![key("main", "2")],
            Some("queue"),
            "caller_hung_up",
            None,
        ),
        call(
            "gave-up",
            T0 + 90 * MIN,
            "main",
            vec![step("main", "hangup", None)],
            None,
            "caller_hung_up",
            None,
        ),
        call(
            "voicemail",
            T0 + 25 * 60 * MIN,
            "main",
            vec![key("main", "3")],
            Some("voicemail"),
            "caller_hung_up",
            None,
        ),
        call(
            "transfer",
            T0 + 25 * 60 * MIN + MIN,
            "main",
            vec![key("main", "4")],
            Some("transfer"),
            "destination_hung_up",
            None,
        ),
        call(
            "night",
            T0 + 25 * 60 * MIN + 2 * MIN,
            "night",
            vec![
                step("night", "timeout", None),
                step("night", "hangup", None),
            ],
            None,
            "caller_hung_up",
            None,
        ),
        call(
            "greeting",
            T0 + 25 * 60 * MIN + 3 * MIN,
            "night",
            vec![key("night", "1")],
            Some("voicemail"),
            "caller_hung_up",
            None,
        ),
    ];
    calls[4].request_id = Some(voicemail_request());
    calls
}

/// The requests [`exercise`] stores.
fn stored() -> BTreeSet<String> {
    BTreeSet::from([
        voicemail_request(),
        format!("{}-report1", T0 / 1000 + 200),
        format!("{}-report2", T0 / 1000 + 300),
    ])
}

/// Three requests (seconds): resolved after 600 s and 1,800 s, one not resolved.
fn callback_times() -> Vec<CallbackTimes> {
    let t = (T0 / 1000) as u64;
    vec![
        CallbackTimes {
            received_at: t + 100,
            resolved_at: Some(t + 700),
        },
        CallbackTimes {
            received_at: t + 200,
            resolved_at: Some(t + 2_000),
        },
        CallbackTimes {
            received_at: t + 300,
            resolved_at: None,
        },
    ]
}

fn window() -> ReportFilter {
    ReportFilter {
        from_ms: Some(T0),
        to_ms: Some(T0 + 2 * 24 * 60 * MIN),
        entry: None,
    }
}

#[test]
fn the_report_of_a_fixture_has_exact_figures() {
    let rows = ReportRows::from_records(&window(), &fixture(), &callback_times(), &stored());
    let r = CallReport::build(&window(), &rows);
    assert_eq!(r.calls, 8);
    let days: Vec<(&str, u64)> = r.per_day.iter().map(|b| (&*b.start, b.calls)).collect();
    assert_eq!(days, [("2026-12-01", 4), ("2026-12-02", 4)]);
    assert_eq!(r.per_day[1].start_ms, T0 + 24 * 60 * MIN);
    let hours = r.per_hour.as_ref().expect("a 2-day window has hours");
    assert_eq!(hours.len(), 48, "every hour of the window, zeros too");
    let busy: Vec<(&str, u64)> = hours
        .iter()
        .filter(|b| b.calls > 0)
        .map(|b| (&*b.start, b.calls))
        .collect();
    assert_eq!(
        busy,
        [
            ("2026-12-01T00:00Z", 2),
            ("2026-12-01T01:00Z", 2),
            ("2026-12-02T01:00Z", 4)
        ]
    );
    // The menus callers give up in most come first.
    let order: Vec<&str> = r.menus.iter().map(|m| &*m.menu).collect();
    assert_eq!(order, ["night", "main", "sales"]);
    let main = &r.menus[1];
    assert_eq!(
        (
            main.presentations,
            main.invalid,
            main.timeouts,
            main.hangups
        ),
        (8, 1, 1, 1)
    );
    assert_eq!(
        (main.invalid_share, main.timeout_share, main.give_up_share),
        (0.125, 0.125, 0.125)
    );
    let keys: Vec<(&str, u64, f64)> = main
        .keys
        .iter()
        .map(|k| (&*k.key, k.count, k.share))
        .collect();
    assert_eq!(
        keys,
        [
            ("2", 2, 0.25),
            ("1", 1, 0.125),
            ("3", 1, 0.125),
            ("4", 1, 0.125)
        ]
    );
    let night = &r.menus[0];
    assert_eq!((night.presentations, night.hangups), (3, 1));
    assert_eq!(night.keys.len(), 1);
    let sales = &r.menus[2];
    assert_eq!((sales.presentations, sales.give_up_share), (1, 0.0));
    assert_eq!(
        r.outcomes,
        Outcomes {
            self_served: 1,
            callback_request: 1,
            voicemail_left_nothing: 1,
            reached_agent: 1,
            abandoned_in_queue: 1,
            transferred: 1,
            hung_up_in_menus: 2,
            other: 0,
        }
    );
    assert_eq!(
        r.callbacks,
        CallbackReport {
            created: 3,
            resolved: 2,
            median_resolve_secs: Some(1_200),
        }
    );
}

#[test]
fn hours_only_for_short_windows_and_odd_medians() {
    let long = ReportFilter {
        to_ms: Some(T0 + 3 * 24 * 60 * MIN),
        ..window()
    };
    let rows = ReportRows::from_records(&long, &fixture(), &callback_times()[..1], &stored());
    let r = CallReport::build(&long, &rows);
    assert!(r.per_hour.is_none(), "3 days: per day only");
    assert_eq!(r.callbacks.median_resolve_secs, Some(600));
    // Unbounded: the hours from the first call's to the last's (26 hours).
    let r = CallReport::build(&ReportFilter::default(), &rows);
    assert_eq!(r.per_hour.map(|h| h.len()), Some(26));
    let empty = CallReport::build(&ReportFilter::default(), &ReportRows::default());
    assert_eq!(empty.calls, 0);
    assert!(empty.per_day.is_empty() && empty.per_hour.is_none() && empty.menus.is_empty());
    assert_eq!(empty.callbacks.median_resolve_secs, None);
}

#[test]
fn civil_dates() {
    assert_eq!(day_text(0), "1970-01-01");
    assert_eq!(day_text(T0 / 86_400_000), "2026-12-01");
    assert_eq!(day_text(11_016), "2000-02-29");
    assert_eq!(hour_text(-1), "1969-12-31T23:00Z");
}

/// The store's sums of the fixture are the Rust ones, with and without an entry.
pub(crate) async fn exercise(store: &Store) {
    let records = fixture();
    store.insert_calls(&records).await.unwrap();
    let times = callback_times();
    let call_ids = ["voicemail", "agent", "night"];
    for (i, (c, call_id)) in times.iter().zip(call_ids).enumerate() {
        let id = format!("{}-report{i}", c.received_at);
        let r = CallbackRequest {
            id: id.clone(),
            mailbox: "sales".into(),
            caller_id: None,
            called: None,
            call_id: call_id.into(),
            received_at: c.received_at,
            callback_number: Some("0491234567".into()),
            duration_ms: 1_000,
            language: None,
            menu_path: Vec::new(),
            variables: Vec::new(),
            hung_up: true,
            has_message: true,
            email_to: Vec::new(),
            kind: RequestKind::default(),
            queue: None,
            priority: 0,
        };
        assert!(
            store
                .insert(&r, false, c.received_at, Notify::default())
                .await
                .unwrap()
        );
        store
            .set_status(&id, Status::Claimed, "ann", None, c.received_at + 10)
            .await
            .unwrap();
        if let Some(at) = c.resolved_at {
            store
                .set_status(&id, Status::Resolved, "ann", None, at)
                .await
                .unwrap();
            // Reopened and resolved again later: the first time counts.
            store
                .set_status(&id, Status::New, "ann", None, at + 5)
                .await
                .unwrap();
            store
                .set_status(&id, Status::Resolved, "ann", None, at + 9_000)
                .await
                .unwrap();
        }
    }
    let all = window();
    let rows = store.report_rows(&all).await.unwrap();
    assert_eq!(
        rows,
        ReportRows::from_records(&all, &records, &times, &stored())
    );
    let report = CallReport::build(&all, &rows);
    assert_eq!(report.calls, 8);
    assert_eq!(
        (
            report.outcomes.callback_request,
            report.outcomes.voicemail_left_nothing
        ),
        (1, 1),
        "the greeting's hang-up left nothing"
    );
    let night = ReportFilter {
        entry: Some("night".into()),
        ..all.clone()
    };
    let nights: Vec<CallRecord> = records
        .iter()
        .filter(|r| r.entry.as_deref() == Some("night"))
        .cloned()
        .collect();
    assert_eq!(
        store.report_rows(&night).await.unwrap(),
        ReportRows::from_records(&night, &nights, &times[2..], &stored())
    );
    // The window's end is excluded, for calls and requests alike.
    let first_day = ReportFilter {
        to_ms: Some(T0 + 90 * MIN),
        ..all
    };
    let rows = store.report_rows(&first_day).await.unwrap();
    assert_eq!(rows.hours, [((T0 / HOUR_MS), 2), ((T0 / HOUR_MS) + 1, 1)]);
    assert_eq!(rows.callbacks.len(), 3);
    let none = ReportFilter {
        from_ms: Some(T0),
        to_ms: Some(T0 + 100_000),
        entry: None,
    };
    assert!(
        store.report_rows(&none).await.unwrap().callbacks.is_empty(),
        "requests at +100 s are after the window's end"
    );
    // For the graph: calls per way out of each menu, an invalid key and a timeout in one
    // call counted once.
    let (calls, ways) = store.edge_calls(&window()).await.unwrap();
    assert_eq!(calls, 8);
    let ways: Vec<(&str, &str, Option<&str>, u64)> = ways
        .iter()
        .map(|w| (&*w.menu, &*w.outcome, w.key.as_deref(), w.steps))
        .collect();
    assert_eq!(
        ways,
        [
            ("main", "hangup", None, 1),
            ("main", "key", Some("1"), 1),
            ("main", "key", Some("2"), 2),
            ("main", "key", Some("3"), 1),
            ("main", "key", Some("4"), 1),
            ("main", "retry", None, 1),
            ("night", "hangup", None, 1),
            ("night", "key", Some("1"), 1),
            ("night", "retry", None, 1),
            ("sales", "key", Some("9"), 1),
        ]
    );
    surveys_in(store).await;
    backfill(store).await;
    // The callback checks count requests: these go.
    for (i, c) in times.iter().enumerate() {
        store
            .delete_request_for_test(&format!("{}-report{i}", c.received_at))
            .await;
    }
}

/// Day D of the survey fixture: 2026-12-11, apart from [`fixture`]'s days.
const D: i64 = T0 + 10 * 24 * 60 * MIN;

/// Five surveyed calls over two days; questions `rating` (asked first) and `nps`.
fn survey_records() -> Vec<CallRecord> {
    let answer = |q: &str, outcome: &str, key: Option<&str>| CallAnswer {
        survey: "after_call".into(),
        question: q.into(),
        answer: key.map(Into::into),
        outcome: outcome.into(),
        recording: None,
    };
    let surveyed = |id: &str, at: i64, entry: &str, rating: CallAnswer, nps: CallAnswer| {
        let mut c = call(
            id,
            at,
            entry,
            vec![step(entry, "key", Some("2"))],
            Some("queue"),
            "destination_hung_up",
            Some("alice"),
        );
        c.answers = vec![rating, nps];
        c
    };
    let ok = |q: &str, k: &str| answer(q, "answered", Some(k));
    vec![
        surveyed(
            "s1",
            D + 10 * MIN,
            "main",
            ok("rating", "4"),
            ok("nps", "9"),
        ),
        surveyed(
            "s2",
            D + 70 * MIN,
            "main",
            ok("rating", "5"),
            ok("nps", "#"),
        ),
        surveyed(
            "s3",
            D + 24 * 60 * MIN + 5 * MIN,
            "main",
            answer("rating", "invalid", None),
            ok("nps", "0"),
        ),
        surveyed(
            "s4",
            D + 24 * 60 * MIN + 6 * MIN,
            "main",
            ok("rating", "2"),
            answer("nps", "hangup", None),
        ),
        surveyed(
            "s5",
            D + 24 * 60 * MIN + 7 * MIN,
            "night",
            answer("rating", "timeout", None),
            answer("nps", "timeout", None),
        ),
    ]
}

fn survey_window(days: i64) -> ReportFilter {
    ReportFilter {
        from_ms: Some(D),
        to_ms: Some(D + days * 24 * 60 * MIN),
        entry: None,
    }
}

/// The survey scores of a fixture, per hour (a 2-day window) and per day (3 days).
#[test]
fn survey_scores_have_exact_figures() {
    let none = BTreeSet::new();
    let hourly = survey_window(2);
    let rows = ReportRows::from_records(&hourly, &survey_records(), &[], &none);
    let r = CallReport::build(&hourly, &rows);
    let names: Vec<&str> = r.surveys.iter().map(|q| &*q.question).collect();
    assert_eq!(names, ["rating", "nps"], "in the order they are asked");
    let rating = &r.surveys[0];
    assert_eq!(rating.survey, "after_call");
    assert_eq!(
        (
            rating.asked,
            rating.answered,
            rating.unanswered,
            rating.timeouts,
            rating.invalid,
            rating.hangups,
            rating.scored
        ),
        (5, 3, 2, 1, 1, 0, 3)
    );
    assert_eq!(rating.unanswered_share, 0.4);
    assert_eq!(rating.average, Some(11.0 / 3.0));
    let keys: Vec<(&str, u64)> = rating.answers.iter().map(|a| (&*a.key, a.count)).collect();
    assert_eq!(keys, [("2", 1), ("4", 1), ("5", 1)]);
    assert_eq!(rating.buckets.len(), 48, "the hours of per_hour");
    let busy: Vec<(&str, u64, u64, Option<f64>)> = rating
        .buckets
        .iter()
        .filter(|b| b.asked > 0)
        .map(|b| (&*b.start, b.asked, b.answered, b.average))
        .collect();
    assert_eq!(
        busy,
        [
            ("2026-12-11T00:00Z", 1, 1, Some(4.0)),
            ("2026-12-11T01:00Z", 1, 1, Some(5.0)),
            ("2026-12-12T00:00Z", 3, 1, Some(2.0)),
        ]
    );
    // `#` is an answer, in the distribution, but no score: the average is over 9 and 0.
    let nps = &r.surveys[1];
    assert_eq!(
        (
            nps.asked,
            nps.answered,
            nps.scored,
            nps.hangups,
            nps.timeouts
        ),
        (5, 3, 2, 1, 1)
    );
    assert_eq!(nps.average, Some(4.5));
    let keys: Vec<(&str, u64)> = nps.answers.iter().map(|a| (&*a.key, a.count)).collect();
    assert_eq!(keys, [("0", 1), ("9", 1), ("#", 1)], "digits first");
    assert_eq!(nps.answers[2].share, 1.0 / 3.0);
    let hour1 = &nps.buckets[1];
    assert_eq!(
        (hour1.answered, hour1.average, hour1.answers.get("#")),
        (1, None, Some(&1))
    );
    // Three days: per day.
    let daily = survey_window(3);
    let rows = ReportRows::from_records(&daily, &survey_records(), &[], &none);
    let r = CallReport::build(&daily, &rows);
    assert!(r.per_hour.is_none());
    /// A day: its start, asked, answered, average and answers per key.
    type Day<'a> = (&'a str, u64, u64, Option<f64>, Vec<(&'a str, u64)>);
    let days: Vec<Day> = r.surveys[0]
        .buckets
        .iter()
        .map(|b| {
            let keys = b.answers.iter().map(|(k, n)| (&**k, *n)).collect();
            (&*b.start, b.asked, b.answered, b.average, keys)
        })
        .collect();
    assert_eq!(
        days,
        [
            ("2026-12-11", 2, 2, Some(4.5), vec![("4", 1), ("5", 1)]),
            ("2026-12-12", 3, 1, Some(2.0), vec![("2", 1)]),
        ]
    );
    let empty = CallReport::build(&daily, &ReportRows::default());
    assert!(empty.surveys.is_empty());
}

/// A recorded question's comment is answered with no key: it counts as answered, with no
/// score and no key in the distribution (an empty "key" would be drawn as one, 100%).
#[test]
fn a_comment_is_answered_with_no_key_in_the_distribution() {
    let mut records = survey_records();
    for (r, outcome) in records.iter_mut().zip(["answered", "answered", "timeout"]) {
        r.answers.push(CallAnswer {
            survey: "after_call".into(),
            question: "comment".into(),
            answer: None,
            outcome: outcome.into(),
            recording: (outcome == "answered").then(|| "comment-1-2".into()),
        });
    }
    let hourly = survey_window(2);
    let rows = ReportRows::from_records(&hourly, &records, &[], &BTreeSet::new());
    let r = CallReport::build(&hourly, &rows);
    let comment = r.surveys.iter().find(|q| q.question == "comment").unwrap();
    assert_eq!(
        (
            comment.asked,
            comment.answered,
            comment.timeouts,
            comment.scored
        ),
        (3, 2, 1, 0)
    );
    assert_eq!(comment.average, None);
    assert_eq!(comment.answers, [], "no key was given");
    assert!(comment.buckets.iter().all(|b| b.answers.is_empty()));
    assert_eq!(
        comment.buckets.iter().map(|b| b.answered).sum::<u64>(),
        2,
        "answered in its buckets all the same"
    );
}

/// A call's request counts only if it is in the store; a record naming none left nothing.
#[test]
fn outcomes_come_from_the_stored_request() {
    let mut records = fixture();
    records[4].request_id = Some("never-stored".into());
    let rows = ReportRows::from_records(&window(), &records, &[], &stored());
    let o = CallReport::build(&window(), &rows).outcomes;
    assert_eq!((o.callback_request, o.voicemail_left_nothing), (0, 2));
    records[4].exit = Some("callback".into());
    records[4].request_id = Some(voicemail_request());
    let rows = ReportRows::from_records(&window(), &records, &[], &stored());
    let o = CallReport::build(&window(), &rows).outcomes;
    assert_eq!((o.callback_request, o.voicemail_left_nothing), (1, 1));
}

/// The store's survey counts are the Rust ones, per hour, per day, and for one entry.
async fn surveys_in(store: &Store) {
    let records = survey_records();
    store.insert_calls(&records).await.unwrap();
    let none = BTreeSet::new();
    for days in [2, 3] {
        let f = survey_window(days);
        let rows = store.report_rows(&f).await.unwrap();
        assert_eq!(rows, ReportRows::from_records(&f, &records, &[], &none));
        let r = CallReport::build(&f, &rows);
        assert_eq!(r.surveys[0].average, Some(11.0 / 3.0), "{days} days");
    }
    let night = ReportFilter {
        entry: Some("night".into()),
        ..survey_window(2)
    };
    let rows = store.report_rows(&night).await.unwrap();
    let r = CallReport::build(&night, &rows);
    let asked: Vec<(&str, u64, u64)> = r
        .surveys
        .iter()
        .map(|q| (&*q.question, q.asked, q.timeouts))
        .collect();
    assert_eq!(asked, [("rating", 1, 1), ("nps", 1, 1)]);
    assert_eq!(r.surveys[0].average, None);
}

/// Migration 0008 links a record written before it to the request received while it
/// lasted, by its Call-ID (run here again, on a record with no request named).
async fn backfill(store: &Store) {
    let mut old = call(
        "voicemail",
        T0 + 90_000,
        "main",
        Vec::new(),
        Some("voicemail"),
        "caller_hung_up",
        None,
    );
    old.answered_ms = None;
    let mut later = old.clone();
    later.started_ms = T0 + 200_000;
    store.insert_calls(&[old, later]).await.unwrap();
    let migration = include_str!("../migrations/sqlite/0008_call_request.sql");
    assert_eq!(
        migration,
        include_str!("../migrations/postgres/0008_call_request.sql")
    );
    let update = &migration[migration.find("UPDATE").unwrap()..];
    sqlx::query(update).execute(&store.pool).await.unwrap();
    let linked: Vec<(i64, Option<String>)> = store
        .call("voicemail")
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.started_ms - T0, r.request_id))
        .collect();
    assert_eq!(
        linked,
        [
            (90_000, Some(voicemail_request())),
            (200_000, None),
            (25 * 60 * MIN, Some(voicemail_request())),
        ],
        "the request came during the first call only; a record naming one keeps it"
    );
}
