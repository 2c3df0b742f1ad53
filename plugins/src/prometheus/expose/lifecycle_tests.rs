//! Unit tests of a collection over time: expiration, the series bound and
//! a family that changes type, with times given, not waited for.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use graft_core::MetricKind;

use super::tests::{f, metric, options, text};
use super::*;

#[test]
fn series_expire_after_the_interval_and_never_with_zero() {
    let start = Instant::now();
    let mut c = Collection::new(options(Version::V2));
    let counters = ExposeCounters::default();
    c.set_counters(counters.clone());
    c.add(
        &metric("a", MetricKind::Gauge, &[], &[("v", f(1.0))], 0),
        start,
    );
    c.add(
        &metric("b", MetricKind::Gauge, &[], &[("v", f(1.0))], 0),
        start + Duration::from_secs(30),
    );
    c.expire(start + Duration::from_secs(59));
    assert_eq!(c.len(), 2);
    c.expire(start + Duration::from_secs(61));
    assert_eq!(c.len(), 1);
    assert!(!text(&c).contains("a_v") && text(&c).contains("b_v 1"));
    // An update keeps a series alive.
    c.add(
        &metric("b", MetricKind::Gauge, &[], &[("v", f(2.0))], 1),
        start + Duration::from_secs(80),
    );
    c.expire(start + Duration::from_secs(120));
    assert_eq!(c.len(), 1);
    assert_eq!(counters.series_expired.load(Ordering::Relaxed), 1);
    assert_eq!(counters.series.load(Ordering::Relaxed), 1);

    let mut o = options(Version::V2);
    o.expiration = None;
    let mut c = Collection::new(o);
    c.add(
        &metric("a", MetricKind::Gauge, &[], &[("v", f(1.0))], 0),
        start,
    );
    c.expire(start + Duration::from_secs(86_400 * 365));
    assert_eq!(c.len(), 1);
}

#[test]
fn new_series_past_max_series_are_counted_and_dropped_known_ones_still_update() {
    let start = Instant::now();
    let mut o = options(Version::V2);
    o.max_series = 10;
    let mut c = Collection::new(o);
    let counters = ExposeCounters::default();
    c.set_counters(counters.clone());
    for i in 0..25 {
        let id = i.to_string();
        c.add(
            &metric(
                "m",
                MetricKind::Gauge,
                &[("id", &id)],
                &[("v", f(i as f64))],
                0,
            ),
            start,
        );
    }
    assert_eq!(c.len(), 10);
    assert_eq!(counters.series_limit_hits.load(Ordering::Relaxed), 15);
    assert_eq!(
        text(&c).lines().filter(|l| l.starts_with("m_v{")).count(),
        10
    );
    // A known series still takes new values.
    c.add(
        &metric("m", MetricKind::Gauge, &[("id", "3")], &[("v", f(99.0))], 1),
        start,
    );
    assert!(text(&c).contains("m_v{id=\"3\"} 99\n"));
    assert_eq!(counters.series_limit_hits.load(Ordering::Relaxed), 15);
    // Once they expire, new series are kept again.
    c.add(
        &metric(
            "m",
            MetricKind::Gauge,
            &[("id", "new")],
            &[("v", f(1.0))],
            0,
        ),
        start + Duration::from_secs(61),
    );
    assert_eq!(c.len(), 1);
    assert!(text(&c).contains("m_v{id=\"new\"} 1\n"));
}

#[test]
fn a_family_that_changes_type_starts_over() {
    let mut c = Collection::new(options(Version::V2));
    let now = Instant::now();
    c.add(
        &metric("m", MetricKind::Gauge, &[("a", "1")], &[("v", f(1.0))], 0),
        now,
    );
    c.add(
        &metric("m", MetricKind::Counter, &[("a", "2")], &[("v", f(2.0))], 0),
        now,
    );
    assert_eq!(c.len(), 1);
    assert_eq!(
        text(&c),
        "# HELP m_v Telegraf collected metric\n# TYPE m_v counter\nm_v{a=\"2\"} 2\n"
    );
}
