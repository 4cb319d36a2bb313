//! Notifications end to end: budget alerts by email through a real SMTP server on loopback,
//! retries while SMTP is down, header safety, signed webhooks with retries and a delivery log,
//! preferences, password reset by emailed code, and the monthly summary.
use std::time::Duration;

use chrono::{Datelike, NaiveDate};
use diesel::prelude::*;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::{spawn_with, Backend, TestApp, PASSWORD};
use crate::ledger::{account, category, send, txn, user};
use crate::mailbox::{free_port, HookReceiver, SmtpServer};
use crate::on_both_backends;
use ledgerline::config::Config;
use ledgerline::store::schema::notifications;

on_both_backends!(
    old_deliveries_are_pruned_but_not_the_inbox_or_the_queue,
    a_budget_threshold_sends_exactly_one_email,
    mail_waits_while_smtp_is_down_and_goes_once_it_is_back,
    webhooks_are_signed_logged_and_retried_until_dead,
    password_reset_by_emailed_code,
    monthly_summary_has_the_right_totals,
);

/// Quick retries for tests: the real defaults wait 30 s and more.
fn quick(config: &mut Config, smtp: Option<String>) {
    config.smtp_url = smtp.map(Into::into);
    config.notify_tick = Duration::from_millis(50);
    config.notify_backoff_base = Duration::from_millis(50);
    config.notify_backoff_cap = Duration::from_millis(200);
    config.scheduler_tick = Duration::from_millis(100);
    // The summary test runs on any day of the month.
    config.monthly_summary_catch_up_days = 31;
}

fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

/// (status, attempts) of the outbox rows of one kind and channel.
async fn outbox(app: &TestApp, kind: &str, channel: &str) -> Vec<(String, i32)> {
    let (kind, channel) = (kind.to_string(), channel.to_string());
    app.state
        .db
        .run(move |conn| {
            notifications::table
                .filter(notifications::kind.eq(kind))
                .filter(notifications::channel.eq(channel))
                .select((notifications::status, notifications::attempts))
                .load::<(String, i32)>(conn)
                .map_err(Into::into)
        })
        .await
        .unwrap()
}

async fn a_budget_threshold_sends_exactly_one_email(backend: Backend) {
    let smtp = SmtpServer::start();
    let url = smtp.url();
    let Some(app) = spawn_with(backend, |c| quick(c, Some(url))).await else {
        return;
    };
    let t = user(&app, "alerts@example.org").await;
    let (s, me) = send(
        &app,
        Method::PATCH,
        "/api/v1/me",
        &t,
        Some(json!({ "name": "Ada" })),
    )
    .await;
    assert_eq!(s, 200, "{me}");
    let a = account(&app, &t, "Main", "EUR", "5000.00").await;
    let groceries = category(&app, &t, "Groceries").await;
    let (s, budget) = send(
        &app,
        Method::POST,
        "/api/v1/budgets",
        &t,
        Some(json!({
            "name": "Groceries", "limit": "1500.00", "period": "monthly",
            "category_ids": [groceries], "thresholds": [80],
        })),
    )
    .await;
    assert_eq!(s, 201, "{budget}");
    let day = today().to_string();
    // Below the threshold: nothing.
    txn(
        &app,
        &t,
        &a,
        "-1000.00",
        json!({ "date": day, "category_id": groceries }),
    )
    .await;
    // Across it: one alert. More spending above it: still one.
    txn(
        &app,
        &t,
        &a,
        "-234.50",
        json!({ "date": day, "category_id": groceries }),
    )
    .await;
    txn(
        &app,
        &t,
        &a,
        "-10.00",
        json!({ "date": day, "category_id": groceries }),
    )
    .await;

    let mails = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1, "one email for one crossing");
    actix_web::rt::time::sleep(Duration::from_millis(700)).await;
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "and no second one");
    let mail = &mails[0];
    assert_eq!(mail.rcpt, vec!["alerts@example.org".to_string()]);
    assert_eq!(
        mail.subject(),
        "Budget \"Groceries\" reached 80%: €1,234.50 of €1,500.00"
    );
    let (text, html) = (mail.text(), mail.html());
    for part in [&text, &html] {
        assert!(part.contains("Hello Ada"), "{part}");
        assert!(part.contains("€1,234.50"), "{part}");
        assert!(part.contains("€1,500.00"), "{part}");
        assert!(part.contains("€265.50"), "remaining: {part}");
    }
    assert!(html.contains("<table"), "the HTML part is HTML: {html}");
    assert!(!text.contains('<'), "the text part is text: {text}");
    // The outbox row is sent; the Message-ID is made of its id (a retry carries the same).
    assert_eq!(
        outbox(&app, "budget.threshold_reached", "email").await,
        vec![("sent".to_string(), 1)]
    );
    let row_id: String = app
        .state
        .db
        .run(|conn| {
            notifications::table
                .filter(notifications::channel.eq("email"))
                .select(notifications::id)
                .first(conn)
                .map_err(Into::into)
        })
        .await
        .unwrap();
    assert_eq!(mail.message_id(), format!("{row_id}@localhost"));
    // The in-app notification is there too.
    let (_, list) = send(&app, Method::GET, "/api/v1/notifications", &t, None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["items"][0]["kind"], "budget.threshold_reached");
}

