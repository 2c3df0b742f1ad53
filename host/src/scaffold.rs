//! `graft plugin new`: a plugin project, in Rust, Python or JavaScript, that
//! builds and passes `graft plugin test` as generated.
//!
//! Everything the project needs is written into it: the source for its
//! kind, golden cases, a README, a CI workflow, and for Python and
//! JavaScript a copy of the SDK and of its WIT (so the project builds
//! offline with only componentize-py or componentize-js installed, and its
//! SDK matches the contract of the graft that made it).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::kind::Kind;

/// The plugin's language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

impl Lang {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "rust" => Lang::Rust,
            "python" => Lang::Python,
            "js" | "javascript" => Lang::Js,
            _ => return None,
        })
    }
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct Request {
    pub kind: Kind,
    pub lang: Lang,
    /// Project name: lowercase letters, digits, `-` and `_`.
    pub name: String,
    /// Where to create it (must not exist or be empty).
    pub dir: PathBuf,
    /// The `graft-sdk` dependency of a Rust project, as a TOML value
    /// (`{ path = "..." }`, `{ git = "..." }`); by default the SDK in the
    /// source tree graft was built from, or graft's repository.
    pub rust_sdk: Option<String>,
}

/// The contract as each SDK carries it (every copy is checked identical to
/// `wit/graft.wit` by `tests/tests/sdk.rs`).
const PY_WIT: &str = include_str!("../../sdk/python/graft_sdk/wit/graft.wit");
const JS_WIT: &str = include_str!("../../sdk/js/wit/graft.wit");
const CONTRACT: &str = "graft:plugin@0.1.0";
const GRAFT_GIT: &str = env!("CARGO_PKG_REPOSITORY");

const PY_SDK: &[(&str, &str)] = &[
    (
        "graft_sdk/__init__.py",
        include_str!("../../sdk/python/graft_sdk/__init__.py"),
    ),
    (
        "graft_sdk/_wit.py",
        include_str!("../../sdk/python/graft_sdk/_wit.py"),
    ),
    (
        "graft_sdk/batch.py",
        include_str!("../../sdk/python/graft_sdk/batch.py"),
    ),
    (
        "graft_sdk/config.py",
        include_str!("../../sdk/python/graft_sdk/config.py"),
    ),
    (
        "graft_sdk/errors.py",
        include_str!("../../sdk/python/graft_sdk/errors.py"),
    ),
    (
        "graft_sdk/exports.py",
        include_str!("../../sdk/python/graft_sdk/exports.py"),
    ),
];

macro_rules! cases {
    ($kind:literal: $($case:literal => [$($file:literal),*]),* $(,)?) => {
        &[$($((
            concat!($case, "/", $file),
            include_str!(concat!("../templates/cases/", $kind, "/", $case, "/", $file)),
        ),)*)*]
    };
}

const INPUT_CASES: &[(&str, &str)] = cases!("input":
    "gathers-a-count" => ["config.toml", "expected.lp", "options.toml"],
    "bad-config" => ["config.toml", "expected_error.txt"],
);
const PROCESSOR_CASES: &[(&str, &str)] = cases!("processor":
    "tags-and-renames" => ["config.toml", "input.lp", "expected.lp"],
    "leaves-others-alone" => ["config.toml", "input.lp", "expected.lp"],
    "bad-config" => ["config.toml", "expected_error.txt"],
);
const AGGREGATOR_CASES: &[(&str, &str)] = cases!("aggregator":
    "counts-per-measurement" => ["config.toml", "input.lp", "expected.lp", "options.toml"],
    "bad-config" => ["config.toml", "expected_error.txt"],
);
const OUTPUT_CASES: &[(&str, &str)] = cases!("output":
    "writes" => ["config.toml", "input.lp", "expected.lp"],
    "too-large" => ["config.toml", "input.lp", "expected_error.txt"],
    "bad-config" => ["config.toml", "expected_error.txt"],
);

