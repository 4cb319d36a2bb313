//! `/api/v1/rules`: the user's categorization rules (CRUD, order, applying one to existing
//! transactions). Validation (fields, operators, regexes, referenced categories and accounts)
//! happens in the Ledger against the user's data; errors name the exact field, e.g.
//! `conditions[0].value`.
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::extract::AuthUser;
use super::json::Json;
use super::ledger::{ask, expected_version, path_id, replayed, respond, with_etag, CreateBody};
use super::routes::at;
use crate::actors::ledger::categorize::RulePatch;
use crate::actors::ledger::{
    ApplyRule, CreateRule, DeleteRule, GetRule, ListRules, ReorderRules, UpdateRule,
};
use crate::app::AppState;
use crate::domain::rules::{ActionSpec, ConditionSpec, MatchMode, RuleSpec};
use crate::error::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(at("/rules").get(list).post(create))
        .service(at("/rules/order").put(reorder))
        .service(at("/rules/{id}").get(get).patch(patch).delete(delete))
        .service(at("/rules/{id}/apply").post(apply));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRuleBody {
    name: String,
    conditions: Vec<ConditionSpec>,
    #[serde(rename = "match", default = "all")]
    match_mode: MatchMode,
    actions: Vec<ActionSpec>,
    #[serde(default)]
    stop_processing: bool,
    position: Option<i64>,
}

fn all() -> MatchMode {
    MatchMode::All
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulePatchBody {
    version: Option<i64>,
    position: Option<i64>,
    name: Option<String>,
    conditions: Option<Vec<ConditionSpec>>,
    #[serde(rename = "match")]
    match_mode: Option<MatchMode>,
    actions: Option<Vec<ActionSpec>>,
    stop_processing: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderBody {
    ids: Vec<Uuid>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ApplyBody {
    /// Also replace categories the user chose by hand.
    #[serde(default)]
    overwrite: bool,
}

async fn list(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
) -> Result<HttpResponse, ApiError> {
    let items = ask(&state, who.user_id(), ListRules).await?;
    Ok(HttpResponse::Ok().json(json!({ "items": items, "next_cursor": null })))
}

async fn get(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let rule = ask(&state, who.user_id(), GetRule { id })
        .await?
        .ok_or(ApiError::NotFound)?;
    let version = rule.version;
    Ok(with_etag(HttpResponse::Ok().json(rule), version))
}

async fn create(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    CreateBody { body, idempotency }: CreateBody<NewRuleBody>,
) -> Result<HttpResponse, ApiError> {
    if let Some(replay) = replayed(&state, &who, &idempotency).await? {
        return Ok(replay);
    }
    let spec = RuleSpec {
        name: body.name,
        conditions: body.conditions,
        match_mode: body.match_mode,
        actions: body.actions,
        stop_processing: body.stop_processing,
    };
    let reply = ask(
        &state,
        who.user_id(),
        CreateRule {
            spec,
            position: body.position,
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
    Json(body): Json<RulePatchBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let version = expected_version(&req, body.version)?;
    let patch = RulePatch {
        version,
        position: body.position,
        name: body.name,
        conditions: body.conditions,
        match_mode: body.match_mode,
        actions: body.actions,
        stop_processing: body.stop_processing,
    };
    let reply = ask(&state, who.user_id(), UpdateRule { id, patch }).await??;
    Ok(respond(reply))
}

async fn delete(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let reply = ask(&state, who.user_id(), DeleteRule { id }).await??;
    Ok(respond(reply))
}

async fn reorder(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    Json(body): Json<OrderBody>,
) -> Result<HttpResponse, ApiError> {
    let reply = ask(&state, who.user_id(), ReorderRules { ids: body.ids }).await??;
    Ok(respond(reply))
}

async fn apply(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    // The body is optional: none means the defaults.
    let overwrite = if req
        .headers()
        .contains_key(actix_web::http::header::CONTENT_TYPE)
    {
        let bytes = super::json::body_bytes(&req, &mut payload.into_inner()).await?;
        if bytes.is_empty() {
            false
        } else {
            super::json::parse::<ApplyBody>(&bytes)?.overwrite
        }
    } else {
        false
    };
    let reply = ask(&state, who.user_id(), ApplyRule { id, overwrite }).await??;
    Ok(respond(reply))
}
