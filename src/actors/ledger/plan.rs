//! Turning commands into plans: validation against the Ledger's state, the rows to write, the
//! events, the answer, and the effects on memory. Nothing here writes or waits.
use chrono::NaiveDateTime;
use serde_json::{json, Value};
use uuid::Uuid;

use super::messages::*;
use super::views::{AccountView, CategoryView, TransactionView, TransferView};
use super::{AccountState, CategoryState, Effect, Facts, LedgerState};
use crate::domain::ledger::{
    parse_name, parse_tags, parse_text, CategoryKind, CategorySource, TxnSource,
};
use crate::domain::money::{format_minor, parse_amount, MAX_MINOR};
use crate::domain::Currency;
use crate::error::{ApiError, FieldError};
use crate::store::ledger::{AccountRow, CategoryRow, RateRow, TransactionRow};
use crate::store::writer::WriteOp;

/// What a command will do, once committed.
/// An import chunk planned as far as it can be before its turn to commit (see
/// [`LedgerState::prepare_import_chunk`]).
pub(crate) struct PreparedChunk {
    account_id: Uuid,
    created: usize,
    delta: i128,
    /// The categories its rows name.
    categories: std::collections::HashSet<Uuid>,
    ops: Vec<WriteOp>,
    effects: Vec<Effect>,
}

pub(crate) struct Plan {
    pub ops: Vec<WriteOp>,
    pub events: Vec<(&'static str, Value)>,
    pub effects: Vec<Effect>,
    pub reply: Reply,
}

pub(super) fn json_reply<T: serde::Serialize>(status: u16, body: &T) -> Result<Reply, ApiError> {
    Ok(Reply {
        status,
        body: serde_json::to_string(body).map_err(ApiError::internal)?,
    })
}

pub(super) fn now() -> NaiveDateTime {
    crate::store::now()
}

/// Collects field errors of one command.
#[derive(Default)]
struct Fields(Vec<FieldError>);

impl Fields {
    fn check<T>(&mut self, field: &str, r: Result<T, String>) -> Option<T> {
        r.map_err(|m| self.0.push(FieldError::new(field, m))).ok()
    }

    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    fn done(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.0))
        }
    }
}

fn money(text: &str, currency: Currency) -> Result<i64, String> {
    parse_amount(text, currency).map_err(|e| format!("{e}"))
}

/// An account's balance after a change of `delta`, if it stays within ±[`MAX_MINOR`] (or moves
/// back toward zero: a balance already beyond it, from before the limit, can always be mended).
fn bounded_balance(account: &AccountState, delta: i128) -> Result<i64, ApiError> {
    let old = account.exact_balance();
    let new = old + delta;
    if new.abs() <= i128::from(MAX_MINOR) || new.abs() <= old.abs() {
        if let Ok(new) = i64::try_from(new) {
            return Ok(new);
        }
    }
    let exponent = account.currency.exponent();
    Err(ApiError::validation(
        "amount",
        format!(
            "would take the balance of {} beyond {} either way (the largest balance an account can hold)",
            account.row.name,
            format_minor(MAX_MINOR, exponent)
        ),
    ))
}

pub(super) fn check_version(current: i64, given: Option<i64>) -> Result<(), ApiError> {
    match given {
        Some(v) if v != current => Err(ApiError::Conflict(format!(
            "The resource was changed by someone else: your version is {v}, the current one is {current}. Reload and try again."
        ))),
        _ => Ok(()),
    }
}

fn parse_color(raw: &str) -> Result<String, String> {
    let ok =
        raw.len() == 7 && raw.starts_with('#') && raw[1..].chars().all(|c| c.is_ascii_hexdigit());
    if ok {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err("must be a colour such as #1e88e5".into())
    }
}

fn parse_number_hint(raw: &str) -> Result<String, String> {
    let hint = raw.trim();
    if hint.is_empty() || hint.len() > 8 || !hint.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(
            "must be the last 1 to 8 digits or letters of the account or card number".into(),
        );
    }
    Ok(hint.to_string())
}

fn balance_event(account: &AccountState, balance: i64) -> (&'static str, Value) {
    (
        "balance.updated",
        json!({
            "account_id": account.row.id,
            "balance": format_minor(balance, account.currency.exponent()),
            "currency": account.currency.code(),
        }),
    )
}

impl LedgerState {
    fn account(&self, id: Uuid) -> Option<&AccountState> {
        self.accounts.get(&id)
    }

    /// `balance.updated` for every account the deltas touch; a 422 should one of them go
    /// beyond the largest balance.
    fn balance_events<D: Into<i128> + Copy>(
        &self,
        deltas: &[(Uuid, D)],
    ) -> Result<Vec<(&'static str, Value)>, ApiError> {
        let mut seen: Vec<Uuid> = Vec::new();
        let mut out = Vec::new();
        for (id, _) in deltas {
            if seen.contains(id) {
                continue;
            }
            seen.push(*id);
            if let Some(account) = self.accounts.get(id) {
                let delta: i128 = deltas
                    .iter()
                    .filter(|(a, _)| a == id)
                    .map(|(_, d)| (*d).into())
                    .sum();
                out.push(balance_event(account, bounded_balance(account, delta)?));
            }
        }
        Ok(out)
    }

    // ---- accounts -------------------------------------------------------------------------

