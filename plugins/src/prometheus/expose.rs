//! The exposition side: graft metrics kept as Prometheus metric families
//! (Telegraf's prometheus_client "collection"), the latest value of each
//! series until it expires, written out in the text format or OpenMetrics.
//!
//! - [`map`]: a metric to the samples it gives, by Telegraf's
//!   `metric_version = 2` (its prometheus serializer) or `1` (its v1
//!   collector)
//! - [`render`]: the text format 0.0.4 and OpenMetrics 1.0, and the choice
//!   between them from an `Accept` header
//!
//! A family is keyed by its name: a sample of another kind under the same
//! name replaces the family's series (Prometheus allows one TYPE per
//! name). The number of series is bounded by `max_series`; a new series
//! past it is dropped and counted (`series_limit_hits`), logged once until
//! the collection is below the bound again.

pub mod map;
pub mod render;

#[cfg(test)]
mod lifecycle_tests;
#[cfg(test)]
mod render_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use globset::{Glob, GlobSet, GlobSetBuilder};
use graft_api::counters::Counters;
use graft_core::{Batch, MetricKind};

pub use render::Format;

/// Label pairs, sorted by name.
pub type Labels = Vec<(String, String)>;

/// Which of Telegraf's mappings from metrics to samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// Telegraf's v1 collector: histograms and summaries as one metric
    /// whose fields are the bounds, `sum` and `count`.
    V1,
    /// Telegraf's prometheus serializer: `_bucket`/`_sum`/`_count` fields
    /// with `le` and `quantile` tags, as `inputs.prometheus` writes them.
    V2,
}

/// How metrics become samples and how long they are kept.
#[derive(Clone, Debug)]
pub struct Options {
    pub version: Version,
    /// String fields become labels (else they are dropped).
    pub string_as_label: bool,
    /// Each sample carries its metric's timestamp.
    pub export_timestamp: bool,
    /// A series not updated for this long is dropped; `None`: never.
    pub expiration: Option<Duration>,
    /// At most this many series are kept.
    pub max_series: usize,
    /// Families forced to a type by name (Telegraf's `metric_types`).
    pub types: TypeMappings,
}

/// Telegraf's `metric_types`: globs of family names that are counters or
/// gauges whatever their metrics say (untyped, counter and gauge metrics
/// only; a histogram stays a histogram).
#[derive(Clone, Debug, Default)]
pub struct TypeMappings {
    counter: Option<GlobSet>,
    gauge: Option<GlobSet>,
}

impl TypeMappings {
    /// Compile the globs; errors name the key.
    pub fn new(counter: &[String], gauge: &[String]) -> Result<Self> {
        fn set(key: &str, globs: &[String]) -> Result<Option<GlobSet>> {
            if globs.is_empty() {
                return Ok(None);
            }
            let mut b = GlobSetBuilder::new();
            for g in globs {
                b.add(Glob::new(g).with_context(|| format!("metric_types.{key}: {g:?}"))?);
            }
            Ok(Some(b.build()?))
        }
        Ok(Self {
            counter: set("counter", counter)?,
            gauge: set("gauge", gauge)?,
        })
    }

    /// The family type of `name` for a metric of `kind`.
    pub fn kind(&self, name: &str, kind: MetricKind) -> MetricKind {
        if matches!(kind, MetricKind::Histogram | MetricKind::Summary) {
            return kind;
        }
        let hit = |s: &Option<GlobSet>| s.as_ref().is_some_and(|s| s.is_match(name));
        if hit(&self.gauge) {
            MetricKind::Gauge
        } else if hit(&self.counter) {
            MetricKind::Counter
        } else {
            kind
        }
    }
}

/// A histogram's buckets (bound, cumulative count) or a summary's
/// quantiles (quantile, value), with the count and sum.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dist<T> {
    pub points: Vec<(f64, T)>,
    pub count: u64,
    pub sum: f64,
}

impl<T> Dist<T> {
    /// Set the point at `bound`, replacing the one there.
    fn merge(&mut self, bound: f64, v: T) {
        match self.points.iter_mut().find(|(b, _)| *b == bound) {
            Some(p) => p.1 = v,
            None => self.points.push((bound, v)),
        }
    }
}

/// The value of one series.
#[derive(Clone, Debug, PartialEq)]
pub enum Sample {
    Scalar(f64),
    Histogram(Dist<u64>),
    Summary(Dist<f64>),
}

/// One series: its labels (when they differ from its key: v1 keys series
/// by their tags alone), value and times.
#[derive(Debug)]
struct Series {
    labels: Option<Labels>,
    sample: Sample,
    /// The metric's timestamp (ns).
    time: i64,
    /// When it was last updated.
    updated: Instant,
}

impl Series {
    fn labels<'a>(&'a self, key: &'a Labels) -> &'a Labels {
        self.labels.as_ref().unwrap_or(key)
    }
}

/// The series of one metric name.
#[derive(Debug)]
struct Family {
    kind: MetricKind,
    series: HashMap<Labels, Series>,
}

/// The counters of a collection (names in `docs/instrumentation.md`).
#[derive(Clone, Debug, Default)]
pub struct ExposeCounters {
    /// Series kept now (a gauge).
    pub series: Arc<AtomicU64>,
    /// New series refused at `max_series`.
    pub series_limit_hits: Arc<AtomicU64>,
    /// Series dropped after `expiration_interval` without an update.
    pub series_expired: Arc<AtomicU64>,
}

