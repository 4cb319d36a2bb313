//! Builds the process: storage, the actor system, the HTTP server. `Application::build` returns
//! once the port is bound, so tests can start it on port 0 and read the port.
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, Addr, Arbiter, Supervisor, SyncArbiter};
use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use anyhow::Context;

use crate::actors::categorizer::Categorizer;
use crate::actors::directory::{Directory, LedgerIndex, UserIndex};
use crate::actors::hub::Hub;
use crate::actors::notifier::{Notifier, Outbound};
use crate::actors::scheduler::Scheduler;
use crate::config::Settings;
use crate::domain::{Email, Password};
use crate::http;
use crate::http::ws::Tickets;
use crate::identity::{Hasher, Identity, Links, RateLimits, SigningKey, Tokens};
use crate::store::writer::Writer;
use crate::store::Db;

/// Days the delivery log (sent or dead email and webhook rows) is kept.
const DELIVERY_LOG_DAYS: i64 = 30;

/// What every handler can reach.
pub struct AppState {
    pub identity: Identity,
    pub db: Db,
    pub hub: Addr<Hub>,
    pub categorizer: Addr<Categorizer>,
    /// Running Ledgers and cached users, for requests to reach a Ledger and check a token
    /// without a Directory round trip.
    pub ledgers: LedgerIndex,
    pub users: UserIndex,
    pub tickets: Tickets,
    /// Accounts an import is being written into right now (one at a time per account).
    pub imports: crate::http::imports::ImportsRunning,
    pub settings: Arc<Settings>,
    pub started_at: Instant,
}

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

/// The process without HTTP: storage, the writer, the actor system and the identity service.
/// The server and the command-line tools (`seed demo`) both start from here.
pub struct Services {
    pub identity: Identity,
    pub db: Db,
    pub hub: Addr<Hub>,
    pub categorizer: Addr<Categorizer>,
    pub ledgers: LedgerIndex,
    pub users: UserIndex,
}

