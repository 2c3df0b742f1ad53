//! Helpers shared by graft's tests and benchmarks: building the WASM plugins
//! from source (never checked-in `.wasm`), finding the `graft` binary, and
//! running it.
//!
//! Plugins are built with cargo for `wasm32-wasip2` into their own target
//! directory (`target/wasm-plugins`), so that the build never waits on the
//! lock of the build that runs the tests.

pub mod collectd;
pub mod compliance;
pub mod durable;
pub mod graft_agent;
pub mod hostile;
pub mod influx_points;
pub mod mariadb;
pub mod mosquitto;
pub mod nats;
pub mod nats_agents;
pub mod nginx;
pub mod otlp;
pub mod probe;
pub mod programs;
pub mod prometheus;
pub mod redis;
pub mod rust_source;
pub mod servers;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Every guest crate in the workspace: examples and test plugins.
pub const GUESTS: &[&str] = &[
    "example-sine-input",
    "example-rename-processor",
    "example-stats-aggregator",
    "example-jsonl-output",
    "test-passthrough",
    "test-faulty",
    "test-gated-output",
    "test-misfit",
    "test-future",
    "evil-input",
    "evil-processor",
    "evil-aggregator",
    "evil-output",
];

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/support sits two levels below the root")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(workspace_root());
    c
}

/// Build every guest (once per process) and return the directory holding
/// the `.wasm` files.
pub fn wasm_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let target = workspace_root().join("target/wasm-plugins");
        let mut cmd = cargo();
        cmd.args([
            "build",
            "--quiet",
            "--target",
            "wasm32-wasip2",
            "--profile",
            "plugin",
        ])
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
        for g in GUESTS {
            cmd.args(["-p", g]);
        }
        let status = cmd
            .status()
            .expect("running cargo to build the WASM plugins");
        assert!(
            status.success(),
            "building the WASM plugins failed (is the wasm32-wasip2 target installed?)"
        );
        target.join("wasm32-wasip2/plugin")
    })
}

/// Path of a built guest, by crate name (`example-rename-processor`).
pub fn wasm(name: &str) -> PathBuf {
    wasm_dir().join(format!("{}.wasm", name.replace('-', "_")))
}

/// The `graft` binary of this build (built if missing).
pub fn graft_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // Benchmarks run from target/release: build graft the same way.
        let release = exe
            .parent()
            .and_then(Path::parent)
            .is_some_and(|p| p.ends_with("release"));
        let mut build = cargo();
        build.args(["build", "--quiet", "-p", "graft", "--bin", "graft"]);
        if release {
            build.arg("--release");
        }
        let status = build.status().expect("running cargo to build graft");
        assert!(status.success(), "building graft failed");
        // target/<profile>/deps/<test> -> target/<profile>/graft
        let bin = exe
            .parent()
            .and_then(Path::parent)
            .expect("test executable in target/<profile>/deps")
            .join("graft");
        assert!(bin.exists(), "{} missing", bin.display());
        bin
    })
}

/// A `graft` command with the plugin directory in `GRAFT_WASM_DIR`, the
/// compiled-code cache in a stable test location, and logs at `warn`.
pub fn graft() -> Command {
    let mut c = Command::new(graft_bin());
    c.env("GRAFT_WASM_DIR", wasm_dir())
        .env(
            "GRAFT_CACHE_DIR",
            workspace_root().join("target/graft-cache"),
        )
        .env("GRAFT_LOG", "warn")
        .current_dir(workspace_root());
    c
}

/// Send SIGTERM to a running `graft` (or any child).
pub fn sigterm(child: &std::process::Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Wait for a child to exit; kill it and fail the test after `limit`.
pub fn wait_with_timeout(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("the process did not exit within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// SIGTERM a `graft` started with piped stderr, wait for it (at most
/// `limit`), and return its exit status and everything it logged.
pub fn stop(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    sigterm(child);
    let status = wait_with_timeout(child, limit);
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut stderr).expect("reading stderr");
    }
    (status, stderr)
}

/// Check `done` every 100 ms until it holds; fail naming `what` after
/// `limit`.
pub fn poll_until(what: &str, limit: std::time::Duration, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Run a build command, failing the test with its output and `hint` when
/// the tool is missing or the build fails.
fn run_build(mut cmd: Command, what: &str, hint: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {:?} ({e}); {hint}", cmd.get_program()));
    assert!(
        out.status.success(),
        "{what} failed ({hint}):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Build a Python plugin with componentize-py: `module` (without `.py`) in
/// `dir`, the world `graft:plugin/<world>` of `wit`, with the Python SDK
/// on the path. Returns `out`.
pub fn build_python_plugin(dir: &Path, module: &str, world: &str, wit: &Path, out: &Path) {
    let mut cmd = Command::new("componentize-py");
    cmd.arg("-d")
        .arg(wit)
        .args(["-w", &format!("graft:plugin/{world}"), "componentize", "-p"])
        .arg(dir)
        .arg("-p")
        .arg(workspace_root().join("sdk/python"))
        .args([module, "-o"])
        .arg(out)
        .current_dir(dir);
    run_build(
        cmd,
        &format!("componentize-py on {}", dir.display()),
        "install it with `pip install componentize-py==0.25.1`",
    );
}

/// `node_modules` holding componentize-js: `sdk/js/node_modules`, as
/// `npm install --prefix sdk/js` (the README's test command) leaves it.
pub fn js_node_modules() -> PathBuf {
    let dir = workspace_root().join("sdk/js/node_modules");
    assert!(
        dir.join("@bytecodealliance/componentize-js").exists(),
        "componentize-js is missing: run `npm install --prefix sdk/js`"
    );
    dir
}

/// Build a JavaScript plugin with componentize-js through graft's
/// `sdk/js/build.mjs`.
pub fn build_js_plugin(source: &Path, world: &str, wit: &Path, out: &Path) {
    let dir = source.parent().expect("a source file in a folder");
    js_node_modules();
    let mut cmd = Command::new("node");
    cmd.arg(workspace_root().join("sdk/js/build.mjs"))
        .arg("--wit")
        .arg(wit)
        .args(["--world", world])
        .arg(source)
        .arg("-o")
        .arg(out)
        .current_dir(dir);
    run_build(
        cmd,
        &format!("componentize-js on {}", source.display()),
        "needs node 20 and `npm install --prefix sdk/js`",
    );
}
