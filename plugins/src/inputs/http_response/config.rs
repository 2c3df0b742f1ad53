//! `[[inputs.http_response]]`'s table with Telegraf's keys and defaults,
//! and its resolved form. Resolving reads no file and opens nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use regex::bytes::Regex;
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;

use crate::config::With;
use crate::duration::{de_duration, de_size};
use crate::inputs::http_client::{ClientSettings, Endpoint};
use crate::tls::TlsConfig;

/// The whole table: own keys and the TLS keys.
pub type Config = With<Own, TlsConfig>;

/// The plugin's own keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Own {
    /// `urls` (default `["http://localhost"]`): the URLs to check.
    #[serde(default)]
    pub urls: Vec<String>,
    /// `address` (deprecated: use `urls`): one more URL.
    #[serde(default)]
    pub address: String,
    /// `http_proxy` (default: the proxy the environment names).
    #[serde(default)]
    pub http_proxy: String,
    /// `response_timeout` (default 5s; under 1s means 5s, as in Telegraf):
    /// the whole request, body included.
    #[serde(default, deserialize_with = "de_duration")]
    pub response_timeout: Duration,
    /// `method` (default `"GET"`).
    #[serde(default)]
    pub method: String,
    /// `follow_redirects` (default false).
    #[serde(default)]
    pub follow_redirects: bool,
    /// `token` (default none): sent as `Authorization: Bearer`.
    #[serde(default)]
    pub token: String,
    /// `bearer_token` (deprecated: use `token`): a file holding the token,
    /// read at every gather.
    #[serde(default)]
    pub bearer_token: String,
    /// `username` and `password` (default none): basic authentication,
    /// when both are set.
    #[serde(default)]
    pub username: String,
    /// See `username`.
    #[serde(default)]
    pub password: String,
    /// `body` (default none): the request's body.
    #[serde(default)]
    pub body: String,
    /// `body_form` (default none): the body as form fields (used when
    /// `body` is empty).
    #[serde(default)]
    pub body_form: BTreeMap<String, OneOrMany>,
    /// `response_body_field` (default none): the field that gets the body.
    #[serde(default)]
    pub response_body_field: String,
    /// `response_body_max_size` (default 32MiB; 0 means 32MiB): a longer
    /// body is a `body_read_error`.
    #[serde(default, deserialize_with = "de_size")]
    pub response_body_max_size: u64,
    /// `response_string_match` (default none): a regular expression the
    /// body must match.
    #[serde(default)]
    pub response_string_match: String,
    /// `response_status_code` (default 0: not checked).
    #[serde(default)]
    pub response_status_code: i64,
    /// `headers` (default none): request headers; `Host` sets the host.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `http_header_tags` (default none): response header → tag name.
    #[serde(default)]
    pub http_header_tags: BTreeMap<String, String>,
    /// `interface` (default none): the network interface whose address
    /// (IPv6 for an IPv6 URL, else IPv4) requests are sent from.
    #[serde(default)]
    pub interface: String,
    /// `tls_key_pwd`, `tls_min_version`: as in the other HTTP inputs.
    #[serde(default)]
    pub tls_key_pwd: String,
    /// See `tls_key_pwd`.
    #[serde(default)]
    pub tls_min_version: String,
    /// `tls_cipher_suites`: accepted; rustls offers only secure suites.
    #[serde(default, rename = "tls_cipher_suites")]
    _tls_cipher_suites: Vec<String>,
    /// `tls_renegotiation_method`: accepted; rustls never renegotiates.
    #[serde(default, rename = "tls_renegotiation_method")]
    _tls_renegotiation_method: String,
    /// `cookie_auth_url`: cookie authentication is not supported; the
    /// other `cookie_auth_*` keys are accepted and do nothing without it.
    #[serde(default)]
    pub cookie_auth_url: String,
    #[serde(default, rename = "cookie_auth_method")]
    _cookie_auth_method: String,
    #[serde(default, rename = "cookie_auth_username")]
    _cookie_auth_username: String,
    #[serde(default, rename = "cookie_auth_password")]
    _cookie_auth_password: String,
    #[serde(default, rename = "cookie_auth_headers")]
    _cookie_auth_headers: BTreeMap<String, String>,
    #[serde(default, rename = "cookie_auth_body")]
    _cookie_auth_body: String,
    #[serde(default, rename = "cookie_auth_renewal")]
    _cookie_auth_renewal: Option<toml::Value>,
}

