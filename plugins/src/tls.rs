//! The TLS client keys of a plugin's table, named as Telegraf names them
//! (`tls_ca`, `tls_cert`, `tls_key`, `tls_server_name`,
//! `insecure_skip_verify`, `tls_enable`), and the rustls client
//! configuration built from them, for the clients that take one (NATS,
//! MQTT).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, Error as TlsError, RootCertStore, SignatureScheme};
use serde::Deserialize;

use crate::config::SharedKeys;

/// The TLS client keys of a plugin's table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// `tls_ca` (default none): a PEM file of CAs to trust instead of the
    /// system's.
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// `tls_cert` (default none): a client certificate for mutual TLS;
    /// with `tls_key`, both or neither.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// `tls_key` (default none): the private key of `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// `tls_server_name` (default the server's host): the name the server's
    /// certificate must carry.
    #[serde(default)]
    pub tls_server_name: Option<String>,
    /// `insecure_skip_verify` (default false): accept any server
    /// certificate. Still encrypted; no longer authenticated.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// `tls_enable` (default false): use TLS with the system's CAs even
    /// when no other TLS key is set.
    #[serde(default)]
    pub tls_enable: bool,
}

impl SharedKeys for TlsConfig {
    const KEYS: &'static [&'static str] = &[
        "tls_ca",
        "tls_cert",
        "tls_key",
        "tls_server_name",
        "insecure_skip_verify",
        "tls_enable",
    ];
}

impl TlsConfig {
    /// Whether any key asks for TLS.
    pub fn enabled(&self) -> bool {
        self.tls_enable
            || self.insecure_skip_verify
            || self.tls_ca.is_some()
            || self.tls_cert.is_some()
            || self.tls_server_name.is_some()
    }

    /// What the types cannot say. Pure: no file is read.
    pub fn validate(&self) -> Result<()> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            bail!("tls_cert and tls_key: set both or neither");
        }
        if let Some(name) = &self.tls_server_name {
            ServerName::try_from(name.as_str())
                .with_context(|| format!("tls_server_name: {name:?} is not a host name"))?;
        }
        Ok(())
    }

    /// The client configuration, or `None` when no key asks for TLS.
    /// Reads the files; errors name the key at fault.
    pub fn client_config(&self) -> Result<Option<Arc<rustls::ClientConfig>>> {
        self.validate()?;
        if !self.enabled() {
            return Ok(None);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS: no protocol version")?;
        let builder = if self.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        } else if let Some(name) = &self.tls_server_name {
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(self.roots()?), provider)
                    .build()
                    .context("tls_ca: no usable CA")?;
            let name = ServerName::try_from(name.clone())
                .with_context(|| format!("tls_server_name: {name:?} is not a host name"))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NamedServer { webpki, name }))
        } else {
            builder.with_root_certificates(self.roots()?)
        };
        let config = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                let chain = read_certs("tls_cert", cert)?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    anyhow::anyhow!("tls_key: {} holds no private key: {e}", key.display())
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .context("tls_cert/tls_key: the key does not match the certificate")?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(Some(Arc::new(config)))
    }

    /// The CAs of `tls_ca`, or the system's.
    fn roots(&self) -> Result<RootCertStore> {
        let mut roots = RootCertStore::empty();
        match &self.tls_ca {
            Some(ca) => {
                for cert in read_certs("tls_ca", ca)? {
                    roots
                        .add(cert)
                        .with_context(|| format!("tls_ca: {} holds a bad CA", ca.display()))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
            }
        }
        Ok(roots)
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

/// `tls_server_name`: the server's certificate checked as usual, against
/// the configured name instead of the host connected to.
#[derive(Debug)]
struct NamedServer {
    webpki: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for NamedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        self.webpki
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// `insecure_skip_verify`: any certificate, checking only that the
/// handshake is signed by it.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TlsConfig> {
        crate::config::parse(toml::from_str(text).unwrap())
    }

    #[test]
    fn no_key_means_no_tls() {
        let config = parse("").unwrap();
        assert!(config.client_config().unwrap().is_none());
    }

    #[test]
    fn system_roots_when_only_enabled() {
        let config = parse("tls_enable = true").unwrap();
        assert!(config.client_config().unwrap().is_some());
        let config = parse("insecure_skip_verify = true").unwrap();
        assert!(config.client_config().unwrap().is_some());
    }

    #[test]
    fn errors_name_the_key() {
        let e = parse("tls_cert = \"/x.pem\"")
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("tls_key"), "{e}");
        let e = parse("tls_server_name = \"not a name\"")
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("tls_server_name"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not pem").unwrap();
        let e = parse(&format!("tls_ca = {:?}", ca.display().to_string()))
            .unwrap()
            .client_config()
            .unwrap_err();
        assert!(e.to_string().contains("tls_ca"), "{e}");
        let e = parse("tls_ca = \"/nonexistent/ca.pem\"")
            .unwrap()
            .client_config()
            .unwrap_err();
        assert!(e.to_string().contains("tls_ca"), "{e}");
    }
}
