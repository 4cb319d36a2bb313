//! Budgets: live status, thresholds raised exactly once (also across a restart), re-armed when
//! spend drops, seen on the WebSocket and as in-app notifications.
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{frames_until, spawn, Backend, TestApp, WsClient};
use crate::ledger::{account, category, send, txn, user};
use crate::on_both_backends;

on_both_backends!(
    budget_status_follows_spending,
    thresholds_fire_once_and_rearm_live,
    bad_budgets_are_422,
);

fn today() -> String {
    chrono::Utc::now().date_naive().to_string()
}

async fn budget_status_follows_spending(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let t = user(&app, "budget@example.org").await;
    let a = account(&app, &t, "Main", "EUR", "1000.00").await;
    let b = account(&app, &t, "Savings", "EUR", "0").await;
    let food = category(&app, &t, "Food").await;
    let groceries = category(&app, &t, "Groceries").await;
    let rent = category(&app, &t, "Rent").await;
    let (s, food_budget) = send(&app, Method::POST, "/api/v1/budgets", &t, Some(json!({ "name": "Food", "limit": "100.00", "period": "monthly", "category_ids": [food] }))).await;
    assert_eq!(s, 201, "{food_budget}");
    assert_eq!(food_budget["status"]["spent"], "0.00");
    assert_eq!(food_budget["thresholds"], json!([50, 80, 100]));
    let (_, all_budget) = send(
        &app,
        Method::POST,
        "/api/v1/budgets",
        &t,
        Some(json!({ "name": "Everything", "limit": "500", "period": "monthly" })),
    )
    .await;
    let day = today();
    txn(
        &app,
        &t,
        &a,
        "-30.00",
        json!({ "date": day, "category_id": groceries }),
    )
    .await;
    txn(
        &app,
        &t,
        &a,
        "10.00",
        json!({ "date": day, "category_id": groceries, "description": "refund" }),
    )
    .await;
    txn(
        &app,
        &t,
        &a,
        "-700.00",
        json!({ "date": day, "category_id": rent }),
    )
    .await;
    txn(&app, &t, &a, "-5.00", json!({ "date": day })).await;
    send(
        &app,
        Method::POST,
        "/api/v1/transfers",
        &t,
        Some(json!({ "from_account_id": a, "to_account_id": b, "amount": "300.00", "date": day })),
    )
    .await;
    let id = food_budget["id"].as_str().unwrap();
    let (_, got) = send(
        &app,
        Method::GET,
        &format!("/api/v1/budgets/{id}"),
        &t,
        None,
    )
    .await;
    let status = &got["status"];
    assert_eq!(
        status["spent"], "20.00",
        "groceries count, the refund reduces, rent and transfers do not"
    );
    assert_eq!(status["remaining"], "80.00");
    assert_eq!(status["percent"], 20);
    assert!(status["period_start"].as_str().unwrap().ends_with("-01"));
    let (_, got) = send(
        &app,
        Method::GET,
        &format!("/api/v1/budgets/{}", all_budget["id"].as_str().unwrap()),
        &t,
        None,
    )
    .await;
    assert_eq!(
        got["status"]["spent"], "725.00",
        "all expenses: 20 + 700 + 5 uncategorized"
    );
    // Last month's spending is not this period's.
    let last_month = (chrono::Utc::now().date_naive() - chrono::Duration::days(40)).to_string();
    txn(
        &app,
        &t,
        &a,
        "-50.00",
        json!({ "date": last_month, "category_id": groceries }),
    )
    .await;
    let (_, list) = send(&app, Method::GET, "/api/v1/budgets", &t, None).await;
    let food_now = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == id)
        .unwrap()
        .clone();
    assert_eq!(food_now["status"]["spent"], "20.00");
    // Editing the budget.
    let (s, edited) = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/budgets/{id}"),
        &t,
        Some(json!({ "limit": "40.00", "version": 1 })),
    )
    .await;
    assert_eq!(s, 200, "{edited}");
    assert_eq!(edited["status"]["percent"], 50);
    let (s, _) = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/budgets/{id}"),
        &t,
        Some(json!({ "limit": "41.00", "version": 1 })),
    )
    .await;
    assert_eq!(s, 409);
    let (s, _) = send(
        &app,
        Method::DELETE,
        &format!("/api/v1/budgets/{id}"),
        &t,
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = send(
        &app,
        Method::GET,
        &format!("/api/v1/budgets/{id}"),
        &t,
        None,
    )
    .await;
    assert_eq!(s, 404);
}

