//! Money: `i64` minor units plus a currency, never a float. In JSON an amount is a decimal string
//! (`"-12.50"`); a JSON number, or more decimals than the currency has, is refused with a message
//! saying so.
use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Currency;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("must be a decimal string such as \"-12.50\"")]
    Malformed,
    #[error("has {found} decimals but {currency} has {allowed}")]
    TooManyDecimals {
        found: usize,
        allowed: u8,
        currency: &'static str,
    },
    #[error("is too large")]
    Overflow,
    #[error("is too large: amounts go up to {max} either way")]
    TooLarge { max: String },
}

/// The largest amount anyone can enter, and the largest balance an account can reach, in minor
/// units: 10^15 − 1 (9999999999999.99 in a two-decimal currency, 999999999999999 yen). Many
/// such amounts still add up far inside an `i64`, so sums cannot overflow.
pub const MAX_MINOR: i64 = 999_999_999_999_999;

/// An amount someone entered (a transaction, an opening balance, a budget limit…): like
/// [`parse_minor`], and within ±[`MAX_MINOR`].
pub fn parse_amount(text: &str, currency: Currency) -> Result<i64, MoneyError> {
    let minor = parse_minor(text, currency)?;
    check_amount(minor, currency)?;
    Ok(minor)
}

/// Whether minor units from elsewhere (an imported file, a backup) are within ±[`MAX_MINOR`].
pub fn check_amount(minor: i64, currency: Currency) -> Result<(), MoneyError> {
    if minor.checked_abs().is_some_and(|m| m <= MAX_MINOR) {
        Ok(())
    } else {
        Err(MoneyError::TooLarge {
            max: format_minor(MAX_MINOR, currency.exponent()),
        })
    }
}

/// Parse a canonical decimal string (`-12.5`, `12.50`, `+3`, `0.125`) into minor units of a
/// currency with `exponent` decimals. No exponents, no separators, no spaces.
pub fn parse_minor(text: &str, currency: Currency) -> Result<i64, MoneyError> {
    let exponent = currency.exponent();
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (whole, fraction) = match digits.split_once('.') {
        Some((w, f)) => (w, f),
        None => (digits, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty())
        || !all_digits(whole)
        || !all_digits(fraction)
        || (digits.contains('.') && fraction.is_empty())
        || (whole.is_empty() && !digits.starts_with('.'))
    {
        return Err(MoneyError::Malformed);
    }
    // Trailing zeros beyond the exponent carry no value ("12.500" is 12.50 in EUR).
    let significant = fraction.trim_end_matches('0');
    if significant.len() > usize::from(exponent) {
        return Err(MoneyError::TooManyDecimals {
            found: fraction.len(),
            allowed: exponent,
            currency: currency.code(),
        });
    }
    let mut minor: i64 = 0;
    for b in whole.bytes() {
        minor = minor
            .checked_mul(10)
            .and_then(|m| m.checked_add(i64::from(b - b'0')))
            .ok_or(MoneyError::Overflow)?;
    }
    let mut frac_digits = significant.bytes();
    for _ in 0..exponent {
        let d = frac_digits.next().map_or(0, |b| i64::from(b - b'0'));
        minor = minor
            .checked_mul(10)
            .and_then(|m| m.checked_add(d))
            .ok_or(MoneyError::Overflow)?;
    }
    Ok(if negative { -minor } else { minor })
}

/// A decimal bound (`min`/`max` filters) in minor units of `currency`, rounded up (`ceil`) or
/// down so that "at least 12.5" means at least 13 JPY.
pub fn parse_bound(text: &str, currency: Currency, ceil: bool) -> Result<i64, MoneyError> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
        || fraction.len() > 12
        || whole.len() > 24
    {
        return Err(MoneyError::Malformed);
    }
    let fraction = fraction.trim_end_matches('0');
    let value: i128 = format!("0{whole}{fraction}")
        .parse()
        .map_err(|_| MoneyError::Malformed)?;
    let value = if negative { -value } else { value };
    let exp = i32::from(currency.exponent());
    let scale = fraction.len() as i32;
    let minor = if scale <= exp {
        value * 10i128.pow((exp - scale) as u32)
    } else {
        let d = 10i128.pow((scale - exp) as u32);
        if ceil {
            -(-value).div_euclid(d)
        } else {
            value.div_euclid(d)
        }
    };
    // Beyond any amount there is: as good as the largest one.
    Ok(i64::try_from(minor).unwrap_or(if minor < 0 { i64::MIN } else { i64::MAX }))
}

/// Minor units as a decimal string with exactly the currency's decimals: `-1250` EUR → `"-12.50"`.
pub fn format_minor(minor: i64, exponent: u8) -> String {
    let negative = minor < 0;
    let abs = minor.unsigned_abs();
    if exponent == 0 {
        return format!("{}{abs}", if negative { "-" } else { "" });
    }
    let scale = 10u64.pow(u32::from(exponent));
    format!(
        "{}{}.{:0width$}",
        if negative { "-" } else { "" },
        abs / scale,
        abs % scale,
        width = usize::from(exponent)
    )
}

/// An amount with its currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Money { minor, currency }
    }

    pub fn parse(text: &str, currency: Currency) -> Result<Money, MoneyError> {
        parse_minor(text, currency).map(|minor| Money { minor, currency })
    }

    pub fn checked_add(self, other: i64) -> Option<Money> {
        self.minor
            .checked_add(other)
            .map(|minor| Money { minor, ..self })
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_minor(self.minor, self.currency.exponent()))
    }
}

