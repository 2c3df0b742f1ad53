//! Child processes for the inputs that run programs (`inputs.exec`,
//! `inputs.execd`): each is started in a process group of its own, so that
//! a shell and everything it spawned can be signalled and killed together,
//! and its output is read with a bound.

use std::collections::BTreeMap;
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use rustix::process::{Pid, Signal};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};

/// `environment` entries (`"KEY=value"`) as pairs; an entry without `=`
/// is refused, naming its index. The child inherits graft's environment
/// with these added (as Telegraf does).
pub fn environment(entries: &[String]) -> Result<BTreeMap<String, String>> {
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| match e.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => bail!("environment[{i}]: {e:?} is not \"KEY=value\""),
        })
        .collect()
}

/// Start `argv` in a new process group, stdout and stderr piped, stdin
/// piped when `stdin` (else `/dev/null`). The child is killed if its
/// handle is dropped.
pub fn spawn(argv: &[String], env: &BTreeMap<String, String>, stdin: bool) -> Result<Child> {
    let Some((program, args)) = argv.split_first() else {
        bail!("empty command");
    };
    Command::new(program)
        .args(args)
        .envs(env)
        .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {program:?}"))
}

/// Send `signal` to the whole process group led by `pid` (a child started
/// by [`spawn`]). A group already gone is not an error.
pub fn signal_group(pid: u32, signal: Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = rustix::process::kill_process_group(pid, signal);
    }
}

/// Send `signal` to the child `pid` alone.
pub fn signal_one(pid: u32, signal: Signal) -> std::io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| std::io::Error::other("no such process"))?;
    rustix::process::kill_process(pid, signal).map_err(Into::into)
}

/// What [`read_bounded`] read.
#[derive(Debug, Default)]
pub struct Bounded {
    /// The first `max` bytes at most.
    pub bytes: Vec<u8>,
    /// More than `max` bytes came.
    pub exceeded: bool,
}

/// Read `reader` to its end, keeping at most `max` bytes. With `drain`,
/// what comes past the bound is read and thrown away (so that the writer
/// never blocks); without, reading stops at the bound.
pub async fn read_bounded(mut reader: impl AsyncRead + Unpin, max: usize, drain: bool) -> Bounded {
    let mut out = Bounded::default();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => return out,
            Ok(n) => n,
        };
        let room = max.saturating_sub(out.bytes.len());
        out.bytes.extend_from_slice(&chunk[..n.min(room)]);
        if n > room {
            out.exceeded = true;
            if !drain {
                return out;
            }
        }
    }
}

/// The first non-blank line of `stderr`, cut at 512 bytes (Telegraf's
/// bound), for an error message.
pub fn first_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if line.len() > 512 {
        let mut end = 512;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &line[..end])
    } else {
        line.to_owned()
    }
}

/// Log one line a program wrote to stderr at the level its prefix names
/// (Telegraf's `E! `, `W! `, `I! `, `D! `, `T! `; error otherwise).
pub fn log_line(command: &str, line: &str) {
    match line.split_at_checked(3) {
        _ if line.trim().is_empty() => {}
        Some(("E! ", m)) => tracing::error!(command, "{m}"),
        Some(("W! ", m)) => tracing::warn!(command, "{m}"),
        Some(("I! ", m)) => tracing::info!(command, "{m}"),
        Some(("D! " | "T! ", m)) => tracing::debug!(command, "{m}"),
        _ => tracing::error!(command, "stderr: {line}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_entries_need_an_equals_sign() {
        let env = environment(&["A=1".into(), "B=x=y".into(), "C=".into()]).unwrap();
        assert_eq!(env["B"], "x=y");
        assert_eq!(env["C"], "");
        let e = environment(&["A=1".into(), "oops".into()]).unwrap_err();
        assert!(e.to_string().contains("environment[1]"), "{e}");
    }

    #[test]
    fn the_first_stderr_line_is_cut() {
        assert_eq!(
            first_line(b"\n  \nboom: it failed\nmore"),
            "boom: it failed"
        );
        let long = "é".repeat(400);
        let cut = first_line(long.as_bytes());
        assert!(cut.ends_with("...") && cut.len() <= 515, "{}", cut.len());
    }

    #[tokio::test]
    async fn reading_stops_or_drains_at_the_bound() {
        let data = vec![b'x'; 200_000];
        let r = read_bounded(&data[..], 1000, false).await;
        assert!(r.exceeded && r.bytes.len() == 1000);
        let mut rest = &data[..];
        let r = read_bounded(&mut rest, 1000, true).await;
        assert!(r.exceeded && r.bytes.len() == 1000 && rest.is_empty());
        let r = read_bounded(&b"short"[..], 1000, false).await;
        assert!(!r.exceeded && r.bytes == b"short");
    }
}
