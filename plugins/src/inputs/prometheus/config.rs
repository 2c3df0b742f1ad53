//! `[[inputs.prometheus]]`'s table with Telegraf's keys, and its resolved
//! form: targets as URLs, limits, the metric version. Resolving reads no
//! file and opens nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;

use crate::config::{SharedKeys, With};
use crate::duration::{de_duration, de_size};
use crate::prometheus::text::schema::MetricVersion;
use crate::prometheus::text::{Format, Limits};
use crate::tls::TlsConfig;

/// The whole table: the plugin's own keys, the TLS keys, and the service
/// discovery keys graft accepts only switched off.
pub type Config = With<With<Own, TlsConfig>, Discovery>;

/// The plugin's own keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Own {
    /// `urls` (required): the targets, `http://` or `https://`; a URL
    /// without a path gets `/metrics`.
    #[serde(default)]
    pub urls: Vec<String>,
    /// `metric_version` (default 1): Telegraf's mapping, 1 or 2.
    #[serde(default)]
    pub metric_version: i64,
    /// `url_tag` (default `"url"`; `""` for none): the tag holding the
    /// target's URL, without credentials.
    #[serde(default = "url")]
    pub url_tag: String,
    /// `ignore_timestamp` (default false): give every metric the scrape's
    /// time, not the sample's own.
    #[serde(default)]
    pub ignore_timestamp: bool,
    /// `content_type_override` (default: the response's): `"text"` or
    /// `"openmetrics-text"`.
    #[serde(default)]
    pub content_type_override: String,
    /// `bearer_token` (default none): a file holding a token sent as
    /// `Authorization: Bearer`, read at every scrape.
    #[serde(default)]
    pub bearer_token: Option<PathBuf>,
    /// `bearer_token_string` (default none): the token itself.
    #[serde(default)]
    pub bearer_token_string: Option<String>,
    /// `username` (default none): HTTP basic authentication.
    #[serde(default)]
    pub username: Option<String>,
    /// `password` (default none).
    #[serde(default)]
    pub password: Option<String>,
    /// `http_headers` (default none): extra request headers.
    #[serde(default)]
    pub http_headers: BTreeMap<String, String>,
    /// `timeout` (default 5s): a whole scrape, body included.
    #[serde(default = "five_seconds", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// `response_timeout` (default: none besides `timeout`): until the
    /// response's headers arrive.
    #[serde(default, deserialize_with = "de_duration")]
    pub response_timeout: Duration,
    /// `content_length_limit` (default 0: graft's bound of 32 MiB): a body
    /// larger than this is refused whole.
    #[serde(default, deserialize_with = "de_size")]
    pub content_length_limit: u64,
    /// `enable_request_metrics` (default false): a `prometheus_request`
    /// metric per scrape with `response_time` (seconds) and
    /// `content_length`.
    #[serde(default)]
    pub enable_request_metrics: bool,
    /// `user_agent` (default `graft/<version>`).
    #[serde(default = "crate::http::default_user_agent")]
    pub user_agent: String,
    /// `http_proxy_url` (default none): a proxy for every target.
    #[serde(default)]
    pub http_proxy_url: Option<String>,
    /// `use_system_proxy` (default false): the proxy the environment names.
    #[serde(default)]
    pub use_system_proxy: bool,
    /// `idle_conn_timeout`, `max_idle_conn`, `max_idle_conn_per_host`:
    /// accepted for Telegraf configs; graft's client keeps its own pool.
    #[serde(default)]
    pub idle_conn_timeout: Option<toml::Value>,
    /// See `idle_conn_timeout`.
    #[serde(default)]
    pub max_idle_conn: Option<toml::Value>,
    /// See `idle_conn_timeout`.
    #[serde(default)]
    pub max_idle_conn_per_host: Option<toml::Value>,
    /// `max_line_size` (graft's, default 64KiB): a longer line is skipped.
    #[serde(default = "max_line_size", deserialize_with = "de_size")]
    pub max_line_size: u64,
    /// `max_labels` (graft's, default 128): a sample with more is skipped.
    #[serde(default = "max_labels")]
    pub max_labels: usize,
    /// `max_samples` (graft's, default 1000000): a body with more is
    /// refused whole, as Prometheus's `sample_limit` does.
    #[serde(default = "max_samples")]
    pub max_samples: usize,
    /// `max_decoded_size` (graft's, default 64MiB): what one body may take
    /// in memory once read; a body past it is refused whole.
    #[serde(default = "max_decoded_size", deserialize_with = "de_size")]
    pub max_decoded_size: u64,
}

