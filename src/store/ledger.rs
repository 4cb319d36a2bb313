//! Rows and read queries of the ledger tables. Writes go through [`super::writer`] only, issued by
//! each user's `Ledger` actor.
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Nullable, Text};

use super::schema::{
    accounts, categories, events, exchange_rates, idempotency_keys, transactions, user_keys,
};
use super::sql_time::{SqlDate, SqlTimestamp};
use super::{DbConn, StoreError};

diesel::define_sql_function!(fn lower(x: Text) -> Text);

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = accounts, treat_none_as_null = true)]
pub struct AccountRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub kind: String,
    pub currency: String,
    pub opening_balance: i64,
    pub opening_date: NaiveDate,
    pub number_hint: Option<String>,
    pub archived: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = categories, treat_none_as_null = true)]
pub struct CategoryRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub parent_id: Option<String>,
    pub kind: String,
    pub color: Option<String>,
    pub icon: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
// `None` is written as NULL (no column here has another default), so an insert is one statement
// diesel prepares once and finds by its type: with the default (`None` = DEFAULT) the SQL depends
// on which fields are set, and diesel built it again for every row to look it up.
#[diesel(
    table_name = transactions,
    treat_none_as_null = true,
    treat_none_as_default_value = false
)]
pub struct TransactionRow {
    pub id: String,
    pub user_id: String,
    pub account_id: String,
    pub amount: i64,
    pub currency: String,
    pub date: NaiveDate,
    pub occurred_at: Option<NaiveDateTime>,
    pub description: String,
    pub merchant: String,
    pub category_id: Option<String>,
    pub category_source: String,
    pub confidence: Option<f64>,
    pub tags: String,
    pub notes: String,
    pub transfer_id: Option<String>,
    pub foreign_amount: Option<i64>,
    pub foreign_currency: Option<String>,
    pub source: String,
    pub external_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

/// A [`TransactionRow`] as the writer inserts it: the same columns, with its date and times bound
/// through [`super::sql_time`], which writes SQLite's text without chrono's formatter.
#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(
    table_name = transactions,
    treat_none_as_null = true,
    treat_none_as_default_value = false
)]
pub struct NewTransaction {
    pub id: String,
    pub user_id: String,
    pub account_id: String,
    pub amount: i64,
    pub currency: String,
    pub date: SqlDate,
    pub occurred_at: Option<SqlTimestamp>,
    pub description: String,
    pub merchant: String,
    pub category_id: Option<String>,
    pub category_source: String,
    pub confidence: Option<f64>,
    pub tags: String,
    pub notes: String,
    pub transfer_id: Option<String>,
    pub foreign_amount: Option<i64>,
    pub foreign_currency: Option<String>,
    pub source: String,
    pub external_id: Option<String>,
    pub created_at: SqlTimestamp,
    pub updated_at: SqlTimestamp,
    pub version: i64,
}

impl From<TransactionRow> for NewTransaction {
    fn from(row: TransactionRow) -> Self {
        NewTransaction {
            id: row.id,
            user_id: row.user_id,
            account_id: row.account_id,
            amount: row.amount,
            currency: row.currency,
            date: SqlDate(row.date),
            occurred_at: row.occurred_at.map(SqlTimestamp),
            description: row.description,
            merchant: row.merchant,
            category_id: row.category_id,
            category_source: row.category_source,
            confidence: row.confidence,
            tags: row.tags,
            notes: row.notes,
            transfer_id: row.transfer_id,
            foreign_amount: row.foreign_amount,
            foreign_currency: row.foreign_currency,
            source: row.source,
            external_id: row.external_id,
            created_at: SqlTimestamp(row.created_at),
            updated_at: SqlTimestamp(row.updated_at),
            version: row.version,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = events)]
pub struct EventRow {
    /// The user's key in `user_keys`, not their id.
    pub user_num: i64,
    pub seq: i64,
    pub message_id: String,
    pub kind: String,
    pub envelope: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = idempotency_keys)]
pub struct IdempotencyRow {
    pub user_id: String,
    pub key: String,
    pub fingerprint: String,
    pub status: i32,
    pub response: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = exchange_rates)]
pub struct RateRow {
    pub user_id: String,
    pub base: String,
    pub quote: String,
    pub date: NaiveDate,
    pub rate: String,
}

