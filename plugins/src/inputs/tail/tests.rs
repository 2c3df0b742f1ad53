use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use graft_api::counters::Counters;
use graft_api::sink::Received;
use graft_api::{Input, MetricSink};
use graft_core::FieldRef;
use tokio::sync::mpsc;

use super::*;

/// A metric as received: name, tags, field `n`.
type Row = (String, BTreeMap<String, String>, i64);

/// A tail input and what reached its sink, acknowledged as it came
/// (unless `hold` keeps the acknowledgements).
struct Harness {
    tail: Tail,
    got: Arc<Mutex<Vec<Row>>>,
    held: Arc<Mutex<Vec<Received>>>,
    counters: Arc<Counters>,
    sink: MetricSink,
}

async fn start(text: &str, store: &Path, hold: bool) -> Harness {
    let config = crate::config::parse::<Config>(toml::from_str(text).unwrap()).unwrap();
    let mut tail = Tail::new(&config)
        .unwrap()
        .with_store(Some(Store::at(store.to_path_buf())));
    let counters = Arc::new(Counters::default());
    let (sink, mut rx): (MetricSink, mpsc::Receiver<Received>) =
        MetricSink::channel(16, Arc::new(|| 0));
    let sink = sink.with_counters(counters.clone());
    let got = Arc::new(Mutex::new(Vec::new()));
    let held = Arc::new(Mutex::new(Vec::new()));
    let (g, h) = (got.clone(), held.clone());
    tokio::spawn(async move {
        while let Some(r) = rx.recv().await {
            for m in r.batch.iter() {
                let n = match m.fields().find(|(k, _)| *k == "n").map(|(_, v)| v) {
                    Some(FieldRef::Int(n)) => n,
                    Some(FieldRef::Float(n)) => n as i64,
                    _ => -1,
                };
                let tags = m
                    .tags()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                g.lock().unwrap().push((m.name().to_owned(), tags, n));
            }
            if hold {
                h.lock().unwrap().push(r);
            }
        }
    });
    tail.start(sink.clone()).await.unwrap();
    Harness {
        tail,
        got,
        held,
        counters,
        sink,
    }
}

impl Harness {
    fn seqs(&self) -> Vec<i64> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(_, _, n)| *n)
            .collect()
    }

    async fn wait_for(&self, count: usize) {
        for _ in 0..300 {
            if self.seqs().len() >= count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let s = self.seqs();
        panic!(
            "only {} of {count} came: first {:?} last {:?}",
            s.len(),
            s.first(),
            s.last()
        );
    }

    fn count(&self, name: &str) -> u64 {
        self.counters
            .snapshot()
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, v)| *v)
    }
}

fn append(path: &Path, range: std::ops::Range<i64>) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for i in range {
        writeln!(f, "seq n={i}i").unwrap();
    }
}

/// Each of `0..n` exactly once.
fn exactly_once(seqs: &[i64], n: i64) {
    let mut counts = BTreeMap::new();
    for s in seqs {
        *counts.entry(*s).or_insert(0) += 1;
    }
    let doubled: Vec<_> = counts
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(s, _)| *s)
        .collect();
    let missing: Vec<_> = (0..n).filter(|s| !counts.contains_key(s)).collect();
    assert!(
        doubled.is_empty() && missing.is_empty(),
        "doubled {doubled:?}, missing {missing:?} of {n}"
    );
    assert_eq!(seqs.len() as i64, n, "{} lines for {n}", seqs.len());
}

fn config(file: &Path, extra: &str) -> String {
    format!(
        "files = [\"{}\"]\ninitial_read_offset = \"saved-or-beginning\"\n{extra}",
        file.display()
    )
}

#[tokio::test]
async fn rotation_by_rename_and_by_copytruncate_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "").unwrap();
    let h = start(&config(&log, ""), &dir.path().join("state.json"), false).await;
    let path = log.clone();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let writer = tokio::task::spawn_blocking(move || {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        for i in 0..3000i64 {
            writeln!(f, "seq n={i}i").unwrap();
            if i % 10 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            if i == 999 {
                // logrotate's default: rename, then a new file.
                std::fs::rename(&path, path.with_extension("log.1")).unwrap();
                f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .unwrap();
            }
            if i == 1999 {
                // copytruncate: copy, then empty the file in place.
                std::thread::sleep(Duration::from_millis(400));
                std::fs::copy(&path, path.with_extension("log.2")).unwrap();
                f.set_len(0).unwrap();
                std::thread::sleep(Duration::from_millis(300));
            }
        }
    });
    writer.await.unwrap();
    h.wait_for(3000).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    exactly_once(&h.seqs(), 3000);
    let got = h.got.lock().unwrap();
    assert!(
        got.iter()
            .all(|(name, tags, _)| name == "seq" && tags["path"] == log.display().to_string())
    );
}

#[tokio::test]
async fn a_restart_resumes_at_the_delivered_position() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let state = dir.path().join("state.json");
    append(&log, 0..100);
    let mut h = start(&config(&log, ""), &state, false).await;
    h.wait_for(100).await;
    h.tail.stop().await;
    let mut seqs = h.seqs();
    append(&log, 100..200);
    let mut h = start(&config(&log, ""), &state, false).await;
    h.wait_for(100).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.tail.stop().await;
    seqs.extend(h.seqs());
    // Rotated while graft was down: the rest of the old file, then the new.
    append(&log, 200..250);
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append(&log, 250..300);
    let h = start(&config(&log, ""), &state, false).await;
    h.wait_for(100).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    seqs.extend(h.seqs());
    exactly_once(&seqs, 300);
}

