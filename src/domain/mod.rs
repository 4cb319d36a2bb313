//! Pure domain types and rules: parsed once at the edge, trusted everywhere after. No I/O here.
pub mod bank_message;
pub mod budget;
pub mod categories;
pub mod classifier;
mod currency;
pub mod day;
pub mod events;
pub mod export;
pub mod import;
pub mod ledger;
pub mod merchant;
pub mod money;
pub mod notify;
pub mod recurring;
pub mod rules;
mod user;

pub use currency::Currency;
pub use money::{DecimalString, Money, MoneyError};
pub use user::{DisplayName, Email, Locale, Password, Role, TimeZone};
