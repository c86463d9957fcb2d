//! `ivr calls ...`: call records (issue #12) from the store: list, show, export as CSV or
//! JSON (numbers masked on request).

use crate::callbacks_cmd::{Where, write_csv};
use crate::queues_cmd::parse_time;
use anyhow::bail;
use clap::{Args, Subcommand};
use ivr_server::terminal::escaped as t;
use ivr_voicemail::call_log::{CallFilter, MAX_CALLS};
use ivr_voicemail::calls::{CallRecord, mask_number};
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
        }
        Ok(())
    })
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
    Ok(())
}

/// The CSV columns.
const CSV_COLUMNS: [&str; 16] = [
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
            "'=cmd|' /C calc'!A0,2027-01-15 08:00:00Z,,2027-01-15 08:00:05Z,5000,+15551234,,caller_hung_up,,,,,,,,main:interrupted:key 1"
        );
    }
}
