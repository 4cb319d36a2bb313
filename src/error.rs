//! The one error type every handler returns, and its mapping to `application/problem+json`
//! (RFC 9457). Unexpected failures keep their cause for the log and show the client only an id.
use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// One field-level validation failure.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("the request body stopped arriving")]
    BodyTimeout,
    #[error("payload too large (limit {limit} bytes)")]
    PayloadTooLarge { limit: usize },
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("too many requests")]
    TooManyRequests { retry_after: Duration },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(e.into())
    }

    fn slug(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad-request",
            ApiError::Validation(_) => "validation-error",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound => "not-found",
            ApiError::MethodNotAllowed => "method-not-allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::BodyTimeout => "request-timeout",
            ApiError::PayloadTooLarge { .. } => "payload-too-large",
            ApiError::UnsupportedMediaType(_) => "unsupported-media-type",
            ApiError::TooManyRequests { .. } => "rate-limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal-error",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "Bad request",
            ApiError::Validation(_) => "Invalid input",
            ApiError::Unauthorized(_) => "Unauthorized",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::NotFound => "Not found",
            ApiError::MethodNotAllowed => "Method not allowed",
            ApiError::Conflict(_) => "Conflict",
            ApiError::BodyTimeout => "Request timeout",
            ApiError::PayloadTooLarge { .. } => "Payload too large",
            ApiError::UnsupportedMediaType(_) => "Unsupported media type",
            ApiError::TooManyRequests { .. } => "Too many requests",
            ApiError::Unavailable(_) => "Service unavailable",
            ApiError::Internal(_) => "Internal server error",
        }
    }

    fn detail(&self) -> String {
        match self {
            ApiError::BadRequest(m) | ApiError::Conflict(m) | ApiError::Unavailable(m) => m.clone(),
            ApiError::Validation(errors) => match errors.as_slice() {
                [one] => format!("`{}` {}", one.field, one.message),
                _ => format!("{} fields are invalid", errors.len()),
            },
            ApiError::Unauthorized(m) | ApiError::Forbidden(m) => (*m).to_string(),
            ApiError::NotFound => "The resource does not exist.".into(),
            ApiError::MethodNotAllowed => "This method is not allowed on this resource.".into(),
            ApiError::BodyTimeout => {
                "The request body stopped arriving before it was complete.".into()
            }
            ApiError::PayloadTooLarge { limit } => {
                format!("The request body is larger than the limit of {limit} bytes.")
            }
            ApiError::UnsupportedMediaType(m) => m.clone(),
            ApiError::TooManyRequests { retry_after } => format!(
                "Too many requests; try again in {} seconds.",
                retry_after_secs(*retry_after)
            ),
            ApiError::Internal(_) => String::new(),
        }
    }
}

fn retry_after_secs(d: Duration) -> u64 {
    // Round up: a client that waits exactly this long must be let through.
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let mut detail = self.detail();
        if let ApiError::Internal(cause) = self {
            let reference = uuid::Uuid::now_v7();
            tracing::error!(error.reference = %reference, error = format!("{cause:#}"), "internal error");
            detail = format!("Something went wrong on our side; reference {reference}.");
        }
        let problem = Problem {
            kind: format!("urn:ledgerline:problem:{}", self.slug()),
            title: self.title(),
            status: status.as_u16(),
            detail,
            errors: match self {
                ApiError::Validation(errors) => Some(errors),
                _ => None,
            },
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut resp = HttpResponse::build(status);
        resp.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        match self {
            ApiError::TooManyRequests { retry_after } => {
                resp.insert_header((header::RETRY_AFTER, retry_after_secs(*retry_after)));
            }
            ApiError::Unauthorized(_) => {
                resp.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"ledgerline\""),
                ));
            }
            _ => {}
        }
        resp.body(body)
    }
}

/// Turn several `Result<T, String>` (one per field, from the domain parsers) into one tuple of
/// values, or one 422 listing every bad field:
/// `let (email, password) = validate!(email => "email", password => "password")?;`
#[macro_export]
macro_rules! validate {
    ($($value:ident => $field:expr),+ $(,)?) => {
        match ($($value,)+) {
            ($(Ok($value),)+) => Ok(($($value),+)),
            ($($value,)+) => {
                let mut errors = Vec::new();
                $(
                    if let Err(message) = $value {
                        errors.push($crate::error::FieldError::new($field, message));
                    }
                )+
                Err($crate::error::ApiError::Validation(errors))
            }
        }
    };
}
