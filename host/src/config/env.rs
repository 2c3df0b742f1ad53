//! `${VAR}` and `$VAR` substitution in configuration text, as Telegraf does
//! it: `${VAR:-default}` gives a default, `$$` is a literal `$`, comments are
//! left alone, and an unset variable is an error that names it.
//!
//! A value is a value: it can never change the structure of the file. The
//! text is read as TOML is (outside strings, in a basic `"…"` or multi-line
//! `"""…"""` string, in a literal `'…'` or `'''…'''` string) and each value
//! is written for the place it lands in:
//! - in a basic string it is escaped (`"`, `\`, control characters), so it
//!   cannot close the string;
//! - in a literal string, which has no escapes, a value holding a single
//!   quote or a control character is an error (use a double-quoted string);
//! - outside strings it must be one TOML number, boolean or date-time
//!   (`interval = $SECONDS`); anything else is an error.
//!
//! Every error names the line, the section and key it is in, and the
//! variable.

use anyhow::{Result, bail};

/// Replace environment references in `text`.
pub fn substitute(text: &str) -> Result<String> {
    substitute_with(text, |name| std::env::var(name).ok())
}

/// Where in the TOML text the scanner is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Outside,
    Comment,
    Basic,
    MultiBasic,
    Literal,
    MultiLiteral,
}

impl Place {
    fn describe(self) -> &'static str {
        match self {
            Place::Outside | Place::Comment => "outside a string",
            Place::Basic => "in a double-quoted string",
            Place::MultiBasic => "in a \"\"\"multi-line\"\"\" string",
            Place::Literal => "in a single-quoted string",
            Place::MultiLiteral => "in a '''multi-line literal''' string",
        }
    }
}

/// Substitution with a custom lookup (for tests).
pub fn substitute_with(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut place = Place::Outside;
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let c = rest.chars().next().expect("i is on a char boundary");
        let run = |q: char| rest.chars().take_while(|&x| x == q).count();
        match (place, c) {
            (Place::Comment, '\n') => place = Place::Outside,
            (Place::Comment, _) => {}
            (Place::Outside, '#') => place = Place::Comment,
            (Place::Outside, '"') if rest.starts_with("\"\"\"") => {
                out.push_str("\"\"\"");
                i += 3;
                place = Place::MultiBasic;
                continue;
            }
            (Place::Outside, '"') => place = Place::Basic,
            (Place::Outside, '\'') if rest.starts_with("'''") => {
                out.push_str("'''");
                i += 3;
                place = Place::MultiLiteral;
                continue;
            }
            (Place::Outside, '\'') => place = Place::Literal,
            (Place::Basic | Place::MultiBasic, '\\') => {
                // An escape: the backslash and what it escapes, as written.
                let n = rest[1..].chars().next().map_or(0, char::len_utf8);
                out.push_str(&rest[..1 + n]);
                i += 1 + n;
                continue;
            }
            (Place::Basic, '"') | (Place::Literal, '\'') => place = Place::Outside,
            (Place::Basic | Place::Literal, '\n') => place = Place::Outside,
            (Place::MultiBasic, '"') | (Place::MultiLiteral, '\'') => {
                // Up to two quotes may sit right before the closing three.
                let n = run(c);
                out.push_str(&rest[..n]);
                i += n;
                if n >= 3 {
                    place = Place::Outside;
                }
                continue;
            }
            (_, '$') => {
                let (written, consumed) = reference(text, i, place, &lookup)?;
                out.push_str(&written);
                i += consumed;
                continue;
            }
            _ => {}
        }
        out.push(c);
        i += c.len_utf8();
    }
    Ok(out)
}

