//! Reports from the call records (issue #12): calls per day and hour, what callers do in
//! each menu and where they give up, how calls end, how callback requests are handled, and
//! the survey scores (`report_surveys.rs`).
//!
//! The store sums the records with `GROUP BY` ([`Store::report_rows`], the same SQL on
//! SQLite and PostgreSQL) into [`ReportRows`]; [`CallReport::build`] turns those rows into
//! the report, a pure function (its figures are defined in `docs/calls.md`, "Reports").
//! [`ReportRows::from_records`] sums records the same way in Rust: the fixture tests' input,
//! and what the store's sums are checked against.

use crate::calls::CallRecord;
use crate::store::{Store, StoreError};
use sqlx::Row as _;
use std::collections::{BTreeMap, BTreeSet};

#[path = "report_surveys.rs"]
mod surveys;
pub use surveys::{AnswerCount, AnswerShare, ScoreBucket, SurveyQuestion};

/// Milliseconds in an hour.
const HOUR_MS: i64 = 3_600_000;
/// Hours in a day.
const DAY_HOURS: i64 = 24;
/// Milliseconds in a day.
const DAY_MS: i64 = DAY_HOURS * HOUR_MS;
/// The longest window that also gets calls per hour (2 days).
pub const HOURLY_MAX_MS: i64 = 48 * HOUR_MS;
/// Most days filled with zeros between the first and the last day with calls.
const MAX_FILLED_DAYS: i64 = 3_660;
/// Most callback requests a report reads (their median is over these).
pub const MAX_CALLBACKS: u32 = 1_000_000;

/// Which calls a report covers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReportFilter {
    /// Calls started at or after this (Unix milliseconds), if bounded.
    pub from_ms: Option<i64>,
    /// Calls started before this, if bounded.
    pub to_ms: Option<i64>,
    /// Only calls that entered by this menu.
    pub entry: Option<String>,
}

impl ReportFilter {
    fn bounds(&self) -> (i64, i64) {
        (self.from_ms.unwrap_or(0), self.to_ms.unwrap_or(i64::MAX))
    }
}

/// How many steps of a menu ended one way (`outcome`, with the key or code pressed).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StepCount {
    /// The menu.
    pub menu: String,
    /// The step's outcome (`key`, `extension`, `entry`, `invalid`, `timeout`, `hangup`...).
    pub outcome: String,
    /// The key or code, if any.
    pub key: Option<String>,
    /// How many steps.
    pub steps: u64,
}

/// How many calls ended one way: where they left the menus and why they ended.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EndCount {
    /// Where the calls left the menus (`None`: they ended in the menus).
    pub exit: Option<String>,
    /// Why they ended.
    pub end_reason: String,
    /// How many calls.
    pub calls: u64,
    /// How many of them an agent answered.
    pub with_agent: u64,
    /// How many of them left a callback request that is in the store.
    pub with_request: u64,
}

/// One callback request: when it came, and when it was first marked resolved (seconds
/// since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CallbackTimes {
    /// When the caller left it.
    pub received_at: u64,
    /// When staff first set it `resolved`, if they did.
    pub resolved_at: Option<u64>,
}

/// The sums a report is built from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReportRows {
    /// Calls by the hour they started in (hours since the Unix epoch).
    pub hours: Vec<(i64, u64)>,
    /// Steps by menu, outcome and key.
    pub steps: Vec<StepCount>,
    /// Calls by exit and end reason.
    pub ends: Vec<EndCount>,
    /// The callback requests received in the window.
    pub callbacks: Vec<CallbackTimes>,
    /// The survey answers by question, bucket (hours if the report has `per_hour`, else
    /// days: [`survey_bucket_ms`]), outcome and key.
    pub answers: Vec<AnswerCount>,
}

/// The first and the end (excluded) hour of `per_hour`, if the report has it: from the
/// window's start (or the first hour with calls) to its end (or the last hour with calls),
/// at most [`HOURLY_MAX_MS`].
fn hour_span(filter: &ReportFilter, first: Option<i64>, last: Option<i64>) -> Option<(i64, i64)> {
    let a = filter.from_ms.map(|f| f.div_euclid(HOUR_MS)).or(first)?;
    let b = filter
        .to_ms
        .map(|t| (t + HOUR_MS - 1).div_euclid(HOUR_MS))
        .or(last.map(|h| h + 1))?;
    (b > a && (b - a) * HOUR_MS <= HOURLY_MAX_MS).then_some((a, b))
}

