//! The corruption test of the durable buffer: an agent holds numbered
//! bodies in the disk buffer of an `outputs.influxdb` whose server is
//! down and stops (SIGTERM: a disk buffer keeps its metrics); the test
//! flips bytes in the middle of the last segment and cuts it short inside
//! its last record; the agent starts again with a real `influxd` up and
//! must count the bad records and deliver every intact body exactly as it
//! was sent, losing whole bodies only, and only those hit.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use graft_test_support::durable::{internal_writes, segments, start_logged as start};
use graft_test_support::influx_points::{Point, stored_points};
use graft_test_support::servers::{InfluxD, free_port, http};
use graft_test_support::stop;

const BODIES: usize = 40;
const LINES_PER_BODY: usize = 50;
const DB: &str = "corrupt";

fn config(listen: u16, influx: u16, buffer_dir: &Path, internal: &Path) -> String {
    format!(
        r#"[agent]
  interval = "500ms"
  round_interval = false
  flush_interval = "200ms"
  omit_hostname = true
[[inputs.influxdb_listener]]
  service_address = "127.0.0.1:{listen}"
  acknowledge = "durable"
[[inputs.internal]]
[[outputs.influxdb]]
  urls = ["http://127.0.0.1:{influx}"]
  database = "{DB}"
  timeout = "2s"
  namepass = ["corrupt"]
  buffer_strategy = "disk"
  buffer_directory = "{}"
[[outputs.file]]
  files = ["{}"]
  namepass = ["internal_write"]
"#,
        buffer_dir.display(),
        internal.display()
    )
}

/// The marker of body `k`: a tag value found nowhere else.
fn marker(k: usize) -> String {
    format!("bodymark{k:04}")
}

/// Body `k` as line protocol, and the points InfluxDB should hold for it.
fn body(k: usize) -> (String, BTreeSet<Point>) {
    let mut text = String::new();
    let mut points = BTreeSet::new();
    for i in 0..LINES_PER_BODY {
        let n = k * LINES_PER_BODY + i;
        let t = 1_700_000_000_000_000_000i64 + n as i64 * 1_000;
        let x = n as f64 / 8.0;
        text += &format!(
            "corrupt,body={},host=h{} seq={n}i,x={x:?},s=\"text {n}\",ok={} {t}\n",
            marker(k),
            n % 3,
            n.is_multiple_of(2)
        );
        let tags = [("body", marker(k)), ("host", format!("h{}", n % 3))]
            .into_iter()
            .map(|(a, b)| (a.to_owned(), b))
            .collect();
        let fields = [
            ("seq", format!("{:?}", n as f64)),
            ("x", format!("{x:?}")),
            ("s", format!("\"text {n}\"")),
            ("ok", (n.is_multiple_of(2)).to_string()),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b))
        .collect();
        points.insert(("corrupt".to_owned(), tags, t, fields));
    }
    (text, points)
}

/// Where each body's marker is in `bytes`, if the codec stores it plainly.
fn marker_offsets(bytes: &[u8]) -> Vec<Option<usize>> {
    (0..BODIES)
        .map(|k| {
            let m = marker(k);
            bytes.windows(m.len()).position(|w| w == m.as_bytes())
        })
        .collect()
}

/// Damage the last segment: flip 8 bytes in the middle of its data and cut
/// it inside its last record. Returns the bodies that may be lost (those
/// the damage touches; `None` when the markers cannot be located).
fn damage(segment: &PathBuf) -> (Option<BTreeSet<usize>>, String) {
    let mut bytes = std::fs::read(segment).unwrap();
    let len = bytes.len();
    // A segment may be allocated ahead: its data ends at the last non-zero
    // byte.
    let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1);
    assert!(
        end > 1000,
        "the last segment holds only {end} bytes of data"
    );
    let offsets = marker_offsets(&bytes[..end]);
    let in_segment: Vec<(usize, usize)> = offsets
        .iter()
        .enumerate()
        .filter_map(|(k, o)| Some((k, (*o)?)))
        .collect();
    let flip = end / 2;
    // Inside the last record: between its marker and the end when the
    // markers are plain, else shortly before the end.
    let cut = match in_segment.last() {
        Some((_, at)) => (at + end) / 2,
        None => end - 24,
    };
    for b in &mut bytes[flip..flip + 8] {
        *b ^= 0xA5;
    }
    bytes.truncate(cut);
    std::fs::write(segment, &bytes).unwrap();
    let hit = (!in_segment.is_empty()).then(|| {
        let mut hit = BTreeSet::new();
        // The record holding the flip is the last whose marker comes before
        // it, or the next one when the flip lands in its header.
        let before = in_segment.iter().rev().find(|(_, at)| *at <= flip + 8);
        let after = in_segment.iter().find(|(_, at)| *at > flip);
        hit.extend(before.map(|(k, _)| *k));
        hit.extend(after.map(|(k, _)| *k));
        hit.insert(in_segment.last().unwrap().0);
        hit
    });
    let how = format!(
        "segment {} of {len} bytes ({end} of data, markers of {} bodies in it): flipped 8 bytes at {flip}, cut at {cut}",
        segment.display(),
        in_segment.len()
    );
    (hit, how)
}

