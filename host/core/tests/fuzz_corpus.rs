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

#[path = "../../../fuzz/common/batch_codec.rs"]
mod batch_codec;

#[test]
fn the_batch_codec_corpus_and_regressions_pass_the_fuzz_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let replayed = replay::replay(&root, "batch_codec", batch_codec::check);
    assert!(replayed >= 3, "no corpus found under {}", root.display());
    let seed = std::fs::read(root.join("corpus/batch_codec/seed-every_type")).expect("a seed");
    let batch = graft_core::batch::codec::decode(&seed).expect("the seed is a batch");
    assert_eq!(batch.len(), 2, "the check above went past decoding");
}
