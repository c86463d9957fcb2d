//! DNS for SIP destinations given as host names (RFC 3263): the I/O half of
//! [`ivr_sip::locate`].
//!
//! The engine never resolves: only a destination or an outbound proxy that the operator
//! configured as a name (not an IP) needs DNS, and the driver does it here. The pure
//! [`Locator`] decides which NAPTR / SRV / A / AAAA questions to ask and orders the answers
//! (RFC 3263 §4.1, §4.2, RFC 2782); [`SipResolver`] asks them with `hickory-resolver`, which
//! reads the system's `/etc/resolv.conf` (nameservers, search list, `ndots`) and keeps a
//! bounded cache that honours each record's TTL.
//!
//! Bounds: each query times out ([`ResolveLimits::query_timeout`], with
//! [`ResolveLimits::attempts`]), a whole location has a deadline ([`ResolveLimits::total`]),
//! the cache holds at most [`ResolveLimits::cache_size`] answers for at most
//! [`ResolveLimits::max_ttl`] (negative answers [`ResolveLimits::negative_max_ttl`]), and
//! the locator reads at most [`ivr_sip::locate::MAX_RECORDS`] records per answer. Results are
//! not cached as a whole: the RFC 2782 weighted choice is drawn afresh for every location,
//! which is what spreads calls over equal-priority servers.
//!
//! Where the driver calls it: before it sends the first request to a configured destination
//! (the INVITE of an outgoing leg, `ivr_sip::uac::Transmit::next_hop`) whose host
//! [`ivr_sip::route::socket_of`] cannot map, `resolver.locate(&next_hop).await` gives the
//! [`TargetList`]; the request goes to `current()`, and on a 503, a timeout or a transport
//! error to `fail_over(..)` (RFC 3263 §4.3). IP literals pass through without any query, so
//! calling it for every configured destination is safe.

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ProtocolConfig, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use ivr_sip::Uri;
use ivr_sip::digest::RandomSource;
use ivr_sip::locate::{
    Answer, LocateError, LocateOptions, Locator, NaptrRecord, Query, SrvRecord, TargetList,
};
use std::net::SocketAddr;
use std::time::Duration;

/// How long and how much DNS may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveLimits {
    /// One query's timeout.
    pub query_timeout: Duration,
    /// Attempts per query (on timeout).
    pub attempts: usize,
    /// The deadline for a whole location (all its queries).
    pub total: Duration,
    /// Most answers the cache keeps.
    pub cache_size: u64,
    /// Longest a positive answer is cached, whatever its TTL.
    pub max_ttl: Duration,
    /// Longest a negative answer (NXDOMAIN, no records) is cached.
    pub negative_max_ttl: Duration,
}

impl Default for ResolveLimits {
    fn default() -> ResolveLimits {
        ResolveLimits {
            query_timeout: Duration::from_secs(2),
            attempts: 2,
            total: Duration::from_secs(8),
            cache_size: 512,
            max_ttl: Duration::from_secs(3600),
            negative_max_ttl: Duration::from_secs(30),
        }
    }
}

