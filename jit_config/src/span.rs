//! A duration in a configuration file, written as `"30s"`, `"5m"` or `"1h30m"`.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub Duration);

impl Span {
    /// Whole seconds, for arithmetic with Unix times.
    pub fn secs(self) -> i64 {
        i64::try_from(self.0.as_secs()).unwrap_or(i64::MAX)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map(Span).map_err(|e| {
            serde::de::Error::custom(format!(
                "{s:?} is not a duration ({e}); write e.g. \"30s\", \"5m\", \"1h\""
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct T {
        d: Span,
    }

    #[test]
    fn reads_humantime_durations() {
        let t: T = toml::from_str("d = \"1h30m\"").unwrap();
        assert_eq!(t.d, Span(Duration::from_secs(5400)));
        assert_eq!(t.d.secs(), 5400);
    }

    #[test]
    fn a_bad_duration_says_what_to_write() {
        let err = toml::from_str::<T>("d = \"soon\"").unwrap_err().to_string();
        assert!(err.contains("\"soon\" is not a duration"), "{err}");
        assert!(err.contains("write e.g. \"30s\""), "{err}");
        // A number without a unit is not silently taken as seconds.
        assert!(toml::from_str::<T>("d = \"30\"").is_err());
        assert!(toml::from_str::<T>("d = 30").is_err());
    }
}
