//! Replays every fuzz corpus and regression file through the entry points
//! the fuzz targets use (`graft_plugins::fuzzing`), so that CI checks them
//! under plain `cargo test`, without a sanitizer build.

#[path = "../../fuzz/common/replay.rs"]
mod replay;

use std::path::Path;

/// Every corpus and regression file of target `name` through `entry`.
fn replay(name: &str, entry: fn(&[u8])) -> usize {
    replay::replay(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz"),
        name,
        entry,
    )
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

#[test]
fn message_body_corpus_replays() {
    assert!(replay("message_body", graft_plugins::fuzzing::message_body) >= 5);
}

#[test]
fn remote_write_corpus_replays() {
    assert!(replay("remote_write", graft_plugins::fuzzing::remote_write) >= 6);
}

#[test]
fn prometheus_text_corpus_replays() {
    assert!(replay("prometheus_text", graft_plugins::fuzzing::prometheus_text) >= 6);
}

#[test]
fn otlp_metrics_corpus_replays() {
    assert!(replay("otlp_metrics", graft_plugins::fuzzing::otlp_metrics) >= 6);
}

#[test]
fn redis_corpus_replays() {
    assert!(replay("redis", graft_plugins::fuzzing::redis_reply) >= 4);
}

#[test]
fn collectd_corpus_replays() {
    assert!(replay("collectd", graft_plugins::fuzzing::collectd) >= 6);
}
