//! The outbox (notification rows waiting for the Notifier), webhooks, notification preferences
//! and password-reset tokens.
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::budgets::NotificationRow;
use super::schema::{
    notification_preferences, notifications, password_resets, transactions, users, webhooks,
};
use super::{DbConn, StoreError};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = webhooks)]
pub struct WebhookRow {
    pub id: String,
    pub user_id: String,
    pub url: String,
    pub secret: String,
    /// JSON array of event types (`*` = all).
    pub event_types: String,
    pub description: String,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

impl WebhookRow {
    pub fn types(&self) -> Vec<String> {
        serde_json::from_str(&self.event_types).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = notification_preferences)]
pub struct PreferencesRow {
    pub user_id: String,
    pub preferences: String,
    pub updated_at: NaiveDateTime,
}

/// An outbox row with what sending it needs: the recipient, and the webhook for webhook rows.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// With `attempts` already counting this try.
    pub row: NotificationRow,
    pub email: String,
    pub name: String,
    pub user_disabled: bool,
    /// For webhook rows whose webhook still exists: (url, secret, active).
    pub webhook: Option<(String, String, bool)>,
}

pub fn load_webhooks(conn: &mut DbConn, user_id: &str) -> Result<Vec<WebhookRow>, StoreError> {
    Ok(webhooks::table
        .filter(webhooks::user_id.eq(user_id))
        .order(webhooks::created_at.asc())
        .select(WebhookRow::as_select())
        .load(conn)?)
}

pub fn load_preferences(conn: &mut DbConn, user_id: &str) -> Result<Option<String>, StoreError> {
    Ok(notification_preferences::table
        .find(user_id)
        .select(notification_preferences::preferences)
        .first(conn)
        .optional()?)
}

/// An outbox row, its user (email, name, disabled) and its webhook (URL, secret, active).
type DueRow = (
    NotificationRow,
    (String, String, bool),
    Option<(String, String, bool)>,
);

/// Claim up to `limit` outbox rows that are due: each claimed row has its try counted and is
/// hidden until `lease_until` (so a process that dies while sending, or cannot record the
/// outcome, tries it again only after the lease, and the tries still run out). A row is claimed
/// by one conditional UPDATE each, so two drains — or two nodes — never take the same row.
pub fn claim_due(
    conn: &mut DbConn,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
) -> Result<Vec<Outgoing>, StoreError> {
    // Sent, dead and in-app rows have no next_attempt_at: the range alone finds the outbox.
    let candidates: Vec<String> = notifications::table
        .filter(notifications::next_attempt_at.le(now))
        .order(notifications::next_attempt_at.asc())
        .limit(limit)
        .select(notifications::id)
        .load(conn)?;
    let mut claimed = Vec::with_capacity(candidates.len());
    for id in candidates {
        // Still due: nobody claimed it in between.
        let n = diesel::update(
            notifications::table
                .find(&id)
                .filter(notifications::next_attempt_at.le(now)),
        )
        .set((
            notifications::attempts.eq(notifications::attempts + 1),
            notifications::next_attempt_at.eq(lease_until),
        ))
        .execute(conn)?;
        if n == 1 {
            claimed.push(id);
        }
    }
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<DueRow> = notifications::table
        .inner_join(users::table.on(users::id.eq(notifications::user_id)))
        .left_join(webhooks::table.on(webhooks::id.nullable().eq(notifications::webhook_id)))
        .filter(notifications::id.eq_any(&claimed))
        .order(notifications::created_at.asc())
        .select((
            NotificationRow::as_select(),
            (users::email, users::name, users::disabled),
            (webhooks::url, webhooks::secret, webhooks::active).nullable(),
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(row, (email, name, disabled), hook)| Outgoing {
            row,
            email,
            name,
            user_disabled: disabled,
            webhook: hook,
        })
        .collect())
}

/// Delivered. `payload` replaces the stored one when given (a reset mail forgets its code).
pub fn mark_sent(
    conn: &mut DbConn,
    id: &str,
    at: NaiveDateTime,
    response_status: Option<i32>,
    payload: Option<String>,
) -> Result<(), StoreError> {
    let target = notifications::table.find(id);
    let done = (
        notifications::status.eq("sent"),
        notifications::sent_at.eq(Some(at)),
        notifications::next_attempt_at.eq(None::<NaiveDateTime>),
        notifications::response_status.eq(response_status),
        notifications::last_error.eq(None::<String>),
    );
    match payload {
        Some(p) => diesel::update(target)
            .set((done, notifications::payload.eq(p)))
            .execute(conn)?,
        None => diesel::update(target).set(done).execute(conn)?,
    };
    Ok(())
}

/// A failed try: `failed` with the next try's time, or `dead` (no next try). `payload`
/// replaces the stored one when given.
pub fn mark_failed(
    conn: &mut DbConn,
    id: &str,
    next: Option<NaiveDateTime>,
    error: &str,
    response_status: Option<i32>,
    payload: Option<String>,
) -> Result<(), StoreError> {
    let target = notifications::table.find(id);
    let failed = (
        notifications::status.eq(if next.is_some() { "failed" } else { "dead" }),
        notifications::next_attempt_at.eq(next),
        notifications::last_error.eq(Some(error)),
        notifications::response_status.eq(response_status),
    );
    match payload {
        Some(p) => diesel::update(target)
            .set((failed, notifications::payload.eq(p)))
            .execute(conn)?,
        None => diesel::update(target).set(failed).execute(conn)?,
    };
    Ok(())
}

