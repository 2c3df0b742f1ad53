//! Metering: fuel per metric and linear memory against optional budgets,
//! and a soak whose memory must level off.

use std::time::Instant;

use super::Options;
use super::report::{Report, Status, fail, pass};
use super::subject::{Ran, Subject, generated};
use crate::stats::PluginStats;
use crate::wasm::LoadedPlugin;

/// Fuel per metric and the linear-memory high-water mark against their
/// budgets, then a soak whose memory must level off.
pub(super) fn metering(plugin: &LoadedPlugin, opts: &Options, report: &mut Report) {
    let t = Instant::now();
    let Ok(mut subject) = Subject::start(plugin, &opts.config_json) else {
        report.add(
            "metering",
            "fuel and memory",
            t,
            (Status::Skip, "init failed".into()),
        );
        return;
    };
    let batch = generated(1000);
    // The first call warms up; the second is measured.
    let _ = subject.exercise(&batch);
    let timed = Instant::now();
    let _ = subject.exercise(&batch);
    let micros = timed.elapsed().as_secs_f64() * 1e6 / batch.len() as f64;
    let fuel = subject.instance().last_fuel().unwrap_or(0);
    let per_metric = fuel / batch.len() as u64;
    let memory = subject.instance().memory_peak();
    let outcome = match opts.fuel_per_metric {
        Some(budget) if per_metric > budget => fail(format!(
            "{per_metric} fuel per metric, over the budget of {budget}"
        )),
        _ => pass(format!(
            "{per_metric} fuel per metric, {micros:.2} µs per metric on the metered engine \
             (1000-metric batch)"
        )),
    };
    report.add("metering", "fuel per metric", t, outcome);
    let outcome = match opts.memory_bytes {
        Some(budget) if memory > budget => fail(format!(
            "linear memory reached {memory} bytes, over the budget of {budget}"
        )),
        _ => pass(format!(
            "linear memory high-water mark {} KiB",
            memory / 1024
        )),
    };
    report.add("metering", "memory high-water mark", t, outcome);

    // The soak: memory must level off. It runs on a fresh instance whose
    // linear memory is capped not far above what the plugin needed so far
    // (half as much again, at least 4 MiB more): memory that grows without
    // bound hits the cap and faults, while a garbage-collected heap, which
    // would otherwise grow a long way before its first collection, is made
    // to collect. The peak is sampled every quarter; still rising through
    // the last three quarters also fails.
    let t = Instant::now();
    let small = generated(100);
    let warm = subject.instance().memory_peak();
    let cap = warm + (warm / 2).max(4 << 20);
    // Recycling lets memory reach the threshold before a fresh instance.
    let cap = opts
        .recycle_memory
        .map_or(cap, |r| cap.max(r + (r / 2).max(4 << 20)));
    let cap = opts.memory_bytes.map_or(cap, |m| cap.min(m));
    let calls = opts.soak_calls.max(8);
    let mut quarters = Vec::new();
    let mut error = None;
    let mut soak_stats: std::sync::Arc<PluginStats> = std::sync::Arc::default();
    match Subject::start_capped(plugin, &opts.config_json, Some(cap), opts.recycle_memory) {
        Err(e) => {
            error = Some(format!(
                "could not start under a cap of {} KiB: {e}",
                cap / 1024
            ));
        }
        Ok(mut soaked) => {
            soak_stats = soaked.instance().stats().clone();
            for i in 1..=calls {
                if let Ran::Fault(f) = soaked.exercise(&small) {
                    error = Some(format!(
                        "faulted on call {i} with memory capped at {} KiB ({} KiB after warm-up): {f}",
                        cap / 1024,
                        warm / 1024
                    ));
                    break;
                }
                if i % (calls / 4) == 0 {
                    quarters.push(soaked.instance().memory_peak());
                }
            }
        }
    }
    let shown = quarters
        .iter()
        .map(|q| (q / 1024).to_string())
        .collect::<Vec<_>>()
        .join(" → ");
    let hint = if opts.recycle_memory.is_none() {
        " (a runtime that never frees memory, like componentize-js, needs \
         limits.recycle_memory in graft.toml; test with --recycle-memory)"
    } else {
        ""
    };
    let outcome = if let Some(e) = error {
        fail(format!("memory grows without levelling off: {e}{hint}"))
    } else if opts.recycle_memory.is_none()
        && quarters.len() >= 4
        && quarters[1] < quarters[2]
        && quarters[2] < quarters[3]
    {
        fail(format!(
            "memory grows without levelling off: still rising after {calls} calls: {shown} KiB at each quarter{hint}"
        ))
    } else {
        let recycled = match opts.recycle_memory {
            Some(r) => format!(
                ", recycled {} times past {} KiB",
                PluginStats::get(&soak_stats.recycles),
                r / 1024
            ),
            None => String::new(),
        };
        pass(format!(
            "levels off over {calls} calls under a cap of {} KiB: {shown} KiB at each quarter{recycled}",
            cap / 1024
        ))
    };
    report.add("metering", "soak", t, outcome);
}
