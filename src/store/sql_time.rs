//! Dates and times for the writer's bulk inserts. SQLite stores them as text; diesel writes that
//! text through chrono's `strftime`-style formatter, which was 11 % of the writer's time in a
//! 1M-row import (benchmarks, session 9). These newtypes write the same text directly. PostgreSQL
//! takes chrono's own binary encoding, unchanged.
use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use diesel::expression::AsExpression;
use diesel::pg::Pg;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{Date, Timestamp};
use diesel::sqlite::Sqlite;

/// A calendar date bound as diesel's `Date`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression)]
#[diesel(sql_type = Date)]
pub struct SqlDate(pub NaiveDate);

/// A date and time bound as diesel's `Timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression)]
#[diesel(sql_type = Timestamp)]
pub struct SqlTimestamp(pub NaiveDateTime);

fn push_digits(out: &mut String, value: u32, width: u32) {
    let mut divisor = 10u32.pow(width - 1);
    while divisor > 0 {
        out.push(char::from(b'0' + ((value / divisor) % 10) as u8));
        divisor /= 10;
    }
}

/// `date` as diesel writes it for SQLite (`%F`: `2026-11-21`).
pub fn date_text(date: NaiveDate) -> String {
    let mut out = String::with_capacity(29);
    push_date(&mut out, date);
    out
}

fn push_date(out: &mut String, date: NaiveDate) {
    match u32::try_from(date.year()) {
        Ok(year) if year <= 9999 => {
            push_digits(out, year, 4);
            out.push('-');
            push_digits(out, date.month(), 2);
            out.push('-');
            push_digits(out, date.day(), 2);
        }
        // Signed or five-digit years: chrono's own rules.
        _ => out.push_str(&date.format("%F").to_string()),
    }
}

/// `at` as diesel writes it for SQLite (`%F %T%.f`: `2026-11-21 10:00:00.123456`, with 0, 3, 6
/// or 9 fractional digits, the fewest that show the whole fraction).
pub fn timestamp_text(at: NaiveDateTime) -> String {
    let nanos = at.nanosecond();
    if nanos >= 1_000_000_000 {
        // A leap second: chrono's own rules.
        return at.format("%F %T%.f").to_string();
    }
    let mut out = String::with_capacity(29);
    push_date(&mut out, at.date());
    out.push(' ');
    push_digits(&mut out, at.hour(), 2);
    out.push(':');
    push_digits(&mut out, at.minute(), 2);
    out.push(':');
    push_digits(&mut out, at.second(), 2);
    if nanos == 0 {
    } else if nanos % 1_000_000 == 0 {
        out.push('.');
        push_digits(&mut out, nanos / 1_000_000, 3);
    } else if nanos % 1_000 == 0 {
        out.push('.');
        push_digits(&mut out, nanos / 1_000, 6);
    } else {
        out.push('.');
        push_digits(&mut out, nanos, 9);
    }
    out
}

impl ToSql<Date, Sqlite> for SqlDate {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(date_text(self.0));
        Ok(IsNull::No)
    }
}

impl ToSql<Date, Pg> for SqlDate {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        ToSql::<Date, Pg>::to_sql(&self.0, out)
    }
}

impl ToSql<Timestamp, Sqlite> for SqlTimestamp {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(timestamp_text(self.0));
        Ok(IsNull::No)
    }
}

impl ToSql<Timestamp, Pg> for SqlTimestamp {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        ToSql::<Timestamp, Pg>::to_sql(&self.0, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// The text is byte for byte what diesel's own chrono encoding writes, so rows written either
    /// way compare, sort and read back alike.
    #[test]
    fn the_text_is_what_diesel_writes() {
        let cases = [
            (date(2026, 11, 21), 10, 0, 0, 0),
            (date(2026, 1, 2), 3, 4, 5, 123_000_000),
            (date(999, 12, 31), 23, 59, 59, 123_456_000),
            (date(1, 1, 1), 0, 0, 0, 123_456_789),
            (date(9999, 12, 31), 23, 59, 59, 1_000),
            (date(2024, 2, 29), 12, 0, 7, 1),
            (date(-44, 3, 15), 12, 0, 0, 0),
            (date(12_345, 6, 7), 8, 9, 10, 500_000_000),
        ];
        for (d, h, mi, s, n) in cases {
            let at = d.and_hms_nano_opt(h, mi, s, n).unwrap();
            assert_eq!(date_text(d), d.format("%F").to_string());
            assert_eq!(timestamp_text(at), at.format("%F %T%.f").to_string());
        }
        let leap = date(2016, 12, 31)
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap();
        assert_eq!(timestamp_text(leap), leap.format("%F %T%.f").to_string());
    }

    proptest! {
        #[test]
        fn any_time_of_any_day_matches(days in 0i32..3_650_000, secs in 0u32..86_400, nanos in 0u32..1_000_000_000, unit in 0usize..4) {
            let nanos = [nanos, nanos / 1_000 * 1_000, nanos / 1_000_000 * 1_000_000, 0][unit];
            let d = date(1, 1, 1) + chrono::Days::new(days as u64);
            let at = d.and_hms_nano_opt(secs / 3600, secs / 60 % 60, secs % 60, nanos).unwrap();
            prop_assert_eq!(date_text(d), d.format("%F").to_string());
            prop_assert_eq!(timestamp_text(at), at.format("%F %T%.f").to_string());
        }
    }
}
