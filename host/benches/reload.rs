//! How fast plugins start and reloads take effect.
//!
//! - Instance start: for each example plugin, compiling the component
//!   (no cache), then creating an instance from its `InstancePre` and
//!   running `init` (what a restart after a fault or a reload costs).
//! - Reload latency, in a running agent (a WASM input every 10 ms, a WASM
//!   processor, a file output): from the reload request to the new version
//!   serving (the processor chain has swapped), for a config-only change (new
//!   instance, code already compiled) and for a changed `.wasm` (every round
//!   a new file, compiled from scratch). With `--watch-config`, a change is
//!   seen after the watcher's quiet period (`graft::watch::QUIET`) on top.
//!
//! `cargo bench -p graft --bench reload` prints the table. Under `cargo
//! test` it runs two rounds and checks that each reload swapped something.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use graft::config::Config;
use graft::topology::{ConfigLoader, Mode, ReloadRequest, Topology};
use graft::wasm::{PluginSpec, RuntimeOptions, WasmInstance, WasmRuntime};
use tokio::sync::{mpsc, oneshot, watch};

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn p90(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[(v.len() * 9 / 10).min(v.len() - 1)]
}

/// `bytes` with a custom section appended: the same code, a new digest.
fn variant(bytes: &[u8], n: u32) -> Vec<u8> {
    let name = b"graft-bench";
    let payload = n.to_le_bytes();
    let body_len = 1 + name.len() + payload.len();
    let mut out = bytes.to_vec();
    out.push(0); // custom section
    out.push(body_len as u8); // < 128: one LEB128 byte
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(&payload);
    out
}

fn instance_start(rounds: usize) {
    println!("instance start (median of {rounds}; compile without cache)");
    println!(
        "| plugin | size KiB | compile ms | instantiate + init µs | p90 µs |\n|---|---|---|---|---|"
    );
    for (guest, config) in [
        (
            "example-rename-processor",
            r#"{"from":"a","to":"b","tags":{"k":"v"}}"#,
        ),
        ("test-passthrough", "{}"),
        ("example-sine-input", "{}"),
        ("example-stats-aggregator", "{}"),
        ("evil-processor", "{}"),
    ] {
        let path = graft_test_support::wasm(guest);
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let rt = WasmRuntime::new(&RuntimeOptions { cache_dir: None }).expect("runtime");
        let t = Instant::now();
        let plugin = rt.load(&path).expect("load");
        let compile = t.elapsed();
        let mut starts = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            let inst =
                WasmInstance::start(plugin.clone(), PluginSpec::new(guest, config)).expect("start");
            starts.push(t.elapsed().as_secs_f64() * 1e6);
            drop(inst);
        }
        println!(
            "| {guest} | {} | {:.0} | {:.0} | {:.0} |",
            size / 1024,
            compile.as_secs_f64() * 1e3,
            median(&mut starts),
            p90(&mut starts)
        );
    }
}

fn config_text(dir: &Path, generation: usize) -> String {
    format!(
        r#"
[agent]
  interval = "10ms"
  flush_interval = "100ms"
  omit_hostname = true
  wasm_cache_dir = ""
[[inputs.wasm]]
  path = "{input}"
[[processors.wasm]]
  path = "{dir}/processor.wasm"
  [processors.wasm.config]
    from = "value"
    to = "v"
    tags = {{ generation = "{generation}" }}
[[outputs.file]]
  files = ["/dev/null"]
"#,
        input = graft_test_support::wasm("example-sine-input").display(),
        dir = dir.display()
    )
}

async fn reload_latency(rounds: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path: PathBuf = dir.path().join("graft.toml");
    let code = std::fs::read(graft_test_support::wasm("example-rename-processor")).unwrap();
    std::fs::write(dir.path().join("processor.wasm"), &code).unwrap();
    std::fs::write(&config_path, config_text(dir.path(), 0)).unwrap();
    let files = vec![config_path.clone()];
    let agent = Topology::start(Config::load(&files, None).expect("config"), Mode::Run)
        .await
        .expect("agent");
    let loader: ConfigLoader = Arc::new(move || Config::load(&files, None));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (tx, rx) = mpsc::channel(1);
    let running = tokio::spawn(agent.run(stop_rx, rx, loader));
    tokio::time::sleep(Duration::from_millis(200)).await;

    let request = |tx: mpsc::Sender<ReloadRequest>| async move {
        let (reply, answer) = oneshot::channel();
        tx.send(ReloadRequest {
            reason: "bench".into(),
            reply: Some(reply),
        })
        .await
        .expect("agent running");
        answer.await.expect("reply").expect("reload")
    };
    let (mut config_only, mut new_code) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        std::fs::write(&config_path, config_text(dir.path(), round)).unwrap();
        let r = request(tx.clone()).await;
        assert_eq!(r.started, 1, "exactly the processor is replaced: {r:?}");
        config_only.push(r.took.as_secs_f64() * 1e3);

        std::fs::write(
            dir.path().join("processor.wasm"),
            variant(&code, round as u32),
        )
        .unwrap();
        let r = request(tx.clone()).await;
        assert_eq!(r.started, 1, "exactly the processor is replaced: {r:?}");
        new_code.push(r.took.as_secs_f64() * 1e3);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(true);
    running.await.expect("agent task").expect("agent run");

    println!("\nreload latency, request to new version serving (median of {rounds})");
    println!("| change | median ms | p90 ms |\n|---|---|---|");
    println!(
        "| processor config (new instance, code compiled) | {:.1} | {:.1} |",
        median(&mut config_only),
        p90(&mut config_only)
    );
    println!(
        "| processor .wasm (new code, compiled) | {:.1} | {:.1} |",
        median(&mut new_code),
        p90(&mut new_code)
    );
    println!(
        "with --watch-config, a change is seen {} ms after the last write",
        graft::watch::QUIET.as_millis()
    );
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (starts, reloads) = if bench { (200, 30) } else { (2, 2) };
    instance_start(starts);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(reload_latency(reloads));
}
