//! Writing the collection out: Prometheus's text format 0.0.4 (what
//! Telegraf serves) and OpenMetrics 1.0, chosen from a scraper's `Accept`
//! header; numbers written as Go's client writes them.

use std::fmt::Write as _;

use graft_core::MetricKind;

use super::{Dist, Family, Labels, Sample, Series};

/// The HELP text of every family, as Telegraf's.
pub const HELP: &str = "Telegraf collected metric";

/// An exposition format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`.
    Text,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` of an answer in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// The format for a request's `Accept` header. OpenMetrics goes to a
    /// scraper that takes nothing else; with `prefer_openmetrics`, also to
    /// one that ranks it at least as high as the text format (Prometheus
    /// does), whose counters then carry OpenMetrics' `_total` suffix.
    pub fn negotiate(accept: Option<&str>, prefer_openmetrics: bool) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let (mut openmetrics, mut text) = (0.0f32, 0.0f32);
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(1.0, |(_, v)| v.trim().parse::<f32>().unwrap_or(0.0));
            match media.as_str() {
                "application/openmetrics-text" => openmetrics = openmetrics.max(q),
                "text/plain" | "text/*" | "*/*" => text = text.max(q),
                _ => {}
            }
        }
        if openmetrics > 0.0 && (text <= 0.0 || (prefer_openmetrics && openmetrics >= text)) {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// What a family's series are written with.
pub(super) struct Style {
    pub format: Format,
    pub export_timestamp: bool,
    /// Metric version 1: every series of a family carries every label
    /// name the family has (empty when it lacks it), as Telegraf's v1
    /// collector writes them.
    pub union_labels: bool,
}

/// Write one family.
pub(super) fn family(out: &mut String, name: &str, fam: &Family, style: &Style) {
    let om = style.format == Format::OpenMetrics;
    let type_name = match (fam.kind, om) {
        (MetricKind::Untyped, true) => "unknown",
        (kind, _) => kind.as_str(),
    };
    // OpenMetrics names a counter's family without `_total`, its sample with.
    let family_name = match fam.kind {
        MetricKind::Counter if om => name.strip_suffix("_total").unwrap_or(name),
        _ => name,
    };
    let _ = writeln!(out, "# HELP {family_name} {HELP}");
    let _ = writeln!(out, "# TYPE {family_name} {type_name}");
    let names: Vec<&str> = if style.union_labels {
        let mut all: Vec<&str> = fam
            .series
            .iter()
            .flat_map(|(k, s)| s.labels(k).iter().map(|(n, _)| n.as_str()))
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    } else {
        Vec::new()
    };
    let mut rows: Vec<(Labels, &Series)> = fam
        .series
        .iter()
        .map(|(k, s)| {
            let own = s.labels(k);
            let labels = if style.union_labels {
                names
                    .iter()
                    .map(|n| {
                        let v = own.iter().find(|(k, _)| k == n).map_or("", |(_, v)| v);
                        ((*n).to_owned(), v.to_owned())
                    })
                    .collect()
            } else {
                own.clone()
            };
            (labels, s)
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    for (labels, series) in rows {
        let ts = style.export_timestamp.then_some(series.time);
        let mut w = Writer { out, om, ts };
        match &series.sample {
            Sample::Scalar(v) => {
                let sample_name = match fam.kind {
                    MetricKind::Counter if om => format!("{family_name}_total"),
                    _ => name.to_owned(),
                };
                w.line(&sample_name, &labels, None, Num::Float(*v));
            }
            Sample::Histogram(d) => w.distribution(name, &labels, "le", d, Num::Count),
            Sample::Summary(d) => w.distribution(name, &labels, "quantile", d, Num::Float),
        }
    }
}

/// A sample's value: counts are integers in OpenMetrics, floats in text.
#[derive(Clone, Copy)]
enum Num {
    Float(f64),
    Count(u64),
}

struct Writer<'a> {
    out: &'a mut String,
    om: bool,
    ts: Option<i64>,
}

impl Writer<'_> {
    /// A histogram's buckets (with `+Inf` added when missing) or a
    /// summary's quantiles, then `_sum` and `_count`.
    fn distribution<T: Copy>(
        mut self,
        name: &str,
        labels: &Labels,
        bound_label: &str,
        d: &Dist<T>,
        num: impl Fn(T) -> Num,
    ) {
        let mut points: Vec<(f64, T)> = d.points.clone();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let histogram = bound_label == "le";
        let suffix = if histogram { "_bucket" } else { "" };
        let line_name = format!("{name}{suffix}");
        for (bound, v) in &points {
            let bound = self.float(*bound);
            self.line(&line_name, labels, Some((bound_label, &bound)), num(*v));
        }
        if histogram && points.last().is_none_or(|(b, _)| *b != f64::INFINITY) {
            self.line(
                &line_name,
                labels,
                Some(("le", "+Inf")),
                Num::Count(d.count),
            );
        }
        self.line(&format!("{name}_sum"), labels, None, Num::Float(d.sum));
        self.line(&format!("{name}_count"), labels, None, Num::Count(d.count));
    }

    fn float(&self, v: f64) -> String {
        if self.om {
            openmetrics_float(v)
        } else {
            go_float(v)
        }
    }

    fn line(&mut self, name: &str, labels: &Labels, extra: Option<(&str, &str)>, v: Num) {
        let out = &mut *self.out;
        out.push_str(name);
        if !labels.is_empty() || extra.is_some() {
            out.push('{');
            let pairs = labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .chain(extra);
            for (i, (k, v)) in pairs.enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(k);
                out.push_str("=\"");
                escape_label_value(out, v);
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        let value = match (v, self.om) {
            (Num::Count(c), true) => c.to_string(),
            (Num::Count(c), false) => go_float(c as f64),
            (Num::Float(f), true) => openmetrics_float(f),
            (Num::Float(f), false) => go_float(f),
        };
        out.push_str(&value);
        if let Some(ns) = self.ts {
            let ms = ns.div_euclid(1_000_000);
            if self.om {
                let _ = write!(out, " {}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000));
            } else {
                let _ = write!(out, " {ms}");
            }
        }
        out.push('\n');
    }
}

/// A label value with `\`, `"` and newlines escaped (both formats).
fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A float as Go's `strconv.FormatFloat(v, 'g', -1, 64)` writes it, as
/// Prometheus's Go client does in the text format: the shortest digits
/// that read back the same, in exponent form below 1e-4 or from 1e6 on
/// (`1.7560473e+07`, `0.05`, `144320`), `+Inf`, `-Inf`, `NaN`.
pub fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-tripping digits: `1.7560473e7`.
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{dot}{rest}e{esign}{:02}", exp.abs());
    }
    let point = exp + 1;
    if point <= 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-point) as usize))
    } else if digits.len() <= point as usize {
        format!(
            "{sign}{digits}{}",
            "0".repeat(point as usize - digits.len())
        )
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{sign}{int}.{frac}")
    }
}

/// A float as OpenMetrics writes it: as Go's, with `.0` added to a whole
/// number (`1.0`, `144320.0`).
pub fn openmetrics_float(v: f64) -> String {
    let mut s = go_float(v);
    if v.is_finite() && !s.contains(['.', 'e']) {
        s.push_str(".0");
    }
    s
}
