//! Admission under attack: who may ask the engine for work, and how many calls may wait.
//!
//! - **Request rate per source.** Each source address has a token bucket of SIP requests
//!   (`rate` a second, bursts of twice that). A source that empties it is banned for `ban`:
//!   its datagrams and messages are dropped unread, with no answer, so a flood costs the
//!   engine a hash lookup per packet and teaches the sender nothing.
//! - **Concurrent calls per source.** A source with `per_source_calls` calls in progress gets
//!   503 for more (statelessly: RFC 3261 §8.2.7).
//! - **Calls waiting for their ACK.** At most `max_pending` calls may be set up but not yet
//!   confirmed (media opening, ringing, or 200 OK sent and not ACKed). At that cap a new
//!   INVITE makes room by dropping the oldest one: its 2xx stops being retransmitted and its
//!   slot is freed (it ends as `ack_timeout`). A flood of INVITEs that are never ACKed
//!   (spoofed or not) then holds at most `max_pending` slots, each for as long as that many
//!   newer INVITEs take to arrive, instead of every slot for 64 s; a caller who ACKs within
//!   that time gets through. Unflooded, a call waits for its ACK until Timer H (RFC 3261
//!   §17.2.1, 64·T1) and is then ended, its slot freed at once.
//!
//! Sources are IP addresses (ports are the sender's choice). Addresses given as trusted
//! proxies (`--sip-trusted-proxy`) are exempt from the per-source rate, ban and call limits:
//! every caller behind a proxy shares its address, so counting them as one source would
//! ban them all for one caller's flood. Limit callers at the proxy instead (for Kamailio:
//! `pike` and `ratelimit`). The cap on calls waiting for their ACK applies to everyone.

use crate::handle::CallHandle;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The limits; zero turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionConfig {
    /// SIP requests a second from one source (bursts of twice this); 0: no limit.
    pub per_source_rate: u32,
    /// How long a source that exceeds its rate is ignored.
    pub ban: Duration,
    /// Calls in progress from one source at most; 0: no limit.
    pub per_source_calls: usize,
    /// Calls set up but not yet confirmed by an ACK at most; 0: no limit.
    pub max_pending: usize,
    /// Failed digest authentications (REGISTER with a wrong password or an unknown user)
    /// from one source within [`AUTH_FAILURE_WINDOW`] before it is banned for `ban`; 0: no limit.
    pub auth_failures: u32,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            per_source_rate: 200,
            ban: Duration::from_secs(60),
            per_source_calls: 1000,
            max_pending: 256,
            auth_failures: 10,
        }
    }
}

/// What admission did, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdmissionEvent {
    /// A source went over its request rate and is ignored until the ban ends.
    Banned {
        /// The source.
        source: IpAddr,
        /// For how long.
        duration: Duration,
    },
    /// A new INVITE was refused because its source has too many calls.
    SourceCallLimit {
        /// The source.
        source: IpAddr,
    },
    /// A call still waiting for its ACK was dropped to make room for a new INVITE.
    PendingEvicted {
        /// The call dropped.
        call: CallHandle,
    },
}

impl AdmissionConfig {
    /// The limits of one of `shards` engines sharing a process's calls. Calls spread over
    /// the shards by their Call-ID's hash, so each shard holds about 1/`shards` of the calls
    /// waiting for their ACK: that cap (a flood's bound, not a promise to a caller) is
    /// divided (rounded up; 0 stays "no limit"). The request rate and failed
    /// authentications are counted whole in front of the shards ([`SourceGate`]), and the
    /// calls per source by every shard in one count ([`SourceCalls`]).
    pub fn for_shards(self, shards: u16) -> AdmissionConfig {
        let n = usize::from(shards.max(1));
        AdmissionConfig {
            max_pending: self.max_pending.div_ceil(n),
            ..self
        }
    }
}

