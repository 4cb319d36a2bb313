//! Recurring transactions and goals inside the Ledger: definitions, the plans that write them,
//! catching up on due occurrences (run by the Scheduler), and goal progress.
use chrono::NaiveDate;
use serde_json::{json, Value};
use uuid::Uuid;

use super::plan::Plan;
use super::{Effect, LedgerState, NewTransaction, Reply};
use crate::domain::ledger::{parse_name, parse_tags, parse_text, CategorySource, TxnSource};
use crate::domain::money::{format_minor, parse_amount, parse_minor};
use crate::domain::recurring::{Frequency, Schedule};
use crate::domain::Currency;
use crate::error::{ApiError, FieldError};
use crate::store::plans::{GoalRow, RecurringRow};
use crate::store::utc;
use crate::store::writer::WriteOp;

/// Occurrences created in one run at most (a rule paused for years catches up over several runs).
pub const MAX_CATCH_UP: usize = 400;

use super::plan::json_reply;

use super::views::exponent;

fn schedule(row: &RecurringRow) -> Option<Schedule> {
    Some(Schedule {
        frequency: Frequency::parse(&row.frequency).ok()?,
        every: u32::try_from(row.every).ok()?,
        day_of_month: row.day_of_month.and_then(|d| u32::try_from(d).ok()),
    })
}

pub fn recurring_view(row: &RecurringRow, currency: &str) -> Value {
    json!({
        "id": row.id,
        "account_id": row.account_id,
        "amount": format_minor(row.amount, exponent(currency)),
        "currency": currency,
        "description": row.description,
        "merchant": row.merchant,
        "category_id": row.category_id,
        "tags": serde_json::from_str::<Vec<String>>(&row.tags).unwrap_or_default(),
        "notes": row.notes,
        "frequency": row.frequency,
        "every": row.every,
        "day_of_month": row.day_of_month,
        "next_date": row.next_date,
        "end_date": row.end_date,
        "active": row.active,
        "version": row.version,
    })
}

/// A recurring rule as sent by a client (all optional for PATCH).
#[derive(Debug, Clone, Default)]
pub struct RecurringInput {
    pub account_id: Option<Uuid>,
    pub amount: Option<String>,
    pub description: Option<String>,
    pub merchant: Option<String>,
    pub category_id: Option<Option<Uuid>>,
    pub tags: Option<Vec<String>>,
    pub notes: Option<String>,
    pub frequency: Option<Frequency>,
    pub every: Option<i64>,
    pub day_of_month: Option<Option<i64>>,
    pub next_date: Option<NaiveDate>,
    pub end_date: Option<Option<NaiveDate>>,
    pub active: Option<bool>,
    pub version: Option<i64>,
}

/// A goal as sent by a client.
#[derive(Debug, Clone, Default)]
pub struct GoalInput {
    pub name: Option<String>,
    pub target: Option<String>,
    pub currency: Option<Currency>,
    pub target_date: Option<Option<NaiveDate>>,
    pub account_id: Option<Option<Uuid>>,
    pub version: Option<i64>,
}

impl LedgerState {
    fn currency_of_account(&self, id: &str) -> Option<Currency> {
        self.accounts
            .iter()
            .find(|(k, _)| k.to_string() == id)
            .map(|(_, a)| a.currency)
    }

