//! `ivr calls ...`: call records (issue #12) from the store: list, show, export as CSV or
//! JSON (numbers masked on request).

use crate::callbacks_cmd::{Where, write_csv};
use crate::queues_cmd::parse_time;
use anyhow::bail;
use clap::{Args, Subcommand};
use ivr_server::terminal::escaped as t;
use ivr_voicemail::call_log::{CallFilter, MAX_CALLS};
use ivr_voicemail::calls::{CallRecord, mask_number};
use ivr_voicemail::report::{Bucket, CallReport, ReportFilter};
use std::io::Write;

/// What to do.
#[derive(Subcommand)]
pub enum Calls {
    /// List calls, newest first.
    List {
        #[command(flatten)]
        window: Window,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// One call in full, with its path through the menus.
    Show {
        /// Its SIP Call-ID.
        call_id: String,
    },
    /// Export calls, oldest first, to standard output.
    Export {
        /// As CSV (one row per call, the path in one column).
        #[arg(long, required_unless_present = "json", conflicts_with = "json")]
        csv: bool,
        /// As JSON (an array of records, each with its steps).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        window: Window,
        /// Replace all but the last 3 digits of the caller's and the called numbers.
        #[arg(long)]
        mask_numbers: bool,
    },
    /// Reports: calls per day (and hour), what callers do in each menu and where they give
    /// up, how calls end, callback requests handled (figures defined in docs/calls.md).
    Report {
        #[command(flatten)]
        window: Window,
        /// Only calls that entered by this menu.
        #[arg(long)]
        entry: Option<String>,
        /// As JSON (the same document as `GET /api/reports/calls`).
        #[arg(long)]
        json: bool,
    },
}

/// Which calls, by their start.
#[derive(Args)]
pub struct Window {
    /// Calls started at or after this: a date (2026-12-01, midnight UTC) or a time
    /// (2026-12-01T08:00:00Z); default: the oldest kept.
    #[arg(long)]
    from: Option<String>,
    /// Calls started before this, in the same forms; default: no end.
    #[arg(long)]
    to: Option<String>,
}

impl Window {
    /// The report filter of this window and `entry`.
    fn report(&self, entry: Option<String>) -> anyhow::Result<ReportFilter> {
        let from_ms = self.from.as_deref().map(parse_time).transpose()?;
        let to_ms = self.to.as_deref().map(parse_time).transpose()?;
        if let (Some(f), Some(t)) = (from_ms, to_ms)
            && f >= t
        {
            bail!("--from must be before --to");
        }
        Ok(ReportFilter {
            from_ms,
            to_ms,
            entry,
        })
    }

