//! Opening hours and holidays in a time zone: `schedules:` and the router menus that use them.
//!
//! ```yaml
//! schedules:
//!   office:
//!     timezone: Europe/Paris          # IANA name; the tz database is built in
//!     hours:
//!       mon-fri: ["09:00-12:30", "14:00-18:00"]
//!       sat: ["09:00-12:00"]
//!     holidays:
//!       - 2026-12-25                  # a whole day
//!       - 2026-12-24 from 12:00       # a half day: closed from noon
//!       - 2026-08-01..2026-08-15      # a range of days, inclusive
//!       - every 05-01                 # the same day every year
//! ```
//!
//! The state at an instant is computed in the schedule's zone, so daylight-saving changes
//! move nothing: "09:00" is nine on the local clock in winter and in summer.

use crate::error::ErrorKind;
use crate::yaml::{Node, Walker, join};
use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;

/// Whether a schedule is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Within opening hours.
    Open,
    /// Outside opening hours.
    Closed,
    /// A holiday (or the closed part of a half day).
    Holiday,
}

/// A compiled schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Its name in the config.
    pub name: String,
    zone: TimeZone,
    /// Opening ranges per weekday, Monday first.
    hours: [Vec<(Time, Time)>; 7],
    holidays: Vec<Holiday>,
}

#[derive(Debug, Clone)]
enum Holiday {
    /// From `from` (midnight for a whole day) to the end of that day.
    Day { date: Date, from: Time },
    /// Every day from `first` to `last`, inclusive.
    Range { first: Date, last: Date },
    /// The same month and day every year.
    Yearly { month: i8, day: i8 },
    /// An event of an iCalendar file, which may recur.
    Calendar(Box<crate::ics::Event>),
}

