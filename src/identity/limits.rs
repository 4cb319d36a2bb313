//! Rate limits (GCRA via `governor`): on the sign-in endpoints, per client IP and per account, and
//! on every authenticated API request, per user. The per-account sign-in limit is looser than the
//! per-IP one, so an attacker hammering one address from one IP is stopped while the owner, from
//! elsewhere, can still sign in.
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

use crate::config::{RateLimit, Settings};
use crate::error::ApiError;

struct Limiter<K: Hash + Eq + Clone> {
    inner: DefaultKeyedRateLimiter<K>,
    clock: DefaultClock,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    fn new(limit: RateLimit) -> Self {
        let quota = Quota::with_period(limit.replenish_interval())
            .unwrap_or_else(|| Quota::per_second(limit.burst))
            .allow_burst(limit.burst);
        Limiter {
            inner: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    fn check(&self, key: &K) -> Result<(), ApiError> {
        self.inner
            .check_key(key)
            .map_err(|not_until| ApiError::TooManyRequests {
                retry_after: not_until
                    .wait_time_from(self.clock.now())
                    .max(Duration::from_secs(1)),
            })
    }

    fn forget_idle(&self) {
        self.inner.retain_recent();
        self.inner.shrink_to_fit();
    }
}

/// All limiters of the identity endpoints.
#[derive(Clone)]
pub struct RateLimits {
    inner: Arc<Inner>,
}

struct Inner {
    login_per_ip: Limiter<IpAddr>,
    login_per_account: Limiter<String>,
    register_per_ip: Limiter<IpAddr>,
    refresh_per_ip: Limiter<IpAddr>,
    reset_per_ip: Limiter<IpAddr>,
    reset_per_account: Limiter<String>,
    api_per_user: Limiter<Uuid>,
}

impl RateLimits {
    pub fn new(settings: &Settings) -> Self {
        RateLimits {
            inner: Arc::new(Inner {
                login_per_ip: Limiter::new(settings.rate_limit_login_per_ip),
                login_per_account: Limiter::new(settings.rate_limit_login_per_account),
                register_per_ip: Limiter::new(settings.rate_limit_register_per_ip),
                refresh_per_ip: Limiter::new(settings.rate_limit_refresh_per_ip),
                reset_per_ip: Limiter::new(settings.rate_limit_reset_per_ip),
                reset_per_account: Limiter::new(settings.rate_limit_reset_per_account),
                api_per_user: Limiter::new(settings.rate_limit_api_per_user),
            }),
        }
    }

    pub fn login(&self, ip: IpAddr, normalized_email: &str) -> Result<(), ApiError> {
        self.inner.login_per_ip.check(&ip)?;
        self.inner
            .login_per_account
            .check(&normalized_email.to_string())
    }

    /// Password re-entry inside a session (password change, email change, account deletion):
    /// limited per account, sharing the login allowance, so a stolen access token cannot be used
    /// to guess the password.
    pub fn reauthenticate(&self, normalized_email: &str) -> Result<(), ApiError> {
        self.inner
            .login_per_account
            .check(&normalized_email.to_string())
    }

    pub fn register(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.inner.register_per_ip.check(&ip)
    }

    pub fn refresh(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.inner.refresh_per_ip.check(&ip)
    }

    /// Password-reset requests and confirmations, per IP and per address asked for (whether or
    /// not an account has it, so the answer reveals nothing).
    pub fn reset(&self, ip: IpAddr, normalized_email: Option<&str>) -> Result<(), ApiError> {
        self.inner.reset_per_ip.check(&ip)?;
        match normalized_email {
            Some(e) => self.inner.reset_per_account.check(&e.to_string()),
            None => Ok(()),
        }
    }

    /// One authenticated API request by `user`.
    pub fn api(&self, user: Uuid) -> Result<(), ApiError> {
        self.inner.api_per_user.check(&user)
    }

    /// Drop state of keys whose allowance is full again, so memory follows active clients only.
    pub fn forget_idle(&self) {
        self.inner.login_per_ip.forget_idle();
        self.inner.login_per_account.forget_idle();
        self.inner.register_per_ip.forget_idle();
        self.inner.refresh_per_ip.forget_idle();
        self.inner.reset_per_ip.forget_idle();
        self.inner.reset_per_account.forget_idle();
        self.inner.api_per_user.forget_idle();
    }
}
