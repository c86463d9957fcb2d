//! Session timers (RFC 4028): the `Session-Expires` and `Min-SE` headers, the negotiation a
//! UAS runs on a session refresh request (§9) and a UAC runs on its answer (§7.2, §7.3), and
//! [`SessionTimer`], the sans-IO machine that says when to refresh and when the session is
//! over (§10).
//!
//! `refresher=uac`/`uas` name the roles *in the refresh transaction* (§4): in a re-INVITE or
//! UPDATE we send, we are the UAC. [`Agreement::who`] turns that into [`Who`], from our side.

use crate::header::{HeaderName, Params};
use crate::message::Headers;
use std::fmt;
use std::time::{Duration, Instant};

/// The option tag (RFC 4028 §3) in Supported and Require.
pub const TAG: &str = "timer";

/// The smallest Min-SE the RFC allows, and its default (RFC 4028 §5: 90 seconds).
pub const MIN_SE_FLOOR: u32 = 90;

/// The interval RFC 4028 §4 recommends when nobody asked for one (30 minutes).
pub const RECOMMENDED_INTERVAL: u32 = 1800;

/// Which side of a refresh transaction refreshes (RFC 4028 §4 `refresher`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    /// The UAC of the transaction (the side sending the INVITE or UPDATE).
    Uac,
    /// The UAS of the transaction.
    Uas,
}

impl Refresher {
    fn as_str(self) -> &'static str {
        match self {
            Refresher::Uac => "uac",
            Refresher::Uas => "uas",
        }
    }
}

/// Who refreshes, from our side of the dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// We send the refreshes.
    Local,
    /// The peer does; we only watch the session expire.
    Remote,
}

/// Why a session-timer header cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionTimerError {
    /// The header is not `delta-seconds *(;param)` (RFC 4028 §4, §5).
    #[error("malformed {0}")]
    Malformed(HeaderName),
}

/// A `Session-Expires` value (RFC 4028 §4): the interval and, optionally, who refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExpires {
    /// The session interval, in seconds.
    pub delta: u32,
    /// The `refresher` parameter, if given.
    pub refresher: Option<Refresher>,
}

impl SessionExpires {
    /// Parse `1800;refresher=uac` (unknown parameters are ignored, §4).
    pub fn parse(value: &str) -> Result<SessionExpires, SessionTimerError> {
        let bad = || SessionTimerError::Malformed(HeaderName::SessionExpires);
        let (delta, params) = delta_and_params(value).ok_or_else(bad)?;
        let refresher = match params.get("refresher") {
            None => None,
            Some(Some(v)) if v.eq_ignore_ascii_case("uac") => Some(Refresher::Uac),
            Some(Some(v)) if v.eq_ignore_ascii_case("uas") => Some(Refresher::Uas),
            Some(_) => return Err(bad()),
        };
        Ok(SessionExpires { delta, refresher })
    }
}

impl fmt::Display for SessionExpires {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.delta)?;
        if let Some(r) = self.refresher {
            write!(f, ";refresher={}", r.as_str())?;
        }
        Ok(())
    }
}

/// `delta-seconds *(;param)`.
fn delta_and_params(value: &str) -> Option<(u32, Params)> {
    let (delta, rest) = match value.find(';') {
        Some(i) => (&value[..i], &value[i..]),
        None => (value, ""),
    };
    let delta = delta.trim();
    if delta.is_empty() || !delta.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // delta-seconds may be written larger than 2^32 - 1 (RFC 3261 §25.1 says treat as that).
    let delta = delta
        .parse::<u64>()
        .unwrap_or(u64::MAX)
        .min(u32::MAX.into()) as u32;
    Some((delta, Params::parse(rest).ok()?))
}

/// The `Session-Expires` of a message, if it has one.
pub fn session_expires(headers: &Headers) -> Result<Option<SessionExpires>, SessionTimerError> {
    headers
        .get(&HeaderName::SessionExpires)
        .map(SessionExpires::parse)
        .transpose()
}

