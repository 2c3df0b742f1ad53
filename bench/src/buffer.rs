//! Memory per buffered metric: graft with an output whose server refuses
//! every connection and a buffer large enough for everything, fed over
//! InfluxDB's write API. The growth of its resident memory, divided by the
//! metrics its buffer holds (read back through `inputs.internal`, so that
//! dropped metrics cannot flatter the figure).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::net::HttpPoster;
use crate::peers;
use crate::procfs::Memory;

/// Lines per write request: Telegraf's default `metric_batch_size`, as a
/// Telegraf agent forwarding to graft would send them.
pub const LINES_PER_REQUEST: usize = 1000;

/// Metrics sent before the first reading, so that buffers, pools and code
/// that any write touches are already in.
const WARMUP_METRICS: usize = 20_000;

/// The figures.
#[derive(Debug, Clone)]
pub struct Buffered {
    pub metrics: usize,
    pub before: Memory,
    pub after: Memory,
    /// What `inputs.internal` said the refused output holds, and dropped.
    pub buffer_size: u64,
    pub dropped: u64,
}

impl Buffered {
    /// Resident bytes per buffered metric.
    pub fn bytes_per_metric(&self) -> f64 {
        (self.after.rss as f64 - self.before.rss as f64) * 1024.0 / self.metrics as f64
    }

    /// The same, counting anonymous memory only.
    pub fn anon_bytes_per_metric(&self) -> f64 {
        (self.after.anon as f64 - self.before.anon as f64) * 1024.0 / self.metrics as f64
    }
}

/// One metric shaped like Telegraf's `cpu` input: tags `cpu` and `host`,
/// its ten float fields; 64 hosts of 8 CPUs, one round every 10 s.
pub fn cpu_line(i: usize, out: &mut String) {
    use std::fmt::Write as _;
    let (host, cpu, round) = (i / 8 % 64, i % 8, i / 512);
    let ts = 1_700_000_000_000_000_000i64 + round as i64 * 10_000_000_000;
    let x = (i % 9973) as f64 / 9973.0;
    let _ = writeln!(
        out,
        "cpu,cpu=cpu{cpu},host=host{host:02} usage_user={:.4},usage_system={:.4},usage_idle={:.4},\
         usage_nice=0,usage_iowait={:.4},usage_irq=0,usage_softirq={:.4},usage_steal=0,\
         usage_guest=0,usage_guest_nice=0 {ts}",
        20.0 * x,
        5.0 * x + 1.0,
        70.0 - 25.0 * x,
        0.5 * x,
        0.25 * x,
    );
}

fn config(port: u16, refused: u16, limit: usize) -> String {
    format!(
        r#"[agent]
  interval = "1s"
  flush_interval = "1s"
  metric_batch_size = {LINES_PER_REQUEST}
  metric_buffer_limit = {limit}
  omit_hostname = true
[[inputs.influxdb_listener]]
  service_address = "127.0.0.1:{port}"
[[inputs.internal]]
  collect_memstats = false
# The output under test: nothing listens on its port.
[[outputs.influxdb]]
  urls = ["http://127.0.0.1:{refused}"]
  skip_database_creation = true
  timeout = "1s"
# Where the harness reads the buffer's size.
[[outputs.file]]
  files = ["{{dir}}/internal.out"]
  namepass = ["internal_write"]
"#
    )
}

/// The numeric fields of the latest `internal_write` sample of the output
/// tagged `output=<output>` (whatever its other tags).
pub fn output_state(path: &Path, output: &str) -> Option<BTreeMap<String, u64>> {
    let text = std::fs::read_to_string(path).ok()?;
    let want = format!("output={output}");
    let line = text.lines().rev().find(|l| {
        let head = l.split(' ').next().unwrap_or("");
        let mut parts = head.split(',');
        parts.next() == Some("internal_write") && parts.any(|t| t == want)
    })?;
    let fields = line.split(' ').nth(1)?;
    Some(
        fields
            .split(',')
            .filter_map(|f| {
                let (k, v) = f.split_once('=')?;
                Some((k.to_owned(), v.trim_end_matches(['i', 'u']).parse().ok()?))
            })
            .collect(),
    )
}

