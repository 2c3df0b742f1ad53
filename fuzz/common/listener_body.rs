//! The check behind the `listener_body` fuzz target, shared with the
//! corpus test (`plugins/tests/fuzz_corpus.rs`): the InfluxDB listener's
//! request-body path (gzip or plain bytes → lines → batch → the 400
//! answer) never panics, stays within its limits, and accounts for every
//! line. The first byte chooses gzip or plain, the precision and the
//! limits; the rest is the body.

use std::sync::atomic::AtomicBool;

use graft_core::lineparse::{ParseOptions, Precision};
use graft_plugins::inputs::influxdb_listener::body::{BodyError, decode_and_parse, describe};

pub fn check(data: &[u8]) {
    let Some((&mode, raw)) = data.split_first() else {
        return;
    };
    let gzip = mode & 1 == 1;
    let precision = [
        Precision::Nanoseconds,
        Precision::Microseconds,
        Precision::Milliseconds,
        Precision::Seconds,
    ][usize::from(mode >> 1 & 3)];
    let limit = 1 << 16;
    let options = ParseOptions {
        precision,
        default_time: 1_700_000_000_000_000_000,
        max_tags: usize::from(mode >> 3 & 7) * 4,
        max_fields: usize::from(mode >> 6) * 4,
    };
    let stopping = AtomicBool::new(false);
    match decode_and_parse(raw, gzip, limit, &options, &stopping) {
        Ok(p) => {
            assert!(p.text.len() <= limit);
            let lines = p.text.split(|&c| c == b'\n').count();
            assert!(p.batch.len() + p.errors.len() <= lines);
            for m in p.batch.iter() {
                if options.max_tags > 0 {
                    assert!(m.tags().count() <= options.max_tags);
                }
                if options.max_fields > 0 {
                    assert!(m.fields().count() <= options.max_fields);
                }
            }
            if !p.errors.is_empty() {
                let answer = describe(&p.errors, p.batch.len(), &p.text);
                assert!(answer.contains("unable to parse '"), "{answer}");
            }
        }
        Err(BodyError::TooLarge) => assert!(gzip || raw.len() > limit),
        Err(BodyError::Bad(m)) => assert!(gzip, "{m}"),
        Err(BodyError::Stopping) => panic!("not stopping"),
    }
}
