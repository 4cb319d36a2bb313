//! Reports served from the Ledger's memory: per-day aggregates (by account and category, transfers
//! excluded) and the user's exchange rates. No query touches the transactions table, so a report
//! over a million transactions costs a walk over a few thousand day buckets.
use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, Duration, NaiveDate};
use serde::Serialize;
use uuid::Uuid;

use crate::domain::ledger::Rate;
use crate::domain::money::format_minor;
use crate::domain::Currency;

/// Money in and out of one (day, account, category) bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flow {
    pub inflow: i64,
    pub outflow: i64,
    pub count: i64,
}

impl Flow {
    pub fn add(&mut self, amount: i64, sign: i64) {
        if amount >= 0 {
            self.inflow = self.inflow.saturating_add(sign * amount);
        } else {
            self.outflow = self.outflow.saturating_add(sign * amount);
        }
        self.count += sign;
    }

    pub fn is_empty(&self) -> bool {
        self.inflow == 0 && self.outflow == 0 && self.count == 0
    }
}

pub type BucketKey = (Uuid, Option<Uuid>);
pub type Daily = BTreeMap<NaiveDate, HashMap<BucketKey, Flow>>;

/// The user's exchange rates: for each (base, quote), rates by the date they take effect.
#[derive(Debug, Default, Clone)]
pub struct RateBook {
    pairs: HashMap<(Currency, Currency), BTreeMap<NaiveDate, Rate>>,
}

impl RateBook {
    pub fn insert(&mut self, base: Currency, quote: Currency, date: NaiveDate, rate: Rate) {
        self.pairs
            .entry((base, quote))
            .or_default()
            .insert(date, rate);
    }

    pub fn all(&self) -> impl Iterator<Item = (Currency, Currency, NaiveDate, Rate)> + '_ {
        self.pairs
            .iter()
            .flat_map(|((b, q), by_date)| by_date.iter().map(move |(d, r)| (*b, *q, *d, *r)))
    }

    fn at(&self, base: Currency, quote: Currency, date: NaiveDate) -> Option<Rate> {
        self.pairs
            .get(&(base, quote))?
            .range(..=date)
            .next_back()
            .map(|(_, r)| *r)
    }

    /// `minor` of `from` in `to` at `date`: the latest rate on or before the date, given in either
    /// direction. `None` when no rate is known.
    pub fn convert(
        &self,
        minor: i64,
        from: Currency,
        to: Currency,
        date: NaiveDate,
    ) -> Option<i64> {
        if from == to || minor == 0 {
            return Some(minor);
        }
        if let Some(rate) = self.at(from, to, date) {
            return rate.convert(minor, from, to);
        }
        self.at(to, from, date)
            .and_then(|rate| rate.convert_inverse(minor, from, to))
    }
}

/// An account as reports need it.
pub struct AccountInfo<'a> {
    pub name: &'a str,
    pub currency: Currency,
}

