//! Updating `bench/RESULTS.md` after a run limited with `--only`: each
//! `## ` section the run measured replaces its namesake in the existing
//! file (a new one goes before `## Machine`), and each target it measured
//! replaces its row of the targets table and its note among the misses,
//! so that re-running one part keeps the figures of the others.

use crate::report::Target;

/// Split Markdown into a preamble and `## ` sections (title line included).
fn sections(text: &str) -> (String, Vec<(String, String)>) {
    let mut pre = String::new();
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.split_inclusive('\n') {
        if let Some(title) = line.strip_prefix("## ") {
            out.push((title.trim().to_owned(), String::new()));
        }
        match out.last_mut() {
            Some((_, body)) => body.push_str(line),
            None => pre.push_str(line),
        }
    }
    (pre, out)
}

/// The row of a target in the targets table.
fn row(t: &Target) -> String {
    format!(
        "| {} | {} | {} |\n",
        t.what,
        t.figure,
        if t.met { "✓" } else { "✗" }
    )
}

/// The targets section with `targets`' rows and notes replaced or added.
fn update_targets(section: &str, targets: &[Target]) -> String {
    let mut lines: Vec<String> = section.split_inclusive('\n').map(str::to_owned).collect();
    for t in targets {
        let cell = format!("| {} |", t.what);
        let note = format!("- {}:", t.what);
        lines.retain(|l| !l.starts_with(&note));
        match lines.iter().position(|l| l.starts_with(&cell)) {
            Some(i) => lines[i] = row(t),
            None => {
                let last = lines.iter().rposition(|l| l.starts_with('|'));
                lines.insert(last.map_or(lines.len(), |i| i + 1), row(t));
            }
        }
        if let Some(n) = t.note.as_deref().filter(|_| !t.met) {
            if let Some(i) = lines.iter().position(|l| l.starts_with("Every target")) {
                lines[i] = "**Missed:**\n\n".to_owned();
            } else if !lines.iter().any(|l| l.starts_with("**Missed:**")) {
                lines.push("\n**Missed:**\n".to_owned());
            }
            while lines.last().is_some_and(|l| l.trim().is_empty()) {
                lines.pop();
            }
            lines.push(format!("{note} {n}\n\n"));
        }
    }
    // A misses header left with no note under it: nothing was missed.
    if let Some(i) = lines.iter().position(|l| l.starts_with("**Missed:**"))
        && !lines[i..].iter().any(|l| l.starts_with("- "))
    {
        lines.truncate(i);
        lines.push("Every target measured in this run was met.\n\n".to_owned());
    }
    lines.concat()
}

/// `existing` with the sections of `tables` and the `targets` put in;
/// `stamp` (a line saying when and how they were measured) goes under the
/// title of each section put in.
pub fn merge(existing: &str, tables: &str, targets: &[Target], stamp: &str) -> String {
    let (pre, mut old) = sections(existing);
    let (_, new) = sections(tables);
    for (title, body) in new {
        let body = match body.split_once('\n') {
            Some((head, rest)) if !stamp.is_empty() => format!("{head}\n\n{stamp}\n{rest}"),
            _ => body,
        };
        match old.iter().position(|(t, _)| *t == title) {
            Some(i) => old[i].1 = body,
            None => {
                let at = old
                    .iter()
                    .position(|(t, _)| t == "Machine")
                    .unwrap_or(old.len());
                old.insert(at, (title, body));
            }
        }
    }
    if let Some(t) = old.iter_mut().find(|(t, _)| t == "Targets") {
        t.1 = update_targets(&t.1, targets);
    }
    let mut s = pre;
    for (_, body) in old {
        s.push_str(&body);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXISTING: &str = "# results\n\nintro\n\n## Targets\n\n| target | this run | |\n|---|---|---|\n| a | 1 | ✓ |\n| d | old | ✓ |\n\nEvery target measured in this run was met.\n\n## A\n\nold a\n\n## D\n\nold d\n\n## Machine\n\n- cpu\n";

    fn target(what: &'static str, met: bool) -> Target {
        Target {
            what,
            figure: "new".into(),
            met,
            note: Some(format!("{what} missed")),
        }
    }

    #[test]
    fn replaces_what_was_measured_and_keeps_the_rest() {
        let s = merge(EXISTING, "## D\n\nnew d\n\n", &[target("d", true)], "");
        assert_eq!(
            s,
            EXISTING
                .replace("| d | old | ✓ |", "| d | new | ✓ |")
                .replace("old d", "new d")
        );
    }

    #[test]
    fn adds_new_sections_before_the_machine_and_notes_misses() {
        let s = merge(EXISTING, "## E\n\ne\n\n", &[target("e", false)], "_today_");
        assert!(s.contains("| d | old | ✓ |\n| e | new | ✗ |\n"), "{s}");
        assert!(s.contains("**Missed:**\n\n- e: e missed\n\n## A"), "{s}");
        assert!(
            s.contains("old d\n\n## E\n\n_today_\n\ne\n\n## Machine"),
            "{s}"
        );
        assert!(!s.contains("Every target"), "{s}");
        // Measured again and met: the note goes.
        let again = merge(&s, "## E\n\ne2\n\n", &[target("e", true)], "");
        assert!(!again.contains("e missed"), "{again}");
        assert!(again.contains("✓ |\n\nEvery target measured"), "{again}");
        assert!(again.contains("| e | new | ✓ |"), "{again}");
    }
}
