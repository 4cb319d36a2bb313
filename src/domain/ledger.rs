//! Ledger vocabulary: account and category kinds, where a transaction came from, tags, and exact
//! currency conversion with decimal rates.
use std::fmt;

use serde::{Deserialize, Serialize};

use super::Currency;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [&'static str] = &[$($text),+];

            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(raw: &str) -> Result<Self, String> {
                match raw {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!("`{other}` is not one of: {}", Self::ALL.join(", "))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// What an account is.
    AccountKind {
        Cash => "cash",
        Checking => "checking",
        Savings => "savings",
        CreditCard => "credit_card",
        Loan => "loan",
        Investment => "investment",
        Wallet => "wallet",
    }
);

string_enum!(
    /// What a category counts as in reports.
    CategoryKind {
        Expense => "expense",
        Income => "income",
        Transfer => "transfer",
    }
);

string_enum!(
    /// Who chose a transaction's category.
    CategorySource {
        User => "user",
        Rule => "rule",
        MerchantMemory => "merchant_memory",
        Model => "model",
        None => "none",
    }
);

string_enum!(
    /// How a transaction entered the ledger.
    TxnSource {
        Api => "api",
        Import => "import",
        Sms => "sms",
        Recurring => "recurring",
        Demo => "demo",
    }
);

/// A short free-text name (account, category, …): trimmed, 1..=max characters, no control chars.
pub fn parse_name(raw: &str, max_chars: usize) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.chars().count() > max_chars {
        return Err(format!("must be at most {max_chars} characters"));
    }
    if name.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        return Err("must not contain control characters".into());
    }
    Ok(name.to_string())
}

/// Unicode's bidirectional embedding, override and isolate marks (U+202A–U+202E, U+2066–U+2069):
/// invisible, and able to make a text read differently from what it holds ("Trojan Source").
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Free text that may be empty (description, notes): at most `max_chars`, no control characters
/// other than newlines and tabs.
pub fn parse_text(raw: &str, max_chars: usize) -> Result<String, String> {
    if raw.chars().count() > max_chars {
        return Err(format!("must be at most {max_chars} characters"));
    }
    if raw
        .chars()
        .any(|c| (c.is_control() && c != '\n' && c != '\t') || is_bidi_control(c))
    {
        return Err("must not contain control characters".into());
    }
    Ok(raw.trim().to_string())
}

/// Tags: each trimmed, 1..=40 characters, no commas or quotes; at most 20; duplicates removed.
pub fn parse_tags(raw: &[String]) -> Result<Vec<String>, String> {
    if raw.len() > 20 {
        return Err("at most 20 tags".into());
    }
    let mut tags: Vec<String> = Vec::with_capacity(raw.len());
    for t in raw {
        let t = t.trim();
        if t.is_empty() || t.chars().count() > 40 {
            return Err("each tag must have 1 to 40 characters".into());
        }
        if t.chars()
            .any(|c| c.is_control() || c == ',' || c == '"' || c == '\\')
        {
            return Err(format!(
                "tag `{t}` contains a comma, quote, backslash or control character"
            ));
        }
        if !tags.iter().any(|x| x == t) {
            tags.push(t.to_string());
        }
    }
    Ok(tags)
}

/// An exchange rate as an exact decimal: `1 base = digits / 10^scale quote`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    digits: i128,
    scale: u32,
}

impl Rate {
    pub const ONE: Rate = Rate {
        digits: 1,
        scale: 0,
    };

    /// A positive decimal string with at most 12 decimals, e.g. `1.0842` or `157.3`.
    pub fn parse(raw: &str) -> Result<Rate, String> {
        let raw = raw.trim();
        let (whole, fraction) = raw.split_once('.').unwrap_or((raw, ""));
        let ok = !whole.is_empty()
            && whole.bytes().all(|b| b.is_ascii_digit())
            && fraction.bytes().all(|b| b.is_ascii_digit())
            && !(raw.contains('.') && fraction.is_empty());
        if !ok {
            return Err(format!("`{raw}` is not a decimal rate such as 1.0842"));
        }
        let fraction = fraction.trim_end_matches('0');
        if fraction.len() > 12 || whole.len() > 12 {
            return Err("a rate has at most 12 digits before and 12 after the point".into());
        }
        let digits: i128 = format!("{whole}{fraction}")
            .parse()
            .map_err(|_| "is not a number".to_string())?;
        if digits == 0 {
            return Err("a rate must be greater than zero".into());
        }
        Ok(Rate {
            digits,
            scale: fraction.len() as u32,
        })
    }

