//! No import cycles between the modules of `host/` (crate `graft`) or
//! `plugins/` (crate `graft_plugins`).
//!
//! The module graph is read from the sources: every `.rs` file under
//! `src/` is a module (`a/b.rs` and `a/b/mod.rs` are `a::b`), and every path
//! starting with `crate::`, `super::` or `self::` (in a `use`, groups
//! expanded, or inline in code) is an edge to the deepest module it names.
//! Edges from a module into its own submodules are left out (a parent
//! declares and re-exports its children), and so is everything under
//! `#[cfg(test)]`. A cycle fails the test, printed edge by edge with the
//! file and line of each reference, unless it is in [`ALLOWED`]; an entry of
//! [`ALLOWED`] that is no longer a cycle fails it too, so the list only
//! shrinks.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use graft_test_support::rust_source::{references, test_modules};

/// Cycles tolerated, each as its modules in order. Empty: the list exists
/// so that an exception is written down with its reason, never added
/// silently.
const ALLOWED: &[&[&str]] = &[];

/// One reference from a module to another.
#[derive(Clone, Debug)]
struct Edge {
    file: PathBuf,
    line: usize,
}

/// The modules of one crate and the references between them.
#[derive(Default)]
struct Graph {
    modules: BTreeSet<String>,
    edges: BTreeMap<(String, String), Vec<Edge>>,
}

#[test]
fn no_import_cycles_between_modules() {
    let root = graft_test_support::workspace_root();
    let mut report = Vec::new();
    let mut all_cycles = BTreeSet::new();
    let mut graphs = Vec::new();
    for (krate, dir) in [("graft", "host/src"), ("graft_plugins", "plugins/src")] {
        let graph = read_crate(krate, &root, dir);
        assert!(
            graph.modules.len() > 10,
            "{krate}: only {} modules found in {dir}",
            graph.modules.len()
        );
        for cycle in cycles(&graph) {
            let allowed = ALLOWED
                .iter()
                .any(|a| canonical(&a.iter().map(|m| m.to_string()).collect::<Vec<_>>()) == cycle);
            if !allowed {
                report.push(describe(&graph, &cycle));
            }
            all_cycles.insert(cycle);
        }
        graphs.push(graph);
    }
    for entry in ALLOWED {
        let entry: Vec<String> = entry.iter().map(|m| m.to_string()).collect();
        let still = graphs.iter().any(|g| is_cycle(g, &entry));
        if !still {
            report.push(format!(
                "allowed cycle {} is no longer a cycle: remove it from ALLOWED",
                entry.join(" -> ")
            ));
        }
    }
    assert!(
        report.is_empty(),
        "{} problem(s) in the module graph:\n\n{}",
        report.len(),
        report.join("\n")
    );
}

/// The test's own parser finds the references it must.
#[test]
fn references_are_read_as_rust_reads_them() {
    let text = r#"
//! `crate::doc::Comment` is not a reference.
use crate::a::{b::{self, C}, d::E};
use super::{f, g::H as I};
pub(in crate::vis) fn x() -> crate::inline::T { let s = "crate::string::S"; 'c'; todo!() }
#[cfg(test)]
use crate::test_only::X;
#[cfg(test)]
mod tests { use crate::in_tests::Y; }
#[cfg(test)]
#[path = "x.rs"]
mod file_tests;
mod inner { use super::sibling::Z; }
"#;
    let refs = references(text);
    let paths: Vec<String> = refs
        .iter()
        .map(|r| format!("{}:{}", r.path.join("::"), r.line))
        .collect();
    assert_eq!(
        paths,
        [
            "crate::a::b:3",
            "crate::a::b::C:3",
            "crate::a::d::E:3",
            "super::f:4",
            "super::g::H:4",
            "crate::inline::T:5",
            "super::sibling::Z:13",
        ]
    );
    assert_eq!(refs[6].inline, ["inner"]);
    assert_eq!(test_modules(text), ["file_tests"]);
}

