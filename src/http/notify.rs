//! `/api/v1/notification-preferences` and `/api/v1/webhooks` (with each webhook's delivery log).
//! A webhook URL must be http(s); one that is, or resolves to, a loopback or private address is
//! refused unless the operator set `webhooks_allow_private` (the Notifier checks again, pinned to
//! the address it connects to, at every delivery).
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::budgets::{decode_cursor, encode_cursor, page_limit};
use super::extract::AuthUser;
use super::json::Json;
use super::ledger::{ask, expected_version, path_id, replayed, respond, with_etag, CreateBody};
use super::routes::at;
use crate::actors::ledger::notify::WebhookInput;
use crate::actors::ledger::{
    CreateWebhook, DeleteWebhook, GetPreferences, GetWebhook, ListWebhooks, PutPreferences,
    UpdateWebhook,
};
use crate::actors::notifier::webhook::resolve;
use crate::app::AppState;
use crate::domain::notify::{check_webhook_url, PreferencesInput};
use crate::error::ApiError;
use crate::store::utc;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        at("/notification-preferences")
            .get(get_preferences)
            .put(put_preferences),
    )
    .service(at("/webhooks").get(list).post(create))
    .service(at("/webhooks/{id}").get(get).patch(patch).delete(delete))
    .service(at("/webhooks/{id}/deliveries").get(deliveries));
}

async fn get_preferences(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
) -> Result<HttpResponse, ApiError> {
    let prefs = ask(&state, who.user_id(), GetPreferences).await?;
    Ok(HttpResponse::Ok().json(prefs))
}

async fn put_preferences(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    Json(input): Json<PreferencesInput>,
) -> Result<HttpResponse, ApiError> {
    let reply = ask(&state, who.user_id(), PutPreferences { input }).await??;
    Ok(respond(reply))
}

/// The URL's shape, then where it points: private targets only when the operator allows them.
/// A name that does not resolve now is accepted (DNS may be down); deliveries check again.
async fn check_url(state: &AppState, raw: &str) -> Result<String, ApiError> {
    let url = check_webhook_url(raw).map_err(|m| ApiError::validation("url", m))?;
    let allow = state.settings.webhooks_allow_private;
    let literal = url
        .host_str()
        .unwrap_or_default()
        .trim_matches(|c| c == '[' || c == ']')
        .parse::<std::net::IpAddr>()
        .is_ok();
    let known_local = matches!(url.host_str(), Some("localhost"))
        || url.host_str().is_some_and(|h| h.ends_with(".localhost"));
    match resolve(&url, allow).await {
        Ok(_) => {}
        Err(m) if m.starts_with("refused") => return Err(ApiError::validation("url", m)),
        Err(m) if literal || known_local => return Err(ApiError::validation("url", m)),
        Err(_) => {}
    }
    Ok(url.to_string())
}

async fn list(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
) -> Result<HttpResponse, ApiError> {
    let items = ask(&state, who.user_id(), ListWebhooks).await?;
    Ok(HttpResponse::Ok().json(json!({ "items": items, "next_cursor": null })))
}

async fn get(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let hook = ask(&state, who.user_id(), GetWebhook { id })
        .await?
        .ok_or(ApiError::NotFound)?;
    let version = hook.version;
    Ok(with_etag(HttpResponse::Ok().json(hook), version))
}

async fn create(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    CreateBody {
        mut body,
        idempotency,
    }: CreateBody<WebhookInput>,
) -> Result<HttpResponse, ApiError> {
    if let Some(replay) = replayed(&state, &who, &idempotency).await? {
        return Ok(replay);
    }
    if body.rotate_secret || body.version.is_some() {
        return Err(ApiError::validation(
            "rotate_secret",
            "rotate_secret and version apply to an existing webhook (PATCH)",
        ));
    }
    let raw = body
        .url
        .clone()
        .ok_or_else(|| ApiError::validation("url", "is required"))?;
    body.url = Some(check_url(&state, &raw).await?);
    let reply = ask(
        &state,
        who.user_id(),
        CreateWebhook {
            input: body,
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
    Json(mut body): Json<WebhookInput>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    body.version = expected_version(&req, body.version)?;
    if let Some(raw) = body.url.clone() {
        body.url = Some(check_url(&state, &raw).await?);
    }
    let reply = ask(&state, who.user_id(), UpdateWebhook { id, input: body }).await??;
    Ok(respond(reply))
}

async fn delete(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let reply = ask(&state, who.user_id(), DeleteWebhook { id }).await??;
    Ok(respond(reply))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    limit: Option<i64>,
    cursor: Option<String>,
}

/// `GET /webhooks/{id}/deliveries`: newest first — event, status, tries, the receiver's last
/// status code and the last error.
async fn deliveries(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    ask(&state, who.user_id(), GetWebhook { id })
        .await?
        .ok_or(ApiError::NotFound)?;
    let limit = page_limit(query.limit)?;
    let before = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let (uid, hook) = (who.user_id().to_string(), id.to_string());
    let mut rows = state
        .db
        .run(move |conn| {
            crate::store::notify::list_deliveries(conn, &uid, &hook, before, limit + 1)
        })
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
            let envelope = serde_json::from_str::<Value>(&r.payload).unwrap_or(Value::Null);
            json!({
                "id": r.id,
                "event_type": r.kind,
                "event_seq": envelope["seq"],
                "message_id": envelope["message_id"],
                "status": r.status,
                "attempts": r.attempts,
                "response_status": r.response_status,
                "last_error": r.last_error,
                "created_at": utc(r.created_at),
                "sent_at": r.sent_at.map(utc),
                "next_attempt_at": r.next_attempt_at.map(utc),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "items": items, "next_cursor": next_cursor })))
}
