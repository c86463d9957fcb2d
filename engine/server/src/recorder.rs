//! Writing voicemail recordings so that nothing is lost, on a thread of its own (the engine
//! loop never waits on a disk).
//!
//! For a request `ID`, in the voicemail folder:
//!
//! - `ID.json`: the request as known (written when recording starts and again when the
//!   request is submitted, each time to a temporary file, fsynced, then renamed);
//! - `ID.wav.part`: the message while it is recorded, 8 kHz 16-bit mono, its header brought
//!   up to date and flushed to the kernel every second, so a killed process leaves a
//!   readable file missing at most the last second;
//! - `ID.wav`: the finished message (fsynced, then renamed from `.part`).
//!
//! Once the store has the request, `ID.json` is deleted. At start-up, [`recover`] repairs
//! every `.part` left by a crash and stores every request whose `ID.json` is still there,
//! marked `recovered`. So the order is always: audio durable, then metadata committed.
//!
//! A survey comment (issue #12, a recorded question) is written the same way, as
//! `KEY.wav.part` then `KEY.wav` (`KEY` starts with `comment-`), with `KEY.json` beside
//! it: the call's record as known when the comment started. The driver deletes that
//! file once the call's record, which links the comment, is stored; at start-up
//! [`recover`] stores the record of each one still there (end reason `recovered`, the
//! comment with the length of audio found) unless the store already has it.
//!
//! A recording that cannot be written (the disk is full, the folder unwritable) is
//! **removed at once**: its `.wav.part`, `.wav`, `.json` and `.json.tmp` are deleted and the
//! engine is told, so the caller hears that the message could not be saved; nothing is
//! left for a restart to find and store as "recovered" (which would contradict what the
//! caller heard). If the request is submitted anyway (the caller hung up before hearing
//! the apology), it is stored without a message (`has_message: false`): the callback
//! request is kept, no audio is claimed.

use ivr_engine::{VoicemailCmd, VoicemailReport};
use ivr_voicemail::calls::{COMMENT_PREFIX, CallRecord};
use ivr_voicemail::store::{Store, StoreError};
use ivr_voicemail::{CallbackRequest, RecordingId};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use tracing::{error, info, warn};

/// Frames between two header updates and flushes (one second).
const FLUSH_EVERY: u32 = 50;
/// Commands queued for the writer before the engine's sends fail (about 20 s of audio for
/// 100 simultaneous recordings, some 36 MB at most). The queue's memory is taken only as
/// it fills: a preallocated bounded channel of this size would hold 70 MB for nothing.
const QUEUE: usize = 100_000;

/// What the writer thread asks of the async side.
#[derive(Debug)]
pub enum WriterOut {
    /// Store this request (its files are durable) and report to the engine.
    Store {
        /// The call, for the engine's answer.
        call: ivr_engine::CallHandle,
        /// The request.
        request: Box<CallbackRequest>,
    },
    /// Tell the engine.
    Report(VoicemailReport),
}

