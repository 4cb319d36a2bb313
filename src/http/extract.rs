//! Extractors that make handlers unable to forget a check: [`AuthUser`] (a valid access token of
//! a live session of an enabled user), [`AdminUser`] (the same, with the admin role), and
//! [`Client`] (the caller's IP and user agent, honouring only trusted proxies).
use std::net::IpAddr;

use actix_web::dev::Payload;
use actix_web::http::header::{AUTHORIZATION, USER_AGENT};
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::{ready, LocalBoxFuture, Ready};
use uuid::Uuid;

use crate::actors::directory::{Authenticate, Rejection};
use crate::app::AppState;
use crate::error::ApiError;
use crate::identity::{service::ClientInfo, Principal};

const BAD_TOKEN: &str = "The access token is missing, invalid, expired or revoked.";

fn state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("application state is not registered")))
}

/// The bearer token of the `Authorization` header, if any.
pub fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// Check an access token and ask the Directory whether its user and session are still good.
pub async fn authenticate(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    admit(state, claims_of(state, token)?).await
}

/// What a signed access token says: whose, which sign-in session, which security stamp.
pub fn claims_of(state: &AppState, token: &str) -> Result<Authenticate, ApiError> {
    let claims = state
        .identity
        .tokens()
        .verify_access(token)
        .map_err(|_| ApiError::Unauthorized(BAD_TOKEN))?;
    let (Ok(user_id), Ok(session_id)) = (claims.sub.parse::<Uuid>(), claims.sid.parse::<Uuid>())
    else {
        return Err(ApiError::Unauthorized(BAD_TOKEN));
    };
    Ok(Authenticate {
        user_id,
        session_id,
        stamp: claims.stm,
    })
}

/// The caller, if their sign-in session is live, their security stamp current and their account
/// enabled — now, not when the token was made.
pub async fn admit(state: &AppState, claims: Authenticate) -> Result<Principal, ApiError> {
    // A cached user is checked here; otherwise the Directory loads them.
    let verdict = match state.users.admit(&claims) {
        Some(verdict) => verdict,
        None => state
            .identity
            .directory()
            .send(claims)
            .await
            .map_err(|e| ApiError::internal(anyhow::anyhow!("directory unreachable: {e}")))?,
    };
    verdict.map_err(|rejection| match rejection {
        Rejection::Unavailable => ApiError::Unavailable("Try again shortly.".into()),
        _ => ApiError::Unauthorized(BAD_TOKEN),
    })
}

/// The signed-in caller, within their API rate limit.
pub struct AuthUser(pub Principal);

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = state(req);
        let token = bearer(req);
        Box::pin(async move {
            let state = state?;
            let token = token.ok_or(ApiError::Unauthorized(BAD_TOKEN))?;
            let principal = authenticate(&state, &token).await?;
            state.identity.limits().api(principal.user_id())?;
            Ok(AuthUser(principal))
        })
    }
}

/// A signed-in caller with the admin role.
pub struct AdminUser(pub Principal);

impl FromRequest for AdminUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = AuthUser::from_request(req, payload);
        Box::pin(async move {
            let AuthUser(principal) = user.await?;
            if principal.is_admin() {
                Ok(AdminUser(principal))
            } else {
                Err(ApiError::Forbidden("This needs the admin role."))
            }
        })
    }
}

/// Where the request comes from: the peer address, or, when the peer is a trusted proxy, the
/// nearest untrusted address in `X-Forwarded-For`.
pub struct Client(pub ClientInfo);

fn client_ip(req: &HttpRequest, trusted: &[IpAddr]) -> IpAddr {
    let peer = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|ip| ip.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer)
}

impl FromRequest for Client {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let trusted = req
            .app_data::<web::Data<AppState>>()
            .map(|s| s.settings.trusted_proxies.clone())
            .unwrap_or_default();
        let user_agent = req
            .headers()
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        ready(Ok(Client(ClientInfo {
            ip: client_ip(req, &trusted),
            user_agent,
        })))
    }
}
