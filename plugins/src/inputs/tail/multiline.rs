//! Telegraf's `[inputs.tail.multiline]`: lines joined into one event by a
//! pattern (a stack trace's indented lines with the line before them),
//! the event let go when a line starts the next one or after a timeout.

use std::time::Instant;

use super::config::{Multiline, Which};

/// The event being joined for one file.
#[derive(Debug)]
pub struct Joiner {
    config: Multiline,
    buffer: Vec<u8>,
    /// Where the buffered event starts in its file.
    start: Option<u64>,
    last: Instant,
    /// The longest event: one that would grow past it is let go as it
    /// is and the line starts the next.
    max: usize,
    /// Events let go at `max` (counted as line size limit hits).
    pub overflowed: u64,
}

impl Joiner {
    pub fn new(config: Multiline, max: usize) -> Self {
        Self {
            config,
            buffer: Vec::new(),
            start: None,
            last: Instant::now(),
            max,
            overflowed: 0,
        }
    }

    fn matches(&self, line: &[u8]) -> bool {
        let text = String::from_utf8_lossy(line);
        self.config.pattern.is_match(&text) != self.config.invert
    }

    fn append(&mut self, line: &[u8], start: u64) {
        if self.buffer.is_empty() {
            self.start = Some(start);
        } else if self.config.preserve_newline {
            self.buffer.push(b'\n');
        }
        self.buffer.extend_from_slice(line);
    }

    /// Take a line that starts at `start` in its file; returns an event
    /// when one is complete.
    pub fn line(&mut self, line: &[u8], start: u64) -> Option<Vec<u8>> {
        self.last = Instant::now();
        if self.matches(line) {
            if !self.buffer.is_empty() && self.buffer.len() + 1 + line.len() > self.max {
                self.overflowed += 1;
                let full = self.take();
                self.append(line, start);
                return full;
            }
            self.append(line, start);
            return None;
        }
        match self.config.which {
            Which::Previous => {
                let previous = self.take();
                self.append(line, start);
                previous
            }
            Which::Next => {
                self.append(line, start);
                self.take()
            }
        }
    }

    /// The event buffered, if any.
    pub fn take(&mut self) -> Option<Vec<u8>> {
        self.start = None;
        (!self.buffer.is_empty()).then(|| std::mem::take(&mut self.buffer))
    }

    /// Where the buffered event starts in its file.
    pub fn pending_start(&self) -> Option<u64> {
        self.start
    }

    /// Whether the buffered event waited its `timeout` for a next line.
    pub fn expired(&self) -> bool {
        self.start.is_some() && self.last.elapsed() >= self.config.timeout
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn joiner(pattern: &str, which: Which, invert: bool, preserve_newline: bool) -> Joiner {
        Joiner::new(
            Multiline {
                pattern: regex::Regex::new(pattern).unwrap(),
                which,
                invert,
                preserve_newline,
                timeout: Duration::from_secs(5),
            },
            1 << 20,
        )
    }

    fn run(j: &mut Joiner, lines: &[&str]) -> Vec<String> {
        let mut out: Vec<String> = lines
            .iter()
            .enumerate()
            .filter_map(|(i, l)| j.line(l.as_bytes(), i as u64))
            .map(|e| String::from_utf8(e).unwrap())
            .collect();
        out.extend(j.take().map(|e| String::from_utf8(e).unwrap()));
        out
    }

    #[test]
    fn previous_joins_indented_lines_to_the_line_before() {
        let mut j = joiner(r"^\s", Which::Previous, false, false);
        let events = run(&mut j, &["error at", "  frame 1", "  frame 2", "next"]);
        assert_eq!(events, ["error at  frame 1  frame 2", "next"]);
        let mut j = joiner(r"^\s", Which::Previous, false, true);
        assert_eq!(run(&mut j, &["a", " b", "c"]), ["a\n b", "c"]);
    }

    #[test]
    fn next_and_invert_as_telegraf() {
        // A line ending in a backslash continues on the next line.
        let mut j = joiner(r"\\$", Which::Next, false, false);
        assert_eq!(
            run(&mut j, &["one \\", "two", "three"]),
            ["one \\two", "three"]
        );
        // Lines NOT starting with a date belong to the previous one.
        let mut j = joiner(r"^\d{4}-", Which::Previous, true, false);
        assert_eq!(
            run(&mut j, &["2024-01-01 a", "more", "2024-01-02 b"]),
            ["2024-01-01 amore", "2024-01-02 b"]
        );
    }

    #[test]
    fn the_pending_event_remembers_where_it_starts() {
        let mut j = joiner(r"^\s", Which::Previous, false, false);
        assert_eq!(j.line(b"a", 10), None);
        assert_eq!(j.pending_start(), Some(10));
        assert_eq!(j.line(b" b", 12), None);
        assert_eq!(j.line(b"c", 15).as_deref(), Some(&b"a b"[..]));
        assert_eq!(j.pending_start(), Some(15));
        assert!(!j.expired());
    }

    #[test]
    fn an_endless_event_is_let_go_at_the_bound_and_counted() {
        let mut j = joiner(r"^\s", Which::Previous, false, false);
        j.max = 10;
        assert_eq!(j.line(b"a", 0), None);
        let events: Vec<_> = (0..20).filter_map(|i| j.line(b" bcd", i)).collect();
        assert!(events.len() >= 5, "{events:?}");
        assert!(events.iter().all(|e| e.len() <= 10));
        assert!(j.buffer.len() <= 10);
        assert_eq!(j.overflowed, events.len() as u64);
    }
}