/// The calls in progress of each source, counted by every shard of a process: a limit of
/// two calls per source means two, whichever shards their Call-IDs hash to (a limit
/// divided among shards would refuse a source's second call when both land on one). The
/// map holds only sources with calls (an entry goes at its last call's end), and is
/// touched once per INVITE and per call end, never per packet. Two shards admitting a
/// source's calls in the same instant may let it one call past its limit per shard.
#[derive(Clone, Debug, Default)]
pub struct SourceCalls(Arc<Mutex<HashMap<IpAddr, usize>>>);

impl SourceCalls {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<IpAddr, usize>) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Calls in progress from `ip` (canonical form).
    pub fn calls(&self, ip: IpAddr) -> usize {
        self.with(|m| m.get(&ip.to_canonical()).copied().unwrap_or(0))
    }
}

/// Failed authentications are counted (the count restarts after it).
pub const AUTH_FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// Sources are forgotten once idle this long (and not banned, with no calls).
const FORGET_AFTER: Duration = Duration::from_secs(10);
/// Past this many sources, idle ones are swept before adding another.
const SWEEP_AT: usize = 16_384;

#[derive(Debug, Clone, Copy)]
struct Source {
    /// Tokens in thousandths of a request.
    milli_tokens: u64,
    last: Instant,
    banned_until: Option<Instant>,
    calls: usize,
    /// Failed authentications since the instant given.
    auth_failures: (u32, Instant),
}

/// The request rate, bans and failed authentications of each source, counted in front of
/// a process's shards (their engines run with
/// [`EngineConfig::gate_in_front`](crate::EngineConfig::gate_in_front)): one gate sees
/// every message, so the limits stay exact however many shards there are, and a banned
/// flooder costs one lookup before any shard reads its bytes.
#[derive(Debug)]
pub struct SourceGate(Admission);

impl SourceGate {
    /// A gate with `config`'s rate, ban and authentication limits; `exempt` are the
    /// trusted proxies.
    pub fn new(config: AdmissionConfig, exempt: Vec<IpAddr>) -> SourceGate {
        SourceGate(Admission::new(config, exempt))
    }

    /// A SIP message arrived from `ip`: whether to read it (false: the source is banned,
    /// or just went over its rate and is now).
    pub fn request(&mut self, now: Instant, ip: IpAddr) -> bool {
        self.0.request(now, ip)
    }

    /// A digest authentication from `ip` failed: counted toward its ban.
    pub fn auth_failed(&mut self, now: Instant, ip: IpAddr) {
        self.0.auth_failed(now, ip)
    }

    /// The next thing to log or count (only [`AdmissionEvent::Banned`] comes from a gate).
    pub fn poll_event(&mut self) -> Option<AdmissionEvent> {
        self.0.poll_event()
    }
}

/// Per-source counters and the calls waiting for their ACK.
#[derive(Debug)]
pub(crate) struct Admission {
    config: AdmissionConfig,
    exempt: Vec<IpAddr>,
    sources: HashMap<IpAddr, Source>,
    /// Calls not yet confirmed, oldest (smallest handle) first.
    pending: BTreeSet<CallHandle>,
    events: Vec<AdmissionEvent>,
    /// Calls per source counted with the other shards (else in `sources`).
    shared: Option<SourceCalls>,
}

impl Admission {
    /// Admission with `config`; `exempt` are the trusted proxies.
    pub(crate) fn new(config: AdmissionConfig, exempt: Vec<IpAddr>) -> Admission {
        Admission {
            config,
            exempt: exempt.into_iter().map(|ip| ip.to_canonical()).collect(),
            sources: HashMap::new(),
            pending: BTreeSet::new(),
            events: Vec::new(),
            shared: None,
        }
    }

    /// Count calls per source in `shared`, with the other shards of the process.
    pub(crate) fn share_source_calls(&mut self, shared: SourceCalls) {
        self.shared = Some(shared);
    }

    fn burst(&self) -> u64 {
        u64::from(self.config.per_source_rate) * 2 * 1000
    }

