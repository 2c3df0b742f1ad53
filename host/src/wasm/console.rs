//! A plugin's stdout and stderr: each line goes to graft's log under the
//! plugin's name, and the last few KiB are kept so that a fault can be
//! reported with what the plugin printed just before (a panic message).

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use super::denials::PerSecond;
use crate::stats::PluginStats;

/// Bytes of recent output kept for fault reports.
const TAIL_BYTES: usize = 2048;
/// Longest line forwarded to the log.
const LINE_MAX: usize = 4096;
/// Lines forwarded per second; the rest are counted as suppressed.
const LINES_PER_SECOND: u32 = 200;

struct Shared {
    tail: VecDeque<u8>,
    line: Vec<u8>,
    window: PerSecond,
}

/// One plugin's console, shared by its stdout and stderr.
#[derive(Clone)]
pub struct Console {
    plugin: Arc<str>,
    shared: Arc<Mutex<Shared>>,
    stats: Arc<PluginStats>,
}

impl Console {
    /// A console whose lines past the rate limit are counted in the
    /// plugin's `log_suppressed`.
    pub fn new(plugin: Arc<str>, stats: Arc<PluginStats>) -> Self {
        Self {
            plugin,
            shared: Arc::new(Mutex::new(Shared {
                tail: VecDeque::new(),
                line: Vec::new(),
                window: PerSecond::new(LINES_PER_SECOND),
            })),
            stats,
        }
    }

    /// The last lines printed, for a fault report; empties the tail.
    pub fn take_tail(&self) -> String {
        let mut s = self.shared.lock().expect("console lock");
        let bytes: Vec<u8> = s.tail.drain(..).collect();
        String::from_utf8_lossy(&bytes).trim().to_owned()
    }

    fn write(&self, bytes: &[u8]) {
        let mut s = self.shared.lock().expect("console lock");
        s.tail.extend(bytes);
        let excess = s.tail.len().saturating_sub(TAIL_BYTES);
        s.tail.drain(..excess);
        for &b in bytes {
            if b == b'\n' {
                let line = std::mem::take(&mut s.line);
                if !s.window.admit().0 {
                    PluginStats::add(&self.stats.log_suppressed, 1);
                } else {
                    tracing::debug!(plugin = %self.plugin, "{}", String::from_utf8_lossy(&line));
                }
            } else if s.line.len() < LINE_MAX {
                s.line.push(b);
            }
        }
    }
}

impl IsTerminal for Console {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Console {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl OutputStream for Console {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        Console::write(self, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for Console {
    async fn ready(&mut self) {}
}

impl AsyncWrite for Console {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Console::write(&self, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
