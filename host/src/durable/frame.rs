//! The disk buffer's bytes: records framed `len | crc32 | payload`, and
//! segment file names.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use graft_core::Batch;
use graft_core::batch::codec;

/// `len u32 | crc32 u32` before each payload.
pub const FRAME_HEADER: usize = 8;
/// `metrics u32 | appended unix ns i64` at the start of each payload.
pub const PAYLOAD_HEADER: usize = 12;
/// A length field beyond this is not believed (a flipped high bit).
pub const MAX_PAYLOAD: usize = 1 << 30;

/// The lock file that keeps a second graft out of the directory.
pub const LOCK_FILE: &str = "lock";

/// A place in the log: a record of a segment, and how many of its metrics
/// are already consumed. Ordered as the log is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub segment: u64,
    pub offset: u64,
    pub skip: u64,
}

/// Nanoseconds since the Unix epoch, now.
pub fn unix_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// The file of segment `id` in `dir`.
pub fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

/// The segment ids present in `dir`, oldest first.
pub fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut ids = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if entry.file_type()?.is_file()
            && let Some(stem) = name.strip_suffix(".seg")
            && stem.len() == 20
            && let Ok(id) = stem.parse()
        {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Append one framed record of `batch` to `out`; returns its length.
pub fn encode_record(batch: &Batch, appended_ns: i64, out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER]);
    out.extend_from_slice(&(batch.len() as u32).to_le_bytes());
    out.extend_from_slice(&appended_ns.to_le_bytes());
    codec::encode(batch, out);
    let payload = &out[start + FRAME_HEADER..];
    let (len, crc) = (payload.len() as u32, crc32fast::hash(payload));
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    out.len() - start
}

/// What the bytes at some offset hold.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A whole record whose checksum matches.
    Valid { payload: &'a [u8], len: usize },
    /// Fewer bytes than the header, or than the length it states.
    Short,
    /// A length no record can have.
    BadLength,
    /// A plausible length but a checksum that does not match.
    BadChecksum { len: usize },
}

/// Read the frame at the start of `bytes`.
pub fn check_frame(bytes: &[u8]) -> Frame<'_> {
    let Some(header) = bytes.get(..FRAME_HEADER) else {
        return Frame::Short;
    };
    let len = u32_at(header, 0) as usize;
    if !(PAYLOAD_HEADER..=MAX_PAYLOAD).contains(&len) {
        return Frame::BadLength;
    }
    let Some(payload) = bytes.get(FRAME_HEADER..FRAME_HEADER + len) else {
        return Frame::Short;
    };
    let len = FRAME_HEADER + len;
    if crc32fast::hash(payload) == u32_at(header, 4) {
        Frame::Valid { payload, len }
    } else {
        Frame::BadChecksum { len }
    }
}

/// A record's payload header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHead {
    pub metrics: u64,
    pub appended_ns: i64,
}

/// The payload header (the caller checked the length).
pub fn payload_head(payload: &[u8]) -> RecordHead {
    let mut ns = [0; 8];
    ns.copy_from_slice(&payload[4..PAYLOAD_HEADER]);
    RecordHead {
        metrics: u64::from(u32_at(payload, 0)),
        appended_ns: i64::from_le_bytes(ns),
    }
}

/// A checked payload as its header and batch.
pub fn decode_payload(payload: &[u8]) -> Result<(RecordHead, Batch), String> {
    if payload.len() < PAYLOAD_HEADER {
        return Err(format!("a payload of {} bytes", payload.len()));
    }
    let head = payload_head(payload);
    let batch = codec::decode(&payload[PAYLOAD_HEADER..]).map_err(|e| e.to_string())?;
    if batch.len() as u64 != head.metrics {
        return Err(format!(
            "the record says {} metrics but holds {}",
            head.metrics,
            batch.len()
        ));
    }
    Ok((head, batch))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Make renames and removals in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use graft_core::BatchBuilder;

    #[test]
    fn a_record_frames_and_checks() {
        let mut b = BatchBuilder::new();
        b.metric("m", 1).field("v", 1i64);
        let mut out = vec![7];
        let len = encode_record(&b.finish(), 42, &mut out);
        assert_eq!(out.len(), 1 + len);
        let Frame::Valid { payload, len: l } = check_frame(&out[1..]) else {
            panic!("not valid")
        };
        assert_eq!(l, len);
        let (head, batch) = decode_payload(payload).unwrap();
        assert_eq!((head.metrics, head.appended_ns, batch.len()), (1, 42, 1));
        assert_eq!(check_frame(&out[1..len]), Frame::Short);
        out[len] ^= 1;
        assert_eq!(check_frame(&out[1..]), Frame::BadChecksum { len });
        out[4] = 0xff;
        assert_eq!(check_frame(&out[1..]), Frame::BadLength);
    }
}

/// One segment file: its size and the metrics its records hold (from the
/// read position on, for the segment replay started in).
#[derive(Debug)]
pub struct Segment {
    pub id: u64,
    pub bytes: u64,
    pub metrics: u64,
    /// When its first record (from the read position on, for the segment
    /// replay started in) was appended.
    pub first_ns: Option<i64>,
}

/// Why the record at the read position could not be read back.
#[derive(Debug)]
pub enum ReadError {
    /// Reading failed; the record may well be intact: retry later.
    Io(io::Error),
    /// The bytes are there but are no record (or the file is gone).
    Damaged(String),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            // Cut short or deleted under us: no retry brings it back.
            io::ErrorKind::UnexpectedEof | io::ErrorKind::NotFound => Self::Damaged(e.to_string()),
            _ => Self::Io(e),
        }
    }
}
