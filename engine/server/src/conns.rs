//! Connections under attack: file descriptors budgeted at start, connection caps overall and
//! per client address for SIP over TCP and for HTTP, and the timeouts that close
//! connections which hold a descriptor without saying anything.
//!
//! - At start the process raises its open-file limit to the hard limit ([`raise_nofile`]).
//! - [`Budget`] reserves descriptors for what calls need (an RTP and an RTCP socket and a
//!   recording file per call the RTP range and `--max-calls` allow, plus a fixed allowance
//!   for the store, logs and config files), and lowers the connection caps if the rest
//!   cannot hold them: an idle-connection flood then runs into a cap, never into the RTP
//!   sockets of the next call.
//! - [`ConnTable`] admits a connection only under both caps. At a cap, the oldest
//!   connection from that address (or, at the overall cap, from anywhere) that has not yet
//!   sent a whole message is closed to make room; if every one has, the new connection is
//!   refused. Idle connections cannot crowd out a caller who speaks.
//! - SIP over TCP: a connection must complete each message within `--sip-tcp-message-timeout`
//!   of its first byte (and its first message within that time of connecting), and is closed
//!   after `--sip-tcp-idle-timeout` without any bytes (RFC 5626 keep-alives count).
//!   HTTP: the request head must arrive within `--http-header-timeout`, which also ends idle
//!   keep-alive connections.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// `ivr serve` options for connection caps and timeouts.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnArgs {
    /// SIP-over-TCP connections at most, in all.
    #[arg(long, default_value_t = 4096)]
    pub sip_tcp_max_connections: usize,
    /// SIP-over-TCP connections at most from one address.
    #[arg(long, default_value_t = 256)]
    pub sip_tcp_max_per_address: usize,
    /// Seconds a SIP-over-TCP connection may take to deliver a whole message once it has
    /// started (and its first message after connecting).
    #[arg(long, default_value_t = 10)]
    pub sip_tcp_message_timeout: u64,
    /// Seconds without a byte before a SIP-over-TCP connection is closed (above RFC 5626's
    /// keep-alive interval of up to 120 s).
    #[arg(long, default_value_t = 300)]
    pub sip_tcp_idle_timeout: u64,
    /// HTTP connections at most, in all.
    #[arg(long, default_value_t = 1024)]
    pub http_max_connections: usize,
    /// HTTP connections at most from one address.
    #[arg(long, default_value_t = 64)]
    pub http_max_per_address: usize,
    /// Seconds an HTTP client has to send a request's head (also the keep-alive idle limit).
    #[arg(long, default_value_t = 10)]
    pub http_header_timeout: u64,
}

impl Default for ConnArgs {
    fn default() -> Self {
        ConnArgs {
            sip_tcp_max_connections: 4096,
            sip_tcp_max_per_address: 256,
            sip_tcp_message_timeout: 10,
            sip_tcp_idle_timeout: 300,
            http_max_connections: 1024,
            http_max_per_address: 64,
            http_header_timeout: 10,
        }
    }
}

/// Caps and timeouts for SIP over TCP.
#[derive(Debug, Clone)]
pub struct SipTcpLimits {
    /// Who may connect.
    pub table: Arc<ConnTable>,
    /// A started message (or the first one) must be whole within this.
    pub message_timeout: Duration,
    /// A connection without a byte for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for SipTcpLimits {
    fn default() -> Self {
        let a = ConnArgs::default();
        SipTcpLimits {
            table: Arc::new(ConnTable::new(
                a.sip_tcp_max_connections,
                a.sip_tcp_max_per_address,
            )),
            message_timeout: Duration::from_secs(a.sip_tcp_message_timeout),
            idle_timeout: Duration::from_secs(a.sip_tcp_idle_timeout),
        }
    }
}

/// Caps and the head timeout for HTTP.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Who may connect.
    pub table: Arc<ConnTable>,
    /// The request head must arrive within this.
    pub header_timeout: Duration,
}

