//! The `Directory`: one per process, supervised. It knows who each user is: it caches each
//! active user's profile, security stamp and live sessions, so checking an access token costs a
//! message, not a query. Every change to those (password change, logout, session revocation,
//! disable, deletion) is followed by a [`Forget`] before it is acknowledged, so a revoked token
//! stops working at once. Later it also starts, stops and respawns each user's `Ledger`.
mod handlers;
pub mod messages;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

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

/// A map that only the Directory changes and any thread may read.
struct Published<V>(Arc<RwLock<HashMap<Uuid, V>>>);

impl<V> Clone for Published<V> {
    fn clone(&self) -> Self {
        Published(self.0.clone())
    }
}

impl<V> Default for Published<V> {
    fn default() -> Self {
        Published(Arc::default())
    }
}

impl<V> Published<V> {
    fn read(&self) -> RwLockReadGuard<'_, HashMap<Uuid, V>> {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<Uuid, V>> {
        self.0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The running Ledgers' addresses, published by the Directory (their only writer) so that request
/// handlers reach a running Ledger directly instead of asking the Directory first: one thread
/// hop less on every request. A miss, or a Ledger that has stopped, goes through the Directory.
#[derive(Clone, Default)]
pub struct LedgerIndex(Published<Addr<Ledger>>);

impl LedgerIndex {
    /// The user's Ledger, if one is running.
    pub fn get(&self, user_id: Uuid) -> Option<Addr<Ledger>> {
        self.0
            .read()
            .get(&user_id)
            .filter(|a| a.connected())
            .cloned()
    }
}

/// Send a message to a user's Ledger, starting it if needed (on the Ledger threads, in turn). A
/// Ledger that stopped between the lookup and the send (idle, failure) did not take the message,
/// so it goes to the fresh one.
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
    ask_ledger_at(directory, user_id, None, msg).await
}

/// [`ask_ledger`] from a client's connection (an HTTP worker, or a WebSocket session on one): a
/// Ledger that has to be started starts on this thread, so that the requests of the connection
/// that woke it need no thread hop to reach it and none to get its answer back (at one
/// connection, ~12 % of a create's server CPU and latency; docs/benchmarks.md, session 12).
pub async fn ask_ledger_here<M>(
    directory: &Addr<Directory>,
    user_id: Uuid,
    msg: M,
) -> Result<M::Result, actix::MailboxError>
where
    M: actix::Message + Send + Clone + 'static,
    M::Result: Send + 'static,
    Ledger: actix::Handler<M>,
{
    ask_ledger_at(directory, user_id, actix::Arbiter::try_current(), msg).await
}

async fn ask_ledger_at<M>(
    directory: &Addr<Directory>,
    user_id: Uuid,
    near: Option<ArbiterHandle>,
    msg: M,
) -> Result<M::Result, actix::MailboxError>
where
    M: actix::Message + Send + Clone + 'static,
    M::Result: Send + 'static,
    Ledger: actix::Handler<M>,
{
    let mut last = actix::MailboxError::Closed;
    for _ in 0..3 {
        let near = near.clone();
        let ledger = directory.send(LedgerFor { user_id, near }).await?;
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
pub(crate) struct Entry {
    user: Arc<UserView>,
    stamp: String,
    /// Live session id → absolute expiry.
    sessions: HashMap<Uuid, NaiveDateTime>,
    /// Seconds since the Unix epoch, when a token of this user was last checked.
    last_used: AtomicU64,
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Entry {
    fn admit(&self, msg: &Authenticate, now: NaiveDateTime) -> Result<Principal, Rejection> {
        self.last_used.store(unix_secs(), Ordering::Relaxed);
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

/// The Directory's cache of users, which only the Directory changes but any thread may read: a
/// request whose user is cached is checked right there, without a message to the Directory. A
/// [`Forget`] removes the user from it before it is acknowledged, exactly as before.
#[derive(Clone, Default)]
pub struct UserIndex(Published<Arc<Entry>>);

impl UserIndex {
    /// The verdict on a token's claims, if its user is cached (`None`: ask the Directory).
    pub fn admit(&self, msg: &Authenticate) -> Option<Result<Principal, Rejection>> {
        let map = self.0.read();
        let entry = map.get(&msg.user_id)?;
        Some(entry.admit(msg, crate::store::now()))
    }
}

pub struct Directory {
    db: Db,
    writer: Writer,
    hub: Option<Addr<Hub>>,
    categorizer: Option<Addr<Categorizer>>,
    notifier: Option<Addr<Notifier>>,
    /// Threads for Ledgers that no connection woke (the Scheduler's, say), used in turn.
    arbiters: Vec<ArbiterHandle>,
    next_arbiter: usize,
    /// Running Ledgers (readable from other threads).
    ledgers: LedgerIndex,
    /// Ledgers started again after they stopped (idle or failure).
    pub(crate) respawns: u64,
    users: UserIndex,
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
            ledgers: LedgerIndex::default(),
            respawns: 0,
            users: UserIndex::default(),
            forgets: 0,
        }
    }

    /// Publish the running Ledgers in `ledgers` and the cached users in `users` (see
    /// [`LedgerIndex`], [`UserIndex`]).
    pub fn with_indexes(mut self, ledgers: LedgerIndex, users: UserIndex) -> Self {
        self.ledgers = ledgers;
        self.users = users;
        self
    }

    /// The user's live Ledger, starting one when there is none or the last one stopped: on
    /// `near` when given (the asking connection's thread), else on the Ledger threads in turn.
    fn ledger(&mut self, user_id: Uuid, near: Option<ArbiterHandle>) -> Addr<Ledger> {
        if let Some(addr) = self.ledgers.0.read().get(&user_id) {
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
        let addr = if let Some(arbiter) = near {
            Ledger::start_in_arbiter(&arbiter, make)
        } else if self.arbiters.is_empty() {
            Ledger::create(make)
        } else {
            let arbiter = &self.arbiters[self.next_arbiter % self.arbiters.len()];
            self.next_arbiter = self.next_arbiter.wrapping_add(1);
            Ledger::start_in_arbiter(arbiter, make)
        };
        self.ledgers.0.write().insert(user_id, addr.clone());
        addr
    }

    /// Forget `user_id`'s Ledger (it is being stopped).
    fn drop_ledger(&mut self, user_id: Uuid) -> Option<Addr<Ledger>> {
        self.ledgers.0.write().remove(&user_id)
    }

    fn sweep(&mut self) {
        self.ledgers.0.write().retain(|_, addr| addr.connected());
        let oldest = unix_secs().saturating_sub(IDLE_EVICTION.as_secs());
        let mut users = self.users.0.write();
        let before = users.len();
        users.retain(|_, entry| entry.last_used.load(Ordering::Relaxed) > oldest);
        let dropped = before - users.len();
        if dropped > 0 {
            tracing::debug!(
                dropped,
                cached = users.len(),
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

/// A Directory that dies (a panic is not restarted by its supervisor) takes its published maps
/// with it: tokens are then checked by messages to it, which fail, so a revocation it could no
/// longer record can never be bypassed through a stale cache.
impl Drop for Directory {
    fn drop(&mut self) {
        self.users.0.write().clear();
        self.ledgers.0.write().clear();
    }
}

impl Supervised for Directory {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        tracing::warn!("directory restarting; cache cleared");
        self.users.0.write().clear();
        self.forgets += 1;
    }
}
