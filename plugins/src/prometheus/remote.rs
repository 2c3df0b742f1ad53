//! Prometheus remote write 1.0 on the wire: the `prompb` messages as
//! `prost` structs (field numbers from Prometheus's `prompb/remote.proto`
//! and `prompb/types.proto`), block-format snappy, and a bounded reader
//! that walks a `WriteRequest` one series at a time.
//!
//! The messages are derived by hand, not generated: remote write 1.0 needs
//! five small messages, and no maintained crate ships exactly these protos
//! without a build-time `protoc`. Exemplars (`TimeSeries` field 3) are not
//! declared: prost skips them. Native histograms (field 4) are not read
//! either, but a series carrying any is a bad series (counted, the request
//! answered 400), so the sender does not think they landed.
//!
//! Reading never trusts the peer: the snappy header's length is checked
//! against a limit before anything is allocated, each series is decoded
//! alone (a malformed one costs only itself), and a series with more labels
//! than allowed is skipped before its labels are decoded.

use prost::Message;
use prost::bytes::Buf;
use prost::encoding::{WireType, decode_key, decode_varint};

/// `prometheus.WriteRequest` (remote.proto): `timeseries = 1`, field 2
/// reserved, `metadata = 3`.
#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    /// Field 1.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    /// Field 3.
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// `prometheus.TimeSeries` (types.proto): `labels = 1`, `samples = 2`;
/// `exemplars = 3` is skipped when read, `histograms = 4` makes the
/// series bad (see [`for_each_series`]).
#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    /// Field 1: sorted by name, `__name__` among them.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Field 2.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// `prometheus.Label` (types.proto): `name = 1`, `value = 2`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Message)]
pub struct Label {
    /// Field 1.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Field 2.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample` (types.proto): `value = 1` (double), `timestamp = 2`
/// (int64, milliseconds since the epoch).
#[derive(Clone, Copy, PartialEq, Message)]
pub struct Sample {
    /// Field 1.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Field 2, in milliseconds.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// `prometheus.MetricMetadata` (types.proto): `type = 1`,
/// `metric_family_name = 2`, `help = 4`, `unit = 5`.
#[derive(Clone, PartialEq, Message)]
pub struct MetricMetadata {
    /// Field 1: `MetricType` (0 unknown, 1 counter, 2 gauge, 3 histogram,
    /// 4 gauge histogram, 5 summary, 6 info, 7 stateset).
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// Field 2.
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    /// Field 4.
    #[prost(string, tag = "4")]
    pub help: String,
    /// Field 5.
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// `MetricMetadata.MetricType` values graft writes.
pub mod metric_type {
    /// `UNKNOWN`.
    pub const UNKNOWN: i32 = 0;
    /// `COUNTER`.
    pub const COUNTER: i32 = 1;
    /// `GAUGE`.
    pub const GAUGE: i32 = 2;
    /// `HISTOGRAM`.
    pub const HISTOGRAM: i32 = 3;
    /// `SUMMARY`.
    pub const SUMMARY: i32 = 5;
}

/// Why a remote write body could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    /// The snappy header announces more than the limit.
    #[error("snappy body decompresses to {size} bytes, more than the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    /// Not block-format snappy.
    #[error("not a snappy block: {0}")]
    Snappy(String),
    /// The samples times their labels (plus one) exceed the budget: the
    /// metrics they would become are far larger than the body.
    #[error(
        "{cells} samples x (labels + 1) in one request, more than the limit of {limit}; send smaller requests"
    )]
    TooManySamples { cells: u64, limit: u64 },
    /// The outer `WriteRequest` framing is broken.
    #[error("not a remote write request: {0}")]
    Protobuf(String),
}

/// Compress `data` as one snappy block (what remote write sends).
pub fn compress(data: &[u8]) -> Vec<u8> {
    // Compressing into a Vec cannot fail for inputs under 4 GiB; a larger
    // one is not a remote write request anyone accepts either.
    snap::raw::Encoder::new()
        .compress_vec(data)
        .unwrap_or_default()
}

/// Decompress one snappy block of at most `limit` bytes once decompressed;
/// the length in its header is checked before anything is allocated.
pub fn decompress(data: &[u8], limit: usize) -> Result<Vec<u8>, RemoteError> {
    let size = snap::raw::decompress_len(data).map_err(|e| RemoteError::Snappy(e.to_string()))?;
    if size > limit {
        return Err(RemoteError::TooLarge { size, limit });
    }
    snap::raw::Decoder::new()
        .decompress_vec(data)
        .map_err(|e| RemoteError::Snappy(e.to_string()))
}

/// One series of a request, as [`for_each_series`] hands it over.
#[derive(Debug)]
pub enum Series {
    /// Decoded.
    Read(TimeSeries),
    /// Skipped: more than `max_labels` labels (counted, not decoded).
    TooManyLabels(usize),
    /// Skipped: its bytes are not a `TimeSeries`.
    Malformed(String),
}

/// Walk the `timeseries` of an uncompressed `WriteRequest`, decoding one
/// series at a time and handing it to `each`; metadata and unknown fields
/// are skipped. Only a broken outer framing fails the whole request.
pub fn for_each_series(
    mut body: &[u8],
    max_labels: usize,
    mut each: impl FnMut(Series),
) -> Result<(), RemoteError> {
    let broken = |e: prost::DecodeError| RemoteError::Protobuf(e.to_string());
    while body.has_remaining() {
        let (tag, wire) = decode_key(&mut body).map_err(broken)?;
        match (tag, wire) {
            (1, WireType::LengthDelimited) => {
                let bytes = length_delimited(&mut body)?;
                each(read_series(bytes, max_labels));
            }
            _ => skip(wire, &mut body)?,
        }
    }
    Ok(())
}

