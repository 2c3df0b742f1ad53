//! `[[inputs.redis]]`'s table with Telegraf's keys (plus graft's limits),
//! and its resolved form: each server as an endpoint with its credentials
//! and tags. Resolving reads no file and opens nothing.

use std::time::Duration;

use anyhow::{Result, bail};
use serde::Deserialize;

use super::resp::Endpoint;
use crate::config::With;
use crate::duration::{de_duration, de_size};
use crate::tls::TlsConfig;

/// The whole table: the plugin's own keys and the TLS keys.
pub type Config = With<Own, TlsConfig>;

/// The plugin's own keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Own {
    /// `servers` (default `["tcp://localhost:6379"]`):
    /// `tcp://[username:password@]host[:port]` or `unix:///path`.
    #[serde(default)]
    pub servers: Vec<String>,
    /// `username` (default: the URL's): the ACL user (Redis 6+).
    #[serde(default)]
    pub username: String,
    /// `password` (default: the URL's).
    #[serde(default)]
    pub password: String,
    /// `[[inputs.redis.commands]]`: values read with commands, as fields
    /// of `redis_commands`.
    #[serde(default)]
    pub commands: Vec<CommandConfig>,
    /// `timeout` (graft's, default `"5s"`): connecting, authenticating and
    /// reading one server, all together.
    #[serde(default = "timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// `max_reply_size` (graft's, default `"8MiB"`): a longer reply is
    /// refused and the connection dropped.
    #[serde(default = "max_reply_size", deserialize_with = "de_size")]
    pub max_reply_size: u64,
    /// `max_series` (graft's, default 10000): per server and gather, at most
    /// this many `redis_keyspace`, `redis_cmdstat`, `redis_errorstat`,
    /// `redis_latency_percentiles_usec` and `redis_replication` metrics.
    #[serde(default = "max_series")]
    pub max_series: usize,
}

fn timeout() -> Duration {
    Duration::from_secs(5)
}

fn max_reply_size() -> u64 {
    8 << 20
}

fn max_series() -> usize {
    10_000
}

/// `[[inputs.redis.commands]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandConfig {
    /// `command`: the command and its arguments, one element each.
    pub command: Vec<toml::Value>,
    /// `field`: the field of `redis_commands` that holds the reply.
    pub field: String,
    /// `type`: `"string"`, `"integer"` or `"float"`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// The type a command's reply is read as.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReplyType {
    String,
    Integer,
    Float,
}

/// A checked command.
#[derive(Debug, Clone)]
pub struct Command {
    pub args: Vec<Vec<u8>>,
    pub field: String,
    pub kind: ReplyType,
}

/// One server to ask.
#[derive(Debug, Clone)]
pub struct Server {
    pub endpoint: Endpoint,
    pub username: String,
    pub password: String,
    /// `server` and `port`, or `socket`.
    pub tags: Vec<(String, String)>,
    /// How the server is named in logs (no password).
    pub name: String,
}

/// Everything a gather needs, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub servers: Vec<Server>,
    pub commands: Vec<Command>,
    pub timeout: Duration,
    pub max_reply_size: usize,
    pub max_series: usize,
}

impl Settings {
    /// Check and resolve the table. Pure.
    pub fn resolve(config: &Config) -> Result<Self> {
        let own = &config.own;
        config.shared.validate()?;
        let servers = if own.servers.is_empty() {
            vec!["tcp://localhost:6379".to_owned()]
        } else {
            own.servers.clone()
        };
        let servers = servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                server(s, &own.username, &own.password)
                    .map_err(|e| anyhow::anyhow!("servers[{i}]: {e}"))
            })
            .collect::<Result<Vec<_>>>()?;
        let commands = own
            .commands
            .iter()
            .enumerate()
            .map(|(i, c)| command(c).map_err(|e| anyhow::anyhow!("commands[{i}]: {e}")))
            .collect::<Result<Vec<_>>>()?;
        if own.timeout.is_zero() {
            bail!("timeout: must be more than 0");
        }
        if own.max_reply_size < 1024 {
            bail!("max_reply_size: must be at least 1KiB");
        }
        Ok(Self {
            servers,
            commands,
            timeout: own.timeout,
            max_reply_size: usize::try_from(own.max_reply_size).unwrap_or(usize::MAX),
            max_series: own.max_series,
        })
    }
}

