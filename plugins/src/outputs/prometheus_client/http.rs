//! What a scraper's request gets: basic authentication (401), then the
//! `ip_range` check (403), as Telegraf checks them; on `path` the metrics
//! in the format the `Accept` header asks for (gzip when accepted), on
//! any other path a short text. `http_headers` go on every answer.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{
    ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, WWW_AUTHENTICATE,
};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use bytes::Bytes;

use super::config::Cidr;
use super::process;
use crate::prometheus::expose::{Collection, Format, Options, TypeMappings, Version};

/// Everything a request handler needs.
pub(super) struct Shared {
    pub collection: Arc<Mutex<Collection>>,
    pub path: String,
    pub basic: Option<(String, String)>,
    pub ip_range: Vec<Cidr>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Serve graft's own `process_*` metrics.
    pub process: bool,
    pub prefer_openmetrics: bool,
    pub counters: ScrapeCounters,
    /// When a refused request was last logged (seconds since `started`).
    pub refusal_logged_at: AtomicU64,
    pub started: Instant,
    /// The latest exposition of each format: scrapes that come while the
    /// series are unchanged share it (one body in memory however many
    /// scrapers read it), and one scrape writes at a time.
    pub cache: tokio::sync::Mutex<Vec<Exposition>>,
}

/// A written exposition.
pub(super) struct Exposition {
    format: Format,
    gzip: bool,
    generation: u64,
    at: Instant,
    body: Bytes,
}

/// How long an exposition is served again while the series do not change
/// (graft's own process metrics do, slowly).
const REUSE_FOR: Duration = Duration::from_secs(1);

/// Counters of the scrape side (names in `docs/instrumentation.md`).
#[derive(Clone, Debug, Default)]
pub(super) struct ScrapeCounters {
    pub scrapes: Arc<AtomicU64>,
    pub requests_unauthorized: Arc<AtomicU64>,
    pub requests_forbidden: Arc<AtomicU64>,
}

/// Every request.
pub(super) async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let mut response = answer(&shared, peer, req).await;
    for (k, v) in &shared.headers {
        response.headers_mut().insert(k.clone(), v.clone());
    }
    response
}

async fn answer(shared: &Arc<Shared>, peer: SocketAddr, req: Request) -> Response {
    if !authorized(shared, &req) {
        shared
            .counters
            .requests_unauthorized
            .fetch_add(1, Ordering::Relaxed);
        shared.log_refusal(peer, StatusCode::UNAUTHORIZED);
        let mut r = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
        r.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"prometheus\""),
        );
        return r;
    }
    if !shared.ip_range.is_empty() && !shared.ip_range.iter().any(|c| c.contains(peer.ip())) {
        shared
            .counters
            .requests_forbidden
            .fetch_add(1, Ordering::Relaxed);
        shared.log_refusal(peer, StatusCode::FORBIDDEN);
        return text(StatusCode::FORBIDDEN, "Forbidden\n");
    }
    if req.uri().path() != shared.path {
        return text(StatusCode::OK, "graft output plugin: prometheus_client\n");
    }
    shared.counters.scrapes.fetch_add(1, Ordering::Relaxed);
    let (format, gzip) = {
        let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
        (
            Format::negotiate(header(ACCEPT), shared.prefer_openmetrics),
            header(ACCEPT_ENCODING).is_some_and(accepts_gzip),
        )
    };
    drop(req);
    let Some(body) = body(shared, format, gzip).await else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "exposition failed\n");
    };
    let mut r = Response::new(Body::from(body));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if gzip {
        r.headers_mut()
            .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r
}

impl Shared {
    /// Log a refused request, at most every 10 s.
    fn log_refusal(&self, peer: SocketAddr, status: StatusCode) {
        let now = self.started.elapsed().as_secs();
        let last = self.refusal_logged_at.load(Ordering::Relaxed);
        if last != u64::MAX && now < last + 10 {
            return;
        }
        if self
            .refusal_logged_at
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            tracing::warn!(%peer, status = status.as_u16(),
                "scrape refused (counted; logged at most every 10 s)");
        }
    }
}

