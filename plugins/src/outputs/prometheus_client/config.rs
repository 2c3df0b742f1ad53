//! The table of `[[outputs.prometheus_client]]`: Telegraf's keys, and
//! graft's bounds (`max_series`, `max_connections`) and format choice
//! (`prefer_openmetrics`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use serde::Deserialize;

use crate::duration::de_duration;

/// `[[outputs.prometheus_client]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `listen` (default `":9273"`): `host:port` (also `tcp://` or
    /// `http://host:port`); `:port` listens on every interface.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// `read_timeout` (default 10s; under 1s means the default, as in
    /// Telegraf): a request's headers (and a TLS handshake); also how long
    /// an idle keep-alive connection stays open.
    #[serde(default = "ten_seconds", deserialize_with = "de_duration")]
    pub read_timeout: Duration,
    /// `write_timeout` (default 10s; under 1s means the default): how long
    /// an answer may wait for a scraper that does not read it.
    #[serde(default = "ten_seconds", deserialize_with = "de_duration")]
    pub write_timeout: Duration,
    /// `metric_version` (default 2): 1 or 2, Telegraf's mappings from
    /// metrics to samples (Telegraf itself falls back to 1 when unset).
    #[serde(default = "default_version")]
    pub metric_version: u8,
    /// `basic_username`, `basic_password` (default none): HTTP basic
    /// authentication, 401 without them.
    #[serde(default)]
    pub basic_username: String,
    /// `basic_password` (default none): with `basic_username`.
    #[serde(default)]
    pub basic_password: String,
    /// `ip_range` (default none: everyone): CIDRs a scraper's address must
    /// be in; 403 for others.
    #[serde(default)]
    pub ip_range: Vec<String>,
    /// `path` (default `"/metrics"`): where the metrics are served; other
    /// paths answer a short text.
    #[serde(default = "default_path")]
    pub path: String,
    /// `expiration_interval` (default 60s; 0 = never): a series not
    /// updated for this long is no longer served.
    #[serde(default = "sixty_seconds", deserialize_with = "de_duration")]
    pub expiration_interval: Duration,
    /// `collectors_exclude` (default none): `"gocollector"` (graft has no
    /// Go runtime: nothing to exclude) and `"process"` (graft's own
    /// `process_*` metrics: CPU time, memory, open files, start time).
    #[serde(default)]
    pub collectors_exclude: Vec<String>,
    /// `string_as_label` (default true): string fields become labels;
    /// false drops them.
    #[serde(default = "yes")]
    pub string_as_label: bool,
    /// `name_sanitization` (default `"legacy"`): Prometheus's ASCII name
    /// rules; `"utf8"` is refused (Prometheus 2 cannot scrape such names).
    #[serde(default)]
    pub name_sanitization: Option<String>,
    /// `export_timestamp` (default false): each sample carries its
    /// metric's timestamp.
    #[serde(default)]
    pub export_timestamp: bool,
    /// `http_headers` (default none): headers added to every answer.
    #[serde(default)]
    pub http_headers: BTreeMap<String, String>,
    /// `[metric_types]`: `counter` and `gauge` globs of family names whose
    /// type is forced.
    #[serde(default)]
    pub metric_types: MetricTypes,
    /// `tls_cert`, `tls_key` (default none): serve HTTPS.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// `tls_key` (default none): the private key of `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// `tls_allowed_cacerts` (default none): CA files; a scraper must then
    /// present a certificate one of them signed (mutual TLS).
    #[serde(default)]
    pub tls_allowed_cacerts: Vec<PathBuf>,
    /// `tls_min_version` (default `"TLS12"`): `"TLS12"` or `"TLS13"`.
    #[serde(default)]
    pub tls_min_version: Option<String>,
    /// `tls_max_version` (default `"TLS13"`): `"TLS12"` or `"TLS13"`.
    #[serde(default)]
    pub tls_max_version: Option<String>,
    /// `tls_cipher_suites`, `tls_allowed_dns_names`, `tls_key_pwd`:
    /// refused when set (not supported).
    #[serde(default)]
    pub tls_cipher_suites: Vec<String>,
    /// See `tls_cipher_suites`.
    #[serde(default)]
    pub tls_allowed_dns_names: Vec<String>,
    /// See `tls_cipher_suites`.
    #[serde(default)]
    pub tls_key_pwd: Option<String>,
    /// `max_series` (graft's; default 100000): series kept at most; a new
    /// series past it is dropped and counted (`series_limit_hits`).
    #[serde(default = "default_max_series")]
    pub max_series: usize,
    /// `max_connections` (graft's; default 256): open scraper connections
    /// at most; one more is closed at once and counted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// `prefer_openmetrics` (graft's; default false): serve OpenMetrics to
    /// every scraper that ranks it first (Prometheus does; counters are
    /// then named with `_total`). By default only a scraper that accepts
    /// nothing else gets OpenMetrics, so that Prometheus stores the names
    /// Telegraf's text format gives.
    #[serde(default)]
    pub prefer_openmetrics: bool,
}

