//! Writing voicemail recordings so that nothing is lost, on threads of their own (the engine
//! loop never waits on a disk): the writer writes the audio as it comes; the durable steps
//! (request files, fsyncs, renames) run in order on a second thread, so a slow fsync never
//! holds up the audio of the recordings still going.
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
//! A survey comment (issue #12, a recorded question) is written the same way, by the same
//! two threads, as `KEY.wav.part` then `KEY.wav` (`KEY` starts with `comment-`), with
//! `KEY.json` beside it: the call's record as known when the comment started. The driver
//! deletes that file once the call's record, which links the comment, is stored; at
//! start-up [`recover`] stores the record of each one still there (end reason
//! `recovered`, the comment with the length of audio found) unless the store already has
//! it.
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
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tracing::{error, info, warn};

/// Frames between two header updates and flushes (one second).
const FLUSH_EVERY: u32 = 50;
/// Commands queued for the writer before the engine's sends fail (about 20 s of audio for
/// 100 simultaneous recordings, some 36 MB at most). The queue's memory is taken only as
/// it fills: a preallocated bounded channel of this size would hold 70 MB for nothing.
const QUEUE: usize = 100_000;
/// The writer's pause after emptying its queue (see `Writer::run`): commands wait at most
/// this long more, frames a few hundred per pause at 1,000 recordings.
const PAUSE: Duration = Duration::from_millis(10);

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
    /// Start the writer for `dir` (created if missing); it reports through `out`, and
    /// observes each kept recording's time in fsync in `fsync` (seconds).
    pub fn spawn(
        dir: PathBuf,
        fsync: prometheus_client::metrics::histogram::Histogram,
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
        let (durable, durable_rx) = mpsc::channel::<Durable>();
        let syncer = Syncer {
            dir: dir.clone(),
            out,
            kept: HashMap::new(),
            failed: HashSet::new(),
            fsync: FsyncCost {
                histogram: fsync,
                totals: Vec::new(),
            },
        };
        let sync_thread = std::thread::Builder::new()
            .name("voicemail-sync".into())
            .spawn(move || syncer.run(durable_rx))?;
        let writer = Writer {
            dir,
            open: HashMap::new(),
            durable,
        };
        let thread = std::thread::Builder::new()
            .name("voicemail-writer".into())
            .spawn(move || {
                writer.run(rx, &taken);
                // The writer's sender is gone: the durable side finishes what it has.
                let _ = sync_thread.join();
            })?;
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

/// Time the writer spent in fsync, per kept recording (a message: its request file when
/// it started, its audio and the folder when it stopped, the request again when
/// submitted; a comment: its record file, its audio and the folder): the cost of
/// durability, in `/metrics` and in the log at exit.
struct FsyncCost {
    histogram: prometheus_client::metrics::histogram::Histogram,
    /// Each recording's total, for exact percentiles at exit (8 bytes a recording).
    totals: Vec<Duration>,
}

impl FsyncCost {
    fn observe(&mut self, d: Duration) {
        self.histogram.observe(d.as_secs_f64());
        self.totals.push(d);
    }

    /// The log line at exit (`target: "ivr::stats"`, read by `bench/recordings.sh`).
    fn log(&mut self) {
        if self.totals.is_empty() {
            return;
        }
        self.totals.sort();
        let n = self.totals.len();
        let at = |p: f64| {
            let i = ((n as f64 * p).ceil() as usize).clamp(1, n) - 1;
            self.totals[i].as_secs_f64() * 1e3
        };
        let total: Duration = self.totals.iter().sum();
        info!(target: "ivr::stats", recordings = n, p50_ms = at(0.5), p99_ms = at(0.99), max_ms = at(1.0), mean_ms = total.as_secs_f64() * 1e3 / n as f64, "recording fsync time");
    }
}

/// `f.sync_all()`, its time added to `spent`.
fn timed_sync(f: &File, spent: &mut Duration) -> std::io::Result<()> {
    let t = Instant::now();
    let r = f.sync_all();
    *spent += t.elapsed();
    r
}

/// The durable steps, in the order the writer asked for them, on a thread of their own:
/// an fsync that takes a second (a busy disk) delays these, never the audio of the
/// recordings still being written (which, before, backed up behind it until frames were
/// refused and whole recordings failed).
enum Durable {
    /// Write the request's `ID.json` (recording `recording` started).
    Started {
        recording: RecordingId,
        request: Box<CallbackRequest>,
    },
    /// Write a survey comment's `KEY.json`, the call's record as known (comment
    /// `recording` started).
    StartedComment {
        recording: RecordingId,
        key: String,
        record: Box<CallRecord>,
    },
    /// The `.wav.part` is complete (header written, closed): fsync, rename, fsync the folder.
    Finished {
        recording: RecordingId,
        id: String,
        comment: bool,
    },
    /// Writing the audio failed: remove the recording.
    Failed {
        recording: RecordingId,
        id: String,
        comment: bool,
        error: String,
    },
    /// Delete a recording (`id` if the writer still had it open, and whether it is a
    /// comment).
    Discard {
        recording: RecordingId,
        id: Option<String>,
        comment: bool,
    },
    /// A comment's key that could name another file: nothing was written.
    Refused { recording: RecordingId },
    /// As [`VoicemailCmd::Submit`].
    Submit {
        call: ivr_engine::CallHandle,
        recording: Option<RecordingId>,
        request: Box<CallbackRequest>,
    },
}

/// The audio side: `.wav.part` files, written as frames come.
struct Writer {
    dir: PathBuf,
    open: HashMap<RecordingId, Open>,
    durable: mpsc::Sender<Durable>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<VoicemailCmd>, queued: &std::sync::atomic::AtomicUsize) {
        while let Ok(first) = rx.recv() {
            // The first command and what else is queued, then a pause before waiting on
            // the channel again: the engine's sends wake no thread while this one is not
            // waiting, so a stream of frames (one per recording every 20 ms) costs about
            // 1/PAUSE wake-ups a second, not one (a futex wake and a context switch on the
            // engine's core) per frame. Measured: with 100 recordings among 1,000 calls
            // these were about a tenth of the engine's CPU.
            for cmd in std::iter::once(first).chain(rx.try_iter()) {
                queued.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                self.handle(cmd);
            }
            std::thread::sleep(PAUSE);
        }
        // The engine is gone: finish what is open, so nothing waits for a repair.
        let ids: Vec<RecordingId> = self.open.keys().copied().collect();
        for r in ids {
            self.stop(r);
        }
    }

    fn durable(&self, d: Durable) {
        // The durable thread outlives this one (it ends when this sender is dropped).
        let _ = self.durable.send(d);
    }

    /// Open `ID.wav.part` for writing; then `started` (its metadata) goes to the durable
    /// side, which writes it before anything it is sent later about this recording.
    fn open_wav(&mut self, recording: RecordingId, id: &str, comment: bool, started: Durable) {
        let result = std::fs::create_dir_all(&self.dir).and_then(|()| {
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
                self.durable(started);
            }
            Err(e) => self.durable(Durable::Failed {
                recording,
                id: id.to_string(),
                comment,
                error: e.to_string(),
            }),
        }
    }

    fn handle(&mut self, cmd: VoicemailCmd) {
        match cmd {
            VoicemailCmd::Start { recording, request } => {
                let id = request.id.clone();
                self.open_wav(
                    recording,
                    &id,
                    false,
                    Durable::Started { recording, request },
                );
            }
            VoicemailCmd::StartComment {
                recording,
                key,
                record,
            } => {
                // The engine makes the key; one that could name another file is refused.
                if !ivr_voicemail::calls::is_comment_key(&key) {
                    error!(%key, "a survey comment's key is not one: not recorded");
                    // Through the durable side, so reports keep the order of commands.
                    self.durable(Durable::Refused { recording });
                    return;
                }
                let id = key.clone();
                self.open_wav(
                    recording,
                    &id,
                    true,
                    Durable::StartedComment {
                        recording,
                        key,
                        record,
                    },
                );
            }
            VoicemailCmd::Frame { recording, frame } => {
                let Some(open) = self.open.get_mut(&recording) else {
                    return;
                };
                let Some(w) = open.writer.as_mut() else {
                    return;
                };
                // One write of the frame's bytes (hound's 16-bit writer, whose spec
                // matches `open_wav`'s), not one buffered write per sample.
                let pcm = frame.pcm();
                let mut samples = w.get_i16_writer(pcm.len() as u32);
                for s in pcm {
                    samples.write_sample(*s);
                }
                let mut result = samples.flush();
                open.since_flush += 1;
                if result.is_ok() && open.since_flush >= FLUSH_EVERY {
                    open.since_flush = 0;
                    result = w.flush();
                }
                if let Err(e) = result {
                    let (id, comment) = (open.id.clone(), open.comment);
                    self.open.remove(&recording);
                    self.durable(Durable::Failed {
                        recording,
                        id,
                        comment,
                        error: e.to_string(),
                    });
                }
            }
            VoicemailCmd::Stop { recording } => self.stop(recording),
            VoicemailCmd::Discard { recording } => {
                let open = self.open.remove(&recording);
                let comment = open.as_ref().is_some_and(|o| o.comment);
                self.durable(Durable::Discard {
                    recording,
                    id: open.map(|o| o.id),
                    comment,
                });
            }
            VoicemailCmd::Submit {
                call,
                recording,
                request,
            } => {
                if let Some(r) = recording
                    && self.open.contains_key(&r)
                {
                    self.stop(r);
                }
                self.durable(Durable::Submit {
                    call,
                    recording,
                    request,
                });
            }
        }
    }

    /// Finish a recording's audio (its header), then hand it to the durable side.
    fn stop(&mut self, recording: RecordingId) {
        let Some(open) = self.open.remove(&recording) else {
            return;
        };
        let result = match open.writer {
            Some(w) => w
                .finalize()
                .map_err(|e| std::io::Error::other(e.to_string())),
            None => Ok(()),
        };
        let (id, comment) = (open.id, open.comment);
        match result {
            Ok(()) => self.durable(Durable::Finished {
                recording,
                id,
                comment,
            }),
            Err(e) => self.durable(Durable::Failed {
                recording,
                id,
                comment,
                error: e.to_string(),
            }),
        }
    }
}

