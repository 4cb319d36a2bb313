//! What the identity endpoints answer with.
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::domain::Role;
use crate::store::sessions::SessionRow;
use crate::store::users::UserRow;
use crate::store::utc;

/// A user as the API shows them (never the hash or the stamp).
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub base_currency: String,
    pub timezone: String,
    pub locale: String,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: Option<DateTime<Utc>>,
}

impl UserView {
    /// `None` for a row that does not hold a valid id or role (never written by this server).
    pub fn from_row(row: &UserRow) -> Option<UserView> {
        Some(UserView {
            id: row.id.parse().ok()?,
            email: row.email.clone(),
            name: row.name.clone(),
            role: Role::parse(&row.role).ok()?,
            base_currency: row.base_currency.clone(),
            timezone: row.timezone.clone(),
            locale: row.locale.clone(),
            disabled: row.disabled,
            created_at: utc(row.created_at),
            last_seen_at: row.last_seen_at.map(utc),
        })
    }
}

/// The authenticated caller of a request: who, in which session.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: Arc<UserView>,
    pub session_id: Uuid,
}

impl Principal {
    pub fn user_id(&self) -> Uuid {
        self.user.id
    }

    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }
}

/// Answer of register, login and refresh.
#[derive(Debug, Serialize)]
pub struct TokenPair {
    pub user: UserView,
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

/// One sign-in as listed by `GET /me/sessions`.
#[derive(Debug, Serialize)]
pub struct SessionView {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub user_agent: String,
    pub ip: String,
    /// Whether this is the session of the token making the request.
    pub current: bool,
}

impl SessionView {
    pub fn from_row(row: SessionRow, current: Uuid) -> SessionView {
        SessionView {
            current: row.id == current.to_string(),
            id: row.id,
            created_at: utc(row.created_at),
            last_used_at: utc(row.last_used_at),
            expires_at: utc(row.expires_at),
            user_agent: row.user_agent,
            ip: row.ip,
        }
    }
}
