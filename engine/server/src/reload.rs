//! Reloading the config: when one of its files changes, on SIGHUP, or by admin request.
//!
//! The watcher follows exactly the files the last load read (the config, its includes,
//! prompts and calendars), in their folders and not below, and ignores metadata-only events:
//! the engine's own writes (recordings, the database, the text-to-speech cache) never look
//! like a config change, even when the data folder lies inside the config's folder. A
//! change the watcher reports starts a load only if some file's content differs from what
//! the last load read; SIGHUP and admin requests always load (an outside cause, such as
//! espeak-ng being installed, may be why the operator asks).

use crate::config::{self, ConfigError, Sources};
use crate::status::ReloadOutcome;
use ivr_menus::Menus;
use notify_debouncer_full::notify::{self, EventKind, RecursiveMode};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

/// What a finished load found: `None` when a change the watcher reported turned out to
/// leave every file as it was (nothing was loaded); else the result and the files read.
pub type Loaded = Option<(Result<Menus, ConfigError>, Sources)>;

/// One load, running or waiting: who hears its outcome, and whether it loads even when no
/// file changed.
#[derive(Default)]
struct Load {
    replies: Vec<oneshot::Sender<ReloadOutcome>>,
    forced: bool,
}

/// Reload bookkeeping. At most one load runs at a time. A request that arrives while one
/// runs is served by another load started right after it: the running one may have read the
/// file before the change that prompted the request.
#[derive(Default)]
pub struct Reloads {
    running: Option<Load>,
    next: Option<Load>,
}

impl Reloads {
    /// A reload is asked for (`forced`: even if no file changed; a request with a `reply`
    /// always is). `Some(forced)` if a load must start now.
    pub fn request(
        &mut self,
        reply: Option<oneshot::Sender<ReloadOutcome>>,
        forced: bool,
    ) -> Option<bool> {
        let start = self.running.is_none();
        let load = if start {
            self.running.insert(Load::default())
        } else {
            self.next.get_or_insert_with(Load::default)
        };
        load.forced |= forced || reply.is_some();
        load.replies.extend(reply);
        start.then_some(load.forced)
    }

    /// The running load ended with `outcome` (`None`: skipped, nothing changed): answer its
    /// requests. `Some(forced)` if another load must start now.
    pub fn finished(&mut self, outcome: Option<&ReloadOutcome>) -> Option<bool> {
        if let Some(done) = self.running.take() {
            // Only unforced loads are skipped, and a request with a reply forces its load.
            for reply in done.replies {
                if let Some(o) = outcome {
                    let _ = reply.send(o.clone());
                }
            }
        }
        self.running = self.next.take();
        self.running.as_ref().map(|l| l.forced)
    }
}

/// Load the config off the loop; `done` gets the result. Unless `forced`, first compare
/// the files `last` read with what they hold now, and load only if something changed.
pub fn start_load(
    path: PathBuf,
    tts_cache: PathBuf,
    why: &'static str,
    forced: bool,
    last: Sources,
    done: impl FnOnce(Loaded) + Send + 'static,
) {
    tokio::task::spawn_blocking(move || {
        if !forced && !last.changed() {
            debug!(%why, "the config's files hold what they held: no reload");
            return done(None);
        }
        info!(%why, path = %path.display(), "reloading config");
        done(Some(config::load_file_tracked(&path, &tts_cache)))
    });
}

/// Watches the folders of the files the config was loaded from, not below them.
pub struct Watcher {
    debouncer: notify_debouncer_full::Debouncer<
        notify::RecommendedWatcher,
        notify_debouncer_full::RecommendedCache,
    >,
    dirs: BTreeSet<PathBuf>,
}

impl Watcher {
    /// Start watching the files in `sources`; `changed` gets the paths of content events
    /// (create, write, rename, remove), debounced for half a second. `None` (with a warning)
    /// if the system refuses, in which case SIGHUP still reloads.
    pub fn start(
        sources: &Sources,
        changed: impl Fn(Vec<PathBuf>) + Send + 'static,
    ) -> Option<Watcher> {
        let debouncer = notify_debouncer_full::new_debouncer(
            Duration::from_millis(500),
            None,
            move |result: notify_debouncer_full::DebounceEventResult| {
                let Ok(events) = result else { return };
                let paths: Vec<PathBuf> = events
                    .iter()
                    .filter(|e| is_content(&e.kind))
                    .flat_map(|e| e.paths.iter().cloned())
                    .collect();
                if !paths.is_empty() {
                    changed(paths);
                }
            },
        )
        .map_err(|e| warn!(error = %e, "cannot watch the config; reload with SIGHUP"))
        .ok()?;
        let mut w = Watcher {
            debouncer,
            dirs: BTreeSet::new(),
        };
        w.follow(sources);
        Some(w)
    }

