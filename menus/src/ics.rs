//! Holidays from an iCalendar file (RFC 5545): each `VEVENT` is a closed period, recurring by
//! its `RRULE`s, `RDATE`s and `EXDATE`s.
//!
//! Recurrences are expanded by the `rrule` crate. To keep every time zone in one database
//! (jiff's, the one schedules use) and to keep the crate pure, `rrule` only ever sees *civil*
//! times written as UTC, which has no daylight-saving gaps: it computes the local dates and
//! times the rule names (RFC 5545 §3.3.10 works in the `DTSTART`'s local time), and jiff maps
//! each one to an instant in the event's zone. `UNTIL` is read here, not by `rrule`, whose
//! parser would read the machine's local zone for a floating `UNTIL`.
//!
//! Supported: `DTSTART` as a date or a date-time (UTC, floating, or `TZID=` an IANA name);
//! `DTEND` or `DURATION` (several-day events); `RRULE` with `FREQ=YEARLY|MONTHLY|WEEKLY|DAILY`,
//! `COUNT`, `UNTIL`, `INTERVAL`, `BYMONTH`, `BYDAY` (with ordinals: `4TH`, `-1MO`),
//! `BYMONTHDAY`, `BYYEARDAY`, `BYWEEKNO`, `BYSETPOS`, `WKST`; `RDATE` and `EXDATE` (lists, with
//! `TZID` or `VALUE=DATE`); a changed instance (`RECURRENCE-ID` with the master's `UID`)
//! replaces the one the rule gives; `STATUS:CANCELLED` events are left out. Refused with
//! the line: sub-daily frequencies, `EXRULE`,
//! `RDATE;VALUE=PERIOD`, a `TZID` that is not an IANA name (a calendar's own `VTIMEZONE`
//! is not read), a rule that never occurs.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, ToSpan, ZonedDateTime as Zoned};
use rrule::{RRule, RRuleSet, Unvalidated};

/// Why a calendar file cannot be used, with the line (1-based) where it shows.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IcsError {
    /// The text does not start with `BEGIN:VCALENDAR`.
    #[error("1: not an iCalendar file (no BEGIN:VCALENDAR)")]
    NotCalendar,
    /// A content line without a `:` (RFC 5545 §3.1).
    #[error("{line}: not a content line (NAME:VALUE)")]
    BadLine {
        /// The line.
        line: usize,
    },
    /// A `VEVENT` without `DTSTART`.
    #[error("{line}: a VEVENT without DTSTART")]
    NoStart {
        /// The line of its `BEGIN:VEVENT`.
        line: usize,
    },
    /// A date, date-time or duration that does not parse.
    #[error("{line}: {property}: bad value '{value}'")]
    BadValue {
        /// The line.
        line: usize,
        /// The property name.
        property: String,
        /// The value written.
        value: String,
    },
    /// A `TZID` that is not an IANA time zone name.
    #[error("{line}: unknown TZID '{tzid}' (use an IANA name such as America/New_York)")]
    UnknownZone {
        /// The line.
        line: usize,
        /// The zone written.
        tzid: String,
    },
    /// A recurrence rule the `rrule` crate refuses (a bad part or value).
    #[error("{line}: RRULE: {reason}")]
    BadRule {
        /// The line.
        line: usize,
        /// The library's words.
        reason: String,
    },
    /// Something valid in iCalendar that holidays do not support.
    #[error("{line}: {what} is not supported")]
    Unsupported {
        /// The line.
        line: usize,
        /// What was written.
        what: String,
    },
    /// An end before the start.
    #[error("{line}: the event ends before it starts")]
    EndsBeforeStart {
        /// The line.
        line: usize,
    },
    /// A rule whose recurrence set is empty (for example `BYMONTH=2;BYMONTHDAY=30`).
    #[error("{line}: the rule never occurs")]
    NeverOccurs {
        /// The line of the `RRULE`.
        line: usize,
    },
}

/// One `VEVENT`: a closed period and how it recurs.
#[derive(Debug, Clone)]
pub struct Event {
    kind: Kind,
    /// Occurrence starts as civil times written as UTC (see the module notes).
    set: RRuleSet,
    /// Days excluded by an `EXDATE` date on a timed event: every start on them.
    skip: Vec<Date>,
}

