//! carbon-relay's consistent-hash ring (`carbon_ch`), so that graft sends
//! each path to the same carbon-cache as carbon-relay would for the same
//! destinations: every destination `(host, instance)` gets 100 replicas at
//! the first 16 bits of the MD5 of `"('host', instance):i"` (collisions move
//! up by one), and a path goes to the first replica at or after the first
//! 16 bits of its own MD5, wrapping around.

use md5::{Digest, Md5};

/// The ring; nodes are indices into the destination list.
#[derive(Debug, Clone)]
pub struct Ring {
    entries: Vec<(u32, usize)>,
}

fn position(key: &str) -> u32 {
    let d = Md5::digest(key.as_bytes());
    (u32::from(d[0]) << 8) | u32::from(d[1])
}

/// Python's `str((host, instance))`.
fn node_key(host: &str, instance: Option<&str>) -> String {
    match instance {
        Some(i) => format!("('{host}', '{i}')"),
        None => format!("('{host}', None)"),
    }
}

impl Ring {
    /// A ring over `(host, instance)` destinations.
    pub fn new(nodes: &[(String, Option<String>)]) -> Self {
        let mut entries: Vec<(u32, usize)> = Vec::with_capacity(nodes.len() * 100);
        for (n, (host, instance)) in nodes.iter().enumerate() {
            let key = node_key(host, instance.as_deref());
            for i in 0..100 {
                let mut pos = position(&format!("{key}:{i}"));
                while entries.iter().any(|(p, _)| *p == pos) {
                    pos += 1;
                }
                let at = entries.partition_point(|e| *e < (pos, n));
                entries.insert(at, (pos, n));
            }
        }
        Self { entries }
    }

    /// The destination of `path`.
    pub fn node(&self, path: &str) -> usize {
        let pos = position(path);
        let i = self.entries.partition_point(|(p, _)| *p < pos) % self.entries.len();
        self.entries[i].1
    }
}