    fn filter(&self, limit: u32, newest_first: bool) -> anyhow::Result<CallFilter> {
        let from_ms = self.from.as_deref().map(parse_time).transpose()?;
        let to_ms = self.to.as_deref().map(parse_time).transpose()?;
        let (from_ms, to_ms) = (from_ms.unwrap_or(0), to_ms.unwrap_or(i64::MAX));
        if from_ms >= to_ms {
            bail!("--from must be before --to");
        }
        Ok(CallFilter {
            from_ms,
            to_ms,
            limit,
            newest_first,
        })
    }
}

/// Digits kept by `--mask-numbers`.
const KEEP_DIGITS: usize = 3;

/// Unix milliseconds as `2026-11-27 14:05:09Z`.
fn time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// The path in one line: `main:interrupted:key 1 > sales:full:timeout`.
fn path(r: &CallRecord) -> String {
    let mut steps: Vec<String> = r
        .steps
        .iter()
        .map(|s| match &s.key {
            Some(k) => format!("{}:{}:{} {k}", s.menu, s.prompt, s.outcome),
            None => format!("{}:{}:{}", s.menu, s.prompt, s.outcome),
        })
        .collect();
    if r.steps_truncated {
        steps.push("...".into());
    }
    steps.join(" > ")
}

/// The survey's answers in one line: `after_call: rating=4 recommend=timeout
/// comment=recorded` (the key pressed, `recorded` for a kept comment, or how the question
/// ended unanswered); empty without a survey.
fn answers(r: &CallRecord) -> String {
    let Some(first) = r.answers.first() else {
        return String::new();
    };
    let each: Vec<String> = r
        .answers
        .iter()
        .map(|a| {
            let said = match (&a.answer, &a.recording) {
                (Some(key), _) => key.as_str(),
                (None, Some(_)) => "recorded",
                (None, None) => &a.outcome,
            };
            format!("{}={said}", a.question)
        })
        .collect();
    format!("{}: {}", first.survey, each.join(" "))
}

/// Run a `calls` command.
pub fn run(place: Where, cmd: Calls) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let store = place.open().await?;
        let out = &mut std::io::stdout().lock();
        match cmd {
            Calls::List { window, limit } => {
                let rows = store.calls(&window.filter(limit, true)?).await?;
                writeln!(
                    out,
                    "{:<21} {:<16} {:<12} {:>7}  {:<19} {:<20} CALL-ID",
                    "STARTED", "CALLER", "CALLED", "SECS", "END", "LEFT TO"
                )?;
                for r in &rows {
                    let left = match (&r.exit, &r.exit_to) {
                        (Some(k), Some(to)) => format!("{k} {to}"),
                        (Some(k), None) => k.clone(),
                        _ => "-".into(),
                    };
                    writeln!(
                        out,
                        "{:<21} {:<16} {:<12} {:>7.1}  {:<19} {:<20} {}",
                        time(r.started_ms),
                        t(r.caller.as_deref().unwrap_or("-")),
                        t(r.called.as_deref().unwrap_or("-")),
                        r.duration_ms as f64 / 1000.0,
                        r.end_reason,
                        t(&left),
                        t(&r.call_id),
                    )?;
                }
                writeln!(out, "{} call(s)", rows.len())?;
            }
            Calls::Show { call_id } => {
                let rows = store.call(&call_id).await?;
                if rows.is_empty() {
                    bail!("no call '{}'", t(&call_id));
                }
                for r in &rows {
                    show(out, r)?;
                }
            }
            Calls::Export {
                csv,
                json: _,
                window,
                mask_numbers,
            } => {
                let mut rows = store.calls(&window.filter(MAX_CALLS, false)?).await?;
                if rows.len() >= MAX_CALLS as usize {
                    bail!("more than {MAX_CALLS} calls in this window: choose a shorter one");
                }
                if mask_numbers {
                    for r in &mut rows {
                        for n in [&mut r.caller, &mut r.called].into_iter().flatten() {
                            *n = mask_number(n, KEEP_DIGITS);
                        }
                    }
                }
                if csv {
                    export_csv(&mut *out, &rows)?;
                } else {
                    serde_json::to_writer_pretty(&mut *out, &rows)?;
                    writeln!(out)?;
                }
            }
            Calls::Report {
                window,
                entry,
                json,
            } => {
                let filter = window.report(entry)?;
                let report = CallReport::build(&filter, &store.report_rows(&filter).await?);
                if json {
                    serde_json::to_writer_pretty(&mut *out, &report)?;
                    writeln!(out)?;
                } else {
                    write_report(out, &report)?;
                }
            }
        }
        Ok(())
    })
}

