//! The `Ledger`: one per active user, the only writer of that user's data.
//!
//! It keeps the user's accounts with live balances, categories, per-day aggregates and exchange
//! rates in memory, rebuilt from the database in `started()` before the first message is handled.
//! Each write command is validated against that state and turned into a [`plan::Plan`]: the rows to
//! write, the events (with the user's next gapless `seq`), the answer, and the effects on memory.
//! The plan is committed through the group-commit [`Writer`] as one atomic unit (data + events +
//! idempotency record); only after the commit is durable are the effects applied and the events
//! published. Commands are handled one at a time (atomically), so memory never runs ahead of the
//! database. A failed commit stops the actor; the Directory starts a fresh one, which rebuilds.
pub mod budgets;
pub mod categorize;
mod handlers;
pub mod messages;
pub mod notify;
mod plan;
pub mod plans;
pub mod reports;
pub mod views;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, ActorFutureExt, Addr, AsyncContext, Context, WrapFuture};
use chrono::NaiveDate;
use uuid::Uuid;

pub use messages::*;
pub use plan::rate_json;

use crate::actors::budget_watcher::{BudgetWatcher, Evaluate, StopWatching};
use crate::actors::categorizer::{Categorizer, Item, UserModel};
use crate::actors::hub::Hub;
use crate::actors::notifier::Notifier;
use crate::domain::ledger::{CategoryKind, Rate};
use crate::domain::Currency;
use crate::store::ledger::{AccountRow, CategoryRow, LedgerSnapshot};
use crate::store::writer::Writer;
use crate::store::Db;
use reports::{Daily, Flow, RateBook};

/// A ledger with no message for this long stops; the next request starts it again.
pub const IDLE_STOP: Duration = Duration::from_secs(10 * 60);
/// Idempotency answers remembered in memory (the database keeps them all for 24 h+).
const RECENT_KEYS: usize = 10_000;

pub(crate) struct AccountState {
    pub row: AccountRow,
    pub currency: Currency,
    /// Sum of the account's transactions (the balance is this plus the opening balance).
    /// Wider than a balance, so that data from before amounts were limited, whose sum may be
    /// beyond an `i64`, stays exact as it is mended.
    pub sum: i128,
}

impl AccountState {
    pub fn balance(&self) -> i64 {
        let exact = self.exact_balance();
        i64::try_from(exact).unwrap_or(if exact < 0 { i64::MIN } else { i64::MAX })
    }

    pub fn exact_balance(&self) -> i128 {
        i128::from(self.row.opening_balance) + self.sum
    }
}

pub(crate) struct CategoryState {
    pub row: CategoryRow,
    pub kind: CategoryKind,
    pub parent: Option<Uuid>,
}

/// What a transaction contributes to balances and aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Facts {
    pub account: Uuid,
    pub amount: i64,
    pub date: NaiveDate,
    pub category: Option<Uuid>,
    pub transfer: bool,
}

/// A change to memory, applied only after its commit is durable.
pub(crate) enum Effect {
    PutAccount(Box<AccountState>),
    PutCategory(Box<CategoryState>),
    RemoveCategory(Uuid),
    Txn {
        old: Option<Facts>,
        new: Option<Facts>,
    },
    PutRate(RateInput),
    PutBudget(Box<budgets::BudgetState>),
    RemoveBudget(Uuid),
    PutRecurring(Box<crate::store::plans::RecurringRow>),
    RemoveRecurring(Uuid),
    PutGoal(Box<crate::store::plans::GoalRow>),
    RemoveGoal(Uuid),
    PutRule(Box<crate::store::rules::RuleRow>),
    RemoveRule(Uuid),
    /// The user chose this category for this transaction: teach memory and the classifier.
    Learn(Box<(Item, Uuid)>),
    PutWebhook(Box<crate::store::notify::WebhookRow>),
    RemoveWebhook(String),
    PutPreferences(Box<crate::domain::notify::Preferences>),
    /// Too much changed to track (cascading delete): rebuild from the database.
    Reload,
}

