//! `/api/v1/transactions` and `/api/v1/transfers`.
use crate::domain::day::Day;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::extract::AuthUser;
use super::json::Json;
use super::ledger::{
    ask, expected_version, nullable, path_id, present, replayed, respond, today, with_etag,
    CreateBody,
};
use super::routes::at;
use crate::actors::ledger::views::{TransactionView, TransferView};
use crate::actors::ledger::{
    AccountCurrencies, CategoryFamily, CreateTransaction, CreateTransfer, DeleteTransaction,
    DeleteTransfer, NewTransaction, NewTransfer, TransactionPatch, TransferPatch,
    UpdateTransaction, UpdateTransfer,
};
use crate::app::AppState;
use crate::domain::ledger::TxnSource;
use crate::domain::money::parse_bound;
use crate::domain::{Currency, DecimalString};
use crate::error::{ApiError, FieldError};
use crate::store::ledger::{self as q, TransactionFilter};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(at("/transactions").get(list).post(create))
        .service(
            at("/transactions/{id}")
                .get(get)
                .patch(patch)
                .delete(delete),
        )
        .service(at("/transfers").post(create_transfer))
        .service(
            at("/transfers/{id}")
                .get(get_transfer)
                .patch(patch_transfer)
                .delete(delete_transfer),
        );
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    account_id: Option<String>,
    category_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    q: Option<String>,
    min: Option<String>,
    max: Option<String>,
    tag: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

fn encode_cursor(date: NaiveDate, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{date}|{id}"))
}

fn decode_cursor(raw: &str) -> Option<(NaiveDate, String)> {
    let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (date, id) = text.split_once('|')?;
    let id: Uuid = id.parse().ok()?;
    Some((date.parse().ok()?, id.to_string()))
}