#[derive(Debug, Clone)]
enum Kind {
    /// Whole days in the schedule's zone, from each occurrence's date, `days` long.
    AllDay { days: i64 },
    /// From each occurrence's local time in `zone` for `length` (calendar-aware, so a
    /// one-day event is one local day long across a daylight-saving change).
    Timed { zone: TimeZone, length: Span },
    /// A date-time start without an end: the whole local day of the start, in the
    /// schedule's zone (RFC 5545 would make it zero long; as a holiday that means nothing).
    DayOfStart { zone: TimeZone },
}

impl Event {
    /// Whether `t` falls in an occurrence; `local` is `t` in the schedule's zone.
    ///
    /// Occurrences are expanded from `DTSTART` but only looked at within a few days of `t`:
    /// the window is bounded by the event's length, and iteration stops past it.
    pub fn covers(&self, t: Timestamp, local: &Zoned) -> bool {
        match &self.kind {
            Kind::AllDay { days } => {
                let today = local.date();
                let first = today.checked_sub(days.days()).unwrap_or(Date::MIN);
                self.starts_until(today.at(23, 59, 59, 0))
                    .map(|c| c.date())
                    .any(|d| d > first && d <= today)
            }
            Kind::Timed { zone, length } => {
                let now = t.to_zoned_datetime(zone.clone()).datetime();
                // A start more than the length (plus a day for daylight saving) before `t`
                // cannot cover it.
                let lo = now
                    .checked_sub(*length)
                    .and_then(|d| d.checked_sub(1.day()))
                    .unwrap_or(DateTime::MIN);
                self.starts_until(now.checked_add(1.day()).unwrap_or(DateTime::MAX))
                    .filter(|c| *c >= lo)
                    .any(|c| {
                        let Ok(start) = c.to_zoned_datetime(zone.clone()) else {
                            return false;
                        };
                        let end = start.checked_add(*length).map(|e| e.timestamp());
                        start.timestamp() <= t && end.is_ok_and(|e| t < e)
                    })
            }
            Kind::DayOfStart { zone } => {
                let today = local.date();
                let now = t.to_zoned_datetime(zone.clone()).datetime();
                let lo = now.checked_sub(2.days()).unwrap_or(DateTime::MIN);
                self.starts_until(now.checked_add(2.days()).unwrap_or(DateTime::MAX))
                    .filter(|c| *c >= lo)
                    .filter_map(|c| c.to_zoned_datetime(zone.clone()).ok())
                    .any(|s| s.with_time_zone(local.time_zone().clone()).date() == today)
            }
        }
    }

    /// Occurrence starts (civil) from the first one up to `last`, inclusive.
    fn starts_until(&self, last: DateTime) -> impl Iterator<Item = DateTime> + '_ {
        (&self.set)
            .into_iter()
            .map_while(|d| from_rrule(&d))
            .take_while(move |c| *c <= last)
            .filter(|c| !self.skip.contains(&c.date()))
    }
}

/// Read the events of a calendar. `zone` is the schedule's, used for floating times.
pub fn parse(text: &str, zone: &TimeZone) -> Result<Vec<Event>, IcsError> {
    let lines = unfold(text);
    if lines
        .first()
        .is_none_or(|(_, l)| !l.eq_ignore_ascii_case("BEGIN:VCALENDAR"))
    {
        return Err(IcsError::NotCalendar);
    }
    let mut raws = Vec::new();
    // Components open around the current line; properties count only directly in a VEVENT.
    let mut stack: Vec<String> = Vec::new();
    let mut event: Option<Raw> = None;
    for (n, text) in &lines {
        let line = Line::split(text, *n)?;
        match line.name.as_str() {
            "BEGIN" => {
                let what = line.value.to_ascii_uppercase();
                if what == "VEVENT" && stack.last().is_some_and(|c| c == "VCALENDAR") {
                    event = Some(Raw {
                        line: *n,
                        ..Raw::default()
                    });
                }
                stack.push(what);
            }
            "END" => {
                let what = line.value.to_ascii_uppercase();
                if stack.pop().as_deref() == Some("VEVENT")
                    && what == "VEVENT"
                    && let Some(raw) = event.take()
                {
                    raws.push(raw);
                }
            }
            _ if stack.last().is_some_and(|c| c == "VEVENT") => {
                if let Some(raw) = event.as_mut() {
                    raw.take(line)?;
                }
            }
            _ => {}
        }
    }
    // A changed instance of a recurring event (same UID, with RECURRENCE-ID) replaces the
    // instance the rule would give (RFC 5545 §3.8.4.4): the original date is excluded.
    let moved: Vec<(String, When, usize)> = raws
        .iter()
        .filter_map(|r| Some((r.uid.clone()?, r.recurrence_id.clone()?)))
        .map(|(uid, (when, n))| (uid, when, n))
        .collect();
    for (uid, when, n) in moved {
        if let Some(master) = raws
            .iter_mut()
            .find(|r| r.recurrence_id.is_none() && r.uid.as_deref() == Some(uid.as_str()))
        {
            master.exdates.push((when, n));
        }
    }
    raws.into_iter()
        .filter(|r| !r.cancelled)
        .map(|r| r.compile(zone))
        .collect()
}

