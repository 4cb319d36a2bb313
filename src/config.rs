//! One typed configuration: defaults, then an optional `ledgerline.toml`, then `LEDGERLINE_*`
//! environment variables. Everything is checked once at start, and a bad value is reported with the
//! name of the setting (and where it came from) so an operator can fix it without reading code.
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The file read when `--config` is not given (and silently skipped when it does not exist).
pub const DEFAULT_CONFIG_FILE: &str = "ledgerline.toml";

/// Environment variables that start with `LEDGERLINE_` but are not settings (tests, tooling).
const NOT_SETTINGS: &[&str] = &["test_postgres_url", "config"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration: setting `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The settings as an operator writes them. See the README for the table of settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address and port the HTTP server binds to.
    pub listen: String,
    /// Directory for the SQLite database, the signing key and mail files.
    pub data_dir: PathBuf,
    /// `sqlite://path`, a plain file path, or `postgres://…`. Default: SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// Maximum connections in the database pool.
    pub db_pool_size: u32,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// A tracing filter, e.g. `info` or `ledgerline=debug,actix_web=info`.
    pub log_level: String,
    /// HTTP worker threads, which also run the Ledgers their requests wake; 0 means two per CPU
    /// core.
    pub workers: usize,
    /// Where the JWT signing key lives; default `<data_dir>/signing.key`, created on first start.
    pub signing_key_file: Option<PathBuf>,
    /// `iss` of issued tokens.
    pub jwt_issuer: String,
    /// `aud` of issued access tokens.
    pub jwt_audience: String,
    #[serde(with = "humantime_serde")]
    pub access_token_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub refresh_token_ttl: Duration,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Largest import file accepted, in bytes.
    pub max_import_bytes: usize,
    /// A request body that stops arriving for this long is answered 408 and its connection
    /// closed (a client that sends half a body must not hold a connection for ever).
    #[serde(with = "humantime_serde")]
    pub body_idle_timeout: Duration,
    /// Rows per import commit (each with an `import.progress` event): big enough that each
    /// index page is written about once per commit, small enough for steady progress events.
    pub import_chunk_rows: usize,
    /// How many password hashes may run at once (each takes 19 MiB and ~tens of ms of a core).
    pub max_concurrent_hashes: usize,
    /// Peers whose `X-Forwarded-For` is believed (reverse proxies).
    pub trusted_proxies: Vec<IpAddr>,
    pub rate_limit_login_per_ip: RateLimit,
    pub rate_limit_login_per_account: RateLimit,
    pub rate_limit_register_per_ip: RateLimit,
    pub rate_limit_refresh_per_ip: RateLimit,
    /// Every authenticated API request, per user (a runaway client cannot starve the others).
    pub rate_limit_api_per_user: RateLimit,
    /// Browser origins allowed to open WebSockets (e.g. `https://app.example.org`); requests
    /// without an Origin (native apps) and same-origin requests are always allowed.
    pub ws_allowed_origins: Vec<String>,
    /// Events waiting for a WebSocket client before it is closed as too slow.
    pub ws_queue: usize,
    #[serde(with = "humantime_serde")]
    pub ws_heartbeat: Duration,
    #[serde(with = "humantime_serde")]
    pub ws_client_timeout: Duration,
    /// How often the Scheduler looks for due recurring transactions.
    #[serde(with = "humantime_serde")]
    pub scheduler_tick: Duration,
    /// Bootstrap admin: created at start when no user has this email.
    pub admin_email: Option<String>,
    #[serde(serialize_with = "mask_secret")]
    pub admin_password: Option<SecretString>,
    /// Outgoing mail server, e.g. `smtps://user:pass@smtp.example.org` (TLS),
    /// `smtp://user:pass@smtp.example.org:587?tls=required` (STARTTLS) or `smtp://127.0.0.1:25`
    /// (plain). Unset: mail is written to files under `<data_dir>/mail/`.
    #[serde(serialize_with = "mask_secret")]
    pub smtp_url: Option<SecretString>,
    #[serde(with = "humantime_serde")]
    pub smtp_timeout: Duration,
    /// The sender of every email, e.g. `Ledgerline <ledgerline@example.org>`.
    pub mail_from: String,
    /// How often the Notifier looks for retries that are due (new mail is sent at once).
    #[serde(with = "humantime_serde")]
    pub notify_tick: Duration,
    /// Retry waits grow from this, doubling per try, with full jitter, up to `notify_backoff_cap`.
    #[serde(with = "humantime_serde")]
    pub notify_backoff_base: Duration,
    #[serde(with = "humantime_serde")]
    pub notify_backoff_cap: Duration,
    /// Tries before an email or webhook delivery is marked `dead`.
    pub notify_max_attempts: u32,
    #[serde(with = "humantime_serde")]
    pub webhook_timeout: Duration,
    /// Let webhooks target loopback and private-network addresses (off: refused, against SSRF).
    pub webhooks_allow_private: bool,
    /// How long an emailed password-reset code works.
    #[serde(with = "humantime_serde")]
    pub password_reset_ttl: Duration,
    pub rate_limit_reset_per_ip: RateLimit,
    pub rate_limit_reset_per_account: RateLimit,
    /// Monthly summaries go out on the 1st, or up to this day of the month after downtime.
    pub monthly_summary_catch_up_days: u32,
}

