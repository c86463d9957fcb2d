//! Locating SIP servers (RFC 3263): from a URI to the ordered list of addresses and
//! transports to try, with the DNS lookups as inputs.
//!
//! The engine does DNS only where an operator configured a host name (a destination or an
//! outbound proxy given as a name, not an IP). [`Locator`] is the sans-IO part: it says which
//! query to run next ([`Locator::poll_query`]), takes each answer ([`Locator::answer`]), and
//! ends with the targets in the order RFC 3263 §4 gives them; the driver runs the queries
//! (`engine/server/src/resolve.rs`). Random choices (RFC 2782 weights) come from a
//! [`RandomSource`] the owner passes in.
//!
//! By RFC section:
//! - §4 (first paragraphs): the `maddr` parameter, when present, replaces the host;
//! - §4.1, transport: the URI's `transport` parameter when present; otherwise, for a numeric
//!   IP or an explicit port, UDP for `sip:` and TLS for `sips:`; otherwise NAPTR (optional,
//!   [`LocateOptions::use_naptr`]: services `SIP+D2U`, `SIP+D2T`, `SIPS+D2T` with flag `s`,
//!   by order then preference), then SRV for each supported transport in the client's
//!   preference order (`_sip._udp`, `_sip._tcp`, `_sips._tcp`), the first that answers
//!   deciding; with no SRV at all, UDP (TLS for `sips:`);
//! - §4.2, port and address: a numeric IP is used as is (port from the URI or 5060/5061); an
//!   explicit port skips SRV and looks up A/AAAA of the host; otherwise the SRV records
//!   (ordered by priority, then weighted random within a priority, RFC 2782) name the hosts
//!   and ports, whose A/AAAA records give the addresses; with no SRV, A/AAAA of the host at
//!   the default port;
//! - §4.3, failover: [`TargetList`] hands out the next target when an attempt ends with a 503
//!   or a timeout or transport error ([`Failover`]).
//!
//! Bounded against hostile or broken DNS: at most [`MAX_RECORDS`] records of an answer are
//! kept (the best by priority or order: a long answer is ordered before it is cut), at most [`MAX_TARGETS`] targets kept and [`MAX_QUERIES`] queries asked.
//!
//! ```
//! use ivr_sip::digest::RandomSource;
//! use ivr_sip::locate::{Answer, DnsTransport, LocateOptions, Locator, Query, SrvRecord};
//! use ivr_sip::Uri;
//!
//! struct Fixed;
//! impl RandomSource for Fixed {
//!     fn next_u64(&mut self) -> u64 { 0 }
//! }
//!
//! let uri = Uri::parse("sip:desk@pbx.example.com").unwrap();
//! let mut loc = Locator::new(&uri, &LocateOptions::default()).unwrap();
//! while let Some(q) = loc.poll_query() {
//!     // The driver asks DNS here; this zone has one SRV record for UDP.
//!     let answer = match q {
//!         Query::Srv(name) if name == "_sip._udp.pbx.example.com" => Answer::Srv(vec![SrvRecord {
//!             priority: 10, weight: 0, port: 5070, target: "a.example.com.".into(),
//!         }]),
//!         Query::Address(name) if name == "a.example.com." => {
//!             Answer::Address(vec!["192.0.2.7".parse().unwrap()])
//!         }
//!         _ => Answer::Address(vec![]), // nothing: NXDOMAIN, no records, or a failed query
//!     };
//!     loc.answer(answer, &mut Fixed);
//! }
//! let targets = loc.finish().unwrap();
//! assert_eq!(targets.current().unwrap().addr, "192.0.2.7:5070".parse().unwrap());
//! assert_eq!(targets.current().unwrap().transport, DnsTransport::Udp);
//! ```

use crate::Transport;
use crate::digest::RandomSource;
use crate::message::StatusCode;
use crate::uri::Uri;
use std::net::{IpAddr, SocketAddr};

/// Most records read from one DNS answer.
pub const MAX_RECORDS: usize = 16;
/// Most targets a location yields.
pub const MAX_TARGETS: usize = 32;
/// Most queries one location asks.
pub const MAX_QUERIES: usize = 24;
/// The longest host name considered (RFC 1035 §2.3.4: 255 octets on the wire).
pub const MAX_NAME: usize = 253;

/// A transport as RFC 3263 names it: TLS is a transport of its own here (`sips:`,
/// `_sips._tcp`, `SIPS+D2T`), whether or not the owner supports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DnsTransport {
    /// UDP (`_sip._udp`, `SIP+D2U`).
    Udp,
    /// TCP (`_sip._tcp`, `SIP+D2T`).
    Tcp,
    /// TLS over TCP (`_sips._tcp`, `SIPS+D2T`).
    Tls,
}

impl DnsTransport {
    /// The SRV service and protocol labels (RFC 3263 §4.1, RFC 2782).
    pub const fn srv_prefix(self) -> &'static str {
        match self {
            DnsTransport::Udp => "_sip._udp",
            DnsTransport::Tcp => "_sip._tcp",
            DnsTransport::Tls => "_sips._tcp",
        }
    }

    /// The NAPTR service field (RFC 3263 §4.1).
    pub const fn naptr_service(self) -> &'static str {
        match self {
            DnsTransport::Udp => "SIP+D2U",
            DnsTransport::Tcp => "SIP+D2T",
            DnsTransport::Tls => "SIPS+D2T",
        }
    }

    /// The port when none is given (RFC 3261 §19.1.2: 5060, 5061 for TLS).
    pub const fn default_port(self) -> u16 {
        match self {
            DnsTransport::Tls => 5061,
            _ => 5060,
        }
    }

    /// The crate's [`Transport`] for it; `None` for TLS (the engine accepts TLS but opens
    /// no TLS connections of its own).
    pub const fn transport(self) -> Option<Transport> {
        match self {
            DnsTransport::Udp => Some(Transport::Udp),
            DnsTransport::Tcp => Some(Transport::Tcp),
            DnsTransport::Tls => None,
        }
    }

    /// The transport a URI's `transport` parameter names (RFC 3261 §19.1.1); `sips:` with
    /// `transport=tcp` means TLS.
    fn of_param(value: &str, secure: bool) -> Option<DnsTransport> {
        match value.to_ascii_lowercase().as_str() {
            "udp" if !secure => Some(DnsTransport::Udp),
            "tcp" if secure => Some(DnsTransport::Tls),
            "tcp" => Some(DnsTransport::Tcp),
            "tls" => Some(DnsTransport::Tls),
            _ => None,
        }
    }
}