    /// Convert `minor` units of `from` into minor units of `to`, rounding half to even.
    pub fn convert(&self, minor: i64, from: Currency, to: Currency) -> Option<i64> {
        // value_to = minor * rate * 10^(exp_to - exp_from)
        let exp_diff = i32::from(to.exponent()) - i32::from(from.exponent());
        let mut numerator = i128::from(minor).checked_mul(self.digits)?;
        let mut denominator: i128 = 10i128.checked_pow(self.scale)?;
        if exp_diff >= 0 {
            numerator = numerator.checked_mul(10i128.checked_pow(exp_diff as u32)?)?;
        } else {
            denominator = denominator.checked_mul(10i128.checked_pow((-exp_diff) as u32)?)?;
        }
        i64::try_from(div_round_half_even(numerator, denominator)).ok()
    }

    /// Convert with the inverse of this rate (`minor` units of the quote currency `from` into the
    /// base currency `to`), rounding half to even.
    pub fn convert_inverse(&self, minor: i64, from: Currency, to: Currency) -> Option<i64> {
        let exp_diff = i32::from(to.exponent()) - i32::from(from.exponent());
        let mut numerator = i128::from(minor).checked_mul(10i128.checked_pow(self.scale)?)?;
        let mut denominator = self.digits;
        if exp_diff >= 0 {
            numerator = numerator.checked_mul(10i128.checked_pow(exp_diff as u32)?)?;
        } else {
            denominator = denominator.checked_mul(10i128.checked_pow((-exp_diff) as u32)?)?;
        }
        i64::try_from(div_round_half_even(numerator, denominator)).ok()
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scale == 0 {
            return write!(f, "{}", self.digits);
        }
        let scale = 10i128.pow(self.scale);
        write!(
            f,
            "{}.{:0width$}",
            self.digits / scale,
            self.digits % scale,
            width = self.scale as usize
        )
    }
}

/// `n / d` for d > 0, rounded to the nearest integer, ties to even.
pub fn div_round_half_even(n: i128, d: i128) -> i128 {
    let q = n.div_euclid(d);
    let r = n.rem_euclid(d);
    match (2 * r).cmp(&d) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => {
            if q % 2 == 0 {
                q
            } else {
                q + 1
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    #[test]
    fn texts_refuse_invisible_direction_marks() {
        assert!(parse_text("Coffee \u{202E}gnp.exe", 100).is_err());
        assert!(parse_name("Rent\u{2066}", 100).is_err());
        assert_eq!(
            parse_text(" Café, two lines\nok ", 100).unwrap(),
            "Café, two lines\nok"
        );
        assert_eq!(parse_name("مقهى", 100).unwrap(), "مقهى");
    }

    #[test]
    fn rates_are_exact() {
        let r = Rate::parse("1.0842").unwrap();
        assert_eq!(r.to_string(), "1.0842");
        // 100.00 EUR -> 108.42 USD
        assert_eq!(r.convert(10_000, c("EUR"), c("USD")), Some(10_842));
        // 1000 JPY at 0.0063 EUR/JPY -> 6.30 EUR
        assert_eq!(
            Rate::parse("0.0063")
                .unwrap()
                .convert(1000, c("JPY"), c("EUR")),
            Some(630)
        );
        // 1.00 USD at 157.3 JPY -> 157 JPY (157.3 rounds down)
        assert_eq!(
            Rate::parse("157.3")
                .unwrap()
                .convert(100, c("USD"), c("JPY")),
            Some(157)
        );
        assert_eq!(
            Rate::parse("157.5")
                .unwrap()
                .convert(-100, c("USD"), c("JPY")),
            Some(-158)
        );
        // 108.42 USD back to EUR with the same EUR->USD rate
        assert_eq!(r.convert_inverse(10_842, c("USD"), c("EUR")), Some(10_000));
        assert!(Rate::parse("0").is_err());
        assert!(Rate::parse("-1").is_err());
        assert!(Rate::parse("1e3").is_err());
    }

    #[test]
    fn half_even() {
        assert_eq!(div_round_half_even(5, 2), 2);
        assert_eq!(div_round_half_even(7, 2), 4);
        assert_eq!(div_round_half_even(-5, 2), -2);
        assert_eq!(div_round_half_even(-7, 2), -4);
        assert_eq!(div_round_half_even(10, 3), 3);
    }

    #[test]
    fn tags_are_cleaned() {
        assert_eq!(
            parse_tags(&[" a ".into(), "a".into(), "b".into()]).unwrap(),
            vec!["a", "b"]
        );
        assert!(parse_tags(&["x,y".into()]).is_err());
    }
}
