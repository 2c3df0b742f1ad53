//! What the inputs that poll HTTP endpoints (`nginx`, `http`) share:
//! Telegraf's common HTTP client keys (`plugins/common/http`: `timeout`,
//! `response_timeout`, proxy, local address, connection pool, OAuth2 and
//! cookie keys, the TLS keys' extras), endpoints that may be `http+unix`
//! URLs, the clients built for them, an interface's addresses
//! ([`interface`]), bounded fetching ([`fetch`]) and a
//! failing endpoint logged once per change of state ([`Health`]).

pub mod fetch;
pub mod interface;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use reqwest::Url;
use serde::Deserialize;

use crate::config::SharedKeys;
use crate::duration::de_duration;
use crate::tls::TlsConfig;

pub use fetch::{FetchError, Health, Response};

/// The counters every HTTP polling input keeps (fields of its
/// `internal_gather` metric): requests made, requests that failed, those
/// that timed out, and bodies over the size bound.
pub struct Stats {
    pub requests: std::sync::Arc<std::sync::atomic::AtomicU64>,
    pub request_errors: std::sync::Arc<std::sync::atomic::AtomicU64>,
    pub timeouts: std::sync::Arc<std::sync::atomic::AtomicU64>,
    pub body_size_limit_hits: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Stats {
    /// Each counter from `counter(name)` (a sink's or a local set).
    pub fn new(
        counter: impl Fn(&'static str) -> std::sync::Arc<std::sync::atomic::AtomicU64>,
    ) -> Self {
        Self {
            requests: counter("requests"),
            request_errors: counter("request_errors"),
            timeouts: counter("timeouts"),
            body_size_limit_hits: counter("body_size_limit_hits"),
        }
    }
}

/// Telegraf's common HTTP client keys, besides `tls_ca`, `tls_cert`,
/// `tls_key`, `tls_server_name`, `insecure_skip_verify` and `tls_enable`
/// ([`TlsConfig`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientKeys {
    /// `timeout` (default 5s): a whole request, body included.
    #[serde(default, deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// `response_timeout` (default 0s: only `timeout`): until the response
    /// headers arrive. The plugin may set its own default.
    #[serde(default, deserialize_with = "de_duration")]
    pub response_timeout: Duration,
    /// `idle_conn_timeout` (default 0s: reqwest's 90s): how long an idle
    /// connection is kept for reuse.
    #[serde(default, deserialize_with = "de_duration")]
    pub idle_conn_timeout: Duration,
    /// `max_idle_conn` (accepted: graft's pool is per host, see
    /// `max_idle_conn_per_host`).
    #[serde(default)]
    pub max_idle_conn: i64,
    /// `max_idle_conn_per_host` (default 0: no bound): idle connections
    /// kept per host.
    #[serde(default)]
    pub max_idle_conn_per_host: i64,
    /// `local_address` (default: the system's choice): the IP address to
    /// connect from.
    #[serde(default)]
    pub local_address: String,
    /// `use_system_proxy` (default false): the proxy `HTTP_PROXY`,
    /// `HTTPS_PROXY` and `NO_PROXY` name.
    #[serde(default)]
    pub use_system_proxy: bool,
    /// `http_proxy_url` (default none): a proxy for every request.
    #[serde(default)]
    pub http_proxy_url: String,
    /// `tls_key_pwd`: encrypted keys are not supported; only `""`.
    #[serde(default)]
    pub tls_key_pwd: String,
    /// `tls_min_version` (`TLS10` to `TLS12` mean TLS 1.2, graft's least).
    #[serde(default)]
    pub tls_min_version: String,
    /// `tls_cipher_suites`: accepted; rustls offers only secure suites.
    #[serde(default)]
    pub tls_cipher_suites: Vec<String>,
    /// `tls_renegotiation_method`: accepted; rustls never renegotiates.
    #[serde(default)]
    pub tls_renegotiation_method: String,
    /// `client_id`, `client_secret`, `token_url`, `audience`, `scopes`:
    /// OAuth2 is not supported; setting `client_id` is refused.
    #[serde(default)]
    pub client_id: String,
    #[serde(default, rename = "client_secret")]
    _client_secret: String,
    #[serde(default, rename = "token_url")]
    _token_url: String,
    #[serde(default, rename = "audience")]
    _audience: String,
    #[serde(default, rename = "scopes")]
    _scopes: Vec<String>,
    /// `cookie_auth_url` and the other `cookie_auth_*` keys: cookie
    /// authentication is not supported; setting the URL is refused.
    #[serde(default)]
    pub cookie_auth_url: String,
    #[serde(default, rename = "cookie_auth_method")]
    _cookie_auth_method: String,
    #[serde(default, rename = "cookie_auth_username")]
    _cookie_auth_username: String,
    #[serde(default, rename = "cookie_auth_password")]
    _cookie_auth_password: String,
    #[serde(default, rename = "cookie_auth_headers")]
    _cookie_auth_headers: std::collections::BTreeMap<String, String>,
    #[serde(default, rename = "cookie_auth_body")]
    _cookie_auth_body: String,
    #[serde(default, rename = "cookie_auth_renewal")]
    _cookie_auth_renewal: Option<toml::Value>,
}

impl SharedKeys for ClientKeys {
    const KEYS: &'static [&'static str] = &[
        "timeout",
        "response_timeout",
        "idle_conn_timeout",
        "max_idle_conn",
        "max_idle_conn_per_host",
        "local_address",
        "use_system_proxy",
        "http_proxy_url",
        "tls_key_pwd",
        "tls_min_version",
        "tls_cipher_suites",
        "tls_renegotiation_method",
        "client_id",
        "client_secret",
        "token_url",
        "audience",
        "scopes",
        "cookie_auth_url",
        "cookie_auth_method",
        "cookie_auth_username",
        "cookie_auth_password",
        "cookie_auth_headers",
        "cookie_auth_body",
        "cookie_auth_renewal",
    ];
}

