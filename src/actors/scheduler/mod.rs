//! The `Scheduler`: one per process, the keeper of time. On start and then every tick it finds the
//! users with recurring transactions due and asks each one's Ledger to create them — every missed
//! occurrence since the last run, so downtime is caught up; each occurrence has a deterministic
//! external id, so nothing is ever created twice. (Period rollovers need no work: budget periods
//! are computed from the date.)
//!
//! Monthly summaries: once the 1st of a month has come in a user's time zone, the user's Ledger
//! is asked to queue the summary email of the month before (when they want it and booked
//! anything but transfers in it) — on the 1st, or up to `monthly_summary_catch_up_days` later
//! after downtime. The outbox row's dedup key makes it one per user and month, whatever
//! restarts or ticks happen; after downtime the summary goes out at the next tick.
use std::collections::HashSet;
use std::time::Duration;

use actix::{Actor, ActorFutureExt, Addr, AsyncContext, Context, WrapFuture};
use chrono::{Datelike, NaiveDate};

use crate::actors::directory::{ask_ledger, Directory};
use crate::actors::ledger::notify::{month_end, summary_key};
use crate::actors::ledger::{RunRecurring, SendMonthlySummary};
use crate::domain::notify::Preferences;
use crate::domain::Currency;
use crate::store::{notify as nq, plans as q, Db, StoreError};

pub struct Scheduler {
    db: Db,
    directory: Addr<Directory>,
    tick: Duration,
    running: bool,
    summarizing: bool,
    /// (user, month) summaries already queued or found not needed, so a tick does not ask again.
    summarized: HashSet<(String, NaiveDate)>,
    /// Summaries go out from the 1st to this day of the month (catching up after downtime).
    summary_days: u32,
}

/// The first day of the month before the one `today` is in.
fn previous_month(today: NaiveDate) -> NaiveDate {
    let first = today.with_day(1).unwrap_or(today);
    first
        .checked_sub_months(chrono::Months::new(1))
        .unwrap_or(first)
}

impl Scheduler {
    pub fn new(db: Db, directory: Addr<Directory>, tick: Duration, summary_days: u32) -> Self {
        Scheduler {
            db,
            directory,
            tick,
            running: false,
            summarizing: false,
            summarized: HashSet::new(),
            summary_days,
        }
    }

    /// Queue the monthly summaries that are due (see the module docs).
    fn run_summaries(&mut self, ctx: &mut Context<Self>) {
        if self.summarizing {
            return;
        }
        self.summarizing = true;
        let (db, directory) = (self.db.clone(), self.directory.clone());
        let done = self.summarized.clone();
        let catch_up = self.summary_days;
        let work = async move {
            let users = db.run(nq::summary_candidates).await?;
            let now = chrono::Utc::now();
            let mut handled = Vec::new();
            let mut queued = 0usize;
            for nq::SummaryCandidate {
                id: user,
                timezone: tz,
                base_currency: base,
                preferences: prefs,
            } in users
            {
                let today = match tz.parse::<chrono_tz::Tz>() {
                    Ok(tz) => now.with_timezone(&tz).date_naive(),
                    Err(_) => now.date_naive(),
                };
                // On the 1st, or within the catch-up days after it (downtime); never later, so
                // a first start mid-month does not mail everyone last month's summary.
                if today.day() > catch_up {
                    continue;
                }
                let month = previous_month(today);
                if done.contains(&(user.clone(), month)) {
                    continue;
                }
                if !Preferences::from_json(prefs.as_deref()).monthly_summary {
                    continue;
                }
                let (u, key) = (user.clone(), summary_key(&user, month));
                // (A user with nothing booked in that month is asked again at the next tick: an
                // import of last month's statement still gets its summary.)
                let (sent, booked) = db
                    .run(move |conn| {
                        Ok::<_, StoreError>((
                            nq::find_by_dedup(conn, &key)?.is_some(),
                            nq::has_transactions(conn, &u, month, month_end(month))?,
                        ))
                    })
                    .await?;
                if !sent && !booked {
                    continue;
                }
                let (Ok(user_id), Ok(base)) = (user.parse(), Currency::parse(&base)) else {
                    continue;
                };
                if !sent {
                    match ask_ledger(&directory, user_id, SendMonthlySummary { month, base }).await
                    {
                        Ok(Ok(reply)) if reply.status == 200 => queued += 1,
                        // Nothing to summarize (only transfers): nothing to send this month.
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => {
                            tracing::warn!(user_id = %user_id, error = %e, "monthly summary not queued");
                            continue;
                        }
                        Err(e) => {
                            tracing::warn!(user_id = %user_id, error = %e, "ledger unreachable for the monthly summary");
                            continue;
                        }
                    }
                }
                handled.push((user, month));
            }
            Ok::<_, StoreError>((handled, queued))
        };
        ctx.spawn(work.into_actor(self).map(|result, act, _| {
            act.summarizing = false;
            match result {
                Ok((handled, queued)) => {
                    // Only this month's entries matter from now on.
                    let current = handled.first().map(|(_, m)| *m);
                    act.summarized.retain(|(_, m)| Some(*m) == current);
                    act.summarized.extend(handled);
                    if queued > 0 {
                        tracing::info!(queued, "monthly summaries queued");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "scheduler could not look for monthly summaries")
                }
            }
        }));
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
        self.run_summaries(ctx);
        ctx.run_interval(self.tick, |act, ctx| {
            act.run_due(ctx);
            act.run_summaries(ctx);
        });
    }
}
