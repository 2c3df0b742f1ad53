//! What the console, the permissions, the sandbox and each store's state
//! share, so that none of them depends on another for it: a budget of
//! events per second (log lines, refusals reported), the report of a
//! plugin's refused attempts, and where the empty root is mounted.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::stats::PluginStats;

/// Where the empty root is mounted inside every plugin.
pub const ROOT_GUEST_PATH: &str = "/";

/// A budget of events per second: log lines, refusals reported.
#[derive(Debug)]
pub(crate) struct PerSecond {
    limit: u32,
    start: Instant,
    seen: u32,
}

impl PerSecond {
    pub(crate) fn new(limit: u32) -> Self {
        Self {
            limit,
            start: Instant::now(),
            seen: 0,
        }
    }

    /// Count one event: whether it fits in this second, and how many were
    /// over the budget in the second that just ended, if one did.
    pub(crate) fn admit(&mut self) -> (bool, u32) {
        let mut over_before = 0;
        if self.start.elapsed().as_secs() >= 1 {
            over_before = self.seen.saturating_sub(self.limit);
            self.start = Instant::now();
            self.seen = 0;
        }
        self.seen = self.seen.saturating_add(1);
        (self.seen <= self.limit, over_before)
    }
}

/// Refusals logged per second and plugin; the rest are only counted.
const LOGGED_PER_SECOND: u32 = 5;

/// Reports a plugin's refused attempts.
#[derive(Debug)]
pub struct Denials {
    plugin: Arc<str>,
    stats: Arc<PluginStats>,
    window: Mutex<PerSecond>,
}

impl Denials {
    pub fn new(plugin: Arc<str>, stats: Arc<PluginStats>) -> Self {
        Self {
            plugin,
            stats,
            window: Mutex::new(PerSecond::new(LOGGED_PER_SECOND)),
        }
    }

    /// Count and log one refused attempt: `what` it tried, and the
    /// permission that would grant it.
    pub fn deny(&self, what: &str, grant: &str) {
        PluginStats::add(&self.stats.denied, 1);
        if self.window.lock().expect("denials lock").admit().0 {
            tracing::warn!(plugin = %self.plugin, "denied: plugin tried to {what}; not granted by {grant}");
        }
    }
}
