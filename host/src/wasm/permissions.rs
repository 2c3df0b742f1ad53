//! What a WASM plugin may touch, granted in its config section under
//! `permissions`. Nothing is granted by default: no files, no environment,
//! no network. Every attempt past the grants that reaches the host is
//! refused, logged with the plugin's name and what it tried, and counted in
//! `denied` (see [`super::sandbox`]).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use super::console::Console;
use super::denials::{Denials, ROOT_GUEST_PATH};

/// A plugin's grants.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    /// `read_dirs = ["/etc/app"]` (default none): directories the plugin may
    /// read, seen inside the plugin at the same path.
    #[serde(default)]
    pub read_dirs: Vec<PathBuf>,
    /// `write_dirs = ["/var/lib/app"]` (default none): directories the plugin
    /// may read and write, at the same path.
    #[serde(default)]
    pub write_dirs: Vec<PathBuf>,
    /// `env = ["HOSTNAME"]` (default none): environment variables the plugin
    /// may read; the others do not exist for it.
    #[serde(default)]
    pub env: Vec<String>,
    /// `http = ["api.example.com:443", { host = "127.0.0.1:8086", methods =
    /// ["POST"] }]` (default none): where the plugin may send requests
    /// through wasi:http. A host without a port matches ports 80 and 443.
    #[serde(default)]
    pub http: Vec<HttpGrant>,
    /// `tcp = ["10.0.0.5:5432"]` (default none): addresses the plugin may
    /// open raw TCP connections to (`ip:port`, or `ip:*` for any port).
    #[serde(default)]
    pub tcp: Vec<SocketGrant>,
    /// `udp = ["127.0.0.1:8125"]` (default none): addresses the plugin may
    /// send UDP datagrams to or bind.
    #[serde(default)]
    pub udp: Vec<SocketGrant>,
}

/// One allowed HTTP destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpGrant {
    /// Host name or address, lower case, without brackets.
    pub host: String,
    /// `None`: the default ports (80, 443).
    pub port: Option<u16>,
    /// Upper-case methods; empty: any method.
    pub methods: Vec<String>,
}

impl HttpGrant {
    /// Whether a request to `host:port` with `method` is allowed.
    pub fn allows(&self, host: &str, port: u16, method: &str) -> bool {
        self.host
            .eq_ignore_ascii_case(host.trim_start_matches('[').trim_end_matches(']'))
            && match self.port {
                Some(p) => p == port,
                None => port == 80 || port == 443,
            }
            && (self.methods.is_empty() || self.methods.iter().any(|m| m == method))
    }

    fn parse(host: &str, methods: Vec<String>) -> Result<Self, String> {
        if host.contains("://") || host.contains('/') {
            return Err(format!(
                "{host:?}: give host or host:port, without scheme or path"
            ));
        }
        let (name, port) = match host.rsplit_once(':') {
            // An IPv6 address without brackets has colons but no port.
            Some((name, port)) if !name.contains(':') || name.ends_with(']') => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| format!("{host:?}: {port:?} is not a port"))?;
                (name, Some(port))
            }
            _ => (host, None),
        };
        let name = name.trim_start_matches('[').trim_end_matches(']');
        if name.is_empty() {
            return Err(format!("{host:?}: no host"));
        }
        let methods = methods
            .into_iter()
            .map(|m| m.to_ascii_uppercase())
            .collect();
        Ok(Self {
            host: name.to_ascii_lowercase(),
            port,
            methods,
        })
    }
}

impl<'de> Deserialize<'de> for HttpGrant {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Host(String),
            Table {
                host: String,
                #[serde(default)]
                methods: Vec<String>,
            },
        }
        let (host, methods) = match Raw::deserialize(d)? {
            Raw::Host(h) => (h, Vec::new()),
            Raw::Table { host, methods } => (host, methods),
        };
        HttpGrant::parse(&host, methods).map_err(serde::de::Error::custom)
    }
}

/// One allowed socket address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketGrant {
    pub ip: IpAddr,
    /// `None`: any port.
    pub port: Option<u16>,
}

impl SocketGrant {
    fn allows(&self, addr: &SocketAddr) -> bool {
        self.ip == addr.ip() && self.port.is_none_or(|p| p == addr.port())
    }
}

impl<'de> Deserialize<'de> for SocketGrant {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bad = || serde::de::Error::custom(format!("{text:?} is not ip:port or ip:*"));
        let (ip, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let ip: IpAddr = ip
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| bad())?;
        let port = match port {
            "*" => None,
            p => Some(p.parse().map_err(|_| bad())?),
        };
        Ok(SocketGrant { ip, port })
    }
}

impl Permissions {
    /// Check the grants without side effects: every directory exists.
    pub fn validate(&self) -> Result<()> {
        for (key, dirs) in [
            ("read_dirs", &self.read_dirs),
            ("write_dirs", &self.write_dirs),
        ] {
            for (i, dir) in dirs.iter().enumerate() {
                if !dir.is_absolute() {
                    bail!(
                        "permissions.{key}[{i}]: {} is not an absolute path",
                        dir.display()
                    );
                }
                if dir == std::path::Path::new("/") {
                    bail!("permissions.{key}[{i}]: granting / would grant every file");
                }
                if !dir.is_dir() {
                    bail!(
                        "permissions.{key}[{i}]: {} is not a directory",
                        dir.display()
                    );
                }
            }
        }
        Ok(())
    }