/// Deliveries of a paused webhook wait: back in the queue at `later`, the try not counted.
pub fn postpone(conn: &mut DbConn, id: &str, later: NaiveDateTime) -> Result<(), StoreError> {
    diesel::update(notifications::table.find(id))
        .set((
            notifications::attempts.eq(notifications::attempts - 1),
            notifications::next_attempt_at.eq(Some(later)),
        ))
        .execute(conn)?;
    Ok(())
}

/// A webhook's deliveries, newest first (`before`: keyset cursor on (created_at, id)).
pub fn list_deliveries(
    conn: &mut DbConn,
    user_id: &str,
    webhook_id: &str,
    before: Option<(NaiveDateTime, String)>,
    limit: i64,
) -> Result<Vec<NotificationRow>, StoreError> {
    let mut q = notifications::table
        .filter(notifications::user_id.eq(user_id))
        .filter(notifications::webhook_id.eq(webhook_id))
        .select(NotificationRow::as_select())
        .into_boxed();
    if let Some((at, id)) = before {
        q = q.filter(
            notifications::created_at
                .lt(at)
                .or(notifications::created_at
                    .eq(at)
                    .and(notifications::id.lt(id))),
        );
    }
    Ok(
        q.order((notifications::created_at.desc(), notifications::id.desc()))
            .limit(limit)
            .load(conn)?,
    )
}

/// The outbox row with this dedup key, if any.
pub fn find_by_dedup(
    conn: &mut DbConn,
    dedup_key: &str,
) -> Result<Option<NotificationRow>, StoreError> {
    Ok(notifications::table
        .filter(notifications::dedup_key.eq(dedup_key))
        .select(NotificationRow::as_select())
        .first(conn)
        .optional()?)
}

/// Forget email and webhook rows delivered before `before`, or created before it and given up
/// (the webhook delivery log and the sent mail). Rows still waiting for a try stay, so do rows
/// with a dedup key (they are what makes "once per month" once), and so do in-app notifications:
/// they are the user's inbox.
pub fn prune_deliveries(conn: &mut DbConn, before: NaiveDateTime) -> Result<usize, StoreError> {
    Ok(diesel::delete(
        notifications::table
            .filter(notifications::channel.ne("in_app"))
            .filter(notifications::dedup_key.is_null())
            .filter(
                notifications::status
                    .eq("sent")
                    .and(notifications::sent_at.lt(before))
                    .or(notifications::status
                        .eq("dead")
                        .and(notifications::created_at.lt(before))),
            ),
    )
    .execute(conn)?)
}

pub fn insert_notification(conn: &mut DbConn, row: &NotificationRow) -> Result<(), StoreError> {
    diesel::insert_into(notifications::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn insert_reset(
    conn: &mut DbConn,
    token_hash: &str,
    user_id: &str,
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> Result<(), StoreError> {
    // One live token per user: asking again replaces the previous one.
    diesel::delete(
        password_resets::table
            .filter(password_resets::user_id.eq(user_id))
            .filter(password_resets::used_at.is_null()),
    )
    .execute(conn)?;
    diesel::insert_into(password_resets::table)
        .values((
            password_resets::token_hash.eq(token_hash),
            password_resets::user_id.eq(user_id),
            password_resets::created_at.eq(now),
            password_resets::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// Use a reset token: the user it belongs to when it exists, is unused and unexpired; it is
/// marked used in the same statement, so it works once.
pub fn consume_reset(
    conn: &mut DbConn,
    token_hash: &str,
    now: NaiveDateTime,
) -> Result<Option<String>, StoreError> {
    let used = diesel::update(
        password_resets::table
            .find(token_hash)
            .filter(password_resets::used_at.is_null())
            .filter(password_resets::expires_at.gt(now)),
    )
    .set(password_resets::used_at.eq(Some(now)))
    .execute(conn)?;
    if used == 0 {
        return Ok(None);
    }
    Ok(password_resets::table
        .find(token_hash)
        .select(password_resets::user_id)
        .first(conn)
        .optional()?)
}

/// A user who may get a monthly summary.
#[derive(Debug, Clone, Queryable)]
pub struct SummaryCandidate {
    pub id: String,
    pub timezone: String,
    pub base_currency: String,
    /// Stored notification preferences (JSON), if any.
    pub preferences: Option<String>,
}

/// Users who may get a monthly summary (not disabled).
pub fn summary_candidates(conn: &mut DbConn) -> Result<Vec<SummaryCandidate>, StoreError> {
    Ok(users::table
        .left_join(
            notification_preferences::table.on(notification_preferences::user_id.eq(users::id)),
        )
        .filter(users::disabled.eq(false))
        .select((
            users::id,
            users::timezone,
            users::base_currency,
            notification_preferences::preferences.nullable(),
        ))
        .load(conn)?)
}

/// Whether the user booked anything but transfers between `from` and `to` (inclusive).
pub fn has_transactions(
    conn: &mut DbConn,
    user_id: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<bool, StoreError> {
    Ok(diesel::select(diesel::dsl::exists(
        transactions::table
            .filter(transactions::user_id.eq(user_id))
            .filter(transactions::date.between(from, to))
            .filter(transactions::transfer_id.is_null()),
    ))
    .get_result(conn)?)
}