/// The body of a scrape: the cached one while it is still right, else a
/// new one.
async fn body(shared: &Arc<Shared>, format: Format, gzip: bool) -> Option<Bytes> {
    let mut cache = shared.cache.lock().await;
    let generation = shared
        .collection
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .generation();
    let fresh = |e: &&Exposition| {
        e.format == format
            && e.gzip == gzip
            && e.generation == generation
            && e.at.elapsed() < REUSE_FOR
    };
    if let Some(e) = cache.iter().find(fresh) {
        return Some(e.body.clone());
    }
    let s = shared.clone();
    // Writing out many series is CPU work: off the reactor.
    let (generation, body) = tokio::task::spawn_blocking(move || exposition(&s, format, gzip))
        .await
        .ok()?;
    let body = Bytes::from(body);
    cache.retain(|e| e.format != format || e.gzip != gzip);
    cache.push(Exposition {
        format,
        gzip,
        generation,
        at: Instant::now(),
        body: body.clone(),
    });
    Some(body)
}

/// A new exposition, and the generation of the series it holds.
fn exposition(shared: &Shared, format: Format, gzip: bool) -> (u64, Vec<u8>) {
    let mut out = String::new();
    // graft's own process families, but not those the collection already
    // holds (a scraped Go exporter's `process_*`): a second TYPE line for
    // a family makes parsers reject the whole exposition.
    let own = shared.process.then(|| {
        let mut own = Collection::new(Options {
            version: Version::V2,
            string_as_label: false,
            export_timestamp: false,
            expiration: None,
            max_series: 64,
            types: TypeMappings::default(),
        });
        own.add(&process::gather(), Instant::now());
        own
    });
    let generation = {
        let mut c = shared.collection.lock().unwrap_or_else(|e| e.into_inner());
        c.expire(Instant::now());
        c.render(format, &mut out);
        if let Some(own) = &own {
            own.render_absent_from(&c, format, &mut out);
        }
        c.generation()
    };
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    if !gzip {
        return (generation, out.into_bytes());
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(out.as_bytes());
    (generation, enc.finish().unwrap_or_default())
}

/// Whether an `Accept-Encoding` header takes gzip.
fn accepts_gzip(header: &str) -> bool {
    header.split(',').any(|coding| {
        let mut parts = coding.split(';');
        let name = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim() == "q")
            .map_or(1.0, |(_, v)| v.trim().parse::<f32>().unwrap_or(0.0));
        (name.eq_ignore_ascii_case("gzip") || name == "*") && q > 0.0
    })
}

/// Whether the request carries the credentials (or none are asked for).
fn authorized(shared: &Shared, req: &Request) -> bool {
    let Some((user, pass)) = &shared.basic else {
        return true;
    };
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(basic_credentials);
    let Some(given) = given else { return false };
    let expected = format!("{user}:{pass}");
    same(&given, expected.as_bytes())
}

/// The decoded `user:password` of a basic `Authorization` header; the
/// scheme in any case, as Go's `parseBasicAuth` takes it.
fn basic_credentials(header: &str) -> Option<Vec<u8>> {
    let (scheme, b64) = header.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case("Basic ") {
        return None;
    }
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()
}

/// Compare in time that depends on the lengths only.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn text(status: StatusCode, body: &'static str) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_when_accepted() {
        assert!(accepts_gzip("gzip"));
        assert!(accepts_gzip("deflate, gzip;q=0.5"));
        assert!(accepts_gzip("*"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("identity"));
    }

    #[test]
    fn credentials_compare_whole() {
        assert!(same(b"a:b", b"a:b"));
        assert!(!same(b"a:b", b"a:c"));
        assert!(!same(b"a:b", b"a:bb"));
    }

    #[test]
    fn basic_scheme_in_any_case() {
        for scheme in ["Basic", "basic", "BASIC", "bAsIc"] {
            assert_eq!(
                basic_credentials(&format!("{scheme} dTpw")).as_deref(),
                Some(&b"u:p"[..]),
                "{scheme}"
            );
        }
        assert_eq!(basic_credentials("Bearer dTpw"), None);
        assert_eq!(basic_credentials("Basic"), None);
        assert_eq!(basic_credentials("Basi"), None);
        assert_eq!(basic_credentials("Basicx dTpw"), None);
        assert_eq!(basic_credentials("éééé dTpw"), None);
    }
}
