//! Graft agents around a NATS server, for the NATS tests: an edge agent
//! config (numbered lines posted to its listener, published by
//! `outputs.nats`), a consumer agent config (`inputs.nats_consumer` into a
//! file, its counters into another), and waiting on what they do.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::nats::{gather_fields, graft_log, seqs};
use crate::servers::listening;
use crate::stop;

/// The `[agent]` table of every test agent: flushes every 100 ms.
pub const AGENT: &str = r#"[agent]
  interval = "1s"
  round_interval = false
  flush_interval = "100ms"
  metric_batch_size = 2000
  metric_buffer_limit = 1000000
  omit_hostname = true
"#;

/// An edge agent: numbered lines posted to its listener on `listen` go to
/// `outputs.nats` with `output` (its table's body).
pub fn edge(listen: u16, output: &str) -> String {
    format!(
        "{AGENT}[[inputs.influxdb_listener]]\n  service_address = \"127.0.0.1:{listen}\"\n\
         [[outputs.nats]]\n{output}\n"
    )
}

/// A consumer agent: `inputs.nats_consumer` with `input` (its table's
/// body), the `seq` metrics to `out`, its own counters to `internal`.
pub fn consumer(input: &str, out: &Path, internal: &Path) -> String {
    format!(
        "{AGENT}[[inputs.nats_consumer]]\n{input}\n\
         [[inputs.internal]]\n  collect_memstats = false\n\
         [[outputs.file]]\n  files = [\"{}\"]\n  namepass = [\"seq\"]\n\
         [[outputs.file]]\n  files = [\"{}\"]\n  namepass = [\"internal_gather\"]\n",
        out.display(),
        internal.display()
    )
}

/// Wait until graft listens on `port`, failing with its log.
pub fn wait_listening(child: &mut Child, port: u16, dir: &Path, name: &str) {
    let start = Instant::now();
    while !listening(port) {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{name} exited with {status}: {}", graft_log(dir, name));
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{name} did not listen: {}",
            graft_log(dir, name)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Poll until `out` holds every number below `n` (at least once); fail
/// naming what is missing.
pub fn wait_for_all(out: &[&Path], n: u64, limit: Duration, context: impl Fn() -> String) {
    let start = Instant::now();
    loop {
        let mut seen = std::collections::BTreeSet::new();
        for o in out {
            seen.extend(seqs(o, "seq").into_keys());
        }
        if (0..n).all(|i| seen.contains(&i)) {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "after {limit:?} {} of {n} numbers arrived (first missing {:?}): {}",
            seen.len(),
            (0..n).find(|i| !seen.contains(i)),
            context()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// SIGTERM graft `name`, check that it exits cleanly in time, and return
/// its log.
pub fn stop_graft(child: &mut Child, dir: &Path, name: &str) -> String {
    let (status, _) = stop(child, Duration::from_secs(15));
    let log = graft_log(dir, name);
    assert!(status.success(), "{name} exited with {status}: {log}");
    log
}

/// The latest value of counter `field` of the consumer's `internal_gather`.
pub fn counter(internal: &Path, field: &str) -> f64 {
    gather_fields(internal, "nats_consumer")
        .and_then(|f| f.get(field).copied())
        .unwrap_or(0.0)
}
