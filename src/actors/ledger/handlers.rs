//! How the [`Ledger`](super::Ledger) handles its messages. Every write goes: (optional database
//! read) → plan against memory → commit through the writer → apply effects → answer. Writes are
//! `AtomicResponse`s: the next message waits until this one is durable and applied.
use std::collections::HashMap;
use std::time::Instant;

use actix::{
    fut, ActorContext, ActorFutureExt, AsyncContext, AtomicResponse, Handler, MessageResult,
    ResponseActFuture, WrapFuture,
};
use chrono::Utc;
use uuid::Uuid;

use super::categorize;
use super::messages::*;
use super::plan::{Plan, PreparedChunk};
use super::reports::{self, AccountInfo, Cashflow, CategoryInfo, Summary};
use super::views::{AccountView, CategoryView};
use super::{Effect, Ledger};
use crate::actors::categorizer::{Assignment, Categorize, Item};
use crate::actors::hub::{Frame, Publish};
use crate::actors::notifier::Nudge;
use crate::domain::events::Envelope;
use crate::domain::ledger::TxnSource;
use crate::error::ApiError;
use crate::store::ledger::{self as q, EventRow, IdempotencyRow, TransactionRow};
use crate::store::writer::WriteOp;
use crate::store::{self, StoreError};
use std::sync::Arc;

/// Up to this many transactions are categorized on the Ledger's own thread.
const CATEGORIZE_INLINE_UP_TO: usize = 8;

type WriteResult = Result<Reply, ApiError>;

fn done(result: WriteResult) -> AtomicResponse<Ledger, WriteResult> {
    AtomicResponse::new(Box::pin(fut::ready(result)))
}

fn store_error(e: StoreError) -> ApiError {
    e.into()
}

impl Ledger {
    fn touch(&mut self) {
        self.last_active = Instant::now();
    }

    /// An answer already given for this Idempotency-Key by this Ledger, if any.
    fn replay(&self, idempotency: &Option<IdempotencyKey>) -> Option<WriteResult> {
        let key = idempotency.as_ref()?;
        let (fingerprint, reply) = self.recent_keys.get(&key.key)?;
        Some(if *fingerprint == key.fingerprint {
            Ok(reply.clone())
        } else {
            Err(idempotency_mismatch())
        })
    }

    /// Commit a plan: its rows, its events (with the next seqs) and the idempotency record in
    /// one atomic unit; then apply its effects and publish its events.
    fn commit(
        &mut self,
        plan: Plan,
        idempotency: Option<IdempotencyKey>,
    ) -> ResponseActFuture<Self, WriteResult> {
        let Plan {
            mut ops,
            mut events,
            effects,
            reply,
        } = plan;
        let at = Utc::now();
        let stored_at = store::now();
        ops.extend(
            self.state
                .route_notifications(&self.uid, &mut events, stored_at),
        );
        let envelopes: Vec<Envelope> = events
            .into_iter()
            .enumerate()
            .map(|(i, (kind, payload))| {
                Envelope::new(
                    self.state.last_seq + 1 + i as i64,
                    "ledger",
                    kind,
                    payload,
                    at,
                )
            })
            .collect();
        let mut frames: Vec<Frame> = Vec::with_capacity(envelopes.len());
        if !envelopes.is_empty() {
            let mut rows = Vec::with_capacity(envelopes.len());
            for e in &envelopes {
                let text = match serde_json::to_string(e) {
                    Ok(s) => s,
                    Err(err) => return Box::pin(fut::ready(Err(ApiError::internal(err)))),
                };
                frames.push((e.seq, Arc::from(text.as_str())));
                rows.push(EventRow {
                    user_num: self.state.user_num,
                    seq: e.seq,
                    message_id: e.message_id.to_string(),
                    kind: e.kind.to_string(),
                    envelope: text,
                    created_at: stored_at,
                });
            }
            let pairs: Vec<(&Envelope, &str)> = envelopes
                .iter()
                .zip(rows.iter().map(|r| r.envelope.as_str()))
                .collect();
            let hooks = self.state.route_webhooks(&self.uid, &pairs, stored_at);
            ops.extend(hooks);
            ops.push(WriteOp::InsertEvents(rows));
        }
        // Email and webhook rows wait in the outbox: wake the Notifier once they are durable.
        let outbox = ops
            .iter()
            .any(|op| matches!(op, WriteOp::InsertNotification(n) if n.channel != "in_app"));
        if let Some(key) = &idempotency {
            ops.push(WriteOp::InsertIdempotency(IdempotencyRow {
                user_id: self.uid.clone(),
                key: key.key.clone(),
                fingerprint: key.fingerprint.clone(),
                status: i32::from(reply.status),
                response: reply.body.clone(),
                created_at: stored_at,
            }));
        }
        if std::mem::take(&mut self.fail_next_commit) {
            ops.push(WriteOp::InjectFailure);
        }
        let published = envelopes.len() as i64;
        let sent = std::time::Instant::now();
        // Queued now: an import prepares its next chunk while this one commits.
        let pending = self.writer.submit(&self.uid, ops);
        Box::pin(
            pending
                .into_actor(self)
                .map(move |result, act, ctx| match result {
                    Ok(()) => {
                        let written = sent.elapsed();
                        let effect_count = effects.len();
                        act.state.last_seq += published;
                        let mut reload = false;
                        let mut budgets_moved = false;
                        let mut new_goals = Vec::new();
                        for effect in effects {
                            reload |= matches!(effect, Effect::Reload);
                            budgets_moved |= effect.moves_budgets();
                            if let Effect::PutGoal(g) = &effect {
                                new_goals.extend(g.id.parse::<Uuid>().ok().filter(|id| !act.goal_last.contains_key(id)));
                            }
                            act.state.apply(effect);
                        }
                        // A new goal's answer already shows its progress; no event for that.
                        for id in new_goals {
                            if let Some(g) = act.state.goals.get(&id) {
                                let current = act.state.goal_current(g);
                                // (One created already reached still gets `goal.reached`.)
                                if current < g.target_amount {
                                    act.goal_last.insert(id, current);
                                }
                            }
                        }
                        if reload {
                            act.rebuild(ctx);
                        } else if budgets_moved {
                            act.watch(ctx, false);
                        }
                        if !act.state.goals.is_empty() || !act.goal_last.is_empty() {
                            ctx.notify(CheckGoals {});
                        }
                        if let Some(key) = idempotency {
                            act.remember(key.key, key.fingerprint, reply.clone());
                        }
                        act.publish(frames);
                        tracing::trace!(
                            effects = effect_count,
                            write_us = written.as_micros() as u64,
                            apply_us = (sent.elapsed() - written).as_micros() as u64,
                            "committed"
                        );
                        if outbox {
                            if let Some(n) = &act.notifier {
                                n.do_send(Nudge);
                            }
                        }
                        Ok(reply)
                    }
                    Err(StoreError::UniqueViolation) => Err(ApiError::Conflict(
                        "A transaction with this external_id already exists in this account.".into(),
                    )),
                    // The user was erased (`DELETE /me`, an admin) while this command waited:
                    // nothing can be saved for them any more, and trying again cannot help.
                    Err(StoreError::MissingReference(reason)) => {
                        tracing::info!(user_id = %act.user_id, %reason, "a write for an erased user was refused");
                        act.erased = true;
                        Err(erased())
                    }
                    Err(e) => {
                        tracing::error!(user_id = %act.user_id, error = %e, "commit failed; the ledger stops and will rebuild");
                        ctx.stop();
                        Err(ApiError::Unavailable(
                            "The change could not be saved, and nothing was changed. Try again.".into(),
                        ))
                    }
                }),
        )
    }