impl ExposeCounters {
    /// The counters, registered with a plugin's own.
    pub fn of(counters: &Counters) -> Self {
        Self {
            series: counters.counter("series"),
            series_limit_hits: counters.counter("series_limit_hits"),
            series_expired: counters.counter("series_expired"),
        }
    }
}

/// The metric families kept for scraping.
#[derive(Debug)]
pub struct Collection {
    options: Options,
    families: BTreeMap<String, Family>,
    series: usize,
    /// The bound was hit and not yet logged as left.
    limited: bool,
    /// When expired series were last looked for by a write.
    last_expired: Option<Instant>,
    /// Changes with every write and expiry: an exposition written at the
    /// same generation is still right.
    generation: u64,
    counters: ExposeCounters,
}

impl Collection {
    /// An empty collection.
    pub fn new(options: Options) -> Self {
        Self {
            options,
            families: BTreeMap::new(),
            series: 0,
            limited: false,
            last_expired: None,
            generation: 0,
            counters: ExposeCounters::default(),
        }
    }

    /// Count in `counters` from now on.
    pub fn set_counters(&mut self, counters: ExposeCounters) {
        counters.series.store(self.series as u64, Ordering::Relaxed);
        self.counters = counters;
    }

    /// The number of series kept.
    pub fn len(&self) -> usize {
        self.series
    }

    /// A number that changes whenever what [`Collection::render`] writes
    /// may have changed.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether no series is kept.
    pub fn is_empty(&self) -> bool {
        self.series == 0
    }

    /// Take a batch in at `now`, after dropping what expired: each series
    /// keeps its latest value (a metric older than the series' is skipped).
    pub fn add(&mut self, batch: &Batch, now: Instant) {
        self.generation += 1;
        // Expired series first: they make room under `max_series`. Looking
        // for them costs a pass over every series: at most once a second.
        if self
            .last_expired
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1))
        {
            self.last_expired = Some(now);
            self.expire(now);
        }
        let mut updates = Vec::new();
        for m in batch.iter() {
            updates.clear();
            map::updates(&self.options, m, &mut updates);
            for u in updates.drain(..) {
                self.apply(u, m.timestamp(), now);
            }
        }
    }

    fn apply(&mut self, u: map::Update, time: i64, now: Instant) {
        if let Some(fam) = self.families.get_mut(&u.family) {
            if fam.kind != u.kind {
                tracing::debug!(family = %u.family, was = %fam.kind, now = %u.kind,
                    "a family changed its type; its series start over");
                self.series -= fam.series.len();
                fam.series.clear();
                fam.kind = u.kind;
                self.counters
                    .series
                    .store(self.series as u64, Ordering::Relaxed);
            }
            if let Some(s) = fam.series.get_mut(&u.key) {
                if time < s.time {
                    return;
                }
                s.time = time;
                s.updated = now;
                s.labels = u.labels;
                u.change.apply(&mut s.sample);
                return;
            }
        }
        if self.series >= self.options.max_series {
            self.counters
                .series_limit_hits
                .fetch_add(1, Ordering::Relaxed);
            if !self.limited {
                self.limited = true;
                tracing::warn!(max_series = self.options.max_series, family = %u.family,
                    "max_series reached: new series are dropped (counted in series_limit_hits) until some expire");
            }
            return;
        }
        let fam = self.families.entry(u.family).or_insert_with(|| Family {
            kind: u.kind,
            series: HashMap::new(),
        });
        fam.series.insert(
            u.key,
            Series {
                labels: u.labels,
                sample: u.change.start(u.kind),
                time,
                updated: now,
            },
        );
        self.series += 1;
        self.counters
            .series
            .store(self.series as u64, Ordering::Relaxed);
    }

    /// Drop the series not updated within the expiration interval.
    pub fn expire(&mut self, now: Instant) {
        let Some(age) = self.options.expiration else {
            return;
        };
        let mut expired = 0;
        self.families.retain(|_, fam| {
            fam.series.retain(|_, s| {
                let keep = now.saturating_duration_since(s.updated) < age;
                expired += usize::from(!keep);
                keep
            });
            !fam.series.is_empty()
        });
        if expired == 0 {
            return;
        }
        self.generation += 1;
        self.series -= expired;
        self.counters
            .series_expired
            .fetch_add(expired as u64, Ordering::Relaxed);
        self.counters
            .series
            .store(self.series as u64, Ordering::Relaxed);
        if self.limited && self.series < self.options.max_series {
            self.limited = false;
            tracing::info!(
                series = self.series,
                "below max_series again: new series are kept"
            );
        }
    }

    /// Every family in `format`, sorted by name, each family's series by
    /// their labels.
    pub fn render(&self, format: Format, out: &mut String) {
        self.render_unless(format, out, |_| false);
    }

    /// Like [`Collection::render`], leaving out the families `other`
    /// renders: an exposition may hold a family's `TYPE` once only.
    pub fn render_absent_from(&self, other: &Collection, format: Format, out: &mut String) {
        self.render_unless(format, out, |name| other.renders(name));
    }

    /// Whether [`Collection::render`] writes the family `name`.
    fn renders(&self, name: &str) -> bool {
        self.families
            .get(name)
            .is_some_and(|f| !f.series.is_empty())
    }

    fn render_unless(&self, format: Format, out: &mut String, skip: impl Fn(&str) -> bool) {
        let style = render::Style {
            format,
            export_timestamp: self.options.export_timestamp,
            union_labels: self.options.version == Version::V1,
        };
        for (name, fam) in self
            .families
            .iter()
            .filter(|(n, f)| !f.series.is_empty() && !skip(n))
        {
            render::family(out, name, fam, &style);
        }
    }
}
