//! One write request's body, from bytes to a batch and an answer: gzip
//! inflated (every member) up to `max_body_size`, then line protocol
//! parsed a piece at a time so that a shutdown stops it, and the bad lines
//! described as InfluxDB 1.x describes them. Pure: no I/O, so that the
//! fuzz target and the corpus test drive exactly this.

use std::sync::atomic::{AtomicBool, Ordering};

use graft_core::lineparse::{BodyParser, ParseError, ParseOptions};
use graft_core::{Batch, BatchBuilder};

use crate::listener::http::{Inflate, gunzip};

/// Bytes parsed between two looks at the stop flag.
const PARSE_PIECE: usize = 1 << 20;

/// The longest line quoted back in an answer.
const QUOTE_MAX: usize = 64 << 10;

/// Why a body was refused as a whole.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Larger than the limit once inflated.
    TooLarge,
    /// Not readable at all (broken gzip).
    Bad(String),
    /// The listener is stopping.
    Stopping,
}

/// A body read: the metrics of its good lines, its bad lines, and the
/// decoded text to quote them from.
#[derive(Debug)]
pub struct Parsed {
    pub batch: Batch,
    pub errors: Vec<ParseError>,
    pub text: Vec<u8>,
}

/// Inflate (when `gzip`) at most `limit` bytes of `raw` and parse them.
/// Stops, between pieces, once `stopping` is set.
pub fn decode_and_parse(
    raw: &[u8],
    gzip: bool,
    limit: usize,
    options: &ParseOptions,
    stopping: &AtomicBool,
) -> Result<Parsed, BodyError> {
    let text = if gzip {
        gunzip(raw, limit, stopping).map_err(|e| match e {
            Inflate::TooLarge => BodyError::TooLarge,
            Inflate::Bad(m) => BodyError::Bad(m),
            Inflate::Stopping => BodyError::Stopping,
        })?
    } else if raw.len() > limit {
        return Err(BodyError::TooLarge);
    } else {
        raw.to_vec()
    };
    let mut b = BatchBuilder::new();
    let mut parser = BodyParser::new(&text, options.clone());
    while !parser.parse_some(PARSE_PIECE, &mut b) {
        if stopping.load(Ordering::Relaxed) {
            return Err(BodyError::Stopping);
        }
    }
    let errors = parser.into_errors();
    Ok(Parsed {
        batch: b.finish(),
        errors,
        text,
    })
}

/// InfluxDB 1.x's shape: each bad line quoted (lossily where it is not
/// UTF-8), so that senders (graft's own output among them) can tell which
/// metrics were refused.
pub fn describe(errors: &[ParseError], good: usize, text: &[u8]) -> String {
    let mut m = if good > 0 {
        format!(
            "partial write: {} of {} lines could not be parsed and were dropped",
            errors.len(),
            errors.len() + good
        )
    } else {
        format!("{} lines could not be parsed", errors.len())
    };
    for e in errors.iter().take(100) {
        let end = e.span.end.min(e.span.start + QUOTE_MAX).min(text.len());
        let line = String::from_utf8_lossy(&text[e.span.start.min(end)..end]);
        m.push_str(&format!(
            "\nunable to parse '{line}': line {}: {}",
            e.line, e.reason
        ));
    }
    if errors.len() > 100 {
        m.push_str(&format!("\n... and {} more", errors.len() - 100));
    }
    m
}
