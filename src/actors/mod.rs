//! The supervised actors of the process. Each actor lives in its own module with its state, its
//! messages and its handlers; `app.rs` starts them.
//!
//! | actor | one per | owns |
//! |---|---|---|
//! | [`directory::Directory`] | process | who each user is, their security stamp and live sessions (cached for token checks) |
pub mod directory;
