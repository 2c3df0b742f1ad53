//! `data_format = "graphite"`: Graphite's plaintext lines (`path value
//! [timestamp]`, carbon tags `path;k=v`) read as Telegraf's graphite
//! parser reads them, with its `templates` and `separator` turning a path
//! into a measurement, tags and a field (the templates of
//! [`crate::graphite::template`], shared with the carbon listener).

use std::sync::Arc;

use anyhow::Result;
use graft_core::BatchBuilder;

use super::Parsed;
use crate::graphite::{self, Templates};

/// The graphite parser of one input.
#[derive(Debug, Clone)]
pub struct GraphiteParser {
    templates: Arc<Templates>,
}

impl GraphiteParser {
    /// Compile `templates` (Telegraf's `[filter] template [tags]` specs);
    /// `separator` joins the parts of one kind.
    pub fn new(templates: &[String], separator: &str) -> Result<Self> {
        let templates = Templates::new(templates, separator)
            .map_err(|e| anyhow::anyhow!("templates: {e:#}"))?;
        Ok(Self {
            templates: Arc::new(templates),
        })
    }

    /// Read every line of `body`; a line that is not `path value
    /// [timestamp]` is counted and skipped, blank lines are ignored.
    pub fn parse(&self, body: &[u8], now_ns: i64, out: &mut BatchBuilder) -> Parsed {
        let mut parsed = Parsed::default();
        for (i, line) in body.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let result = std::str::from_utf8(line)
                .map_err(|_| "not UTF-8")
                .and_then(|line| graphite::parse_line(line.trim(), now_ns, &self.templates, out));
            match result {
                Ok(()) => parsed.metrics += 1,
                Err(reason) => {
                    parsed.malformed += 1;
                    if parsed.first_error.is_none() {
                        parsed.first_error = Some(format!("line {}: {reason}", i + 1));
                    }
                }
            }
        }
        parsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(parser: &GraphiteParser, body: &str) -> (Vec<String>, Parsed) {
        let mut out = BatchBuilder::new();
        let parsed = parser.parse(body.as_bytes(), 42, &mut out);
        let rows = out.finish().iter().map(|m| format!("{m:?}")).collect();
        (rows, parsed)
    }

    #[test]
    fn reads_telegrafs_template_examples() {
        // From Telegraf's docs/TEMPLATE_PATTERN.md.
        let parser = GraphiteParser::new(
            &[
                "us.*.* region.region.measurement".into(),
                "cpu.* measurement.measurement.field".into(),
                "host.* .host.measurement.field*".into(),
            ],
            "_",
        )
        .unwrap();
        let (rows, parsed) = rows(
            &parser,
            "us.west.cpu 3 1700000000\ncpu.usage.idle 97.5\r\n\nhost.web01.mem.used.bytes 12 1700000001\n",
        );
        assert_eq!(parsed.malformed, 0, "{parsed:?}");
        assert_eq!(
            rows,
            [
                "Metric { name: \"cpu\", tags: [(\"region\", \"us_west\")], fields: [(\"value\", Float(3.0))], timestamp: 1700000000000000000 }",
                "Metric { name: \"cpu_usage\", tags: [], fields: [(\"idle\", Float(97.5))], timestamp: 42 }",
                "Metric { name: \"mem\", tags: [(\"host\", \"web01\")], fields: [(\"used_bytes\", Float(12.0))], timestamp: 1700000001000000000 }",
            ]
        );
    }

    #[test]
    fn a_bad_line_costs_only_itself() {
        let parser = GraphiteParser::new(&[], ".").unwrap();
        let (rows, parsed) = rows(
            &parser,
            "a.b 1\nnot a number here\nc.d x\ne.f 2 1700000000\n\u{1}x 1\n",
        );
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!((parsed.metrics, parsed.malformed), (2, 3));
        assert!(parsed.first_error.unwrap().starts_with("line 2: "));
    }

    #[test]
    fn bad_templates_are_refused() {
        assert!(GraphiteParser::new(&["a b c d".into()], ".").is_err());
        assert!(GraphiteParser::new(&["measurement*.field*".into()], ".").is_err());
    }
}
