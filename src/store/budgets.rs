//! Rows and queries of budgets, their alerts, and notifications.
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::schema::{budget_alerts, budgets, notifications};
use super::{DbConn, StoreError};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = budgets, treat_none_as_null = true)]
pub struct BudgetRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub limit_amount: i64,
    pub currency: String,
    pub period: String,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    pub category_ids: String,
    pub account_ids: String,
    pub thresholds: String,
    pub rollover: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = budget_alerts)]
pub struct AlertRow {
    pub budget_id: String,
    pub period_start: NaiveDate,
    pub threshold: i32,
    pub spent: i64,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
// `None` is NULL: one statement whatever is set (see `TransactionRow`).
#[diesel(table_name = notifications, treat_none_as_default_value = false)]
pub struct NotificationRow {
    pub id: String,
    pub user_id: String,
    pub kind: String,
    pub channel: String,
    pub payload: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<NaiveDateTime>,
    pub dedup_key: Option<String>,
    pub created_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
    pub read_at: Option<NaiveDateTime>,
    /// For `webhook` rows: the webhook it goes to.
    pub webhook_id: Option<String>,
    pub last_error: Option<String>,
    /// For `webhook` rows: the receiver's last HTTP status.
    pub response_status: Option<i32>,
}

impl NotificationRow {
    /// An in-app notification (delivered by being stored) or an outbox row waiting for the
    /// Notifier (`email`, `webhook`).
    pub fn new(
        user_id: &str,
        kind: &str,
        channel: &str,
        payload: String,
        at: NaiveDateTime,
    ) -> Self {
        let in_app = channel == "in_app";
        NotificationRow {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: user_id.to_string(),
            kind: kind.to_string(),
            channel: channel.to_string(),
            payload,
            status: if in_app { "sent" } else { "pending" }.into(),
            attempts: 0,
            next_attempt_at: (!in_app).then_some(at),
            dedup_key: None,
            created_at: at,
            sent_at: in_app.then_some(at),
            read_at: None,
            webhook_id: None,
            last_error: None,
            response_status: None,
        }
    }
}

pub fn load_budgets(conn: &mut DbConn, user_id: &str) -> Result<Vec<BudgetRow>, StoreError> {
    Ok(budgets::table
        .filter(budgets::user_id.eq(user_id))
        .order(budgets::created_at.asc())
        .select(BudgetRow::as_select())
        .load(conn)?)
}

/// Every alert already raised for the user's budgets.
pub fn load_alerts(conn: &mut DbConn, user_id: &str) -> Result<Vec<AlertRow>, StoreError> {
    Ok(budget_alerts::table
        .inner_join(budgets::table)
        .filter(budgets::user_id.eq(user_id))
        .select(AlertRow::as_select())
        .load(conn)?)
}

/// A page of the user's notifications, newest first (`before`: keyset cursor on (created_at, id)).
pub fn list_notifications(
    conn: &mut DbConn,
    user_id: &str,
    unread_only: bool,
    before: Option<(NaiveDateTime, String)>,
    limit: i64,
) -> Result<Vec<NotificationRow>, StoreError> {
    let mut q = notifications::table
        .filter(notifications::user_id.eq(user_id.to_string()))
        .filter(notifications::channel.eq("in_app"))
        .select(NotificationRow::as_select())
        .into_boxed();
    if unread_only {
        q = q.filter(notifications::read_at.is_null());
    }
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

pub fn find_notification(
    conn: &mut DbConn,
    user_id: &str,
    id: &str,
) -> Result<Option<NotificationRow>, StoreError> {
    Ok(notifications::table
        .find(id)
        .filter(notifications::user_id.eq(user_id))
        .select(NotificationRow::as_select())
        .first(conn)
        .optional()?)
}