    pub fn plan_create_account(&self, user_id: &str, input: NewAccount) -> Result<Plan, ApiError> {
        let mut f = Fields::default();
        let name = f.check("name", parse_name(&input.name, 100));
        let opening = match &input.opening_balance {
            Some(text) => f.check("opening_balance", money(text, input.currency)),
            None => Some(0),
        };
        let hint = match &input.number_hint {
            Some(h) => f.check("number_hint", parse_number_hint(h)).map(Some),
            None => Some(None),
        };
        if let Some(name) = &name {
            if self
                .accounts
                .values()
                .any(|a| a.row.name.eq_ignore_ascii_case(name))
            {
                f.add("name", "another account already has this name");
            }
        }
        f.done()?;
        let (Some(name), Some(opening), Some(hint)) = (name, opening, hint) else {
            return Err(ApiError::internal(anyhow::anyhow!(
                "validated fields missing"
            )));
        };
        let at = now();
        let row = AccountRow {
            id: Uuid::now_v7().to_string(),
            user_id: user_id.to_string(),
            name,
            kind: input.kind.as_str().to_string(),
            currency: input.currency.code().to_string(),
            opening_balance: opening,
            opening_date: input.opening_date.unwrap_or_else(|| at.date()),
            number_hint: hint,
            archived: false,
            created_at: at,
            updated_at: at,
            version: 1,
        };
        let state = AccountState {
            row: row.clone(),
            currency: input.currency,
            sum: 0,
        };
        let reply = json_reply(201, &AccountView::new(&row, opening))?;
        Ok(Plan {
            ops: vec![WriteOp::InsertAccount(row)],
            events: vec![balance_event(&state, opening)],
            effects: vec![Effect::PutAccount(Box::new(state))],
            reply,
        })
    }

    pub fn plan_update_account(&self, id: Uuid, patch: AccountPatch) -> Result<Plan, ApiError> {
        let account = self.account(id).ok_or(ApiError::NotFound)?;
        check_version(account.row.version, patch.version)?;
        let mut f = Fields::default();
        let mut row = account.row.clone();
        if let Some(name) = &patch.name {
            if let Some(name) = f.check("name", parse_name(name, 100)) {
                if self
                    .accounts
                    .iter()
                    .any(|(other, a)| *other != id && a.row.name.eq_ignore_ascii_case(&name))
                {
                    f.add("name", "another account already has this name");
                }
                row.name = name;
            }
        }
        if let Some(kind) = patch.kind {
            row.kind = kind.as_str().to_string();
        }
        if let Some(text) = &patch.opening_balance {
            if let Some(v) = f.check("opening_balance", money(text, account.currency)) {
                row.opening_balance = v;
            }
        }
        if let Some(date) = patch.opening_date {
            row.opening_date = date;
        }
        match &patch.number_hint {
            Some(Some(h)) => row.number_hint = f.check("number_hint", parse_number_hint(h)),
            Some(None) => row.number_hint = None,
            None => {}
        }
        if let Some(archived) = patch.archived {
            row.archived = archived;
        }
        f.done()?;
        row.version += 1;
        row.updated_at = now();
        let state = AccountState {
            row: row.clone(),
            currency: account.currency,
            sum: account.sum,
        };
        let balance = bounded_balance(
            account,
            i128::from(row.opening_balance) - i128::from(account.row.opening_balance),
        )
        .map_err(|_| {
            ApiError::validation(
                "opening_balance",
                format!(
                    "would take the balance beyond {} either way (the largest balance an account can hold)",
                    format_minor(MAX_MINOR, account.currency.exponent())
                ),
            )
        })?;
        let mut events = Vec::new();
        if row.opening_balance != account.row.opening_balance {
            events.push(balance_event(&state, balance));
        }
        let reply = json_reply(200, &AccountView::new(&row, balance))?;
        Ok(Plan {
            ops: vec![WriteOp::UpdateAccount(row)],
            events,
            effects: vec![Effect::PutAccount(Box::new(state))],
            reply,
        })
    }

    /// `transaction_count` and `counterpart_legs` (other legs of transfers touching the account)
    /// are read from the database by the caller.
    pub fn plan_delete_account(
        &self,
        id: Uuid,
        cascade: bool,
        transaction_count: i64,
        counterpart_legs: Vec<TransactionRow>,
    ) -> Result<Plan, ApiError> {
        let account = self.account(id).ok_or(ApiError::NotFound)?;
        if transaction_count > 0 && !cascade {
            return Err(ApiError::Conflict(format!(
                "The account has {transaction_count} transactions. Archive it (PATCH archived=true) to keep them, or delete with ?cascade=true to delete them too."
            )));
        }
        let mut ops = Vec::new();
        let mut events = Vec::new();
        let mut deltas = Vec::new();
        for leg in &counterpart_legs {
            ops.push(WriteOp::DeleteTransaction(leg.id.clone()));
            events.push((
                "transaction.deleted",
                json!({ "id": leg.id, "account_id": leg.account_id, "transfer_id": leg.transfer_id }),
            ));
            if let Ok(a) = leg.account_id.parse::<Uuid>() {
                deltas.push((a, -leg.amount));
            }
        }
        events.extend(self.balance_events(&deltas)?);
        ops.push(WriteOp::DeleteAccount(account.row.id.clone()));
        events.push((
            "balance.updated",
            json!({ "account_id": account.row.id, "balance": null, "currency": account.currency.code(), "deleted": true }),
        ));
        Ok(Plan {
            ops,
            events,
            effects: vec![Effect::Reload],
            reply: Reply {
                status: 204,
                body: String::new(),
            },
        })
    }

    // ---- categories -----------------------------------------------------------------------

    fn sibling_named(&self, parent: Option<Uuid>, name: &str, except: Option<Uuid>) -> bool {
        self.categories.iter().any(|(id, c)| {
            Some(*id) != except && c.parent == parent && c.row.name.eq_ignore_ascii_case(name)
        })
    }

