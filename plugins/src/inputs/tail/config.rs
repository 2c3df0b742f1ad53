//! The table of `[[inputs.tail]]`, with Telegraf's keys and defaults and
//! graft's limits, and its resolved form.

use std::time::Duration;

use anyhow::{Result, bail};
use regex::Regex;
use serde::Deserialize;

use crate::config::With;
use crate::duration::{de_duration, de_size};
use crate::format::{Parser, ParserConfig};
use crate::globpath::GlobPath;

/// `[[inputs.tail]]`: its own keys and the parser's.
pub type Config = With<Options, ParserConfig>;

/// The keys of `[[inputs.tail]]` besides the data format.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `files` (default none): paths or globs (`*`, `?`, `[...]`, `**`),
    /// globbed again every second.
    #[serde(default)]
    pub files: Vec<String>,
    /// `initial_read_offset` (default `"saved-or-end"`): where reading
    /// starts in the files found at start: `beginning`, `end`,
    /// `saved-or-beginning`, `saved-or-end`.
    #[serde(default)]
    pub initial_read_offset: String,
    /// `from_beginning` (deprecated in Telegraf 1.34): true is
    /// `initial_read_offset = "beginning"`.
    #[serde(default)]
    pub from_beginning: bool,
    /// `pipe` (default false): the files are named pipes, read as they
    /// come, without positions.
    #[serde(default)]
    pub pipe: bool,
    /// `watch_method` (default `"inotify"`): `inotify` or `poll`; graft
    /// checks the files every 100 ms either way.
    #[serde(default)]
    pub watch_method: String,
    /// `max_undelivered_lines` (default 1000): lines read that the outputs
    /// have not yet written; at the bound, graft reads no further.
    #[serde(default = "default_undelivered")]
    pub max_undelivered_lines: usize,
    /// `character_encoding` (default none): `""` or `"utf-8"` (invalid
    /// bytes replaced); UTF-16 is refused.
    #[serde(default)]
    pub character_encoding: String,
    /// `path_tag` (default `"path"`): the tag with the file's path; `""`
    /// adds none.
    #[serde(default = "default_path_tag")]
    pub path_tag: String,
    /// `filters` (default none): `"ansi_color"` removes ANSI color codes.
    #[serde(default)]
    pub filters: Vec<String>,
    /// `[inputs.tail.multiline]` (default none): lines joined into events.
    #[serde(default)]
    pub multiline: Option<MultilineOptions>,
    /// `max_line_size` (graft's; default 1MiB): a longer line is skipped
    /// and counted in `line_size_limit_hits`.
    #[serde(default = "default_line", deserialize_with = "de_size")]
    pub max_line_size: u64,
    /// `max_files` (graft's; default 1000): files followed at once; more
    /// matches are left and counted in `files_limit_hits`.
    #[serde(default = "default_files")]
    pub max_files: usize,
}

/// `[inputs.tail.multiline]`, as Telegraf's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultilineOptions {
    /// `pattern` (required): a regular expression.
    pub pattern: String,
    /// `match_which_line` (default `"previous"`): a matching line belongs
    /// to the `previous` line's event or the `next` one's.
    #[serde(default)]
    pub match_which_line: String,
    /// `invert_match` (default false): the lines NOT matching belong.
    #[serde(default)]
    pub invert_match: bool,
    /// `quotation` (default `"ignore"`): only `ignore` is supported.
    #[serde(default)]
    pub quotation: String,
    /// `preserve_newline` (default false): join with `\n` instead of
    /// nothing.
    #[serde(default)]
    pub preserve_newline: bool,
    /// `timeout` (default 5s): an event waiting that long for its next
    /// line is let go.
    #[serde(default = "five_seconds", deserialize_with = "de_duration")]
    pub timeout: Duration,
}

fn default_undelivered() -> usize {
    1000
}
fn default_path_tag() -> String {
    "path".into()
}
fn default_line() -> u64 {
    1 << 20
}
fn default_files() -> usize {
    1000
}
fn five_seconds() -> Duration {
    Duration::from_secs(5)
}

/// Where reading starts in a file found at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialOffset {
    Beginning,
    End,
    SavedOrBeginning,
    SavedOrEnd,
}

