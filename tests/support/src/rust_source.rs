//! Reading Rust source the way the layering test needs: which paths a file
//! names that start with `crate::`, `super::` or `self::` (use groups
//! expanded, comments and literals skipped, `#[cfg(test)]` items left out),
//! and which file modules it declares for tests only. A light tokenizer,
//! not a Rust parser: enough for graft's own sources.

/// A path starting with `crate`, `super` or `self`, where it is.
#[derive(Debug)]
pub struct Reference {
    /// Its segments, `crate` / `super` / `self` first.
    pub path: Vec<String>,
    /// The line it starts on, from 1.
    pub line: usize,
    /// The inline (non-test) modules it is written in, outermost first.
    pub inline: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Path,
    Punct(char),
}

/// `text` as tokens with their line, comments and literals left out.
fn tokens(text: &str) -> Vec<(Tok, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(chars[i] == '\n');
                    i += 1;
                }
            }
        } else if c == '"' || ((c == 'r' || c == 'b') && matches!(at(i + 1), '"' | '#' | 'r')) {
            // A string: plain, byte, raw (r#"…"#) or byte raw.
            let start = i;
            while matches!(at(i), 'r' | 'b') {
                i += 1;
            }
            let mut hashes = 0;
            while at(i) == '#' {
                hashes += 1;
                i += 1;
            }
            if at(i) != '"' {
                // An identifier such as `r#type` or `br`: read it as one.
                i = start;
                let s = ident(&chars, &mut i);
                out.push((Tok::Ident(s), line));
                continue;
            }
            let raw = chars[start..i].contains(&'r');
            i += 1;
            loop {
                match at(i) {
                    '\0' => break,
                    '\\' if !raw => i += 2,
                    '"' if (0..hashes).all(|h| at(i + 1 + h) == '#') => {
                        i += 1 + hashes;
                        break;
                    }
                    ch => {
                        line += usize::from(ch == '\n');
                        i += 1;
                    }
                }
            }
        } else if c == '\'' {
            // A char literal, or a lifetime (left out too).
            if at(i + 1) == '\\' {
                i += 2;
                while at(i) != '\'' && at(i) != '\0' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1;
                ident(&chars, &mut i);
            }
        } else if c.is_alphabetic() || c == '_' {
            let s = ident(&chars, &mut i);
            out.push((Tok::Ident(s), line));
        } else if c == ':' && at(i + 1) == ':' {
            out.push((Tok::Path, line));
            i += 2;
        } else {
            if !c.is_whitespace() {
                out.push((Tok::Punct(c), line));
            }
            i += 1;
        }
    }
    out
}

fn ident(chars: &[char], i: &mut usize) -> String {
    let start = *i;
    while *i < chars.len() && (chars[*i].is_alphanumeric() || chars[*i] == '_') {
        *i += 1;
    }
    chars[start..*i].iter().collect()
}

/// The names of the file modules declared `#[cfg(test)] mod NAME;`.
pub fn test_modules(text: &str) -> Vec<String> {
    let toks = tokens(text);
    let mut found = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if let Some(after) = cfg_test_at(&toks, i) {
            let j = skip_attributes(&toks, after);
            if let [
                (Tok::Ident(m), _),
                (Tok::Ident(name), _),
                (Tok::Punct(';'), _),
                ..,
            ] = &toks[j..]
                && m == "mod"
            {
                found.push(name.clone());
            }
            i = after;
        } else {
            i += 1;
        }
    }
    found
}

/// If `#[cfg(test)]` starts at `i`, the index after it.
fn cfg_test_at(toks: &[(Tok, usize)], i: usize) -> Option<usize> {
    let want = [
        Tok::Punct('#'),
        Tok::Punct('['),
        Tok::Ident("cfg".into()),
        Tok::Punct('('),
        Tok::Ident("test".into()),
        Tok::Punct(')'),
        Tok::Punct(']'),
    ];
    let got = toks.get(i..i + want.len())?;
    got.iter()
        .map(|(t, _)| t)
        .eq(want.iter())
        .then_some(i + want.len())
}

