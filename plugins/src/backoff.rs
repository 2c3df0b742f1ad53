//! How long to wait before trying again after consecutive failures: one
//! type for every retry loop (a graphite server, an InfluxDB server that
//! throttles, a faulted WASM instance, an output's flush).
//!
//! The delay after the n-th consecutive failure is `base × 2^(n-1)`
//! (exponential) or `base × n²` (quadratic, Telegraf's InfluxDB throttle),
//! never above `cap`, then stretched by a random part of `jitter` so that
//! many agents do not retry in step. A success resets it.

use std::time::{Duration, Instant};

use rand::Rng;

/// How the delay grows with the number of consecutive failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Growth {
    /// `base × 2^(n-1)`.
    Doubling,
    /// `base × n²`.
    Quadratic,
}

/// Consecutive failures, the delay they earn and when the next attempt may
/// go.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    /// Up to this fraction of the delay is added at random (0 = none).
    jitter: f64,
    growth: Growth,
    failures: u32,
    next_attempt: Option<Instant>,
}

impl Backoff {
    /// `base` after the first failure, doubling after each further one, at
    /// most `cap`.
    pub fn exponential(base: Duration, cap: Duration) -> Self {
        Self::new(base, cap, Growth::Doubling)
    }

    /// `base × n²` after the n-th failure, at most `cap`.
    pub fn quadratic(base: Duration, cap: Duration) -> Self {
        Self::new(base, cap, Growth::Quadratic)
    }

    fn new(base: Duration, cap: Duration, growth: Growth) -> Self {
        Self {
            base,
            cap,
            jitter: 0.0,
            growth,
            failures: 0,
            next_attempt: None,
        }
    }

    /// Add up to `fraction` of each delay at random (clamped to 0..=1).
    pub fn with_jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// The delay the next failure would earn, before jitter.
    pub fn next_delay(&self) -> Duration {
        let n = self.failures.saturating_add(1);
        let delay = match self.growth {
            Growth::Doubling => self.base.saturating_mul(1 << (n - 1).min(16)),
            Growth::Quadratic => self.base.saturating_mul(n.saturating_mul(n)),
        };
        delay.min(self.cap)
    }

    /// Count a failure; returns how long to wait before the next attempt.
    pub fn fail(&mut self) -> Duration {
        self.fail_at_least(Duration::ZERO)
    }

    /// Count a failure whose peer asked for at least `floor` (a
    /// `Retry-After`); returns the longer of the two waits.
    pub fn fail_at_least(&mut self, floor: Duration) -> Duration {
        let mut delay = self.next_delay();
        if self.jitter > 0.0 && !delay.is_zero() {
            delay += delay.mul_f64(rand::rng().random_range(0.0..self.jitter));
        }
        let delay = delay.max(floor);
        self.failures = self.failures.saturating_add(1);
        self.next_attempt = Some(Instant::now() + delay);
        delay
    }

    /// A success: the next failure starts from `base` again.
    pub fn succeed(&mut self) {
        self.failures = 0;
        self.next_attempt = None;
    }

    /// Allow the next attempt now, keeping the count of failures (an
    /// instance re-created after a fault: its count resets only once a call
    /// on it succeeds).
    pub fn release(&mut self) {
        self.next_attempt = None;
    }

    /// How long until the next attempt may go; `None` if it may go now.
    pub fn remaining(&self) -> Option<Duration> {
        let at = self.next_attempt?;
        let now = Instant::now();
        (now < at).then(|| at - now)
    }

    /// Whether a failure is waiting for its next attempt (time up or not).
    pub fn is_waiting(&self) -> bool {
        self.next_attempt.is_some()
    }

    /// Consecutive failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn delays(mut b: Backoff, n: usize) -> Vec<Duration> {
        (0..n).map(|_| b.fail()).collect()
    }

    #[test]
    fn exponential_doubles_up_to_the_cap() {
        let b = Backoff::exponential(100 * MS, Duration::from_secs(1));
        assert_eq!(
            delays(b, 6),
            [100 * MS, 200 * MS, 400 * MS, 800 * MS, 1000 * MS, 1000 * MS]
        );
    }

    #[test]
    fn quadratic_grows_as_the_square() {
        // Telegraf's InfluxDB throttle: n²/40 s, at most 60 s.
        let b = Backoff::quadratic(25 * MS, Duration::from_secs(60));
        assert_eq!(delays(b.clone(), 3), [25 * MS, 100 * MS, 225 * MS]);
        assert_eq!(delays(b, 60)[59], Duration::from_secs(60));
    }

    #[test]
    fn success_resets_and_release_keeps_the_count() {
        let mut b = Backoff::exponential(MS, Duration::from_secs(1));
        b.fail();
        b.fail();
        assert!(b.is_waiting());
        b.release();
        assert!(!b.is_waiting() && b.remaining().is_none());
        assert_eq!(b.fail(), 4 * MS);
        b.succeed();
        assert_eq!(b.failures(), 0);
        assert_eq!(b.fail(), MS);
    }

    #[test]
    fn a_floor_from_the_peer_wins_when_longer() {
        let mut b = Backoff::exponential(MS, Duration::from_secs(1));
        assert_eq!(
            b.fail_at_least(Duration::from_secs(5)),
            Duration::from_secs(5)
        );
        assert!(b.remaining().is_some_and(|d| d > Duration::from_secs(4)));
        assert_eq!(b.fail_at_least(MS), 2 * MS);
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let mut b =
            Backoff::exponential(Duration::from_secs(1), Duration::from_secs(1)).with_jitter(0.5);
        for _ in 0..100 {
            let d = b.fail();
            assert!(
                d >= Duration::from_secs(1) && d < Duration::from_millis(1500),
                "{d:?}"
            );
        }
    }

    #[test]
    fn huge_counts_saturate_at_the_cap() {
        let mut b = Backoff::exponential(Duration::from_secs(1), Duration::from_secs(30));
        b.failures = u32::MAX - 1;
        assert_eq!(b.fail(), Duration::from_secs(30));
        assert_eq!(b.fail(), Duration::from_secs(30));
    }
}