fn mask_secret<S: Serializer>(value: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_some("********"),
        None => s.serialize_none(),
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            db_pool_size: 16,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            workers: 0,
            signing_key_file: None,
            jwt_issuer: "ledgerline".into(),
            jwt_audience: "ledgerline-api".into(),
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            max_body_bytes: 1024 * 1024,
            max_import_bytes: 256 * 1024 * 1024,
            body_idle_timeout: Duration::from_secs(30),
            import_chunk_rows: 100_000,
            max_concurrent_hashes: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            trusted_proxies: Vec::new(),
            rate_limit_login_per_ip: RateLimit::new(20, Duration::from_secs(60)),
            rate_limit_login_per_account: RateLimit::new(50, Duration::from_secs(15 * 60)),
            rate_limit_register_per_ip: RateLimit::new(10, Duration::from_secs(3600)),
            rate_limit_refresh_per_ip: RateLimit::new(120, Duration::from_secs(60)),
            rate_limit_api_per_user: RateLimit::new(1200, Duration::from_secs(60)),
            ws_allowed_origins: Vec::new(),
            ws_queue: 1024,
            ws_heartbeat: Duration::from_secs(15),
            ws_client_timeout: Duration::from_secs(45),
            scheduler_tick: Duration::from_secs(60),
            admin_email: None,
            admin_password: None,
            smtp_url: None,
            smtp_timeout: Duration::from_secs(15),
            mail_from: "Ledgerline <ledgerline@localhost>".into(),
            notify_tick: Duration::from_secs(1),
            notify_backoff_base: Duration::from_secs(30),
            notify_backoff_cap: Duration::from_secs(3600),
            notify_max_attempts: 8,
            webhook_timeout: Duration::from_secs(10),
            webhooks_allow_private: false,
            password_reset_ttl: Duration::from_secs(30 * 60),
            rate_limit_reset_per_ip: RateLimit::new(10, Duration::from_secs(15 * 60)),
            rate_limit_reset_per_account: RateLimit::new(3, Duration::from_secs(3600)),
            monthly_summary_catch_up_days: 3,
        }
    }
}

/// `N/period`, e.g. `10/1m`: at most N requests in a burst, refilled evenly over the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub burst: NonZeroU32,
    pub period: Duration,
}

impl RateLimit {
    pub fn new(burst: u32, period: Duration) -> Self {
        RateLimit {
            burst: NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN),
            period,
        }
    }

    /// Time for one request's allowance to come back.
    pub fn replenish_interval(&self) -> Duration {
        (self.period / self.burst.get()).max(Duration::from_nanos(1))
    }
}

impl FromStr for RateLimit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (n, period) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not of the form N/period, e.g. 10/1m"))?;
        let burst: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("`{n}` is not a positive whole number"))?;
        let burst = NonZeroU32::new(burst).ok_or("the count must be at least 1")?;
        let period = humantime::parse_duration(period.trim())
            .map_err(|e| format!("`{period}` is not a duration ({e}); use e.g. 30s, 1m, 1h"))?;
        if period.is_zero() {
            return Err("the period must be longer than zero".into());
        }
        Ok(RateLimit { burst, period })
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            self.burst,
            humantime::format_duration(self.period)
        )
    }
}

