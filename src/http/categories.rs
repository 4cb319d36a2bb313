//! `/api/v1/categories`: two levels, a default set for every new user.
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::extract::AuthUser;
use super::json::Json;
use super::ledger::{ask, expected_version, nullable, path_id, replayed, respond, CreateBody};
use super::routes::at;
use crate::actors::ledger::{
    CategoryPatch, CreateCategory, DeleteCategory, ListCategories, NewCategory, UpdateCategory,
};
use crate::app::AppState;
use crate::domain::ledger::CategoryKind;
use crate::error::ApiError;
use crate::validate;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(at("/categories").get(list).post(create))
        .service(at("/categories/{id}").patch(patch).delete(delete));
}

async fn list(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
) -> Result<HttpResponse, ApiError> {
    let items = ask(&state, who.user_id(), ListCategories).await?;
    Ok(HttpResponse::Ok().json(json!({ "items": items, "next_cursor": null })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCategoryBody {
    name: String,
    parent_id: Option<Uuid>,
    kind: Option<String>,
    color: Option<String>,
    icon: Option<String>,
}

async fn create(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    CreateBody { body, idempotency }: CreateBody<NewCategoryBody>,
) -> Result<HttpResponse, ApiError> {
    if let Some(replay) = replayed(&state, &who, &idempotency).await? {
        return Ok(replay);
    }
    let kind = body.kind.as_deref().map(CategoryKind::parse).transpose();
    let kind = validate!(kind => "kind")?;
    let input = NewCategory {
        name: body.name,
        parent_id: body.parent_id,
        kind,
        color: body.color,
        icon: body.icon,
    };
    let reply = ask(&state, who.user_id(), CreateCategory { input, idempotency }).await??;
    Ok(respond(reply))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchCategoryBody {
    version: Option<i64>,
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    parent_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "nullable")]
    color: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    icon: Option<Option<String>>,
}

async fn patch(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    req: HttpRequest,
    path: web::Path<String>,
    Json(body): Json<PatchCategoryBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let patch = CategoryPatch {
        version: expected_version(&req, body.version)?,
        name: body.name,
        parent_id: body.parent_id,
        color: body.color,
        icon: body.icon,
    };
    let reply = ask(&state, who.user_id(), UpdateCategory { id, patch }).await??;
    Ok(respond(reply))
}

async fn delete(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let reply = ask(&state, who.user_id(), DeleteCategory { id }).await??;
    Ok(respond(reply))
}