/// The reference starting with the `$` at `at`: what to write instead, and
/// how many bytes of `text` it replaces.
fn reference(
    text: &str,
    at: usize,
    place: Place,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<(String, usize)> {
    let rest = &text[at + 1..];
    if rest.starts_with('$') {
        return Ok(("$".into(), 2));
    }
    let (name, default, consumed) = if let Some(inner) = rest.strip_prefix('{') {
        let Some(end) = inner
            .find(['}', '\n'])
            .filter(|&e| inner[e..].starts_with('}'))
        else {
            bail!(
                "{}: `${{` without a closing `}}` on the same line",
                Where::of(text, at)
            );
        };
        let body = &inner[..end];
        let (name, default) = match body.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (body, None),
        };
        (name, default, end + 3)
    } else {
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        (&rest[..len], None, len + 1)
    };
    if name.is_empty()
        || name.starts_with(|c: char| c.is_ascii_digit())
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Ok(("$".into(), 1));
    }
    let value = match (lookup(name), default) {
        (Some(v), _) => v,
        (None, Some(d)) => d.to_owned(),
        (None, None) => bail!(
            "{}: environment variable `{name}` is not set (use ${{{name}:-default}} for a default)",
            Where::of(text, at)
        ),
    };
    let written = place_value(&value, place).map_err(|why| {
        anyhow::anyhow!(
            "{}: the value of environment variable `{name}` cannot be used {}: {why}",
            Where::of(text, at),
            place.describe()
        )
    })?;
    Ok((written, consumed))
}

/// `value` written so that it is exactly one value at `place`, or why it
/// cannot be.
fn place_value(value: &str, place: Place) -> std::result::Result<String, String> {
    match place {
        Place::Basic | Place::MultiBasic => Ok(escape_basic(value)),
        Place::Literal | Place::MultiLiteral => {
            if value.contains('\'') {
                return Err(
                    "it holds a single quote; put the reference in a double-quoted string".into(),
                );
            }
            let newline_ok = place == Place::MultiLiteral;
            if value
                .chars()
                .any(|c| c.is_control() && c != '\t' && !(newline_ok && c == '\n'))
            {
                return Err(
                    "it holds a control character; put the reference in a double-quoted string"
                        .into(),
                );
            }
            Ok(value.to_owned())
        }
        Place::Outside | Place::Comment => scalar(value).map(str::to_owned),
    }
}

