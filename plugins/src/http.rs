//! What the HTTP outputs share: one table of client options (timeout,
//! proxy, user agent, extra headers, gzip, TLS; keys named as Telegraf names
//! them) that each output's config embeds through [`WithHttpClient`], the
//! client built from it, and reading a server's error out of its response.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use flate2::Compression;
use flate2::write::GzEncoder;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;

use crate::config::{SharedKeys, With};

use crate::duration::de_duration;

/// The HTTP client options of an output's table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// `timeout` (default 5s): connecting, and each whole request.
    #[serde(default = "five_seconds", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// `user_agent` (default `graft/<version>`).
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
    /// `http_headers` (default none): extra headers on every request.
    #[serde(default)]
    pub http_headers: BTreeMap<String, String>,
    /// `http_proxy` (default none): a proxy URL; without one, no proxy is
    /// used (not even one named by the environment).
    #[serde(default)]
    pub http_proxy: Option<String>,
    /// `content_encoding` (default `"gzip"`; or `"identity"`): of request
    /// bodies.
    #[serde(default)]
    pub content_encoding: ContentEncoding,
    /// `tls_ca` (default none): a PEM file of CAs to trust besides the
    /// system's.
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// `tls_cert` and `tls_key` (default none): a client certificate for
    /// mutual TLS; both or neither.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// `tls_key` (default none): the private key of `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// `insecure_skip_verify` (default false): accept any server
    /// certificate.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

fn five_seconds() -> Duration {
    Duration::from_secs(5)
}

/// The `User-Agent` graft sends unless told otherwise.
pub fn default_user_agent() -> String {
    format!("graft/{}", env!("CARGO_PKG_VERSION"))
}

impl ClientConfig {
    /// The keys of the table, as [`WithHttpClient`] takes them out of an
    /// output's table.
    pub const KEYS: &[&str] = &[
        "timeout",
        "user_agent",
        "http_headers",
        "http_proxy",
        "content_encoding",
        "tls_ca",
        "tls_cert",
        "tls_key",
        "insecure_skip_verify",
    ];

    /// What the types cannot say: header names and values, the proxy URL,
    /// certificate and key together. Pure: no file is read.
    pub fn validate(&self) -> Result<()> {
        self.headers().map(drop)?;
        self.proxy().map(drop)?;
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            bail!("tls_cert and tls_key: set both or neither");
        }
        Ok(())
    }

    fn headers(&self) -> Result<HeaderMap> {
        let mut headers = HeaderMap::new();
        for (k, v) in &self.http_headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .with_context(|| format!("http_headers: {k:?} is not a header name"))?;
            let value = HeaderValue::from_str(v)
                .with_context(|| format!("http_headers: the value of {k:?} is not valid"))?;
            headers.insert(name, value);
        }
        Ok(headers)
    }

    fn proxy(&self) -> Result<Option<reqwest::Proxy>> {
        match &self.http_proxy {
            Some(p) if !p.is_empty() => {
                Ok(Some(reqwest::Proxy::all(p).with_context(|| {
                    format!("http_proxy: {p:?} is not a URL")
                })?))
            }
            _ => Ok(None),
        }
    }

    /// The client; reads the TLS files. Errors name the key at fault.
    pub fn client(&self) -> Result<reqwest::Client> {
        self.validate()?;
        // reqwest is built without a crypto provider of its own; install
        // ring once per process (a second install is refused, which is fine).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .tls_backend_rustls()
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .user_agent(self.user_agent.clone())
            .default_headers(self.headers()?);
        builder = match self.proxy()? {
            Some(proxy) => builder.proxy(proxy),
            None => builder.no_proxy(),
        };
        if let Some(ca) = &self.tls_ca {
            let pem =
                std::fs::read(ca).with_context(|| format!("tls_ca: reading {}", ca.display()))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("tls_ca: {} is not a PEM bundle", ca.display()))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            let mut pem = std::fs::read(cert)
                .with_context(|| format!("tls_cert: reading {}", cert.display()))?;
            let key_pem = std::fs::read(key)
                .with_context(|| format!("tls_key: reading {}", key.display()))?;
            pem.push(b'\n');
            pem.extend_from_slice(&key_pem);
            let identity = reqwest::Identity::from_pem(&pem)
                .context("tls_cert/tls_key: not a PEM certificate and private key")?;
            builder = builder.identity(identity);
        }
        if self.insecure_skip_verify {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        builder.build().context("building the HTTP client")
    }
}

/// An HTTP output's table: its own keys (`T`) and the shared
/// [`ClientConfig`] keys.
pub type WithHttpClient<T> = With<T, ClientConfig>;

impl SharedKeys for ClientConfig {
    const KEYS: &'static [&'static str] = ClientConfig::KEYS;
}

/// `content_encoding`: `gzip` (the default) or `identity`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum ContentEncoding {
    #[default]
    Gzip,
    Identity,
}