/// How long the survey scores' buckets are for `filter` with calls in `hours` (hours since
/// the Unix epoch): an hour when the report has `per_hour`, else a day.
pub fn survey_bucket_ms(filter: &ReportFilter, hours: &[(i64, u64)]) -> i64 {
    let first = hours.iter().map(|h| h.0).min();
    let last = hours.iter().map(|h| h.0).max();
    if hour_span(filter, first, last).is_some() {
        HOUR_MS
    } else {
        DAY_MS
    }
}

impl ReportRows {
    /// The sums of `records` (all in `filter`'s window) and of `callbacks`, as the store
    /// makes them, in a canonical order; `stored` are the ids of the callback requests in
    /// the store (a record's request counts only if it is one of them).
    pub fn from_records(
        filter: &ReportFilter,
        records: &[CallRecord],
        callbacks: &[CallbackTimes],
        stored: &BTreeSet<String>,
    ) -> ReportRows {
        let mut hours: BTreeMap<i64, u64> = BTreeMap::new();
        let mut steps: BTreeMap<(String, String, Option<String>), u64> = BTreeMap::new();
        let mut ends: BTreeMap<(Option<String>, String), (u64, u64, u64)> = BTreeMap::new();
        for r in records {
            *hours.entry(r.started_ms.div_euclid(HOUR_MS)).or_default() += 1;
            for s in &r.steps {
                let k = (s.menu.clone(), s.outcome.clone(), s.key.clone());
                *steps.entry(k).or_default() += 1;
            }
            let e = ends
                .entry((r.exit.clone(), r.end_reason.clone()))
                .or_default();
            e.0 += 1;
            e.1 += u64::from(r.agent.is_some());
            e.2 += u64::from(r.request_id.as_ref().is_some_and(|id| stored.contains(id)));
        }
        let hours: Vec<(i64, u64)> = hours.into_iter().collect();
        let answers = surveys::answer_counts(records, survey_bucket_ms(filter, &hours));
        let mut rows = ReportRows {
            hours,
            steps: steps
                .into_iter()
                .map(|((menu, outcome, key), steps)| StepCount {
                    menu,
                    outcome,
                    key,
                    steps,
                })
                .collect(),
            ends: ends
                .into_iter()
                .map(
                    |((exit, end_reason), (calls, with_agent, with_request))| EndCount {
                        exit,
                        end_reason,
                        calls,
                        with_agent,
                        with_request,
                    },
                )
                .collect(),
            callbacks: callbacks.to_vec(),
            answers,
        };
        rows.sort();
        rows
    }

    /// Put every list in its canonical order (the store's rows come in any order).
    pub fn sort(&mut self) {
        self.hours.sort_unstable();
        self.steps.sort_unstable();
        self.ends.sort_unstable();
        self.callbacks.sort_unstable();
        self.answers.sort_unstable();
    }
}

/// Calls in one day or hour.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Bucket {
    /// Its start (Unix milliseconds).
    pub start_ms: i64,
    /// Its start as text: `2026-12-01` for a day, `2026-12-01T14:00Z` for an hour (UTC).
    pub start: String,
    /// Calls started in it.
    pub calls: u64,
}

/// One key (or code, or entry) of a menu and its share of the menu's presentations.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct KeyShare {
    /// The key (`1`, `#`), `ext 123` for an extension code, `entry` for a collected entry.
    pub key: String,
    /// How many presentations ended with it.
    pub count: u64,
    /// `count / presentations`.
    pub share: f64,
}

/// What callers did in one menu.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct MenuReport {
    /// The menu.
    pub menu: String,
    /// Steps in it: each time it was presented (entered, or started again).
    pub presentations: u64,
    /// The keys that acted, most chosen first.
    pub keys: Vec<KeyShare>,
    /// Presentations that ended with a key the menu has no option for (or a code that
    /// matched nothing).
    pub invalid: u64,
    /// Presentations that ended with no key before the menu's timeout.
    pub timeouts: u64,
    /// Presentations during which the caller hung up.
    pub hangups: u64,
    /// `invalid / presentations`.
    pub invalid_share: f64,
    /// `timeouts / presentations`.
    pub timeout_share: f64,
    /// `hangups / presentations`: where callers give up.
    pub give_up_share: f64,
}