/// How the clients are built, resolved from [`ClientKeys`] and
/// [`TlsConfig`]. Pure: no file is read.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub timeout: Duration,
    pub response_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub max_idle_per_host: Option<usize>,
    pub local_address: Option<IpAddr>,
    pub proxy: Option<String>,
    pub system_proxy: bool,
    pub follow_redirects: bool,
    pub tls: TlsConfig,
}

impl ClientSettings {
    /// Check and resolve the keys; `default_response_timeout` is the
    /// plugin's own (nginx: 5s).
    pub fn resolve(
        keys: &ClientKeys,
        tls: &TlsConfig,
        default_response_timeout: Option<Duration>,
    ) -> Result<Self> {
        tls.validate()?;
        check_tls_extras(&keys.tls_key_pwd, &keys.tls_min_version)?;
        if !keys.client_id.is_empty() {
            bail!(
                "client_id: OAuth2 client credentials are not supported in graft; use token, \
                 username/password or headers"
            );
        }
        if !keys.cookie_auth_url.is_empty() {
            bail!(
                "cookie_auth_url: cookie authentication is not supported in graft; use token, \
                 username/password or headers"
            );
        }
        let local_address = match keys.local_address.trim() {
            "" => None,
            a => Some(
                a.parse::<IpAddr>()
                    .with_context(|| format!("local_address: {a:?} is not an IP address"))?,
            ),
        };
        let proxy = Some(keys.http_proxy_url.trim().to_owned()).filter(|p| !p.is_empty());
        if let Some(p) = &proxy {
            reqwest::Proxy::all(p)
                .with_context(|| format!("http_proxy_url: {p:?} is not a URL"))?;
        }
        let positive = |d: Duration| (!d.is_zero()).then_some(d);
        Ok(Self {
            timeout: positive(keys.timeout).unwrap_or(Duration::from_secs(5)),
            response_timeout: positive(keys.response_timeout).or(default_response_timeout),
            idle_timeout: positive(keys.idle_conn_timeout),
            max_idle_per_host: usize::try_from(keys.max_idle_conn_per_host)
                .ok()
                .filter(|n| *n > 0),
            local_address,
            proxy,
            system_proxy: keys.use_system_proxy,
            follow_redirects: true,
            tls: tls.clone(),
        })
    }

