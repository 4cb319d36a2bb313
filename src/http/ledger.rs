//! Plumbing shared by the ledger resources: asking a user's Ledger, turning its replies into
//! responses, `Idempotency-Key` and `If-Match` handling, JSON bodies that keep their bytes, and
//! "today" in the user's time zone.
use actix::{Handler, MailboxError, Message};
use actix_web::dev::Payload;
use actix_web::http::header::{HeaderValue, CONTENT_TYPE, ETAG, IF_MATCH};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::json;
use crate::actors::directory::ask_ledger_here;
use crate::actors::ledger::{IdempotencyKey, Ledger, Reply};
use crate::app::AppState;
use crate::error::ApiError;
use crate::identity::Principal;
use crate::store::ledger as q;

/// Send a message to the user's Ledger (see [`ask_ledger_here`]), mapping mailbox failures to 503.
pub async fn ask<M>(state: &AppState, user_id: Uuid, msg: M) -> Result<M::Result, ApiError>
where
    M: Message + Send + Clone + 'static,
    M::Result: Send + 'static,
    Ledger: Handler<M>,
{
    let unavailable = |e: MailboxError| match e {
        MailboxError::Timeout => {
            ApiError::Unavailable("The ledger did not answer in time; try again.".into())
        }
        MailboxError::Closed => {
            ApiError::Unavailable("The ledger is restarting; try again.".into())
        }
    };
    // A running Ledger directly; one that stopped meanwhile did not take the message.
    if let Some(ledger) = state.ledgers.get(user_id) {
        match ledger.send(msg.clone()).await {
            Ok(answer) => return Ok(answer),
            Err(MailboxError::Closed) => {}
            Err(e) => return Err(unavailable(e)),
        }
    }
    ask_ledger_here(state.identity.directory(), user_id, msg)
        .await
        .map_err(unavailable)
}

/// A Ledger reply as an HTTP response.
pub fn respond(reply: Reply) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(reply.status)
        .unwrap_or(actix_web::http::StatusCode::OK);
    if reply.body.is_empty() {
        return HttpResponse::build(status).finish();
    }
    HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, HeaderValue::from_static("application/json")))
        .body(reply.body)
}

/// A JSON body that also keeps its bytes (for the idempotency fingerprint), and the
/// `Idempotency-Key` header if one was sent.
pub struct CreateBody<T> {
    pub body: T,
    pub idempotency: Option<IdempotencyKey>,
}

/// The `Idempotency-Key` header of a creating POST, with a fingerprint of the request (method,
/// path and query, body) to tell a replay from a different request under the same key.
pub fn idempotency_key(
    req: &HttpRequest,
    bytes: &[u8],
) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| (0x21..0x7f).contains(&b)))
        .ok_or_else(|| {
            ApiError::validation(
                "Idempotency-Key",
                "must be 1 to 255 printable ASCII characters",
            )
        })?;
    let mut hasher = Sha256::new();
    hasher.update(req.method().as_str().as_bytes());
    hasher.update(b" ");
    hasher.update(
        req.uri()
            .path_and_query()
            .map_or(req.path(), |p| p.as_str())
            .as_bytes(),
    );
    hasher.update(b"\n");
    hasher.update(bytes);
    let fingerprint = hex::encode(hasher.finalize());
    Ok(Some(IdempotencyKey {
        key: key.to_string(),
        fingerprint,
    }))
}

impl<T: DeserializeOwned + 'static> FromRequest for CreateBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let bytes = json::body_bytes(&req, payload);
        Box::pin(async move {
            let bytes = bytes.await?;
            let idempotency = idempotency_key(&req, &bytes)?;
            let body = json::parse(&bytes)?;
            Ok(CreateBody { body, idempotency })
        })
    }
}

/// The stored answer for an `Idempotency-Key` this user already used, if any: replayed for the
/// same request, a 422 for a different one.
pub async fn replayed(
    state: &AppState,
    who: &Principal,
    key: &Option<IdempotencyKey>,
) -> Result<Option<HttpResponse>, ApiError> {
    let Some(key) = key.clone() else {
        return Ok(None);
    };
    let uid = who.user_id().to_string();
    let lookup = key.key.clone();
    let stored = state
        .db
        .run(move |conn| q::find_idempotency(conn, &uid, &lookup))
        .await?;
    match stored {
        None => Ok(None),
        Some(row) if row.fingerprint == key.fingerprint => {
            let mut response = respond(Reply {
                status: u16::try_from(row.status).unwrap_or(200),
                body: row.response,
            });
            response.headers_mut().insert(
                "idempotent-replayed".parse().map_err(ApiError::internal)?,
                HeaderValue::from_static("true"),
            );
            Ok(Some(response))
        }
        Some(_) => Err(ApiError::validation(
            "Idempotency-Key",
            "was already used with a different request body; use a new key for a new request",
        )),
    }
}

/// The version a PATCH expects: `version` in the body, or `If-Match: "N"`.
pub fn expected_version(
    req: &HttpRequest,
    body_version: Option<i64>,
) -> Result<Option<i64>, ApiError> {
    if body_version.is_some() {
        return Ok(body_version);
    }
    let Some(value) = req.headers().get(IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    text.parse()
        .map(Some)
        .map_err(|_| ApiError::validation("If-Match", "must be the resource's version, e.g. \"3\""))
}

/// Add an `ETag` carrying the resource version.
pub fn with_etag(mut response: HttpResponse, version: i64) -> HttpResponse {
    if let Ok(v) = HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(ETAG, v);
    }
    response
}

/// Today in the user's time zone: the default booking date.
pub fn today(who: &Principal) -> NaiveDate {
    let now = chrono::Utc::now();
    match who.user.timezone.parse::<chrono_tz::Tz>() {
        Ok(tz) => now.with_timezone(&tz).date_naive(),
        Err(_) => now.date_naive(),
    }
}

/// An id from the path; anything that is not a UUID names nothing, so it is a 404.
pub fn path_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound)
}

/// For PATCH bodies: absent → `None`, `null` → `Some(None)`, a value → `Some(Some(v))`.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// For PATCH fields that cannot be cleared: absent → `None`, a value → `Some(v)`, and `null` is
/// refused (a 422 naming the field) instead of being read as "unchanged".
pub fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    match Option::<T>::deserialize(d)? {
        Some(v) => Ok(Some(v)),
        None => Err(serde::de::Error::custom(
            "must not be null: leave the field out to keep its value",
        )),
    }
}

/// Shared state from a request (for extractors).
pub fn state_of(req: &HttpRequest) -> Option<web::Data<AppState>> {
    req.app_data::<web::Data<AppState>>().cloned()
}
