//! The StatsD line parser: `bucket[,tag=v...]:value|type[|@rate][|#tags]`
//! read into the aggregation state (gauges, counters, sets, timings,
//! distributions) that the input's gather turns into metrics.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use rand::Rng;

use crate::graphite::Templates;

/// Running statistics of one timing field (Telegraf's `RunningStats`).
#[derive(Debug, Clone, Default)]
pub(super) struct Stats {
    k: f64,
    pub(super) n: u64,
    ex: f64,
    ex2: f64,
    pub(super) sum: f64,
    pub(super) lower: f64,
    pub(super) upper: f64,
    /// Reservoir for percentiles (random replacement beyond the limit).
    perc: Vec<f64>,
    /// The most recent values, for the median.
    recent: Vec<f64>,
    next_recent: usize,
}

impl Stats {
    /// Add `v` as if it had been seen `times` times (a sample rate of
    /// 1/times), in time linear in at most `limit`, whatever `times` is.
    pub(super) fn add(&mut self, v: f64, times: u64, limit: usize) {
        if self.n == 0 {
            self.k = v;
            self.lower = v;
            self.upper = v;
        }
        let t = times as f64;
        self.n = self.n.saturating_add(times);
        self.ex += (v - self.k) * t;
        self.ex2 += (v - self.k) * (v - self.k) * t;
        self.sum += v * t;
        self.lower = self.lower.min(v);
        self.upper = self.upper.max(v);
        // Past `limit` copies of one value, the samples cannot change more.
        for _ in 0..times.min(limit.max(1) as u64) {
            if self.perc.len() < limit {
                self.perc.push(v);
            } else if limit > 0 {
                let i = rand::rng().random_range(0..self.perc.len());
                self.perc[i] = v;
            }
            if self.recent.len() < limit.max(1) {
                self.recent.push(v);
            } else {
                self.recent[self.next_recent] = v;
                self.next_recent = (self.next_recent + 1) % self.recent.len();
            }
        }
    }

    pub(super) fn mean(&self) -> f64 {
        self.k + self.ex / self.n as f64
    }

    pub(super) fn stddev(&self) -> f64 {
        let n = self.n as f64;
        ((self.ex2 - self.ex * self.ex / n) / n).max(0.0).sqrt()
    }

    pub(super) fn median(&self) -> f64 {
        let mut v = self.recent.clone();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n.is_multiple_of(2) {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        } else {
            v[n / 2]
        }
    }

    /// Nearest rank, no interpolation, as Telegraf.
    pub(super) fn percentile(&mut self, p: f64) -> f64 {
        self.perc.sort_by(f64::total_cmp);
        let i = (self.perc.len() as f64 * p.min(100.0) / 100.0) as usize;
        self.perc[i.min(self.perc.len() - 1)]
    }
}

/// One series being aggregated: measurement, tags, per-field state.
#[derive(Debug)]
pub(super) struct Entry<T> {
    pub(super) name: String,
    pub(super) tags: BTreeMap<String, String>,
    pub(super) fields: BTreeMap<String, T>,
    pub(super) updated: Instant,
}

pub(super) type Key = (String, Vec<(String, String)>);

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) gauges: HashMap<Key, Entry<f64>>,
    pub(super) counters: HashMap<Key, Entry<f64>>,
    pub(super) sets: HashMap<Key, Entry<HashSet<String>>>,
    pub(super) timings: HashMap<Key, Entry<Stats>>,
    pub(super) distributions: Vec<(String, BTreeMap<String, String>, f64)>,
}

/// Everything the parser needs.
pub(super) struct Parser {
    pub(super) templates: Templates,
    pub(super) datadog: bool,
    pub(super) distributions: bool,
    pub(super) keep_container: bool,
    pub(super) percentile_limit: usize,
}

/// Read `bucket` into measurement, field and tags: influx-style tags after
/// commas, then the templates.
fn parse_bucket(
    p: &Parser,
    bucket: &str,
) -> Result<(String, String, BTreeMap<String, String>), &'static str> {
    let mut parts = bucket.split(',');
    let name = parts.next().unwrap_or_default();
    if name.is_empty() {
        return Err("empty bucket");
    }
    let mut tags = BTreeMap::new();
    for kv in parts {
        let (k, v) = kv.split_once('=').ok_or("a bucket tag has no `=`")?;
        tags.insert(k.to_owned(), v.to_owned());
    }
    let applied = p.templates.apply(name);
    for (k, v) in applied.tags {
        tags.entry(k).or_insert(v);
    }
    Ok((
        applied.measurement,
        applied.field.unwrap_or_else(|| "value".into()),
        tags,
    ))
}

fn entry<'a, T: Default>(
    map: &'a mut HashMap<Key, Entry<T>>,
    name: &str,
    tags: &BTreeMap<String, String>,
) -> &'a mut Entry<T> {
    let key: Key = (
        name.to_owned(),
        tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    );
    let e = map.entry(key).or_insert_with(|| Entry {
        name: name.to_owned(),
        tags: tags.clone(),
        fields: BTreeMap::new(),
        updated: Instant::now(),
    });
    e.updated = Instant::now();
    e
}