/// Read every module of the crate whose sources are in `dir` (under the
/// workspace `root`).
fn read_crate(krate: &str, root: &Path, dir: &str) -> Graph {
    let src = &root.join(dir);
    let mut files = Vec::new();
    walk(src, &mut files);
    let mut graph = Graph::default();
    let mut test_mods: BTreeSet<String> = BTreeSet::new();
    let mut parsed = Vec::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap();
        let Some(module) = module_of(krate, rel) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for t in test_modules(&text) {
            test_mods.insert(format!("{module}::{t}"));
        }
        parsed.push((module, file, text));
    }
    let is_test = |m: &str| {
        test_mods
            .iter()
            .any(|t| m == t || m.starts_with(&format!("{t}::")))
    };
    parsed.retain(|(m, ..)| !is_test(m));
    for (module, _, text) in &parsed {
        graph.modules.insert(module.clone());
        // Inline modules that hold a reference are modules too.
        for r in references(text) {
            let mut m = module.clone();
            for name in &r.inline {
                m = format!("{m}::{name}");
                graph.modules.insert(m.clone());
            }
        }
    }
    for (module, file, text) in &parsed {
        for r in references(text) {
            let mut here = module.clone();
            for name in &r.inline {
                here = format!("{here}::{name}");
            }
            let Some(target) = resolve(krate, &here, &r.path, &graph.modules) else {
                continue;
            };
            if target == here || target.starts_with(&format!("{here}::")) {
                continue;
            }
            // One line may name several items of one module: one edge.
            let edges = graph.edges.entry((here, target)).or_default();
            let file = file.strip_prefix(root).unwrap_or(file);
            if !edges.iter().any(|e| e.file == file && e.line == r.line) {
                edges.push(Edge {
                    file: file.to_owned(),
                    line: r.line,
                });
            }
        }
    }
    graph
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// `a/b.rs` and `a/b/mod.rs` are `krate::a::b`; `lib.rs` is `krate`;
/// binaries (`main.rs`, `bin/`) are other crates.
fn module_of(krate: &str, rel: &Path) -> Option<String> {
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts[0] == "main.rs" || parts[0] == "bin" {
        return None;
    }
    let mut names: Vec<&str> = parts.iter().map(String::as_str).collect();
    let last = names.pop().unwrap().trim_end_matches(".rs");
    if last != "mod" && last != "lib" {
        names.push(last);
    }
    let mut m = krate.to_owned();
    for n in names {
        m = format!("{m}::{n}");
    }
    Some(m)
}

/// The deepest module of `modules` that `path` (as written in module `here`)
/// names.
fn resolve(krate: &str, here: &str, path: &[String], modules: &BTreeSet<String>) -> Option<String> {
    let mut base: Vec<&str> = here.split("::").collect();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base = vec![krate];
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        _ => {}
    }
    while rest.first().is_some_and(|s| s == "super") {
        if base.len() == 1 {
            return None;
        }
        base.pop();
        rest = &rest[1..];
    }
    let mut best = base.join("::");
    let mut m = best.clone();
    for seg in rest {
        m = format!("{m}::{seg}");
        if modules.contains(&m) {
            best = m.clone();
        } else {
            break;
        }
    }
    Some(best)
}

/// One shortest cycle through each edge that lies on a cycle, each in
/// canonical order (starting at its least module), without repeats.
fn cycles(g: &Graph) -> BTreeSet<Vec<String>> {
    let mut found = BTreeSet::new();
    for (from, to) in g.edges.keys() {
        if let Some(mut path) = shortest_path(g, to, from) {
            path.pop();
            let mut cycle = vec![from.clone()];
            cycle.extend(path);
            found.insert(canonical(&cycle));
        }
    }
    found
}

/// The modules from `a` to `b` along edges, both included.
fn shortest_path(g: &Graph, a: &str, b: &str) -> Option<Vec<String>> {
    let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([a]);
    let mut seen = BTreeSet::from([a]);
    while let Some(m) = queue.pop_front() {
        if m == b {
            let mut path = vec![b.to_owned()];
            let mut at = b;
            while at != a {
                at = prev[at];
                path.push(at.to_owned());
            }
            path.reverse();
            return Some(path);
        }
        for (from, to) in g.edges.keys() {
            if from == m && seen.insert(to) {
                prev.insert(to, from);
                queue.push_back(to);
            }
        }
    }
    None
}

fn canonical(cycle: &[String]) -> Vec<String> {
    let start = (0..cycle.len()).min_by_key(|&i| &cycle[i]).unwrap_or(0);
    cycle[start..]
        .iter()
        .chain(&cycle[..start])
        .cloned()
        .collect()
}

/// Whether every edge of `cycle` (closing back to its start) exists.
fn is_cycle(g: &Graph, cycle: &[String]) -> bool {
    (0..cycle.len()).all(|i| {
        let next = &cycle[(i + 1) % cycle.len()];
        g.edges.contains_key(&(cycle[i].clone(), next.clone()))
    })
}

/// A cycle, edge by edge, with where each reference is.
fn describe(g: &Graph, cycle: &[String]) -> String {
    let mut s = format!("cycle: {} -> {}\n", cycle.join(" -> "), cycle[0]);
    for i in 0..cycle.len() {
        let (from, to) = (&cycle[i], &cycle[(i + 1) % cycle.len()]);
        s.push_str(&format!("  {from} -> {to}\n"));
        for e in &g.edges[&(from.clone(), to.clone())] {
            s.push_str(&format!("    {}:{}\n", e.file.display(), e.line));
        }
    }
    s
}
