//! The `Scheduler`: one per process, the keeper of time. On start and then every tick it finds the
//! users with recurring transactions due and asks each one's Ledger to create them — every missed
//! occurrence since the last run, so downtime is caught up; each occurrence has a deterministic
//! external id, so nothing is ever created twice. (Period rollovers need no work: budget periods
//! are computed from the date. Monthly summaries and pruning come with the notifications issue.)
use std::time::Duration;

use actix::{Actor, ActorFutureExt, Addr, AsyncContext, Context, WrapFuture};

use crate::actors::directory::{ask_ledger, Directory};
use crate::actors::ledger::RunRecurring;
use crate::store::{plans as q, Db};

pub struct Scheduler {
    db: Db,
    directory: Addr<Directory>,
    tick: Duration,
    running: bool,
}

impl Scheduler {
    pub fn new(db: Db, directory: Addr<Directory>, tick: Duration) -> Self {
        Scheduler {
            db,
            directory,
            tick,
            running: false,
        }
    }

    fn run_due(&mut self, ctx: &mut Context<Self>) {
        if self.running {
            return;
        }
        self.running = true;
        let (db, directory) = (self.db.clone(), self.directory.clone());
        // Users in time zones ahead of UTC may already be a day further.
        let until = chrono::Utc::now().date_naive() + chrono::Duration::days(1);
        let work = async move {
            let users = db
                .run(move |conn| q::users_with_due_recurring(conn, until))
                .await?;
            let mut created = 0usize;
            for user in users {
                let Ok(user_id) = user.parse() else { continue };
                match ask_ledger(&directory, user_id, RunRecurring {}).await {
                    Ok(Ok(reply)) => {
                        created += serde_json::from_str::<serde_json::Value>(&reply.body)
                            .ok()
                            .and_then(|v| v["created"].as_u64())
                            .unwrap_or(0) as usize;
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(user_id = %user_id, error = %e, "recurring run failed")
                    }
                    Err(e) => {
                        tracing::warn!(user_id = %user_id, error = %e, "ledger unreachable for recurring run")
                    }
                }
            }
            Ok::<_, crate::store::StoreError>(created)
        };
        ctx.spawn(work.into_actor(self).map(|result, act, _| {
            act.running = false;
            match result {
                Ok(0) => {}
                Ok(n) => tracing::info!(created = n, "recurring transactions created"),
                Err(e) => tracing::warn!(error = %e, "scheduler could not look for due work"),
            }
        }));
    }
}

impl Actor for Scheduler {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.run_due(ctx);
        ctx.run_interval(self.tick, |act, ctx| act.run_due(ctx));
    }
}