/// (buffer_size, metrics_dropped) of the refused output in the latest
/// `internal_write` line.
fn buffer_state(path: &Path) -> Option<(u64, u64)> {
    let f = output_state(path, "influxdb")?;
    Some((*f.get("buffer_size")?, *f.get("metrics_dropped")?))
}

/// Send metrics `from..to` in requests of [`LINES_PER_REQUEST`].
fn feed(poster: &mut HttpPoster, from: usize, to: usize) -> Result<()> {
    let mut body = String::with_capacity(LINES_PER_REQUEST * 260);
    let mut i = from;
    while i < to {
        body.clear();
        let end = (i + LINES_PER_REQUEST).min(to);
        for j in i..end {
            cpu_line(j, &mut body);
        }
        poster.post("/write?db=bench&precision=ns", body.as_bytes())?;
        i = end;
    }
    Ok(())
}

/// Wait until the refused output holds `n` metrics.
fn wait_buffered(path: &Path, n: usize, graft: &mut peers::Running) -> Result<(u64, u64)> {
    let start = Instant::now();
    loop {
        graft.check_alive()?;
        match buffer_state(path) {
            Some((size, dropped)) if dropped > 0 => {
                bail!("graft dropped {dropped} metrics (buffer {size}); the buffer is too small")
            }
            Some((size, dropped)) if size as usize >= n => return Ok((size, dropped)),
            state => {
                if start.elapsed() > Duration::from_secs(120) {
                    bail!("the buffer never reached {n} metrics: {state:?}");
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Feed `metrics` into a graft whose output refuses them.
pub fn run(graft_bin: &Path, metrics: usize) -> Result<Buffered> {
    let port = peers::free_port()?;
    let refused = peers::free_port()?;
    let limit = (metrics + WARMUP_METRICS) * 2;
    let mut graft = peers::graft("graft", graft_bin, &config(port, refused, limit))?;
    graft.wait_listening(port)?;
    let state = graft.dir.path().join("internal.out");
    let mut poster = HttpPoster::new(port);

    feed(&mut poster, 0, WARMUP_METRICS)?;
    wait_buffered(&state, WARMUP_METRICS, &mut graft)?;
    std::thread::sleep(Duration::from_secs(2));
    let before = Memory::of(graft.pid())?;

    feed(&mut poster, WARMUP_METRICS, WARMUP_METRICS + metrics)?;
    let (buffer_size, dropped) = wait_buffered(&state, WARMUP_METRICS + metrics, &mut graft)?;
    std::thread::sleep(Duration::from_secs(2));
    let after = Memory::of(graft.pid())?;
    // The output kept failing: nothing was written or dropped since.
    if let Some((size, d)) = buffer_state(&state)
        && (d > 0 || (size as usize) < WARMUP_METRICS + metrics)
    {
        bail!("the buffer changed while measuring: {size} held, {d} dropped");
    }
    Ok(Buffered {
        metrics,
        before,
        after,
        buffer_size,
        dropped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lines_look_like_telegrafs() {
        let mut s = String::new();
        cpu_line(513, &mut s);
        assert!(s.starts_with("cpu,cpu=cpu1,host=host00 usage_user="), "{s}");
        assert!(s.ends_with(" 1700000010000000000\n"), "{s}");
        let fields = s.split(' ').nth(1).unwrap();
        assert_eq!(fields.split(',').count(), 10);
    }

    #[test]
    fn reads_the_buffer_from_internal_write() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("i");
        std::fs::write(
            &p,
            "internal_write,output=influxdb metrics_added=5i,metrics_dropped=0i,buffer_size=5i 1\n\
             internal_write,output=file buffer_size=0i,metrics_dropped=0i 1\n\
             internal_write,output=influxdb metrics_added=9i,metrics_dropped=1i,buffer_size=8i 2\n\
             internal_write,buffer_strategy=disk,output=graphite buffer_size=3i,buffer_bytes=90i 2\n",
        )
        .unwrap();
        assert_eq!(buffer_state(&p), Some((8, 1)));
        let g = output_state(&p, "graphite").unwrap();
        assert_eq!((g["buffer_size"], g["buffer_bytes"]), (3, 90));
        assert_eq!(buffer_state(&dir.path().join("none")), None);
    }
}
