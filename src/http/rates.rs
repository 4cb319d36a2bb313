//! `/api/v1/exchange-rates`: the user's rates, used to convert reports to the base currency.
use crate::domain::day::Day;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::extract::AuthUser;
use super::json::Json;
use super::ledger::{ask, respond};
use super::routes::at;
use crate::actors::ledger::{rate_json, ListRates, PutRates, RateInput};
use crate::app::AppState;
use crate::domain::ledger::Rate;
use crate::domain::{Currency, DecimalString};
use crate::error::{ApiError, FieldError};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(at("/exchange-rates").get(list).put(put));
}

async fn list(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
) -> Result<HttpResponse, ApiError> {
    let rates = ask(&state, who.user_id(), ListRates).await?;
    let items: Vec<_> = rates.iter().map(rate_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "items": items, "next_cursor": null })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateBody {
    base: String,
    quote: String,
    date: Day,
    /// 1 base = rate quote, as an exact decimal string.
    rate: DecimalString,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    rates: Vec<RateBody>,
}

async fn put(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    Json(body): Json<PutBody>,
) -> Result<HttpResponse, ApiError> {
    if body.rates.is_empty() || body.rates.len() > 10_000 {
        return Err(ApiError::validation("rates", "must list 1 to 10000 rates"));
    }
    let mut errors = Vec::new();
    let mut rates = Vec::with_capacity(body.rates.len());
    for (i, r) in body.rates.iter().enumerate() {
        let base = Currency::parse(&r.base)
            .map_err(|m| errors.push(FieldError::new(format!("rates[{i}].base"), m)));
        let quote = Currency::parse(&r.quote)
            .map_err(|m| errors.push(FieldError::new(format!("rates[{i}].quote"), m)));
        let rate = Rate::parse(&r.rate.0)
            .map_err(|m| errors.push(FieldError::new(format!("rates[{i}].rate"), m)));
        if let (Ok(base), Ok(quote), Ok(rate)) = (base, quote, rate) {
            rates.push(RateInput {
                base,
                quote,
                date: r.date.into(),
                rate,
            });
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let reply = ask(&state, who.user_id(), PutRates { rates }).await??;
    Ok(respond(reply))
}
