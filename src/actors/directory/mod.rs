//! The `Directory`: one per process, supervised. It knows who each user is: it caches each
//! active user's profile, security stamp and live sessions, so checking an access token costs a
//! message, not a query. Every change to those (password change, logout, session revocation,
//! disable, deletion) is followed by a [`Forget`] before it is acknowledged, so a revoked token
//! stops working at once. Later it also starts, stops and respawns each user's `Ledger`.
mod handlers;
pub mod messages;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, Addr, ArbiterHandle, AsyncContext, Context, Supervised};
use chrono::NaiveDateTime;
use uuid::Uuid;

pub use messages::{Authenticate, CachedUsers, Forget, LedgerFor, LiveLedgers, Rejection, Retire};

use crate::actors::categorizer::Categorizer;
use crate::actors::hub::Hub;
use crate::actors::ledger::Ledger;
use crate::actors::notifier::Notifier;
use crate::identity::{Principal, UserView};
use crate::store::writer::Writer;
use crate::store::Db;

/// Send a message to a user's Ledger, starting it if needed. A Ledger that stopped between the
/// lookup and the send (idle, failure) did not take the message, so it goes to the fresh one.
pub async fn ask_ledger<M>(
    directory: &Addr<Directory>,
    user_id: Uuid,
    msg: M,
) -> Result<M::Result, actix::MailboxError>
where
    M: actix::Message + Send + Clone + 'static,
    M::Result: Send + 'static,
    Ledger: actix::Handler<M>,
{
    let mut last = actix::MailboxError::Closed;
    for _ in 0..3 {
        let ledger = directory.send(LedgerFor { user_id }).await?;
        match ledger.send(msg.clone()).await {
            Ok(answer) => return Ok(answer),
            Err(e @ actix::MailboxError::Closed) => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// Entries unused for this long are dropped; they are reloaded on the next request.
const IDLE_EVICTION: Duration = Duration::from_secs(15 * 60);
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// What the directory remembers of one user.
struct Entry {
    user: Arc<UserView>,
    stamp: String,
    /// Live session id → absolute expiry.
    sessions: HashMap<Uuid, NaiveDateTime>,
    last_used: Instant,
}

impl Entry {
    fn admit(&self, msg: &Authenticate, now: NaiveDateTime) -> Result<Principal, Rejection> {
        if self.user.disabled {
            return Err(Rejection::Disabled);
        }
        if self.stamp != msg.stamp {
            return Err(Rejection::StaleStamp);
        }
        match self.sessions.get(&msg.session_id) {
            Some(expires) if *expires > now => Ok(Principal {
                user: self.user.clone(),
                session_id: msg.session_id,
            }),
            _ => Err(Rejection::SessionEnded),
        }
    }
}

pub struct Directory {
    db: Db,
    writer: Writer,
    hub: Option<Addr<Hub>>,
    categorizer: Option<Addr<Categorizer>>,
    notifier: Option<Addr<Notifier>>,
    /// Threads the Ledgers run on, used in turn.
    arbiters: Vec<ArbiterHandle>,
    next_arbiter: usize,
    ledgers: HashMap<Uuid, Addr<Ledger>>,
    /// Ledgers started again after they stopped (idle or failure).
    pub(crate) respawns: u64,
    users: HashMap<Uuid, Entry>,
    /// Bumped by every [`Forget`]: a load that started before a forget must not be cached, as it
    /// may have read the database before the change committed.
    forgets: u64,
}

impl Directory {
    pub fn new(
        db: Db,
        writer: Writer,
        hub: Option<Addr<Hub>>,
        categorizer: Option<Addr<Categorizer>>,
        notifier: Option<Addr<Notifier>>,
        arbiters: Vec<ArbiterHandle>,
    ) -> Self {
        Directory {
            notifier,
            db,
            writer,
            hub,
            categorizer,
            arbiters,
            next_arbiter: 0,
            ledgers: HashMap::new(),
            respawns: 0,
            users: HashMap::new(),
            forgets: 0,
        }
    }

    /// The user's live Ledger, starting one when there is none or the last one stopped.
    fn ledger(&mut self, user_id: Uuid) -> Addr<Ledger> {
        if let Some(addr) = self.ledgers.get(&user_id) {
            if addr.connected() {
                return addr.clone();
            }
            self.respawns += 1;
        }
        let (db, writer, hub) = (self.db.clone(), self.writer.clone(), self.hub.clone());
        let (categorizer, notifier) = (self.categorizer.clone(), self.notifier.clone());
        let make = move |_: &mut Context<Ledger>| {
            Ledger::new(user_id, db, writer, hub, categorizer, notifier)
        };
        let addr = if self.arbiters.is_empty() {
            Ledger::create(make)
        } else {
            let arbiter = &self.arbiters[self.next_arbiter % self.arbiters.len()];
            self.next_arbiter = self.next_arbiter.wrapping_add(1);
            Ledger::start_in_arbiter(arbiter, make)
        };
        self.ledgers.insert(user_id, addr.clone());
        addr
    }

    fn sweep(&mut self) {
        self.ledgers.retain(|_, addr| addr.connected());
        let before = self.users.len();
        self.users
            .retain(|_, entry| entry.last_used.elapsed() < IDLE_EVICTION);
        let dropped = before - self.users.len();
        if dropped > 0 {
            tracing::debug!(
                dropped,
                cached = self.users.len(),
                "directory evicted idle users"
            );
        }
    }
}

impl Actor for Directory {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(SWEEP_EVERY, |act, _| act.sweep());
        tracing::debug!("directory started");
    }
}

impl Supervised for Directory {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        tracing::warn!("directory restarting; cache cleared");
        self.users.clear();
        self.forgets += 1;
    }
}