impl From<Transport> for DnsTransport {
    fn from(t: Transport) -> DnsTransport {
        match t {
            Transport::Udp => DnsTransport::Udp,
            Transport::Tcp => DnsTransport::Tcp,
            Transport::Tls => DnsTransport::Tls,
        }
    }
}

/// Where to send: an address and a transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Target {
    /// The address.
    pub addr: SocketAddr,
    /// The transport.
    pub transport: DnsTransport,
}

/// An SRV record (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    /// Lower is tried first.
    pub priority: u16,
    /// Relative share within a priority.
    pub weight: u16,
    /// The port.
    pub port: u16,
    /// The host; `.` means "no service here".
    pub target: String,
}

/// A NAPTR record (RFC 3403 §4.1), as RFC 3263 §4.1 uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NaptrRecord {
    /// Lower is used first.
    pub order: u16,
    /// Lower is used first within an order.
    pub preference: u16,
    /// `s`: the replacement names SRV records.
    pub flags: String,
    /// `SIP+D2U`, `SIP+D2T`, `SIPS+D2T`.
    pub services: String,
    /// The SRV name.
    pub replacement: String,
}

/// A DNS question the driver must ask.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Query {
    /// NAPTR records of the name.
    Naptr(String),
    /// SRV records of the name.
    Srv(String),
    /// A and AAAA records of the name.
    Address(String),
}

/// The answer to the pending [`Query`]. A failed query, NXDOMAIN and "no records" are all
/// an empty answer (RFC 3263 treats them alike: move on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// NAPTR records.
    Naptr(Vec<NaptrRecord>),
    /// SRV records.
    Srv(Vec<SrvRecord>),
    /// Addresses.
    Address(Vec<IpAddr>),
}

/// What the owner supports and wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocateOptions {
    /// Supported transports, most preferred first (RFC 3263 §4.1: the SRV queries go in this
    /// order). The engine: UDP, TCP.
    pub supported: Vec<DnsTransport>,
    /// Ask NAPTR before SRV (§4.1 makes it a SHOULD for servers that publish NAPTR; many
    /// do not, and a lookup that always fails costs a round trip).
    pub use_naptr: bool,
}

impl Default for LocateOptions {
    fn default() -> LocateOptions {
        LocateOptions {
            supported: vec![DnsTransport::Udp, DnsTransport::Tcp],
            use_naptr: false,
        }
    }
}

/// Why no target could be found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocateError {
    /// Not a `sip:` or `sips:` URI.
    #[error("not a sip: or sips: URI")]
    NotSip,
    /// The host is empty or longer than a DNS name may be.
    #[error("bad host name")]
    BadHost,
    /// The URI asks for a transport we do not support (or an unknown one).
    #[error("transport not supported")]
    UnsupportedTransport,
    /// The SRV records say there is no such service (a single `.` target, RFC 2782).
    #[error("the domain says it offers no SIP service")]
    NoService,
    /// DNS gave no usable address.
    #[error("no address found")]
    NotFound,
}

/// One host whose addresses are still to be looked up, with the port and transport the
/// addresses get.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pending {
    host: String,
    port: u16,
    transport: DnsTransport,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Waiting for the NAPTR answer.
    Naptr,
    /// Asking SRV names in order; `fallback` is the host lookup if none answers.
    Srv {
        candidates: Vec<(DnsTransport, String)>,
        next: usize,
        fallback: Pending,
    },
    /// Asking A/AAAA for hosts in order.
    Addresses { pending: Vec<Pending>, next: usize },
    /// Nothing left to ask.
    Done,
}

/// One location (RFC 3263 §4) in progress. See the module documentation.
#[derive(Debug, Clone)]
pub struct Locator {
    host: String,
    secure: bool,
    supported: Vec<DnsTransport>,
    phase: Phase,
    targets: Vec<Target>,
    queries: usize,
    error: Option<LocateError>,
}

