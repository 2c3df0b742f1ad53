//! The loop of `inputs.tail`: every 100 ms read what the followed files
//! gained (within the undelivered-lines budget), send it with an
//! acknowledgement, and record positions as deliveries settle; every
//! second glob again; save positions at most once a second and at stop.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesOrdered;
use graft_api::MetricSink;
use graft_api::sink::SinkClosed;
use graft_core::{Batch, BatchBuilder};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::config::{InitialOffset, Settings};
use super::follow::{FileId, Follower, identify};
use super::multiline::Joiner;
use crate::state::Store;

/// How often files are read.
const POLL: Duration = Duration::from_millis(100);
/// Globs are expanded again every this many polls.
const GLOB_EVERY: u64 = 10;
/// Positions are saved at most this often while running.
const SAVE_EVERY: Duration = Duration::from_secs(1);
/// How long stop waits for the deliveries in flight.
const STOP_WAIT: Duration = Duration::from_secs(5);

static ANSI: LazyLock<regex::bytes::Regex> = LazyLock::new(|| {
    regex::bytes::Regex::new(r"\x1b\[[0-9;:?]*[ -/]*[@-~]").unwrap_or_else(|e| unreachable!("{e}"))
});

/// The state kept across restarts.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    files: Vec<Position>,
}

/// Where reading a file resumes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Position {
    path: PathBuf,
    dev: u64,
    ino: u64,
    offset: u64,
}

/// A batch whose delivery settled.
struct Settled {
    delivered: bool,
    lines: usize,
    positions: Vec<(PathBuf, FileId, u64)>,
}

/// The input's own counters (`docs/instrumentation.md`).
struct Stats {
    line_size_limit_hits: Arc<AtomicU64>,
    files_limit_hits: Arc<AtomicU64>,
}

/// Everything the loop keeps.
pub struct Tailer {
    settings: Arc<Settings>,
    store: Option<Store>,
    sink: MetricSink,
    stats: Stats,
    followers: BTreeMap<PathBuf, Follower>,
    /// Files read to their end, then dropped.
    drains: Vec<Follower>,
    /// Positions read at start.
    saved: Vec<Position>,
    /// The latest delivered position per path.
    acked: HashMap<PathBuf, (FileId, u64)>,
    /// How far each file seen while running was read, by identity: a
    /// name turning up for a file already read (renamed into the glob,
    /// reopened after an error) resumes there.
    known: HashMap<FileId, u64>,
    dirty: bool,
    last_save: Instant,
    refused: HashSet<PathBuf>,
    unreadable: HashSet<PathBuf>,
    started: bool,
    undelivered: usize,
    in_flight: FuturesOrdered<BoxFuture<'static, Settled>>,
    warned_undelivered: bool,
}

impl Tailer {
    pub fn new(settings: Arc<Settings>, store: Option<Store>, sink: MetricSink) -> Self {
        let stats = Stats {
            line_size_limit_hits: sink.counter("line_size_limit_hits"),
            files_limit_hits: sink.counter("files_limit_hits"),
        };
        Self {
            settings,
            store,
            sink,
            stats,
            followers: BTreeMap::new(),
            drains: Vec::new(),
            saved: Vec::new(),
            acked: HashMap::new(),
            known: HashMap::new(),
            dirty: false,
            last_save: Instant::now(),
            refused: HashSet::new(),
            unreadable: HashSet::new(),
            started: false,
            undelivered: 0,
            in_flight: FuturesOrdered::new(),
            warned_undelivered: false,
        }
    }

