//! A JSON body extractor with the error answers the API promises: 415 for another content type,
//! 413 past the size limit, 400 for malformed JSON, 422 naming the field for wrong types, missing
//! or unknown fields.
use actix_web::dev::Payload;
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::error::{ApiError, FieldError};

const DEFAULT_LIMIT: usize = 1024 * 1024;

/// A request body parsed from JSON.
pub struct Json<T>(pub T);

fn is_json(req: &HttpRequest) -> bool {
    match req.mime_type() {
        Ok(Some(mime)) => {
            mime.type_() == mime::APPLICATION
                && (mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON))
        }
        _ => false,
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let bytes = body_bytes(req, payload);
        Box::pin(async move { parse(&bytes.await?).map(Json) })
    }
}

/// The next chunk of a request body; a 408 when nothing arrives for the configured
/// `body_idle_timeout` (a client that stops half way must not hold its connection for ever),
/// a 400 when the body cannot be read.
pub async fn next_body_chunk(
    payload: &mut Payload,
    idle: std::time::Duration,
) -> Result<Option<web::Bytes>, ApiError> {
    match actix_web::rt::time::timeout(idle, payload.next()).await {
        Err(_) => Err(ApiError::BodyTimeout),
        Ok(None) => Ok(None),
        Ok(Some(chunk)) => chunk
            .map(Some)
            .map_err(|e| ApiError::BadRequest(format!("The request body could not be read: {e}"))),
    }
}

/// The configured `body_idle_timeout`.
pub fn body_idle_timeout(req: &HttpRequest) -> std::time::Duration {
    req.app_data::<web::Data<AppState>>()
        .map_or(std::time::Duration::from_secs(30), |s| {
            s.settings.body_idle_timeout
        })
}

/// Read a JSON request body: content type checked (415), size limited (413).
pub fn body_bytes(
    req: &HttpRequest,
    payload: &mut Payload,
) -> LocalBoxFuture<'static, Result<web::Bytes, ApiError>> {
    let limit = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.settings.max_body_bytes)
        .unwrap_or(DEFAULT_LIMIT);
    let json = is_json(req);
    let declared: Option<usize> = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let idle = body_idle_timeout(req);
    let mut payload = payload.take();
    Box::pin(async move {
        if !json {
            return Err(ApiError::UnsupportedMediaType(
                "Send the request body as JSON with `Content-Type: application/json`.".into(),
            ));
        }
        if declared.is_some_and(|n| n > limit) {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        let mut body = web::BytesMut::new();
        while let Some(chunk) = next_body_chunk(&mut payload, idle).await? {
            if body.len() + chunk.len() > limit {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    })
}

/// Deserialize a JSON document, mapping serde's errors to the API's.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => field_error(&path, &inner),
            _ => ApiError::BadRequest(format!("The request body is not valid JSON: {inner}")),
        }
    })?;
    de.end()
        .map_err(|e| ApiError::BadRequest(format!("The request body is not valid JSON: {e}")))?;
    Ok(value)
}

/// serde reports missing and unknown fields at the parent's path; name the field itself.
fn field_error(path: &str, err: &serde_json::Error) -> ApiError {
    let text = err.to_string();
    let message = text.split(" at line ").next().unwrap_or(&text).to_string();
    let named = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_string)
    };
    let join = |name: String| {
        if path == "." || path.is_empty() {
            name
        } else {
            format!("{path}.{name}")
        }
    };
    let (field, message) = if let Some(name) = named("missing field `") {
        (join(name), "is required".to_string())
    } else if let Some(name) = named("unknown field `") {
        let expected = message
            .split_once(", expected")
            .map(|(_, e)| e.trim())
            .unwrap_or("");
        // serde_path_to_error already records the unknown key in the path.
        let field = if path == name || path.ends_with(&format!(".{name}")) {
            path.to_string()
        } else {
            join(name)
        };
        (field, format!("is not a known field (expected {expected})"))
    } else {
        let field = if path == "." {
            "body".to_string()
        } else {
            path.to_string()
        };
        (field, message)
    };
    ApiError::Validation(vec![FieldError::new(field, message)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        email: String,
        age: Option<u32>,
    }

    fn fields(e: ApiError) -> Vec<FieldError> {
        match e {
            ApiError::Validation(f) => f,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn names_the_bad_field() {
        let f = fields(parse::<Body>(br#"{"email": 5}"#).unwrap_err());
        assert_eq!(f[0].field, "email");
        let f = fields(parse::<Body>(br#"{"age": 1}"#).unwrap_err());
        assert_eq!(
            (f[0].field.as_str(), f[0].message.as_str()),
            ("email", "is required")
        );
        let f = fields(parse::<Body>(br#"{"email": "a", "agee": 1}"#).unwrap_err());
        assert_eq!(f[0].field, "agee");
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        assert!(matches!(
            parse::<Body>(b"{\"email\": "),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse::<Body>(b"{\"email\": \"a\"} trailing"),
            Err(ApiError::BadRequest(_))
        ));
    }
}
