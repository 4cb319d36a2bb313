//! The binary as an operator runs it: zero-config start, `migrate`, `user create`, bad settings.
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{postgres_admin_url, PgDatabase, PASSWORD};

fn ledgerline() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ledgerline"));
    for (key, _) in std::env::vars() {
        if key.starts_with("LEDGERLINE_") {
            cmd.env_remove(key);
        }
    }
    cmd.env_remove("RUST_LOG");
    cmd.env_remove("MIMALLOC_PURGE_DELAY");
    cmd
}

fn run_migrate(url: &str) -> (bool, String) {
    let out = ledgerline()
        .arg("migrate")
        .env("LEDGERLINE_DATABASE_URL", url)
        .output()
        .expect("run ledgerline migrate");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn migrate_twice_is_a_no_op_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let (ok, out) = run_migrate(&url);
    assert!(ok, "{out}");
    assert!(out.contains("applied"), "{out}");
    let (ok, out) = run_migrate(&url);
    assert!(ok, "{out}");
    assert!(out.contains("up to date"), "{out}");
}

#[test]
fn migrate_twice_is_a_no_op_on_postgres() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let db = PgDatabase::create(&admin);
    let (ok, out) = run_migrate(&db.url);
    assert!(ok && out.contains("applied"), "{out}");
    let (ok, out) = run_migrate(&db.url);
    assert!(ok && out.contains("up to date"), "{out}");
}

#[test]
fn unreachable_database_is_a_clear_refusal() {
    let start = Instant::now();
    let out = ledgerline()
        .arg("serve")
        .env(
            "LEDGERLINE_DATABASE_URL",
            "postgres://ledgerline:hunter2@127.0.0.1:1/nowhere",
        )
        .env("LEDGERLINE_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect to the database"), "{err}");
    assert!(!err.contains("hunter2"), "the password leaked: {err}");
    assert!(start.elapsed() < Duration::from_secs(30));
}

#[test]
fn bad_settings_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = ledgerline()
        .current_dir(dir.path())
        .env("LEDGERLINE_LISTEN", "everywhere")
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`listen`"));

    std::fs::write(dir.path().join("ledgerline.toml"), "db_pool_sise = 3\n").unwrap();
    let out = ledgerline()
        .current_dir(dir.path())
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("db_pool_sise"));

    std::fs::write(
        dir.path().join("ledgerline.toml"),
        "rate_limit_login_per_ip = \"lots\"\n",
    )
    .unwrap();
    let out = ledgerline()
        .current_dir(dir.path())
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rate_limit_login_per_ip"));
}

/// `cargo run --release` in an empty directory: SQLite under ./data, a 0600 signing key, a
/// server that answers; then `user create --admin` from stdin, and that admin signs in.
#[actix_web::test]
async fn zero_config_start_and_user_create() {
    let dir = tempfile::tempdir().unwrap();
    let mut create = ledgerline()
        .current_dir(dir.path())
        .args(["user", "create", "--email", "Boss@Example.org", "--admin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(create.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let out = create.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("created admin boss@example.org"));

    let mut server = ledgerline()
        .current_dir(dir.path())
        .env("LEDGERLINE_LISTEN", "127.0.0.1:0")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = server.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(at) = line.find("http://127.0.0.1:") {
                let port: String = line[at + 17..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                let _ = tx.send(port);
            }
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("server announced its address");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let login = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "email": "boss@example.org", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let body: serde_json::Value = login.json().await.unwrap();
    assert_eq!(body["user"]["role"], "admin");
    // The server runs with its allocator tuned for imports (src/main.rs), under the same pid.
    #[cfg(target_os = "linux")]
    {
        let environ = std::fs::read(format!("/proc/{}/environ", server.id())).unwrap();
        assert!(
            environ
                .split(|b| *b == 0)
                .any(|var| var == b"MIMALLOC_PURGE_DELAY=10000"),
            "{}",
            String::from_utf8_lossy(&environ)
        );
    }
    let _ = server.kill();
    let _ = server.wait();

    assert!(dir.path().join("data/ledgerline.db").exists());
    let key = dir.path().join("data/signing.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // The same key is kept across restarts (tokens survive a restart).
    let before = std::fs::read(&key).unwrap();
    let out = ledgerline()
        .current_dir(dir.path())
        .arg("migrate")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(std::fs::read(&key).unwrap(), before);

    let mut dup = ledgerline()
        .current_dir(dir.path())
        .args(["user", "create", "--email", "boss@example.org"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(dup.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let out = dup.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
}

/// `ledgerline seed demo`: a user with accounts in several currencies and months of data, who
/// can sign in with the printed password.
#[actix_web::test]
async fn seed_demo_creates_a_usable_demo_user() {
    let dir = tempfile::tempdir().unwrap();
    let out = ledgerline()
        .current_dir(dir.path())
        .args(["seed", "demo", "--months", "3"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("the password is printed")
        .to_string();
    let app = ledgerline::app::Application::build(
        ledgerline::config::Config {
            listen: "127.0.0.1:0".into(),
            data_dir: dir.path().join("data"),
            ..ledgerline::config::Config::default()
        }
        .validate()
        .unwrap(),
    )
    .await
    .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    actix_web::rt::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let login: serde_json::Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "email": "demo@ledgerline.local", "password": password }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"]
        .as_str()
        .expect("demo user signs in")
        .to_string();
    let accounts: serde_json::Value = client
        .get(format!("{base}/api/v1/accounts"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let currencies: std::collections::HashSet<&str> = accounts["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["currency"].as_str().unwrap())
        .collect();
    assert!(currencies.len() >= 3, "{currencies:?}");
    let page: serde_json::Value = client
        .get(format!("{base}/api/v1/transactions?limit=500"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(page["items"].as_array().unwrap().len() > 60);
    let again = ledgerline()
        .current_dir(dir.path())
        .args(["seed", "demo"])
        .output()
        .unwrap();
    assert!(
        !again.status.success(),
        "seeding twice refuses: the user exists"
    );
}