/// graft's bound on a body when `content_length_limit` is unset.
pub const DEFAULT_BODY_LIMIT: u64 = 32 * 1024 * 1024;

fn url() -> String {
    "url".into()
}

fn five_seconds() -> Duration {
    Duration::from_secs(5)
}

fn max_line_size() -> u64 {
    Limits::default().max_line_size as u64
}

fn max_labels() -> usize {
    Limits::default().max_labels
}

fn max_samples() -> usize {
    Limits::default().max_samples
}

fn max_decoded_size() -> u64 {
    Limits::default().max_decoded_size as u64
}

/// Telegraf's service discovery keys (Kubernetes, Consul, HTTP). graft
/// scrapes only `urls`: a key that would turn discovery on is refused with
/// an error naming it; the other keys, which do nothing without discovery,
/// are accepted.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Discovery {
    #[serde(default)]
    monitor_kubernetes_pods: Option<toml::Value>,
    #[serde(default)]
    kubernetes_services: Option<toml::Value>,
    #[serde(default)]
    consul: Option<toml::Value>,
    #[serde(default)]
    http_service_discovery: Option<toml::Value>,
    /// The rest, accepted as they are.
    #[serde(flatten)]
    _others: BTreeMap<String, toml::Value>,
}

impl SharedKeys for Discovery {
    const KEYS: &'static [&'static str] = &[
        "monitor_kubernetes_pods",
        "kubernetes_services",
        "consul",
        "http_service_discovery",
        "kube_config",
        "monitor_kubernetes_pods_method",
        "monitor_kubernetes_pods_scheme",
        "monitor_kubernetes_pods_path",
        "monitor_kubernetes_pods_port",
        "monitor_kubernetes_pods_namespace",
        "pod_scrape_scope",
        "node_ip",
        "pod_scrape_interval",
        "pod_namespace_label_name",
        "kubernetes_label_selector",
        "kubernetes_field_selector",
        "namespace_annotation_pass",
        "namespace_annotation_drop",
        "pod_annotation_include",
        "pod_annotation_exclude",
        "pod_label_include",
        "pod_label_exclude",
        "cache_refresh_interval",
    ];
}

impl Discovery {
    fn check(&self) -> Result<()> {
        let on = |v: &Option<toml::Value>| match v {
            None => false,
            Some(toml::Value::Boolean(b)) => *b,
            Some(toml::Value::Array(a)) => !a.is_empty(),
            Some(toml::Value::Table(t)) => {
                matches!(t.get("enabled"), Some(toml::Value::Boolean(true)))
            }
            Some(_) => true,
        };
        for (key, value) in [
            ("monitor_kubernetes_pods", &self.monitor_kubernetes_pods),
            ("kubernetes_services", &self.kubernetes_services),
            ("consul", &self.consul),
            ("http_service_discovery", &self.http_service_discovery),
        ] {
            if on(value) {
                bail!(
                    "{key}: service discovery (Kubernetes, Consul, HTTP) is not supported in graft; \
                     list the targets in `urls`"
                );
            }
        }
        Ok(())
    }
}

/// One target.
#[derive(Debug, Clone)]
pub struct Target {
    /// What is requested.
    pub url: Url,
    /// The `url` tag: the URL without user and password.
    pub tag: String,
}

/// The table, checked and resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub targets: Vec<Target>,
    pub version: MetricVersion,
    pub url_tag: String,
    pub ignore_timestamp: bool,
    /// The format every body is read in, whatever its `Content-Type`.
    pub format_override: Option<Format>,
    pub limits: Limits,
    pub body_limit: u64,
    pub timeout: Duration,
    pub response_timeout: Option<Duration>,
    pub request_metrics: bool,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub bearer_token_file: Option<PathBuf>,
    pub auth: Option<HeaderValue>,
    pub user_agent: String,
    pub proxy: Option<String>,
    pub system_proxy: bool,
}

