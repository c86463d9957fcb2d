//! `ivr serve` flags for SIP admission under attack: per-source request rates with
//! temporary bans, calls per source, and the cap on calls waiting for their ACK; and how
//! long RTP goes toward a peer that never sends (`ivr_engine::media`). The rules
//! themselves are the engine's (`ivr_engine::admission`); sources given as
//! `--sip-trusted-proxy` are exempt from the per-source limits (every caller behind a proxy
//! shares its address).

use ivr_engine::admission::AdmissionConfig;
use std::time::Duration;

/// `ivr serve` options for SIP admission.
#[derive(clap::Args, Debug, Clone)]
pub struct AdmissionArgs {
    /// SIP requests a second from one source address (bursts of twice this); a source over
    /// it is ignored for --sip-ban-seconds. 0: no limit. Trusted proxies are exempt.
    #[arg(long, default_value_t = 200)]
    pub sip_rate_per_source: u32,
    /// Seconds a source over its request rate is ignored (its requests get no answer).
    #[arg(long, default_value_t = 60)]
    pub sip_ban_seconds: u64,
    /// Calls in progress from one source address at most (more get 503). 0: no limit.
    /// Trusted proxies are exempt.
    #[arg(long, default_value_t = 1000)]
    pub max_calls_per_source: usize,
    /// Calls set up but not yet confirmed by the caller's ACK at most; at the cap the oldest
    /// is dropped to make room for a new INVITE. Default: a quarter of --max-calls, at most
    /// 256. 0: no limit.
    #[arg(long)]
    pub max_pending_calls: Option<usize>,
    /// Failed REGISTER authentications (wrong password or unknown user) from one source
    /// address within a minute before it is ignored for --sip-ban-seconds. 0: no limit.
    /// Trusted proxies are exempt.
    #[arg(long, default_value_t = 10)]
    pub sip_auth_failures: u32,
    /// Seconds the engine sends audio toward a caller that has sent no RTP or RTCP yet
    /// (an INVITE may name someone else's address). 0: until the media timeout.
    #[arg(long, default_value_t = 5)]
    pub rtp_send_without_peer: u64,
}

impl AdmissionArgs {
    /// How long to send toward a peer that has sent nothing (`None`: no limit).
    pub fn send_without_peer(&self) -> Option<Duration> {
        (self.rtp_send_without_peer > 0).then(|| Duration::from_secs(self.rtp_send_without_peer))
    }

    /// The engine's admission settings for an engine taking `max_calls` calls.
    pub fn config(&self, max_calls: usize) -> AdmissionConfig {
        AdmissionConfig {
            per_source_rate: self.sip_rate_per_source,
            ban: Duration::from_secs(self.sip_ban_seconds),
            per_source_calls: self.max_calls_per_source,
            max_pending: self
                .max_pending_calls
                .unwrap_or_else(|| (max_calls / 4).clamp(1, 256)),
            auth_failures: self.sip_auth_failures,
        }
    }
}

impl Default for AdmissionArgs {
    fn default() -> Self {
        let c = AdmissionConfig::default();
        AdmissionArgs {
            sip_rate_per_source: c.per_source_rate,
            sip_ban_seconds: c.ban.as_secs(),
            max_calls_per_source: c.per_source_calls,
            max_pending_calls: None,
            sip_auth_failures: c.auth_failures,
            rtp_send_without_peer: ivr_engine::media::SEND_WITHOUT_PEER.as_secs(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_defaults_are_the_engines() {
        assert_eq!(
            AdmissionArgs::default().config(10_000),
            AdmissionConfig::default()
        );
        assert_eq!(AdmissionArgs::default().config(100).max_pending, 25);
        assert_eq!(AdmissionArgs::default().config(1).max_pending, 1);
        let mut args = AdmissionArgs::default();
        assert_eq!(args.send_without_peer(), Some(Duration::from_secs(5)));
        args.rtp_send_without_peer = 0;
        assert_eq!(args.send_without_peer(), None);
    }
}