    pub fn plan_create_category(
        &self,
        user_id: &str,
        input: NewCategory,
    ) -> Result<Plan, ApiError> {
        let mut f = Fields::default();
        let name = f.check("name", parse_name(&input.name, 60));
        let parent = match input.parent_id {
            Some(pid) => match self.categories.get(&pid) {
                Some(p) if p.parent.is_some() => {
                    f.add(
                        "parent_id",
                        "categories have two levels: a sub-category cannot have children",
                    );
                    None
                }
                Some(p) => Some(p),
                None => {
                    f.add("parent_id", "no such category");
                    None
                }
            },
            None => None,
        };
        let kind = match (input.kind, parent) {
            (Some(k), Some(p)) if k != p.kind => {
                f.add("kind", format!("must match the parent's kind ({})", p.kind));
                None
            }
            (Some(k), _) => Some(k),
            (None, Some(p)) => Some(p.kind),
            (None, None) => Some(CategoryKind::Expense),
        };
        let color = input
            .color
            .as_deref()
            .and_then(|c| f.check("color", parse_color(c)));
        let icon = input
            .icon
            .as_deref()
            .and_then(|i| f.check("icon", parse_name(i, 40)));
        if let Some(name) = &name {
            if self.sibling_named(input.parent_id, name, None) {
                f.add(
                    "name",
                    "a category with this name already exists at this level",
                );
            }
        }
        f.done()?;
        let (Some(name), Some(kind)) = (name, kind) else {
            return Err(ApiError::internal(anyhow::anyhow!(
                "validated fields missing"
            )));
        };
        let at = now();
        let row = CategoryRow {
            id: Uuid::now_v7().to_string(),
            user_id: user_id.to_string(),
            name,
            parent_id: input.parent_id.map(|p| p.to_string()),
            kind: kind.as_str().to_string(),
            color,
            icon,
            created_at: at,
            updated_at: at,
            version: 1,
        };
        let reply = json_reply(201, &CategoryView::new(&row))?;
        Ok(Plan {
            ops: vec![WriteOp::InsertCategory(row.clone())],
            events: Vec::new(),
            effects: vec![Effect::PutCategory(Box::new(CategoryState {
                row,
                kind,
                parent: input.parent_id,
            }))],
            reply,
        })
    }

    pub fn plan_update_category(&self, id: Uuid, patch: CategoryPatch) -> Result<Plan, ApiError> {
        let current = self.categories.get(&id).ok_or(ApiError::NotFound)?;
        check_version(current.row.version, patch.version)?;
        let mut f = Fields::default();
        let mut row = current.row.clone();
        let mut parent = current.parent;
        let mut kind = current.kind;
        if let Some(new_parent) = patch.parent_id {
            match new_parent {
                Some(pid) if pid == id => f.add("parent_id", "a category cannot be its own parent"),
                Some(pid) => match self.categories.get(&pid) {
                    Some(p) if p.parent.is_some() => f.add(
                        "parent_id",
                        "categories have two levels: a sub-category cannot have children",
                    ),
                    Some(_) if self.categories.values().any(|c| c.parent == Some(id)) => f.add(
                        "parent_id",
                        "this category has sub-categories, so it must stay at the top level",
                    ),
                    Some(p) => {
                        parent = Some(pid);
                        kind = p.kind;
                    }
                    None => f.add("parent_id", "no such category"),
                },
                None => parent = None,
            }
        }
        if let Some(name) = &patch.name {
            if let Some(name) = f.check("name", parse_name(name, 60)) {
                row.name = name;
            }
        }
        if self.sibling_named(parent, &row.name, Some(id)) {
            f.add(
                "name",
                "a category with this name already exists at this level",
            );
        }
        match &patch.color {
            Some(Some(c)) => row.color = f.check("color", parse_color(c)),
            Some(None) => row.color = None,
            None => {}
        }
        match &patch.icon {
            Some(Some(i)) => row.icon = f.check("icon", parse_name(i, 40)),
            Some(None) => row.icon = None,
            None => {}
        }
        f.done()?;
        row.parent_id = parent.map(|p| p.to_string());
        row.kind = kind.as_str().to_string();
        row.version += 1;
        row.updated_at = now();
        let reply = json_reply(200, &CategoryView::new(&row))?;
        Ok(Plan {
            ops: vec![WriteOp::UpdateCategory(row.clone())],
            events: Vec::new(),
            effects: vec![Effect::PutCategory(Box::new(CategoryState {
                row,
                kind,
                parent,
            }))],
            reply,
        })
    }

    pub fn plan_delete_category(&self, id: Uuid) -> Result<Plan, ApiError> {
        let current = self.categories.get(&id).ok_or(ApiError::NotFound)?;
        if self.categories.values().any(|c| c.parent == Some(id)) {
            return Err(ApiError::Conflict(
                "The category has sub-categories; delete or move them first.".into(),
            ));
        }
        // Rules and budgets that name it would go on naming nothing, silently.
        let mut users: Vec<String> = self
            .rules
            .iter()
            .filter(|r| {
                super::categorize::spec_of(r).is_some_and(|spec| spec.categories().any(|c| c == id))
            })
            .map(|r| format!("rule \"{}\"", r.name))
            .collect();
        users.extend(
            self.budgets
                .values()
                .filter(|b| b.categories.contains(&id))
                .map(|b| format!("budget \"{}\"", b.row.name)),
        );
        if !users.is_empty() {
            users.sort();
            return Err(ApiError::Conflict(format!(
                "The category is used by {}; change or delete those first.",
                users.join(", ")
            )));
        }
        Ok(Plan {
            ops: vec![
                WriteOp::UncategorizeTransactions(current.row.id.clone()),
                WriteOp::DeleteCategory(current.row.id.clone()),
            ],
            events: Vec::new(),
            effects: vec![Effect::RemoveCategory(id)],
            reply: Reply {
                status: 204,
                body: String::new(),
            },
        })
    }