impl Schedule {
    /// The state at `t`.
    pub fn state_at(&self, t: Timestamp) -> State {
        let local = t.to_zoned_datetime(self.zone.clone());
        let (date, time) = (local.date(), local.time());
        let holiday = self.holidays.iter().any(|h| match h {
            Holiday::Day { date: d, from } => *d == date && time >= *from,
            Holiday::Range { first, last } => (*first..=*last).contains(&date),
            Holiday::Yearly { month, day } => date.month() == *month && date.day() == *day,
            Holiday::Calendar(event) => event.covers(t, &local),
        });
        if holiday {
            return State::Holiday;
        }
        let day = date.weekday().to_monday_zero_offset() as usize;
        if self.hours[day]
            .iter()
            .any(|(open, close)| time >= *open && time < *close)
        {
            State::Open
        } else {
            State::Closed
        }
    }
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Compile `schedules:`; every problem is recorded in `w`.
pub fn compile_schedules(
    w: &mut Walker,
    node: &Node,
    load: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>,
) -> Vec<Schedule> {
    let mut out = Vec::new();
    let Some(fields) = w.map(node, "schedules", None) else {
        return out;
    };
    for (name, s) in fields.iter() {
        let path = join("schedules", name);
        let Some(f) = w.map(
            s,
            &path,
            Some(&["timezone", "hours", "holidays", "holidays_ics"]),
        ) else {
            continue;
        };
        let zone = match f.get("timezone") {
            Some(z) => match w.string(z, &join(&path, "timezone")) {
                Some(zname) => match TimeZone::get(&zname) {
                    Ok(tz) => tz,
                    Err(_) => {
                        w.error(z.at, &join(&path, "timezone"), ErrorKind::Choice { got: zname, allowed: "an IANA time zone name (Europe/Paris, America/New_York...)" });
                        TimeZone::UTC
                    }
                },
                None => TimeZone::UTC,
            },
            None => {
                w.error(s.at, &path, ErrorKind::Missing("timezone"));
                TimeZone::UTC
            }
        };
        let mut hours: [Vec<(Time, Time)>; 7] = Default::default();
        if let Some(h) = f.get("hours") {
            let hpath = join(&path, "hours");
            if let Some(days) = w.map(h, &hpath, None) {
                for (spec, ranges) in days.iter() {
                    let dpath = join(&hpath, spec);
                    let Some(which) = day_set(spec) else {
                        w.error(
                            ranges.at,
                            &dpath,
                            ErrorKind::Choice {
                                got: spec.to_string(),
                                allowed: "mon..sun, or a range like mon-fri",
                            },
                        );
                        continue;
                    };
                    for (text, at) in w.names(ranges, &dpath) {
                        match time_range(&text) {
                            Some(r) => which.iter().for_each(|d| hours[*d].push(r)),
                            None => w.error(
                                at,
                                &dpath,
                                ErrorKind::Choice {
                                    got: text,
                                    allowed: "HH:MM-HH:MM with the start before the end",
                                },
                            ),
                        }
                    }
                }
            }
        }
        let mut holidays = Vec::new();
        if let Some(h) = f.get("holidays") {
            let hpath = join(&path, "holidays");
            for (text, at) in w.names(h, &hpath) {
                match holiday(&text) {
                    Some(d) => holidays.push(d),
                    None => w.error(at, &hpath, ErrorKind::Choice {
                        got: text,
                        allowed: "YYYY-MM-DD, YYYY-MM-DD from HH:MM, YYYY-MM-DD..YYYY-MM-DD, or every MM-DD",
                    }),
                }
            }
        }
        if let Some(n) = f.get("holidays_ics") {
            let ipath = join(&path, "holidays_ics");
            for (file, at) in w.names(n, &ipath) {
                let text = load(&file)
                    .and_then(|b| String::from_utf8(b).map_err(|_| "not UTF-8 text".to_string()));
                match text.map(|t| crate::ics::parse(&t, &zone)) {
                    Ok(Ok(events)) => {
                        holidays.extend(events.into_iter().map(|e| Holiday::Calendar(Box::new(e))))
                    }
                    Ok(Err(error)) => w.error(at, &ipath, ErrorKind::Calendar { file, error }),
                    Err(reason) => w.error(at, &ipath, ErrorKind::Prompt { file, reason }),
                }
            }
        }
        out.push(Schedule {
            name: name.to_string(),
            zone,
            hours,
            holidays,
        });
    }
    out
}

/// `mon`, `sat`, `mon-fri`, `fri-mon` (wrapping) -> weekday indexes (Monday = 0).
fn day_set(spec: &str) -> Option<Vec<usize>> {
    let idx = |d: &str| DAYS.iter().position(|x| x.eq_ignore_ascii_case(d.trim()));
    match spec.split_once('-') {
        None => idx(spec).map(|d| vec![d]),
        Some((a, b)) => {
            let (a, b) = (idx(a)?, idx(b)?);
            let mut out = vec![a];
            let mut d = a;
            while d != b {
                d = (d + 1) % 7;
                out.push(d);
            }
            Some(out)
        }
    }
}

/// `09:00-12:30` (the end may be `24:00`, meaning midnight at the end of the day).
fn time_range(text: &str) -> Option<(Time, Time)> {
    let (a, b) = text.split_once('-')?;
    let open: Time = a.trim().parse().ok()?;
    let close: Time = if b.trim() == "24:00" {
        Time::MAX
    } else {
        b.trim().parse().ok()?
    };
    (open < close).then_some((open, close))
}

fn holiday(text: &str) -> Option<Holiday> {
    let text = text.trim();
    if let Some(md) = text.strip_prefix("every ") {
        let (m, d) = md.trim().split_once('-')?;
        let (month, day): (i8, i8) = (m.parse().ok()?, d.parse().ok()?);
        // 2024 is a leap year: this accepts 02-29 and refuses 02-30.
        Date::new(2024, month, day).ok()?;
        return Some(Holiday::Yearly { month, day });
    }
    if let Some((a, b)) = text.split_once("..") {
        let (first, last): (Date, Date) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        return (first <= last).then_some(Holiday::Range { first, last });
    }
    if let Some((d, t)) = text.split_once(" from ") {
        return Some(Holiday::Day {
            date: d.trim().parse().ok()?,
            from: t.trim().parse().ok()?,
        });
    }
    Some(Holiday::Day {
        date: text.parse().ok()?,
        from: Time::midnight(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::load_str;

    fn office() -> Schedule {
        let yaml = r#"
schedules:
  office:
    timezone: Europe/Paris
    hours:
      mon-fri: ["09:00-12:30", "14:00-18:00"]
      sat: ["09:00-12:00"]
    holidays:
      - 2026-12-25
      - 2026-12-24 from 12:00
      - 2026-08-03..2026-08-14
      - every 05-01
"#;
        let root = load_str(yaml).unwrap();
        let mut w = Walker::default();
        let Some(f) = w.map(&root, "", None) else {
            panic!()
        };
        let s = compile_schedules(&mut w, f.get("schedules").unwrap(), &mut |_| {
            Err("no files".into())
        });
        assert!(w.errors.is_empty(), "{:?}", w.errors);
        s.into_iter().next().unwrap()
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn opening_hours_in_the_schedules_zone() {
        let o = office();
        // Tuesday 2026-11-24, Paris is UTC+1 in winter
        assert_eq!(o.state_at(at("2026-11-24T07:59:00Z")), State::Closed); // 08:59 local
        assert_eq!(o.state_at(at("2026-11-24T08:00:00Z")), State::Open); // 09:00
        assert_eq!(o.state_at(at("2026-11-24T11:30:00Z")), State::Closed); // 12:30 lunch
        assert_eq!(o.state_at(at("2026-11-24T13:00:00Z")), State::Open); // 14:00
        assert_eq!(o.state_at(at("2026-11-24T17:00:00Z")), State::Closed); // 18:00
        assert_eq!(o.state_at(at("2026-11-28T10:00:00Z")), State::Open); // Saturday 11:00
        assert_eq!(o.state_at(at("2026-11-29T10:00:00Z")), State::Closed); // Sunday
    }

    #[test]
    fn daylight_saving_changes_keep_local_hours() {
        let o = office();
        // Summer (UTC+2): 09:00 local is 07:00 UTC.
        assert_eq!(o.state_at(at("2026-06-02T06:59:00Z")), State::Closed);
        assert_eq!(o.state_at(at("2026-06-02T07:00:00Z")), State::Open);
        // The Monday after the spring change (2026-03-29) and after the autumn one (2026-10-25).
        assert_eq!(o.state_at(at("2026-03-30T07:00:00Z")), State::Open); // 09:00 CEST
        assert_eq!(o.state_at(at("2026-03-30T06:30:00Z")), State::Closed); // 08:30 CEST
        assert_eq!(o.state_at(at("2026-10-26T08:00:00Z")), State::Open); // 09:00 CET
        assert_eq!(o.state_at(at("2026-10-26T07:30:00Z")), State::Closed); // 08:30 CET
    }

    #[test]
    fn holidays_whole_half_ranges_and_yearly() {
        let o = office();
        assert_eq!(o.state_at(at("2026-12-25T10:00:00Z")), State::Holiday);
        assert_eq!(o.state_at(at("2026-12-24T09:00:00Z")), State::Open); // 10:00, before the half day
        assert_eq!(o.state_at(at("2026-12-24T11:00:00Z")), State::Holiday); // 12:00 local
        assert_eq!(o.state_at(at("2026-08-10T08:00:00Z")), State::Holiday);
        assert_eq!(o.state_at(at("2026-08-17T08:00:00Z")), State::Open);
        assert_eq!(o.state_at(at("2027-05-01T08:00:00Z")), State::Holiday);
        assert_eq!(o.state_at(at("2031-05-01T08:00:00Z")), State::Holiday);
    }

    #[test]
    fn mistakes_are_all_reported() {
        let yaml = "schedules:\n  s:\n    timezone: Europe/Pariss\n    hours:\n      mon-frii: [\"09:00-12:00\"]\n      tue: [\"12:00-09:00\"]\n    holidays: [2026-13-01, every 02-30]\n";
        let root = load_str(yaml).unwrap();
        let mut w = Walker::default();
        let f = w.map(&root, "", None).unwrap();
        compile_schedules(&mut w, f.get("schedules").unwrap(), &mut |_| {
            Err("no files".into())
        });
        let text: Vec<String> = w.errors.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 5, "{text:?}");
        assert!(
            text[0].starts_with(
                "3:15: schedules.s.timezone: 'Europe/Pariss' is not one of an IANA time zone name"
            ),
            "{text:?}"
        );
    }

    #[test]
    fn calendar_files_add_holidays_and_report_lines() {
        let ics = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20261126\r\nRRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4TH\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let broken = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20261126\nRRULE:FREQ=YEARLY;BYDAY=4XX\nEND:VEVENT\nEND:VCALENDAR\n";
        let yaml = "schedules:\n  s:\n    timezone: America/New_York\n    holidays_ics: [good.ics, broken.ics]\n";
        let root = load_str(yaml).unwrap();
        let mut w = Walker::default();
        let f = w.map(&root, "", None).unwrap();
        let s = compile_schedules(&mut w, f.get("schedules").unwrap(), &mut |file| {
            Ok(if file == "good.ics" { ics } else { broken }.into())
        });
        let text: Vec<String> = w.errors.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 1, "{text:?}");
        assert!(
            text[0].starts_with("4:"),
            "the YAML place of the file comes first: {text:?}"
        );
        assert!(
            text[0].contains("schedules.s.holidays_ics: broken.ics:4: RRULE: "),
            "{text:?}"
        );
        // Thanksgiving 2027 is on the 25th (the old reading said the 26th, every year).
        assert_eq!(s[0].state_at(at("2027-11-25T15:00:00Z")), State::Holiday);
        assert_eq!(s[0].state_at(at("2027-11-26T15:00:00Z")), State::Closed);
    }

    #[test]
    fn day_sets() {
        assert_eq!(day_set("mon-fri"), Some(vec![0, 1, 2, 3, 4]));
        assert_eq!(day_set("fri-mon"), Some(vec![4, 5, 6, 0]));
        assert_eq!(day_set("Sun"), Some(vec![6]));
        assert_eq!(day_set("funday"), None);
        assert_eq!(time_range("22:00-24:00").map(|r| r.1), Some(Time::MAX));
    }
}