#[derive(Default)]
pub(crate) struct LedgerState {
    pub accounts: HashMap<Uuid, AccountState>,
    pub categories: HashMap<Uuid, CategoryState>,
    pub daily: Daily,
    pub rates: RateBook,
    /// The user's key in `user_keys`: their event rows carry it.
    pub user_num: i64,
    pub last_seq: i64,
    pub budgets: HashMap<Uuid, budgets::BudgetState>,
    pub timezone: Option<chrono_tz::Tz>,
    pub recurring: HashMap<Uuid, crate::store::plans::RecurringRow>,
    pub goals: HashMap<Uuid, crate::store::plans::GoalRow>,
    /// In position order.
    pub rules: Vec<crate::store::rules::RuleRow>,
    /// Rules, merchant memory and learned counts, handed to the Categorizer pool.
    pub model: Arc<UserModel>,
    /// Webhooks and notification preferences.
    pub notify: notify::NotifyState,
}

impl LedgerState {
    /// Today in the user's time zone.
    pub fn today(&self) -> NaiveDate {
        let now = chrono::Utc::now();
        match self.timezone {
            Some(tz) => now.with_timezone(&tz).date_naive(),
            None => now.date_naive(),
        }
    }
}

impl Effect {
    /// Whether applying this can change what a budget has spent.
    fn moves_budgets(&self) -> bool {
        !matches!(
            self,
            Effect::PutAccount(_)
                | Effect::PutCategory(_)
                | Effect::PutRecurring(_)
                | Effect::RemoveRecurring(_)
                | Effect::PutGoal(_)
                | Effect::RemoveGoal(_)
                | Effect::PutRule(_)
                | Effect::RemoveRule(_)
                | Effect::Learn(_)
                | Effect::PutWebhook(_)
                | Effect::RemoveWebhook(_)
                | Effect::PutPreferences(_)
        )
    }
}

impl LedgerState {
    fn from_snapshot(mut s: LedgerSnapshot) -> LedgerState {
        let (rules, memory, labels) = (
            std::mem::take(&mut s.rules),
            std::mem::take(&mut s.memory),
            std::mem::take(&mut s.labels),
        );
        let mut state = LedgerState {
            notify: notify::NotifyState {
                prefs: crate::domain::notify::Preferences::from_json(s.preferences.as_deref()),
                webhooks: std::mem::take(&mut s.webhooks),
            },
            user_num: s.user_num,
            last_seq: s.last_seq,
            timezone: s.timezone.parse().ok(),
            ..LedgerState::default()
        };
        for row in s.recurring {
            if let Ok(id) = row.id.parse() {
                state.recurring.insert(id, row);
            }
        }
        for row in s.goals {
            if let Ok(id) = row.id.parse() {
                state.goals.insert(id, row);
            }
        }
        for row in s.budgets {
            match (row.id.parse::<Uuid>(), budgets::BudgetState::from_row(row)) {
                (Ok(id), Some(b)) => {
                    state.budgets.insert(id, b);
                }
                _ => tracing::error!("skipping an unreadable budget row"),
            }
        }
        let sums: HashMap<String, i128> = s.sums.into_iter().collect();
        for row in s.accounts {
            let (Ok(id), Ok(currency)) = (row.id.parse::<Uuid>(), Currency::parse(&row.currency))
            else {
                tracing::error!(account = %row.id, "skipping an account row with a bad id or currency");
                continue;
            };
            let sum = sums.get(&row.id).copied().unwrap_or(0);
            state
                .accounts
                .insert(id, AccountState { row, currency, sum });
        }
        for row in s.categories {
            let (Ok(id), Ok(kind)) = (row.id.parse::<Uuid>(), CategoryKind::parse(&row.kind))
            else {
                continue;
            };
            let parent = row.parent_id.as_deref().and_then(|p| p.parse().ok());
            state
                .categories
                .insert(id, CategoryState { row, kind, parent });
        }
        for agg in s.daily {
            let Ok(account) = agg.account_id.parse::<Uuid>() else {
                continue;
            };
            let category = agg.category_id.as_deref().and_then(|c| c.parse().ok());
            state.daily.entry(agg.date).or_default().insert(
                (account, category),
                Flow {
                    inflow: agg.inflow,
                    outflow: agg.outflow,
                    count: agg.count,
                },
            );
        }
        for r in s.rates {
            if let (Ok(base), Ok(quote), Ok(rate)) = (
                Currency::parse(&r.base),
                Currency::parse(&r.quote),
                Rate::parse(&r.rate),
            ) {
                state.rates.insert(base, quote, r.date, rate);
            }
        }
        state.load_model(rules, memory, labels);
        state
    }

