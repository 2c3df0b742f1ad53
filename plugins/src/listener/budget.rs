//! Connection permits: a per-listener maximum and one process-wide budget
//! shared by every listener, sized below the open-file limit.
//!
//! The budget keeps half of itself as guaranteed shares, split evenly
//! between the registered listeners: a listener may take a slot only if
//! enough free slots remain for every other listener to reach its share.
//! So connections held open on one port can fill that port's maximum and
//! the free half of the budget, but never the shares of the others, and
//! the reserve below the open-file limit stays for outputs, files and
//! WASM plugins.

use std::sync::{Arc, Mutex, OnceLock};

/// File descriptors kept out of the budget for everything that is not an
/// accepted connection: at least this many, or a quarter of the limit.
const MIN_RESERVE: usize = 64;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The listener holds its own maximum of connections.
    #[error("the listener holds its maximum of {max} connections")]
    Listener { max: usize },
    /// The process-wide budget has no slot left for this listener.
    #[error("the process holds {in_use} of its {total} connections")]
    Process { in_use: usize, total: usize },
}

#[derive(Debug)]
struct Share {
    max: usize,
    in_use: usize,
}

#[derive(Debug, Default)]
struct State {
    in_use: usize,
    /// Registered listeners; a slot is `None` once its limiter is dropped.
    shares: Vec<Option<Share>>,
}

/// The process-wide number of accepted connections every listener draws
/// from. [`ConnectionBudget::global`] is the one the plugins use.
#[derive(Debug)]
pub struct ConnectionBudget {
    total: usize,
    state: Mutex<State>,
}

impl ConnectionBudget {
    /// A budget of `total` connections (tests; the agent uses `global`).
    pub fn new(total: usize) -> Arc<Self> {
        Arc::new(Self {
            total: total.max(1),
            state: Mutex::default(),
        })
    }

    /// The process's budget: the soft `RLIMIT_NOFILE` less a reserve of a
    /// quarter of it (at least 64), read once.
    pub fn global() -> &'static Arc<Self> {
        static GLOBAL: OnceLock<Arc<ConnectionBudget>> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            let limit = open_file_limit();
            let total = limit.saturating_sub(MIN_RESERVE.max(limit / 4)).max(1);
            tracing::debug!(
                open_file_limit = limit,
                connection_budget = total,
                "connection budget sized"
            );
            Self::new(total)
        })
    }

    /// How many connections the process may hold.
    pub fn total(&self) -> usize {
        self.total
    }

    /// How many it holds now.
    pub fn in_use(&self) -> usize {
        self.lock().in_use
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Register a listener holding at most `max` connections (0 = no
    /// maximum of its own) and return its limiter.
    pub fn limiter(self: &Arc<Self>, max: usize) -> ConnectionLimiter {
        let max = if max == 0 { usize::MAX } else { max };
        let mut st = self.lock();
        let share = Some(Share { max, in_use: 0 });
        let id = match st.shares.iter().position(Option::is_none) {
            Some(free) => {
                st.shares[free] = share;
                free
            }
            None => {
                st.shares.push(share);
                st.shares.len() - 1
            }
        };
        ConnectionLimiter {
            budget: self.clone(),
            id,
            max,
        }
    }

    fn acquire(&self, id: usize) -> Result<(), Refused> {
        let mut st = self.lock();
        let listeners = st.shares.iter().flatten().count().max(1);
        let guaranteed = self.total / (2 * listeners);
        let owed: usize = st
            .shares
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != id)
            .filter_map(|(_, s)| s.as_ref())
            .map(|s| s.max.min(guaranteed).saturating_sub(s.in_use))
            .sum();
        let in_use = st.in_use;
        let Some(Some(me)) = st.shares.get_mut(id) else {
            return Err(Refused::Process {
                in_use,
                total: self.total,
            });
        };
        if me.in_use >= me.max {
            return Err(Refused::Listener { max: me.max });
        }
        if in_use + 1 + owed > self.total {
            return Err(Refused::Process {
                in_use,
                total: self.total,
            });
        }
        me.in_use += 1;
        st.in_use += 1;
        Ok(())
    }

    fn release(&self, id: usize) {
        let mut st = self.lock();
        st.in_use = st.in_use.saturating_sub(1);
        if let Some(Some(s)) = st.shares.get_mut(id) {
            s.in_use = s.in_use.saturating_sub(1);
        }
    }
}

