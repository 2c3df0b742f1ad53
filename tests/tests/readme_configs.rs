//! The configurations the README's "Scaling out" and "Prometheus and
//! OpenTelemetry" sections give are real: each one passes `graft config
//! check` (every key known, every value valid), so that a user who copies
//! them starts from a working pair.

use std::path::Path;

use graft_test_support::graft;

/// The TOML blocks of the README section titled `title`.
fn toml_blocks(title: &str) -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let start = readme
        .find(&format!("\n## {title}\n"))
        .unwrap_or_else(|| panic!("no section {title:?} in the README"));
    let section = &readme[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    section
        .split("```toml\n")
        .skip(1)
        .map(|b| b[..b.find("```").expect("a closed block")].to_owned())
        .collect()
}

#[test]
fn the_scaling_out_configs_pass_config_check() {
    let blocks = toml_blocks("Scaling out");
    assert!(
        blocks.len() >= 3,
        "the edge, the consumer and MQTT: {blocks:?}"
    );
    all_pass_config_check(&blocks);
}

#[test]
fn the_prometheus_and_opentelemetry_configs_pass_config_check() {
    let blocks = toml_blocks("Prometheus and OpenTelemetry");
    assert!(
        blocks.len() >= 5,
        "the client, self-metrics, scraping, remote write, OTLP: {blocks:?}"
    );
    all_pass_config_check(&blocks);
}

fn all_pass_config_check(blocks: &[String]) {
    let dir = tempfile::tempdir().unwrap();
    for (i, block) in blocks.iter().enumerate() {
        let path = dir.path().join(format!("block{i}.toml"));
        std::fs::write(&path, block).unwrap();
        let out = graft()
            .args(["config", "check", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "README block {i} fails config check:\n{block}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