/// Everything a `Ledger` needs to rebuild its memory for one user.
pub struct LedgerSnapshot {
    /// Whether the user is there at all (not erased meanwhile).
    pub exists: bool,
    pub accounts: Vec<AccountRow>,
    pub categories: Vec<CategoryRow>,
    /// account id → sum of its transactions.
    pub sums: Vec<(String, i128)>,
    pub daily: Vec<DailyAggregate>,
    pub rates: Vec<RateRow>,
    /// The user's key in `user_keys` (0 for a user that does not exist).
    pub user_num: i64,
    pub last_seq: i64,
    pub budgets: Vec<super::budgets::BudgetRow>,
    /// The user's IANA time zone ("today" for budget periods).
    pub timezone: String,
    pub recurring: Vec<super::plans::RecurringRow>,
    pub goals: Vec<super::plans::GoalRow>,
    pub rules: Vec<super::rules::RuleRow>,
    pub memory: Vec<super::rules::MemoryRow>,
    /// The user's own recent category choices (newest first), for the classifier.
    pub labels: Vec<super::rules::LabelRow>,
    pub webhooks: Vec<super::notify::WebhookRow>,
    /// Stored notification preferences (JSON), when the user has set any.
    pub preferences: Option<String>,
}

/// Spending and income of one day, account and category (transfers excluded).
#[derive(Debug, Clone)]
pub struct DailyAggregate {
    pub date: NaiveDate,
    pub account_id: String,
    pub category_id: Option<String>,
    pub inflow: i64,
    pub outflow: i64,
    pub count: i64,
}

/// Sums come from the database in two parts, `SUM(amount / 10^9)` and `SUM(amount % 10^9)`, so no
/// running total can overflow a 64-bit integer whatever the order of the rows (SQLite fails the
/// whole query on such an overflow, which would leave a user's Ledger unable to start). The parts
/// are joined here, exactly for balances; a daily total beyond `i64` (possible only in data from
/// before amounts were limited) is held at its limit.
fn join_sum(high: i64, low: i64) -> i128 {
    i128::from(high) * 1_000_000_000 + i128::from(low)
}

/// A joined sum as an `i64`, held at its limit.
fn clamped_sum(high: i64, low: i64) -> i64 {
    let total = join_sum(high, low);
    i64::try_from(total).unwrap_or(if total < 0 { i64::MIN } else { i64::MAX })
}

#[derive(QueryableByName)]
struct DailyParts {
    #[diesel(sql_type = Date)]
    date: NaiveDate,
    #[diesel(sql_type = Text)]
    account_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    category_id: Option<String>,
    #[diesel(sql_type = BigInt)]
    inflow_high: i64,
    #[diesel(sql_type = BigInt)]
    inflow_low: i64,
    #[diesel(sql_type = BigInt)]
    outflow_high: i64,
    #[diesel(sql_type = BigInt)]
    outflow_low: i64,
    #[diesel(sql_type = BigInt)]
    count: i64,
}

#[derive(QueryableByName)]
struct AccountSum {
    #[diesel(sql_type = Text)]
    account_id: String,
    #[diesel(sql_type = BigInt)]
    high: i64,
    #[diesel(sql_type = BigInt)]
    low: i64,
}

/// Run raw SQL with one text parameter, written with `{}` where the placeholder goes: the only
/// place where the backends' SQL differs (`?` vs `$1`).
fn load_by_user<T>(conn: &mut DbConn, sql: &str, user_id: &str) -> Result<Vec<T>, StoreError>
where
    T: QueryableByName<diesel::sqlite::Sqlite> + QueryableByName<diesel::pg::Pg> + 'static,
{
    Ok(match conn {
        DbConn::Sqlite(c) => diesel::sql_query(sql.replace("{}", "?"))
            .bind::<Text, _>(user_id)
            .load(c)?,
        DbConn::Postgres(c) => diesel::sql_query(sql.replace("{}", "$1"))
            .bind::<Text, _>(user_id)
            .load(c)?,
    })
}

const ACCOUNT_SUMS: &str = "SELECT account_id, \
     CAST(COALESCE(SUM(amount / 1000000000), 0) AS BIGINT) AS high, \
     CAST(COALESCE(SUM(amount % 1000000000), 0) AS BIGINT) AS low \
     FROM transactions WHERE user_id = {} GROUP BY account_id";