#[tokio::test]
async fn undelivered_lines_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, 0..500);
    let h = start(
        &config(&log, "max_undelivered_lines = 20"),
        &dir.path().join("s.json"),
        true,
    )
    .await;
    h.wait_for(20).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        h.seqs(),
        (0..20).collect::<Vec<_>>(),
        "no more than 20 before the outputs write"
    );
    h.held.lock().unwrap().clear();
    h.wait_for(40).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.seqs().len(), 40);
}

#[tokio::test]
async fn long_and_bad_lines_cost_only_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let long = "x".repeat(5000);
    std::fs::write(
        &log,
        format!("seq n=0i\n{long} n=1i\nnot line protocol\nseq n=2i\n"),
    )
    .unwrap();
    let h = start(
        &config(&log, "max_line_size = \"1KiB\""),
        &dir.path().join("s.json"),
        false,
    )
    .await;
    h.wait_for(2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.seqs(), [0, 2]);
    assert_eq!(h.count("line_size_limit_hits"), 1);
    assert_eq!(h.sink.malformed_count(), 1);
}

#[tokio::test]
async fn saved_or_end_skips_what_was_there_also_in_files_that_appear_later() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    append(&log, 0..10);
    let pattern = dir.path().join("**.log");
    let text = format!(
        "files = [\"{}\"]\npath_tag = \"file\"\nfilters = [\"ansi_color\"]",
        pattern.display()
    );
    let h = start(&text, &dir.path().join("s.json"), false).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    append(&log, 10..12);
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    // As Telegraf: a file turning up later starts at its end too.
    std::fs::write(dir.path().join("sub/b.log"), "seq n=99i\n").unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let mut b = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("sub/b.log"))
        .unwrap();
    b.write_all(b"\x1b[32mseq\x1b[0m n=100i\n").unwrap();
    h.wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut seqs = h.seqs();
    seqs.sort();
    assert_eq!(seqs, [10, 11, 100]);
    let got = h.got.lock().unwrap();
    assert!(
        got.iter()
            .any(|(_, t, n)| *n == 100 && t["file"].ends_with("sub/b.log"))
    );
}

#[tokio::test]
async fn multiline_events_are_joined() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "seq n=1i\n,m=2i\nseq n=3i\n").unwrap();
    let text = config(&log, "[multiline]\npattern = '^,'\ntimeout = \"200ms\"\n");
    let h = start(&text, &dir.path().join("s.json"), false).await;
    h.wait_for(2).await;
    assert_eq!(h.seqs(), [1, 3]);
    // The continuation was joined (a lone ",m=2i" would be malformed).
    assert_eq!(h.sink.malformed_count(), 0);
}

#[tokio::test]
async fn a_named_pipe_is_read_as_it_comes() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let h = start(
        &format!("files = [\"{}\"]\npipe = true", fifo.display()),
        &dir.path().join("s.json"),
        false,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    w.write_all(b"seq n=7i\nseq n=8i\n").unwrap();
    drop(w);
    h.wait_for(2).await;
    assert_eq!(h.seqs(), [7, 8]);
}

#[test]
fn config_errors_name_the_key_and_from_beginning_still_works() {
    let error = |text: &str| {
        let table = toml::from_str(text).unwrap();
        format!("{:#}", crate::builtin::validate::<Tail>(table).unwrap_err())
    };
    assert!(error("initial_read_offset = \"middle\"").contains("initial_read_offset"));
    assert!(error("watch_method = \"fanotify\"").contains("watch_method"));
    assert!(error("character_encoding = \"utf-16le\"").contains("character_encoding"));
    assert!(error("filters = [\"nope\"]").contains("filters[0]"));
    assert!(error("files = [\"/x/[a\"]").contains("files[0]"));
    assert!(error("[multiline]\npattern = \"(\"").contains("multiline.pattern"));
    assert!(error("max_undelivered_lines = 0").contains("max_undelivered_lines"));
    assert!(error("typo = 1").contains("typo"));
    let c =
        crate::builtin::validate::<Tail>(toml::from_str("from_beginning = true").unwrap()).unwrap();
    assert_eq!(
        Settings::resolve(&c).unwrap().initial,
        config::InitialOffset::Beginning
    );
    assert!(
        Tail::DEPRECATED
            .iter()
            .any(|d| d.key == "from_beginning" && !d.ignored)
    );
    let _: PathBuf = PathBuf::new();
}

#[tokio::test]
async fn a_file_renamed_within_the_glob_is_not_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, 0..50);
    let pattern = dir.path().join("app.log*");
    let text = format!(
        "files = [\"{}\"]\ninitial_read_offset = \"beginning\"",
        pattern.display()
    );
    let h = start(&text, &dir.path().join("s.json"), false).await;
    h.wait_for(50).await;
    // Renamed to a name the glob matches, written on, a new file made.
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append(&dir.path().join("app.log.1"), 50..60);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    append(&log, 60..70);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Renamed again, after it was followed under its new name.
    std::fs::rename(dir.path().join("app.log.1"), dir.path().join("app.log.2")).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    exactly_once(&h.seqs(), 70);
}

#[tokio::test]
async fn stop_hands_on_the_event_being_joined() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "seq n=1i\n,m=2i\nseq n=3i\n").unwrap();
    // A timeout that never fires before stop.
    let text = config(&log, "[multiline]\npattern = '^,'\ntimeout = \"1h\"\n");
    let mut h = start(&text, &dir.path().join("s.json"), false).await;
    h.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.seqs(), [1]);
    h.tail.stop().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(h.seqs(), [1, 3]);
}