impl Locator {
    /// Start locating `uri` (RFC 3263 §4.1, §4.2). A numeric host needs no query at all.
    pub fn new(uri: &Uri, options: &LocateOptions) -> Result<Locator, LocateError> {
        let sip = uri.as_sip().ok_or(LocateError::NotSip)?;
        let secure = sip.secure;
        // §4: maddr, when present, is the target.
        let host = match sip.params.get("maddr") {
            Some(Some(m)) => m.to_string(),
            _ => sip.host.clone(),
        };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if bare.is_empty() || bare.len() > MAX_NAME {
            return Err(LocateError::BadHost);
        }
        let param = match sip.params.get("transport") {
            Some(Some(t)) => {
                Some(DnsTransport::of_param(t, secure).ok_or(LocateError::UnsupportedTransport)?)
            }
            Some(None) => return Err(LocateError::UnsupportedTransport),
            None => None,
        };
        // §4.1: UDP for sip:, TLS for sips:, when nothing else decides.
        let plain = if secure {
            DnsTransport::Tls
        } else {
            DnsTransport::Udp
        };
        let usable = |t: DnsTransport| options.supported.contains(&t);
        let mut loc = Locator {
            host: bare.to_string(),
            secure,
            supported: options.supported.clone(),
            phase: Phase::Done,
            targets: Vec::new(),
            queries: 0,
            error: None,
        };
        if let Ok(ip) = bare.parse::<IpAddr>() {
            let transport = param.unwrap_or(plain);
            if !usable(transport) {
                return Err(LocateError::UnsupportedTransport);
            }
            let port = sip.port.unwrap_or(transport.default_port());
            loc.targets.push(Target {
                addr: SocketAddr::new(ip, port),
                transport,
            });
            return Ok(loc);
        }
        if let Some(port) = sip.port {
            // §4.2: an explicit port skips SRV.
            let transport = param.unwrap_or(plain);
            if !usable(transport) {
                return Err(LocateError::UnsupportedTransport);
            }
            loc.phase = Phase::Addresses {
                pending: vec![Pending {
                    host: loc.host.clone(),
                    port,
                    transport,
                }],
                next: 0,
            };
            return Ok(loc);
        }
        if let Some(transport) = param {
            // §4.2: a transport given explicitly: SRV for that transport only.
            if !usable(transport) {
                return Err(LocateError::UnsupportedTransport);
            }
            loc.phase = loc.srv_phase(vec![transport], transport);
            return Ok(loc);
        }
        let candidates: Vec<DnsTransport> = loc
            .supported
            .iter()
            .copied()
            .filter(|t| (*t == DnsTransport::Tls) == secure)
            .collect();
        if candidates.is_empty() {
            return Err(LocateError::UnsupportedTransport);
        }
        loc.phase = if options.use_naptr {
            Phase::Naptr
        } else {
            let fallback = if usable(plain) { plain } else { candidates[0] };
            loc.srv_phase(candidates, fallback)
        };
        Ok(loc)
    }

    fn srv_phase(&self, transports: Vec<DnsTransport>, fallback: DnsTransport) -> Phase {
        Phase::Srv {
            candidates: transports
                .into_iter()
                .map(|t| (t, format!("{}.{}", t.srv_prefix(), self.host)))
                .collect(),
            next: 0,
            fallback: Pending {
                host: self.host.clone(),
                port: fallback.default_port(),
                transport: fallback,
            },
        }
    }

    /// The question to ask next; `None` once the location is complete (then
    /// [`Self::finish`]).
    #[must_use]
    pub fn poll_query(&self) -> Option<Query> {
        if self.queries >= MAX_QUERIES || self.targets.len() >= MAX_TARGETS {
            return None;
        }
        match &self.phase {
            Phase::Naptr => Some(Query::Naptr(self.host.clone())),
            Phase::Srv {
                candidates, next, ..
            } => candidates.get(*next).map(|(_, n)| Query::Srv(n.clone())),
            Phase::Addresses { pending, next } => {
                pending.get(*next).map(|p| Query::Address(p.host.clone()))
            }
            Phase::Done => None,
        }
    }

    /// The answer to the query [`Self::poll_query`] gave. An answer of another kind counts
    /// as empty. `rng` decides among SRV records of equal priority (RFC 2782).
    pub fn answer(&mut self, answer: Answer, rng: &mut dyn RandomSource) {
        if self.poll_query().is_none() {
            return;
        }
        self.queries += 1;
        let phase = std::mem::replace(&mut self.phase, Phase::Done);
        self.phase = match (phase, answer) {
            (Phase::Naptr, Answer::Naptr(records)) => self.after_naptr(records),
            (Phase::Naptr, _) => self.after_naptr(Vec::new()),
            (
                Phase::Srv {
                    candidates,
                    next,
                    fallback,
                },
                answer,
            ) => {
                let records = match answer {
                    Answer::Srv(r) => r,
                    _ => Vec::new(),
                };
                self.after_srv(candidates, next, fallback, records, rng)
            }
            (Phase::Addresses { pending, next }, answer) => {
                if let (Some(p), Answer::Address(ips)) = (pending.get(next), &answer) {
                    for ip in ips.iter().take(MAX_RECORDS) {
                        self.push(Target {
                            addr: SocketAddr::new(*ip, p.port),
                            transport: p.transport,
                        });
                    }
                }
                Phase::Addresses {
                    pending,
                    next: next + 1,
                }
            }
            (Phase::Done, _) => Phase::Done,
        };
        self.take_literals();
    }

    /// SRV targets written as addresses need no query: take them when their turn comes,
    /// so that they keep their place in the RFC 2782 order among the names looked up.
    fn take_literals(&mut self) {
        let Phase::Addresses { pending, next } = &mut self.phase else {
            return;
        };
        let mut found = Vec::new();
        while let Some(p) = pending.get(*next) {
            let Ok(ip) = p.host.trim_end_matches('.').parse::<IpAddr>() else {
                break;
            };
            found.push(Target {
                addr: SocketAddr::new(ip, p.port),
                transport: p.transport,
            });
            *next += 1;
        }
        for t in found {
            self.push(t);
        }
    }

