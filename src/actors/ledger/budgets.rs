//! Budgets inside the Ledger: their definitions, their live status computed from the per-day
//! aggregates (so the status always equals what the database says), and the plans that write
//! budgets, threshold alerts and in-app notifications. Deciding *when* a threshold fires is the
//! [`BudgetWatcher`](crate::actors::budget_watcher::BudgetWatcher)'s job.
use std::collections::HashSet;

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::plan::Plan;
use super::{Effect, LedgerState, Reply};
use crate::domain::budget::{
    current_period, figures, parse_thresholds, periods_until, Period, PeriodKind,
};
use crate::domain::ledger::{parse_name, CategoryKind};
use crate::domain::money::{format_minor, parse_amount, parse_minor};
use crate::domain::Currency;
use crate::error::{ApiError, FieldError};
use crate::store::budgets::{AlertRow, BudgetRow};
use crate::store::writer::WriteOp;

#[derive(Debug, Clone)]
pub(crate) struct BudgetState {
    pub row: BudgetRow,
    pub period: PeriodKind,
    pub currency: Currency,
    pub categories: Vec<Uuid>,
    pub accounts: Vec<Uuid>,
    pub thresholds: Vec<i64>,
}

impl BudgetState {
    pub fn from_row(row: BudgetRow) -> Option<BudgetState> {
        Some(BudgetState {
            period: PeriodKind::parse(&row.period).ok()?,
            currency: Currency::parse(&row.currency).ok()?,
            categories: serde_json::from_str(&row.category_ids).ok()?,
            accounts: serde_json::from_str(&row.account_ids).ok()?,
            thresholds: serde_json::from_str(&row.thresholds).ok()?,
            row,
        })
    }
}

/// A budget's standing in its current period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetStatus {
    pub budget_id: String,
    pub name: String,
    pub currency: String,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    /// The period's limit (with rollover, the base limit plus last period's unspent amount).
    pub limit: String,
    pub spent: String,
    pub remaining: String,
    pub percent: i64,
    pub projected: String,
    /// Currencies whose amounts could not be converted (no rate), left out of `spent`.
    pub missing_rates: Vec<String>,
    #[serde(skip)]
    pub thresholds: Vec<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BudgetView {
    pub id: String,
    pub name: String,
    pub limit: String,
    pub currency: String,
    pub period: String,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    pub category_ids: Vec<Uuid>,
    pub account_ids: Vec<Uuid>,
    pub thresholds: Vec<i64>,
    pub rollover: bool,
    pub version: i64,
    pub status: BudgetStatus,
}

/// A threshold the watcher decided to raise.
#[derive(Debug, Clone)]
pub struct Alert {
    pub budget_id: String,
    pub period_start: NaiveDate,
    pub threshold: i64,
    pub status: BudgetStatus,
}

/// A raised threshold that no longer holds (spend went back below it).
#[derive(Debug, Clone)]
pub struct Rearm {
    pub budget_id: String,
    pub period_start: NaiveDate,
    pub threshold: i64,
}

#[derive(Debug, Clone, Default)]
pub struct BudgetInput {
    pub name: Option<String>,
    pub limit: Option<String>,
    pub currency: Option<Currency>,
    pub period: Option<PeriodKind>,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<Option<NaiveDate>>,
    pub category_ids: Option<Vec<Uuid>>,
    pub account_ids: Option<Vec<Uuid>>,
    pub thresholds: Option<Vec<i64>>,
    pub rollover: Option<bool>,
    pub version: Option<i64>,
}

use super::plan::json_reply;

impl LedgerState {
    /// The categories a budget counts: the listed ones and their children.
    fn budget_categories(&self, b: &BudgetState) -> HashSet<Uuid> {
        let mut set: HashSet<Uuid> = b.categories.iter().copied().collect();
        for (id, c) in &self.categories {
            if c.parent.is_some_and(|p| b.categories.contains(&p)) {
                set.insert(*id);
            }
        }
        set
    }