/// Escape `value` for a TOML basic string.
fn escape_basic(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// `value` if it is one TOML number, boolean or date-time.
fn scalar(value: &str) -> std::result::Result<&str, String> {
    let trimmed = value.trim_matches(' ');
    let simple = !trimmed.is_empty()
        && trimmed
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.' | '_' | ':' | ' '));
    let parsed = simple
        .then(|| toml::from_str::<toml::Table>(&format!("v = {trimmed}")).ok())
        .flatten();
    match parsed
        .as_ref()
        .and_then(|t| t.get("v").filter(|_| t.len() == 1))
    {
        Some(
            toml::Value::Integer(_)
            | toml::Value::Float(_)
            | toml::Value::Boolean(_)
            | toml::Value::Datetime(_),
        ) => Ok(trimmed),
        _ => Err(format!(
            "outside a string only a number, a boolean or a date-time may be substituted, not {value:?}; put the reference in quotes"
        )),
    }
}

/// Where a reference is, for errors: its line, and the section and key of
/// that line.
struct Where {
    line: usize,
    section: Option<String>,
    key: Option<String>,
}

impl Where {
    fn of(text: &str, at: usize) -> Self {
        let before = &text[..at];
        let line_start = before.rfind('\n').map_or(0, |n| n + 1);
        let line = &text[line_start..];
        let line = &line[..line.find('\n').unwrap_or(line.len())];
        let key = line
            .split_once('=')
            .filter(|(k, _)| k.len() <= at - line_start)
            .map(|(k, _)| k.trim().to_owned())
            .filter(|k| !k.is_empty() && !k.starts_with('['));
        let section = before
            .lines()
            .rev()
            .map(str::trim_start)
            .find(|l| l.starts_with('['))
            .map(|l| l[..l.rfind(']').map_or(l.len(), |e| e + 1)].to_owned());
        Self {
            line: before.matches('\n').count() + 1,
            section,
            key,
        }
    }
}

impl std::fmt::Display for Where {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}", self.line)?;
        if let Some(s) = &self.section {
            write!(f, ", section {s}")?;
        }
        if let Some(k) = &self.key {
            write!(f, ", key `{k}`")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("web-1".into()),
            "PORT" => Some("8086".into()),
            "URL" => Some("http://x\"]\n[[outputs.file]]\nfiles = [\"/tmp/pwned\"]\n#".into()),
            "QUOTE" => Some("it's".into()),
            "SLASHES" => Some("C:\\temp\\\"q\" \u{1}".into()),
            _ => None,
        }
    }

    #[test]
    fn both_spellings_and_defaults() {
        let out = substitute_with(
            "a = \"${HOST}:$PORT\"\nb = \"${MISSING:-x}\"\nc = \"$$HOME\"\n",
            env,
        )
        .unwrap();
        assert_eq!(out, "a = \"web-1:8086\"\nb = \"x\"\nc = \"$HOME\"\n");
    }

    #[test]
    fn comments_are_not_substituted() {
        let out = substitute_with("a = 1 # uses $MISSING and \"\n", env).unwrap();
        assert_eq!(out, "a = 1 # uses $MISSING and \"\n");
    }

    #[test]
    fn unset_variable_is_named() {
        let err = substitute_with("[agent]\nx = 1\ny = \"$NOPE\"\n", env).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("line 3"), "{msg}");
        assert!(msg.contains("[agent]") && msg.contains("key `y`"), "{msg}");
        assert!(msg.contains("`NOPE`"), "{msg}");
    }

    /// Parse substituted text, as the config reader does.
    fn parsed(text: &str) -> toml::Table {
        toml::from_str(&substitute_with(text, env).unwrap()).unwrap()
    }

    #[test]
    fn a_value_cannot_close_a_basic_string() {
        for text in [
            "[[inputs.http]]\nurls = [\"${URL}\"]\n",
            "[[inputs.http]]\nurls = [\"$URL\"]\n",
            "[[inputs.http]]\nurls = [\"\"\"${URL}\"\"\"]\n",
        ] {
            let t = parsed(text);
            assert_eq!(t.keys().collect::<Vec<_>>(), ["inputs"], "{text}");
            let urls = &t["inputs"]["http"][0]["urls"];
            assert_eq!(urls[0].as_str(), env("URL").as_deref(), "{text}");
        }
        let t = parsed("[agent]\nhostname = \"${SLASHES}\"\n");
        assert_eq!(t["agent"]["hostname"].as_str(), env("SLASHES").as_deref());
    }

    #[test]
    fn a_literal_string_refuses_what_it_cannot_hold() {
        for text in [
            "[agent]\nhostname = '${URL}'\n",
            "[agent]\nhostname = '$QUOTE'\n",
            "[agent]\nhostname = '''${QUOTE}'''\n",
        ] {
            let msg = substitute_with(text, env).unwrap_err().to_string();
            assert!(
                msg.contains("line 2")
                    && msg.contains("key `hostname`")
                    && (msg.contains("a single quote") || msg.contains("a control character")),
                "{msg}"
            );
        }
        let t = parsed("[agent]\nhostname = '$HOST'\nx = '''a\n$HOST'''\n");
        assert_eq!(t["agent"]["hostname"].as_str(), Some("web-1"));
        assert_eq!(t["agent"]["x"].as_str(), Some("a\nweb-1"));
    }

    #[test]
    fn outside_strings_only_a_scalar_fits() {
        let t = parsed("[agent]\nmetric_batch_size = $PORT\nx = ${B:-true}\n");
        assert_eq!(t["agent"]["metric_batch_size"].as_integer(), Some(8086));
        assert_eq!(t["agent"]["x"].as_bool(), Some(true));
        for text in [
            "[agent]\nhostname = ${URL}\n",
            "[agent]\nhostname = $HOST\n",
        ] {
            let msg = substitute_with(text, env).unwrap_err().to_string();
            assert!(msg.contains("outside a string"), "{msg}");
        }
    }

    #[test]
    fn quotes_inside_strings_are_followed() {
        // A `#` or the other quote inside a string is neither a comment nor
        // a string start; an escaped quote does not end a basic string.
        let text = "a = \"# $HOST \\\" '\" # $NOPE\nb = 'x\"' # $NOPE\nc = \"$PORT\"\n";
        let out = substitute_with(text, env).unwrap();
        assert_eq!(
            out,
            "a = \"# web-1 \\\" '\" # $NOPE\nb = 'x\"' # $NOPE\nc = \"8086\"\n"
        );
    }
}
