//! The behaviour shared by the four hostile test guests (`evil-input`,
//! `evil-processor`, `evil-aggregator`, `evil-output`). Each of those crates
//! only generates its world's export glue and calls the functions here.
//!
//! `init` takes JSON `{"action": A, "in": E, ...}`. `E` names the export in
//! which the action happens (`init`, or one of the kind's exports); it
//! defaults to the kind's main export (`gather`, `process`, `add`, `write`).
//! Every other export behaves normally:
//!
//! - input `gather`: one metric `evil_input`, tag `plugin` = the host's
//!   plugin name, int field `n` = number of `gather` calls so far;
//! - processor `process`: the batch, unchanged;
//! - aggregator: `add` counts metrics, `push` returns one metric `evil_agg`
//!   with int field `count`, `reset` zeroes the count;
//! - output `write`: accepts.
//!
//! Actions: `none`, `loop`, `grow`, `panic`, `stack_overflow`,
//! `malformed_symbol`, `malformed_offsets`, `malformed_nan`, `huge`
//! (batch-returning exports only), `read_file` (`path`), `env` (`var`),
//! `connect` (`addr`), `http` (`url`), `log_flood`, `sleep` (`seconds`,
//! default an hour: `std::thread::sleep`, which parks the guest in a WASI
//! clock poll on the host), `exit` (`code`, default 3:
//! `std::process::exit`; WASI 0.2 tells the host only success or failure). Batches are built raw, column by column, so that
//! they can be as wrong as asked.

use std::hint::black_box;
use std::sync::{Mutex, MutexGuard};

mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        inline: "
            package evil:common;
            world common {
                import graft:plugin/host@0.1.0;
                import graft:plugin/types@0.1.0;
            }
        ",
        world: "evil:common/common",
        generate_all,
        generate_unused_types: true,
    });
}

/// The `graft:plugin/host` import, shared by the four guests' bindings.
pub use bindings::graft::plugin::host;
/// The `graft:plugin/types` interface, shared by the four guests' bindings.
pub use bindings::graft::plugin::types;

use host::Level;
use types::{Batch, FieldValue, PluginError, WriteError};

/// Which kind of plugin a guest is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `graft:plugin/input`.
    Input,
    /// `graft:plugin/processor`.
    Processor,
    /// `graft:plugin/aggregator`.
    Aggregator,
    /// `graft:plugin/output`.
    Output,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Input => "input",
            Kind::Processor => "processor",
            Kind::Aggregator => "aggregator",
            Kind::Output => "output",
        }
    }

    /// The exports other than `init`; the first is the main one.
    fn exports(self) -> &'static [Export] {
        match self {
            Kind::Input => &[Export::Gather],
            Kind::Processor => &[Export::Process],
            Kind::Aggregator => &[Export::Add, Export::Push, Export::Reset],
            Kind::Output => &[Export::Write],
        }
    }
}

/// An export function of one of the worlds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Export {
    Init,
    Gather,
    Process,
    Add,
    Push,
    Reset,
    Write,
}

impl Export {
    const ALL: [Export; 7] = [
        Export::Init,
        Export::Gather,
        Export::Process,
        Export::Add,
        Export::Push,
        Export::Reset,
        Export::Write,
    ];

    fn name(self) -> &'static str {
        match self {
            Export::Init => "init",
            Export::Gather => "gather",
            Export::Process => "process",
            Export::Add => "add",
            Export::Push => "push",
            Export::Reset => "reset",
            Export::Write => "write",
        }
    }

    /// Whether the export returns a batch.
    fn returns_batch(self) -> bool {
        matches!(self, Export::Gather | Export::Process | Export::Push)
    }
}

/// How a returned batch is spoiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spoil {
    Symbol,
    Offsets,
    Nan,
    Huge,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Action {
    None,
    Loop,
    Grow,
    Panic,
    StackOverflow,
    Spoil(Spoil),
    ReadFile { path: String },
    Env { var: String },
    Connect { addr: String },
    Http { url: String },
    LogFlood,
    Sleep { seconds: u64 },
    Exit { code: i32 },
}