/// Unfold (RFC 5545 §3.1): a line starting with a space or tab continues the previous one.
/// Each logical line keeps the number of its first physical line.
fn unfold(text: &str) -> Vec<(usize, String)> {
    let mut lines: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        match raw.strip_prefix([' ', '\t']) {
            Some(more) if !lines.is_empty() => {
                if let Some((_, last)) = lines.last_mut() {
                    last.push_str(more.trim_end_matches('\r'));
                }
            }
            _ if raw.trim().is_empty() => {}
            _ => lines.push((i + 1, raw.trim_end().to_string())),
        }
    }
    lines
}

/// One content line: `NAME;PARAM=VALUE;...:VALUE` (RFC 5545 §3.1).
struct Line {
    n: usize,
    name: String,
    params: Vec<(String, String)>,
    value: String,
}

impl Line {
    fn split(text: &str, n: usize) -> Result<Line, IcsError> {
        // The value starts at the first ':' outside a quoted parameter value.
        let mut quoted = false;
        let colon = text
            .char_indices()
            .find(|(_, c)| {
                if *c == '"' {
                    quoted = !quoted;
                }
                *c == ':' && !quoted
            })
            .map(|(i, _)| i)
            .ok_or(IcsError::BadLine { line: n })?;
        let (head, value) = (&text[..colon], &text[colon + 1..]);
        let mut parts = head.split(';');
        let name = parts.next().unwrap_or_default().trim().to_ascii_uppercase();
        let params = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| {
                (
                    k.trim().to_ascii_uppercase(),
                    v.trim_matches('"').to_string(),
                )
            })
            .collect();
        Ok(Line {
            n,
            name,
            params,
            value: value.to_string(),
        })
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn bad(&self, value: &str) -> IcsError {
        IcsError::BadValue {
            line: self.n,
            property: self.name.clone(),
            value: value.to_string(),
        }
    }

    /// The zone of `TZID=`, if given.
    fn zone(&self) -> Result<Option<TimeZone>, IcsError> {
        self.param("TZID")
            .map(|tzid| {
                TimeZone::get(tzid).map_err(|_| IcsError::UnknownZone {
                    line: self.n,
                    tzid: tzid.to_string(),
                })
            })
            .transpose()
    }

    /// The value(s) as dates or date-times (RFC 5545 §3.3.4, §3.3.5).
    fn when(&self) -> Result<Vec<When>, IcsError> {
        if self
            .param("VALUE")
            .is_some_and(|v| v.eq_ignore_ascii_case("PERIOD"))
        {
            return Err(IcsError::Unsupported {
                line: self.n,
                what: format!("{};VALUE=PERIOD", self.name),
            });
        }
        let zone = self.zone()?;
        self.value
            .split(',')
            .map(|v| When::parse(v.trim(), zone.clone()).ok_or_else(|| self.bad(v)))
            .collect()
    }
}

/// A `DATE` or `DATE-TIME` value.
#[derive(Debug, Clone)]
enum When {
    Date(Date),
    /// Local time in a zone (from `TZID`), in UTC (`Z`), or floating (`None`).
    Time(DateTime, Option<TimeZone>),
}