    /// Committed events go to the Hub, which fans them out to this user's sockets.
    fn publish(&self, frames: Vec<Frame>) {
        if let (Some(hub), false) = (&self.hub, frames.is_empty()) {
            hub.do_send(Publish {
                user_id: self.user_id,
                frames: frames.into(),
            });
        }
    }

    /// Plan with state, commit, answer: for writes that need no database read first.
    fn write(
        &mut self,
        idempotency: Option<IdempotencyKey>,
        plan: impl FnOnce(&Self) -> Result<Plan, ApiError>,
    ) -> AtomicResponse<Self, WriteResult> {
        self.touch();
        if let Some(answer) = self.replay(&idempotency) {
            return done(answer);
        }
        if self.erased {
            return done(Err(erased()));
        }
        match plan(self) {
            Ok(plan) => AtomicResponse::new(self.commit(plan, idempotency)),
            Err(e) => done(Err(e)),
        }
    }

    /// Like [`Ledger::write`], but first has the Categorizer decide for `items`; the plan
    /// gets one assignment per item. A pool that cannot answer leaves them uncategorized: a
    /// categorizer problem never fails a write.
    fn write_categorized(
        &mut self,
        idempotency: Option<IdempotencyKey>,
        items: Vec<Item>,
        plan: impl FnOnce(&Self, Vec<Assignment>) -> Result<Plan, ApiError> + 'static,
    ) -> AtomicResponse<Self, WriteResult> {
        self.touch();
        if let Some(answer) = self.replay(&idempotency) {
            return done(answer);
        }
        if self.erased {
            return done(Err(erased()));
        }
        // A few items are cheaper to decide here (microseconds each) than a round trip to the
        // pool's threads; the pool takes big batches off this Ledger's thread. (An import
        // categorizes its chunks here, while the writer commits the chunk before.)
        let Some(pool) = self
            .categorizer
            .clone()
            .filter(|_| items.len() > CATEGORIZE_INLINE_UP_TO)
        else {
            let assignments = items
                .iter()
                .map(|i| self.state.model.categorize(i))
                .collect();
            return match plan(self, assignments) {
                Ok(plan) => AtomicResponse::new(self.commit(plan, idempotency)),
                Err(e) => done(Err(e)),
            };
        };
        let count = items.len();
        let request = Categorize {
            model: self.state.model.clone(),
            items,
        };
        let asked = std::time::Instant::now();
        AtomicResponse::new(Box::pin(async move { pool.send(request).await }.into_actor(self).then(
            move |answer, act, _ctx| {
                let categorized = asked.elapsed();
                let assignments = answer.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "categorizer pool unavailable; leaving transactions uncategorized");
                    vec![Assignment::default(); count]
                });
                let planned = plan(act, assignments);
                tracing::debug!(
                    items = count,
                    categorize_ms = categorized.as_millis() as u64,
                    plan_ms = (asked.elapsed() - categorized).as_millis() as u64,
                    "categorized a batch"
                );
                match planned {
                    Ok(plan) => act.commit(plan, idempotency),
                    Err(e) => Box::pin(fut::ready(Err(e))),
                }
            },
        )))
    }

    /// Read from the database (after every earlier write of this user is committed, since
    /// writes are atomic), then plan and commit.
    fn read_then_write<T: Send + 'static>(
        &mut self,
        read: impl FnOnce(&mut store::DbConn, &str) -> Result<T, StoreError> + Send + 'static,
        plan: impl FnOnce(&Self, T) -> Result<Plan, ApiError> + 'static,
    ) -> AtomicResponse<Self, WriteResult> {
        self.touch();
        if self.erased {
            return done(Err(erased()));
        }
        let db = self.db.clone();
        let uid = self.uid.clone();
        AtomicResponse::new(Box::pin(
            async move { db.run(move |conn| read(conn, &uid)).await }
                .into_actor(self)
                .then(move |loaded, act, _ctx| {
                    match loaded.map_err(store_error).and_then(|data| plan(act, data)) {
                        Ok(plan) => act.commit(plan, None),
                        Err(e) => Box::pin(fut::ready(Err(e))),
                    }
                }),
        ))
    }
}

