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
use crate::outbox::{self, Channel};
use crate::status::Status;
use hmac::{Hmac, Mac};
use ivr_voicemail::store::Store;
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;
use tracing::warn;

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

/// Deliver the outbox's webhooks for as long as the process runs.
pub async fn deliver(store: Store, hook: Webhook, status: Arc<Status>) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .user_agent("ivr")
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "cannot build the webhook client; notifications stay in the outbox");
            return;
        }
    };
    let channel = Channel {
        event: "callback_request.created",
        delivered: "webhook delivered",
        failed: "webhook not delivered; will retry",
        batch: 50,
    };
    outbox::run(store, channel, &status.webhooks, |n| {
        let stamp = unix_now();
        let request = client
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("x-ivr-event", &n.event)
            .header("x-ivr-delivery", n.seq.to_string())
            .header("x-ivr-timestamp", stamp.to_string())
            .header(
                "x-ivr-signature",
                signature(&hook.secret, stamp, &n.payload),
            )
            .body(n.payload);
        async move {
            match request.send().await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(format!("answered {}", r.status())),
                Err(e) => Err(e.to_string()),
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
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
    }
}
