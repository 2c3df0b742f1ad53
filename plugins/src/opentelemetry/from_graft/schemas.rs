//! The two schemas a graft metric is read with: `prometheus-v1` (the
//! measurement is the metric) and `prometheus-v2` (measurement
//! `prometheus`, the field is the metric).

use graft_core::{FieldRef, MetricRef};

use super::{Converter, Number, Type, count_of, is_start_time, number, quantile, required, typed};
use crate::opentelemetry::names::*;

/// The fields that are values (not a start time).
fn values<'a>(m: MetricRef<'a>) -> Vec<(&'a str, FieldRef<'a>)> {
    m.fields().filter(|(k, _)| !is_start_time(k)).collect()
}

/// A numeric bucket bound or quantile read from a field key or tag value.
fn bound(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|b| !b.is_nan())
}

impl Converter<'_> {
    /// Schema v1; `Ok(false)` when the metric fits none of its types.
    pub(super) fn add_v1(&mut self, m: MetricRef<'_>) -> Result<bool, String> {
        let Some(ty) = typed(m.kind()).or_else(|| infer_v1(m)) else {
            return Ok(false);
        };
        let split = self.split(m);
        match ty {
            Type::Gauge | Type::Sum => {
                let key = if ty == Type::Gauge { GAUGE } else { COUNTER };
                if let Some(v) = m.field(key) {
                    let n = number(v).ok_or_else(|| format!("field {key:?} is not a number"))?;
                    self.number(m.name(), ty, m, &split, n)?;
                } else {
                    for (k, v) in values(m) {
                        if let Some(n) = number(v) {
                            let name = format!("{}{}{k}", m.name(), self.separator);
                            self.number(&name, ty, m, &split, n)?;
                        }
                    }
                }
            }
            Type::Histogram => {
                let (count, sum) = (required(m, COUNT)?, required(m, SUM)?);
                let at = self.composite(m.name(), ty, m, &split)?;
                let mut pairs = Vec::new();
                for (k, v) in values(m) {
                    if matches!(k, COUNT | SUM | MIN | MAX) {
                        continue;
                    }
                    if let (Some(b), Some(n)) = (bound(k), number(v)) {
                        pairs.push((b, count_of(as_f64(n))));
                    }
                }
                let (min, max) = (required(m, MIN).ok(), required(m, MAX).ok());
                let point = self.histogram_point(at);
                point.count = count_of(count);
                point.sum = Some(sum);
                point.min = min;
                point.max = max;
                self.buckets.entry(at).or_default().extend(pairs);
            }
            Type::Summary => {
                let (count, sum) = (required(m, COUNT)?, required(m, SUM)?);
                let at = self.composite(m.name(), ty, m, &split)?;
                let mut quantiles = Vec::new();
                for (k, v) in values(m) {
                    if let (Some(q), Some(n)) = (bound(k), number(v)) {
                        quantiles.push(quantile(q, as_f64(n)));
                    }
                }
                let point = self.summary_point(at);
                point.count = count_of(count);
                point.sum = sum;
                point.quantile_values.extend(quantiles);
            }
        }
        Ok(true)
    }

    /// Schema v2 (measurement `prometheus`); `Ok(false)` when the metric
    /// fits none of its types.
    pub(super) fn add_v2(&mut self, m: MetricRef<'_>) -> Result<bool, String> {
        let values = values(m);
        let Some(ty) = typed(m.kind()).or_else(|| infer_v2(m, &values)) else {
            return Ok(false);
        };
        let split = self.split(m);
        let one = |what: &str| match values.as_slice() {
            [(k, v)] => Ok((*k, *v)),
            _ => Err(format!(
                "a {what} of schema prometheus-v2 has one field, this one has {}",
                values.len()
            )),
        };
        match ty {
            Type::Gauge | Type::Sum => {
                let (k, v) = one("gauge or counter")?;
                let n = number(v).ok_or_else(|| format!("field {k:?} is not a number"))?;
                self.number(k, ty, m, &split, n)?;
            }
            Type::Histogram => {
                if let Some(le) = m.tag(LE).or(m.tag(QUANTILE)) {
                    let (k, v) = one("bucket")?;
                    let name = k.strip_suffix("_bucket").unwrap_or(k);
                    let b =
                        bound(le).ok_or_else(|| format!("bucket bound {le:?} is not a number"))?;
                    let n = number(v).ok_or_else(|| format!("field {k:?} is not a number"))?;
                    let at = self.composite(name, ty, m, &split)?;
                    self.buckets
                        .entry(at)
                        .or_default()
                        .push((b, count_of(as_f64(n))));
                } else {
                    let name = base_name(&values)?;
                    let at = self.composite(&name, ty, m, &split)?;
                    let count = required(m, &format!("{name}_count"))?;
                    let sum = required(m, &format!("{name}_sum"))?;
                    let min = required(m, &format!("{name}_min")).ok();
                    let max = required(m, &format!("{name}_max")).ok();
                    let point = self.histogram_point(at);
                    point.count = count_of(count);
                    point.sum = Some(sum);
                    point.min = min;
                    point.max = max;
                }
            }
            Type::Summary => {
                if let Some(q) = m.tag(QUANTILE) {
                    let (k, v) = one("quantile")?;
                    let q = bound(q).ok_or_else(|| format!("quantile {q:?} is not a number"))?;
                    let n = number(v).ok_or_else(|| format!("field {k:?} is not a number"))?;
                    let at = self.composite(k, ty, m, &split)?;
                    self.summary_point(at)
                        .quantile_values
                        .push(quantile(q, as_f64(n)));
                } else {
                    let name = base_name(&values)?;
                    let at = self.composite(&name, ty, m, &split)?;
                    let count = required(m, &format!("{name}_count"))?;
                    let sum = required(m, &format!("{name}_sum"))?;
                    let point = self.summary_point(at);
                    point.count = count_of(count);
                    point.sum = sum;
                }
            }
        }
        Ok(true)
    }
}

