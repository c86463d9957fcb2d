//! Webhooks: each new callback request is POSTed as JSON to a configured URL, signed with
//! HMAC-SHA256, from the store's outbox, so a notification survives restarts and outages.
//!
//! The outbox row is written in the same transaction as the request. A delivery task takes
//! due rows every second; a 2xx answer marks the row delivered, anything else (an error
//! status, no answer in 10 s, no connection) schedules another attempt after 1, 2, 4, 8...
//! seconds, at most an hour apart, for as long as it takes.
//!
//! Headers: `X-IVR-Event` (`callback_request.created`), `X-IVR-Delivery` (the outbox
//! number, the same on every retry: receivers can drop duplicates), `X-IVR-Timestamp`
//! (Unix seconds) and `X-IVR-Signature: sha256=HEX`, the HMAC-SHA256 with the shared secret
//! of `TIMESTAMP.BODY`.

use crate::clock::unix_now;
use crate::status::Status;
use hmac::{Hmac, Mac};
use ivr_voicemail::store::Store;
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// Where notifications go.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// The URL POSTed to.
    pub url: String,
    /// The shared secret of the signature.
    pub secret: Arc<str>,
}

/// The signature header's value for `body` sent at `timestamp`.
pub fn signature(secret: &str, timestamp: u64, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any size");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The wait before attempt number `attempts + 1`.
pub fn backoff(attempts: u32) -> u64 {
    2u64.saturating_pow(attempts.min(12)).min(3600)
}

/// Deliver the outbox for as long as the process runs.
pub async fn deliver(store: Store, hook: Webhook, status: Arc<Status>) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("ivr/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "cannot build the webhook client; notifications stay in the outbox");
            return;
        }
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let due = match store
            .due_notifications("callback_request.created", unix_now(), 50)
            .await
        {
            Ok(d) => d,
            Err(e) => {
                warn!(error = %e, "cannot read the outbox");
                continue;
            }
        };
        for n in due {
            let stamp = unix_now();
            let sent = client
                .post(&hook.url)
                .header("content-type", "application/json")
                .header("x-ivr-event", &n.event)
                .header("x-ivr-delivery", n.seq.to_string())
                .header("x-ivr-timestamp", stamp.to_string())
                .header(
                    "x-ivr-signature",
                    signature(&hook.secret, stamp, &n.payload),
                )
                .body(n.payload.clone())
                .send()
                .await;
            let result = match sent {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(format!("answered {}", r.status())),
                Err(e) => Err(e.to_string()),
            };
            match result {
                Ok(()) => {
                    status.webhook(true);
                    info!(request = %n.request_id, delivery = n.seq, "webhook delivered");
                    if let Err(e) = store.delivered(n.seq, unix_now()).await {
                        warn!(error = %e, "cannot mark a webhook delivered; it may be sent again");
                    }
                }
                Err(why) => {
                    status.webhook(false);
                    let wait = backoff(n.attempts);
                    warn!(request = %n.request_id, delivery = n.seq, attempt = n.attempts + 1, error = %why, retry_in_s = wait, "webhook not delivered; will retry");
                    if let Err(e) = store.retry_later(n.seq, unix_now() + wait, &why).await {
                        warn!(error = %e, "cannot reschedule a webhook");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_and_backoff() {
        // RFC 4231 test case 2 shape: a known key and message give a known HMAC.
        let s = signature("Jefe", 0, "what do ya want for nothing?");
        assert!(s.starts_with("sha256=") && s.len() == 7 + 64);
        assert_ne!(s, signature("Jefe", 1, "what do ya want for nothing?"));
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            (backoff(0), backoff(1), backoff(5), backoff(40)),
            (1, 2, 32, 3600)
        );
    }
}