impl TryFrom<String> for ContentEncoding {
    type Error = anyhow::Error;

    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl ContentEncoding {
    /// From the config value; `""` is the plugin's default (gzip).
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "" | "gzip" => Ok(Self::Gzip),
            "identity" | "none" => Ok(Self::Identity),
            other => {
                bail!("content_encoding: {other:?} is not supported; use \"gzip\" or \"identity\"")
            }
        }
    }

    /// Encode a body; returns it with its `Content-Encoding` header value.
    pub fn encode(self, body: Vec<u8>) -> (Vec<u8>, Option<&'static str>) {
        match self {
            Self::Identity => (body, None),
            Self::Gzip => {
                let mut enc =
                    GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
                // Writing into a Vec cannot fail.
                let _ = enc.write_all(&body);
                (enc.finish().unwrap_or_default(), Some("gzip"))
            }
        }
    }
}

/// The error a server put in its response: the JSON `error`/`message`,
/// else the `X-Influxdb-Error` header (cut to 1 KiB by the server), else the
/// body.
pub fn server_error(headers: &HeaderMap, body: &str) -> String {
    let from_json = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("error")
                .or_else(|| v.get("message"))
                .and_then(|e| e.as_str())
                .map(str::to_owned)
        });
    from_json
        .or_else(|| {
            headers
                .get("x-influxdb-error")
                .or_else(|| headers.get("x-influx-error"))
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| body.trim().to_owned())
}

/// The `Retry-After` header in seconds (an integer or a float), if any.
pub fn retry_after(headers: &HeaderMap) -> Option<Result<Duration, ()>> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?;
    Some(
        v.to_str()
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
            .ok_or(()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_prefer_json_then_the_header() {
        let mut h = HeaderMap::new();
        assert_eq!(
            server_error(&h, r#"{"error":"database not found: \"x\""}"#),
            "database not found: \"x\""
        );
        assert_eq!(
            server_error(&h, r#"{"code":"invalid","message":"bad line"}"#),
            "bad line"
        );
        assert_eq!(server_error(&h, "plain text\n"), "plain text");
        h.insert("x-influxdb-error", HeaderValue::from_static("from header"));
        assert_eq!(server_error(&h, r#"{"error":"x"}"#), "x");
        assert_eq!(server_error(&h, "<html>"), "from header");
    }

    #[test]
    fn gzip_round_trips() {
        let (body, enc) = ContentEncoding::Gzip.encode(b"m x=1 1\n".to_vec());
        assert_eq!(enc, Some("gzip"));
        let mut out = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut out)
            .unwrap();
        assert_eq!(out, "m x=1 1\n");
        assert!(ContentEncoding::parse("br").is_err());
    }

    #[test]
    fn keys_are_the_fields_of_the_table() {
        let text = format!(
            "{:#}",
            crate::config::parse::<ClientConfig>(toml::from_str("zzz = 1").unwrap()).unwrap_err()
        );
        let listed = text.split("expected one of").nth(1).expect(&text);
        let mut fields: Vec<&str> = listed
            .split(',')
            .map(|k| k.trim().trim_matches(|c| c == '`' || c == ' '))
            .filter(|k| !k.is_empty())
            .collect();
        let mut keys = ClientConfig::KEYS.to_vec();
        fields.sort_unstable();
        keys.sort_unstable();
        assert_eq!(fields, keys, "{text}");
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Own {
        #[serde(default)]
        database: String,
    }

    fn with_client(text: &str) -> Result<WithHttpClient<Own>> {
        crate::config::parse(toml::from_str(text).unwrap())
    }

    #[test]
    fn an_output_table_splits_into_its_own_keys_and_the_client_keys() {
        let c = with_client(
            "database = \"db\"\ntimeout = \"2s\"\ncontent_encoding = \"identity\"\n[http_headers]\nX-A = \"b\"",
        )
        .unwrap();
        assert_eq!(c.own.database, "db");
        assert_eq!(c.shared.timeout, Duration::from_secs(2));
        assert_eq!(c.shared.content_encoding, ContentEncoding::Identity);
        assert_eq!(c.shared.http_headers["X-A"], "b");
        let c = with_client("").unwrap();
        assert_eq!(c.shared.timeout, five_seconds());
        assert_eq!(c.shared.content_encoding, ContentEncoding::Gzip);
    }

    #[test]
    fn unknown_and_bad_keys_are_named_in_either_part() {
        let err = |text: &str| format!("{:#}", with_client(text).unwrap_err());
        assert!(err("databse = \"x\"").contains("`databse`"));
        assert!(err("timeout = \"5 parsecs\"").contains("timeout"));
        assert!(err("content_encoding = \"br\"").contains("content_encoding"));
        assert!(err("database = 1").contains("database"));
    }

    #[test]
    fn validate_reads_no_file_and_refuses_half_a_client_certificate() {
        let c = with_client("tls_ca = \"/nonexistent/ca.pem\"").unwrap();
        c.shared.validate().unwrap();
        assert!(format!("{:#}", c.shared.client().unwrap_err()).contains("tls_ca"));
        let c = with_client("tls_cert = \"/x.pem\"").unwrap();
        assert!(
            c.shared
                .validate()
                .unwrap_err()
                .to_string()
                .contains("tls_key")
        );
        let c = with_client("[http_headers]\n\"bad header\" = \"v\"").unwrap();
        assert!(
            c.shared
                .validate()
                .unwrap_err()
                .to_string()
                .contains("http_headers")
        );
    }
}
