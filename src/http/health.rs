//! Liveness (`/healthz`), readiness (`/readyz`) and the landing page (`/`).
use actix_web::{web, HttpResponse};
use askama::Template;
use serde_json::json;

use super::routes::at;
use crate::app::AppState;
use crate::error::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(at("/").get(index))
        .service(at("/healthz").get(healthz))
        .service(at("/readyz").get(readyz));
}

/// The process is up and answering.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// The database answers and every migration is applied.
async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state
        .db
        .ready()
        .await
        .map_err(|e| ApiError::Unavailable(format!("The database is not ready: {e}")))?;
    Ok(HttpResponse::Ok().json(json!({
        "status": "ready",
        "database": state.db.backend().name(),
        "migrations": "applied",
    })))
}

#[derive(Template)]
#[template(path = "index.html")]
struct Index<'a> {
    version: &'a str,
    backend: &'a str,
    uptime_secs: u64,
}

async fn index(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let page = Index {
        version: env!("CARGO_PKG_VERSION"),
        backend: state.db.backend().name(),
        uptime_secs: state.started_at.elapsed().as_secs(),
    }
    .render()
    .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page))
}
