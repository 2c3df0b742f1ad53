//! The table of `[[inputs.exec]]`, with Telegraf's keys and defaults
//! (`data_format` defaults to `"json"` here, as in Telegraf), and its
//! resolved form.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, bail};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use crate::config::With;
use crate::duration::{de_duration, de_size};
use crate::format::{Parser, ParserConfig};
use crate::globpath::{GlobPath, has_wildcard};

/// `[[inputs.exec]]`: its own keys and the parser's.
#[derive(Debug, Clone)]
pub struct Config(pub With<Options, ParserConfig>);

impl<'de> Deserialize<'de> for Config {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut table = toml::Table::deserialize(deserializer)?;
        // Telegraf's exec read JSON before data formats existed, and still
        // does by default.
        table
            .entry("data_format")
            .or_insert_with(|| toml::Value::String("json".into()));
        With::deserialize(toml::Value::Table(table))
            .map(Config)
            .map_err(D::Error::custom)
    }
}

/// One command: a list (the program and its arguments) or, Telegraf's
/// older spelling, a string split into words as a POSIX shell would
/// (quotes and backslashes, no expansion).
#[derive(Debug, Clone, Deserialize)]
#[serde(
    untagged,
    expecting = "a command: a list of strings (program and arguments) or a string"
)]
pub enum CommandSpec {
    Argv(Vec<String>),
    Line(String),
}

/// The keys of `[[inputs.exec]]` besides the data format.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `commands` (default none): each a list `["program", "arg", ...]` or
    /// a string; a wildcard in the program path runs every match.
    #[serde(default)]
    pub commands: Vec<CommandSpec>,
    /// `command` (default none): one more command, Telegraf's legacy key.
    #[serde(default)]
    pub command: Option<CommandSpec>,
    /// `environment` (default none): `"KEY=value"` entries added to graft's
    /// environment for the commands.
    #[serde(default)]
    pub environment: Vec<String>,
    /// `timeout` (default 5s): a command still running then is killed with
    /// its whole process group.
    #[serde(default = "five_seconds", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// `ignore_error` (default false): parse the output of a command that
    /// exited non-zero too.
    #[serde(default)]
    pub ignore_error: bool,
    /// `log_stderr` (default false): log every line a command wrote to
    /// stderr (`E! `, `W! `, `I! `, `D! ` prefixes choose the level).
    #[serde(default)]
    pub log_stderr: bool,
    /// `max_output_size` (graft's; default 16MiB): a command that writes
    /// more to stdout is killed and its output dropped.
    #[serde(default = "default_max_output", deserialize_with = "de_size")]
    pub max_output_size: u64,
}

fn five_seconds() -> Duration {
    Duration::from_secs(5)
}

fn default_max_output() -> u64 {
    16 << 20
}

/// A command ready to run: its program (a glob when it has a wildcard)
/// and arguments.
#[derive(Debug, Clone)]
pub struct Command {
    pub argv: Vec<String>,
    pub glob: Option<GlobPath>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub commands: Vec<Command>,
    pub environment: BTreeMap<String, String>,
    pub timeout: Duration,
    pub ignore_error: bool,
    pub log_stderr: bool,
    pub max_output_size: usize,
    pub parser: Parser,
}

impl Settings {
    /// Check every key and resolve them. Pure.
    pub fn resolve(config: &Config) -> Result<Self> {
        let With { own, shared } = &config.0;
        let mut commands = Vec::new();
        let specs = own
            .commands
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("commands[{i}]"), c));
        for (key, spec) in specs.chain(own.command.iter().map(|c| ("command".to_owned(), c))) {
            let argv = match spec {
                CommandSpec::Argv(argv) => argv.clone(),
                CommandSpec::Line(line) => match split_words(line) {
                    Some(argv) => argv,
                    None => bail!("{key}: {line:?} has an unclosed quote or a trailing backslash"),
                },
            };
            let Some(program) = argv.first() else {
                bail!("{key}: the command is empty");
            };
            if program.is_empty() {
                bail!("{key}: the program is empty");
            }
            let glob = if has_wildcard(program) {
                Some(GlobPath::new(program).map_err(|e| anyhow::anyhow!("{key}: {e:#}"))?)
            } else {
                None
            };
            commands.push(Command { argv, glob });
        }
        if own.timeout.is_zero() {
            bail!("timeout: must be more than 0s");
        }
        if own.max_output_size == 0 {
            bail!("max_output_size: must be more than 0 bytes");
        }
        Ok(Self {
            commands,
            environment: crate::child::environment(&own.environment)?,
            timeout: own.timeout,
            ignore_error: own.ignore_error,
            log_stderr: own.log_stderr,
            max_output_size: usize::try_from(own.max_output_size).unwrap_or(usize::MAX),
            parser: shared.build("exec")?,
        })
    }
}

/// Split a command line into words as Telegraf's go-shellquote does:
/// blanks separate words, single quotes keep everything, double quotes
/// keep all but `\\` before `$`, `` ` ``, `"`, `\\` or a newline, a
/// backslash outside quotes escapes the next character. There are no
/// comments: `#` is an ordinary character. `None` for an unclosed quote
/// or a trailing backslash.
pub(super) fn split_words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                words.extend(word.take());
            }
            '\\' => match chars.next()? {
                '\n' => {}
                e => word.get_or_insert_default().push(e),
            },
            '\'' => {
                let w = word.get_or_insert_default();
                loop {
                    match chars.next()? {
                        '\'' => break,
                        q => w.push(q),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_default();
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            '\n' => {}
                            e @ ('$' | '`' | '"' | '\\') => w.push(e),
                            e => {
                                w.push('\\');
                                w.push(e);
                            }
                        },
                        q => w.push(q),
                    }
                }
            }
            c => word.get_or_insert_default().push(c),
        }
    }
    words.extend(word);
    Some(words)
}
