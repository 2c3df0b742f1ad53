//! collectd's binary network protocol (`data_format = "collectd"`): the
//! packets collectd's `network` plugin sends, read into Telegraf's metrics.
//!
//! A packet is a sequence of parts (`type`, `length`, payload). String
//! parts (host, plugin, plugin instance, type, type instance) and numeric
//! parts (time, interval) set the state that the next `values` part is
//! read with; each `values` part is one value list. A signature part
//! (HMAC-SHA-256 keyed with the user's password from `collectd_auth_file`)
//! covers the rest of the packet; an encryption part (AES-256-OFB, key
//! SHA-256 of the password, SHA-1 checksum) holds a whole packet.
//!
//! Telegraf's mapping (its `collectd` parser, built on go-collectd):
//! - `collectd_parse_multivalue = "split"` (default): one metric per value,
//!   named `<plugin>_<data source>`, with the field `value`;
//!   `"join"`: one metric per value list, named `<plugin>`, with one field
//!   per data source.
//! - Tags `host`, `instance` (plugin instance), `type`, `type_instance`,
//!   each only when not empty. Every value is a float field.
//! - Data source names come from `collectd_typesdb`; without types.db, a
//!   single value is `value` and several are `0`, `1`, ...; with types.db,
//!   a value list of a type it lacks, or with another number of values, is
//!   dropped (counted in `collectd_unknown_types`).
//! - `collectd_security_level`: `none` accepts every packet, `sign` only
//!   signed or encrypted value lists, `encrypt` only encrypted ones. A
//!   signature or encryption is always checked: one that fails costs the
//!   signed or encrypted data, at any level.
//!
//! Where graft differs from Telegraf: a malformed part costs that part (and
//! the value lists that depended on it), not the rest of the packet, when
//! its length can be trusted; `absolute` values are read (go-collectd
//! refuses the whole packet); a packet without a time part is stamped with
//! the time it arrived; a signed packet is read once (go-collectd reads it
//! again, unsigned, after the signed read).
//!
//! Layout: [`wire`] walks a packet's parts, [`security`] checks signatures
//! and decrypts (with the auth file), [`typesdb`] reads types.db files,
//! [`emit`] turns value lists into metrics, [`stats`] counts and logs what
//! was refused, [`encode`] writes packets (for tests, seeds and tools).

pub mod emit;
pub mod encode;
pub mod security;
pub mod stats;
pub mod typesdb;
pub mod values;
pub mod wire;

#[cfg(test)]
mod tests;

use anyhow::{Context, Result, bail};
use graft_core::BatchBuilder;
use serde::Deserialize;

use crate::config::SharedKeys;
pub use security::{AuthFile, SecurityLevel};
pub use stats::CollectdStats;
pub use typesdb::TypesDb;
pub use wire::Report;

/// Telegraf's default auth file.
pub const DEFAULT_AUTH_FILE: &str = "/etc/collectd/auth_file";

/// The largest packet read: a UDP datagram's payload is at most 65507
/// bytes; a longer body (through another transport) is refused whole.
pub const MAX_PACKET_SIZE: usize = 65_536;
/// Most parts read from one packet, nested packets included; the rest of
/// a packet past it is dropped and counted.
pub const MAX_PARTS: usize = 8192;
/// Most values in one `values` part (collectd's types have at most a
/// handful); a larger part is skipped and counted.
pub const MAX_VALUES: usize = 256;
/// Longest string part, its closing NUL included: collectd's own buffers
/// (`DATA_MAX_NAME_LEN`); a longer one is skipped and counted.
pub const MAX_STRING_SIZE: usize = 128;
/// Longest notification message, its NUL included (`NOTIF_MAX_MSG_LEN`).
pub const MAX_MESSAGE_SIZE: usize = 256;
/// Deepest nesting of signed and encrypted parts (collectd sends an
/// encrypted or a signed packet, never one inside the other).
pub const MAX_NESTING: usize = 2;

/// The collectd keys of a table (`[[inputs.socket_listener]]`, or any
/// input with a data format), as Telegraf names them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    /// `collectd_auth_file` (default `"/etc/collectd/auth_file"`): lines of
    /// `user: password`; read again when it changes.
    #[serde(default)]
    pub collectd_auth_file: Option<String>,
    /// `collectd_security_level` (default `"none"`): `none`, `sign` or
    /// `encrypt`.
    #[serde(default)]
    pub collectd_security_level: Option<String>,
    /// `collectd_typesdb` (default none): types.db files, later ones
    /// overriding earlier ones.
    #[serde(default)]
    pub collectd_typesdb: Vec<String>,
    /// `collectd_parse_multivalue` (default `"split"`): `split` or `join`.
    #[serde(default)]
    pub collectd_parse_multivalue: Option<String>,
}

