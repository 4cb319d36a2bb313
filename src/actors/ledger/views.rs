//! What the ledger answers with: accounts with live balances, categories, transactions. Amounts are
//! decimal strings with exactly the currency's decimals.
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::domain::money::format_minor;
use crate::domain::Currency;
use crate::store::ledger::{AccountRow, CategoryRow, TransactionRow};
use crate::store::utc;

/// The exponent of a stored currency code (2 if the code is unknown).
pub(crate) fn exponent(code: &str) -> u8 {
    Currency::parse(code).map(|c| c.exponent()).unwrap_or(2)
}

#[derive(Debug, Clone, Serialize)]
pub struct AccountView {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub currency: String,
    pub opening_balance: String,
    pub opening_date: NaiveDate,
    pub number_hint: Option<String>,
    pub archived: bool,
    /// Opening balance plus every transaction: always current.
    pub balance: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl AccountView {
    pub fn new(row: &AccountRow, balance_minor: i64) -> Self {
        let e = exponent(&row.currency);
        AccountView {
            id: row.id.clone(),
            name: row.name.clone(),
            kind: row.kind.clone(),
            currency: row.currency.clone(),
            opening_balance: format_minor(row.opening_balance, e),
            opening_date: row.opening_date,
            number_hint: row.number_hint.clone(),
            archived: row.archived,
            balance: format_minor(balance_minor, e),
            created_at: utc(row.created_at),
            updated_at: utc(row.updated_at),
            version: row.version,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CategoryView {
    pub id: String,
    pub name: String,
    pub parent_id: Option<String>,
    pub kind: String,
    pub color: Option<String>,
    pub icon: Option<String>,
    pub version: i64,
}

impl CategoryView {
    pub fn new(row: &CategoryRow) -> Self {
        CategoryView {
            id: row.id.clone(),
            name: row.name.clone(),
            parent_id: row.parent_id.clone(),
            kind: row.kind.clone(),
            color: row.color.clone(),
            icon: row.icon.clone(),
            version: row.version,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TransactionView {
    pub id: String,
    pub account_id: String,
    pub amount: String,
    pub currency: String,
    pub date: NaiveDate,
    pub occurred_at: Option<DateTime<Utc>>,
    pub description: String,
    pub merchant: String,
    pub category_id: Option<String>,
    pub category_source: String,
    pub confidence: Option<f64>,
    pub tags: Vec<String>,
    pub notes: String,
    pub transfer_id: Option<String>,
    pub foreign_amount: Option<String>,
    pub foreign_currency: Option<String>,
    pub source: String,
    pub external_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl TransactionView {
    pub fn new(row: &TransactionRow) -> Self {
        TransactionView {
            id: row.id.clone(),
            account_id: row.account_id.clone(),
            amount: format_minor(row.amount, exponent(&row.currency)),
            currency: row.currency.clone(),
            date: row.date,
            occurred_at: row.occurred_at.map(utc),
            description: row.description.clone(),
            merchant: row.merchant.clone(),
            category_id: row.category_id.clone(),
            category_source: row.category_source.clone(),
            confidence: row.confidence,
            tags: serde_json::from_str(&row.tags).unwrap_or_default(),
            notes: row.notes.clone(),
            transfer_id: row.transfer_id.clone(),
            foreign_amount: match (row.foreign_amount, &row.foreign_currency) {
                (Some(a), Some(c)) => Some(format_minor(a, exponent(c))),
                _ => None,
            },
            foreign_currency: row.foreign_currency.clone(),
            source: row.source.clone(),
            external_id: row.external_id.clone(),
            created_at: utc(row.created_at),
            updated_at: utc(row.updated_at),
            version: row.version,
        }
    }
}

/// A transfer: its id and both legs.
#[derive(Debug, Clone, Serialize)]
pub struct TransferView {
    pub id: String,
    pub from: TransactionView,
    pub to: TransactionView,
}
