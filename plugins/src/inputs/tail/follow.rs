//! Following one file: reading what was appended since the last look,
//! line by line, and noticing rotation: a new file under the name (the old
//! one, renamed or deleted, is read to its end first, then the new one
//! from its start), a truncation (read again from the start), a file gone.

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use tokio::net::unix::pipe;

use super::multiline::Joiner;
use crate::lines::LineSplitter;

/// Bytes read at once.
const CHUNK: usize = 64 << 10;

/// Bytes read from one file per call of [`Follower::read`]: the rest
/// waits for the next tick, so that a huge file without newlines cannot
/// hold the loop.
const MAX_BYTES_PER_READ: u64 = 1 << 20;

/// A file's identity: device and inode.
pub type FileId = (u64, u64);

/// Where bytes come from.
enum Source {
    File(File),
    Pipe(pipe::Receiver),
}

/// One followed file.
pub struct Follower {
    /// The name followed (also the `path` tag).
    pub path: PathBuf,
    /// The identity of the file being read (the old one while a rotated
    /// file is read to its end).
    pub id: FileId,
    source: Source,
    /// Read position.
    pos: u64,
    /// Just past the last complete line given out.
    line_end: u64,
    splitter: LineSplitter,
    pub joiner: Option<Joiner>,
    /// Read to the end, then dropped (a rotated file found at start).
    pub drain_only: bool,
    /// The name now holds another file (or none): read this one to its
    /// end, then switch.
    rotated: bool,
    chunk: Vec<u8>,
}

/// What one [`Follower::read`] did.
#[derive(Debug, Default)]
pub struct Read {
    pub lines: usize,
    pub too_long: u64,
    /// The follower is done (a drain at its end, a file gone for good).
    pub finished: bool,
    /// A rotated file read to its end and left for the new one: its
    /// identity and length.
    pub left: Option<(FileId, u64)>,
}

/// A file's identity and length.
pub fn identify(path: &Path) -> std::io::Result<(FileId, u64)> {
    let m = std::fs::metadata(path)?;
    Ok(((m.dev(), m.ino()), m.len()))
}

impl Follower {
    /// Follow the file at `path` from `offset`.
    pub fn open(
        path: &Path,
        offset: u64,
        max_line: usize,
        joiner: Option<Joiner>,
    ) -> std::io::Result<Self> {
        let file = File::open(path)?;
        let m = file.metadata()?;
        Ok(Self::new(
            path,
            (m.dev(), m.ino()),
            Source::File(file),
            offset,
            max_line,
            joiner,
        ))
    }

    /// Read the named pipe at `path` (opened read-write, so that it never
    /// ends when a writer closes).
    pub fn open_pipe(
        path: &Path,
        max_line: usize,
        joiner: Option<Joiner>,
    ) -> std::io::Result<Self> {
        let rx = pipe::OpenOptions::new()
            .read_write(true)
            .open_receiver(path)?;
        Ok(Self::new(
            path,
            (0, 0),
            Source::Pipe(rx),
            0,
            max_line,
            joiner,
        ))
    }

    fn new(
        path: &Path,
        id: FileId,
        source: Source,
        offset: u64,
        max_line: usize,
        joiner: Option<Joiner>,
    ) -> Self {
        Self {
            path: path.to_path_buf(),
            id,
            source,
            pos: offset,
            line_end: offset,
            splitter: LineSplitter::new(max_line),
            joiner,
            drain_only: false,
            rotated: false,
            chunk: vec![0; CHUNK],
        }
    }

    /// The position to resume at: the start of an event still being
    /// joined, else just past the last line given out.
    pub fn committed(&self) -> u64 {
        self.joiner
            .as_ref()
            .and_then(Joiner::pending_start)
            .unwrap_or(self.line_end)
    }

    /// How far the file was read.
    pub fn position(&self) -> u64 {
        self.pos
    }

    pub fn is_pipe(&self) -> bool {
        matches!(self.source, Source::Pipe(_))
    }

    /// Look at the name: truncated (start again), replaced or gone (read
    /// the old file to its end first).
    fn check_rotation(&mut self) {
        let Source::File(file) = &self.source else {
            return;
        };
        if self.rotated {
            return;
        }
        match identify(&self.path) {
            Ok((id, len)) if id == self.id => {
                if len < self.pos {
                    tracing::info!(path = %self.path.display(), "file truncated; reading it from the start");
                    self.pos = 0;
                    self.line_end = 0;
                    self.splitter.reset();
                    if let Some(j) = &mut self.joiner {
                        j.take();
                    }
                }
            }
            Ok(_) => self.rotated = true,
            Err(_) => {
                // Gone: the old file may still grow through a writer's
                // handle; keep reading it while its name is empty.
                let _ = file;
            }
        }
    }

