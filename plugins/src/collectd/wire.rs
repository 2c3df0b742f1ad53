//! Walks a packet's parts: the state parts set, the value lists they make,
//! and the signed or encrypted packets inside, each part within its
//! limits. A part whose length is wrong ends the packet (nothing after it
//! can be framed); a part with a good length but a bad payload costs only
//! that part and the value lists that would have used it.

use super::emit::Emitter;
use super::security::{self, AuthFile, SecurityLevel};
pub use super::values::{Report, Value, ValueList};
use super::{MAX_MESSAGE_SIZE, MAX_NESTING, MAX_PARTS, MAX_STRING_SIZE, MAX_VALUES};

/// Part type numbers (collectd's `network.h`).
pub mod part {
    pub const HOST: u16 = 0x0000;
    pub const TIME: u16 = 0x0001;
    pub const PLUGIN: u16 = 0x0002;
    pub const PLUGIN_INSTANCE: u16 = 0x0003;
    pub const TYPE: u16 = 0x0004;
    pub const TYPE_INSTANCE: u16 = 0x0005;
    pub const VALUES: u16 = 0x0006;
    pub const INTERVAL: u16 = 0x0007;
    pub const TIME_HR: u16 = 0x0008;
    pub const INTERVAL_HR: u16 = 0x0009;
    pub const MESSAGE: u16 = 0x0100;
    pub const SEVERITY: u16 = 0x0101;
    pub const SIGN_SHA256: u16 = 0x0200;
    pub const ENCRYPT_AES256: u16 = 0x0210;
}

/// Data source types in a `values` part.
pub mod ds {
    pub const COUNTER: u8 = 0;
    pub const GAUGE: u8 = 1;
    pub const DERIVE: u8 = 2;
    pub const ABSOLUTE: u8 = 3;
}

/// A string field of the state: unset, set, or spoiled by a bad part
/// (value lists are then dropped until a good part sets it again).
#[derive(Debug, Clone, Default)]
enum Text {
    #[default]
    Unset,
    Set(String),
    Bad,
}

/// What the parts so far have set: the identifier and time of the next
/// value list.
#[derive(Debug, Clone, Default)]
pub struct State {
    host: Text,
    plugin: Text,
    plugin_instance: Text,
    type_: Text,
    type_instance: Text,
    /// Nanoseconds since the epoch; `None` until a time part.
    pub time_ns: Option<i64>,
    time_bad: bool,
}

/// Walks packets for one decoder.
pub struct Walker<'a> {
    /// The level a value list needs to be kept.
    pub required: SecurityLevel,
    pub auth: &'a AuthFile,
}

