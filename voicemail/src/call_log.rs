//! Call records in the store ([`CallRecord`]s, tables `calls`, `call_steps` and
//! `call_answers`, the survey's answers): written
//! by the engine as calls end, read back by `ivr calls`, trimmed by retention like the
//! queue event log.

use crate::calls::{CallAnswer, CallRecord, CallStep};
use crate::store::{Store, StoreError, text};
use sqlx::Row as _;

/// Most records one [`Store::calls`] call returns.
pub const MAX_CALLS: u32 = 100_000;

/// A survey comment as [`Store::recent_comments`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct RecentComment {
    /// The call's SIP Call-ID.
    pub call_id: String,
    /// When the call started (Unix milliseconds).
    pub started_ms: i64,
    /// The caller's number, if given.
    pub caller: Option<String>,
    /// The survey's name.
    pub survey: String,
    /// The question's name.
    pub question: String,
    /// `answered`, or `hangup` (the caller hung up while speaking).
    pub outcome: String,
    /// The recording's store key.
    pub recording: String,
}

/// Which records [`Store::calls`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallFilter {
    /// Calls started at or after this (Unix milliseconds).
    pub from_ms: i64,
    /// Calls started before this.
    pub to_ms: i64,
    /// At most this many (capped at [`MAX_CALLS`]).
    pub limit: u32,
    /// Newest first (else oldest first).
    pub newest_first: bool,
}

const COLUMNS: &str = "seq, call_id, started_ms, answered_ms, ended_ms, duration_ms, caller, \
     called, end_reason, entry, language, exit_kind, exit_to, queue, queue_wait_ms, agent, \
     steps_truncated, request_id";

