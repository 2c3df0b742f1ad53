//! Line-protocol throughput: graft's parser and serializer, side by side in
//! the same run with the `influxdb-line-protocol` crate's parser (the one
//! InfluxDB IOx and Vector use).
//!
//! Three corpora: Telegraf-shaped system metrics (tags, many float and
//! integer fields), short lines (`x,t=y y=1 <ts>`), and lines with escapes
//! and string fields. Each parser turns the whole text into its natural
//! result: graft into a columnar [`Batch`] (strings interned, values typed),
//! the crate into a `Vec<ParsedLine>` (zero-copy slices). Jobs run
//! interleaved, round after round, so machine noise hits all alike; figures
//! are medians.
//!
//! `cargo bench -p graft-core --bench lineproto` prints MB/s, lines/s and
//! the ratio graft / crate. Under `cargo test` (no `--bench` argument) it
//! runs one short round and checks that both parsers read every line.

use std::hint::black_box;
use std::time::{Duration, Instant};

use graft_core::BatchBuilder;
use graft_core::lineparse::{Precision, parse_into};
use graft_core::lineproto::{Serializer, SerializerOptions};

struct Corpus {
    name: &'static str,
    text: String,
    lines: usize,
}

fn system_corpus(lines: usize) -> Corpus {
    let mut text = String::new();
    let ts = 1_700_000_000_000_000_000i64;
    for i in 0..lines {
        let t = ts + (i as i64 / 4) * 10_000_000_000;
        match i % 4 {
            0 => text.push_str(&format!(
                "cpu,cpu=cpu{},host=web-{:02}.example.com usage_guest=0,usage_guest_nice=0,usage_idle={:.6},usage_iowait=0.1001001001001001,usage_irq=0,usage_nice=0,usage_softirq=0.2002002002002002,usage_steal=0,usage_system=1.6016016016016015,usage_user=3.{} {t}\n",
                i % 8,
                i % 40,
                94.0 + (i % 100) as f64 / 7.0,
                i % 1000
            )),
            1 => text.push_str(&format!(
                "mem,host=web-{:02}.example.com active={}i,available={}i,available_percent=71.3{},buffers=210739200i,cached=6061776896i,free={}i,inactive=3291189248i,total=16481853440i,used={}i,used_percent=28.6{} {t}\n",
                i % 40,
                5_000_000_000u64 + i as u64,
                11_750_000_000u64 + i as u64 * 7,
                i % 10,
                4_000_000_000u64 + i as u64 * 3,
                4_700_000_000u64 + i as u64,
                i % 10
            )),
            2 => text.push_str(&format!(
                "disk,device=nvme0n1p{},fstype=ext4,host=web-{:02}.example.com,mode=rw,path=/srv/data{} free={}i,inodes_free=30123456i,inodes_total=30523392i,inodes_used=399936i,total=494384795648i,used={}i,used_percent=42.{} {t}\n",
                i % 3,
                i % 40,
                i % 3,
                250_000_000_000u64 + i as u64,
                200_000_000_000u64 + i as u64,
                i % 10
            )),
            _ => text.push_str(&format!(
                "system,host=web-{:02}.example.com load1=0.{},load15=0.25,load5=0.31,n_cpus=8i,n_users=2i,uptime={}u {t}\n",
                i % 40,
                i % 100,
                1_000_000 + i
            )),
        }
    }
    Corpus {
        name: "telegraf system",
        text,
        lines,
    }
}

fn short_corpus(lines: usize) -> Corpus {
    let mut text = String::new();
    for i in 0..lines {
        text.push_str(&format!(
            "x,t=y y={} 16028416058227{:05}\n",
            i % 1000,
            i % 100_000
        ));
    }
    Corpus {
        name: "short lines",
        text,
        lines,
    }
}

fn escaped_corpus(lines: usize) -> Corpus {
    let mut text = String::new();
    for i in 0..lines {
        text.push_str(&format!(
            "log\\ events,app=api\\,v2,path=/a\\=b\\ c{} msg=\"GET /x?q=\\\"{}\\\" took {}ms\",status=200i,ok=true 1700000000{:09}\n",
            i % 10,
            i,
            i % 97,
            i
        ));
    }
    Corpus {
        name: "escapes+strings",
        text,
        lines,
    }
}

fn graft_parse(text: &str) -> usize {
    let mut b = BatchBuilder::new();
    let errors = parse_into(text, Precision::Nanoseconds, 0, &mut b);
    assert!(errors.is_empty(), "{:?}", errors.first());
    b.finish().len()
}

fn crate_parse(text: &str) -> usize {
    let parsed: Vec<_> = influxdb_line_protocol::parse_lines(text)
        .collect::<Result<_, _>>()
        .expect("crate parses the corpus");
    black_box(&parsed);
    parsed.len()
}

/// Median of a job's rates (bytes/s).
fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn rate(budget: Duration, bytes: usize, mut f: impl FnMut() -> usize) -> f64 {
    let start = Instant::now();
    let mut total = 0usize;
    while start.elapsed() < budget {
        black_box(f());
        total += bytes;
    }
    total as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (lines, rounds, budget) = if bench {
        (10_000, 15, Duration::from_millis(300))
    } else {
        (200, 1, Duration::from_millis(5))
    };
    let corpora = [
        system_corpus(lines),
        short_corpus(lines),
        escaped_corpus(lines),
    ];
    let serializer = Serializer::new(SerializerOptions {
        uint_support: true,
        ..SerializerOptions::default()
    });
    println!("line protocol, {lines} lines per corpus, {rounds} interleaved rounds, median\n");
    println!(
        "| corpus | bytes/line | graft parse MB/s | graft lines/s | crate parse MB/s | crate lines/s | graft / crate | graft serialize MB/s |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for c in &corpora {
        // Both parsers must read every line; the serializer must give back
        // text that parses to the same number of metrics.
        assert_eq!(graft_parse(&c.text), c.lines, "{}", c.name);
        assert_eq!(crate_parse(&c.text), c.lines, "{}", c.name);
        let mut b = BatchBuilder::new();
        parse_into(&c.text, Precision::Nanoseconds, 0, &mut b);
        let batch = b.finish();
        let mut out = Vec::with_capacity(c.text.len() * 2);
        serializer.write_batch(&batch, &mut out);
        assert_eq!(graft_parse(std::str::from_utf8(&out).unwrap()), c.lines);
        let written = out.len();

        let (mut g, mut k, mut s) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            g.push(rate(budget, c.text.len(), || graft_parse(&c.text)));
            k.push(rate(budget, c.text.len(), || crate_parse(&c.text)));
            s.push(rate(budget, written, || {
                out.clear();
                serializer.write_batch(&batch, &mut out);
                out.len()
            }));
        }
        let (g, k, s) = (median(&g), median(&k), median(&s));
        let per_line = c.text.len() as f64 / c.lines as f64;
        println!(
            "| {} | {:.0} | {:.1} | {:.2} M | {:.1} | {:.2} M | {:.2}× | {:.1} |",
            c.name,
            per_line,
            g / 1e6,
            g / per_line / 1e6,
            k / 1e6,
            k / per_line / 1e6,
            g / k,
            s / 1e6
        );
    }
}