impl Walker<'_> {
    /// Walk a whole packet.
    pub fn walk(&self, packet: &[u8], emit: &mut Emitter<'_>, report: &mut Report) {
        let mut parts = 0;
        self.walk_at(packet, SecurityLevel::None, 0, &mut parts, emit, report);
    }

    fn walk_at(
        &self,
        mut buf: &[u8],
        level: SecurityLevel,
        depth: usize,
        parts: &mut usize,
        emit: &mut Emitter<'_>,
        report: &mut Report,
    ) {
        let mut state = State::default();
        let mut values = Vec::new();
        let mut refused = false;
        while !buf.is_empty() {
            *parts += 1;
            if *parts > MAX_PARTS {
                report.parts_limit_hits += 1;
                report.note(format!("more than {MAX_PARTS} parts"));
                return;
            }
            if buf.len() < 4 {
                report.malformed(format!("{} trailing bytes, not a part", buf.len()));
                return;
            }
            let kind = u16::from_be_bytes([buf[0], buf[1]]);
            let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
            if len < 4 || len > buf.len() {
                report.malformed(format!(
                    "part {kind:#06x} of length {len} with {} bytes left",
                    buf.len()
                ));
                return;
            }
            let payload = &buf[4..len];
            let rest = &buf[len..];
            match kind {
                part::SIGN_SHA256 | part::ENCRYPT_AES256 if depth >= MAX_NESTING => {
                    report.nesting_limit_hits += 1;
                    report.note("signed or encrypted parts nested too deep");
                    if kind == part::SIGN_SHA256 {
                        return;
                    }
                }
                part::SIGN_SHA256 => {
                    // The signature covers everything after it.
                    if self.required == SecurityLevel::Encrypt && level < SecurityLevel::Encrypt {
                        // Not worth verifying: nothing unencrypted is kept.
                        report.insecure += 1;
                        report.note("signed but not encrypted packet refused");
                        return;
                    }
                    match security::verify(payload, rest, self.auth) {
                        Ok(()) => {
                            let inner = level.max(SecurityLevel::Sign);
                            self.walk_at(rest, inner, depth + 1, parts, emit, report);
                        }
                        Err(e) => {
                            report.bad_signatures += 1;
                            report.note(format!("signature: {e}"));
                        }
                    }
                    return;
                }
                part::ENCRYPT_AES256 => match security::decrypt(payload, self.auth) {
                    Ok(plain) => {
                        let inner = SecurityLevel::Encrypt;
                        self.walk_at(&plain, inner, depth + 1, parts, emit, report);
                    }
                    Err(e) => {
                        report.decrypt_failures += 1;
                        report.note(format!("encrypted part: {e}"));
                    }
                },
                part::VALUES => {
                    match read_values(payload, &mut values) {
                        Ok(()) => {}
                        Err(PartError::Limit) => {
                            report.values_limit_hits += 1;
                            report.note(format!("values part with more than {MAX_VALUES} values"));
                        }
                        Err(PartError::Bad(why)) => report.malformed(format!("values part: {why}")),
                    }
                    if !values.is_empty() {
                        if level < self.required {
                            report.insecure += 1;
                            if !refused {
                                refused = true;
                                report.note(format!(
                                    "value list below the security level {:?}",
                                    self.required
                                ));
                            }
                        } else {
                            match state.value_list(&values) {
                                Some(vl) => emit.value_list(&vl, report),
                                None => report.malformed(
                                    "value list after a bad host, plugin, type or time part",
                                ),
                            }
                        }
                    }
                    values.clear();
                }
                part::HOST
                | part::PLUGIN
                | part::PLUGIN_INSTANCE
                | part::TYPE
                | part::TYPE_INSTANCE => {
                    let text = match read_string(payload, MAX_STRING_SIZE) {
                        Ok(s) => Text::Set(s),
                        Err(e) => {
                            if matches!(e, PartError::Limit) {
                                report.string_size_limit_hits += 1;
                            }
                            report.malformed(format!("string part {kind:#06x}: {e}"));
                            Text::Bad
                        }
                    };
                    *state.text_mut(kind) = text;
                }
                part::TIME
                | part::TIME_HR
                | part::INTERVAL
                | part::INTERVAL_HR
                | part::SEVERITY => {
                    match read_number(payload) {
                        Some(n) if kind == part::TIME || kind == part::TIME_HR => {
                            let ns = if kind == part::TIME {
                                seconds_to_ns(n)
                            } else {
                                cdtime_to_ns(n)
                            };
                            state.time_bad = ns.is_none();
                            state.time_ns = ns;
                            if ns.is_none() {
                                report.malformed(format!("time {n} out of range"));
                            }
                        }
                        // The interval and a notification's severity are
                        // read and not used, as in Telegraf.
                        Some(_) => {}
                        None => {
                            if kind == part::TIME || kind == part::TIME_HR {
                                state.time_bad = true;
                            }
                            report.malformed(format!(
                                "numeric part {kind:#06x} of {} bytes, not 8",
                                payload.len()
                            ));
                        }
                    }
                }
                part::MESSAGE => {
                    // Notifications are not metrics; Telegraf drops them.
                    if let Err(e) = read_string(payload, MAX_MESSAGE_SIZE) {
                        if matches!(e, PartError::Limit) {
                            report.string_size_limit_hits += 1;
                        }
                        report.malformed(format!("message part: {e}"));
                    }
                }
                // Parts of later protocol versions are skipped, as
                // collectd and Telegraf skip them.
                _ => {}
            }
            buf = rest;
        }
    }
}

