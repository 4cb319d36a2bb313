//! Queries on `users`.
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{user_keys, users};
use super::{DbConn, StoreError};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub base_currency: String,
    pub timezone: String,
    pub locale: String,
    pub password_hash: String,
    pub security_stamp: String,
    pub disabled: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub last_seen_at: Option<NaiveDateTime>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub id: &'a str,
    pub email: &'a str,
    pub name: &'a str,
    pub role: &'a str,
    pub base_currency: &'a str,
    pub timezone: &'a str,
    pub locale: &'a str,
    pub password_hash: &'a str,
    pub security_stamp: &'a str,
    pub disabled: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Profile fields a user may change; `None` leaves a column as it is.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = users)]
pub struct ProfileChanges {
    pub email: Option<String>,
    pub name: Option<String>,
    pub base_currency: Option<String>,
    pub timezone: Option<String>,
    pub locale: Option<String>,
    pub updated_at: Option<NaiveDateTime>,
}

/// Insert a user and their key in `user_keys` (call it inside a transaction); an email already
/// taken is [`StoreError::UniqueViolation`].
pub fn insert(conn: &mut DbConn, user: &NewUser<'_>) -> Result<(), StoreError> {
    diesel::insert_into(users::table)
        .values(user)
        .execute(conn)?;
    diesel::insert_into(user_keys::table)
        .values(user_keys::user_id.eq(user.id))
        .execute(conn)?;
    Ok(())
}

pub fn find_by_email(conn: &mut DbConn, email: &str) -> Result<Option<UserRow>, StoreError> {
    Ok(users::table
        .filter(users::email.eq(email))
        .select(UserRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_by_id(conn: &mut DbConn, id: &str) -> Result<Option<UserRow>, StoreError> {
    Ok(users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn update_profile(
    conn: &mut DbConn,
    id: &str,
    changes: &ProfileChanges,
) -> Result<bool, StoreError> {
    let n = diesel::update(users::table.find(id))
        .set(changes)
        .execute(conn)?;
    Ok(n == 1)
}

/// Replace the password hash and rotate the security stamp in one statement.
pub fn set_password(
    conn: &mut DbConn,
    id: &str,
    password_hash: &str,
    stamp: &str,
    now: NaiveDateTime,
) -> Result<bool, StoreError> {
    let n = diesel::update(users::table.find(id))
        .set((
            users::password_hash.eq(password_hash),
            users::security_stamp.eq(stamp),
            users::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// Rotate the security stamp: every access token issued before stops working at once.
pub fn set_stamp(
    conn: &mut DbConn,
    id: &str,
    stamp: &str,
    now: NaiveDateTime,
) -> Result<bool, StoreError> {
    let n = diesel::update(users::table.find(id))
        .set((users::security_stamp.eq(stamp), users::updated_at.eq(now)))
        .execute(conn)?;
    Ok(n == 1)
}

/// Enable or disable an account; disabling also rotates the stamp.
pub fn set_disabled(
    conn: &mut DbConn,
    id: &str,
    disabled: bool,
    stamp: &str,
    now: NaiveDateTime,
) -> Result<bool, StoreError> {
    let n = diesel::update(users::table.find(id))
        .set((
            users::disabled.eq(disabled),
            users::security_stamp.eq(stamp),
            users::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

pub fn set_role(
    conn: &mut DbConn,
    id: &str,
    role: &str,
    now: NaiveDateTime,
) -> Result<bool, StoreError> {
    let n = diesel::update(users::table.find(id))
        .set((users::role.eq(role), users::updated_at.eq(now)))
        .execute(conn)?;
    Ok(n == 1)
}

pub fn touch_last_seen(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> Result<(), StoreError> {
    diesel::update(users::table.find(id))
        .set(users::last_seen_at.eq(now))
        .execute(conn)?;
    Ok(())
}

/// Delete a user and (by cascade) everything that belongs to them.
pub fn delete(conn: &mut DbConn, id: &str) -> Result<bool, StoreError> {
    let n = diesel::delete(users::table.find(id)).execute(conn)?;
    Ok(n == 1)
}

/// A page of users, newest first.
pub fn list(conn: &mut DbConn, limit: i64, offset: i64) -> Result<Vec<UserRow>, StoreError> {
    Ok(users::table
        .order(users::created_at.desc())
        .limit(limit)
        .offset(offset)
        .select(UserRow::as_select())
        .load(conn)?)
}

pub fn count(conn: &mut DbConn) -> Result<i64, StoreError> {
    Ok(users::table.count().get_result(conn)?)
}
