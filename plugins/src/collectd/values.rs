//! What a packet's walk hands on: values, value lists, and the report of
//! what one packet gave and cost. Shared by the walker ([`super::wire`])
//! and the emitter ([`super::emit`]), which depend on it and not on each
//! other's internals.

/// One value as sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Counter(u64),
    Gauge(f64),
    Derive(i64),
    Absolute(u64),
}

/// What one packet gave, and what it cost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Metrics added.
    pub metrics: usize,
    /// Parts that could not be read (a bad length, payload or string),
    /// and value lists lost because a part they needed was bad.
    pub malformed: usize,
    /// Value lists refused for lacking the signature or encryption that
    /// `collectd_security_level` asks for.
    pub insecure: usize,
    /// Signed parts whose signature did not verify (wrong password,
    /// unknown user, no auth file): the signed rest of the packet dropped.
    pub bad_signatures: usize,
    /// Encrypted parts that could not be decrypted (wrong password, unknown
    /// user, bad checksum or length).
    pub decrypt_failures: usize,
    /// Value lists whose type types.db lacks or whose value count differs.
    pub unknown_types: usize,
    /// Packets over [`super::MAX_PACKET_SIZE`].
    pub packet_size_limit_hits: usize,
    /// Packets cut at [`super::MAX_PARTS`].
    pub parts_limit_hits: usize,
    /// `values` parts over [`super::MAX_VALUES`].
    pub values_limit_hits: usize,
    /// String parts over [`super::MAX_STRING_SIZE`] (messages over
    /// [`super::MAX_MESSAGE_SIZE`]).
    pub string_size_limit_hits: usize,
    /// Signed or encrypted parts nested deeper than [`super::MAX_NESTING`].
    pub nesting_limit_hits: usize,
    /// Why the first refused thing was refused.
    pub first_error: Option<String>,
}

impl Report {
    /// Keep `why` if it is the first reason.
    pub(super) fn note(&mut self, why: impl Into<String>) {
        if self.first_error.is_none() {
            self.first_error = Some(why.into());
        }
    }

    pub(super) fn malformed(&mut self, why: impl Into<String>) {
        self.malformed += 1;
        self.note(why);
    }

    /// Limit hits of every kind.
    pub fn limit_hits(&self) -> usize {
        self.packet_size_limit_hits
            + self.parts_limit_hits
            + self.values_limit_hits
            + self.string_size_limit_hits
            + self.nesting_limit_hits
    }

    /// Everything that was dropped, one per part or value list (the
    /// `parse_errors` of the input).
    pub fn dropped(&self) -> usize {
        self.malformed
            + self.insecure
            + self.bad_signatures
            + self.decrypt_failures
            + self.unknown_types
            + self.limit_hits()
    }
}

/// One value list, as handed to the emitter.
pub struct ValueList<'a> {
    pub host: &'a str,
    pub plugin: &'a str,
    pub plugin_instance: &'a str,
    pub type_: &'a str,
    pub type_instance: &'a str,
    pub time_ns: Option<i64>,
    pub values: &'a [Value],
}
