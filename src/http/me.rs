//! `/api/v1/me`: the signed-in user's profile, password and sessions.
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use uuid::Uuid;

use super::extract::AuthUser;
use super::json::Json;
use super::routes::at;
use crate::app::AppState;
use crate::domain::{Currency, DisplayName, Email, Locale, Password, TimeZone};
use crate::error::ApiError;
use crate::identity::ProfileUpdate;
use crate::validate;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(at("/me").get(get_me).patch(patch_me).delete(delete_me))
        .service(at("/me/password").post(change_password))
        .service(at("/me/sessions").get(list_sessions))
        .service(at("/me/sessions/{id}").delete(revoke_session));
}

async fn get_me(AuthUser(who): AuthUser) -> HttpResponse {
    HttpResponse::Ok().json(who.user.as_ref())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchMe {
    email: Option<String>,
    current_password: Option<String>,
    name: Option<String>,
    base_currency: Option<String>,
    timezone: Option<String>,
    locale: Option<String>,
}

/// Parse an optional field: absent stays absent, present must be valid.
fn optional<T>(
    raw: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Option<T>, String> {
    raw.map(parse).transpose()
}

async fn patch_me(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    Json(body): Json<PatchMe>,
) -> Result<HttpResponse, ApiError> {
    let email = optional(body.email.as_deref(), Email::parse);
    let name = optional(body.name.as_deref(), DisplayName::parse);
    let base_currency = optional(body.base_currency.as_deref(), Currency::parse);
    let timezone = optional(body.timezone.as_deref(), TimeZone::parse);
    let locale = optional(body.locale.as_deref(), Locale::parse);
    let (email, name, base_currency, timezone, locale) = validate!(
        email => "email",
        name => "name",
        base_currency => "base_currency",
        timezone => "timezone",
        locale => "locale",
    )?;
    let update = ProfileUpdate {
        email,
        current_password: body.current_password,
        name,
        base_currency,
        timezone,
        locale,
    };
    let user = state.identity.update_profile(&who, update).await?;
    Ok(HttpResponse::Ok().json(user))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteMe {
    /// Also accepted as `current_password`, its name in `POST /me/password`.
    #[serde(alias = "current_password")]
    password: String,
}

async fn delete_me(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    Json(body): Json<DeleteMe>,
) -> Result<HttpResponse, ApiError> {
    state.identity.delete_account(&who, &body.password).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangePassword {
    current_password: String,
    new_password: String,
}

async fn change_password(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    Json(body): Json<ChangePassword>,
) -> Result<HttpResponse, ApiError> {
    let new_password = Password::parse(&body.new_password);
    let new_password = validate!(new_password => "new_password")?;
    let token = state
        .identity
        .change_password(&who, &body.current_password, new_password)
        .await?;
    Ok(HttpResponse::Ok().json(token))
}

async fn list_sessions(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
) -> Result<HttpResponse, ApiError> {
    let items = state.identity.list_sessions(&who).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items, "next_cursor": null })))
}

async fn revoke_session(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    // A malformed id names no session of this user: the same 404 as a foreign or unknown one.
    let id: Uuid = path.parse().map_err(|_| ApiError::NotFound)?;
    state.identity.revoke_session(&who, id).await?;
    Ok(HttpResponse::NoContent().finish())
}
