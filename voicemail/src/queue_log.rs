//! The queue event log in the store ([`ivr_queues::log::Row`]s, table `queue_events`):
//! written as the engine's queue center reports events, read back for `ivr queues report`,
//! and trimmed by retention like callback requests.

use crate::store::{Store, StoreError};
use ivr_queues::log::{Kind, Row};
use sqlx::Row as _;

/// Most rows one [`Store::queue_events`] call returns (a report over a longer window is
/// made of several calls).
pub const MAX_ROWS: u32 = 1_000_000;

impl Store {
    /// Store `rows`, all or none.
    pub async fn insert_queue_events(&self, rows: &[Row]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        let q = self.sql(
            "INSERT INTO queue_events (at_ms, kind, queue, waiter, agent, position, wait_ms, \
             talk_ms, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        );
        for r in rows {
            sqlx::query(&q)
                .bind(r.at_ms)
                .bind(r.kind.as_str())
                .bind(r.queue.as_deref())
                .bind(r.call.as_deref())
                .bind(r.agent.as_deref())
                .bind(r.position)
                .bind(r.wait_ms)
                .bind(r.talk_ms)
                .bind(r.detail.as_deref())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The rows with `from_ms <= at_ms < to_ms`, oldest first, at most `limit`. Rows of a
    /// kind this version does not know (written by a newer one) are left out.
    pub async fn queue_events(
        &self,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<Row>, StoreError> {
        let q = self.sql(
            "SELECT at_ms, kind, queue, waiter, agent, position, wait_ms, talk_ms, detail \
             FROM queue_events WHERE at_ms >= ? AND at_ms < ? ORDER BY at_ms, seq LIMIT ?",
        );
        let rows = sqlx::query(&q)
            .bind(from_ms)
            .bind(to_ms)
            .bind(i64::from(limit.min(MAX_ROWS)))
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let kind: String = r.try_get("kind")?;
            let Some(kind) = Kind::parse(&kind) else {
                continue;
            };
            out.push(Row {
                at_ms: r.try_get("at_ms")?,
                kind,
                queue: r.try_get("queue")?,
                call: r.try_get("waiter")?,
                agent: r.try_get("agent")?,
                position: r.try_get("position")?,
                wait_ms: r.try_get("wait_ms")?,
                talk_ms: r.try_get("talk_ms")?,
                detail: r.try_get("detail")?,
            });
        }
        Ok(out)
    }

    /// Delete the rows older than `before_ms` (retention); returns how many.
    pub async fn delete_queue_events_before(&self, before_ms: i64) -> Result<u64, StoreError> {
        let q = self.sql("DELETE FROM queue_events WHERE at_ms < ?");
        let done = sqlx::query(&q).bind(before_ms).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The same checks on any store; the PostgreSQL suite runs them too.
    pub(crate) async fn exercise(store: &Store) {
        let mut answer = Row::new(2_000, Kind::Answer);
        answer.queue = Some("sales".into());
        answer.call = Some("abc@192.0.2.1".into());
        answer.agent = Some("alice".into());
        answer.wait_ms = Some(15_000);
        let mut enter = Row::new(1_000, Kind::Enter);
        enter.queue = Some("sales".into());
        enter.call = Some("abc@192.0.2.1".into());
        enter.position = Some(1);
        let start = Row::new(500, Kind::Start);
        store
            .insert_queue_events(&[start.clone(), answer.clone(), enter.clone()])
            .await
            .unwrap();
        let got = store.queue_events(0, 10_000, 100).await.unwrap();
        assert_eq!(
            got,
            [start.clone(), enter.clone(), answer.clone()],
            "oldest first"
        );
        assert_eq!(
            store.queue_events(1_000, 2_000, 100).await.unwrap(),
            [enter]
        );
        assert_eq!(store.queue_events(0, 10_000, 1).await.unwrap(), [start]);
        assert_eq!(store.delete_queue_events_before(2_000).await.unwrap(), 2);
        assert_eq!(store.queue_events(0, 10_000, 100).await.unwrap(), [answer]);
    }
}