/// An amount as it arrives in JSON: it must be a string. The currency is known only later (from
/// the account), so parsing to minor units happens then, with [`parse_minor`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecimalString(pub String);

impl<'de> Deserialize<'de> for DecimalString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DecimalString;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a decimal string such as \"-12.50\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DecimalString, E> {
                Ok(DecimalString(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<DecimalString, E> {
                Err(E::custom(NUMBER_REFUSED))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<DecimalString, E> {
                Err(E::custom(NUMBER_REFUSED))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<DecimalString, E> {
                Err(E::custom(NUMBER_REFUSED))
            }
        }
        d.deserialize_any(V)
    }
}

const NUMBER_REFUSED: &str =
    "must be a JSON string such as \"-12.50\", not a number (numbers lose cents)";

impl Serialize for DecimalString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    #[test]
    fn parses_by_the_currency_exponent() {
        assert_eq!(parse_minor("-12.50", cur("EUR")), Ok(-1250));
        assert_eq!(
            parse_amount("-9999999999999.99", cur("EUR")),
            Ok(-MAX_MINOR)
        );
        assert_eq!(
            parse_amount("10000000000000", cur("EUR")),
            Err(MoneyError::TooLarge {
                max: "9999999999999.99".into()
            })
        );
        assert!(parse_amount("1000000000000000", cur("JPY")).is_err());
        assert!(parse_amount("999999999999.999", cur("BHD")).is_ok());
        assert_eq!(parse_minor("12.5", cur("EUR")), Ok(1250));
        assert_eq!(parse_minor("+3", cur("USD")), Ok(300));
        assert_eq!(parse_minor("1500", cur("JPY")), Ok(1500));
        assert_eq!(parse_minor("1.234", cur("BHD")), Ok(1234));
        assert_eq!(parse_minor("0.10", cur("EUR")), Ok(10));
        assert_eq!(parse_minor(".5", cur("EUR")), Ok(50));
        assert_eq!(parse_minor("12.500", cur("EUR")), Ok(1250));
        assert_eq!(parse_minor("-0", cur("EUR")), Ok(0));
    }

    #[test]
    fn refuses_what_is_not_exact() {
        assert!(matches!(
            parse_minor("12.345", cur("EUR")),
            Err(MoneyError::TooManyDecimals { allowed: 2, .. })
        ));
        assert!(matches!(
            parse_minor("1.5", cur("JPY")),
            Err(MoneyError::TooManyDecimals { allowed: 0, .. })
        ));
        for bad in [
            "", "-", ".", "1.", "1e3", "1,50", " 1", "1 ", "--1", "abc", "1.2.3", "+-1", "0x10",
            "NaN",
        ] {
            assert_eq!(
                parse_minor(bad, cur("EUR")),
                Err(MoneyError::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_minor("99999999999999999999", cur("EUR")),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn formats_with_exactly_the_currency_decimals() {
        assert_eq!(format_minor(-1250, 2), "-12.50");
        assert_eq!(format_minor(5, 2), "0.05");
        assert_eq!(format_minor(-5, 3), "-0.005");
        assert_eq!(format_minor(1500, 0), "1500");
        assert_eq!(format_minor(i64::MIN, 2), "-92233720368547758.08");
    }

    #[test]
    fn round_trips() {
        for minor in [0, 1, -1, 99, -100, 123_456_789, i64::MAX, i64::MIN + 1] {
            for code in ["JPY", "EUR", "BHD"] {
                let c = cur(code);
                assert_eq!(
                    parse_minor(&format_minor(minor, c.exponent()), c),
                    Ok(minor)
                );
            }
        }
    }

    #[test]
    fn bounds_round_outward() {
        assert_eq!(parse_bound("12.5", cur("JPY"), true), Ok(13));
        assert_eq!(parse_bound("12.5", cur("JPY"), false), Ok(12));
        assert_eq!(parse_bound("-12.5", cur("JPY"), true), Ok(-12));
        assert_eq!(parse_bound("-12.5", cur("JPY"), false), Ok(-13));
        assert_eq!(parse_bound("12.5", cur("EUR"), true), Ok(1250));
        assert!(parse_bound("1e5", cur("EUR"), true).is_err());
        // Beyond any amount: as good as the largest (a filter that matches nothing).
        assert_eq!(
            parse_bound("92233720368547758.08", cur("EUR"), true),
            Ok(i64::MAX)
        );
        assert_eq!(
            parse_bound("-1000000000000000000000", cur("BHD"), false),
            Ok(i64::MIN)
        );
    }

    #[test]
    fn json_numbers_are_refused() {
        let err = serde_json::from_str::<DecimalString>("12.5").unwrap_err();
        assert!(err.to_string().contains("not a number"), "{err}");
        assert_eq!(
            serde_json::from_str::<DecimalString>("\"12.5\"").unwrap(),
            DecimalString("12.5".into())
        );
    }

    proptest::proptest! {
        /// Any text is either an amount or an error; never a panic.
        #[test]
        fn parsing_never_panics(text in "\\PC{0,40}", code in "(USD|JPY|BHD|EUR)") {
            let c = cur(&code);
            let _ = parse_minor(&text, c);
            let _ = parse_bound(&text, c, true);
            let _ = parse_bound(&text, c, false);
        }

        /// Decimal strings of the currency's precision round-trip exactly.
        #[test]
        fn amounts_round_trip(minor in -(1i64 << 52)..(1i64 << 52), code in "(USD|JPY|BHD)") {
            let c = cur(&code);
            let text = format_minor(minor, c.exponent());
            proptest::prop_assert_eq!(parse_minor(&text, c), Ok(minor));
        }
    }
}
