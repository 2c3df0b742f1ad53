//! Sending one `ExportMetricsServiceRequest`: over OTLP/gRPC (tonic, the
//! official `MetricsService` client) or OTLP/HTTP (reqwest), and what each
//! answer means for the batch (retry later, or rejected for good).

use std::io::Write as _;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context as _, Result};
use graft_core::WriteError;
use prost::Message as _;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::config::{Compression, Config, EncodingType};
use super::is_http;
use crate::opentelemetry::proto::collector::metrics_service_client::MetricsServiceClient;
use crate::opentelemetry::proto::collector::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};

/// Why an export failed.
#[derive(Debug)]
pub enum SendError {
    /// The receiver refuses a request this large (HTTP 413, gRPC
    /// RESOURCE_EXHAUSTED / OUT_OF_RANGE about the message size): send
    /// less at once.
    TooLarge(String),
    /// Anything else, with what to do with the batch.
    Write(WriteError),
}

impl From<WriteError> for SendError {
    fn from(e: WriteError) -> Self {
        SendError::Write(e)
    }
}

/// How exports travel.
pub enum Transport {
    Grpc(Box<Grpc>),
    Http {
        client: reqwest::Client,
        url: String,
        json: bool,
        gzip: bool,
    },
}

/// The gRPC side: the channel is made on the first export.
pub struct Grpc {
    endpoint: Endpoint,
    client: Option<MetricsServiceClient<Channel>>,
    metadata: MetadataMap,
    gzip: bool,
    timeout: Duration,
}

/// `headers` and `token`, checked as gRPC metadata (lower-case ASCII
/// names, visible ASCII values), which also makes them valid HTTP headers.
pub fn check_headers(c: &Config) -> Result<()> {
    metadata(c).map(drop)
}

fn metadata(c: &Config) -> Result<MetadataMap> {
    let mut m = MetadataMap::new();
    for (k, v) in &c.headers {
        let key = MetadataKey::from_str(&k.to_ascii_lowercase())
            .with_context(|| format!("headers: {k:?} is not a header name"))?;
        let value = MetadataValue::try_from(v.as_str())
            .with_context(|| format!("headers: the value of {k:?} is not valid"))?;
        m.insert(key, value);
    }
    if let Some(token) = &c.token {
        let value = MetadataValue::try_from(format!("Bearer {token}"))
            .context("token: not a valid header value")?;
        m.insert("authorization", value);
    }
    Ok(m)
}

fn read(key: &str, path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{key}: reading {}", path.display()))
}

impl Transport {
    /// The transport `c` asks for; reads the TLS files.
    pub fn new(c: &Config) -> Result<Self> {
        let gzip = c.compression == Compression::Gzip;
        if is_http(&c.service_address) {
            let mut headers = c.headers.clone();
            if let Some(token) = &c.token {
                headers.insert("authorization".into(), format!("Bearer {token}"));
            }
            let client = crate::http::ClientConfig {
                timeout: c.timeout,
                user_agent: crate::http::default_user_agent(),
                http_headers: headers,
                http_proxy: c.http_proxy_url.clone(),
                content_encoding: Default::default(),
                tls_ca: c.tls_ca.clone(),
                tls_cert: c.tls_cert.clone(),
                tls_key: c.tls_key.clone(),
                insecure_skip_verify: c.insecure_skip_verify,
            }
            .client()?;
            return Ok(Transport::Http {
                client,
                url: c.service_address.clone(),
                json: c.encoding_type == EncodingType::Json,
                gzip,
            });
        }
        let tls = c.tls_ca.is_some() || c.tls_cert.is_some() || c.tls_server_name.is_some();
        let scheme = if tls { "https" } else { "http" };
        let url = format!("{scheme}://{}", c.service_address);
        let mut endpoint = Endpoint::from_shared(url)
            .with_context(|| format!("service_address: {:?} is not host:port", c.service_address))?
            .connect_timeout(c.timeout)
            .timeout(c.timeout);
        if tls {
            let mut t = ClientTlsConfig::new();
            t = match &c.tls_ca {
                Some(ca) => t.ca_certificate(Certificate::from_pem(read("tls_ca", ca)?)),
                None => t.with_native_roots(),
            };
            if let (Some(cert), Some(key)) = (&c.tls_cert, &c.tls_key) {
                t = t.identity(Identity::from_pem(
                    read("tls_cert", cert)?,
                    read("tls_key", key)?,
                ));
            }
            if let Some(name) = &c.tls_server_name {
                t = t.domain_name(name.clone());
            }
            endpoint = endpoint.tls_config(t).context("tls_ca/tls_cert/tls_key")?;
        }
        Ok(Transport::Grpc(Box::new(Grpc {
            endpoint,
            client: None,
            metadata: metadata(c)?,
            gzip,
            timeout: c.timeout,
        })))
    }

