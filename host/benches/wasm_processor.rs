//! Throughput of a processor stage, WASM against native, in one process.
//!
//! Batches of 1000 metrics (4 tags, 6 float fields) go through: a native
//! clone (the floor every job pays), the native rename+tag transform, a WASM
//! passthrough and the WASM rename+tag plugin (`examples/rename-processor`);
//! and, for the fixed cost of a call, a WASM passthrough of one metric
//! (its metrics/s are calls/s).
//! WASM jobs include every host-side step: moving the columns into the WIT
//! types, the call, and checking the returned batch against the contract.
//! Jobs run interleaved, round after round, so that machine noise hits all of
//! them alike; each figure is the median over the rounds.
//!
//! `cargo bench -p graft --bench wasm_processor` prints the table. Under
//! `cargo test` (no `--bench` argument) it runs one short round and checks
//! that WASM and native produce the same batch.

use std::hint::black_box;
use std::time::{Duration, Instant};

use graft::wasm::adapters::WasmProcessor;
use graft::wasm::{PluginSpec, RuntimeOptions, WasmInstance, WasmRuntime};
use graft_api::Processor;
use graft_core::{Batch, BatchBuilder};

const BATCH: usize = 1000;

fn input_batch() -> Batch {
    let mut b = BatchBuilder::new();
    for i in 0..BATCH {
        let host = format!("web-{:02}", i % 50);
        let cpu = format!("cpu{}", i % 8);
        b.metric("cpu", 1_700_000_000_000_000_000 + i as i64)
            .tag("host", &host)
            .tag("cpu", &cpu)
            .tag("dc", "tyo2")
            .tag("env", "prod")
            .field("usage_user", i as f64 * 0.5)
            .field("usage_system", 1.5)
            .field("usage_idle", 90.0)
            .field("usage_iowait", 0.25)
            .field("usage_irq", 0.0)
            .field("usage_steal", 0.125);
    }
    b.finish()
}

fn native_rename_tag(batch: &mut Batch) {
    batch.rename_field("usage_user", "user");
    batch.set_tag("region", "ap-northeast");
}

fn wasm_processor(rt: &std::sync::Arc<WasmRuntime>, guest: &str, config: &str) -> WasmProcessor {
    let plugin = rt
        .load(&graft_test_support::wasm(guest))
        .expect("load plugin");
    let spec = PluginSpec::new(guest, config);
    WasmProcessor::new(WasmInstance::start(plugin, spec).expect("start plugin"))
}

struct Job {
    name: &'static str,
    run: Box<dyn FnMut(&Batch) -> usize>,
    rates: Vec<f64>,
}

fn measure(job: &mut Job, input: &Batch, budget: Duration) {
    let start = Instant::now();
    let mut metrics = 0usize;
    while start.elapsed() < budget {
        metrics += (job.run)(input);
    }
    job.rates
        .push(metrics as f64 / start.elapsed().as_secs_f64());
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (rounds, budget) = if bench {
        (15, Duration::from_millis(200))
    } else {
        (1, Duration::from_millis(20))
    };

    let rt = WasmRuntime::new(&RuntimeOptions::with_default_cache()).expect("runtime");
    let rename_config = r#"{"from":"usage_user","to":"user","tags":{"region":"ap-northeast"}}"#;
    let mut wasm_pass = wasm_processor(&rt, "test-passthrough", "{}");
    let mut wasm_rename = wasm_processor(&rt, "example-rename-processor", rename_config);
    let mut wasm_one = wasm_processor(&rt, "test-passthrough", "{}");
    let one = {
        let mut b = BatchBuilder::new();
        b.metric("cpu", 1)
            .tag("host", "web-01")
            .field("usage_user", 0.5);
        b.finish()
    };
    let input = input_batch();

    // Same result from both implementations, before timing anything.
    let mut native = input.clone();
    native_rename_tag(&mut native);
    let mut wasm = input.clone();
    wasm_rename.process(&mut wasm).expect("wasm rename");
    let rows = |b: &Batch| b.iter().map(|m| format!("{m:?}")).collect::<Vec<_>>();
    assert_eq!(
        rows(&native),
        rows(&wasm),
        "WASM and native transforms differ"
    );
    let mut passed = input.clone();
    wasm_pass.process(&mut passed).expect("wasm passthrough");
    assert_eq!(rows(&passed), rows(&input), "passthrough changed the batch");

    let mut jobs = vec![
        Job {
            name: "native clone (floor)",
            run: Box::new(|b| black_box(b.clone()).len()),
            rates: vec![],
        },
        Job {
            name: "native rename+tag",
            run: Box::new(|b| {
                let mut b = b.clone();
                native_rename_tag(&mut b);
                black_box(b).len()
            }),
            rates: vec![],
        },
        Job {
            name: "wasm passthrough",
            run: Box::new(move |b| {
                let mut b = b.clone();
                wasm_pass.process(&mut b).expect("passthrough");
                black_box(b).len()
            }),
            rates: vec![],
        },
        Job {
            name: "wasm call, 1 metric",
            run: Box::new(move |_| {
                let mut b = one.clone();
                wasm_one.process(&mut b).expect("passthrough");
                black_box(b).len()
            }),
            rates: vec![],
        },
        Job {
            name: "wasm rename+tag",
            run: Box::new(move |b| {
                let mut b = b.clone();
                wasm_rename.process(&mut b).expect("rename");
                black_box(b).len()
            }),
            rates: vec![],
        },
    ];
    for job in &mut jobs {
        measure(job, &input, budget / 4); // warm-up
        job.rates.clear();
    }
    for _ in 0..rounds {
        for job in &mut jobs {
            measure(job, &input, budget);
        }
    }

    println!(
        "processor stage, batches of {BATCH} metrics (4 tags, 6 float fields), one core, median of {rounds} interleaved rounds"
    );
    println!("{:<24} {:>14} {:>12}", "job", "metrics/s", "ns/metric");
    for job in &jobs {
        let r = median(&job.rates);
        println!("{:<24} {:>14.0} {:>12.1}", job.name, r, 1e9 / r);
    }
    let rate = |name: &str| median(&jobs.iter().find(|j| j.name == name).expect("job").rates);
    println!(
        "ratio wasm/native rename+tag (throughput): {:.2}",
        rate("wasm rename+tag") / rate("native rename+tag")
    );
    println!(
        "ratio wasm passthrough/native clone (throughput): {:.2}",
        rate("wasm passthrough") / rate("native clone (floor)")
    );
    println!(
        "target: wasm rename+tag >= 1,000,000 metrics/s: {}",
        if rate("wasm rename+tag") >= 1e6 {
            "met"
        } else {
            "MISSED"
        }
    );
}
