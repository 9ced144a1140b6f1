//! Durations written Go style (`30s`, `5m`, `1h30m`) and UTC timestamps written as
//! RFC 3339, without a clock: the caller passes `now`.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A Go-style duration: one or more `<number><unit>` with units `ms`, `s`, `m`, `h`
/// (`90s`, `1m30s`, `1.5h`). Keeps the text as written for display.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GoDuration {
    text: String,
    millis: u64,
}

impl GoDuration {
    /// Parse a Go-style duration.
    ///
    /// # Errors
    /// A message naming the text when it is empty, negative, has no or an unknown unit,
    /// or overflows.
    pub fn parse(text: &str) -> Result<GoDuration, String> {
        let bad = || {
            format!("invalid duration {text:?}: expected e.g. 30s, 5m, 1h30m (units ms, s, m, h)")
        };
        let s = text.trim();
        if s.is_empty() {
            return Err(bad());
        }
        if s == "0" {
            return Ok(GoDuration {
                text: text.to_owned(),
                millis: 0,
            });
        }
        let mut rest = s;
        let mut total: f64 = 0.0;
        while !rest.is_empty() {
            let num_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(bad)?;
            if num_len == 0 {
                return Err(bad());
            }
            let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
            rest = &rest[num_len..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let factor = match &rest[..unit_len] {
                "ms" => 1.0,
                "s" => 1_000.0,
                "m" => 60_000.0,
                "h" => 3_600_000.0,
                _ => return Err(bad()),
            };
            rest = &rest[unit_len..];
            total += value * factor;
        }
        if !total.is_finite() || total > 1e15 {
            return Err(bad());
        }
        Ok(GoDuration {
            text: text.to_owned(),
            millis: total.round() as u64,
        })
    }

    /// A duration of whole seconds, written `<n>s`.
    pub fn from_secs(secs: u64) -> GoDuration {
        GoDuration {
            text: format!("{secs}s"),
            millis: secs.saturating_mul(1000),
        }
    }

    /// The duration in milliseconds.
    pub fn as_millis(&self) -> u64 {
        self.millis
    }

    /// The duration in whole seconds, rounded up (a 500ms pause still waits one second).
    pub fn as_secs_ceil(&self) -> u64 {
        self.millis.div_ceil(1000)
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl TryFrom<String> for GoDuration {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        GoDuration::parse(&s)
    }
}

impl From<GoDuration> for String {
    fn from(d: GoDuration) -> String {
        d.text
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl JsonSchema for GoDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "GoDuration".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$|^0$",
        })
    }
}

/// A UTC instant with one-second precision, written as RFC 3339 (`2026-11-25T17:08:27Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Timestamp(i64);

impl Timestamp {
    /// The instant `secs` seconds after the Unix epoch.
    pub fn from_unix(secs: i64) -> Timestamp {
        Timestamp(secs)
    }

    /// Seconds since the Unix epoch.
    pub fn unix(self) -> i64 {
        self.0
    }

    /// This instant plus `secs` seconds.
    pub fn plus_secs(self, secs: u64) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(i64::try_from(secs).unwrap_or(i64::MAX)),
        )
    }

    /// Seconds from `earlier` to `self` (0 when `earlier` is later).
    pub fn secs_since(self, earlier: Timestamp) -> u64 {
        u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0)
    }

    /// Parse RFC 3339 in UTC (`Z` or `+00:00`), with optional fractional seconds
    /// (dropped).
    ///
    /// # Errors
    /// A message naming the text when it is not such a timestamp.
    pub fn parse(text: &str) -> Result<Timestamp, String> {
        let bad = || {
            format!("invalid timestamp {text:?}: expected RFC 3339 UTC, e.g. 2026-01-31T12:00:00Z")
        };
        let b = text.as_bytes();
        if b.len() < 20
            || b[4] != b'-'
            || b[7] != b'-'
            || !matches!(b[10], b'T' | b't')
            || b[13] != b':'
            || b[16] != b':'
        {
            return Err(bad());
        }
        let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
            text.get(r)
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(bad)
        };
        let (y, mo, d, h, mi, s) = (
            num(0..4)?,
            num(5..7)?,
            num(8..10)?,
            num(11..13)?,
            num(14..16)?,
            num(17..19)?,
        );
        let mut rest = &text[19..];
        if let Some(frac) = rest.strip_prefix('.') {
            let digits = frac
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(frac.len());
            rest = &frac[digits..];
        }
        if !matches!(rest, "Z" | "z" | "+00:00" | "-00:00") {
            return Err(bad());
        }
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
            return Err(bad());
        }
        Ok(Timestamp(
            days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s,
        ))
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            (secs / 60) % 60,
            secs % 60
        )
    }
}

impl TryFrom<String> for Timestamp {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Timestamp::parse(&s)
    }
}

impl From<Timestamp> for String {
    fn from(t: Timestamp) -> String {
        t.to_string()
    }
}

impl JsonSchema for Timestamp {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "date-time",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(GoDuration::parse("1m30s").unwrap().as_millis(), 90_000);
        assert_eq!(GoDuration::parse("500ms").unwrap().as_secs_ceil(), 1);
        assert_eq!(GoDuration::parse("1.5h").unwrap().as_millis(), 5_400_000);
        for bad in ["", "5", "m", "5x", "-1s", "1m 2s"] {
            assert!(GoDuration::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn timestamps_round_trip() {
        for text in [
            "1970-01-01T00:00:00Z",
            "2026-11-25T17:08:27Z",
            "2000-02-29T23:59:59Z",
        ] {
            let t = Timestamp::parse(text).unwrap();
            assert_eq!(t.to_string(), text);
        }
        assert_eq!(
            Timestamp::parse("2026-11-25T17:08:27Z").unwrap().unix(),
            1_795_626_507
        );
        assert_eq!(
            Timestamp::parse("1970-01-01T00:01:00.25Z").unwrap().unix(),
            60
        );
        assert!(Timestamp::parse("2026-13-01T00:00:00Z").is_err());
    }
}