const ACTIONS: &str = "none, loop, grow, panic, stack_overflow, malformed_symbol, \
     malformed_offsets, malformed_nan, huge, read_file, env, connect, http, log_flood, sleep, exit";

#[derive(Clone, Debug)]
struct Config {
    action: Action,
    at: Export,
}

struct State {
    config: Config,
    gathers: i64,
    count: i64,
}

static STATE: Mutex<State> = Mutex::new(State {
    config: Config {
        action: Action::None,
        at: Export::Init,
    },
    gathers: 0,
    count: 0,
});

fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

fn config() -> Config {
    state().config.clone()
}

fn error(message: impl Into<String>, field: Option<&str>) -> PluginError {
    PluginError {
        message: message.into(),
        field: field.map(str::to_owned),
    }
}

/// Read the configuration. Never traps: every problem is a `PluginError`.
fn parse_config(kind: Kind, text: &str) -> Result<Config, PluginError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        error(
            format!("config is not valid JSON, so `action` cannot be read: {e}"),
            Some("action"),
        )
    })?;
    let Some(table) = value.as_object() else {
        return Err(error(
            "config is not a JSON object, so `action` cannot be read",
            Some("action"),
        ));
    };
    let string = |key: &str, default: Option<&str>| -> Result<String, PluginError> {
        match table.get(key) {
            None | Some(serde_json::Value::Null) => default
                .map(str::to_owned)
                .ok_or_else(|| error(format!("`{key}` is required"), Some(key))),
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(error(
                format!("`{key}` must be a string, not {other}"),
                Some(key),
            )),
        }
    };
    // Numbers may be given as JSON numbers or as strings of digits.
    let number = |key: &str, default: u64| -> Result<u64, PluginError> {
        match table.get(key) {
            None | Some(serde_json::Value::Null) => Ok(default),
            Some(serde_json::Value::Number(n)) => n.as_u64().ok_or_else(|| {
                error(
                    format!("`{key}` must be a whole number, not {n}"),
                    Some(key),
                )
            }),
            Some(serde_json::Value::String(s)) => s.parse().map_err(|_| {
                error(
                    format!("`{key}` must be a whole number, not {s:?}"),
                    Some(key),
                )
            }),
            Some(other) => Err(error(
                format!("`{key}` must be a whole number, not {other}"),
                Some(key),
            )),
        }
    };

    let action_name = string("action", Some("none"))?;
    let action = match action_name.as_str() {
        "none" => Action::None,
        "loop" => Action::Loop,
        "grow" => Action::Grow,
        "panic" => Action::Panic,
        "stack_overflow" => Action::StackOverflow,
        "malformed_symbol" => Action::Spoil(Spoil::Symbol),
        "malformed_offsets" => Action::Spoil(Spoil::Offsets),
        "malformed_nan" => Action::Spoil(Spoil::Nan),
        "huge" => Action::Spoil(Spoil::Huge),
        "read_file" => Action::ReadFile {
            path: string("path", Some("/etc/passwd"))?,
        },
        "env" => Action::Env {
            var: string("var", Some("GRAFT_EVIL_SECRET"))?,
        },
        "connect" => Action::Connect {
            addr: string("addr", None)?,
        },
        "http" => Action::Http {
            url: string("url", None)?,
        },
        "log_flood" => Action::LogFlood,
        "sleep" => Action::Sleep {
            seconds: number("seconds", 3600)?,
        },
        "exit" => Action::Exit {
            code: i32::try_from(number("code", 3)?)
                .map_err(|_| error("`code` must fit in an i32", Some("code")))?,
        },
        other => {
            return Err(error(
                format!("unknown action `{other}`; expected one of {ACTIONS}"),
                Some("action"),
            ));
        }
    };
    let main = kind.exports()[0];
    let at_name = string("in", Some(main.name()))?;
    let at = Export::ALL
        .into_iter()
        .find(|e| e.name() == at_name)
        .filter(|e| *e == Export::Init || kind.exports().contains(e))
        .ok_or_else(|| {
            let names: Vec<&str> = kind.exports().iter().map(|e| e.name()).collect();
            error(
                format!(
                    "unknown export `{at_name}` in `in`; {} plugins have init, {}",
                    kind.name(),
                    names.join(", ")
                ),
                Some("in"),
            )
        })?;

    if matches!(action, Action::Spoil(_)) && !at.returns_batch() {
        return Err(error(
            format!(
                "action `{action_name}` needs an export that returns a batch \
                 (gather, process or push), not `{}`",
                at.name()
            ),
            Some("in"),
        ));
    }
    Ok(Config { action, at })
}