    /// Spend in a period, in the budget's minor units: money out of matching expense categories
    /// minus refunds into them; uncategorized money out counts for "all expenses" budgets;
    /// transfers never count.
    fn spend(
        &self,
        b: &BudgetState,
        period: Period,
        cats: &HashSet<Uuid>,
        missing: &mut Vec<String>,
    ) -> i64 {
        let mut spent: i64 = 0;
        for (date, buckets) in self.daily.range(period.start..=period.end) {
            for ((account, category), flow) in buckets {
                if !b.accounts.is_empty() && !b.accounts.contains(account) {
                    continue;
                }
                let amount = match category {
                    Some(c) if b.categories.is_empty() => match self.categories.get(c) {
                        Some(cat) if cat.kind == CategoryKind::Expense => {
                            flow.inflow + flow.outflow
                        }
                        _ => continue,
                    },
                    Some(c) if cats.contains(c) => flow.inflow + flow.outflow,
                    Some(_) => continue,
                    None if b.categories.is_empty() => flow.outflow,
                    None => continue,
                };
                let Some(acct) = self.accounts.get(account) else {
                    continue;
                };
                match self.rates.convert(amount, acct.currency, b.currency, *date) {
                    Some(v) => spent = spent.saturating_sub(v),
                    None => {
                        let code = acct.currency.code().to_string();
                        if !missing.contains(&code) {
                            missing.push(code);
                        }
                    }
                }
            }
        }
        spent
    }

    pub(crate) fn budget_status(&self, b: &BudgetState, today: NaiveDate) -> BudgetStatus {
        let cats = self.budget_categories(b);
        let mut missing = Vec::new();
        let periods = periods_until(b.period, b.row.start_date, b.row.end_date, today);
        let mut limit = b.row.limit_amount;
        let mut current = (periods.last().copied(), 0i64);
        for (i, p) in periods.iter().enumerate() {
            if !b.row.rollover && i + 1 != periods.len() {
                continue;
            }
            let spent = self.spend(b, *p, &cats, &mut missing);
            if i + 1 == periods.len() {
                current = (Some(*p), spent);
            } else if b.row.rollover {
                // Unspent money carries over to the next period; overspending does not.
                limit = b.row.limit_amount + (limit - spent).max(0);
            }
        }
        if !b.row.rollover {
            limit = b.row.limit_amount;
        }
        let period = current
            .0
            .or_else(|| current_period(b.period, b.row.start_date, b.row.end_date, today))
            .unwrap_or(Period {
                start: today,
                end: today,
            });
        let f = figures(limit, current.1, period, today);
        let e = b.currency.exponent();
        BudgetStatus {
            budget_id: b.row.id.clone(),
            name: b.row.name.clone(),
            currency: b.currency.code().to_string(),
            period_start: period.start,
            period_end: period.end,
            limit: format_minor(f.limit, e),
            spent: format_minor(f.spent, e),
            remaining: format_minor(f.remaining, e),
            percent: f.percent,
            projected: format_minor(f.projected, e),
            missing_rates: missing,
            thresholds: b.thresholds.clone(),
        }
    }

    pub(crate) fn all_budget_statuses(&self, today: NaiveDate) -> Vec<BudgetStatus> {
        let mut out: Vec<_> = self
            .budgets
            .values()
            .map(|b| self.budget_status(b, today))
            .collect();
        out.sort_by(|a, b| a.budget_id.cmp(&b.budget_id));
        out
    }

    pub(crate) fn budget_view(&self, b: &BudgetState, today: NaiveDate) -> BudgetView {
        BudgetView {
            id: b.row.id.clone(),
            name: b.row.name.clone(),
            limit: format_minor(b.row.limit_amount, b.currency.exponent()),
            currency: b.currency.code().to_string(),
            period: b.period.as_str().to_string(),
            start_date: b.row.start_date,
            end_date: b.row.end_date,
            category_ids: b.categories.clone(),
            account_ids: b.accounts.clone(),
            thresholds: b.thresholds.clone(),
            rollover: b.row.rollover,
            version: b.row.version,
            status: self.budget_status(b, today),
        }
    }