    // ---- transactions ---------------------------------------------------------------------

    fn writable_account(&self, id: Uuid, field: &str, f: &mut Fields) -> Option<&AccountState> {
        match self.accounts.get(&id) {
            Some(a) if a.row.archived => {
                f.add(
                    field,
                    "the account is archived; unarchive it to add or change transactions",
                );
                None
            }
            Some(a) => Some(a),
            None => {
                f.add(field, "no such account");
                None
            }
        }
    }

    pub(super) fn facts(row: &TransactionRow) -> Option<Facts> {
        Some(Facts {
            account: row.account_id.parse().ok()?,
            amount: row.amount,
            date: row.date,
            category: row.category_id.as_deref().and_then(|c| c.parse().ok()),
            transfer: row.transfer_id.is_some(),
        })
    }

    pub fn plan_create_transactions(
        &self,
        user_id: &str,
        inputs: Vec<NewTransaction>,
    ) -> Result<(Vec<TransactionRow>, Plan), ApiError> {
        let at = now();
        let mut rows = Vec::with_capacity(inputs.len());
        let mut f = Fields::default();
        for input in inputs {
            let account = self.writable_account(input.account_id, "account_id", &mut f);
            let amount = account.and_then(|a| f.check("amount", money(&input.amount, a.currency)));
            if amount == Some(0) {
                f.add("amount", "must not be zero");
            }
            let description = f.check("description", parse_text(&input.description, 500));
            let merchant = f.check("merchant", parse_text(&input.merchant, 200));
            let notes = f.check("notes", parse_text(&input.notes, 5000));
            let tags = f.check("tags", parse_tags(&input.tags));
            if let Some(c) = input.category_id {
                if !self.categories.contains_key(&c) {
                    f.add("category_id", "no such category");
                }
            }
            let foreign = match (&input.foreign_amount, input.foreign_currency) {
                (Some(text), Some(cur)) => f
                    .check("foreign_amount", money(text, cur))
                    .map(|a| (Some(a), Some(cur))),
                (None, None) => Some((None, None)),
                (Some(_), None) => {
                    f.add("foreign_currency", "is required with foreign_amount");
                    None
                }
                (None, Some(_)) => {
                    f.add("foreign_amount", "is required with foreign_currency");
                    None
                }
            };
            if let Some(ext) = &input.external_id {
                if ext.is_empty() || ext.chars().count() > 200 {
                    f.add("external_id", "must have 1 to 200 characters");
                }
            }
            if !f.0.is_empty() {
                continue;
            }
            let (
                Some(account),
                Some(amount),
                Some(description),
                Some(merchant),
                Some(notes),
                Some(tags),
                Some((fa, fc)),
            ) = (account, amount, description, merchant, notes, tags, foreign)
            else {
                continue;
            };
            let source = input
                .category_source
                .unwrap_or(if input.category_id.is_some() {
                    CategorySource::User
                } else {
                    CategorySource::None
                });
            rows.push(TransactionRow {
                id: Uuid::now_v7().to_string(),
                user_id: user_id.to_string(),
                account_id: account.row.id.clone(),
                amount,
                currency: account.currency.code().to_string(),
                date: input.date,
                occurred_at: input.occurred_at.map(|t| t.naive_utc()),
                description,
                merchant,
                category_id: input.category_id.map(|c| c.to_string()),
                category_source: source.as_str().to_string(),
                confidence: input.confidence,
                tags: serde_json::to_string(&tags).map_err(ApiError::internal)?,
                notes,
                transfer_id: None,
                foreign_amount: fa,
                foreign_currency: fc.map(|c| c.code().to_string()),
                source: input.source.as_str().to_string(),
                external_id: input.external_id,
                created_at: at,
                updated_at: at,
                version: 1,
            });
        }
        f.done()?;
        let mut events = Vec::with_capacity(rows.len() * 2);
        let mut effects = Vec::with_capacity(rows.len());
        let mut deltas = Vec::new();
        for row in &rows {
            events.push(("transaction.created", json!(TransactionView::new(row))));
            if let Some(facts) = Self::facts(row) {
                deltas.push((facts.account, facts.amount));
                effects.push(Effect::Txn {
                    old: None,
                    new: Some(facts),
                });
            }
        }
        events.extend(self.balance_events(&deltas)?);
        let reply = match rows.as_slice() {
            [one] => json_reply(201, &TransactionView::new(one))?,
            many => json_reply(201, &json!({ "created": many.len() }))?,
        };
        let (lessons, memory) = self.lessons(user_id, &rows);
        effects.extend(lessons);
        Ok((
            rows.clone(),
            Plan {
                ops: std::iter::once(WriteOp::insert_transactions(rows))
                    .chain(memory)
                    .collect(),
                events,
                effects,
                reply,
            },
        ))
    }

