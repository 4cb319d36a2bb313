//! The `BudgetWatcher`: one per active user, started by that user's Ledger. After every commit
//! that can move spend (a transaction created, edited, re-dated or deleted; a budget or a rate
//! changed) the Ledger sends it every budget's status for the current period. It decides which
//! thresholds were crossed upward (raise, exactly once per budget, threshold and period — the
//! alerts already raised are loaded from the database, so a restart never repeats one) and which
//! fell back below (re-arm), and sends that outcome back to the Ledger, which commits the alert
//! rows, `budget.status` / `budget.threshold_reached` events and in-app notifications together.
use std::collections::{HashMap, HashSet};

use actix::{
    Actor, ActorContext, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, WrapFuture,
};
use chrono::NaiveDate;
use uuid::Uuid;

use crate::actors::ledger::budgets::{Alert, BudgetStatus, Rearm};
use crate::actors::ledger::{Ledger, RecordBudgetOutcome};
use crate::store::{budgets as q, Db};

type AlertKey = (String, NaiveDate, i64);

pub struct BudgetWatcher {
    user_id: Uuid,
    db: Db,
    ledger: Addr<Ledger>,
    /// Thresholds raised, per budget and period.
    fired: HashSet<AlertKey>,
    /// The last status announced per budget, to send `budget.status` only on change.
    last: HashMap<String, BudgetStatus>,
}

impl BudgetWatcher {
    pub fn new(user_id: Uuid, db: Db, ledger: Addr<Ledger>) -> Self {
        BudgetWatcher {
            user_id,
            db,
            ledger,
            fired: HashSet::new(),
            last: HashMap::new(),
        }
    }
}

impl Actor for BudgetWatcher {
    type Context = Context<Self>;

    /// Load the alerts already raised before looking at anything.
    fn started(&mut self, ctx: &mut Self::Context) {
        let (db, uid) = (self.db.clone(), self.user_id.to_string());
        ctx.wait(
            async move { db.run(move |conn| q::load_alerts(conn, &uid)).await }
                .into_actor(self)
                .map(|loaded, act, ctx| match loaded {
                    Ok(rows) => {
                        act.fired = rows
                            .into_iter()
                            .map(|r| (r.budget_id, r.period_start, i64::from(r.threshold)))
                            .collect();
                    }
                    Err(e) => {
                        tracing::error!(user_id = %act.user_id, error = %e, "budget watcher could not load alerts");
                        ctx.stop();
                    }
                }),
        );
    }
}

/// Budget statuses after a commit. `initial` marks the first evaluation after the Ledger started:
/// its statuses are remembered without announcing them, but missed alerts are still raised.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Evaluate {
    pub statuses: Vec<BudgetStatus>,
    pub initial: bool,
}

/// Stop with the Ledger.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopWatching;

impl Handler<Evaluate> for BudgetWatcher {
    type Result = ();

    fn handle(&mut self, msg: Evaluate, _ctx: &mut Self::Context) {
        let mut changed = Vec::new();
        let mut raise = Vec::new();
        let mut rearm = Vec::new();
        let live: HashSet<&str> = msg.statuses.iter().map(|s| s.budget_id.as_str()).collect();
        self.last.retain(|id, _| live.contains(id.as_str()));
        self.fired.retain(|(id, _, _)| live.contains(id.as_str()));
        for status in msg.statuses {
            for &threshold in &status.thresholds {
                let key = (status.budget_id.clone(), status.period_start, threshold);
                let reached = status.percent >= threshold;
                if reached && !self.fired.contains(&key) {
                    self.fired.insert(key);
                    raise.push(Alert {
                        budget_id: status.budget_id.clone(),
                        period_start: status.period_start,
                        threshold,
                        status: status.clone(),
                    });
                } else if !reached && self.fired.remove(&key) {
                    rearm.push(Rearm {
                        budget_id: status.budget_id.clone(),
                        period_start: status.period_start,
                        threshold,
                    });
                }
            }
            if self.last.get(&status.budget_id) != Some(&status) {
                self.last.insert(status.budget_id.clone(), status.clone());
                if !msg.initial {
                    changed.push(status);
                }
            }
        }
        if !(changed.is_empty() && raise.is_empty() && rearm.is_empty()) {
            tracing::debug!(user_id = %self.user_id, raised = raise.len(), rearmed = rearm.len(), "budget outcome");
            self.ledger.do_send(RecordBudgetOutcome {
                statuses: changed,
                raise,
                rearm,
            });
        }
    }
}

impl Handler<StopWatching> for BudgetWatcher {
    type Result = ();
    fn handle(&mut self, _msg: StopWatching, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
