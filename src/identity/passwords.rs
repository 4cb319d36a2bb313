//! Password hashing with argon2id (m = 19456 KiB, t = 2, p = 1, the OWASP baseline), always on
//! the blocking pool and never more than a configured number at once, so a burst of logins cannot
//! take the event loop or the machine's memory.
use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use tokio::sync::Semaphore;

pub const M_COST_KIB: u32 = 19_456;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

fn argon2() -> Argon2<'static> {
    // The parameters are constants inside argon2's accepted ranges.
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_now(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
}

fn verify_now(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Hashes and verifies passwords off the event loop with a cap on concurrent work.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    /// A real hash of a random password: unknown emails are verified against it so that a login
    /// for an address that does not exist costs the same time as one that does.
    dummy: Arc<String>,
}

impl Hasher {
    pub fn new(max_concurrent: usize) -> anyhow::Result<Self> {
        let random: String = uuid::Uuid::new_v4().to_string();
        Ok(Hasher {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            dummy: Arc::new(hash_now(&random)?),
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let _permit = self.permits.acquire().await?;
        let span = tracing::Span::current();
        Ok(actix_web::rt::task::spawn_blocking(move || {
            let _entered = span.enter();
            work()
        })
        .await?)
    }

    pub async fn hash(&self, password: &str) -> anyhow::Result<String> {
        let password = password.to_string();
        self.blocking(move || hash_now(&password)).await?
    }

    pub async fn verify(&self, password: &str, hash: &str) -> anyhow::Result<bool> {
        let (password, hash) = (password.to_string(), hash.to_string());
        self.blocking(move || verify_now(&password, &hash)).await
    }

    /// Spend the time of a verification without anything to verify against.
    pub async fn dummy_verify(&self, password: &str) -> anyhow::Result<()> {
        let dummy = self.dummy.clone();
        let password = password.to_string();
        self.blocking(move || {
            let _ = verify_now(&password, &dummy);
        })
        .await
    }

    /// Blocking variant for command-line tools.
    pub fn hash_blocking(password: &str) -> anyhow::Result<String> {
        hash_now(password)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_the_owasp_parameters() {
        let h = hash_now("correct horse battery staple").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_now("correct horse battery staple", &h));
        assert!(!verify_now("correct horse battery stapl", &h));
        assert!(!verify_now("anything", "not a hash"));
    }
}
