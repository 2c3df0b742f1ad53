//! Parsing InfluxDB line protocol into a batch, line by line from bytes,
//! with InfluxDB 1.x's meaning (see [`line`] for the rules).
//!
//! A body is split into lines first ([`lines`]); each line is then checked
//! for UTF-8 and parsed on its own, in time linear in its length. (A line
//! that runs over several newlines, kept going by a quote or a backslash as
//! in 1.x, and is not UTF-8 is read one physical line at a time instead, so
//! that random bytes cannot take the good lines after them down.) A line
//! that cannot be read (not UTF-8, bad syntax, more tags or fields than the
//! options allow) is reported with its number, its byte range and a short
//! reason, and skipped; every other line is kept.

mod line;
mod lines;

use crate::builder::BatchBuilder;

/// Unit of the timestamps in the text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    #[default]
    Nanoseconds,
    Microseconds,
    Milliseconds,
    Seconds,
    Minutes,
    Hours,
}

impl Precision {
    /// Nanoseconds in one unit.
    pub fn nanos(self) -> i64 {
        match self {
            Precision::Nanoseconds => 1,
            Precision::Microseconds => 1_000,
            Precision::Milliseconds => 1_000_000,
            Precision::Seconds => 1_000_000_000,
            Precision::Minutes => 60_000_000_000,
            Precision::Hours => 3_600_000_000_000,
        }
    }

    /// From the `precision` query parameter: `ns`/`n`, `us`/`u`, `ms`, `s`,
    /// and InfluxDB 1.x's `m` and `h`.
    pub fn from_param(s: &str) -> Option<Self> {
        Some(match s {
            "" | "n" | "ns" => Precision::Nanoseconds,
            "u" | "us" | "µs" => Precision::Microseconds,
            "ms" => Precision::Milliseconds,
            "s" => Precision::Seconds,
            "m" => Precision::Minutes,
            "h" => Precision::Hours,
            _ => return None,
        })
    }
}

/// What kind of problem made a line unreadable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// The line does not follow the grammar.
    Syntax,
    /// The line is not valid UTF-8.
    NotUtf8,
    /// The line has more tags than [`ParseOptions::max_tags`].
    TooManyTags,
    /// The line has more fields than [`ParseOptions::max_fields`].
    TooManyFields,
}

/// A line that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    /// 1-based line number in the text.
    pub line: usize,
    pub kind: ParseErrorKind,
    pub reason: String,
    /// Where the line is in the text (bytes, without leading spaces and
    /// without its newline).
    pub span: std::ops::Range<usize>,
}

/// How to read a body.
#[derive(Clone, Debug, Default)]
pub struct ParseOptions {
    /// Unit of the timestamps in the text.
    pub precision: Precision,
    /// Timestamp (nanoseconds) of lines that have none.
    pub default_time: i64,
    /// Most tags one line may have; 0 means no limit.
    pub max_tags: usize,
    /// Most fields one line may have; 0 means no limit.
    pub max_fields: usize,
}

/// Parses a body a piece at a time, so that a caller can stop between
/// pieces (a shutdown) and a large body never holds a thread for long.
pub struct BodyParser<'a> {
    body: &'a [u8],
    lines: lines::Lines<'a>,
    options: ParseOptions,
    scratch: line::Scratch,
    errors: Vec<ParseError>,
}

impl<'a> BodyParser<'a> {
    /// A parser over `body`; nothing is read yet.
    pub fn new(body: &'a [u8], options: ParseOptions) -> Self {
        Self {
            body,
            lines: lines::Lines::new(body),
            options,
            scratch: line::Scratch::default(),
            errors: Vec::new(),
        }
    }

    /// Parse whole lines into `out` until at least `budget` bytes of the
    /// body were read or the body ends. True when the body is done.
    pub fn parse_some(&mut self, budget: usize, out: &mut BatchBuilder) -> bool {
        let stop_at = self.lines.position().saturating_add(budget);
        while self.lines.position() < stop_at {
            let Some(l) = self.lines.next() else {
                return true;
            };
            self.one(l, out);
        }
        self.lines.position() >= self.body.len()
    }

    /// Bytes of the body read so far.
    pub fn position(&self) -> usize {
        self.lines.position().min(self.body.len())
    }

    /// The lines that could not be read so far.
    pub fn errors(&self) -> &[ParseError] {
        &self.errors
    }

    /// The lines that could not be read.
    pub fn into_errors(self) -> Vec<ParseError> {
        self.errors
    }

    fn one(&mut self, l: lines::Line, out: &mut BatchBuilder) {
        let raw = &self.body[l.start..l.end];
        if memchr::memchr(b'\n', raw).is_some() && std::str::from_utf8(raw).is_err() {
            // A line that runs over newlines (a quote or a backslash kept
            // it going) and is not UTF-8 anyway is garbage: read each of
            // its physical lines on its own, so that it cannot take good
            // lines down with it.
            let mut start = l.start;
            for (n, piece) in raw.split(|&c| c == b'\n').enumerate() {
                let mut end = start + piece.len();
                if end > start && self.body[end - 1] == b'\r' {
                    end -= 1;
                }
                self.physical(l.number + n, start..end, out);
                start += piece.len() + 1;
            }
            return;
        }
        self.physical(l.number, l.start..l.end, out);
    }

    /// Parse the line at `span` of the body.
    fn physical(&mut self, number: usize, span: std::ops::Range<usize>, out: &mut BatchBuilder) {
        let raw = &self.body[span.clone()];
        let start = raw
            .iter()
            .position(|&c| !matches!(c, b' ' | b'\t' | b'\0'))
            .unwrap_or(raw.len());
        let content = &raw[start..];
        if content.is_empty() || content[0] == b'#' {
            return;
        }
        let result = match std::str::from_utf8(content) {
            Err(_) => Err((ParseErrorKind::NotUtf8, "the line is not valid UTF-8")),
            Ok(text) => line::parse_line(text, &self.options, out, &mut self.scratch),
        };
        if let Err((kind, reason)) = result {
            self.errors.push(ParseError {
                line: number,
                kind,
                reason: reason.to_owned(),
                // Quoted as 1.x quotes it: without the leading spaces.
                span: span.start + start..span.end,
            });
        }
    }
}

/// Parse all of `body` into `out`. Returns the lines that could not be
/// parsed; every other line is in `out`.
pub fn parse_bytes_into(
    body: &[u8],
    options: &ParseOptions,
    out: &mut BatchBuilder,
) -> Vec<ParseError> {
    let mut p = BodyParser::new(body, options.clone());
    while !p.parse_some(usize::MAX, out) {}
    p.into_errors()
}

/// Parse `text` into `out`, without limits. Lines without a timestamp get
/// `default_time` (nanoseconds). Returns the lines that could not be
/// parsed; every other line is in `out`.
pub fn parse_into(
    text: &str,
    precision: Precision,
    default_time: i64,
    out: &mut BatchBuilder,
) -> Vec<ParseError> {
    let options = ParseOptions {
        precision,
        default_time,
        ..ParseOptions::default()
    };
    parse_bytes_into(text.as_bytes(), &options, out)
}

#[cfg(test)]
#[path = "lineparse_tests.rs"]
mod tests;