fn idempotency_mismatch() -> ApiError {
    ApiError::validation(
        "Idempotency-Key",
        "was already used with a different request body; use a new key for a new request",
    )
}

impl Handler<CreateAccount> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: CreateAccount, _ctx: &mut Self::Context) -> Self::Result {
        let uid = self.uid.clone();
        self.write(msg.idempotency, move |l| {
            l.state.plan_create_account(&uid, msg.input)
        })
    }
}

impl Handler<UpdateAccount> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: UpdateAccount, _ctx: &mut Self::Context) -> Self::Result {
        self.write(None, move |l| {
            l.state.plan_update_account(msg.id, msg.patch)
        })
    }
}

impl Handler<DeleteAccount> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: DeleteAccount, _ctx: &mut Self::Context) -> Self::Result {
        if !self.state.accounts.contains_key(&msg.id) {
            return done(Err(ApiError::NotFound));
        }
        let account_id = msg.id.to_string();
        self.read_then_write(
            move |conn, uid| {
                let count = q::count_in_account(conn, &account_id)?;
                let mut counterparts = Vec::new();
                if count > 0 && msg.cascade {
                    for row in q::transfer_legs_touching(conn, uid, &account_id)? {
                        if row.account_id != account_id {
                            counterparts.push(row);
                        }
                    }
                }
                Ok((count, counterparts))
            },
            move |l, (count, counterparts)| {
                l.state
                    .plan_delete_account(msg.id, msg.cascade, count, counterparts)
            },
        )
    }
}

impl Handler<CreateCategory> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: CreateCategory, _ctx: &mut Self::Context) -> Self::Result {
        let uid = self.uid.clone();
        self.write(msg.idempotency, move |l| {
            l.state.plan_create_category(&uid, msg.input)
        })
    }
}

impl Handler<UpdateCategory> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: UpdateCategory, _ctx: &mut Self::Context) -> Self::Result {
        self.write(None, move |l| {
            l.state.plan_update_category(msg.id, msg.patch)
        })
    }
}

impl Handler<DeleteCategory> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: DeleteCategory, _ctx: &mut Self::Context) -> Self::Result {
        self.write(None, move |l| l.state.plan_delete_category(msg.id))
    }
}

impl Handler<CreateTransaction> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: CreateTransaction, _ctx: &mut Self::Context) -> Self::Result {
        let uid = self.uid.clone();
        let items: Vec<Item> = self.state.item_for(&msg.input).into_iter().collect();
        let mut input = msg.input;
        self.write_categorized(msg.idempotency, items, move |l, assignments| {
            if let Some(a) = assignments.first() {
                categorize::assign(&mut input, a);
            }
            l.state
                .plan_create_transactions(&uid, vec![input])
                .map(|(_, plan)| plan)
        })
    }
}

fn load_transaction(
    conn: &mut store::DbConn,
    uid: &str,
    id: Uuid,
) -> Result<Option<TransactionRow>, StoreError> {
    q::find_transaction(conn, uid, &id.to_string())
}

impl Handler<UpdateTransaction> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: UpdateTransaction, _ctx: &mut Self::Context) -> Self::Result {
        let id = msg.id;
        self.read_then_write(
            move |conn, uid| load_transaction(conn, uid, id),
            move |l, row| {
                l.state
                    .plan_update_transaction(row.ok_or(ApiError::NotFound)?, msg.patch)
            },
        )
    }
}