/// `[outputs.prometheus_client.metric_types]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricTypes {
    /// `counter`: globs of family names served as counters.
    #[serde(default)]
    pub counter: Vec<String>,
    /// `gauge`: globs of family names served as gauges.
    #[serde(default)]
    pub gauge: Vec<String>,
}

impl Config {
    /// What the types cannot say; errors name the key. Pure.
    pub fn check(&self) -> Result<()> {
        if !matches!(self.metric_version, 1 | 2) {
            bail!("metric_version: {} is not 1 or 2", self.metric_version);
        }
        listen_address(&self.listen)?;
        if self.basic_username.is_empty() && !self.basic_password.is_empty() {
            bail!("basic_password: set without basic_username");
        }
        for (i, cidr) in self.ip_range.iter().enumerate() {
            Cidr::parse(cidr).map_err(|e| anyhow::anyhow!("ip_range[{i}]: {e}"))?;
        }
        if !self.path.starts_with('/') {
            bail!("path: {:?} does not start with /", self.path);
        }
        for (i, c) in self.collectors_exclude.iter().enumerate() {
            if !matches!(c.as_str(), "gocollector" | "process") {
                bail!("collectors_exclude[{i}]: {c:?} is not \"gocollector\" or \"process\"");
            }
        }
        match self.name_sanitization.as_deref() {
            None | Some("legacy") => {}
            Some("utf8") => bail!(
                "name_sanitization: \"utf8\" is not supported (Prometheus 2 scrapes ASCII names only); use \"legacy\""
            ),
            Some(other) => bail!("name_sanitization: {other:?} is not \"legacy\" or \"utf8\""),
        }
        for (key, value) in &self.http_headers {
            axum::http::HeaderName::try_from(key.as_str())
                .map_err(|_| anyhow::anyhow!("http_headers: {key:?} is not a header name"))?;
            axum::http::HeaderValue::try_from(value.as_str()).map_err(|_| {
                anyhow::anyhow!("http_headers.{key}: {value:?} is not a header value")
            })?;
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            bail!("tls_cert and tls_key: set both or neither");
        }
        if self.tls_cert.is_none() && !self.tls_allowed_cacerts.is_empty() {
            bail!("tls_allowed_cacerts: needs tls_cert and tls_key");
        }
        for (key, set) in [
            ("tls_cipher_suites", !self.tls_cipher_suites.is_empty()),
            (
                "tls_allowed_dns_names",
                !self.tls_allowed_dns_names.is_empty(),
            ),
            ("tls_key_pwd", self.tls_key_pwd.is_some()),
        ] {
            if set {
                bail!("{key}: not supported by graft; leave it out");
            }
        }
        for (key, v) in [
            ("tls_min_version", &self.tls_min_version),
            ("tls_max_version", &self.tls_max_version),
        ] {
            if let Some(v) = v
                && !matches!(v.as_str(), "TLS12" | "TLS13")
            {
                bail!("{key}: {v:?} is not \"TLS12\" or \"TLS13\"");
            }
        }
        if self.max_series == 0 {
            bail!("max_series: must be at least 1");
        }
        if self.max_connections == 0 {
            bail!("max_connections: must be at least 1");
        }
        Ok(())
    }

