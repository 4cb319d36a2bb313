//! `/api/v1/auth`: register, login, refresh, logout, password reset by emailed code.
use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::extract::{AuthUser, Client};
use super::json::Json;
use super::routes::at;
use crate::app::AppState;
use crate::domain::{Currency, DisplayName, Email, Locale, Password, Role, TimeZone};
use crate::error::ApiError;
use crate::identity::{LoginRequest, NewAccount};
use crate::validate;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/auth")
            .service(at("/register").post(register))
            .service(at("/login").post(login))
            .service(at("/refresh").post(refresh))
            .service(at("/logout").post(logout))
            .service(at("/password-reset").post(request_reset))
            .service(at("/password-reset/confirm").post(confirm_reset)),
    );
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    email: String,
    password: String,
    name: Option<String>,
    base_currency: Option<String>,
    timezone: Option<String>,
    locale: Option<String>,
}

async fn register(
    state: web::Data<AppState>,
    Client(client): Client,
    Json(body): Json<RegisterBody>,
) -> Result<HttpResponse, ApiError> {
    let email = Email::parse(&body.email);
    let password = Password::parse(&body.password);
    let name = DisplayName::parse(body.name.as_deref().unwrap_or_default());
    let base_currency = Currency::parse(body.base_currency.as_deref().unwrap_or("USD"));
    let timezone = TimeZone::parse(body.timezone.as_deref().unwrap_or("UTC"));
    let locale = Locale::parse(body.locale.as_deref().unwrap_or("en"));
    let (email, password, name, base_currency, timezone, locale) = validate!(
        email => "email",
        password => "password",
        name => "name",
        base_currency => "base_currency",
        timezone => "timezone",
        locale => "locale",
    )?;
    let account = NewAccount {
        email,
        password,
        name,
        base_currency,
        timezone,
        locale,
        role: Role::User,
    };
    let pair = state.identity.register(account, &client).await?;
    Ok(HttpResponse::Created().json(pair))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    email: String,
    password: String,
}

async fn login(
    state: web::Data<AppState>,
    Client(client): Client,
    Json(body): Json<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let pair = state
        .identity
        .login(
            LoginRequest {
                email: body.email,
                password: body.password,
            },
            &client,
        )
        .await?;
    Ok(HttpResponse::Ok().json(pair))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

async fn refresh(
    state: web::Data<AppState>,
    Client(client): Client,
    Json(body): Json<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    let pair = state.identity.refresh(&body.refresh_token, &client).await?;
    Ok(HttpResponse::Ok().json(pair))
}

#[derive(Deserialize)]
struct LogoutQuery {
    /// End every session of the user, not only this one.
    #[serde(default)]
    everywhere: bool,
}

async fn logout(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    query: web::Query<LogoutQuery>,
) -> Result<HttpResponse, ApiError> {
    state.identity.logout(&who, query.everywhere).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetRequestBody {
    email: String,
}

/// `POST /auth/password-reset` → 202 whether or not an account has this address.
async fn request_reset(
    state: web::Data<AppState>,
    Client(client): Client,
    Json(body): Json<ResetRequestBody>,
) -> Result<HttpResponse, ApiError> {
    let email = Email::parse(&body.email);
    let email = validate!(email => "email")?;
    state
        .identity
        .request_password_reset(email.as_str(), &client)
        .await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({
        "status": "accepted",
        "detail": "If an account uses this address, a reset code is on its way to it.",
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetConfirmBody {
    token: String,
    new_password: String,
}

/// `POST /auth/password-reset/confirm` {token, new_password} → 204; every session ends.
async fn confirm_reset(
    state: web::Data<AppState>,
    Client(client): Client,
    Json(body): Json<ResetConfirmBody>,
) -> Result<HttpResponse, ApiError> {
    let password = Password::parse(&body.new_password);
    let password = validate!(password => "new_password")?;
    if body.token.trim().is_empty() || body.token.len() > 256 {
        return Err(ApiError::validation(
            "token",
            "is invalid, already used or expired",
        ));
    }
    state
        .identity
        .confirm_password_reset(&body.token, password, &client)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
