//! Retention: callback requests older than the configured number of days are deleted, row
//! and recording, by a job that runs at start and every hour.

use ivr_voicemail::store::Store;
use std::path::PathBuf;
use std::time::Duration;
use tracing::{info, warn};

/// Delete requests received more than `days` days before `now`, and their recordings.
/// Returns how many were deleted.
pub async fn sweep(store: &Store, voicemail_dir: &std::path::Path, days: u32, now: u64) -> usize {
    let before = now.saturating_sub(u64::from(days) * 86_400);
    match store.delete_older_than(before).await {
        Ok(ids) => {
            for id in &ids {
                // Ids are made by the engine (digits, hex and a dash): safe as file names.
                for name in [format!("{id}.wav"), format!("{id}.json")] {
                    let _ = std::fs::remove_file(voicemail_dir.join(name));
                }
            }
            if !ids.is_empty() {
                info!(
                    deleted = ids.len(),
                    days, "retention: old callback requests deleted"
                );
            }
            ids.len()
        }
        Err(e) => {
            warn!(error = %e, "retention: cannot delete old callback requests");
            0
        }
    }
}

/// Run [`sweep`] now and every hour, for as long as the process runs (`days` 0: never).
pub async fn run(store: Store, voicemail_dir: PathBuf, days: u32) {
    if days == 0 {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let now = crate::clock::unix_now();
        sweep(&store, &voicemail_dir, days, now).await;
    }
}