    /// Run until `stop` turns true.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        if let Some(store) = &self.store {
            match store.load::<Saved>() {
                Ok(saved) => self.saved = saved.unwrap_or_default().files,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "positions not read; files start as if new");
                }
            }
        }
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut ticks = 0u64;
        loop {
            tokio::select! {
                biased;
                () = stopped(&mut stop) => break,
                Some(s) = self.in_flight.next(), if !self.in_flight.is_empty() => self.settle(s),
                _ = tick.tick() => {
                    if ticks.is_multiple_of(GLOB_EVERY) {
                        self.glob();
                    }
                    ticks += 1;
                    if self.read_all().await.is_err() {
                        // Settle what is in flight and save, as at stop.
                        break;
                    }
                    self.save(false);
                }
            }
        }
        self.flush_held().await;
        let deadline = tokio::time::sleep(STOP_WAIT);
        tokio::pin!(deadline);
        while !self.in_flight.is_empty() {
            tokio::select! {
                Some(s) = self.in_flight.next() => self.settle(s),
                () = &mut deadline => break,
            }
        }
        self.save(true);
        if !self.in_flight.is_empty() {
            // The outputs' last flush may still deliver them: keep
            // recording positions until it does.
            tokio::spawn(async move {
                while let Some(s) = self.in_flight.next().await {
                    self.settle(s);
                }
                self.save(true);
            });
        }
    }

    /// Expand the globs: follow new files, let go of those gone.
    fn glob(&mut self) {
        let first = !self.started;
        self.started = true;
        let mut seen = Vec::new();
        for g in &self.settings.files {
            let (files, _) = g.files(self.settings.max_files + 1);
            seen.extend(files);
        }
        seen.sort();
        seen.dedup();
        for path in &seen {
            if self.followers.contains_key(path) {
                continue;
            }
            if self.followers.len() >= self.settings.max_files {
                if self.refused.insert(path.clone()) {
                    self.stats.files_limit_hits.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(path = %path.display(), limit = self.settings.max_files, "more files match than max_files; this one is not followed");
                }
                continue;
            }
            match self.open(path, first) {
                Ok(None) => {}
                Ok(Some(f)) => {
                    self.unreadable.remove(path);
                    tracing::debug!(path = %path.display(), "following");
                    self.followers.insert(path.clone(), f);
                }
                Err(e) => {
                    if self.unreadable.insert(path.clone()) {
                        tracing::warn!(path = %path.display(), error = %e, "cannot follow the file; trying again every second");
                    }
                }
            }
        }
        let gone: Vec<PathBuf> = self
            .followers
            .keys()
            .filter(|p| seen.binary_search(p).is_err())
            .cloned()
            .collect();
        for path in gone {
            if let Some(mut f) = self.followers.remove(&path) {
                // Read what it still holds, then let it go.
                f.drain_only = true;
                self.drains.push(f);
            }
        }
        // Forget files neither matched nor read any more.
        let mut live: HashSet<FileId> = seen
            .iter()
            .filter_map(|p| identify(p).ok())
            .map(|(id, _)| id)
            .collect();
        live.extend(self.followers.values().chain(&self.drains).map(|f| f.id));
        self.known.retain(|id, _| live.contains(id));
    }

    /// Whether a follower reads the file `id` now.
    fn reading(&self, id: FileId) -> bool {
        self.followers
            .values()
            .chain(&self.drains)
            .any(|f| !f.is_pipe() && f.id == id)
    }

    fn joiner(&self) -> Option<Joiner> {
        let max = self.settings.max_line;
        self.settings.multiline.clone().map(|m| Joiner::new(m, max))
    }

    /// Open `path` where reading starts: where this run left the file if
    /// it was read before under any name (`None` while another name
    /// still reads it), else per `initial_read_offset` (the saved
    /// position only at start, as Telegraf).
    fn open(&mut self, path: &Path, first: bool) -> std::io::Result<Option<Follower>> {
        let max_line = self.settings.max_line;
        if self.settings.pipe {
            return Follower::open_pipe(path, max_line, self.joiner()).map(Some);
        }
        let (id, len) = identify(path)?;
        if self.reading(id) {
            return Ok(None);
        }
        if let Some(&at) = self.known.get(&id) {
            let offset = if len >= at { at } else { 0 };
            let f = Follower::open(path, offset, max_line, self.joiner())?;
            self.acked.insert(path.to_path_buf(), (f.id, offset));
            return Ok(Some(f));
        }
        let saved_same = self
            .saved
            .iter()
            .find(|p| p.path == path && (p.dev, p.ino) == id)
            .cloned();
        let saved_same = saved_same.or_else(|| {
            // Renamed into the glob while graft was down.
            self.saved.iter().find(|p| (p.dev, p.ino) == id).cloned()
        });
        let saved_other = self.saved.iter().find(|p| p.path == path).cloned();
        let offset = match self.settings.initial {
            InitialOffset::Beginning => 0,
            InitialOffset::End => len,
            _ => match (saved_same, saved_other) {
                (Some(p), _) if first && len >= p.offset => p.offset,
                (Some(_), _) if first => 0,
                (None, Some(old)) if first => {
                    self.drain_rotated(path, &old);
                    0
                }
                _ if self.settings.initial == InitialOffset::SavedOrEnd => len,
                _ => 0,
            },
        };
        let f = Follower::open(path, offset, max_line, self.joiner())?;
        self.known.insert(f.id, offset);
        self.acked.insert(path.to_path_buf(), (f.id, offset));
        Ok(Some(f))
    }

    /// `path` was rotated while graft was down: read the rest of the old
    /// file, if it is still beside it under another name.
    fn drain_rotated(&mut self, path: &Path, old: &Position) {
        let dir = path.parent().unwrap_or(Path::new("."));
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let candidate = e.path();
            if candidate == path {
                continue;
            }
            match identify(&candidate) {
                Ok((id, _)) if id == (old.dev, old.ino) && self.reading(id) => return,
                Ok((id, len)) if id == (old.dev, old.ino) && len >= old.offset => {
                    if let Ok(mut f) = Follower::open(
                        &candidate,
                        old.offset,
                        self.settings.max_line,
                        self.joiner(),
                    ) {
                        tracing::info!(path = %path.display(), rotated = %candidate.display(), "reading the rest of the file rotated while graft was down");
                        f.path = path.to_path_buf();
                        f.drain_only = true;
                        self.drains.push(f);
                    }
                    return;
                }
                _ => {}
            }
        }
    }

    /// Read every file within the budget and send what came.
    async fn read_all(&mut self) -> Result<(), SinkClosed> {
        let budget = self
            .settings
            .max_undelivered_lines
            .saturating_sub(self.undelivered);
        if budget == 0 {
            return Ok(());
        }
        let now_ns = crate::inputs::now_ns();
        let settings = self.settings.clone();
        let mut out = Batch::default();
        let (mut lines, mut malformed, mut first_error) = (0usize, 0usize, None);
        let mut positions = Vec::new();
        let mut done = Vec::new();
        let drains = self.drains.iter_mut().map(|f| (true, f));
        for (i, (is_drain, f)) in self
            .followers
            .values_mut()
            .map(|f| (false, f))
            .chain(drains)
            .enumerate()
        {
            let remaining = budget.saturating_sub(lines);
            if remaining == 0 {
                break;
            }
            let mut b = BatchBuilder::new();
            let mut event = |e: &[u8]| {
                let p = parse_event(&settings, e, now_ns, &mut b);
                malformed += p.0;
                if first_error.is_none() {
                    first_error = p.1;
                }
            };
            let read = f.read(remaining, &mut event);
            if !f.is_pipe() {
                self.known.insert(f.id, f.position());
            }
            let overflowed = f
                .joiner
                .as_mut()
                .map_or(0, |j| std::mem::take(&mut j.overflowed));
            match read {
                Ok(mut r) => {
                    r.too_long += overflowed;
                    if let Some((id, end)) = r.left {
                        self.known.insert(id, end);
                    }
                    lines += r.lines;
                    if r.too_long > 0 {
                        self.stats
                            .line_size_limit_hits
                            .fetch_add(r.too_long, Ordering::Relaxed);
                        tracing::warn!(path = %f.path.display(), lines = r.too_long, limit = settings.max_line, "lines longer than max_line_size skipped");
                    }
                    if r.finished {
                        done.push((is_drain, i, f.path.clone()));
                    }
                }
                Err(e) => {
                    tracing::warn!(path = %f.path.display(), error = %e, "reading failed; the file is let go");
                    done.push((is_drain, i, f.path.clone()));
                }
            }
            f.flush_expired(&mut event);
            let mut batch = b.finish();
            if !batch.is_empty() && !settings.path_tag.is_empty() {
                batch.set_tag(&settings.path_tag, &f.path.display().to_string());
            }
            out.append(&batch);
            if !is_drain && !f.is_pipe() {
                positions.push((f.path.clone(), f.id, f.committed()));
            }
        }
        let followers = self.followers.len();
        for (is_drain, i, path) in done.into_iter().rev() {
            if is_drain {
                self.drains.remove(i - followers);
            } else {
                self.followers.remove(&path);
            }
        }
        if malformed > 0 {
            self.sink.malformed(malformed as u64);
            tracing::debug!(
                skipped = malformed,
                error = first_error.as_deref().unwrap_or_default(),
                "lines the parser could not read were skipped"
            );
        }
        if lines == 0 && out.is_empty() {
            return Ok(());
        }
        let delivery = self.sink.send_acked(out).await?;
        self.undelivered += lines;
        self.in_flight.push_back(Box::pin(async move {
            Settled {
                delivered: delivery.await.is_ok(),
                lines,
                positions,
            }
        }));
        Ok(())
    }

    /// At stop, hand on what the followers hold: the event being joined,
    /// and the last line without a newline where no position is kept (a
    /// pipe, no state store); with positions that line is read whole
    /// after a restart.
    async fn flush_held(&mut self) {
        let now_ns = crate::inputs::now_ns();
        let settings = self.settings.clone();
        let whole = self.store.is_none();
        let mut out = Batch::default();
        let mut positions = Vec::new();
        let mut malformed = 0;
        for f in self.followers.values_mut().chain(&mut self.drains) {
            let mut b = BatchBuilder::new();
            let mut event = |e: &[u8]| malformed += parse_event(&settings, e, now_ns, &mut b).0;
            if whole || f.is_pipe() {
                f.finish(&mut event);
            } else if let Some(e) = f.joiner.as_mut().and_then(Joiner::take) {
                event(&e);
            }
            let mut batch = b.finish();
            if !batch.is_empty() && !settings.path_tag.is_empty() {
                batch.set_tag(&settings.path_tag, &f.path.display().to_string());
            }
            out.append(&batch);
            if !f.drain_only && !f.is_pipe() {
                positions.push((f.path.clone(), f.id, f.committed()));
            }
        }
        if malformed > 0 {
            self.sink.malformed(malformed as u64);
        }
        if out.is_empty() {
            return;
        }
        if let Ok(delivery) = self.sink.send_acked(out).await {
            self.in_flight.push_back(Box::pin(async move {
                Settled {
                    delivered: delivery.await.is_ok(),
                    lines: 0,
                    positions,
                }
            }));
        }
    }

    fn settle(&mut self, s: Settled) {
        self.undelivered = self.undelivered.saturating_sub(s.lines);
        if !s.delivered && !self.warned_undelivered {
            self.warned_undelivered = true;
            tracing::warn!(
                lines = s.lines,
                "lines read were not delivered (an output dropped them); they are not read again"
            );
        }
        for (path, id, offset) in s.positions {
            self.acked.insert(path, (id, offset));
        }
        self.dirty = true;
    }

    /// Save the delivered positions of the files followed now.
    fn save(&mut self, force: bool) {
        let Some(store) = &self.store else {
            return;
        };
        if !self.dirty || (!force && self.last_save.elapsed() < SAVE_EVERY) {
            return;
        }
        let followed: HashSet<&PathBuf> = self
            .followers
            .keys()
            .chain(self.drains.iter().map(|f| &f.path))
            .collect();
        self.acked.retain(|p, _| followed.contains(p));
        let files = self
            .acked
            .iter()
            .map(|(path, ((dev, ino), offset))| Position {
                path: path.clone(),
                dev: *dev,
                ino: *ino,
                offset: *offset,
            })
            .collect();
        match store.save(&Saved { files }) {
            Ok(()) => self.dirty = false,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "positions not saved; trying again");
            }
        }
        self.last_save = Instant::now();
    }
}

/// Parse one line or event into `out`: (lines skipped, why).
fn parse_event(
    settings: &Settings,
    event: &[u8],
    now_ns: i64,
    out: &mut BatchBuilder,
) -> (usize, Option<String>) {
    let stripped;
    let event = if settings.strip_ansi {
        stripped = ANSI.replace_all(event, &b""[..]);
        &stripped[..]
    } else {
        event
    };
    if event.iter().all(u8::is_ascii_whitespace) {
        return (0, None);
    }
    let parsed = settings.parser.parse(event, now_ns, out);
    (parsed.malformed, parsed.first_error)
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