const DAILY_AGGREGATES: &str = "SELECT date, account_id, category_id, \
     CAST(COALESCE(SUM(CASE WHEN amount > 0 THEN amount / 1000000000 ELSE 0 END), 0) AS BIGINT) AS inflow_high, \
     CAST(COALESCE(SUM(CASE WHEN amount > 0 THEN amount % 1000000000 ELSE 0 END), 0) AS BIGINT) AS inflow_low, \
     CAST(COALESCE(SUM(CASE WHEN amount < 0 THEN amount / 1000000000 ELSE 0 END), 0) AS BIGINT) AS outflow_high, \
     CAST(COALESCE(SUM(CASE WHEN amount < 0 THEN amount % 1000000000 ELSE 0 END), 0) AS BIGINT) AS outflow_low, \
     CAST(COUNT(*) AS BIGINT) AS count \
     FROM transactions WHERE user_id = {} AND transfer_id IS NULL \
     GROUP BY date, account_id, category_id";

/// Read a user's ledger state: accounts, categories, balances, daily aggregates, rates, last seq.
pub fn snapshot(conn: &mut DbConn, user_id: &str) -> Result<LedgerSnapshot, StoreError> {
    conn.transaction(|conn| {
        let accounts = accounts::table
            .filter(accounts::user_id.eq(user_id))
            .order(accounts::created_at.asc())
            .select(AccountRow::as_select())
            .load(conn)?;
        let categories = categories::table
            .filter(categories::user_id.eq(user_id))
            .order(categories::created_at.asc())
            .select(CategoryRow::as_select())
            .load(conn)?;
        let sums: Vec<AccountSum> = load_by_user(conn, ACCOUNT_SUMS, user_id)?;
        let daily: Vec<DailyAggregate> =
            load_by_user::<DailyParts>(conn, DAILY_AGGREGATES, user_id)?
                .into_iter()
                .map(|d| DailyAggregate {
                    date: d.date,
                    account_id: d.account_id,
                    category_id: d.category_id,
                    inflow: clamped_sum(d.inflow_high, d.inflow_low),
                    outflow: clamped_sum(d.outflow_high, d.outflow_low),
                    count: d.count,
                })
                .collect();
        let rates = exchange_rates::table
            .filter(exchange_rates::user_id.eq(user_id))
            .select(RateRow::as_select())
            .load(conn)?;
        let user_num: i64 = user_keys::table
            .filter(user_keys::user_id.eq(user_id))
            .select(user_keys::num)
            .first(conn)
            .optional()?
            .unwrap_or(0);
        let last_seq: Option<i64> = events::table
            .filter(events::user_num.eq(user_num))
            .select(diesel::dsl::max(events::seq))
            .first(conn)?;
        let budgets = super::budgets::load_budgets(conn, user_id)?;
        let timezone: Option<String> = super::schema::users::table
            .find(user_id)
            .select(super::schema::users::timezone)
            .first(conn)
            .optional()?;
        let exists = timezone.is_some();
        let timezone = timezone.unwrap_or_else(|| "UTC".to_string());
        let recurring = super::plans::load_recurring(conn, user_id)?;
        let goals = super::plans::load_goals(conn, user_id)?;
        let rules = super::rules::load_rules(conn, user_id)?;
        let memory = super::rules::load_memory(conn, user_id)?;
        let labels = super::rules::load_labels(conn, user_id)?;
        let webhooks = super::notify::load_webhooks(conn, user_id)?;
        let preferences = super::notify::load_preferences(conn, user_id)?;
        Ok(LedgerSnapshot {
            exists,
            webhooks,
            preferences,
            rules,
            memory,
            labels,
            recurring,
            goals,
            budgets,
            timezone,
            accounts,
            categories,
            sums: sums
                .into_iter()
                .map(|s| (s.account_id, join_sum(s.high, s.low)))
                .collect(),
            daily,
            rates,
            user_num,
            last_seq: last_seq.unwrap_or(0),
        })
    })
}

pub fn find_transaction(
    conn: &mut DbConn,
    user_id: &str,
    id: &str,
) -> Result<Option<TransactionRow>, StoreError> {
    Ok(transactions::table
        .find(id)
        .filter(transactions::user_id.eq(user_id))
        .select(TransactionRow::as_select())
        .first(conn)
        .optional()?)
}

/// Both legs of a transfer, the outgoing one first.
pub fn transfer_legs(
    conn: &mut DbConn,
    user_id: &str,
    transfer_id: &str,
) -> Result<Vec<TransactionRow>, StoreError> {
    Ok(transactions::table
        .filter(transactions::user_id.eq(user_id))
        .filter(transactions::transfer_id.eq(transfer_id))
        .order(transactions::amount.asc())
        .select(TransactionRow::as_select())
        .load(conn)?)
}

