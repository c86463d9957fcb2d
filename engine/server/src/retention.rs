//! Retention: callback requests older than the configured number of days are deleted, row
//! and recording, by a job that runs at start and every hour; so are queue events and call
//! records as old.

use ivr_voicemail::store::Store;
use std::path::PathBuf;
use std::time::Duration;
use tracing::{info, warn};

/// Delete requests received more than `days` days before `now`, and their recordings, and
/// the queue events and call records as old. Returns how many requests were deleted.
pub async fn sweep(store: &Store, voicemail_dir: &std::path::Path, days: u32, now: u64) -> usize {
    let before = now.saturating_sub(u64::from(days) * 86_400);
    // The queue event log keeps as long as the requests do.
    let before_ms = i64::try_from(before.saturating_mul(1000)).unwrap_or(i64::MAX);
    match store.delete_queue_events_before(before_ms).await {
        Ok(0) => {}
        Ok(n) => info!(deleted = n, days, "retention: old queue events deleted"),
        Err(e) => warn!(error = %e, "retention: cannot delete old queue events"),
    }
    // So do call records (issue #12), and their survey comments' recordings: the rows and
    // the keys they link in one transaction, then the files (a file without its row is
    // never served; a row's file is never left behind by a failure in between).
    match store.delete_calls_before(before_ms).await {
        Ok((n, comments)) => {
            if n > 0 {
                info!(deleted = n, days, "retention: old call records deleted");
            }
            for key in comments
                .iter()
                .filter(|k| ivr_voicemail::calls::is_comment_key(k))
            {
                for name in [format!("{key}.wav"), format!("{key}.json")] {
                    let _ = std::fs::remove_file(voicemail_dir.join(name));
                }
            }
        }
        Err(e) => warn!(error = %e, "retention: cannot delete old call records"),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use ivr_voicemail::CallbackRequest;

    fn request(id: &str, at: u64) -> CallbackRequest {
        CallbackRequest {
            id: id.into(),
            mailbox: "messages".into(),
            caller_id: None,
            called: None,
            call_id: format!("call-{id}"),
            received_at: at,
            callback_number: None,
            duration_ms: 1000,
            language: None,
            menu_path: vec![],
            variables: vec![],
            hung_up: true,
            has_message: true,
            email_to: vec![],
            kind: Default::default(),
            queue: None,
            priority: 0,
        }
    }

    /// The sweep takes the clock as an input: with a fixed `now` this test means the same
    /// on any date. A request exactly `days` old stays; one a second older goes, with its
    /// recording and sidecar; other files stay.
    #[tokio::test]
    async fn sweep_deletes_what_is_older_than_the_given_clock() {
        let dir = tempfile::tempdir().unwrap();
        let vm = dir.path().join("voicemail");
        std::fs::create_dir_all(&vm).unwrap();
        let db = format!("sqlite://{}", dir.path().join("callbacks.db").display());
        let store = Store::open(&db).await.unwrap();
        let now = 2_000_000_000;
        let limit = now - 30 * 86_400;
        for (id, at) in [("1-0dd", limit - 1), ("2-ed9e", limit), ("3-ab", now)] {
            store
                .insert(&request(id, at), false, at, Default::default())
                .await
                .unwrap();
            for ext in ["wav", "json"] {
                std::fs::write(vm.join(format!("{id}.{ext}")), b"x").unwrap();
            }
        }
        // Call records: one a millisecond too old, one exactly at the limit.
        // Each with a survey comment, its recording in the folder.
        let key = |ms: i64| format!("comment-{ms}-0000abcd");
        let record = |ms: i64| ivr_voicemail::calls::CallRecord {
            call_id: format!("call-{ms}"),
            started_ms: ms,
            ended_ms: ms,
            end_reason: "caller_hung_up".into(),
            answers: vec![ivr_voicemail::calls::CallAnswer {
                survey: "after_call".into(),
                question: "comment".into(),
                answer: None,
                outcome: "answered".into(),
                recording: Some(key(ms)),
            }],
            ..Default::default()
        };
        let limit_ms = limit as i64 * 1000;
        store
            .insert_calls(&[record(limit_ms - 1), record(limit_ms)])
            .await
            .unwrap();
        for ms in [limit_ms - 1, limit_ms] {
            std::fs::write(vm.join(format!("{}.wav", key(ms))), b"x").unwrap();
        }
        assert_eq!(sweep(&store, &vm, 30, now).await, 1);
        assert!(
            !vm.join(format!("{}.wav", key(limit_ms - 1))).exists(),
            "the old call's comment went with its record"
        );
        assert!(vm.join(format!("{}.wav", key(limit_ms))).exists());
        let calls = ivr_voicemail::call_log::CallFilter {
            from_ms: 0,
            to_ms: i64::MAX,
            limit: 10,
            newest_first: false,
        };
        let kept: Vec<i64> = store
            .calls(&calls)
            .await
            .unwrap()
            .iter()
            .map(|r| r.started_ms)
            .collect();
        assert_eq!(
            kept,
            [limit_ms],
            "call records are kept as long as requests"
        );
        for ext in ["wav", "json"] {
            assert!(!vm.join(format!("1-0dd.{ext}")).exists());
            assert!(vm.join(format!("2-ed9e.{ext}")).exists());
        }
        let left: Vec<String> = store
            .list(&Default::default())
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.request.id)
            .collect();
        assert_eq!(left, ["3-ab", "2-ed9e"]);
        // A second sweep at the same time finds nothing more; a day later the edge goes.
        assert_eq!(sweep(&store, &vm, 30, now).await, 0);
        assert_eq!(sweep(&store, &vm, 30, now + 86_400).await, 1);
    }
}
