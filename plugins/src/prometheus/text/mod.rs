//! The Prometheus exposition formats a scrape answers in: the text format
//! 0.0.4 and OpenMetrics 1.0 text, read into metric families within
//! limits a peer cannot blow up. A bad line is counted and skipped; the
//! rest of the body is kept.
//!
//! Samples are grouped into families as Prometheus's own parsers group
//! them: by `# TYPE` (a histogram's `_bucket`, `_sum` and `_count` samples
//! belong to it), a sample without metadata being a family of its own
//! (untyped). [`schema`] turns families into graft metrics as Telegraf's
//! `metric_version = 1` and `2` do.

mod line;
pub mod schema;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use line::{Line, RawSample};

/// Which text format a body is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The text format 0.0.4 (`text/plain; version=0.0.4`), timestamps in
    /// milliseconds.
    Text,
    /// OpenMetrics 1.0 text (`application/openmetrics-text`), timestamps in
    /// seconds, `# UNIT`, `# EOF`, exemplars, more metric types.
    OpenMetrics,
}

impl Format {
    /// The format a `Content-Type` names, as Prometheus chooses it:
    /// `application/openmetrics-text` is OpenMetrics, anything else (none,
    /// `text/plain`, unknown) the text format.
    pub fn from_content_type(content_type: Option<&str>) -> Self {
        let media = content_type
            .and_then(|c| c.split(';').next())
            .map(str::trim)
            .unwrap_or("");
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            Self::OpenMetrics
        } else {
            Self::Text
        }
    }
}

/// What one body may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of one line; a longer line is skipped and counted.
    pub max_line_size: usize,
    /// Labels of one sample; a sample with more is skipped and counted.
    pub max_labels: usize,
    /// Samples of one body; past it, the body is refused whole.
    pub max_samples: usize,
    /// Bytes the families read from one body take in memory (names,
    /// labels, samples; an estimate a little above the allocator's); past
    /// it, the body is refused whole. Bounds what a body of many short
    /// labels grows into.
    pub max_decoded_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_line_size: 64 * 1024,
            max_labels: 128,
            max_samples: 1_000_000,
            max_decoded_size: 64 * 1024 * 1024,
        }
    }
}

/// Why a line was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("invalid metric name in a {0} line")]
    BadName(&'static str),
    #[error("no value after the metric name and labels")]
    NoValue,
    #[error("the value is not a number")]
    BadValue,
    #[error(
        "the timestamp is not a number (milliseconds in the text format, seconds in OpenMetrics)"
    )]
    BadTimestamp,
    #[error("text after the timestamp")]
    TrailingText,
    #[error("malformed label (name=\"value\" pairs separated by commas)")]
    BadLabel,
    #[error("a label value misses its closing quote")]
    UnclosedQuote,
    #[error("invalid escape in a label value (only \\\\, \\\" and \\n)")]
    BadEscape,
    #[error("a label is set twice")]
    DuplicateLabel,
    #[error("more than {0} labels (max_labels)")]
    TooManyLabels(usize),
    #[error("longer than {0} bytes (max_line_size)")]
    TooLong(usize),
    #[error("not UTF-8")]
    NotUtf8,
    #[error("unknown metric type {0:?}")]
    BadType(String),
    #[error("TYPE or UNIT after the family's samples")]
    LateMetadata,
    #[error("a {0} sample without a valid {1:?} label")]
    MissingLabel(&'static str, &'static str),
    #[error("content after # EOF")]
    AfterEof,
}

/// A metric family's type, from `# TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    StateSet,
    Info,
    /// `untyped` in the text format, `unknown` in OpenMetrics, or no
    /// `# TYPE` at all.
    Untyped,
}

impl FamilyType {
    fn parse(s: &str, format: Format) -> Option<Self> {
        Some(match (s, format) {
            ("counter", _) => Self::Counter,
            ("gauge", _) => Self::Gauge,
            ("histogram", _) => Self::Histogram,
            ("summary", _) => Self::Summary,
            ("untyped", Format::Text) | ("unknown", Format::OpenMetrics) => Self::Untyped,
            ("gaugehistogram", Format::OpenMetrics) => Self::GaugeHistogram,
            ("stateset", Format::OpenMetrics) => Self::StateSet,
            ("info", Format::OpenMetrics) => Self::Info,
            _ => return None,
        })
    }