impl Handler<DeleteTransaction> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: DeleteTransaction, _ctx: &mut Self::Context) -> Self::Result {
        let id = msg.id;
        self.read_then_write(
            move |conn, uid| {
                let Some(row) = load_transaction(conn, uid, id)? else {
                    return Ok(Vec::new());
                };
                match &row.transfer_id {
                    Some(t) => q::transfer_legs(conn, uid, t),
                    None => Ok(vec![row]),
                }
            },
            move |l, rows| {
                if rows.is_empty() {
                    return Err(ApiError::NotFound);
                }
                l.state.plan_delete_transactions(rows)
            },
        )
    }
}

impl Handler<CreateTransfer> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: CreateTransfer, _ctx: &mut Self::Context) -> Self::Result {
        let uid = self.uid.clone();
        self.write(msg.idempotency, move |l| {
            l.state.plan_create_transfer(&uid, msg.input)
        })
    }
}

fn two_legs(mut legs: Vec<TransactionRow>) -> Result<(TransactionRow, TransactionRow), ApiError> {
    if legs.len() != 2 {
        return Err(ApiError::NotFound);
    }
    legs.sort_by_key(|l| l.amount);
    let incoming = legs.pop().ok_or(ApiError::NotFound)?;
    let outgoing = legs.pop().ok_or(ApiError::NotFound)?;
    Ok((outgoing, incoming))
}

impl Handler<UpdateTransfer> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: UpdateTransfer, _ctx: &mut Self::Context) -> Self::Result {
        let id = msg.id.to_string();
        self.read_then_write(
            move |conn, uid| q::transfer_legs(conn, uid, &id),
            move |l, legs| l.state.plan_update_transfer(two_legs(legs)?, msg.patch),
        )
    }
}

impl Handler<DeleteTransfer> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: DeleteTransfer, _ctx: &mut Self::Context) -> Self::Result {
        let id = msg.id.to_string();
        self.read_then_write(
            move |conn, uid| q::transfer_legs(conn, uid, &id),
            move |l, legs| {
                let (a, b) = two_legs(legs)?;
                l.state.plan_delete_transactions(vec![a, b])
            },
        )
    }
}

/// The answer to a write for a user erased while it was on its way.
fn erased() -> ApiError {
    ApiError::Unauthorized("This account has been deleted.")
}

impl Handler<PutRates> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: PutRates, _ctx: &mut Self::Context) -> Self::Result {
        let uid = self.uid.clone();
        self.write(None, move |l| l.state.plan_put_rates(&uid, msg.rates))
    }
}

impl Ledger {
    /// Categorize an import chunk's rows (here: the chunk is prepared while the writer commits
    /// the one before, so this thread has nothing else to do for this user) and prepare its plan.
    fn prepare_import(
        &self,
        account_id: Uuid,
        mut rows: Vec<ImportRow>,
        source: TxnSource,
    ) -> Option<PreparedChunk> {
        let started = Instant::now();
        let exponent = self
            .state
            .accounts
            .get(&account_id)
            .map_or(2, |a| a.currency.exponent());
        let model = &self.state.model;
        for row in rows.iter_mut() {
            let item = Item {
                description: std::mem::take(&mut row.description),
                merchant: std::mem::take(&mut row.merchant),
                amount: row.amount,
                exponent,
                account: account_id,
                has_category: row.category_id.is_some(),
                merchant_in_description: true,
            };
            let a = model.categorize(&item);
            row.description = item.description;
            row.merchant = item.merchant;
            if let (None, Some((c, source, confidence))) = (row.category_id, a.category) {
                row.category_id = Some(c);
                row.category_source = Some(source);
                row.confidence = Some(confidence);
            }
            if let Some(m) = &a.merchant {
                row.merchant = m.chars().take(200).collect();
            }
            row.tags.extend(a.tags.iter().cloned());
            if let (Some(n), true) = (&a.notes, row.notes.is_empty()) {
                row.notes = n.clone();
            }
        }
        let prepared = self
            .state
            .prepare_import_chunk(&self.uid, account_id, rows, source);
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "prepared an import chunk"
        );
        prepared
    }
}

