//! Storage: one diesel connection type over SQLite and PostgreSQL, chosen by the URL scheme, an
//! r2d2 pool, and per-backend migrations embedded in the binary and applied before anything serves.
//!
//! Every query runs on the blocking thread pool through [`Db::run`], never on an event loop.
//! Backend-specific SQL lives only in this module (connection setup) and in `migrations/`.
pub mod budgets;
pub mod ledger;
pub mod notify;
pub mod plans;
pub mod rules;
pub mod schema;
pub mod sessions;
pub mod sql_time;
pub mod users;
pub mod writer;

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sqlite::SqliteConnection;
use diesel::Connection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::config::DatabaseUrl;

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Applied to every SQLite connection: durability first (acknowledged means on disk), then
/// integrity, then patience with the single writer lock.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 10000;
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
PRAGMA foreign_keys = ON;
PRAGMA temp_store = MEMORY;";

/// The writer lane's connection gets an 8 MiB page cache (pooled connections keep SQLite's 2 MiB
/// default; imports go through a bulk connection with more, see [`connect_bulk_writer`]). Not more: when a B-tree page splits, SQLite renumbers pages through a temporary page
/// number past the 1 GiB mark, and the commit that follows then scans every slot of the page
/// cache's hash table, which grows with the pages cached. With 64 MiB that scan was 9 % of the
/// server's CPU under 64 concurrent creators; with 8 MiB it is 2 %, creates/s +10-20 %.
/// It never checkpoints inside a commit either: a checkpointer thread copies the WAL back into the
/// database (PASSIVE: never blocking the writer), and the writer finishes that work between
/// batches now and then so the WAL starts over (see `store::writer`).
const SQLITE_WRITER_PRAGMAS: &str = "PRAGMA cache_size = -8192;
PRAGMA wal_autocheckpoint = 0;";

/// One connection to whichever backend the configuration names.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot connect to the database {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("no database connection available: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("a row with the same unique key exists")]
    UniqueViolation,
    /// A row refers to one that is not there (for a Ledger's commit: its user was erased
    /// meanwhile, since the Ledger is the only writer of everything else it refers to).
    #[error("a row refers to one that does not exist: {0}")]
    MissingReference(String),
    #[error("database error: {0}")]
    Query(DieselError),
    #[error("database task failed: {0}")]
    Task(String),
}

impl From<DieselError> for StoreError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                StoreError::UniqueViolation
            }
            DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info) => {
                StoreError::MissingReference(info.message().to_string())
            }
            other => StoreError::Query(other),
        }
    }
}

impl From<StoreError> for crate::error::ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Pool(_) => crate::error::ApiError::Unavailable(
                "The database is busy; try again shortly.".into(),
            ),
            other => crate::error::ApiError::internal(other),
        }
    }
}

/// Open one connection to the configured backend, with SQLite's pragmas applied.
pub fn connect_url(url: &DatabaseUrl) -> Result<DbConn, StoreError> {
    let fail = |reason: String| StoreError::Connect {
        url: url.redacted(),
        reason,
    };
    match url {
        DatabaseUrl::Sqlite(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .map_err(|e| fail(format!("cannot create {}: {e}", parent.display())))?;
            }
            let path = path
                .to_str()
                .ok_or_else(|| fail("the path is not valid UTF-8".into()))?;
            let mut conn = SqliteConnection::establish(path).map_err(|e| fail(e.to_string()))?;
            conn.batch_execute(SQLITE_PRAGMAS)
                .map_err(|e| fail(e.to_string()))?;
            Ok(DbConn::Sqlite(conn))
        }
        DatabaseUrl::Postgres(raw) => PgConnection::establish(raw)
            .map(DbConn::Postgres)
            .map_err(|e| fail(e.to_string().trim().to_string())),
    }
}

/// A connection for a writer lane.
pub fn connect_writer(url: &DatabaseUrl) -> Result<DbConn, StoreError> {
    let mut conn = connect_url(url)?;
    if let DbConn::Sqlite(c) = &mut conn {
        c.batch_execute(SQLITE_WRITER_PRAGMAS)?;
    }
    Ok(conn)
}

