//! Telegraf's own `sample.conf` of `inputs.nginx`, `inputs.http` and
//! `inputs.http_response` (copied verbatim from Telegraf's repository into
//! `tests/configs/telegraf/`) pass `graft config check` unchanged.

use graft_test_support::{graft, workspace_root};

#[test]
fn telegraf_sample_configs_pass_config_check() {
    for plugin in ["nginx", "http", "http_response"] {
        let path = workspace_root().join(format!("tests/configs/telegraf/{plugin}.conf"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(&format!("[[inputs.{plugin}]]")),
            "{}",
            path.display()
        );
        let out = graft()
            .args(["config", "check", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 inputs"),
            "{plugin}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