impl Store {
    /// Store `records` with their steps, all or none.
    pub async fn insert_calls(&self, records: &[CallRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        let insert = self.sql(
            "INSERT INTO calls (call_id, started_ms, answered_ms, ended_ms, duration_ms, caller, \
             called, end_reason, entry, language, exit_kind, exit_to, queue, queue_wait_ms, \
             agent, steps_truncated, request_id) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             RETURNING seq",
        );
        let step = self.sql(
            "INSERT INTO call_steps (call_seq, idx, menu, at_ms, outcome, pressed, prompt) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        );
        let answer = self.sql(
            "INSERT INTO call_answers (call_seq, idx, survey, question, answer, outcome, \
             recording) VALUES (?, ?, ?, ?, ?, ?, ?)",
        );
        for r in records {
            let row = sqlx::query(&insert)
                .bind(text(&r.call_id))
                .bind(r.started_ms)
                .bind(r.answered_ms)
                .bind(r.ended_ms)
                .bind(r.duration_ms)
                .bind(r.caller.as_deref().map(text))
                .bind(r.called.as_deref().map(text))
                .bind(text(&r.end_reason))
                .bind(r.entry.as_deref().map(text))
                .bind(r.language.as_deref().map(text))
                .bind(r.exit.as_deref().map(text))
                .bind(r.exit_to.as_deref().map(text))
                .bind(r.queue.as_deref().map(text))
                .bind(r.queue_wait_ms)
                .bind(r.agent.as_deref().map(text))
                .bind(i64::from(r.steps_truncated))
                .bind(r.request_id.as_deref().map(text))
                .fetch_one(&mut *tx)
                .await?;
            let seq: i64 = row.try_get("seq")?;
            for (i, s) in r.steps.iter().enumerate() {
                sqlx::query(&step)
                    .bind(seq)
                    .bind(i as i64)
                    .bind(text(&s.menu))
                    .bind(s.at_ms)
                    .bind(text(&s.outcome))
                    .bind(s.key.as_deref().map(text))
                    .bind(text(&s.prompt))
                    .execute(&mut *tx)
                    .await?;
            }
            for (i, a) in r.answers.iter().enumerate() {
                sqlx::query(&answer)
                    .bind(seq)
                    .bind(i as i64)
                    .bind(text(&a.survey))
                    .bind(text(&a.question))
                    .bind(a.answer.as_deref().map(text))
                    .bind(text(&a.outcome))
                    .bind(a.recording.as_deref().map(text))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The records `filter` selects, with their steps.
    pub async fn calls(&self, filter: &CallFilter) -> Result<Vec<CallRecord>, StoreError> {
        let order = if filter.newest_first { "DESC" } else { "ASC" };
        let q = self.sql(&format!(
            "SELECT {COLUMNS} FROM calls WHERE started_ms >= ? AND started_ms < ? \
             ORDER BY started_ms {order}, seq {order} LIMIT ?"
        ));
        let rows = sqlx::query(&q)
            .bind(filter.from_ms)
            .bind(filter.to_ms)
            .bind(i64::from(filter.limit.min(MAX_CALLS)))
            .fetch_all(&self.pool)
            .await?;
        self.with_steps(&rows).await
    }

    /// The records of the call named `call_id` (usually one), oldest first.
    pub async fn call(&self, call_id: &str) -> Result<Vec<CallRecord>, StoreError> {
        let q = self.sql(&format!(
            "SELECT {COLUMNS} FROM calls WHERE call_id = ? ORDER BY started_ms, seq LIMIT 100"
        ));
        // As stored: a NUL in a Call-ID is U+FFFD (PostgreSQL refuses NUL, failing the query).
        let rows = sqlx::query(&q)
            .bind(text(call_id))
            .fetch_all(&self.pool)
            .await?;
        self.with_steps(&rows).await
    }

    /// The comments (store keys of their recordings) of the calls started before
    /// `before_ms`: retention deletes their files with the records.
    pub async fn call_recordings_before(&self, before_ms: i64) -> Result<Vec<String>, StoreError> {
        let q = self.sql(
            "SELECT recording FROM call_answers WHERE recording IS NOT NULL AND call_seq IN \
             (SELECT seq FROM calls WHERE started_ms < ?)",
        );
        let rows = sqlx::query(&q)
            .bind(before_ms)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get("recording").map_err(StoreError::from))
            .collect()
    }

    /// Whether a stored call record links the comment `key` (crash recovery asks before
    /// storing the record kept beside a comment).
    pub async fn has_call_recording(&self, key: &str) -> Result<bool, StoreError> {
        let q = self.sql("SELECT COUNT(*) AS n FROM call_answers WHERE recording = ?");
        let n: i64 = sqlx::query(&q)
            .bind(key)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        Ok(n > 0)
    }

    /// The newest comments, newest first (at most `limit`, capped at 1,000): each with its
    /// call record's Call-ID, start and caller, for the staff page.
    pub async fn recent_comments(&self, limit: u32) -> Result<Vec<RecentComment>, StoreError> {
        let q = self.sql(
            "SELECT c.call_id, c.started_ms, c.caller, a.survey, a.question, a.outcome, \
             a.recording FROM call_answers a JOIN calls c ON c.seq = a.call_seq \
             WHERE a.recording IS NOT NULL ORDER BY c.started_ms DESC, c.seq DESC LIMIT ?",
        );
        let rows = sqlx::query(&q)
            .bind(i64::from(limit.min(1000)))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(RecentComment {
                    call_id: r.try_get("call_id")?,
                    started_ms: r.try_get("started_ms")?,
                    caller: r.try_get("caller")?,
                    survey: r.try_get("survey")?,
                    question: r.try_get("question")?,
                    outcome: r.try_get("outcome")?,
                    recording: r.try_get("recording")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Delete the records of calls started before `before_ms` (retention); returns how
    /// many, and the comments (store keys) they linked, read in the same transaction: the
    /// caller deletes those files, and no record's file is left behind by a failure
    /// between reading the keys and deleting the rows.
    pub async fn delete_calls_before(
        &self,
        before_ms: i64,
    ) -> Result<(u64, Vec<String>), StoreError> {
        let mut tx = self.pool.begin().await?;
        // A write first: SQLite then takes the write lock waiting its turn (busy timeout),
        // where a read-then-write transaction fails at once with "database is locked" if
        // another connection wrote meanwhile (its snapshot cannot be upgraded), as the
        // engine's call records and queue log do all the time.
        let in_old = |table: &str| {
            self.sql(&format!(
                "DELETE FROM {table} WHERE call_seq IN \
                 (SELECT seq FROM calls WHERE started_ms < ?)"
            ))
        };
        sqlx::query(&in_old("call_steps"))
            .bind(before_ms)
            .execute(&mut *tx)
            .await?;
        let q = self.sql(
            "SELECT recording FROM call_answers WHERE recording IS NOT NULL AND call_seq IN \
             (SELECT seq FROM calls WHERE started_ms < ?)",
        );
        let keys = sqlx::query(&q)
            .bind(before_ms)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get("recording"))
            .collect::<Result<Vec<String>, sqlx::Error>>()?;
        sqlx::query(&in_old("call_answers"))
            .bind(before_ms)
            .execute(&mut *tx)
            .await?;
        let q = self.sql("DELETE FROM calls WHERE started_ms < ?");
        let done = sqlx::query(&q).bind(before_ms).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok((done.rows_affected(), keys))
    }

    /// The records of `rows` (from `calls`), each with its steps.
    async fn with_steps(&self, rows: &[sqlx::any::AnyRow]) -> Result<Vec<CallRecord>, StoreError> {
        let step_q = self.sql(
            "SELECT menu, at_ms, outcome, pressed, prompt FROM call_steps WHERE call_seq = ? \
             ORDER BY idx",
        );
        let answer_q = self.sql(
            "SELECT survey, question, answer, outcome, recording FROM call_answers \
             WHERE call_seq = ? ORDER BY idx",
        );
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let seq: i64 = r.try_get("seq")?;
            let answers = sqlx::query(&answer_q)
                .bind(seq)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|a| {
                    Ok(CallAnswer {
                        survey: a.try_get("survey")?,
                        question: a.try_get("question")?,
                        answer: a.try_get("answer")?,
                        outcome: a.try_get("outcome")?,
                        recording: a.try_get("recording")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            let steps = sqlx::query(&step_q)
                .bind(seq)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|s| {
                    Ok(CallStep {
                        menu: s.try_get("menu")?,
                        at_ms: s.try_get("at_ms")?,
                        outcome: s.try_get("outcome")?,
                        key: s.try_get("pressed")?,
                        prompt: s.try_get("prompt")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            let truncated: i64 = r.try_get("steps_truncated")?;
            out.push(CallRecord {
                call_id: r.try_get("call_id")?,
                started_ms: r.try_get("started_ms")?,
                answered_ms: r.try_get("answered_ms")?,
                ended_ms: r.try_get("ended_ms")?,
                duration_ms: r.try_get("duration_ms")?,
                caller: r.try_get("caller")?,
                called: r.try_get("called")?,
                end_reason: r.try_get("end_reason")?,
                entry: r.try_get("entry")?,
                language: r.try_get("language")?,
                exit: r.try_get("exit_kind")?,
                exit_to: r.try_get("exit_to")?,
                queue: r.try_get("queue")?,
                queue_wait_ms: r.try_get("queue_wait_ms")?,
                agent: r.try_get("agent")?,
                steps,
                steps_truncated: truncated != 0,
                answers,
                request_id: r.try_get("request_id")?,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn record(call_id: &str, started_ms: i64) -> CallRecord {
        CallRecord {
            call_id: call_id.into(),
            started_ms,
            answered_ms: Some(started_ms + 40),
            ended_ms: started_ms + 9_000,
            duration_ms: 9_000,
            caller: Some("+15551234".into()),
            called: Some("100".into()),
            end_reason: "caller_hangup".into(),
            entry: Some("main".into()),
            language: Some("en".into()),
            exit: Some("queue".into()),
            exit_to: Some("support".into()),
            queue: Some("support".into()),
            queue_wait_ms: Some(4_000),
            agent: Some("alice".into()),
            steps: vec![
                CallStep {
                    menu: "main".into(),
                    at_ms: started_ms + 40,
                    outcome: "invalid".into(),
                    key: Some("7".into()),
                    prompt: "interrupted".into(),
                },
                CallStep {
                    menu: "main".into(),
                    at_ms: started_ms + 1_000,
                    outcome: "key".into(),
                    key: Some("2".into()),
                    prompt: "full".into(),
                },
            ],
            steps_truncated: false,
            answers: vec![
                CallAnswer {
                    survey: "after_call".into(),
                    question: "rating".into(),
                    answer: Some("4".into()),
                    outcome: "answered".into(),
                    recording: None,
                },
                CallAnswer {
                    survey: "after_call".into(),
                    question: "recommend".into(),
                    answer: None,
                    outcome: "timeout".into(),
                    recording: None,
                },
                CallAnswer {
                    survey: "after_call".into(),
                    question: "comment".into(),
                    answer: None,
                    outcome: "answered".into(),
                    recording: Some(format!("comment-{started_ms}-0a1b2c3d")),
                },
            ],
            request_id: Some(format!("{}-0000abcd", started_ms / 1000)),
        }
    }

    /// The same checks on any store; the PostgreSQL suite runs them too.
    /// Retention deleting call records while the engine writes new ones (SQLite): a
    /// transaction that read first failed at once with "database is locked" when another
    /// connection had written since its read (its snapshot cannot be upgraded to write),
    /// which an admin saw as a warning at start-up when the queue log wrote beside it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retention_and_concurrent_writes_never_see_a_locked_database() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("callbacks.db").display());
        let store = std::sync::Arc::new(Store::open(&url).await.unwrap());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..3)
            .map(|w| {
                let (store, stop) = (store.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut i = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        i += 1;
                        let r = record(&format!("w{w}-{i}@192.0.2.1"), 10_000 + i);
                        store.insert_calls(&[r]).await.unwrap();
                    }
                })
            })
            .collect();
        let mut errors = Vec::new();
        for _ in 0..150 {
            if let Err(e) = store.delete_calls_before(5_000).await {
                errors.push(e.to_string());
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for w in writers {
            w.await.unwrap();
        }
        assert!(
            errors.is_empty(),
            "{} of 150 failed: {:?}",
            errors.len(),
            errors.first()
        );
    }

    pub(crate) async fn exercise(store: &Store) {
        let a = record("a@192.0.2.1", 1_000);
        let mut b = record("b@192.0.2.1", 2_000);
        b.answered_ms = None;
        b.caller = None;
        b.exit = None;
        b.exit_to = None;
        b.queue = None;
        b.queue_wait_ms = None;
        b.agent = None;
        b.steps.clear();
        b.steps_truncated = true;
        b.answers.clear();
        b.request_id = None;
        let c = record("c@192.0.2.1", 3_000);
        store
            .insert_calls(&[c.clone(), a.clone(), b.clone()])
            .await
            .unwrap();
        let all = CallFilter {
            from_ms: 0,
            to_ms: 10_000,
            limit: 100,
            newest_first: false,
        };
        assert_eq!(
            store.calls(&all).await.unwrap(),
            [a.clone(), b.clone(), c.clone()],
            "oldest first, steps in order"
        );
        let newest = CallFilter {
            newest_first: true,
            limit: 2,
            ..all
        };
        assert_eq!(store.calls(&newest).await.unwrap(), [c.clone(), b.clone()]);
        let window = CallFilter {
            from_ms: 2_000,
            to_ms: 3_000,
            ..all
        };
        assert_eq!(store.calls(&window).await.unwrap(), [b.clone()]);
        assert_eq!(store.call("a@192.0.2.1").await.unwrap(), [a]);
        assert!(store.call("nobody").await.unwrap().is_empty());
        // Comments: linked to their answer row, listed newest first, found for retention.
        assert!(
            store
                .has_call_recording("comment-1000-0a1b2c3d")
                .await
                .unwrap()
        );
        assert!(
            !store
                .has_call_recording("comment-2000-0a1b2c3d")
                .await
                .unwrap()
        );
        let recent = store.recent_comments(10).await.unwrap();
        let keys: Vec<&str> = recent.iter().map(|c| c.recording.as_str()).collect();
        assert_eq!(keys, ["comment-3000-0a1b2c3d", "comment-1000-0a1b2c3d"]);
        assert_eq!(recent[0].call_id, "c@192.0.2.1");
        assert_eq!(recent[0].question, "comment");
        assert_eq!(
            store.call_recordings_before(2_500).await.unwrap(),
            ["comment-1000-0a1b2c3d"]
        );
        assert_eq!(
            store.delete_calls_before(2_500).await.unwrap(),
            (2, vec!["comment-1000-0a1b2c3d".to_string()]),
            "the deleted records' comments, to delete their files"
        );
        assert!(
            store
                .call_recordings_before(2_500)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.calls(&all).await.unwrap(), [c]);
        let steps: i64 = sqlx::query("SELECT COUNT(*) AS n FROM call_steps")
            .fetch_one(&store.pool)
            .await
            .unwrap()
            .try_get("n")
            .unwrap();
        assert_eq!(steps, 2, "the deleted calls' steps went with them");
        let answers: i64 = sqlx::query("SELECT COUNT(*) AS n FROM call_answers")
            .fetch_one(&store.pool)
            .await
            .unwrap()
            .try_get("n")
            .unwrap();
        assert_eq!(answers, 3, "and their answers");
        // PostgreSQL's text refuses NUL: one record with it (a %00 in a caller's URI) must
        // not fail the batch, and so lose the other calls' records written with it.
        store.delete_calls_before(i64::MAX).await.unwrap();
        let plain = record("plain@192.0.2.1", 5_000);
        let mut nul = record("nul\0@192.0.2.1", 6_000);
        nul.caller = Some("+1555\0x1234".into());
        nul.steps[0].key = Some("\0".into());
        store
            .insert_calls(&[plain.clone(), nul.clone()])
            .await
            .expect("a NUL fails no batch");
        let mut cleaned = nul;
        cleaned.call_id = "nul\u{fffd}@192.0.2.1".into();
        cleaned.caller = Some("+1555\u{fffd}x1234".into());
        cleaned.steps[0].key = Some("\u{fffd}".into());
        let all_time = CallFilter {
            to_ms: i64::MAX,
            ..all
        };
        assert_eq!(
            store.calls(&all_time).await.unwrap(),
            [plain, cleaned.clone()]
        );
        // Looked up by the Call-ID as the peer sent it (crash recovery does, for a comment's
        // call): found, not a failed query.
        assert_eq!(
            store.call("nul\0@192.0.2.1").await.expect("no error"),
            [cleaned]
        );
    }
}
