//! Messages the [`Directory`](super::Directory) answers.
use actix::Message;
use uuid::Uuid;

use crate::actors::ledger::Ledger;
use crate::identity::Principal;

/// Is this access token's subject still allowed in? Answered from the cache, loading the user
/// from the database on a miss.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Principal, Rejection>")]
pub struct Authenticate {
    pub user_id: Uuid,
    pub session_id: Uuid,
    /// The security stamp the token was issued with.
    pub stamp: String,
}

/// Why a token's subject was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the user does not exist")]
    UnknownUser,
    #[error("the account is disabled")]
    Disabled,
    #[error("the token was issued before a security change")]
    StaleStamp,
    #[error("the session has ended")]
    SessionEnded,
    #[error("the directory could not load the user")]
    Unavailable,
}

/// Something about this user changed in the database (stamp, sessions, profile, deletion):
/// drop what is cached so the next request sees the new state. Sent after the commit and
/// awaited before the change is acknowledged to the client.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Forget {
    pub user_id: Uuid,
}

/// How many users are cached (for the admin overview and tests).
#[derive(Debug, Message)]
#[rtype(result = "usize")]
pub struct CachedUsers;

/// The address of this user's `Ledger`, started (and its state loaded) on first use and
/// started again if it stopped (idle, failure, injected fault).
#[derive(Debug, Message)]
#[rtype(result = "actix::Addr<Ledger>")]
pub struct LedgerFor {
    pub user_id: Uuid,
    /// Where to start it if it must be started: the asking request's HTTP worker, so that this
    /// connection's requests reach it without a thread hop. `None`: the Ledger threads in turn.
    pub near: Option<actix::ArbiterHandle>,
}

/// The user was deleted: stop their Ledger and forget them.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Retire {
    pub user_id: Uuid,
}

/// How many Ledgers are running (for the admin overview and tests).
#[derive(Debug, Message)]
#[rtype(result = "usize")]
pub struct LiveLedgers;
