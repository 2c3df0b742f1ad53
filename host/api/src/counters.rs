//! Named counters a plugin keeps of its own (limit hits, timeouts), which
//! the host shows beside its standard self-metrics in `inputs.internal`.
//! Names follow `docs/instrumentation.md`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A plugin's own counters, registered by name on first use.
#[derive(Debug, Default)]
pub struct Counters {
    list: Mutex<Vec<(&'static str, Arc<AtomicU64>)>>,
}

impl Counters {
    /// The counter called `name`, created at zero on first use (so that it
    /// is reported even before anything was counted).
    pub fn counter(&self, name: &'static str) -> Arc<AtomicU64> {
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, c)) = list.iter().find(|(n, _)| *n == name) {
            return c.clone();
        }
        let c = Arc::new(AtomicU64::new(0));
        list.push((name, c.clone()));
        c
    }

    /// Every counter with its value, in the order they were registered.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        list.iter()
            .map(|(n, c)| (*n, c.load(Ordering::Relaxed)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_one_counter() {
        let c = Counters::default();
        c.counter("header_timeouts").fetch_add(2, Ordering::Relaxed);
        c.counter("body_size_limit_hits");
        c.counter("header_timeouts").fetch_add(1, Ordering::Relaxed);
        assert_eq!(
            c.snapshot(),
            [("header_timeouts", 3), ("body_size_limit_hits", 0)]
        );
    }
}
