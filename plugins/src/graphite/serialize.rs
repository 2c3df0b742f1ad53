//! Metrics as Graphite paths, exactly as Telegraf's graphite serializer
//! writes them: one `path value timestamp` per numeric field, the path from
//! a template (`host.tags.measurement.field` by default; `templates` pick
//! one per measurement glob), dots in tag values turned into `_`, a field
//! named `value` left out of the path, booleans as 1/0, strings and
//! NaN/Inf skipped, and Telegraf's strict sanitizing (`/ @ *` → `-`, `\`
//! dropped, `..` → `.`, anything else outside `[a-zA-Z0-9-:._=\p{L}]` →
//! `_`). With `graphite_tag_support`, paths carry Graphite tags
//! (`name;k=v`), sanitized strictly or in carbon's "compatible" way.

mod path;

use std::borrow::Cow;
use std::fmt::Write as _;

use anyhow::{Result, bail};
use globset::{Glob, GlobMatcher};
use graft_core::{FieldRef, MetricRef};

use path::{bucket, compatible};

/// `graphite_tag_sanitize_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SanitizeMode {
    Strict,
    Compatible,
}

/// Serializer settings, named as Telegraf names them.
#[derive(Debug, Clone)]
pub struct Options {
    pub prefix: String,
    pub template: String,
    pub templates: Vec<String>,
    pub tag_support: bool,
    pub sanitize_mode: SanitizeMode,
    pub separator: String,
    /// `graphite_strict_sanitize_regex`: characters to replace with `_`.
    pub strict_regex: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            prefix: String::new(),
            template: DEFAULT_TEMPLATE.into(),
            templates: Vec::new(),
            tag_support: false,
            sanitize_mode: SanitizeMode::Strict,
            separator: ".".into(),
            strict_regex: None,
        }
    }
}

/// Telegraf's default template.
pub const DEFAULT_TEMPLATE: &str = "host.tags.measurement.field";

/// One line to send: the path, the value as text, the timestamp in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub path: String,
    pub value: f64,
    pub text: String,
    pub timestamp: i64,
}

/// The serializer.
#[derive(Debug)]
pub struct Serializer {
    options: Options,
    templates: Vec<(GlobMatcher, String)>,
    strict: Option<regex::Regex>,
}

impl Serializer {
    pub fn new(mut options: Options) -> Result<Self> {
        let mut templates = Vec::new();
        for (i, t) in options.templates.iter().enumerate() {
            let parts: Vec<&str> = t.split_whitespace().collect();
            match parts.as_slice() {
                [] => bail!("templates[{i}]: empty template"),
                [only] => options.template = (*only).to_owned(),
                [filter, template] => templates.push((
                    Glob::new(filter)
                        .map_err(|e| anyhow::anyhow!("templates[{i}]: {e}"))?
                        .compile_matcher(),
                    (*template).to_owned(),
                )),
                _ => bail!("templates[{i}]: {t:?} is not `[filter] template`"),
            }
        }
        if options.template.is_empty() {
            options.template = DEFAULT_TEMPLATE.into();
        }
        if options.separator.is_empty() {
            options.separator = ".".into();
        }
        let strict = match &options.strict_regex {
            Some(r) if !r.is_empty() => Some(
                regex::Regex::new(r)
                    .map_err(|e| anyhow::anyhow!("graphite_strict_sanitize_regex: {e}"))?,
            ),
            _ => None,
        };
        Ok(Self {
            options,
            templates,
            strict,
        })
    }

    /// The points of one metric, each with its own strings (for pickle and
    /// for sending by consistent hash).
    pub fn points(&self, m: MetricRef<'_>, scratch: &mut Scratch, out: &mut Vec<Point>) {
        self.each_point(m, scratch, |path, value, text, timestamp| {
            out.push(Point {
                path: path.to_owned(),
                value,
                text: text.to_owned(),
                timestamp,
            });
        });
    }

    /// Append the plaintext lines (`path value timestamp`) of one metric
    /// to `out`.
    pub fn write_plaintext(&self, m: MetricRef<'_>, scratch: &mut Scratch, out: &mut Vec<u8>) {
        self.each_point(m, scratch, |path, _, text, timestamp| {
            push_line(out, path, text, timestamp);
        });
    }