/// What an export does after the action ran (if it did not trap).
enum Outcome {
    Normal,
    /// A sandbox escape worked; carries what leaked.
    Leaked(String),
    /// A sandbox escape was refused; carries the message for the host.
    Denied(String),
    Spoil(Spoil),
}

/// Run the configured action if it belongs to export `here`.
fn act(config: &Config, here: Export) -> Outcome {
    if config.at != here {
        return Outcome::Normal;
    }
    match &config.action {
        Action::None => Outcome::Normal,
        Action::Loop => spin(),
        Action::Grow => grow(),
        Action::Panic => panic!("evil plugin: asked to panic in `{}`", here.name()),
        Action::StackOverflow => {
            let depth = recurse(0);
            panic!("evil plugin: recursion returned at depth {depth}")
        }
        Action::Spoil(spoil) => Outcome::Spoil(*spoil),
        Action::ReadFile { path } => match std::fs::read_to_string(path) {
            Ok(text) => Outcome::Leaked(first_64_bytes(&text)),
            Err(e) => Outcome::Denied(format!("read_file denied: {e}")),
        },
        Action::Env { var } => match std::env::var(var) {
            Ok(value) => Outcome::Leaked(first_64_bytes(&value)),
            Err(e) => Outcome::Denied(format!("env denied: {e}")),
        },
        Action::Connect { addr } => match std::net::TcpStream::connect(addr.as_str()) {
            Ok(stream) => {
                let peer = stream
                    .peer_addr()
                    .map_or_else(|_| addr.clone(), |a| a.to_string());
                Outcome::Leaked(first_64_bytes(&format!("connected to {peer}")))
            }
            Err(e) => Outcome::Denied(format!("connect denied: {e}")),
        },
        Action::Http { url } => match http_get(url) {
            Ok(status) => Outcome::Leaked(format!("status {status}")),
            Err(e) => Outcome::Denied(format!("http denied: {e}")),
        },
        Action::LogFlood => {
            flood(here);
            Outcome::Normal
        }
        Action::Sleep { seconds } => {
            std::thread::sleep(std::time::Duration::from_secs(*seconds));
            Outcome::Normal
        }
        Action::Exit { code } => std::process::exit(*code),
    }
}

fn first_64_bytes(s: &str) -> String {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

fn spin() -> ! {
    let mut x: u64 = 0;
    loop {
        x = black_box(x.wrapping_add(1));
    }
}

fn grow() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0u8; 1 << 20];
        for (i, b) in chunk.iter_mut().enumerate() {
            *b = i as u8 | 1;
        }
        hoard.push(black_box(chunk));
        black_box(&hoard);
    }
}

/// Unbounded, non-tail recursion with a frame the optimiser must keep.
///
/// The frame is small on purpose: each call costs a few bytes of the
/// shadow stack in linear memory (1 MiB) but a whole native frame, so the
/// engine's own stack limit is hit first ("call stack exhausted") rather
/// than the shadow stack running below address 0 (an out-of-bounds trap).
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut frame = [0u8; 8];
    frame[(depth % 8) as usize] = depth as u8;
    let frame = black_box(frame);
    if black_box(depth) == u64::MAX {
        return u64::from(frame[0]);
    }
    recurse(depth + 1).wrapping_add(u64::from(frame[(depth % 3) as usize]))
}

fn flood(here: Export) {
    use std::io::Write;
    const LINES: u32 = 100_000;
    for i in 0..LINES {
        host::log(
            Level::Info,
            &format!("evil log flood in `{}`: {i}", here.name()),
        );
    }
    // Written like println!/eprintln!, line by line, but without panicking
    // should the host close the stream.
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for i in 0..LINES {
        let _ = writeln!(out, "evil stdout flood in `{}`: {i}", here.name());
    }
    drop(out);
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    for i in 0..LINES {
        let _ = writeln!(err, "evil stderr flood in `{}`: {i}", here.name());
    }
}

