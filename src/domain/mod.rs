//! Pure domain types and rules: parsed once at the edge, trusted everywhere after. No I/O here.
mod currency;
mod user;

pub use currency::Currency;
pub use user::{DisplayName, Email, Locale, Password, Role, TimeZone};
