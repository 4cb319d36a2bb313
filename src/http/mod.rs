//! The HTTP edge: parses requests into domain types, calls the identity service or an actor, and
//! turns answers and errors into JSON and problem+json. One module per resource, each with a
//! `configure` that registers its routes.
pub mod accounts;
pub mod admin;
pub mod auth;
pub mod budgets;
pub mod categories;
pub mod extract;
pub mod health;
pub mod imports;
pub mod ingest;
pub mod json;
pub mod ledger;
pub mod me;
pub mod notify;
pub mod plans;
pub mod rates;
pub mod reports;
pub mod routes;
pub mod rules;
pub mod telemetry;
pub mod transactions;
pub mod ws;

use actix_web::web;

use crate::error::ApiError;

/// All routes of the server.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PathConfig::default().error_handler(|err, _| {
        ApiError::BadRequest(format!("Invalid path parameter: {err}")).into()
    }))
    .app_data(web::QueryConfig::default().error_handler(|err, _| {
        ApiError::BadRequest(format!("Invalid query string: {err}")).into()
    }))
    .configure(health::configure)
    .service(
        web::scope("/api/v1")
            .configure(auth::configure)
            .configure(me::configure)
            .configure(admin::configure)
            .configure(accounts::configure)
            .configure(categories::configure)
            .configure(transactions::configure)
            .configure(rates::configure)
            .configure(reports::configure)
            .configure(imports::configure)
            .configure(ws::configure)
            .configure(budgets::configure)
            .configure(plans::configure)
            .configure(rules::configure)
            .configure(ingest::configure)
            .configure(notify::configure)
            .default_service(web::to(not_found)),
    )
    .default_service(web::to(not_found));
}

async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}
