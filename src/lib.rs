//! Ledgerline: a self-hosted personal-finance server.
//!
//! A request travels one way: [`http`] parses and validates it into [`domain`] types, hands it to
//! an actor or service in [`actors`] / [`identity`], which asks [`store`] to commit; events go out
//! after the commit. `domain` knows nothing of HTTP, actors or storage.
pub mod actors;
pub mod app;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod identity;
pub mod seed;
pub mod store;
pub mod telemetry;