fn source(lang: Lang, kind: Kind) -> &'static str {
    use Kind::*;
    match (lang, kind) {
        (Lang::Rust, Input) => include_str!("../templates/rust/input.rs"),
        (Lang::Rust, Processor) => include_str!("../templates/rust/processor.rs"),
        (Lang::Rust, Aggregator) => include_str!("../templates/rust/aggregator.rs"),
        (Lang::Rust, Output) => include_str!("../templates/rust/output.rs"),
        (Lang::Python, Input) => include_str!("../templates/python/input.py"),
        (Lang::Python, Processor) => include_str!("../templates/python/processor.py"),
        (Lang::Python, Aggregator) => include_str!("../templates/python/aggregator.py"),
        (Lang::Python, Output) => include_str!("../templates/python/output.py"),
        (Lang::Js, Input) => include_str!("../templates/js/input.js"),
        (Lang::Js, Processor) => include_str!("../templates/js/processor.js"),
        (Lang::Js, Aggregator) => include_str!("../templates/js/aggregator.js"),
        (Lang::Js, Output) => include_str!("../templates/js/output.js"),
    }
}

fn cases(kind: Kind) -> &'static [(&'static str, &'static str)] {
    match kind {
        Kind::Input => INPUT_CASES,
        Kind::Processor => PROCESSOR_CASES,
        Kind::Aggregator => AGGREGATOR_CASES,
        Kind::Output => OUTPUT_CASES,
    }
}

/// The default `graft-sdk` dependency: the source tree graft was built
/// from when it is still there (a checkout, or cargo's copy of the git
/// repository after `cargo install --git`), else graft's repository.
fn default_rust_sdk() -> String {
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/rust");
    match local.canonicalize() {
        Ok(path) if path.join("Cargo.toml").exists() => {
            format!("{{ path = {:?} }}", path.display().to_string())
        }
        _ => format!("{{ git = {GRAFT_GIT:?} }}"),
    }
}

fn check_name(name: &str) -> Result<()> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        bail!(
            "plugin name {name:?}: use lowercase letters, digits, `-` and `_`, starting with a letter"
        );
    }
    Ok(())
}

/// Write the project; returns the files written, relative to `dir`.
pub fn generate(req: &Request) -> Result<Vec<PathBuf>> {
    check_name(&req.name)?;
    if req.dir.exists()
        && std::fs::read_dir(&req.dir)
            .with_context(|| format!("reading {}", req.dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} already exists and is not empty; choose a new directory",
            req.dir.display()
        );
    }
    let kind = req.kind.as_str();
    let world = format!("{kind}-plugin");
    let Commands {
        setup,
        build,
        wasm,
        test_flags,
    } = commands(req);
    let (lang_title, ci_setup) = match req.lang {
        Lang::Rust => ("Rust", ""),
        Lang::Python => (
            "Python",
            "      - uses: actions/setup-python@v5\n        with:\n          python-version: \"3.12\"\n      - run: pip install -r requirements.txt",
        ),
        Lang::Js => (
            "JavaScript",
            "      - uses: actions/setup-node@v4\n        with:\n          node-version: \"20\"\n      - run: npm install",
        ),
    };
    let rust_sdk = req.rust_sdk.clone().unwrap_or_else(default_rust_sdk);
    let limits = match req.lang {
        Lang::Js => format!(
            "\n  [{kind}s.wasm.limits]\n  recycle_memory = \"16MiB\"   # JavaScript does not free memory while it runs"
        ),
        _ => String::new(),
    };
    let section = format!("{kind}s.wasm");
    let fill = |text: &str| {
        text.replace("{{name}}", &req.name)
            .replace("{{kind}}", kind)
            .replace("{{world}}", &world)
            .replace("{{contract}}", CONTRACT)
            .replace("{{lang_title}}", lang_title)
            .replace("{{setup}}", setup)
            .replace("{{build}}", build)
            .replace("{{wasm}}", &wasm)
            .replace("{{ci_setup}}", ci_setup)
            .replace("{{graft_git}}", GRAFT_GIT)
            .replace("{{section}}", &section)
            .replace("{{rust_sdk}}", &rust_sdk)
            .replace("{{test_flags}}", test_flags)
            .replace("{{limits}}", &limits)
    };

    let mut files: Vec<(String, String)> = vec![
        (
            "README.md".into(),
            fill(include_str!("../templates/common/README.md")),
        ),
        (
            ".github/workflows/graft-plugin.yml".into(),
            fill(include_str!("../templates/common/workflow.yml")),
        ),
    ];
    for (path, text) in cases(req.kind) {
        files.push((format!("cases/{path}"), fill(text)));
    }
    match req.lang {
        Lang::Rust => {
            files.push((
                "Cargo.toml".into(),
                fill(include_str!("../templates/rust/Cargo.toml")),
            ));
            files.push(("src/lib.rs".into(), fill(source(req.lang, req.kind))));
            files.push((
                ".gitignore".into(),
                include_str!("../templates/rust/gitignore").into(),
            ));
        }
        Lang::Python => {
            files.push(("app.py".into(), fill(source(req.lang, req.kind))));
            files.push((
                "build.sh".into(),
                fill(include_str!("../templates/python/build.sh")),
            ));
            files.push((
                "requirements.txt".into(),
                include_str!("../templates/python/requirements.txt").into(),
            ));
            files.push((
                ".gitignore".into(),
                include_str!("../templates/python/gitignore").into(),
            ));
            files.push(("wit/graft.wit".into(), PY_WIT.into()));
            for (path, text) in PY_SDK {
                files.push(((*path).into(), (*text).into()));
            }
        }
        Lang::Js => {
            files.push(("app.js".into(), fill(source(req.lang, req.kind))));
            files.push((
                "package.json".into(),
                fill(include_str!("../templates/js/package.json")),
            ));
            files.push((
                "build.mjs".into(),
                include_str!("../../sdk/js/build.mjs").into(),
            ));
            files.push((
                "graft-sdk.js".into(),
                include_str!("../../sdk/js/graft-sdk.js").into(),
            ));
            files.push((
                ".gitignore".into(),
                include_str!("../templates/js/gitignore").into(),
            ));
            files.push(("wit/graft.wit".into(), JS_WIT.into()));
        }
    }

    let mut written = Vec::new();
    for (rel, text) in files {
        let path = req.dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        written.push(PathBuf::from(rel));
    }
    #[cfg(unix)]
    if req.lang == Lang::Python {
        use std::os::unix::fs::PermissionsExt;
        let script = req.dir.join("build.sh");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} executable", script.display()))?;
    }
    Ok(written)
}

