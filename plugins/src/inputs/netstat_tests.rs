//! Tests of `inputs.netstat` against sockets the test holds and its own
//! count of the kernel's lines.

use std::net::{TcpListener, TcpStream, UdpSocket};

use graft_core::FieldRef;

use super::*;

/// Lines of `/proc/net/<file>` whose 4th column is `state` (hex, upper
/// case as the kernel writes it), those with the same file and addresses
/// once, counted without the plugin's parser.
fn lines_in_state(files: &[&str], state: &str) -> i64 {
    let mut distinct = std::collections::HashSet::new();
    for f in files {
        let Ok(t) = std::fs::read_to_string(format!("/proc/net/{f}")) else {
            continue;
        };
        for l in t.lines().skip(1) {
            let w: Vec<&str> = l.split_whitespace().collect();
            if w.get(3) == Some(&state) {
                distinct.insert((f.to_string(), w[1].to_string(), w[2].to_string()));
            }
        }
    }
    distinct.len() as i64
}

fn socket_lines(files: &[&str]) -> i64 {
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(format!("/proc/net/{f}")).ok())
        .map(|t| t.lines().skip(1).count() as i64)
        .sum()
}

/// What the kernel lists: (established, listen, udp sockets).
fn kernel_view() -> (i64, i64, i64) {
    (
        lines_in_state(&["tcp", "tcp6"], "01"),
        lines_in_state(&["tcp", "tcp6"], "0A"),
        socket_lines(&["udp", "udp6"]),
    )
}

fn int(b: &Batch, f: &str) -> i64 {
    match b.get(0).field(f) {
        Some(FieldRef::Int(v)) => v,
        other => panic!("{f}: {other:?}"),
    }
}

#[test]
fn counts_the_sockets_held_and_match_the_kernel_lines() {
    const N: usize = 20;
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let conns: Vec<(TcpStream, TcpStream)> = listeners
        .iter()
        .map(|l| {
            let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
            (c, l.accept().unwrap().0)
        })
        .collect();
    let udp: Vec<UdpSocket> = (0..N)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let mut netstat = Netstat::with_root(PathBuf::from("/proc"));
    // Other tests open and close sockets meanwhile: compare with a reading
    // of the kernel's files that did not change around the gather.
    let mut compared = false;
    for _ in 0..20 {
        let before = kernel_view();
        let b = netstat.sample(1).unwrap();
        let after = kernel_view();
        let got = (
            int(&b, "tcp_established"),
            int(&b, "tcp_listen"),
            int(&b, "udp_socket"),
        );
        assert!(got.0 >= 2 * N as i64, "{got:?}");
        assert!(got.1 >= N as i64, "{got:?}");
        if before == after {
            let unix_dgram = got.2 - before.2;
            assert!(unix_dgram >= 0, "{got:?} {before:?}");
            assert_eq!((got.0, got.1), (before.0, before.1));
            compared = true;
            break;
        }
    }
    assert!(compared, "the kernel's socket list never held still");
    assert_eq!(netstat.malformed_lines(), 0);
    drop((listeners, conns, udp));
}

#[test]
fn every_field_is_an_int_and_always_present() {
    let b = Netstat::with_root(PathBuf::from("/proc"))
        .sample(1)
        .unwrap();
    let m = b.get(0);
    assert_eq!(m.name(), "netstat");
    assert_eq!(m.tags().count(), 0);
    let mut names: Vec<&str> = TCP_STATES.to_vec();
    names.extend(["tcp_none", "udp_socket"]);
    assert_eq!(m.fields().count(), names.len());
    for f in names {
        assert!(matches!(m.field(f), Some(FieldRef::Int(_))), "{f}");
    }
}

#[test]
fn crafted_files_are_counted_by_state_and_bad_lines_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("net");
    std::fs::create_dir_all(&net).unwrap();
    let head = "  sl  local_address rem_address   st tx_queue\n";
    let line = |port: &str, st: &str| {
        format!("   0: 0100007F:{port} 00000000:0000 {st} 00000000:00000000\n")
    };
    let tcp = format!(
        "{head}{}{}{}{}{}bogus\n",
        line("0050", "01"),
        line("0051", "01"),
        line("0050", "0A"),
        line("0050", "06"),
        line("0050", "ZZ")
    );
    std::fs::write(net.join("tcp"), tcp).unwrap();
    std::fs::write(net.join("tcp6"), format!("{head}{}", line("0050", "0B"))).unwrap();
    std::fs::write(
        net.join("udp"),
        format!("{head}{}{}", line("0050", "07"), line("0051", "07")),
    )
    .unwrap();
    std::fs::write(
        net.join("unix"),
        "Num RefCount Protocol Flags Type St Inode Path\nffff: 00000002 00000000 00010000 0001 01 1 /run/a\nffff: 00000002 00000000 00000000 0002 01 2\nffff: 00000002 00000000 00000000 0005 01 3\n",
    )
    .unwrap();
    let mut netstat = Netstat::with_root(dir.path().to_path_buf());
    let b = netstat.sample(1).unwrap();
    assert_eq!(int(&b, "tcp_established"), 2);
    assert_eq!(int(&b, "tcp_listen"), 1);
    assert_eq!(int(&b, "tcp_time_wait"), 1);
    assert_eq!(int(&b, "tcp_closing"), 1);
    assert_eq!(int(&b, "tcp_syn_sent"), 0);
    assert_eq!(int(&b, "udp_socket"), 3);
    assert_eq!(int(&b, "tcp_none"), 2);
    assert_eq!(netstat.malformed_lines(), 2);
}

#[test]
fn a_root_without_net_tcp_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = Netstat::with_root(dir.path().to_path_buf())
        .sample(1)
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("net/tcp"), "{err:#}");
}

#[test]
fn inet_sockets_with_the_same_addresses_and_state_count_once_as_in_gopsutil() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("net");
    std::fs::create_dir_all(&net).unwrap();
    let head = "  sl  local_address rem_address   st tx_queue\n";
    let line = |sl: u32, local: &str, st: &str| {
        format!("{sl:4}: {local} 00000000:0000 {st} 00000000:00000000\n")
    };
    // Two SO_REUSEPORT listeners on :80 and one on :81; a connection to
    // :80 in TIME_WAIT that has the listener's addresses but not its state.
    let tcp = [
        line(0, "00000000:0050", "0A"),
        line(1, "00000000:0050", "0A"),
        line(2, "00000000:0051", "0A"),
        line(3, "00000000:0050", "06"),
    ]
    .concat();
    std::fs::write(net.join("tcp"), format!("{head}{tcp}")).unwrap();
    // Two UDP sockets bound to :53 with SO_REUSEPORT, one on :54.
    let udp = [
        line(0, "00000000:0035", "07"),
        line(1, "00000000:0035", "07"),
        line(2, "00000000:0036", "07"),
    ]
    .concat();
    std::fs::write(net.join("udp"), format!("{head}{udp}")).unwrap();
    let b = Netstat::with_root(dir.path().to_path_buf())
        .sample(1)
        .unwrap();
    assert_eq!(int(&b, "tcp_listen"), 2);
    assert_eq!(int(&b, "tcp_time_wait"), 1);
    assert_eq!(int(&b, "udp_socket"), 2);
}