/// For `ivr graph --stats FROM..TO`: how many calls of the window (either end may be left
/// out: `2026-12-01..`) took each way out of each menu.
pub fn graph_stats(
    place: &Where,
    range: &str,
    entry: Option<String>,
) -> anyhow::Result<ivr_menus::graph::Stats> {
    use ivr_menus::graph::{Stats, Via};
    let Some((from, to)) = range.split_once("..") else {
        bail!("--stats takes FROM..TO (2026-12-01..2026-12-08; either end may be left out)");
    };
    let window = Window {
        from: (!from.is_empty()).then(|| from.to_string()),
        to: (!to.is_empty()).then(|| to.to_string()),
    };
    let filter = window.report(entry)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (calls, ways) = rt.block_on(async {
        let store = place.open().await?;
        anyhow::Ok(store.edge_calls(&filter).await?)
    })?;
    let taken = ways
        .into_iter()
        .filter_map(|w| {
            let via = match (w.outcome.as_str(), w.key) {
                ("key", Some(k)) => {
                    let mut c = k.chars();
                    match (c.next(), c.next()) {
                        (Some(k), None) => Via::Key(k),
                        _ => return None,
                    }
                }
                ("extension", Some(code)) => Via::Extension(code),
                ("entry", _) => Via::Entry,
                ("retry", _) => Via::Retry,
                _ => return None,
            };
            Some((w.menu, via, w.steps))
        })
        .collect();
    Ok(Stats { calls, taken })
}

/// A share as a percentage.
fn pct(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// The report as text.
fn write_report(out: &mut impl Write, r: &CallReport) -> std::io::Result<()> {
    let bound = |ms: Option<i64>| ms.map_or_else(|| "-".into(), time);
    write!(
        out,
        "calls {} from {} to {}",
        r.calls,
        bound(r.from_ms),
        bound(r.to_ms)
    )?;
    match &r.entry {
        Some(e) => writeln!(out, " entering by {}", t(e))?,
        None => writeln!(out)?,
    }
    let bars = |out: &mut dyn Write, title: &str, buckets: &[Bucket]| -> std::io::Result<()> {
        let most = buckets.iter().map(|b| b.calls).max().unwrap_or(0).max(1);
        writeln!(out, "\n{title}")?;
        for b in buckets {
            let bar = "#".repeat(((b.calls * 40).div_ceil(most)) as usize);
            writeln!(out, "  {:<17} {:>6}  {bar}", b.start, b.calls)?;
        }
        Ok(())
    };
    bars(out, "per day", &r.per_day)?;
    if let Some(h) = &r.per_hour {
        bars(out, "per hour", h)?;
    }
    writeln!(out, "\nmenus (where callers give up first)")?;
    writeln!(
        out,
        "  {:<20} {:>8} {:>8} {:>8} {:>8}  KEYS",
        "MENU", "SHOWN", "INVALID", "TIMEOUT", "HANG-UP"
    )?;
    for m in &r.menus {
        let keys: Vec<String> = m
            .keys
            .iter()
            .map(|k| format!("{} {}", t(&k.key), pct(k.share)))
            .collect();
        writeln!(
            out,
            "  {:<20} {:>8} {:>8} {:>8} {:>8}  {}",
            t(&m.menu),
            m.presentations,
            pct(m.invalid_share),
            pct(m.timeout_share),
            pct(m.give_up_share),
            keys.join(", ")
        )?;
    }
    let o = &r.outcomes;
    writeln!(out, "\noutcomes")?;
    for (name, n) in [
        ("self-served in the menus", o.self_served),
        ("left a callback request", o.callback_request),
        ("to voicemail, left nothing", o.voicemail_left_nothing),
        ("reached an agent", o.reached_agent),
        ("abandoned in queue", o.abandoned_in_queue),
        ("transferred", o.transferred),
        ("hung up in the menus", o.hung_up_in_menus),
        ("other", o.other),
    ] {
        let share = if r.calls == 0 {
            0.0
        } else {
            n as f64 / r.calls as f64
        };
        writeln!(out, "  {name:<26} {n:>6}  {}", pct(share))?;
    }
    let c = &r.callbacks;
    let median = c
        .median_resolve_secs
        .map_or_else(|| "-".into(), |s| format!("{:.1} h", s as f64 / 3600.0));
    writeln!(
        out,
        "\ncallback requests: {} created, {} resolved, median time to resolve {median}",
        c.created, c.resolved
    )?;
    write_surveys(out, r)
}

/// The survey scores as text: each question's figures, its answers, and the hours or days
/// it was asked in.
fn write_surveys(out: &mut impl Write, r: &CallReport) -> std::io::Result<()> {
    if r.surveys.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "\nsurvey scores (average of the 0-9 answers; * and # answers are counted, not averaged)"
    )?;
    let avg = |a: Option<f64>| a.map_or_else(|| "-".into(), |a| format!("{a:.2}"));
    for q in &r.surveys {
        writeln!(
            out,
            "  {} {}: asked {}, answered {}, average {} over {}, unanswered {} ({} timeout, {} invalid, {} hang-up)",
            t(&q.survey),
            t(&q.question),
            q.asked,
            q.answered,
            avg(q.average),
            q.scored,
            pct(q.unanswered_share),
            q.timeouts,
            q.invalid,
            q.hangups
        )?;
        let keys: Vec<String> = q
            .answers
            .iter()
            .map(|a| format!("{} {}", t(&a.key), pct(a.share)))
            .collect();
        writeln!(out, "    answers: {}", keys.join(", "))?;
        for b in q.buckets.iter().filter(|b| b.asked > 0) {
            let bar = b
                .average
                .map_or(0, |a| (a * 4.0).round().clamp(0.0, 36.0) as usize);
            writeln!(
                out,
                "    {:<17} {:>5}/{:<5} {:>5}  {}",
                b.start,
                b.answered,
                b.asked,
                avg(b.average),
                "#".repeat(bar)
            )?;
        }
    }
    Ok(())
}