/// Which event a matching line joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Previous,
    Next,
}

/// The resolved multiline settings.
#[derive(Debug, Clone)]
pub struct Multiline {
    pub pattern: Regex,
    pub which: Which,
    pub invert: bool,
    pub preserve_newline: bool,
    pub timeout: Duration,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub files: Vec<GlobPath>,
    pub initial: InitialOffset,
    pub pipe: bool,
    pub max_undelivered_lines: usize,
    pub path_tag: String,
    pub strip_ansi: bool,
    pub multiline: Option<Multiline>,
    pub max_line: usize,
    pub max_files: usize,
    pub parser: Parser,
    /// What identifies the instance's state.
    pub state_key: String,
}

impl Settings {
    /// Check every key and resolve them. Pure.
    pub fn resolve(config: &Config) -> Result<Self> {
        let With { own, shared } = config;
        let files = own
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| GlobPath::new(f).map_err(|e| anyhow::anyhow!("files[{i}]: {e:#}")))
            .collect::<Result<Vec<_>>>()?;
        let initial = match (own.initial_read_offset.as_str(), own.from_beginning) {
            ("", true) | ("beginning", _) => InitialOffset::Beginning,
            ("", false) | ("saved-or-end", _) => InitialOffset::SavedOrEnd,
            ("end", _) => InitialOffset::End,
            ("saved-or-beginning", _) => InitialOffset::SavedOrBeginning,
            (other, _) => bail!(
                "initial_read_offset: {other:?} is not one of \"beginning\", \"end\", \"saved-or-beginning\", \"saved-or-end\""
            ),
        };
        match own.watch_method.as_str() {
            "" | "inotify" | "poll" => {}
            other => bail!("watch_method: {other:?} is not \"inotify\" or \"poll\""),
        }
        match own.character_encoding.to_ascii_lowercase().as_str() {
            "" | "utf-8" | "utf8" => {}
            other => bail!(
                "character_encoding: {other:?} is not supported by graft (only \"\" and \"utf-8\")"
            ),
        }
        if own.max_undelivered_lines == 0 {
            bail!("max_undelivered_lines: must be positive");
        }
        let mut strip_ansi = false;
        for (i, f) in own.filters.iter().enumerate() {
            match f.as_str() {
                "ansi_color" => strip_ansi = true,
                other => bail!("filters[{i}]: {other:?} is not a filter (\"ansi_color\")"),
            }
        }
        let multiline = own.multiline.as_ref().map(resolve_multiline).transpose()?;
        if own.max_line_size == 0 || own.max_files == 0 {
            bail!("max_line_size and max_files: must be positive");
        }
        let mut key: Vec<&str> = own.files.iter().map(String::as_str).collect();
        key.sort_unstable();
        Ok(Self {
            files,
            initial,
            pipe: own.pipe,
            max_undelivered_lines: own.max_undelivered_lines,
            path_tag: own.path_tag.clone(),
            strip_ansi,
            multiline,
            max_line: usize::try_from(own.max_line_size).unwrap_or(usize::MAX),
            max_files: own.max_files,
            parser: shared.build("tail")?,
            state_key: serde_json::to_string(&key)?,
        })
    }
}

fn resolve_multiline(m: &MultilineOptions) -> Result<Multiline> {
    let pattern = Regex::new(&m.pattern).map_err(|e| anyhow::anyhow!("multiline.pattern: {e}"))?;
    let which = match m.match_which_line.as_str() {
        "" | "previous" => Which::Previous,
        "next" => Which::Next,
        other => bail!("multiline.match_which_line: {other:?} is not \"previous\" or \"next\""),
    };
    match m.quotation.as_str() {
        "" | "ignore" => {}
        other => {
            bail!("multiline.quotation: {other:?} is not supported by graft (only \"ignore\")")
        }
    }
    if m.timeout.is_zero() {
        bail!("multiline.timeout: must be more than 0s");
    }
    Ok(Multiline {
        pattern,
        which,
        invert: m.invert_match,
        preserve_newline: m.preserve_newline,
        timeout: m.timeout,
    })
}