impl Serialize for RateLimit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RateLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Which database a URL points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A file path for SQLite.
    Sqlite(PathBuf),
    /// A libpq connection URL.
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("is empty".into());
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            url::Url::parse(raw).map_err(|e| format!("is not a valid URL: {e}"))?;
            return Ok(DatabaseUrl::Postgres(raw.to_string()));
        }
        let path = raw
            .strip_prefix("sqlite://")
            .or_else(|| raw.strip_prefix("sqlite:"))
            .unwrap_or(raw);
        if path.contains("://") {
            return Err(format!(
                "has an unknown scheme `{}`; use sqlite://PATH or postgres://…",
                raw.split("://").next().unwrap_or_default()
            ));
        }
        if path.is_empty() {
            return Err("names no SQLite file".into());
        }
        Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            DatabaseUrl::Sqlite(_) => "sqlite",
            DatabaseUrl::Postgres(_) => "postgres",
        }
    }

    /// The URL with any password replaced, safe to log.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
            DatabaseUrl::Postgres(raw) => match url::Url::parse(raw) {
                Ok(mut u) => {
                    if u.password().is_some() {
                        let _ = u.set_password(Some("********"));
                    }
                    u.to_string()
                }
                Err(_) => "postgres://(unparseable)".into(),
            },
        }
    }
}

/// The configuration after checking: every value usable as it is.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database: DatabaseUrl,
    pub db_pool_size: u32,
    pub log_format: LogFormat,
    pub log_level: String,
    pub workers: usize,
    pub signing_key_file: PathBuf,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub max_body_bytes: usize,
    pub max_import_bytes: usize,
    pub body_idle_timeout: Duration,
    pub import_chunk_rows: usize,
    pub max_concurrent_hashes: usize,
    pub trusted_proxies: Vec<IpAddr>,
    pub rate_limit_login_per_ip: RateLimit,
    pub rate_limit_login_per_account: RateLimit,
    pub rate_limit_register_per_ip: RateLimit,
    pub rate_limit_refresh_per_ip: RateLimit,
    pub rate_limit_api_per_user: RateLimit,
    pub ws_allowed_origins: Vec<String>,
    pub ws_queue: usize,
    pub ws_heartbeat: Duration,
    pub ws_client_timeout: Duration,
    pub scheduler_tick: Duration,
    pub admin_email: Option<String>,
    pub admin_password: Option<SecretString>,
    pub smtp_url: Option<SecretString>,
    pub smtp_timeout: Duration,
    pub mail_from: String,
    pub notify_tick: Duration,
    pub notify_backoff_base: Duration,
    pub notify_backoff_cap: Duration,
    pub notify_max_attempts: u32,
    pub webhook_timeout: Duration,
    pub webhooks_allow_private: bool,
    pub password_reset_ttl: Duration,
    pub rate_limit_reset_per_ip: RateLimit,
    pub rate_limit_reset_per_account: RateLimit,
    pub monthly_summary_catch_up_days: u32,
    /// The effective configuration with secrets masked, for the log and the admin page.
    pub display: Config,
}

impl Config {
    /// Defaults < `file` (when it exists, or must exist when `required`) < `LEDGERLINE_*`.
    pub fn load(file: &Path, required: bool) -> Result<Config, ConfigError> {
        if required && !file.exists() {
            return Err(ConfigError::MissingFile(file.to_path_buf()));
        }
        Self::figment(file)
            .extract()
            .map_err(|e| ConfigError::Load(Box::new(e)))
    }