    pub fn plan_update_transaction(
        &self,
        old: TransactionRow,
        patch: TransactionPatch,
    ) -> Result<Plan, ApiError> {
        check_version(old.version, patch.version)?;
        if old.transfer_id.is_some()
            && (patch.amount.is_some()
                || patch.account_id.is_some()
                || patch.date.is_some()
                || patch.foreign_amount.is_some()
                || patch.foreign_currency.is_some())
        {
            return Err(ApiError::Conflict(format!(
                "This transaction is a leg of a transfer; change its amount, account or date with PATCH /api/v1/transfers/{}.",
                old.transfer_id.as_deref().unwrap_or_default()
            )));
        }
        let mut f = Fields::default();
        let mut row = old.clone();
        let old_account: Uuid = old.account_id.parse().map_err(ApiError::internal)?;
        let account_id = patch.account_id.unwrap_or(old_account);
        let account = self.writable_account(account_id, "account_id", &mut f);
        if let Some(account) = account {
            if account.row.archived
                || self
                    .accounts
                    .get(&old_account)
                    .is_some_and(|a| a.row.archived)
            {
                f.add("account_id", "the account is archived");
            }
            let currency_changed = account.currency.code() != old.currency;
            match &patch.amount {
                Some(text) => {
                    if let Some(v) = f.check("amount", money(text, account.currency)) {
                        if v == 0 {
                            f.add("amount", "must not be zero");
                        }
                        row.amount = v;
                    }
                }
                None if currency_changed => f.add(
                    "amount",
                    format!(
                        "is required when moving to an account in {}",
                        account.currency
                    ),
                ),
                None => {}
            }
            row.account_id = account.row.id.clone();
            row.currency = account.currency.code().to_string();
        }
        if let Some(date) = patch.date {
            row.date = date;
        }
        if let Some(occurred) = patch.occurred_at {
            row.occurred_at = occurred.map(|t| t.naive_utc());
        }
        if let Some(d) = &patch.description {
            row.description = f
                .check("description", parse_text(d, 500))
                .unwrap_or_default();
        }
        if let Some(m) = &patch.merchant {
            row.merchant = f.check("merchant", parse_text(m, 200)).unwrap_or_default();
        }
        if let Some(n) = &patch.notes {
            row.notes = f.check("notes", parse_text(n, 5000)).unwrap_or_default();
        }
        if let Some(tags) = &patch.tags {
            if let Some(tags) = f.check("tags", parse_tags(tags)) {
                row.tags = serde_json::to_string(&tags).map_err(ApiError::internal)?;
            }
        }
        if let Some(category) = patch.category_id {
            match category {
                Some(c) if !self.categories.contains_key(&c) => {
                    f.add("category_id", "no such category")
                }
                Some(c) => {
                    row.category_id = Some(c.to_string());
                    row.category_source = CategorySource::User.as_str().to_string();
                    row.confidence = None;
                }
                None => {
                    row.category_id = None;
                    row.category_source = CategorySource::None.as_str().to_string();
                    row.confidence = None;
                }
            }
        }
        let foreign_currency = match patch.foreign_currency {
            Some(c) => c,
            None => row
                .foreign_currency
                .as_deref()
                .and_then(|c| Currency::parse(c).ok()),
        };
        match (&patch.foreign_amount, foreign_currency) {
            (Some(Some(text)), Some(cur)) => {
                row.foreign_amount = f.check("foreign_amount", money(text, cur));
                row.foreign_currency = Some(cur.code().to_string());
            }
            (Some(Some(_)), None) => f.add("foreign_currency", "is required with foreign_amount"),
            (Some(None), _) => {
                row.foreign_amount = None;
                row.foreign_currency = None;
            }
            (None, cur) => {
                if patch.foreign_currency.is_some() && row.foreign_amount.is_none() && cur.is_some()
                {
                    f.add("foreign_amount", "is required with foreign_currency");
                }
                row.foreign_currency = cur.map(|c| c.code().to_string());
            }
        }
        f.done()?;
        row.version += 1;
        row.updated_at = now();
        let old_facts = Self::facts(&old);
        let new_facts = Self::facts(&row);
        let mut deltas = Vec::new();
        if let (Some(o), Some(n)) = (old_facts, new_facts) {
            if o.account != n.account || o.amount != n.amount {
                deltas.push((o.account, -o.amount));
                deltas.push((n.account, n.amount));
            }
        }
        let mut events = vec![("transaction.updated", json!(TransactionView::new(&row)))];
        events.extend(self.balance_events(&deltas)?);
        let reply = json_reply(200, &TransactionView::new(&row))?;
        let mut effects = vec![Effect::Txn {
            old: old_facts,
            new: new_facts,
        }];
        let mut ops = Vec::with_capacity(2);
        // A category chosen by hand teaches merchant memory and the classifier at once.
        if matches!(patch.category_id, Some(Some(_))) {
            let (lessons, memory) = self.lessons(&row.user_id, [&row]);
            effects.extend(lessons);
            ops.extend(memory);
        }
        ops.insert(0, WriteOp::UpdateTransaction(row));
        Ok(Plan {
            ops,
            events,
            effects,
            reply,
        })
    }

    /// Delete one transaction, or both legs when it belongs to a transfer (`legs` given).
    pub fn plan_delete_transactions(&self, rows: Vec<TransactionRow>) -> Result<Plan, ApiError> {
        let mut ops = Vec::new();
        let mut events = Vec::new();
        let mut effects = Vec::new();
        let mut deltas = Vec::new();
        for row in &rows {
            ops.push(WriteOp::DeleteTransaction(row.id.clone()));
            events.push((
                "transaction.deleted",
                json!({ "id": row.id, "account_id": row.account_id, "transfer_id": row.transfer_id }),
            ));
            if let Some(facts) = Self::facts(row) {
                deltas.push((facts.account, -facts.amount));
                effects.push(Effect::Txn {
                    old: Some(facts),
                    new: None,
                });
            }
        }
        events.extend(self.balance_events(&deltas)?);
        Ok(Plan {
            ops,
            events,
            effects,
            reply: Reply {
                status: 204,
                body: String::new(),
            },
        })
    }

