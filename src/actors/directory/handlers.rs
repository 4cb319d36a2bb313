//! How the [`Directory`](super::Directory) handles its messages.
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use actix::{fut, ActorFutureExt, Addr, Handler, MessageResult, ResponseActFuture, WrapFuture};
use uuid::Uuid;

use super::messages::{
    Authenticate, CachedUsers, Forget, LedgerFor, LiveLedgers, Rejection, Retire,
};
use super::{Directory, Entry};
use crate::actors::ledger::{Ledger, Shutdown};
use crate::identity::{Principal, UserView};
use crate::store::{self, sessions, users, Db};

/// Read a user and their live sessions from the database.
async fn load(db: Db, user_id: Uuid) -> Result<Option<Entry>, store::StoreError> {
    db.run(move |conn| {
        let id = user_id.to_string();
        let Some(row) = users::find_by_id(conn, &id)? else {
            return Ok(None);
        };
        let Some(view) = UserView::from_row(&row) else {
            return Ok(None);
        };
        let live = sessions::list_active(conn, &id, store::now())?;
        let sessions: HashMap<Uuid, _> = live
            .into_iter()
            .filter_map(|s| Some((s.id.parse().ok()?, s.expires_at)))
            .collect();
        Ok(Some(Entry {
            user: Arc::new(view),
            stamp: row.security_stamp,
            sessions,
            last_used: AtomicU64::new(super::unix_secs()),
        }))
    })
    .await
}

impl Handler<Authenticate> for Directory {
    type Result = ResponseActFuture<Self, Result<Principal, Rejection>>;

    fn handle(&mut self, msg: Authenticate, _ctx: &mut Self::Context) -> Self::Result {
        if let Some(verdict) = self.users.admit(&msg) {
            return Box::pin(fut::ready(verdict));
        }
        let forgets_at_start = self.forgets;
        Box::pin(load(self.db.clone(), msg.user_id).into_actor(self).map(
            move |loaded, act, _ctx| match loaded {
                Ok(Some(entry)) => {
                    let verdict = entry.admit(&msg, store::now());
                    if act.forgets == forgets_at_start {
                        act.users.0.write().insert(msg.user_id, Arc::new(entry));
                    }
                    verdict
                }
                Ok(None) => Err(Rejection::UnknownUser),
                Err(e) => {
                    tracing::error!(error = %e, "directory could not load a user");
                    Err(Rejection::Unavailable)
                }
            },
        ))
    }
}

impl Handler<Forget> for Directory {
    type Result = ();

    fn handle(&mut self, msg: Forget, _ctx: &mut Self::Context) {
        self.users.0.write().remove(&msg.user_id);
        self.forgets += 1;
    }
}

impl Handler<CachedUsers> for Directory {
    type Result = usize;

    fn handle(&mut self, _msg: CachedUsers, _ctx: &mut Self::Context) -> usize {
        self.users.0.read().len()
    }
}

impl Handler<LedgerFor> for Directory {
    type Result = MessageResult<LedgerFor>;

    fn handle(&mut self, msg: LedgerFor, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.ledger(msg.user_id, msg.near))
    }
}

impl Handler<Retire> for Directory {
    type Result = ();

    fn handle(&mut self, msg: Retire, _ctx: &mut Self::Context) {
        self.users.0.write().remove(&msg.user_id);
        self.forgets += 1;
        if let Some(addr) = self.drop_ledger(msg.user_id) {
            stop(&addr);
        }
    }
}

fn stop(addr: &Addr<Ledger>) {
    addr.do_send(Shutdown);
}

impl Handler<LiveLedgers> for Directory {
    type Result = usize;

    fn handle(&mut self, _msg: LiveLedgers, _ctx: &mut Self::Context) -> usize {
        self.ledgers
            .0
            .read()
            .values()
            .filter(|a| a.connected())
            .count()
    }
}