impl Handler<ImportChunk> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: ImportChunk, _ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        if let Some(answer) = self.replay(&msg.idempotency) {
            return done(answer);
        }
        if self.erased {
            return done(Err(erased()));
        }
        if let Err(e) = self.state.check_import_account(msg.account_id) {
            return done(Err(e));
        }
        // Prepared while the chunk before committed, or now.
        let prepared = match self.ahead.take() {
            Some((rows, prepared)) if rows.same(&msg.rows) => Some(prepared),
            // Taken by a Ledger that stopped while handling it: this one must not guess.
            _ => match msg.rows.take() {
                Some(rows) => self.prepare_import(msg.account_id, rows, msg.source),
                None => {
                    return done(Err(ApiError::Unavailable(
                        "The ledger restarted during the import; try again.".into(),
                    )))
                }
            },
        };
        let plan = prepared.ok_or(ApiError::NotFound).and_then(|p| {
            self.state.finish_import_chunk(
                p,
                &msg.import_id,
                msg.processed,
                msg.total,
                msg.completed,
                msg.report,
            )
        });
        let committing = match plan {
            Ok(plan) => self.commit(plan, msg.idempotency),
            Err(e) => return done(Err(e)),
        };
        // The writer has this chunk now: prepare the next one meanwhile. Its rows are
        // categorized with what the ledger knows before this chunk's lessons (a chunk's rows
        // never learn from each other either); the rest is checked again when its turn comes.
        if let Some(next) = msg.next {
            if let Some(rows) = next.take() {
                self.ahead = self
                    .prepare_import(msg.account_id, rows, msg.source)
                    .map(|p| (next, p));
            }
        }
        AtomicResponse::new(committing)
    }
}

impl Handler<Restore> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: Restore, _ctx: &mut Self::Context) -> Self::Result {
        let Some(set) = msg.set.take() else {
            return done(Err(ApiError::Unavailable(
                "The ledger restarted during the restore; try again.".into(),
            )));
        };
        self.write(msg.idempotency, move |l| l.state.plan_restore(set))
    }
}

// ---- reads --------------------------------------------------------------------------------

impl Handler<ListAccounts> for Ledger {
    type Result = MessageResult<ListAccounts>;
    fn handle(&mut self, _msg: ListAccounts, _ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        let mut items: Vec<AccountView> = self
            .state
            .accounts
            .values()
            .map(|a| AccountView::new(&a.row, a.balance()))
            .collect();
        items.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        MessageResult(items)
    }
}

impl Handler<GetAccount> for Ledger {
    type Result = MessageResult<GetAccount>;
    fn handle(&mut self, msg: GetAccount, _ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        MessageResult(
            self.state
                .accounts
                .get(&msg.id)
                .map(|a| AccountView::new(&a.row, a.balance())),
        )
    }
}

impl Handler<CreateBudget> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: CreateBudget, _ctx: &mut Self::Context) -> Self::Result {
        let uid = self.uid.clone();
        self.write(msg.idempotency, move |l| {
            l.state.plan_create_budget(&uid, msg.input, msg.today)
        })
    }
}

impl Handler<UpdateBudget> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: UpdateBudget, _ctx: &mut Self::Context) -> Self::Result {
        self.write(None, move |l| {
            l.state.plan_update_budget(msg.id, msg.input, msg.today)
        })
    }
}

impl Handler<DeleteBudget> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: DeleteBudget, _ctx: &mut Self::Context) -> Self::Result {
        self.write(None, move |l| l.state.plan_delete_budget(msg.id))
    }
}

impl Handler<RecordBudgetOutcome> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: RecordBudgetOutcome, _ctx: &mut Self::Context) -> Self::Result {
        self.write(None, move |l| {
            l.state
                .plan_budget_outcome(msg.statuses, msg.raise, msg.rearm)
        })
    }
}

impl Handler<AnnounceNotification> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: AnnounceNotification, _ctx: &mut Self::Context) -> Self::Result {
        self.write(None, move |_| {
            Ok(Plan {
                ops: Vec::new(),
                events: vec![("notification.created", msg.announcement)],
                effects: Vec::new(),
                reply: Reply {
                    status: 204,
                    body: String::new(),
                },
            })
        })
    }
}

impl Handler<MarkNotificationRead> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: MarkNotificationRead, _ctx: &mut Self::Context) -> Self::Result {
        let id = msg.id.to_string();
        self.read_then_write(
            move |conn, uid| crate::store::budgets::find_notification(conn, uid, &id),
            move |_, row| {
                let row = row.ok_or(ApiError::NotFound)?;
                Ok(Plan {
                    ops: vec![WriteOp::MarkNotificationRead {
                        id: row.id.clone(),
                        at: crate::store::now(),
                    }],
                    events: Vec::new(),
                    effects: Vec::new(),
                    reply: Reply {
                        status: 204,
                        body: String::new(),
                    },
                })
            },
        )
    }
}

impl Handler<CreateRecurring> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: CreateRecurring, _ctx: &mut Self::Context) -> Self::Result {
        let uid = self.uid.clone();
        self.write(msg.idempotency, move |l| {
            l.state.plan_create_recurring(&uid, msg.input)
        })
    }
}

impl Handler<UpdateRecurring> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: UpdateRecurring, _ctx: &mut Self::Context) -> Self::Result {
        self.write(None, move |l| {
            l.state.plan_update_recurring(msg.id, msg.input)
        })
    }
}

impl Handler<DeleteRecurring> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: DeleteRecurring, _ctx: &mut Self::Context) -> Self::Result {
        self.write(None, move |l| l.state.plan_delete_recurring(msg.id))
    }
}

