//! `inputs.execd` in a real agent: the program's metrics land as it prints
//! them; killed from outside with SIGKILL it is started again, the restart
//! counted in `internal_gather`; at the agent's stop it is ended.

use std::time::Duration;

use graft_test_support::graft_agent::{Agent, internal_gather};
use graft_test_support::programs::{gone, wait_for};

#[test]
fn a_program_killed_from_outside_is_restarted_and_its_metrics_resume() {
    let scripts = tempfile::tempdir().unwrap();
    let script = scripts.path().join("ticks.sh");
    std::fs::write(
        &script,
        "i=0\nwhile :; do i=$((i+1)); echo \"tick i=${i}i,pid=$$i\"; sleep 0.1; done\n",
    )
    .unwrap();
    let mut agent = Agent::start(&format!(
        r#"[agent]
  interval = "1s"
  flush_interval = "200ms"
  omit_hostname = true
[[inputs.execd]]
  command = ["sh", "{}"]
  restart_delay = "200ms"
[[inputs.internal]]
[[outputs.file]]
  files = ["{{dir}}/out.lp"]
"#,
        script.display()
    ));
    let pids = |agent: &Agent| -> Vec<i64> {
        let mut pids: Vec<i64> = agent
            .points("out.lp")
            .iter()
            .filter(|p| p.name == "tick")
            .filter_map(|p| p.int("pid"))
            .collect();
        pids.dedup();
        pids
    };
    wait_for("ticks from the program", Duration::from_secs(20), || {
        !pids(&agent).is_empty()
    });
    let first = pids(&agent)[0];
    let killed = std::process::Command::new("kill")
        .args(["-9", &first.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    wait_for("ticks from a new process", Duration::from_secs(20), || {
        pids(&agent).iter().any(|p| *p != first)
    });
    wait_for("the restart counted", Duration::from_secs(10), || {
        internal_gather(&agent.path("out.lp"), "execd")
            .is_some_and(|g| g.int("restarts") == Some(1))
    });
    let second = *pids(&agent).last().unwrap();
    assert!(agent.stop(Duration::from_secs(15)).success());
    wait_for(
        "the program ended with the agent",
        Duration::from_secs(5),
        || gone(u32::try_from(second).unwrap()),
    );
}