/// Raise the soft open-file limit to the hard limit; returns the limit now in force.
pub fn raise_nofile() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let mut raised = limit;
    raised.current = limit.maximum;
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => limit.maximum.unwrap_or(1 << 20),
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
            limit.current.unwrap_or(1 << 20)
        }
    }
}

/// Descriptors kept for the store, logs, config files and the listening sockets.
pub const FIXED_RESERVE: u64 = 256;

/// How the process's descriptors are shared out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The open-file limit.
    pub nofile: u64,
    /// Kept for calls and the fixed allowance.
    pub reserved: u64,
    /// SIP-over-TCP connections at most.
    pub sip_tcp: usize,
    /// HTTP connections at most.
    pub http: usize,
}

impl Budget {
    /// Share `nofile` descriptors: 3 per call (RTP, RTCP, a recording) for up to `calls`
    /// calls and [`FIXED_RESERVE`], the rest for connections, the configured caps lowered
    /// in proportion if they do not fit.
    pub fn new(nofile: u64, calls: u64, args: &ConnArgs) -> Budget {
        let reserved = calls.saturating_mul(3).saturating_add(FIXED_RESERVE);
        let room = nofile.saturating_sub(reserved);
        let (sip, http) = (
            args.sip_tcp_max_connections as u64,
            args.http_max_connections as u64,
        );
        let (sip, http) = if sip + http <= room {
            (sip, http)
        } else {
            let total = (sip + http).max(1);
            (room * sip / total, room * http / total)
        };
        Budget {
            nofile,
            reserved,
            sip_tcp: sip.max(1) as usize,
            http: http.max(1) as usize,
        }
    }

    /// The SIP-over-TCP limits under this budget.
    pub fn sip_tcp(&self, args: &ConnArgs) -> SipTcpLimits {
        SipTcpLimits {
            table: Arc::new(ConnTable::new(
                self.sip_tcp,
                args.sip_tcp_max_per_address.min(self.sip_tcp),
            )),
            message_timeout: Duration::from_secs(args.sip_tcp_message_timeout.max(1)),
            idle_timeout: Duration::from_secs(args.sip_tcp_idle_timeout.max(1)),
        }
    }

    /// The HTTP limits under this budget.
    pub fn http(&self, args: &ConnArgs) -> HttpLimits {
        HttpLimits {
            table: Arc::new(ConnTable::new(
                self.http,
                args.http_max_per_address.min(self.http),
            )),
            header_timeout: Duration::from_secs(args.http_header_timeout.max(1)),
        }
    }
}

/// Open connections, oldest first, with the caps that admit new ones.
#[derive(Debug)]
pub struct ConnTable {
    max_total: usize,
    max_per_address: usize,
    inner: Mutex<Inner>,
    /// Counts refused connections, for `/metrics`, once given.
    refused: std::sync::OnceLock<prometheus_client::metrics::counter::Counter>,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    /// By admission order.
    open: BTreeMap<u64, Entry>,
    per_address: HashMap<IpAddr, usize>,
}

#[derive(Debug)]
struct Entry {
    ip: IpAddr,
    spoke: Arc<AtomicBool>,
    evict: Arc<Notify>,
}

/// An admitted connection; leaving its place when dropped.
#[derive(Debug)]
pub struct Admitted {
    id: u64,
    ip: IpAddr,
    table: Arc<ConnTable>,
    spoke: Arc<AtomicBool>,
    /// Notified when the connection is closed to make room for another.
    pub evict: Arc<Notify>,
}

impl Admitted {
    /// The connection delivered a whole message: it is no longer the first to be closed.
    pub fn spoke(&self) {
        self.spoke.store(true, Ordering::Relaxed);
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut inner = self.table.lock();
        if inner.open.remove(&self.id).is_some() {
            release(&mut inner, self.ip);
        }
    }
}

fn release(inner: &mut Inner, ip: IpAddr) {
    if let Some(n) = inner.per_address.get_mut(&ip) {
        *n -= 1;
        if *n == 0 {
            inner.per_address.remove(&ip);
        }
    }
}