    fn contribute(&mut self, facts: Facts, sign: i64) {
        if let Some(account) = self.accounts.get_mut(&facts.account) {
            account.sum += i128::from(sign * facts.amount);
        }
        if facts.transfer {
            return;
        }
        let day = self.daily.entry(facts.date).or_default();
        let flow = day.entry((facts.account, facts.category)).or_default();
        flow.add(facts.amount, sign);
        if flow.is_empty() {
            day.remove(&(facts.account, facts.category));
        }
        if day.is_empty() {
            self.daily.remove(&facts.date);
        }
    }

    fn apply(&mut self, effect: Effect) {
        match effect {
            Effect::PutAccount(account) => {
                if let Ok(id) = account.row.id.parse() {
                    self.accounts.insert(id, *account);
                }
            }
            Effect::PutCategory(category) => {
                if let Ok(id) = category.row.id.parse() {
                    self.categories.insert(id, *category);
                }
                self.refresh_candidates();
            }
            Effect::RemoveCategory(id) => {
                self.categories.remove(&id);
                self.refresh_candidates();
                // Its transactions are now uncategorized: move their buckets.
                for day in self.daily.values_mut() {
                    let moved: Vec<_> = day.keys().filter(|k| k.1 == Some(id)).copied().collect();
                    for key in moved {
                        if let Some(flow) = day.remove(&key) {
                            let target = day.entry((key.0, None)).or_default();
                            target.inflow = target.inflow.saturating_add(flow.inflow);
                            target.outflow = target.outflow.saturating_add(flow.outflow);
                            target.count += flow.count;
                        }
                    }
                }
            }
            Effect::Txn { old, new } => {
                if let Some(f) = old {
                    self.contribute(f, -1);
                }
                if let Some(f) = new {
                    self.contribute(f, 1);
                }
            }
            Effect::PutRate(r) => self.rates.insert(r.base, r.quote, r.date, r.rate),
            Effect::PutBudget(b) => {
                if let Ok(id) = b.row.id.parse() {
                    self.budgets.insert(id, *b);
                }
            }
            Effect::RemoveBudget(id) => {
                self.budgets.remove(&id);
            }
            Effect::PutRecurring(r) => {
                if let Ok(id) = r.id.parse() {
                    self.recurring.insert(id, *r);
                }
            }
            Effect::RemoveRecurring(id) => {
                self.recurring.remove(&id);
            }
            Effect::PutGoal(g) => {
                if let Ok(id) = g.id.parse() {
                    self.goals.insert(id, *g);
                }
            }
            Effect::RemoveGoal(id) => {
                self.goals.remove(&id);
            }
            Effect::PutRule(row) => self.put_rule(*row),
            Effect::RemoveRule(id) => self.remove_rule(id),
            Effect::Learn(lesson) => self.learn(&lesson.0, lesson.1),
            Effect::PutWebhook(row) => {
                match self.notify.webhooks.iter_mut().find(|w| w.id == row.id) {
                    Some(w) => *w = *row,
                    None => self.notify.webhooks.push(*row),
                }
            }
            Effect::RemoveWebhook(id) => self.notify.webhooks.retain(|w| w.id != id),
            Effect::PutPreferences(p) => self.notify.prefs = *p,
            Effect::Reload => {}
        }
    }
}

