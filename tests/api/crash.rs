//! Acknowledged means durable: the real binary is killed with SIGKILL in the middle of writes from
//! several clients, started again on the same database, and every acknowledged transaction is
//! there with every balance equal to the sum of its transactions.
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{postgres_admin_url, PgDatabase, PASSWORD};

struct Server {
    child: Child,
    base: String,
}

fn start(data_dir: &Path, database_url: Option<&str>) -> Server {
    start_with(data_dir, database_url, &[])
}

fn start_with(data_dir: &Path, database_url: Option<&str>, env: &[(&str, String)]) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ledgerline"));
    for (key, _) in std::env::vars() {
        if key.starts_with("LEDGERLINE_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("LEDGERLINE_DATA_DIR", data_dir)
        .env("LEDGERLINE_LISTEN", "127.0.0.1:0")
        .env("LEDGERLINE_WORKERS", "2")
        .env("LEDGERLINE_LOG_LEVEL", "info")
        // The load below is meant to be as fast as it can go.
        .env("LEDGERLINE_RATE_LIMIT_API_PER_USER", "1000000/1s")
        .stderr(Stdio::piped());
    if let Some(url) = database_url {
        cmd.env("LEDGERLINE_DATABASE_URL", url);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start ledgerline");
    let stderr = child.stderr.take().unwrap();
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
        .expect("server announced its port");
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

async fn post(
    client: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> Option<(u16, Value)> {
    let mut req = client.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.ok()?;
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    Some((status, body))
}

fn minor(amount: &str) -> i64 {
    let v: i64 = amount
        .chars()
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap();
    if amount.starts_with('-') {
        -v
    } else {
        v
    }
}

async fn kill_mid_load(database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path(), database_url);
    let client = reqwest::Client::new();
    let mut users = Vec::new();
    for i in 0..4 {
        let email = format!("crash{i}@example.org");
        let (s, reg) = post(
            &client,
            format!("{}/api/v1/auth/register", server.base),
            None,
            json!({ "email": email, "password": PASSWORD, "base_currency": "EUR" }),
        )
        .await
        .unwrap();
        assert_eq!(s, 201, "{reg}");
        let token = reg["access_token"].as_str().unwrap().to_string();
        let (s, acct) = post(&client, format!("{}/api/v1/accounts", server.base), Some(&token), json!({ "name": "Main", "kind": "checking", "currency": "EUR", "opening_balance": "100.00" })).await.unwrap();
        assert_eq!(s, 201);
        users.push((email, acct["id"].as_str().unwrap().to_string()));
    }

    // Four clients per user write as fast as they can; every 201 is remembered.
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut writers = Vec::new();
    for (u, (email, account)) in users.iter().enumerate() {
        let (s, login) = post(
            &client,
            format!("{}/api/v1/auth/login", server.base),
            None,
            json!({ "email": email, "password": PASSWORD }),
        )
        .await
        .unwrap();
        assert_eq!(s, 200);
        let token = login["access_token"].as_str().unwrap().to_string();
        for w in 0..4 {
            let (client, base, token, account, acked) = (
                client.clone(),
                server.base.clone(),
                token.clone(),
                account.clone(),
                acked.clone(),
            );
            writers.push(actix_web::rt::spawn(async move {
                for n in 0..10_000 {
                    let amount = format!("-{}.{:02}", u + 1, (w * 7 + n) % 100);
                    match post(&client, format!("{base}/api/v1/transactions"), Some(&token), json!({ "account_id": account, "amount": amount, "description": format!("w{w} n{n}") })).await {
                        Some((201, body)) => acked.lock().unwrap().push((body["id"].as_str().unwrap().to_string(), amount)),
                        Some((status, body)) => panic!("unexpected {status} {body} before the kill"),
                        None => return,
                    }
                }
            }));
        }
    }
    // Let the load run, then kill -9 while requests are in flight.
    loop {
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        if acked.lock().unwrap().len() >= 300 {
            break;
        }
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 300);

    // Start again on the same database: every acknowledged write is there, balances add up.
    let mut server = start(dir.path(), database_url);
    let mut found = 0;
    for (email, account) in &users {
        let (_, login) = post(
            &client,
            format!("{}/api/v1/auth/login", server.base),
            None,
            json!({ "email": email, "password": PASSWORD }),
        )
        .await
        .unwrap();
        let token = login["access_token"].as_str().unwrap().to_string();
        let mut listed: Vec<Value> = Vec::new();
        let mut cursor = String::new();
        loop {
            let page: Value = client
                .get(format!(
                    "{}/api/v1/transactions?limit=500{cursor}",
                    server.base
                ))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            listed.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
        let ids: std::collections::HashSet<&str> =
            listed.iter().map(|t| t["id"].as_str().unwrap()).collect();
        for (id, _) in &acked {
            if ids.contains(id.as_str()) {
                found += 1;
            }
        }
        let acct: Value = client
            .get(format!("{}/api/v1/accounts/{account}", server.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let sum: i64 = listed
            .iter()
            .map(|t| minor(t["amount"].as_str().unwrap()))
            .sum();
        assert_eq!(
            minor(acct["balance"].as_str().unwrap()),
            10_000 + sum,
            "{email}: balance is opening + transactions"
        );
    }
    assert_eq!(
        found,
        acked.len(),
        "every acknowledged transaction survived the kill"
    );
    let _ = server.child.kill();
    let _ = server.child.wait();
}

#[actix_web::test]
async fn kill_9_loses_no_acknowledged_write_on_sqlite() {
    kill_mid_load(None).await;
}

#[actix_web::test]
async fn kill_9_loses_no_acknowledged_write_on_postgres() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let db = PgDatabase::create(&admin);
    kill_mid_load(Some(&db.url)).await;
}

/// The server dies after the SMTP server has the message but before it could record it as
/// sent: after the restart the mail goes again — one duplicate at most, with the same
/// Message-ID, so the receiving side can recognize it — and nothing is lost.
#[actix_web::test]
async fn kill_between_send_and_mark_sent_repeats_the_mail_once_with_its_message_id() {
    let smtp = crate::mailbox::SmtpServer::start();
    let env = [
        ("LEDGERLINE_SMTP_URL", smtp.url()),
        ("LEDGERLINE_NOTIFY_TICK", "50ms".to_string()),
        ("LEDGERLINE_NOTIFY_BACKOFF_BASE", "50ms".to_string()),
        ("LEDGERLINE_NOTIFY_BACKOFF_CAP", "200ms".to_string()),
        // A try's claim lapses 5 s after the longest timeout: the retry after the restart.
        ("LEDGERLINE_SMTP_TIMEOUT", "1s".to_string()),
        ("LEDGERLINE_WEBHOOK_TIMEOUT", "1s".to_string()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_with(dir.path(), None, &env);
    let client = reqwest::Client::new();
    let (status, _) = post(
        &client,
        format!("{}/api/v1/auth/register", server.base),
        None,
        json!({ "email": "crash-mail@example.org", "password": PASSWORD }),
    )
    .await
    .unwrap();
    assert_eq!(status, 201);
    // The SMTP server takes the message but keeps the client waiting for its "250 OK".
    smtp.hold(true);
    let (status, _) = post(
        &client,
        format!("{}/api/v1/auth/password-reset", server.base),
        None,
        json!({ "email": "crash-mail@example.org" }),
    )
    .await
    .unwrap();
    assert_eq!(status, 202);
    let first = smtp.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(first.len(), 1, "the mail reached the SMTP server");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    smtp.hold(false);

    let mut again = start_with(dir.path(), None, &env);
    let mails = smtp.wait_for(2, Duration::from_secs(30)).await;
    assert_eq!(mails.len(), 2, "sent again after the restart");
    actix_web::rt::time::sleep(Duration::from_millis(800)).await;
    let mails = smtp.mails();
    assert_eq!(mails.len(), 2, "one duplicate at most");
    assert_eq!(mails[0].message_id(), mails[1].message_id());
    assert!(!mails[0].message_id().is_empty());
    assert_eq!(mails[0].subject(), mails[1].subject());
    let _ = again.child.kill();
    let _ = again.child.wait();
}
