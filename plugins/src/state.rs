//! State a plugin keeps across restarts of the agent (`inputs.tail`'s
//! positions in the files it follows), one small JSON file per plugin
//! instance, written atomically (a temporary file, synced, then renamed
//! over the old one).
//!
//! Where: beside `[agent] statefile` when the config sets it (the host
//! calls [`set_path`] before building plugins): `<statefile>.<plugin>-<key>.json`;
//! otherwise in `$STATE_DIRECTORY` (systemd's `StateDirectory=`), else
//! `$XDG_STATE_HOME/graft`, else `$HOME/.local/state/graft`:
//! `<dir>/<plugin>-<key>.json`. The key is a hash of what identifies the
//! instance (for tail: its `files` globs), so that two instances, or two
//! agents sharing a directory, do not overwrite each other's state.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

static STATEFILE: Mutex<Option<PathBuf>> = Mutex::new(None);

/// `[agent] statefile`: where the agent keeps state, or `None` for the
/// default directory. Call before plugins are built.
pub fn set_path(path: Option<PathBuf>) {
    *STATEFILE.lock().unwrap_or_else(|e| e.into_inner()) = path;
}

/// The default state directory, from the environment.
fn default_dir() -> Option<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("STATE_DIRECTORY")
        .or_else(|| var("XDG_STATE_HOME").map(|d| d.join("graft")))
        .or_else(|| var("HOME").map(|h| h.join(".local/state/graft")))
}

/// One plugin instance's state file.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
}

impl Store {
    /// The store of plugin `plugin` for the instance identified by `key`;
    /// `None` when no place for state is known (no statefile, no
    /// `$STATE_DIRECTORY`, `$XDG_STATE_HOME` or `$HOME`).
    pub fn new(plugin: &str, key: &str) -> Option<Self> {
        let hash = format!("{:x}", md5::Md5::digest_of(key.as_bytes()));
        let name = format!("{plugin}-{}.json", &hash[..16]);
        let statefile = STATEFILE.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let path = match statefile {
            Some(file) => {
                let mut text = file.into_os_string();
                text.push(".");
                text.push(&name);
                PathBuf::from(text)
            }
            None => default_dir()?.join(name),
        };
        Some(Self { path })
    }

    /// A store at `path` exactly (tests).
    pub fn at(path: PathBuf) -> Self {
        Self { path }
    }

    /// Where the state is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state kept, if any; a file that cannot be read is reported and
    /// counts as none.
    pub fn load<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .with_context(|| format!("reading state {}", self.path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading state {}", self.path.display())),
        }
    }

    /// Replace the state with `value`, atomically.
    pub fn save<T: Serialize>(&self, value: &T) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating state directory {}", dir.display()))?;
        let bytes = serde_json::to_vec(value)?;
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(format!(".tmp{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let written = std::fs::File::create(&tmp).and_then(|mut f| {
            f.write_all(&bytes)?;
            f.sync_all()
        });
        if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, &self.path)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e).with_context(|| format!("writing state {}", self.path.display()));
        }
        Ok(())
    }
}

/// md5 as a one-call digest.
trait DigestOf {
    fn digest_of(data: &[u8]) -> Hex;
}

/// A digest printed as lowercase hex.
struct Hex(Vec<u8>);

impl std::fmt::LowerHex for Hex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl DigestOf for md5::Md5 {
    fn digest_of(data: &[u8]) -> Hex {
        use md5::Digest;
        Hex(md5::Md5::digest(data).to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_is_replaced_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path().join("sub/tail-x.json"));
        assert_eq!(store.load::<Vec<u64>>().unwrap(), None);
        store.save(&vec![1u64, 2]).unwrap();
        store.save(&vec![3u64]).unwrap();
        assert_eq!(store.load::<Vec<u64>>().unwrap(), Some(vec![3]));
        let files: Vec<_> = std::fs::read_dir(dir.path().join("sub")).unwrap().collect();
        assert_eq!(files.len(), 1, "no temporary file left");
        std::fs::write(store.path(), "{broken").unwrap();
        assert!(store.load::<Vec<u64>>().is_err());
    }

    #[test]
    fn the_statefile_names_the_place_and_keys_keep_instances_apart() {
        set_path(Some(PathBuf::from("/var/lib/graft/state.json")));
        let a = Store::new("tail", "[\"/var/log/a.log\"]").unwrap();
        let b = Store::new("tail", "[\"/var/log/b.log\"]").unwrap();
        set_path(None);
        let a = a.path().display().to_string();
        assert!(
            a.starts_with("/var/lib/graft/state.json.tail-") && a.ends_with(".json"),
            "{a}"
        );
        assert_ne!(a, b.path().display().to_string());
    }
}