    fn figment(file: &Path) -> Figment {
        Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(file))
            .merge(
                Env::prefixed("LEDGERLINE_").filter(|key| {
                    !NOT_SETTINGS.contains(&key.as_str().to_ascii_lowercase().as_str())
                }),
            )
    }

    /// Check every value; the first bad one is reported by name.
    pub fn validate(self) -> Result<Settings, ConfigError> {
        let listen: SocketAddr = self.listen.parse().map_err(|_| {
            invalid(
                "listen",
                format!(
                    "`{}` is not an address:port such as 127.0.0.1:8080",
                    self.listen
                ),
            )
        })?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        let database = match &self.database_url {
            Some(raw) => DatabaseUrl::parse(raw).map_err(|m| invalid("database_url", m))?,
            None => DatabaseUrl::Sqlite(self.data_dir.join("ledgerline.db")),
        };
        if self.db_pool_size == 0 || self.db_pool_size > 1000 {
            return Err(invalid("db_pool_size", "must be between 1 and 1000"));
        }
        if self.access_token_ttl < Duration::from_secs(30)
            || self.access_token_ttl > Duration::from_secs(24 * 3600)
        {
            return Err(invalid(
                "access_token_ttl",
                "must be between 30s and 24h (15m is recommended)",
            ));
        }
        if self.refresh_token_ttl < self.access_token_ttl
            || self.refresh_token_ttl > Duration::from_secs(365 * 24 * 3600)
        {
            return Err(invalid(
                "refresh_token_ttl",
                "must be at least access_token_ttl and at most 365 days",
            ));
        }
        if self.body_idle_timeout < Duration::from_millis(100) {
            return Err(invalid("body_idle_timeout", "must be at least 100ms"));
        }
        if self.max_body_bytes < 1024 {
            return Err(invalid("max_body_bytes", "must be at least 1024"));
        }
        if self.max_concurrent_hashes == 0 {
            return Err(invalid("max_concurrent_hashes", "must be at least 1"));
        }
        if self.jwt_issuer.trim().is_empty() {
            return Err(invalid("jwt_issuer", "must not be empty"));
        }
        if self.jwt_audience.trim().is_empty() {
            return Err(invalid("jwt_audience", "must not be empty"));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log_level)
            .map_err(|e| invalid("log_level", format!("`{}`: {e}", self.log_level)))?;
        if !(2..=1_000_000).contains(&self.ws_queue) {
            return Err(invalid("ws_queue", "must be between 2 and 1000000"));
        }
        if self.ws_heartbeat < Duration::from_millis(100)
            || self.ws_client_timeout <= self.ws_heartbeat
        {
            return Err(invalid(
                "ws_client_timeout",
                "must be longer than ws_heartbeat (at least 100ms)",
            ));
        }
        for origin in &self.ws_allowed_origins {
            if url::Url::parse(origin)
                .map(|u| u.origin().ascii_serialization())
                .ok()
                .as_deref()
                != Some(origin.trim_end_matches('/'))
            {
                return Err(invalid(
                    "ws_allowed_origins",
                    format!("`{origin}` is not an origin such as https://app.example.org"),
                ));
            }
        }
        if self.admin_email.is_some() != self.admin_password.is_some() {
            return Err(invalid(
                "admin_email",
                "admin_email and admin_password must be set together",
            ));
        }
        if let Some(pw) = &self.admin_password {
            crate::domain::Password::parse(pw.expose_secret())
                .map_err(|m| invalid("admin_password", m))?;
        }
        if let Some(email) = &self.admin_email {
            crate::domain::Email::parse(email).map_err(|m| invalid("admin_email", m))?;
        }
        if self.mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(invalid(
                "mail_from",
                format!(
                    "`{}` is not an address such as Ledgerline <ledgerline@example.org>",
                    self.mail_from
                ),
            ));
        }
        if let Some(url) = &self.smtp_url {
            let url = url.expose_secret();
            if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                return Err(invalid("smtp_url", "must start with smtp:// or smtps://"));
            }
        }
        if self.notify_max_attempts == 0 || self.notify_max_attempts > 100 {
            return Err(invalid("notify_max_attempts", "must be between 1 and 100"));
        }
        if !(1..=31).contains(&self.monthly_summary_catch_up_days) {
            return Err(invalid(
                "monthly_summary_catch_up_days",
                "must be between 1 and 31",
            ));
        }
        if self.notify_backoff_base < Duration::from_millis(10) {
            return Err(invalid("notify_backoff_base", "must be at least 10ms"));
        }
        if self.notify_backoff_cap < self.notify_backoff_base {
            return Err(invalid(
                "notify_backoff_cap",
                "must be at least notify_backoff_base",
            ));
        }
        let signing_key_file = self
            .signing_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("signing.key"));
        Ok(Settings {
            listen,
            data_dir: self.data_dir.clone(),
            database,
            db_pool_size: self.db_pool_size,
            log_format: self.log_format,
            log_level: self.log_level.clone(),
            // Two per core: a Ledger runs on the worker whose request woke it, so these threads
            // do what an HTTP worker and a Ledger thread per core did before (session 12 in
            // docs/benchmarks.md: one per core lost ~6 % of creates/s at 64 connections).
            workers: if self.workers == 0 {
                2 * std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            } else {
                self.workers
            },
            signing_key_file,
            jwt_issuer: self.jwt_issuer.clone(),
            jwt_audience: self.jwt_audience.clone(),
            access_token_ttl: self.access_token_ttl,
            refresh_token_ttl: self.refresh_token_ttl,
            max_body_bytes: self.max_body_bytes,
            max_import_bytes: self.max_import_bytes.max(self.max_body_bytes),
            body_idle_timeout: self.body_idle_timeout,
            import_chunk_rows: self.import_chunk_rows.max(1),
            max_concurrent_hashes: self.max_concurrent_hashes,
            trusted_proxies: self.trusted_proxies.clone(),
            rate_limit_login_per_ip: self.rate_limit_login_per_ip,
            rate_limit_login_per_account: self.rate_limit_login_per_account,
            rate_limit_register_per_ip: self.rate_limit_register_per_ip,
            rate_limit_refresh_per_ip: self.rate_limit_refresh_per_ip,
            rate_limit_api_per_user: self.rate_limit_api_per_user,
            ws_allowed_origins: self.ws_allowed_origins.clone(),
            ws_queue: self.ws_queue,
            ws_heartbeat: self.ws_heartbeat,
            ws_client_timeout: self.ws_client_timeout,
            scheduler_tick: self.scheduler_tick.max(Duration::from_millis(50)),
            admin_email: self.admin_email.clone(),
            admin_password: self.admin_password.clone(),
            smtp_url: self.smtp_url.clone(),
            smtp_timeout: self.smtp_timeout,
            mail_from: self.mail_from.clone(),
            notify_tick: self.notify_tick.max(Duration::from_millis(10)),
            notify_backoff_base: self.notify_backoff_base,
            notify_backoff_cap: self.notify_backoff_cap,
            notify_max_attempts: self.notify_max_attempts,
            webhook_timeout: self.webhook_timeout,
            webhooks_allow_private: self.webhooks_allow_private,
            password_reset_ttl: self.password_reset_ttl,
            rate_limit_reset_per_ip: self.rate_limit_reset_per_ip,
            rate_limit_reset_per_account: self.rate_limit_reset_per_account,
            monthly_summary_catch_up_days: self.monthly_summary_catch_up_days,
            display: self,
        })
    }
}

