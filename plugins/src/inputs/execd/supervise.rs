//! The life of `inputs.execd`'s program: start it, read its stdout a line
//! at a time into metrics and its stderr into graft's log (at a bounded
//! rate), restart it after it exits (with a growing delay when it keeps
//! dying young), and on stop end it with SIGTERM, then SIGKILL after a
//! grace period.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use graft_api::MetricSink;
use graft_core::BatchBuilder;
use rustix::process::Signal;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, ChildStdin};
use tokio::sync::watch;

use super::config::Settings;
use crate::backoff::Backoff;
use crate::child;
use crate::lines::LineSplitter;

/// How long a program may take to exit after SIGTERM at stop.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long the output is read on after the program's group is killed.
const READERS_WAIT: Duration = Duration::from_secs(2);
/// A program that ran this long before exiting is restarted after the
/// base delay again.
const HEALTHY_RUN: Duration = Duration::from_secs(60);
/// Longest delay between restarts.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(300);
/// Stderr lines logged per window; the rest are counted.
const STDERR_LINES_PER_WINDOW: u32 = 100;
const STDERR_WINDOW: Duration = Duration::from_secs(10);
/// Longest stderr line logged (the rest of it is skipped).
const MAX_STDERR_LINE: usize = 4096;

/// What the gather side needs of the running program.
#[derive(Default)]
pub struct Running {
    pub pid: Mutex<Option<u32>>,
    pub stdin: tokio::sync::Mutex<Option<ChildStdin>>,
}

/// The input's own counters (`docs/instrumentation.md`).
#[derive(Clone)]
pub struct Stats {
    pub restarts: Arc<AtomicU64>,
    pub start_failures: Arc<AtomicU64>,
    pub line_size_limit_hits: Arc<AtomicU64>,
    pub log_suppressed: Arc<AtomicU64>,
}