/// The `Min-SE` of a message, if it has one (RFC 4028 §5).
pub fn min_se(headers: &Headers) -> Result<Option<u32>, SessionTimerError> {
    headers
        .get(&HeaderName::MinSe)
        .map(|v| {
            delta_and_params(v)
                .map(|(d, _)| d)
                .ok_or(SessionTimerError::Malformed(HeaderName::MinSe))
        })
        .transpose()
}

/// Whether `tag` is among the option tags of the `name` lines (Supported, Require).
pub fn has_option(headers: &Headers, name: &HeaderName, tag: &str) -> bool {
    headers
        .values(name)
        .any(|t| t.trim().eq_ignore_ascii_case(tag))
}

/// Whether the sender of a message supports session timers (RFC 4028 §7.1: `timer` in
/// Supported, or in Require).
pub fn supports_timer(headers: &Headers) -> bool {
    has_option(headers, &HeaderName::Supported, TAG)
        || has_option(headers, &HeaderName::Require, TAG)
}

/// What a UAS will accept and ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Our smallest acceptable interval: requests asking less get 422 with it as Min-SE
    /// (RFC 4028 §9). RFC 4028 §5 puts the floor at 90 s; lower values are for tests.
    pub min_se: u32,
    /// The interval we ask for when the request names none but supports timers, and the
    /// largest we keep when it asks for more (§9 lets the UAS reduce it).
    pub interval: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_se: MIN_SE_FLOOR,
            interval: RECOMMENDED_INTERVAL,
        }
    }
}

/// The outcome of a negotiation: the interval and who refreshes, in the transaction's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreement {
    /// The session interval, in seconds.
    pub interval: u32,
    /// Who refreshes (relative to the transaction that negotiated it).
    pub refresher: Refresher,
    /// Whether the peer supports the extension (it can then be told to refresh, §9).
    pub peer_supports: bool,
}

impl Agreement {
    /// Who refreshes from our side, given whether we were the UAC of the transaction.
    pub fn who(&self, we_are_uac: bool) -> Who {
        match (self.refresher, we_are_uac) {
            (Refresher::Uac, true) | (Refresher::Uas, false) => Who::Local,
            _ => Who::Remote,
        }
    }

    /// The session interval.
    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.interval.into())
    }

    /// Put the agreement in a 2xx we send as UAS (RFC 4028 §9): `Session-Expires` with the
    /// refresher, and `Require: timer` when the UAC must refresh.
    pub fn decorate_response(&self, headers: &mut Headers) {
        let se = SessionExpires {
            delta: self.interval,
            refresher: Some(self.refresher),
        };
        headers.push(HeaderName::SessionExpires, se.to_string());
        if self.refresher == Refresher::Uac {
            headers.push(HeaderName::Require, TAG);
        }
    }
}

/// Why a UAS refuses a session refresh request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 422 Session Interval Too Small, with this `Min-SE` (RFC 4028 §9).
    TooSmall {
        /// Our minimum, for the response's Min-SE.
        min_se: u32,
    },
    /// A session-timer header is malformed: 400.
    Malformed(HeaderName),
}