/// What the series of an uncompressed `WriteRequest` would become, counted
/// without decoding anything: the sum over series of samples x (labels +
/// 1), each tag and field of each metric. Series with more than
/// `max_labels` labels are left out (they are skipped, not read); series
/// that cannot be walked count as nothing (they are refused when read),
/// and the count stops where the outer framing breaks (the reader reports
/// it).
pub fn cells(mut body: &[u8], max_labels: usize) -> u64 {
    let mut total = 0u64;
    while body.has_remaining() {
        let Ok((tag, wire)) = decode_key(&mut body) else {
            break;
        };
        match (tag, wire) {
            (1, WireType::LengthDelimited) => {
                let Ok(mut series) = length_delimited(&mut body) else {
                    break;
                };
                let (mut labels, mut samples) = (0u64, 0u64);
                let mut walked = true;
                while series.has_remaining() {
                    let Ok((tag, wire)) = decode_key(&mut series) else {
                        walked = false;
                        break;
                    };
                    match (tag, wire) {
                        (1, WireType::LengthDelimited) => labels += 1,
                        (2, WireType::LengthDelimited) => samples += 1,
                        _ => {}
                    }
                    if skip(wire, &mut series).is_err() {
                        walked = false;
                        break;
                    }
                }
                if walked && labels <= max_labels as u64 {
                    total = total.saturating_add(samples.saturating_mul(labels + 1));
                }
            }
            _ => {
                if skip(wire, &mut body).is_err() {
                    break;
                }
            }
        }
    }
    total
}

/// Whether `body` reads as a protobuf message at its outer level (every
/// key and length holds), without decoding any field.
pub fn is_framed(mut body: &[u8]) -> bool {
    while body.has_remaining() {
        let Ok((_, wire)) = decode_key(&mut body) else {
            return false;
        };
        if skip(wire, &mut body).is_err() {
            return false;
        }
    }
    true
}

/// The metadata of an uncompressed `WriteRequest` (series skipped).
pub fn metadata(mut body: &[u8]) -> Result<Vec<MetricMetadata>, RemoteError> {
    let mut out = Vec::new();
    while body.has_remaining() {
        let (tag, wire) =
            decode_key(&mut body).map_err(|e| RemoteError::Protobuf(e.to_string()))?;
        match (tag, wire) {
            (3, WireType::LengthDelimited) => {
                let bytes = length_delimited(&mut body)?;
                if let Ok(m) = MetricMetadata::decode(bytes) {
                    out.push(m);
                }
            }
            _ => skip(wire, &mut body)?,
        }
    }
    Ok(out)
}

fn read_series(bytes: &[u8], max_labels: usize) -> Series {
    match count_labels(bytes) {
        Err(e) => return Series::Malformed(e.to_string()),
        Ok((n, _)) if n > max_labels => return Series::TooManyLabels(n),
        // Not read: said, so that the sender does not think they landed.
        Ok((_, h)) if h > 0 => {
            return Series::Malformed(format!(
                "a series with {h} native histograms, which graft does not read"
            ));
        }
        Ok(_) => {}
    }
    match TimeSeries::decode(bytes) {
        Ok(s) => Series::Read(s),
        Err(e) => Series::Malformed(e.to_string()),
    }
}

/// How many `labels` (field 1) and native `histograms` (field 4) a
/// series' bytes hold, without decoding them.
fn count_labels(mut bytes: &[u8]) -> Result<(usize, usize), RemoteError> {
    let (mut n, mut histograms) = (0, 0);
    while bytes.has_remaining() {
        let (tag, wire) =
            decode_key(&mut bytes).map_err(|e| RemoteError::Protobuf(e.to_string()))?;
        match (tag, wire) {
            (1, WireType::LengthDelimited) => n += 1,
            (4, WireType::LengthDelimited) => histograms += 1,
            _ => {}
        }
        skip(wire, &mut bytes)?;
    }
    Ok((n, histograms))
}

fn length_delimited<'a>(body: &mut &'a [u8]) -> Result<&'a [u8], RemoteError> {
    let len = decode_varint(body).map_err(|e| RemoteError::Protobuf(e.to_string()))?;
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > body.len() {
        return Err(RemoteError::Protobuf(format!(
            "a field of {len} bytes where {} remain",
            body.len()
        )));
    }
    let (field, rest) = body.split_at(len);
    *body = rest;
    Ok(field)
}

/// Skip one field's value. Groups (deprecated, never in prompb) are refused.
fn skip(wire: WireType, body: &mut &[u8]) -> Result<(), RemoteError> {
    let fixed = |body: &mut &[u8], n: usize| {
        if body.len() < n {
            return Err(RemoteError::Protobuf("truncated field".into()));
        }
        body.advance(n);
        Ok(())
    };
    match wire {
        WireType::Varint => decode_varint(body)
            .map(drop)
            .map_err(|e| RemoteError::Protobuf(e.to_string())),
        WireType::SixtyFourBit => fixed(body, 8),
        WireType::ThirtyTwoBit => fixed(body, 4),
        WireType::LengthDelimited => length_delimited(body).map(drop),
        WireType::StartGroup | WireType::EndGroup => Err(RemoteError::Protobuf(
            "groups are not part of prompb".into(),
        )),
    }
}

#[cfg(test)]
#[path = "remote_tests.rs"]
mod tests;
