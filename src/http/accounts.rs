//! `/api/v1/accounts`: each account with its live balance.
use crate::domain::day::Day;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::json;

use super::extract::AuthUser;
use super::json::Json;
use super::ledger::{
    ask, expected_version, nullable, path_id, present, replayed, respond, with_etag, CreateBody,
};
use super::routes::at;
use crate::actors::ledger::{
    AccountPatch, CreateAccount, DeleteAccount, GetAccount, ListAccounts, NewAccount, UpdateAccount,
};
use crate::app::AppState;
use crate::domain::ledger::AccountKind;
use crate::domain::{Currency, DecimalString};
use crate::error::ApiError;
use crate::validate;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(at("/accounts").get(list).post(create))
        .service(at("/accounts/{id}").get(get).patch(patch).delete(delete));
}

async fn list(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
) -> Result<HttpResponse, ApiError> {
    let items = ask(&state, who.user_id(), ListAccounts).await?;
    Ok(HttpResponse::Ok().json(json!({ "items": items, "next_cursor": null })))
}

async fn get(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let account = ask(&state, who.user_id(), GetAccount { id })
        .await?
        .ok_or(ApiError::NotFound)?;
    let version = account.version;
    Ok(with_etag(HttpResponse::Ok().json(account), version))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAccountBody {
    name: String,
    kind: String,
    currency: String,
    opening_balance: Option<DecimalString>,
    opening_date: Option<Day>,
    number_hint: Option<String>,
}

async fn create(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    CreateBody { body, idempotency }: CreateBody<NewAccountBody>,
) -> Result<HttpResponse, ApiError> {
    if let Some(replay) = replayed(&state, &who, &idempotency).await? {
        return Ok(replay);
    }
    let kind = AccountKind::parse(&body.kind);
    let currency = Currency::parse(&body.currency);
    let (kind, currency) = validate!(kind => "kind", currency => "currency")?;
    let input = NewAccount {
        name: body.name,
        kind,
        currency,
        opening_balance: body.opening_balance.map(|d| d.0),
        opening_date: Some(
            body.opening_date
                .map_or_else(|| super::ledger::today(&who), NaiveDate::from),
        ),
        number_hint: body.number_hint,
    };
    let reply = ask(&state, who.user_id(), CreateAccount { input, idempotency }).await??;
    Ok(respond(reply))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchAccountBody {
    #[serde(default, deserialize_with = "present")]
    version: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "present")]
    opening_balance: Option<DecimalString>,
    #[serde(default, deserialize_with = "present")]
    opening_date: Option<Day>,
    #[serde(default, deserialize_with = "nullable")]
    number_hint: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    archived: Option<bool>,
    /// Not changeable: listed so that trying gets a clear answer.
    currency: Option<String>,
}

async fn patch(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    req: HttpRequest,
    path: web::Path<String>,
    Json(body): Json<PatchAccountBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    if body.currency.is_some() {
        return Err(ApiError::validation(
            "currency",
            "cannot be changed; create a new account in the other currency and transfer",
        ));
    }
    let kind = body.kind.as_deref().map(AccountKind::parse).transpose();
    let kind = validate!(kind => "kind")?;
    let patch = AccountPatch {
        version: expected_version(&req, body.version)?,
        name: body.name,
        kind,
        opening_balance: body.opening_balance.map(|d| d.0),
        opening_date: body.opening_date.map(NaiveDate::from),
        number_hint: body.number_hint,
        archived: body.archived,
    };
    let reply = ask(&state, who.user_id(), UpdateAccount { id, patch }).await??;
    Ok(respond(reply))
}

#[derive(Deserialize)]
struct DeleteQuery {
    #[serde(default)]
    cascade: bool,
}

async fn delete(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    path: web::Path<String>,
    query: web::Query<DeleteQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let reply = ask(
        &state,
        who.user_id(),
        DeleteAccount {
            id,
            cascade: query.cascade,
        },
    )
    .await??;
    Ok(respond(reply))
}