fn show(out: &mut impl Write, r: &CallRecord) -> std::io::Result<()> {
    let opt = |v: &Option<String>| t(v.as_deref().unwrap_or("-")).into_owned();
    writeln!(out, "call-id:     {}", t(&r.call_id))?;
    writeln!(out, "started:     {}", time(r.started_ms))?;
    let answered = r.answered_ms.map_or_else(|| "-".into(), time);
    writeln!(out, "answered:    {answered}")?;
    writeln!(out, "ended:       {}", time(r.ended_ms))?;
    writeln!(out, "duration:    {:.1} s", r.duration_ms as f64 / 1000.0)?;
    writeln!(out, "caller:      {}", opt(&r.caller))?;
    writeln!(out, "called:      {}", opt(&r.called))?;
    writeln!(out, "end reason:  {}", r.end_reason)?;
    writeln!(out, "entry:       {}", opt(&r.entry))?;
    writeln!(out, "language:    {}", opt(&r.language))?;
    writeln!(out, "left to:     {} {}", opt(&r.exit), opt(&r.exit_to))?;
    if let Some(id) = &r.request_id {
        writeln!(out, "request:     {}", t(id))?;
    }
    if r.queue.is_some() {
        let wait = r
            .queue_wait_ms
            .map_or_else(|| "-".into(), |w| format!("{:.1} s", w as f64 / 1000.0));
        writeln!(
            out,
            "queue:       {} (waited {wait}, agent {})",
            opt(&r.queue),
            opt(&r.agent)
        )?;
    }
    writeln!(out, "path:")?;
    for s in &r.steps {
        writeln!(
            out,
            "  +{:>7.1}s  {:<16} prompt {:<12} {} {}",
            (s.at_ms - r.started_ms) as f64 / 1000.0,
            t(&s.menu),
            s.prompt,
            s.outcome,
            t(s.key.as_deref().unwrap_or("")),
        )?;
    }
    if r.steps_truncated {
        writeln!(out, "  ... (more steps were not kept)")?;
    }
    if let Some(first) = r.answers.first() {
        writeln!(out, "survey:      {}", t(&first.survey))?;
        for a in &r.answers {
            // A comment is named by its file (in the voicemail folder; the staff API
            // serves it at /api/comments/KEY).
            let said = match (&a.answer, &a.recording) {
                (Some(key), _) => t(key).into_owned(),
                (None, Some(rec)) => format!("comment {}.wav", t(rec)),
                (None, None) => String::new(),
            };
            writeln!(out, "  {:<16} {:<9} {said}", t(&a.question), a.outcome,)?;
        }
    }
    Ok(())
}

