//! Graphite's protocols: the plaintext line (`path value [timestamp]`, with
//! carbon tags `path;k=v`), Telegraf's templates that turn a path into a
//! measurement, tags and a field, the path serializer of `outputs.graphite`,
//! carbon's pickle framing, and carbon-relay's consistent-hash ring.

pub mod pickle;
pub mod ring;
pub mod serialize;
pub mod template;

use graft_core::BatchBuilder;

pub use template::Templates;

/// Parse one plaintext line into `out`: `path value [timestamp]`, any run
/// of spaces or tabs between, the timestamp in (possibly fractional)
/// seconds; `-1` or none means `now` (nanoseconds). NaN values are dropped
/// like carbon drops them.
pub fn parse_line(
    line: &str,
    now: i64,
    templates: &Templates,
    out: &mut BatchBuilder,
) -> Result<(), &'static str> {
    let mut words = line.split_ascii_whitespace();
    let (Some(path), Some(value)) = (words.next(), words.next()) else {
        return Err("expected `path value [timestamp]`");
    };
    let ts = words.next();
    if words.next().is_some() {
        return Err("more than three fields");
    }
    let value: f64 = value.parse().map_err(|_| "value is not a number")?;
    if value.is_nan() {
        return Err("value is NaN");
    }
    if value.is_infinite() {
        return Err("value is infinite");
    }
    let timestamp = match ts {
        None => now,
        // Whole seconds, the usual spelling: one integer parse.
        Some(t) if t.bytes().all(|b| b.is_ascii_digit()) && t.len() <= 12 => {
            let secs: i64 = t.parse().map_err(|_| "timestamp is not a number")?;
            if secs >= 4_102_444_800 {
                return Err("timestamp out of range");
            }
            secs * 1_000_000_000
        }
        Some(t) => {
            let secs: f64 = t.parse().map_err(|_| "timestamp is not a number")?;
            if secs == -1.0 {
                now
            } else if !(0.0..4_102_444_800.0).contains(&secs) {
                return Err("timestamp out of range");
            } else {
                seconds_to_ns(t).unwrap_or((secs * 1e9) as i64)
            }
        }
    };
    add_point(path, value, timestamp, templates, out)
}

/// `"1700000000.25"` to nanoseconds exactly, when written without an
/// exponent.
fn seconds_to_ns(t: &str) -> Option<i64> {
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    whole.checked_mul(1_000_000_000)?.checked_add(frac)
}

/// Add one point whose path may carry carbon tags (`name;k=v;...`).
pub fn add_point(
    path: &str,
    value: f64,
    timestamp: i64,
    templates: &Templates,
    out: &mut BatchBuilder,
) -> Result<(), &'static str> {
    let mut segments = path.split(';');
    let name = segments.next().unwrap_or_default();
    if name.is_empty() {
        return Err("empty metric path");
    }
    if name.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("control character in the metric path");
    }
    let mut carbon_tags = Vec::new();
    for seg in segments {
        let Some((k, v)) = seg.split_once('=') else {
            return Err("a tag segment has no `=`");
        };
        if k.is_empty() || v.is_empty() || k.contains(['!', '^']) || v.starts_with('~') {
            return Err("invalid carbon tag");
        }
        carbon_tags.push((k, v));
    }
    if templates.is_identity() {
        let mut m = out.metric(name, timestamp);
        for (k, v) in carbon_tags {
            m.tag(k, v);
        }
        m.field("value", value);
        return Ok(());
    }
    let applied = templates.apply(name);
    let mut m = out.metric(&applied.measurement, timestamp);
    for (k, v) in &applied.tags {
        m.tag(k, v);
    }
    for (k, v) in carbon_tags {
        m.tag(k, v);
    }
    m.field(applied.field.as_deref().unwrap_or("value"), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_lines() {
        let t = Templates::new(&["servers.* .host.measurement.field".into()], ".").unwrap();
        let mut b = BatchBuilder::new();
        parse_line("servers.web01.cpu.idle 97.5 1700000000", 7, &t, &mut b).unwrap();
        parse_line("a.b;dc=x;env=prod   1e3\t-1", 7, &t, &mut b).unwrap();
        parse_line("x 2 1700000000.25", 7, &t, &mut b).unwrap();
        parse_line("y 3 4102444799", 7, &t, &mut b).unwrap();
        for bad in [
            "x",
            "x y 1",
            "x 1 2 3",
            "x nan 1",
            "x 1 never",
            ";k=v 1",
            "x;k 1",
            "x;k=~v 1",
            "x 1 4102444800",
            "x 1 99999999999999999999",
        ] {
            assert!(parse_line(bad, 7, &t, &mut b).is_err(), "{bad}");
        }
        let batch = b.finish();
        let rows: Vec<String> = batch.iter().map(|m| format!("{m:?}")).collect();
        assert_eq!(
            rows,
            [
                "Metric { name: \"cpu\", tags: [(\"host\", \"web01\")], fields: [(\"idle\", Float(97.5))], timestamp: 1700000000000000000 }",
                "Metric { name: \"a.b\", tags: [(\"dc\", \"x\"), (\"env\", \"prod\")], fields: [(\"value\", Float(1000.0))], timestamp: 7 }",
                "Metric { name: \"x\", tags: [], fields: [(\"value\", Float(2.0))], timestamp: 1700000000250000000 }",
                "Metric { name: \"y\", tags: [], fields: [(\"value\", Float(3.0))], timestamp: 4102444799000000000 }",
            ]
        );
    }
}
