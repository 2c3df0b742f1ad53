//! `[[inputs.http]]`'s table with Telegraf's keys and defaults (its own,
//! the common HTTP client keys, TLS and the data format), and its
//! resolved form. Resolving reads no file and opens nothing.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;

use crate::config::With;
use crate::duration::de_size;
use crate::format::{Parser, ParserConfig};
use crate::inputs::http_client::{ClientKeys, ClientSettings, Endpoint};
use crate::tls::TlsConfig;

/// The whole table.
pub type Config = With<With<With<Own, ClientKeys>, TlsConfig>, ParserConfig>;

/// The plugin's own keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Own {
    /// `urls` (required): http, https, or `http+unix:///path.sock:/path`.
    #[serde(default)]
    pub urls: Vec<String>,
    /// `method` (default `"GET"`).
    #[serde(default)]
    pub method: String,
    /// `body` (default none): the request's body.
    #[serde(default)]
    pub body: String,
    /// `content_encoding` (default `"identity"`; or `"gzip"`): of the
    /// request's body.
    #[serde(default)]
    pub content_encoding: String,
    /// `username` and `password` (default none): basic authentication.
    #[serde(default)]
    pub username: String,
    /// See `username`.
    #[serde(default)]
    pub password: String,
    /// `token` (default none): sent as `Authorization: Bearer`.
    #[serde(default)]
    pub token: String,
    /// `token_file` (default none): a file holding the token, read at
    /// every gather.
    #[serde(default)]
    pub token_file: String,
    /// `bearer_token` (deprecated: use `token_file`): the same.
    #[serde(default)]
    pub bearer_token: String,
    /// `headers` (default none): request headers; `Host` sets the host.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `success_status_codes` (default `[200]`): the statuses whose body
    /// is read; any other fails the URL.
    #[serde(default)]
    pub success_status_codes: Vec<i64>,
    /// `max_body_size` (graft's, default 32MiB): a longer body is refused
    /// whole.
    #[serde(default = "max_body_size", deserialize_with = "de_size")]
    pub max_body_size: u64,
}

fn max_body_size() -> u64 {
    32 * 1024 * 1024
}

/// The table, checked and resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub endpoints: Vec<Endpoint>,
    pub method: Method,
    pub client: ClientSettings,
    /// The body as sent, and whether it is gzipped.
    pub body: Option<(Vec<u8>, bool)>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub host: Option<HeaderValue>,
    pub token: Option<String>,
    pub token_file: Option<String>,
    pub basic: Option<(String, String)>,
    pub success: Vec<u16>,
    pub max_body_size: u64,
    pub parser: Parser,
}

