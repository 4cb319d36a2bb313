//! A calendar date as the API takes it: `YYYY-MM-DD` with a four-digit year from 1000 to 9999.
//! chrono alone also reads `26-11-01` (the year 26) and `+10000-01-01`, dates no one means, that
//! sort wrongly as text and that ledger-cli and hledger cannot read back from an export.
use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub const FIRST_YEAR: i32 = 1000;
pub const LAST_YEAR: i32 = 9999;

const EXPECTED: &str = "a date written YYYY-MM-DD, in the years 1000 to 9999";

/// A date read from a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Day(pub NaiveDate);

impl Day {
    pub fn parse(text: &str) -> Result<Day, String> {
        let b = text.as_bytes();
        let shaped = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        if !shaped {
            return Err(format!("must be {EXPECTED}"));
        }
        // Written right, but 2026-02-30 or month 13 is no day at all: say so, not "the format".
        let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map_err(|_| format!("{text} is not a day of the calendar"))?;
        check(date)?;
        Ok(Day(date))
    }
}

/// Whether a date (from a file, say) lies in the years the API takes.
pub fn check(date: NaiveDate) -> Result<(), String> {
    if (FIRST_YEAR..=LAST_YEAR).contains(&date.year()) {
        Ok(())
    } else {
        Err(format!("{date} is not {EXPECTED}"))
    }
}

impl From<Day> for NaiveDate {
    fn from(d: Day) -> NaiveDate {
        d.0
    }
}

impl Serialize for Day {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Day;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Day, E> {
                Day::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_four_digit_years_in_range() {
        assert_eq!(
            Day::parse("2026-11-21"),
            Ok(Day(NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()))
        );
        for bad in [
            "26-11-01",
            "+10000-01-01",
            "-0001-01-01",
            "0999-12-31",
            "2026-02-30",
            "2026-1-01",
            "2026/11/01",
            " 2026-11-01",
            "",
        ] {
            assert!(Day::parse(bad).is_err(), "{bad}");
        }
        for no_such_day in ["2026-02-30", "2026-13-01", "2026-00-10"] {
            assert_eq!(
                Day::parse(no_such_day).unwrap_err(),
                format!("{no_such_day} is not a day of the calendar")
            );
        }
        let d: Result<Day, _> = serde_json::from_str("\"26-11-01\"");
        assert!(d.unwrap_err().to_string().contains("YYYY-MM-DD"));
        assert!(check(NaiveDate::from_ymd_opt(26, 11, 1).unwrap()).is_err());
    }
}
