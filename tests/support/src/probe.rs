//! Probing a server from a test: whether it closed a connection.

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

/// Whether the peer closed `s` within 10 s: end of stream or a reset,
/// never a read timeout.
pub fn closed(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            // An answer (a 408 or 413) before the close.
            Ok(_) => continue,
            Err(e) => {
                return !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                );
            }
        }
    }
}