impl Settings {
    /// Check and resolve the table. Pure: no file is read.
    pub fn resolve(config: &Config) -> Result<Self> {
        let c = &config.own.own.own;
        let parser = config.shared.build("http")?;
        let client = ClientSettings::resolve(&config.own.own.shared, &config.own.shared, None)?;
        if c.urls.is_empty() {
            bail!("urls: at least one URL is required");
        }
        let endpoints = c
            .urls
            .iter()
            .enumerate()
            .map(|(i, u)| Endpoint::parse(u).with_context(|| format!("urls[{i}]: {u:?}")))
            .collect::<Result<Vec<_>>>()?;
        let method = match c.method.as_str() {
            "" => Method::GET,
            m => Method::from_bytes(m.as_bytes())
                .with_context(|| format!("method: {m:?} is not an HTTP method"))?,
        };
        let gzip = match c.content_encoding.as_str() {
            "" | "identity" => false,
            "gzip" => true,
            other => bail!("content_encoding: {other:?} is not \"identity\" or \"gzip\""),
        };
        let body = (!c.body.is_empty()).then(|| {
            if gzip {
                let (bytes, _) = crate::http::ContentEncoding::Gzip.encode(c.body.clone().into());
                (bytes, true)
            } else {
                (c.body.clone().into_bytes(), false)
            }
        });
        let token_file = match (c.token_file.as_str(), c.bearer_token.as_str()) {
            ("", "") => None,
            (f, "") | ("", f) => Some(f.to_owned()),
            _ => bail!("token_file, bearer_token: set one, not both (bearer_token is deprecated)"),
        };
        if !c.token.is_empty() && token_file.is_some() {
            bail!("token, token_file: set one, not both");
        }
        let mut headers = Vec::new();
        let mut host = None;
        for (k, v) in &c.headers {
            let value = HeaderValue::from_str(v)
                .with_context(|| format!("headers: the value of {k:?} is not valid"))?;
            if k.eq_ignore_ascii_case("host") {
                host = Some(value);
                continue;
            }
            let name = HeaderName::from_bytes(k.as_bytes())
                .with_context(|| format!("headers: {k:?} is not a header name"))?;
            headers.push((name, value));
        }
        let success = match &c.success_status_codes[..] {
            [] => vec![200],
            codes => codes
                .iter()
                .map(|&n| {
                    u16::try_from(n)
                        .ok()
                        .filter(|n| (100..1000).contains(n))
                        .with_context(|| {
                            format!("success_status_codes: {n} is not an HTTP status code")
                        })
                })
                .collect::<Result<_>>()?,
        };
        if c.max_body_size == 0 {
            bail!("max_body_size: must be above zero");
        }
        Ok(Self {
            endpoints,
            method,
            client,
            body,
            headers,
            host,
            token: Some(c.token.trim().to_owned()).filter(|t| !t.is_empty()),
            token_file,
            basic: (!c.username.is_empty() || !c.password.is_empty())
                .then(|| (c.username.clone(), c.password.clone())),
            success,
            max_body_size: c.max_body_size,
            parser,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(text: &str) -> Result<Settings> {
        Settings::resolve(&crate::config::parse(toml::from_str(text).unwrap())?)
    }

    fn error(text: &str) -> String {
        format!(
            "{:#}",
            resolve(&format!("urls = [\"http://a/\"]\n{text}")).unwrap_err()
        )
    }

    #[test]
    fn defaults_and_keys() {
        let s = resolve("urls = [\"http://a/\"]").unwrap();
        assert_eq!(s.method, Method::GET);
        assert_eq!(s.success, [200]);
        assert_eq!(s.max_body_size, 32 * 1024 * 1024);
        assert!(s.body.is_none() && s.token.is_none() && s.basic.is_none());
        assert_eq!(s.parser.format(), crate::format::DataFormat::Influx);
        let s = resolve(
            "urls = [\"http://a/\"]\nmethod = \"POST\"\nbody = \"x=1\"\ncontent_encoding = \"gzip\"\n\
             success_status_codes = [200, 202]\nbearer_token = \"/t\"\ndata_format = \"json\"\n\
             headers = { Host = \"example.org\", X-A = \"b\" }",
        )
        .unwrap();
        assert_eq!(s.method, Method::POST);
        assert!(
            s.body
                .as_ref()
                .is_some_and(|(b, gz)| *gz && b.starts_with(&[0x1f, 0x8b]))
        );
        assert_eq!(s.success, [200, 202]);
        assert_eq!(s.token_file.as_deref(), Some("/t"));
        assert_eq!(s.host.unwrap(), "example.org");
        assert_eq!(s.headers.len(), 1);
    }

    #[test]
    fn errors_name_the_key() {
        assert!(format!("{:#}", resolve("").unwrap_err()).contains("urls"));
        assert!(error("method = \"A B\"").contains("method"));
        assert!(error("content_encoding = \"br\"").contains("content_encoding"));
        assert!(error("token = \"a\"\ntoken_file = \"/f\"").contains("token_file"));
        assert!(error("success_status_codes = [0]").contains("success_status_codes"));
        assert!(error("data_format = \"nope\"").contains("data_format"));
        assert!(error("max_body_size = 0").contains("max_body_size"));
        assert!(error("json_query = 1").contains("json_query"));
        assert!(error("bogus = 1").contains("`bogus`"));
    }
}
