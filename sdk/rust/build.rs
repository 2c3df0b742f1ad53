//! Encodes each plugin kind's world of the crate's own `wit/graft.wit` into
//! `OUT_DIR/<kind>-plugin.bin`. The export macros embed the one for their
//! kind in the plugin as a `component-type` custom section, which is how
//! `wasm-component-ld` learns the component exports that kind (and only
//! that kind) of the contract.

use std::path::PathBuf;

const WORLDS: [&str; 4] = [
    "input-plugin",
    "processor-plugin",
    "aggregator-plugin",
    "output-plugin",
];

fn main() {
    println!("cargo:rerun-if-changed=wit/graft.wit");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut resolve = wit_parser::Resolve::default();
    let package = resolve
        .push_file("wit/graft.wit")
        .expect("wit/graft.wit parses");
    for name in WORLDS {
        let world = resolve
            .select_world(&[package], Some(name))
            .expect("every kind's world is in the contract");
        let encoded = wit_component::metadata::encode(
            &resolve,
            world,
            wit_component::StringEncoding::UTF8,
            None,
            false,
        )
        .expect("encoding a world of the contract");
        std::fs::write(out.join(format!("{name}.bin")), encoded).expect("writing to OUT_DIR");
    }
}