/// The UAS side of RFC 4028 §9 for an INVITE, re-INVITE or UPDATE: `Ok(None)` when no
/// timer runs (neither side asked, and the UAC does not support it), else the agreement to
/// put in the 2xx; `Err` when the request must be refused.
///
/// - A Session-Expires under our Min-SE is refused with 422 if the UAC supports timers;
///   if not, refusing would only fail the call, so the interval is raised to our minimum
///   (RFC 4028 errata 1687, as §8.1 says for proxies).
/// - A larger interval than we like is reduced, never below the request's Min-SE.
/// - The refresher is the request's choice when the UAC supports timers; otherwise the UAS
///   (the UAC could not refresh). With no choice made, the UAC refreshes when it can (it
///   knows best when its calls end); else we do.
pub fn negotiate_uas(headers: &Headers, policy: &Policy) -> Result<Option<Agreement>, Refusal> {
    let peer_supports = supports_timer(headers);
    let se = session_expires(headers)
        .map_err(|SessionTimerError::Malformed(h)| Refusal::Malformed(h))?;
    let their_min = min_se(headers)
        .map_err(|SessionTimerError::Malformed(h)| Refusal::Malformed(h))?
        .unwrap_or(0);
    let floor = policy.min_se.max(their_min);
    let (interval, asked) = match se {
        Some(se) if se.delta < policy.min_se => {
            if peer_supports {
                return Err(Refusal::TooSmall {
                    min_se: policy.min_se,
                });
            }
            (floor, se.refresher)
        }
        Some(se) => (se.delta.min(policy.interval.max(floor)), se.refresher),
        None if peer_supports => (policy.interval.max(floor), None),
        None => return Ok(None),
    };
    let refresher = match (peer_supports, asked) {
        (false, _) => Refresher::Uas,
        (true, Some(r)) => r,
        (true, None) => Refresher::Uac,
    };
    Ok(Some(Agreement {
        interval,
        refresher,
        peer_supports,
    }))
}

/// The headers of a session refresh request we send as UAC (RFC 4028 §7.4): we offer to
/// refresh, at `interval`, and say we support the extension.
pub fn decorate_request(headers: &mut Headers, interval: u32, min_se: u32) {
    headers.push(HeaderName::Supported, TAG);
    let se = SessionExpires {
        delta: interval,
        refresher: Some(Refresher::Uac),
    };
    headers.push(HeaderName::SessionExpires, se.to_string());
    headers.push(HeaderName::MinSe, min_se.to_string());
}

/// What the answer to our session refresh request means (RFC 4028 §7.2, §7.3, §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The session is refreshed with this agreement (from our side: [`Agreement::who`] with
    /// `we_are_uac = true`).
    Refreshed(Agreement),
    /// The 2xx carried no Session-Expires though the peer supports timers: the session no
    /// longer expires (§7.2).
    TimerOff,
    /// 422: try again with at least this interval (§7.3).
    Retry {
        /// The larger interval to ask for.
        interval: u32,
    },
    /// 408 or 481: the session is gone; send BYE (§10).
    Gone,
    /// Another failure: the session is not refreshed (it may still be before it expires).
    Failed,
}

/// Read the final answer to a refresh we sent with `asked` seconds. `previous` is the
/// agreement in force, kept when a peer that does not support timers answers without one.
pub fn refresh_outcome(
    status: u16,
    headers: &Headers,
    asked: u32,
    previous: &Agreement,
) -> RefreshOutcome {
    match status {
        200..=299 => match session_expires(headers) {
            Ok(Some(se)) => RefreshOutcome::Refreshed(Agreement {
                interval: se.delta,
                refresher: se.refresher.unwrap_or(Refresher::Uac),
                peer_supports: true,
            }),
            _ if supports_timer(headers) => RefreshOutcome::TimerOff,
            // A peer without the extension answers with no Session-Expires; the timer was
            // ours to run (§9: refresher=uas when the UAC lacks it), so it goes on.
            _ => RefreshOutcome::Refreshed(Agreement {
                interval: previous.interval,
                refresher: Refresher::Uac,
                peer_supports: false,
            }),
        },
        422 => match min_se(headers) {
            Ok(Some(m)) if m > asked => RefreshOutcome::Retry { interval: m },
            _ => RefreshOutcome::Failed,
        },
        408 | 481 => RefreshOutcome::Gone,
        _ => RefreshOutcome::Failed,
    }
}

/// What the session timer asks of its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerEvent {
    /// Send a session refresh now (we are the refresher, half the interval has passed).
    Refresh,
    /// No refresh came in time: end the session with BYE (RFC 4028 §10).
    Expired,
}

/// Time-keeping for one session (RFC 4028 §10): the refresher refreshes at half the
/// interval; either side ends the session with BYE when no refresh succeeded by the
/// interval minus min(32 s, interval / 3).
#[derive(Debug, Clone)]
pub struct SessionTimer {
    interval: Duration,
    who: Who,
    refresh_at: Option<Instant>,
    expire_at: Instant,
    expired: bool,
    events: Vec<TimerEvent>,
}