impl Settings {
    /// Check and resolve the table. Pure: no file is read.
    pub fn resolve(config: &Config) -> Result<Self> {
        config.shared.check()?;
        config.own.shared.validate()?;
        let c = &config.own.own;
        if c.urls.is_empty() {
            bail!("urls: at least one target is required");
        }
        let targets = c
            .urls
            .iter()
            .enumerate()
            .map(|(i, u)| target(u).with_context(|| format!("urls[{i}]: {u:?}")))
            .collect::<Result<Vec<_>>>()?;
        let version = match c.metric_version {
            0 | 1 => MetricVersion::V1,
            2 => MetricVersion::V2,
            v => bail!("metric_version: {v} is not 1 or 2"),
        };
        let format_override = match c.content_type_override.as_str() {
            "" => None,
            "text" => Some(Format::Text),
            "openmetrics-text" => Some(Format::OpenMetrics),
            p @ ("protobuf-delimiter"
            | "protobuf-compact"
            | "protobuf-text"
            | "openmetrics-protobuf") => {
                bail!(
                    "content_type_override: {p:?}: protobuf bodies are not supported in graft; use \"text\" or \"openmetrics-text\""
                )
            }
            other => bail!(
                "content_type_override: {other:?} is not one of \"text\", \"openmetrics-text\""
            ),
        };
        if c.max_line_size == 0
            || c.max_labels == 0
            || c.max_samples == 0
            || c.max_decoded_size == 0
        {
            bail!("max_line_size, max_labels, max_samples, max_decoded_size: must be above zero");
        }
        let mut headers = Vec::new();
        for (k, v) in &c.http_headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .with_context(|| format!("http_headers: {k:?} is not a header name"))?;
            let value = HeaderValue::from_str(v)
                .with_context(|| format!("http_headers: the value of {k:?} is not valid"))?;
            headers.push((name, value));
        }
        let auth = match (&c.bearer_token_string, &c.username, &c.password) {
            _ if c.bearer_token.is_some() => None,
            (Some(token), _, _) => Some(
                HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                    .context("bearer_token_string: not valid in a header")?,
            ),
            (None, None, None) => None,
            (None, user, password) => {
                use base64::Engine;
                let pair = format!(
                    "{}:{}",
                    user.as_deref().unwrap_or(""),
                    password.as_deref().unwrap_or("")
                );
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
                Some(
                    HeaderValue::from_str(&format!("Basic {encoded}"))
                        .context("username/password: not valid in a header")?,
                )
            }
        };
        if let Some(p) = &c.http_proxy_url {
            reqwest::Proxy::all(p)
                .with_context(|| format!("http_proxy_url: {p:?} is not a URL"))?;
        }
        Ok(Self {
            targets,
            version,
            url_tag: c.url_tag.clone(),
            ignore_timestamp: c.ignore_timestamp,
            format_override,
            limits: Limits {
                max_line_size: usize::try_from(c.max_line_size).unwrap_or(usize::MAX),
                max_labels: c.max_labels,
                max_samples: c.max_samples,
                max_decoded_size: usize::try_from(c.max_decoded_size).unwrap_or(usize::MAX),
            },
            body_limit: match c.content_length_limit {
                0 => DEFAULT_BODY_LIMIT,
                n => n,
            },
            timeout: c.timeout.max(Duration::from_millis(1)),
            response_timeout: (!c.response_timeout.is_zero()).then_some(c.response_timeout),
            request_metrics: c.enable_request_metrics,
            headers,
            bearer_token_file: c.bearer_token.clone(),
            auth,
            user_agent: c.user_agent.clone(),
            proxy: c.http_proxy_url.clone().filter(|p| !p.is_empty()),
            system_proxy: c.use_system_proxy,
        })
    }
}

