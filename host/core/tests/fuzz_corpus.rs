//! Every input in the `lineparse` fuzz corpus and every crash the fuzzer
//! ever found, replayed through the fuzz target's own check.

#[path = "../../../fuzz/common/lineparse.rs"]
mod check;
#[path = "../../../fuzz/common/replay.rs"]
mod replay;

use std::path::Path;

#[test]
fn the_lineparse_corpus_and_regressions_pass_the_fuzz_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let replayed = replay::replay(&root, "lineparse", check::check);
    assert!(replayed > 0, "no corpus found under {}", root.display());
}
