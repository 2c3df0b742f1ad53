//! Which contract a component targets, read from the names of its exports
//! (`graft:plugin/processor@0.1.0`), and whether this graft accepts it.

use anyhow::{Result, bail};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Contract versions this graft can run.
pub const ACCEPTED_VERSIONS: &[&str] = &["0.1.0"];

use crate::kind::Kind;

/// What a component says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contract {
    pub kind: Kind,
    pub version: String,
    /// Every interface the component imports (WASI and graft's own).
    pub imports: Vec<String>,
}

/// Read the contract from a compiled component.
pub fn inspect(engine: &Engine, component: &Component) -> Result<Contract> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    let imports: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();

    let mut found = Vec::new();
    for name in &exports {
        let Some(rest) = name.strip_prefix("graft:plugin/") else {
            continue;
        };
        let (iface, version) = rest.split_once('@').unwrap_or((rest, ""));
        if let Some(kind) = Kind::from_name(iface) {
            found.push((kind, version.to_owned()));
        }
    }
    match found.as_slice() {
        [] => bail!(
            "not a graft plugin: it exports no `graft:plugin/<kind>` interface (exports: {})",
            if exports.is_empty() {
                "none".into()
            } else {
                exports.join(", ")
            }
        ),
        [(kind, version)] => {
            if !ACCEPTED_VERSIONS.contains(&version.as_str()) {
                bail!(
                    "targets contract graft:plugin@{} ({kind}), which this graft does not run; \
                     it accepts {}. Rebuild the plugin against a supported SDK",
                    if version.is_empty() {
                        "(unversioned)"
                    } else {
                        version
                    },
                    ACCEPTED_VERSIONS
                        .iter()
                        .map(|v| format!("graft:plugin@{v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            Ok(Contract {
                kind: *kind,
                version: version.clone(),
                imports,
            })
        }
        many => bail!(
            "exports more than one plugin kind ({}); a plugin must target exactly one world",
            many.iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
