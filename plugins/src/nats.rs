//! What `outputs.nats` and `inputs.nats_consumer` share: the connection
//! keys Telegraf gives both (`servers`, `secure`, `username`, `password`,
//! `credentials`, `nkey_seed`), checked without I/O, and the client built
//! from them with async-nats (reconnecting forever, every connection event
//! logged with fields).

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use async_nats::{ConnectOptions, Event, ServerAddr};
use serde::Deserialize;

use crate::config::SharedKeys;

/// The connection keys of a NATS plugin's table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    /// `servers` (default `["nats://localhost:4222"]`): every server the
    /// client may connect to (and reconnect to when one fails); servers the
    /// cluster announces are added.
    #[serde(default = "default_servers")]
    pub servers: Vec<String>,
    /// `secure` (default false): require TLS, with the `tls_*` keys or the
    /// system's CAs.
    #[serde(default)]
    pub secure: bool,
    /// `username` (default none): with `password`.
    #[serde(default)]
    pub username: String,
    /// `password` (default none): with `username`.
    #[serde(default)]
    pub password: String,
    /// `credentials` (default none): a NATS 2.0 `.creds` file (JWT and
    /// nkey seed).
    #[serde(default)]
    pub credentials: Option<PathBuf>,
    /// `nkey_seed` (default none): a file holding an nkey seed (`SU...`).
    #[serde(default)]
    pub nkey_seed: Option<PathBuf>,
}

fn default_servers() -> Vec<String> {
    vec!["nats://localhost:4222".into()]
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            servers: default_servers(),
            secure: false,
            username: String::new(),
            password: String::new(),
            credentials: None,
            nkey_seed: None,
        }
    }
}

/// How long connecting to one server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl SharedKeys for ConnectionConfig {
    const KEYS: &'static [&'static str] = &[
        "servers",
        "secure",
        "username",
        "password",
        "credentials",
        "nkey_seed",
    ];
}

impl ConnectionConfig {
    /// The server addresses; errors name the key. Pure: nothing is
    /// resolved or read.
    pub fn validate(&self) -> Result<Vec<ServerAddr>> {
        if self.servers.is_empty() {
            bail!("servers: at least one server is needed");
        }
        let addrs = self
            .servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                ServerAddr::from_str(s)
                    .with_context(|| format!("servers[{i}]: {s:?} is not a NATS server URL"))
            })
            .collect::<Result<Vec<_>>>()?;
        if self.username.is_empty() != self.password.is_empty() {
            bail!("username and password: set both or neither");
        }
        let ways = [
            !self.username.is_empty(),
            self.credentials.is_some(),
            self.nkey_seed.is_some(),
        ];
        if ways.iter().filter(|w| **w).count() > 1 {
            bail!("username/password, credentials and nkey_seed: use only one way to authenticate");
        }
        Ok(addrs)
    }

    /// Connect to the first server that answers (reading the credential
    /// files). `name` is the client's name shown by the server; `tls`
    /// the TLS client config (`None`: plain, unless `secure`).
    pub async fn connect(
        &self,
        name: &str,
        tls: Option<Arc<rustls::ClientConfig>>,
        tune: impl FnOnce(ConnectOptions) -> ConnectOptions,
    ) -> Result<async_nats::Client> {
        let addrs = self.validate()?;
        let mut options = if let Some(creds) = &self.credentials {
            ConnectOptions::with_credentials_file(creds)
                .await
                .with_context(|| format!("credentials: reading {}", creds.display()))?
        } else if let Some(seed) = &self.nkey_seed {
            let text = std::fs::read_to_string(seed)
                .with_context(|| format!("nkey_seed: reading {}", seed.display()))?;
            ConnectOptions::with_nkey(text.trim().to_owned())
        } else if !self.username.is_empty() {
            ConnectOptions::with_user_and_password(self.username.clone(), self.password.clone())
        } else {
            ConnectOptions::new()
        };
        if self.secure || tls.is_some() {
            // async-nats is built for ring; install it as the process's
            // provider once (a second install is refused, which is fine).
            let _ = rustls::crypto::ring::default_provider().install_default();
            options = options.require_tls(true);
        }
        if let Some(tls) = tls {
            options = options.tls_client_config(Arc::unwrap_or_clone(tls));
        }
        if !name.is_empty() {
            options = options.name(name);
        }
        let servers: Vec<String> = self.servers.clone();
        options = options
            .connection_timeout(CONNECT_TIMEOUT)
            .max_reconnects(None)
            .event_callback(move |event| {
                let servers = servers.clone();
                async move { log_event(&event, &servers) }
            });
        let client = tune(options)
            .connect(addrs)
            .await
            .with_context(|| format!("servers: cannot connect to {:?}", self.servers))?;
        Ok(client)
    }
}

/// One log line per connection event, at a level that says whether data
/// is at risk.
fn log_event(event: &Event, servers: &[String]) {
    match event {
        Event::Connected => tracing::info!(?servers, "connected to NATS"),
        Event::Disconnected => {
            tracing::warn!(?servers, "disconnected from NATS; reconnecting");
        }
        Event::SlowConsumer(sid) => tracing::warn!(
            subscription = sid,
            "NATS slow consumer: the subscription's pending limit was reached and the server dropped messages for it"
        ),
        other => tracing::warn!(event = %other, "NATS client event"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Result<ConnectionConfig> {
        crate::config::parse(toml::from_str(text).unwrap())
    }

    #[test]
    fn keys_are_the_fields() {
        for key in ConnectionConfig::KEYS {
            let text = format!("{key} = 1");
            let e = format!("{:#}", config(&text).unwrap_err());
            assert!(!e.contains("unknown field"), "{key}: {e}");
        }
    }

    #[test]
    fn servers_default_to_localhost_and_bad_ones_are_named() {
        let c = config("").unwrap();
        assert_eq!(c.validate().unwrap().len(), 1);
        let c = config("servers = [\"nats://127.0.0.1:4222\", \"nats://[::1\"]").unwrap();
        let e = format!("{:#}", c.validate().unwrap_err());
        assert!(e.contains("servers[1]"), "{e}");
        let c = config("servers = []").unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("servers"));
    }

    #[test]
    fn credentials_are_one_way_and_whole() {
        let e = config("username = \"u\"").unwrap().validate().unwrap_err();
        assert!(e.to_string().contains("password"), "{e}");
        let e = config("username = \"u\"\npassword = \"p\"\nnkey_seed = \"/seed\"")
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("nkey_seed"), "{e}");
        assert!(
            config("credentials = \"/x.creds\"")
                .unwrap()
                .validate()
                .is_ok()
        );
        assert!(format!("{:#}", config("secure = 1").unwrap_err()).contains("secure"));
    }
}
