//! The `Hub`: one per process. It knows every live WebSocket session of every user and fans each
//! committed event out to that user's sessions only. It never waits on a session: delivery is a
//! `try_send` into the session's bounded mailbox, and a session whose mailbox is full (a client
//! that stopped reading) is marked overflowed and dropped from the fan-out; the session closes
//! itself with [`CLOSE_SLOW_CONSUMER`] as soon as it runs again, and the client resumes with `since`.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix::{Actor, Addr, Context, Handler, Message, MessageResult};
use uuid::Uuid;

use crate::actors::ws_session::{Deliver, Revoked, WsSession};

/// Close code for a client that did not read fast enough: resume with `?since=<last seq>`.
pub const CLOSE_SLOW_CONSUMER: u16 = 4008;
/// Close code for a session ended by logout, password change, account disable or deletion.
pub const CLOSE_SESSION_REVOKED: u16 = 4001;

/// A committed event, serialized once for every socket: its seq and its JSON envelope.
pub type Frame = (i64, Arc<str>);

struct Entry {
    id: u64,
    auth_session: Uuid,
    addr: Addr<WsSession>,
    overflowed: Arc<AtomicBool>,
}

#[derive(Default)]
pub struct Hub {
    users: HashMap<Uuid, Vec<Entry>>,
    delivered: u64,
}

impl Actor for Hub {
    type Context = Context<Self>;
}

/// A session starts listening. Answered once registered, so that every event published after
/// the answer reaches it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Join {
    pub user_id: Uuid,
    pub auth_session: Uuid,
    pub id: u64,
    pub addr: Addr<WsSession>,
    pub overflowed: Arc<AtomicBool>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave {
    pub user_id: Uuid,
    pub id: u64,
}

/// Committed events of one user, in seq order (sent by that user's Ledger after each commit).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Publish {
    pub user_id: Uuid,
    pub frames: Arc<[Frame]>,
}

/// Close the user's sockets: all of them, or those of one sign-in session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Revoke {
    pub user_id: Uuid,
    pub auth_session: Option<Uuid>,
    pub reason: &'static str,
}

/// Live sessions in the process (admin overview, tests, benchmarks).
#[derive(Message)]
#[rtype(result = "HubStats")]
pub struct Stats;

#[derive(Debug, Clone, Copy)]
pub struct HubStats {
    pub sessions: usize,
    pub users: usize,
    pub delivered: u64,
}

impl Handler<Join> for Hub {
    type Result = ();
    fn handle(&mut self, msg: Join, _ctx: &mut Self::Context) {
        self.users.entry(msg.user_id).or_default().push(Entry {
            id: msg.id,
            auth_session: msg.auth_session,
            addr: msg.addr,
            overflowed: msg.overflowed,
        });
    }
}

impl Handler<Leave> for Hub {
    type Result = ();
    fn handle(&mut self, msg: Leave, _ctx: &mut Self::Context) {
        if let Some(entries) = self.users.get_mut(&msg.user_id) {
            entries.retain(|e| e.id != msg.id);
            if entries.is_empty() {
                self.users.remove(&msg.user_id);
            }
        }
    }
}

impl Handler<Publish> for Hub {
    type Result = ();
    fn handle(&mut self, msg: Publish, _ctx: &mut Self::Context) {
        let Some(entries) = self.users.get_mut(&msg.user_id) else {
            return;
        };
        entries.retain(|e| {
            match e.addr.try_send(Deliver(msg.frames.clone())) {
                Ok(()) => true,
                Err(actix::dev::SendError::Full(_)) => {
                    // The client stopped reading: it will be closed and resume with `since`.
                    e.overflowed.store(true, Ordering::Release);
                    tracing::info!(user_id = %msg.user_id, session = e.id, "websocket client too slow; closing it");
                    false
                }
                Err(actix::dev::SendError::Closed(_)) => false,
            }
        });
        self.delivered += entries.len() as u64;
        if entries.is_empty() {
            self.users.remove(&msg.user_id);
        }
    }
}

impl Handler<Revoke> for Hub {
    type Result = ();
    fn handle(&mut self, msg: Revoke, _ctx: &mut Self::Context) {
        let Some(entries) = self.users.get_mut(&msg.user_id) else {
            return;
        };
        entries.retain(|e| {
            let hit = msg.auth_session.is_none_or(|s| s == e.auth_session);
            if hit {
                // do_send: a revocation must get through even to a session with a full mailbox.
                e.addr.do_send(Revoked { reason: msg.reason });
            }
            !hit
        });
        if entries.is_empty() {
            self.users.remove(&msg.user_id);
        }
    }
}

impl Handler<Stats> for Hub {
    type Result = MessageResult<Stats>;
    fn handle(&mut self, _msg: Stats, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(HubStats {
            sessions: self.users.values().map(Vec::len).sum(),
            users: self.users.len(),
            delivered: self.delivered,
        })
    }
}
