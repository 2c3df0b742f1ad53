//! Metric families into graft metrics, as Telegraf's prometheus and
//! openmetrics parsers map them (`metric_version = 1` and `2`), each metric
//! with its [`MetricKind`].
//!
//! - Version 1: the measurement is the family's name. Counters, gauges and
//!   untyped samples give one field, `counter`, `gauge` or `value`;
//!   a histogram gives `count`, `sum` and one field per bucket named by
//!   its bound (`0.5`, `+Inf`); a summary `count`, `sum` and one field per
//!   quantile; a stateset one boolean field per state; an info `info = 1u`
//!   with its labels as tags.
//! - Version 2: the measurement is `prometheus` (`openmetric` for an
//!   OpenMetrics body) and the field is the family's name: a histogram
//!   gives `<name>_count`, `<name>_sum` and one `<name>_bucket` metric per
//!   bound tagged `le` (a `+Inf` bucket added when the body has none), a
//!   summary `<name>_count`, `<name>_sum` and one `<name>` per quantile
//!   tagged `quantile`; a stateset one `<name>_<state>` boolean per state;
//!   an info `<name>_info = 1u`.
//!
//! Labels are tags (an empty value is no tag); an OpenMetrics `# UNIT`
//! is the tag `unit`; `_created` is the field `created` (`<name>_created`)
//! of histograms and summaries, in seconds. A sample's own timestamp is
//! kept unless `ignore_timestamp` (in the text format only when positive,
//! as Telegraf does); otherwise the metric has the scrape's time. NaN and
//! infinite values are left out.

use std::collections::HashMap;

use graft_core::{BatchBuilder, MetricKind};

use super::{Family, FamilyType, Format, Part, Sample};

/// Telegraf's `metric_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricVersion {
    V1,
    V2,
}

/// How to turn one body's families into metrics.
#[derive(Debug, Clone, Copy)]
pub struct Mapping<'a> {
    pub version: MetricVersion,
    pub format: Format,
    /// Use the scrape's time for every metric.
    pub ignore_timestamp: bool,
    /// The scrape's time, in nanoseconds.
    pub now_ns: i64,
    /// Tags set on every metric after the labels (the `url` tag), so that
    /// they win over a label of the same name.
    pub tags: &'a [(&'a str, &'a str)],
}