    // ---- transfers ------------------------------------------------------------------------

    pub fn plan_create_transfer(
        &self,
        user_id: &str,
        input: NewTransfer,
    ) -> Result<Plan, ApiError> {
        let mut f = Fields::default();
        if input.from_account_id == input.to_account_id {
            f.add(
                "to_account_id",
                "must be another account than from_account_id",
            );
        }
        let from = self.writable_account(input.from_account_id, "from_account_id", &mut f);
        let to = self.writable_account(input.to_account_id, "to_account_id", &mut f);
        let amount = from.and_then(|a| f.check("amount", money(&input.amount, a.currency)));
        if amount.is_some_and(|a| a <= 0) {
            f.add("amount", "must be greater than zero");
        }
        let to_amount = match (from, to, &input.to_amount) {
            (Some(a), Some(b), None) if a.currency == b.currency => amount,
            (Some(_), Some(b), Some(text)) => {
                let v = f.check("to_amount", money(text, b.currency));
                if v.is_some_and(|v| v <= 0) {
                    f.add("to_amount", "must be greater than zero");
                }
                if let (Some(a_cur), Some(v)) = (from.map(|a| a.currency), v) {
                    if a_cur == b.currency && Some(v) != amount {
                        f.add(
                            "to_amount",
                            "must equal amount between accounts of the same currency",
                        );
                    }
                }
                v
            }
            (Some(a), Some(b), None) => {
                f.add(
                    "to_amount",
                    format!(
                        "is required: the accounts are in {} and {}",
                        a.currency, b.currency
                    ),
                );
                None
            }
            _ => None,
        };
        let description = f.check("description", parse_text(&input.description, 500));
        let notes = f.check("notes", parse_text(&input.notes, 5000));
        let tags = f.check("tags", parse_tags(&input.tags));
        f.done()?;
        let (
            Some(from),
            Some(to),
            Some(amount),
            Some(to_amount),
            Some(description),
            Some(notes),
            Some(tags),
        ) = (from, to, amount, to_amount, description, notes, tags)
        else {
            return Err(ApiError::internal(anyhow::anyhow!(
                "validated fields missing"
            )));
        };
        let at = now();
        let transfer_id = Uuid::now_v7().to_string();
        let tags = serde_json::to_string(&tags).map_err(ApiError::internal)?;
        let cross = from.currency != to.currency;
        let leg = |account: &AccountState,
                   amount: i64,
                   other: &AccountState,
                   other_amount: i64,
                   text: String| TransactionRow {
            id: Uuid::now_v7().to_string(),
            user_id: user_id.to_string(),
            account_id: account.row.id.clone(),
            amount,
            currency: account.currency.code().to_string(),
            date: input.date,
            occurred_at: None,
            description: text,
            merchant: String::new(),
            category_id: None,
            category_source: CategorySource::None.as_str().to_string(),
            confidence: None,
            tags: tags.clone(),
            notes: notes.clone(),
            transfer_id: Some(transfer_id.clone()),
            foreign_amount: cross.then_some(other_amount.abs()),
            foreign_currency: cross.then(|| other.currency.code().to_string()),
            source: "api".into(),
            external_id: None,
            created_at: at,
            updated_at: at,
            version: 1,
        };
        let out_text = if description.is_empty() {
            format!("Transfer to {}", to.row.name)
        } else {
            description.clone()
        };
        let in_text = if description.is_empty() {
            format!("Transfer from {}", from.row.name)
        } else {
            description
        };
        let out_leg = leg(from, -amount, to, to_amount, out_text);
        let in_leg = leg(to, to_amount, from, amount, in_text);
        self.transfer_plan(transfer_id, out_leg, in_leg, None, 201)
    }

    fn transfer_plan(
        &self,
        transfer_id: String,
        out_leg: TransactionRow,
        in_leg: TransactionRow,
        old: Option<(TransactionRow, TransactionRow)>,
        status: u16,
    ) -> Result<Plan, ApiError> {
        let view = TransferView {
            id: transfer_id,
            from: TransactionView::new(&out_leg),
            to: TransactionView::new(&in_leg),
        };
        let kind = if old.is_some() {
            "transaction.updated"
        } else {
            "transaction.created"
        };
        let mut events = vec![
            (kind, json!(TransactionView::new(&out_leg))),
            (kind, json!(TransactionView::new(&in_leg))),
        ];
        let mut deltas = Vec::new();
        let mut effects = Vec::new();
        let new_facts = [Self::facts(&out_leg), Self::facts(&in_leg)];
        let old_facts = match &old {
            Some((o, i)) => [Self::facts(o), Self::facts(i)],
            None => [None, None],
        };
        for (o, n) in old_facts.into_iter().zip(new_facts) {
            if let Some(o) = o {
                deltas.push((o.account, -o.amount));
            }
            if let Some(n) = n {
                deltas.push((n.account, n.amount));
            }
            effects.push(Effect::Txn { old: o, new: n });
        }
        events.extend(self.balance_events(&deltas)?);
        let ops = match old {
            Some(_) => vec![
                WriteOp::UpdateTransaction(out_leg),
                WriteOp::UpdateTransaction(in_leg),
            ],
            None => vec![WriteOp::insert_transactions(vec![out_leg, in_leg])],
        };
        Ok(Plan {
            ops,
            events,
            effects,
            reply: json_reply(status, &view)?,
        })
    }