/// A writer lane's second connection, for bulk batches (imports, restores): as
/// [`connect_writer`], with a 64 MiB page cache. A 100k-row chunk changes ~80 MB of pages; with
/// the small cache the writer needed 10-15 % more CPU for a 1M-row import.
pub fn connect_bulk_writer(url: &DatabaseUrl) -> Result<DbConn, StoreError> {
    let mut conn = connect_writer(url)?;
    if let DbConn::Sqlite(c) = &mut conn {
        c.batch_execute("PRAGMA cache_size = -65536;")?;
    }
    Ok(conn)
}

/// Call first inside a transaction that reads before it writes. SQLite (WAL) cannot upgrade a
/// read transaction to a write one while another connection commits — it fails at once with
/// "database is locked", and the busy timeout does not apply. A write statement first takes the
/// write lock up front, waiting for it like any write. (PostgreSQL needs nothing.)
pub fn lock_for_write(conn: &mut DbConn) -> Result<(), StoreError> {
    if let DbConn::Sqlite(c) = conn {
        c.batch_execute("UPDATE users SET id = id WHERE 0")?;
    }
    Ok(())
}

/// r2d2 manager that opens the configured backend explicitly (no guessing by trial).
pub struct Manager {
    url: DatabaseUrl,
}

impl r2d2::ManageConnection for Manager {
    type Connection = DbConn;
    type Error = StoreError;

    fn connect(&self) -> Result<DbConn, StoreError> {
        connect_url(&self.url)
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), StoreError> {
        conn.batch_execute("SELECT 1").map_err(StoreError::from)
    }

    fn has_broken(&self, _conn: &mut DbConn) -> bool {
        false
    }
}

/// Migrations applied by [`migrate`]: their versions, oldest first.
pub type Applied = Vec<String>;

/// Apply every pending migration of the connection's backend.
pub fn migrate(conn: &mut DbConn) -> Result<Applied, StoreError> {
    let applied = match conn {
        DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
        DbConn::Postgres(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS),
    }
    .map_err(|e| StoreError::Migration(e.to_string()))?;
    Ok(applied.iter().map(|v| v.to_string()).collect())
}

fn has_pending_migrations(conn: &mut DbConn) -> Result<bool, StoreError> {
    match conn {
        DbConn::Sqlite(c) => c.has_pending_migration(SQLITE_MIGRATIONS),
        DbConn::Postgres(c) => c.has_pending_migration(POSTGRES_MIGRATIONS),
    }
    .map_err(|e| StoreError::Migration(e.to_string()))
}

/// The database: a pool of connections plus which backend it is.
#[derive(Clone)]
pub struct Db {
    pool: r2d2::Pool<Manager>,
    backend: Backend,
}

impl Db {
    /// Connect (failing fast with a message naming the database), apply pending migrations, and
    /// build the pool. Blocking: call before the server starts or from a blocking thread.
    pub fn open(url: &DatabaseUrl, pool_size: u32) -> Result<(Db, Applied), StoreError> {
        let mut first = connect_url(url)?;
        let applied = migrate(&mut first)?;
        drop(first);
        let backend = match url {
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
            DatabaseUrl::Postgres(_) => Backend::Postgres,
        };
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .error_handler(Box::new(r2d2::LoggingErrorHandler))
            .build(Manager { url: url.clone() })?;
        Ok((Db { pool, backend }, applied))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Run blocking database work on the blocking pool, keeping the caller's tracing span.
    pub async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        actix_web::rt::task::spawn_blocking(move || {
            let _entered = span.enter();
            let mut conn = pool.get()?;
            work(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Blocking access for command-line tools that run outside the server.
    pub fn with_conn<T>(
        &self,
        work: impl FnOnce(&mut DbConn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.pool.get()?;
        work(&mut conn)
    }

    /// Readiness: a round trip to the database and no migration left to apply.
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.run(|conn| {
            conn.batch_execute("SELECT 1")?;
            if has_pending_migrations(conn)? {
                return Err(StoreError::Migration("migrations are pending".into()));
            }
            Ok(())
        })
        .await
    }
}

/// The current time as stored: UTC, microsecond precision (what both backends keep).
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// A stored timestamp as the API shows it.
pub fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}
