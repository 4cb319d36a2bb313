//! Exact decimal strings to integer minor units, without floats.
use anyhow::{bail, Result};

/// `"-12.34"` → `-1234` for `exponent` 2. Accepts an optional sign, digits, and at most
/// `exponent` decimals (extra trailing zeros are allowed, other extra digits are an error).
pub fn parse_minor(text: &str, exponent: u32) -> Result<i64> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && frac.is_empty() {
        bail!("`{text}` is not a decimal amount");
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        bail!("`{text}` is not a decimal amount");
    }
    let exponent = exponent as usize;
    let (kept, dropped) = frac.split_at(frac.len().min(exponent));
    if dropped.bytes().any(|b| b != b'0') {
        bail!("`{text}` has more than {exponent} decimals");
    }
    let mut value: i64 = 0;
    let padding = std::iter::repeat_n(b'0', exponent - kept.len());
    for b in whole.bytes().chain(kept.bytes()).chain(padding) {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(b - b'0')))
            .ok_or_else(|| anyhow::anyhow!("`{text}` is too large"))?;
    }
    Ok(if negative { -value } else { value })
}

/// `-1234` → `"-12.34"` for `exponent` 2.
pub fn format_minor(minor: i64, exponent: u32) -> String {
    let scale = 10u64.pow(exponent);
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    if exponent == 0 {
        return format!("{sign}{abs}");
    }
    format!(
        "{sign}{}.{:0width$}",
        abs / scale,
        abs % scale,
        width = exponent as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly() {
        assert_eq!(parse_minor("-12.34", 2).ok(), Some(-1234));
        assert_eq!(parse_minor("0.10", 2).ok(), Some(10));
        assert_eq!(parse_minor("5", 2).ok(), Some(500));
        assert_eq!(parse_minor("5.1", 2).ok(), Some(510));
        assert_eq!(parse_minor("5.100", 2).ok(), Some(510));
        assert_eq!(parse_minor("-0.01", 2).ok(), Some(-1));
        assert!(parse_minor("5.101", 2).is_err());
        assert!(parse_minor("1e3", 2).is_err());
        assert!(parse_minor("", 2).is_err());
        assert!(parse_minor("-", 2).is_err());
        assert!(parse_minor("99999999999999999999", 2).is_err());
    }

    #[test]
    fn formats_and_round_trips() {
        assert_eq!(format_minor(-1234, 2), "-12.34");
        assert_eq!(format_minor(5, 2), "0.05");
        assert_eq!(format_minor(-5, 0), "-5");
        for v in [-100_001, -1, 0, 7, 12_345] {
            assert_eq!(parse_minor(&format_minor(v, 2), 2).ok(), Some(v));
        }
    }
}
