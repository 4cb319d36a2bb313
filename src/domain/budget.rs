//! Budget periods and status math: which dates a period covers, rollover, percent and projection.
//! Pure: the Ledger supplies the spend of each period from its aggregates.
use chrono::{Duration, Months, NaiveDate};
use serde::{Deserialize, Serialize};

/// How often a budget starts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    Weekly,
    Monthly,
    Quarterly,
    Yearly,
    /// One fixed range, from `start_date` to `end_date`.
    Custom,
}

impl PeriodKind {
    pub fn parse(raw: &str) -> Result<PeriodKind, String> {
        match raw {
            "weekly" => Ok(PeriodKind::Weekly),
            "monthly" => Ok(PeriodKind::Monthly),
            "quarterly" => Ok(PeriodKind::Quarterly),
            "yearly" => Ok(PeriodKind::Yearly),
            "custom" => Ok(PeriodKind::Custom),
            other => Err(format!(
                "`{other}` is not one of: weekly, monthly, quarterly, yearly, custom"
            )),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            PeriodKind::Weekly => "weekly",
            PeriodKind::Monthly => "monthly",
            PeriodKind::Quarterly => "quarterly",
            PeriodKind::Yearly => "yearly",
            PeriodKind::Custom => "custom",
        }
    }
}

/// The dates of one budget period, both inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl Period {
    pub fn days(&self) -> i64 {
        (self.end - self.start).num_days() + 1
    }

    pub fn contains(&self, date: NaiveDate) -> bool {
        self.start <= date && date <= self.end
    }
}

/// The n-th period (0-based) of a recurring budget anchored at `anchor`.
fn nth(kind: PeriodKind, anchor: NaiveDate, n: u32) -> Option<Period> {
    let start = match kind {
        PeriodKind::Weekly => anchor.checked_add_signed(Duration::weeks(i64::from(n)))?,
        PeriodKind::Monthly => anchor.checked_add_months(Months::new(n))?,
        PeriodKind::Quarterly => anchor.checked_add_months(Months::new(n.checked_mul(3)?))?,
        PeriodKind::Yearly => anchor.checked_add_months(Months::new(n.checked_mul(12)?))?,
        PeriodKind::Custom => return None,
    };
    let next = match kind {
        PeriodKind::Weekly => anchor.checked_add_signed(Duration::weeks(i64::from(n) + 1))?,
        PeriodKind::Monthly => anchor.checked_add_months(Months::new(n + 1))?,
        PeriodKind::Quarterly => anchor.checked_add_months(Months::new((n + 1).checked_mul(3)?))?,
        PeriodKind::Yearly => anchor.checked_add_months(Months::new((n + 1).checked_mul(12)?))?,
        PeriodKind::Custom => return None,
    };
    Some(Period {
        start,
        end: next - Duration::days(1),
    })
}

/// Where a budget's periods are anchored: monthly/quarterly/yearly budgets that start on the 1st
/// of a month follow calendar months; weekly ones start on the start date's weekday.
pub fn periods_until(
    kind: PeriodKind,
    start_date: NaiveDate,
    end_date: Option<NaiveDate>,
    today: NaiveDate,
) -> Vec<Period> {
    if kind == PeriodKind::Custom {
        let end = end_date.unwrap_or(start_date);
        return vec![Period {
            start: start_date,
            end: end.max(start_date),
        }];
    }
    let mut out = Vec::new();
    // Bounded: ~20 years of weekly periods.
    for n in 0..1100 {
        let Some(p) = nth(kind, start_date, n) else {
            break;
        };
        if p.start > today {
            break;
        }
        out.push(p);
    }
    if out.is_empty() {
        if let Some(first) = nth(kind, start_date, 0) {
            out.push(first);
        }
    }
    out
}

/// The period containing `today` (or the first one, if the budget has not started yet; or the
/// custom range).
pub fn current_period(
    kind: PeriodKind,
    start_date: NaiveDate,
    end_date: Option<NaiveDate>,
    today: NaiveDate,
) -> Option<Period> {
    periods_until(kind, start_date, end_date, today).pop()
}

/// A budget's standing in one period, in the budget's currency minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusFigures {
    pub limit: i64,
    pub spent: i64,
    pub remaining: i64,
    /// Whole percent of the limit spent, rounded down.
    pub percent: i64,
    /// Spend expected by the end of the period at the pace so far.
    pub projected: i64,
}

pub fn figures(limit: i64, spent: i64, period: Period, today: NaiveDate) -> StatusFigures {
    let percent = if limit > 0 {
        i64::try_from(i128::from(spent.max(0)) * 100 / i128::from(limit)).unwrap_or(i64::MAX)
    } else if spent > 0 {
        100
    } else {
        0
    };
    let elapsed = if today < period.start {
        0
    } else {
        (today.min(period.end) - period.start).num_days() + 1
    };
    let projected = if elapsed <= 0 {
        spent
    } else {
        i64::try_from(i128::from(spent) * i128::from(period.days()) / i128::from(elapsed))
            .unwrap_or(spent)
    };
    StatusFigures {
        limit,
        spent,
        remaining: limit - spent,
        percent,
        projected,
    }
}

/// Parse budget thresholds: whole percents 1..=1000, sorted, no duplicates, at most 10.
pub fn parse_thresholds(raw: &[i64]) -> Result<Vec<i64>, String> {
    if raw.is_empty() || raw.len() > 10 {
        return Err("give 1 to 10 thresholds, e.g. [50, 80, 100]".into());
    }
    if raw.iter().any(|t| !(1..=1000).contains(t)) {
        return Err("each threshold is a whole percent from 1 to 1000".into());
    }
    let mut t = raw.to_vec();
    t.sort_unstable();
    t.dedup();
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn monthly_periods_follow_the_anchor() {
        let p =
            current_period(PeriodKind::Monthly, d("2026-01-01"), None, d("2026-11-21")).unwrap();
        assert_eq!((p.start, p.end), (d("2026-11-01"), d("2026-11-30")));
        let p =
            current_period(PeriodKind::Monthly, d("2026-01-15"), None, d("2026-11-10")).unwrap();
        assert_eq!((p.start, p.end), (d("2026-10-15"), d("2026-11-14")));
        let p = current_period(
            PeriodKind::Quarterly,
            d("2026-01-01"),
            None,
            d("2026-11-21"),
        )
        .unwrap();
        assert_eq!((p.start, p.end), (d("2026-10-01"), d("2026-12-31")));
        let p = current_period(PeriodKind::Weekly, d("2026-11-02"), None, d("2026-11-21")).unwrap();
        assert_eq!((p.start, p.end), (d("2026-11-16"), d("2026-11-22")));
        let p = current_period(PeriodKind::Yearly, d("2026-01-01"), None, d("2026-11-21")).unwrap();
        assert_eq!(p.days(), 365);
        let p = current_period(
            PeriodKind::Custom,
            d("2026-06-01"),
            Some(d("2026-06-10")),
            d("2026-11-21"),
        )
        .unwrap();
        assert_eq!(p.days(), 10);
    }

    #[test]
    fn figures_are_exact() {
        let p = Period {
            start: d("2026-11-01"),
            end: d("2026-11-30"),
        };
        let f = figures(50_000, 40_000, p, d("2026-11-15"));
        assert_eq!((f.percent, f.remaining, f.projected), (80, 10_000, 80_000));
        assert_eq!(figures(0, 0, p, d("2026-11-15")).percent, 0);
        assert_eq!(figures(10_000, -500, p, d("2026-11-15")).percent, 0);
    }
}