/// Every leg of every transfer that has a leg in `account_id`.
pub fn transfer_legs_touching(
    conn: &mut DbConn,
    user_id: &str,
    account_id: &str,
) -> Result<Vec<TransactionRow>, StoreError> {
    let ids: Vec<Option<String>> = transactions::table
        .filter(transactions::account_id.eq(account_id))
        .filter(transactions::transfer_id.is_not_null())
        .select(transactions::transfer_id)
        .load(conn)?;
    let ids: Vec<String> = ids.into_iter().flatten().collect();
    let mut legs = Vec::new();
    for chunk in ids.chunks(500) {
        legs.extend(
            transactions::table
                .filter(transactions::user_id.eq(user_id))
                .filter(transactions::transfer_id.eq_any(chunk))
                .select(TransactionRow::as_select())
                .load(conn)?,
        );
    }
    Ok(legs)
}

/// How many transactions an account or a category has.
pub fn count_in_account(conn: &mut DbConn, account_id: &str) -> Result<i64, StoreError> {
    Ok(transactions::table
        .filter(transactions::account_id.eq(account_id))
        .count()
        .get_result(conn)?)
}

pub fn find_idempotency(
    conn: &mut DbConn,
    user_id: &str,
    key: &str,
) -> Result<Option<IdempotencyRow>, StoreError> {
    Ok(idempotency_keys::table
        .find((user_id, key))
        .select(IdempotencyRow::as_select())
        .first(conn)
        .optional()?)
}

/// Drop idempotency keys older than `before`; returns how many.
pub fn prune_idempotency(conn: &mut DbConn, before: NaiveDateTime) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(idempotency_keys::table.filter(idempotency_keys::created_at.lt(before)))
            .execute(conn)?,
    )
}

/// Every external id in one of the user's accounts (the import deduplication set).
pub fn external_ids_of_account(
    conn: &mut DbConn,
    user_id: &str,
    account_id: &str,
) -> Result<Vec<String>, StoreError> {
    let ids: Vec<Option<String>> = transactions::table
        .filter(transactions::user_id.eq(user_id))
        .filter(transactions::account_id.eq(account_id))
        .filter(transactions::external_id.is_not_null())
        .select(transactions::external_id)
        .load(conn)?;
    Ok(ids.into_iter().flatten().collect())
}

/// The transaction with this external id in this account, if any.
pub fn find_by_external_id(
    conn: &mut DbConn,
    user_id: &str,
    account_id: &str,
    external_id: &str,
) -> Result<Option<TransactionRow>, StoreError> {
    Ok(transactions::table
        .filter(transactions::user_id.eq(user_id))
        .filter(transactions::account_id.eq(account_id))
        .filter(transactions::external_id.eq(external_id))
        .select(TransactionRow::as_select())
        .first(conn)
        .optional()?)
}

/// External ids already present in an account, among `candidates`.
pub fn existing_external_ids(
    conn: &mut DbConn,
    account_id: &str,
    candidates: &[String],
) -> Result<Vec<String>, StoreError> {
    let mut found = Vec::new();
    for chunk in candidates.chunks(500) {
        let mut part: Vec<Option<String>> = transactions::table
            .filter(transactions::account_id.eq(account_id))
            .filter(transactions::external_id.eq_any(chunk))
            .select(transactions::external_id)
            .load(conn)?;
        found.extend(part.drain(..).flatten());
    }
    Ok(found)
}