    /// The sample-name suffixes a family of this type has, and what each
    /// sample is (the one without suffix first).
    fn suffixes(self, format: Format) -> &'static [(&'static str, Part)] {
        use Part::*;
        match (self, format) {
            (Self::Counter, Format::OpenMetrics) => {
                &[("", Value), ("_total", Value), ("_created", Created)]
            }
            (Self::Summary, Format::Text) => &[("", Value), ("_sum", Sum), ("_count", Count)],
            (Self::Summary, Format::OpenMetrics) => &[
                ("", Value),
                ("_sum", Sum),
                ("_count", Count),
                ("_created", Created),
            ],
            (Self::Histogram, Format::Text) => {
                &[("_bucket", Value), ("_sum", Sum), ("_count", Count)]
            }
            (Self::Histogram, Format::OpenMetrics) => &[
                ("_bucket", Value),
                ("_sum", Sum),
                ("_count", Count),
                ("_created", Created),
            ],
            (Self::GaugeHistogram, _) => &[("_bucket", Value), ("_gsum", Sum), ("_gcount", Count)],
            (Self::Info, _) => &[("_info", Value)],
            _ => &[("", Value)],
        }
    }
}

/// What a sample is within its family.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// The value of a counter, gauge, untyped or info sample.
    Value,
    /// A histogram bucket: its upper bound (`le`).
    Bucket(f64),
    /// A summary quantile (`quantile`).
    Quantile(f64),
    /// A state of a stateset, named by the label named as the family.
    State(String),
    /// `_sum` (`_gsum` of a gauge histogram).
    Sum,
    /// `_count` (`_gcount`).
    Count,
    /// `_created`: when the series started, in seconds.
    Created,
}

/// One sample, its special label (`le`, `quantile`, the state) moved into
/// [`Sample::part`] and its other labels sorted by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub part: Part,
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub timestamp_ns: Option<i64>,
}

/// A metric family and its samples in the order read.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: String,
    pub kind: FamilyType,
    /// `# UNIT` (OpenMetrics), or empty.
    pub unit: String,
    pub samples: Vec<Sample>,
}

/// A body read.
#[derive(Debug, Default)]
pub struct Exposition {
    pub families: Vec<Family>,
    /// Samples kept.
    pub samples: usize,
    /// What the families take in memory, as [`Limits::max_decoded_size`]
    /// counts it.
    pub decoded_size: usize,
    /// Lines skipped as malformed (limit hits included).
    pub malformed: u64,
    /// Lines skipped for `max_line_size`.
    pub line_size_limit_hits: u64,
    /// Samples skipped for `max_labels`.
    pub labels_limit_hits: u64,
    /// The first line skipped, with its number (from 1).
    pub first_error: Option<(usize, LineError)>,
}

/// Why a body was refused whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("more than {0} samples (max_samples)")]
    Samples(usize),
    #[error("more than {0} bytes once read (max_decoded_size)")]
    DecodedSize(usize),
}

/// What a string kept costs: its bytes rounded up as an allocator does,
/// and the allocation's own header.
fn string_cost(s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        s.len().next_multiple_of(16) + 16
    }
}

/// Read a body.
pub fn parse(body: &[u8], format: Format, limits: &Limits) -> Result<Exposition, Refused> {
    let mut reader = Reader {
        format,
        out: Exposition::default(),
        by_name: HashMap::new(),
    };
    let mut eof = false;
    for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
        if eof {
            if !raw.iter().all(|b| b.is_ascii_whitespace()) {
                reader.skip(i + 1, LineError::AfterEof);
                break;
            }
            continue;
        }
        if raw.len() > limits.max_line_size {
            reader.out.line_size_limit_hits += 1;
            reader.skip(i + 1, LineError::TooLong(limits.max_line_size));
            continue;
        }
        let Ok(text) = std::str::from_utf8(raw) else {
            reader.skip(i + 1, LineError::NotUtf8);
            continue;
        };
        let result = match line::parse(text, format, limits.max_labels) {
            Ok(Line::Eof) => {
                eof = true;
                Ok(())
            }
            Ok(line) => reader.line(line),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) if reader.out.samples > limits.max_samples => {
                return Err(Refused::Samples(limits.max_samples));
            }
            Ok(()) if reader.out.decoded_size > limits.max_decoded_size => {
                return Err(Refused::DecodedSize(limits.max_decoded_size));
            }
            Ok(()) => {}
            Err(e) => {
                if matches!(e, LineError::TooManyLabels(_)) {
                    reader.out.labels_limit_hits += 1;
                }
                reader.skip(i + 1, e);
            }
        }
    }
    Ok(reader.out)
}

struct Reader {
    format: Format,
    out: Exposition,
    /// Index of each family in `out.families`, by name.
    by_name: HashMap<String, usize>,
}