impl Handler<RunRecurring> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, _msg: RunRecurring, _ctx: &mut Self::Context) -> Self::Result {
        let today = self.state.today();
        let due = self.state.due_occurrences(today);
        if due.is_empty() {
            return done(Ok(Reply {
                status: 200,
                body: r#"{"created":0}"#.into(),
            }));
        }
        let uid = self.uid.clone();
        self.read_then_write(
            move |conn, _uid| {
                let mut existing = Vec::new();
                for (account, ids) in &due {
                    existing.extend(crate::store::plans::existing_occurrences(
                        conn, account, ids,
                    )?);
                }
                Ok(existing)
            },
            move |l, existing| l.state.plan_run_recurring(&uid, today, &existing),
        )
    }
}

impl Handler<CreateGoal> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: CreateGoal, _ctx: &mut Self::Context) -> Self::Result {
        let uid = self.uid.clone();
        self.write(msg.idempotency, move |l| {
            l.state.plan_create_goal(&uid, msg.input)
        })
    }
}

impl Handler<UpdateGoal> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: UpdateGoal, _ctx: &mut Self::Context) -> Self::Result {
        self.write(None, move |l| {
            l.state
                .plan_update_goal(msg.id, msg.input, msg.contribution)
        })
    }
}

impl Handler<DeleteGoal> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: DeleteGoal, _ctx: &mut Self::Context) -> Self::Result {
        self.write(None, move |l| l.state.plan_delete_goal(msg.id))
    }
}

impl Handler<CheckGoals> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, _msg: CheckGoals, _ctx: &mut Self::Context) -> Self::Result {
        self.goal_last
            .retain(|id, _| self.state.goals.contains_key(id));
        let Some((plan, seen)) = self.state.plan_goal_progress(&self.goal_last) else {
            return done(Ok(Reply {
                status: 200,
                body: String::new(),
            }));
        };
        self.goal_last.extend(seen);
        AtomicResponse::new(self.commit(plan, None))
    }
}

impl Handler<ListRecurring> for Ledger {
    type Result = MessageResult<ListRecurring>;
    fn handle(&mut self, _msg: ListRecurring, _ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        let mut rows: Vec<_> = self.state.recurring.values().collect();
        rows.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        MessageResult(
            rows.into_iter()
                .map(|r| {
                    let currency = r
                        .account_id
                        .parse::<Uuid>()
                        .ok()
                        .and_then(|a| self.state.accounts.get(&a))
                        .map(|a| a.currency.code())
                        .unwrap_or("XXX");
                    super::plans::recurring_view(r, currency)
                })
                .collect(),
        )
    }
}

impl Handler<ListGoals> for Ledger {
    type Result = MessageResult<ListGoals>;
    fn handle(&mut self, _msg: ListGoals, _ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        let mut rows: Vec<_> = self.state.goals.values().collect();
        rows.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        MessageResult(rows.into_iter().map(|g| self.state.goal_view(g)).collect())
    }
}

impl Handler<ListBudgets> for Ledger {
    type Result = MessageResult<ListBudgets>;
    fn handle(&mut self, msg: ListBudgets, _ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        let mut items: Vec<_> = self
            .state
            .budgets
            .values()
            .map(|b| self.state.budget_view(b, msg.today))
            .collect();
        items.sort_by(|a, b| a.id.cmp(&b.id));
        MessageResult(items)
    }
}

impl Handler<GetBudget> for Ledger {
    type Result = MessageResult<GetBudget>;
    fn handle(&mut self, msg: GetBudget, _ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        MessageResult(
            self.state
                .budgets
                .get(&msg.id)
                .map(|b| self.state.budget_view(b, msg.today)),
        )
    }
}

impl Handler<LiveSnapshot> for Ledger {
    type Result = MessageResult<LiveSnapshot>;
    fn handle(&mut self, _msg: LiveSnapshot, _ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        let mut accounts: Vec<AccountView> = self
            .state
            .accounts
            .values()
            .map(|a| AccountView::new(&a.row, a.balance()))
            .collect();
        accounts.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        MessageResult(LiveState {
            last_seq: self.state.last_seq,
            accounts,
            budgets: self.state.all_budget_statuses(self.state.today()),
        })
    }
}

impl Handler<ListCategories> for Ledger {
    type Result = MessageResult<ListCategories>;
    fn handle(&mut self, _msg: ListCategories, _ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        let mut items: Vec<(chrono::NaiveDateTime, CategoryView)> = self
            .state
            .categories
            .values()
            .map(|c| (c.row.created_at, CategoryView::new(&c.row)))
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.id.cmp(&b.1.id)));
        MessageResult(items.into_iter().map(|(_, v)| v).collect())
    }
}

impl Handler<CategoryFamily> for Ledger {
    type Result = MessageResult<CategoryFamily>;
    fn handle(&mut self, msg: CategoryFamily, _ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        if !self.state.categories.contains_key(&msg.id) {
            return MessageResult(None);
        }
        let mut ids = vec![msg.id.to_string()];
        ids.extend(
            self.state
                .categories
                .iter()
                .filter(|(_, c)| c.parent == Some(msg.id))
                .map(|(id, _)| id.to_string()),
        );
        MessageResult(Some(ids))
    }
}

