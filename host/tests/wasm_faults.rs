//! A WASM instance survives its own faults: a returned error leaves it
//! alone; a trap, a deadline or the memory cap poisons it, the fault is
//! named, and the next call after the backoff gets a fresh instance.

use std::time::{Duration, Instant};

use graft::stats::PluginStats;
use graft::wasm::adapters::WasmProcessor;
use graft::wasm::{Limits, Permissions, PluginSpec, RuntimeOptions, WasmInstance, WasmRuntime};
use graft_api::{CallError, FaultKind, Processor};
use graft_core::{Batch, BatchBuilder};

/// The runtime is dropped on return, as in a running agent: deadlines must
/// keep firing for the instances it made.
fn faulty() -> WasmProcessor {
    faulty_with(None, Duration::from_millis(300))
}

/// With `fuel`, the plugin runs on the metered engine.
fn faulty_with(fuel: Option<u64>, call_timeout: Duration) -> WasmProcessor {
    let rt = WasmRuntime::new(&RuntimeOptions { cache_dir: None }).unwrap();
    let plugin = rt
        .load_with(&graft_test_support::wasm("test-faulty"), fuel.is_some())
        .unwrap();
    let spec = PluginSpec {
        name: "processors.wasm::faulty".into(),
        config_json: "{}".into(),
        permissions: Permissions::default(),
        limits: Limits {
            memory_bytes: 32 << 20,
            call_timeout,
            fuel,
            ..Limits::default()
        },
        stats: Default::default(),
    };
    WasmProcessor::new(WasmInstance::start(plugin, spec).unwrap())
}

fn batch(command: &str) -> Batch {
    let mut b = BatchBuilder::new();
    b.metric(command, 1).tag("t", "v").field("x", 1.0);
    b.metric("second", 2).field("y", 2i64);
    b.finish()
}

fn calls(b: &Batch) -> &str {
    b.get(0).tag("calls").expect("the calls tag")
}

fn fault_of(r: Result<(), CallError>) -> graft_api::Fault {
    match r {
        Err(CallError::Fault(f)) => f,
        other => panic!("expected a fault, got {other:?}"),
    }
}