    /// Watch the folders of `sources` (after a load that may have read other files).
    pub fn follow(&mut self, sources: &Sources) {
        let want: BTreeSet<PathBuf> = sources
            .files()
            .filter_map(Path::parent)
            .map(Path::to_path_buf)
            .collect();
        for gone in self.dirs.difference(&want) {
            let _ = self.debouncer.unwatch(gone);
        }
        self.dirs.retain(|d| want.contains(d));
        for dir in want {
            if self.dirs.contains(&dir) {
                continue;
            }
            match self.debouncer.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.dirs.insert(dir);
                }
                Err(e) => {
                    warn!(error = %e, dir = %dir.display(), "cannot watch a config folder; reload with SIGHUP")
                }
            }
        }
    }
}

/// Whether an event may change what a file holds (metadata and access events cannot).
fn is_content(kind: &EventKind) -> bool {
    use notify::event::ModifyKind;
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(_) | EventKind::Any | EventKind::Other => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, CreateKind, DataChange, MetadataKind, ModifyKind, RenameMode};

    #[test]
    fn a_request_during_a_reload_gets_the_next_one() {
        let mut r = Reloads::default();
        let (a, mut a_rx) = oneshot::channel();
        assert_eq!(
            r.request(Some(a), false),
            Some(true),
            "an admin request loads"
        );
        let (b, mut b_rx) = oneshot::channel();
        assert_eq!(r.request(Some(b), false), None, "a second waits");
        assert_eq!(r.request(None, false), None, "a file change too");
        let old = ReloadOutcome::Invalid {
            errors: vec!["old".into()],
        };
        assert_eq!(r.finished(Some(&old)), Some(true), "another load follows");
        assert_eq!(a_rx.try_recv().unwrap(), old);
        assert!(
            b_rx.try_recv().is_err(),
            "b is not answered with a load older than it"
        );
        let new = ReloadOutcome::Reloaded { menus: 3 };
        assert_eq!(r.finished(Some(&new)), None, "nothing else asked");
        assert_eq!(b_rx.try_recv().unwrap(), new);
        assert_eq!(
            r.request(None, false),
            Some(false),
            "a file change checks first"
        );
        assert_eq!(r.request(None, true), None, "SIGHUP waits for it");
        assert_eq!(
            r.finished(None),
            Some(true),
            "and then loads whatever the files hold"
        );
        assert_eq!(r.finished(None), None);
    }

    #[test]
    fn metadata_and_access_events_are_not_changes() {
        assert!(!is_content(&EventKind::Modify(ModifyKind::Metadata(
            MetadataKind::Any
        ))));
        assert!(!is_content(&EventKind::Access(AccessKind::Any)));
        assert!(is_content(&EventKind::Modify(ModifyKind::Data(
            DataChange::Content
        ))));
        assert!(is_content(&EventKind::Modify(ModifyKind::Name(
            RenameMode::To
        ))));
        assert!(is_content(&EventKind::Create(CreateKind::File)));
    }

    #[test]
    fn a_load_knows_its_files_and_whether_they_changed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("c.yaml"),
            "entry: m\nprompts:\n  p: p.wav\nmenus:\n  m:\n    prompt: p\n    options:\n      \"1\": { repeat: true }\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("p.wav"),
            ivr_audio::wav::encode_pcm16(8000, &[100; 800]),
        )
        .unwrap();
        let (menus, sources) =
            config::load_file_tracked(&dir.path().join("c.yaml"), &dir.path().join("tts"));
        assert!(menus.is_ok());
        let files: Vec<&Path> = sources.files().collect();
        assert_eq!(
            files,
            [dir.path().join("c.yaml"), dir.path().join("p.wav")],
            "the config and its prompt"
        );
        assert!(!sources.changed());
        // Rewriting the same bytes (or touching) is no change; other bytes are.
        std::fs::write(
            dir.path().join("p.wav"),
            ivr_audio::wav::encode_pcm16(8000, &[100; 800]),
        )
        .unwrap();
        assert!(!sources.changed());
        std::fs::write(dir.path().join("other.txt"), "x").unwrap();
        assert!(!sources.changed(), "a file the config does not use");
        std::fs::write(
            dir.path().join("p.wav"),
            ivr_audio::wav::encode_pcm16(8000, &[200; 800]),
        )
        .unwrap();
        assert!(sources.changed());
    }
}