impl Handler<AccountCurrencies> for Ledger {
    type Result = MessageResult<AccountCurrencies>;
    fn handle(&mut self, _msg: AccountCurrencies, _ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        MessageResult(
            self.state
                .accounts
                .values()
                .map(|a| (a.row.id.clone(), a.currency))
                .collect(),
        )
    }
}

impl Handler<ListRates> for Ledger {
    type Result = MessageResult<ListRates>;
    fn handle(&mut self, _msg: ListRates, _ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        let mut rates: Vec<RateInput> = self
            .state
            .rates
            .all()
            .map(|(base, quote, date, rate)| RateInput {
                base,
                quote,
                date,
                rate,
            })
            .collect();
        rates.sort_by(|a, b| {
            (a.base.code(), a.quote.code(), a.date).cmp(&(b.base.code(), b.quote.code(), b.date))
        });
        MessageResult(rates)
    }
}

impl Ledger {
    fn report_inputs(
        &self,
    ) -> (
        HashMap<Uuid, AccountInfo<'_>>,
        HashMap<Uuid, CategoryInfo<'_>>,
    ) {
        let accounts = self
            .state
            .accounts
            .iter()
            .map(|(id, a)| {
                (
                    *id,
                    AccountInfo {
                        name: &a.row.name,
                        currency: a.currency,
                    },
                )
            })
            .collect();
        let categories = self
            .state
            .categories
            .iter()
            .map(|(id, c)| {
                (
                    *id,
                    CategoryInfo {
                        name: &c.row.name,
                        parent: c.parent,
                    },
                )
            })
            .collect();
        (accounts, categories)
    }
}

impl Handler<GetSummary> for Ledger {
    type Result = MessageResult<GetSummary>;
    fn handle(&mut self, msg: GetSummary, _ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        let (accounts, categories) = self.report_inputs();
        let summary: Summary = reports::summary(
            &self.state.daily,
            &accounts,
            &categories,
            &self.state.rates,
            msg.from,
            msg.to,
            msg.base,
        );
        MessageResult(summary)
    }
}

impl Handler<GetCashflow> for Ledger {
    type Result = MessageResult<GetCashflow>;
    fn handle(&mut self, msg: GetCashflow, _ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        let (accounts, _) = self.report_inputs();
        let cashflow: Cashflow = reports::cashflow(
            &self.state.daily,
            &accounts,
            &self.state.rates,
            msg.from,
            msg.to,
            msg.interval,
            msg.base,
        );
        MessageResult(cashflow)
    }
}

impl Handler<InjectFault> for Ledger {
    type Result = ();
    fn handle(&mut self, msg: InjectFault, ctx: &mut Self::Context) {
        tracing::warn!(user_id = %self.user_id, fault = ?msg.0, "fault injected into the ledger");
        match msg.0 {
            Fault::Crash => ctx.stop(),
            Fault::FailNextCommit => self.fail_next_commit = true,
        }
    }
}

impl Handler<TimezoneChanged> for Ledger {
    type Result = ResponseActFuture<Self, ()>;
    fn handle(&mut self, _msg: TimezoneChanged, _ctx: &mut Self::Context) -> Self::Result {
        let db = self.db.clone();
        let uid = self.uid.clone();
        Box::pin(
            async move {
                db.run(move |conn| crate::store::users::find_by_id(conn, &uid))
                    .await
            }
            .into_actor(self)
            .map(|found, act, ctx| match found {
                Ok(Some(row)) => {
                    act.state.timezone = row.timezone.parse().ok();
                    // A budget's current period may have moved with the date.
                    act.watch(ctx, false);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the new time zone; rebuilding");
                    act.rebuild(ctx);
                }
            }),
        )
    }
}

impl Handler<MemoryBalances> for Ledger {
    type Result = MessageResult<MemoryBalances>;
    fn handle(&mut self, _msg: MemoryBalances, _ctx: &mut Self::Context) -> Self::Result {
        let mut balances: Vec<(String, i64)> = self
            .state
            .accounts
            .values()
            .map(|a| (a.row.id.clone(), a.balance()))
            .collect();
        balances.sort();
        MessageResult(balances)
    }
}

impl Handler<Shutdown> for Ledger {
    type Result = ();
    fn handle(&mut self, _msg: Shutdown, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

// ---- rules ---------------------------------------------------------------------------------

impl Handler<CreateRule> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: CreateRule, _ctx: &mut Self::Context) -> Self::Result {
        let uid = self.uid.clone();
        self.write(msg.idempotency, move |l| {
            l.state.plan_create_rule(&uid, msg.spec, msg.position)
        })
    }
}

impl Handler<UpdateRule> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: UpdateRule, _ctx: &mut Self::Context) -> Self::Result {
        self.write(None, move |l| l.state.plan_update_rule(msg.id, msg.patch))
    }
}

impl Handler<DeleteRule> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: DeleteRule, _ctx: &mut Self::Context) -> Self::Result {
        self.write(None, move |l| l.state.plan_delete_rule(msg.id))
    }
}