impl ConnTable {
    /// At most `max_total` connections, `max_per_address` from one address.
    pub fn new(max_total: usize, max_per_address: usize) -> ConnTable {
        ConnTable {
            max_total: max_total.max(1),
            max_per_address: max_per_address.max(1),
            inner: Mutex::new(Inner::default()),
            refused: std::sync::OnceLock::new(),
        }
    }

    /// Count the connections refused for want of room in `counter` (from then on).
    pub fn count_refusals(&self, counter: prometheus_client::metrics::counter::Counter) {
        let _ = self.refused.set(counter);
    }

    fn refuse(&self) -> Option<Admitted> {
        if let Some(c) = self.refused.get() {
            c.inc();
        }
        None
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().open.len()
    }

    /// Admit a connection from `ip`, closing the oldest silent one at a cap; `None` if
    /// there is no room.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admitted> {
        let mut inner = self.lock();
        if inner.per_address.get(&ip).copied().unwrap_or(0) >= self.max_per_address
            && !evict_oldest_silent(&mut inner, Some(ip))
        {
            return self.refuse();
        }
        if inner.open.len() >= self.max_total && !evict_oldest_silent(&mut inner, None) {
            return self.refuse();
        }
        let id = inner.next;
        inner.next += 1;
        let spoke = Arc::new(AtomicBool::new(false));
        let evict = Arc::new(Notify::new());
        inner.open.insert(
            id,
            Entry {
                ip,
                spoke: spoke.clone(),
                evict: evict.clone(),
            },
        );
        *inner.per_address.entry(ip).or_insert(0) += 1;
        Some(Admitted {
            id,
            ip,
            table: self.clone(),
            spoke,
            evict,
        })
    }
}

/// Close the oldest connection (from `ip`, if given) that has not spoken; false if none.
fn evict_oldest_silent(inner: &mut Inner, ip: Option<IpAddr>) -> bool {
    let victim = inner
        .open
        .iter()
        .find(|(_, e)| ip.is_none_or(|ip| e.ip == ip) && !e.spoke.load(Ordering::Relaxed))
        .map(|(id, _)| *id);
    let Some(entry) = victim.and_then(|id| inner.open.remove(&id)) else {
        return false;
    };
    release(inner, entry.ip);
    // A stored permit: the connection's task sees it even if it is not waiting yet.
    entry.evict.notify_one();
    true
}

/// Whether an I/O error means the process (or system) is out of file descriptors.
pub fn out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(code) if code == rustix::io::Errno::MFILE.raw_os_error()
        || code == rustix::io::Errno::NFILE.raw_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silent_connections_make_room_for_new_ones() {
        let t = Arc::new(ConnTable::new(3, 2));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = t.admit(a).unwrap();
        let second = t.admit(a).unwrap();
        second.spoke();
        // At the per-address cap: the oldest silent one from a goes.
        let third = t.admit(a).unwrap();
        assert_eq!(t.open(), 2);
        drop(first); // evicted already: dropping it changes nothing
        assert_eq!(t.open(), 2);
        third.spoke();
        assert!(t.admit(a).is_none(), "all of a's connections have spoken");
        let other = t.admit(b).unwrap();
        assert_eq!(t.open(), 3);
        // At the overall cap, only silent connections may go.
        let c: IpAddr = "192.0.2.3".parse().unwrap();
        let _c = t.admit(c).expect("b's silent connection made room");
        drop(other);
        assert_eq!(t.open(), 3);
    }

    #[test]
    fn the_budget_keeps_descriptors_for_calls() {
        let args = ConnArgs::default();
        let b = Budget::new(1 << 20, 5000, &args);
        assert_eq!((b.sip_tcp, b.http), (4096, 1024));
        let b = Budget::new(2000, 500, &args);
        assert_eq!(b.reserved, 1756);
        assert!(b.sip_tcp + b.http <= 244, "{b:?}");
    }
}