    /// `read_timeout` and `write_timeout` as Telegraf reads them.
    pub fn timeouts(&self) -> (Duration, Duration) {
        let at_least_a_second = |d: Duration| {
            if d < Duration::from_secs(1) {
                ten_seconds()
            } else {
                d
            }
        };
        (
            at_least_a_second(self.read_timeout),
            at_least_a_second(self.write_timeout),
        )
    }
}

/// The address to bind for `listen`.
pub fn listen_address(listen: &str) -> Result<String> {
    let rest = match listen.split_once("://") {
        Some(("tcp" | "http" | "https", rest)) => rest,
        Some((scheme, _)) => bail!("listen: {listen:?}: scheme {scheme:?} is not supported"),
        None => listen,
    };
    let rest = rest.trim_end_matches('/');
    let address = if rest.starts_with(':') {
        format!("0.0.0.0{rest}")
    } else {
        rest.to_owned()
    };
    match address.rsplit_once(':') {
        Some((_, port)) if port.parse::<u16>().is_ok() => Ok(address),
        _ => bail!("listen: {listen:?} is not host:port"),
    }
}

/// An `ip_range` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `a.b.c.d/n` or an IPv6 address with its prefix length.
    pub fn parse(text: &str) -> Result<Self> {
        let Some((ip, prefix)) = text.split_once('/') else {
            bail!("{text:?} is not a CIDR (address/prefix length)");
        };
        let network: IpAddr = ip
            .parse()
            .map_err(|_| anyhow::anyhow!("{text:?}: {ip:?} is not an IP address"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| anyhow::anyhow!("{text:?}: prefix length is not 0 to {max}"))?;
        Ok(Self { network, prefix })
    }

    /// Whether `ip` is in the range (an IPv4 address mapped into IPv6 is
    /// taken as the IPv4 one).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |a: IpAddr| match a.to_canonical() {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32u32),
            IpAddr::V6(v6) => (u128::from(v6), 128u32),
        };
        let (net, width) = bits(self.network);
        let (addr, addr_width) = bits(ip);
        if width != addr_width {
            return false;
        }
        let host_bits = width - u32::from(self.prefix);
        let mask = if host_bits >= 128 {
            0
        } else {
            (u128::MAX << host_bits) & (u128::MAX >> (128 - width))
        };
        net & mask == addr & mask
    }
}

fn default_listen() -> String {
    ":9273".into()
}

fn default_path() -> String {
    "/metrics".into()
}

fn default_version() -> u8 {
    2
}

fn default_max_series() -> usize {
    100_000
}

fn default_max_connections() -> usize {
    256
}

fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

fn sixty_seconds() -> Duration {
    Duration::from_secs(60)
}

fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_hold_their_addresses() {
        let c = Cidr::parse("127.0.0.0/8").unwrap();
        assert!(c.contains("127.1.2.3".parse().unwrap()));
        assert!(c.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!c.contains("128.0.0.1".parse().unwrap()));
        assert!(!c.contains("::1".parse().unwrap()));
        let c = Cidr::parse("10.1.2.3/32").unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(!c.contains("10.1.2.4".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        let c = Cidr::parse("fd00::/8").unwrap();
        assert!(c.contains("fd12::1".parse().unwrap()));
        assert!(!c.contains("fe80::1".parse().unwrap()));
        assert!(
            Cidr::parse("::/0")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        for bad in ["10.0.0.1", "10.0.0.0/33", "x/8", "10.0.0.0/-1"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn listen_addresses_as_telegraf_writes_them() {
        assert_eq!(listen_address(":9273").unwrap(), "0.0.0.0:9273");
        assert_eq!(listen_address("127.0.0.1:1").unwrap(), "127.0.0.1:1");
        assert_eq!(listen_address("http://127.0.0.1:2").unwrap(), "127.0.0.1:2");
        assert_eq!(listen_address("tcp://[::1]:3").unwrap(), "[::1]:3");
        assert!(
            listen_address("vsock://:9273")
                .unwrap_err()
                .to_string()
                .contains("listen")
        );
        assert!(listen_address("localhost").is_err());
    }
}
