//! The SDKs can be published on their own: each carries a copy of the
//! contract identical to `wit/graft.wit`, the Rust crate packages with its
//! copy (and nothing from outside its folder), and a guest built with it
//! pulls in no tokio.

use std::path::Path;
use std::process::Command;

use graft_test_support::workspace_root;

/// Each SDK's copy of the contract, relative to the workspace root.
const COPIES: &[&str] = &[
    "sdk/rust/wit/graft.wit",
    "sdk/python/graft_sdk/wit/graft.wit",
    "sdk/js/wit/graft.wit",
];

fn cargo(args: &[&str]) -> String {
    let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(args)
        .current_dir(workspace_root())
        .output()
        .expect("running cargo");
    assert!(
        out.status.success(),
        "cargo {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("cargo prints UTF-8")
}

fn wit_files(dir: &Path, found: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() && !["node_modules", "target", "__pycache__"].contains(&name.as_str()) {
            wit_files(&path, found);
        } else if name.ends_with(".wit") {
            let root = workspace_root();
            found.push(path.strip_prefix(&root).unwrap().display().to_string());
        }
    }
}

#[test]
fn every_sdk_copy_of_the_contract_is_identical_to_wit_graft_wit() {
    let root = workspace_root();
    let contract = std::fs::read(root.join("wit/graft.wit")).unwrap();
    let mut found = Vec::new();
    wit_files(&root.join("sdk"), &mut found);
    found.sort();
    let mut expected: Vec<String> = COPIES.iter().map(|c| c.to_string()).collect();
    expected.sort();
    assert_eq!(found, expected, "the WIT files under sdk/");
    for copy in COPIES {
        let text = std::fs::read(root.join(copy)).unwrap();
        assert!(
            text == contract,
            "{copy} differs from wit/graft.wit: refresh it with `cp wit/graft.wit {copy}`"
        );
    }
}

#[test]
fn the_rust_sdk_packages_with_its_own_contract() {
    let listed = cargo(&[
        "package",
        "-p",
        "graft-sdk",
        "--no-verify",
        "--list",
        "--allow-dirty",
        "--offline",
    ]);
    let files: Vec<&str> = listed.lines().collect();
    for needed in ["wit/graft.wit", "build.rs", "src/lib.rs", "src/bindings.rs"] {
        assert!(files.contains(&needed), "{needed} not packaged: {files:?}");
    }
    // The generated bindings read the crate's own copy of the contract.
    let bindings = std::fs::read_to_string(workspace_root().join("sdk/rust/src/bindings.rs"));
    assert!(bindings.unwrap().contains(r#"path: "wit","#));
}

#[test]
fn a_guest_built_with_the_rust_sdk_pulls_in_no_tokio() {
    let tree = cargo(&[
        "tree",
        "-p",
        "graft-sdk",
        "--target",
        "wasm32-wasip2",
        "-e",
        "normal",
        "--prefix",
        "none",
        "--offline",
    ]);
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(crates.contains(&"graft-core"), "{tree}");
    assert!(crates.contains(&"wit-bindgen"), "{tree}");
    for host_only in ["tokio", "async-trait", "graft-api", "mio"] {
        assert!(!crates.contains(&host_only), "{host_only} in:\n{tree}");
    }
}