impl When {
    fn parse(v: &str, zone: Option<TimeZone>) -> Option<When> {
        let num = |s: &str| -> Option<i16> {
            s.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| s.parse().ok())?
        };
        let date = Date::new(
            num(v.get(..4)?)?,
            num(v.get(4..6)?)? as i8,
            num(v.get(6..8)?)? as i8,
        )
        .ok()?;
        if v.len() == 8 {
            return Some(When::Date(date));
        }
        let rest = v.get(8..)?.strip_prefix('T')?;
        let (rest, utc) = match rest.strip_suffix('Z') {
            Some(r) => (r, true),
            None => (rest, false),
        };
        if rest.len() != 6 || !rest.is_ascii() {
            return None;
        }
        let time = Time::new(
            num(&rest[..2])? as i8,
            num(&rest[2..4])? as i8,
            // A leap second (60) is read as the last second of the minute.
            (num(&rest[4..6])? as i8).min(59),
            0,
        )
        .ok()?;
        let zone = if utc { Some(TimeZone::UTC) } else { zone };
        Some(When::Time(date.to_datetime(time), zone))
    }
}

/// A VEVENT's properties as read, before they are put together.
#[derive(Default)]
struct Raw {
    line: usize,
    start: Option<(When, usize)>,
    end: Option<(When, usize)>,
    duration: Option<(Span, usize)>,
    rules: Vec<(String, usize)>,
    rdates: Vec<(When, usize)>,
    exdates: Vec<(When, usize)>,
    uid: Option<String>,
    recurrence_id: Option<(When, usize)>,
    /// `STATUS:CANCELLED`: the event does not take place.
    cancelled: bool,
}

impl Raw {
    fn take(&mut self, line: Line) -> Result<(), IcsError> {
        let one = |line: &Line| -> Result<When, IcsError> {
            let mut w = line.when()?;
            match (w.pop(), w.is_empty()) {
                (Some(w), true) => Ok(w),
                _ => Err(line.bad(&line.value)),
            }
        };
        match line.name.as_str() {
            "DTSTART" => self.start = Some((one(&line)?, line.n)),
            "DTEND" => self.end = Some((one(&line)?, line.n)),
            "DURATION" => {
                let span: Span = line.value.parse().map_err(|_| line.bad(&line.value))?;
                if span.is_negative() {
                    return Err(IcsError::EndsBeforeStart { line: line.n });
                }
                self.duration = Some((span, line.n));
            }
            "RRULE" => self.rules.push((line.value.clone(), line.n)),
            "UID" => self.uid = Some(line.value.clone()),
            "RECURRENCE-ID" => self.recurrence_id = Some((one(&line)?, line.n)),
            "STATUS" => self.cancelled = line.value.eq_ignore_ascii_case("CANCELLED"),
            "RDATE" => self
                .rdates
                .extend(line.when()?.into_iter().map(|w| (w, line.n))),
            "EXDATE" => self
                .exdates
                .extend(line.when()?.into_iter().map(|w| (w, line.n))),
            "EXRULE" => {
                return Err(IcsError::Unsupported {
                    line: line.n,
                    what: "EXRULE (deprecated by RFC 5545; use EXDATE)".into(),
                });
            }
            _ => {}
        }
        Ok(())
    }