impl Mapping<'_> {
    /// Add the metrics of `families` to `out`; returns how many.
    pub fn add(&self, families: &[Family], out: &mut BatchBuilder) -> usize {
        let before = out.len();
        for family in families {
            match family.kind {
                FamilyType::Histogram | FamilyType::GaugeHistogram | FamilyType::Summary => {
                    for group in group(&family.samples) {
                        self.complex(family, &group, out);
                    }
                }
                FamilyType::StateSet => {
                    for group in group(&family.samples) {
                        self.stateset(family, &group, out);
                    }
                }
                _ => {
                    for s in &family.samples {
                        self.simple(family, s, out);
                    }
                }
            }
        }
        out.len() - before
    }

    fn measurement<'f>(&self, family: &'f Family) -> &'f str {
        match (self.version, self.format) {
            (MetricVersion::V1, _) => &family.name,
            (MetricVersion::V2, Format::Text) => "prometheus",
            (MetricVersion::V2, Format::OpenMetrics) => "openmetric",
        }
    }

    fn time(&self, timestamp_ns: Option<i64>) -> i64 {
        match timestamp_ns {
            Some(t) if !self.ignore_timestamp && (self.format == Format::OpenMetrics || t > 0) => t,
            _ => self.now_ns,
        }
    }

    /// Start a metric of `family` with its labels, unit and extra tags.
    fn start<'b>(
        &self,
        family: &Family,
        labels: &[(String, String)],
        timestamp_ns: Option<i64>,
        out: &'b mut BatchBuilder,
    ) -> graft_core::MetricBuilder<'b> {
        let mut m = out.metric(self.measurement(family), self.time(timestamp_ns));
        m.kind(kind(family.kind));
        for (k, v) in labels {
            if !v.is_empty() {
                m.tag(k, v);
            }
        }
        if !family.unit.is_empty() {
            m.tag("unit", &family.unit);
        }
        for (k, v) in self.tags {
            m.tag(k, v);
        }
        m
    }

    /// A counter, gauge, untyped or info sample.
    fn simple(&self, family: &Family, s: &Sample, out: &mut BatchBuilder) {
        if s.part != Part::Value {
            // A counter's `_created` is not reported, as in Telegraf.
            return;
        }
        let name = &family.name;
        let mut m = self.start(family, &s.labels, s.timestamp_ns, out);
        match (family.kind, self.version) {
            (FamilyType::Info, MetricVersion::V1) => m.field("info", 1_u64),
            (FamilyType::Info, MetricVersion::V2) => m.field(&format!("{name}_info"), 1_u64),
            (_, MetricVersion::V2) => m.field(name, s.value),
            (FamilyType::Counter, _) => m.field("counter", s.value),
            (FamilyType::Gauge, _) => m.field("gauge", s.value),
            _ => m.field("value", s.value),
        };
    }

    fn stateset(&self, family: &Family, g: &Group<'_>, out: &mut BatchBuilder) {
        let name = &family.name;
        let states = g.samples.iter().filter_map(|s| match &s.part {
            Part::State(state) => Some((state.replace(' ', "_"), s.value > 0.0)),
            _ => None,
        });
        match self.version {
            MetricVersion::V1 => {
                let mut m = self.start(family, g.labels, g.timestamp_ns, out);
                for (state, on) in states {
                    m.field(&state, on);
                }
            }
            MetricVersion::V2 => {
                for (state, on) in states {
                    self.start(family, g.labels, g.timestamp_ns, out)
                        .field(&format!("{name}_{state}"), on);
                }
            }
        }
    }

    /// A histogram, gauge histogram or summary series.
    fn complex(&self, family: &Family, g: &Group<'_>, out: &mut BatchBuilder) {
        let name = &family.name;
        let mut count = None;
        let mut sum = None;
        let mut created = None;
        let mut points = Vec::new();
        for s in &g.samples {
            match s.part {
                Part::Count => count = Some(s.value),
                Part::Sum => sum = Some(s.value),
                Part::Created => created = Some(s.value),
                Part::Bucket(b) | Part::Quantile(b) => {
                    // The last of a bound given twice wins.
                    points.retain(|(p, _)| *p != b);
                    points.push((b, s.value));
                }
                Part::Value | Part::State(_) => {}
            }
        }
        // The text format always has a count and a sum (zero when absent),
        // as Prometheus's data model does; OpenMetrics only those given.
        if self.format == Format::Text {
            count = count.or(Some(0.0));
            sum = sum.or(Some(0.0));
        }
        let histogram = family.kind != FamilyType::Summary;
        match self.version {
            MetricVersion::V1 => {
                let mut m = self.start(family, g.labels, g.timestamp_ns, out);
                if let Some(c) = count {
                    m.field("count", c);
                }
                if let Some(s) = sum {
                    m.field("sum", s);
                }
                if let Some(c) = created {
                    m.field("created", c);
                }
                for (bound, v) in &points {
                    m.field(&format_g(*bound), *v);
                }
            }
            MetricVersion::V2 => {
                {
                    let mut m = self.start(family, g.labels, g.timestamp_ns, out);
                    if let Some(c) = count {
                        m.field(&format!("{name}_count"), c);
                    }
                    if let Some(s) = sum {
                        m.field(&format!("{name}_sum"), s);
                    }
                    if let Some(c) = created {
                        m.field(&format!("{name}_created"), c);
                    }
                }
                let (tag, field) = if histogram {
                    ("le", format!("{name}_bucket"))
                } else {
                    ("quantile", name.clone())
                };
                for (bound, v) in &points {
                    self.start(family, g.labels, g.timestamp_ns, out)
                        .tag(tag, &format_g(*bound))
                        .field(&field, *v);
                }
                let infinite = points.iter().any(|(b, _)| *b == f64::INFINITY);
                if histogram && !infinite {
                    self.start(family, g.labels, g.timestamp_ns, out)
                        .tag("le", "+Inf")
                        .field(&field, count.unwrap_or(0.0));
                }
            }
        }
    }
}

/// The kind of the metrics of a family, as Telegraf gives them.
fn kind(t: FamilyType) -> MetricKind {
    match t {
        FamilyType::Counter => MetricKind::Counter,
        FamilyType::Gauge => MetricKind::Gauge,
        FamilyType::Summary => MetricKind::Summary,
        FamilyType::Histogram | FamilyType::GaugeHistogram => MetricKind::Histogram,
        FamilyType::StateSet | FamilyType::Info | FamilyType::Untyped => MetricKind::Untyped,
    }
}

/// The samples of one series of a family: the same labels (other than
/// `le`, `quantile` or the state), in the order first seen.
struct Group<'a> {
    labels: &'a [(String, String)],
    timestamp_ns: Option<i64>,
    samples: Vec<&'a Sample>,
}

fn group(samples: &[Sample]) -> Vec<Group<'_>> {
    let mut groups: Vec<Group<'_>> = Vec::new();
    let mut index: HashMap<&[(String, String)], usize> = HashMap::new();
    for s in samples {
        let i = *index.entry(&s.labels).or_insert_with(|| {
            groups.push(Group {
                labels: &s.labels,
                timestamp_ns: None,
                samples: Vec::new(),
            });
            groups.len() - 1
        });
        let g = &mut groups[i];
        g.timestamp_ns = g.timestamp_ns.or(s.timestamp_ns);
        g.samples.push(s);
    }
    groups
}

/// A float as Go's `strconv.FormatFloat(v, 'g', -1, 64)` writes it, as
/// Telegraf names bucket and quantile fields and tags: the shortest digits
/// that read back the same, an exponent below 1e-4 and from 1e6 on
/// (`1e-05`, `1e+06`), `+Inf`, `-Inf`, `NaN`.
pub fn format_g(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust's `{:e}` gives the same shortest digits: `-1.2345e-5`.
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e} has a decimal exponent");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{dot}{rest}e{esign}{:02}", exp.unsigned_abs());
    }
    let point = exp + 1;
    let text = if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}", "0".repeat(point as usize - digits.len()))
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{int}.{frac}")
    };
    format!("{sign}{text}")
}
