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
//! - HTTP: [`HttpHooks::send_request`] checks the destination and method.
//!
//! Every refusal is counted in the plugin's `denied` counter and logged with
//! the plugin's name and what it tried (at most a few lines a second) —
//! except a read of the plugin's own Python source ([`own_source`]), which
//! only answers "no such file".

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use http_body_util::BodyExt;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::filesystem::WasiFilesystemView;
use wasmtime_wasi::p2::bindings::filesystem::{preopens, types as fs};
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

use super::permissions::HttpGrant;
use super::state::{HostState, PerSecond};
use crate::stats::PluginStats;

/// Where the empty root is mounted inside every plugin.
pub const ROOT_GUEST_PATH: &str = "/";

/// Interface names of the WASI functions wrapped here, as wasmtime-wasi 48
/// defines them (guests built against any 0.2.x match them).
const PREOPENS: &str = "wasi:filesystem/preopens@0.2.12";
const FS_TYPES: &str = "wasi:filesystem/types@0.2.12";

/// Refusals logged per second and plugin; the rest are only counted.
const LOGGED_PER_SECOND: u32 = 5;

/// Reports a plugin's refused attempts.
#[derive(Debug)]
pub struct Denials {
    plugin: Arc<str>,
    stats: Arc<PluginStats>,
    window: Mutex<PerSecond>,
}

impl Denials {
    pub fn new(plugin: Arc<str>, stats: Arc<PluginStats>) -> Self {
        Self {
            plugin,
            stats,
            window: Mutex::new(PerSecond::new(LOGGED_PER_SECOND)),
        }
    }

    /// Count and log one refused attempt: `what` it tried, and the
    /// permission that would grant it.
    pub fn deny(&self, what: &str, grant: &str) {
        PluginStats::add(&self.stats.denied, 1);
        if self.window.lock().expect("denials lock").admit().0 {
            tracing::warn!(plugin = %self.plugin, "denied: plugin tried to {what}; not granted by {grant}");
        }
    }
}

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

/// wasi:http for one plugin: requests go out only to its grants.
pub struct HttpHooks {
    pub(crate) grants: Vec<HttpGrant>,
    pub(crate) denials: Arc<Denials>,
}

type ResponseIo = Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>;
type SendFuture = Box<
    dyn Future<Output = wasmtime_wasi_http::Result<(http::Response<WasiBody>, ResponseIo)>> + Send,
>;

impl WasiHttpHooks for HttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: ResponseIo,
    ) -> SendFuture {
        drop(fut);
        let uri = request.uri();
        let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let host = uri.host().unwrap_or_default();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let method = request.method().as_str();
        if !self.grants.iter().any(|g| g.allows(host, port, method)) {
            self.denials
                .deny(&format!("send {method} {uri}"), "permissions.http");
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as ResponseIo,
            ))
        })
    }
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