/// How calls ended (each call counts in one of these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, utoipa::ToSchema)]
pub struct Outcomes {
    /// The menus ended the call (a `hangup` action, e.g. after a goodbye): served by the
    /// menus alone.
    pub self_served: u64,
    /// Left a callback request that is in the store: a message or a number in a mailbox
    /// (exit `voicemail`), or a queued callback taken in the caller's place (exit
    /// `callback`).
    pub callback_request: u64,
    /// Went to a mailbox (or a queued callback) but left no request: the caller hung up
    /// during the greeting with nothing given, or the request could not be stored.
    pub voicemail_left_nothing: u64,
    /// Waited in a queue and an agent answered.
    pub reached_agent: u64,
    /// Left the menus for a queue and ended there without an agent.
    pub abandoned_in_queue: u64,
    /// Transferred to a destination.
    pub transferred: u64,
    /// The caller hung up (or cancelled) in the menus.
    pub hung_up_in_menus: u64,
    /// Ended in the menus otherwise (shutdown, media timeout...).
    pub other: u64,
}

/// Callback requests received in the window and how many were resolved.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, utoipa::ToSchema)]
pub struct CallbackReport {
    /// Requests received.
    pub created: u64,
    /// Of those, requests staff have set `resolved` (at any time since).
    pub resolved: u64,
    /// The median time from a request to its first `resolved` (seconds), over the resolved
    /// ones.
    pub median_resolve_secs: Option<u64>,
}

/// The report.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct CallReport {
    /// The window's start (Unix milliseconds), if bounded.
    pub from_ms: Option<i64>,
    /// The window's end (excluded), if bounded.
    pub to_ms: Option<i64>,
    /// The entry menu it is limited to, if any.
    pub entry: Option<String>,
    /// Calls started in the window.
    pub calls: u64,
    /// Calls per day (UTC), from the first day with calls to the last.
    pub per_day: Vec<Bucket>,
    /// Calls per hour, for a window of at most 2 days (from its start, or the first hour
    /// with calls, to its end, or the last hour with calls).
    pub per_hour: Option<Vec<Bucket>>,
    /// Each menu with steps, the menus callers give up in most first.
    pub menus: Vec<MenuReport>,
    /// How the calls ended.
    pub outcomes: Outcomes,
    /// Callback requests.
    pub callbacks: CallbackReport,
    /// Each survey question asked in the window's calls: its scores, per bucket too (the
    /// hours of `per_hour` when there are, else the days of `per_day`).
    pub surveys: Vec<SurveyQuestion>,
}

/// `n / of`, 0 when `of` is 0.
fn share(n: u64, of: u64) -> f64 {
    if of == 0 { 0.0 } else { n as f64 / of as f64 }
}

/// The civil date (UTC) of a day since the Unix epoch (H. Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn day_text(day: i64) -> String {
    let (y, m, d) = civil(day);
    format!("{y:04}-{m:02}-{d:02}")
}

fn hour_text(hour: i64) -> String {
    format!(
        "{}T{:02}:00Z",
        day_text(hour.div_euclid(DAY_HOURS)),
        hour.rem_euclid(DAY_HOURS)
    )
}