async fn mail_waits_while_smtp_is_down_and_goes_once_it_is_back(backend: Backend) {
    let port = free_port();
    let Some(app) = spawn_with(backend, |c| {
        quick(c, Some(format!("smtp://127.0.0.1:{port}")));
        c.notify_max_attempts = 100;
    })
    .await
    else {
        return;
    };
    user(&app, "down@example.org").await;
    let r = app
        .post(
            "/api/v1/auth/password-reset",
            None,
            json!({ "email": "down@example.org" }),
        )
        .await;
    assert_eq!(r.status, 202);
    // Nothing listens: the mail is tried, fails, and waits for its next try.
    let start = std::time::Instant::now();
    loop {
        let rows = outbox(&app, "password_reset", "email").await;
        if rows.first().is_some_and(|(s, n)| s == "failed" && *n >= 3) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no retries: {rows:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    // SMTP comes back on that port: delivered, once.
    let smtp = SmtpServer::start_on_port(port);
    let mails = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1);
    actix_web::rt::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(smtp.mails().len(), 1, "delivered once");
    let rows = outbox(&app, "password_reset", "email").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "sent");
    // A claim counts its try before making it: the third may have been the one in flight when
    // SMTP came back (the first two failed for sure).
    assert!(rows[0].1 >= 3, "{rows:?}");
    assert_eq!(mails[0].subject(), "Reset your Ledgerline password");
}