fn date_param(
    raw: &Option<String>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<NaiveDate> {
    let raw = raw.as_deref()?;
    match raw.parse() {
        Ok(d) => Some(d),
        Err(_) => {
            errors.push(FieldError::new(field, "must be a date such as 2026-11-21"));
            None
        }
    }
}

async fn list(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let mut errors = Vec::new();
    let mut filter = TransactionFilter::default();
    let limit: i64 = match query.limit.as_deref().map(str::parse::<i64>) {
        None => 50,
        Some(Ok(n)) if (1..=500).contains(&n) => n,
        Some(_) => {
            errors.push(FieldError::new(
                "limit",
                "must be a whole number from 1 to 500",
            ));
            50
        }
    };
    filter.from = date_param(&query.from, "from", &mut errors);
    filter.to = date_param(&query.to, "to", &mut errors);
    if let Some(raw) = &query.cursor {
        match decode_cursor(raw) {
            Some(c) => filter.before = Some(c),
            None => errors.push(FieldError::new(
                "cursor",
                "is not a cursor this server gave out",
            )),
        }
    }
    // A foreign or unknown account or category simply matches nothing, as for any other filter.
    let mut matches_nothing = false;
    if let Some(raw) = &query.account_id {
        match raw.parse::<Uuid>() {
            Ok(id) => filter.account_id = Some(id.to_string()),
            Err(_) => errors.push(FieldError::new("account_id", "is not an id")),
        }
    }
    if let Some(raw) = &query.category_id {
        match raw.parse::<Uuid>() {
            Ok(id) => match ask(&state, who.user_id(), CategoryFamily { id }).await? {
                Some(ids) => filter.category_ids = ids,
                None => matches_nothing = true,
            },
            Err(_) => errors.push(FieldError::new("category_id", "is not an id")),
        }
    }
    if let Some(q) = &query.q {
        let q = q.trim();
        if q.chars().count() > 200 {
            errors.push(FieldError::new("q", "must be at most 200 characters"));
        } else if !q.is_empty() {
            filter.q = Some(q.to_lowercase());
        }
    }
    if let Some(tag) = &query.tag {
        filter.tag = Some(tag.trim().to_string());
    }
    if query.min.is_some() || query.max.is_some() {
        let currencies = ask(&state, who.user_id(), AccountCurrencies).await?;
        let mut seen: Vec<Currency> = Vec::new();
        for (_, c) in currencies {
            if !seen.contains(&c) {
                seen.push(c);
            }
        }
        let reference =
            Currency::parse("EUR").map_err(|m| ApiError::internal(anyhow::anyhow!(m)))?;
        for (raw, ceil, field) in [(&query.min, true, "min"), (&query.max, false, "max")] {
            let Some(raw) = raw.as_deref().map(str::trim) else {
                continue;
            };
            let bounds: Result<Vec<(String, i64)>, _> = seen
                .iter()
                .map(|c| parse_bound(raw, *c, ceil).map(|v| (c.code().to_string(), v)))
                .collect();
            match (parse_bound(raw, reference, ceil), bounds) {
                (Ok(_), Ok(bounds)) if ceil => filter.min = bounds,
                (Ok(_), Ok(bounds)) => filter.max = bounds,
                _ => errors.push(FieldError::new(
                    field,
                    "must be a decimal amount such as -12.50",
                )),
            }
            if seen.is_empty() {
                matches_nothing = true;
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    if matches_nothing {
        return Ok(HttpResponse::Ok().json(json!({ "items": [], "next_cursor": null })));
    }
    let uid = who.user_id().to_string();
    let mut rows = state
        .db
        .run(move |conn| q::list_transactions(conn, &uid, &filter, limit + 1))
        .await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| encode_cursor(r.date, &r.id))
    } else {
        None
    };
    let items: Vec<TransactionView> = rows.iter().map(TransactionView::new).collect();
    Ok(HttpResponse::Ok().json(json!({ "items": items, "next_cursor": next_cursor })))
}

async fn get(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?.to_string();
    let uid = who.user_id().to_string();
    let row = state
        .db
        .run(move |conn| q::find_transaction(conn, &uid, &id))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(with_etag(
        HttpResponse::Ok().json(TransactionView::new(&row)),
        row.version,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTransactionBody {
    account_id: Uuid,
    amount: DecimalString,
    date: Option<Day>,
    occurred_at: Option<DateTime<Utc>>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    merchant: String,
    category_id: Option<Uuid>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    notes: String,
    foreign_amount: Option<DecimalString>,
    foreign_currency: Option<String>,
    external_id: Option<String>,
}

async fn create(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    CreateBody { body, idempotency }: CreateBody<NewTransactionBody>,
) -> Result<HttpResponse, ApiError> {
    if let Some(replay) = replayed(&state, &who, &idempotency).await? {
        return Ok(replay);
    }
    let foreign_currency = body
        .foreign_currency
        .as_deref()
        .map(Currency::parse)
        .transpose()
        .map_err(|m| ApiError::validation("foreign_currency", m))?;
    let input = NewTransaction {
        account_id: body.account_id,
        amount: body.amount.0,
        date: body.date.map_or_else(|| today(&who), NaiveDate::from),
        occurred_at: body.occurred_at,
        description: body.description,
        merchant: body.merchant,
        category_id: body.category_id,
        category_source: None,
        confidence: None,
        tags: body.tags,
        notes: body.notes,
        foreign_amount: body.foreign_amount.map(|d| d.0),
        foreign_currency,
        source: TxnSource::Api,
        external_id: body.external_id,
    };
    let reply = ask(
        &state,
        who.user_id(),
        CreateTransaction { input, idempotency },
    )
    .await??;
    Ok(respond(reply))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchTransactionBody {
    #[serde(default, deserialize_with = "present")]
    version: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    account_id: Option<Uuid>,
    #[serde(default, deserialize_with = "present")]
    amount: Option<DecimalString>,
    #[serde(default, deserialize_with = "present")]
    date: Option<Day>,
    #[serde(default, deserialize_with = "nullable")]
    occurred_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "present")]
    description: Option<String>,
    #[serde(default, deserialize_with = "present")]
    merchant: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    category_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "present")]
    tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    notes: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    foreign_amount: Option<Option<DecimalString>>,
    #[serde(default, deserialize_with = "nullable")]
    foreign_currency: Option<Option<String>>,
}

async fn patch(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    req: HttpRequest,
    path: web::Path<String>,
    Json(body): Json<PatchTransactionBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let foreign_currency = match body.foreign_currency {
        Some(Some(code)) => Some(Some(
            Currency::parse(&code).map_err(|m| ApiError::validation("foreign_currency", m))?,
        )),
        Some(None) => Some(None),
        None => None,
    };
    let patch = TransactionPatch {
        version: expected_version(&req, body.version)?,
        account_id: body.account_id,
        amount: body.amount.map(|d| d.0),
        date: body.date.map(NaiveDate::from),
        occurred_at: body.occurred_at,
        description: body.description,
        merchant: body.merchant,
        category_id: body.category_id,
        tags: body.tags,
        notes: body.notes,
        foreign_amount: body.foreign_amount.map(|o| o.map(|d| d.0)),
        foreign_currency,
    };
    let reply = ask(&state, who.user_id(), UpdateTransaction { id, patch }).await??;
    Ok(respond(reply))
}

async fn delete(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let reply = ask(&state, who.user_id(), DeleteTransaction { id }).await??;
    Ok(respond(reply))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTransferBody {
    from_account_id: Uuid,
    to_account_id: Uuid,
    amount: DecimalString,
    to_amount: Option<DecimalString>,
    date: Option<Day>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    notes: String,
    #[serde(default)]
    tags: Vec<String>,
}

async fn create_transfer(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    CreateBody { body, idempotency }: CreateBody<NewTransferBody>,
) -> Result<HttpResponse, ApiError> {
    if let Some(replay) = replayed(&state, &who, &idempotency).await? {
        return Ok(replay);
    }
    let input = NewTransfer {
        from_account_id: body.from_account_id,
        to_account_id: body.to_account_id,
        amount: body.amount.0,
        to_amount: body.to_amount.map(|d| d.0),
        date: body.date.map_or_else(|| today(&who), NaiveDate::from),
        description: body.description,
        notes: body.notes,
        tags: body.tags,
    };
    let reply = ask(&state, who.user_id(), CreateTransfer { input, idempotency }).await??;
    Ok(respond(reply))
}

async fn get_transfer(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?.to_string();
    let uid = who.user_id().to_string();
    let transfer_id = id.clone();
    let mut legs = state
        .db
        .run(move |conn| q::transfer_legs(conn, &uid, &transfer_id))
        .await?;
    if legs.len() != 2 {
        return Err(ApiError::NotFound);
    }
    legs.sort_by_key(|l| l.amount);
    let view = TransferView {
        id,
        from: TransactionView::new(&legs[0]),
        to: TransactionView::new(&legs[1]),
    };
    let version = legs[0].version;
    Ok(with_etag(HttpResponse::Ok().json(view), version))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchTransferBody {
    #[serde(default, deserialize_with = "present")]
    version: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    amount: Option<DecimalString>,
    #[serde(default, deserialize_with = "present")]
    to_amount: Option<DecimalString>,
    #[serde(default, deserialize_with = "present")]
    date: Option<Day>,
    #[serde(default, deserialize_with = "present")]
    description: Option<String>,
    #[serde(default, deserialize_with = "present")]
    notes: Option<String>,
    #[serde(default, deserialize_with = "present")]
    tags: Option<Vec<String>>,
}

async fn patch_transfer(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    req: HttpRequest,
    path: web::Path<String>,
    Json(body): Json<PatchTransferBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let patch = TransferPatch {
        version: expected_version(&req, body.version)?,
        amount: body.amount.map(|d| d.0),
        to_amount: body.to_amount.map(|d| d.0),
        date: body.date.map(NaiveDate::from),
        description: body.description,
        notes: body.notes,
        tags: body.tags,
    };
    let reply = ask(&state, who.user_id(), UpdateTransfer { id, patch }).await??;
    Ok(respond(reply))
}

async fn delete_transfer(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let reply = ask(&state, who.user_id(), DeleteTransfer { id }).await??;
    Ok(respond(reply))
}
