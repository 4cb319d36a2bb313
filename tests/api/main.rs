//! Integration tests: the real server on port 0 with a fresh database per test, driven over real
//! HTTP. Every storage test runs on SQLite, and on PostgreSQL when `LEDGERLINE_TEST_POSTGRES_URL`
//! is set (CI sets it; without it the PostgreSQL variants say so and pass, except under CI where
//! they fail).
mod helpers;

mod accounts;
mod budgets;
mod categorizer;
mod cli;
mod crash;
mod imports;
mod input;
mod ledger;
mod ledger_faults;
mod limits;
mod live;
mod mailbox;
mod migrations;
mod notify;
mod plans;
mod tokens;