    /// A SIP message arrived from `ip`: whether to read it (false: the source is banned,
    /// or just went over its rate and is now).
    pub(crate) fn request(&mut self, now: Instant, ip: IpAddr) -> bool {
        // One host, one source: a dual-stack socket's IPv4-mapped name is its IPv4 address.
        let ip = ip.to_canonical();
        if self.config.per_source_rate == 0 || self.exempt.contains(&ip) {
            return true;
        }
        let burst = self.burst();
        let (rate, ban) = (u64::from(self.config.per_source_rate), self.config.ban);
        let source = self.source(now, ip);
        if let Some(until) = source.banned_until {
            if now < until {
                return false;
            }
            source.banned_until = None;
            source.milli_tokens = burst;
        }
        let elapsed = now.saturating_duration_since(source.last).as_millis() as u64;
        source.milli_tokens = source
            .milli_tokens
            .saturating_add(elapsed.saturating_mul(rate))
            .min(burst);
        source.last = now;
        if source.milli_tokens >= 1000 {
            source.milli_tokens -= 1000;
            return true;
        }
        source.banned_until = Some(now + ban);
        self.events.push(AdmissionEvent::Banned {
            source: ip,
            duration: ban,
        });
        false
    }

    fn source(&mut self, now: Instant, ip: IpAddr) -> &mut Source {
        if self.sources.len() >= SWEEP_AT && !self.sources.contains_key(&ip) {
            self.sweep(now);
        }
        let burst = self.burst();
        self.sources.entry(ip).or_insert(Source {
            milli_tokens: burst,
            last: now,
            banned_until: None,
            calls: 0,
            auth_failures: (0, now),
        })
    }

    /// Forget sources with nothing to remember.
    fn sweep(&mut self, now: Instant) {
        self.sources.retain(|_, s| {
            s.calls > 0
                || s.banned_until.is_some_and(|u| u > now)
                || (s.auth_failures.0 > 0
                    && now.saturating_duration_since(s.auth_failures.1) < AUTH_FAILURE_WINDOW)
                || now.saturating_duration_since(s.last) < FORGET_AFTER
        });
    }

    /// A digest authentication from `ip` failed (wrong password, unknown user). Past
    /// `auth_failures` within [`AUTH_FAILURE_WINDOW`], the source is banned like a flooder:
    /// a password guesser gets a few tries a minute, then silence.
    pub(crate) fn auth_failed(&mut self, now: Instant, ip: IpAddr) {
        let ip = ip.to_canonical();
        let limit = self.config.auth_failures;
        if limit == 0 || self.exempt.contains(&ip) {
            return;
        }
        let ban = self.config.ban;
        let source = self.source(now, ip);
        let (n, since) = &mut source.auth_failures;
        if now.saturating_duration_since(*since) >= AUTH_FAILURE_WINDOW {
            (*n, *since) = (0, now);
        }
        *n += 1;
        if *n >= limit {
            *n = 0;
            source.banned_until = Some(now + ban);
            self.events.push(AdmissionEvent::Banned {
                source: ip,
                duration: ban,
            });
        }
    }

    /// Whether `ip` may start another call.
    pub(crate) fn may_call(&mut self, now: Instant, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let limit = self.config.per_source_calls;
        if limit == 0 || self.exempt.contains(&ip) {
            return true;
        }
        let calls = match &self.shared {
            Some(shared) => shared.calls(ip),
            None => self.sources.get(&ip).map_or(0, |s| s.calls),
        };
        if calls >= limit {
            self.events
                .push(AdmissionEvent::SourceCallLimit { source: ip });
            return false;
        }
        let _ = self.source(now, ip);
        true
    }

    /// The oldest call waiting for its ACK, if the cap is reached and one must make room.
    pub(crate) fn pending_to_evict(&self) -> Option<CallHandle> {
        let cap = self.config.max_pending;
        (cap > 0 && self.pending.len() >= cap)
            .then(|| self.pending.first().copied())
            .flatten()
    }

    /// Note that `call` was dropped to make room.
    pub(crate) fn evicted(&mut self, call: CallHandle) {
        self.events.push(AdmissionEvent::PendingEvicted { call });
    }

    /// A call from `ip` started; it waits for its ACK.
    pub(crate) fn call_started(&mut self, now: Instant, call: CallHandle, ip: IpAddr) {
        let ip = ip.to_canonical();
        self.pending.insert(call);
        if self.config.per_source_calls > 0 && !self.exempt.contains(&ip) {
            match &self.shared {
                Some(shared) => shared.with(|m| *m.entry(ip).or_insert(0) += 1),
                None => self.source(now, ip).calls += 1,
            }
        }
    }