    /// A client for TCP endpoints, or for the unix socket `unix`; reads
    /// the TLS files. Errors name the key at fault.
    pub fn client(&self, unix: Option<&PathBuf>) -> Result<reqwest::Client> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .user_agent(crate::http::default_user_agent())
            .redirect(if self.follow_redirects {
                reqwest::redirect::Policy::limited(10)
            } else {
                reqwest::redirect::Policy::none()
            });
        if let Some(d) = self.idle_timeout {
            builder = builder.pool_idle_timeout(d);
        }
        if let Some(n) = self.max_idle_per_host {
            builder = builder.pool_max_idle_per_host(n);
        }
        if let Some(a) = self.local_address {
            builder = builder.local_address(a);
        }
        if let Some(path) = unix {
            builder = builder.unix_socket(path.clone());
        }
        builder = match (&self.proxy, self.system_proxy) {
            (Some(p), _) => builder.proxy(reqwest::Proxy::all(p).context("http_proxy_url")?),
            (None, true) => builder,
            (None, false) => builder.no_proxy(),
        };
        builder = match self.tls.client_config()? {
            Some(config) => {
                builder.tls_backend_preconfigured(std::sync::Arc::unwrap_or_clone(config))
            }
            None => builder.tls_backend_rustls(),
        };
        builder.build().context("building the HTTP client")
    }
}

/// `tls_key_pwd`, `tls_min_version`: what graft can honour.
pub fn check_tls_extras(key_pwd: &str, min_version: &str) -> Result<()> {
    if !key_pwd.is_empty() {
        bail!("tls_key_pwd: encrypted private keys are not supported in graft; decrypt the key");
    }
    match min_version {
        "" | "TLS10" | "TLS11" | "TLS12" => Ok(()),
        "TLS13" => bail!(
            "tls_min_version: \"TLS13\" is not supported in graft (TLS 1.2 and 1.3 are offered)"
        ),
        other => bail!("tls_min_version: {other:?} is not one of TLS10, TLS11, TLS12, TLS13"),
    }
}

/// One URL to poll: where the request goes, the socket it goes through
/// (`http+unix`), and the URL as written (for tags and logs, without a
/// password).
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The request's URL (for `http+unix`, `http://localhost` and the path).
    pub url: Url,
    /// The unix socket of an `http+unix`/`https+unix` URL.
    pub unix: Option<PathBuf>,
    /// The URL as written, with any password removed.
    pub shown: String,
}

impl Endpoint {
    /// Read `raw`: `http://`, `https://`, or `http+unix:///path/to.sock:/request/path`
    /// (Telegraf's form: the socket's path ends at the first `:`).
    pub fn parse(raw: &str) -> Result<Self> {
        let raw = raw.trim();
        let (scheme, rest) = raw.split_once("://").context("not a URL (no scheme)")?;
        let (scheme, unix) = match scheme.to_ascii_lowercase().as_str() {
            "http" => ("http", false),
            "https" => ("https", false),
            "http+unix" => ("http", true),
            "https+unix" => ("https", true),
            s => bail!("scheme {s:?} is not http, https, http+unix or https+unix"),
        };
        if unix {
            let (socket, path) = rest.split_once(':').unwrap_or((rest, "/"));
            if !socket.starts_with('/') || socket.len() < 2 {
                bail!(
                    "{raw:?}: the socket path must be absolute (http+unix:///path/to.sock:/path)"
                );
            }
            let path = if path.starts_with('/') {
                path.to_owned()
            } else {
                format!("/{path}")
            };
            let url = Url::parse(&format!("{scheme}://localhost{path}")).context("not a URL")?;
            return Ok(Self {
                url,
                unix: Some(PathBuf::from(socket)),
                shown: raw.to_owned(),
            });
        }
        let url = Url::parse(raw).context("not a URL")?;
        if url.host_str().is_none_or(str::is_empty) {
            bail!("no host");
        }
        let mut shown = url.clone();
        let _ = shown.set_password(None);
        let shown = if url.password().is_some() {
            shown.to_string()
        } else {
            raw.to_owned()
        };
        Ok(Self {
            url,
            unix: None,
            shown,
        })
    }
}

