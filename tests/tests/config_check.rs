//! `graft config check --connect`: every output is asked once whether its
//! destination answers, and the ones that do not are listed — without
//! failing the check (`graft run` retries them) and without writing.

use std::net::TcpListener;

use graft_test_support::graft;
use graft_test_support::servers::free_port;

#[test]
fn config_check_connect_lists_the_outputs_it_could_not_reach() {
    let dir = tempfile::tempdir().unwrap();
    let carbon = TcpListener::bind("127.0.0.1:0").unwrap();
    let up = carbon.local_addr().unwrap().port();
    let (down, influx_down) = (free_port(), free_port());
    let config = dir.path().join("graft.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[inputs.mem]]
[[outputs.graphite]]
  servers = ["127.0.0.1:{up}"]
[[outputs.graphite]]
  servers = ["127.0.0.1:{down}"]
  timeout = "1s"
[[outputs.influxdb]]
  urls = ["http://127.0.0.1:{influx_down}"]
[[outputs.file]]
  files = ["{}"]
"#,
            dir.path().join("out.lp").display()
        ),
    )
    .unwrap();
    let check = |connect: bool| {
        let mut c = graft();
        c.args(["config", "check", "--config"]).arg(&config);
        if connect {
            c.arg("--connect");
        }
        let out = c.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };

    let plain = check(false);
    assert!(
        plain.contains("1 inputs, 0 processors, 0 aggregators, 4 outputs"),
        "{plain}"
    );
    assert!(!plain.contains("could not reach"), "{plain}");

    let probed = check(true);
    let unreachable: Vec<&str> = probed
        .lines()
        .filter(|l| l.starts_with("could not reach"))
        .collect();
    assert_eq!(unreachable.len(), 2, "{probed}");
    assert!(
        unreachable[0].starts_with("could not reach outputs.graphite[1]:")
            && unreachable[0].contains(&format!("127.0.0.1:{down}")),
        "{probed}"
    );
    assert!(
        unreachable[1].starts_with("could not reach outputs.influxdb[0]:")
            && unreachable[1].contains(&format!("127.0.0.1:{influx_down}")),
        "{probed}"
    );
    // The probe wrote nothing to the carbon that answered.
    carbon.set_nonblocking(true).unwrap();
    if let Ok((mut conn, _)) = carbon.accept() {
        conn.set_nonblocking(false).unwrap();
        conn.set_read_timeout(Some(std::time::Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 64];
        let n = std::io::Read::read(&mut conn, &mut buf).unwrap_or(0);
        assert_eq!(n, 0, "the probe sent {:?}", &buf[..n]);
    }
}
