//! Recurring transactions created by the Scheduler (catching up, never doubling) and goals with
//! live progress.
use std::time::Duration;

use chrono::{Datelike, Months, NaiveDate};
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{frames_until, restart, spawn_with, Backend, TestApp};
use crate::ledger::{account, balance, login_token, send, user};
use crate::on_both_backends;

on_both_backends!(
    recurring_rules_catch_up_once,
    a_rule_that_cannot_be_written_holds_up_no_other,
    a_new_time_zone_moves_what_is_due,
    goals_report_progress_live,
    bad_rules_and_goals_are_422
);

async fn fast_scheduler(backend: Backend) -> Option<TestApp> {
    spawn_with(backend, |c| c.scheduler_tick = Duration::from_millis(100)).await
}

async fn recurring_rows(app: &TestApp, t: &str) -> Vec<Value> {
    let (_, list) = send(app, Method::GET, "/api/v1/transactions?limit=500", t, None).await;
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["source"] == "recurring")
        .cloned()
        .collect()
}

async fn wait_for(app: &TestApp, t: &str, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        let rows = recurring_rows(app, t).await;
        if rows.len() >= n {
            return rows;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    recurring_rows(app, t).await
}

/// A due rule whose transaction the ledger refuses (its account's balance would pass the
/// limit) stays due, and the user's other rules are written without it.
async fn a_rule_that_cannot_be_written_holds_up_no_other(backend: Backend) {
    let Some(app) = fast_scheduler(backend).await else {
        return;
    };
    let t = user(&app, "stuck-rule@example.org").await;
    let full = account(&app, &t, "Full", "EUR", "0").await;
    let other = account(&app, &t, "Other", "EUR", "0").await;
    let (s, body) = send(
        &app,
        Method::POST,
        "/api/v1/transactions",
        &t,
        Some(json!({
            "account_id": full, "amount": "-9999999999999.00", "description": "At the limit"
        })),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let today = chrono::Utc::now().date_naive();
    let (s, stuck) = send(&app, Method::POST, "/api/v1/recurring", &t, Some(json!({
        "account_id": full, "amount": "-9.99", "description": "Too much", "frequency": "monthly", "start_date": today
    }))).await;
    assert_eq!(s, 201, "{stuck}");
    let (s, fine) = send(&app, Method::POST, "/api/v1/recurring", &t, Some(json!({
        "account_id": other, "amount": "5.00", "description": "Pocket money", "frequency": "monthly", "start_date": today
    }))).await;
    assert_eq!(s, 201, "{fine}");
    let rows = wait_for(&app, &t, 1).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["account_id"], other);
    assert_eq!(rows[0]["amount"], "5.00");
    assert_eq!(balance(&app, &t, &other).await, "5.00");
    // A few more runs: the refused rule is still due and wrote nothing.
    actix_web::rt::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(recurring_rows(&app, &t).await.len(), 1);
    assert_eq!(balance(&app, &t, &full).await, "-9999999999999.00");
    let (_, rules) = send(&app, Method::GET, "/api/v1/recurring", &t, None).await;
    let stuck_now = rules["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == stuck["id"])
        .unwrap()
        .clone();
    assert_eq!(stuck_now["next_date"], stuck["next_date"], "{stuck_now}");
}

async fn recurring_rules_catch_up_once(backend: Backend) {
    let Some(app) = fast_scheduler(backend).await else {
        return;
    };
    let t = user(&app, "recurring@example.org").await;
    let a = account(&app, &t, "Main", "EUR", "0").await;
    let today = chrono::Utc::now().date_naive();
    let start = today
        .with_day(1)
        .unwrap()
        .checked_sub_months(Months::new(3))
        .unwrap()
        .with_day(5)
        .unwrap();
    let mut expected: Vec<NaiveDate> = Vec::new();
    let mut d = start;
    while d <= today {
        expected.push(d);
        d = d.checked_add_months(Months::new(1)).unwrap();
    }
    // A rule of the user's categorizes what the plan creates, as it would a typed transaction.
    let (_, cats) = send(&app, Method::GET, "/api/v1/categories", &t, None).await;
    let category = cats["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "expense")
        .unwrap()["id"]
        .clone();
    let (s, body) = send(&app, Method::POST, "/api/v1/rules", &t, Some(json!({
        "name": "Streaming", "conditions": [{ "field": "description", "op": "contains", "value": "streaming" }],
        "actions": [{ "type": "set_category", "category_id": category }, { "type": "add_tags", "tags": ["tv"] }]
    }))).await;
    assert_eq!(s, 201, "{body}");
    let (s, rule) = send(&app, Method::POST, "/api/v1/recurring", &t, Some(json!({
        "account_id": a, "amount": "-9.99", "description": "Streaming", "frequency": "monthly", "start_date": start
    }))).await;
    assert_eq!(s, 201, "{rule}");
    assert_eq!(rule["day_of_month"], 5);
    let rows = wait_for(&app, &t, expected.len()).await;
    let mut dates: Vec<String> = rows
        .iter()
        .map(|r| r["date"].as_str().unwrap().to_string())
        .collect();
    dates.sort();
    assert_eq!(
        dates,
        expected.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        "every missed month, once"
    );
    for r in &rows {
        assert_eq!(r["category_id"], category, "{r}");
        assert_eq!(r["category_source"], "rule", "{r}");
        assert_eq!(r["tags"], json!(["tv"]), "{r}");
    }
    assert_eq!(
        balance(&app, &t, &a).await,
        format!("-{}", crate::ledger::cents_str(999 * expected.len() as i64))
    );
    let (_, rules) = send(&app, Method::GET, "/api/v1/recurring", &t, None).await;
    let next: NaiveDate = rules["items"][0]["next_date"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(next > today);

    // Another server on the same database (a restart) finds nothing more to do.
    let second = restart(&app).await;
    actix_web::rt::time::sleep(Duration::from_millis(400)).await;
    let t2 = login_token(&second, "recurring@example.org").await;
    assert_eq!(recurring_rows(&second, &t2).await.len(), expected.len());
    drop(second);

    // A rule that ended stops; a weekly one with an end date creates only up to it.
    let (s, weekly) = send(&app, Method::POST, "/api/v1/recurring", &t, Some(json!({
        "account_id": a, "amount": "100", "description": "Pocket money", "frequency": "weekly",
        "start_date": today - chrono::Duration::days(20), "end_date": today - chrono::Duration::days(6)
    }))).await;
    assert_eq!(s, 201, "{weekly}");
    let rows = wait_for(&app, &t, expected.len() + 3).await;
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        recurring_rows(&app, &t).await.len(),
        expected.len() + 3,
        "{rows:?}"
    );
    let (_, rules) = send(
        &app,
        Method::GET,
        &format!("/api/v1/recurring/{}", weekly["id"].as_str().unwrap()),
        &t,
        None,
    )
    .await;
    assert_eq!(rules["active"], false);
}

async fn goals_report_progress_live(backend: Backend) {
    let Some(app) = fast_scheduler(backend).await else {
        return;
    };
    let t = user(&app, "goals@example.org").await;
    let checking = account(&app, &t, "Checking", "EUR", "5000.00").await;
    let savings = account(&app, &t, "Savings", "EUR", "100.00").await;
    let (s, goal) = send(
        &app,
        Method::POST,
        "/api/v1/goals",
        &t,
        Some(json!({ "name": "Holiday", "target": "1000.00", "account_id": savings })),
    )
    .await;
    assert_eq!(s, 201, "{goal}");
    assert_eq!(goal["current"], "100.00");
    assert_eq!(goal["percent"], 10);
    let port = app.base.rsplit(':').next().unwrap();
    let mut req = format!("ws://127.0.0.1:{port}/api/v1/ws")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {t}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut seen = Vec::new();
    const QUIET: Duration = Duration::from_millis(600);
    seen.extend(frames_until(&mut socket, "snapshot", QUIET).await);
    for amount in ["400.00", "600.00"] {
        let (s, _) = send(
            &app,
            Method::POST,
            "/api/v1/transfers",
            &t,
            Some(
                json!({ "from_account_id": checking, "to_account_id": savings, "amount": amount }),
            ),
        )
        .await;
        assert_eq!(s, 201);
        seen.extend(frames_until(&mut socket, "goal.progress", QUIET).await);
    }
    let progress: Vec<i64> = seen
        .iter()
        .filter(|f| f["type"] == "goal.progress")
        .map(|f| f["payload"]["percent"].as_i64().unwrap())
        .collect();
    assert_eq!(progress, vec![50, 110]);
    let reached: Vec<_> = seen
        .iter()
        .filter(|f| f["type"] == "goal.reached")
        .collect();
    assert_eq!(reached.len(), 1);
    assert_eq!(reached[0]["payload"]["current"], "1100.00");

    // A contribution-based goal.
    let (_, bike) = send(
        &app,
        Method::POST,
        "/api/v1/goals",
        &t,
        Some(json!({ "name": "Bike", "target": "300" })),
    )
    .await;
    let id = bike["id"].as_str().unwrap();
    let (s, after) = send(
        &app,
        Method::POST,
        &format!("/api/v1/goals/{id}/contributions"),
        &t,
        Some(json!({ "amount": "120.50" })),
    )
    .await;
    assert_eq!(s, 200, "{after}");
    assert_eq!(after["current"], "120.50");
    assert_eq!(after["currency"], "EUR");
    let (s, _) = send(
        &app,
        Method::POST,
        &format!(
            "/api/v1/goals/{}/contributions",
            goal["id"].as_str().unwrap()
        ),
        &t,
        Some(json!({ "amount": "1" })),
    )
    .await;
    assert_eq!(s, 422, "an account-linked goal follows the account");
    let (_, list) = send(&app, Method::GET, "/api/v1/goals", &t, None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert_eq!(list["items"][0]["reached"], true);
}

async fn bad_rules_and_goals_are_422(backend: Backend) {
    let Some(app) = fast_scheduler(backend).await else {
        return;
    };
    let t = user(&app, "badrules@example.org").await;
    let a = account(&app, &t, "Main", "EUR", "0").await;
    let cases = [
        (
            "/api/v1/recurring",
            json!({ "amount": "-1", "frequency": "monthly", "start_date": "2026-01-01" }),
            "account_id",
        ),
        (
            "/api/v1/recurring",
            json!({ "account_id": a, "amount": "-1", "frequency": "hourly", "start_date": "2026-01-01" }),
            "frequency",
        ),
        (
            "/api/v1/recurring",
            json!({ "account_id": a, "amount": "-1.001", "frequency": "daily", "start_date": "2026-01-01" }),
            "amount",
        ),
        (
            "/api/v1/recurring",
            json!({ "account_id": a, "amount": "-1", "frequency": "monthly", "day_of_month": 32, "start_date": "2026-01-01" }),
            "day_of_month",
        ),
        (
            "/api/v1/recurring",
            json!({ "account_id": a, "amount": "-1", "frequency": "daily", "start_date": "1900-01-01" }),
            "start_date",
        ),
        ("/api/v1/goals", json!({ "name": "X" }), "target"),
        (
            "/api/v1/goals",
            json!({ "name": "X", "target": "0" }),
            "target",
        ),
        (
            "/api/v1/goals",
            json!({ "name": "X", "target": "10", "account_id": "0192f1c4-0000-7000-8000-000000000000" }),
            "account_id",
        ),
        (
            "/api/v1/goals",
            json!({ "name": "X", "target": "10", "currency": "USD", "account_id": a }),
            "currency",
        ),
    ];
    for (path, body, field) in cases {
        let (s, reply) = send(&app, Method::POST, path, &t, Some(body.clone())).await;
        assert_eq!(s, 422, "{body}: {reply}");
        assert_eq!(reply["errors"][0]["field"], field, "{body}: {reply}");
    }
}

/// "Today" is the user's: after they change their time zone, their running Ledger decides what is
/// due by the new one at once. Kiritimati (UTC+14) is always one calendar day ahead of Pago Pago
/// (UTC−11), so a rule starting on Kiritimati's today is not yet due in Pago Pago, and is due the
/// moment the user moves to Kiritimati.
async fn a_new_time_zone_moves_what_is_due(backend: Backend) {
    let Some(app) = fast_scheduler(backend).await else {
        return;
    };
    let t = user(&app, "traveller@example.org").await;
    // The account starts the user's Ledger, in UTC.
    let a = account(&app, &t, "Main", "EUR", "0").await;
    let (s, me) = send(
        &app,
        Method::PATCH,
        "/api/v1/me",
        &t,
        Some(json!({ "timezone": "Pacific/Pago_Pago" })),
    )
    .await;
    assert_eq!(s, 200, "{me}");
    let kiritimati_today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Pacific::Kiritimati)
        .date_naive();
    let (s, rule) = send(&app, Method::POST, "/api/v1/recurring", &t, Some(json!({
        "account_id": a, "amount": "-1.00", "description": "Island ferry", "frequency": "monthly",
        "start_date": kiritimati_today
    }))).await;
    assert_eq!(s, 201, "{rule}");
    actix_web::rt::time::sleep(Duration::from_millis(600)).await;
    assert!(
        recurring_rows(&app, &t).await.is_empty(),
        "due a day early: today in Pago Pago is before {kiritimati_today}"
    );

    let (s, me) = send(
        &app,
        Method::PATCH,
        "/api/v1/me",
        &t,
        Some(json!({ "timezone": "Pacific/Kiritimati" })),
    )
    .await;
    assert_eq!(s, 200, "{me}");
    let rows = wait_for(&app, &t, 1).await;
    assert_eq!(
        rows.len(),
        1,
        "not created once today is {kiritimati_today}"
    );
    assert_eq!(rows[0]["date"], kiritimati_today.to_string());
}
