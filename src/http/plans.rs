//! `/api/v1/recurring` (rules the Scheduler turns into transactions when due) and `/api/v1/goals`.
use crate::domain::day::Day;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::extract::AuthUser;
use super::json::Json;
use super::ledger::{ask, expected_version, nullable, path_id, replayed, respond, CreateBody};
use super::routes::at;
use crate::actors::ledger::plans::{GoalInput, RecurringInput};
use crate::actors::ledger::{
    CreateGoal, CreateRecurring, DeleteGoal, DeleteRecurring, ListGoals, ListRecurring, UpdateGoal,
    UpdateRecurring,
};
use crate::app::AppState;
use crate::domain::recurring::Frequency;
use crate::domain::{Currency, DecimalString};
use crate::error::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(at("/recurring").get(list_recurring).post(create_recurring))
        .service(
            at("/recurring/{id}")
                .get(get_recurring)
                .patch(patch_recurring)
                .delete(delete_recurring),
        )
        .service(at("/goals").get(list_goals).post(create_goal))
        .service(
            at("/goals/{id}")
                .get(get_goal)
                .patch(patch_goal)
                .delete(delete_goal),
        )
        .service(at("/goals/{id}/contributions").post(contribute));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecurringBody {
    version: Option<i64>,
    account_id: Option<Uuid>,
    amount: Option<DecimalString>,
    description: Option<String>,
    merchant: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    category_id: Option<Option<Uuid>>,
    tags: Option<Vec<String>>,
    notes: Option<String>,
    frequency: Option<String>,
    every: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    day_of_month: Option<Option<i64>>,
    /// The first occurrence (on create) or the next one (on update).
    start_date: Option<Day>,
    next_date: Option<Day>,
    #[serde(default, deserialize_with = "nullable")]
    end_date: Option<Option<Day>>,
    active: Option<bool>,
}

fn recurring_input(body: RecurringBody, version: Option<i64>) -> Result<RecurringInput, ApiError> {
    let frequency = body
        .frequency
        .as_deref()
        .map(Frequency::parse)
        .transpose()
        .map_err(|m| ApiError::validation("frequency", m))?;
    Ok(RecurringInput {
        account_id: body.account_id,
        amount: body.amount.map(|d| d.0),
        description: body.description,
        merchant: body.merchant,
        category_id: body.category_id,
        tags: body.tags,
        notes: body.notes,
        frequency,
        every: body.every,
        day_of_month: body.day_of_month,
        next_date: body.next_date.or(body.start_date).map(NaiveDate::from),
        end_date: body.end_date.map(|d| d.map(NaiveDate::from)),
        active: body.active,
        version,
    })
}

async fn list_recurring(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
) -> Result<HttpResponse, ApiError> {
    let items = ask(&state, who.user_id(), ListRecurring).await?;
    Ok(HttpResponse::Ok().json(json!({ "items": items, "next_cursor": null })))
}

async fn get_recurring(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?.to_string();
    let items = ask(&state, who.user_id(), ListRecurring).await?;
    let item = items
        .into_iter()
        .find(|r| r["id"] == id.as_str())
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(item))
}

async fn create_recurring(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    CreateBody { body, idempotency }: CreateBody<RecurringBody>,
) -> Result<HttpResponse, ApiError> {
    if let Some(replay) = replayed(&state, &who, &idempotency).await? {
        return Ok(replay);
    }
    let input = recurring_input(body, None)?;
    let reply = ask(
        &state,
        who.user_id(),
        CreateRecurring { input, idempotency },
    )
    .await??;
    Ok(respond(reply))
}

async fn patch_recurring(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    req: HttpRequest,
    path: web::Path<String>,
    Json(body): Json<RecurringBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let version = expected_version(&req, body.version)?;
    let input = recurring_input(body, version)?;
    let reply = ask(&state, who.user_id(), UpdateRecurring { id, input }).await??;
    Ok(respond(reply))
}

async fn delete_recurring(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    Ok(respond(
        ask(&state, who.user_id(), DeleteRecurring { id }).await??,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GoalBody {
    version: Option<i64>,
    name: Option<String>,
    target: Option<DecimalString>,
    currency: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    target_date: Option<Option<Day>>,
    #[serde(default, deserialize_with = "nullable")]
    account_id: Option<Option<Uuid>>,
}

fn goal_input(body: GoalBody, version: Option<i64>) -> Result<GoalInput, ApiError> {
    let currency = body
        .currency
        .as_deref()
        .map(Currency::parse)
        .transpose()
        .map_err(|m| ApiError::validation("currency", m))?;
    Ok(GoalInput {
        name: body.name,
        target: body.target.map(|d| d.0),
        currency,
        target_date: body.target_date.map(|d| d.map(NaiveDate::from)),
        account_id: body.account_id,
        version,
    })
}

async fn list_goals(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
) -> Result<HttpResponse, ApiError> {
    let items = ask(&state, who.user_id(), ListGoals).await?;
    Ok(HttpResponse::Ok().json(json!({ "items": items, "next_cursor": null })))
}

async fn get_goal(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?.to_string();
    let items = ask(&state, who.user_id(), ListGoals).await?;
    let item = items
        .into_iter()
        .find(|g| g["id"] == id.as_str())
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(item))
}

async fn create_goal(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    CreateBody { body, idempotency }: CreateBody<GoalBody>,
) -> Result<HttpResponse, ApiError> {
    if let Some(replay) = replayed(&state, &who, &idempotency).await? {
        return Ok(replay);
    }
    let mut input = goal_input(body, None)?;
    if input.currency.is_none() {
        input.currency = Currency::parse(&who.user.base_currency).ok();
    }
    let reply = ask(&state, who.user_id(), CreateGoal { input, idempotency }).await??;
    Ok(respond(reply))
}

async fn patch_goal(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    req: HttpRequest,
    path: web::Path<String>,
    Json(body): Json<GoalBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let version = expected_version(&req, body.version)?;
    let input = goal_input(body, version)?;
    Ok(respond(
        ask(
            &state,
            who.user_id(),
            UpdateGoal {
                id,
                input,
                contribution: None,
            },
        )
        .await??,
    ))
}

async fn delete_goal(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    Ok(respond(
        ask(&state, who.user_id(), DeleteGoal { id }).await??,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Contribution {
    amount: DecimalString,
}

async fn contribute(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    path: web::Path<String>,
    Json(body): Json<Contribution>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let reply = ask(
        &state,
        who.user_id(),
        UpdateGoal {
            id,
            input: GoalInput::default(),
            contribution: Some(body.amount.0),
        },
    )
    .await??;
    Ok(respond(reply))
}