fn command(c: &CommandConfig) -> Result<Command> {
    let kind = match c.kind.as_str() {
        "string" => ReplyType::String,
        "integer" => ReplyType::Integer,
        "float" => ReplyType::Float,
        other => bail!(r#"type: expected one of "string", "integer", "float"; got {other:?}"#),
    };
    if c.command.is_empty() {
        bail!("command: must name a command");
    }
    if c.field.is_empty() {
        bail!("field: must not be empty");
    }
    let args = c
        .command
        .iter()
        .map(|v| match v {
            toml::Value::String(s) => Ok(s.clone().into_bytes()),
            toml::Value::Integer(i) => Ok(i.to_string().into_bytes()),
            toml::Value::Float(f) => Ok(f.to_string().into_bytes()),
            toml::Value::Boolean(b) => Ok(if *b { b"1".to_vec() } else { b"0".to_vec() }),
            other => bail!("command: {other} is not a string or number"),
        })
        .collect::<Result<_>>()?;
    Ok(Command {
        args,
        field: c.field.clone(),
        kind,
    })
}

/// `tcp://[user:pass@]host[:port]`, `unix:///path`, or `host:port`
/// (Telegraf takes a URL without scheme as `tcp://`).
fn server(url: &str, username: &str, password: &str) -> Result<Server> {
    let with_scheme = if url.starts_with("tcp://") || url.starts_with("unix://") {
        url.to_owned()
    } else {
        format!("tcp://{url}")
    };
    let parsed = reqwest::Url::parse(&with_scheme).map_err(|e| anyhow::anyhow!("{url:?}: {e}"))?;
    let mut user = percent_decode(parsed.username());
    let mut pass = parsed.password().map(percent_decode).unwrap_or_default();
    if !username.is_empty() {
        username.clone_into(&mut user);
    }
    if !password.is_empty() {
        password.clone_into(&mut pass);
    }
    let (endpoint, tags, name) = if parsed.scheme() == "unix" {
        let path = parsed.path().to_owned();
        if path.is_empty() || path == "/" {
            bail!("{url:?}: a unix:// server needs a socket path");
        }
        (
            Endpoint::Unix(path.clone()),
            vec![("socket".to_owned(), path.clone())],
            format!("unix://{path}"),
        )
    } else {
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .unwrap_or("localhost")
            .trim_matches(['[', ']'])
            .to_owned();
        // Telegraf tags `u.Port()`: empty (so no tag) when the URL names
        // no port; the connection goes to Redis's default port.
        let mut tags = vec![("server".to_owned(), host.clone())];
        if let Some(port) = parsed.port() {
            tags.push(("port".to_owned(), port.to_string()));
        }
        let port = parsed.port().unwrap_or(6379);
        (
            Endpoint::Tcp {
                host: host.clone(),
                port,
            },
            tags,
            format!("tcp://{host}:{port}"),
        )
    };
    Ok(Server {
        endpoint,
        username: user,
        password: pass,
        tags,
        name,
    })
}

/// `%XX` escapes of a URL's user info, decoded.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml_text: &str) -> Result<Settings> {
        let c: Config = crate::config::parse(toml::from_str(toml_text).unwrap())?;
        Settings::resolve(&c)
    }

    #[test]
    fn servers_resolve_as_telegraf_reads_them() {
        let s = settings(
            r#"servers = ["tcp://:p%40ss@127.0.0.1:7000", "tcp://bob:pw@[::1]", "unix:///run/r.sock", "localhost:6380"]"#,
        )
        .unwrap();
        let tags = |i: usize| s.servers[i].tags.clone();
        assert_eq!(s.servers[0].password, "p@ss");
        assert_eq!(s.servers[0].username, "");
        assert_eq!(
            tags(0),
            [
                ("server".into(), "127.0.0.1".into()),
                ("port".into(), "7000".into())
            ]
        );
        assert_eq!(s.servers[1].username, "bob");
        // No port in the URL: no port tag, as Telegraf's empty `u.Port()`.
        assert_eq!(tags(1), [("server".into(), "::1".into())]);
        assert!(matches!(
            s.servers[1].endpoint,
            Endpoint::Tcp { port: 6379, .. }
        ));
        assert_eq!(tags(2), [("socket".into(), "/run/r.sock".into())]);
        assert_eq!(tags(3)[1].1, "6380");
        // The table's credentials win over the URL's.
        let s = settings(
            r#"servers = ["tcp://u:p@h:1"]
username = "x"
password = "y""#,
        )
        .unwrap();
        assert_eq!(
            (
                s.servers[0].username.as_str(),
                s.servers[0].password.as_str()
            ),
            ("x", "y")
        );
        assert_eq!(
            settings("").unwrap().servers[0].name,
            "tcp://localhost:6379"
        );
    }

    #[test]
    fn bad_commands_and_keys_are_named() {
        let e =
            settings("[[commands]]\ncommand = [\"get\", \"k\"]\nfield = \"v\"\ntype = \"bool\"")
                .unwrap_err();
        assert!(e.to_string().contains("commands[0]: type"), "{e}");
        let e = settings("servers = [\"unix://\"]").unwrap_err();
        assert!(e.to_string().contains("servers[0]"), "{e}");
        let e = settings("nope = 1").unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        let s = settings(
            "[[commands]]\ncommand = [\"incrby\", \"k\", 5]\nfield = \"v\"\ntype = \"integer\"",
        )
        .unwrap();
        assert_eq!(s.commands[0].args[2], b"5");
    }
}