/// A GET over `wasi:http/outgoing-handler`; the response's status code.
fn http_get(url: &str) -> Result<u16, String> {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{Fields, Method, OutgoingRequest, Scheme};

    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("`{url}` is not an absolute URL"))?;
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_owned()),
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };

    let request = OutgoingRequest::new(Fields::new());
    request
        .set_method(&Method::Get)
        .map_err(|()| "the host refused the method".to_owned())?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| "the host refused the scheme".to_owned())?;
    request
        .set_authority(Some(authority))
        .map_err(|()| format!("the host refused the authority `{authority}`"))?;
    request
        .set_path_with_query(Some(&path))
        .map_err(|()| format!("the host refused the path `{path}`"))?;
    let response = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    loop {
        match response.get() {
            None => response.subscribe().block(),
            Some(Ok(Ok(incoming))) => return Ok(incoming.status()),
            Some(Ok(Err(e))) => return Err(format!("{e:?}")),
            Some(Err(())) => return Err("the response was already taken".to_owned()),
        }
    }
}

// ---------------------------------------------------------------------------
// Raw batches.

fn empty_batch() -> Batch {
    Batch {
        string_data: String::new(),
        string_ends: Vec::new(),
        names: Vec::new(),
        timestamps: Vec::new(),
        tag_offsets: vec![0],
        tag_keys: Vec::new(),
        tag_values: Vec::new(),
        field_offsets: vec![0],
        field_keys: Vec::new(),
        field_values: Vec::new(),
    }
}

/// Add a string to the batch's table (no deduplication: the contract
/// allows repeats) and return its symbol.
fn intern(batch: &mut Batch, s: &str) -> u32 {
    batch.string_data.push_str(s);
    end_string(batch)
}

fn end_string(batch: &mut Batch) -> u32 {
    batch.string_ends.push(batch.string_data.len() as u32);
    batch.string_ends.len() as u32 - 1
}

enum Value<'a> {
    Int(i64),
    Float(f64),
    Text(&'a str),
    Sym(u32),
}