    /// Call `emit(path, value, text, timestamp)` for each numeric field of
    /// `m`, in field order; the strings live in `scratch` or are borrowed.
    fn each_point(
        &self,
        m: MetricRef<'_>,
        scratch: &mut Scratch,
        mut emit: impl FnMut(&str, f64, &str, i64),
    ) {
        let ts = m.timestamp().div_euclid(1_000_000_000);
        let bucket = if self.options.tag_support {
            None
        } else {
            let template = self
                .templates
                .iter()
                .find(|(g, _)| g.is_match(m.name()))
                .map_or(self.options.template.as_str(), |(_, t)| t.as_str());
            match bucket(m, template, &self.options.prefix) {
                Some(b) => Some(b),
                None => return,
            }
        };
        let Scratch { path, text } = scratch;
        for (field, v) in m.fields() {
            text.clear();
            let value = match v {
                FieldRef::Str(_) => continue,
                FieldRef::Bool(b) => {
                    text.push(if b { '1' } else { '0' });
                    f64::from(u8::from(b))
                }
                FieldRef::Int(i) => {
                    let _ = write!(text, "{i}");
                    i as f64
                }
                FieldRef::Uint(u) => {
                    let _ = write!(text, "{u}");
                    u as f64
                }
                FieldRef::Float(f) if !f.is_finite() => continue,
                FieldRef::Float(f) => {
                    let _ = write!(text, "{f}");
                    f
                }
            };
            match &bucket {
                None => emit(&self.tagged_path(m, field), value, text, ts),
                Some(b) => {
                    path.clear();
                    b.write_with_field(field, path);
                    match self.strict_sanitize(path) {
                        Cow::Borrowed(p) => emit(p, value, text, ts),
                        Cow::Owned(p) => emit(&p, value, text, ts),
                    }
                }
            }
        }
    }

    fn tagged_path(&self, m: MetricRef<'_>, field: &str) -> String {
        let mut tags: Vec<String> = m
            .tags()
            .map(|(k, v)| {
                let k = if k == "name" { "_name" } else { k };
                match self.options.sanitize_mode {
                    SanitizeMode::Compatible => compatible(k, v),
                    SanitizeMode::Strict => self.strict_sanitize(&format!("{k}={v}")).into_owned(),
                }
            })
            .collect();
        tags.sort();
        let sep = &self.options.separator;
        let mut path = String::new();
        if !self.options.prefix.is_empty() {
            path.push_str(&self.options.prefix);
            path.push_str(sep);
        }
        path.push_str(m.name());
        if field != "value" {
            path.push_str(sep);
            path.push_str(field);
        }
        let mut path = self.strict_sanitize(&path).into_owned();
        for t in tags {
            path.push(';');
            path.push_str(&t);
        }
        path
    }

    fn strict_sanitize<'a>(&self, s: &'a str) -> Cow<'a, str> {
        let allowed = |c: char| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | ':' | '.' | '_' | '=')
                || c.is_alphabetic()
        };
        // Most paths need nothing: check before building a new one, bytes
        // first (ASCII), characters only when that fails.
        let ascii_ok =
            |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b':' | b'.' | b'_' | b'=');
        if self.strict.is_none()
            && !s.contains("..")
            && (s.bytes().all(ascii_ok) || s.chars().all(allowed))
        {
            return Cow::Borrowed(s);
        }
        let hyphened: String = s
            .chars()
            .filter(|&c| c != '\\')
            .map(|c| if matches!(c, '/' | '@' | '*') { '-' } else { c })
            .collect();
        let dotted = hyphened.replace("..", ".");
        match &self.strict {
            Some(r) => Cow::Owned(r.replace_all(&dotted, "_").into_owned()),
            None => Cow::Owned(
                dotted
                    .chars()
                    .map(|c| if allowed(c) { c } else { '_' })
                    .collect(),
            ),
        }
    }
}

/// Reusable buffers for [`Serializer::write_plaintext`] and
/// [`Serializer::points`], so that a point costs no allocation of its own.
#[derive(Debug, Default)]
pub struct Scratch {
    path: String,
    text: String,
}