    /// A WASI context that grants exactly this. `empty_root` is an empty
    /// directory mounted read-only at `/`, so that opening anything outside
    /// the granted directories reaches the host and can be reported.
    pub(crate) fn wasi_ctx(
        &self,
        console: &Console,
        empty_root: &std::path::Path,
        denials: &Arc<Denials>,
    ) -> Result<WasiCtx> {
        let mut b = WasiCtxBuilder::new();
        b.stdout(console.clone()).stderr(console.clone());
        b.preopened_dir(empty_root, ROOT_GUEST_PATH, FsPerms::ReadOnly)
            .map_err(anyhow::Error::from)
            .context("mounting the empty root")?;
        for dir in &self.read_dirs {
            let guest = dir.to_string_lossy();
            b.preopened_dir(dir, &guest, FsPerms::ReadOnly)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("granting read access to {}", dir.display()))?;
        }
        for dir in &self.write_dirs {
            let guest = dir.to_string_lossy();
            b.preopened_dir(dir, &guest, FsPerms::ReadWrite)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("granting write access to {}", dir.display()))?;
        }
        for name in &self.env {
            if let Ok(value) = std::env::var(name) {
                b.env(name, value);
            }
        }
        // Sockets are enabled so that every attempt reaches the address
        // check below, which allows only the grants and reports the rest.
        b.allow_tcp(true)
            .allow_udp(true)
            .allow_ip_name_lookup(false);
        let (tcp, udp, denials) = (self.tcp.clone(), self.udp.clone(), denials.clone());
        b.socket_addr_check(move |addr, usage| {
            let tcp_use = matches!(
                usage,
                SocketAddrUse::TcpBind
                    | SocketAddrUse::TcpListen
                    | SocketAddrUse::TcpAccept
                    | SocketAddrUse::TcpConnect
            );
            let (grants, proto) = if tcp_use {
                (&tcp, "tcp")
            } else {
                (&udp, "udp")
            };
            // The OS binds an ephemeral port before a connect or a send;
            // clients a granted listener accepts are its business.
            let implicit_bind = matches!(usage, SocketAddrUse::TcpBind | SocketAddrUse::UdpBind)
                && addr.ip().is_unspecified()
                && addr.port() == 0;
            let allowed = implicit_bind
                || matches!(usage, SocketAddrUse::TcpAccept)
                || grants.iter().any(|g| g.allows(&addr));
            if !allowed {
                let what = match usage {
                    SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => "bind",
                    SocketAddrUse::TcpListen => "listen on",
                    SocketAddrUse::TcpConnect => "connect to",
                    _ => "send to",
                };
                denials.deny(
                    &format!("{what} {proto}://{addr}"),
                    &format!("permissions.{proto}"),
                );
            }
            Box::pin(async move { allowed })
        });
        Ok(b.build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(text: &str) -> Permissions {
        let t: toml::Table = toml::from_str(text).unwrap();
        toml::Value::Table(t).try_into().unwrap()
    }

    #[test]
    fn http_grants_match_host_port_and_method() {
        let p = grants(
            r#"http = ["api.example.com", "127.0.0.1:8086", { host = "[::1]:9000", methods = ["post"] }]"#,
        );
        let [any, local, v6] = &p.http[..] else {
            panic!("three grants")
        };
        assert!(any.allows("API.example.com", 443, "GET"));
        assert!(any.allows("api.example.com", 80, "DELETE"));
        assert!(!any.allows("api.example.com", 8080, "GET"));
        assert!(!any.allows("evil.example.com", 443, "GET"));
        assert!(local.allows("127.0.0.1", 8086, "PUT"));
        assert!(!local.allows("127.0.0.1", 8087, "PUT"));
        assert!(v6.allows("[::1]", 9000, "POST"));
        assert!(!v6.allows("::1", 9000, "GET"));
    }

    #[test]
    fn bad_grants_are_refused_with_the_value() {
        let t: toml::Table = toml::from_str(r#"http = ["http://x.org/path"]"#).unwrap();
        let e = toml::Value::Table(t)
            .try_into::<Permissions>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("without scheme or path"), "{e}");
        let t: toml::Table = toml::from_str(r#"tcp = ["localhost:80"]"#).unwrap();
        let e = toml::Value::Table(t)
            .try_into::<Permissions>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("not ip:port"), "{e}");
    }

    #[test]
    fn socket_grants_match_exact_or_any_port() {
        let p = grants(r#"tcp = ["10.0.0.5:5432", "127.0.0.1:*"]"#);
        let a: SocketAddr = "10.0.0.5:5432".parse().unwrap();
        let b: SocketAddr = "10.0.0.5:5433".parse().unwrap();
        let c: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert!(p.tcp[0].allows(&a));
        assert!(!p.tcp[0].allows(&b));
        assert!(p.tcp[1].allows(&c));
    }
}