/// Build the clients of `endpoints`: one shared by the TCP ones, one per
/// unix socket. `clients[i]` serves `endpoints[i]`.
pub fn clients(settings: &ClientSettings, endpoints: &[Endpoint]) -> Result<Vec<reqwest::Client>> {
    let tcp = settings.client(None)?;
    endpoints
        .iter()
        .map(|e| match &e.unix {
            None => Ok(tcp.clone()),
            Some(path) => settings.client(Some(path)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_read_telegraf_unix_urls_and_hide_passwords() {
        let e = Endpoint::parse("http+unix:///var/run/nginx.sock:/server_status").unwrap();
        assert_eq!(
            e.unix.as_deref(),
            Some(std::path::Path::new("/var/run/nginx.sock"))
        );
        assert_eq!(e.url.as_str(), "http://localhost/server_status");
        assert_eq!(e.shown, "http+unix:///var/run/nginx.sock:/server_status");
        let e = Endpoint::parse("https+unix:///run/x.sock").unwrap();
        assert_eq!(e.url.as_str(), "https://localhost/");
        let e = Endpoint::parse("http://me:pw@127.0.0.1:8080/status").unwrap();
        assert_eq!(e.url.password(), Some("pw"));
        assert_eq!(e.shown, "http://me@127.0.0.1:8080/status");
        assert_eq!(
            Endpoint::parse("http://localhost/x").unwrap().shown,
            "http://localhost/x"
        );
        for bad in [
            "ftp://x/",
            "localhost",
            "http+unix://relative.sock:/x",
            "http://",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    fn keys(text: &str) -> Result<ClientSettings> {
        let c: crate::config::With<ClientKeys, TlsConfig> =
            crate::config::parse(toml::from_str(text).unwrap())?;
        ClientSettings::resolve(&c.own, &c.shared, Some(Duration::from_secs(5)))
    }

    #[test]
    fn client_keys_resolve_and_refuse_what_graft_cannot_honour() {
        let s = keys("").unwrap();
        assert_eq!(s.timeout, Duration::from_secs(5));
        assert_eq!(s.response_timeout, Some(Duration::from_secs(5)));
        let s = keys("timeout = \"2s\"\nresponse_timeout = \"1s\"\nlocal_address = \"127.0.0.1\"\n\
                      tls_min_version = \"TLS12\"\ntls_cipher_suites = [\"secure\"]\n\
                      tls_renegotiation_method = \"never\"\nmax_idle_conn = 0\nclient_secret = \"\"")
            .unwrap();
        assert_eq!(s.timeout, Duration::from_secs(2));
        assert_eq!(s.response_timeout, Some(Duration::from_secs(1)));
        assert_eq!(s.local_address, Some("127.0.0.1".parse().unwrap()));
        let err = |t: &str| format!("{:#}", keys(t).unwrap_err());
        assert!(err("client_id = \"x\"").contains("client_id"));
        assert!(err("cookie_auth_url = \"http://a/\"").contains("cookie_auth_url"));
        assert!(err("tls_key_pwd = \"x\"").contains("tls_key_pwd"));
        assert!(err("tls_min_version = \"TLS13\"").contains("tls_min_version"));
        assert!(err("local_address = \"eth0\"").contains("local_address"));
        assert!(err("http_proxy_url = \"::\"").contains("http_proxy_url"));
        assert!(err("tls_cert = \"/x\"").contains("tls_key"));
    }
}