#[test]
fn a_damaged_last_segment_costs_only_the_records_hit() {
    let began = Instant::now();
    let mut influx = InfluxD::start();
    influx.stop();
    let dir = tempfile::tempdir().unwrap();
    let buffer_dir = dir.path().join("buffers");
    let internal = dir.path().join("internal.out");
    let config_path = dir.path().join("graft.toml");
    let listen = free_port();
    std::fs::write(
        &config_path,
        config(listen, influx.port, &buffer_dir, &internal),
    )
    .unwrap();

    // First life: every body acknowledged (in the disk buffer), then a
    // clean stop.
    let log1 = dir.path().join("graft-1.log");
    let mut child = start(&config_path, &log1, listen);
    let client = http();
    let mut want = BTreeMap::new();
    for k in 0..BODIES {
        let (text, points) = body(k);
        let r = client
            .post(format!("http://127.0.0.1:{listen}/write?db={DB}"))
            .body(text)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 204, "body {k}: {}", r.text().unwrap());
        want.insert(marker(k), points);
    }
    let (status, log) = stop(&mut child, Duration::from_secs(30));
    let log = log + &std::fs::read_to_string(&log1).unwrap();
    assert!(status.success(), "{status}: {log}");

    let segs = segments(&buffer_dir);
    assert!(!segs.is_empty(), "no *.seg under {}", buffer_dir.display());
    let (hit, how) = damage(segs.last().unwrap());
    println!("{} segment(s); {how}", segs.len());

    // Second life, with InfluxDB up.
    influx.resume();
    let _ = std::fs::remove_file(&internal);
    let log2 = dir.path().join("graft-2.log");
    let mut child = start(&config_path, &log2, listen);
    let restarted = Instant::now();
    let drained = || {
        internal_writes(&internal, "influxdb")
            .last()
            .is_some_and(|s| s.fields.get("buffer_size") == Some(&0.0))
            && !stored_points(&influx, DB).is_empty()
    };
    while !drained() {
        assert!(
            restarted.elapsed() < Duration::from_secs(60),
            "the disk buffer did not drain into InfluxDB within 60 s: {:?}\n{}",
            internal_writes(&internal, "influxdb").last(),
            std::fs::read_to_string(&log2).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // One more sample after the drain, so that the counters are final.
    std::thread::sleep(Duration::from_millis(1200));
    let (status, _) = stop(&mut child, Duration::from_secs(30));
    let log = std::fs::read_to_string(&log2).unwrap();
    assert!(status.success(), "{status}: {log}");

    let samples = internal_writes(&internal, "influxdb");
    let last = samples.last().unwrap();
    let corrupt = samples
        .iter()
        .map(|s| s.int("buffer_corrupt_records"))
        .max()
        .unwrap();
    let replayed = samples
        .iter()
        .map(|s| s.int("buffer_replayed"))
        .max()
        .unwrap();

    let mut by_body: BTreeMap<String, BTreeSet<Point>> = BTreeMap::new();
    for p in stored_points(&influx, DB) {
        by_body
            .entry(p.1.get("body").cloned().unwrap_or_default())
            .or_default()
            .insert(p);
    }
    let mut missing = BTreeSet::new();
    for (k, (m, points)) in want.iter().enumerate() {
        match by_body.remove(m) {
            None => {
                missing.insert(k);
            }
            Some(got) => assert_eq!(&got, points, "body {k} arrived changed or in part"),
        }
    }
    assert!(by_body.is_empty(), "points never sent: {by_body:?}");
    println!(
        "{BODIES} bodies of {LINES_PER_BODY}: {} delivered intact, missing {missing:?} (may miss {hit:?}); \
         buffer_corrupt_records {corrupt}, buffer_replayed {replayed}, buffer_strategy {:?}; {:?}",
        BODIES - missing.len(),
        last.string("buffer_strategy"),
        began.elapsed()
    );
    assert!(
        corrupt >= 1,
        "the damage was not counted: {samples:?}\n{log}"
    );
    assert!(
        corrupt >= missing.len() as i64,
        "{} bodies lost but {corrupt} records counted as corrupt",
        missing.len()
    );
    let warned = log
        .lines()
        .filter(|l| l.contains("WARN") && (l.contains("corrupt") || l.contains("damaged")))
        .count();
    assert!(warned >= 1, "no WARN names the damage:\n{log}");
    assert_eq!(last.string("buffer_strategy"), Some("disk"));
    match hit {
        Some(hit) => {
            assert!(
                missing.is_subset(&hit),
                "lost {missing:?}, but the damage touched only {hit:?}\n{log}"
            );
            let cut = hit.last().unwrap();
            assert!(
                missing.contains(cut),
                "the body cut short ({cut}) cannot have been delivered whole"
            );
        }
        None => assert!(
            !missing.is_empty() && missing.len() <= 3,
            "lost {missing:?} to two damaged places\n{log}"
        ),
    }
}
