//! What a metric's values mean over time: Telegraf's value types, which the
//! Prometheus and OpenTelemetry plugins read and write (a counter only goes
//! up, a gauge goes either way).

/// The kind of a metric, as Telegraf's `telegraf.ValueType`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MetricKind {
    /// Nothing is known: the kind of every metric a plugin does not type.
    #[default]
    Untyped = 0,
    /// A value that only goes up (and resets to zero on restart).
    Counter = 1,
    /// A value that can go up and down.
    Gauge = 2,
    /// Quantiles with a count and a sum.
    Summary = 3,
    /// Buckets with a count and a sum.
    Histogram = 4,
}

impl MetricKind {
    /// The kind encoded as `byte` by [`MetricKind::as_byte`], if any.
    pub fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            0 => Self::Untyped,
            1 => Self::Counter,
            2 => Self::Gauge,
            3 => Self::Summary,
            4 => Self::Histogram,
            _ => return None,
        })
    }

    /// One byte that [`MetricKind::from_byte`] reads back.
    pub fn as_byte(self) -> u8 {
        self as u8
    }

    /// The lower-case name Prometheus and Telegraf use (`"untyped"`,
    /// `"counter"`, `"gauge"`, `"summary"`, `"histogram"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Untyped => "untyped",
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Summary => "summary",
            Self::Histogram => "histogram",
        }
    }
}

impl std::fmt::Display for MetricKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