fn as_f64(n: Number) -> f64 {
    match n {
        Number::Double(f) => f,
        Number::Int(i) => i as f64,
    }
}

/// influx2otel's inference for schema v1.
fn infer_v1(m: MetricRef<'_>) -> Option<Type> {
    if m.field(GAUGE).is_some() {
        return Some(Type::Gauge);
    }
    if m.field(COUNTER).is_some() {
        return Some(Type::Sum);
    }
    let histogram = values(m)
        .iter()
        .all(|(k, _)| matches!(*k, COUNT | SUM | MIN | MAX) || bound(k).is_some());
    histogram.then_some(Type::Histogram)
}

/// influx2otel's inference for schema v2.
fn infer_v2(m: MetricRef<'_>, values: &[(&str, FieldRef<'_>)]) -> Option<Type> {
    if m.tag(LE).is_some() || m.tag(QUANTILE).is_some() {
        return Some(Type::Histogram);
    }
    if values
        .iter()
        .any(|(k, _)| k.ends_with("_count") || k.ends_with("_sum"))
    {
        return Some(Type::Histogram);
    }
    (values.len() == 1).then_some(Type::Gauge)
}

/// The metric named by `<name>_count`, `<name>_sum` (and graft's
/// `<name>_min`, `<name>_max`) fields.
fn base_name(values: &[(&str, FieldRef<'_>)]) -> Result<String, String> {
    let name = values
        .iter()
        .find_map(|(k, _)| k.strip_suffix("_count").or_else(|| k.strip_suffix("_sum")))
        .ok_or("no field ends with _count or _sum")?;
    for (k, _) in values {
        let known = ["_count", "_sum", "_min", "_max"]
            .iter()
            .any(|s| k.strip_suffix(s) == Some(name));
        if !known {
            return Err(format!(
                "field {k:?} is not {name}_count, _sum, _min or _max"
            ));
        }
    }
    Ok(name.to_owned())
}
