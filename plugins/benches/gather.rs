//! Cost of one gather of each system input and of all eight together, with
//! the bare read of `/proc/stat` and `/proc/meminfo` as the floor measured in
//! the same run. Inputs keep their state between gathers, as in the agent
//! (cpu and diskio report usage from the second gather on).
//!
//! `cargo bench -p graft-plugins --bench gather` prints the table; under
//! `cargo test` it gathers each input a few times as a check.

use std::time::{Duration, Instant};

use graft_api::Input;
use graft_plugins::inputs::{cpu, disk, diskio, kernel, mem, processes, swap, system};

fn inputs() -> Vec<(&'static str, Box<dyn Input>)> {
    let t = toml::Table::new;
    vec![
        ("cpu", cpu::build(t()).unwrap()),
        ("disk", disk::build(t()).unwrap()),
        ("diskio", diskio::build(t()).unwrap()),
        ("kernel", kernel::build(t()).unwrap()),
        ("mem", mem::build(t()).unwrap()),
        ("processes", processes::build(t()).unwrap()),
        ("swap", swap::build(t()).unwrap()),
        ("system", system::build(t()).unwrap()),
    ]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (rounds, per_round) = if bench { (15, 200) } else { (1, 3) };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut inputs = inputs();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); inputs.len() + 2];
    let mut metrics = vec![0usize; inputs.len()];
    for _ in 0..rounds {
        let start = Instant::now();
        for _ in 0..per_round {
            std::hint::black_box(std::fs::read("/proc/stat").unwrap());
            std::hint::black_box(std::fs::read("/proc/meminfo").unwrap());
        }
        times[0].push(start.elapsed().as_secs_f64() / per_round as f64);
        let all = Instant::now();
        for (i, (name, input)) in inputs.iter_mut().enumerate() {
            let start = Instant::now();
            for _ in 0..per_round {
                let batch = rt
                    .block_on(input.gather())
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                metrics[i] = batch.len();
            }
            times[i + 1].push(start.elapsed().as_secs_f64() / per_round as f64);
        }
        times[inputs.len() + 1].push(all.elapsed().as_secs_f64() / per_round as f64);
    }
    let us = |d: f64| Duration::from_secs_f64(d).as_secs_f64() * 1e6;
    println!("one gather per input, median of {rounds} rounds of {per_round} gathers");
    println!("{:<28} {:>10} {:>9}", "job", "µs/gather", "metrics");
    let floor = median(times[0].clone());
    println!(
        "{:<28} {:>10.1} {:>9}",
        "floor: read stat+meminfo",
        us(floor),
        "-"
    );
    for (i, (name, _)) in inputs.iter().enumerate() {
        println!(
            "{:<28} {:>10.1} {:>9}",
            name,
            us(median(times[i + 1].clone())),
            metrics[i]
        );
    }
    let all = median(times[inputs.len() + 1].clone());
    println!(
        "{:<28} {:>10.1} {:>9}",
        "all eight",
        us(all),
        metrics.iter().sum::<usize>()
    );
    println!("ratio all eight / floor: {:.1}", all / floor);
}