    /// `legs` are the transfer's two rows, the outgoing one first.
    pub fn plan_update_transfer(
        &self,
        legs: (TransactionRow, TransactionRow),
        patch: TransferPatch,
    ) -> Result<Plan, ApiError> {
        let (out_old, in_old) = legs;
        check_version(out_old.version, patch.version)?;
        let mut f = Fields::default();
        let out_cur = Currency::parse(&out_old.currency)
            .map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?;
        let in_cur = Currency::parse(&in_old.currency)
            .map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?;
        let (mut out_leg, mut in_leg) = (out_old.clone(), in_old.clone());
        for account in [&out_old.account_id, &in_old.account_id] {
            if let Some(a) = account
                .parse()
                .ok()
                .and_then(|id: Uuid| self.accounts.get(&id))
            {
                if a.row.archived {
                    f.add("amount", format!("the account {} is archived", a.row.name));
                }
            }
        }
        let amount = match &patch.amount {
            Some(text) => f.check("amount", money(text, out_cur)),
            None => Some(-out_old.amount),
        };
        if amount.is_some_and(|a| a <= 0) {
            f.add("amount", "must be greater than zero");
        }
        let to_amount = match &patch.to_amount {
            Some(text) => f.check("to_amount", money(text, in_cur)),
            None if out_cur == in_cur => amount,
            None if patch.amount.is_some() => {
                f.add(
                    "to_amount",
                    "is required when changing the amount of a transfer between currencies",
                );
                None
            }
            None => Some(in_old.amount),
        };
        if out_cur == in_cur && to_amount != amount {
            f.add(
                "to_amount",
                "must equal amount between accounts of the same currency",
            );
        }
        if let Some(d) = &patch.description {
            if let Some(d) = f.check("description", parse_text(d, 500)) {
                out_leg.description = d.clone();
                in_leg.description = d;
            }
        }
        if let Some(n) = &patch.notes {
            if let Some(n) = f.check("notes", parse_text(n, 5000)) {
                out_leg.notes = n.clone();
                in_leg.notes = n;
            }
        }
        if let Some(t) = &patch.tags {
            if let Some(t) = f.check("tags", parse_tags(t)) {
                let t = serde_json::to_string(&t).map_err(ApiError::internal)?;
                out_leg.tags = t.clone();
                in_leg.tags = t;
            }
        }
        f.done()?;
        let (Some(amount), Some(to_amount)) = (amount, to_amount) else {
            return Err(ApiError::internal(anyhow::anyhow!(
                "validated fields missing"
            )));
        };
        let at = now();
        for leg in [&mut out_leg, &mut in_leg] {
            if let Some(date) = patch.date {
                leg.date = date;
            }
            leg.version += 1;
            leg.updated_at = at;
        }
        out_leg.amount = -amount;
        in_leg.amount = to_amount;
        if out_cur != in_cur {
            out_leg.foreign_amount = Some(to_amount);
            in_leg.foreign_amount = Some(amount);
        }
        let transfer_id = out_leg.transfer_id.clone().unwrap_or_default();
        self.transfer_plan(transfer_id, out_leg, in_leg, Some((out_old, in_old)), 200)
    }

    // ---- imports ----------------------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    /// Whether rows can be imported into this account now (it exists and is not archived).
    pub fn check_import_account(&self, account_id: Uuid) -> Result<(), ApiError> {
        let mut f = Fields::default();
        let account = self.writable_account(account_id, "account_id", &mut f);
        f.done()?;
        account.map(|_| ()).ok_or(ApiError::NotFound)
    }

    /// The part of planning an import chunk that does not depend on what the ledger holds when
    /// it commits: its rows, their effects and lessons. The Ledger prepares chunk k+1 this way
    /// while chunk k commits; [`LedgerState::finish_import_chunk`] then checks it against the
    /// state of that moment. Rows naming a category that does not exist are left out, as before.
    /// `None` when the account is not writable (see [`LedgerState::check_import_account`]).
    pub fn prepare_import_chunk(
        &self,
        user_id: &str,
        account_id: Uuid,
        rows: Vec<ImportRow>,
        source: TxnSource,
    ) -> Option<PreparedChunk> {
        let account = self.accounts.get(&account_id).filter(|a| !a.row.archived)?;
        let at = now();
        let currency = account.currency.code().to_string();
        let mut effects = Vec::with_capacity(rows.len());
        let mut categories: std::collections::HashSet<Uuid> = std::collections::HashSet::new();
        let mut delta = 0i128;
        let rows: Vec<TransactionRow> = rows
            .into_iter()
            .filter(|r| {
                r.category_id
                    .is_none_or(|c| self.categories.contains_key(&c))
            })
            .map(|r| {
                delta += i128::from(r.amount);
                if let Some(c) = r.category_id {
                    categories.insert(c);
                }
                effects.push(Effect::Txn {
                    old: None,
                    new: Some(Facts {
                        account: account_id,
                        amount: r.amount,
                        date: r.date,
                        category: r.category_id,
                        transfer: false,
                    }),
                });
                TransactionRow {
                    id: Uuid::now_v7().to_string(),
                    user_id: user_id.to_string(),
                    account_id: account.row.id.clone(),
                    amount: r.amount,
                    currency: currency.clone(),
                    date: r.date,
                    occurred_at: None,
                    description: r.description,
                    merchant: r.merchant,
                    category_source: match (r.category_id, r.category_source) {
                        (None, _) => CategorySource::None,
                        (Some(_), Some(source)) => source,
                        (Some(_), None) => CategorySource::User,
                    }
                    .as_str()
                    .to_string(),
                    category_id: r.category_id.map(|c| c.to_string()),
                    confidence: r.category_id.and(r.confidence),
                    tags: if r.tags.is_empty() {
                        "[]".to_string()
                    } else {
                        serde_json::to_string(&r.tags).unwrap_or_else(|_| "[]".to_string())
                    },
                    notes: r.notes,
                    transfer_id: None,
                    foreign_amount: None,
                    foreign_currency: None,
                    source: source.as_str().to_string(),
                    external_id: r.external_id,
                    created_at: at,
                    updated_at: at,
                    version: 1,
                }
            })
            .collect();
        let created = rows.len();
        let (lessons, memory) = self.lessons(user_id, &rows);
        effects.extend(lessons);
        Some(PreparedChunk {
            account_id,
            created,
            delta,
            categories,
            ops: std::iter::once(WriteOp::insert_transactions(rows))
                .chain(memory)
                .collect(),
            effects,
        })
    }

