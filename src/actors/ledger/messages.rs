//! Messages a user's [`Ledger`](super::Ledger) takes. Writes answer with a [`Reply`] (status and
//! JSON body, exactly what is stored for an `Idempotency-Key` replay); reads with typed views.
use std::sync::{Arc, Mutex};

use actix::Message;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::budgets::{Alert, BudgetInput, BudgetStatus, BudgetView, Rearm};
use super::categorize::{RulePatch, RuleView};
use super::notify::{WebhookInput, WebhookView};
use super::plans::{GoalInput, RecurringInput};
use super::reports::{Cashflow, Interval, Summary};
use super::views::{AccountView, CategoryView};
use crate::domain::ledger::{AccountKind, CategoryKind, CategorySource, Rate, TxnSource};
use crate::domain::notify::{Preferences, PreferencesInput};
use crate::domain::rules::RuleSpec;
use crate::domain::Currency;
use crate::error::ApiError;

/// An answer to a write: HTTP status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// `Idempotency-Key` of a creating request and the fingerprint of its body.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub key: String,
    pub fingerprint: String,
}

/// A field that a PATCH may set, clear (`null`) or leave out.
pub type Nullable<T> = Option<Option<T>>;

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub name: String,
    pub kind: AccountKind,
    pub currency: Currency,
    /// Decimal string in the account's currency.
    pub opening_balance: Option<String>,
    pub opening_date: Option<NaiveDate>,
    pub number_hint: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct AccountPatch {
    pub version: Option<i64>,
    pub name: Option<String>,
    pub kind: Option<AccountKind>,
    pub opening_balance: Option<String>,
    pub opening_date: Option<NaiveDate>,
    pub number_hint: Nullable<String>,
    pub archived: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct NewCategory {
    pub name: String,
    pub parent_id: Option<Uuid>,
    pub kind: Option<CategoryKind>,
    pub color: Option<String>,
    pub icon: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct CategoryPatch {
    pub version: Option<i64>,
    pub name: Option<String>,
    pub parent_id: Nullable<Uuid>,
    pub color: Nullable<String>,
    pub icon: Nullable<String>,
}

#[derive(Debug, Clone)]
pub struct NewTransaction {
    pub account_id: Uuid,
    /// Decimal string in the account's currency; negative = money out.
    pub amount: String,
    pub date: NaiveDate,
    pub occurred_at: Option<DateTime<Utc>>,
    pub description: String,
    pub merchant: String,
    pub category_id: Option<Uuid>,
    pub category_source: Option<CategorySource>,
    pub confidence: Option<f64>,
    pub tags: Vec<String>,
    pub notes: String,
    pub foreign_amount: Option<String>,
    pub foreign_currency: Option<Currency>,
    pub source: TxnSource,
    pub external_id: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct TransactionPatch {
    pub version: Option<i64>,
    pub account_id: Option<Uuid>,
    pub amount: Option<String>,
    pub date: Option<NaiveDate>,
    pub occurred_at: Nullable<DateTime<Utc>>,
    pub description: Option<String>,
    pub merchant: Option<String>,
    pub category_id: Nullable<Uuid>,
    pub tags: Option<Vec<String>>,
    pub notes: Option<String>,
    pub foreign_amount: Nullable<String>,
    pub foreign_currency: Nullable<Currency>,
}

#[derive(Debug, Clone)]
pub struct NewTransfer {
    pub from_account_id: Uuid,
    pub to_account_id: Uuid,
    /// What leaves the source account (positive, in its currency).
    pub amount: String,
    /// What arrives (in the destination's currency); required when the currencies differ.
    pub to_amount: Option<String>,
    pub date: NaiveDate,
    pub description: String,
    pub notes: String,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct TransferPatch {
    pub version: Option<i64>,
    pub amount: Option<String>,
    pub to_amount: Option<String>,
    pub date: Option<NaiveDate>,
    pub description: Option<String>,
    pub notes: Option<String>,
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct RateInput {
    pub base: Currency,
    pub quote: Currency,
    pub date: NaiveDate,
    pub rate: Rate,
}

/// One row of an import, already parsed and deduplicated.
#[derive(Debug, Clone)]
pub struct ImportRow {
    pub date: NaiveDate,
    /// Minor units of the account's currency.
    pub amount: i64,
    pub description: String,
    pub merchant: String,
    pub notes: String,
    pub external_id: Option<String>,
    pub category_id: Option<Uuid>,
    /// Filled by the Categorizer for rows without a category (`None` = chosen by the user).
    pub category_source: Option<CategorySource>,
    pub confidence: Option<f64>,
    pub tags: Vec<String>,
}

/// A large payload in a message: cloning the message (as [`crate::http::ledger::ask`] does, to
/// retry on a Ledger that stopped before taking it) shares the payload instead of copying it, and
/// the Ledger that handles the message takes it out. A 100k-row import chunk was copied and
/// dropped that way once per chunk, on the request's thread, while the writer waited.
#[derive(Debug)]
pub struct Handoff<T>(Arc<Mutex<Option<T>>>);

impl<T> Clone for Handoff<T> {
    fn clone(&self) -> Self {
        Handoff(Arc::clone(&self.0))
    }
}

impl<T> Handoff<T> {
    pub fn new(payload: T) -> Self {
        Handoff(Arc::new(Mutex::new(Some(payload))))
    }

    /// The payload, to the first taker only.
    pub fn take(&self) -> Option<T> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Whether both are handles to the same payload.
    pub fn same(&self, other: &Handoff<T>) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// What an import did, sent with its last chunk (the `import.completed` event).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportSummary {
    pub import_id: String,
    pub account_id: Uuid,
    pub created: usize,
    pub skipped_duplicates: usize,
    pub failed: usize,
}

/// A restored backup: everything of a user, ids already remapped, amounts in minor units.
#[derive(Debug, Clone)]
pub struct RestoreSet {
    pub categories: Vec<crate::store::ledger::CategoryRow>,
    pub accounts: Vec<crate::store::ledger::AccountRow>,
    pub transactions: Vec<crate::store::ledger::TransactionRow>,
    pub rates: Vec<RateInput>,
}

macro_rules! write_message {
    ($($(#[$meta:meta])* $name:ident { $($field:ident : $ty:ty),* $(,)? })+) => {
        $(
            $(#[$meta])*
            #[derive(Debug, Clone, Message)]
            #[rtype(result = "Result<Reply, ApiError>")]
            pub struct $name { $(pub $field: $ty),* }
        )+
    };
}

write_message! {
    /// An in-app notification written outside the Ledger (a security notice from the identity
    /// service, already stored): announced on the user's event stream as `notification.created`
    /// `{id, kind, payload}`, with its own seq.
    AnnounceNotification { announcement: serde_json::Value }
    CreateAccount { input: NewAccount, idempotency: Option<IdempotencyKey> }
    UpdateAccount { id: Uuid, patch: AccountPatch }
    /// With `cascade`, its transactions (and the other legs of its transfers) go too.
    DeleteAccount { id: Uuid, cascade: bool }
    CreateCategory { input: NewCategory, idempotency: Option<IdempotencyKey> }
    UpdateCategory { id: Uuid, patch: CategoryPatch }
    DeleteCategory { id: Uuid }
    CreateTransaction { input: NewTransaction, idempotency: Option<IdempotencyKey> }
    UpdateTransaction { id: Uuid, patch: TransactionPatch }
    DeleteTransaction { id: Uuid }
    CreateTransfer { input: NewTransfer, idempotency: Option<IdempotencyKey> }
    UpdateTransfer { id: Uuid, patch: TransferPatch }
    DeleteTransfer { id: Uuid }
    PutRates { rates: Vec<RateInput> }
    /// A chunk of an import into one account; commits with an `import.progress` event (and
    /// `import.completed` with the last chunk).
    // With the last chunk, `report` is the import's whole report, its answer, kept for an
    // `Idempotency-Key` when there is one. `next` holds the next chunk's rows, prepared while
    // this one commits (that chunk's own message names the same rows).
    ImportChunk {
        account_id: Uuid,
        rows: Handoff<Vec<ImportRow>>,
        next: Option<Handoff<Vec<ImportRow>>>,
        source: TxnSource,
        import_id: String,
        processed: usize,
        total: usize,
        completed: Option<ImportSummary>,
        report: Option<String>,
        idempotency: Option<IdempotencyKey>,
    }
    /// Restore a backup into a user who has no accounts yet (their categories are replaced).
    Restore { set: Handoff<RestoreSet>, idempotency: Option<IdempotencyKey> }
    CreateBudget { input: BudgetInput, today: NaiveDate, idempotency: Option<IdempotencyKey> }
    UpdateBudget { id: Uuid, input: BudgetInput, today: NaiveDate }
    DeleteBudget { id: Uuid }
    /// The BudgetWatcher's decision, committed as alerts, events and notifications.
    RecordBudgetOutcome { statuses: Vec<BudgetStatus>, raise: Vec<Alert>, rearm: Vec<Rearm> }
    MarkNotificationRead { id: Uuid }
    CreateRecurring { input: RecurringInput, idempotency: Option<IdempotencyKey> }
    UpdateRecurring { id: Uuid, input: RecurringInput }
    DeleteRecurring { id: Uuid }
    /// Create every due occurrence of the user's recurring rules (the Scheduler sends this).
    RunRecurring {}
    CreateGoal { input: GoalInput, idempotency: Option<IdempotencyKey> }
    /// With `contribution`, adds that amount to a contribution-based goal.
    UpdateGoal { id: Uuid, input: GoalInput, contribution: Option<String> }
    DeleteGoal { id: Uuid }
    /// Announce goal progress that moved (sent by the Ledger to itself after commits).
    CheckGoals {}
    CreateRule { spec: RuleSpec, position: Option<i64>, idempotency: Option<IdempotencyKey> }
    UpdateRule { id: Uuid, patch: RulePatch }
    DeleteRule { id: Uuid }
    /// Positions 0, 1, 2… in the order given.
    ReorderRules { ids: Vec<Uuid> }
    /// Apply a rule to the stored transactions it matches (hand-chosen categories stay unless
    /// `overwrite`).
    ApplyRule { id: Uuid, overwrite: bool }
    CreateWebhook { input: WebhookInput, idempotency: Option<IdempotencyKey> }
    UpdateWebhook { id: Uuid, input: WebhookInput }
    DeleteWebhook { id: Uuid }
    PutPreferences { input: PreferencesInput }
    /// Queue the summary email of `month` (its first day) in `base` (the Scheduler sends this);
    /// 204 when the user booked nothing that month.
    SendMonthlySummary { month: NaiveDate, base: Currency }
}

#[derive(Debug, Clone, Message)]
#[rtype(result = "Vec<WebhookView>")]
pub struct ListWebhooks;

#[derive(Debug, Clone, Message)]
#[rtype(result = "Option<WebhookView>")]
pub struct GetWebhook {
    pub id: Uuid,
}

#[derive(Debug, Clone, Message)]
#[rtype(result = "Preferences")]
pub struct GetPreferences;

#[derive(Debug, Clone, Message)]
#[rtype(result = "Vec<RuleView>")]
pub struct ListRules;

#[derive(Debug, Clone, Message)]
#[rtype(result = "Option<RuleView>")]
pub struct GetRule {
    pub id: Uuid,
}

#[derive(Debug, Clone, Message)]
#[rtype(result = "Vec<serde_json::Value>")]
pub struct ListRecurring;

#[derive(Debug, Clone, Message)]
#[rtype(result = "Vec<serde_json::Value>")]
pub struct ListGoals;

/// Budgets with their status in the period containing `today`.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Vec<BudgetView>")]
pub struct ListBudgets {
    pub today: NaiveDate,
}

#[derive(Debug, Clone, Message)]
#[rtype(result = "Option<BudgetView>")]
pub struct GetBudget {
    pub id: Uuid,
    pub today: NaiveDate,
}

/// All accounts with live balances.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Vec<AccountView>")]
pub struct ListAccounts;

#[derive(Debug, Clone, Message)]
#[rtype(result = "Option<AccountView>")]
pub struct GetAccount {
    pub id: Uuid,
}

#[derive(Debug, Clone, Message)]
#[rtype(result = "Vec<CategoryView>")]
pub struct ListCategories;

/// The category and its children, for filtering (`None` when unknown).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Option<Vec<String>>")]
pub struct CategoryFamily {
    pub id: Uuid,
}

/// Currency of each account (for parsing amount filters).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Vec<(String, Currency)>")]
pub struct AccountCurrencies;

#[derive(Debug, Clone, Message)]
#[rtype(result = "Vec<RateInput>")]
pub struct ListRates;

#[derive(Debug, Clone, Message)]
#[rtype(result = "Summary")]
pub struct GetSummary {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub base: Currency,
}

#[derive(Debug, Clone, Message)]
#[rtype(result = "Cashflow")]
pub struct GetCashflow {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub interval: Interval,
    pub base: Currency,
}

/// Test hook: make the Ledger fail the way a real fault would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Stop at once, as if the actor had died; the Directory respawns it on next use.
    Crash,
    /// Make the next commit fail in the database; the Ledger then stops and rebuilds.
    FailNextCommit,
}

#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct InjectFault(pub Fault);

/// Test and admin aid: the in-memory balances, to compare with the database.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Vec<(String, i64)>")]
pub struct MemoryBalances;

/// The user changed their time zone (`PATCH /me`): the Ledger reads it again from the database
/// (so two quick changes cannot arrive in the wrong order), and "today", budget periods and what is
/// due follow it from then on.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct TimezoneChanged;

/// Stop now (the user was deleted, or the process is shutting down).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// Balances and the latest event seq, read together: what a WebSocket snapshot shows.
#[derive(Debug, Clone, Message)]
#[rtype(result = "LiveState")]
pub struct LiveSnapshot;

#[derive(Debug, Clone, serde::Serialize)]
pub struct LiveState {
    pub last_seq: i64,
    pub accounts: Vec<AccountView>,
    pub budgets: Vec<BudgetStatus>,
}

#[cfg(test)]
mod tests {
    use super::Handoff;

    /// A retry's clone never runs the same rows twice: the first handler takes them.
    #[test]
    fn a_handoff_goes_to_the_first_taker_only() {
        let sent = Handoff::new(vec![1, 2, 3]);
        let kept_for_retry = sent.clone();
        assert_eq!(sent.take(), Some(vec![1, 2, 3]));
        assert_eq!(kept_for_retry.take(), None);
        assert_eq!(sent.take(), None);
    }
}
