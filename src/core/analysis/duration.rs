//! Go duration strings (`30s`, `1m30s`, `1.5h`, `300ms`), parsed exactly as Go's
//! `time.ParseDuration`, which Argo Rollouts uses for `interval` and `initialDelay`.

use chrono::TimeDelta;

/// A duration string Go would refuse; the message is Go's (`time: unknown unit "d" in
/// duration "1d"`), which Argo puts after `invalid interval string: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DurationError(String);

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Unit names and their length in nanoseconds, as Go's `time` package knows them.
const UNITS: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("\u{00b5}s", 1_000),
    ("\u{03bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parse a Go duration string into a signed duration.
///
/// # Errors
/// [`DurationError`] with Go's message for an empty string, a missing or unknown unit, a
/// malformed number or an overflow.
pub fn parse_go_duration(text: &str) -> Result<TimeDelta, DurationError> {
    let invalid = || DurationError(format!("time: invalid duration {}", quote(text)));
    let mut s = text;
    let mut neg = false;
    if let Some(rest) = s.strip_prefix('-') {
        neg = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(TimeDelta::zero());
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        let first = s.as_bytes()[0];
        if !(first == b'.' || first.is_ascii_digit()) {
            return Err(invalid());
        }
        // Integer part.
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let int_digits = &s[..int_len];
        s = &s[int_len..];
        let mut int_part: u64 = 0;
        for d in int_digits.bytes() {
            int_part = int_part
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(d - b'0')))
                .ok_or_else(invalid)?;
        }
        // Fraction.
        let mut frac_digits = "";
        let mut has_dot = false;
        if let Some(rest) = s.strip_prefix('.') {
            has_dot = true;
            let len = rest.bytes().take_while(u8::is_ascii_digit).count();
            frac_digits = &rest[..len];
            s = &rest[len..];
        }
        if int_len == 0 && frac_digits.is_empty() {
            // "." or ".s": no digits at all.
            let _ = has_dot;
            return Err(invalid());
        }
        // Unit.
        let unit_len = s
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(s.len(), |(i, _)| i);
        if unit_len == 0 {
            return Err(DurationError(format!(
                "time: missing unit in duration {}",
                quote(text)
            )));
        }
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        let Some(&(_, unit_ns)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(DurationError(format!(
                "time: unknown unit {} in duration {}",
                quote(unit),
                quote(text)
            )));
        };
        let mut value = int_part.checked_mul(unit_ns).ok_or_else(invalid)?;
        if !frac_digits.is_empty() {
            // Fraction of the unit, truncated to nanoseconds like Go.
            let mut scale = 1f64;
            let mut frac = 0f64;
            for d in frac_digits.bytes() {
                scale /= 10.0;
                frac += f64::from(d - b'0') * scale;
            }
            #[allow(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss
            )]
            let extra = (frac * unit_ns as f64) as u64;
            value = value.checked_add(extra).ok_or_else(invalid)?;
        }
        total = total.checked_add(value).ok_or_else(invalid)?;
    }
    let limit = if neg { 1u64 << 63 } else { (1u64 << 63) - 1 };
    if total > limit {
        return Err(invalid());
    }
    #[allow(clippy::cast_possible_wrap)]
    let nanos = if neg {
        (total as i64).wrapping_neg()
    } else {
        total as i64
    };
    Ok(TimeDelta::nanoseconds(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_examples() {
        let ok = |s: &str| parse_go_duration(s).unwrap().num_milliseconds();
        assert_eq!(ok("30s"), 30_000);
        assert_eq!(ok("1m30s"), 90_000);
        assert_eq!(ok("1.5h"), 5_400_000);
        assert_eq!(ok("300ms"), 300);
        assert_eq!(ok("0"), 0);
        assert_eq!(ok("-1s"), -1000);
        assert_eq!(ok(".5s"), 500);
        assert_eq!(
            parse_go_duration("1us").unwrap().num_nanoseconds(),
            Some(1000)
        );
    }

    #[test]
    fn go_errors() {
        let err = |s: &str| parse_go_duration(s).unwrap_err().to_string();
        assert_eq!(err("1d"), r#"time: unknown unit "d" in duration "1d""#);
        assert_eq!(err("1"), r#"time: missing unit in duration "1""#);
        assert_eq!(err(""), r#"time: invalid duration """#);
        assert_eq!(err("abc"), r#"time: invalid duration "abc""#);
        assert_eq!(err("."), r#"time: invalid duration ".""#);
        assert_eq!(err("1s2"), r#"time: missing unit in duration "1s2""#);
        assert_eq!(
            err("9999999999h"),
            r#"time: invalid duration "9999999999h""#
        );
    }
}