/// A `body_form` value: one string or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Telegraf's default body bound.
pub const DEFAULT_BODY_MAX: u64 = 32 * 1024 * 1024;

/// The table, checked and resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub endpoints: Vec<Endpoint>,
    pub method: Method,
    pub client: ClientSettings,
    pub body: Option<String>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub host: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<String>,
    pub basic: Option<(String, String)>,
    pub body_field: Option<String>,
    pub body_max: u64,
    pub string_match: Option<Regex>,
    pub status_code: Option<u16>,
    pub header_tags: Vec<(HeaderName, String)>,
    /// Connect from this interface's address (of the URL's family).
    pub interface: Option<String>,
}

impl Settings {
    /// Check and resolve the table. Pure: no file is read.
    pub fn resolve(config: &Config) -> Result<Self> {
        let c = &config.own;
        let tls = &config.shared;
        tls.validate()?;
        crate::inputs::http_client::check_tls_extras(&c.tls_key_pwd, &c.tls_min_version)?;
        if !c.cookie_auth_url.is_empty() {
            bail!(
                "cookie_auth_url: cookie authentication is not supported in graft; use token, \
                 username/password or headers"
            );
        }
        if !c.token.is_empty() && !c.bearer_token.is_empty() {
            bail!("token, bearer_token: set one, not both");
        }
        let mut urls: Vec<(String, &str)> = c
            .urls
            .iter()
            .enumerate()
            .map(|(i, u)| (format!("urls[{i}]"), u.as_str()))
            .collect();
        if !c.address.is_empty() {
            urls.push(("address".into(), c.address.as_str()));
        }
        if urls.is_empty() {
            urls.push(("urls".into(), "http://localhost"));
        }
        let endpoints = urls
            .iter()
            .map(|(key, u)| {
                let e = Endpoint::parse(u).with_context(|| format!("{key}: {u:?}"))?;
                if e.unix.is_some() {
                    bail!("{key}: {u:?}: only http and https URLs are supported");
                }
                Ok(e)
            })
            .collect::<Result<Vec<_>>>()?;
        let method = match c.method.as_str() {
            "" => Method::GET,
            m => Method::from_bytes(m.as_bytes())
                .with_context(|| format!("method: {m:?} is not an HTTP method"))?,
        };
        let proxy = Some(c.http_proxy.trim().to_owned()).filter(|p| !p.is_empty());
        if let Some(p) = &proxy {
            reqwest::Proxy::all(p).with_context(|| format!("http_proxy: {p:?} is not a URL"))?;
        }
        let timeout = if c.response_timeout < Duration::from_secs(1) {
            Duration::from_secs(5)
        } else {
            c.response_timeout
        };
        let client = ClientSettings {
            timeout,
            response_timeout: None,
            idle_timeout: None,
            // Telegraf opens a new connection for every request.
            max_idle_per_host: Some(0),
            local_address: None,
            system_proxy: proxy.is_none(),
            proxy,
            follow_redirects: c.follow_redirects,
            tls: tls.clone(),
        };
        let mut headers = Vec::new();
        let mut host = None;
        for (k, v) in &c.headers {
            if k.eq_ignore_ascii_case("host") {
                host = Some(v.clone());
            }
            let name = HeaderName::from_bytes(k.as_bytes())
                .with_context(|| format!("headers: {k:?} is not a header name"))?;
            let value = HeaderValue::from_str(v)
                .with_context(|| format!("headers: the value of {k:?} is not valid"))?;
            headers.push((name, value));
        }
        let header_tags = c
            .http_header_tags
            .iter()
            .map(|(h, tag)| {
                let name = HeaderName::from_bytes(h.as_bytes())
                    .with_context(|| format!("http_header_tags: {h:?} is not a header name"))?;
                Ok((name, tag.clone()))
            })
            .collect::<Result<_>>()?;
        let string_match = match c.response_string_match.as_str() {
            "" => None,
            r => Some(Regex::new(r).with_context(|| {
                format!("response_string_match: {r:?} is not a regular expression")
            })?),
        };
        let status_code = match c.response_status_code {
            n if n <= 0 => None,
            n => Some(
                u16::try_from(n)
                    .ok()
                    .filter(|n| *n < 1000)
                    .with_context(|| {
                        format!("response_status_code: {n} is not an HTTP status code")
                    })?,
            ),
        };
        Ok(Self {
            endpoints,
            method,
            client,
            body: form_or_body(c),
            headers,
            host,
            token: Some(c.token.trim().to_owned()).filter(|t| !t.is_empty()),
            token_file: Some(c.bearer_token.clone()).filter(|t| !t.is_empty()),
            basic: (!c.username.is_empty() && !c.password.is_empty())
                .then(|| (c.username.clone(), c.password.clone())),
            body_field: Some(c.response_body_field.clone()).filter(|f| !f.is_empty()),
            body_max: match c.response_body_max_size {
                0 => DEFAULT_BODY_MAX,
                n => n,
            },
            string_match,
            status_code,
            header_tags,
            interface: Some(c.interface.clone()).filter(|i| !i.is_empty()),
        })
    }
}