async fn connect(app: &TestApp, t: &str) -> WsClient {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let port = app.base.rsplit(':').next().unwrap();
    let mut req = format!("ws://127.0.0.1:{port}/api/v1/ws")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {t}").parse().unwrap());
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

fn kinds(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .map(|f| f["type"].as_str().unwrap().to_string())
        .collect()
}

fn alerts(frames: &[Value]) -> Vec<i64> {
    frames
        .iter()
        .filter(|f| f["type"] == "budget.threshold_reached")
        .map(|f| f["payload"]["threshold"].as_i64().unwrap())
        .collect()
}

async fn thresholds_fire_once_and_rearm_live(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let t = user(&app, "alerts@example.org").await;
    let a = account(&app, &t, "Main", "EUR", "0").await;
    let coffee = category(&app, &t, "Coffee").await;
    let (s, budget) = send(&app, Method::POST, "/api/v1/budgets", &t, Some(json!({ "name": "Coffee", "limit": "100.00", "period": "monthly", "category_ids": [coffee], "thresholds": [80, 100] }))).await;
    assert_eq!(s, 201);
    let mut socket = connect(&app, &t).await;
    let first = frames_until(&mut socket, "snapshot", Duration::from_millis(500)).await;
    assert_eq!(first[0]["type"], "snapshot");
    assert_eq!(first[0]["budgets"][0]["budget_id"], budget["id"]);
    let day = today();

    // 70%: status, no alert.
    let x = txn(
        &app,
        &t,
        &a,
        "-70.00",
        json!({ "date": day, "category_id": coffee }),
    )
    .await;
    let got = frames_until(&mut socket, "budget.status", Duration::from_millis(700)).await;
    assert_eq!(
        kinds(&got)[..3],
        ["transaction.created", "balance.updated", "budget.status"]
    );
    assert_eq!(got[2]["payload"]["percent"], 70);
    assert!(alerts(&got).is_empty());
    // 85%: exactly one 80% alert, with an in-app notification.
    txn(
        &app,
        &t,
        &a,
        "-15.00",
        json!({ "date": day, "category_id": coffee }),
    )
    .await;
    let got = frames_until(&mut socket, "budget.status", Duration::from_millis(700)).await;
    assert_eq!(alerts(&got), vec![80]);
    let alert = got
        .iter()
        .find(|f| f["type"] == "budget.threshold_reached")
        .unwrap();
    assert_eq!(alert["payload"]["spent"], "85.00");
    assert_eq!(alert["payload"]["limit"], "100.00");
    assert!(kinds(&got).contains(&"notification.created".to_string()));
    // 90%: still only the one.
    txn(
        &app,
        &t,
        &a,
        "-5.00",
        json!({ "date": day, "category_id": coffee }),
    )
    .await;
    let got = frames_until(&mut socket, "budget.status", Duration::from_millis(700)).await;
    assert!(alerts(&got).is_empty(), "{got:?}");

    // A restart (a second server on the same database) does not repeat it.
    let second = crate::helpers::restart(&app).await;
    let t2 = crate::ledger::login_token(&second, "alerts@example.org").await;
    txn(
        &second,
        &t2,
        &a,
        "-1.00",
        json!({ "date": day, "category_id": coffee }),
    )
    .await;
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let (_, notes) = send(&second, Method::GET, "/api/v1/notifications", &t2, None).await;
    assert_eq!(
        notes["items"].as_array().unwrap().len(),
        1,
        "one alert in all: {notes}"
    );
    drop(second);
    // Two servers on one database is not how Ledgerline runs: let the first one's Ledger reload.
    let (_, me) = send(&app, Method::GET, "/api/v1/me", &t, None).await;
    let uid: uuid::Uuid = me["id"].as_str().unwrap().parse().unwrap();
    ledgerline::http::ledger::ask(
        &app.state,
        uid,
        ledgerline::actors::ledger::InjectFault(ledgerline::actors::ledger::Fault::Crash),
    )
    .await
    .unwrap();

    // Deleting spend re-arms below 80%, crossing again alerts again.
    let id = x["id"].as_str().unwrap();
    let (s, _) = send(
        &app,
        Method::DELETE,
        &format!("/api/v1/transactions/{id}"),
        &t,
        None,
    )
    .await;
    assert_eq!(s, 204);
    let got = frames_until(&mut socket, "budget.status", Duration::from_millis(700)).await;
    let status = got.iter().find(|f| f["type"] == "budget.status").unwrap();
    assert_eq!(status["payload"]["percent"], 21);
    txn(
        &app,
        &t,
        &a,
        "-90.00",
        json!({ "date": day, "category_id": coffee }),
    )
    .await;
    let got = frames_until(&mut socket, "budget.status", Duration::from_millis(700)).await;
    assert_eq!(alerts(&got), vec![80, 100]);

    // In-app notifications: listed, newest first, and can be marked read.
    let (_, notes) = send(
        &app,
        Method::GET,
        "/api/v1/notifications?unread=true",
        &t,
        None,
    )
    .await;
    let items = notes["items"].as_array().unwrap().clone();
    // One for the first 80% crossing; the spend that crossed 80% and 100% at once tells
    // people once, of the highest (the events above keep both).
    assert_eq!(items.len(), 2, "{notes}");
    assert_eq!(items[0]["kind"], "budget.threshold_reached");
    assert_eq!(items[0]["payload"]["threshold"], 100);
    let nid = items[0]["id"].as_str().unwrap();
    let (s, _) = send(
        &app,
        Method::POST,
        &format!("/api/v1/notifications/{nid}/read"),
        &t,
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (_, notes) = send(
        &app,
        Method::GET,
        "/api/v1/notifications?unread=true",
        &t,
        None,
    )
    .await;
    assert_eq!(
        notes["items"].as_array().unwrap().len(),
        1,
        "one read, one left"
    );
    let other = user(&app, "nosy@example.org").await;
    let (s, _) = send(
        &app,
        Method::POST,
        &format!("/api/v1/notifications/{nid}/read"),
        &other,
        None,
    )
    .await;
    assert_eq!(s, 404);
}

async fn bad_budgets_are_422(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let t = user(&app, "badbudget@example.org").await;
    let cases = [
        (json!({}), "name"),
        (
            json!({ "name": "X", "limit": 100, "period": "monthly" }),
            "limit",
        ),
        (
            json!({ "name": "X", "limit": "-5", "period": "monthly" }),
            "limit",
        ),
        (
            json!({ "name": "X", "limit": "5", "period": "fortnightly" }),
            "period",
        ),
        (
            json!({ "name": "X", "limit": "5", "period": "custom", "start_date": "2026-01-01" }),
            "end_date",
        ),
        (
            json!({ "name": "X", "limit": "5", "period": "monthly", "category_ids": ["0192f1c4-0000-7000-8000-000000000000"] }),
            "category_ids",
        ),
        (
            json!({ "name": "X", "limit": "5", "period": "monthly", "thresholds": [0, 2000] }),
            "thresholds",
        ),
        (
            json!({ "name": "X", "limit": "5.001", "period": "monthly", "currency": "EUR" }),
            "limit",
        ),
        (
            json!({ "name": "X", "limit": "5", "period": "monthly", "currency": "EURO" }),
            "currency",
        ),
    ];
    for (body, field) in cases {
        let (s, reply) = send(
            &app,
            Method::POST,
            "/api/v1/budgets",
            &t,
            Some(body.clone()),
        )
        .await;
        assert_eq!(s, 422, "{body}: {reply}");
        assert_eq!(reply["errors"][0]["field"], field, "{body}: {reply}");
    }
}
