//! The `prometheusremotewrite` parser, as Telegraf's
//! `parsers/prometheusremotewrite`: each sample of a `WriteRequest` becomes
//! one metric whose tags are the series' labels.
//!
//! - `prometheus_metric_version = 1`: measurement = the metric name
//!   (`__name__`), field `value`.
//! - `prometheus_metric_version = 2` (the default): measurement
//!   `prometheus_remote_write`, field = the metric name.
//!
//! A sample without a timestamp (0 or less) gets the time of reading, NaN
//! samples (Prometheus's staleness markers among them) are skipped, as
//! Telegraf does. Unlike Telegraf, a bad series (no `__name__`, broken
//! bytes, more than `max_labels` labels, a timestamp beyond what
//! nanoseconds can hold) costs only itself: it is counted and the rest of
//! the request is read. A request whose samples x (labels + 1) exceed
//! [`cells_limit`] is refused before anything is built.

use graft_core::BatchBuilder;

use super::remote::{self, RemoteError, Series, TimeSeries};

/// The measurement of `prometheus_metric_version = 2`.
pub const MEASUREMENT_V2: &str = "prometheus_remote_write";

/// Labels per series graft reads by default (Prometheus's own
/// `label_limit` is unlimited; a scrape rarely has more than 30).
pub const DEFAULT_MAX_LABELS: usize = 256;

/// How to read a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// `prometheus_metric_version`: 1 or 2.
    pub metric_version: u8,
    /// Series with more labels are skipped and counted.
    pub max_labels: usize,
    /// The most a snappy body may decompress to.
    pub max_decompressed_bytes: usize,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            metric_version: 2,
            max_labels: DEFAULT_MAX_LABELS,
            max_decompressed_bytes: 32 << 20,
        }
    }
}

/// What one request gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Metrics added.
    pub metrics: usize,
    /// Series read.
    pub series: usize,
    /// Series skipped: broken bytes, no `__name__`, a timestamp out of
    /// range, too many labels.
    pub bad_series: usize,
    /// Of them, series with more than `max_labels` labels.
    pub labels_limit_hits: usize,
    /// Why the first bad series was skipped.
    pub first_error: Option<String>,
}

impl Report {
    fn bad(&mut self, why: String) {
        self.bad_series += 1;
        self.first_error.get_or_insert(why);
    }
}

/// Read an uncompressed `WriteRequest` into `out`; samples without a
/// timestamp get `now_ns`. Fails only when the request's outer framing is
/// broken (what was read before stays in `out`).
pub fn parse(
    body: &[u8],
    options: &ParseOptions,
    now_ns: i64,
    out: &mut BatchBuilder,
) -> Result<Report, RemoteError> {
    // Bounded before anything is built: an empty sample is two bytes on
    // the wire, so a small body with a wide series could otherwise become
    // millions of metrics times hundreds of tags.
    let limit = cells_limit(options);
    let cells = remote::cells(body, options.max_labels);
    if cells > limit {
        return Err(RemoteError::TooManySamples { cells, limit });
    }
    let mut report = Report::default();
    let before = out.len();
    let result = remote::for_each_series(body, options.max_labels, |s| match s {
        Series::Read(ts) => {
            report.series += 1;
            if let Err(why) = add_series(&ts, options.metric_version, now_ns, out) {
                report.bad(why);
            }
        }
        Series::TooManyLabels(n) => {
            report.labels_limit_hits += 1;
            report.bad(format!(
                "a series with {n} labels, more than max_labels ({})",
                options.max_labels
            ));
        }
        Series::Malformed(e) => report.bad(format!("a series that cannot be read: {e}")),
    });
    report.metrics = out.len() - before;
    result.map(|()| report)
}

/// The most samples x (labels + 1) one request may hold: half the
/// decompressed size limit (16 Mi by default), far above what Prometheus
/// sends (`max_samples_per_send` is 2000).
pub fn cells_limit(options: &ParseOptions) -> u64 {
    (options.max_decompressed_bytes as u64 / 2).max(1 << 16)
}

/// Read a body that is either an uncompressed `WriteRequest` or a snappy
/// block of one (what the serializer writes): the plain reading first, the
/// snappy one when the plain framing is broken.
pub fn parse_any(
    body: &[u8],
    options: &ParseOptions,
    now_ns: i64,
    out: &mut BatchBuilder,
) -> Result<Report, RemoteError> {
    if remote::is_framed(body) {
        return parse(body, options, now_ns, out);
    }
    match remote::decompress(body, options.max_decompressed_bytes) {
        Ok(inflated) => parse(&inflated, options, now_ns, out),
        Err(e @ RemoteError::TooLarge { .. }) => Err(e),
        // Neither: say why the plain reading failed.
        Err(_) => parse(body, options, now_ns, out),
    }
}

/// One series' samples as metrics; an error skips the whole series.
fn add_series(
    ts: &TimeSeries,
    version: u8,
    now_ns: i64,
    out: &mut BatchBuilder,
) -> Result<(), String> {
    let name = ts
        .labels
        .iter()
        .rev()
        .find(|l| l.name == "__name__")
        .map(|l| l.value.as_str())
        .filter(|n| !n.is_empty())
        .ok_or("a series without a metric name (`__name__`)")?;
    let mut times = Vec::with_capacity(ts.samples.len());
    for s in &ts.samples {
        let t = match s.timestamp {
            t if t <= 0 => now_ns,
            t => t
                .checked_mul(1_000_000)
                .ok_or_else(|| format!("{name:?}: timestamp {t} ms is out of range"))?,
        };
        times.push(t);
    }
    let (measurement, field) = match version {
        1 => (name, "value"),
        _ => (MEASUREMENT_V2, name),
    };
    for (s, t) in ts.samples.iter().zip(times) {
        if s.value.is_nan() {
            continue;
        }
        let mut m = out.metric(measurement, t);
        for l in &ts.labels {
            if l.name != "__name__" && !l.name.is_empty() && !l.value.is_empty() {
                m.tag(&l.name, &l.value);
            }
        }
        m.field(field, s.value);
    }
    Ok(())
}

#[cfg(test)]
#[path = "remote_parse_tests.rs"]
mod tests;