    /// The plan of a prepared import chunk, checked against the ledger as it is now: the account
    /// still takes transactions, every category its rows name still exists (409 if one was
    /// deleted in between: run the import again, rows already in are skipped), and the balance
    /// event shows the balance after it.
    #[allow(clippy::too_many_arguments)]
    pub fn finish_import_chunk(
        &self,
        prepared: PreparedChunk,
        import_id: &str,
        processed: usize,
        total: usize,
        completed: Option<ImportSummary>,
        report: Option<String>,
    ) -> Result<Plan, ApiError> {
        let PreparedChunk {
            account_id,
            created,
            delta,
            categories,
            ops,
            effects,
        } = prepared;
        self.check_import_account(account_id)?;
        if categories.iter().any(|c| !self.categories.contains_key(c)) {
            return Err(ApiError::Conflict(
                "A category this import uses was deleted while it ran.".into(),
            ));
        }
        let mut events = vec![(
            "import.progress",
            json!({ "import_id": import_id, "account_id": account_id, "processed": processed + created, "total": total }),
        )];
        events.extend(self.balance_events(&[(account_id, delta)])?);
        if let Some(summary) = &completed {
            events.push(("import.completed", json!(summary)));
        }
        Ok(Plan {
            ops,
            events,
            effects,
            reply: match report {
                Some(body) => Reply { status: 200, body },
                None => json_reply(200, &json!({ "created": created }))?,
            },
        })
    }

    pub fn plan_restore(&self, set: RestoreSet) -> Result<Plan, ApiError> {
        if !self.accounts.is_empty() {
            return Err(ApiError::Conflict(
                "A backup can only be restored into a user without accounts; this one has some."
                    .into(),
            ));
        }
        let mut ops: Vec<WriteOp> = self
            .categories
            .values()
            .filter(|c| c.parent.is_some())
            .chain(self.categories.values().filter(|c| c.parent.is_none()))
            .map(|c| WriteOp::DeleteCategory(c.row.id.clone()))
            .collect();
        let mut ordered = set.categories.clone();
        ordered.sort_by_key(|c| c.parent_id.is_some());
        ops.extend(ordered.into_iter().map(WriteOp::InsertCategory));
        ops.extend(set.accounts.iter().cloned().map(WriteOp::InsertAccount));
        let summary = json!({
            "restored": true,
            "accounts": set.accounts.len(),
            "categories": set.categories.len(),
            "transactions": set.transactions.len(),
            "exchange_rates": set.rates.len(),
        });
        ops.push(WriteOp::insert_transactions(set.transactions));
        if !set.rates.is_empty() {
            let user_id = set
                .accounts
                .first()
                .map(|a| a.user_id.clone())
                .unwrap_or_default();
            let rows = set
                .rates
                .iter()
                .map(|r| RateRow {
                    user_id: user_id.clone(),
                    base: r.base.code().to_string(),
                    quote: r.quote.code().to_string(),
                    date: r.date,
                    rate: r.rate.to_string(),
                })
                .collect();
            ops.push(WriteOp::UpsertRates(rows));
        }
        Ok(Plan {
            ops,
            events: vec![("import.completed", summary.clone())],
            effects: vec![Effect::Reload],
            reply: json_reply(200, &summary)?,
        })
    }

    // ---- rates ------------------------------------------------------------------------------

    pub fn plan_put_rates(&self, user_id: &str, rates: Vec<RateInput>) -> Result<Plan, ApiError> {
        let mut f = Fields::default();
        for (i, r) in rates.iter().enumerate() {
            if r.base == r.quote {
                f.add(&format!("rates[{i}].quote"), "must differ from base");
            }
        }
        f.done()?;
        let rows: Vec<RateRow> = rates
            .iter()
            .map(|r| RateRow {
                user_id: user_id.to_string(),
                base: r.base.code().to_string(),
                quote: r.quote.code().to_string(),
                date: r.date,
                rate: r.rate.to_string(),
            })
            .collect();
        let items: Vec<Value> = rates.iter().map(rate_json).collect();
        Ok(Plan {
            ops: vec![WriteOp::UpsertRates(rows)],
            events: Vec::new(),
            effects: rates.into_iter().map(Effect::PutRate).collect(),
            reply: json_reply(200, &json!({ "items": items }))?,
        })
    }
}

pub fn rate_json(r: &RateInput) -> Value {
    json!({ "base": r.base.code(), "quote": r.quote.code(), "date": r.date, "rate": r.rate.to_string() })
}