    fn compile(self, zone: &TimeZone) -> Result<Event, IcsError> {
        let (start, start_line) = self.start.ok_or(IcsError::NoStart { line: self.line })?;
        // The event's zone and kind, and DTSTART as a civil time.
        let (kind, first) = match &start {
            When::Date(d) => {
                let days = match (&self.end, &self.duration) {
                    (Some((When::Date(e), n)), _) => {
                        let days = (*e - *d).get_days() as i64;
                        if days < 0 {
                            return Err(IcsError::EndsBeforeStart { line: *n });
                        }
                        // DTEND is exclusive; an end on the start day still means that day.
                        days.max(1)
                    }
                    (Some((When::Time(..), n)), _) => {
                        return Err(IcsError::BadValue {
                            line: *n,
                            property: "DTEND".into(),
                            value: "a date-time for an all-day DTSTART".into(),
                        });
                    }
                    (None, Some((span, n))) => whole_days(span).ok_or(IcsError::BadValue {
                        line: *n,
                        property: "DURATION".into(),
                        value: format!("{span} (an all-day event lasts whole days or weeks)"),
                    })?,
                    (None, None) => 1,
                };
                (Kind::AllDay { days }, d.to_datetime(Time::midnight()))
            }
            When::Time(dt, z) => {
                let ez = z.clone().unwrap_or_else(|| zone.clone());
                let length = match (&self.end, &self.duration) {
                    (Some((end, n)), _) => {
                        let end = match end {
                            When::Time(e, ez2) => at_in(*e, ez2.as_ref().unwrap_or(&ez), &ez, *n)?,
                            When::Date(e) => e.to_datetime(Time::midnight()),
                        };
                        if end < *dt {
                            return Err(IcsError::EndsBeforeStart { line: *n });
                        }
                        Some(
                            dt.until(end)
                                .map_err(|_| IcsError::EndsBeforeStart { line: *n })?,
                        )
                    }
                    (None, Some((span, _))) => Some(*span),
                    (None, None) => None,
                };
                let kind = match length {
                    Some(length) => Kind::Timed {
                        zone: ez.clone(),
                        length,
                    },
                    None => Kind::DayOfStart { zone: ez.clone() },
                };
                (kind, *dt)
            }
        };
        let all_day = matches!(kind, Kind::AllDay { .. });
        let event_zone = match &kind {
            Kind::Timed { zone, .. } | Kind::DayOfStart { zone } => zone.clone(),
            Kind::AllDay { .. } => zone.clone(),
        };
        // A civil time for the rule, from a value written in any zone.
        let civil = |w: &When, n: usize| -> Result<DateTime, IcsError> {
            match (w, all_day) {
                (When::Date(d), _) => Ok(d.to_datetime(Time::midnight())),
                (When::Time(dt, _), true) => Ok(dt.date().to_datetime(Time::midnight())),
                (When::Time(dt, z), false) => {
                    at_in(*dt, z.as_ref().unwrap_or(&event_zone), &event_zone, n)
                }
            }
        };
        let dtstart = to_rrule(first, start_line)?;
        let mut set = RRuleSet::new(dtstart).limit();
        for (text, n) in &self.rules {
            let rule = rule(text, *n, all_day, &event_zone, zone)?;
            let rule = rule.validate(dtstart).map_err(|e| IcsError::BadRule {
                line: *n,
                reason: e.to_string(),
            })?;
            set = set.rrule(rule);
        }
        if self.rules.is_empty() {
            set = set.rdate(dtstart);
        }
        for (w, n) in &self.rdates {
            set = set.rdate(to_rrule(civil(w, *n)?, *n)?);
        }
        let mut skip = Vec::new();
        for (w, n) in &self.exdates {
            match w {
                When::Date(d) if !all_day => skip.push(*d),
                _ => set = set.exdate(to_rrule(civil(w, *n)?, *n)?),
            }
        }
        if let Some((_, n)) = self.rules.first()
            && self.rdates.is_empty()
            && (&set).into_iter().next().is_none()
        {
            return Err(IcsError::NeverOccurs { line: *n });
        }
        Ok(Event { kind, set, skip })
    }
}

/// Whole days in a duration (`P3D`, `P1W`), for all-day events.
fn whole_days(span: &Span) -> Option<i64> {
    let time = span.get_hours() != 0
        || span.get_minutes() != 0
        || span.get_seconds() != 0
        || span.get_months() != 0
        || span.get_years() != 0;
    let days = i64::from(span.get_weeks()) * 7 + i64::from(span.get_days());
    (!time && days > 0).then_some(days)
}

/// `dt`, written in zone `from`, as a civil time in zone `to`.
fn at_in(dt: DateTime, from: &TimeZone, to: &TimeZone, line: usize) -> Result<DateTime, IcsError> {
    dt.to_zoned_datetime(from.clone())
        .map(|z| z.with_time_zone(to.clone()).datetime())
        .map_err(|_| IcsError::BadValue {
            line,
            property: "date-time".into(),
            value: dt.to_string(),
        })
}

