//! Where the host sees a plugin reach past its grants, and says no.
//!
//! - Files: every instance gets an empty, read-only directory mounted at `/`
//!   besides its granted directories, so that a path outside the grants
//!   resolves to that root (in the guest's libc) and its `open-at` reaches
//!   the host. The host's `open-at` is wrapped: on the empty root it refuses
//!   with `access` and reports the path. Beneath a granted directory, a path
//!   that leads out of it (through `..` or a symlink) is refused by the
//!   WASI implementation (`not-permitted`); the wrapper reports that too.
//! - Sockets: the address check of [`super::permissions`].
//! - HTTP: [`HttpHooks`] checks the destination and method
//!   ([`super::http_guard`]).
//!
//! Every refusal is counted in the plugin's `denied` counter ([`Denials`],
//! in the leaf module [`super::denials`] that the console, the permissions,
//! the store state and this module share) and logged with
//! the plugin's name and what it tried (at most a few lines a second) —
//! except a read of the plugin's own Python source ([`own_source`]), which
//! only answers "no such file".

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::filesystem::WasiFilesystemView;
use wasmtime_wasi::p2::bindings::filesystem::{preopens, types as fs};

pub use super::denials::{Denials, ROOT_GUEST_PATH};
pub use super::http_guard::HttpHooks;
use super::state::HostState;

/// Interface names of the WASI functions wrapped here, as wasmtime-wasi 48
/// defines them (guests built against any 0.2.x match them).
const PREOPENS: &str = "wasi:filesystem/preopens@0.2.12";
const FS_TYPES: &str = "wasi:filesystem/types@0.2.12";

/// Where componentize-py puts the Python path while it builds a component
/// (`PYTHONPATH=/python:/world:/0:/1:…:/bundled`): the code is compiled into
/// the component, and the source files are not there when it runs.
const PYTHON_BUILD_ROOTS: &[&str] = &["python", "world", "bundled"];

/// Whether a read of `path` is CPython looking up the plugin's own source
/// (`/0/graft_sdk/exports.py` while formatting a traceback): no host file is
/// asked for, so it is refused as absent, not reported as a denial.
pub fn own_source(path: &str) -> bool {
    let path = path.trim_start_matches('/');
    let Some((root, rest)) = path.split_once('/') else {
        return false;
    };
    let build_root = PYTHON_BUILD_ROOTS.contains(&root)
        || (!root.is_empty() && root.bytes().all(|b| b.is_ascii_digit()));
    build_root
        && !rest.split('/').any(|c| c == ".." || c.is_empty())
        && (rest.ends_with(".py") || rest.ends_with(".pyc"))
}

/// An empty directory for the root mounts of every plugin, removed when the
/// runtime is dropped.
#[derive(Debug)]
pub struct EmptyRoot(tempfile::TempDir);

impl EmptyRoot {
    pub fn new() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("graft-empty-root-")
            .tempdir()
            .context("creating the empty root directory for plugins")?;
        Ok(Self(dir))
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    pub fn to_path_buf(&self) -> PathBuf {
        self.0.path().to_owned()
    }
}

/// Wrap `get-directories` (to learn which descriptors are the empty root
/// and the granted directories) and `open-at` (to refuse and report opens
/// under the empty root, and report escapes from a granted directory).
pub(crate) fn guard_filesystem(linker: &mut Linker<HostState>) -> Result<()> {
    linker.allow_shadowing(true);
    linker
        .instance(PREOPENS)
        .map_err(anyhow::Error::from)?
        .func_wrap(
            "get-directories",
            |mut store: StoreContextMut<'_, HostState>, (): ()| {
                let state = store.data_mut();
                let dirs = preopens::Host::get_directories(&mut state.filesystem())?;
                for (fd, name) in &dirs {
                    if name == ROOT_GUEST_PATH {
                        state.empty_roots.push(fd.rep());
                    } else {
                        state.granted_dirs.push((fd.rep(), name.clone()));
                    }
                }
                Ok((dirs,))
            },
        )
        .map_err(anyhow::Error::from)?;
    linker
        .instance(FS_TYPES)
        .map_err(anyhow::Error::from)?
        .func_wrap_async(
            "[method]descriptor.open-at",
            |mut store: StoreContextMut<'_, HostState>,
             (fd, path_flags, path, open_flags, flags): (
                Resource<fs::Descriptor>,
                fs::PathFlags,
                String,
                fs::OpenFlags,
                fs::DescriptorFlags,
            )| {
                Box::new(async move {
                    let state = store.data_mut();
                    let write = flags.contains(fs::DescriptorFlags::WRITE)
                        || open_flags.contains(fs::OpenFlags::CREATE);
                    if !write && own_source(&path) {
                        tracing::debug!(path = %path, "a plugin looked for its own Python source");
                        return Ok((Err(fs::ErrorCode::NoEntry),));
                    }
                    let (verb, grant) = if write {
                        ("write", "permissions.write_dirs")
                    } else {
                        ("read", "permissions.read_dirs")
                    };
                    let dir = fd.rep();
                    if state.empty_roots.contains(&dir) {
                        let shown = format!("/{}", path.trim_start_matches('/'));
                        state.denials.deny(&format!("{verb} {shown}"), grant);
                        return Ok((Err(fs::ErrorCode::Access),));
                    }
                    let shown = match state.granted_dirs.iter().find(|(d, _)| *d == dir) {
                        Some((_, name)) => format!("{}/{path}", name.trim_end_matches('/')),
                        None => path.clone(),
                    };
                    let opened = fs::HostDescriptor::open_at(
                        &mut state.filesystem(),
                        fd,
                        path_flags,
                        path,
                        open_flags,
                        flags,
                    )
                    .await;
                    match opened {
                        Ok(fd) => Ok((Ok(fd),)),
                        Err(e) => {
                            let code = fs::Host::convert_error_code(&mut state.filesystem(), e)?;
                            // Leaving the directory (`..`, a symlink) or
                            // writing where only reading is granted.
                            if code == fs::ErrorCode::NotPermitted {
                                state.denials.deny(
                                    &format!("{verb} {shown} (outside what its directory grants)"),
                                    grant,
                                );
                            }
                            Ok((Err(code),))
                        }
                    }
                })
            },
        )
        .map_err(anyhow::Error::from)?;
    linker.allow_shadowing(false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::own_source;

    #[test]
    fn only_python_source_under_build_roots_is_own_source() {
        for p in [
            "/0/graft_sdk/exports.py",
            "12/app.py",
            "/python/traceback.py",
            "/world/wit_world/__init__.py",
            "/bundled/x/__pycache__/y.cpython-314.pyc",
        ] {
            assert!(own_source(p), "{p}");
        }
        for p in [
            "/etc/passwd",
            "/0/secret.txt",
            "/home/u/app.py",
            "/0/../etc/x.py",
            "/0x/app.py",
            "/python",
            "/0//app.py",
        ] {
            assert!(!own_source(p), "{p}");
        }
    }
}
