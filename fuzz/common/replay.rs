//! Replays a fuzz target's corpus and regressions through a check, for the
//! ordinary `cargo test` suites that include this file (`#[path]`), so that
//! CI keeps every input fixed without a sanitizer build.

use std::path::Path;

/// Feed every file of `fuzz/corpus/NAME` and `fuzz/regressions/NAME` below
/// `fuzz_dir` (hidden files left out) to `check`, which must not panic;
/// returns how many were replayed.
pub fn replay(fuzz_dir: &Path, name: &str, check: fn(&[u8])) -> usize {
    let mut replayed = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir.join(dir).join(name)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a corpus entry").path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if path.is_file() && !hidden {
                let data = std::fs::read(&path).expect("a corpus file");
                let passed = std::panic::catch_unwind(|| check(&data)).is_ok();
                assert!(passed, "{} fails the {name} fuzz check", path.display());
                replayed += 1;
            }
        }
    }
    replayed
}
