//! Running one command of `inputs.exec`: in its own process group, stdout
//! read up to a bound, stderr kept up to a bound and drained, and the
//! whole group killed (then the command reaped) past the timeout or the
//! bound.

use std::process::ExitStatus;
use std::time::Duration;

use rustix::process::Signal;

use crate::child::{self, Bounded, read_bounded};

/// Bytes of stderr kept per run (the rest is read and dropped).
pub const MAX_STDERR_BYTES: usize = 64 << 10;

/// What a run gave.
#[derive(Debug)]
pub struct Ran {
    pub stdout: Vec<u8>,
    pub stderr: Bounded,
    pub status: ExitStatus,
}

/// Why a run gave nothing usable.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0:#}")]
    Start(anyhow::Error),
    #[error("still running after {0:?}: killed with its process group")]
    Timeout(Duration),
    #[error(
        "wrote more than {0} bytes to stdout: killed with its process group, its output dropped"
    )]
    OutputTooLarge(usize),
    #[error("waiting for it failed: {0}")]
    Wait(std::io::Error),
}

/// Run `argv` to its end, or kill it.
pub async fn run(
    argv: &[String],
    env: &std::collections::BTreeMap<String, String>,
    timeout: Duration,
    max_output: usize,
) -> Result<Ran, RunError> {
    let mut child = child::spawn(argv, env, false).map_err(RunError::Start)?;
    let pid = child.id().unwrap_or(0);
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(RunError::Start(anyhow::anyhow!("no pipes to the command")));
    };
    // A gather dropped half-way (the agent stopping) takes the group down.
    let guard = GroupGuard(pid);
    let work = async {
        let (out, err) = tokio::join!(
            async {
                let out = read_bounded(stdout, max_output, false).await;
                if out.exceeded {
                    child::signal_group(pid, Signal::KILL);
                }
                out
            },
            read_bounded(stderr, MAX_STDERR_BYTES, true),
        );
        (out, err, child.wait().await)
    };
    let finished = tokio::time::timeout(timeout, work).await;
    let result = match finished {
        Ok((out, _, _)) if out.exceeded => Err(RunError::OutputTooLarge(max_output)),
        Ok((out, stderr, Ok(status))) => Ok(Ran {
            stdout: out.bytes,
            stderr,
            status,
        }),
        Ok((_, _, Err(e))) => Err(RunError::Wait(e)),
        Err(_) => {
            child::signal_group(pid, Signal::KILL);
            // Reap it: no zombie left behind.
            let _ = child.wait().await;
            Err(RunError::Timeout(timeout))
        }
    };
    std::mem::forget(guard);
    result
}

/// Kills a command's process group when dropped.
struct GroupGuard(u32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        child::signal_group(self.0, Signal::KILL);
    }
}