impl Handler<ReorderRules> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: ReorderRules, _ctx: &mut Self::Context) -> Self::Result {
        self.write(None, move |l| l.state.plan_reorder_rules(msg.ids))
    }
}

/// Rows read per page while looking for the transactions a rule matches.
const APPLY_PAGE: i64 = 5_000;

impl Handler<ApplyRule> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: ApplyRule, _ctx: &mut Self::Context) -> Self::Result {
        let rule = match self.state.compiled_rule(msg.id) {
            Ok(rule) => rule,
            Err(e) => return done(Err(e)),
        };
        let scan = rule.clone();
        self.read_then_write(
            move |conn, uid| {
                let mut matched = Vec::new();
                let mut after: Option<String> = None;
                loop {
                    let page = crate::store::rules::rule_candidates(
                        conn,
                        uid,
                        after.as_deref(),
                        APPLY_PAGE,
                    )?;
                    let Some(last) = page.last() else { break };
                    after = Some(last.id.clone());
                    let full = page.len() as i64 == APPLY_PAGE;
                    matched.extend(page.into_iter().filter(|row| {
                        categorize::item_of(row, true).is_some_and(|item| {
                            scan.matches(&crate::domain::rules::Subject {
                                description: &item.description,
                                merchant: &item.merchant,
                                amount: item.amount,
                                exponent: item.exponent,
                                account: item.account,
                                transfer: false,
                            })
                        })
                    }));
                    if !full {
                        break;
                    }
                }
                Ok(matched)
            },
            move |l, matched| l.state.plan_apply_rule(&rule, matched, msg.overwrite),
        )
    }
}

impl Handler<ListRules> for Ledger {
    type Result = MessageResult<ListRules>;
    fn handle(&mut self, _msg: ListRules, _ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        MessageResult(self.state.list_rules())
    }
}

impl Handler<GetRule> for Ledger {
    type Result = MessageResult<GetRule>;
    fn handle(&mut self, msg: GetRule, _ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        MessageResult(self.state.get_rule(msg.id))
    }
}

impl Handler<CreateWebhook> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: CreateWebhook, _ctx: &mut Self::Context) -> Self::Result {
        let uid = self.uid.clone();
        self.write(msg.idempotency, move |l| {
            l.state.plan_create_webhook(&uid, msg.input)
        })
    }
}

impl Handler<UpdateWebhook> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: UpdateWebhook, _ctx: &mut Self::Context) -> Self::Result {
        self.write(None, move |l| {
            l.state.plan_update_webhook(msg.id, msg.input)
        })
    }
}

impl Handler<DeleteWebhook> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: DeleteWebhook, _ctx: &mut Self::Context) -> Self::Result {
        self.write(None, move |l| l.state.plan_delete_webhook(msg.id))
    }
}

impl Handler<PutPreferences> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: PutPreferences, _ctx: &mut Self::Context) -> Self::Result {
        let uid = self.uid.clone();
        self.write(None, move |l| l.state.plan_put_preferences(&uid, msg.input))
    }
}

impl Handler<SendMonthlySummary> for Ledger {
    type Result = AtomicResponse<Self, WriteResult>;
    fn handle(&mut self, msg: SendMonthlySummary, _ctx: &mut Self::Context) -> Self::Result {
        let uid = self.uid.clone();
        self.write(None, move |l| {
            let end = super::notify::month_end(msg.month);
            let before = msg
                .month
                .checked_sub_months(chrono::Months::new(1))
                .unwrap_or(msg.month);
            let (accounts, categories) = l.report_inputs();
            let rates = &l.state.rates;
            let summary = reports::summary(
                &l.state.daily,
                &accounts,
                &categories,
                rates,
                msg.month,
                end,
                msg.base,
            );
            let previous = reports::summary(
                &l.state.daily,
                &accounts,
                &categories,
                rates,
                before,
                msg.month.pred_opt().unwrap_or(msg.month),
                msg.base,
            );
            let plan = l
                .state
                .plan_monthly_summary(&uid, msg.month, msg.base, &summary, &previous)?;
            Ok(plan.unwrap_or(Plan {
                ops: Vec::new(),
                events: Vec::new(),
                effects: Vec::new(),
                reply: Reply {
                    status: 204,
                    body: String::new(),
                },
            }))
        })
    }
}

impl Handler<ListWebhooks> for Ledger {
    type Result = MessageResult<ListWebhooks>;
    fn handle(&mut self, _msg: ListWebhooks, _ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        MessageResult(self.state.list_webhooks())
    }
}

impl Handler<GetWebhook> for Ledger {
    type Result = MessageResult<GetWebhook>;
    fn handle(&mut self, msg: GetWebhook, _ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        MessageResult(self.state.get_webhook(msg.id))
    }
}

impl Handler<GetPreferences> for Ledger {
    type Result = MessageResult<GetPreferences>;
    fn handle(&mut self, _msg: GetPreferences, _ctx: &mut Self::Context) -> Self::Result {
        self.touch();
        MessageResult(self.state.notify.prefs.clone())
    }
}
