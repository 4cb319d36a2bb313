//! The supervised actors of the process. Each actor lives in its own module with its state, its
//! messages and its handlers; `app.rs` starts them.
//!
//! | actor | one per | owns |
//! |---|---|---|
//! | [`directory::Directory`] | process | who each user is, their security stamp and live sessions (cached for token checks) |
//! | [`ledger::Ledger`] | active user | the only writer of the user's data; balances, aggregates and rates in memory |
pub mod directory;
pub mod ledger;
