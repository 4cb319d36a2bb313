//! `GET /api/v1/ws` (the live stream) and `POST /api/v1/ws/ticket` (a one-time, 30-second ticket
//! for browsers, which cannot set an Authorization header on a WebSocket).
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::http::header::{HOST, ORIGIN};
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde::Deserialize;
use serde_json::json;

use super::extract::{admit, authenticate, bearer, claims_of, AuthUser};
use super::routes::at;
use crate::actors::directory::Authenticate;
use crate::actors::ws_session::{WsLimits, WsSession};
use crate::app::AppState;
use crate::error::ApiError;

pub const TICKET_TTL: Duration = Duration::from_secs(30);

/// One-time WebSocket tickets: random, 30 s, consumed on use. A ticket holds the claims of the
/// token it was issued for, checked again when it is redeemed: a sign-out or a new password in
/// between voids it.
#[derive(Default)]
pub struct Tickets {
    inner: Mutex<HashMap<String, (Authenticate, Instant)>>,
}

impl Tickets {
    pub fn issue(&self, who: Authenticate) -> String {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let ticket = URL_SAFE_NO_PAD.encode(bytes);
        if let Ok(mut map) = self.inner.lock() {
            let now = Instant::now();
            map.retain(|_, (_, at)| now.duration_since(*at) < TICKET_TTL);
            map.insert(ticket.clone(), (who, now));
        }
        ticket
    }

    pub fn redeem(&self, ticket: &str) -> Option<Authenticate> {
        let mut map = self.inner.lock().ok()?;
        let (who, at) = map.remove(ticket)?;
        (at.elapsed() < TICKET_TTL).then_some(who)
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(at("/ws").get(connect))
        .service(at("/ws/ticket").post(ticket));
}

async fn ticket(
    state: web::Data<AppState>,
    req: HttpRequest,
    AuthUser(_): AuthUser,
) -> Result<HttpResponse, ApiError> {
    let token = bearer(&req).ok_or(ApiError::Unauthorized(
        "Send the access token as a bearer token.",
    ))?;
    let ticket = state.tickets.issue(claims_of(&state, &token)?);
    Ok(HttpResponse::Created()
        .json(json!({ "ticket": ticket, "expires_in": TICKET_TTL.as_secs() })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectQuery {
    since: Option<i64>,
    ticket: Option<String>,
}

/// Browsers send an Origin: it must be this server's own or one configured; native clients send
/// none and are let through (they authenticate with a token like any API client).
fn origin_allowed(req: &HttpRequest, allowed: &[String]) -> bool {
    let Some(origin) = req.headers().get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let origin = origin.trim_end_matches('/');
    if allowed.iter().any(|a| a.trim_end_matches('/') == origin) {
        return true;
    }
    let host = req
        .headers()
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| !host.is_empty() && rest == host)
}

async fn connect(
    state: web::Data<AppState>,
    req: HttpRequest,
    stream: web::Payload,
    query: web::Query<ConnectQuery>,
) -> Result<HttpResponse, ApiError> {
    if !origin_allowed(&req, &state.settings.ws_allowed_origins) {
        return Err(ApiError::Forbidden(
            "This origin may not open a WebSocket here.",
        ));
    }
    let who = match (&query.ticket, bearer(&req)) {
        (Some(ticket), _) => {
            let claims = state.tickets.redeem(ticket).ok_or(ApiError::Unauthorized(
                "The ticket is unknown, used or expired.",
            ))?;
            admit(&state, claims).await?
        }
        (None, Some(token)) => authenticate(&state, &token).await?,
        (None, None) => {
            return Err(ApiError::Unauthorized(
                "Send a bearer token, or a ticket from POST /api/v1/ws/ticket as ?ticket=.",
            ))
        }
    };
    if query.since.is_some_and(|s| s < 0) {
        return Err(ApiError::validation(
            "since",
            "must be a seq you received, 0 or more",
        ));
    }
    let session = WsSession::new(
        who.user_id(),
        who.session_id,
        query.since,
        state.hub.clone(),
        state.identity.directory().clone(),
        state.db.clone(),
        WsLimits {
            queue: state.settings.ws_queue,
            heartbeat: state.settings.ws_heartbeat,
            client_timeout: state.settings.ws_client_timeout,
        },
    );
    ws::WsResponseBuilder::new(session, &req, stream)
        .start()
        .map_err(|e| ApiError::BadRequest(format!("Not a WebSocket upgrade: {e}")))
}