/// An `RRULE` value for `rrule`, with `UNTIL` read here (see the module notes).
fn rule(
    text: &str,
    n: usize,
    all_day: bool,
    event_zone: &TimeZone,
    zone: &TimeZone,
) -> Result<RRule<Unvalidated>, IcsError> {
    // The RRULE grammar is ASCII (RFC 5545 §3.3.10), and rrule 0.14 slices a BYDAY value
    // by bytes, which panics inside a multi-byte character (found by the `ics` fuzz target).
    if !text.is_ascii() {
        return Err(IcsError::BadRule {
            line: n,
            reason: "not ASCII text".into(),
        });
    }
    let mut until = None;
    let mut parts = Vec::new();
    for part in text.split(';') {
        match part.split_once('=') {
            Some((k, v)) if k.trim().eq_ignore_ascii_case("UNTIL") => until = Some(v.trim()),
            Some((k, v)) if k.trim().eq_ignore_ascii_case("FREQ") => {
                let v = v.trim().to_ascii_uppercase();
                if matches!(v.as_str(), "HOURLY" | "MINUTELY" | "SECONDLY") {
                    return Err(IcsError::Unsupported {
                        line: n,
                        what: format!("FREQ={v} (holidays recur at most daily)"),
                    });
                }
                parts.push(part);
            }
            _ => parts.push(part),
        }
    }
    let bad = |reason: String| IcsError::BadRule { line: n, reason };
    let mut rule: RRule<Unvalidated> = parts
        .join(";")
        .parse()
        .map_err(|e: rrule::RRuleError| bad(e.to_string()))?;
    if let Some(u) = until {
        let w = When::parse(u, None).ok_or_else(|| bad(format!("bad UNTIL '{u}'")))?;
        let civil = match (w, all_day) {
            (When::Date(d), _) => d.to_datetime(Time::MAX),
            // A date-time UNTIL of an all-day event: its day in the schedule's zone.
            (When::Time(dt, z), true) => at_in(dt, z.as_ref().unwrap_or(zone), zone, n)?
                .date()
                .to_datetime(Time::MAX),
            (When::Time(dt, z), false) => {
                at_in(dt, z.as_ref().unwrap_or(event_zone), event_zone, n)?
            }
        };
        rule = rule.until(to_rrule(civil, n)?);
    }
    Ok(rule)
}

/// A civil time as the UTC `DateTime` that `rrule` computes with.
fn to_rrule(c: DateTime, line: usize) -> Result<chrono::DateTime<rrule::Tz>, IcsError> {
    chrono::NaiveDate::from_ymd_opt(c.year().into(), c.month() as u32, c.day() as u32)
        .and_then(|d| d.and_hms_opt(c.hour() as u32, c.minute() as u32, c.second() as u32))
        .map(|n| n.and_utc().with_timezone(&rrule::Tz::UTC))
        .ok_or_else(|| IcsError::BadValue {
            line,
            property: "date-time".into(),
            value: c.to_string(),
        })
}

