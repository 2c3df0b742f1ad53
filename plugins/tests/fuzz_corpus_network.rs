//! Replays every fuzz corpus and regression file through the entry points
//! the fuzz targets use (`graft_plugins::fuzzing`), so that CI checks them
//! under plain `cargo test`, without a sanitizer build.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Feed every file of `corpus/NAME` and `regressions/NAME` to `entry`;
/// returns how many were replayed.
fn replay(name: &str, entry: fn(&[u8])) -> usize {
    let mut n = 0;
    for dir in ["corpus", "regressions"] {
        let dir = fuzz_dir().join(dir).join(name);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let path = e.expect("corpus entry").path();
            let data = std::fs::read(&path).expect("corpus file");
            let run = std::panic::catch_unwind(|| entry(&data));
            assert!(run.is_ok(), "{} breaks the {name} target", path.display());
            n += 1;
        }
    }
    n
}

#[test]
fn graphite_corpus_replays() {
    assert!(replay("graphite", graft_plugins::fuzzing::graphite_plaintext) >= 5);
}

#[test]
fn pickle_corpus_replays() {
    assert!(replay("pickle", graft_plugins::fuzzing::pickle_frame) >= 9);
}

#[test]
fn statsd_corpus_replays() {
    assert!(replay("statsd", graft_plugins::fuzzing::statsd_lines) >= 4);
}
