//! Every input in the `listener_body` fuzz corpus and every crash the
//! fuzzer ever found, replayed through the fuzz target's own check, so
//! that an ordinary `cargo test` keeps them fixed without a sanitizer
//! build.

#[path = "../../fuzz/common/listener_body.rs"]
mod check;

use std::path::Path;

#[test]
fn the_listener_body_corpus_and_regressions_pass_the_fuzz_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut replayed = 0;
    for dir in ["corpus/listener_body", "regressions/listener_body"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if path.is_file() && !hidden {
                let data = std::fs::read(&path).unwrap();
                let passed = std::panic::catch_unwind(|| check::check(&data)).is_ok();
                assert!(passed, "{} fails the fuzz check", path.display());
                replayed += 1;
            }
        }
    }
    assert!(replayed > 0, "no corpus found under {}", root.display());
}
