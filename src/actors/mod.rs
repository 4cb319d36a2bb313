//! The supervised actors of the process. Each actor lives in its own module with its state, its
//! messages and its handlers; `app.rs` starts them.
//!
//! | actor | one per | owns |
//! |---|---|---|
//! | [`directory::Directory`] | process | who each user is, their security stamp and live sessions (cached for token checks) |
//! | [`ledger::Ledger`] | active user | the only writer of the user's data; balances, aggregates and rates in memory |
//! | [`hub::Hub`] | process | user → live WebSocket sessions; fans committed events out |
//! | [`scheduler::Scheduler`] | process | time: creates due recurring transactions, catching up after downtime; monthly summaries |
//! | [`ws_session::WsSession`] | connection | one client: snapshot, replay, live events, heartbeat |
//! | [`budget_watcher::BudgetWatcher`] | active user | raises budget thresholds exactly once, re-arms them |
//! | [`categorizer::Categorizer`] | pool (threads) | CPU-bound: rules → merchant memory → classifier; parses bank messages |
//! | [`notifier::Notifier`] | process | drains the outbox: email (lettre) and signed webhooks, retries with backoff, `dead` after N tries |
pub mod budget_watcher;
pub mod categorizer;
pub mod directory;
pub mod hub;
pub mod ledger;
pub mod notifier;
pub mod scheduler;
pub mod ws_session;