impl State {
    fn text_mut(&mut self, kind: u16) -> &mut Text {
        match kind {
            part::HOST => &mut self.host,
            part::PLUGIN => &mut self.plugin,
            part::PLUGIN_INSTANCE => &mut self.plugin_instance,
            part::TYPE => &mut self.type_,
            _ => &mut self.type_instance,
        }
    }

    /// The value list `values` makes with this state; `None` when a part
    /// it needs was bad.
    fn value_list<'a>(&'a self, values: &'a [Value]) -> Option<ValueList<'a>> {
        fn get(t: &Text) -> Option<&str> {
            match t {
                Text::Unset => Some(""),
                Text::Set(s) => Some(s),
                Text::Bad => None,
            }
        }
        if self.time_bad {
            return None;
        }
        Some(ValueList {
            host: get(&self.host)?,
            plugin: get(&self.plugin)?,
            plugin_instance: get(&self.plugin_instance)?,
            type_: get(&self.type_)?,
            type_instance: get(&self.type_instance)?,
            time_ns: self.time_ns,
            values,
        })
    }
}

/// Why a part's payload was refused.
#[derive(Debug, thiserror::Error)]
enum PartError {
    #[error("over its size limit")]
    Limit,
    #[error("{0}")]
    Bad(&'static str),
}

/// A NUL-terminated string of at most `max` bytes (the NUL included).
fn read_string(payload: &[u8], max: usize) -> Result<String, PartError> {
    if payload.len() > max {
        return Err(PartError::Limit);
    }
    let Some((&0, text)) = payload.split_last() else {
        return Err(PartError::Bad("not NUL-terminated"));
    };
    if text.contains(&0) {
        return Err(PartError::Bad("NUL inside"));
    }
    Ok(String::from_utf8_lossy(text).into_owned())
}

/// A big-endian 64-bit number.
fn read_number(payload: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(payload.try_into().ok()?))
}

/// A `values` part: a count, the data source types, then the values
/// (gauges little-endian, the rest big-endian).
fn read_values(payload: &[u8], out: &mut Vec<Value>) -> Result<(), PartError> {
    let Some((count, rest)) = payload.split_first_chunk::<2>() else {
        return Err(PartError::Bad("no value count"));
    };
    let n = usize::from(u16::from_be_bytes(*count));
    if n == 0 {
        return Err(PartError::Bad("no values"));
    }
    if n > MAX_VALUES {
        return Err(PartError::Limit);
    }
    if rest.len() != n * 9 {
        return Err(PartError::Bad("length does not match the value count"));
    }
    let (types, data) = rest.split_at(n);
    for (t, raw) in types.iter().zip(data.chunks_exact(8)) {
        let raw: [u8; 8] = raw.try_into().map_err(|_| PartError::Bad("short value"))?;
        out.push(match *t {
            ds::COUNTER => Value::Counter(u64::from_be_bytes(raw)),
            ds::GAUGE => Value::Gauge(f64::from_le_bytes(raw)),
            ds::DERIVE => Value::Derive(i64::from_be_bytes(raw)),
            ds::ABSOLUTE => Value::Absolute(u64::from_be_bytes(raw)),
            _ => {
                out.clear();
                return Err(PartError::Bad("unknown data source type"));
            }
        });
    }
    Ok(())
}

/// Seconds since the epoch as nanoseconds, if they fit.
fn seconds_to_ns(s: u64) -> Option<i64> {
    i64::try_from(s).ok()?.checked_mul(1_000_000_000)
}

/// collectd's high-resolution time (2^-30 seconds) as nanoseconds, if it
/// fits.
pub fn cdtime_to_ns(t: u64) -> Option<i64> {
    let ns = (u128::from(t) * 1_000_000_000 + (1 << 29)) >> 30;
    i64::try_from(ns).ok()
}
