//! Access tokens (JWT, HS256 pinned, `typ: at+jwt`) and refresh tokens (opaque 256-bit random,
//! stored only as a SHA-256 hash), plus the signing key kept in the data directory.
use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{
    decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The only algorithm accepted; anything else in a header (including `none`) is refused.
const ALGORITHM: Algorithm = Algorithm::HS256;
/// Header `typ` of access tokens (RFC 9068); other token purposes use other types.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// Clock skew tolerated on `exp`/`nbf`.
pub const LEEWAY_SECS: u64 = 30;
const KEY_BYTES: usize = 64;
const MIN_KEY_BYTES: usize = 32;

/// The HMAC key tokens are signed with: at least 256 bits.
pub struct SigningKey(Vec<u8>);

impl SigningKey {
    /// Read the key file, or create it (mode 0600) with a fresh random key on first start.
    pub fn load_or_create(path: &Path) -> anyhow::Result<SigningKey> {
        if path.exists() {
            let text = fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read signing key {}: {e}", path.display()))?;
            let bytes = STANDARD.decode(text.trim()).map_err(|_| {
                anyhow::anyhow!(
                    "signing key {} is not base64; delete it to generate a new one",
                    path.display()
                )
            })?;
            if bytes.len() < MIN_KEY_BYTES {
                anyhow::bail!(
                    "signing key {} is shorter than {MIN_KEY_BYTES} bytes; delete it to generate a new one",
                    path.display()
                );
            }
            warn_if_readable_by_others(path);
            return Ok(SigningKey(bytes));
        }
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        }
        let mut bytes = vec![0u8; KEY_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(path)
            .map_err(|e| anyhow::anyhow!("cannot create signing key {}: {e}", path.display()))?;
        file.write_all(STANDARD.encode(&bytes).as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        tracing::info!(path = %path.display(), "generated a new token signing key");
        Ok(SigningKey(bytes))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> anyhow::Result<SigningKey> {
        if bytes.len() < MIN_KEY_BYTES {
            anyhow::bail!("a signing key needs at least {MIN_KEY_BYTES} bytes");
        }
        Ok(SigningKey(bytes))
    }
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "signing key is readable by other users; chmod 600 it");
            }
        }
    }
}

/// Claims of an access token. All of `exp nbf iat iss aud sub` are required on decoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    pub jti: String,
    /// The session (refresh-token family) this token belongs to.
    pub sid: String,
    /// The user's security stamp when the token was issued.
    pub stm: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token is not an access token")]
    WrongType,
    #[error("the token is invalid or expired")]
    Invalid,
}

/// Issues and checks tokens.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    access_ttl: Duration,
}

impl Tokens {
    pub fn new(key: &SigningKey, issuer: &str, audience: &str, access_ttl: Duration) -> Tokens {
        let mut validation = Validation::new(ALGORITHM);
        validation.algorithms = vec![ALGORITHM];
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        Tokens {
            encoding: EncodingKey::from_secret(&key.0),
            decoding: DecodingKey::from_secret(&key.0),
            validation,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            access_ttl,
        }
    }

    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    /// A signed access token for `user_id` in `session_id`, bound to the user's current stamp.
    pub fn issue_access(
        &self,
        user_id: &str,
        session_id: &str,
        stamp: &str,
    ) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_string(),
            exp: now + self.access_ttl.as_secs(),
            nbf: now,
            iat: now,
            jti: Uuid::now_v7().to_string(),
            sid: session_id.to_string(),
            stm: stamp.to_string(),
        };
        let mut header = Header::new(ALGORITHM);
        header.typ = Some(ACCESS_TOKEN_TYPE.to_string());
        Ok(encode(&header, &claims, &self.encoding)?)
    }

    /// Check signature, algorithm, type, time window, issuer and audience.
    pub fn verify_access(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != ALGORITHM {
            return Err(TokenError::Invalid);
        }
        if header.typ.as_deref() != Some(ACCESS_TOKEN_TYPE) {
            return Err(TokenError::WrongType);
        }
        decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| TokenError::Invalid)
    }
}

/// A new opaque refresh token: what the client gets, and the hash the database keeps.
pub fn new_refresh_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = format!("llr_{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash_refresh_token(&token);
    (token, hash)
}

/// SHA-256 of a refresh token as hex: a fast hash is right here, the input has 256 bits of entropy.
pub fn hash_refresh_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    hex::encode(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::new(
            &SigningKey::from_bytes(vec![7u8; 32]).unwrap(),
            "ledgerline",
            "ledgerline-api",
            Duration::from_secs(900),
        )
    }

    #[test]
    fn access_tokens_round_trip() {
        let t = tokens();
        let jwt = t.issue_access("u1", "s1", "stamp").unwrap();
        let claims = t.verify_access(&jwt).unwrap();
        assert_eq!(
            (
                claims.sub.as_str(),
                claims.sid.as_str(),
                claims.stm.as_str()
            ),
            ("u1", "s1", "stamp")
        );
    }

    #[test]
    fn a_refresh_token_is_not_an_access_token() {
        let (token, hash) = new_refresh_token();
        assert_eq!(hash, hash_refresh_token(&token));
        assert_eq!(tokens().verify_access(&token), Err(TokenError::Malformed));
    }

    #[test]
    fn another_key_is_refused() {
        let jwt = tokens().issue_access("u1", "s1", "stamp").unwrap();
        let other = Tokens::new(
            &SigningKey::from_bytes(vec![8u8; 32]).unwrap(),
            "ledgerline",
            "ledgerline-api",
            Duration::from_secs(900),
        );
        assert_eq!(other.verify_access(&jwt), Err(TokenError::Invalid));
    }
}