impl Settings {
    /// Settings for tests and tools: defaults with a given data directory and database.
    pub fn for_data_dir(
        data_dir: &Path,
        database_url: Option<&str>,
    ) -> Result<Settings, ConfigError> {
        Config {
            data_dir: data_dir.to_path_buf(),
            database_url: database_url.map(str::to_string),
            ..Config::default()
        }
        .validate()
    }

    pub fn admin_password(&self) -> Option<&str> {
        self.admin_password.as_ref().map(|s| s.expose_secret())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_parses_and_prints() {
        let r: RateLimit = "10/1m".parse().unwrap();
        assert_eq!(r.burst.get(), 10);
        assert_eq!(r.period, Duration::from_secs(60));
        assert_eq!(r.replenish_interval(), Duration::from_secs(6));
        assert!("0/1m".parse::<RateLimit>().is_err());
        assert!("10".parse::<RateLimit>().is_err());
        assert!("10/soon".parse::<RateLimit>().is_err());
    }

    #[test]
    fn database_urls_pick_the_backend() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://./data/x.db").unwrap(),
            DatabaseUrl::Sqlite("./data/x.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("/tmp/x.db").unwrap(),
            DatabaseUrl::Sqlite("/tmp/x.db".into())
        );
        assert!(matches!(
            DatabaseUrl::parse("postgres://u:p@h/db").unwrap(),
            DatabaseUrl::Postgres(_)
        ));
        assert!(DatabaseUrl::parse("mysql://h/db").is_err());
        assert_eq!(
            DatabaseUrl::parse("postgres://u:secret@h/db")
                .unwrap()
                .redacted(),
            "postgres://u:********@h/db"
        );
    }

    #[test]
    fn bad_values_name_the_setting() {
        let err = Config {
            listen: "nowhere".into(),
            ..Config::default()
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().contains("`listen`"), "{err}");
        let err = Config {
            database_url: Some("mysql://x".into()),
            ..Config::default()
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().contains("`database_url`"), "{err}");
    }
}
