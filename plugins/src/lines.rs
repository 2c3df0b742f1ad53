//! Splitting a byte stream (a program's stdout, a followed file) into
//! lines with a maximum length: a longer line is skipped to its end and
//! counted, the lines around it are kept.

/// Splits bytes pushed in arbitrary chunks into `\n`-terminated lines.
#[derive(Debug)]
pub struct LineSplitter {
    max: usize,
    /// The start of a line whose end has not come yet.
    partial: Vec<u8>,
    /// Inside a line past `max`, dropping bytes until its end.
    skipping: bool,
}

impl LineSplitter {
    /// Lines of at most `max` bytes (without the newline).
    pub fn new(max: usize) -> Self {
        Self {
            max,
            partial: Vec::new(),
            skipping: false,
        }
    }

    /// Bytes held for a line not yet ended (or being skipped: then they
    /// are not held but still not consumed as a line).
    pub fn pending(&self) -> bool {
        !self.partial.is_empty() || self.skipping
    }

    /// Bytes held for the line not yet ended.
    pub fn partial_len(&self) -> usize {
        self.partial.len()
    }

    /// Forget the line in progress (its file was truncated or replaced).
    pub fn reset(&mut self) {
        self.partial.clear();
        self.skipping = false;
    }

    /// Take `data`; call `line` with every line it completes (without
    /// `\n` or `\r\n`) and the index in `data` just past its newline.
    /// Returns how many lines were too long (skipped).
    pub fn push(&mut self, data: &[u8], mut line: impl FnMut(&[u8], usize)) -> u64 {
        let mut too_long = 0;
        let mut start = 0;
        while let Some(i) = memchr::memchr(b'\n', &data[start..]) {
            let (head, end) = (&data[start..start + i], start + i + 1);
            start = end;
            if self.skipping {
                self.skipping = false;
                continue;
            }
            if self.partial.len() + head.len() > self.max {
                too_long += 1;
                self.partial.clear();
                continue;
            }
            if self.partial.is_empty() {
                line(trim_cr(head), end);
            } else {
                self.partial.extend_from_slice(head);
                line(trim_cr(&self.partial), end);
                self.partial.clear();
            }
        }
        let data = &data[start..];
        if !self.skipping {
            if self.partial.len() + data.len() > self.max {
                too_long += 1;
                self.partial.clear();
                self.skipping = true;
            } else {
                self.partial.extend_from_slice(data);
            }
        }
        too_long
    }

    /// The stream ended: the last line if it had no newline.
    pub fn finish(&mut self, line: impl FnOnce(&[u8])) {
        if !self.skipping && !self.partial.is_empty() {
            line(trim_cr(&self.partial));
        }
        self.reset();
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(max: usize, chunks: &[&[u8]]) -> (Vec<String>, u64) {
        let mut s = LineSplitter::new(max);
        let mut lines = Vec::new();
        let mut hits = 0;
        for c in chunks {
            hits += s.push(c, |l, _| {
                lines.push(String::from_utf8_lossy(l).into_owned());
            });
        }
        s.finish(|l| {
            lines.push(String::from_utf8_lossy(l).into_owned());
        });
        (lines, hits)
    }

    #[test]
    fn lines_across_chunks_and_the_last_without_newline() {
        let (lines, hits) = split(10, &[b"ab", b"c\r\nde\n", b"", b"f"]);
        assert_eq!(
            (lines, hits),
            (vec!["abc".into(), "de".into(), "f".into()], 0)
        );
    }

    #[test]
    fn each_line_says_where_it_ends() {
        let mut s = LineSplitter::new(100);
        let mut ends = Vec::new();
        s.push(b"ab", |_, e| ends.push(e));
        s.push(b"c\nd\r\nef", |_, e| ends.push(e));
        assert_eq!(ends, [2, 5]);
    }

    #[test]
    fn a_long_line_is_skipped_to_its_end_and_counted() {
        let (lines, hits) = split(
            4,
            &[b"ok\n0123456789", b"abcdef", b"gh\nnext\n", b"12345\nx"],
        );
        assert_eq!(lines, ["ok", "next", "x"]);
        assert_eq!(hits, 2);
        let (lines, hits) = split(4, &[b"1234", b"5\nyes\n"]);
        assert_eq!((lines, hits), (vec!["yes".into()], 1));
        let (lines, _) = split(4, &[b"1234\n"]);
        assert_eq!(lines, ["1234"]);
    }
}