    fn build_recurring(
        &self,
        mut row: RecurringRow,
        input: RecurringInput,
    ) -> Result<RecurringRow, ApiError> {
        let mut errors: Vec<FieldError> = Vec::new();
        let mut err = |f: &str, m: String| errors.push(FieldError::new(f, m));
        if let Some(a) = input.account_id {
            match self.accounts.get(&a) {
                Some(acct) if !acct.row.archived => row.account_id = acct.row.id.clone(),
                Some(_) => err("account_id", "the account is archived".into()),
                None => err("account_id", "no such account".into()),
            }
        }
        let currency = self.currency_of_account(&row.account_id);
        if let Some(amount) = &input.amount {
            match currency.map(|c| parse_amount(amount, c)) {
                Some(Ok(0)) => err("amount", "must not be zero".into()),
                Some(Ok(v)) => row.amount = v,
                Some(Err(e)) => err("amount", e.to_string()),
                // An account that was named but is not usable has its own error already.
                None if input.account_id.is_some() => {}
                None => err("account_id", "is required".into()),
            }
        }
        if let Some(d) = &input.description {
            match parse_text(d, 500) {
                Ok(v) => row.description = v,
                Err(m) => err("description", m),
            }
        }
        if let Some(m) = &input.merchant {
            match parse_text(m, 200) {
                Ok(v) => row.merchant = v,
                Err(e) => err("merchant", e),
            }
        }
        if let Some(n) = &input.notes {
            match parse_text(n, 5000) {
                Ok(v) => row.notes = v,
                Err(e) => err("notes", e),
            }
        }
        if let Some(t) = &input.tags {
            match parse_tags(t) {
                Ok(v) => row.tags = serde_json::to_string(&v).map_err(ApiError::internal)?,
                Err(e) => err("tags", e),
            }
        }
        match input.category_id {
            Some(Some(c)) if !self.categories.contains_key(&c) => {
                err("category_id", "no such category".into())
            }
            Some(c) => row.category_id = c.map(|c| c.to_string()),
            None => {}
        }
        if let Some(f) = input.frequency {
            row.frequency = f.as_str().to_string();
        }
        if let Some(e) = input.every {
            if (1..=366).contains(&e) {
                row.every = e as i32;
            } else {
                err("every", "must be from 1 to 366".into());
            }
        }
        match input.day_of_month {
            Some(Some(d)) if !(1..=31).contains(&d) => {
                err("day_of_month", "must be from 1 to 31".into())
            }
            Some(d) => row.day_of_month = d.map(|d| d as i32),
            None => {}
        }
        if let Some(d) = input.next_date {
            row.next_date = d;
        }
        if let Some(e) = input.end_date {
            row.end_date = e;
        }
        if row.end_date.is_some_and(|e| e < row.next_date) && input.end_date.is_some() {
            err("end_date", "must not be before the next occurrence".into());
        }
        if let Some(a) = input.active {
            row.active = a;
        }
        if row.frequency == "monthly" && row.day_of_month.is_none() {
            row.day_of_month = Some(chrono::Datelike::day(&row.next_date) as i32);
        }
        // Missed occurrences are created when the plan is saved: a start far back would flood
        // the account (a daily plan from 1900 is 46,000 transactions).
        if let (Some(_), Some(s)) = (input.next_date, schedule(&row)) {
            let (past, _) = s.due(row.next_date, row.end_date, self.today(), MAX_CATCH_UP + 1);
            if past.len() > MAX_CATCH_UP {
                err(
                    "start_date",
                    format!("is so far back that more than {MAX_CATCH_UP} past occurrences would be created at once; choose a later start"),
                );
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(row)
    }

    pub fn plan_create_recurring(
        &self,
        user_id: &str,
        input: RecurringInput,
    ) -> Result<Plan, ApiError> {
        let mut missing = Vec::new();
        for (present, field) in [
            (input.account_id.is_some(), "account_id"),
            (input.amount.is_some(), "amount"),
            (input.frequency.is_some(), "frequency"),
            (input.next_date.is_some(), "start_date"),
        ] {
            if !present {
                missing.push(FieldError::new(field, "is required"));
            }
        }
        if !missing.is_empty() {
            return Err(ApiError::Validation(missing));
        }
        let at = crate::store::now();
        let row = RecurringRow {
            id: Uuid::now_v7().to_string(),
            user_id: user_id.to_string(),
            account_id: String::new(),
            amount: 0,
            description: String::new(),
            merchant: String::new(),
            category_id: None,
            tags: "[]".into(),
            notes: String::new(),
            frequency: String::new(),
            every: 1,
            day_of_month: None,
            next_date: at.date(),
            end_date: None,
            active: true,
            created_at: at,
            updated_at: at,
            version: 1,
        };
        let row = self.build_recurring(row, input)?;
        let currency = self
            .currency_of_account(&row.account_id)
            .map(|c| c.code())
            .unwrap_or("XXX");
        let reply = json_reply(201, &recurring_view(&row, currency))?;
        Ok(Plan {
            ops: vec![WriteOp::InsertRecurring(row.clone())],
            events: Vec::new(),
            effects: vec![Effect::PutRecurring(Box::new(row))],
            reply,
        })
    }

    pub fn plan_update_recurring(&self, id: Uuid, input: RecurringInput) -> Result<Plan, ApiError> {
        let current = self.recurring.get(&id).ok_or(ApiError::NotFound)?;
        if let Some(v) = input.version {
            if v != current.version {
                return Err(ApiError::Conflict(format!(
                    "The rule was changed by someone else: your version is {v}, the current one is {}.",
                    current.version
                )));
            }
        }
        let mut row = current.clone();
        row.version += 1;
        row.updated_at = crate::store::now();
        let row = self.build_recurring(row, input)?;
        let currency = self
            .currency_of_account(&row.account_id)
            .map(|c| c.code())
            .unwrap_or("XXX");
        let reply = json_reply(200, &recurring_view(&row, currency))?;
        Ok(Plan {
            ops: vec![WriteOp::UpdateRecurring(row.clone())],
            events: Vec::new(),
            effects: vec![Effect::PutRecurring(Box::new(row))],
            reply,
        })
    }

    pub fn plan_delete_recurring(&self, id: Uuid) -> Result<Plan, ApiError> {
        let current = self.recurring.get(&id).ok_or(ApiError::NotFound)?;
        Ok(Plan {
            ops: vec![WriteOp::DeleteRecurring(current.id.clone())],
            events: Vec::new(),
            effects: vec![Effect::RemoveRecurring(id)],
            reply: Reply {
                status: 204,
                body: String::new(),
            },
        })
    }

    /// The occurrence ids every due rule would create now (read from the database by the caller
    /// to skip ones that already exist).
    pub fn due_occurrences(&self, today: NaiveDate) -> Vec<(String, Vec<String>)> {
        self.recurring
            .values()
            .filter(|r| r.active)
            .filter_map(|r| {
                let s = schedule(r)?;
                let (dates, _) = s.due(r.next_date, r.end_date, today, MAX_CATCH_UP);
                (!dates.is_empty()).then(|| {
                    (
                        r.account_id.clone(),
                        dates
                            .iter()
                            .map(|d| format!("recurring:{}:{d}", r.id))
                            .collect(),
                    )
                })
            })
            .collect()
    }

    /// Create every due occurrence not created before, and move each rule's next date on.
    pub fn plan_run_recurring(
        &self,
        user_id: &str,
        today: NaiveDate,
        existing: &[String],
    ) -> Result<Plan, ApiError> {
        // Each due rule with its new transactions and its row moved on to the next date.
        let mut due: Vec<(RecurringRow, Vec<NewTransaction>)> = Vec::new();
        for r in self.recurring.values().filter(|r| r.active) {
            let Some(s) = schedule(r) else { continue };
            let Some(currency) = self.currency_of_account(&r.account_id) else {
                continue;
            };
            let Ok(account_id) = r.account_id.parse::<Uuid>() else {
                continue;
            };
            if self
                .accounts
                .get(&account_id)
                .is_some_and(|a| a.row.archived)
            {
                continue;
            }
            let (dates, next) = s.due(r.next_date, r.end_date, today, MAX_CATCH_UP);
            if dates.is_empty() {
                continue;
            }
            let mut inputs = Vec::new();
            for d in dates {
                let external = format!("recurring:{}:{d}", r.id);
                if existing.contains(&external) {
                    continue;
                }
                inputs.push(NewTransaction {
                    account_id,
                    amount: format_minor(r.amount, currency.exponent()),
                    date: d,
                    occurred_at: None,
                    description: r.description.clone(),
                    merchant: r.merchant.clone(),
                    category_id: r
                        .category_id
                        .as_deref()
                        .and_then(|c| c.parse().ok())
                        .filter(|c| self.categories.contains_key(c)),
                    category_source: r.category_id.as_ref().map(|_| CategorySource::User),
                    confidence: None,
                    tags: serde_json::from_str(&r.tags).unwrap_or_default(),
                    notes: r.notes.clone(),
                    foreign_amount: None,
                    foreign_currency: None,
                    source: TxnSource::Recurring,
                    external_id: Some(external),
                });
            }
            let mut row = r.clone();
            match next {
                Some(n) if r.end_date.is_none_or(|e| n <= e) => row.next_date = n,
                Some(n) => {
                    row.next_date = n;
                    row.active = false;
                }
                None => row.active = false,
            }
            row.updated_at = crate::store::now();
            // Categorized like any other new transaction (rules, merchant memory, classifier)
            // when the plan names no category; its rules' tags and notes apply too.
            for input in &mut inputs {
                if let Some(item) = self.item_for(input) {
                    super::categorize::assign(input, &self.model.categorize(&item));
                }
            }
            due.push((row, inputs));
        }
        let plan_inputs = |inputs: Vec<NewTransaction>| -> Result<Plan, ApiError> {
            if inputs.is_empty() {
                return Ok(Plan {
                    ops: Vec::new(),
                    events: Vec::new(),
                    effects: Vec::new(),
                    reply: Reply {
                        status: 200,
                        body: String::new(),
                    },
                });
            }
            Ok(self.plan_create_transactions(user_id, inputs)?.1)
        };
        let all = due.iter().flat_map(|(_, i)| i.iter().cloned()).collect();
        let (mut plan, updates) = match plan_inputs(all) {
            Ok(plan) => (
                plan,
                due.into_iter().map(|(row, _)| row).collect::<Vec<_>>(),
            ),
            // One rule's transactions cannot be written (say, the balance would pass the limit):
            // that rule stays due for the next run, and the others go ahead without it.
            Err(e) if due.len() > 1 => {
                let (mut inputs, mut rows) = (Vec::new(), Vec::new());
                for (row, ins) in due {
                    match plan_inputs(ins.clone()) {
                        Ok(_) => {
                            inputs.extend(ins);
                            rows.push(row);
                        }
                        Err(why) => tracing::warn!(
                            user_id,
                            rule = %row.id,
                            error = %why,
                            "a recurring rule cannot be written; it stays due"
                        ),
                    }
                }
                if rows.is_empty() {
                    return Err(e);
                }
                (plan_inputs(inputs)?, rows)
            }
            Err(e) => return Err(e),
        };
        let created = plan
            .ops
            .iter()
            .map(|op| match op {
                WriteOp::InsertTransactions(rows) => rows.len(),
                _ => 0,
            })
            .sum::<usize>();
        for row in updates {
            plan.ops.push(WriteOp::UpdateRecurring(row.clone()));
            plan.effects.push(Effect::PutRecurring(Box::new(row)));
        }
        plan.reply = json_reply(200, &json!({ "created": created }))?;
        Ok(plan)
    }

    // ---- goals ------------------------------------------------------------------------------

    /// Current progress toward a goal: the linked account's balance, or the contributions.
    pub fn goal_current(&self, g: &GoalRow) -> i64 {
        match g
            .account_id
            .as_deref()
            .and_then(|a| a.parse::<Uuid>().ok())
            .and_then(|a| self.accounts.get(&a))
        {
            Some(account) => account.balance(),
            None => g.contributed,
        }
    }

    pub fn goal_view(&self, g: &GoalRow) -> Value {
        let e = exponent(&g.currency);
        let current = self.goal_current(g);
        let percent = if g.target_amount > 0 {
            (i128::from(current.max(0)) * 100 / i128::from(g.target_amount)) as i64
        } else {
            0
        };
        json!({
            "id": g.id,
            "name": g.name,
            "target": format_minor(g.target_amount, e),
            "currency": g.currency,
            "target_date": g.target_date,
            "account_id": g.account_id,
            "contributed": format_minor(g.contributed, e),
            "current": format_minor(current, e),
            "remaining": format_minor((g.target_amount - current).max(0), e),
            "percent": percent,
            "reached": g.reached_at.is_some(),
            "reached_at": g.reached_at.map(utc),
            "version": g.version,
        })
    }

    fn build_goal(&self, mut row: GoalRow, input: GoalInput) -> Result<GoalRow, ApiError> {
        let mut errors: Vec<FieldError> = Vec::new();
        if let Some(name) = &input.name {
            match parse_name(name, 100) {
                Ok(n) => row.name = n,
                Err(m) => errors.push(FieldError::new("name", m)),
            }
        }
        if let Some(link) = input.account_id {
            match link {
                Some(a) => match self.accounts.get(&a) {
                    Some(acct) => {
                        row.account_id = Some(acct.row.id.clone());
                        row.currency = acct.currency.code().to_string();
                    }
                    None => errors.push(FieldError::new("account_id", "no such account")),
                },
                None => row.account_id = None,
            }
        }
        match (input.currency, &row.account_id) {
            (Some(c), None) => row.currency = c.code().to_string(),
            // A linked goal is in its account's currency: another one is refused, not dropped.
            (Some(c), Some(_)) if c.code() != row.currency => errors.push(FieldError::new(
                "currency",
                format!(
                    "is {} for a goal linked to an account in {}; leave it out",
                    c.code(),
                    row.currency
                ),
            )),
            _ => {}
        }
        let currency =
            Currency::parse(&row.currency).map_err(|m| ApiError::validation("currency", m))?;
        if let Some(t) = &input.target {
            match parse_amount(t, currency) {
                Ok(v) if v > 0 => row.target_amount = v,
                Ok(_) => errors.push(FieldError::new("target", "must be greater than zero")),
                Err(e) => errors.push(FieldError::new("target", e.to_string())),
            }
        }
        if let Some(d) = input.target_date {
            row.target_date = d;
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(row)
    }

    pub fn plan_create_goal(&self, user_id: &str, input: GoalInput) -> Result<Plan, ApiError> {
        let mut missing = Vec::new();
        if input.name.is_none() {
            missing.push(FieldError::new("name", "is required"));
        }
        if input.target.is_none() {
            missing.push(FieldError::new("target", "is required"));
        }
        if !missing.is_empty() {
            return Err(ApiError::Validation(missing));
        }
        let at = crate::store::now();
        let row = GoalRow {
            id: Uuid::now_v7().to_string(),
            user_id: user_id.to_string(),
            name: String::new(),
            target_amount: 0,
            currency: input
                .currency
                .map(|c| c.code().to_string())
                .unwrap_or_else(|| "USD".into()),
            target_date: None,
            account_id: None,
            contributed: 0,
            reached_at: None,
            created_at: at,
            updated_at: at,
            version: 1,
        };
        let row = self.build_goal(row, input)?;
        let reply = json_reply(201, &self.goal_view(&row))?;
        Ok(Plan {
            ops: vec![WriteOp::InsertGoal(row.clone())],
            events: Vec::new(),
            effects: vec![Effect::PutGoal(Box::new(row))],
            reply,
        })
    }

    pub fn plan_update_goal(
        &self,
        id: Uuid,
        input: GoalInput,
        contribution: Option<String>,
    ) -> Result<Plan, ApiError> {
        let current = self.goals.get(&id).ok_or(ApiError::NotFound)?;
        if let Some(v) = input.version {
            if v != current.version {
                return Err(ApiError::Conflict(format!(
                    "The goal was changed by someone else: your version is {v}, the current one is {}.",
                    current.version
                )));
            }
        }
        let mut row = current.clone();
        row.version += 1;
        row.updated_at = crate::store::now();
        let mut row = self.build_goal(row, input)?;
        if let Some(amount) = contribution {
            if row.account_id.is_some() {
                return Err(ApiError::validation(
                    "amount",
                    "this goal follows an account's balance; add money to the account instead",
                ));
            }
            let currency =
                Currency::parse(&row.currency).map_err(|m| ApiError::validation("currency", m))?;
            let v = parse_minor(&amount, currency)
                .map_err(|e| ApiError::validation("amount", e.to_string()))?;
            if v == 0 {
                return Err(ApiError::validation("amount", "must not be zero"));
            }
            row.contributed = row.contributed.saturating_add(v);
        }
        let reply = json_reply(200, &self.goal_view(&row))?;
        Ok(Plan {
            ops: vec![WriteOp::UpdateGoal(row.clone())],
            events: Vec::new(),
            effects: vec![Effect::PutGoal(Box::new(row))],
            reply,
        })
    }

    pub fn plan_delete_goal(&self, id: Uuid) -> Result<Plan, ApiError> {
        let current = self.goals.get(&id).ok_or(ApiError::NotFound)?;
        Ok(Plan {
            ops: vec![WriteOp::DeleteGoal(current.id.clone())],
            events: Vec::new(),
            effects: vec![Effect::RemoveGoal(id)],
            reply: Reply {
                status: 204,
                body: String::new(),
            },
        })
    }

    /// Goals whose progress moved since `last`: `goal.progress` events, and `goal.reached` once
    /// when a goal gets to its target (re-armed if it falls back below).
    pub fn plan_goal_progress(
        &self,
        last: &std::collections::HashMap<Uuid, i64>,
    ) -> Option<(Plan, Vec<(Uuid, i64)>)> {
        let mut events = Vec::new();
        let mut ops = Vec::new();
        let mut effects = Vec::new();
        let mut seen = Vec::new();
        for (id, g) in &self.goals {
            let current = self.goal_current(g);
            if last.get(id) == Some(&current) {
                continue;
            }
            seen.push((*id, current));
            let view = self.goal_view(g);
            events.push(("goal.progress", view.clone()));
            let reached = current >= g.target_amount;
            if reached != g.reached_at.is_some() {
                let mut row = g.clone();
                row.reached_at = reached.then(crate::store::now);
                if reached {
                    events.push(("goal.reached", self.goal_view(&row)));
                }
                ops.push(WriteOp::UpdateGoal(row.clone()));
                effects.push(Effect::PutGoal(Box::new(row)));
            }
        }
        if seen.is_empty() {
            return None;
        }
        Some((
            Plan {
                ops,
                events,
                effects,
                reply: Reply {
                    status: 200,
                    body: String::new(),
                },
            },
            seen,
        ))
    }
}
