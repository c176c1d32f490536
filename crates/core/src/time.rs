//! UTC time inside, JST for people, and the one place that reads the system clock.
//!
//! Everything stored or compared is UTC ([`Timestamp`]); Japanese Standard Time is a
//! fixed +09:00 offset with no daylight saving, so no time-zone database is needed.
//! Expiry, retention and token lifetimes take their "now" from a [`Clock`] that tests can
//! set ([`ManualClock`]); `clippy.toml` forbids reading the system clock anywhere else.

use chrono::{DateTime, FixedOffset, SecondsFormat, TimeZone, Utc};
use std::fmt;
use std::sync::Mutex;

/// A point in time, always UTC.
pub type Timestamp = DateTime<Utc>;

/// Where "now" comes from.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one sanctioned read of the system clock
    fn now(&self) -> Timestamp {
        Utc::now()
    }
}

/// A clock that only moves when told to: for tests of expiry and retention.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *now += by;
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: Timestamp) {
        *self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Japan Standard Time, UTC+09:00 all year.
pub const JST: FixedOffset = match FixedOffset::east_opt(9 * 3600) {
    Some(offset) => offset,
    None => panic!("+09:00 is a valid offset"), // evaluated at compile time
};

/// RFC 3339 in UTC with millisecond precision and a `Z`: the form for APIs and storage.
pub fn rfc3339(t: Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// How a person in Japan reads a time: `2026-11-24 11:53:37 JST`.
pub fn display_jst(t: Timestamp) -> String {
    format!("{} JST", t.with_timezone(&JST).format("%Y-%m-%d %H:%M:%S"))
}

/// A UTC timestamp from whole milliseconds since the Unix epoch, if representable.
pub fn from_millis(ms: i64) -> Option<Timestamp> {
    Utc.timestamp_millis_opt(ms).single()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jst_is_nine_hours_ahead_across_midnight() {
        let t = from_millis(1_764_000_000_000).unwrap(); // 2025-11-24T16:00:00Z
        assert_eq!(rfc3339(t), "2025-11-24T16:00:00.000Z");
        assert_eq!(display_jst(t), "2025-11-25 01:00:00 JST");
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = from_millis(0).unwrap();
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(chrono::Duration::seconds(90));
        assert_eq!(clock.now(), from_millis(90_000).unwrap());
        clock.set(start);
        assert_eq!(clock.now(), start);
    }
}

/// Serde for a [`Timestamp`] as RFC 3339 UTC with exactly three fractional digits and a
/// `Z` (`2026-11-24T02:53:37.000Z`): one spelling per instant, for encodings that must be
/// canonical. Use with `#[serde(with = "mamori_core::time::rfc3339_ms")]`.
pub mod rfc3339_ms {
    use super::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    /// Writes the canonical form.
    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339(*t))
    }

    /// Reads only the canonical form: any other spelling of a time is refused.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let t = chrono::DateTime::parse_from_rfc3339(&text)
            .map_err(|e| D::Error::custom(format!("{text:?} is not an RFC 3339 time: {e}")))?
            .with_timezone(&chrono::Utc);
        if super::rfc3339(t) != text {
            return Err(D::Error::custom(format!(
                "{text:?} is not in the canonical form YYYY-MM-DDTHH:MM:SS.mmmZ"
            )));
        }
        Ok(t)
    }
}

/// `t` truncated to whole milliseconds, the precision every stored time keeps.
pub fn truncate_ms(t: Timestamp) -> Timestamp {
    from_millis(t.timestamp_millis()).unwrap_or(t)
}
