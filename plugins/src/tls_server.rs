//! The TLS server side of the HTTP servers, from Telegraf's server keys
//! (`tls_cert`, `tls_key`, `tls_allowed_cacerts`, `tls_min_version`,
//! `tls_max_version`): the rustls configuration, with client certificates
//! required and checked when CAs are given (mutual TLS).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

/// What a TLS server needs.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// `tls_cert`: the server's certificate chain (PEM).
    pub cert: PathBuf,
    /// `tls_key`: its private key (PEM).
    pub key: PathBuf,
    /// `tls_allowed_cacerts`: CAs a client certificate must chain to; none
    /// means no client certificate is asked for.
    pub client_cas: Vec<PathBuf>,
    /// `tls_min_version`: `"TLS12"` (default) or `"TLS13"`.
    pub min_version: Option<String>,
    /// `tls_max_version`: `"TLS12"` or `"TLS13"` (default).
    pub max_version: Option<String>,
}

impl ServerTls {
    /// The rustls server configuration; reads the files, and errors name
    /// the key at fault. Speaks HTTP/1.1 (ALPN).
    pub fn config(&self) -> Result<Arc<rustls::ServerConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions = self.versions()?;
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .context("tls_min_version/tls_max_version: no usable protocol version")?;
        let builder = if self.client_cas.is_empty() {
            builder.with_no_client_auth()
        } else {
            let mut roots = RootCertStore::empty();
            for ca in &self.client_cas {
                for cert in read_certs("tls_allowed_cacerts", ca)? {
                    roots.add(cert).with_context(|| {
                        format!("tls_allowed_cacerts: {} holds a bad CA", ca.display())
                    })?;
                }
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .context("tls_allowed_cacerts: no usable CA")?;
            builder.with_client_cert_verifier(verifier)
        };
        let chain = read_certs("tls_cert", &self.cert)?;
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| {
            anyhow::anyhow!("tls_key: {} holds no private key: {e}", self.key.display())
        })?;
        let mut config = builder
            .with_single_cert(chain, key)
            .context("tls_cert/tls_key: the key does not match the certificate")?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    fn versions(&self) -> Result<Vec<&'static rustls::SupportedProtocolVersion>> {
        let rank = |key: &str, v: &Option<String>, default: u8| match v.as_deref() {
            None => Ok(default),
            Some("TLS12") => Ok(12),
            Some("TLS13") => Ok(13),
            Some(other) => bail!("{key}: {other:?} is not \"TLS12\" or \"TLS13\""),
        };
        let min = rank("tls_min_version", &self.min_version, 12)?;
        let max = rank("tls_max_version", &self.max_version, 13)?;
        let versions: Vec<_> = [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| (min..=max).contains(v))
            .map(|(_, v)| v)
            .collect();
        if versions.is_empty() {
            bail!("tls_min_version: above tls_max_version");
        }
        Ok(versions)
    }
}

fn read_certs(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("{key}: cannot read {}: {e}", path.display()))?;
    if certs.is_empty() {
        bail!("{key}: {} holds no PEM certificate", path.display());
    }
    Ok(certs)
}