/// The CSV columns.
const CSV_COLUMNS: [&str; 18] = [
    "call_id",
    "started",
    "answered",
    "ended",
    "duration_ms",
    "caller",
    "called",
    "end_reason",
    "entry",
    "language",
    "exit",
    "exit_to",
    "queue",
    "queue_wait_ms",
    "agent",
    "path",
    "answers",
    "request_id",
];

/// Write `rows` as CSV, defused as `ivr callbacks export` does.
fn export_csv(out: impl Write, rows: &[CallRecord]) -> csv::Result<()> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    write_csv(
        out,
        CSV_COLUMNS,
        rows.iter().map(|r| {
            [
                r.call_id.clone(),
                time(r.started_ms),
                r.answered_ms.map(time).unwrap_or_default(),
                time(r.ended_ms),
                r.duration_ms.to_string(),
                opt(&r.caller),
                opt(&r.called),
                r.end_reason.clone(),
                opt(&r.entry),
                opt(&r.language),
                opt(&r.exit),
                opt(&r.exit_to),
                opt(&r.queue),
                r.queue_wait_ms.map(|w| w.to_string()).unwrap_or_default(),
                opt(&r.agent),
                path(r),
                answers(r),
                opt(&r.request_id),
            ]
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ivr_voicemail::calls::CallStep;

    /// Text from callers (Call-ID, numbers) reaches the terminal with control characters
    /// escaped; the path reads step by step from the call's start.
    #[test]
    fn show_escapes_what_callers_sent() {
        let r = CallRecord {
            call_id: "\u{1b}]0;owned\u{7}@x".into(),
            started_ms: 1_800_000_000_000,
            ended_ms: 1_800_000_002_000,
            duration_ms: 2_000,
            caller: Some("+1555\r\u{1b}[2J".into()),
            end_reason: "caller_hung_up".into(),
            steps: vec![CallStep {
                menu: "main".into(),
                at_ms: 1_800_000_000_500,
                outcome: "hangup".into(),
                key: None,
                prompt: "unfinished".into(),
            }],
            ..Default::default()
        };
        let mut out = Vec::new();
        show(&mut out, &r).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains('\u{1b}') && !text.contains('\r'), "{text}");
        assert!(
            text.contains("call-id:     \\x1b]0;owned\\x07@x\n"),
            "{text}"
        );
        assert!(text.contains("caller:      +1555\\x0d\\x1b[2J\n"), "{text}");
        assert!(
            text.contains("  +    0.5s  main             prompt unfinished   hangup \n"),
            "{text}"
        );
    }

    /// The text report: bars per day, menus with their shares, outcomes, callbacks.
    #[test]
    fn the_report_reads_as_text() {
        use ivr_voicemail::report::{CallbackTimes, ReportRows};
        let t0 = 1_796_083_200_000; // 2026-12-01
        let call = |at: i64, outcome: &str, key: Option<&str>, exit: Option<&str>| CallRecord {
            started_ms: at,
            end_reason: "caller_hung_up".into(),
            exit: exit.map(Into::into),
            steps: vec![CallStep {
                menu: "main".into(),
                at_ms: at,
                outcome: outcome.into(),
                key: key.map(Into::into),
                prompt: "full".into(),
            }],
            ..Default::default()
        };
        let filter = ReportFilter {
            from_ms: Some(t0),
            to_ms: Some(t0 + 2 * 3_600_000),
            entry: None,
        };
        let mut surveyed = call(t0 + 10, "key", Some("1"), Some("queue"));
        surveyed.answers = ["4", "#"]
            .map(|k| ivr_voicemail::calls::CallAnswer {
                survey: "after_call".into(),
                question: "rating".into(),
                answer: Some(k.into()),
                outcome: "answered".into(),
                recording: None,
            })
            .to_vec();
        let mut message = call(t0, "key", Some("1"), Some("voicemail"));
        message.request_id = Some("r1".into());
        let rows = ReportRows::from_records(
            &filter,
            &[
                message,
                call(t0 + 1_000, "hangup", None, None),
                call(t0 + 3_600_000, "key", Some("1"), Some("hangup")),
                call(t0 + 3_700_000, "timeout", None, None),
                call(t0 + 3_800_000, "key", Some("1"), Some("voicemail")),
                surveyed,
            ],
            &[CallbackTimes {
                received_at: 1_796_083_200,
                resolved_at: Some(1_796_083_200 + 5_400),
            }],
            &std::collections::BTreeSet::from(["r1".to_string()]),
        );
        let mut out = Vec::new();
        write_report(&mut out, &CallReport::build(&filter, &rows)).unwrap();
        let text = String::from_utf8(out).unwrap();
        for line in [
            "calls 6 from 2026-12-01 00:00:00Z to 2026-12-01 02:00:00Z",
            "  2026-12-01             6  ########################################",
            "  2026-12-01T01:00Z      3  ########################################",
            "  main                        6     0.0%    16.7%    16.7%  1 66.7%",
            "  self-served in the menus        1  16.7%",
            "  left a callback request         1  16.7%",
            "  to voicemail, left nothing      1  16.7%",
            "  hung up in the menus            2  33.3%",
            "  other                           0  0.0%",
            "callback requests: 1 created, 1 resolved, median time to resolve 1.5 h",
            "  after_call rating: asked 2, answered 2, average 4.00 over 1, unanswered 0.0% (0 timeout, 0 invalid, 0 hang-up)",
            "    answers: 4 50.0%, # 50.0%",
            "    2026-12-01T00:00Z     2/2      4.00  ################",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
        }
    }

    #[test]
    fn csv_rows_are_defused_and_carry_the_path() {
        let r = CallRecord {
            call_id: "=cmd|' /C calc'!A0".into(),
            started_ms: 1_800_000_000_000,
            ended_ms: 1_800_000_005_000,
            duration_ms: 5_000,
            caller: Some("+15551234".into()),
            end_reason: "caller_hung_up".into(),
            steps: vec![CallStep {
                menu: "main".into(),
                at_ms: 1_800_000_000_100,
                outcome: "key".into(),
                key: Some("1".into()),
                prompt: "interrupted".into(),
            }],
            ..Default::default()
        };
        let mut out = Vec::new();
        export_csv(&mut out, &[r]).unwrap();
        let text = String::from_utf8(out).unwrap();
        let row = text.lines().nth(1).unwrap();
        assert_eq!(
            row,
            "'=cmd|' /C calc'!A0,2027-01-15 08:00:00Z,,2027-01-15 08:00:05Z,5000,+15551234,,caller_hung_up,,,,,,,,main:interrupted:key 1,,"
        );
    }

    #[test]
    fn the_survey_answers_show_and_export() {
        let answer = |q: &str, a: Option<&str>, outcome: &str| ivr_voicemail::calls::CallAnswer {
            survey: "after_call".into(),
            question: q.into(),
            answer: a.map(str::to_string),
            outcome: outcome.into(),
            recording: None,
        };
        let mut comment = answer("comment", None, "answered");
        comment.recording = Some("comment-1764640000-0a1b2c3d".into());
        let r = CallRecord {
            call_id: "s@x".into(),
            end_reason: "destination_hung_up".into(),
            answers: vec![
                answer("rating", Some("4"), "answered"),
                answer("recommend", None, "timeout"),
                comment,
            ],
            request_id: Some("1796083200-0000abcd".into()),
            ..Default::default()
        };
        let mut out = Vec::new();
        show(&mut out, &r).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("survey:      after_call\n  rating           answered  4\n  recommend        timeout   \n  comment          answered  comment comment-1764640000-0a1b2c3d.wav\n"),
            "{text}"
        );
        assert!(
            text.contains("request:     1796083200-0000abcd\n"),
            "{text}"
        );
        let mut out = Vec::new();
        export_csv(&mut out, &[r]).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with(
                ",after_call: rating=4 recommend=timeout comment=recorded,1796083200-0000abcd\n"
            ),
            "{text}"
        );
    }
}
