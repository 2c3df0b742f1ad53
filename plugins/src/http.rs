//! What the HTTP outputs share: the client (timeout, proxy, user agent,
//! extra headers, TLS options named as Telegraf names them), gzip bodies and
//! reading a server's error out of its response.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use flate2::Compression;
use flate2::write::GzEncoder;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

/// Telegraf's client TLS options (`tls_ca`, `tls_cert`, `tls_key`,
/// `insecure_skip_verify`).
#[derive(Debug, Default, Clone)]
pub struct TlsOptions {
    /// `tls_ca`: a PEM file of CAs to trust besides the system's.
    pub ca: Option<PathBuf>,
    /// `tls_cert` and `tls_key`: a client certificate for mutual TLS.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// `insecure_skip_verify`: accept any server certificate.
    pub insecure_skip_verify: bool,
}

/// How to build a client.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub timeout: Duration,
    pub user_agent: String,
    pub headers: BTreeMap<String, String>,
    pub http_proxy: Option<String>,
    pub tls: TlsOptions,
}

/// The `User-Agent` graft sends unless told otherwise.
pub fn default_user_agent() -> String {
    format!("graft/{}", env!("CARGO_PKG_VERSION"))
}

/// An HTTP client per `options`; errors name the key at fault.
pub fn client(options: &ClientOptions) -> Result<reqwest::Client> {
    // reqwest is built without a crypto provider of its own; install ring
    // once per process (a second install is refused, which is fine).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut headers = HeaderMap::new();
    for (k, v) in &options.headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .with_context(|| format!("http_headers: {k:?} is not a header name"))?;
        let value = HeaderValue::from_str(v)
            .with_context(|| format!("http_headers: the value of {k:?} is not valid"))?;
        headers.insert(name, value);
    }
    let mut builder = reqwest::Client::builder()
        .tls_backend_rustls()
        .timeout(options.timeout)
        .connect_timeout(options.timeout)
        .user_agent(options.user_agent.clone())
        .default_headers(headers);
    builder = match &options.http_proxy {
        Some(p) if !p.is_empty() => builder.proxy(
            reqwest::Proxy::all(p).with_context(|| format!("http_proxy: {p:?} is not a URL"))?,
        ),
        _ => builder.no_proxy(),
    };
    let tls = &options.tls;
    if let Some(ca) = &tls.ca {
        let pem = std::fs::read(ca).with_context(|| format!("tls_ca: reading {}", ca.display()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("tls_ca: {} is not a PEM bundle", ca.display()))?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let cert_pem = std::fs::read(cert)
                .with_context(|| format!("tls_cert: reading {}", cert.display()))?;
            let key_pem = std::fs::read(key)
                .with_context(|| format!("tls_key: reading {}", key.display()))?;
            let mut pem = cert_pem;
            pem.push(b'\n');
            pem.extend_from_slice(&key_pem);
            let identity = reqwest::Identity::from_pem(&pem)
                .context("tls_cert/tls_key: not a PEM certificate and private key")?;
            builder = builder.identity(identity);
        }
        (None, None) => {}
        _ => bail!("tls_cert and tls_key: set both or neither"),
    }
    if tls.insecure_skip_verify {
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    builder.build().context("building the HTTP client")
}

/// `content_encoding`: `gzip` or `identity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentEncoding {
    Gzip,
    Identity,
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
}