impl SessionTimer {
    /// A session refreshed at `now` for `interval`, refreshed by `who`.
    pub fn new(now: Instant, interval: Duration, who: Who) -> SessionTimer {
        let mut t = SessionTimer {
            interval,
            who,
            refresh_at: None,
            expire_at: now,
            expired: false,
            events: Vec::new(),
        };
        t.refreshed(now, interval, who);
        t
    }

    /// A refresh succeeded at `now` (we sent or received its 2xx): start over with the
    /// interval and refresher it agreed.
    pub fn refreshed(&mut self, now: Instant, interval: Duration, who: Who) {
        // No Session-Expires says more than 2^32 - 1 s (136 years, `delta_and_params`); a
        // longer Duration would only overflow the Instant arithmetic below.
        let interval = interval.min(Duration::from_secs(u32::MAX.into()));
        self.interval = interval;
        self.who = who;
        let guard = Duration::from_secs(32).min(interval / 3);
        self.expire_at = now + interval.saturating_sub(guard);
        self.expired = false;
        self.refresh_at = (who == Who::Local).then(|| now + interval / 2);
    }

    /// Our refresh failed in a way worth retrying (491, 5xx): try again at `at` if the
    /// session is still alive then.
    pub fn retry_at(&mut self, at: Instant) {
        if self.who == Who::Local && at < self.expire_at {
            self.refresh_at = Some(at);
        }
    }

    /// The session interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Who refreshes.
    pub fn who(&self) -> Who {
        self.who
    }

    /// When the session ends without a refresh (the BYE goes out then).
    pub fn expires_at(&self) -> Instant {
        self.expire_at
    }