/// Parse one line into the state.
pub(super) fn parse_line(p: &Parser, line: &str, state: &mut State) -> Result<(), &'static str> {
    let mut line_tags = BTreeMap::new();
    let mut line = line;
    if p.datadog {
        // `|#a:b,c` and `|c:<container>` sections after the type.
        let mut kept = String::new();
        let mut first = true;
        for section in line.split('|') {
            if let Some(tags) = section.strip_prefix('#').filter(|_| !first) {
                for t in tags.split(',').filter(|t| !t.is_empty()) {
                    let (k, v) = t.split_once(':').unwrap_or((t, "true"));
                    line_tags.insert(k.to_owned(), v.to_owned());
                }
                continue;
            }
            if let Some(id) = section.strip_prefix("c:").filter(|_| !first) {
                if p.keep_container {
                    line_tags.insert("container".to_owned(), id.to_owned());
                }
                continue;
            }
            if !first {
                kept.push('|');
            }
            kept.push_str(section);
            first = false;
        }
        return parse_plain(p, &kept, line_tags, state);
    }
    line = line.trim();
    parse_plain(p, line, line_tags, state)
}

fn parse_plain(
    p: &Parser,
    line: &str,
    line_tags: BTreeMap<String, String>,
    state: &mut State,
) -> Result<(), &'static str> {
    let mut bits = line.split(':');
    let bucket = bits.next().unwrap_or_default();
    let values: Vec<&str> = bits.collect();
    if values.is_empty() {
        return Err("expected bucket:value|type");
    }
    let (name, field, mut tags) = parse_bucket(p, bucket)?;
    tags.extend(line_tags);
    for bit in values {
        let pipes: Vec<&str> = bit.split('|').collect();
        if pipes.len() < 2 {
            return Err("expected value|type");
        }
        let rate = match pipes.get(2) {
            Some(sr) => {
                let r: f64 = sr
                    .strip_prefix('@')
                    .and_then(|r| r.parse().ok())
                    .ok_or("sample rate is not @<number>")?;
                if !(r > 0.0 && r <= 1.0) {
                    return Err("sample rate is not in (0, 1]");
                }
                Some(r)
            }
            None => None,
        };
        let (raw, kind) = (pipes[0], pipes[1]);
        let (mtype, metric_type) = match kind {
            "g" => ("g", "gauge"),
            "c" => ("c", "counter"),
            "s" => ("s", "set"),
            "ms" => ("ms", "timing"),
            "h" => ("h", "histogram"),
            "d" if p.distributions => ("d", "distribution"),
            _ => return Err("unknown metric type"),
        };
        let additive = raw.starts_with(['+', '-']);
        if additive && !matches!(mtype, "g" | "c") {
            return Err("+/- values are only for gauges and counters");
        }
        let mut tags = tags.clone();
        tags.insert("metric_type".into(), metric_type.into());
        let float = || {
            raw.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or("value is not a number")
        };
        match mtype {
            "g" => {
                let v = float()?;
                let e = entry(&mut state.gauges, &name, &tags);
                let f = e.fields.entry(field.clone()).or_insert(0.0);
                let next = if additive { *f + v } else { v };
                if !next.is_finite() {
                    return Err("gauge out of range");
                }
                *f = next;
            }
            "c" => {
                let v = float()? / rate.unwrap_or(1.0);
                if !v.is_finite() {
                    return Err("counter out of range");
                }
                let e = entry(&mut state.counters, &name, &tags);
                let f = e.fields.entry(field.clone()).or_insert(0.0);
                if !(*f + v).is_finite() {
                    return Err("counter out of range");
                }
                *f += v;
            }
            "s" => {
                let e = entry(&mut state.sets, &name, &tags);
                e.fields
                    .entry(field.clone())
                    .or_default()
                    .insert(raw.to_owned());
            }
            "ms" | "h" => {
                let v = float()?;
                let e = entry(&mut state.timings, &name, &tags);
                let stats = e.fields.entry(field.clone()).or_default();
                let times = rate.map_or(1, |r| (1.0 / r) as u64).max(1);
                stats.add(v, times, p.percentile_limit);
            }
            _ => {
                let v = float()?;
                state.distributions.push((name.clone(), tags, v));
            }
        }
    }
    Ok(())
}

/// Parse one line (bytes as received) into the state; false when it was
/// bad and skipped. Blank lines are fine.
pub(super) fn ingest_line(p: &Parser, line: &[u8], state: &mut State) -> bool {
    let text = String::from_utf8_lossy(line);
    let line = text.trim_end_matches('\r');
    if line.trim().is_empty() {
        return true;
    }
    match parse_line(p, line, state) {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(
                line = crate::listener::cut(line),
                error = e,
                "skipped a bad line"
            );
            false
        }
    }
}