    fn build_budget(
        &self,
        mut row: BudgetRow,
        input: BudgetInput,
    ) -> Result<BudgetState, ApiError> {
        let mut errors: Vec<FieldError> = Vec::new();
        let mut err = |f: &str, m: String| errors.push(FieldError::new(f, m));
        if let Some(name) = &input.name {
            match parse_name(name, 100) {
                Ok(n) => row.name = n,
                Err(m) => err("name", m),
            }
        }
        if let Some(c) = input.currency {
            row.currency = c.code().to_string();
        }
        let currency =
            Currency::parse(&row.currency).map_err(|m| ApiError::validation("currency", m))?;
        if let Some(limit) = &input.limit {
            match parse_amount(limit, currency) {
                Ok(v) if v > 0 => row.limit_amount = v,
                Ok(_) => err("limit", "must be greater than zero".into()),
                Err(e) => err("limit", e.to_string()),
            }
        }
        if let Some(p) = input.period {
            row.period = p.as_str().to_string();
        }
        if let Some(d) = input.start_date {
            row.start_date = d;
        }
        if let Some(d) = input.end_date {
            row.end_date = d;
        }
        let period =
            PeriodKind::parse(&row.period).map_err(|m| ApiError::validation("period", m))?;
        match (period, row.end_date) {
            (PeriodKind::Custom, None) => err("end_date", "is required for a custom period".into()),
            (PeriodKind::Custom, Some(end)) if end < row.start_date => {
                err("end_date", "must not be before start_date".into())
            }
            (PeriodKind::Custom, _) => {}
            (_, Some(_)) => row.end_date = None,
            _ => {}
        }
        if let Some(ids) = &input.category_ids {
            if ids.len() > 100 {
                err("category_ids", "at most 100 categories".into());
            } else if ids.iter().any(|c| !self.categories.contains_key(c)) {
                err(
                    "category_ids",
                    "names a category that does not exist".into(),
                );
            }
            row.category_ids = serde_json::to_string(ids).map_err(ApiError::internal)?;
        }
        if let Some(ids) = &input.account_ids {
            if ids.iter().any(|a| !self.accounts.contains_key(a)) {
                err("account_ids", "names an account that does not exist".into());
            }
            row.account_ids = serde_json::to_string(ids).map_err(ApiError::internal)?;
        }
        if let Some(t) = &input.thresholds {
            match parse_thresholds(t) {
                Ok(t) => row.thresholds = serde_json::to_string(&t).map_err(ApiError::internal)?,
                Err(m) => err("thresholds", m),
            }
        }
        if let Some(r) = input.rollover {
            row.rollover = r;
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        BudgetState::from_row(row)
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("budget row is inconsistent")))
    }

    pub fn plan_create_budget(
        &self,
        user_id: &str,
        input: BudgetInput,
        today: NaiveDate,
    ) -> Result<Plan, ApiError> {
        let mut f = Vec::new();
        if input.name.is_none() {
            f.push(FieldError::new("name", "is required"));
        }
        if input.limit.is_none() {
            f.push(FieldError::new("limit", "is required"));
        }
        if input.period.is_none() {
            f.push(FieldError::new("period", "is required"));
        }
        if !f.is_empty() {
            return Err(ApiError::Validation(f));
        }
        let at = crate::store::now();
        let row = BudgetRow {
            id: Uuid::now_v7().to_string(),
            user_id: user_id.to_string(),
            name: String::new(),
            limit_amount: 0,
            currency: input
                .currency
                .map(|c| c.code().to_string())
                .unwrap_or_default(),
            period: String::new(),
            start_date: input.start_date.unwrap_or(today),
            end_date: None,
            category_ids: "[]".into(),
            account_ids: "[]".into(),
            thresholds: "[50,80,100]".into(),
            rollover: false,
            created_at: at,
            updated_at: at,
            version: 1,
        };
        let budget = self.build_budget(row, input)?;
        let view = self.budget_view(&budget, today);
        Ok(Plan {
            ops: vec![WriteOp::InsertBudget(budget.row.clone())],
            events: vec![("budget.created", json!(view))],
            effects: vec![Effect::PutBudget(Box::new(budget))],
            reply: json_reply(201, &view)?,
        })
    }

    pub fn plan_update_budget(
        &self,
        id: Uuid,
        input: BudgetInput,
        today: NaiveDate,
    ) -> Result<Plan, ApiError> {
        let current = self.budgets.get(&id).ok_or(ApiError::NotFound)?;
        if let Some(v) = input.version {
            if v != current.row.version {
                return Err(ApiError::Conflict(format!(
                    "The budget was changed by someone else: your version is {v}, the current one is {}.",
                    current.row.version
                )));
            }
        }
        let mut row = current.row.clone();
        row.version += 1;
        row.updated_at = crate::store::now();
        let budget = self.build_budget(row, input)?;
        let view = self.budget_view(&budget, today);
        Ok(Plan {
            ops: vec![WriteOp::UpdateBudget(budget.row.clone())],
            events: vec![("budget.updated", json!(view))],
            effects: vec![Effect::PutBudget(Box::new(budget))],
            reply: json_reply(200, &view)?,
        })
    }

    pub fn plan_delete_budget(&self, id: Uuid) -> Result<Plan, ApiError> {
        let current = self.budgets.get(&id).ok_or(ApiError::NotFound)?;
        Ok(Plan {
            ops: vec![WriteOp::DeleteBudget(current.row.id.clone())],
            events: vec![("budget.deleted", json!({ "id": current.row.id }))],
            effects: vec![Effect::RemoveBudget(id)],
            reply: Reply {
                status: 204,
                body: String::new(),
            },
        })
    }

    /// What the watcher decided: status events, raised thresholds (alert row, event, in-app
    /// notification, all in one commit) and re-armed ones.
    pub fn plan_budget_outcome(
        &self,
        statuses: Vec<BudgetStatus>,
        raise: Vec<Alert>,
        rearm: Vec<Rearm>,
    ) -> Result<Plan, ApiError> {
        let at = crate::store::now();
        let mut ops = Vec::new();
        let mut events = Vec::new();
        for s in &statuses {
            if self.budgets.keys().any(|k| k.to_string() == s.budget_id) {
                events.push(("budget.status", json!(s)));
            }
        }
        for a in raise {
            let Some(budget) = a
                .budget_id
                .parse::<Uuid>()
                .ok()
                .and_then(|id| self.budgets.get(&id))
            else {
                continue;
            };
            let spent = parse_minor(&a.status.spent, budget.currency).unwrap_or(0);
            let threshold = i32::try_from(a.threshold).unwrap_or(i32::MAX);
            // Replace, never collide: the watcher is the judge of once-ness, the row its record.
            ops.push(WriteOp::DeleteAlert {
                budget_id: a.budget_id.clone(),
                period_start: a.period_start,
                threshold,
            });
            ops.push(WriteOp::InsertAlert(AlertRow {
                budget_id: a.budget_id.clone(),
                period_start: a.period_start,
                threshold: i32::try_from(a.threshold).unwrap_or(i32::MAX),
                spent,
                created_at: at,
            }));
            let payload = json!({
                "budget_id": a.budget_id,
                "name": budget.row.name,
                "threshold": a.threshold,
                "spent": a.status.spent,
                "limit": a.status.limit,
                "currency": a.status.currency,
                "percent": a.status.percent,
                "period": { "start": a.period_start, "end": a.status.period_end },
            });
            // The in-app notification, email and webhooks follow from this event (see notify.rs).
            events.push(("budget.threshold_reached", payload));
        }
        for r in rearm {
            ops.push(WriteOp::DeleteAlert {
                budget_id: r.budget_id,
                period_start: r.period_start,
                threshold: i32::try_from(r.threshold).unwrap_or(i32::MAX),
            });
        }
        Ok(Plan {
            ops,
            events,
            effects: Vec::new(),
            reply: Reply {
                status: 200,
                body: String::new(),
            },
        })
    }
}