/// The index after any `#[…]` attributes starting at `i`.
fn skip_attributes(toks: &[(Tok, usize)], mut i: usize) -> usize {
    while matches!(toks.get(i), Some((Tok::Punct('#'), _)))
        && matches!(toks.get(i + 1), Some((Tok::Punct('['), _)))
    {
        let mut depth = 0;
        i += 1;
        while let Some((t, _)) = toks.get(i) {
            i += 1;
            match t {
                Tok::Punct('[') => depth += 1,
                Tok::Punct(']') => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    i
}

/// The index after the item starting at `i`: its `;`, or its `{…}` block.
fn skip_item(toks: &[(Tok, usize)], mut i: usize) -> usize {
    let mut depth = 0;
    while let Some((t, _)) = toks.get(i) {
        i += 1;
        match t {
            Tok::Punct(';') if depth == 0 => return i,
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    i
}

/// Every `crate::`, `super::` and `self::` path in `text` outside
/// `#[cfg(test)]` items, `use` groups expanded.
pub fn references(text: &str) -> Vec<Reference> {
    let toks = tokens(text);
    let mut out = Vec::new();
    // Inline modules open, with the brace depth their block started at.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    while i < toks.len() {
        if let Some(after) = cfg_test_at(&toks, i) {
            i = skip_item(&toks, skip_attributes(&toks, after));
            continue;
        }
        match &toks[i].0 {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth -= 1;
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            Tok::Ident(m) if m == "mod" => {
                if let [(Tok::Ident(name), _), (Tok::Punct('{'), _), ..] = &toks[i + 1..] {
                    inline.push((name.clone(), depth));
                    depth += 1;
                    i += 3;
                    continue;
                }
            }
            Tok::Ident(kw) if kw == "in" && i > 0 && toks[i - 1].0 == Tok::Punct('(') => {
                // `pub(in crate::x)`: a visibility, not a reference.
                while i < toks.len() && toks[i].0 != Tok::Punct(')') {
                    i += 1;
                }
                continue;
            }
            Tok::Ident(start)
                if matches!(start.as_str(), "crate" | "super" | "self")
                    && toks.get(i + 1).is_some_and(|(t, _)| *t == Tok::Path)
                    && !(i > 0 && toks[i - 1].0 == Tok::Punct('$'))
                    && !(i > 0 && toks[i - 1].0 == Tok::Path) =>
            {
                let names: Vec<String> = inline.iter().map(|(n, _)| n.clone()).collect();
                let mut paths = Vec::new();
                i = tree(&toks, i, Vec::new(), &mut paths);
                for (path, line) in paths {
                    out.push(Reference {
                        path,
                        line,
                        inline: names.clone(),
                    });
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Read the use tree (or plain path) at `i` under `prefix`, adding each full
/// path to `out`; returns the index after it.
fn tree(
    toks: &[(Tok, usize)],
    mut i: usize,
    mut prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, usize)>,
) -> usize {
    let line = toks.get(i).map_or(0, |t| t.1);
    loop {
        match toks.get(i) {
            Some((Tok::Ident(s), _)) if s == "self" && !prefix.is_empty() => {
                i += 1;
                break;
            }
            Some((Tok::Ident(s), _)) => {
                prefix.push(s.clone());
                i += 1;
            }
            Some((Tok::Punct('{'), _)) => {
                i += 1;
                while let Some((t, _)) = toks.get(i) {
                    match t {
                        Tok::Punct('}') => return i + 1,
                        Tok::Punct(',') => i += 1,
                        _ => i = tree(toks, i, prefix.clone(), out),
                    }
                }
                return i;
            }
            Some((Tok::Punct('*'), _)) => {
                i += 1;
                break;
            }
            _ => break,
        }
        if toks.get(i).is_some_and(|(t, _)| *t == Tok::Path) {
            i += 1;
        } else {
            break;
        }
    }
    if matches!(toks.get(i), Some((Tok::Ident(a), _)) if a == "as") {
        i += 2;
    }
    out.push((prefix, line));
    i
}
