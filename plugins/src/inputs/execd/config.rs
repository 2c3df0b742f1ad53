//! The table of `[[inputs.execd]]`, with Telegraf's keys and defaults, and
//! its resolved form.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, bail};
use serde::Deserialize;

use crate::config::With;
use crate::duration::{de_duration, de_size};
use crate::format::{Parser, ParserConfig};

/// `[[inputs.execd]]`: its own keys and the parser's.
pub type Config = With<Options, ParserConfig>;

/// The keys of `[[inputs.execd]]` besides the data format.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `command` (required): the program and its arguments, each a string.
    #[serde(default)]
    pub command: Vec<String>,
    /// `environment` (default none): `"KEY=value"` entries added to graft's
    /// environment.
    #[serde(default)]
    pub environment: Vec<String>,
    /// `signal` (default `"none"`): what the program gets at every
    /// interval: `"none"`, `"STDIN"` (a newline), `"SIGHUP"`, `"SIGUSR1"`,
    /// `"SIGUSR2"`.
    #[serde(default = "default_signal")]
    pub signal: String,
    /// `restart_delay` (default 10s): the wait before restarting a program
    /// that exited; doubled after each exit in a row that came sooner than
    /// a minute after its start, up to 5 minutes.
    #[serde(default = "ten_seconds", deserialize_with = "de_duration")]
    pub restart_delay: Duration,
    /// `buffer_size` (default 64KiB, at least 16 bytes): the longest line
    /// read from the program; a longer one is skipped and counted.
    #[serde(default = "default_buffer", deserialize_with = "de_size")]
    pub buffer_size: u64,
    /// `stop_on_error` (default false): do not restart a program that
    /// exited non-zero.
    #[serde(default)]
    pub stop_on_error: bool,
}

fn default_signal() -> String {
    "none".into()
}

fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

fn default_buffer() -> u64 {
    64 << 10
}

/// What the program gets at every interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    None,
    Stdin,
    Hup,
    Usr1,
    Usr2,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub command: Vec<String>,
    pub environment: BTreeMap<String, String>,
    pub signal: Signal,
    pub restart_delay: Duration,
    pub max_line: usize,
    pub stop_on_error: bool,
    pub parser: Parser,
}

impl Settings {
    /// Check every key and resolve them. Pure.
    pub fn resolve(config: &Config) -> Result<Self> {
        let With { own, shared } = config;
        match own.command.first() {
            None => bail!("command: required, the program and its arguments as a list"),
            Some(p) if p.is_empty() => bail!("command[0]: the program is empty"),
            Some(_) => {}
        }
        let signal = match own.signal.as_str() {
            "none" | "" => Signal::None,
            "STDIN" => Signal::Stdin,
            "SIGHUP" => Signal::Hup,
            "SIGUSR1" => Signal::Usr1,
            "SIGUSR2" => Signal::Usr2,
            other => bail!(
                "signal: {other:?} is not one of \"none\", \"STDIN\", \"SIGHUP\", \"SIGUSR1\", \"SIGUSR2\""
            ),
        };
        if own.buffer_size < 16 {
            bail!(
                "buffer_size: {} bytes is below the minimum of 16",
                own.buffer_size
            );
        }
        Ok(Self {
            command: own.command.clone(),
            environment: crate::child::environment(&own.environment)?,
            signal,
            restart_delay: own.restart_delay,
            max_line: usize::try_from(own.buffer_size).unwrap_or(usize::MAX),
            stop_on_error: own.stop_on_error,
            parser: shared.build("execd")?,
        })
    }
}
