//! Newline framing with a maximum: bytes are scanned once, a complete
//! line is handed out without copying when it arrives whole, and no more
//! than the maximum is ever buffered. A line over the maximum is dropped
//! up to its newline and reported once.

/// What the framer found in the bytes fed to it.
#[derive(Debug, PartialEq, Eq)]
pub enum Framed<'a> {
    /// A line without its `\n` (a trailing `\r` is left to the parser).
    Line(&'a [u8]),
    /// A line longer than the maximum was dropped.
    TooLong,
}

/// Splits a byte stream into lines of at most `max` bytes.
#[derive(Debug)]
pub struct LineFramer {
    max: usize,
    /// The start of a line whose newline has not arrived yet (≤ `max`).
    partial: Vec<u8>,
    /// Inside a line already reported as too long.
    discarding: bool,
}

impl LineFramer {
    /// A framer for lines of at most `max` bytes (newline excluded).
    pub fn new(max: usize) -> Self {
        Self {
            max,
            partial: Vec::new(),
            discarding: false,
        }
    }

    /// Bytes held back waiting for their newline.
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }

    /// Feed the next bytes of the stream; `f` sees each complete line (or
    /// `TooLong`) in order.
    pub fn feed(&mut self, mut data: &[u8], mut f: impl FnMut(Framed<'_>)) {
        // Finish the line begun in an earlier read.
        if self.discarding || !self.partial.is_empty() {
            let Some(nl) = memchr::memchr(b'\n', data) else {
                self.hold(data, &mut f);
                return;
            };
            let (head, rest) = (&data[..nl], &data[nl + 1..]);
            if self.discarding {
                self.discarding = false;
            } else if self.partial.len() + head.len() > self.max {
                self.partial.clear();
                f(Framed::TooLong);
            } else {
                self.partial.extend_from_slice(head);
                f(Framed::Line(&self.partial));
                self.partial.clear();
            }
            data = rest;
        }
        // Whole lines straight from `data`.
        let mut lines = memchr::memchr_iter(b'\n', data);
        let mut start = 0;
        for nl in lines.by_ref() {
            let line = &data[start..nl];
            if line.len() > self.max {
                f(Framed::TooLong);
            } else {
                f(Framed::Line(line));
            }
            start = nl + 1;
        }
        self.hold(&data[start..], &mut f);
    }

    /// Keep the start of an unfinished line, unless it is already too long.
    fn hold(&mut self, tail: &[u8], f: &mut impl FnMut(Framed<'_>)) {
        if self.discarding || tail.is_empty() {
            return;
        }
        if self.partial.len() + tail.len() > self.max {
            self.partial = Vec::new();
            self.discarding = true;
            f(Framed::TooLong);
        } else {
            self.partial.extend_from_slice(tail);
        }
    }

    /// The stream ended: hand out its last line if it had no newline.
    pub fn finish(&mut self, mut f: impl FnMut(Framed<'_>)) {
        if !self.discarding && !self.partial.is_empty() {
            f(Framed::Line(&self.partial));
        }
        self.partial = Vec::new();
        self.discarding = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `chunks` and describe what came out: lines as text, `!` for a
    /// dropped line.
    fn run(max: usize, chunks: &[&[u8]]) -> Vec<String> {
        let mut framer = LineFramer::new(max);
        let mut out = Vec::new();
        let mut push = |f: Framed<'_>| match f {
            Framed::Line(l) => out.push(String::from_utf8_lossy(l).into_owned()),
            Framed::TooLong => out.push("!".into()),
        };
        for c in chunks {
            framer.feed(c, &mut push);
            assert!(framer.buffered() <= max);
        }
        framer.finish(&mut push);
        out
    }

    #[test]
    fn lines_across_reads() {
        assert_eq!(
            run(10, &[b"a 1\nb ", b"2\n", b"c", b" 3"]),
            ["a 1", "b 2", "c 3"]
        );
        assert_eq!(run(10, &[b"\n\n"]), ["", ""]);
    }

    #[test]
    fn an_over_long_line_is_dropped_once_and_the_next_survives() {
        // Whole in one read.
        assert_eq!(run(3, &[b"abcd\nok\n"]), ["!", "ok"]);
        // Exactly the maximum passes.
        assert_eq!(run(3, &[b"abc\n"]), ["abc"]);
        // Spread over many reads without a newline: reported once, nothing
        // buffered past the maximum.
        assert_eq!(
            run(3, &[b"ab", b"cd", b"efgh", b"ij", b"\nok"]),
            ["!", "ok"]
        );
        // Its newline in the same read that overflowed it.
        assert_eq!(run(3, &[b"ab", b"cd\nok\n"]), ["!", "ok"]);
        // A stream that ends inside a dropped line yields nothing more.
        assert_eq!(run(3, &[b"x\n", b"abcdef"]), ["x", "!"]);
    }

    #[test]
    fn binary_and_nul_bytes_are_just_bytes() {
        assert_eq!(
            run(8, &[b"\xff\x00\xfe\nok 1\n"]),
            ["\u{fffd}\u{0}\u{fffd}", "ok 1"]
        );
    }
}