impl SharedKeys for Keys {
    const KEYS: &'static [&'static str] = &[
        "collectd_auth_file",
        "collectd_security_level",
        "collectd_typesdb",
        "collectd_parse_multivalue",
    ];
}

/// How value lists with several values become metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultiValue {
    /// One metric per value: `<plugin>_<data source>`, field `value`.
    Split,
    /// One metric per value list: `<plugin>`, a field per data source.
    Join,
}

/// The keys resolved without I/O.
#[derive(Debug, Clone)]
pub struct Settings {
    pub security: SecurityLevel,
    pub multivalue: MultiValue,
    pub auth_file: String,
    pub typesdb: Vec<String>,
}

impl Keys {
    /// Check the keys. Pure: files are read by [`Decoder::load`].
    pub fn settings(&self) -> Result<Settings> {
        let security = match self.collectd_security_level.as_deref() {
            None | Some("" | "none") => SecurityLevel::None,
            Some("sign") => SecurityLevel::Sign,
            Some("encrypt") => SecurityLevel::Encrypt,
            Some(other) => bail!(
                "collectd_security_level: {other:?} is not one of \"none\", \"sign\", \"encrypt\""
            ),
        };
        let multivalue = match self.collectd_parse_multivalue.as_deref() {
            None | Some("" | "split") => MultiValue::Split,
            Some("join") => MultiValue::Join,
            Some(other) => {
                bail!("collectd_parse_multivalue: {other:?} is not one of \"split\", \"join\"")
            }
        };
        let auth_file = match self.collectd_auth_file.as_deref() {
            None | Some("") => DEFAULT_AUTH_FILE.to_owned(),
            Some(path) => path.to_owned(),
        };
        for (i, path) in self.collectd_typesdb.iter().enumerate() {
            if path.is_empty() {
                bail!("collectd_typesdb[{i}]: empty path");
            }
        }
        Ok(Settings {
            security,
            multivalue,
            auth_file,
            typesdb: self.collectd_typesdb.clone(),
        })
    }
}

/// Reads collectd packets into metrics.
#[derive(Debug)]
pub struct Decoder {
    security: SecurityLevel,
    multivalue: MultiValue,
    typesdb: Option<TypesDb>,
    auth: AuthFile,
}

impl Decoder {
    /// The decoder for `settings`: types.db files are read now (a missing
    /// or unreadable one is an error naming `collectd_typesdb`); the auth
    /// file is read when a signed or encrypted packet first needs it, and
    /// again whenever it changes, as collectd and Telegraf do.
    pub fn load(settings: &Settings) -> Result<Self> {
        let mut typesdb: Option<TypesDb> = None;
        for (i, path) in settings.typesdb.iter().enumerate() {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("collectd_typesdb[{i}]: cannot read {path:?}"))?;
            let db = TypesDb::parse(&text);
            match &mut typesdb {
                Some(all) => all.merge(db),
                None => typesdb = Some(db),
            }
        }
        let auth = AuthFile::new(&settings.auth_file);
        if settings.security != SecurityLevel::None
            && let Err(e) = auth.check()
        {
            tracing::warn!(
                key = "collectd_auth_file",
                path = %settings.auth_file,
                error = %e,
                "cannot read the auth file; signed and encrypted packets are dropped until it can be read"
            );
        }
        Ok(Self {
            security: settings.security,
            multivalue: settings.multivalue,
            typesdb,
            auth,
        })
    }

    /// A decoder from parts already at hand (tests, fuzzing).
    pub fn new(
        security: SecurityLevel,
        multivalue: MultiValue,
        typesdb: Option<TypesDb>,
        auth: AuthFile,
    ) -> Self {
        Self {
            security,
            multivalue,
            typesdb,
            auth,
        }
    }

    /// Read one packet into `out`; value lists without a time part get
    /// `now_ns`. What was refused, and why, is in the report.
    pub fn decode(&self, packet: &[u8], now_ns: i64, out: &mut BatchBuilder) -> Report {
        let mut report = Report::default();
        if packet.len() > MAX_PACKET_SIZE {
            report.packet_size_limit_hits += 1;
            report.note(format!(
                "packet of {} bytes is over the {MAX_PACKET_SIZE} byte maximum",
                packet.len()
            ));
            return report;
        }
        let before = out.len();
        let mut emit = emit::Emitter {
            multivalue: self.multivalue,
            typesdb: self.typesdb.as_ref(),
            now_ns,
            out,
        };
        let walker = wire::Walker {
            required: self.security,
            auth: &self.auth,
        };
        walker.walk(packet, &mut emit, &mut report);
        report.metrics = out.len() - before;
        report
    }
}