/// Why a destination could not be located.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The system's resolver configuration (`/etc/resolv.conf`) could not be read or has no
    /// nameserver.
    #[error("reading the system's DNS configuration: {0}")]
    System(#[source] NetError),
    /// The resolver could not be built.
    #[error("building the DNS resolver: {0}")]
    Build(#[source] NetError),
    /// DNS gave no usable target, or the URI cannot be located (RFC 3263).
    #[error(transparent)]
    Locate(#[from] LocateError),
    /// The location took longer than [`ResolveLimits::total`].
    #[error("DNS took longer than {0:?}")]
    Timeout(Duration),
}

/// Randomness for the RFC 2782 weighted choice: the operating system's.
struct OsRandom;

impl RandomSource for OsRandom {
    fn next_u64(&mut self) -> u64 {
        use rand_core::RngCore;
        rand_core::OsRng.next_u64()
    }
}

/// Locates SIP destinations by DNS (RFC 3263). Cheap to clone: clones share the cache.
#[derive(Clone)]
pub struct SipResolver {
    inner: TokioResolver,
    options: LocateOptions,
    limits: ResolveLimits,
}

impl std::fmt::Debug for SipResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipResolver")
            .field("options", &self.options)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl SipResolver {
    /// A resolver configured from `/etc/resolv.conf` (nameservers, search list, `ndots`),
    /// with our `limits` on time and cache.
    pub fn from_system(limits: ResolveLimits) -> Result<SipResolver, ResolveError> {
        let mut builder = TokioResolver::builder_tokio().map_err(ResolveError::System)?;
        apply(builder.options_mut(), &limits);
        let inner = builder.build().map_err(ResolveError::Build)?;
        Ok(SipResolver {
            inner,
            options: LocateOptions::default(),
            limits,
        })
    }

    /// A resolver that asks these name servers only (UDP, then TCP for truncated answers):
    /// a configured DNS server, or a test's.
    pub fn with_name_servers(
        servers: &[SocketAddr],
        limits: ResolveLimits,
    ) -> Result<SipResolver, ResolveError> {
        let name_servers = servers
            .iter()
            .map(|s| {
                let mut udp = ConnectionConfig::new(ProtocolConfig::Udp);
                udp.port = s.port();
                let mut tcp = ConnectionConfig::new(ProtocolConfig::Tcp);
                tcp.port = s.port();
                NameServerConfig::new(s.ip(), true, vec![udp, tcp])
            })
            .collect();
        let config = ResolverConfig::from_name_servers(name_servers);
        let mut opts = ResolverOpts::default();
        apply(&mut opts, &limits);
        let inner = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()
            .map_err(ResolveError::Build)?;
        Ok(SipResolver {
            inner,
            options: LocateOptions::default(),
            limits,
        })
    }

    /// Which transports to locate, in preference order, and whether to ask NAPTR first
    /// (default: UDP then TCP, no NAPTR).
    pub fn with_locate_options(mut self, options: LocateOptions) -> SipResolver {
        self.options = options;
        self
    }

    /// The targets for `uri`, in the order to try them (RFC 3263 §4): none asked for an IP
    /// literal, SRV and A/AAAA (and NAPTR if enabled) for a host name.
    pub async fn locate(&self, uri: &Uri) -> Result<TargetList, ResolveError> {
        let mut locator = Locator::new(uri, &self.options)?;
        let run = async {
            while let Some(q) = locator.poll_query() {
                let answer = self.ask(&q).await;
                locator.answer(answer, &mut OsRandom);
            }
        };
        tokio::time::timeout(self.limits.total, run)
            .await
            .map_err(|_| ResolveError::Timeout(self.limits.total))?;
        Ok(locator.finish()?)
    }

    /// One DNS question. Errors (timeouts, NXDOMAIN, no records) are an empty answer:
    /// RFC 3263 moves on alike.
    pub async fn ask(&self, query: &Query) -> Answer {
        match query {
            Query::Naptr(name) => {
                let records = match self.inner.lookup(name.as_str(), RecordType::NAPTR).await {
                    Ok(l) => l
                        .answers()
                        .iter()
                        .filter_map(|r| match &r.data {
                            RData::NAPTR(n) => Some(NaptrRecord {
                                order: n.order,
                                preference: n.preference,
                                flags: String::from_utf8_lossy(&n.flags).into_owned(),
                                services: String::from_utf8_lossy(&n.services).into_owned(),
                                replacement: n.replacement.to_string(),
                            }),
                            _ => None,
                        })
                        .collect(),
                    Err(e) => {
                        tracing::debug!(%name, error = %e, "NAPTR lookup");
                        Vec::new()
                    }
                };
                Answer::Naptr(records)
            }
            Query::Srv(name) => {
                let records = match self.inner.srv_lookup(name.as_str()).await {
                    Ok(l) => l
                        .answers()
                        .iter()
                        .filter_map(|r| match &r.data {
                            RData::SRV(s) => Some(SrvRecord {
                                priority: s.priority,
                                weight: s.weight,
                                port: s.port,
                                target: s.target.to_string(),
                            }),
                            _ => None,
                        })
                        .collect(),
                    Err(e) => {
                        tracing::debug!(%name, error = %e, "SRV lookup");
                        Vec::new()
                    }
                };
                Answer::Srv(records)
            }
            Query::Address(name) => match self.inner.lookup_ip(name.as_str()).await {
                Ok(l) => Answer::Address(l.iter().collect()),
                Err(e) => {
                    tracing::debug!(%name, error = %e, "address lookup");
                    Answer::Address(Vec::new())
                }
            },
        }
    }
}

fn apply(opts: &mut ResolverOpts, limits: &ResolveLimits) {
    opts.timeout = limits.query_timeout;
    opts.attempts = limits.attempts;
    opts.cache_size = limits.cache_size;
    opts.positive_max_ttl = Some(limits.max_ttl);
    opts.negative_max_ttl = Some(limits.negative_max_ttl);
}

#[cfg(test)]
mod tests;