    /// The next deadline.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.expired {
            return None;
        }
        Some(
            self.refresh_at
                .map_or(self.expire_at, |r| r.min(self.expire_at)),
        )
    }

    /// Time passed: refresh or expire when due (spurious calls do nothing).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.expired {
            return;
        }
        if now >= self.expire_at {
            // Told once: the owner ends the session.
            self.refresh_at = None;
            self.expired = true;
            self.events.push(TimerEvent::Expired);
            return;
        }
        if self.refresh_at.is_some_and(|r| now >= r) {
            self.refresh_at = None;
            self.events.push(TimerEvent::Refresh);
        }
    }

    /// The next thing the owner must do.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<TimerEvent> {
        (!self.events.is_empty()).then(|| self.events.remove(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lines: &[(&str, &str)]) -> Headers {
        let mut h = Headers::new();
        for (n, v) in lines {
            h.push(HeaderName::from_wire(n), *v);
        }
        h
    }

    fn policy() -> Policy {
        Policy {
            min_se: 90,
            interval: 1800,
        }
    }

    #[test]
    fn parses_and_prints_session_expires() {
        let se = SessionExpires::parse("4000;refresher=uac;x=1").unwrap();
        assert_eq!(se.delta, 4000);
        assert_eq!(se.refresher, Some(Refresher::Uac));
        assert_eq!(se.to_string(), "4000;refresher=uac");
        assert_eq!(SessionExpires::parse(" 90 ").unwrap().refresher, None);
        assert!(SessionExpires::parse("abc").is_err());
        assert!(SessionExpires::parse("90;refresher=both").is_err());
        // The compact form `x` is Session-Expires.
        let h = headers(&[("x", "120;refresher=uas")]);
        assert_eq!(session_expires(&h).unwrap().unwrap().delta, 120);
        assert_eq!(min_se(&headers(&[("Min-SE", "200")])).unwrap(), Some(200));
        assert!(min_se(&headers(&[("Min-SE", "")])).is_err());
    }

    // RFC 4028 §9, each case.

    #[test]
    fn uac_supporting_and_choosing_uac() {
        let h = headers(&[
            ("Supported", "timer"),
            ("Session-Expires", "90;refresher=uac"),
        ]);
        let a = negotiate_uas(&h, &policy()).unwrap().unwrap();
        assert_eq!((a.interval, a.refresher), (90, Refresher::Uac));
        assert_eq!(a.who(false), Who::Remote);
        let mut out = Headers::new();
        a.decorate_response(&mut out);
        assert_eq!(
            out.get(&HeaderName::SessionExpires),
            Some("90;refresher=uac")
        );
        assert_eq!(
            out.get(&HeaderName::Require),
            Some("timer"),
            "§9: Require when uac refreshes"
        );
    }

    #[test]
    fn uac_supporting_and_choosing_uas() {
        let h = headers(&[
            ("Require", "timer"),
            ("Session-Expires", "600;refresher=uas"),
        ]);
        let a = negotiate_uas(&h, &policy()).unwrap().unwrap();
        assert_eq!((a.interval, a.refresher), (600, Refresher::Uas));
        assert_eq!(a.who(false), Who::Local);
        let mut out = Headers::new();
        a.decorate_response(&mut out);
        assert_eq!(out.get(&HeaderName::Require), None);
    }

    #[test]
    fn no_refresher_named_lets_a_supporting_uac_refresh() {
        let h = headers(&[("Supported", "timer, 100rel"), ("Session-Expires", "300")]);
        let a = negotiate_uas(&h, &policy()).unwrap().unwrap();
        assert_eq!(a.refresher, Refresher::Uac);
    }

    #[test]
    fn too_small_is_422_with_our_min_se_when_supported() {
        let h = headers(&[("Supported", "timer"), ("Session-Expires", "60")]);
        assert_eq!(
            negotiate_uas(&h, &policy()),
            Err(Refusal::TooSmall { min_se: 90 })
        );
        // The retry (§7.3) with Min-SE and a larger interval is accepted.
        let h = headers(&[
            ("Supported", "timer"),
            ("Session-Expires", "90"),
            ("Min-SE", "90"),
        ]);
        assert_eq!(negotiate_uas(&h, &policy()).unwrap().unwrap().interval, 90);
    }

    #[test]
    fn too_small_without_support_is_raised_and_we_refresh() {
        // A proxy put Session-Expires in; the UAC cannot refresh or retry.
        let h = headers(&[("Session-Expires", "30;refresher=uac")]);
        let a = negotiate_uas(&h, &policy()).unwrap().unwrap();
        assert_eq!((a.interval, a.refresher), (90, Refresher::Uas));
        assert!(!a.peer_supports);
    }

    #[test]
    fn large_interval_is_reduced_but_not_below_their_min_se() {
        let h = headers(&[("Supported", "timer"), ("Session-Expires", "7200")]);
        assert_eq!(
            negotiate_uas(&h, &policy()).unwrap().unwrap().interval,
            1800
        );
        let h = headers(&[
            ("Supported", "timer"),
            ("Session-Expires", "7200"),
            ("Min-SE", "3600"),
        ]);
        assert_eq!(
            negotiate_uas(&h, &policy()).unwrap().unwrap().interval,
            3600
        );
    }

    #[test]
    fn supported_without_session_expires_gets_our_interval() {
        let h = headers(&[("Supported", "timer")]);
        let a = negotiate_uas(&h, &policy()).unwrap().unwrap();
        assert_eq!((a.interval, a.refresher), (1800, Refresher::Uac));
        assert_eq!(negotiate_uas(&Headers::new(), &policy()), Ok(None));
    }

    #[test]
    fn malformed_is_refused() {
        let h = headers(&[("Session-Expires", "soon")]);
        assert_eq!(
            negotiate_uas(&h, &policy()),
            Err(Refusal::Malformed(HeaderName::SessionExpires))
        );
    }

    #[test]
    fn refresh_answers() {
        let prev = Agreement {
            interval: 90,
            refresher: Refresher::Uas,
            peer_supports: false,
        };
        let ok = headers(&[("Session-Expires", "120;refresher=uac")]);
        match refresh_outcome(200, &ok, 90, &prev) {
            RefreshOutcome::Refreshed(a) => {
                assert_eq!(a.interval, 120);
                assert_eq!(a.who(true), Who::Local);
            }
            o => panic!("{o:?}"),
        }
        match refresh_outcome(200, &Headers::new(), 90, &prev) {
            RefreshOutcome::Refreshed(a) => assert_eq!((a.interval, a.who(true)), (90, Who::Local)),
            o => panic!("{o:?}"),
        }
        let off = headers(&[("Supported", "timer")]);
        assert_eq!(
            refresh_outcome(200, &off, 90, &prev),
            RefreshOutcome::TimerOff
        );
        let small = headers(&[("Min-SE", "300")]);
        assert_eq!(
            refresh_outcome(422, &small, 90, &prev),
            RefreshOutcome::Retry { interval: 300 }
        );
        assert_eq!(
            refresh_outcome(481, &Headers::new(), 90, &prev),
            RefreshOutcome::Gone
        );
        assert_eq!(
            refresh_outcome(491, &Headers::new(), 90, &prev),
            RefreshOutcome::Failed
        );
    }

    #[test]
    fn refresher_refreshes_at_half_and_expiry_comes_early() {
        let t0 = crate::test_epoch();
        let mut t = SessionTimer::new(t0, Duration::from_secs(90), Who::Local);
        assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(45)));
        t.handle_timeout(t0 + Duration::from_secs(44));
        assert_eq!(t.poll_event(), None, "spurious wake-ups do nothing");
        t.handle_timeout(t0 + Duration::from_secs(45));
        assert_eq!(t.poll_event(), Some(TimerEvent::Refresh));
        // No answer: the session ends at 90 - min(32, 30) = 60 s.
        assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(60)));
        t.handle_timeout(t0 + Duration::from_secs(60));
        assert_eq!(t.poll_event(), Some(TimerEvent::Expired));
    }

    #[test]
    fn watcher_expires_unless_refreshed() {
        let t0 = crate::test_epoch();
        let mut t = SessionTimer::new(t0, Duration::from_secs(1800), Who::Remote);
        // 1800 - min(32, 600) = 1768 s.
        assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(1768)));
        t.refreshed(
            t0 + Duration::from_secs(900),
            Duration::from_secs(1800),
            Who::Remote,
        );
        t.handle_timeout(t0 + Duration::from_secs(1768));
        assert_eq!(t.poll_event(), None);
        t.handle_timeout(t0 + Duration::from_secs(900 + 1768));
        assert_eq!(t.poll_event(), Some(TimerEvent::Expired));
        t.handle_timeout(t0 + Duration::from_secs(900 + 1769));
        assert_eq!(t.poll_event(), None, "expiry is told once");
    }

    #[test]
    fn the_longest_intervals_do_not_overflow() {
        let t0 = crate::test_epoch();
        let mut t = SessionTimer::new(t0, Duration::MAX, Who::Local);
        let max = Duration::from_secs(u32::MAX.into());
        assert_eq!(t.interval(), max);
        assert_eq!(t.poll_timeout(), Some(t0 + max / 2));
        t.refreshed(t0, Duration::MAX, Who::Remote);
        assert_eq!(t.expires_at(), t0 + max - Duration::from_secs(32));
        t.handle_timeout(t0 + Duration::from_secs(3600));
        assert_eq!(t.poll_event(), None);
    }

    #[test]
    fn retry_only_before_expiry() {
        let t0 = crate::test_epoch();
        let mut t = SessionTimer::new(t0, Duration::from_secs(90), Who::Local);
        t.handle_timeout(t0 + Duration::from_secs(45));
        assert_eq!(t.poll_event(), Some(TimerEvent::Refresh));
        t.retry_at(t0 + Duration::from_secs(50));
        assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(50)));
        t.retry_at(t0 + Duration::from_secs(70));
        assert_eq!(
            t.poll_timeout(),
            Some(t0 + Duration::from_secs(50)),
            "after expiry: ignored"
        );
    }
}
