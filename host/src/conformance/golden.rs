//! Golden cases (`--cases DIR`): a folder per case with the plugin's
//! config, an input and the expected output or error; each case runs
//! twice on fresh instances, and outputs are compared after normalizing.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use graft_core::lineparse::{Precision, parse_into};
use graft_core::{Batch, BatchBuilder, FieldRef};

use super::report::{Outcome, Report, fail, pass};
use super::subject::{Ran, Subject};
use crate::wasm::LoadedPlugin;

/// A case's comparison options (`options.toml`).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseOptions {
    /// Compare as sets of lines (default true).
    sort: Option<bool>,
    /// Leave timestamps out of the comparison.
    #[serde(default)]
    ignore_timestamps: bool,
    /// Floats equal within this relative tolerance.
    #[serde(default)]
    float_tolerance: f64,
}

/// A metric, for comparing.
#[derive(Clone, Debug, PartialEq)]
struct Norm {
    name: String,
    tags: Vec<(String, String)>,
    fields: Vec<(String, NormValue)>,
    ts: Option<i64>,
}

#[derive(Clone, Debug, PartialEq)]
enum NormValue {
    Float(f64),
    Int(i64),
    Uint(u64),
    Bool(bool),
    Str(String),
}

fn normalize(batches: &[Batch], opts: &CaseOptions) -> Vec<Norm> {
    let mut out: Vec<Norm> = batches
        .iter()
        .flat_map(|b| b.iter())
        .map(|m| {
            let mut tags: Vec<_> = m
                .tags()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            tags.sort();
            let mut fields: Vec<_> = m
                .fields()
                .map(|(k, v)| {
                    let v = match v {
                        FieldRef::Float(x) => NormValue::Float(x),
                        FieldRef::Int(x) => NormValue::Int(x),
                        FieldRef::Uint(x) => NormValue::Uint(x),
                        FieldRef::Bool(x) => NormValue::Bool(x),
                        FieldRef::Str(s) => NormValue::Str(s.to_owned()),
                    };
                    (k.to_owned(), v)
                })
                .collect();
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Norm {
                name: m.name().to_owned(),
                tags,
                fields,
                ts: (!opts.ignore_timestamps).then(|| m.timestamp()),
            }
        })
        .collect();
    if opts.sort.unwrap_or(true) {
        out.sort_by_cached_key(|m| format!("{m:?}"));
    }
    out
}

fn same(a: &[Norm], b: &[Norm], tolerance: f64) -> bool {
    let value_eq = |x: &NormValue, y: &NormValue| match (x, y) {
        (NormValue::Float(x), NormValue::Float(y)) => {
            x == y || (x - y).abs() <= tolerance * x.abs().max(y.abs())
        }
        _ => x == y,
    };
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.name == y.name
                && x.tags == y.tags
                && x.ts == y.ts
                && x.fields.len() == y.fields.len()
                && x.fields
                    .iter()
                    .zip(&y.fields)
                    .all(|((kx, vx), (ky, vy))| kx == ky && value_eq(vx, vy))
        })
}

fn read_lp(path: &Path) -> Result<Batch> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut b = BatchBuilder::new();
    let errors = parse_into(&text, Precision::Nanoseconds, 0, &mut b);
    if let Some(e) = errors.first() {
        bail!("{}: {e}", path.display());
    }
    Ok(b.finish())
}

/// The plugin config of a case: `config.json`, or `config.toml` (a table).
fn case_config(dir: &Path) -> Result<String> {
    let json = dir.join("config.json");
    if json.exists() {
        return std::fs::read_to_string(&json)
            .with_context(|| format!("reading {}", json.display()));
    }
    let toml_path = dir.join("config.toml");
    if toml_path.exists() {
        let text = std::fs::read_to_string(&toml_path)?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!("{}: {}", toml_path.display(), e.to_string().trim_end())
        })?;
        return Ok(serde_json::to_string(&table)?);
    }
    Ok("{}".into())
}

/// What one run of a case gave: metrics or an error text.
fn run_case(plugin: &LoadedPlugin, config: &str, input: &Batch) -> Result<Vec<Batch>, String> {
    let mut s = Subject::start(plugin, config).map_err(|e| e.to_string())?;
    match s.exercise(input) {
        Ran::Batch(b) => Ok(vec![b]),
        Ran::Written => Ok(Vec::new()),
        Ran::Error(e) | Ran::Fault(e) => Err(e),
    }
}

pub(super) fn golden_cases(plugin: &LoadedPlugin, dir: &Path, report: &mut Report) -> Result<()> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading cases in {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    if cases.is_empty() {
        bail!("{} holds no case folders", dir.display());
    }
    for case in cases {
        let name = case
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let t = Instant::now();
        let outcome = one_case(plugin, &case).unwrap_or_else(|e| fail(format!("{e:#}")));
        report.add("golden", name, t, outcome);
    }
    Ok(())
}

fn one_case(plugin: &LoadedPlugin, case: &Path) -> Result<Outcome> {
    let config = case_config(case)?;
    let options: CaseOptions = match std::fs::read_to_string(case.join("options.toml")) {
        Ok(text) => toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{}: {}",
                case.join("options.toml").display(),
                e.to_string().trim_end()
            )
        })?,
        Err(_) => CaseOptions::default(),
    };
    let input_path = case.join("input.lp");
    let input = if input_path.exists() {
        read_lp(&input_path)?
    } else {
        Batch::new()
    };
    let first = run_case(plugin, &config, &input);
    let second = run_case(plugin, &config, &input);
    let show = |r: &Result<Vec<Batch>, String>| match r {
        Ok(b) => format!("{} metrics", b.iter().map(Batch::len).sum::<usize>()),
        Err(e) => format!("error {e:?}"),
    };
    let deterministic = match (&first, &second) {
        (Ok(a), Ok(b)) => same(
            &normalize(a, &options),
            &normalize(b, &options),
            options.float_tolerance,
        ),
        (Err(a), Err(b)) => a == b,
        _ => false,
    };
    if !deterministic {
        return Ok(fail(format!(
            "not deterministic: two runs on fresh instances differ ({} / {})",
            show(&first),
            show(&second)
        )));
    }
    let expected_error = case.join("expected_error.txt");
    if expected_error.exists() {
        let want = std::fs::read_to_string(&expected_error)?.trim().to_owned();
        return Ok(match first {
            Err(e) if e.contains(&want) => pass(format!("error as expected: {e}")),
            other => fail(format!(
                "expected an error containing {want:?}, got {}",
                show(&other)
            )),
        });
    }
    let expected_path = case.join("expected.lp");
    let got = match first {
        Ok(b) => b,
        Err(e) => return Ok(fail(format!("unexpected error: {e}"))),
    };
    if !expected_path.exists() {
        return Ok(pass("ran twice alike (no expected.lp to compare)"));
    }
    let expected = normalize(&[read_lp(&expected_path)?], &options);
    let actual = normalize(&got, &options);
    Ok(if same(&actual, &expected, options.float_tolerance) {
        pass(format!("{} metrics as expected", actual.len()))
    } else {
        let first_diff = actual
            .iter()
            .zip(&expected)
            .position(|(a, e)| {
                !same(
                    std::slice::from_ref(a),
                    std::slice::from_ref(e),
                    options.float_tolerance,
                )
            })
            .unwrap_or(actual.len().min(expected.len()));
        fail(format!(
            "{} metrics, {} expected; first difference at {first_diff}: got {:?}, expected {:?}",
            actual.len(),
            expected.len(),
            actual.get(first_diff),
            expected.get(first_diff)
        ))
    })
}