#[actix_web::test]
async fn names_cannot_inject_mail_headers() {
    let smtp = SmtpServer::start();
    let url = smtp.url();
    let Some(app) = spawn_with(Backend::Sqlite, |c| quick(c, Some(url))).await else {
        return;
    };
    let t = user(&app, "eve@example.org").await;
    // The API refuses control characters in names…
    let (s, body) = send(
        &app,
        Method::POST,
        "/api/v1/categories",
        &t,
        Some(json!({
            "name": "Food\r\nBcc: spy@evil.test", "kind": "expense",
        })),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    let (s, body) = send(
        &app,
        Method::PATCH,
        "/api/v1/me",
        &t,
        Some(json!({
            "name": "Eve\r\nBcc: spy@evil.test",
        })),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    // …and a name that got into the database anyway (older data, another tool) still adds no
    // header: the mail layer makes header text safe itself.
    app.state
        .db
        .run(|conn| {
            diesel::update(ledgerline::store::schema::users::table)
                .set(ledgerline::store::schema::users::name.eq("Eve\r\nBcc: spy@evil.test"))
                .execute(conn)
                .map_err(Into::into)
        })
        .await
        .unwrap();
    let r = app
        .post(
            "/api/v1/auth/password-reset",
            None,
            json!({ "email": "eve@example.org" }),
        )
        .await;
    assert_eq!(r.status, 202);
    let mails = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(
        mail.rcpt,
        vec!["eve@example.org".to_string()],
        "no other recipient"
    );
    let headers = mail.header_lines();
    assert!(
        !headers
            .iter()
            .any(|h| h.to_ascii_lowercase().starts_with("bcc")),
        "{headers:#?}"
    );
    let to: Vec<&String> = headers.iter().filter(|h| h.starts_with("To:")).collect();
    assert_eq!(to.len(), 1, "{headers:#?}");
    assert!(to[0].contains("eve@example.org"), "{to:?}");
}

fn verify_signature(secret: &str, header: &str, body: &str) -> bool {
    let Some((t, v1)) = header
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    expected == v1
}

async fn webhooks_are_signed_logged_and_retried_until_dead(backend: Backend) {
    let receiver = HookReceiver::start();
    let Some(app) = spawn_with(backend, |c| {
        quick(c, None);
        c.webhooks_allow_private = true;
        c.notify_max_attempts = 3;
    })
    .await
    else {
        return;
    };
    let t = user(&app, "hooks@example.org").await;
    let a = account(&app, &t, "Main", "EUR", "100.00").await;
    let (s, hook) = send(&app, Method::POST, "/api/v1/webhooks", &t, Some(json!({
        "url": receiver.url, "event_types": ["transaction.created"], "description": "ledger sync",
    })))
    .await;
    assert_eq!(s, 201, "{hook}");
    let secret = hook["secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 32);
    let hook_id = hook["id"].as_str().unwrap().to_string();
    let (_, listed) = send(&app, Method::GET, "/api/v1/webhooks", &t, None).await;
    assert_eq!(listed["items"][0]["id"], hook_id.as_str());
    assert!(
        listed["items"][0].get("secret").is_none(),
        "the secret is shown once"
    );

    let created = txn(&app, &t, &a, "-12.34", json!({})).await;
    let hooks = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(
        hooks.len(),
        1,
        "only the subscribed type (no balance.updated)"
    );
    let h = &hooks[0];
    assert!(
        verify_signature(&secret, &h.header("ledgerline-signature"), &h.body),
        "signature {} over {}",
        h.header("ledgerline-signature"),
        h.body
    );
    assert!(!verify_signature(
        "another secret!!",
        &h.header("ledgerline-signature"),
        &h.body
    ));
    assert_eq!(h.header("ledgerline-event"), "transaction.created");
    let envelope: Value = serde_json::from_str(&h.body).unwrap();
    assert_eq!(envelope["type"], "transaction.created");
    assert_eq!(envelope["payload"]["id"], created["id"]);
    assert_eq!(envelope["payload"]["amount"], "-12.34");
    assert!(envelope["seq"].as_i64().unwrap() > 0);
    let ts: i64 = h.header("ledgerline-timestamp").parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);

    // The receiver fails from now on: three tries, then dead, all in the log.
    receiver.answer(500);
    txn(&app, &t, &a, "-1.00", json!({})).await;
    let hooks = receiver.wait_for(4, Duration::from_secs(10)).await;
    assert_eq!(hooks.len(), 4);
    let same: Vec<_> = hooks[1..]
        .iter()
        .map(|h| h.header("ledgerline-delivery"))
        .collect();
    assert!(
        same.iter().all(|d| *d == same[0]),
        "retries of one delivery: {same:?}"
    );
    let start = std::time::Instant::now();
    let log = loop {
        let (s, log) = send(
            &app,
            Method::GET,
            &format!("/api/v1/webhooks/{hook_id}/deliveries"),
            &t,
            None,
        )
        .await;
        assert_eq!(s, 200, "{log}");
        if log["items"][0]["status"] == "dead" {
            break log;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{log}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    };
    actix_web::rt::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(receiver.hooks().len(), 4, "no try after dead");
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{log}");
    assert_eq!(items[0]["attempts"], 3);
    assert_eq!(items[0]["response_status"], 500);
    assert!(
        items[0]["last_error"].as_str().unwrap().contains("500"),
        "{log}"
    );
    assert_eq!(items[1]["status"], "sent");
    assert_eq!(items[1]["attempts"], 1);
    assert_eq!(items[1]["response_status"], 200);
    assert_eq!(items[1]["message_id"], envelope["message_id"]);

    // Another user cannot see or touch it.
    let other = user(&app, "other-hooks@example.org").await;
    let (s, _) = send(
        &app,
        Method::GET,
        &format!("/api/v1/webhooks/{hook_id}/deliveries"),
        &other,
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = send(
        &app,
        Method::DELETE,
        &format!("/api/v1/webhooks/{hook_id}"),
        &other,
        None,
    )
    .await;
    assert_eq!(s, 404);
    // Pausing it stops deliveries; deleting it removes it.
    let (s, paused) = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/webhooks/{hook_id}"),
        &t,
        Some(json!({ "active": false })),
    )
    .await;
    assert_eq!(s, 200, "{paused}");
    assert_eq!(paused["active"], false);
    txn(&app, &t, &a, "-2.00", json!({})).await;
    actix_web::rt::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(receiver.hooks().len(), 4);
    let (s, _) = send(
        &app,
        Method::DELETE,
        &format!("/api/v1/webhooks/{hook_id}"),
        &t,
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = send(
        &app,
        Method::GET,
        &format!("/api/v1/webhooks/{hook_id}"),
        &t,
        None,
    )
    .await;
    assert_eq!(s, 404);
}

#[actix_web::test]
async fn webhook_targets_are_checked() {
    // Default settings: private targets refused.
    let Some(app) = spawn_with(Backend::Sqlite, |c| quick(c, None)).await else {
        return;
    };
    let t = user(&app, "ssrf@example.org").await;
    for (url, why) in [
        ("http://127.0.0.1:9/x", "loopback"),
        ("http://localhost:8080/x", "private"),
        ("http://169.254.169.254/latest/meta-data", "private"),
        ("http://10.1.2.3/", "private"),
        ("http://[::1]/", "loopback"),
        ("ftp://example.org/x", "http"),
        ("https://user:pw@example.org/x", "credentials"),
        ("not a url", "URL"),
    ] {
        let (s, body) = send(
            &app,
            Method::POST,
            "/api/v1/webhooks",
            &t,
            Some(json!({ "url": url })),
        )
        .await;
        assert_eq!(s, 422, "{url}: {body}");
        assert_eq!(body["errors"][0]["field"], "url", "{url}: {body}");
        assert!(
            body["errors"][0]["message"].as_str().unwrap().contains(why),
            "{url}: {body}"
        );
    }
    let (s, body) = send(
        &app,
        Method::POST,
        "/api/v1/webhooks",
        &t,
        Some(json!({
            "url": "https://hooks.example.org/x", "event_types": ["transaction.exploded"],
        })),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "event_types[0]");
    let (s, body) = send(
        &app,
        Method::POST,
        "/api/v1/webhooks",
        &t,
        Some(json!({
            "url": "https://hooks.example.org/x", "secret": "short",
        })),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "secret");
}

#[actix_web::test]
async fn preferences_choose_the_channels() {
    let smtp = SmtpServer::start();
    let url = smtp.url();
    let Some(app) = spawn_with(Backend::Sqlite, |c| quick(c, Some(url))).await else {
        return;
    };
    let t = user(&app, "prefs@example.org").await;
    let (s, prefs) = send(
        &app,
        Method::GET,
        "/api/v1/notification-preferences",
        &t,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        prefs["channels"]["budget.threshold_reached"],
        json!(["in_app", "email", "webhook"])
    );
    assert_eq!(prefs["monthly_summary"], true);
    for (bad, field) in [
        // An unknown channel, an unknown kind, and webhooks for security notices.
        (
            json!({ "budget.threshold_reached": ["in_app", "sms"] }),
            "channels.budget.threshold_reached[1]",
        ),
        (json!({ "weather": ["email"] }), "channels.weather"),
        (json!({ "security": ["webhook"] }), "channels.security[0]"),
    ] {
        let (s, body) = send(
            &app,
            Method::PUT,
            "/api/v1/notification-preferences",
            &t,
            Some(json!({ "channels": bad })),
        )
        .await;
        assert_eq!(s, 422, "{body}");
        assert_eq!(body["errors"][0]["field"], field, "{body}");
    }
    let (s, prefs) = send(
        &app,
        Method::PUT,
        "/api/v1/notification-preferences",
        &t,
        Some(json!({
            "channels": { "budget.threshold_reached": ["in_app"] }, "monthly_summary": false,
        })),
    )
    .await;
    assert_eq!(s, 200, "{prefs}");
    assert_eq!(
        prefs["channels"]["budget.threshold_reached"],
        json!(["in_app"])
    );
    assert_eq!(
        prefs["channels"]["goal.reached"],
        json!(["in_app", "email", "webhook"]),
        "others unchanged"
    );
    assert_eq!(prefs["monthly_summary"], false);

    // In-app only: the alert is in the list, no email goes out.
    let a = account(&app, &t, "Main", "EUR", "100.00").await;
    let coffee = category(&app, &t, "Coffee").await;
    let (s, _) = send(&app, Method::POST, "/api/v1/budgets", &t, Some(json!({
        "name": "Coffee", "limit": "10.00", "period": "monthly", "category_ids": [coffee], "thresholds": [100],
    })))
    .await;
    assert_eq!(s, 201);
    txn(
        &app,
        &t,
        &a,
        "-12.00",
        json!({ "date": today().to_string(), "category_id": coffee }),
    )
    .await;
    let start = std::time::Instant::now();
    loop {
        let (_, list) = send(&app, Method::GET, "/api/v1/notifications", &t, None).await;
        if !list["items"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10));
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    assert!(
        smtp.mails().is_empty(),
        "no email: {:?}",
        smtp.mails().first().map(|m| m.subject())
    );
    assert!(outbox(&app, "budget.threshold_reached", "email")
        .await
        .is_empty());

    // Preferences survive a restart.
    let again = crate::helpers::restart(&app).await;
    let t2 = crate::ledger::login_token(&again, "prefs@example.org").await;
    let (_, prefs) = send(
        &again,
        Method::GET,
        "/api/v1/notification-preferences",
        &t2,
        None,
    )
    .await;
    assert_eq!(prefs["monthly_summary"], false);
}

async fn password_reset_by_emailed_code(backend: Backend) {
    let smtp = SmtpServer::start();
    let url = smtp.url();
    let Some(app) = spawn_with(backend, |c| quick(c, Some(url))).await else {
        return;
    };
    let t = user(&app, "forgetful@example.org").await;
    let pair = app.login("forgetful@example.org", PASSWORD).await;
    let refresh = pair["refresh_token"].as_str().unwrap().to_string();
    // Unknown and known addresses get the same answer.
    let unknown = app
        .post(
            "/api/v1/auth/password-reset",
            None,
            json!({ "email": "nobody@example.org" }),
        )
        .await;
    let known = app
        .post(
            "/api/v1/auth/password-reset",
            None,
            json!({ "email": "Forgetful@Example.org" }),
        )
        .await;
    assert_eq!(unknown.status, 202);
    assert_eq!(known.status, 202);
    assert_eq!(unknown.json(), known.json());
    let mails = smtp.wait_for(1, Duration::from_secs(10)).await;
    let reset: Vec<_> = mails
        .iter()
        .filter(|m| m.subject() == "Reset your Ledgerline password")
        .collect();
    assert_eq!(reset.len(), 1, "only the real account gets a mail");
    assert_eq!(reset[0].rcpt, vec!["forgetful@example.org".to_string()]);
    let text = reset[0].text();
    let code = text
        .lines()
        .map(str::trim)
        .find(|l| {
            l.len() >= 40
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .unwrap_or_else(|| panic!("a code in {text}"))
        .to_string();
    assert!(reset[0].html().contains(&code));
    // A wrong code, a weak password.
    let r = app
        .post(
            "/api/v1/auth/password-reset/confirm",
            None,
            json!({ "token": "nope", "new_password": "a brand new passphrase" }),
        )
        .await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "token");
    let r = app
        .post(
            "/api/v1/auth/password-reset/confirm",
            None,
            json!({ "token": code, "new_password": "short" }),
        )
        .await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "new_password");
    // The code sets the new password once; every session ends.
    let r = app
        .post(
            "/api/v1/auth/password-reset/confirm",
            None,
            json!({ "token": code, "new_password": "a brand new passphrase" }),
        )
        .await;
    assert_eq!(r.status, 204);
    let r = app
        .post(
            "/api/v1/auth/password-reset/confirm",
            None,
            json!({ "token": code, "new_password": "yet another passphrase" }),
        )
        .await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "token", "single use");
    assert_eq!(app.me_status(&t).await, 401, "old access token ends");
    let r = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refresh_token": refresh }),
        )
        .await;
    assert_eq!(r.status, 401, "old refresh token ends");
    let r = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({ "email": "forgetful@example.org", "password": PASSWORD }),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({ "email": "forgetful@example.org", "password": "a brand new passphrase" }),
        )
        .await;
    assert_eq!(r.status, 200);
    // The security notice arrives too, and the sent reset mail no longer keeps its code.
    let mails = smtp.wait_for(2, Duration::from_secs(10)).await;
    assert!(
        mails
            .iter()
            .any(|m| m.subject() == "Security notice: Your password was reset"),
        "{:?}",
        mails.iter().map(|m| m.subject()).collect::<Vec<_>>()
    );
    let payloads: Vec<String> = app
        .state
        .db
        .run(|conn| {
            notifications::table
                .filter(notifications::kind.eq("password_reset"))
                .select(notifications::payload)
                .load(conn)
                .map_err(Into::into)
        })
        .await
        .unwrap();
    assert!(payloads.iter().all(|p| !p.contains(&code)), "{payloads:?}");
}

async fn monthly_summary_has_the_right_totals(backend: Backend) {
    let smtp = SmtpServer::start();
    let url = smtp.url();
    let Some(app) = spawn_with(backend, |c| quick(c, Some(url))).await else {
        return;
    };
    let t = user(&app, "monthly@example.org").await;
    // Off while the month is seeded, so the Scheduler does not summarize half of it.
    let (s, _) = send(
        &app,
        Method::PUT,
        "/api/v1/notification-preferences",
        &t,
        Some(json!({ "monthly_summary": false })),
    )
    .await;
    assert_eq!(s, 200);
    let first = today().with_day(1).unwrap();
    let month = first.checked_sub_months(chrono::Months::new(1)).unwrap();
    let before = month.checked_sub_months(chrono::Months::new(1)).unwrap();
    let day = |d: NaiveDate, n: u32| d.with_day(n).unwrap().to_string();
    let a = account(&app, &t, "Main", "EUR", "0").await;
    let usd = account(&app, &t, "Travel", "USD", "0").await;
    let (salary, groceries, rent, restaurants) = (
        category(&app, &t, "Salary").await,
        category(&app, &t, "Groceries").await,
        category(&app, &t, "Rent").await,
        category(&app, &t, "Restaurants").await,
    );
    let (s, _) = send(
        &app,
        Method::PUT,
        "/api/v1/exchange-rates",
        &t,
        Some(json!({
            "rates": [{ "base": "USD", "quote": "EUR", "date": day(before, 1), "rate": "0.5" }],
        })),
    )
    .await;
    assert_eq!(s, 200);
    let booked = [
        // The month: 3,000 earned; 120.50 + 45.25 + 800 + 60 USD (at 0.5 = 30 EUR) spent.
        (&a, "3000.00", day(month, 1), &salary),
        (&a, "-120.50", day(month, 3), &groceries),
        (&a, "-45.25", day(month, 17), &groceries),
        (&a, "-800.00", day(month, 5), &rent),
        (&usd, "-60.00", day(month, 20), &restaurants),
        // The month before: 500 spent, 2,500 earned.
        (&a, "-500.00", day(before, 10), &rent),
        (&a, "2500.00", day(before, 1), &salary),
        // This month does not count.
        (&a, "-7.00", first.to_string(), &groceries),
    ];
    for (account, amount, date, category) in booked {
        txn(
            &app,
            &t,
            account,
            amount,
            json!({ "date": date, "category_id": category }),
        )
        .await;
    }
    let (s, _) = send(&app, Method::POST, "/api/v1/budgets", &t, Some(json!({
        "name": "Food budget", "limit": "200.00", "period": "monthly", "category_ids": [groceries],
        "start_date": day(before, 1),
    })))
    .await;
    assert_eq!(s, 201);
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert!(smtp.mails().is_empty(), "nothing while switched off");
    let (s, _) = send(
        &app,
        Method::PUT,
        "/api/v1/notification-preferences",
        &t,
        Some(json!({ "monthly_summary": true })),
    )
    .await;
    assert_eq!(s, 200);

    let mails = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1);
    let label = month.format("%B %Y").to_string();
    let mail = &mails[0];
    // Expenses 120.50 + 45.25 + 800 + 30 = 995.75; income 3,000; net 2,004.25.
    assert_eq!(
        mail.subject(),
        format!("Your {label}: €995.75 spent, €3,000.00 received")
    );
    let text = mail.text();
    for expected in [
        "Income:   €3,000.00 (+€500.00 vs the month before)",
        "Expenses: €995.75 (+€495.75 vs the month before)",
        "Net:      €2,004.25",
        // Top categories roll sub-categories up into their parents.
        "- Housing: €800.00",
        "- Food: €195.75",
        "- Food budget: €165.75 of €200.00 (82%)",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let html = mail.html();
    assert!(
        html.contains("€2,004.25") && html.contains("Food budget"),
        "{html}"
    );
    // Once per month, whatever the ticks.
    actix_web::rt::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(smtp.mails().len(), 1);
}

/// Housekeeping forgets delivered and dead email/webhook rows after 30 days; mail still waiting
/// or retrying, "once per month" keys and the user's in-app notifications are never pruned.
async fn old_deliveries_are_pruned_but_not_the_inbox_or_the_queue(backend: Backend) {
    let Some(app) = spawn_with(backend, |_| {}).await else {
        return;
    };
    let reg = app.register("prune@example.org", PASSWORD).await;
    let uid = reg["user"]["id"].as_str().unwrap().to_string();
    let now = ledgerline::store::now();
    let old = now - chrono::Duration::days(40);
    let recent = now - chrono::Duration::days(1);
    let row = |label: &str, channel: &str, status: &str, created, sent| {
        let mut r = ledgerline::store::budgets::NotificationRow::new(
            &uid,
            label,
            channel,
            "{}".into(),
            created,
        );
        r.status = status.into();
        r.sent_at = sent;
        // Waiting rows are due tomorrow, so the running Notifier leaves them alone.
        r.next_attempt_at =
            matches!(status, "pending" | "failed").then_some(now + chrono::Duration::days(1));
        r
    };
    let mut summary = row("old_summary_email", "email", "sent", old, Some(old));
    summary.dedup_key = Some(format!("monthly_summary:{uid}:2026-09"));
    let rows = vec![
        row("old_sent_email", "email", "sent", old, Some(old)),
        row("old_dead_webhook", "webhook", "dead", old, None),
        row("old_pending_email", "email", "pending", old, None),
        row("old_failed_email", "email", "failed", old, None),
        row("old_in_app", "in_app", "sent", old, Some(old)),
        row("recent_sent_email", "email", "sent", recent, Some(recent)),
        row("late_sent_webhook", "webhook", "sent", old, Some(recent)),
        summary,
    ];
    let (pruned, left) = app
        .state
        .db
        .run(move |conn| {
            for r in &rows {
                ledgerline::store::notify::insert_notification(conn, r)?;
            }
            let pruned = ledgerline::store::notify::prune_deliveries(
                conn,
                ledgerline::store::now() - chrono::Duration::days(30),
            )?;
            let mut left: Vec<String> = notifications::table
                .filter(notifications::user_id.eq(&rows[0].user_id))
                .select(notifications::kind)
                .load(conn)?;
            left.sort();
            Ok((pruned, left))
        })
        .await
        .unwrap();
    assert_eq!(pruned, 2);
    assert_eq!(
        left,
        [
            "late_sent_webhook",
            "old_failed_email",
            "old_in_app",
            "old_pending_email",
            "old_summary_email",
            "recent_sent_email"
        ]
    );
}