/// Append one metric; `tags` must be sorted by key.
fn append(batch: &mut Batch, name: &str, tags: &[(&str, &str)], fields: &[(&str, Value<'_>)]) {
    let name = intern(batch, name);
    batch.names.push(name);
    batch.timestamps.push(host::now());
    for (k, v) in tags {
        let k = intern(batch, k);
        let v = intern(batch, v);
        batch.tag_keys.push(k);
        batch.tag_values.push(v);
    }
    batch.tag_offsets.push(batch.tag_keys.len() as u32);
    for (k, v) in fields {
        let k = intern(batch, k);
        let v = match *v {
            Value::Int(x) => FieldValue::Int(x),
            Value::Float(x) => FieldValue::Float(x),
            Value::Text(s) => FieldValue::Text(intern(batch, s)),
            Value::Sym(s) => FieldValue::Text(s),
        };
        batch.field_keys.push(k);
        batch.field_values.push(v);
    }
    batch.field_offsets.push(batch.field_keys.len() as u32);
}

/// Add the metric that carries a leak.
fn append_leak(batch: &mut Batch, what: &str) {
    append(
        batch,
        "leaked",
        &[("leaked", what)],
        &[
            ("leaked", Value::Text(what)),
            ("bytes", Value::Int(what.len() as i64)),
        ],
    );
}

/// Size of the string in a `huge` batch.
const HUGE_BYTES: usize = 64 << 20;

fn spoil(batch: &mut Batch, how: Spoil) {
    match how {
        Spoil::Symbol => {
            if batch.names.is_empty() {
                append(batch, "evil_malformed", &[], &[("n", Value::Int(0))]);
            }
            batch.names[0] = 0x7fff_fff0;
        }
        Spoil::Offsets => {
            // Three metrics of one field each: offsets k, k+1, k+2, k+3
            // become k, k+2, k+1, k+3 — still starting at 0 and ending at
            // the number of fields, but decreasing in the middle.
            let m = batch.names.len();
            for i in 0..3 {
                append(batch, "evil_malformed", &[], &[("n", Value::Int(i))]);
            }
            batch.field_offsets.swap(m + 1, m + 2);
        }
        Spoil::Nan => {
            append(batch, "evil_nan", &[], &[("value", Value::Float(f64::NAN))]);
        }
        Spoil::Huge => {
            batch.string_data.reserve(HUGE_BYTES);
            let chunk = "x".repeat(1 << 16);
            for _ in 0..HUGE_BYTES / chunk.len() {
                batch.string_data.push_str(&chunk);
            }
            let blob = end_string(batch);
            append(batch, "evil_huge", &[], &[("blob", Value::Sym(blob))]);
        }
    }
}

/// Finish a batch-returning export: `Err` only for a denied escape.
fn finish(mut batch: Batch, outcome: Outcome) -> Result<Batch, String> {
    match outcome {
        Outcome::Normal => {}
        Outcome::Leaked(what) => append_leak(&mut batch, &what),
        Outcome::Denied(message) => return Err(message),
        Outcome::Spoil(how) => spoil(&mut batch, how),
    }
    Ok(batch)
}

/// Finish an export that returns no batch: the error message, if any.
fn report(outcome: Outcome) -> Option<String> {
    match outcome {
        Outcome::Normal | Outcome::Spoil(_) => None,
        Outcome::Leaked(what) => Some(format!("LEAKED: {what}")),
        Outcome::Denied(message) => Some(message),
    }
}

// ---------------------------------------------------------------------------
// The exports.

/// `init` of every kind.
pub fn init(kind: Kind, config: String) -> Result<(), PluginError> {
    let parsed = parse_config(kind, &config)?;
    {
        let mut state = state();
        state.config = parsed.clone();
        state.gathers = 0;
        state.count = 0;
    }
    match report(act(&parsed, Export::Init)) {
        None => Ok(()),
        Some(message) => Err(error(message, None)),
    }
}

/// `input.gather`.
pub fn gather() -> Result<Batch, PluginError> {
    let n = {
        let mut state = state();
        state.gathers += 1;
        state.gathers
    };
    let outcome = act(&config(), Export::Gather);
    let mut batch = empty_batch();
    let name = host::plugin_name();
    append(
        &mut batch,
        "evil_input",
        &[("plugin", &name)],
        &[("n", Value::Int(n))],
    );
    finish(batch, outcome).map_err(|m| error(m, None))
}

/// `processor.process`.
pub fn process(batch: Batch) -> Result<Batch, PluginError> {
    let outcome = act(&config(), Export::Process);
    finish(batch, outcome).map_err(|m| error(m, None))
}

/// `aggregator.add`.
pub fn add(batch: Batch) -> Result<(), PluginError> {
    if let Some(message) = report(act(&config(), Export::Add)) {
        return Err(error(message, None));
    }
    state().count += batch.names.len() as i64;
    Ok(())
}

/// `aggregator.push`: cannot fail, so a denied escape is only logged.
pub fn push() -> Batch {
    let outcome = act(&config(), Export::Push);
    let mut batch = empty_batch();
    let count = state().count;
    append(&mut batch, "evil_agg", &[], &[("count", Value::Int(count))]);
    match finish(batch.clone(), outcome) {
        Ok(spoilt) => spoilt,
        Err(message) => {
            host::log(Level::Warn, &message);
            batch
        }
    }
}

/// `aggregator.reset`: cannot fail, so a leak or a denial is only logged.
pub fn reset() {
    if let Some(message) = report(act(&config(), Export::Reset)) {
        host::log(Level::Warn, &message);
    }
    state().count = 0;
}

/// `output.write`: a leak or a denial is a `retry` error.
pub fn write(batch: Batch) -> Result<(), WriteError> {
    let outcome = act(&config(), Export::Write);
    drop(batch);
    match report(outcome) {
        None => Ok(()),
        Some(message) => Err(WriteError::Retry(message)),
    }
}
