//! A metric's Graphite path: the template's parts (measurement, tags in
//! key order, the field's place), dots in tag values made `_`, the prefix,
//! and carbon's "compatible" sanitizing of tag names and values.

use std::borrow::Cow;

use graft_core::MetricRef;

/// A metric's path around its field: the parts before and after the
/// template's `field`.
pub(super) struct Bucket {
    pub head: String,
    pub tail: String,
}

impl Bucket {
    /// Write the path for `field` into `p`; a field named `value` is left
    /// out.
    pub fn write_with_field(&self, field: &str, p: &mut String) {
        for part in [
            self.head.as_str(),
            if field == "value" { "" } else { field },
            self.tail.as_str(),
        ] {
            if part.is_empty() {
                continue;
            }
            if !p.is_empty() {
                p.push('.');
            }
            p.push_str(part);
        }
    }
}

/// The path of a metric around its field, or `None` when the template
/// yields nothing.
pub(super) fn bucket(m: MetricRef<'_>, template: &str, prefix: &str) -> Option<Bucket> {
    let mut tags: Vec<(&str, &str)> = m.tags().collect();
    let mut out: Vec<Cow<'_, str>> = Vec::new();
    let mut field_at = None;
    let mut tags_at = None;
    for part in template.split('.') {
        match part {
            "measurement" => out.push(Cow::Borrowed(m.name())),
            "tags" => {
                tags_at.get_or_insert(out.len());
                out.push(Cow::Borrowed(""));
            }
            "field" => {
                field_at.get_or_insert(out.len());
                out.push(Cow::Borrowed(""));
            }
            key => {
                if let Some(i) = tags.iter().position(|(k, _)| *k == key) {
                    out.push(dots_to_underscores(tags[i].1));
                    tags.remove(i);
                }
            }
        }
    }
    if let Some(at) = tags_at {
        // Tags are sorted by key already.
        out[at] = Cow::Owned(
            tags.iter()
                .map(|(_, v)| dots_to_underscores(v))
                .collect::<Vec<_>>()
                .join("."),
        );
    }
    if out.is_empty() {
        return None;
    }
    let join = |parts: &[Cow<'_, str>]| -> String {
        let mut s = String::new();
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                s.push('.');
            }
            s.push_str(p);
        }
        s
    };
    let (mut head, tail) = match field_at {
        Some(f) => (join(&out[..f]), join(&out[f + 1..])),
        None => (join(&out), String::new()),
    };
    if !prefix.is_empty() {
        head = if head.is_empty() {
            prefix.to_owned()
        } else {
            format!("{prefix}.{head}")
        };
    }
    Some(Bucket { head, tail })
}

pub(super) fn dots_to_underscores(s: &str) -> Cow<'_, str> {
    if s.contains('.') {
        Cow::Owned(s.replace('.', "_"))
    } else {
        Cow::Borrowed(s)
    }
}

/// Carbon's tag rules: names without `;!^=` (nor other punctuation outside
/// Telegraf's allowed ranges), values without `;`, no leading `~`.
pub(super) fn compatible(name: &str, value: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| {
            let ok = c == ' '
                || ('"'..=':').contains(&c)
                || c == '<'
                || ('>'..=']').contains(&c)
                || c == '_'
                || ('a'..='~').contains(&c)
                || c.is_alphabetic();
            if ok { c } else { '_' }
        })
        .collect();
    let value: String = value
        .chars()
        .map(|c| {
            let ok = (' '..=':').contains(&c) || ('<'..='~').contains(&c) || c.is_alphabetic();
            if ok { c } else { '_' }
        })
        .collect();
    format!("{name}={}", value.trim_start_matches('~'))
}