/// How a project of `req` is set up, built and tested.
struct Commands {
    setup: &'static str,
    build: &'static str,
    /// The built plugin, relative to the project.
    wasm: String,
    /// Extra `graft plugin test` flags.
    test_flags: &'static str,
}

fn commands(req: &Request) -> Commands {
    match req.lang {
        Lang::Rust => Commands {
            setup: "rustup target add wasm32-wasip2",
            build: "cargo build --release --target wasm32-wasip2",
            wasm: format!(
                "target/wasm32-wasip2/release/{}.wasm",
                req.name.replace('-', "_")
            ),
            test_flags: "",
        },
        Lang::Python => Commands {
            setup: "pip install -r requirements.txt   # componentize-py",
            build: "./build.sh",
            wasm: format!("{}.wasm", req.name),
            test_flags: "",
        },
        Lang::Js => Commands {
            setup: "npm install   # componentize-js",
            build: "npm run build",
            wasm: format!("{}.wasm", req.name),
            // componentize-js never collects garbage while it runs: its
            // memory grows with every call until the instance is replaced.
            test_flags: " --recycle-memory 16MiB",
        },
    }
}

/// What to run next, for the CLI to print.
pub fn next_steps(req: &Request) -> String {
    let c = commands(req);
    let lang = match req.lang {
        Lang::Rust => "a Rust",
        Lang::Python => "a Python",
        Lang::Js => "a JavaScript",
    };
    format!(
        "created {lang} {} plugin {} in {dir}\n\nnext:\n  cd {dir}\n  {}\n  {}\n  graft plugin test {} --cases cases{}\n",
        req.kind.as_str(),
        req.name,
        c.setup,
        c.build,
        c.wasm,
        c.test_flags,
        dir = req.dir.display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_placeholders_all_filled() {
        assert!(check_name("Bad Name").is_err());
        assert!(check_name("9lives").is_err());
        for lang in [Lang::Rust, Lang::Python, Lang::Js] {
            for kind in [Kind::Input, Kind::Processor, Kind::Aggregator, Kind::Output] {
                let dir = tempfile::tempdir().unwrap();
                let req = Request {
                    kind,
                    lang,
                    name: "my-plugin".into(),
                    dir: dir.path().join("p"),
                    rust_sdk: None,
                };
                let files = generate(&req).unwrap();
                for f in &files {
                    let text = std::fs::read_to_string(dir.path().join("p").join(f)).unwrap();
                    for key in [
                        "{{name}}",
                        "{{world}}",
                        "{{wasm}}",
                        "{{build}}",
                        "{{rust_sdk}}",
                    ] {
                        assert!(!text.contains(key), "{f:?} still holds {key}");
                    }
                }
                assert!(generate(&req).is_err(), "refuses a non-empty directory");
            }
        }
    }
}