impl Reader {
    fn skip(&mut self, line: usize, e: LineError) {
        self.out.malformed += 1;
        if self.out.first_error.is_none() {
            self.out.first_error = Some((line, e));
        }
    }

    fn family(&mut self, name: &str) -> &mut Family {
        let i = match self.by_name.get(name) {
            Some(&i) => i,
            None => {
                self.out.decoded_size += std::mem::size_of::<Family>() + 2 * string_cost(name);
                self.out.families.push(Family {
                    name: name.to_owned(),
                    kind: FamilyType::Untyped,
                    unit: String::new(),
                    samples: Vec::new(),
                });
                self.by_name
                    .insert(name.to_owned(), self.out.families.len() - 1);
                self.out.families.len() - 1
            }
        };
        &mut self.out.families[i]
    }

    fn line(&mut self, line: Line<'_>) -> Result<(), LineError> {
        match line {
            Line::Nothing | Line::Eof => Ok(()),
            Line::Help(name) => {
                self.family(name);
                Ok(())
            }
            Line::Type(name, kind) => {
                let format = self.format;
                let kind = FamilyType::parse(kind, format)
                    .ok_or_else(|| LineError::BadType(kind.to_owned()))?;
                let family = self.family(name);
                if !family.samples.is_empty() {
                    return Err(LineError::LateMetadata);
                }
                family.kind = kind;
                Ok(())
            }
            Line::Unit(name, unit) => {
                let family = self.family(name);
                if !family.samples.is_empty() {
                    return Err(LineError::LateMetadata);
                }
                family.unit = unit.to_owned();
                Ok(())
            }
            Line::Sample(s) => self.sample(s),
        }
    }

    /// The family a sample name belongs to, and what the sample is: the
    /// family of that very name if its type has a sample without suffix,
    /// else a typed family whose name is the sample's without a suffix of
    /// its type, else a new untyped family.
    fn find(&self, name: &str) -> Option<(usize, Part)> {
        let format = self.format;
        if let Some(&i) = self.by_name.get(name) {
            let kind = self.out.families[i].kind;
            if let Some((_, part)) = kind.suffixes(format).iter().find(|(s, _)| s.is_empty()) {
                return Some((i, part.clone()));
            }
        }
        let stem_end = name.rfind('_')?;
        let stem = &name[..stem_end];
        let suffix = &name[stem_end..];
        let &i = self.by_name.get(stem)?;
        let kind = self.out.families[i].kind;
        kind.suffixes(format)
            .iter()
            .find(|(s, _)| *s == suffix)
            .map(|(_, part)| (i, part.clone()))
    }

    fn sample(&mut self, s: RawSample<'_>) -> Result<(), LineError> {
        let (i, part) = match self.find(s.name) {
            Some(found) => found,
            None => {
                self.family(s.name);
                (self.by_name[s.name], Part::Value)
            }
        };
        let family = &mut self.out.families[i];
        let mut labels = s.labels;
        let part = match (family.kind, part) {
            (FamilyType::Histogram | FamilyType::GaugeHistogram, Part::Value) => Part::Bucket(
                take_number(&mut labels, "le").ok_or(LineError::MissingLabel("bucket", "le"))?,
            ),
            (FamilyType::Summary, Part::Value) => Part::Quantile(
                take_number(&mut labels, "quantile")
                    .ok_or(LineError::MissingLabel("quantile", "quantile"))?,
            ),
            (FamilyType::StateSet, Part::Value) => {
                let at = labels
                    .iter()
                    .position(|(k, _)| *k == family.name)
                    .ok_or(LineError::MissingLabel("stateset", "<family name>"))?;
                Part::State(labels.remove(at).1)
            }
            (_, part) => part,
        };
        self.out.decoded_size += std::mem::size_of::<Sample>()
            + labels
                .iter()
                .map(|(k, v)| {
                    std::mem::size_of::<(String, String)>() + string_cost(k) + string_cost(v)
                })
                .sum::<usize>();
        family.samples.push(Sample {
            part,
            labels,
            value: s.value,
            timestamp_ns: s.timestamp_ns,
        });
        self.out.samples += 1;
        Ok(())
    }
}

/// Remove label `key` and read its value as a number (`+Inf` included).
fn take_number(labels: &mut Vec<(String, String)>, key: &str) -> Option<f64> {
    let at = labels.iter().position(|(k, _)| k == key)?;
    let v = line::parse_value(&labels[at].1).filter(|v| !v.is_nan())?;
    labels.remove(at);
    Some(v)
}
