//! The `Notifier`: one per process, supervised. It drains the outbox — the email and webhook
//! rows that Ledgers (and the identity service) commit together with the changes that cause them
//! — rendering emails from `templates/email/` and sending them through lettre (SMTP, or files
//! under `./data/mail/` when no SMTP server is configured), and POSTing signed event envelopes to
//! webhooks. A failed try is retried with exponential backoff and full jitter; after
//! `notify_max_attempts` tries the row is `dead`. It keeps no state of its own: the outbox is in
//! the database, so a restart (or a crash between a send and its record) resumes where it was —
//! at worst one message goes out twice, with the same Message-ID / delivery id.
mod mail;
mod render;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use actix::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, Message, Supervised, WrapFuture,
};
use rand::Rng;

pub use mail::Mailer;

use crate::config::Settings;
use crate::domain::notify::Backoff;
use crate::store::notify::{self as q, Outgoing};
use crate::store::{Db, StoreError};

/// Rows taken from the outbox per round.
const BATCH: i64 = 32;

/// Something new is in the outbox: look now rather than at the next tick.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Nudge;

/// How the Notifier sends.
pub struct Outbound {
    pub mailer: Mailer,
    pub backoff: Backoff,
    pub webhook_timeout: Duration,
    /// Whether webhooks may target loopback and private addresses (operator's choice).
    pub allow_private: bool,
    pub tick: Duration,
    /// How long a claimed row stays hidden from other drains: longer than any one try.
    pub lease: Duration,
}

impl Outbound {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Outbound> {
        Ok(Outbound {
            mailer: Mailer::from_settings(settings)?,
            backoff: Backoff {
                base: settings.notify_backoff_base,
                cap: settings.notify_backoff_cap,
                max_attempts: settings.notify_max_attempts,
            },
            webhook_timeout: settings.webhook_timeout,
            allow_private: settings.webhooks_allow_private,
            tick: settings.notify_tick,
            lease: settings.smtp_timeout.max(settings.webhook_timeout) + Duration::from_secs(5),
        })
    }
}

pub struct Notifier {
    db: Db,
    out: Arc<Outbound>,
    running: bool,
    again: bool,
}

impl Notifier {
    pub fn new(db: Db, out: Arc<Outbound>) -> Self {
        Notifier {
            db,
            out,
            running: false,
            again: false,
        }
    }

    /// Send everything due, round after round, until the outbox has nothing due.
    fn drain(&mut self, ctx: &mut Context<Self>) {
        if self.running {
            self.again = true;
            return;
        }
        self.running = true;
        let (db, out) = (self.db.clone(), self.out.clone());
        let work = async move {
            let mut sent = 0usize;
            loop {
                let now = crate::store::now();
                let lease_until = now + chrono::Duration::from_std(out.lease).unwrap_or_default();
                let due = db
                    .run(move |conn| q::claim_due(conn, now, lease_until, BATCH))
                    .await?;
                let n = due.len();
                let results = futures_util::future::join_all(
                    due.into_iter().map(|item| deliver(&db, &out, item)),
                )
                .await;
                sent += results.into_iter().filter(|ok| *ok).count();
                if (n as i64) < BATCH {
                    break;
                }
            }
            Ok::<_, StoreError>(sent)
        };
        ctx.spawn(work.into_actor(self).map(|result, act, ctx| {
            act.running = false;
            if let Err(e) = result {
                tracing::warn!(error = %e, "could not read the outbox; trying again at the next tick");
            }
            if std::mem::take(&mut act.again) {
                act.drain(ctx);
            }
        }));
    }
}

/// Shortest wait before a retry, whatever the jitter drew.
const MIN_RETRY: Duration = Duration::from_millis(10);

/// One try of one claimed row, recorded: `true` when it was delivered.
async fn deliver(db: &Db, out: &Outbound, item: Outgoing) -> bool {
    let id = item.row.id.clone();
    let attempts = item.row.attempts;
    if item.webhook.as_ref().is_some_and(|(_, _, active)| !active) {
        // A paused webhook: its deliveries wait for it, the try not counted.
        let later = crate::store::now() + chrono::Duration::from_std(out.lease).unwrap_or_default();
        if let Err(e) = db.run(move |conn| q::postpone(conn, &id, later)).await {
            tracing::warn!(error = %e, "could not postpone a delivery of a paused webhook");
        }
        return false;
    }
    let outcome = if item.user_disabled {
        Err(Failure::permanent("the account is disabled"))
    } else {
        match item.row.channel.as_str() {
            "email" => out.mailer.send(&item).await.map(|()| None),
            "webhook" => webhook::post(out, &item).await.map(Some),
            other => Err(Failure::permanent(format!("unknown channel `{other}`"))),
        }
    };
    let now = crate::store::now();
    // A reset code is worth nothing to keep once it is on its way, or will never be.
    let is_reset = item.row.kind == "password_reset";
    let redacted = || serde_json::json!({ "redacted": true }).to_string();
    let record = match outcome {
        Ok(status) => {
            tracing::info!(notification = %id, kind = %item.row.kind, channel = %item.row.channel, attempts, "notification sent");
            let payload = is_reset.then(redacted);
            db.run(move |conn| q::mark_sent(conn, &id, now, status, payload))
                .await
                .map(|()| true)
        }
        Err(failure) => {
            let next =
                (!failure.permanent && !out.backoff.exhausted(attempts.max(0) as u32)).then(|| {
                    let wait = out
                        .backoff
                        .delay(attempts.max(0) as u32, rand::thread_rng().gen::<f64>())
                        .max(MIN_RETRY);
                    now + chrono::Duration::from_std(wait).unwrap_or_default()
                });
            match next {
                Some(at) => {
                    tracing::warn!(notification = %id, channel = %item.row.channel, attempts, retry_at = %at, error = %failure.message, "notification not delivered; will retry")
                }
                None => {
                    tracing::error!(notification = %id, channel = %item.row.channel, attempts, error = %failure.message, "notification dead after its last try")
                }
            }
            let message = failure.message.chars().take(500).collect::<String>();
            let payload = (is_reset && next.is_none()).then(redacted);
            db.run(move |conn| q::mark_failed(conn, &id, next, &message, failure.status, payload))
                .await
                .map(|()| false)
        }
    };
    record.unwrap_or_else(|e| {
        tracing::error!(error = %e, "could not record a delivery; it is tried again when its claim lapses");
        false
    })
}

/// Why a try failed, and whether trying again can help.
#[derive(Debug)]
pub(crate) struct Failure {
    pub message: String,
    pub status: Option<i32>,
    pub permanent: bool,
}

impl Failure {
    pub fn retry(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            status: None,
            permanent: false,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            status: None,
            permanent: true,
        }
    }
}

impl Actor for Notifier {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.running = false;
        self.drain(ctx);
        ctx.run_interval(self.out.tick, |act, ctx| act.drain(ctx));
    }
}

impl Supervised for Notifier {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        tracing::warn!("notifier restarting");
    }
}

impl Handler<Nudge> for Notifier {
    type Result = ();
    fn handle(&mut self, _msg: Nudge, ctx: &mut Self::Context) {
        self.drain(ctx);
    }
}
