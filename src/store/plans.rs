//! Rows and queries of recurring transactions and goals.
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::schema::{goals, recurring, transactions};
use super::{DbConn, StoreError};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = recurring, treat_none_as_null = true)]
pub struct RecurringRow {
    pub id: String,
    pub user_id: String,
    pub account_id: String,
    pub amount: i64,
    pub description: String,
    pub merchant: String,
    pub category_id: Option<String>,
    pub tags: String,
    pub notes: String,
    pub frequency: String,
    pub every: i32,
    pub day_of_month: Option<i32>,
    pub next_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = goals, treat_none_as_null = true)]
pub struct GoalRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub target_amount: i64,
    pub currency: String,
    pub target_date: Option<NaiveDate>,
    pub account_id: Option<String>,
    pub contributed: i64,
    pub reached_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

pub fn load_recurring(conn: &mut DbConn, user_id: &str) -> Result<Vec<RecurringRow>, StoreError> {
    Ok(recurring::table
        .filter(recurring::user_id.eq(user_id))
        .order(recurring::created_at.asc())
        .select(RecurringRow::as_select())
        .load(conn)?)
}

pub fn load_goals(conn: &mut DbConn, user_id: &str) -> Result<Vec<GoalRow>, StoreError> {
    Ok(goals::table
        .filter(goals::user_id.eq(user_id))
        .order(goals::created_at.asc())
        .select(GoalRow::as_select())
        .load(conn)?)
}

/// Users with an active recurring transaction due on or before `until`.
pub fn users_with_due_recurring(
    conn: &mut DbConn,
    until: NaiveDate,
) -> Result<Vec<String>, StoreError> {
    Ok(recurring::table
        .filter(recurring::active.eq(true))
        .filter(recurring::next_date.le(until))
        .select(recurring::user_id)
        .distinct()
        .load(conn)?)
}

/// External ids already used by a recurring rule's occurrences (so a run never doubles one).
pub fn existing_occurrences(
    conn: &mut DbConn,
    account_id: &str,
    candidates: &[String],
) -> Result<Vec<String>, StoreError> {
    let found: Vec<Option<String>> = transactions::table
        .filter(transactions::account_id.eq(account_id))
        .filter(transactions::external_id.eq_any(candidates))
        .select(transactions::external_id)
        .load(conn)?;
    Ok(found.into_iter().flatten().collect())
}
