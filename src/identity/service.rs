//! The identity operations. Each one validates nothing (the HTTP layer hands in domain types),
//! commits its change in one database transaction, tells the Directory, then answers.
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use chrono::NaiveDateTime;
use uuid::Uuid;

use super::limits::RateLimits;
use super::model::{Principal, SessionView, TokenPair, UserView};
use super::passwords::Hasher;
use super::tokens::{hash_refresh_token, new_refresh_token, Tokens};
use crate::actors::directory::{ask_ledger, Directory, Forget, LedgerIndex, Retire};
use crate::actors::hub::{Hub, Revoke};
use crate::actors::ledger::{AnnounceNotification, TimezoneChanged};
use crate::actors::notifier::{Notifier, Nudge};
use crate::domain::{Currency, DisplayName, Email, Locale, Password, Role, TimeZone};
use crate::error::ApiError;
use crate::store::budgets::NotificationRow;
use crate::store::sessions::{self, SessionRow};
use crate::store::users::{self, NewUser, ProfileChanges, UserRow};
use crate::store::{self, Db, DbConn, StoreError};
use diesel::Connection;

/// The one answer for every failed login, whatever the reason: the body must not tell an
/// unknown address from a wrong password.
const BAD_CREDENTIALS: &str = "The email or password is incorrect.";
const BAD_REFRESH: &str = "The refresh token is invalid, expired or revoked.";

/// A new account, already validated.
pub struct NewAccount {
    pub email: Email,
    pub password: Password,
    pub name: DisplayName,
    pub base_currency: Currency,
    pub timezone: TimeZone,
    pub locale: Locale,
    pub role: Role,
}

/// A login attempt. The email is taken as typed: it is only ever looked up, never stored.
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// Where a request comes from, recorded on the session it opens.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub ip: IpAddr,
    pub user_agent: String,
}

/// Profile changes, already validated. Changing the email needs the current password.
#[derive(Default)]
pub struct ProfileUpdate {
    pub email: Option<Email>,
    pub current_password: Option<String>,
    pub name: Option<DisplayName>,
    pub base_currency: Option<Currency>,
    pub timezone: Option<TimeZone>,
    pub locale: Option<Locale>,
}

/// A fresh access token for the caller's own session (after a password change).
#[derive(Debug, serde::Serialize)]
pub struct AccessToken {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
}

enum RefreshOutcome {
    Unknown,
    Ended,
    Reused {
        user_id: String,
        session_id: String,
    },
    Rotated {
        user: Box<UserRow>,
        session_id: String,
    },
}

fn new_stamp() -> String {
    Uuid::new_v4().simple().to_string()
}

fn view(row: &UserRow) -> Result<UserView, ApiError> {
    UserView::from_row(row)
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("user row {} is corrupt", row.id)))
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// The actors the identity service tells about changes.
pub struct Links {
    pub directory: Addr<Directory>,
    /// Running Ledgers (told about a new time zone).
    pub ledgers: LedgerIndex,
    pub hub: Addr<Hub>,
    pub notifier: Addr<Notifier>,
}

/// Everything the identity endpoints need.
#[derive(Clone)]
pub struct Identity {
    db: Db,
    hasher: Hasher,
    tokens: Arc<Tokens>,
    directory: Addr<Directory>,
    ledgers: LedgerIndex,
    hub: Addr<Hub>,
    limits: RateLimits,
    refresh_ttl: Duration,
    notifier: Addr<Notifier>,
    reset_ttl: Duration,
}

impl Identity {
    pub fn new(
        db: Db,
        hasher: Hasher,
        tokens: Arc<Tokens>,
        links: Links,
        limits: RateLimits,
        refresh_ttl: Duration,
        reset_ttl: Duration,
    ) -> Self {
        Identity {
            db,
            hasher,
            tokens,
            directory: links.directory,
            ledgers: links.ledgers,
            hub: links.hub,
            notifier: links.notifier,
            limits,
            refresh_ttl,
            reset_ttl,
        }
    }

    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    pub fn directory(&self) -> &Addr<Directory> {
        &self.directory
    }

    pub fn limits(&self) -> &RateLimits {
        &self.limits
    }