/// `body`, else `body_form` URL-encoded, else nothing.
fn form_or_body(c: &Own) -> Option<String> {
    if !c.body.is_empty() {
        return Some(c.body.clone());
    }
    if c.body_form.is_empty() {
        return None;
    }
    let mut url = reqwest::Url::parse("http://form/").ok()?;
    {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in &c.body_form {
            match v {
                OneOrMany::One(v) => {
                    pairs.append_pair(k, v);
                }
                OneOrMany::Many(vs) => {
                    for v in vs {
                        pairs.append_pair(k, v);
                    }
                }
            }
        }
    }
    url.query().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(text: &str) -> Result<Settings> {
        Settings::resolve(&crate::config::parse(toml::from_str(text).unwrap())?)
    }

    fn error(text: &str) -> String {
        format!("{:#}", resolve(text).unwrap_err())
    }

    #[test]
    fn defaults_are_telegrafs() {
        let s = resolve("").unwrap();
        assert_eq!(s.endpoints[0].url.as_str(), "http://localhost/");
        assert_eq!(s.method, Method::GET);
        assert_eq!(s.client.timeout, Duration::from_secs(5));
        assert!(!s.client.follow_redirects && s.client.system_proxy);
        assert_eq!(s.body_max, DEFAULT_BODY_MAX);
        assert!(s.body.is_none() && s.string_match.is_none() && s.status_code.is_none());
        let s = resolve("response_timeout = \"500ms\"").unwrap();
        assert_eq!(s.client.timeout, Duration::from_secs(5));
    }

    #[test]
    fn address_is_one_more_url_and_keys_resolve() {
        let s = resolve(
            "urls = [\"http://a/\"]\naddress = \"http://b/\"\nmethod = \"POST\"\n\
             body_form = { key = \"value\", many = [\"1\", \"2 3\"] }\n\
             response_status_code = 204\nresponse_body_max_size = \"1KiB\"\n\
             [headers]\nHost = \"example.org\"",
        )
        .unwrap();
        let urls: Vec<&str> = s.endpoints.iter().map(|e| e.url.as_str()).collect();
        assert_eq!(urls, ["http://a/", "http://b/"]);
        assert_eq!(s.method, Method::POST);
        assert_eq!(s.body.as_deref(), Some("key=value&many=1&many=2+3"));
        assert_eq!((s.status_code, s.body_max), (Some(204), 1024));
        assert_eq!(s.host.as_deref(), Some("example.org"));
    }

    #[test]
    fn errors_name_the_key() {
        assert!(error("urls = [\"ftp://a/\"]").contains("urls[0]"));
        assert!(error("address = \"nope\"").contains("address"));
        assert!(error("method = \"GE T\"").contains("method"));
        assert!(error("response_string_match = \"(\"").contains("response_string_match"));
        assert!(error("response_status_code = 99999").contains("response_status_code"));
        assert!(error("token = \"a\"\nbearer_token = \"/f\"").contains("bearer_token"));
        assert!(error("cookie_auth_url = \"http://a/\"").contains("cookie_auth_url"));
        assert!(error("tls_min_version = \"TLS13\"").contains("tls_min_version"));
        assert!(error("[headers]\n\"a b\" = \"c\"").contains("headers"));
        assert!(error("urlz = []").contains("`urlz`"));
    }
}
