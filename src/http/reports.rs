//! `/api/v1/reports`: summary and cash flow in the user's base currency, served from the Ledger's
//! in-memory aggregates.
use actix_web::{web, HttpResponse};
use chrono::{Datelike, Months, NaiveDate};
use serde::Deserialize;

use super::extract::AuthUser;
use super::ledger::{ask, today};
use super::routes::at;
use crate::actors::ledger::reports::{period_count, Interval, MAX_PERIODS};
use crate::actors::ledger::{GetCashflow, GetSummary};
use crate::app::AppState;
use crate::domain::day::Day;
use crate::domain::Currency;
use crate::error::{ApiError, FieldError};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(at("/reports/summary").get(summary))
        .service(at("/reports/cashflow").get(cashflow));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeQuery {
    from: Option<String>,
    to: Option<String>,
    interval: Option<String>,
}

/// Parse `from`/`to`; missing ends default to `default_from`..today.
fn range(
    q: &RangeQuery,
    today: NaiveDate,
    default_from: NaiveDate,
) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let mut errors = Vec::new();
    let mut parse = |raw: &Option<String>, field: &str, default: NaiveDate| match raw.as_deref() {
        None => default,
        Some(s) => Day::parse(s).map(NaiveDate::from).unwrap_or_else(|m| {
            errors.push(FieldError::new(field, m));
            default
        }),
    };
    let from = parse(&q.from, "from", default_from);
    let to = parse(&q.to, "to", today);
    if errors.is_empty() && from > to {
        errors.push(match q.from {
            Some(_) => FieldError::new("from", "must not be after `to`"),
            None => FieldError::new(
                "to",
                format!("is before {from}, where the range starts when `from` is not given; give `from` too"),
            ),
        });
    }
    if errors.is_empty() {
        Ok((from, to))
    } else {
        Err(ApiError::Validation(errors))
    }
}

fn base_currency(code: &str) -> Result<Currency, ApiError> {
    Currency::parse(code).map_err(|m| ApiError::internal(anyhow::anyhow!(m)))
}

async fn summary(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    query: web::Query<RangeQuery>,
) -> Result<HttpResponse, ApiError> {
    let today = today(&who);
    let month_start = today.with_day(1).unwrap_or(today);
    let (from, to) = range(&query, today, month_start)?;
    let base = base_currency(&who.user.base_currency)?;
    let summary = ask(&state, who.user_id(), GetSummary { from, to, base }).await?;
    Ok(HttpResponse::Ok().json(summary))
}

async fn cashflow(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    query: web::Query<RangeQuery>,
) -> Result<HttpResponse, ApiError> {
    let today = today(&who);
    let year_ago = today
        .with_day(1)
        .and_then(|d| d.checked_sub_months(Months::new(11)))
        .unwrap_or(today);
    let (from, to) = range(&query, today, year_ago)?;
    let interval = match query.interval.as_deref() {
        None | Some("month") => Interval::Month,
        Some("week") => Interval::Week,
        Some(_) => return Err(ApiError::validation("interval", "must be week or month")),
    };
    let periods = period_count(from, to, interval);
    if periods > MAX_PERIODS {
        return Err(ApiError::validation(
            "from",
            format!(
                "the range holds {periods} {}s; a cash-flow report takes at most {MAX_PERIODS}: ask for a shorter range or a longer interval",
                if interval == Interval::Week { "week" } else { "month" }
            ),
        ));
    }
    let base = base_currency(&who.user.base_currency)?;
    let cashflow = ask(
        &state,
        who.user_id(),
        GetCashflow {
            from,
            to,
            interval,
            base,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(cashflow))
}
