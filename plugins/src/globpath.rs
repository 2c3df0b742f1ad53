//! File globs as Telegraf's inputs write them (`inputs.tail`'s `files`,
//! `inputs.exec`'s program paths): `*`, `?` and `[...]` within one path
//! element, `**` across elements (`/var/log/**.log`), `[^...]` as
//! `[!...]`. A pattern without wildcards names its file directly.

use std::path::{Component, Path, PathBuf};

use anyhow::{Result, anyhow};
use globset::{GlobBuilder, GlobMatcher};

/// Directory entries one expansion looks at, at most.
const MAX_ENTRIES_WALKED: usize = 200_000;

/// One compiled pattern.
#[derive(Debug, Clone)]
pub struct GlobPath {
    pattern: String,
    matcher: Option<GlobMatcher>,
    /// The directory before the first element with a wildcard.
    root: PathBuf,
    /// How deep below `root` a match may be (`None`: any depth, for `**`).
    depth: Option<usize>,
}

/// Whether `s` holds a wildcard.
pub fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

impl GlobPath {
    /// Compile `pattern`; the error names it.
    pub fn new(pattern: &str) -> Result<Self> {
        if !has_wildcard(pattern) {
            return Ok(Self {
                pattern: pattern.to_owned(),
                matcher: None,
                root: PathBuf::from(pattern),
                depth: Some(0),
            });
        }
        let matcher = GlobBuilder::new(&super_asterisk(&pattern.replace("[^", "[!")))
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| anyhow!("glob {pattern:?}: {e}"))?
            .compile_matcher();
        let mut root = PathBuf::new();
        let mut rest = Vec::new();
        for c in Path::new(pattern).components() {
            let text = c.as_os_str().to_string_lossy();
            if rest.is_empty() && !has_wildcard(&text) {
                root.push(c);
            } else {
                rest.push(text.into_owned());
            }
        }
        if root.as_os_str().is_empty() {
            root.push(Component::CurDir);
        }
        let depth = (!rest.iter().any(|p| p.contains("**"))).then_some(rest.len());
        Ok(Self {
            pattern: pattern.to_owned(),
            matcher: Some(matcher),
            root,
            depth,
        })
    }

    /// The pattern as written.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The files (not directories) that match now, sorted, at most `max`;
    /// the flag says whether more matched.
    pub fn files(&self, max: usize) -> (Vec<PathBuf>, bool) {
        let Some(matcher) = &self.matcher else {
            let found = std::fs::metadata(&self.root).is_ok_and(|m| !m.is_dir());
            return (
                found.then(|| self.root.clone()).into_iter().collect(),
                false,
            );
        };
        let mut walk = walkdir::WalkDir::new(&self.root)
            .min_depth(1)
            .sort_by_file_name();
        if let Some(depth) = self.depth {
            walk = walk.max_depth(depth);
        }
        let mut out = Vec::new();
        let mut more = false;
        for entry in walk.into_iter().take(MAX_ENTRIES_WALKED).flatten() {
            if entry.file_type().is_dir() {
                continue;
            }
            let path = if self.root.as_os_str() == "." {
                entry.path().strip_prefix(".").unwrap_or(entry.path())
            } else {
                entry.path()
            };
            if matcher.is_match(path) {
                if out.len() == max {
                    more = true;
                    break;
                }
                out.push(path.to_path_buf());
            }
        }
        out.sort();
        (out, more)
    }
}

/// `**` that starts an element but does not fill it (`dir/**.log`) is
/// Telegraf's "super asterisk": any run of elements, then the rest of the
/// name (`dir/**/*.log`).
fn super_asterisk(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut rest = pattern;
    while let Some(i) = rest.find("**") {
        let starts = i == 0 || rest[..i].ends_with('/');
        let after = &rest[i + 2..];
        out.push_str(&rest[..i + 2]);
        if starts && !after.is_empty() && !after.starts_with(['/', '*']) {
            out.push_str("/*");
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_telegraf_documents() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in [
            "a.log",
            "b.txt",
            "log1",
            "log3",
            "sub/c.log",
            "sub/deep/d.log",
        ] {
            let p = d.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        }
        let names = |pattern: &str| {
            let g = GlobPath::new(&format!("{}/{pattern}", d.display())).unwrap();
            let (files, _) = g.files(100);
            files
                .iter()
                .map(|p| p.strip_prefix(d).unwrap().display().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names("*.log"), ["a.log"]);
        assert_eq!(names("**.log"), ["a.log", "sub/c.log", "sub/deep/d.log"]);
        assert_eq!(names("*/*.log"), ["sub/c.log"]);
        assert_eq!(names("log[^1-2]*"), ["log3"]);
        assert_eq!(names("log[!1-2]*"), ["log3"]);
        assert_eq!(names("b.txt"), ["b.txt"]);
        assert!(names("missing").is_empty());
        assert!(names("sub").is_empty(), "a directory is not a file");
        let g = GlobPath::new(&format!("{}/**", d.display())).unwrap();
        assert_eq!(g.files(2), (g.files(2).0, true));
        assert!(GlobPath::new("/x/[a").is_err());
    }
}