    /// Read what is there, at most until `budget` lines were given out
    /// (one chunk more at most); `event` gets each line (or joined event).
    pub fn read(&mut self, budget: usize, mut event: impl FnMut(&[u8])) -> std::io::Result<Read> {
        self.check_rotation();
        let mut read = Read::default();
        let started_at = self.pos;
        loop {
            if read.lines >= budget || self.pos - started_at >= MAX_BYTES_PER_READ {
                return Ok(read);
            }
            let n = match &self.source {
                Source::File(f) => f.read_at(&mut self.chunk, self.pos)?,
                Source::Pipe(rx) => match rx.try_read(&mut self.chunk) {
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => 0,
                    Err(e) => return Err(e),
                },
            };
            if n == 0 {
                break;
            }
            let base = self.pos;
            let mut stop_at = None;
            let (line_end, joiner, lines) = (&mut self.line_end, &mut self.joiner, &mut read.lines);
            read.too_long += self.splitter.push(&self.chunk[..n], |line, end| {
                if stop_at.is_some() {
                    return;
                }
                if *lines + 1 >= budget {
                    stop_at = Some(base + end as u64);
                }
                let start = *line_end;
                *line_end = base + end as u64;
                *lines += 1;
                match joiner {
                    Some(j) => {
                        if let Some(e) = j.line(line, start) {
                            event(&e);
                        }
                    }
                    None => event(line),
                }
            });
            if let Some(stop) = stop_at {
                // The budget is spent: what follows is read next time.
                self.pos = stop;
                self.line_end = stop;
                self.splitter.reset();
                return Ok(read);
            }
            if !self.splitter.pending() {
                // The chunk ended at a line's end (perhaps a skipped long
                // line's, which gave out nothing).
                self.line_end = base + n as u64;
            }
            self.pos += n as u64;
        }
        if self.rotated {
            // The old file is read to its end: its last line ends there.
            self.finish(&mut event);
            if self.drain_only {
                read.finished = true;
                return Ok(read);
            }
            match Self::open(&self.path, 0, usize::MAX, None) {
                Ok(new) => {
                    tracing::info!(path = %self.path.display(), "file rotated; reading the new one from the start");
                    read.left = Some((self.id, self.pos));
                    self.source = new.source;
                    self.id = new.id;
                    self.pos = 0;
                    self.line_end = 0;
                    self.rotated = false;
                }
                Err(_) => read.finished = !self.path.exists(),
            }
        } else if self.drain_only {
            self.finish(&mut event);
            read.finished = true;
        }
        Ok(read)
    }

    /// Give out what is held: the last line without a newline (when the
    /// file is complete) and the event being joined.
    pub fn finish(&mut self, mut event: impl FnMut(&[u8])) {
        let start = self.line_end;
        let mut last = None;
        self.splitter.finish(|line| last = Some(line.to_vec()));
        if let Some(line) = last {
            self.line_end = self.pos;
            match &mut self.joiner {
                Some(j) => {
                    if let Some(e) = j.line(&line, start) {
                        event(&e);
                    }
                }
                None => event(&line),
            }
        }
        if let Some(e) = self.joiner.as_mut().and_then(Joiner::take) {
            event(&e);
        }
    }

    /// Give out an event that waited past the multiline timeout.
    pub fn flush_expired(&mut self, event: impl FnOnce(&[u8])) {
        if let Some(j) = &mut self.joiner
            && j.expired()
            && let Some(e) = j.take()
        {
            event(&e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_read_is_bounded_in_bytes_without_newlines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, vec![b'x'; 8 << 20]).unwrap();
        let mut f = Follower::open(&path, 0, 1024, None).unwrap();
        let r = f.read(1000, |_| {}).unwrap();
        assert_eq!(r.lines, 0);
        assert!(
            f.position() <= MAX_BYTES_PER_READ + CHUNK as u64,
            "{}",
            f.position()
        );
        f.read(1000, |_| {}).unwrap();
        assert!(f.position() > MAX_BYTES_PER_READ);
    }
}
