//! Go `time.ParseDuration` (the duration syntax of Argo's `rangeQuery.step` and of the
//! `duration("1h")` calls in `rangeQuery.start`/`end`), with Go's error texts.

/// Nanoseconds per unit, as Go spells the units.
const UNITS: &[(&str, f64)] = &[
    ("ns", 1.0),
    ("us", 1e3),
    ("µs", 1e3),
    ("μs", 1e3),
    ("ms", 1e6),
    ("s", 1e9),
    ("m", 60e9),
    ("h", 3600e9),
];

/// A duration that failed to parse; the text is Go's (`time: invalid duration "??"`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DurationError(pub String);

/// Parse a Go duration (`1h30m`, `-1.5s`, `0`) into signed seconds.
///
/// # Errors
/// [`DurationError`] with Go's message for anything `time.ParseDuration` rejects.
pub fn parse_go_duration(text: &str) -> Result<f64, DurationError> {
    let invalid = || DurationError(format!("time: invalid duration \"{text}\""));
    let mut s = text;
    let mut sign = 1.0;
    if let Some(rest) = s.strip_prefix('-') {
        sign = -1.0;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0.0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total_ns = 0.0;
    while !s.is_empty() {
        let num_len = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let num = &s[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(invalid());
        }
        let value: f64 = num.parse().map_err(|_| invalid())?;
        s = &s[num_len..];
        let unit_len = s
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(s.len());
        let unit = &s[..unit_len];
        if unit.is_empty() {
            return Err(DurationError(format!(
                "time: missing unit in duration \"{text}\""
            )));
        }
        let Some((_, factor)) = UNITS.iter().find(|(u, _)| *u == unit) else {
            return Err(DurationError(format!(
                "time: unknown unit \"{unit}\" in duration \"{text}\""
            )));
        };
        total_ns += value * factor;
        s = &s[unit_len..];
    }
    Ok(sign * total_ns / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_go_duration("1h30m"), Ok(5400.0));
        assert_eq!(parse_go_duration("-1.5s"), Ok(-1.5));
        assert_eq!(parse_go_duration("250ms"), Ok(0.25));
        assert_eq!(parse_go_duration("0"), Ok(0.0));
        assert_eq!(
            parse_go_duration("??").unwrap_err().0,
            "time: invalid duration \"??\""
        );
        assert_eq!(
            parse_go_duration("1").unwrap_err().0,
            "time: missing unit in duration \"1\""
        );
        assert_eq!(
            parse_go_duration("1d").unwrap_err().0,
            "time: unknown unit \"d\" in duration \"1d\""
        );
    }
}
