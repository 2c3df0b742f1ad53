//! The committed cursor: where the written part of the log ends, kept in a
//! small file of two fixed-size slots that are overwritten in turn, each
//! `seq u64 | segment u64 | offset u64 | skip u64 | crc32 u32` (of the 32
//! bytes before). A torn overwrite damages one slot; the other still holds
//! the previous cursor, so a crash replays a little more, never less.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::frame::Pos;

/// Where the committed position is kept.
pub const CURSOR_FILE: &str = "cursor";
const SLOT: usize = 4 * 8 + 4;

/// What the cursor file held when it was opened.
#[derive(Debug, PartialEq, Eq)]
pub enum Cursor {
    /// No cursor yet: everything in the directory waits.
    Missing,
    Valid(Pos),
    /// No intact slot: everything in the directory is replayed.
    Corrupt,
}

/// The open cursor file.
pub struct CursorFile {
    file: File,
    seq: u64,
}

impl CursorFile {
    /// Open (or create) the cursor file of `dir` and read it.
    pub fn open(dir: &Path) -> io::Result<(Self, Cursor)> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(CURSOR_FILE))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let best = bytes
            .chunks_exact(SLOT)
            .take(2)
            .filter_map(parse_slot)
            .max_by_key(|(seq, _)| *seq);
        let cursor = match best {
            Some((_, pos)) => Cursor::Valid(pos),
            None if bytes.is_empty() => Cursor::Missing,
            None => Cursor::Corrupt,
        };
        let seq = best.map_or(0, |(seq, _)| seq);
        Ok((Self { file, seq }, cursor))
    }

    /// Overwrite the older slot with `pos`; with `sync`, it reaches the disk.
    pub fn save(&mut self, pos: Pos, sync: bool) -> io::Result<()> {
        let seq = self.seq + 1;
        let mut slot = Vec::with_capacity(SLOT);
        for w in [seq, pos.segment, pos.offset, pos.skip] {
            slot.extend_from_slice(&w.to_le_bytes());
        }
        slot.extend_from_slice(&crc32fast::hash(&slot).to_le_bytes());
        self.file.write_all_at(&slot, (seq % 2) * SLOT as u64)?;
        if sync {
            self.file.sync_data()?;
        }
        self.seq = seq;
        Ok(())
    }
}

fn parse_slot(slot: &[u8]) -> Option<(u64, Pos)> {
    let word = |i: usize| {
        let mut w = [0; 8];
        w.copy_from_slice(&slot[i * 8..i * 8 + 8]);
        u64::from_le_bytes(w)
    };
    let crc = u32::from_le_bytes([slot[32], slot[33], slot[34], slot[35]]);
    (crc32fast::hash(&slot[..32]) == crc).then(|| {
        let pos = Pos {
            segment: word(1),
            offset: word(2),
            skip: word(3),
        };
        (word(0), pos)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(segment: u64) -> Pos {
        Pos {
            segment,
            offset: 4096,
            skip: 17,
        }
    }

    #[test]
    fn the_newest_intact_slot_wins() {
        let dir = tempfile::tempdir().unwrap();
        let (mut file, found) = CursorFile::open(dir.path()).unwrap();
        assert_eq!(found, Cursor::Missing);
        for s in 1..=5 {
            file.save(pos(s), s % 2 == 0).unwrap();
        }
        drop(file);
        let (_, found) = CursorFile::open(dir.path()).unwrap();
        assert_eq!(found, Cursor::Valid(pos(5)));
        // A torn write of the newest slot leaves the one before.
        let path = dir.path().join(CURSOR_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[SLOT + 9] ^= 4;
        std::fs::write(&path, &bytes).unwrap();
        let (mut file, found) = CursorFile::open(dir.path()).unwrap();
        assert_eq!(found, Cursor::Valid(pos(4)));
        file.save(pos(6), true).unwrap();
        drop(file);
        assert_eq!(
            CursorFile::open(dir.path()).unwrap().1,
            Cursor::Valid(pos(6))
        );
        std::fs::write(&path, b"garbage").unwrap();
        assert_eq!(CursorFile::open(dir.path()).unwrap().1, Cursor::Corrupt);
    }
}