    /// Drop the Directory's cached state for a user; awaited so that once a change is
    /// acknowledged, no request sees the old state.
    async fn forget(&self, user_id: &str) {
        if let Ok(id) = user_id.parse() {
            if let Err(e) = self.directory.send(Forget { user_id: id }).await {
                tracing::error!(error = %e, "directory unreachable while forgetting a user");
            }
        }
    }

    /// Announce an in-app notification stored here on the user's live event stream, through
    /// their Ledger (which owns the event sequence). In the background: the notification is
    /// already stored, and `GET /notifications` lists it whatever happens to the announcement.
    fn announce(&self, user_id: &str, announcement: serde_json::Value) {
        let Ok(id) = user_id.parse() else {
            return;
        };
        let directory = self.directory.clone();
        actix_web::rt::spawn(async move {
            let message = AnnounceNotification { announcement };
            match ask_ledger(&directory, id, message).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "could not announce a notification"),
                Err(e) => tracing::warn!(error = %e, "could not announce a notification"),
            }
        });
    }

    /// Close the user's WebSockets (all, or one sign-in session's) with the revoked code.
    fn close_sockets(&self, user_id: &str, session: Option<Uuid>, reason: &'static str) {
        if let Ok(id) = user_id.parse() {
            self.hub.do_send(Revoke {
                user_id: id,
                auth_session: session,
                reason,
            });
        }
    }

    fn new_session(&self, user_id: &str, client: &ClientInfo, now: NaiveDateTime) -> SessionRow {
        let ttl =
            chrono::Duration::from_std(self.refresh_ttl).unwrap_or(chrono::Duration::days(30));
        SessionRow {
            id: Uuid::now_v7().to_string(),
            user_id: user_id.to_string(),
            created_at: now,
            last_used_at: now,
            expires_at: now + ttl,
            revoked_at: None,
            revoked_reason: None,
            user_agent: truncate(&client.user_agent, 256),
            ip: client.ip.to_string(),
        }
    }

    fn pair(
        &self,
        user: UserView,
        session_id: &str,
        stamp: &str,
        refresh_token: String,
    ) -> Result<TokenPair, ApiError> {
        let access_token = self
            .tokens
            .issue_access(&user.id.to_string(), session_id, stamp)?;
        Ok(TokenPair {
            user,
            access_token,
            refresh_token,
            token_type: "Bearer",
            expires_in: self.tokens.access_ttl().as_secs(),
        })
    }

    /// Insert a user (no session). For the CLI and the admin bootstrap.
    pub async fn create_user(&self, account: NewAccount) -> Result<UserView, ApiError> {
        let hash = self.hasher.hash(account.password.expose()).await?;
        let row = self
            .db
            .run(move |conn| insert_user(conn, &account, &hash, store::now()))
            .await
            .map_err(email_taken)?;
        view(&row)
    }

    /// `POST /auth/register`: create the account and sign it in.
    pub async fn register(
        &self,
        account: NewAccount,
        client: &ClientInfo,
    ) -> Result<TokenPair, ApiError> {
        self.limits.register(client.ip)?;
        let hash = self.hasher.hash(account.password.expose()).await?;
        let now = store::now();
        let placeholder_session = self.new_session("", client, now);
        let (refresh_token, refresh_hash) = new_refresh_token();
        let (row, session) = self
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let row = insert_user(conn, &account, &hash, now)?;
                    let session = SessionRow {
                        user_id: row.id.clone(),
                        ..placeholder_session
                    };
                    sessions::insert(conn, &session)?;
                    sessions::insert_refresh_token(conn, &refresh_hash, &session.id, now)?;
                    users::touch_last_seen(conn, &row.id, now)?;
                    Ok::<_, StoreError>((row, session))
                })
            })
            .await
            .map_err(email_taken)?;
        tracing::info!(user_id = %row.id, "account registered");
        let mut user = view(&row)?;
        user.last_seen_at = Some(store::utc(now));
        self.pair(user, &session.id, &row.security_stamp, refresh_token)
    }

    /// `POST /auth/login`.
    pub async fn login(
        &self,
        req: LoginRequest,
        client: &ClientInfo,
    ) -> Result<TokenPair, ApiError> {
        let key = Email::normalize(&req.email);
        self.limits.login(client.ip, &key)?;
        let lookup = key.clone();
        let row = self
            .db
            .run(move |conn| users::find_by_email(conn, &lookup))
            .await?;
        let Some(row) = row else {
            self.hasher.dummy_verify(&req.password).await?;
            return Err(ApiError::Unauthorized(BAD_CREDENTIALS));
        };
        if !self
            .hasher
            .verify(&req.password, &row.password_hash)
            .await?
        {
            tracing::info!(user_id = %row.id, "login with a wrong password");
            return Err(ApiError::Unauthorized(BAD_CREDENTIALS));
        }
        if row.disabled {
            return Err(ApiError::Forbidden("This account is disabled."));
        }
        let now = store::now();
        let session = self.new_session(&row.id, client, now);
        let (refresh_token, refresh_hash) = new_refresh_token();
        let session_id = session.id.clone();
        let user_id = row.id.clone();
        let notice = SecurityNotice {
            always_email: false,
            headline: "New sign-in to your account".into(),
            detail: format!(
                "A new device signed in: {} from {}.",
                if client.user_agent.is_empty() {
                    "an unknown client"
                } else {
                    client.user_agent.as_str()
                },
                client.ip
            ),
        };
        let queued = self
            .db
            .run(move |conn| {
                // Writes first: on SQLite a transaction that reads before its first write
                // cannot wait for the write lock (its snapshot may be stale) and fails at once.
                conn.transaction(|conn| {
                    sessions::insert(conn, &session)?;
                    sessions::insert_refresh_token(conn, &refresh_hash, &session.id, now)?;
                    users::touch_last_seen(conn, &user_id, now)?;
                    let known = sessions::seen_device(
                        conn,
                        &user_id,
                        &session.id,
                        &session.user_agent,
                        &session.ip,
                    )?;
                    if known {
                        Ok(Queued::default())
                    } else {
                        queue_security_notice(conn, &user_id, &notice, now)
                    }
                })
            })
            .await?;
        if queued.emailed {
            self.notifier.do_send(Nudge);
        }
        if let Some(announcement) = queued.in_app {
            self.announce(&row.id, announcement);
        }
        self.forget(&row.id).await;
        tracing::info!(user_id = %row.id, session_id = %session_id, "signed in");
        let mut user = view(&row)?;
        user.last_seen_at = Some(store::utc(now));
        self.pair(user, &session_id, &row.security_stamp, refresh_token)
    }

    /// `POST /auth/refresh`: rotate the refresh token. A token presented a second time means it
    /// leaked: the whole session (every token descended from the same login) is revoked.
    pub async fn refresh(&self, token: &str, client: &ClientInfo) -> Result<TokenPair, ApiError> {
        self.limits.refresh(client.ip)?;
        let presented = hash_refresh_token(token);
        let (fresh, fresh_hash) = new_refresh_token();
        let now = store::now();
        let outcome = self
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    store::lock_for_write(conn)?;
                    let Some(rt) = sessions::find_refresh_token(conn, &presented)? else {
                        return Ok(RefreshOutcome::Unknown);
                    };
                    let Some(session) = sessions::find(conn, &rt.session_id)? else {
                        return Ok(RefreshOutcome::Unknown);
                    };
                    if !sessions::consume_refresh_token(conn, &presented, now)? {
                        sessions::revoke(
                            conn,
                            &session.user_id,
                            &session.id,
                            "refresh_token_reuse",
                            now,
                        )?;
                        return Ok(RefreshOutcome::Reused {
                            user_id: session.user_id,
                            session_id: session.id,
                        });
                    }
                    if !session.is_active(now) {
                        return Ok(RefreshOutcome::Ended);
                    }
                    let Some(user) = users::find_by_id(conn, &session.user_id)? else {
                        return Ok(RefreshOutcome::Ended);
                    };
                    if user.disabled {
                        return Ok(RefreshOutcome::Ended);
                    }
                    sessions::insert_refresh_token(conn, &fresh_hash, &session.id, now)?;
                    sessions::touch(conn, &session.id, now)?;
                    users::touch_last_seen(conn, &user.id, now)?;
                    Ok::<_, StoreError>(RefreshOutcome::Rotated {
                        user: Box::new(user),
                        session_id: session.id,
                    })
                })
            })
            .await?;
        match outcome {
            RefreshOutcome::Unknown | RefreshOutcome::Ended => {
                Err(ApiError::Unauthorized(BAD_REFRESH))
            }
            RefreshOutcome::Reused {
                user_id,
                session_id,
            } => {
                self.forget(&user_id).await;
                self.close_sockets(&user_id, session_id.parse().ok(), "refresh token reuse");
                tracing::warn!(user_id = %user_id, "refresh token reused; session revoked");
                Err(ApiError::Unauthorized(
                    "This refresh token was already used; the session has been revoked. Sign in again.",
                ))
            }
            RefreshOutcome::Rotated { user, session_id } => {
                let mut view = view(&user)?;
                view.last_seen_at = Some(store::utc(now));
                self.pair(view, &session_id, &user.security_stamp, fresh)
            }
        }
    }

    /// `POST /auth/logout`: end this session, or with `everywhere` every session and every
    /// access token of the user.
    pub async fn logout(&self, who: &Principal, everywhere: bool) -> Result<(), ApiError> {
        let user_id = who.user_id().to_string();
        let session_id = who.session_id.to_string();
        let now = store::now();
        let uid = user_id.clone();
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    if everywhere {
                        users::set_stamp(conn, &uid, &new_stamp(), now)?;
                        sessions::revoke_all_except(conn, &uid, None, "logout_everywhere", now)?;
                    } else {
                        sessions::revoke(conn, &uid, &session_id, "logout", now)?;
                    }
                    Ok::<_, StoreError>(())
                })
            })
            .await?;
        self.forget(&user_id).await;
        if everywhere {
            self.close_sockets(&user_id, None, "logged out everywhere");
        } else {
            self.close_sockets(&user_id, Some(who.session_id), "logged out");
        }
        Ok(())
    }

    /// `POST /me/password`: needs the current password; ends every other session and every
    /// access token at once (new stamp), and gives this session a new access token.
    pub async fn change_password(
        &self,
        who: &Principal,
        current: &str,
        new: Password,
    ) -> Result<AccessToken, ApiError> {
        let user_id = who.user_id().to_string();
        let row = self.load_row(&user_id).await?;
        self.limits.reauthenticate(&row.email)?;
        if !self.hasher.verify(current, &row.password_hash).await? {
            return Err(ApiError::validation("current_password", "is incorrect"));
        }
        let hash = self.hasher.hash(new.expose()).await?;
        let stamp = new_stamp();
        let now = store::now();
        let (uid, sid, st) = (user_id.clone(), who.session_id.to_string(), stamp.clone());
        let notice = SecurityNotice {
            always_email: true,
            headline: "Your password was changed".into(),
            detail: "The password of your Ledgerline account was changed, and every other session was signed out.".into(),
        };
        let (ended, queued) = self
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    users::set_password(conn, &uid, &hash, &st, now)?;
                    let ended = sessions::revoke_all_except(
                        conn,
                        &uid,
                        Some(&sid),
                        "password_changed",
                        now,
                    )?;
                    Ok::<_, StoreError>((ended, queue_security_notice(conn, &uid, &notice, now)?))
                })
            })
            .await?;
        // (Not announced live: every other socket of the user is closed just below.)
        if queued.emailed {
            self.notifier.do_send(Nudge);
        }
        self.forget(&user_id).await;
        self.close_sockets(&user_id, None, "password changed");
        tracing::info!(user_id = %user_id, other_sessions_ended = ended, "password changed");
        Ok(AccessToken {
            access_token: self.tokens.issue_access(
                &user_id,
                &who.session_id.to_string(),
                &stamp,
            )?,
            token_type: "Bearer",
            expires_in: self.tokens.access_ttl().as_secs(),
        })
    }

    /// `PATCH /me`.
    pub async fn update_profile(
        &self,
        who: &Principal,
        update: ProfileUpdate,
    ) -> Result<UserView, ApiError> {
        let user_id = who.user_id().to_string();
        if update.email.is_some() {
            let row = self.load_row(&user_id).await?;
            let Some(current) = update.current_password.as_deref() else {
                return Err(ApiError::validation(
                    "current_password",
                    "is required to change the email",
                ));
            };
            self.limits.reauthenticate(&row.email)?;
            if !self.hasher.verify(current, &row.password_hash).await? {
                return Err(ApiError::validation("current_password", "is incorrect"));
            }
        }
        let timezone_changed = update.timezone.is_some();
        let changes = ProfileChanges {
            email: update.email.map(|e| e.as_str().to_string()),
            name: update.name.map(DisplayName::into_inner),
            base_currency: update.base_currency.map(|c| c.code().to_string()),
            timezone: update.timezone.map(|t| t.name().to_string()),
            locale: update.locale.map(Locale::into_inner),
            updated_at: Some(store::now()),
        };
        let uid = user_id.clone();
        let row = self
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    users::update_profile(conn, &uid, &changes)?;
                    users::find_by_id(conn, &uid)
                })
            })
            .await
            .map_err(email_taken)?
            .ok_or(ApiError::NotFound)?;
        self.forget(&user_id).await;
        if timezone_changed {
            // A running Ledger read the zone when it started: have it read the new one before
            // answering. (One that is not running reads it when it starts.)
            if let Some(ledger) = self.ledgers.get(who.user_id()) {
                if let Err(e) = ledger.send(TimezoneChanged).await {
                    tracing::warn!(error = %e, "could not give the ledger the new time zone");
                }
            }
        }
        view(&row)
    }

    /// `DELETE /me`: erase the account and everything in it, after re-entering the password.
    pub async fn delete_account(&self, who: &Principal, password: &str) -> Result<(), ApiError> {
        let user_id = who.user_id().to_string();
        let row = self.load_row(&user_id).await?;
        self.limits.reauthenticate(&row.email)?;
        if !self.hasher.verify(password, &row.password_hash).await? {
            return Err(ApiError::validation("password", "is incorrect"));
        }
        let uid = user_id.clone();
        self.db.run(move |conn| users::delete(conn, &uid)).await?;
        self.forget(&user_id).await;
        self.close_sockets(&user_id, None, "account deleted");
        if let Err(e) = self
            .directory
            .send(Retire {
                user_id: who.user_id(),
            })
            .await
        {
            tracing::error!(error = %e, "directory unreachable while retiring a user");
        }
        tracing::info!(user_id = %user_id, "account deleted");
        Ok(())
    }

    /// `GET /me/sessions`.
    pub async fn list_sessions(&self, who: &Principal) -> Result<Vec<SessionView>, ApiError> {
        let uid = who.user_id().to_string();
        let rows = self
            .db
            .run(move |conn| sessions::list_active(conn, &uid, store::now()))
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| SessionView::from_row(row, who.session_id))
            .collect())
    }

    /// `DELETE /me/sessions/{id}`: its refresh token and access tokens stop working at once.
    pub async fn revoke_session(&self, who: &Principal, session_id: Uuid) -> Result<(), ApiError> {
        let uid = who.user_id().to_string();
        let sid = session_id.to_string();
        let revoked = self
            .db
            .run(move |conn| sessions::revoke(conn, &uid, &sid, "revoked_by_user", store::now()))
            .await?;
        if !revoked {
            return Err(ApiError::NotFound);
        }
        self.forget(&who.user_id().to_string()).await;
        self.close_sockets(
            &who.user_id().to_string(),
            Some(session_id),
            "session revoked",
        );
        Ok(())
    }

    /// Admin: list users, newest first.
    pub async fn list_users(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<UserView>, i64), ApiError> {
        let (rows, total) = self
            .db
            .run(move |conn| Ok((users::list(conn, limit, offset)?, users::count(conn)?)))
            .await?;
        let views = rows.iter().filter_map(UserView::from_row).collect();
        Ok((views, total))
    }

    /// Admin: disable/enable (disabling ends every session at once) and change the role.
    pub async fn admin_update_user(
        &self,
        user_id: Uuid,
        disabled: Option<bool>,
        role: Option<Role>,
    ) -> Result<UserView, ApiError> {
        let uid = user_id.to_string();
        let now = store::now();
        let row = self
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    store::lock_for_write(conn)?;
                    let Some(row) = users::find_by_id(conn, &uid)? else {
                        return Ok(None);
                    };
                    if let Some(disabled) = disabled {
                        if disabled != row.disabled {
                            users::set_disabled(conn, &uid, disabled, &new_stamp(), now)?;
                            if disabled {
                                sessions::revoke_all_except(
                                    conn,
                                    &uid,
                                    None,
                                    "account_disabled",
                                    now,
                                )?;
                            }
                        }
                    }
                    if let Some(role) = role {
                        users::set_role(conn, &uid, role.as_str(), now)?;
                    }
                    users::find_by_id(conn, &uid)
                })
            })
            .await?
            .ok_or(ApiError::NotFound)?;
        self.forget(&user_id.to_string()).await;
        if disabled == Some(true) {
            self.close_sockets(&user_id.to_string(), None, "account disabled");
        }
        view(&row)
    }

    /// Create the configured bootstrap admin if no user has that email yet.
    pub async fn ensure_admin(&self, email: Email, password: Password) -> Result<(), ApiError> {
        let lookup = email.as_str().to_string();
        let existing = self
            .db
            .run(move |conn| users::find_by_email(conn, &lookup))
            .await?;
        if existing.is_some() {
            tracing::info!(email = %email, "bootstrap admin already exists");
            return Ok(());
        }
        let account = NewAccount {
            email,
            password,
            name: DisplayName::parse("Administrator")
                .map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?,
            base_currency: Currency::parse("USD")
                .map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?,
            timezone: TimeZone::parse("UTC").map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?,
            locale: Locale::parse("en").map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?,
            role: Role::Admin,
        };
        let user = self.create_user(account).await?;
        tracing::info!(user_id = %user.id, email = %user.email, "bootstrap admin created");
        Ok(())
    }

    /// `POST /auth/password-reset`: email a one-time code to the address when an active account
    /// has it. The answer is the same, and as fast, either way: the work happens after it.
    pub async fn request_password_reset(
        &self,
        email: &str,
        client: &ClientInfo,
    ) -> Result<(), ApiError> {
        let key = Email::normalize(email);
        self.limits.reset(client.ip, Some(&key))?;
        let (db, notifier) = (self.db.clone(), self.notifier.clone());
        let ttl =
            chrono::Duration::from_std(self.reset_ttl).unwrap_or(chrono::Duration::minutes(30));
        actix_web::rt::spawn(async move {
            let (token, token_hash) = new_refresh_token();
            let now = store::now();
            let result = db
                .run(move |conn| {
                    let Some(user) = users::find_by_email(conn, &key)? else {
                        return Ok(false);
                    };
                    if user.disabled {
                        return Ok(false);
                    }
                    conn.transaction(|conn| {
                        crate::store::notify::insert_reset(
                            conn,
                            &token_hash,
                            &user.id,
                            now,
                            now + ttl,
                        )?;
                        let payload = serde_json::json!({
                            "token": token,
                            "minutes": ttl.num_minutes(),
                        });
                        let row = NotificationRow::new(
                            &user.id,
                            "password_reset",
                            "email",
                            payload.to_string(),
                            now,
                        );
                        crate::store::notify::insert_notification(conn, &row)?;
                        Ok::<_, StoreError>(true)
                    })
                })
                .await;
            match result {
                Ok(true) => notifier.do_send(Nudge),
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "could not queue a password reset"),
            }
        });
        Ok(())
    }

    /// `POST /auth/password-reset/confirm`: a valid, unused, unexpired code sets the new
    /// password; every session and token of the account ends.
    pub async fn confirm_password_reset(
        &self,
        token: &str,
        new: Password,
        client: &ClientInfo,
    ) -> Result<(), ApiError> {
        self.limits.reset(client.ip, None)?;
        let presented = hash_refresh_token(token.trim());
        let hash = self.hasher.hash(new.expose()).await?;
        let stamp = new_stamp();
        let now = store::now();
        let notice = SecurityNotice {
            always_email: true,
            headline: "Your password was reset".into(),
            detail: format!("The password was reset with an emailed code, from {}. Every session was signed out.", client.ip),
        };
        let user_id = self
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let Some(uid) = crate::store::notify::consume_reset(conn, &presented, now)?
                    else {
                        return Ok(None);
                    };
                    // A code asked for before the account was disabled does not open it.
                    if users::find_by_id(conn, &uid)?.is_none_or(|u| u.disabled) {
                        return Ok(None);
                    }
                    users::set_password(conn, &uid, &hash, &stamp, now)?;
                    sessions::revoke_all_except(conn, &uid, None, "password_reset", now)?;
                    queue_security_notice(conn, &uid, &notice, now)?;
                    Ok::<_, StoreError>(Some(uid))
                })
            })
            .await?
            .ok_or_else(|| ApiError::validation("token", "is invalid, already used or expired"))?;
        self.notifier.do_send(Nudge);
        self.forget(&user_id).await;
        self.close_sockets(&user_id, None, "password reset");
        tracing::info!(user_id = %user_id, "password reset with an emailed code");
        Ok(())
    }

    async fn load_row(&self, user_id: &str) -> Result<UserRow, ApiError> {
        let uid = user_id.to_string();
        self.db
            .run(move |conn| users::find_by_id(conn, &uid))
            .await?
            .ok_or(ApiError::Unauthorized("The user no longer exists."))
    }
}

