//! `ivr queues report`: the queue figures (service level, waits, abandons, agents) from the
//! queue event log in the store, for a window of time, as a table or JSON.

use crate::callbacks_cmd::Where;
use anyhow::bail;
use clap::Subcommand;
use ivr_queues::report::{Report, SHORT_ABANDON};
use ivr_voicemail::store::Store;
use std::io::Write;
use std::time::Duration;

/// What to do.
#[derive(Subcommand)]
pub enum Queues {
    /// Figures per queue and per agent over a window (default: the last 24 hours).
    Report {
        /// The window's start: a date (2026-12-01, midnight UTC) or a time
        /// (2026-12-01T08:00:00Z).
        #[arg(long)]
        from: Option<String>,
        /// The window's end (exclusive), in the same forms; default: now.
        #[arg(long)]
        to: Option<String>,
        /// The service-level threshold: answered within this many seconds.
        #[arg(long, default_value_t = 20)]
        service_level: u64,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
}

/// Unix milliseconds of a date (midnight UTC) or an RFC 3339 time.
pub(crate) use ivr_server::reports::parse_time;

/// Unix milliseconds as `2026-11-27 14:05Z`.
fn time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%MZ").to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// A duration as people read it: `45s`, `2m05s`, `1h02m`.
fn secs(ms: u64) -> String {
    let s = (ms + 500) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.1}%"))
}