impl Stats {
    pub fn new(counter: impl Fn(&'static str) -> Arc<AtomicU64>) -> Self {
        Self {
            restarts: counter("restarts"),
            start_failures: counter("start_failures"),
            line_size_limit_hits: counter("line_size_limit_hits"),
            log_suppressed: counter("log_suppressed"),
        }
    }
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Run the program until `stop` turns true (or it fails with
/// `stop_on_error`).
pub async fn supervise(
    settings: Arc<Settings>,
    running: Arc<Running>,
    sink: MetricSink,
    stats: Stats,
    mut stop: watch::Receiver<bool>,
) {
    let program = settings.command.join(" ");
    let base = settings.restart_delay.max(Duration::from_millis(1));
    let mut backoff = Backoff::exponential(base, MAX_RESTART_DELAY.max(base));
    let mut first = true;
    loop {
        if *stop.borrow() {
            return;
        }
        if !first {
            add(&stats.restarts, 1);
        }
        first = false;
        let started = Instant::now();
        let exited = match child::spawn(&settings.command, &settings.environment, true) {
            Err(e) => {
                add(&stats.start_failures, 1);
                tracing::error!(command = %program, error = %format!("{e:#}"), "the program could not be started");
                None
            }
            Ok(process) => {
                match run_once(process, &settings, &running, &sink, &stats, &mut stop).await {
                    Some(status) => Some(status),
                    None => return,
                }
            }
        };
        if let Some(status) = exited
            && settings.stop_on_error
            && !status.success()
        {
            tracing::error!(command = %program, %status, "the program exited with an error; not restarted (stop_on_error)");
            return;
        }
        if started.elapsed() >= HEALTHY_RUN {
            backoff.succeed();
        }
        let delay = backoff.fail();
        if let Some(status) = exited {
            tracing::warn!(command = %program, %status, delay = ?delay, "the program exited; restarting it after the delay");
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stopped(&mut stop) => return,
        }
    }
}

/// One run of the program: its exit status, or `None` when it was ended
/// because the input stops.
async fn run_once(
    mut process: Child,
    settings: &Settings,
    running: &Running,
    sink: &MetricSink,
    stats: &Stats,
    stop: &mut watch::Receiver<bool>,
) -> Option<std::process::ExitStatus> {
    let program = settings.command.join(" ");
    let pid = process.id().unwrap_or(0);
    *running.pid.lock().unwrap_or_else(|e| e.into_inner()) = Some(pid);
    *running.stdin.lock().await = process.stdin.take();
    let mut out = process.stdout.take().map(|stdout| {
        let (settings, sink, hits) = (
            settings.clone(),
            sink.clone(),
            stats.line_size_limit_hits.clone(),
        );
        tokio::spawn(read_stdout(stdout, settings, sink, hits))
    });
    let mut err = process.stderr.take().map(|stderr| {
        tokio::spawn(read_stderr(
            stderr,
            program.clone(),
            stats.log_suppressed.clone(),
        ))
    });
    let status = tokio::select! {
        status = process.wait() => Some(status.unwrap_or_else(|e| {
            tracing::warn!(command = %program, error = %e, "waiting for the program failed");
            std::os::unix::process::ExitStatusExt::from_raw(1 << 8)
        })),
        () = stopped(stop) => None,
    };
    *running.pid.lock().unwrap_or_else(|e| e.into_inner()) = None;
    running.stdin.lock().await.take();
    match status {
        Some(_) => {
            // What it left behind in its group would hold stdout open.
            child::signal_group(pid, Signal::KILL);
        }
        None => {
            child::signal_group(pid, Signal::TERM);
            if tokio::time::timeout(STOP_GRACE, process.wait())
                .await
                .is_err()
            {
                tracing::warn!(command = %program, grace = ?STOP_GRACE, "the program ignored SIGTERM; killed");
            }
            child::signal_group(pid, Signal::KILL);
            let _ = process.wait().await;
        }
    }
    // Everything the program printed is handed on before going further,
    // for a bounded time: a descendant that left the process group may
    // hold stdout open.
    let readers = async {
        if let Some(out) = &mut out {
            let _ = out.await;
        }
        if let Some(err) = &mut err {
            let _ = err.await;
        }
    };
    if tokio::time::timeout(READERS_WAIT, readers).await.is_err() {
        tracing::warn!(command = %program, wait = ?READERS_WAIT, "its output stays open after it ended (a descendant holds it); no longer read");
        for reader in out.iter().chain(err.iter()) {
            reader.abort();
        }
    }
    status
}

/// Read stdout to its end, a line at a time, into metrics.
async fn read_stdout(
    mut stdout: impl AsyncRead + Unpin,
    settings: Settings,
    sink: MetricSink,
    line_size_limit_hits: Arc<AtomicU64>,
) {
    let mut splitter = LineSplitter::new(settings.max_line);
    let mut chunk = vec![0u8; 64 << 10];
    let mut warned = false;
    loop {
        let n = stdout.read(&mut chunk).await.unwrap_or(0);
        let now_ns = crate::inputs::now_ns();
        let mut batch = BatchBuilder::new();
        let (mut malformed, mut first_error) = (0, None);
        let mut parse = |line: &[u8], _: usize| {
            if line.iter().all(u8::is_ascii_whitespace) {
                return;
            }
            let parsed = settings.parser.parse(line, now_ns, &mut batch);
            malformed += parsed.malformed;
            if first_error.is_none() {
                first_error = parsed.first_error;
            }
        };
        if n == 0 {
            splitter.finish(|line| parse(line, 0));
        } else {
            let hits = splitter.push(&chunk[..n], &mut parse);
            if hits > 0 {
                add(&line_size_limit_hits, hits);
                tracing::warn!(
                    limit = settings.max_line,
                    lines = hits,
                    "lines longer than buffer_size skipped"
                );
            }
        }
        if malformed > 0 {
            sink.malformed(malformed as u64);
            if !warned {
                warned = true;
                tracing::warn!(
                    skipped = malformed,
                    error = first_error.as_deref().unwrap_or_default(),
                    "lines the parser could not read were skipped (logged once per run of the program)"
                );
            }
        }
        if sink.send(batch.finish()).await.is_err() || n == 0 {
            return;
        }
    }
}

/// Log stderr a line at a time, at most [`STDERR_LINES_PER_WINDOW`] lines
/// per [`STDERR_WINDOW`]; the others are counted in `log_suppressed`.
async fn read_stderr(
    mut stderr: impl AsyncRead + Unpin,
    program: String,
    suppressed: Arc<AtomicU64>,
) {
    let mut splitter = LineSplitter::new(MAX_STDERR_LINE);
    let mut chunk = vec![0u8; 16 << 10];
    let (mut window, mut logged, mut dropped) = (Instant::now(), 0u32, 0u64);
    loop {
        let n = stderr.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        splitter.push(&chunk[..n], |line, _| {
            if window.elapsed() >= STDERR_WINDOW {
                if dropped > 0 {
                    tracing::warn!(command = %program, lines = dropped, "stderr lines not logged (rate limit)");
                }
                (window, logged, dropped) = (Instant::now(), 0, 0);
            }
            if logged < STDERR_LINES_PER_WINDOW {
                logged += 1;
                child::log_line(&program, &String::from_utf8_lossy(line));
            } else {
                dropped += 1;
                add(&suppressed, 1);
            }
        });
    }
    if dropped > 0 {
        tracing::warn!(command = %program, lines = dropped, "stderr lines not logged (rate limit)");
    }
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