/// Call until the backoff is over and the instance is back.
fn until_restarted(p: &mut WasmProcessor) -> Batch {
    let start = Instant::now();
    loop {
        let mut b = batch("ok");
        match p.process(&mut b) {
            Ok(()) => return b,
            Err(CallError::Fault(f)) if f.kind == FaultKind::Restarting => {
                assert!(start.elapsed() < Duration::from_secs(5), "no restart: {f}");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
}

#[test]
fn returned_error_keeps_the_instance_and_the_batch() {
    let mut p = faulty();
    let mut b = batch("ok");
    p.process(&mut b).unwrap();
    assert_eq!(calls(&b), "1");

    let mut b = batch("fail");
    let before = format!("{:?}", b.iter().collect::<Vec<_>>());
    match p.process(&mut b) {
        Err(CallError::Returned(e)) => assert_eq!(e.message, "asked to fail on call 2"),
        other => panic!("expected a returned error, got {other:?}"),
    }
    assert_eq!(
        format!("{:?}", b.iter().collect::<Vec<_>>()),
        before,
        "batch handed back untouched"
    );

    let mut b = batch("ok");
    p.process(&mut b).unwrap();
    assert_eq!(calls(&b), "3", "same instance, state kept");
}

#[test]
fn trap_poisons_reports_the_panic_and_restarts_fresh() {
    let mut p = faulty();
    let mut b = batch("ok");
    p.process(&mut b).unwrap();
    let mut b = batch("panic");
    let f = fault_of(p.process(&mut b));
    assert_eq!(f.kind, FaultKind::Trap);
    assert!(
        f.message.contains("asked to panic on call 2"),
        "{}",
        f.message
    );
    assert_eq!(b.get(0).name(), "panic", "batch handed back");

    // Right away the instance is still backing off.
    let f = fault_of(p.process(&mut batch("ok")));
    assert_eq!(f.kind, FaultKind::Restarting);

    let b = until_restarted(&mut p);
    assert_eq!(calls(&b), "1", "a fresh instance");
}

#[test]
fn endless_loop_hits_the_deadline() {
    let mut p = faulty();
    let start = Instant::now();
    let f = fault_of(p.process(&mut batch("loop")));
    assert_eq!(f.kind, FaultKind::Deadline, "{}", f.message);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "deadline of 300ms took {:?}",
        start.elapsed()
    );
    assert_eq!(calls(&until_restarted(&mut p)), "1");
}

#[test]
fn memory_cap_stops_a_hoarder() {
    // Time enough to grow 32 MiB on a loaded machine: the cap, not the
    // deadline, must stop it.
    let mut p = faulty_with(None, Duration::from_secs(10));
    let f = fault_of(p.process(&mut batch("grow")));
    assert_eq!(f.kind, FaultKind::Memory, "{}", f.message);
    assert!(
        f.message.contains(&(32u64 << 20).to_string()),
        "{}",
        f.message
    );
    assert_eq!(calls(&until_restarted(&mut p)), "1");
}

#[test]
fn fuel_stops_a_loop_and_meters_calls_exactly() {
    let mut p = faulty_with(Some(5_000_000), Duration::from_millis(300));
    let mut used = Vec::new();
    for _ in 0..3 {
        p.process(&mut batch("ok")).unwrap();
        used.push(p.instance().last_fuel().expect("metered"));
    }
    assert!(used[0] > 0, "{used:?}");
    // Same work, same fuel: fuel is deterministic where time is not.
    assert_eq!(used[1], used[2], "{used:?}");
    let f = fault_of(p.process(&mut batch("loop")));
    assert_eq!(f.kind, FaultKind::Fuel, "{}", f.message);
    assert_eq!(calls(&until_restarted(&mut p)), "1");
}

#[test]
fn recycle_memory_replaces_a_growing_instance_between_calls_without_a_fault() {
    let rt = WasmRuntime::new(&RuntimeOptions { cache_dir: None }).unwrap();
    let plugin = rt
        .load_with(&graft_test_support::wasm("test-misfit"), false)
        .unwrap();
    let spec = PluginSpec {
        name: "processors.wasm::hoarder".into(),
        config_json: r#"{"mode":"leak"}"#.into(),
        permissions: Permissions::default(),
        limits: Limits {
            memory_bytes: 64 << 20,
            recycle_memory: Some(4 << 20),
            ..Limits::default()
        },
        stats: Default::default(),
    };
    let stats = spec.stats.clone();
    let mut p = WasmProcessor::new(WasmInstance::start(plugin, spec).unwrap());
    let mut big = BatchBuilder::new();
    for i in 0..200 {
        big.metric("m", i).tag("host", "h").field("x", i as f64);
    }
    let big = big.finish();
    for call in 0..1500 {
        let mut b = big.clone();
        p.process(&mut b)
            .unwrap_or_else(|e| panic!("call {call}: {e}"));
        assert_eq!(b.len(), 200);
    }
    let recycles = PluginStats::get(&stats.recycles);
    assert!(recycles >= 2, "recycled {recycles} times");
    assert_eq!(
        PluginStats::get(&stats.restarts),
        0,
        "a recycle is not a restart"
    );
    assert_eq!(p.instance().faults(), 0);
    assert!(
        p.instance().memory_peak() < 12 << 20,
        "memory stayed near the threshold: {} bytes",
        p.instance().memory_peak()
    );
}

/// An evil guest (`tests/plugins/evil-*`) of `kind` doing `action` in
/// `export`, with a 300 ms deadline.
fn evil_spec(kind: &str, action: &str, export: &str) -> (graft::wasm::LoadedPlugin, PluginSpec) {
    let rt = WasmRuntime::new(&RuntimeOptions { cache_dir: None }).unwrap();
    let plugin = rt
        .load(&graft_test_support::wasm(&format!("evil-{kind}")))
        .unwrap();
    let spec = PluginSpec {
        name: format!("{kind}s.wasm::{action}-{export}").into(),
        config_json: format!(r#"{{"action":"{action}","in":"{export}"}}"#),
        permissions: Permissions::default(),
        limits: Limits {
            memory_bytes: 32 << 20,
            call_timeout: Duration::from_millis(300),
            ..Limits::default()
        },
        stats: Default::default(),
    };
    (plugin, spec)
}

/// Call `export` of a started evil guest of `kind` once.
fn call_export(kind: &str, export: &str, inst: WasmInstance) -> Option<graft_api::Fault> {
    use graft::wasm::adapters::{WasmAggregator, gather_now, write_now};
    use graft_api::Aggregator;
    fn fault<E: std::fmt::Debug>(r: Result<(), CallError<E>>) -> Option<graft_api::Fault> {
        match r {
            Err(CallError::Fault(f)) => Some(f),
            Ok(()) => None,
            Err(e) => panic!("expected a fault, got {e:?}"),
        }
    }
    let mut inst = inst;
    match (kind, export) {
        ("input", _) => fault(gather_now(&mut inst).map(drop)),
        ("processor", _) => fault(WasmProcessor::new(inst).process(&mut batch("m"))),
        ("aggregator", "add") => fault(WasmAggregator::new(inst).add(&batch("m"))),
        ("aggregator", "push") => fault(WasmAggregator::new(inst).push().map(drop)),
        ("aggregator", _) => fault(WasmAggregator::new(inst).reset()),
        _ => fault(write_now(&mut inst, batch("m"))),
    }
}

#[test]
fn a_guest_asleep_in_any_export_is_taken_back_at_its_deadline() {
    let cases = [
        ("input", "gather"),
        ("processor", "process"),
        ("aggregator", "add"),
        ("aggregator", "push"),
        ("aggregator", "reset"),
        ("output", "write"),
    ];
    for (kind, export) in cases {
        // An hour-long `std::thread::sleep`: a WASI clock poll on the host,
        // where no epoch tick reaches the guest.
        let (plugin, spec) = evil_spec(kind, "sleep", export);
        let inst = WasmInstance::start(plugin, spec).unwrap();
        let start = Instant::now();
        let f =
            call_export(kind, export, inst).unwrap_or_else(|| panic!("{kind} {export}: no fault"));
        assert_eq!(
            f.kind,
            FaultKind::Deadline,
            "{kind} {export}: {}",
            f.message
        );
        assert!(f.message.contains("300ms"), "{}", f.message);
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{kind} {export}: the 300 ms deadline took {:?}",
            start.elapsed()
        );
    }
}

#[test]
fn init_asleep_or_spinning_is_a_deadline_fault_and_recovers_with_backoff() {
    for (kind, action) in [
        ("input", "sleep"),
        ("processor", "sleep"),
        ("aggregator", "sleep"),
        ("output", "sleep"),
        ("processor", "loop"),
    ] {
        let (plugin, spec) = evil_spec(kind, action, "init");
        match WasmInstance::start(plugin.clone(), spec.clone()) {
            Err(graft::wasm::instance::StartError::Fault(f)) => {
                assert_eq!(
                    f.kind,
                    FaultKind::Deadline,
                    "{kind} {action}: {}",
                    f.message
                );
            }
            Err(e) => panic!("{kind} {action}: expected a deadline fault, got {e}"),
            Ok(_) => panic!("{kind} {action}: init returned"),
        }
        // An agent starts anyway; the fault is counted, and every later
        // attempt (after the backoff) times out again.
        let stats = spec.stats.clone();
        let inst = WasmInstance::start_or_recover(plugin, spec).unwrap();
        assert_eq!(PluginStats::get(&stats.faults_deadline), 1);
        let f = call_export(kind, "", inst).expect("no instance to call");
        assert_eq!(
            f.kind,
            FaultKind::Restarting,
            "{kind} {action}: {}",
            f.message
        );
    }
}

#[test]
fn exit_inside_a_call_is_a_trap_that_names_it() {
    let (plugin, spec) = evil_spec("processor", "exit", "process");
    let mut p = WasmProcessor::new(WasmInstance::start(plugin, spec).unwrap());
    let mut b = batch("m");
    let f = fault_of(p.process(&mut b));
    assert_eq!(f.kind, FaultKind::Trap, "{}", f.message);
    assert!(f.message.contains("called exit("), "{}", f.message);
    assert_eq!(b.get(0).name(), "m", "batch handed back");
}

#[test]
fn a_granted_http_peer_that_never_answers_costs_one_deadline() {
    // Accepts connections and holds them, answering nothing.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(8) {
            held.extend(stream.ok());
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    let (plugin, mut spec) = evil_spec("processor", "http", "process");
    spec.config_json =
        format!(r#"{{"action":"http","in":"process","url":"http://127.0.0.1:{port}/never"}}"#);
    spec.permissions = toml::from_str(&format!(r#"http = ["127.0.0.1:{port}"]"#)).unwrap();
    let stats = spec.stats.clone();
    let mut p = WasmProcessor::new(WasmInstance::start(plugin, spec).unwrap());
    let start = Instant::now();
    let f = fault_of(p.process(&mut batch("m")));
    assert_eq!(f.kind, FaultKind::Deadline, "{}", f.message);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "the 300 ms deadline took {:?}",
        start.elapsed()
    );
    assert_eq!(PluginStats::get(&stats.denied), 0, "the peer was granted");
}