/// Run a `queues` command.
pub fn run(place: Where, cmd: Queues) -> anyhow::Result<()> {
    let Queues::Report {
        from,
        to,
        service_level,
        json,
    } = cmd;
    let now = i64::try_from(ivr_server::clock::unix_now()).unwrap_or(i64::MAX / 1000) * 1000;
    let to_ms = to.as_deref().map(parse_time).transpose()?.unwrap_or(now);
    let from_ms = from
        .as_deref()
        .map(parse_time)
        .transpose()?
        .unwrap_or(to_ms - 24 * 3600 * 1000);
    if from_ms >= to_ms {
        bail!("--from must be before --to");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let rows = rt.block_on(async {
        let store: Store = place.open().await?;
        let rows = store
            .queue_events(from_ms, to_ms, ivr_voicemail::queue_log::MAX_ROWS)
            .await?;
        anyhow::Ok(rows)
    })?;
    if rows.len() >= ivr_voicemail::queue_log::MAX_ROWS as usize {
        bail!(
            "more than {} events in this window: choose a shorter one",
            rows.len()
        );
    }
    let threshold = Duration::from_secs(service_level);
    let report = Report::compute(&rows, from_ms, to_ms, threshold);
    let out = &mut std::io::stdout().lock();
    if json {
        writeln!(out, "{:#}", to_json(&report))?;
    } else {
        print(out, &report)?;
    }
    Ok(())
}

/// The report as JSON: every count, and the computed figures beside them.
pub fn to_json(r: &Report) -> serde_json::Value {
    let queues: Vec<serde_json::Value> = r
        .queues
        .iter()
        .map(|q| {
            serde_json::json!({
                "queue": q.queue,
                "entered": q.entered,
                "left_the_line": q.left_the_line,
                "answered": q.answered,
                "answered_in_time": q.answered_in_time,
                "service_level_percent": q.service_level(),
                "abandoned": q.abandoned,
                "short_abandons": q.short_abandons,
                "abandon_rate_percent": q.abandon_rate(),
                "timed_out": q.timed_out,
                "exit_keys": q.exit_keys,
                "left_empty": q.left_empty,
                "callbacks_requested": q.callbacks_requested,
                "callbacks_connected": q.callbacks_connected,
                "callbacks_failed": q.callbacks_failed,
                "transferred": q.transferred,
                "average_wait_ms": q.average_wait().map(|d| d.as_millis() as u64),
                "longest_wait_ms": q.longest_wait_ms,
                "completed": q.completed,
                "average_talk_ms": q.average_talk().map(|d| d.as_millis() as u64),
            })
        })
        .collect();
    let agents: Vec<serde_json::Value> = r
        .agents
        .iter()
        .map(|a| {
            serde_json::json!({
                "agent": a.agent,
                "offers": a.offers,
                "answered": a.answered,
                "unanswered": a.unanswered,
                "completed": a.completed,
                "talk_ms": a.talk_ms,
                "wrap_up_ms": a.wrap_up_ms,
                "paused_ms": a.paused_ms,
            })
        })
        .collect();
    serde_json::json!({
        "from_ms": r.from_ms,
        "to_ms": r.to_ms,
        "service_level_threshold_s": r.threshold.as_secs(),
        "short_abandon_s": SHORT_ABANDON.as_secs(),
        "queues": queues,
        "agents": agents,
    })
}

fn print(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    writeln!(
        out,
        "Queues from {} to {} (service level: answered within {} s; short abandons: under {} s)",
        time(r.from_ms),
        time(r.to_ms),
        r.threshold.as_secs(),
        SHORT_ABANDON.as_secs()
    )?;
    if r.queues.is_empty() && r.agents.is_empty() {
        writeln!(out, "No queue events in this window.")?;
        return Ok(());
    }
    writeln!(
        out,
        "\n{:<16} {:>7} {:>5} {:>8} {:>8} {:>9} {:>7} {:>7} {:>7} {:>7} {:>5} {:>5} {:>8} {:>8} {:>8} {:>8}",
        "QUEUE",
        "ENTERED",
        "LEFT",
        "ANSWERED",
        "IN TIME",
        "SERVICE",
        "ABANDON",
        "(<5 s)",
        "RATE",
        "TIMEOUT",
        "KEY",
        "EMPTY",
        "CALLBACK",
        "AVG WAIT",
        "LONGEST",
        "AVG TALK"
    )?;
    for q in &r.queues {
        writeln!(
            out,
            "{:<16} {:>7} {:>5} {:>8} {:>8} {:>9} {:>7} {:>7} {:>7} {:>7} {:>5} {:>5} {:>8} {:>8} {:>8} {:>8}",
            ivr_server::terminal::escaped(&q.queue),
            q.entered,
            q.left_the_line,
            q.answered,
            q.answered_in_time,
            pct(q.service_level()),
            q.abandoned,
            q.short_abandons,
            pct(q.abandon_rate()),
            q.timed_out,
            q.exit_keys,
            q.left_empty,
            q.callbacks_requested,
            q.average_wait()
                .map_or("-".into(), |d| secs(d.as_millis() as u64)),
            secs(q.longest_wait_ms),
            q.average_talk()
                .map_or("-".into(), |d| secs(d.as_millis() as u64)),
        )?;
    }
    if !r.agents.is_empty() {
        writeln!(
            out,
            "\n{:<16} {:>6} {:>8} {:>10} {:>6} {:>9} {:>9} {:>9}",
            "AGENT", "OFFERS", "ANSWERED", "UNANSWERED", "CALLS", "TALK", "WRAP-UP", "PAUSED"
        )?;
        for a in &r.agents {
            writeln!(
                out,
                "{:<16} {:>6} {:>8} {:>10} {:>6} {:>9} {:>9} {:>9}",
                ivr_server::terminal::escaped(&a.agent),
                a.offers,
                a.answered,
                a.unanswered,
                a.completed,
                secs(a.talk_ms),
                secs(a.wrap_up_ms),
                secs(a.paused_ms),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_are_read_as_utc() {
        assert_eq!(parse_time("1970-01-02").unwrap(), 86_400_000);
        assert_eq!(parse_time("1970-01-01T00:00:01Z").unwrap(), 1_000);
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(secs(44_600), "45s");
        assert_eq!(secs(125_000), "2m05s");
        assert_eq!(secs(3_725_000), "1h02m");
    }
}