/// A security event told to the user (per their preferences for `security`).
struct SecurityNotice {
    headline: String,
    detail: String,
    /// Emailed whatever the preferences say (password changes: someone holding a stolen
    /// session must not be able to silence them).
    always_email: bool,
}

/// What [`queue_security_notice`] wrote.
#[derive(Debug, Default)]
struct Queued {
    /// An email waits in the outbox.
    emailed: bool,
    /// The in-app notification, as `notification.created` announces it.
    in_app: Option<serde_json::Value>,
}

/// In-app notification and/or email for a security event, in the caller's transaction.
fn queue_security_notice(
    conn: &mut DbConn,
    user_id: &str,
    notice: &SecurityNotice,
    now: NaiveDateTime,
) -> Result<Queued, StoreError> {
    let prefs = crate::domain::notify::Preferences::from_json(
        crate::store::notify::load_preferences(conn, user_id)?.as_deref(),
    );
    let payload = serde_json::json!({
        "headline": notice.headline,
        "detail": notice.detail,
        "at": store::utc(now).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    let mut queued = Queued::default();
    for channel in ["in_app", "email"] {
        if prefs.wants("security", channel) || (notice.always_email && channel == "email") {
            let row = NotificationRow::new(user_id, "security", channel, payload.to_string(), now);
            crate::store::notify::insert_notification(conn, &row)?;
            if channel == "email" {
                queued.emailed = true;
            } else {
                queued.in_app = Some(
                    serde_json::json!({ "id": row.id, "kind": "security", "payload": payload }),
                );
            }
        }
    }
    Ok(queued)
}

/// Insert a user with the default category set, atomically.
pub fn insert_user(
    conn: &mut DbConn,
    account: &NewAccount,
    password_hash: &str,
    now: NaiveDateTime,
) -> Result<UserRow, StoreError> {
    conn.transaction(|conn| {
        let id = Uuid::now_v7().to_string();
        let stamp = new_stamp();
        users::insert(
            conn,
            &NewUser {
                id: &id,
                email: account.email.as_str(),
                name: &account.name.clone().into_inner(),
                role: account.role.as_str(),
                base_currency: account.base_currency.code(),
                timezone: account.timezone.name(),
                locale: &account.locale.clone().into_inner(),
                password_hash,
                security_stamp: &stamp,
                disabled: false,
                created_at: now,
                updated_at: now,
            },
        )?;
        crate::store::ledger::insert_default_categories(conn, &id, now)?;
        users::find_by_id(conn, &id)?.ok_or(StoreError::Task("inserted user vanished".into()))
    })
}

pub fn email_taken(e: StoreError) -> ApiError {
    match e {
        StoreError::UniqueViolation => {
            ApiError::Conflict("An account with this email already exists.".into())
        }
        other => other.into(),
    }
}