/// Filters of `GET /transactions`.
#[derive(Debug, Default, Clone)]
pub struct TransactionFilter {
    pub account_id: Option<String>,
    /// A category and its children.
    pub category_ids: Vec<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Lower-cased search text, matched against description, merchant and notes.
    pub q: Option<String>,
    /// Per currency: (currency, min minor units).
    pub min: Vec<(String, i64)>,
    pub max: Vec<(String, i64)>,
    pub tag: Option<String>,
    /// Keyset cursor: rows strictly before (date, id) in the newest-first order.
    pub before: Option<(NaiveDate, String)>,
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// One page of a user's transactions, newest first (`date` desc, then `id` desc).
pub fn list_transactions(
    conn: &mut DbConn,
    user_id: &str,
    filter: &TransactionFilter,
    limit: i64,
) -> Result<Vec<TransactionRow>, StoreError> {
    use transactions::dsl as t;
    let mut query = t::transactions
        .filter(t::user_id.eq(user_id.to_string()))
        .select(TransactionRow::as_select())
        .into_boxed();
    if let Some(a) = &filter.account_id {
        query = query.filter(t::account_id.eq(a.clone()));
    }
    if !filter.category_ids.is_empty() {
        query = query.filter(t::category_id.eq_any(filter.category_ids.clone()));
    }
    if let Some(from) = filter.from {
        query = query.filter(t::date.ge(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(t::date.le(to));
    }
    if let Some(q) = &filter.q {
        let pattern = format!("%{}%", like_escape(q));
        query = query.filter(
            lower(t::description)
                .like(pattern.clone())
                .escape('\\')
                .or(lower(t::merchant).like(pattern.clone()).escape('\\'))
                .or(lower(t::notes).like(pattern).escape('\\')),
        );
    }
    if let Some(tag) = &filter.tag {
        let pattern = format!(
            "%{}%",
            like_escape(&serde_json::to_string(tag).unwrap_or_default())
        );
        query = query.filter(t::tags.like(pattern).escape('\\'));
    }
    if !filter.min.is_empty() {
        let mut cond: Box<
            dyn BoxableExpression<t::transactions, _, SqlType = diesel::sql_types::Bool>,
        > = Box::new(diesel::dsl::sql::<diesel::sql_types::Bool>("1 = 0"));
        for (currency, min) in &filter.min {
            cond = Box::new(cond.or(t::currency.eq(currency.clone()).and(t::amount.ge(*min))));
        }
        query = query.filter(cond);
    }
    if !filter.max.is_empty() {
        let mut cond: Box<
            dyn BoxableExpression<t::transactions, _, SqlType = diesel::sql_types::Bool>,
        > = Box::new(diesel::dsl::sql::<diesel::sql_types::Bool>("1 = 0"));
        for (currency, max) in &filter.max {
            cond = Box::new(cond.or(t::currency.eq(currency.clone()).and(t::amount.le(*max))));
        }
        query = query.filter(cond);
    }
    if let Some((date, id)) = &filter.before {
        query = query.filter(
            t::date
                .lt(*date)
                .or(t::date.eq(*date).and(t::id.lt(id.clone()))),
        );
    }
    Ok(query
        .order((t::date.desc(), t::id.desc()))
        .limit(limit)
        .load(conn)?)
}

/// Events after `seq`, oldest first, at most `limit`.
pub fn events_after(
    conn: &mut DbConn,
    user_id: &str,
    seq: i64,
    limit: i64,
) -> Result<Vec<EventRow>, StoreError> {
    let user_num = user_keys::table
        .filter(user_keys::user_id.eq(user_id))
        .select(user_keys::num);
    Ok(events::table
        .filter(events::user_num.eq_any(user_num))
        .filter(events::seq.gt(seq))
        .order(events::seq.asc())
        .limit(limit)
        .select(EventRow::as_select())
        .load(conn)?)
}

/// All of a user's transactions in date order, for exports.
pub fn all_transactions(
    conn: &mut DbConn,
    user_id: &str,
) -> Result<Vec<TransactionRow>, StoreError> {
    Ok(transactions::table
        .filter(transactions::user_id.eq(user_id))
        .order((transactions::date.asc(), transactions::id.asc()))
        .select(TransactionRow::as_select())
        .load(conn)?)
}

/// The default category set for a new user (inside the caller's transaction).
pub fn insert_default_categories(
    conn: &mut DbConn,
    user_id: &str,
    now: NaiveDateTime,
) -> Result<(), StoreError> {
    let mut rows = Vec::new();
    let mut at = now;
    for (parent, children, kind) in crate::domain::categories::DEFAULT_CATEGORIES {
        let parent_id = uuid::Uuid::now_v7().to_string();
        // Distinct creation times keep the listing in the order of the table above.
        at += chrono::Duration::microseconds(1);
        rows.push(CategoryRow {
            id: parent_id.clone(),
            user_id: user_id.to_string(),
            name: (*parent).to_string(),
            parent_id: None,
            kind: kind.as_str().to_string(),
            color: None,
            icon: None,
            created_at: at,
            updated_at: at,
            version: 1,
        });
        for child in *children {
            at += chrono::Duration::microseconds(1);
            rows.push(CategoryRow {
                id: uuid::Uuid::now_v7().to_string(),
                user_id: user_id.to_string(),
                name: (*child).to_string(),
                parent_id: Some(parent_id.clone()),
                kind: kind.as_str().to_string(),
                color: None,
                icon: None,
                created_at: at,
                updated_at: at,
                version: 1,
            });
        }
    }
    for row in &rows {
        diesel::insert_into(categories::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}
