//! Splitting a body into lines as InfluxDB 1.x does: a newline ends a line
//! unless a backslash stands before it or it is inside a quoted string
//! field value. Works on bytes, so a line that is not UTF-8 is found like
//! any other and costs only itself.

/// One line of a body: its 1-based number and its byte range (without the
/// newline and without one `\r` before it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Line {
    pub number: usize,
    pub start: usize,
    pub end: usize,
}

/// The lines of `body`, from byte `pos` on, numbered from `number`.
pub(crate) struct Lines<'a> {
    body: &'a [u8],
    pos: usize,
    number: usize,
}

impl<'a> Lines<'a> {
    pub fn new(body: &'a [u8]) -> Self {
        Self {
            body,
            pos: 0,
            number: 1,
        }
    }

    /// Where the next line starts.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl Iterator for Lines<'_> {
    type Item = Line;

    fn next(&mut self) -> Option<Line> {
        let b = self.body;
        if self.pos >= b.len() {
            return None;
        }
        let start = self.pos;
        let number = self.number;
        let nl = memchr::memchr(b'\n', &b[start..]).map_or(b.len(), |n| start + n);
        let line = &b[start..nl];
        // Fast path: without a quote or a backslash the first newline ends
        // the line.
        let (end, newlines) = if memchr::memchr2(b'"', b'\\', line).is_none() {
            (nl, 1)
        } else {
            scan(b, start)
        };
        self.pos = end + 1;
        self.number += newlines;
        let mut stop = end.min(b.len());
        if stop > start && b[stop - 1] == b'\r' {
            stop -= 1;
        }
        Some(Line {
            number,
            start,
            end: stop,
        })
    }
}

/// Where the scanner is in a line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Measurement and tags: a backslash escapes the byte after it.
    Head,
    /// Spaces before the field set.
    Gap,
    /// A field key.
    Key,
    /// Right after a field's `=`.
    ValueStart,
    /// Inside a quoted string value: a newline belongs to the string.
    Str,
    /// An unquoted value, or the rest of one after its closing quote
    /// (where a quote opens the string again, as 1.x reads it).
    Value,
    /// After the field set: the timestamp.
    Tail,
}

/// The end of the line starting at `start` and how many newlines it holds
/// (counting the one that ends it). The parts are told apart as the line
/// parser tells them: a newline right after a backslash does not end the
/// line (as in 1.x), nor one inside a quoted string value. A string still
/// open at the end of the body does not swallow the rest: the line ends at
/// its first newline instead.
fn scan(b: &[u8], start: usize) -> (usize, usize) {
    let mut part = Part::Head;
    let mut newlines = 0;
    let mut first_newline = None;
    let mut i = start;
    while i < b.len() {
        let c = b[i];
        // Outside values a byte is escaped when a backslash stands right
        // before it; inside values a backslash hides the next byte (below).
        let escaped = i > start && b[i - 1] == b'\\';
        if c == b'\n' {
            match part {
                Part::Str => {
                    newlines += 1;
                    first_newline.get_or_insert((i, newlines));
                    i += 1;
                    continue;
                }
                Part::ValueStart | Part::Value => return (i, newlines + 1),
                _ if escaped => {
                    newlines += 1;
                    i += 1;
                    continue;
                }
                _ => return (i, newlines + 1),
            }
        }
        part = match part {
            Part::Head if c == b' ' && !escaped => Part::Gap,
            Part::Head => Part::Head,
            Part::Gap if matches!(c, b' ' | b'\t' | b'\0') => Part::Gap,
            Part::Gap | Part::Key if c == b'=' && !(part == Part::Key && escaped) => {
                Part::ValueStart
            }
            Part::Gap | Part::Key if c == b' ' && part == Part::Key && !escaped => Part::Tail,
            Part::Gap | Part::Key => Part::Key,
            Part::ValueStart | Part::Value | Part::Str if c == b'\\' => {
                // A backslash in a value hides the byte after it.
                if b.get(i + 1) == Some(&b'\n') {
                    newlines += 1;
                }
                i += 2;
                if part == Part::ValueStart {
                    part = Part::Value;
                }
                continue;
            }
            Part::ValueStart | Part::Value if c == b'"' => Part::Str,
            Part::ValueStart | Part::Value if c == b',' => Part::Key,
            Part::ValueStart | Part::Value if c == b' ' => Part::Tail,
            Part::ValueStart | Part::Value => Part::Value,
            Part::Str if c == b'"' => Part::Value,
            Part::Str => Part::Str,
            Part::Tail => Part::Tail,
        };
        i += 1;
    }
    match (part, first_newline) {
        (Part::Str, Some((nl, n))) => (nl, n),
        _ => (b.len(), newlines + 1),
    }
}