    /// §4.1: the NAPTR records with flag `s` and a service we support (only `SIPS+D2T` for a
    /// `sips:` URI), by order then preference; none: SRV for each supported transport.
    fn after_naptr(&mut self, mut records: Vec<NaptrRecord>) -> Phase {
        // Order first: a long answer's best records may come last (servers rotate them).
        records.sort_by_key(|r| (r.order, r.preference));
        records.truncate(MAX_RECORDS);
        let candidates: Vec<(DnsTransport, String)> = records
            .iter()
            .filter(|r| r.flags.eq_ignore_ascii_case("s"))
            .filter_map(|r| {
                let t = self
                    .supported
                    .iter()
                    .copied()
                    .find(|t| t.naptr_service().eq_ignore_ascii_case(&r.services))?;
                ((t == DnsTransport::Tls) == self.secure && valid_name(&r.replacement))
                    .then(|| (t, r.replacement.clone()))
            })
            .collect();
        let plain = if self.secure {
            DnsTransport::Tls
        } else {
            DnsTransport::Udp
        };
        if candidates.is_empty() {
            let transports: Vec<DnsTransport> = self
                .supported
                .iter()
                .copied()
                .filter(|t| (*t == DnsTransport::Tls) == self.secure)
                .collect();
            let fallback = if self.supported.contains(&plain) {
                plain
            } else {
                transports.first().copied().unwrap_or(plain)
            };
            return self.srv_phase(transports, fallback);
        }
        let fallback = candidates[0].0;
        Phase::Srv {
            candidates,
            next: 0,
            fallback: Pending {
                host: self.host.clone(),
                port: fallback.default_port(),
                transport: fallback,
            },
        }
    }

    /// §4.2: the first SRV name with records decides; none: the host's addresses at the
    /// default port.
    fn after_srv(
        &mut self,
        candidates: Vec<(DnsTransport, String)>,
        next: usize,
        fallback: Pending,
        mut records: Vec<SrvRecord>,
        rng: &mut dyn RandomSource,
    ) -> Phase {
        let transport = candidates
            .get(next)
            .map(|c| c.0)
            .unwrap_or(fallback.transport);
        // The best priorities first, then the cut: a long answer's primaries may come last
        // (servers rotate records). Stable, so the weights' order within one is kept.
        records.sort_by_key(|r| r.priority);
        records.truncate(MAX_RECORDS);
        if records.is_empty() {
            if next + 1 < candidates.len() {
                return Phase::Srv {
                    candidates,
                    next: next + 1,
                    fallback,
                };
            }
            return Phase::Addresses {
                pending: vec![fallback],
                next: 0,
            };
        }
        // RFC 2782: a single record whose target is "." means the service is not offered.
        if records.len() == 1 && is_root(&records[0].target) {
            self.error = Some(LocateError::NoService);
            return Phase::Done;
        }
        let mut pending = Vec::new();
        for r in order_srv(records, rng) {
            // Port 0 reaches no one.
            if is_root(&r.target) || !valid_name(&r.target) || r.port == 0 {
                continue;
            }
            // Not allowed by RFC 2782, seen in the wild: an address as target (taken
            // without a query, in its turn: `take_literals`).
            pending.push(Pending {
                host: r.target,
                port: r.port,
                transport,
            });
        }
        Phase::Addresses { pending, next: 0 }
    }

    /// Keep a target from DNS unless no request could be sent there: port 0, the
    /// unspecified address (which reaches this very host on Linux, so a request could come
    /// back to us as a new call), broadcast or multicast.
    fn push(&mut self, t: Target) {
        let ip = t.addr.ip();
        let unusable = t.addr.port() == 0
            || ip.is_unspecified()
            || ip.is_multicast()
            || matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
        if !unusable && self.targets.len() < MAX_TARGETS && !self.targets.contains(&t) {
            self.targets.push(t);
        }
    }

    /// The targets, in the order to try them (§4.3).
    pub fn finish(self) -> Result<TargetList, LocateError> {
        if self.targets.is_empty() {
            return Err(self.error.unwrap_or(LocateError::NotFound));
        }
        Ok(TargetList {
            targets: self.targets,
            next: 0,
        })
    }
}

fn is_root(name: &str) -> bool {
    name.is_empty() || name == "."
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME + 1
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
}

/// Order SRV records as RFC 2782 says: by priority, lowest first; within a priority,
/// repeatedly pick a record at random with chances proportional to the weights (records of
/// weight 0 placed first in the running sum, so they are picked only rarely when others
/// weigh more).
pub fn order_srv(mut records: Vec<SrvRecord>, rng: &mut dyn RandomSource) -> Vec<SrvRecord> {
    records.sort_by_key(|r| (r.priority, r.weight != 0));
    let mut out = Vec::with_capacity(records.len());
    while !records.is_empty() {
        let priority = records[0].priority;
        let end = records
            .iter()
            .position(|r| r.priority != priority)
            .unwrap_or(records.len());
        let mut group: Vec<SrvRecord> = records.drain(..end).collect();
        while !group.is_empty() {
            let sum: u64 = group.iter().map(|r| u64::from(r.weight)).sum();
            let pick = rng.next_u64() % (sum + 1);
            let mut running = 0u64;
            let i = group
                .iter()
                .position(|r| {
                    running += u64::from(r.weight);
                    running >= pick
                })
                .unwrap_or(0);
            out.push(group.remove(i));
        }
    }
    out
}

/// The targets of a location, handed out one at a time (RFC 3263 §4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetList {
    targets: Vec<Target>,
    next: usize,
}

/// Why an attempt on one target failed in a way that calls for the next (RFC 3263 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failover {
    /// A 503 Service Unavailable.
    ServiceUnavailable,
    /// No response: a transaction timeout (Timer B or F).
    Timeout,
    /// The transport failed (a TCP connection refused, an ICMP error).
    TransportError,
}

impl Failover {
    /// The failover a final status calls for: only 503 (§4.3); other statuses are answers.
    pub fn of_status(status: StatusCode) -> Option<Failover> {
        (status == StatusCode::SERVICE_UNAVAILABLE).then_some(Failover::ServiceUnavailable)
    }
}

