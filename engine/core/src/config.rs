//! The engine's settings.

use ivr_sip::transaction::TimerConfig;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The methods the engine answers (RFC 3261 §20.5 Allow). NOTIFY is answered in the dialog
/// of a REFER the engine sent (RFC 3515 §2.4.4, the transfer's progress); any other NOTIFY
/// gets 481 (RFC 6665 §4.1.3: no such subscription).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK, NOTIFY";

/// The extensions the engine supports (RFC 3261 §20.37 Supported): session timers
/// (RFC 4028) and reliable provisional responses (RFC 3262).
pub const SUPPORTED: &str = "timer, 100rel";

/// Settings the engine needs from its owner.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The SIP address we listen on (UDP and TCP), used in Via and Contact.
    pub sip_addr: SocketAddr,
    /// The SIP-over-TLS address, when TLS listens (Via and Contact of TLS dialogs).
    pub sip_tls_addr: Option<SocketAddr>,
    /// The address put in SDP `c=` lines.
    pub media_ip: IpAddr,
    /// New INVITEs beyond this many calls get 503 (unless [`EngineConfig::call_slots`]
    /// shares a cap among shards).
    pub max_calls: usize,
    /// A call whose peer sends no RTP or RTCP for this long is ended with BYE.
    pub media_timeout: Duration,
    /// A call the peer holds (`sendonly`/`inactive`) with no RTP or RTCP for this long is
    /// ended with BYE: a phone that holds and never resumes does not keep a call forever.
    pub hold_timeout: Duration,
    /// RFC 3261 timer values.
    pub timers: TimerConfig,
    /// Server and User-Agent header value: by default the product name without its version,
    /// which would only tell scanners which flaws to try.
    pub user_agent: String,
    /// Seconds in Retry-After on 503.
    pub retry_after: u32,
    /// Seed for tags, branches and SSRCs.
    pub seed: u64,
    /// Secret seed for SRTP master keys: from the OS's randomness (the driver's job).
    pub srtp_seed: crate::srtp::KeySeed,
    /// Ring this long (180 Ringing) before answering; zero answers at once.
    pub answer_delay: Duration,
    /// Proxies whose P-Asserted-Identity is believed (RFC 3325 §2): INVITEs from these
    /// addresses give the caller's identity from it; from anywhere else, From is used.
    pub trusted_proxies: Vec<IpAddr>,
    /// Per-source limits and the cap on calls waiting for their ACK (trusted proxies are
    /// exempt from the per-source ones).
    pub admission: crate::admission::AdmissionConfig,
    /// How long to send RTP toward a peer that has sent nothing (`None`: until the media
    /// timeout); see [`crate::media::SEND_WITHOUT_PEER`].
    pub send_without_peer: Option<Duration>,
    /// Session timers (RFC 4028): our Min-SE and the interval we ask for.
    pub session_timer: ivr_sip::session_timer::Policy,
    /// Agents' registrations: expiry bounds, contacts per agent, nonce lifetime.
    pub registrar: ivr_sip::registrar::RegistrarConfig,
    /// This engine's place among the process's shards (default: the only one).
    pub shard: crate::shard::ShardSpec,
    /// The call cap shared with the other shards of the process; `None`: a cap of
    /// `max_calls` of this engine's own. When set, its cap replaces `max_calls`.
    pub call_slots: Option<crate::call_slots::CallSlots>,
    /// The per-source request rate and failed authentications are counted in front of the
    /// engine ([`crate::admission::SourceGate`], one for every shard), not by the engine.
    pub gate_in_front: bool,
    /// Calls per source counted with the process's other shards; `None`: by this engine.
    pub source_calls: Option<crate::admission::SourceCalls>,
    /// How long before its time an RTP packet may leave (default zero: never early). A
    /// driver whose wake-ups are spaced sets half their spacing: each packet then leaves
    /// within half a spacing of its time, early or late, rather than up to a whole one late.
    pub rtp_send_lead: Duration,
}

impl EngineConfig {
    /// Our SIP address on `transport` (Via sent-by and Contact).
    pub fn sip_addr_for(&self, transport: ivr_sip::Transport) -> SocketAddr {
        match (transport, self.sip_tls_addr) {
            (ivr_sip::Transport::Tls, Some(a)) => a,
            _ => self.sip_addr,
        }
    }

    /// Defaults around a listen address.
    pub fn new(sip_addr: SocketAddr) -> Self {
        EngineConfig {
            sip_addr,
            sip_tls_addr: None,
            media_ip: sip_addr.ip(),
            max_calls: 10_000,
            media_timeout: Duration::from_secs(30),
            hold_timeout: Duration::from_secs(30 * 60),
            timers: TimerConfig::default(),
            user_agent: "ivr".to_string(),
            retry_after: 5,
            seed: 0x5eed,
            srtp_seed: crate::srtp::KeySeed::default(),
            answer_delay: Duration::ZERO,
            trusted_proxies: Vec::new(),
            admission: crate::admission::AdmissionConfig::default(),
            send_without_peer: Some(crate::media::SEND_WITHOUT_PEER),
            session_timer: ivr_sip::session_timer::Policy::default(),
            registrar: ivr_sip::registrar::RegistrarConfig::default(),
            shard: crate::shard::ShardSpec::default(),
            call_slots: None,
            gate_in_front: false,
            source_calls: None,
            rtp_send_lead: Duration::ZERO,
        }
    }
}