/// Back from `rrule`: `None` past the years jiff represents (which ends an iteration).
fn from_rrule(d: &chrono::DateTime<rrule::Tz>) -> Option<DateTime> {
    use chrono::{Datelike, Timelike};
    let n = d.naive_utc();
    let date = Date::new(
        i16::try_from(n.year()).ok()?,
        n.month() as i8,
        n.day() as i8,
    )
    .ok()?;
    let time = Time::new(n.hour() as i8, n.minute() as i8, n.second() as i8, 0).ok()?;
    Some(date.to_datetime(time))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ny() -> TimeZone {
        TimeZone::get("America/New_York").unwrap()
    }

    fn calendar(events: &str) -> String {
        format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n{events}END:VCALENDAR\r\n")
    }

    /// The dates of `year` (in New York) that the calendar's events cover at 12:00 local.
    fn days(events: &str, year: i16) -> Vec<String> {
        let evs = parse(&calendar(events), &ny()).unwrap();
        let mut out = Vec::new();
        let mut d = Date::new(year, 1, 1).unwrap();
        while d.year() == year {
            let local = d.at(12, 0, 0, 0).to_zoned_datetime(ny()).unwrap();
            if evs.iter().any(|e| e.covers(local.timestamp(), &local)) {
                out.push(d.to_string());
            }
            d = d.tomorrow().unwrap();
        }
        out
    }

    fn ev(props: &str) -> String {
        format!("BEGIN:VEVENT\r\n{props}END:VEVENT\r\n")
    }

    #[test]
    fn ordinal_weekdays_move_with_the_year() {
        let thanksgiving =
            ev("DTSTART;VALUE=DATE:20261126\r\nRRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4TH\r\n");
        let memorial =
            ev("DTSTART;VALUE=DATE:20260525\r\nRRULE:FREQ=YEARLY;BYMONTH=5;BYDAY=-1MO\r\n");
        for (year, t, m) in [
            (2026, "2026-11-26", "2026-05-25"),
            (2027, "2027-11-25", "2027-05-31"),
            (2028, "2028-11-23", "2028-05-29"),
            (2029, "2029-11-22", "2029-05-28"),
            (2030, "2030-11-28", "2030-05-27"),
        ] {
            assert_eq!(days(&thanksgiving, year), vec![t]);
            assert_eq!(days(&memorial, year), vec![m]);
        }
        assert!(
            days(&thanksgiving, 2025).is_empty(),
            "nothing before DTSTART"
        );
    }

    #[test]
    fn count_until_interval_monthday_and_exdate() {
        let count = ev("DTSTART;VALUE=DATE:20260206\r\nRRULE:FREQ=MONTHLY;BYDAY=1FR;COUNT=3\r\n");
        assert_eq!(
            days(&count, 2026),
            ["2026-02-06", "2026-03-06", "2026-04-03"]
        );
        let until = ev(
            "DTSTART;VALUE=DATE:20260115\r\nRRULE:FREQ=MONTHLY;INTERVAL=2;BYMONTHDAY=15;UNTIL=20260715\r\n",
        );
        assert_eq!(
            days(&until, 2026),
            ["2026-01-15", "2026-03-15", "2026-05-15", "2026-07-15"]
        );
        let ex = ev(
            "DTSTART;VALUE=DATE:20260112\r\nRRULE:FREQ=YEARLY;BYMONTH=1;BYDAY=2MO\r\nEXDATE;VALUE=DATE:20280110,20300114\r\n",
        );
        assert_eq!(days(&ex, 2027), ["2027-01-11"]);
        assert!(days(&ex, 2028).is_empty());
        assert_eq!(days(&ex, 2029), ["2029-01-08"]);
        assert!(days(&ex, 2030).is_empty());
        let rdate = ev("DTSTART;VALUE=DATE:20260102\r\nRDATE;VALUE=DATE:20260305\r\n");
        assert_eq!(days(&rdate, 2026), ["2026-01-02", "2026-03-05"]);
    }

    #[test]
    fn several_day_events_by_end_or_duration() {
        let end = ev(
            "DTSTART;VALUE=DATE:20261007\r\nDTEND;VALUE=DATE:20261010\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=1WE\r\n",
        );
        assert_eq!(days(&end, 2027), ["2027-10-06", "2027-10-07", "2027-10-08"]);
        let dur = ev("DTSTART;VALUE=DATE:20261230\r\nDURATION:P1W\r\n");
        assert_eq!(days(&dur, 2026), ["2026-12-30", "2026-12-31"]);
        assert_eq!(
            days(&dur, 2027).len(),
            5,
            "the week runs into the next year"
        );
    }

    #[test]
    fn timed_events_keep_their_zones_local_time_across_daylight_saving() {
        // 14:00-15:00 London every Tuesday: 09:00 in New York, but 10:00 in the weeks when
        // only America has changed its clocks (March 8-29 and October 25-November 1, 2026).
        let evs = parse(
            &calendar(&ev("DTSTART;TZID=Europe/London:20260106T140000\r\nDTEND;TZID=Europe/London:20260106T150000\r\nRRULE:FREQ=WEEKLY;BYDAY=TU;UNTIL=20271231T235959Z\r\n")),
            &ny(),
        )
        .unwrap();
        let closed = |s: &str| {
            let local: Zoned = format!("{s}[America/New_York]").parse().unwrap();
            evs[0].covers(local.timestamp(), &local)
        };
        assert!(closed("2026-01-13T09:30:00-05:00"));
        assert!(!closed("2026-01-13T10:30:00-05:00"));
        assert!(!closed("2026-03-10T09:30:00-04:00"));
        assert!(closed("2026-03-10T10:30:00-04:00"));
        assert!(closed("2026-04-07T09:30:00-04:00"));
        assert!(closed("2026-10-27T10:30:00-04:00"));
        assert!(!closed("2026-10-27T09:30:00-04:00"));
        assert!(closed("2027-11-30T09:30:00-05:00"));
        assert!(!closed("2028-01-04T09:30:00-05:00"), "past UNTIL");
        assert!(!closed("2026-01-14T09:30:00-05:00"), "a Wednesday");
    }

    #[test]
    fn moved_instances_cancelled_events_and_excluded_days_of_timed_events() {
        let master =
            ev("UID:a\r\nDTSTART;VALUE=DATE:20260105\r\nRRULE:FREQ=MONTHLY;BYDAY=1MO;COUNT=3\r\n");
        let moved =
            ev("UID:a\r\nRECURRENCE-ID;VALUE=DATE:20260202\r\nDTSTART;VALUE=DATE:20260203\r\n");
        let cancelled = ev("UID:b\r\nSTATUS:CANCELLED\r\nDTSTART;VALUE=DATE:20260401\r\n");
        assert_eq!(
            days(&format!("{master}{moved}{cancelled}"), 2026),
            ["2026-01-05", "2026-02-03", "2026-03-02"]
        );
        // A date EXDATE on a timed event skips that day's occurrence.
        let timed = ev(
            "DTSTART;TZID=America/New_York:20260105T120000\r\nDURATION:PT1H\r\nRRULE:FREQ=WEEKLY;COUNT=3\r\nEXDATE;VALUE=DATE:20260112\r\n",
        );
        assert_eq!(days(&timed, 2026), ["2026-01-05", "2026-01-19"]);
    }

    #[test]
    fn date_times_without_an_end_close_their_whole_day() {
        let e = ev("DTSTART:20261111T090000Z\r\n");
        assert_eq!(days(&e, 2026), ["2026-11-11"]);
    }

    #[test]
    fn folded_lines_quoted_parameters_and_nested_components() {
        let e = "BEGIN:VEVENT\r\nSUMMARY:Folded\r\n  over two lines\r\nDTSTART;TZID=\"America/New_York\";X-NOTE=\"a:b\":20260704T000000\r\nDTEND;TZID=America/New_York:20260705T000000\r\nBEGIN:VALARM\r\nTRIGGER:-PT15M\r\nDTSTART:bogus\r\nEND:VALARM\r\nEND:VEVENT\r\n";
        assert_eq!(days(e, 2026), ["2026-07-04"]);
    }

    #[test]
    fn broken_and_unsupported_rules_say_their_line() {
        let err = |props: &str| parse(&calendar(&ev(props)), &ny()).unwrap_err().to_string();
        // Line 1 is BEGIN:VCALENDAR, 2 VERSION, 3 BEGIN:VEVENT, 4 DTSTART, 5 the next.
        let start = "DTSTART;VALUE=DATE:20260101\r\n";
        let e = err(&format!("{start}RRULE:FREQ=YEARLY;BYDAY=4XX\r\n"));
        assert!(e.starts_with("5: RRULE: "), "{e}");
        let e = err(&format!("{start}RRULE:FREQ=YEARLY;BYMONTH=13\r\n"));
        assert!(e.starts_with("5: RRULE: ") && e.contains("BYMONTH"), "{e}");
        assert_eq!(
            err(&format!("{start}RRULE:FREQ=HOURLY\r\n")),
            "5: FREQ=HOURLY (holidays recur at most daily) is not supported"
        );
        assert!(err(&format!("{start}EXRULE:FREQ=YEARLY\r\n")).starts_with("5: EXRULE"));
        assert_eq!(
            err(&format!("{start}RRULE:FREQ=MONTHLY;BYDAY=1\u{e9}\r\n")),
            "5: RRULE: not ASCII text"
        );
        assert_eq!(
            err(&format!(
                "{start}RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30\r\n"
            )),
            "5: the rule never occurs"
        );
        assert_eq!(
            err("DTSTART;TZID=Eastern Standard Time:20260101T090000\r\n"),
            "4: unknown TZID 'Eastern Standard Time' (use an IANA name such as America/New_York)"
        );
        assert_eq!(err("DTSTART:2026\r\n"), "4: DTSTART: bad value '2026'");
        assert_eq!(
            err(&format!("{start}DTEND;VALUE=DATE:20251231\r\n")),
            "5: the event ends before it starts"
        );
        assert_eq!(err("SUMMARY:x\r\n"), "3: a VEVENT without DTSTART");
        assert!(
            err(&format!(
                "{start}RDATE;VALUE=PERIOD:20260101T000000Z/PT1H\r\n"
            ))
            .contains("VALUE=PERIOD")
        );
        assert_eq!(
            parse("hello", &ny()).unwrap_err().to_string(),
            "1: not an iCalendar file (no BEGIN:VCALENDAR)"
        );
    }
}
