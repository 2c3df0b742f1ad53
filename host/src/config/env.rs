//! `${VAR}` and `$VAR` substitution in configuration text, as Telegraf does
//! it: `${VAR:-default}` gives a default, `$$` is a literal `$`, comments are
//! left alone, and an unset variable is an error that names it.

use anyhow::{Result, bail};

/// Replace environment references in `text`.
pub fn substitute(text: &str) -> Result<String> {
    substitute_with(text, |name| std::env::var(name).ok())
}

/// Substitution with a custom lookup (for tests).
pub fn substitute_with(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    for (lineno, line) in text.split_inclusive('\n').enumerate() {
        let mut chars = line.char_indices().peekable();
        let mut in_string: Option<char> = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' | '\'' if in_string.is_none() => in_string = Some(c),
                '"' | '\'' if in_string == Some(c) => in_string = None,
                '\\' if in_string == Some('"') => {
                    out.push(c);
                    if let Some((_, n)) = chars.next() {
                        out.push(n);
                    }
                    continue;
                }
                '#' if in_string.is_none() => {
                    out.push_str(&line[i..]);
                    break;
                }
                '$' => {
                    let rest = &line[i + 1..];
                    if rest.starts_with('$') {
                        out.push('$');
                        chars.next();
                        continue;
                    }
                    let (name, default, consumed) = if let Some(inner) = rest.strip_prefix('{') {
                        let Some(end) = inner.find('}') else {
                            bail!("line {}: `${{` without a closing `}}`", lineno + 1);
                        };
                        let body = &inner[..end];
                        let (name, default) = match body.split_once(":-") {
                            Some((n, d)) => (n, Some(d)),
                            None => (body, None),
                        };
                        (name, default, end + 2)
                    } else {
                        let len = rest
                            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                            .unwrap_or(rest.len());
                        (&rest[..len], None, len)
                    };
                    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
                        out.push('$');
                        continue;
                    }
                    match (lookup(name), default) {
                        (Some(v), _) => out.push_str(&v),
                        (None, Some(d)) => out.push_str(d),
                        (None, None) => bail!(
                            "line {}: environment variable `{name}` is not set (use ${{{name}:-default}} for a default)",
                            lineno + 1
                        ),
                    }
                    for _ in 0..consumed {
                        chars.next();
                    }
                    continue;
                }
                _ => {}
            }
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("web-1".into()),
            "PORT" => Some("8086".into()),
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
        let out = substitute_with("a = 1 # uses $MISSING\n", env).unwrap();
        assert_eq!(out, "a = 1 # uses $MISSING\n");
    }

    #[test]
    fn unset_variable_is_named() {
        let err = substitute_with("x = 1\ny = \"$NOPE\"\n", env).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        assert!(err.to_string().contains("`NOPE`"), "{err}");
    }
}
