//! The checked values the configuration is made of, as serde types: a count
//! of metrics that is positive and bounded, a duration that must not be
//! zero. Durations and sizes in general are [`graft_core::units`]'.

use std::fmt;
use std::time::Duration;

use graft_core::units::DurationValue;
use serde::de::{self, Deserializer, Visitor};

/// The largest count (`metric_batch_size`, `metric_buffer_limit`) graft
/// accepts: a billion metrics.
pub const MAX_COUNT: usize = 1_000_000_000;

/// A number of metrics: from 1 to [`MAX_COUNT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Count(pub usize);

impl<'de> serde::Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CountVisitor)
    }
}

struct CountVisitor;

impl Visitor<'_> for CountVisitor {
    type Value = Count;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a positive whole number")
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Count, E> {
        match u64::try_from(n) {
            Ok(n) => self.visit_u64(n),
            Err(_) => Err(E::custom(format!(
                "expected a positive whole number, found {n}"
            ))),
        }
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Count, E> {
        match n {
            0 => Err(E::custom("expected a positive whole number, found 0")),
            n if n <= MAX_COUNT as u64 => Ok(Count(n as usize)),
            n => Err(E::custom(format!(
                "{n} is too large: the most graft accepts is {MAX_COUNT}"
            ))),
        }
    }
}

/// A duration that must be longer than zero (an interval, a period).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PositiveDuration(pub Duration);

impl<'de> serde::Deserialize<'de> for PositiveDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let DurationValue(d) = DurationValue::deserialize(d)?;
        if d.is_zero() {
            return Err(de::Error::custom("must be greater than zero"));
        }
        Ok(PositiveDuration(d))
    }
}

/// A whole number above zero (`limits.fuel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PositiveInteger(pub u64);

impl<'de> serde::Deserialize<'de> for PositiveInteger {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match i64::deserialize(d)? {
            n if n > 0 => Ok(PositiveInteger(n as u64)),
            n => Err(de::Error::custom(format!(
                "expected a positive integer, found {n}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct T {
        c: Option<Count>,
        p: Option<PositiveDuration>,
        f: Option<PositiveInteger>,
    }

    fn read(text: &str) -> Result<T, String> {
        toml::from_str(text).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn counts_are_positive_and_bounded() {
        assert_eq!(read("c = 5").unwrap().c, Some(Count(5)));
        assert!(read("c = 0").unwrap_err().contains("positive"));
        assert!(read("c = -3").unwrap_err().contains("positive"));
        assert!(
            read("c = 9223372036854775807")
                .unwrap_err()
                .contains("too large")
        );
        assert!(read("c = \"10\"").is_err());
    }

    #[test]
    fn positive_durations_refuse_zero() {
        assert_eq!(
            read("p = \"2s\"").unwrap().p,
            Some(PositiveDuration(Duration::from_secs(2)))
        );
        assert!(
            read("p = \"0s\"")
                .unwrap_err()
                .contains("greater than zero")
        );
        assert!(read("p = \"366d\"").unwrap_err().contains("too long"));
        assert!(read("f = 0").unwrap_err().contains("positive"));
        assert_eq!(read("f = 7").unwrap().f, Some(PositiveInteger(7)));
    }
}
