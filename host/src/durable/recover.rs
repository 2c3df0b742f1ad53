//! Replay on open: the segments after the committed cursor are read back,
//! every record's length, checksum and batch checked; torn or damaged
//! records are counted, logged and cut out of their segment (rewritten
//! without them), so that everything after the cursor is a valid record.

use std::collections::VecDeque;
use std::fs;
use std::io::Write;
use std::ops::Range;
use std::path::Path;

use super::Recovery;
use super::cursor::{Cursor, CursorFile};
use super::frame::Segment;
use super::frame::{self, Frame, Pos};

/// The log as found on disk.
pub struct Scan {
    pub segments: VecDeque<Segment>,
    /// The first waiting record (and how much of it was written).
    pub read: Pos,
    /// Metrics waiting after `read`.
    pub waiting: u64,
    /// The id the next new segment gets.
    pub next_id: u64,
    pub recovery: Recovery,
    pub cursor_file: CursorFile,
}

/// Read back every segment of `dir` from the committed cursor on.
pub fn scan(dir: &Path) -> std::io::Result<Scan> {
    let (cursor_file, cursor) = CursorFile::open(dir)?;
    let cursor = match cursor {
        Cursor::Valid(pos) => pos,
        Cursor::Missing => Pos::default(),
        Cursor::Corrupt => {
            tracing::warn!(dir = %dir.display(), "the disk buffer's cursor file is damaged; every segment is replayed");
            Pos::default()
        }
    };
    let ids = frame::list_segments(dir)?;
    let next_id = ids
        .last()
        .map_or(1, |last| last + 1)
        .max(cursor.segment + 1);
    let mut scan = Scan {
        segments: VecDeque::new(),
        read: Pos {
            segment: next_id,
            ..Pos::default()
        },
        waiting: 0,
        next_id,
        recovery: Recovery::default(),
        cursor_file,
    };
    let mut removed = false;
    for id in ids {
        let path = frame::segment_path(dir, id);
        if id < cursor.segment {
            fs::remove_file(&path)?;
            removed = true;
            continue;
        }
        let mut data = fs::read(&path)?;
        let from = if id == cursor.segment {
            (cursor.offset as usize).min(data.len())
        } else {
            0
        };
        let found = scan_segment(&data, from);
        for (offset, bytes) in &found.corrupt {
            tracing::warn!(dir = %dir.display(), segment = id, offset, bytes,
                "torn or corrupt record in the disk buffer; skipped, the records around it are kept");
            scan.recovery.corrupt_records += 1;
            scan.recovery.corrupt_bytes += *bytes as u64;
        }
        if found.metrics == 0 {
            fs::remove_file(&path)?;
            removed = true;
            continue;
        }
        if !found.corrupt.is_empty() {
            data = rewrite(dir, id, &data, from, &found.valid)?;
        }
        if scan.segments.is_empty() {
            // The cursor's skip belongs to the record it points at.
            let skip = if id == cursor.segment && found.first_at == Some(from) {
                cursor.skip.min(found.first_metrics)
            } else {
                0
            };
            scan.read = Pos {
                segment: id,
                offset: from as u64,
                skip,
            };
            scan.waiting += found.metrics - skip;
        } else {
            scan.waiting += found.metrics;
        }
        scan.segments.push_back(Segment {
            id,
            bytes: data.len() as u64,
            metrics: found.metrics,
            first_ns: found.first_ns,
        });
        scan.recovery.records += found.records;
    }
    if removed {
        frame::sync_dir(dir)?;
    }
    scan.recovery.metrics = scan.waiting;
    Ok(scan)
}

/// What one segment holds from some offset on.
#[derive(Debug, Default)]
pub(super) struct Found {
    records: u64,
    pub metrics: u64,
    /// Where the first valid record starts, and its metrics.
    first_at: Option<usize>,
    first_metrics: u64,
    first_ns: Option<i64>,
    valid: Vec<Range<usize>>,
    /// (offset, bytes) of each damaged stretch.
    corrupt: Vec<(usize, usize)>,
}

/// The valid record at `at`, if any: its length and metrics.
pub(super) fn record_at(data: &[u8], at: usize) -> Option<(usize, frame::RecordHead)> {
    // A cheap look at the codec's version byte first: resynchronising tries
    // every offset, and most fail here before any checksum is computed.
    let version = data.get(at + frame::FRAME_HEADER + frame::PAYLOAD_HEADER);
    if !version.is_some_and(|&v| graft_core::batch::codec::is_version(v)) {
        return None;
    }
    match frame::check_frame(&data[at..]) {
        Frame::Valid { payload, len } => frame::decode_payload(payload)
            .ok()
            .map(|(head, _)| (len, head)),
        _ => None,
    }
}

pub(super) fn scan_segment(data: &[u8], from: usize) -> Found {
    let mut found = Found::default();
    let mut at = from;
    while at < data.len() {
        if let Some((len, head)) = record_at(data, at) {
            let metrics = head.metrics;
            found.records += 1;
            found.metrics += metrics;
            if found.first_at.is_none() {
                found.first_at = Some(at);
                found.first_metrics = metrics;
                found.first_ns = Some(head.appended_ns);
            }
            found.valid.push(at..at + len);
            at += len;
            continue;
        }
        // Damaged: the next valid frame, byte by byte (a damaged length
        // cannot be trusted to lead there, and could skip a good record).
        let next = (at + 1..data.len())
            .find(|&p| record_at(data, p).is_some())
            .unwrap_or(data.len());
        found.corrupt.push((at, next - at));
        at = next;
    }
    found
}

/// Replace segment `id` with its bytes before `from` and its valid records.
fn rewrite(
    dir: &Path,
    id: u64,
    data: &[u8],
    from: usize,
    valid: &[Range<usize>],
) -> std::io::Result<Vec<u8>> {
    let mut out = data[..from].to_vec();
    for r in valid {
        out.extend_from_slice(&data[r.clone()]);
    }
    let path = frame::segment_path(dir, id);
    let tmp = path.with_extension("seg.tmp");
    let mut file = fs::File::create(&tmp)?;
    file.write_all(&out)?;
    file.sync_all()?;
    fs::rename(&tmp, &path)?;
    frame::sync_dir(dir)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use graft_core::BatchBuilder;

    fn record(seq: i64, out: &mut Vec<u8>) -> usize {
        let mut b = BatchBuilder::new();
        b.metric("m", seq).field("seq", seq);
        frame::encode_record(&b.finish(), seq, out)
    }

    #[test]
    fn a_flipped_length_resynchronises_on_the_next_record() {
        let mut data = Vec::new();
        let lens: Vec<usize> = (0..4).map(|i| record(i, &mut data)).collect();
        data[lens[0] + 3] ^= 0x40; // the length of record 1
        let found = scan_segment(&data, 0);
        assert_eq!((found.records, found.metrics), (3, 3));
        assert_eq!(found.corrupt, [(lens[0], lens[1])]);
    }

    #[test]
    fn a_torn_tail_is_one_corrupt_stretch() {
        let mut data = Vec::new();
        let len = record(0, &mut data);
        record(1, &mut data);
        data.truncate(data.len() - 3);
        let found = scan_segment(&data, 0);
        assert_eq!(found.records, 1);
        assert_eq!(found.corrupt, [(len, data.len() - len)]);
    }
}
