//! Rows and queries of the categorizer's data: rules, merchant memory and the user's own labels.
use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{merchant_memory, rules, transactions};
use super::{DbConn, StoreError};

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = rules, treat_none_as_null = true)]
pub struct RuleRow {
    pub id: String,
    pub user_id: String,
    pub position: i64,
    pub name: String,
    /// JSON array of `ConditionSpec`.
    pub conditions: String,
    pub match_mode: String,
    /// JSON array of `ActionSpec`.
    pub actions: String,
    pub stop_processing: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = merchant_memory)]
pub struct MemoryRow {
    pub user_id: String,
    pub merchant_key: String,
    pub category_id: String,
    pub updated_at: NaiveDateTime,
}

/// One of the user's own category choices, for the classifier.
#[derive(Debug, Clone, Queryable)]
pub struct LabelRow {
    pub account_id: String,
    pub amount: i64,
    pub currency: String,
    pub description: String,
    pub merchant: String,
    pub category_id: Option<String>,
}

/// How many of a user's most recent labels the classifier is rebuilt from.
pub const LABELS_LOADED: i64 = 5_000;

pub fn load_rules(conn: &mut DbConn, user_id: &str) -> Result<Vec<RuleRow>, StoreError> {
    Ok(rules::table
        .filter(rules::user_id.eq(user_id))
        .order((rules::position.asc(), rules::created_at.asc()))
        .select(RuleRow::as_select())
        .load(conn)?)
}

pub fn load_memory(conn: &mut DbConn, user_id: &str) -> Result<Vec<MemoryRow>, StoreError> {
    Ok(merchant_memory::table
        .filter(merchant_memory::user_id.eq(user_id))
        .select(MemoryRow::as_select())
        .load(conn)?)
}

pub fn load_labels(conn: &mut DbConn, user_id: &str) -> Result<Vec<LabelRow>, StoreError> {
    Ok(transactions::table
        .filter(transactions::user_id.eq(user_id))
        .filter(transactions::category_source.eq("user"))
        .filter(transactions::category_id.is_not_null())
        .filter(transactions::transfer_id.is_null())
        .order(transactions::updated_at.desc())
        .limit(LABELS_LOADED)
        .select((
            transactions::account_id,
            transactions::amount,
            transactions::currency,
            transactions::description,
            transactions::merchant,
            transactions::category_id,
        ))
        .load(conn)?)
}

/// The rows a rule could change, one page at a time (keyset on id), transfers excluded.
pub fn rule_candidates(
    conn: &mut DbConn,
    user_id: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<super::ledger::TransactionRow>, StoreError> {
    let mut query = transactions::table
        .filter(transactions::user_id.eq(user_id))
        .filter(transactions::transfer_id.is_null())
        .order(transactions::id.asc())
        .limit(limit)
        .select(super::ledger::TransactionRow::as_select())
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(transactions::id.gt(after.to_string()));
    }
    Ok(query.load(conn)?)
}

pub fn insert_rule(conn: &mut DbConn, row: &RuleRow) -> Result<(), StoreError> {
    diesel::insert_into(rules::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn update_rule(conn: &mut DbConn, row: &RuleRow) -> Result<(), StoreError> {
    diesel::update(rules::table.find(&row.id))
        .set(row)
        .execute(conn)?;
    Ok(())
}

pub fn delete_rule(conn: &mut DbConn, id: &str) -> Result<(), StoreError> {
    diesel::delete(rules::table.find(id)).execute(conn)?;
    Ok(())
}

/// Insert or replace merchant-memory entries (delete then insert works the same on both backends).
pub fn upsert_memory(conn: &mut DbConn, rows: &[MemoryRow]) -> Result<(), StoreError> {
    for row in rows {
        diesel::delete(merchant_memory::table.find((&row.user_id, &row.merchant_key)))
            .execute(conn)?;
        diesel::insert_into(merchant_memory::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}
