//! The store writes a loop starts (call records, queue log rows, queued callbacks), off
//! the loop and bounded; the stop waits for those in flight.

use super::*;

/// The store and the writes in flight to it.
pub(super) struct Stores {
    /// Store writes in flight; finished ones are reaped as new ones start.
    pub(super) stores: tokio::task::JoinSet<()>,
    pub(super) store: ivr_voicemail::store::Store,
    pub(super) voicemail_dir: std::path::PathBuf,
    pub(super) notify: ivr_voicemail::store::Notify,
    pub(super) status: Arc<Status>,
    /// Queue event log rows not yet handed to the store.
    pub(super) queue_rows: Vec<ivr_queues::log::Row>,
    /// Call records not yet stored (bounded, see [`record_queue`]).
    pub(super) call_records: record_queue::RecordQueue,
    /// The server is stopping: records of the calls it hangs up are all kept.
    pub(super) stopping: bool,
}

impl Stores {
    /// Writes to `config`'s store, with nothing in flight yet.
    pub(super) fn new(config: &ServerConfig) -> Stores {
        Stores {
            stores: tokio::task::JoinSet::new(),
            store: config.store.clone(),
            voicemail_dir: config.voicemail_dir.clone(),
            notify: config.notify,
            status: config.status.clone(),
            queue_rows: Vec::new(),
            call_records: record_queue::RecordQueue::default(),
            stopping: false,
        }
    }

    /// What the stop needs to wait for these writes.
    pub(super) fn into_stop(self) -> (Stop, tokio::task::JoinSet<()>) {
        let stop = Stop {
            store: self.store,
            dir: self.voicemail_dir,
            notify: self.notify,
            status: self.status,
        };
        (stop, self.stores)
    }
}

impl Stores {
    /// Hand the queue events of this round to the store, in one transaction, off the loop.
    /// Writes in flight are bounded: past [`MAX_QUEUE_WRITES`] a batch is dropped and said.
    pub(super) fn store_queue_rows(&mut self) {
        if self.queue_rows.is_empty() {
            return;
        }
        let rows = std::mem::take(&mut self.queue_rows);
        while self.stores.try_join_next().is_some() {}
        if self.stores.len() >= MAX_QUEUE_WRITES {
            warn!(
                rows = rows.len(),
                "the store is behind: queue events dropped from the queue log"
            );
            return;
        }
        let store = self.store.clone();
        self.stores.spawn(async move {
            if let Err(e) = store.insert_queue_events(&rows).await {
                warn!(rows = rows.len(), error = %e, "cannot store queue events");
            }
        });
    }
}

impl Stores {
    /// Hand the call records of this round to the store, off the loop, in transactions of
    /// at most [`record_queue::CHUNK`]. While [`MAX_QUEUE_WRITES`] writes are in flight
    /// they wait for the next round, bounded by [`record_queue::RecordQueue`] (`force`, at
    /// stop: they go now, and the stop waits for them).
    pub(super) fn store_call_records(&mut self, force: bool) {
        if self.call_records.is_empty() {
            return;
        }
        while self.stores.try_join_next().is_some() {}
        let may_write = force || self.stores.len() < MAX_QUEUE_WRITES;
        let Some(batch) = self
            .call_records
            .round(Instant::now(), may_write, self.stopping)
        else {
            return;
        };
        let store = self.store.clone();
        let dir = self.voicemail_dir.clone();
        self.stores.spawn(async move {
            // Committed chunk by chunk: a stop that gives up on a slow store keeps those
            // already written, rather than rolling back one large transaction.
            for chunk in batch.records.chunks(record_queue::CHUNK) {
                if let Err(e) = store.insert_calls(chunk).await {
                    warn!(records = chunk.len(), error = %e, "cannot store call records");
                    continue;
                }
                // Their survey comments' records kept for a crash are no longer needed.
                for key in chunk
                    .iter()
                    .flat_map(|r| &r.answers)
                    .filter_map(|a| a.recording.as_deref())
                {
                    crate::recorder::forget_comment(&dir, key);
                }
            }
            drop(batch);
        });
    }

    /// A queued callback stored, or its status changed, off the loop (bounded like the
    /// queue log's writes).
    pub(super) fn store_queue_callback(&mut self, cmd: ivr_engine::QueueCallbackCmd) {
        while self.stores.try_join_next().is_some() {}
        if self.stores.len() >= MAX_QUEUE_WRITES {
            warn!("the store is behind: a queued callback's record dropped");
            return;
        }
        let store = self.store.clone();
        let notify = ivr_voicemail::store::Notify {
            webhook: self.notify.webhook,
            email: false,
        };
        self.stores.spawn(async move {
            let now = crate::clock::unix_now();
            match cmd {
                ivr_engine::QueueCallbackCmd::Store(request) => {
                    match store.insert(&request, false, now, notify).await {
                        Ok(_) => {
                            info!(id = %request.id, queue = request.queue.as_deref().unwrap_or(""), "queued callback stored")
                        }
                        Err(e) => warn!(id = %request.id, error = %e, "cannot store a queued callback"),
                    }
                }
                ivr_engine::QueueCallbackCmd::Status { id, status, note } => {
                    let Some(status) = ivr_voicemail::store::Status::parse(status) else {
                        return;
                    };
                    if let Err(e) = store
                        .set_status(&id, status, "system", Some(&note), now)
                        .await
                    {
                        warn!(%id, error = %e, "cannot update a queued callback");
                    }
                }
            }
        });
    }
}

/// Most store writes in flight before queue log batches are dropped.
const MAX_QUEUE_WRITES: usize = 256;