impl Services {
    pub async fn start(settings: &Settings) -> anyhow::Result<Services> {
        let (db, applied) = {
            let url = settings.database.clone();
            let pool_size = settings.db_pool_size;
            actix_web::rt::task::spawn_blocking(move || Db::open(&url, pool_size)).await??
        };
        if applied.is_empty() {
            tracing::info!(database = %settings.database.redacted(), "database is up to date");
        } else {
            tracing::info!(database = %settings.database.redacted(), migrations = ?applied, "applied migrations");
        }

        let key = SigningKey::load_or_create(&settings.signing_key_file)?;
        let tokens = Arc::new(Tokens::new(
            &key,
            &settings.jwt_issuer,
            &settings.jwt_audience,
            settings.access_token_ttl,
        ));
        let max_hashes = settings.max_concurrent_hashes;
        let hasher = actix_web::rt::task::spawn_blocking(move || Hasher::new(max_hashes)).await??;

        let writer = {
            let url = settings.database.clone();
            let lanes = (settings.db_pool_size as usize / 4).clamp(1, 4);
            actix_web::rt::task::spawn_blocking(move || Writer::start(&url, lanes)).await??
        };
        // A Ledger starts on the HTTP worker whose request woke it (no thread hop between that
        // connection and its Ledger); these threads, one per two workers (one per core by
        // default), take the ones the Scheduler wakes.
        let per_core = (settings.workers / 2).max(1);
        let ledger_threads: Vec<_> = (0..per_core).map(|_| Arbiter::new().handle()).collect();
        let hub = Hub::start_in_arbiter(&Arbiter::new().handle(), |_| Hub::default());
        // CPU-bound categorizing and message parsing, on threads of its own.
        let categorizer = SyncArbiter::start(per_core, || Categorizer);
        // The outbox's sender: email and webhooks, retried until delivered or dead.
        let outbound = Arc::new(Outbound::from_settings(settings)?);
        let notifier = {
            let db = db.clone();
            Supervisor::start_in_arbiter(&Arbiter::new().handle(), move |_| {
                Notifier::new(db, outbound)
            })
        };
        let (ledgers, users) = (LedgerIndex::default(), UserIndex::default());
        let directory = {
            let (db, hub, categorizer) = (db.clone(), hub.clone(), categorizer.clone());
            let (notifier, ledgers, users) = (notifier.clone(), ledgers.clone(), users.clone());
            Supervisor::start_in_arbiter(&Arbiter::new().handle(), move |_| {
                Directory::new(
                    db,
                    writer,
                    Some(hub),
                    Some(categorizer),
                    Some(notifier),
                    ledger_threads,
                )
                .with_indexes(ledgers, users)
            })
        };
        Scheduler::new(
            db.clone(),
            directory.clone(),
            settings.scheduler_tick,
            settings.monthly_summary_catch_up_days,
        )
        .start();
        let limits = RateLimits::new(settings);
        let identity = Identity::new(
            db.clone(),
            hasher,
            tokens,
            Links {
                directory,
                ledgers: ledgers.clone(),
                hub: hub.clone(),
                notifier,
            },
            limits.clone(),
            settings.refresh_token_ttl,
            settings.password_reset_ttl,
        );

        if let (Some(email), Some(password)) = (&settings.admin_email, settings.admin_password()) {
            let email = Email::parse(email).map_err(|m| anyhow::anyhow!("admin_email {m}"))?;
            let password =
                Password::parse(password).map_err(|m| anyhow::anyhow!("admin_password {m}"))?;
            identity
                .ensure_admin(email, password)
                .await
                .map_err(|e| anyhow::anyhow!("creating the bootstrap admin: {e}"))?;
        }

        let housekeeping_db = db.clone();
        actix_web::rt::spawn(async move {
            let mut tick = actix_web::rt::time::interval(Duration::from_secs(60));
            let mut minutes: u64 = 0;
            loop {
                tick.tick().await;
                limits.forget_idle();
                // Idempotency keys are kept 48 h (the promise is at least 24 h).
                if minutes % 60 == 0 {
                    let before = crate::store::now() - chrono::Duration::hours(48);
                    match housekeeping_db
                        .run(move |conn| crate::store::ledger::prune_idempotency(conn, before))
                        .await
                    {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(pruned = n, "old idempotency keys removed"),
                        Err(e) => tracing::warn!(error = %e, "pruning idempotency keys failed"),
                    }
                    // The delivery log (sent or dead email and webhook rows) is kept 30 days.
                    let before = crate::store::now() - chrono::Duration::days(DELIVERY_LOG_DAYS);
                    match housekeeping_db
                        .run(move |conn| crate::store::notify::prune_deliveries(conn, before))
                        .await
                    {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(pruned = n, "old deliveries removed"),
                        Err(e) => tracing::warn!(error = %e, "pruning deliveries failed"),
                    }
                }
                minutes += 1;
            }
        });
        Ok(Services {
            identity,
            db,
            hub,
            categorizer,
            ledgers,
            users,
        })
    }
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let settings = Arc::new(settings);
        let Services {
            identity,
            db,
            hub,
            categorizer,
            ledgers,
            users,
        } = Services::start(&settings).await?;
        let state = web::Data::new(AppState {
            identity,
            db,
            hub,
            categorizer,
            ledgers,
            users,
            tickets: Tickets::default(),
            imports: Default::default(),
            settings: settings.clone(),
            started_at: Instant::now(),
        });
        let listener = TcpListener::bind(settings.listen)
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let port = listener.local_addr()?.port();
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .configure(http::configure)
                .wrap(from_fn(http::telemetry::request_context))
        })
        .workers(settings.workers)
        .listen(listener)?
        .run();
        Ok(Application {
            port,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// `ledgerline serve`: run until SIGINT/SIGTERM.
pub fn serve(settings: Settings) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let listen = settings.listen;
        let backend = settings.database.backend_name();
        let app = Application::build(settings).await?;
        tracing::info!(
            address = %format!("http://{}:{}", listen.ip(), app.port()),
            database = backend,
            version = env!("CARGO_PKG_VERSION"),
            "ledgerline is listening"
        );
        app.run_until_stopped().await?;
        tracing::info!("ledgerline stopped");
        Ok(())
    })
}
