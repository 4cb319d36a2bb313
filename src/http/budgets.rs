//! `/api/v1/budgets` (each with its live `status`) and `/api/v1/notifications` (in-app).
use crate::domain::day::Day;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{Datelike, NaiveDate};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::extract::AuthUser;
use super::json::Json;
use super::ledger::{
    ask, expected_version, nullable, path_id, replayed, respond, today, with_etag, CreateBody,
};
use super::routes::at;
use crate::actors::ledger::budgets::BudgetInput;
use crate::actors::ledger::{
    CreateBudget, DeleteBudget, GetBudget, ListBudgets, MarkNotificationRead, UpdateBudget,
};
use crate::app::AppState;
use crate::domain::budget::PeriodKind;
use crate::domain::{Currency, DecimalString};
use crate::error::{ApiError, FieldError};
use crate::store::budgets as q;
use crate::store::utc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(at("/budgets").get(list).post(create))
        .service(at("/budgets/{id}").get(get).patch(patch).delete(delete))
        .service(at("/notifications").get(notifications))
        .service(at("/notifications/{id}/read").post(mark_read));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetBody {
    version: Option<i64>,
    name: Option<String>,
    limit: Option<DecimalString>,
    currency: Option<String>,
    period: Option<String>,
    start_date: Option<Day>,
    #[serde(default, deserialize_with = "nullable")]
    end_date: Option<Option<Day>>,
    category_ids: Option<Vec<Uuid>>,
    account_ids: Option<Vec<Uuid>>,
    thresholds: Option<Vec<i64>>,
    rollover: Option<bool>,
}

fn input(body: BudgetBody, version: Option<i64>) -> Result<BudgetInput, ApiError> {
    let mut errors = Vec::new();
    let currency = match body.currency.as_deref() {
        Some(c) => Currency::parse(c).map(Some).unwrap_or_else(|m| {
            errors.push(FieldError::new("currency", m));
            None
        }),
        None => None,
    };
    let period = match body.period.as_deref() {
        Some(p) => PeriodKind::parse(p).map(Some).unwrap_or_else(|m| {
            errors.push(FieldError::new("period", m));
            None
        }),
        None => None,
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok(BudgetInput {
        name: body.name,
        limit: body.limit.map(|d| d.0),
        currency,
        period,
        start_date: body.start_date.map(NaiveDate::from),
        end_date: body.end_date.map(|d| d.map(NaiveDate::from)),
        category_ids: body.category_ids,
        account_ids: body.account_ids,
        thresholds: body.thresholds,
        rollover: body.rollover,
        version,
    })
}

async fn list(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
) -> Result<HttpResponse, ApiError> {
    let items = ask(&state, who.user_id(), ListBudgets { today: today(&who) }).await?;
    Ok(HttpResponse::Ok().json(json!({ "items": items, "next_cursor": null })))
}

async fn get(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let budget = ask(
        &state,
        who.user_id(),
        GetBudget {
            id,
            today: today(&who),
        },
    )
    .await?
    .ok_or(ApiError::NotFound)?;
    let version = budget.version;
    Ok(with_etag(HttpResponse::Ok().json(budget), version))
}

async fn create(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    CreateBody { body, idempotency }: CreateBody<BudgetBody>,
) -> Result<HttpResponse, ApiError> {
    if let Some(replay) = replayed(&state, &who, &idempotency).await? {
        return Ok(replay);
    }
    let mut input = input(body, None)?;
    if input.currency.is_none() {
        input.currency = Currency::parse(&who.user.base_currency).ok();
    }
    if input.start_date.is_none() {
        // Monthly and longer budgets follow calendar periods by default.
        let t = today(&who);
        input.start_date = Some(match input.period {
            Some(PeriodKind::Weekly) | Some(PeriodKind::Custom) | None => t,
            Some(PeriodKind::Monthly) => t.with_day0(0).unwrap_or(t),
            Some(PeriodKind::Quarterly) => {
                NaiveDate::from_ymd_opt(t.year(), ((t.month0() / 3) * 3) + 1, 1).unwrap_or(t)
            }
            Some(PeriodKind::Yearly) => NaiveDate::from_ymd_opt(t.year(), 1, 1).unwrap_or(t),
        });
    }
    let reply = ask(
        &state,
        who.user_id(),
        CreateBudget {
            input,
            today: today(&who),
            idempotency,
        },
    )
    .await??;
    Ok(respond(reply))
}

async fn patch(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    req: HttpRequest,
    path: web::Path<String>,
    Json(body): Json<BudgetBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let version = expected_version(&req, body.version)?;
    let input = input(body, version)?;
    let reply = ask(
        &state,
        who.user_id(),
        UpdateBudget {
            id,
            input,
            today: today(&who),
        },
    )
    .await??;
    Ok(respond(reply))
}

async fn delete(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let reply = ask(&state, who.user_id(), DeleteBudget { id }).await??;
    Ok(respond(reply))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NotificationQuery {
    #[serde(default)]
    unread: bool,
    limit: Option<i64>,
    cursor: Option<String>,
}

async fn notifications(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    query: web::Query<NotificationQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = page_limit(query.limit)?;
    let before = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let uid = who.user_id().to_string();
    let unread = query.unread;
    let mut rows = state
        .db
        .run(move |conn| q::list_notifications(conn, &uid, unread, before, limit + 1))
        .await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| encode_cursor(r.created_at, &r.id))
    } else {
        None
    };
    let items: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            json!({
                "id": r.id,
                "kind": r.kind,
                "payload": serde_json::from_str::<Value>(&r.payload).unwrap_or(Value::Null),
                "created_at": utc(r.created_at),
                "read": r.read_at.is_some(),
                "read_at": r.read_at.map(utc),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "items": items, "next_cursor": next_cursor })))
}

/// A keyset cursor over (created_at, id), as handed out by [`encode_cursor`].
pub fn decode_cursor(c: &str) -> Result<(chrono::NaiveDateTime, String), ApiError> {
    URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|t| {
            let (at, id) = t.split_once('|')?;
            Some((
                chrono::NaiveDateTime::parse_from_str(at, "%Y-%m-%dT%H:%M:%S%.f").ok()?,
                id.to_string(),
            ))
        })
        .ok_or_else(|| ApiError::validation("cursor", "is not a cursor this server gave out"))
}

pub fn encode_cursor(at: chrono::NaiveDateTime, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{}", at.format("%Y-%m-%dT%H:%M:%S%.f"), id))
}

/// `limit` of a list: 1–500, default 50.
pub fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::validation(
            "limit",
            "must be a whole number from 1 to 500",
        ));
    }
    Ok(limit)
}

async fn mark_read(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let reply = ask(&state, who.user_id(), MarkNotificationRead { id }).await??;
    Ok(respond(reply))
}
