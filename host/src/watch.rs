//! `--watch-config`: ask for a reload when a configuration file, a `*.toml`
//! in the configuration directory, or the `.wasm` file of a configured
//! plugin changes. Directories are watched rather than files, so that a
//! file replaced by a rename (as editors and `install` do) is seen; events
//! are gathered until things have been quiet for [`QUIET`], so that a file
//! being written counts once.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::pipeline::wasm_section;
use crate::topology::ReloadRequest;

/// How long changes must settle before a reload is asked for.
pub const QUIET: Duration = Duration::from_millis(300);

#[derive(Default)]
struct Interest {
    files: BTreeSet<PathBuf>,
    dirs: BTreeSet<PathBuf>,
    config_dir: Option<PathBuf>,
}

impl Interest {
    fn wants(&self, path: &Path) -> bool {
        self.files.contains(path)
            || self.config_dir.as_deref().is_some_and(|d| {
                path.parent() == Some(d) && path.extension().is_some_and(|e| e == "toml")
            })
    }
}

/// Watches what a configuration is made of.
pub struct ConfigWatcher {
    watcher: Mutex<notify::RecommendedWatcher>,
    interest: Arc<Mutex<Interest>>,
}

/// `path` made absolute, with its directory resolved (the file itself may
/// come and go).
fn absolute(path: &Path) -> PathBuf {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => dir
            .canonicalize()
            .map(|d| d.join(name))
            .unwrap_or(path.clone()),
        _ => path,
    }
}

/// The `.wasm` files a configuration's plugins are loaded from.
pub fn wasm_files(config: &Config) -> Vec<PathBuf> {
    config
        .inputs
        .iter()
        .chain(&config.processors)
        .chain(&config.aggregators)
        .chain(&config.outputs)
        .filter(|s| s.name == crate::kind::WASM)
        .filter_map(|s| {
            let path = s.table.get("path")?.as_str()?;
            Some(wasm_section::resolve(s, Path::new(path)))
        })
        .collect()
}

impl ConfigWatcher {
    /// Start watching; reload requests go to `tx`.
    pub fn start(config_dir: Option<&Path>, tx: mpsc::Sender<ReloadRequest>) -> Result<Arc<Self>> {
        let interest = Arc::new(Mutex::new(Interest {
            config_dir: config_dir.map(|d| d.canonicalize().unwrap_or_else(|_| d.to_owned())),
            ..Default::default()
        }));
        let (events_tx, events_rx) = std::sync::mpsc::channel::<PathBuf>();
        let seen = interest.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            if event.kind.is_access() {
                return;
            }
            let interest = seen.lock().expect("watch lock");
            for path in event.paths {
                if interest.wants(&path) {
                    let _ = events_tx.send(path);
                }
            }
        })
        .context("starting the file watcher")?;
        std::thread::Builder::new()
            .name("graft-watch".into())
            .spawn(move || {
                while let Ok(first) = events_rx.recv() {
                    let mut changed = BTreeSet::from([first]);
                    while let Ok(p) = events_rx.recv_timeout(QUIET) {
                        changed.insert(p);
                    }
                    let names: Vec<String> =
                        changed.iter().map(|p| p.display().to_string()).collect();
                    let request = ReloadRequest::new(format!("changed: {}", names.join(", ")));
                    if tx.blocking_send(request).is_err() {
                        return;
                    }
                }
            })
            .context("starting the watch thread")?;
        let this = Arc::new(Self {
            watcher: Mutex::new(watcher),
            interest,
        });
        if let Some(dir) = config_dir {
            this.watch_dir(dir)?;
        }
        Ok(this)
    }

    fn watch_dir(&self, dir: &Path) -> Result<()> {
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
        if self
            .interest
            .lock()
            .expect("watch lock")
            .dirs
            .contains(&dir)
        {
            return Ok(());
        }
        // Not under the interest lock: the watcher's thread takes it to
        // filter events, and `watch` waits for that thread.
        self.watcher
            .lock()
            .expect("watcher lock")
            .watch(&dir, RecursiveMode::NonRecursive)
            .with_context(|| format!("watching {}", dir.display()))?;
        self.interest.lock().expect("watch lock").dirs.insert(dir);
        Ok(())
    }

    /// Watch exactly `files` (config files and `.wasm` files) from now on.
    pub fn set_files(&self, files: impl IntoIterator<Item = PathBuf>) {
        let files: BTreeSet<PathBuf> = files.into_iter().map(|f| absolute(&f)).collect();
        for f in &files {
            if let Some(dir) = f.parent()
                && let Err(e) = self.watch_dir(dir)
            {
                tracing::warn!("{e:#}; changes there are not seen");
            }
        }
        self.interest.lock().expect("watch lock").files = files;
    }
}
