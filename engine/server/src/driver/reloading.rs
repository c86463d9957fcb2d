//! Reloads: SIGHUP, an admin request or a watched file's change asks; the config is loaded
//! and checked off the loop; a valid one is applied (to the engine, or to the hub and then
//! every shard), an invalid one leaves the running config and says why.

use super::*;

/// The reload state of a server: what it was loaded from, the watcher, requests pending.
pub(super) struct Reloader {
    config: ServerConfig,
    sources: Sources,
    watcher: Option<Watcher>,
    reloads: Reloads,
    /// Where loads report ([`NetIn::Reloaded`]) and the watcher's changes go.
    tx: mpsc::Sender<NetIn>,
}

impl Reloader {
    /// Watch `config`'s files (if it came from a file); loads report on `tx`.
    pub(super) fn start(config: &ServerConfig, tx: mpsc::Sender<NetIn>) -> Reloader {
        let sources = config.config_sources.clone();
        let watcher = config.config_path.as_ref().and_then(|_| {
            let tx = tx.clone();
            Watcher::start(&sources, move |paths| {
                let _ = tx.blocking_send(NetIn::FilesChanged(paths));
            })
        });
        Reloader {
            config: config.clone(),
            sources,
            watcher,
            reloads: Reloads::default(),
            tx,
        }
    }

    /// Take `msg` if it is about reloading (`None`), else hand it back; a valid config
    /// loaded goes to `apply`.
    pub(super) fn take(&mut self, msg: NetIn, apply: impl FnOnce(Arc<Menus>)) -> Option<NetIn> {
        match msg {
            NetIn::ReloadRequested { why, reply } => {
                if self.config.config_path.is_none() {
                    if let Some(r) = reply {
                        let _ = r.send(ReloadOutcome::NoFile);
                    }
                    return None;
                }
                match self.reloads.request(reply, true) {
                    Some(forced) => self.load(why, forced),
                    None => info!(%why, "reload requested during a reload: another follows it"),
                }
                None
            }
            NetIn::FilesChanged(paths) => {
                if paths.iter().any(|p| self.sources.contains(p))
                    && let Some(forced) = self.reloads.request(None, false)
                {
                    self.load("file change", forced);
                }
                None
            }
            NetIn::Reloaded(loaded) => {
                let Some((result, read)) = *loaded else {
                    if let Some(forced) = self.reloads.finished(None) {
                        self.load("a request during the last check", forced);
                    }
                    return None;
                };
                self.sources = read;
                if let Some(w) = self.watcher.as_mut() {
                    w.follow(&self.sources);
                }
                let outcome = match result {
                    Ok(menus) => {
                        info!(
                            menus = menus.len(),
                            "config reloaded: new calls use it; calls in progress keep theirs"
                        );
                        let n = menus.len();
                        apply(Arc::new(menus));
                        ReloadOutcome::Reloaded { menus: n }
                    }
                    Err(e) => {
                        let errors: Vec<String> =
                            e.to_string().lines().map(str::to_string).collect();
                        for line in &errors {
                            tracing::error!(error = %line, "config reload failed; the running config stays");
                        }
                        ReloadOutcome::Invalid { errors }
                    }
                };
                self.config
                    .status
                    .reloaded(&outcome, std::time::SystemTime::now());
                if let Some(forced) = self.reloads.finished(Some(&outcome)) {
                    self.load("a change during the last reload", forced);
                }
                None
            }
            other => Some(other),
        }
    }

    fn load(&self, why: &'static str, forced: bool) {
        start_load(&self.config, why, forced, &self.sources, &self.tx);
    }
}

/// Load the config file off the loop (unless `forced`, only if one of `sources` changed);
/// the result comes back as [`NetIn::Reloaded`].
fn start_load(
    config: &ServerConfig,
    why: &'static str,
    forced: bool,
    sources: &Sources,
    tx: &mpsc::Sender<NetIn>,
) {
    let Some(path) = config.config_path.clone() else {
        return;
    };
    let tx = tx.clone();
    crate::reload::start_load(
        path,
        config.tts_cache.clone(),
        why,
        forced,
        sources.clone(),
        move |loaded| {
            let _ = tx.blocking_send(NetIn::Reloaded(Box::new(loaded)));
        },
    );
}