impl TargetList {
    /// The target to use now; `None` once all failed.
    pub fn current(&self) -> Option<&Target> {
        self.targets.get(self.next)
    }

    /// The attempt on the current target failed for `why`: move on. Returns the next target
    /// to try, or `None` when the list is exhausted (the request fails).
    pub fn fail_over(&mut self, why: Failover) -> Option<&Target> {
        let _ = why; // every §4.3 reason moves on alike
        self.next = (self.next + 1).min(self.targets.len());
        self.current()
    }

    /// All targets, in order.
    pub fn as_slice(&self) -> &[Target] {
        &self.targets
    }

    /// How many targets were found.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether there are none (never, for a list [`Locator::finish`] made).
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A fixed sequence of "random" numbers.
    struct Seq(Vec<u64>, usize);
    impl RandomSource for Seq {
        fn next_u64(&mut self) -> u64 {
            let v = self.0.get(self.1).copied().unwrap_or(0);
            self.1 += 1;
            v
        }
    }

    fn srv(priority: u16, weight: u16, port: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port,
            target: target.into(),
        }
    }

    /// A zone: the answers by query; everything else is empty.
    fn run(
        uri: &str,
        options: &LocateOptions,
        zone: &HashMap<Query, Answer>,
        rng: &mut dyn RandomSource,
    ) -> (Result<Vec<Target>, LocateError>, Vec<Query>) {
        let mut asked = Vec::new();
        let mut loc = match Locator::new(&Uri::parse(uri).unwrap(), options) {
            Ok(l) => l,
            Err(e) => return (Err(e), asked),
        };
        while let Some(q) = loc.poll_query() {
            asked.push(q.clone());
            let a = zone.get(&q).cloned().unwrap_or(match q {
                Query::Naptr(_) => Answer::Naptr(vec![]),
                Query::Srv(_) => Answer::Srv(vec![]),
                Query::Address(_) => Answer::Address(vec![]),
            });
            loc.answer(a, rng);
        }
        (loc.finish().map(|l| l.as_slice().to_vec()), asked)
    }

    fn t(addr: &str, transport: DnsTransport) -> Target {
        Target {
            addr: addr.parse().unwrap(),
            transport,
        }
    }

    fn ips(list: &[&str]) -> Answer {
        Answer::Address(list.iter().map(|s| s.parse().unwrap()).collect())
    }

    fn zone() -> HashMap<Query, Answer> {
        HashMap::from([
            (
                Query::Srv("_sip._udp.example.com".into()),
                Answer::Srv(vec![
                    srv(20, 0, 5062, "backup.example.com."),
                    srv(10, 0, 5060, "primary.example.com."),
                ]),
            ),
            (
                Query::Srv("_sip._tcp.example.com".into()),
                Answer::Srv(vec![srv(10, 0, 5070, "tcp.example.com.")]),
            ),
            (
                Query::Address("primary.example.com.".into()),
                ips(&["192.0.2.1", "2001:db8::1"]),
            ),
            (
                Query::Address("backup.example.com.".into()),
                ips(&["192.0.2.2"]),
            ),
            (
                Query::Address("tcp.example.com.".into()),
                ips(&["192.0.2.3"]),
            ),
            (Query::Address("example.com".into()), ips(&["192.0.2.9"])),
        ])
    }

    use DnsTransport::{Tcp, Tls, Udp};

    #[test]
    fn numeric_ip_needs_no_dns() {
        let o = LocateOptions::default();
        let z = HashMap::new();
        let (r, asked) = run("sip:a@192.0.2.5", &o, &z, &mut Seq(vec![], 0));
        assert_eq!(r.unwrap(), [t("192.0.2.5:5060", Udp)]);
        assert!(asked.is_empty());
        let (r, _) = run(
            "sip:a@[2001:db8::5]:5099;transport=TCP",
            &o,
            &z,
            &mut Seq(vec![], 0),
        );
        assert_eq!(r.unwrap(), [t("[2001:db8::5]:5099", Tcp)]);
    }

    #[test]
    fn srv_in_priority_order_then_addresses() {
        let (r, asked) = run(
            "sip:desk@example.com",
            &LocateOptions::default(),
            &zone(),
            &mut Seq(vec![], 0),
        );
        assert_eq!(
            r.unwrap(),
            [
                t("192.0.2.1:5060", Udp),
                t("[2001:db8::1]:5060", Udp),
                t("192.0.2.2:5062", Udp)
            ]
        );
        assert_eq!(
            asked,
            [
                Query::Srv("_sip._udp.example.com".into()),
                Query::Address("primary.example.com.".into()),
                Query::Address("backup.example.com.".into()),
            ],
            "the first transport with SRV records decides (§4.1)"
        );
    }

    #[test]
    fn the_next_transport_is_tried_when_the_first_has_no_srv() {
        let mut z = zone();
        z.remove(&Query::Srv("_sip._udp.example.com".into()));
        let (r, _) = run(
            "sip:desk@example.com",
            &LocateOptions::default(),
            &z,
            &mut Seq(vec![], 0),
        );
        assert_eq!(r.unwrap(), [t("192.0.2.3:5070", Tcp)]);
    }

    #[test]
    fn no_srv_falls_back_to_the_host_on_the_default_port() {
        let mut z = zone();
        z.retain(|q, _| !matches!(q, Query::Srv(_)));
        let (r, asked) = run(
            "sip:desk@example.com",
            &LocateOptions::default(),
            &z,
            &mut Seq(vec![], 0),
        );
        assert_eq!(r.unwrap(), [t("192.0.2.9:5060", Udp)]);
        assert_eq!(asked.len(), 3, "two SRV names, then the host: {asked:?}");
    }

    #[test]
    fn explicit_port_skips_srv() {
        let (r, asked) = run(
            "sip:desk@example.com:5080",
            &LocateOptions::default(),
            &zone(),
            &mut Seq(vec![], 0),
        );
        assert_eq!(r.unwrap(), [t("192.0.2.9:5080", Udp)]);
        assert_eq!(asked, [Query::Address("example.com".into())]);
    }

    #[test]
    fn explicit_transport_asks_only_its_srv() {
        let (r, asked) = run(
            "sip:desk@example.com;transport=tcp",
            &LocateOptions::default(),
            &zone(),
            &mut Seq(vec![], 0),
        );
        assert_eq!(r.unwrap(), [t("192.0.2.3:5070", Tcp)]);
        assert_eq!(asked[0], Query::Srv("_sip._tcp.example.com".into()));
    }

    #[test]
    fn maddr_replaces_the_host() {
        let (r, _) = run(
            "sip:desk@example.com;maddr=192.0.2.44",
            &LocateOptions::default(),
            &zone(),
            &mut Seq(vec![], 0),
        );
        assert_eq!(r.unwrap(), [t("192.0.2.44:5060", Udp)]);
    }

    #[test]
    fn sips_uses_sips_tcp_and_needs_tls() {
        let z = HashMap::from([
            (
                Query::Srv("_sips._tcp.example.com".into()),
                Answer::Srv(vec![srv(1, 1, 5061, "tls.example.com.")]),
            ),
            (
                Query::Address("tls.example.com.".into()),
                ips(&["192.0.2.7"]),
            ),
        ]);
        let with_tls = LocateOptions {
            supported: vec![Udp, Tcp, Tls],
            use_naptr: false,
        };
        let (r, asked) = run("sips:desk@example.com", &with_tls, &z, &mut Seq(vec![], 0));
        assert_eq!(r.unwrap(), [t("192.0.2.7:5061", Tls)]);
        assert_eq!(asked[0], Query::Srv("_sips._tcp.example.com".into()));
        let (r, _) = run(
            "sips:desk@example.com",
            &LocateOptions::default(),
            &z,
            &mut Seq(vec![], 0),
        );
        assert_eq!(r, Err(LocateError::UnsupportedTransport));
        let (r, _) = run(
            "sip:desk@example.com;transport=sctp",
            &LocateOptions::default(),
            &z,
            &mut Seq(vec![], 0),
        );
        assert_eq!(r, Err(LocateError::UnsupportedTransport));
    }

    #[test]
    fn naptr_picks_the_srv_name_and_transport() {
        let mut z = zone();
        z.insert(
            Query::Naptr("example.com".into()),
            Answer::Naptr(vec![
                NaptrRecord {
                    order: 10,
                    preference: 20,
                    flags: "s".into(),
                    services: "SIP+D2U".into(),
                    replacement: "_sip._udp.example.com".into(),
                },
                NaptrRecord {
                    order: 10,
                    preference: 10,
                    flags: "S".into(),
                    services: "SIP+D2T".into(),
                    replacement: "_sip._tcp.example.com".into(),
                },
                NaptrRecord {
                    order: 5,
                    preference: 10,
                    flags: "s".into(),
                    services: "SIPS+D2T".into(),
                    replacement: "_sips._tcp.example.com".into(),
                },
            ]),
        );
        let o = LocateOptions {
            use_naptr: true,
            ..LocateOptions::default()
        };
        let (r, asked) = run("sip:desk@example.com", &o, &z, &mut Seq(vec![], 0));
        // SIPS+D2T is not for a sip: URI; SIP+D2T has the better preference.
        assert_eq!(r.unwrap(), [t("192.0.2.3:5070", Tcp)]);
        assert_eq!(
            asked[..2],
            [
                Query::Naptr("example.com".into()),
                Query::Srv("_sip._tcp.example.com".into())
            ]
        );
        // No NAPTR records: SRV per transport as without NAPTR.
        let (r, _) = run("sip:desk@example.com", &o, &zone(), &mut Seq(vec![], 0));
        assert_eq!(r.unwrap()[0], t("192.0.2.1:5060", Udp));
    }

    #[test]
    fn a_lone_dot_means_no_service() {
        let z = HashMap::from([(
            Query::Srv("_sip._udp.example.com".into()),
            Answer::Srv(vec![srv(0, 0, 0, ".")]),
        )]);
        let (r, _) = run(
            "sip:desk@example.com",
            &LocateOptions::default(),
            &z,
            &mut Seq(vec![], 0),
        );
        assert_eq!(r, Err(LocateError::NoService));
    }

    #[test]
    fn nothing_found_is_not_found() {
        let (r, _) = run(
            "sip:desk@nowhere.example",
            &LocateOptions::default(),
            &HashMap::new(),
            &mut Seq(vec![], 0),
        );
        assert_eq!(r, Err(LocateError::NotFound));
        assert_eq!(
            Locator::new(&Uri::parse("tel:+123").unwrap(), &LocateOptions::default()).unwrap_err(),
            LocateError::NotSip
        );
    }

    #[test]
    fn weights_decide_within_a_priority_by_the_random_input() {
        // Within priority 1 the weight-0 record goes first, the others keep their order:
        // a (0), c (30), b (10); running sums 0, 30, 40; picks are taken mod 41.
        let recs = || {
            vec![
                srv(1, 30, 3, "c."),
                srv(1, 0, 1, "a."),
                srv(1, 10, 2, "b."),
                srv(2, 5, 4, "d."),
            ]
        };
        let ports = |rng: &mut Seq| -> Vec<u16> {
            order_srv(recs(), rng).into_iter().map(|r| r.port).collect()
        };
        // 0 → a; then c, b (sums 30, 40): 40 → b; then c. Priority 2 last.
        assert_eq!(ports(&mut Seq(vec![0, 40, 0, 0], 0)), [1, 2, 3, 4]);
        // 5 → c; then a, b (sums 0, 10): 1 → b; then a.
        assert_eq!(ports(&mut Seq(vec![5, 1, 0, 0], 0)), [3, 2, 1, 4]);
        // 35 → b; then a, c (sums 0, 30): 0 → a; then c.
        assert_eq!(ports(&mut Seq(vec![35, 0, 0, 0], 0)), [2, 1, 3, 4]);
        // Values beyond the sum wrap (mod sum + 1), never out of range.
        assert_eq!(ports(&mut Seq(vec![u64::MAX; 4], 0)).len(), 4);
    }

    #[test]
    fn weighted_choice_follows_the_weights() {
        // Over many draws of a simple generator, weight 30 comes first about 30 times in 41
        // (RFC 2782's pick is uniform over 0..=sum), weight 10 the rest.
        struct Lcg(u64);
        impl RandomSource for Lcg {
            fn next_u64(&mut self) -> u64 {
                self.0 = self
                    .0
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                self.0 >> 11
            }
        }
        let mut rng = Lcg(3);
        let mut first_heavy = 0;
        for _ in 0..4000 {
            let o = order_srv(vec![srv(1, 10, 1, "a."), srv(1, 30, 2, "b.")], &mut rng);
            if o[0].port == 2 {
                first_heavy += 1;
            }
        }
        assert!((2750..3100).contains(&first_heavy), "{first_heavy}");
    }

    #[test]
    fn hostile_answers_are_bounded() {
        let many: Vec<SrvRecord> = (0..1000)
            .map(|i| srv(i as u16, 0, 5060, &format!("h{i}.example.com.")))
            .collect();
        let mut z = HashMap::from([(
            Query::Srv("_sip._udp.example.com".into()),
            Answer::Srv(many),
        )]);
        for i in 0..1000 {
            let addrs: Vec<IpAddr> = (0..100u8)
                .map(|j| IpAddr::from([10, (i % 250) as u8, 0, j]))
                .collect();
            z.insert(
                Query::Address(format!("h{i}.example.com.")),
                Answer::Address(addrs),
            );
        }
        let (r, asked) = run(
            "sip:desk@example.com",
            &LocateOptions::default(),
            &z,
            &mut Seq(vec![], 0),
        );
        assert!(r.unwrap().len() <= MAX_TARGETS);
        assert!(asked.len() <= MAX_QUERIES);
        let long = format!("sip:a@{}", "a".repeat(300));
        assert_eq!(
            Locator::new(&Uri::parse(&long).unwrap(), &LocateOptions::default()).unwrap_err(),
            LocateError::BadHost
        );
    }

    #[test]
    fn a_long_answer_keeps_its_best_priorities_whatever_the_record_order() {
        // DNS servers rotate records: in an answer longer than MAX_RECORDS the primaries
        // (priority 10) may come last. Cutting before ordering would drop them for backups.
        let mut records: Vec<SrvRecord> = (0..MAX_RECORDS + 4)
            .map(|i| srv(20, 0, 5060, &format!("backup{i}.example.com.")))
            .collect();
        records.push(srv(10, 0, 5060, "primary.example.com."));
        let z = HashMap::from([
            (
                Query::Srv("_sip._udp.example.com".into()),
                Answer::Srv(records),
            ),
            (
                Query::Address("primary.example.com.".into()),
                ips(&["192.0.2.10"]),
            ),
            (
                Query::Address("backup0.example.com.".into()),
                ips(&["192.0.2.20"]),
            ),
        ]);
        let (r, _) = run(
            "sip:desk@example.com",
            &LocateOptions::default(),
            &z,
            &mut Seq(vec![], 0),
        );
        assert_eq!(
            r.unwrap()[0],
            t("192.0.2.10:5060", Udp),
            "the primary first"
        );
        // NAPTR likewise: the best order wins even when it comes after MAX_RECORDS others.
        let mut naptr: Vec<NaptrRecord> = (0..MAX_RECORDS + 4)
            .map(|_| NaptrRecord {
                order: 50,
                preference: 10,
                flags: "s".into(),
                services: "SIP+D2U".into(),
                replacement: "_sip._udp.example.com".into(),
            })
            .collect();
        naptr.push(NaptrRecord {
            order: 10,
            preference: 10,
            flags: "s".into(),
            services: "SIP+D2T".into(),
            replacement: "_sip._tcp.example.com".into(),
        });
        let mut z = zone();
        z.insert(Query::Naptr("example.com".into()), Answer::Naptr(naptr));
        let o = LocateOptions {
            use_naptr: true,
            ..LocateOptions::default()
        };
        let (r, _) = run("sip:desk@example.com", &o, &z, &mut Seq(vec![], 0));
        assert_eq!(r.unwrap()[0].transport, Tcp, "the best NAPTR order decides");
    }

    #[test]
    fn addresses_no_one_can_be_sent_to_are_skipped() {
        // A hostile or broken zone: 0.0.0.0 and :: reach this very host on Linux (a request
        // sent there could come back to the engine as a new call), broadcast and multicast
        // reach many, port 0 no one.
        let z = HashMap::from([
            (
                Query::Srv("_sip._udp.example.com".into()),
                Answer::Srv(vec![
                    srv(1, 0, 0, "zero-port.example.com."),
                    srv(2, 0, 5060, "0.0.0.0"),
                    srv(3, 0, 5060, "224.0.0.1."),
                    srv(4, 0, 5060, "bad.example.com."),
                    srv(5, 0, 5070, "192.0.2.4"),
                ]),
            ),
            (
                Query::Address("zero-port.example.com.".into()),
                ips(&["192.0.2.1"]),
            ),
            (
                Query::Address("bad.example.com.".into()),
                ips(&[
                    "0.0.0.0",
                    "::",
                    "255.255.255.255",
                    "239.1.2.3",
                    "ff02::1",
                    "192.0.2.5",
                ]),
            ),
        ]);
        let (r, _) = run(
            "sip:desk@example.com",
            &LocateOptions::default(),
            &z,
            &mut Seq(vec![], 0),
        );
        assert_eq!(
            r.unwrap(),
            vec![t("192.0.2.5:5060", Udp), t("192.0.2.4:5070", Udp)]
        );
        // Nothing usable at all: not found, not a target of 0.0.0.0.
        let z = HashMap::from([(Query::Address("example.com".into()), ips(&["0.0.0.0"]))]);
        let (r, _) = run(
            "sip:desk@example.com",
            &LocateOptions::default(),
            &z,
            &mut Seq(vec![], 0),
        );
        assert_eq!(r.unwrap_err(), LocateError::NotFound);
    }

    #[test]
    fn failover_walks_the_list() {
        let (r, _) = run(
            "sip:desk@example.com",
            &LocateOptions::default(),
            &zone(),
            &mut Seq(vec![], 0),
        );
        let mut list = TargetList {
            targets: r.unwrap(),
            next: 0,
        };
        assert_eq!(list.current(), Some(&t("192.0.2.1:5060", Udp)));
        assert_eq!(Failover::of_status(StatusCode::NOT_FOUND), None);
        let why = Failover::of_status(StatusCode::SERVICE_UNAVAILABLE).unwrap();
        assert_eq!(
            list.fail_over(why).copied(),
            Some(t("[2001:db8::1]:5060", Udp))
        );
        assert_eq!(
            list.fail_over(Failover::Timeout).copied(),
            Some(t("192.0.2.2:5062", Udp))
        );
        assert_eq!(list.fail_over(Failover::TransportError), None);
        assert_eq!(list.fail_over(Failover::Timeout), None, "stays exhausted");
    }

    /// A random source from a list of draws (any values, cycled).
    struct Draws(Vec<u64>, usize);
    impl RandomSource for Draws {
        fn next_u64(&mut self) -> u64 {
            let v = self
                .0
                .get(self.1 % self.0.len().max(1))
                .copied()
                .unwrap_or(0);
            self.1 += 1;
            v
        }
    }

    proptest::proptest! {
        /// Whatever the records (zero and maximal weights, equal priorities, duplicates)
        /// and the random draws, RFC 2782 ordering keeps every record once and never puts
        /// a higher priority number first.
        #[test]
        fn srv_order_is_a_priority_sorted_permutation(
            recs in proptest::collection::vec((0u16..4, proptest::prelude::any::<u16>(), 0u16..3), 0..40),
            draws in proptest::collection::vec(proptest::prelude::any::<u64>(), 0..8),
        ) {
            let records: Vec<SrvRecord> = recs
                .iter()
                .map(|&(p, w, n)| srv(p, w, 5060, &format!("h{n}.example.com.")))
                .collect();
            let out = order_srv(records.clone(), &mut Draws(draws, 0));
            proptest::prop_assert!(out.windows(2).all(|w| w[0].priority <= w[1].priority));
            let key = |r: &SrvRecord| (r.priority, r.weight, r.target.clone());
            let mut a: Vec<_> = records.iter().map(key).collect();
            let mut b: Vec<_> = out.iter().map(key).collect();
            a.sort();
            b.sort();
            proptest::prop_assert_eq!(a, b);
        }

        /// A whole location against any answers stays within its bounds and never keeps a
        /// target no request could reach.
        #[test]
        fn any_answers_give_bounded_usable_targets(
            srvs in proptest::collection::vec((0u16..3, proptest::prelude::any::<u16>(), proptest::prelude::any::<u16>(), 0u8..6), 0..30),
            addrs in proptest::collection::vec(proptest::prelude::any::<[u8; 4]>(), 0..30),
            draws in proptest::collection::vec(proptest::prelude::any::<u64>(), 0..8),
        ) {
            let names = ["a.example.com.", "b.example.com.", ".", "", "192.0.2.1", "0.0.0.0"];
            let records: Vec<SrvRecord> = srvs
                .iter()
                .map(|&(p, w, port, n)| srv(p, w, port, names[usize::from(n)]))
                .collect();
            let ips: Vec<IpAddr> = addrs.iter().map(|a| IpAddr::from(*a)).collect();
            let mut loc = Locator::new(&Uri::parse("sip:x@example.com").unwrap(), &LocateOptions::default()).unwrap();
            let mut asked = 0;
            let mut rng = Draws(draws, 0);
            while let Some(q) = loc.poll_query() {
                asked += 1;
                proptest::prop_assert!(asked <= MAX_QUERIES);
                let a = match q {
                    Query::Naptr(_) => Answer::Naptr(vec![]),
                    Query::Srv(_) => Answer::Srv(records.clone()),
                    Query::Address(_) => Answer::Address(ips.clone()),
                };
                loc.answer(a, &mut rng);
            }
            if let Ok(list) = loc.finish() {
                proptest::prop_assert!(list.len() <= MAX_TARGETS);
                for t in list.as_slice() {
                    proptest::prop_assert!(t.addr.port() != 0);
                    proptest::prop_assert!(!t.addr.ip().is_unspecified());
                    proptest::prop_assert!(!t.addr.ip().is_multicast());
                }
            }
        }
    }
}