/// A category as reports need it.
pub struct CategoryInfo<'a> {
    pub name: &'a str,
    pub parent: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub income: String,
    pub expense: String,
    pub net: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CategoryLine {
    pub category_id: Option<Uuid>,
    pub name: String,
    pub income: String,
    pub expense: String,
    pub net: String,
    pub transactions: i64,
    /// Sub-categories; the parent's amounts include them.
    pub children: Vec<CategoryLine>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AccountLine {
    pub account_id: Uuid,
    pub name: String,
    pub currency: String,
    /// In the account's own currency.
    pub income: String,
    pub expense: String,
    pub net: String,
    pub transactions: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub currency: String,
    pub income: String,
    pub expense: String,
    pub net: String,
    pub transactions: i64,
    pub by_category: Vec<CategoryLine>,
    pub by_account: Vec<AccountLine>,
    /// Currency pairs with no rate on some day: those amounts are left out of the base totals.
    pub missing_rates: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Week,
    Month,
}

#[derive(Debug, Clone, Serialize)]
pub struct CashflowPeriod {
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub income: String,
    pub expense: String,
    pub net: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cashflow {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub currency: String,
    pub interval: &'static str,
    pub periods: Vec<CashflowPeriod>,
    pub missing_rates: Vec<String>,
}

#[derive(Default, Clone, Copy)]
struct Sum {
    income: i64,
    expense: i64,
    count: i64,
}

impl Sum {
    fn add(&mut self, income: i64, expense: i64, count: i64) {
        self.income = self.income.saturating_add(income);
        self.expense = self.expense.saturating_add(expense);
        self.count += count;
    }
}

fn line(sum: Sum, exp: u8) -> (String, String, String) {
    (
        format_minor(sum.income, exp),
        format_minor(-sum.expense, exp),
        format_minor(sum.income.saturating_add(sum.expense), exp),
    )
}

/// Walk the buckets in `from..=to`, converting each into `base`; `visit` sees the converted
/// (income, expense-as-negative, count).
fn walk(
    daily: &Daily,
    accounts: &HashMap<Uuid, AccountInfo<'_>>,
    rates: &RateBook,
    (from, to): (NaiveDate, NaiveDate),
    base: Currency,
    missing: &mut Vec<String>,
    mut visit: impl FnMut(NaiveDate, &BucketKey, &Flow, i64, i64),
) {
    if from > to {
        return;
    }
    for (date, buckets) in daily.range(from..=to) {
        for (key, flow) in buckets {
            let Some(account) = accounts.get(&key.0) else {
                continue;
            };
            let converted = rates
                .convert(flow.inflow, account.currency, base, *date)
                .zip(rates.convert(flow.outflow, account.currency, base, *date));
            match converted {
                Some((income, expense)) => visit(*date, key, flow, income, expense),
                None => {
                    let pair = format!("{}->{}", account.currency, base);
                    if !missing.contains(&pair) {
                        missing.push(pair);
                    }
                }
            }
        }
    }
}

pub fn summary(
    daily: &Daily,
    accounts: &HashMap<Uuid, AccountInfo<'_>>,
    categories: &HashMap<Uuid, CategoryInfo<'_>>,
    rates: &RateBook,
    from: NaiveDate,
    to: NaiveDate,
    base: Currency,
) -> Summary {
    let mut missing = Vec::new();
    let mut total = Sum::default();
    let mut by_category: HashMap<Option<Uuid>, Sum> = HashMap::new();
    let mut by_account: HashMap<Uuid, Sum> = HashMap::new();
    walk(
        daily,
        accounts,
        rates,
        (from, to),
        base,
        &mut missing,
        |_, key, flow, income, expense| {
            total.add(income, expense, flow.count);
            by_category
                .entry(key.1)
                .or_default()
                .add(income, expense, flow.count);
        },
    );
    // Per account, in the account's own currency (no conversion needed).
    if from <= to {
        for buckets in daily.range(from..=to).map(|(_, b)| b) {
            for (key, flow) in buckets {
                by_account
                    .entry(key.0)
                    .or_default()
                    .add(flow.inflow, flow.outflow, flow.count);
            }
        }
    }
    let exp = base.exponent();
    // Roll children up into their parents.
    let mut tops: BTreeMap<(String, Option<Uuid>), (Sum, Vec<CategoryLine>)> = BTreeMap::new();
    let mut orphans: Vec<(Option<Uuid>, Sum)> = Vec::new();
    for (cat, sum) in &by_category {
        match cat.and_then(|id| categories.get(&id).map(|c| (id, c))) {
            Some((id, info)) => match info
                .parent
                .and_then(|p| categories.get(&p).map(|pi| (p, pi)))
            {
                Some((pid, pinfo)) => {
                    let entry = tops.entry((pinfo.name.to_string(), Some(pid))).or_default();
                    entry.0.add(sum.income, sum.expense, sum.count);
                    let (income, expense, net) = line(*sum, exp);
                    entry.1.push(CategoryLine {
                        category_id: Some(id),
                        name: info.name.to_string(),
                        income,
                        expense,
                        net,
                        transactions: sum.count,
                        children: Vec::new(),
                    });
                }
                None => {
                    tops.entry((info.name.to_string(), Some(id)))
                        .or_default()
                        .0
                        .add(sum.income, sum.expense, sum.count);
                }
            },
            None => orphans.push((*cat, *sum)),
        }
    }
    let mut lines: Vec<CategoryLine> = tops
        .into_iter()
        .map(|((name, id), (sum, mut children))| {
            children.sort_by(|a, b| a.name.cmp(&b.name));
            let (income, expense, net) = line(sum, exp);
            CategoryLine {
                category_id: id,
                name,
                income,
                expense,
                net,
                transactions: sum.count,
                children,
            }
        })
        .collect();
    let mut uncategorized = Sum::default();
    for (_, sum) in orphans {
        uncategorized.add(sum.income, sum.expense, sum.count);
    }
    if uncategorized.count != 0 {
        let (income, expense, net) = line(uncategorized, exp);
        lines.push(CategoryLine {
            category_id: None,
            name: "Uncategorized".into(),
            income,
            expense,
            net,
            transactions: uncategorized.count,
            children: Vec::new(),
        });
    }
    let mut account_lines: Vec<AccountLine> = by_account
        .into_iter()
        .filter_map(|(id, sum)| {
            let info = accounts.get(&id)?;
            let (income, expense, net) = line(sum, info.currency.exponent());
            Some(AccountLine {
                account_id: id,
                name: info.name.to_string(),
                currency: info.currency.code().to_string(),
                income,
                expense,
                net,
                transactions: sum.count,
            })
        })
        .collect();
    account_lines.sort_by(|a, b| a.name.cmp(&b.name).then(a.account_id.cmp(&b.account_id)));
    let (income, expense, net) = line(total, exp);
    missing.sort();
    Summary {
        from,
        to,
        currency: base.code().to_string(),
        income,
        expense,
        net,
        transactions: total.count,
        by_category: lines,
        by_account: account_lines,
        missing_rates: missing,
    }
}

/// The first day of the period that contains `date`.
/// The most periods one cash-flow report holds (about 11 years of weeks, 50 of months).
pub const MAX_PERIODS: i64 = 600;

/// How many periods of `interval` the range `from..=to` touches.
pub fn period_count(from: NaiveDate, to: NaiveDate, interval: Interval) -> i64 {
    let (a, b) = (period_start(from, interval), period_start(to, interval));
    match interval {
        Interval::Week => (b - a).num_days() / 7 + 1,
        Interval::Month => {
            i64::from(b.year() - a.year()) * 12 + i64::from(b.month()) - i64::from(a.month()) + 1
        }
    }
}

pub fn period_start(date: NaiveDate, interval: Interval) -> NaiveDate {
    match interval {
        Interval::Week => date - Duration::days(i64::from(date.weekday().num_days_from_monday())),
        Interval::Month => date.with_day(1).unwrap_or(date),
    }
}

fn next_period(start: NaiveDate, interval: Interval) -> Option<NaiveDate> {
    match interval {
        Interval::Week => start.checked_add_signed(Duration::days(7)),
        Interval::Month => start.checked_add_months(chrono::Months::new(1)),
    }
}

pub fn cashflow(
    daily: &Daily,
    accounts: &HashMap<Uuid, AccountInfo<'_>>,
    rates: &RateBook,
    from: NaiveDate,
    to: NaiveDate,
    interval: Interval,
    base: Currency,
) -> Cashflow {
    let mut missing = Vec::new();
    let mut sums: BTreeMap<NaiveDate, Sum> = BTreeMap::new();
    walk(
        daily,
        accounts,
        rates,
        (from, to),
        base,
        &mut missing,
        |date, _, flow, income, expense| {
            sums.entry(period_start(date, interval))
                .or_default()
                .add(income, expense, flow.count);
        },
    );
    let exp = base.exponent();
    let mut periods = Vec::new();
    let mut start = period_start(from, interval);
    // The HTTP layer refuses ranges of more than MAX_PERIODS; this bound only guards the loop.
    while start <= to && (periods.len() as i64) < MAX_PERIODS {
        let Some(next) = next_period(start, interval) else {
            break;
        };
        let sum = sums.get(&start).copied().unwrap_or_default();
        let (income, expense, net) = line(sum, exp);
        periods.push(CashflowPeriod {
            start: start.max(from),
            end: (next - Duration::days(1)).min(to),
            income,
            expense,
            net,
        });
        start = next;
    }
    missing.sort();
    Cashflow {
        from,
        to,
        currency: base.code().to_string(),
        interval: match interval {
            Interval::Week => "week",
            Interval::Month => "month",
        },
        periods,
        missing_rates: missing,
    }
}