/// The writer thread's handle.
pub struct Recorder {
    tx: Option<mpsc::Sender<VoicemailCmd>>,
    /// Commands sent and not yet taken by the writer.
    queued: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Recorder {
    /// Start the writer for `dir` (created if missing); it reports through `out`.
    pub fn spawn(
        dir: PathBuf,
        out: impl Fn(WriterOut) + Send + 'static,
    ) -> std::io::Result<Recorder> {
        // A folder that cannot be made is not fatal: calls go on, and each recording fails
        // with an apology to the caller (and an error in the log) until it is fixed.
        if let Err(e) = std::fs::create_dir_all(&dir) {
            error!(dir = %dir.display(), error = %e, "the voicemail folder cannot be created; messages cannot be recorded");
        }
        let (tx, rx) = mpsc::channel::<VoicemailCmd>();
        let queued = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let taken = queued.clone();
        let thread = std::thread::Builder::new()
            .name("voicemail-writer".into())
            .spawn(move || Writer::new(dir, out).run(rx, &taken))?;
        Ok(Recorder {
            tx: Some(tx),
            queued,
            thread: Some(thread),
        })
    }

    /// Queue a command; `false` if the writer cannot take it (full, or gone).
    pub fn send(&self, cmd: VoicemailCmd) -> bool {
        use std::sync::atomic::Ordering;
        // Frames are refused when the writer is this far behind; the rest always go (they
        // are few, and losing a Stop or a Submit would lose a message).
        let is_frame = matches!(cmd, VoicemailCmd::Frame { .. });
        if is_frame && self.queued.load(Ordering::Relaxed) >= QUEUE {
            return false;
        }
        let Some(tx) = self.tx.as_ref() else {
            return false;
        };
        self.queued.fetch_add(1, Ordering::Relaxed);
        if tx.send(cmd).is_err() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Let the writer finish what is queued, and wait for it.
    pub fn finish(mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Open {
    id: String,
    writer: Option<hound::WavWriter<BufWriter<File>>>,
    since_flush: u32,
    /// A survey comment: never submitted, so nothing waits for it once stopped.
    comment: bool,
}

struct Writer<F> {
    dir: PathBuf,
    out: F,
    open: HashMap<RecordingId, Open>,
    /// Stopped recordings: their request id, until submitted or discarded.
    stopped: HashMap<RecordingId, String>,
    /// Recordings that failed and were removed, until submitted.
    failed: std::collections::HashSet<RecordingId>,
}

impl<F: Fn(WriterOut)> Writer<F> {
    fn new(dir: PathBuf, out: F) -> Self {
        Writer {
            dir,
            out,
            open: HashMap::new(),
            stopped: HashMap::new(),
            failed: std::collections::HashSet::new(),
        }
    }

    fn run(mut self, rx: mpsc::Receiver<VoicemailCmd>, queued: &std::sync::atomic::AtomicUsize) {
        while let Ok(cmd) = rx.recv() {
            queued.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            self.handle(cmd);
        }
        // The engine is gone: finish what is open, so nothing waits for a repair.
        let ids: Vec<RecordingId> = self.open.keys().copied().collect();
        for r in ids {
            self.stop(r);
        }
    }

    /// Open `ID.wav.part` for writing, after `ID.json` was written by `meta`.
    fn open_wav(
        &mut self,
        recording: RecordingId,
        id: &str,
        comment: bool,
        meta: impl FnOnce(&Path) -> std::io::Result<()>,
    ) {
        let result = std::fs::create_dir_all(&self.dir)
            .and_then(|()| meta(&self.dir))
            .and_then(|()| {
                let spec = hound::WavSpec {
                    channels: 1,
                    sample_rate: 8000,
                    bits_per_sample: 16,
                    sample_format: hound::SampleFormat::Int,
                };
                let file = File::create(self.dir.join(format!("{id}.wav.part")))?;
                hound::WavWriter::new(BufWriter::new(file), spec)
                    .map_err(|e| std::io::Error::other(e.to_string()))
            });
        match result {
            Ok(writer) => {
                self.open.insert(
                    recording,
                    Open {
                        id: id.to_string(),
                        writer: Some(writer),
                        since_flush: 0,
                        comment,
                    },
                );
            }
            Err(e) => self.failed(recording, id, comment, &e),
        }
    }

    fn handle(&mut self, cmd: VoicemailCmd) {
        match cmd {
            VoicemailCmd::Start { recording, request } => {
                self.open_wav(recording, &request.id.clone(), false, |dir| {
                    write_json(dir, &request)
                });
            }
            VoicemailCmd::StartComment {
                recording,
                key,
                record,
            } => {
                // The engine makes the key; one that could name another file is refused.
                if !ivr_voicemail::calls::is_comment_key(&key) {
                    error!(%key, "a survey comment's key is not one: not recorded");
                    (self.out)(WriterOut::Report(VoicemailReport::RecordingFailed {
                        recording,
                    }));
                    return;
                }
                self.open_wav(recording, &key.clone(), true, |dir| {
                    write_durably(dir, &key, &serde_json::to_vec_pretty(&*record)?)
                });
            }
            VoicemailCmd::Frame { recording, frame } => {
                let Some(open) = self.open.get_mut(&recording) else {
                    return;
                };
                let Some(w) = open.writer.as_mut() else {
                    return;
                };
                let mut result = frame.pcm().iter().try_for_each(|s| w.write_sample(*s));
                open.since_flush += 1;
                if result.is_ok() && open.since_flush >= FLUSH_EVERY {
                    open.since_flush = 0;
                    result = w.flush();
                }
                if let Err(e) = result {
                    let (id, comment) = (open.id.clone(), open.comment);
                    self.open.remove(&recording);
                    self.failed(
                        recording,
                        &id,
                        comment,
                        &std::io::Error::other(e.to_string()),
                    );
                }
            }
            VoicemailCmd::Stop { recording } => self.stop(recording),
            VoicemailCmd::Discard { recording } => {
                let id = match self.open.remove(&recording) {
                    Some(open) => Some(open.id),
                    None => self.stopped.remove(&recording),
                };
                if let Some(id) = id {
                    for name in [format!("{id}.wav.part"), format!("{id}.wav")] {
                        let _ = std::fs::remove_file(self.dir.join(name));
                    }
                    // The request goes on (a new recording, or cancelled): its json stays
                    // only if it is submitted.
                    let _ = std::fs::remove_file(self.dir.join(format!("{id}.json")));
                }
            }
            VoicemailCmd::Submit {
                call,
                recording,
                mut request,
            } => {
                if let Some(r) = recording {
                    if self.open.contains_key(&r) {
                        self.stop(r);
                    }
                    self.stopped.remove(&r);
                    if self.failed.remove(&r) {
                        // Its audio was removed: the request is kept without a message.
                        request.has_message = false;
                        request.duration_ms = 0;
                    }
                }
                // The final metadata is durable before the store is asked.
                match write_json(&self.dir, &request) {
                    Ok(()) => (self.out)(WriterOut::Store { call, request }),
                    Err(e) => {
                        error!(id = %request.id, error = %e, "cannot write the callback request; it is lost unless the audio is recovered");
                        (self.out)(WriterOut::Report(VoicemailReport::Stored {
                            call,
                            ok: false,
                        }));
                    }
                }
            }
        }
    }

    /// Finish a recording: header, fsync, rename, fsync the folder.
    fn stop(&mut self, recording: RecordingId) {
        let Some(open) = self.open.remove(&recording) else {
            return;
        };
        let part = self.dir.join(format!("{}.wav.part", open.id));
        let done = self.dir.join(format!("{}.wav", open.id));
        let result = (|| -> std::io::Result<()> {
            if let Some(w) = open.writer {
                w.finalize()
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
            }
            File::open(&part)?.sync_all()?;
            std::fs::rename(&part, &done)?;
            sync_dir(&self.dir)
        })();
        match result {
            // A comment is done: the call record names it, and its `KEY.json` stays until
            // that record is stored.
            Ok(()) if open.comment => {}
            Ok(()) => {
                self.stopped.insert(recording, open.id);
            }
            Err(e) => self.failed(recording, &open.id, open.comment, &e),
        }
    }

    /// A recording could not be written: remove its files (see the module documentation)
    /// and tell the engine, which apologises to the caller.
    fn failed(&mut self, recording: RecordingId, id: &str, comment: bool, e: &std::io::Error) {
        if comment {
            error!(%id, error = %e, "survey comment recording failed and was removed; the call record keeps no comment");
        } else {
            error!(%id, error = %e, "voicemail recording failed and was removed; the caller hears an apology");
        }
        for name in [
            format!("{id}.wav.part"),
            format!("{id}.wav"),
            format!("{id}.json"),
            format!("{id}.json.tmp"),
        ] {
            let path = self.dir.join(name);
            if let Err(e) = std::fs::remove_file(&path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                warn!(file = %path.display(), error = %e, "cannot remove a failed recording's file");
            }
        }
        let _ = sync_dir(&self.dir);
        // A comment is never submitted: nothing would take it out of the set.
        if !comment {
            self.failed.insert(recording);
        }
        (self.out)(WriterOut::Report(VoicemailReport::RecordingFailed {
            recording,
        }));
    }
}

/// Write `ID.json` durably: a temporary file, fsynced, renamed.
fn write_json(dir: &Path, r: &CallbackRequest) -> std::io::Result<()> {
    write_durably(
        dir,
        &r.id,
        &serde_json::to_vec_pretty(r).map_err(std::io::Error::other)?,
    )
}

/// Write `ID.json` with `bytes` durably: a temporary file, fsynced, renamed.
fn write_durably(dir: &Path, id: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!("{id}.json.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(format!("{id}.json")))?;
    sync_dir(dir)
}

/// The record of a call whose comment `key` is stored: its `KEY.json` is no longer needed
/// (a missing one is fine: the comment may not have started writing yet, and [`recover`]
/// finds the record stored).
pub fn forget_comment(dir: &Path, key: &str) {
    if ivr_voicemail::calls::is_comment_key(key) {
        let _ = std::fs::remove_file(dir.join(format!("{key}.json")));
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Bring a WAV file's sizes in line with its length (a crash leaves the header behind the
/// data written after the last flush). Returns the audio's length in samples.
pub fn repair_wav(path: &Path) -> std::io::Result<u64> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let len = f.metadata()?.len();
    let mut head = [0u8; 12];
    f.read_exact(&mut head)?;
    if &head[0..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return Err(std::io::Error::other("not a WAV file"));
    }
    // Walk the chunks to the data chunk.
    let mut pos = 12u64;
    loop {
        if pos + 8 > len {
            return Err(std::io::Error::other("no data chunk"));
        }
        f.seek(SeekFrom::Start(pos))?;
        let mut chunk = [0u8; 8];
        f.read_exact(&mut chunk)?;
        if &chunk[0..4] == b"data" {
            let data = (len - pos - 8) & !1;
            let data32 = u32::try_from(data).unwrap_or(!1);
            f.seek(SeekFrom::Start(pos + 4))?;
            f.write_all(&data32.to_le_bytes())?;
            let riff = u32::try_from(pos + data).unwrap_or(u32::MAX);
            f.seek(SeekFrom::Start(4))?;
            f.write_all(&riff.to_le_bytes())?;
            f.set_len(pos + 8 + data)?;
            f.sync_all()?;
            return Ok(data / 2);
        }
        let size = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]) as u64;
        pos += 8 + size + (size & 1);
    }
}

/// What [`recover`] found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    /// Partial recordings repaired.
    pub repaired: usize,
    /// Requests stored that were not yet.
    pub stored: usize,
    /// Survey comments whose call record was stored (it was not yet).
    pub comments: usize,
}

/// After a crash: repair partial recordings and store every request still waiting in the
/// folder, marked `recovered`. Safe to run on a clean folder and twice in a row.
pub async fn recover(
    dir: &Path,
    store: &Store,
    now: u64,
    notify: ivr_voicemail::store::Notify,
) -> Result<Recovered, StoreError> {
    let mut found = Recovered::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(found);
    };
    let mut jsons = Vec::new();
    let mut comments = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(id) = name.strip_suffix(".wav.part") {
            match repair_wav(&path).and_then(|_| {
                std::fs::rename(&path, dir.join(format!("{id}.wav")))?;
                sync_dir(dir)
            }) {
                Ok(()) => found.repaired += 1,
                Err(e) => {
                    warn!(file = %path.display(), error = %e, "cannot repair a partial recording")
                }
            }
        } else if name.ends_with(".json") && name.starts_with(COMMENT_PREFIX) {
            comments.push(path);
        } else if name.ends_with(".json") {
            jsons.push(path);
        } else if name.ends_with(".json.tmp") {
            let _ = std::fs::remove_file(&path);
        }
    }
    comments.sort();
    for path in comments {
        if recover_comment(dir, &path, store).await? {
            found.comments += 1;
        }
    }
    jsons.sort();
    for path in jsons {
        let Ok(text) = std::fs::read(&path) else {
            continue;
        };
        let mut request: CallbackRequest = match serde_json::from_slice(&text) {
            Ok(r) => r,
            Err(e) => {
                warn!(file = %path.display(), error = %e, "unreadable callback request file left as is");
                continue;
            }
        };
        let wav = dir.join(format!("{}.wav", request.id));
        if let Ok(samples) = repair_wav(&wav) {
            request.has_message = samples > 0;
            request.duration_ms = samples / 8;
        }
        if store.insert(&request, true, now, notify).await? {
            found.stored += 1;
            info!(id = %request.id, mailbox = %request.mailbox, "recovered a callback request");
        }
        let _ = std::fs::remove_file(&path);
    }
    Ok(found)
}

/// Remove a comment's audio that no record will link: `KEY.wav`, and a `KEY.wav.part` too
/// short to repair (a crash before its header reached the disk), else left for ever.
fn drop_comment_audio(dir: &Path, key: &str) {
    for name in [format!("{key}.wav"), format!("{key}.wav.part")] {
        let _ = std::fs::remove_file(dir.join(name));
    }
}

/// A stored record with a comment's Call-ID that started this close to the one kept
/// beside the comment is the same call (the engine's wall clock may be re-anchored between
/// the two).
const SAME_CALL_MS: u64 = 60_000;

/// The call record kept beside a survey comment (`KEY.json`): stored unless the store
/// has it already, with the comment if audio was found; then the file goes. Returns
/// whether it was stored.
async fn recover_comment(dir: &Path, path: &Path, store: &Store) -> Result<bool, StoreError> {
    let Ok(text) = std::fs::read(path) else {
        return Ok(false);
    };
    let mut record: CallRecord = match serde_json::from_slice(&text) {
        Ok(r) => r,
        Err(e) => {
            warn!(file = %path.display(), error = %e, "unreadable survey comment record left as is");
            return Ok(false);
        }
    };
    let Some(key) = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".json"))
        .filter(|k| ivr_voicemail::calls::is_comment_key(k))
        .map(str::to_string)
    else {
        return Ok(false);
    };
    let stored = if store.has_call_recording(&key).await? {
        false
    } else if store
        .call(&record.call_id)
        .await?
        .iter()
        .any(|r| r.started_ms.abs_diff(record.started_ms) <= SAME_CALL_MS)
    {
        // The call's final record is stored without the comment (dropped, or given up
        // when the recorder fell behind): not stored twice; its audio is linked by nothing,
        // so it would never be served nor deleted.
        drop_comment_audio(dir, &key);
        false
    } else {
        let samples = repair_wav(&dir.join(format!("{key}.wav"))).unwrap_or(0);
        for a in &mut record.answers {
            if a.recording.as_deref() == Some(key.as_str()) && samples == 0 {
                a.recording = None;
            }
        }
        if samples == 0 {
            drop_comment_audio(dir, &key);
        }
        // The call ended (unseen) no earlier than its comment did.
        let ms = i64::try_from(samples / 8).unwrap_or(i64::MAX);
        record.ended_ms = record.ended_ms.saturating_add(ms);
        record.duration_ms = record.ended_ms - record.started_ms;
        record.end_reason = "recovered".into();
        store.insert_calls(std::slice::from_ref(&record)).await?;
        info!(%key, call_id = %record.call_id, "recovered a survey comment's call record");
        true
    };
    let _ = std::fs::remove_file(path);
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ivr_voicemail::calls::CallAnswer;

    const KEY: &str = "comment-1800000000-0a1b2c3d";

    /// A call record as the engine keeps it beside a comment.
    fn kept_record() -> CallRecord {
        CallRecord {
            call_id: "c1@192.0.2.1".into(),
            started_ms: 1_800_000_000_000,
            ended_ms: 1_800_000_030_000,
            duration_ms: 30_000,
            end_reason: "recovered".into(),
            answers: vec![CallAnswer {
                survey: "after_call".into(),
                question: "comment".into(),
                answer: None,
                outcome: "hangup".into(),
                recording: Some(KEY.into()),
            }],
            ..Default::default()
        }
    }

    fn frame(v: i16) -> ivr_audio::reorder::Frame {
        ivr_audio::reorder::Frame {
            samples: [v; 160],
            len: 160,
            missing: 0,
        }
    }

    async fn store(dir: &Path) -> Store {
        Store::open(&format!("sqlite://{}", dir.join("callbacks.db").display()))
            .await
            .unwrap()
    }

    /// A comment is written like a message, with the call's record beside it; once that
    /// record is stored it goes. Discarding one removes both files.
    #[test]
    fn a_comment_is_written_durably_with_its_record_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let vm = dir.path().join("voicemail");
        let outs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = outs.clone();
        let rec = Recorder::spawn(vm.clone(), move |o| seen.lock().unwrap().push(o)).unwrap();
        let start = |recording, key: &str| VoicemailCmd::StartComment {
            recording: RecordingId(recording),
            key: key.into(),
            record: Box::new(kept_record()),
        };
        assert!(rec.send(start(1, KEY)));
        for v in 0..100 {
            assert!(rec.send(VoicemailCmd::Frame {
                recording: RecordingId(1),
                frame: frame(v),
            }));
        }
        assert!(rec.send(VoicemailCmd::Stop {
            recording: RecordingId(1)
        }));
        // An empty one, dropped; a key that could name another file, refused.
        assert!(rec.send(start(2, "comment-1800000000-00000002")));
        assert!(rec.send(VoicemailCmd::Discard {
            recording: RecordingId(2)
        }));
        assert!(rec.send(start(3, "comment-../../x")));
        rec.finish();
        let r = hound::WavReader::open(vm.join(format!("{KEY}.wav"))).unwrap();
        assert_eq!(r.len(), 16_000);
        let json: CallRecord =
            serde_json::from_slice(&std::fs::read(vm.join(format!("{KEY}.json"))).unwrap())
                .unwrap();
        assert_eq!(json, kept_record());
        let mut names: Vec<String> = std::fs::read_dir(&vm)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [format!("{KEY}.json"), format!("{KEY}.wav")]);
        let outs = outs.lock().unwrap();
        assert!(
            matches!(
                &outs[..],
                [WriterOut::Report(VoicemailReport::RecordingFailed {
                    recording: RecordingId(3)
                })]
            ),
            "only the bad key is reported: {outs:?}"
        );
        forget_comment(&vm, KEY);
        assert!(!vm.join(format!("{KEY}.json")).exists());
        assert!(vm.join(format!("{KEY}.wav")).exists());
    }

    /// After a crash mid-comment: the `.part` is repaired and the call's record stored
    /// with the comment and the length found; a record already stored is not stored again;
    /// a comment with no audio is not named.
    #[tokio::test]
    async fn a_crash_mid_comment_recovers_the_audio_and_its_call_record() {
        let dir = tempfile::tempdir().unwrap();
        let vm = dir.path().join("voicemail");
        std::fs::create_dir_all(&vm).unwrap();
        let store = store(dir.path()).await;
        // As the writer leaves it when killed: the record, a .part with 1 s flushed.
        write_durably(&vm, KEY, &serde_json::to_vec(&kept_record()).unwrap()).unwrap();
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(vm.join(format!("{KEY}.wav.part")), spec).unwrap();
        for i in 0..8000 {
            w.write_sample((i % 50) as i16).unwrap();
        }
        w.flush().unwrap();
        std::mem::forget(w);
        // One whose audio never reached the disk.
        let empty = "comment-1800000000-0000000e";
        let mut r = kept_record();
        r.call_id = "c2@192.0.2.1".into();
        r.answers[0].recording = Some(empty.into());
        write_durably(&vm, empty, &serde_json::to_vec(&r).unwrap()).unwrap();
        // Killed before the writer's buffer (the header) reached the disk: an empty .part,
        // which cannot be repaired.
        std::fs::write(vm.join(format!("{empty}.wav.part")), b"").unwrap();

        let found = recover(&vm, &store, 1_800_000_100, Default::default())
            .await
            .unwrap();
        assert_eq!((found.repaired, found.comments), (1, 2));
        let all = ivr_voicemail::call_log::CallFilter {
            from_ms: 0,
            to_ms: i64::MAX,
            limit: 10,
            newest_first: false,
        };
        let calls = store.calls(&all).await.unwrap();
        assert_eq!(calls.len(), 2);
        let c1 = calls.iter().find(|c| c.call_id == "c1@192.0.2.1").unwrap();
        assert_eq!(c1.answers, kept_record().answers);
        assert_eq!(c1.end_reason, "recovered");
        assert_eq!(c1.ended_ms, 1_800_000_031_000, "the comment's second added");
        let c2 = calls.iter().find(|c| c.call_id == "c2@192.0.2.1").unwrap();
        assert_eq!(c2.answers[0].recording, None, "no audio, no comment named");
        assert_eq!(
            hound::WavReader::open(vm.join(format!("{KEY}.wav")))
                .unwrap()
                .len(),
            8000
        );
        assert!(!vm.join(format!("{KEY}.json")).exists());
        assert!(!vm.join(format!("{KEY}.wav.part")).exists());
        assert!(
            !vm.join(format!("{empty}.wav.part")).exists(),
            "an empty .part no record links does not stay for ever"
        );

        // Stored already (the crash came after the record was stored, before its file was
        // removed): not stored twice.
        write_durably(&vm, KEY, &serde_json::to_vec(&kept_record()).unwrap()).unwrap();
        let found = recover(&vm, &store, 1_800_000_100, Default::default())
            .await
            .unwrap();
        assert_eq!(found, Recovered::default());
        assert_eq!(store.calls(&all).await.unwrap().len(), 2);
        assert!(!vm.join(format!("{KEY}.json")).exists());
    }

    /// The call's final record was stored without the comment (the comment was dropped,
    /// or the recorder fell behind and it was given up), and the process died before the
    /// comment's `KEY.json` went: recovery must not store the call a second time (reports
    /// would count it twice), and the unlinked audio goes with its `KEY.json`.
    #[tokio::test]
    async fn a_call_stored_without_its_comment_is_not_stored_again_at_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let vm = dir.path().join("voicemail");
        std::fs::create_dir_all(&vm).unwrap();
        let store = store(dir.path()).await;
        let mut stored = kept_record();
        // The wall clock was re-anchored in between: a few milliseconds apart.
        stored.started_ms += 3;
        stored.ended_ms += 5_000;
        stored.duration_ms = stored.ended_ms - stored.started_ms;
        stored.end_reason = "caller_hung_up".into();
        stored.answers[0].recording = None;
        stored.answers[0].outcome = "timeout".into();
        store
            .insert_calls(std::slice::from_ref(&stored))
            .await
            .unwrap();
        write_durably(&vm, KEY, &serde_json::to_vec(&kept_record()).unwrap()).unwrap();
        std::fs::write(
            vm.join(format!("{KEY}.wav")),
            ivr_audio::wav::encode_pcm16(8000, &[100; 8000]),
        )
        .unwrap();

        let found = recover(&vm, &store, 1_800_000_100, Default::default())
            .await
            .unwrap();
        assert_eq!(found, Recovered::default());
        let all = ivr_voicemail::call_log::CallFilter {
            from_ms: 0,
            to_ms: i64::MAX,
            limit: 10,
            newest_first: false,
        };
        assert_eq!(store.calls(&all).await.unwrap(), [stored], "stored once");
        assert!(!vm.join(format!("{KEY}.json")).exists());
        assert!(
            !vm.join(format!("{KEY}.wav")).exists(),
            "no record links it: it would never be served nor deleted"
        );
    }

    /// A `.part` file as a kill -9 leaves it: the header (brought up to date at the last
    /// flush) counts 8000 samples, and 4000 more samples plus half of one reached the file
    /// after it. Repair makes the header count exactly what is there, to the whole sample.
    #[test]
    fn a_cut_off_wav_is_repaired_to_its_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        // As the writer does: hound writes, and a flush updates the header.
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for i in 0..8000 {
            w.write_sample((i % 100) as i16).unwrap();
        }
        w.flush().unwrap();
        // The process dies here: hound never finalizes the header (its buffer is empty
        // after the flush, so forgetting it loses nothing).
        std::mem::forget(w);
        // What reached the file after the last flush, as raw bytes: 4000 samples of 7 and
        // an odd byte (half a sample).
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        let late: Vec<u8> = std::iter::repeat_n(7i16.to_le_bytes(), 4000)
            .flatten()
            .chain([1])
            .collect();
        f.write_all(&late).unwrap();
        drop(f);
        assert_eq!(
            hound::WavReader::open(&path).unwrap().len(),
            8000,
            "before repair the header counts only what was flushed"
        );

        let samples = repair_wav(&path).unwrap();
        assert_eq!(samples, 12_000);
        let r = hound::WavReader::open(&path).unwrap();
        assert_eq!(r.len(), 12_000);
        let got: Vec<i16> = r.into_samples().map(Result::unwrap).collect();
        let want: Vec<i16> = (0..8000)
            .map(|i| (i % 100) as i16)
            .chain(std::iter::repeat_n(7, 4000))
            .collect();
        assert_eq!(got, want);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            44 + 24_000,
            "the half sample is cut"
        );
        // Repairing a whole file changes nothing.
        assert_eq!(repair_wav(&path).unwrap(), 12_000);
    }
}