/// One plaintext line. Values are written as Go's
/// `strconv.FormatFloat(v, 'f', -1, 64)` writes them (shortest, never an
/// exponent), which is what Rust's `{}` does.
pub fn push_line(out: &mut Vec<u8>, path: &str, text: &str, timestamp: i64) {
    out.extend_from_slice(path.as_bytes());
    out.push(b' ');
    out.extend_from_slice(text.as_bytes());
    out.push(b' ');
    push_int(out, timestamp);
    out.push(b'\n');
}

/// `n` in decimal, without going through `fmt`.
fn push_int(out: &mut Vec<u8>, n: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use graft_core::BatchBuilder;

    fn paths(opts: Options, build: impl FnOnce(&mut BatchBuilder)) -> Vec<String> {
        let s = Serializer::new(opts).unwrap();
        let mut b = BatchBuilder::new();
        build(&mut b);
        let batch = b.finish();
        let mut out = Vec::new();
        let mut scratch = Scratch::default();
        let mut plain = Vec::new();
        for m in batch.iter() {
            s.points(m, &mut scratch, &mut out);
            s.write_plaintext(m, &mut scratch, &mut plain);
        }
        let lines: Vec<String> = out
            .iter()
            .map(|p| format!("{} {} {}", p.path, p.text, p.timestamp))
            .collect();
        // Both ways of writing a metric agree.
        let mut encoded = Vec::new();
        for l in &lines {
            encoded.extend_from_slice(l.as_bytes());
            encoded.push(b'\n');
        }
        assert_eq!(
            String::from_utf8(plain).unwrap(),
            String::from_utf8(encoded).unwrap()
        );
        lines
    }

    #[test]
    fn push_int_writes_decimal() {
        for n in [0, 7, -7, 1_700_000_000, i64::MAX, i64::MIN] {
            let mut out = b"x".to_vec();
            push_int(&mut out, n);
            assert_eq!(out, format!("x{n}").into_bytes());
        }
    }

    #[test]
    fn telegraf_default_template() {
        let p = paths(Options::default(), |b| {
            b.metric("cpu", 1_500_000_000_999_999_999)
                .tag("host", "web.01")
                .tag("cpu", "cpu0")
                .tag("dc", "x/y")
                .field("usage_idle", 91.5)
                .field("value", 3i64)
                .field("ok", true)
                .field("s", FieldRef::Str("skip"));
        });
        assert_eq!(
            p,
            [
                "web_01.cpu0.x-y.cpu.usage_idle 91.5 1500000000",
                "web_01.cpu0.x-y.cpu 3 1500000000",
                "web_01.cpu0.x-y.cpu.ok 1 1500000000",
            ]
        );
    }

    #[test]
    fn templates_prefix_and_tag_support() {
        let opts = Options {
            prefix: "graft".into(),
            templates: vec![
                "cpu tags.measurement.field".into(),
                "host.measurement.field".into(),
            ],
            ..Options::default()
        };
        let p = paths(opts, |b| {
            b.metric("cpu", 0).tag("host", "h").field("x", 1.0);
            b.metric("mem", 0)
                .tag("host", "h")
                .tag("dc", "a")
                .field("used", 2.0);
        });
        assert_eq!(p, ["graft.h.cpu.x 1 0", "graft.h.mem.used 2 0"]);

        let opts = Options {
            tag_support: true,
            ..Options::default()
        };
        let p = paths(opts, |b| {
            b.metric("cpu", 0)
                .tag("name", "x")
                .tag("host", "a b")
                .field("value", 1.0)
                .field("idle", 2.5);
        });
        assert_eq!(
            p,
            [
                "cpu;_name=x;host=a_b 1 0",
                "cpu.idle;_name=x;host=a_b 2.5 0"
            ]
        );
        let opts = Options {
            tag_support: true,
            sanitize_mode: SanitizeMode::Compatible,
            ..Options::default()
        };
        let p = paths(opts, |b| {
            b.metric("cpu", 0).tag("k!", "~v;w").field("idle", 1.0);
        });
        assert_eq!(p, ["cpu.idle;k_=v_w 1 0"]);
    }
}