/// One listener's claim on a [`ConnectionBudget`]: the single place where
/// an accept loop asks whether it may keep a connection.
#[derive(Debug)]
pub struct ConnectionLimiter {
    budget: Arc<ConnectionBudget>,
    id: usize,
    max: usize,
}

impl ConnectionLimiter {
    /// A slot for one accepted connection, held until the permit drops; a
    /// refused connection is to be closed at once (and counted).
    pub fn try_acquire(&self) -> Result<ConnectionPermit, Refused> {
        self.budget.acquire(self.id)?;
        Ok(ConnectionPermit {
            budget: self.budget.clone(),
            id: self.id,
        })
    }

    /// This listener's own maximum (`usize::MAX` when it has none).
    pub fn max(&self) -> usize {
        self.max
    }
}

impl Drop for ConnectionLimiter {
    fn drop(&mut self) {
        let mut st = self.budget.lock();
        if let Some(slot) = st.shares.get_mut(self.id) {
            // Permits still held give their slots back to the process
            // when they drop; the share itself goes now.
            *slot = None;
        }
    }
}

/// One held connection slot.
#[derive(Debug)]
pub struct ConnectionPermit {
    budget: Arc<ConnectionBudget>,
    id: usize,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.budget.release(self.id);
    }
}

/// The soft limit on open files, or 1024 when it cannot be read.
fn open_file_limit() -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    soft.map_or(1024, |n| usize::try_from(n).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(l: &ConnectionLimiter, n: usize) -> Vec<ConnectionPermit> {
        (0..n).map_while(|_| l.try_acquire().ok()).collect()
    }

    #[test]
    fn a_listener_stops_at_its_own_maximum() {
        let budget = ConnectionBudget::new(100);
        let l = budget.limiter(3);
        let held = fill(&l, 10);
        assert_eq!(held.len(), 3);
        assert_eq!(l.try_acquire().unwrap_err(), Refused::Listener { max: 3 });
        drop(held);
        assert_eq!(budget.in_use(), 0);
        assert_eq!(fill(&l, 10).len(), 3);
    }

    #[test]
    fn one_listener_cannot_starve_another() {
        let budget = ConnectionBudget::new(100);
        let greedy = budget.limiter(0);
        let quiet = budget.limiter(0);
        let held = fill(&greedy, 1000);
        // The other's guaranteed share: a quarter (half the budget split
        // between two listeners).
        assert_eq!(held.len(), 75);
        assert!(matches!(greedy.try_acquire(), Err(Refused::Process { .. })));
        let theirs = fill(&quiet, 1000);
        assert_eq!(theirs.len(), 25);
        assert_eq!(budget.in_use(), 100);
        drop(held);
        assert_eq!(budget.in_use(), 25);
    }

    #[test]
    fn a_small_maximum_owes_only_what_it_can_use() {
        let budget = ConnectionBudget::new(100);
        let greedy = budget.limiter(0);
        let _small = budget.limiter(5);
        assert_eq!(fill(&greedy, 1000).len(), 95);
    }

    #[test]
    fn a_dropped_listener_owes_nothing() {
        let budget = ConnectionBudget::new(10);
        let a = budget.limiter(0);
        let b = budget.limiter(0);
        drop(b);
        assert_eq!(fill(&a, 100).len(), 10);
    }

    #[test]
    fn the_global_budget_stays_below_the_open_file_limit() {
        let limit = open_file_limit();
        let total = ConnectionBudget::global().total();
        assert!(total < limit, "{total} of {limit}");
        assert!(limit - total >= MIN_RESERVE.min(limit - 1));
    }
}