pub struct Ledger {
    user_id: Uuid,
    uid: String,
    db: Db,
    writer: Writer,
    /// The pool that categorizes new transactions (inline when absent).
    categorizer: Option<Addr<Categorizer>>,
    /// Where committed events go (the WebSocket fan-out).
    hub: Option<Addr<Hub>>,
    /// Told when a commit leaves outbox rows to send.
    notifier: Option<Addr<Notifier>>,
    watcher: Option<Addr<BudgetWatcher>>,
    /// Goal progress last announced, to send `goal.progress` only on change.
    goal_last: HashMap<Uuid, i64>,
    state: LedgerState,
    last_active: Instant,
    fail_next_commit: bool,
    recent_keys: HashMap<String, (String, Reply)>,
    /// An import's next chunk, prepared while the one before committed, with the rows it came
    /// from (its message names them).
    ahead: Option<(Handoff<Vec<ImportRow>>, plan::PreparedChunk)>,
    /// The user was erased (a request that got past the token check just before started this
    /// Ledger): every write is refused with a 401, as the token will be from now on.
    erased: bool,
}

impl Ledger {
    pub fn new(
        user_id: Uuid,
        db: Db,
        writer: Writer,
        hub: Option<Addr<Hub>>,
        categorizer: Option<Addr<Categorizer>>,
        notifier: Option<Addr<Notifier>>,
    ) -> Self {
        Ledger {
            notifier,
            user_id,
            uid: user_id.to_string(),
            db,
            writer,
            categorizer,
            hub,
            watcher: None,
            goal_last: HashMap::new(),
            state: LedgerState::default(),
            last_active: Instant::now(),
            fail_next_commit: false,
            recent_keys: HashMap::new(),
            ahead: None,
            erased: false,
        }
    }

    /// Load the user's state from the database, holding every message until it is done.
    fn rebuild(&mut self, ctx: &mut Context<Self>) {
        let db = self.db.clone();
        let uid = self.uid.clone();
        let started = Instant::now();
        ctx.wait(
            async move { db.run(move |conn| crate::store::ledger::snapshot(conn, &uid)).await }
                .into_actor(self)
                .map(move |loaded, act, ctx| match loaded {
                    Ok(snapshot) => {
                        act.erased = !snapshot.exists;
                        act.state = LedgerState::from_snapshot(snapshot);
                        act.goal_last = act
                            .state
                            .goals
                            .iter()
                            .map(|(id, g)| (*id, act.state.goal_current(g)))
                            .collect();
                        act.watch(ctx, true);
                        tracing::debug!(
                            user_id = %act.user_id,
                            accounts = act.state.accounts.len(),
                            days = act.state.daily.len(),
                            last_seq = act.state.last_seq,
                            elapsed_ms = started.elapsed().as_millis() as u64,
                            "ledger state loaded"
                        );
                    }
                    Err(e) => {
                        tracing::error!(user_id = %act.user_id, error = %e, "ledger could not load; stopping");
                        ctx.stop();
                    }
                }),
        );
    }

    /// Send the budgets' statuses to the watcher, starting it first if needed.
    pub(crate) fn watch(&mut self, ctx: &mut Context<Self>, initial: bool) {
        if self.state.budgets.is_empty() && self.watcher.is_none() {
            return;
        }
        let watcher = match &self.watcher {
            Some(w) if w.connected() => w.clone(),
            _ => {
                let w = BudgetWatcher::new(self.user_id, self.db.clone(), ctx.address()).start();
                self.watcher = Some(w.clone());
                w
            }
        };
        let statuses = self.state.all_budget_statuses(self.state.today());
        watcher.do_send(Evaluate { statuses, initial });
    }

    fn remember(&mut self, key: String, fingerprint: String, reply: Reply) {
        if self.recent_keys.len() >= RECENT_KEYS {
            self.recent_keys.clear();
        }
        self.recent_keys.insert(key, (fingerprint, reply));
    }
}

impl Actor for Ledger {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        tracing::debug!(
            user_id = %self.user_id,
            thread = std::thread::current().name().unwrap_or("?"),
            "ledger started"
        );
        self.rebuild(ctx);
        ctx.run_interval(Duration::from_secs(30), |act, ctx| {
            if act.last_active.elapsed() >= IDLE_STOP {
                tracing::debug!(user_id = %act.user_id, "ledger idle; stopping");
                ctx.stop();
            }
        });
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        if let Some(w) = &self.watcher {
            w.do_send(StopWatching);
        }
        tracing::debug!(user_id = %self.user_id, "ledger stopped");
    }
}