impl CallReport {
    /// The report of `rows`, the sums of the calls `filter` selects.
    pub fn build(filter: &ReportFilter, rows: &ReportRows) -> CallReport {
        let calls: u64 = rows.hours.iter().map(|(_, n)| n).sum();
        let by_hour: BTreeMap<i64, u64> = rows.hours.iter().copied().collect();
        let mut by_day: BTreeMap<i64, u64> = BTreeMap::new();
        for (h, n) in &by_hour {
            *by_day.entry(h.div_euclid(DAY_HOURS)).or_default() += n;
        }
        let per_day = match (by_day.keys().next(), by_day.keys().next_back()) {
            (Some(&first), Some(&last)) if last - first < MAX_FILLED_DAYS => (first..=last)
                .map(|d| Bucket {
                    start_ms: d * DAY_HOURS * HOUR_MS,
                    start: day_text(d),
                    calls: by_day.get(&d).copied().unwrap_or(0),
                })
                .collect(),
            _ => by_day
                .iter()
                .map(|(&d, &calls)| Bucket {
                    start_ms: d * DAY_HOURS * HOUR_MS,
                    start: day_text(d),
                    calls,
                })
                .collect(),
        };
        let span = hour_span(
            filter,
            by_hour.keys().next().copied(),
            by_hour.keys().next_back().copied(),
        );
        let per_hour: Option<Vec<Bucket>> = span.map(|(a, b)| {
            (a..b)
                .map(|h| Bucket {
                    start_ms: h * HOUR_MS,
                    start: hour_text(h),
                    calls: by_hour.get(&h).copied().unwrap_or(0),
                })
                .collect()
        });
        let (score_buckets, bucket_ms) = match &per_hour {
            Some(h) => (h, HOUR_MS),
            None => (&per_day, DAY_MS),
        };
        let score_buckets: Vec<(i64, String)> = score_buckets
            .iter()
            .map(|b| (b.start_ms, b.start.clone()))
            .collect();
        let surveys = surveys::questions(&rows.answers, &score_buckets, bucket_ms);
        CallReport {
            from_ms: filter.from_ms,
            to_ms: filter.to_ms,
            entry: filter.entry.clone(),
            calls,
            per_day,
            per_hour,
            menus: menus(&rows.steps),
            outcomes: outcomes(&rows.ends),
            callbacks: callbacks(&rows.callbacks),
            surveys,
        }
    }
}

