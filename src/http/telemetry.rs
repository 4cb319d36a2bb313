//! Per-request context: a request id (taken from a well-formed `X-Request-Id` or generated) in a
//! tracing span around the whole request, so every log line of the request carries it; the id in
//! the response header; one log line per completed request; and any error answer that does not
//! already have a problem+json body (actix's own 404/405/400s) given one.
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError};
use tracing::Instrument;

use crate::error::{ApiError, PROBLEM_JSON};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request, readable from request extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn incoming_id(req: &ServiceRequest) -> Option<String> {
    let v = req.headers().get(&REQUEST_ID)?.to_str().ok()?;
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
    ok.then(|| v.to_string())
}

fn is_problem(res: &ServiceResponse<impl MessageBody>) -> bool {
    res.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_JSON))
}

/// A problem+json answer for an error status produced outside our handlers.
fn problem_for(status: StatusCode) -> Option<ApiError> {
    Some(match status {
        StatusCode::NOT_FOUND => ApiError::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge { limit: 0 },
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ApiError::UnsupportedMediaType("This content type is not accepted here.".into())
        }
        s if s.is_client_error() => ApiError::BadRequest(
            s.canonical_reason()
                .unwrap_or("The request was not understood.")
                .to_string(),
        ),
        s if s.is_server_error() => ApiError::Unavailable("The server could not answer.".into()),
        _ => return None,
    })
}

pub async fn request_context(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = incoming_id(&req).unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.path()
    );
    // HEAD is GET without the body: the handler runs as for GET, and the HTTP/1 codec, which
    // saw the request's real method, sends the headers only.
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    let started = Instant::now();
    let res = next.call(req).instrument(span.clone()).await?;
    let mut res = if res.status().is_client_error() || res.status().is_server_error() {
        match (is_problem(&res), problem_for(res.status())) {
            (false, Some(problem)) => {
                let (req, _) = res.into_parts();
                ServiceResponse::new(req, problem.error_response())
            }
            _ => res.map_into_boxed_body(),
        }
    } else {
        res.map_into_boxed_body()
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    let _entered = span.enter();
    tracing::info!(
        status = res.status().as_u16(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request completed"
    );
    Ok(res)
}
