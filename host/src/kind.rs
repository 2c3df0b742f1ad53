//! The four plugin kinds: one type for the config section a plugin sits in,
//! the WIT world a WASM plugin exports, and the self-metrics it reports.
//! A leaf module: everything else may use it, it uses nothing of graft's.

use std::fmt;

/// Input, processor, aggregator or output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Input,
    Processor,
    Aggregator,
    Output,
}

/// The section name reserved for WASM plugins of every kind:
/// `[[processors.wasm]]`.
pub const WASM: &str = "wasm";

impl Kind {
    /// Every kind, in the order metrics flow through them.
    pub const ALL: [Kind; 4] = [Kind::Input, Kind::Processor, Kind::Aggregator, Kind::Output];

    /// The kind's name, which is also its interface in the WIT package:
    /// `input`, `processor`, `aggregator`, `output`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Input => "input",
            Kind::Processor => "processor",
            Kind::Aggregator => "aggregator",
            Kind::Output => "output",
        }
    }

    /// The config section holding plugins of this kind: `inputs`,
    /// `processors`, `aggregators`, `outputs`.
    pub fn section(&self) -> &'static str {
        match self {
            Kind::Input => "inputs",
            Kind::Processor => "processors",
            Kind::Aggregator => "aggregators",
            Kind::Output => "outputs",
        }
    }

    /// The kind whose section is `name`.
    pub fn from_section(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.section() == name)
    }

    /// The kind named `name` (`input`, ...): a WIT interface, a CLI word.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// `inputs.internal`'s measurement for plugins of this kind, and the
    /// tag naming the plugin in it (Telegraf's names).
    pub fn internal_measurement(&self) -> (&'static str, &'static str) {
        match self {
            Kind::Input => ("internal_gather", "input"),
            Kind::Processor => ("internal_process", "process"),
            Kind::Aggregator => ("internal_aggregate", "aggregator"),
            Kind::Output => ("internal_write", "output"),
        }
    }

    /// `an input`, `a processor`: for messages.
    pub fn with_article(&self) -> &'static str {
        match self {
            Kind::Input => "an input",
            Kind::Processor => "a processor",
            Kind::Aggregator => "an aggregator",
            Kind::Output => "an output",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in Kind::ALL {
            assert_eq!(Kind::from_section(k.section()), Some(k));
            assert_eq!(Kind::from_name(k.as_str()), Some(k));
        }
        assert_eq!(Kind::from_section("input"), None);
    }
}