fn menus(steps: &[StepCount]) -> Vec<MenuReport> {
    let mut by_menu: BTreeMap<&str, Vec<&StepCount>> = BTreeMap::new();
    for s in steps {
        by_menu.entry(&s.menu).or_default().push(s);
    }
    let mut out: Vec<MenuReport> = by_menu
        .into_iter()
        .map(|(menu, steps)| {
            let presentations: u64 = steps.iter().map(|s| s.steps).sum();
            let count = |outcome: &str| -> u64 {
                steps
                    .iter()
                    .filter(|s| s.outcome == outcome)
                    .map(|s| s.steps)
                    .sum()
            };
            let mut keys: BTreeMap<String, u64> = BTreeMap::new();
            for s in &steps {
                let key = match (s.outcome.as_str(), &s.key) {
                    ("key", Some(k)) => k.clone(),
                    ("extension", Some(k)) => format!("ext {k}"),
                    ("entry", _) => "entry".into(),
                    _ => continue,
                };
                *keys.entry(key).or_default() += s.steps;
            }
            let mut keys: Vec<KeyShare> = keys
                .into_iter()
                .map(|(key, count)| KeyShare {
                    key,
                    count,
                    share: share(count, presentations),
                })
                .collect();
            keys.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
            let (invalid, timeouts, hangups) =
                (count("invalid"), count("timeout"), count("hangup"));
            MenuReport {
                menu: menu.to_string(),
                presentations,
                keys,
                invalid,
                timeouts,
                hangups,
                invalid_share: share(invalid, presentations),
                timeout_share: share(timeouts, presentations),
                give_up_share: share(hangups, presentations),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.give_up_share
            .total_cmp(&a.give_up_share)
            .then_with(|| b.presentations.cmp(&a.presentations))
            .then_with(|| a.menu.cmp(&b.menu))
    });
    out
}

fn outcomes(ends: &[EndCount]) -> Outcomes {
    let mut o = Outcomes::default();
    for e in ends {
        match e.exit.as_deref() {
            Some("hangup") => o.self_served += e.calls,
            Some("voicemail" | "callback") => {
                let left = e.with_request.min(e.calls);
                o.callback_request += left;
                o.voicemail_left_nothing += e.calls - left;
            }
            Some("queue") => {
                let agent = e.with_agent.min(e.calls);
                o.reached_agent += agent;
                o.abandoned_in_queue += e.calls - agent;
            }
            Some("transfer") => o.transferred += e.calls,
            None if matches!(e.end_reason.as_str(), "caller_hung_up" | "cancelled") => {
                o.hung_up_in_menus += e.calls
            }
            _ => o.other += e.calls,
        }
    }
    o
}

fn callbacks(rows: &[CallbackTimes]) -> CallbackReport {
    let mut times: Vec<u64> = rows
        .iter()
        .filter_map(|c| c.resolved_at.map(|r| r.saturating_sub(c.received_at)))
        .collect();
    times.sort_unstable();
    let n = times.len();
    let median = match n {
        0 => None,
        _ if n % 2 == 1 => Some(times[n / 2]),
        _ => Some((times[n / 2 - 1] + times[n / 2]) / 2),
    };
    CallbackReport {
        created: rows.len() as u64,
        resolved: n as u64,
        median_resolve_secs: median,
    }
}

impl Store {
    /// The sums of the calls `filter` selects, by `GROUP BY` in the store (the same SQL on
    /// SQLite and PostgreSQL), and the callback requests received in its window (those left
    /// in calls of its entry, if it names one).
    pub async fn report_rows(&self, filter: &ReportFilter) -> Result<ReportRows, StoreError> {
        let (from_ms, to_ms) = filter.bounds();
        let window = window_sql(filter);
        let entry = filter.entry.as_deref();
        let q = self.sql(&format!(
            "SELECT c.started_ms / {HOUR_MS} AS hour, COUNT(*) AS n FROM calls c \
             WHERE {window} GROUP BY c.started_ms / {HOUR_MS}"
        ));
        let mut rows = ReportRows::default();
        for r in bind_window(&q, from_ms, to_ms, entry)
            .fetch_all(&self.pool)
            .await?
        {
            rows.hours
                .push((r.try_get("hour")?, r.try_get::<i64, _>("n")? as u64));
        }
        rows.steps = self
            .step_counts(
                &format!(
                    "SELECT s.menu AS menu, s.outcome AS outcome, s.pressed AS pressed, \
                     COUNT(*) AS n FROM call_steps s JOIN calls c ON c.seq = s.call_seq \
                     WHERE {window} GROUP BY s.menu, s.outcome, s.pressed"
                ),
                filter,
            )
            .await?;
        // A call left a request if the one it names is in the store (ids are unique).
        let q = self.sql(&format!(
            "SELECT c.exit_kind AS exit_kind, c.end_reason AS end_reason, COUNT(*) AS n, \
             COUNT(c.agent) AS with_agent, COUNT(r.id) AS with_request FROM calls c \
             LEFT JOIN callback_requests r ON r.id = c.request_id WHERE {window} \
             GROUP BY c.exit_kind, c.end_reason"
        ));
        for r in bind_window(&q, from_ms, to_ms, entry)
            .fetch_all(&self.pool)
            .await?
        {
            rows.ends.push(EndCount {
                exit: r.try_get("exit_kind")?,
                end_reason: r.try_get("end_reason")?,
                calls: r.try_get::<i64, _>("n")? as u64,
                with_agent: r.try_get::<i64, _>("with_agent")? as u64,
                with_request: r.try_get::<i64, _>("with_request")? as u64,
            });
        }
        // The survey answers, by the buckets the report will draw them in.
        let b = survey_bucket_ms(filter, &rows.hours);
        let q = self.sql(&format!(
            "SELECT a.survey AS survey, a.question AS question, \
             (c.started_ms / {b}) * {b} AS bucket, a.outcome AS outcome, a.answer AS answer, \
             MIN(a.idx) AS pos, COUNT(*) AS n \
             FROM call_answers a JOIN calls c ON c.seq = a.call_seq WHERE {window} \
             GROUP BY a.survey, a.question, (c.started_ms / {b}) * {b}, a.outcome, a.answer"
        ));
        for r in bind_window(&q, from_ms, to_ms, entry)
            .fetch_all(&self.pool)
            .await?
        {
            rows.answers.push(AnswerCount {
                survey: r.try_get("survey")?,
                question: r.try_get("question")?,
                bucket_ms: r.try_get("bucket")?,
                outcome: r.try_get("outcome")?,
                answer: r.try_get("answer")?,
                position: r.try_get("pos")?,
                count: r.try_get::<i64, _>("n")? as u64,
            });
        }
        // Requests keep seconds: those received in the window's seconds.
        let secs = |ms: i64| ms.saturating_add(999).div_euclid(1000);
        let by_entry = if entry.is_some() {
            " AND r.call_id IN (SELECT c.call_id FROM calls c WHERE c.entry = ?)"
        } else {
            ""
        };
        let q = self.sql(&format!(
            "SELECT r.received_at AS received_at, (SELECT MIN(h.at) FROM callback_history h \
             WHERE h.request_id = r.id AND h.action = 'status' AND h.detail = 'resolved') \
             AS resolved_at FROM callback_requests r \
             WHERE r.received_at >= ? AND r.received_at < ?{by_entry} LIMIT {MAX_CALLBACKS}"
        ));
        let mut query = sqlx::query(&q).bind(secs(from_ms)).bind(secs(to_ms));
        if let Some(e) = entry {
            query = query.bind(e.to_string());
        }
        for r in query.fetch_all(&self.pool).await? {
            let resolved: Option<i64> = r.try_get("resolved_at")?;
            rows.callbacks.push(CallbackTimes {
                received_at: r.try_get::<i64, _>("received_at")?.max(0) as u64,
                resolved_at: resolved.map(|t| t.max(0) as u64),
            });
        }
        rows.sort();
        Ok(rows)
    }

    /// The rows of `q` (`menu`, `outcome`, `pressed`, `n`, over `filter`'s window) as
    /// [`StepCount`]s.
    async fn step_counts(
        &self,
        q: &str,
        filter: &ReportFilter,
    ) -> Result<Vec<StepCount>, StoreError> {
        let (from_ms, to_ms) = filter.bounds();
        let q = self.sql(q);
        let rows = bind_window(&q, from_ms, to_ms, filter.entry.as_deref())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(StepCount {
                    menu: r.try_get("menu")?,
                    outcome: r.try_get("outcome")?,
                    key: r.try_get("pressed")?,
                    steps: r.try_get::<i64, _>("n")? as u64,
                })
            })
            .collect()
    }

    /// For `ivr graph --stats`: the calls `filter` selects, and per menu and way out the
    /// calls that took it at least once (`outcome` as steps name it, but `invalid` and
    /// `timeout` are one way, `retry`, with no key), in a canonical order.
    pub async fn edge_calls(
        &self,
        filter: &ReportFilter,
    ) -> Result<(u64, Vec<StepCount>), StoreError> {
        let (from_ms, to_ms) = filter.bounds();
        let entry = filter.entry.as_deref();
        let window = window_sql(filter);
        let q = self.sql(&format!("SELECT COUNT(*) AS n FROM calls c WHERE {window}"));
        let calls: i64 = bind_window(&q, from_ms, to_ms, entry)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        let retry = "s.outcome IN ('invalid', 'timeout')";
        let mut ways = self
            .step_counts(
                &format!(
                    "SELECT s.menu AS menu, \
                     CASE WHEN {retry} THEN 'retry' ELSE s.outcome END AS outcome, \
                     CASE WHEN {retry} THEN NULL ELSE s.pressed END AS pressed, \
                     COUNT(DISTINCT s.call_seq) AS n \
                     FROM call_steps s JOIN calls c ON c.seq = s.call_seq WHERE {window} \
                     GROUP BY 1, 2, 3"
                ),
                filter,
            )
            .await?;
        ways.sort_unstable();
        Ok((calls as u64, ways))
    }
}

/// The `WHERE` condition on `calls c` that selects `filter`'s calls (bound by
/// [`bind_window`]).
fn window_sql(filter: &ReportFilter) -> String {
    let by_entry = if filter.entry.is_some() {
        " AND c.entry = ?"
    } else {
        ""
    };
    format!("c.started_ms >= ? AND c.started_ms < ?{by_entry}")
}

/// `q` with the window's bounds (and its entry, if any) bound.
fn bind_window<'q>(
    q: &'q str,
    from_ms: i64,
    to_ms: i64,
    entry: Option<&str>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let q = sqlx::query(q).bind(from_ms).bind(to_ms);
    match entry {
        Some(e) => q.bind(e.to_string()),
        None => q,
    }
}

#[cfg(test)]
#[path = "report_tests.rs"]
pub(crate) mod tests;
