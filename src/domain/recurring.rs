//! Schedules of recurring transactions: every N days, weeks, months (on day D) or years.
use chrono::{Datelike, Duration, Months, NaiveDate};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frequency {
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Frequency {
    pub fn parse(raw: &str) -> Result<Frequency, String> {
        match raw {
            "daily" => Ok(Frequency::Daily),
            "weekly" => Ok(Frequency::Weekly),
            "monthly" => Ok(Frequency::Monthly),
            "yearly" => Ok(Frequency::Yearly),
            other => Err(format!(
                "`{other}` is not one of: daily, weekly, monthly, yearly"
            )),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Frequency::Daily => "daily",
            Frequency::Weekly => "weekly",
            Frequency::Monthly => "monthly",
            Frequency::Yearly => "yearly",
        }
    }
}

/// A schedule: how often, every how many, and (monthly) which day of the month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub frequency: Frequency,
    pub every: u32,
    /// Monthly: the day of the month (29–31 fall on the month's last day when it is shorter).
    pub day_of_month: Option<u32>,
}

fn with_day_clamped(date: NaiveDate, day: u32) -> NaiveDate {
    let mut d = day.min(31);
    loop {
        if let Some(v) = date.with_day(d) {
            return v;
        }
        if d <= 28 {
            return date;
        }
        d -= 1;
    }
}

impl Schedule {
    /// The occurrence after `date`.
    pub fn next_after(&self, date: NaiveDate) -> Option<NaiveDate> {
        let every = self.every.max(1);
        match self.frequency {
            Frequency::Daily => date.checked_add_signed(Duration::days(i64::from(every))),
            Frequency::Weekly => date.checked_add_signed(Duration::weeks(i64::from(every))),
            Frequency::Monthly => {
                let first = date.with_day(1)?.checked_add_months(Months::new(every))?;
                Some(with_day_clamped(
                    first,
                    self.day_of_month.unwrap_or(date.day()),
                ))
            }
            Frequency::Yearly => date.checked_add_months(Months::new(every.checked_mul(12)?)),
        }
    }

    /// Occurrences from `next` up to `today` (and `end`), at most `max`; and the new next date.
    pub fn due(
        &self,
        next: NaiveDate,
        end: Option<NaiveDate>,
        today: NaiveDate,
        max: usize,
    ) -> (Vec<NaiveDate>, Option<NaiveDate>) {
        let mut dates = Vec::new();
        let mut cursor = Some(next);
        while let Some(d) = cursor {
            if d > today || end.is_some_and(|e| d > e) || dates.len() >= max {
                break;
            }
            dates.push(d);
            cursor = self.next_after(d);
        }
        (dates, cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn monthly_on_the_31st_clamps() {
        let s = Schedule {
            frequency: Frequency::Monthly,
            every: 1,
            day_of_month: Some(31),
        };
        assert_eq!(s.next_after(d("2026-01-31")), Some(d("2026-02-28")));
        assert_eq!(s.next_after(d("2026-02-28")), Some(d("2026-03-31")));
    }

    #[test]
    fn catch_up_lists_every_missed_date() {
        let s = Schedule {
            frequency: Frequency::Weekly,
            every: 2,
            day_of_month: None,
        };
        let (dates, next) = s.due(d("2026-10-01"), None, d("2026-11-01"), 100);
        assert_eq!(
            dates,
            vec![d("2026-10-01"), d("2026-10-15"), d("2026-10-29")]
        );
        assert_eq!(next, Some(d("2026-11-12")));
        let (dates, _) = s.due(d("2026-10-01"), Some(d("2026-10-20")), d("2026-11-01"), 100);
        assert_eq!(dates.len(), 2);
    }
}
