//! Pure SIP (RFC 3261) for the IVR engine.
//!
//! - [`message`]: requests, responses, headers, and the printer;
//! - [`parse`]: the strict parser for datagrams and [`framing`] for TCP streams;
//! - [`uri`], [`header`]: SIP URIs and the typed header values the engine relies on;
//! - [`transaction`]: the four RFC 3261 §17 transaction machines (with RFC 6026), on a virtual clock;
//! - [`ids`]: Call-ID and tag newtypes;
//! - [`dialog`]: dialog state (RFC 3261 §12), with [`route`] sets and next hops;
//! - [`session_timer`]: session timers (RFC 4028): negotiation and the refresh/expiry clock;
//! - [`reliable`]: reliable provisional responses (RFC 3262), UAS side;
//! - [`uac`]: placing a call (an INVITE to an answered dialog or a failure, §13.2, §9.1);
//! - [`digest`]: digest authentication, client and server (RFC 7616, RFC 8760);
//! - [`registrar`]: a registrar for configured accounts (RFC 3261 §10.3) with digest (RFC 7616, RFC 8760);
//! - [`refer`]: transferring a call by REFER, as transferor (RFC 3515, RFC 3892, RFC 6665);
//! - [`locate`]: which addresses and transports a URI with a host name leads to (RFC 3263, RFC 2782).
//!
//! Nothing here does I/O or reads a clock: callers pass `now` and bytes in, and take bytes,
//! events and deadlines out.

pub mod dialog;
pub mod digest;
pub mod framing;
pub mod fuzz;
pub mod header;
pub mod ids;
pub mod locate;
pub mod message;
pub mod parse;
pub mod refer;
pub mod registrar;
pub mod reliable;
pub mod route;
pub mod route_key;
pub mod session_timer;
pub mod transaction;
pub mod uac;
pub mod uri;

pub use header::{CSeq, HeaderName, NameAddr, Via};
pub use ids::{CallId, Tag};
pub use message::{Headers, Message, Method, Request, Response, StatusCode};
pub use parse::{ParseError, parse_message};
pub use uri::Uri;

/// How a message travels: this decides retransmission timers (RFC 3261 §17).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP: unreliable, messages are retransmitted on timers.
    Udp,
    /// TCP: reliable, no retransmissions; Content-Length frames each message.
    Tcp,
    /// TLS over TCP (RFC 3261 §26.2, RFC 5630): framed and timed as TCP.
    Tls,
}

impl Transport {
    /// Whether the transport delivers reliably (RFC 3261 §17.1.1.2).
    pub const fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Tls)
    }

    /// The token used in Via (RFC 3261 §20.42).
    pub const fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
}

/// An arbitrary starting point for tests' virtual clocks (the one place tests read the clock).
#[cfg(test)]
#[allow(clippy::disallowed_methods)]
pub(crate) fn test_epoch() -> std::time::Instant {
    std::time::Instant::now()
}

/// A fixed instant for fuzz bodies, which need "now" but no real time.
#[allow(clippy::disallowed_methods)]
fn fuzz_epoch() -> std::time::Instant {
    // One clock read per process: fuzz bodies are not protocol logic; the value is arbitrary.
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}
