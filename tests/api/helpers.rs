use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use actix_web::web;
use diesel::{Connection, RunQueryDsl};
use ledgerline::app::{AppState, Application};
use ledgerline::config::Config;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub const PASSWORD: &str = "correct horse battery staple";

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each listed `async fn name(backend: Backend)` as two tests, `sqlite::name` and
/// `postgres::name`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[actix_web::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )+
        }
        mod postgres {
            $(
                #[actix_web::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )+
        }
    };
}

/// The PostgreSQL server tests may create databases on, if configured.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("LEDGERLINE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").is_err(),
                "LEDGERLINE_TEST_POSTGRES_URL must be set in CI"
            );
            None
        }
    }
}

/// A fresh PostgreSQL database, dropped when this is dropped.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

impl PgDatabase {
    pub fn create(admin_url: &str) -> PgDatabase {
        let name = format!("ledgerline_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn =
            diesel::PgConnection::establish(admin_url).expect("connect to test postgres");
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .expect("create test database");
        let mut url = url::Url::parse(admin_url).expect("postgres url");
        url.set_path(&format!("/{name}"));
        PgDatabase {
            admin_url: admin_url.to_string(),
            name,
            url: url.to_string(),
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Ok(mut conn) = diesel::PgConnection::establish(&self.admin_url) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn);
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: web::Data<AppState>,
    pub data_dir: PathBuf,
    handle: actix_web::dev::ServerHandle,
    _dir: Option<tempfile::TempDir>,
    _pg: Option<PgDatabase>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Ask the server to stop; the test's runtime ends right after.
        drop(self.handle.stop(false));
    }
}

/// A server with default settings on a fresh database, or `None` when PostgreSQL is wanted but
/// not configured.
pub async fn spawn(backend: Backend) -> Option<TestApp> {
    spawn_with(backend, |_| {}).await
}

pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Option<TestApp> {
    let dir = tempfile::tempdir().expect("temp dir");
    let pg = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => match postgres_admin_url() {
            Some(admin) => Some(
                web::block(move || PgDatabase::create(&admin))
                    .await
                    .expect("create pg db"),
            ),
            None => {
                eprintln!(
                    "LEDGERLINE_TEST_POSTGRES_URL is not set: skipping the PostgreSQL variant"
                );
                return None;
            }
        },
    };
    let mut config = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        database_url: pg.as_ref().map(|p| p.url.clone()),
        workers: 2,
        db_pool_size: 4,
        max_concurrent_hashes: 2,
        ..Config::default()
    };
    tweak(&mut config);
    let settings = config.validate().expect("valid test config");
    let app = Application::build(settings).await.expect("server starts");
    let port = app.port();
    let state = app.state();
    let handle = app.server_handle();
    actix_web::rt::spawn(app.run_until_stopped());
    Some(TestApp {
        base: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
        state,
        data_dir: dir.path().to_path_buf(),
        handle,
        _dir: Some(dir),
        _pg: pg,
    })
}

/// A second server on the same data directory and database (the first keeps them).
pub async fn restart(app: &TestApp) -> TestApp {
    let database_url = match &app.state.settings.database {
        ledgerline::config::DatabaseUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
        ledgerline::config::DatabaseUrl::Postgres(u) => u.clone(),
    };
    let settings = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: app.data_dir.clone(),
        database_url: Some(database_url),
        workers: 2,
        db_pool_size: 4,
        max_concurrent_hashes: 2,
        ..Config::default()
    }
    .validate()
    .expect("valid test config");
    let server = Application::build(settings)
        .await
        .expect("server starts again");
    let port = server.port();
    let state = server.state();
    let handle = server.server_handle();
    actix_web::rt::spawn(server.run_until_stopped());
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
        state,
        data_dir: app.data_dir.clone(),
        handle,
        _dir: None,
        _pg: None,
    }
}

/// An answer, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or_else(|_| {
            panic!(
                "not JSON ({}): {}",
                self.status,
                String::from_utf8_lossy(&self.bytes)
            )
        })
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Assert a problem+json answer with this status; returns the body.
    pub fn problem(&self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "body: {}",
            String::from_utf8_lossy(&self.bytes)
        );
        assert_eq!(self.content_type(), "application/problem+json");
        let body = self.json();
        assert_eq!(body["status"], status);
        assert!(
            body["title"].is_string() && body["type"].is_string(),
            "{body}"
        );
        body
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A client whose connections come from another loopback address (another "IP").
    pub fn client_from(ip: [u8; 4]) -> reqwest::Client {
        reqwest::Client::builder()
            .local_address(IpAddr::from(ip))
            .build()
            .expect("client")
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.send_with(&self.client, method, path, token, body)
            .await
    }

    pub async fn send_with(
        &self,
        client: &reqwest::Client,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        Reply {
            status: resp.status(),
            headers: resp.headers().clone(),
            bytes: resp.bytes().await.expect("body").to_vec(),
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.send(Method::POST, path, token, Some(body)).await
    }

    /// Register and return the answer's body (user and tokens).
    pub async fn register(&self, email: &str, password: &str) -> Value {
        let r = self
            .post(
                "/api/v1/auth/register",
                None,
                json!({ "email": email, "password": password }),
            )
            .await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.bytes));
        r.json()
    }

    pub async fn login(&self, email: &str, password: &str) -> Value {
        let r = self
            .post(
                "/api/v1/auth/login",
                None,
                json!({ "email": email, "password": password }),
            )
            .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
        r.json()
    }

    /// Status of `GET /me` with this token.
    pub async fn me_status(&self, token: &str) -> u16 {
        self.get("/api/v1/me", token).await.status.as_u16()
    }
}

pub fn token(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {v}"))
        .to_string()
}

/// A WebSocket client of the test server.
pub type WsClient =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The JSON frames that arrive until one of type `until` has come, however long a loaded
/// machine takes to send it (up to 20 s), and then until `quiet` passes with none, so that a
/// frame that should not be there is still caught.
pub async fn frames_until(socket: &mut WsClient, until: &str, quiet: Duration) -> Vec<Value> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let mut out: Vec<Value> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let waited = out.iter().any(|f| f["type"] == until);
        let wait = if waited {
            quiet
        } else {
            deadline.saturating_duration_since(std::time::Instant::now())
        };
        match actix_web::rt::time::timeout(wait, socket.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => out.push(serde_json::from_str(&t).unwrap()),
            Ok(Some(Ok(_))) => {}
            _ if waited => return out,
            _ => panic!("no {until} frame within 20 s; got {out:?}"),
        }
    }
}
