//! `/api/v1/admin`: user administration for the admin role.
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use uuid::Uuid;

use super::extract::AdminUser;
use super::json::Json;
use super::routes::at;
use crate::app::AppState;
use crate::domain::Role;
use crate::error::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(at("/admin/users").get(list_users))
        .service(at("/admin/users/{id}").patch(patch_user));
}

#[derive(Deserialize)]
struct Page {
    limit: Option<i64>,
    offset: Option<i64>,
}

async fn list_users(
    state: web::Data<AppState>,
    _admin: AdminUser,
    page: web::Query<Page>,
) -> Result<HttpResponse, ApiError> {
    let limit = page.limit.unwrap_or(50);
    let offset = page.offset.unwrap_or(0);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::validation("limit", "must be between 1 and 500"));
    }
    if offset < 0 {
        return Err(ApiError::validation("offset", "must not be negative"));
    }
    let (items, total) = state.identity.list_users(limit, offset).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items, "total": total })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchUser {
    disabled: Option<bool>,
    role: Option<Role>,
}

async fn patch_user(
    state: web::Data<AppState>,
    AdminUser(admin): AdminUser,
    path: web::Path<String>,
    Json(body): Json<PatchUser>,
) -> Result<HttpResponse, ApiError> {
    let id: Uuid = path.parse().map_err(|_| ApiError::NotFound)?;
    if id == admin.user_id() && (body.disabled == Some(true) || body.role == Some(Role::User)) {
        return Err(ApiError::Conflict(
            "Admins cannot disable or demote themselves; ask another admin.".into(),
        ));
    }
    let user = state
        .identity
        .admin_update_user(id, body.disabled, body.role)
        .await?;
    Ok(HttpResponse::Ok().json(user))
}