/// A URL as Telegraf takes it: `http` or `https`, `/metrics` when it has
/// no path.
fn target(raw: &str) -> Result<Target> {
    let mut url = Url::parse(raw.trim()).context("not a URL")?;
    match url.scheme() {
        "http" | "https" => {}
        "unix" => bail!("unix sockets are not supported in graft; use http:// or https://"),
        s => bail!("scheme {s:?} is not http or https"),
    }
    if url.host_str().is_none_or(str::is_empty) {
        bail!("no host");
    }
    let after_authority = raw.trim().split_once("://").map_or("", |(_, r)| r);
    let has_path = after_authority
        .find(['/', '?', '#'])
        .is_some_and(|i| after_authority[i..].starts_with('/'));
    if !has_path {
        url.set_path("/metrics");
    }
    let mut shown = url.clone();
    // Cannot fail on an http(s) URL with a host.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    Ok(Target {
        tag: shown.to_string(),
        url,
    })
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
    fn defaults_and_targets() {
        let s = resolve(
            "urls = [\"http://127.0.0.1:9100\", \"https://me:secret@example.org:9100/m?x=1\"]",
        )
        .unwrap();
        assert_eq!(s.targets[0].url.as_str(), "http://127.0.0.1:9100/metrics");
        assert_eq!(s.targets[0].tag, "http://127.0.0.1:9100/metrics");
        assert_eq!(s.targets[1].url.username(), "me");
        assert_eq!(s.targets[1].tag, "https://example.org:9100/m?x=1");
        assert_eq!(s.version, MetricVersion::V1);
        assert_eq!(s.url_tag, "url");
        assert_eq!(s.timeout, Duration::from_secs(5));
        assert_eq!(s.body_limit, DEFAULT_BODY_LIMIT);
        assert!(s.auth.is_none() && s.format_override.is_none());
        let s = resolve(
            "urls = [\"http://a/\"]\nmetric_version = 2\ncontent_length_limit = \"1KiB\"\n\
             username = \"u\"\npassword = \"p\"\ncontent_type_override = \"openmetrics-text\"",
        )
        .unwrap();
        assert_eq!(s.targets[0].url.as_str(), "http://a/");
        assert_eq!((s.version, s.body_limit), (MetricVersion::V2, 1024));
        assert_eq!(s.auth.unwrap(), "Basic dTpw");
        assert_eq!(s.format_override, Some(Format::OpenMetrics));
    }

    #[test]
    fn errors_name_the_key() {
        assert!(error("urls = []").contains("urls"));
        assert!(error("urls = [\"ftp://x/\"]").contains("urls[0]"));
        assert!(error("urls = [\"unix:///run/x.sock\"]").contains("unix"));
        assert!(error("urls = [\"http://a\"]\nmetric_version = 3").contains("metric_version"));
        assert!(
            error("urls = [\"http://a\"]\ncontent_type_override = \"protobuf-delimiter\"")
                .contains("content_type_override")
        );
        assert!(error("urls = [\"http://a\"]\nurl = \"x\"").contains("`url`"));
        assert!(error("urls = [\"http://a\"]\ntimeout = \"5 parsecs\"").contains("timeout"));
        assert!(error("urls = [\"http://a\"]\ntls_cert = \"/x\"").contains("tls_key"));
        assert!(
            error("urls = [\"http://a\"]\n[http_headers]\n\"a b\" = \"c\"")
                .contains("http_headers")
        );
    }

    #[test]
    fn discovery_is_refused_when_switched_on_and_accepted_when_off() {
        for on in [
            "monitor_kubernetes_pods = true",
            "kubernetes_services = [\"http://svc:9100/metrics\"]",
            "[consul]\nenabled = true",
            "[http_service_discovery]\nenabled = true\nurl = \"http://sd\"",
        ] {
            let key = on.trim_start_matches('[').split([' ', ']']).next().unwrap();
            let e = error(&format!("urls = [\"http://a\"]\n{on}"));
            assert!(e.contains(key) && e.contains("not supported"), "{e}");
        }
        resolve(
            "urls = [\"http://a\"]\nmonitor_kubernetes_pods = false\nkubernetes_services = []\n\
             kube_config = \"/k\"\npod_scrape_scope = \"cluster\"\n[consul]\nenabled = false",
        )
        .unwrap();
    }
}
