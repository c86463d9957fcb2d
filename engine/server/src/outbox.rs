//! Delivering the store's outbox: one loop for every kind of notification (webhooks,
//! e-mail). Each second it takes the due rows of its kind and sends them; a success marks a
//! row delivered, a failure schedules the next attempt after [`backoff`], so notifications
//! survive outages and restarts.

use crate::clock::unix_now;
use crate::status::Outcomes;
use ivr_voicemail::store::{Notification, Store};
use std::future::Future;
use std::time::Duration;
use tracing::{info, warn};

/// One kind of notification, and what its log lines say.
#[derive(Debug, Clone, Copy)]
pub struct Channel {
    /// The outbox event it delivers (`callback_request.created`, `email`).
    pub event: &'static str,
    /// Logged when one is delivered.
    pub delivered: &'static str,
    /// Logged when an attempt fails.
    pub failed: &'static str,
    /// How many rows one pass takes.
    pub batch: u32,
}

/// The wait in seconds before attempt number `attempts + 1`: 1, 2, 4 ... at most an hour.
pub fn backoff(attempts: u32) -> u64 {
    2u64.saturating_pow(attempts.min(12)).min(3600)
}

/// Deliver `channel`'s rows with `send` for as long as the process runs, counting each
/// attempt in `counts`.
pub async fn run<F, Fut>(store: Store, channel: Channel, counts: &Outcomes, mut send: F)
where
    F: FnMut(Notification) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let due = match store
            .due_notifications(channel.event, unix_now(), channel.batch)
            .await
        {
            Ok(d) => d,
            Err(e) => {
                warn!(error = %e, "cannot read the outbox");
                continue;
            }
        };
        for n in due {
            let (seq, attempts, request) = (n.seq, n.attempts, n.request_id.clone());
            match send(n).await {
                Ok(()) => {
                    counts.record(true);
                    info!(%request, delivery = seq, "{}", channel.delivered);
                    if let Err(e) = store.delivered(seq, unix_now()).await {
                        warn!(error = %e, "cannot mark a notification delivered; it may be sent again");
                    }
                }
                Err(why) => {
                    counts.record(false);
                    let wait = backoff(attempts);
                    warn!(%request, delivery = seq, attempt = attempts + 1, error = %why, retry_in_s = wait, "{}", channel.failed);
                    if let Err(e) = store.retry_later(seq, unix_now() + wait, &why).await {
                        warn!(error = %e, "cannot reschedule a notification");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::backoff;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(
            (backoff(0), backoff(1), backoff(5), backoff(40)),
            (1, 2, 32, 3600)
        );
    }
}