/// A recording the durable side keeps track of, from its start until it is submitted
/// (a message) or finished (a comment), or discarded.
struct Kept {
    id: String,
    /// Its time in fsync so far.
    fsync: Duration,
}

/// The durable side: request files, fsyncs, renames, and what the engine is told.
struct Syncer<F> {
    dir: PathBuf,
    out: F,
    kept: HashMap<RecordingId, Kept>,
    /// Messages that failed and were removed, until submitted; and comments whose start
    /// failed here while the writer still has them open, until the writer's last word on
    /// them (a comment is never submitted: nothing else would take it out of the set).
    failed: HashSet<RecordingId>,
    fsync: FsyncCost,
}

impl<F: Fn(WriterOut)> Syncer<F> {
    fn run(mut self, rx: mpsc::Receiver<Durable>) {
        while let Ok(d) = rx.recv() {
            self.handle(d);
        }
        self.fsync.log();
    }

    fn handle(&mut self, d: Durable) {
        match d {
            Durable::Started { recording, request } => {
                let mut fsync = Duration::ZERO;
                match write_json(&self.dir, &request, &mut fsync) {
                    Ok(()) => self.keep(recording, request.id.clone(), fsync),
                    Err(e) => self.failed(recording, &request.id, false, &e),
                }
            }
            Durable::StartedComment {
                recording,
                key,
                record,
            } => {
                let mut fsync = Duration::ZERO;
                let written = serde_json::to_vec_pretty(&*record)
                    .map_err(std::io::Error::other)
                    .and_then(|bytes| write_durably(&self.dir, &key, &bytes, &mut fsync));
                match written {
                    Ok(()) => self.keep(recording, key, fsync),
                    Err(e) => {
                        self.failed(recording, &key, true, &e);
                        // The writer still has it open: its Stop, Discard or failure
                        // comes later and must not bring it back.
                        self.failed.insert(recording);
                    }
                }
            }
            Durable::Finished {
                recording,
                id,
                comment,
            } => {
                let was_failed = if comment {
                    self.failed.remove(&recording)
                } else {
                    self.failed.contains(&recording)
                };
                if was_failed {
                    return;
                }
                let part = self.dir.join(format!("{id}.wav.part"));
                let done = self.dir.join(format!("{id}.wav"));
                let mut fsync = Duration::ZERO;
                let result = (|| -> std::io::Result<()> {
                    timed_sync(&File::open(&part)?, &mut fsync)?;
                    std::fs::rename(&part, &done)?;
                    timed_sync(&File::open(&self.dir)?, &mut fsync)
                })();
                match result {
                    // A comment is done: the call record names it, and its `KEY.json`
                    // stays until that record is stored.
                    Ok(()) if comment => {
                        let before = self
                            .kept
                            .remove(&recording)
                            .map_or(Duration::ZERO, |k| k.fsync);
                        self.fsync.observe(before + fsync);
                    }
                    Ok(()) => {
                        self.kept
                            .entry(recording)
                            .or_insert(Kept {
                                id,
                                fsync: Duration::ZERO,
                            })
                            .fsync += fsync;
                    }
                    Err(e) => self.failed(recording, &id, comment, &e),
                }
            }
            Durable::Failed {
                recording,
                id,
                comment,
                error,
            } => {
                // A comment the durable side already removed (its start failed here).
                if comment && self.failed.remove(&recording) {
                    return;
                }
                if !self.failed.contains(&recording) {
                    self.failed(recording, &id, comment, &std::io::Error::other(error));
                }
            }
            Durable::Discard {
                recording,
                id,
                comment,
            } => {
                let kept = self.kept.remove(&recording);
                // A comment whose start failed here: the writer's last word on it.
                if comment && self.failed.remove(&recording) {
                    return;
                }
                if let Some(id) = id.or(kept.map(|k| k.id)) {
                    for name in [format!("{id}.wav.part"), format!("{id}.wav")] {
                        let _ = std::fs::remove_file(self.dir.join(name));
                    }
                    // The request goes on (a new recording, or cancelled): its json stays
                    // only if it is submitted.
                    let _ = std::fs::remove_file(self.dir.join(format!("{id}.json")));
                }
            }
            Durable::Refused { recording } => {
                (self.out)(WriterOut::Report(VoicemailReport::RecordingFailed {
                    recording,
                }));
            }
            Durable::Submit {
                call,
                recording,
                mut request,
            } => {
                let mut fsync = None;
                if let Some(r) = recording {
                    fsync = self.kept.remove(&r).map(|k| k.fsync);
                    if self.failed.remove(&r) {
                        // Its audio was removed: the request is kept without a message.
                        request.has_message = false;
                        request.duration_ms = 0;
                        fsync = None;
                    }
                }
                // The final metadata is durable before the store is asked.
                let mut spent = Duration::ZERO;
                let written = write_json(&self.dir, &request, &mut spent);
                if let Some(d) = fsync {
                    self.fsync.observe(d + spent);
                }
                match written {
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

    fn keep(&mut self, recording: RecordingId, id: String, fsync: Duration) {
        self.kept.insert(recording, Kept { id, fsync });
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
        self.kept.remove(&recording);
        // A comment is never submitted: nothing would take it out of the set.
        if !comment {
            self.failed.insert(recording);
        }
        (self.out)(WriterOut::Report(VoicemailReport::RecordingFailed {
            recording,
        }));
    }
}

/// Write `ID.json` durably: a temporary file, fsynced, renamed; the time in fsync is
/// added to `fsync`.
fn write_json(dir: &Path, r: &CallbackRequest, fsync: &mut Duration) -> std::io::Result<()> {
    write_durably(
        dir,
        &r.id,
        &serde_json::to_vec_pretty(r).map_err(std::io::Error::other)?,
        fsync,
    )
}

/// Write `ID.json` with `bytes` durably: a temporary file, fsynced, renamed; the time in
/// fsync is added to `fsync`.
fn write_durably(dir: &Path, id: &str, bytes: &[u8], fsync: &mut Duration) -> std::io::Result<()> {
    let tmp = dir.join(format!("{id}.json.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    timed_sync(&f, fsync)?;
    std::fs::rename(&tmp, dir.join(format!("{id}.json")))?;
    timed_sync(&File::open(dir)?, fsync)
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
    use prometheus_client::metrics::histogram::Histogram;

    /// The text exposition of `histogram` as `fsync_seconds`.
    fn exposed(histogram: &Histogram) -> String {
        let mut text = String::new();
        let mut r = prometheus_client::registry::Registry::default();
        r.register("fsync_seconds", "t", histogram.clone());
        prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
        text
    }

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
        let histogram = Histogram::new([0.001, 0.01, 0.1, 1.0]);
        let rec = Recorder::spawn(vm.clone(), histogram.clone(), move |o| {
            seen.lock().unwrap().push(o)
        })
        .unwrap();
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
        // The kept comment's time in fsync (its record, its audio, the folder) is
        // observed once; the discarded one is not.
        let text = exposed(&histogram);
        assert!(text.contains("fsync_seconds_count 1"), "{text}");
        forget_comment(&vm, KEY);
        assert!(!vm.join(format!("{KEY}.json")).exists());
        assert!(vm.join(format!("{KEY}.wav")).exists());
    }

    /// A comment whose record file cannot be written (on the durable thread, while the
    /// writer has its audio open) is removed and reported once; the writer's later Stop
    /// does not bring its audio back, and nothing of it is kept or measured.
    #[test]
    fn a_comment_whose_record_cannot_be_written_is_removed_once() {
        let dir = tempfile::tempdir().unwrap();
        let vm = dir.path().join("voicemail");
        // `KEY.json.tmp` cannot be created: a folder has its name.
        std::fs::create_dir_all(vm.join(format!("{KEY}.json.tmp"))).unwrap();
        let outs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = outs.clone();
        let histogram = Histogram::new([0.001, 0.01, 0.1, 1.0]);
        let rec = Recorder::spawn(vm.clone(), histogram.clone(), move |o| {
            seen.lock().unwrap().push(o)
        })
        .unwrap();
        let recording = RecordingId(1);
        assert!(rec.send(VoicemailCmd::StartComment {
            recording,
            key: KEY.into(),
            record: Box::new(kept_record()),
        }));
        for v in 0..60 {
            assert!(rec.send(VoicemailCmd::Frame {
                recording,
                frame: frame(v),
            }));
        }
        assert!(rec.send(VoicemailCmd::Stop { recording }));
        rec.finish();
        let outs = outs.lock().unwrap();
        assert!(
            matches!(
                &outs[..],
                [WriterOut::Report(VoicemailReport::RecordingFailed {
                    recording: RecordingId(1)
                })]
            ),
            "reported once: {outs:?}"
        );
        for name in [
            format!("{KEY}.wav"),
            format!("{KEY}.wav.part"),
            format!("{KEY}.json"),
        ] {
            assert!(!vm.join(&name).exists(), "{name} is gone");
        }
        let text = exposed(&histogram);
        assert!(text.contains("fsync_seconds_count 0"), "{text}");
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
        write_durably(
            &vm,
            KEY,
            &serde_json::to_vec(&kept_record()).unwrap(),
            &mut Duration::default(),
        )
        .unwrap();
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
        write_durably(
            &vm,
            empty,
            &serde_json::to_vec(&r).unwrap(),
            &mut Duration::default(),
        )
        .unwrap();
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
        write_durably(
            &vm,
            KEY,
            &serde_json::to_vec(&kept_record()).unwrap(),
            &mut Duration::default(),
        )
        .unwrap();
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
        write_durably(
            &vm,
            KEY,
            &serde_json::to_vec(&kept_record()).unwrap(),
            &mut Duration::default(),
        )
        .unwrap();
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

    /// A kept recording's time in fsync is observed once, when it is submitted (its
    /// request file at the start, its audio and the folder at the stop, the request again),
    /// and the files are where they should be once the writer is finished.
    #[test]
    fn a_kept_recordings_fsync_time_is_observed_once() {
        let dir = tempfile::tempdir().unwrap();
        let histogram = Histogram::new([0.001, 0.01, 0.1, 1.0]);
        let outs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = outs.clone();
        let recorder = Recorder::spawn(dir.path().to_path_buf(), histogram.clone(), move |o| {
            seen.lock().unwrap().push(o)
        })
        .unwrap();
        let request = CallbackRequest {
            id: "1800000000-0000abcd".into(),
            mailbox: "messages".into(),
            caller_id: None,
            called: None,
            call_id: "c1".into(),
            received_at: 1_800_000_000,
            callback_number: None,
            duration_ms: 40,
            language: None,
            menu_path: vec![],
            variables: vec![],
            hung_up: true,
            has_message: true,
            email_to: vec![],
            kind: Default::default(),
            queue: None,
            priority: 0,
        };
        let recording = RecordingId(1);
        assert!(recorder.send(VoicemailCmd::Start {
            recording,
            request: Box::new(request.clone()),
        }));
        let frame = ivr_audio::reorder::Frame {
            samples: [7; ivr_audio::FRAME_SAMPLES],
            len: ivr_audio::FRAME_SAMPLES,
            missing: 0,
        };
        for _ in 0..2 {
            assert!(recorder.send(VoicemailCmd::Frame { recording, frame }));
        }
        assert!(recorder.send(VoicemailCmd::Stop { recording }));
        assert!(recorder.send(VoicemailCmd::Submit {
            call: ivr_engine::CallHandle(1),
            recording: Some(recording),
            request: Box::new(request),
        }));
        recorder.finish();
        let outs = outs.lock().unwrap();
        assert!(
            matches!(outs.as_slice(), [WriterOut::Store { request, .. }] if request.has_message),
            "the store is asked, with the message: {outs:?}"
        );
        let wav = dir.path().join("1800000000-0000abcd.wav");
        let samples = hound::WavReader::open(&wav).unwrap().len();
        assert_eq!(samples, 2 * ivr_audio::FRAME_SAMPLES as u32);
        let text = exposed(&histogram);
        assert!(text.contains("fsync_seconds_count 1"), "{text}");
        assert!(!text.contains("fsync_seconds_sum 0.0\n"), "{text}");
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
