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

use actix::{Actor, AsyncContext, Context, Supervised};
use chrono::NaiveDateTime;
use uuid::Uuid;

pub use messages::{Authenticate, CachedUsers, Forget, Rejection};

use crate::identity::{Principal, UserView};
use crate::store::Db;

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
    users: HashMap<Uuid, Entry>,
    /// Bumped by every [`Forget`]: a load that started before a forget must not be cached, as it
    /// may have read the database before the change committed.
    forgets: u64,
}

impl Directory {
    pub fn new(db: Db) -> Self {
        Directory {
            db,
            users: HashMap::new(),
            forgets: 0,
        }
    }

    fn sweep(&mut self) {
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
