//! People's accounts and sign-in: password hashing, tokens, rate limits, and the operations
//! behind `/auth` and `/me` (register, login, refresh with rotation, logout, password change,
//! sessions). The [`Directory`](crate::actors::directory::Directory) actor is told of every
//! change here that affects whether a token is still good.
mod limits;
mod model;
mod passwords;

mod tokens;

pub use limits::RateLimits;
pub use model::{Principal, SessionView, TokenPair, UserView};
pub use passwords::Hasher;
pub mod service;
pub use service::{Identity, Links, LoginRequest, NewAccount, ProfileUpdate};
pub use tokens::{AccessClaims, SigningKey, TokenError, Tokens};