    /// Whether the receiver answers (a connection for gRPC, any HTTP
    /// answer for OTLP/HTTP).
    pub async fn probe(&mut self) -> Result<(), String> {
        match self {
            Transport::Grpc(g) => g
                .endpoint
                .connect()
                .await
                .map(drop)
                .map_err(|e| format!("{}: {e:#}", g.endpoint.uri())),
            Transport::Http { client, url, .. } => client
                .head(url.as_str())
                .send()
                .await
                .map(drop)
                .map_err(|e| format!("{url}: {e}")),
        }
    }

    /// Export `request`; the error says what to do with the batch.
    pub async fn export(
        &mut self,
        request: ExportMetricsServiceRequest,
    ) -> Result<ExportMetricsServiceResponse, SendError> {
        match self {
            Transport::Grpc(g) => {
                let Grpc {
                    endpoint,
                    client,
                    metadata,
                    gzip,
                    timeout,
                } = &mut **g;
                let client = client.get_or_insert_with(|| {
                    let c = MetricsServiceClient::new(endpoint.connect_lazy())
                        .accept_compressed(CompressionEncoding::Gzip)
                        .max_decoding_message_size(4 << 20);
                    if *gzip {
                        c.send_compressed(CompressionEncoding::Gzip)
                    } else {
                        c
                    }
                });
                let mut r = tonic::Request::new(request);
                *r.metadata_mut() = metadata.clone();
                r.set_timeout(*timeout);
                match tokio::time::timeout(*timeout, client.export(r)).await {
                    Ok(Ok(answer)) => Ok(answer.into_inner()),
                    Ok(Err(status)) => Err(grpc_error(&status)),
                    Err(_) => Err(SendError::Write(WriteError::Retry(format!(
                        "{}: no answer within timeout ({timeout:?})",
                        endpoint.uri()
                    )))),
                }
            }
            Transport::Http {
                client,
                url,
                json,
                gzip,
            } => http_export(client, url, *json, *gzip, &request).await,
        }
    }
}

/// gRPC's answer: INVALID_ARGUMENT will never be accepted;
/// RESOURCE_EXHAUSTED or OUT_OF_RANGE about the message's size is a request
/// too large; everything else (UNAVAILABLE, DEADLINE_EXCEEDED, other
/// RESOURCE_EXHAUSTED, an authentication or configuration problem fixed
/// later) is retried.
pub(super) fn grpc_error(status: &tonic::Status) -> SendError {
    let message = format!("gRPC {:?}: {}", status.code(), status.message());
    let text = status.message().to_ascii_lowercase();
    let about_size = ["larger than", "too large", "message length", "message size"]
        .iter()
        .any(|s| text.contains(s));
    match status.code() {
        tonic::Code::InvalidArgument => SendError::Write(WriteError::Reject(message)),
        tonic::Code::ResourceExhausted | tonic::Code::OutOfRange if about_size => {
            SendError::TooLarge(message)
        }
        _ => SendError::Write(WriteError::Retry(message)),
    }
}

async fn http_export(
    client: &reqwest::Client,
    url: &str,
    json: bool,
    gzip: bool,
    request: &ExportMetricsServiceRequest,
) -> Result<ExportMetricsServiceResponse, SendError> {
    let (content_type, body) = if json {
        let body = serde_json::to_vec(request)
            .map_err(|e| WriteError::Reject(format!("encoding JSON: {e}")))?;
        ("application/json", body)
    } else {
        ("application/x-protobuf", request.encode_to_vec())
    };
    let mut post = client.post(url).header("content-type", content_type);
    let body = if gzip {
        post = post.header("content-encoding", "gzip");
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&body)
            .and_then(|_| e.finish())
            .map_err(|e| WriteError::Retry(format!("compressing: {e}")))?
    } else {
        body
    };
    let response = post
        .body(body)
        .send()
        .await
        .map_err(|e| WriteError::Retry(format!("{url}: {e}")))?;
    let status = response.status();
    let bytes = response.bytes().await.unwrap_or_default();
    if status.is_success() {
        let answer = if json {
            serde_json::from_slice(&bytes).ok()
        } else {
            ExportMetricsServiceResponse::decode(&bytes[..]).ok()
        };
        return Ok(answer.unwrap_or_default());
    }
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned();
    let message = format!("{url}: HTTP {status}: {text}");
    match status.as_u16() {
        413 => Err(SendError::TooLarge(message)),
        400 => Err(SendError::Write(WriteError::Reject(message))),
        _ => Err(SendError::Write(WriteError::Retry(message))),
    }
}
