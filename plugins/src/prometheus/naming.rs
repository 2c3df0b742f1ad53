//! From graft metrics to Prometheus names and sample values, by Telegraf's
//! rules (its `prometheus` serializer), so that dashboards built on
//! Telegraf's `prometheus_client` find the same series in graft's.
//!
//! A metric `cpu` with field `usage_idle` is the family `cpu_usage_idle`;
//! the measurement `prometheus` (what `inputs.prometheus` writes with
//! `metric_version = 2`) gives the field alone. A name that breaks
//! Prometheus's rules is mended: a first character that may not start a
//! name is dropped, any other invalid character becomes `_`, and leading and
//! trailing `_` are trimmed; a name with nothing left is no name.

use std::borrow::Cow;

use graft_core::{FieldRef, MetricKind};

/// The family name of field `field` of measurement `measurement`, before
/// sanitising. Histograms and summaries lose their `_bucket`, `_sum` or
/// `_count` suffix: those are samples of one family.
pub fn metric_name(measurement: &str, field: &str, kind: MetricKind) -> String {
    let field = match kind {
        MetricKind::Histogram | MetricKind::Summary => ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| field.strip_suffix(suffix))
            .unwrap_or(field),
        _ => field,
    };
    if measurement == "prometheus" {
        field.to_owned()
    } else {
        format!("{measurement}_{field}")
    }
}

/// `name` as a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`), or `None`
/// when nothing valid is left.
pub fn sanitize_metric_name(name: &str) -> Option<Cow<'_, str>> {
    sanitize(
        name,
        |c| c.is_ascii_alphabetic() || c == '_' || c == ':',
        |c| c.is_ascii_alphanumeric() || c == '_' || c == ':',
    )
}

/// `name` as a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`), or `None` when
/// nothing valid is left.
pub fn sanitize_label_name(name: &str) -> Option<Cow<'_, str>> {
    sanitize(
        name,
        |c| c.is_ascii_alphabetic() || c == '_',
        |c| c.is_ascii_alphanumeric() || c == '_',
    )
}

fn sanitize(name: &str, first: fn(char) -> bool, rest: fn(char) -> bool) -> Option<Cow<'_, str>> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(first) && chars.all(rest);
    if valid {
        return Some(Cow::Borrowed(name));
    }
    let mut out = String::with_capacity(name.len());
    for (i, c) in name.chars().enumerate() {
        match i {
            0 if first(c) => out.push(c),
            0 => {}
            _ if rest(c) => out.push(c),
            _ => out.push('_'),
        }
    }
    let trimmed = out.trim_matches('_');
    (!trimmed.is_empty()).then(|| Cow::Owned(trimmed.to_owned()))
}

/// A field as a sample value: numbers as they are, booleans as 1 and 0;
/// strings have none.
pub fn sample_value(value: FieldRef<'_>) -> Option<f64> {
    match value {
        FieldRef::Float(x) => Some(x),
        FieldRef::Int(x) => Some(x as f64),
        FieldRef::Uint(x) => Some(x as f64),
        FieldRef::Bool(x) => Some(if x { 1.0 } else { 0.0 }),
        FieldRef::Str(_) => None,
    }
}

/// A field as the count of a histogram or summary: a non-negative number
/// (a float is truncated).
pub fn sample_count(value: FieldRef<'_>) -> Option<u64> {
    match value {
        FieldRef::Float(x) if x >= 0.0 => Some(x as u64),
        FieldRef::Int(x) => u64::try_from(x).ok(),
        FieldRef::Uint(x) => Some(x),
        _ => None,
    }
}

/// A field as the sum of a histogram or summary: any number, not a boolean.
pub fn sample_sum(value: FieldRef<'_>) -> Option<f64> {
    match value {
        FieldRef::Bool(_) => None,
        v => sample_value(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_join_measurement_and_field_as_telegraf_does() {
        use MetricKind::{Counter, Histogram, Summary};
        assert_eq!(metric_name("cpu", "usage_idle", Counter), "cpu_usage_idle");
        assert_eq!(
            metric_name("prometheus", "http_requests_total", Counter),
            "http_requests_total"
        );
        assert_eq!(
            metric_name("http", "latency_bucket", Histogram),
            "http_latency"
        );
        assert_eq!(metric_name("http", "latency_sum", Summary), "http_latency");
        assert_eq!(metric_name("prometheus", "rpc_count", Summary), "rpc");
        // Only histograms and summaries lose the suffix.
        assert_eq!(metric_name("net", "err_count", Counter), "net_err_count");
    }

    #[test]
    fn invalid_names_are_mended_or_refused() {
        let m = |s| sanitize_metric_name(s).map(Cow::into_owned);
        let l = |s| sanitize_label_name(s).map(Cow::into_owned);
        assert!(matches!(
            sanitize_metric_name("cpu_usage_idle"),
            Some(Cow::Borrowed(_))
        ));
        assert_eq!(m("ns:sub_name").as_deref(), Some("ns:sub_name"));
        assert_eq!(m("disk.used-percent").as_deref(), Some("disk_used_percent"));
        // The first character is dropped, not replaced, then `_` trimmed.
        assert_eq!(m("9lives").as_deref(), Some("lives"));
        assert_eq!(m("_x.").as_deref(), Some("x"));
        assert_eq!(m("température").as_deref(), Some("temp_rature"));
        assert_eq!(m("..."), None);
        assert_eq!(m(""), None);
        // Colons are for metric names only.
        assert_eq!(l("a:b").as_deref(), Some("a_b"));
        assert_eq!(l("_private").as_deref(), Some("_private"));
        assert_eq!(l("1st").as_deref(), Some("st"));
    }

    #[test]
    fn values_counts_and_sums() {
        assert_eq!(sample_value(FieldRef::Bool(true)), Some(1.0));
        assert_eq!(sample_value(FieldRef::Str("x")), None);
        assert_eq!(sample_count(FieldRef::Float(3.9)), Some(3));
        assert_eq!(sample_count(FieldRef::Int(-1)), None);
        assert_eq!(sample_sum(FieldRef::Bool(true)), None);
        assert_eq!(sample_sum(FieldRef::Uint(7)), Some(7.0));
    }
}