    /// The call is confirmed (its ACK came): it no longer counts as waiting.
    pub(crate) fn call_confirmed(&mut self, call: CallHandle) {
        self.pending.remove(&call);
    }

    /// A call from `ip` ended.
    pub(crate) fn call_ended(&mut self, call: CallHandle, ip: IpAddr) {
        let ip = ip.to_canonical();
        self.pending.remove(&call);
        if self.config.per_source_calls == 0 || self.exempt.contains(&ip) {
            return;
        }
        match &self.shared {
            Some(shared) => shared.with(|m| {
                if let Some(n) = m.get_mut(&ip) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        m.remove(&ip);
                    }
                }
            }),
            None => {
                if let Some(s) = self.sources.get_mut(&ip) {
                    s.calls = s.calls.saturating_sub(1);
                }
            }
        }
    }

    /// The next thing to log or count.
    pub(crate) fn poll_event(&mut self) -> Option<AdmissionEvent> {
        self.events.pop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn a_source_over_its_rate_is_banned_then_forgiven() {
        let t0 = crate::test_epoch();
        let config = AdmissionConfig {
            per_source_rate: 10,
            ..AdmissionConfig::default()
        };
        let mut a = Admission::new(config, vec![ip(9)]);
        // A burst of twice the rate passes, the next is refused and bans.
        assert_eq!((0..20).filter(|_| a.request(t0, ip(1))).count(), 20);
        assert!(!a.request(t0, ip(1)));
        assert!(matches!(
            a.poll_event(),
            Some(AdmissionEvent::Banned { source, .. }) if source == ip(1)
        ));
        // Banned: even after the bucket would have refilled.
        assert!(!a.request(t0 + Duration::from_secs(30), ip(1)));
        assert!(a.request(t0 + Duration::from_secs(61), ip(1)));
        // Others and trusted proxies are not affected.
        assert!(a.request(t0, ip(2)));
        assert!((0..1000).all(|_| a.request(t0, ip(9))));
        // A steady rate at the limit passes.
        let mut ok = 0;
        for i in 0..100 {
            ok += usize::from(a.request(t0 + Duration::from_millis(100 * i), ip(3)));
        }
        assert_eq!(ok, 100);
    }

    #[test]
    fn calls_per_source_and_the_pending_cap() {
        let t0 = crate::test_epoch();
        let config = AdmissionConfig {
            per_source_calls: 2,
            max_pending: 3,
            ..AdmissionConfig::default()
        };
        let mut a = Admission::new(config, vec![ip(9)]);
        assert!(a.may_call(t0, ip(1)));
        a.call_started(t0, CallHandle(1), ip(1));
        a.call_started(t0, CallHandle(2), ip(1));
        assert!(!a.may_call(t0, ip(1)));
        assert!(a.may_call(t0, ip(9)), "a trusted proxy is not one source");
        assert_eq!(a.pending_to_evict(), None);
        a.call_started(t0, CallHandle(3), ip(9));
        assert_eq!(a.pending_to_evict(), Some(CallHandle(1)), "the oldest goes");
        a.call_confirmed(CallHandle(1));
        assert_eq!(a.pending_to_evict(), None);
        a.call_ended(CallHandle(2), ip(1));
        assert!(a.may_call(t0, ip(1)));
    }

    /// A dual-stack socket names an IPv4 peer by its IPv4-mapped IPv6 address: the same host
    /// over an IPv4 socket and a dual-stack one (say TLS on `[::]`) is one source, so a ban
    /// earned on one holds on the other, and a trusted proxy is trusted on both.
    #[test]
    fn an_ipv4_mapped_address_is_the_same_source() {
        let t0 = crate::test_epoch();
        let config = AdmissionConfig {
            auth_failures: 2,
            per_source_calls: 1,
            ..AdmissionConfig::default()
        };
        let mapped = |v4: IpAddr| match v4 {
            IpAddr::V4(a) => IpAddr::V6(a.to_ipv6_mapped()),
            v6 => v6,
        };
        let mut a = Admission::new(config, vec![ip(9)]);
        a.auth_failed(t0, ip(1));
        a.auth_failed(t0, mapped(ip(1)));
        assert!(!a.request(t0, ip(1)), "banned");
        assert!(
            !a.request(t0, mapped(ip(1))),
            "banned on the other socket too"
        );
        a.call_started(t0, CallHandle(1), mapped(ip(2)));
        assert!(!a.may_call(t0, ip(2)), "one call per source");
        a.call_ended(CallHandle(1), ip(2));
        assert!(a.may_call(t0, mapped(ip(2))));
        for _ in 0..3 {
            a.auth_failed(t0, mapped(ip(9)));
        }
        assert!(a.request(t0, mapped(ip(9))), "the trusted proxy is exempt");
    }

    /// Shards divide the limits they count (rounded up, "off" stays off); the gate in
    /// front counts the rate and failed authentications whole and bans as admission does.
    #[test]
    fn shards_divide_call_limits_and_the_gate_counts_whole() {
        let c = AdmissionConfig {
            per_source_calls: 5,
            max_pending: 256,
            ..AdmissionConfig::default()
        };
        let two = c.for_shards(2);
        assert_eq!((two.per_source_calls, two.max_pending), (5, 128));
        assert_eq!(two.per_source_rate, c.per_source_rate);
        let off = AdmissionConfig {
            per_source_calls: 0,
            max_pending: 0,
            ..c
        }
        .for_shards(4);
        assert_eq!(off.max_pending, 0);
        assert_eq!(c.for_shards(0), c.for_shards(1));
        assert_eq!(c.for_shards(1), c);

        let t0 = crate::test_epoch();
        let config = AdmissionConfig {
            per_source_rate: 1,
            auth_failures: 2,
            ..AdmissionConfig::default()
        };
        let mut gate = SourceGate::new(config, Vec::new());
        assert!(
            gate.request(t0, ip(1)) && gate.request(t0, ip(1)),
            "a burst of two"
        );
        assert!(!gate.request(t0, ip(1)), "over its rate");
        assert!(matches!(
            gate.poll_event(),
            Some(AdmissionEvent::Banned { .. })
        ));
        gate.auth_failed(t0, ip(2));
        assert!(gate.request(t0, ip(2)));
        gate.auth_failed(t0, ip(2));
        assert!(!gate.request(t0, ip(2)), "a guesser is banned at the gate");

        // Two shards, one count: a source's second call is refused on either shard, and
        // its calls ending free the count for both.
        let limit = AdmissionConfig {
            per_source_calls: 2,
            ..AdmissionConfig::default()
        };
        let shared = SourceCalls::default();
        let mut shards: Vec<Admission> = (0..2)
            .map(|_| {
                let mut a = Admission::new(limit.for_shards(2), vec![ip(9)]);
                a.share_source_calls(shared.clone());
                a
            })
            .collect();
        assert!(shards[0].may_call(t0, ip(1)));
        shards[0].call_started(t0, CallHandle(1), ip(1));
        assert!(
            shards[1].may_call(t0, ip(1)),
            "a limit of 2 is not 1 per shard"
        );
        shards[1].call_started(t0, CallHandle(1 << 48 | 1), ip(1));
        assert!(!shards[0].may_call(t0, ip(1)) && !shards[1].may_call(t0, ip(1)));
        assert_eq!(shared.calls(ip(1)), 2);
        shards[1].call_ended(CallHandle(1 << 48 | 1), ip(1));
        assert!(shards[0].may_call(t0, ip(1)));
        shards[0].call_ended(CallHandle(1), ip(1));
        assert_eq!(shared.calls(ip(1)), 0);
        assert!(shared.0.lock().unwrap().is_empty(), "no entry is kept");
        shards[0].call_started(t0, CallHandle(2), ip(9));
        assert_eq!(shared.calls(ip(9)), 0, "a trusted proxy is not counted");
    }
}
