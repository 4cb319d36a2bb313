//! The ledger over HTTP: accounts with live balances, categories, transactions, transfers, money
//! rules, filters and pagination, idempotency, optimistic concurrency, rates and reports.
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn, token, Backend, TestApp, PASSWORD};
use crate::imports::{enc, upload};
use crate::on_both_backends;

on_both_backends!(
    accounts_carry_live_balances,
    money_is_exact_per_currency,
    default_categories_and_category_rules,
    transactions_edit_and_delete_move_balances,
    transfers_are_atomic_and_never_spending,
    listing_filters_search_and_pagination,
    idempotency_keys_replay_or_refuse,
    stale_versions_conflict,
    users_never_see_each_other,
    reports_convert_to_the_base_currency,
    amounts_and_balances_have_a_limit,
    dates_have_four_digit_years,
    nulls_in_patches_are_refused,
);

/// A user with a token; their base currency is EUR.
pub async fn user(app: &TestApp, email: &str) -> String {
    let r = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({ "email": email, "password": PASSWORD, "base_currency": "EUR" }),
        )
        .await;
    assert_eq!(r.status, 201);
    token(&r.json(), "access_token")
}

/// Cents as a decimal string: 2997 → "29.97".
pub fn cents_str(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// A fresh access token for an existing user.
pub async fn login_token(app: &TestApp, email: &str) -> String {
    token(&app.login(email, PASSWORD).await, "access_token")
}

pub async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    t: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let r = app.send(method, path, Some(t), body).await;
    let status = r.status.as_u16();
    let body = if r.bytes.is_empty() {
        Value::Null
    } else {
        r.json()
    };
    (status, body)
}

pub async fn account(app: &TestApp, t: &str, name: &str, currency: &str, opening: &str) -> String {
    let (status, body) = send(
        app,
        Method::POST,
        "/api/v1/accounts",
        t,
        Some(json!({ "name": name, "kind": "checking", "currency": currency, "opening_balance": opening })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_string()
}

pub async fn txn(app: &TestApp, t: &str, account: &str, amount: &str, extra: Value) -> Value {
    let mut body = json!({ "account_id": account, "amount": amount, "date": "2026-11-02", "description": "test" });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (status, reply) = send(app, Method::POST, "/api/v1/transactions", t, Some(body)).await;
    assert_eq!(status, 201, "{reply}");
    reply
}

/// The id of the user's category with this name.
pub async fn category(app: &TestApp, t: &str, name: &str) -> String {
    let (_, cats) = send(app, Method::GET, "/api/v1/categories", t, None).await;
    cats["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no category {name}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

pub async fn balance(app: &TestApp, t: &str, account: &str) -> String {
    let (status, body) = send(
        app,
        Method::GET,
        &format!("/api/v1/accounts/{account}"),
        t,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["balance"].as_str().unwrap().to_string()
}

async fn accounts_carry_live_balances(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let t = user(&app, "bal@example.org").await;
    let a = account(&app, &t, "Checking", "EUR", "100.00").await;
    assert_eq!(balance(&app, &t, &a).await, "100.00");
    txn(&app, &t, &a, "-12.50", json!({})).await;
    txn(&app, &t, &a, "2000", json!({})).await;
    assert_eq!(balance(&app, &t, &a).await, "2087.50");
    let (_, list) = send(&app, Method::GET, "/api/v1/accounts", &t, None).await;
    assert_eq!(list["items"][0]["balance"], "2087.50");

    // Opening balance edits move the balance; the currency cannot change; duplicate names refused.
    let (s, body) = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/accounts/{a}"),
        &t,
        Some(json!({ "opening_balance": "0" })),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["balance"], "1987.50");
    assert_eq!(body["version"], 2);
    let (s, _) = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/accounts/{a}"),
        &t,
        Some(json!({ "currency": "USD" })),
    )
    .await;
    assert_eq!(s, 422);
    let (s, _) = send(
        &app,
        Method::POST,
        "/api/v1/accounts",
        &t,
        Some(json!({ "name": "checking", "kind": "cash", "currency": "EUR" })),
    )
    .await;
    assert_eq!(s, 422);
    let (s, body) = send(
        &app,
        Method::POST,
        "/api/v1/accounts",
        &t,
        Some(json!({ "name": "X", "kind": "piggy", "currency": "EURO" })),
    )
    .await;
    assert_eq!(s, 422);
    assert_eq!(body["errors"].as_array().unwrap().len(), 2);

    // Archived accounts take no new transactions; deleting one with transactions needs cascade.
    let (s, _) = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/accounts/{a}"),
        &t,
        Some(json!({ "archived": true })),
    )
    .await;
    assert_eq!(s, 200);
    let (s, body) = send(
        &app,
        Method::POST,
        "/api/v1/transactions",
        &t,
        Some(json!({ "account_id": a, "amount": "-1" })),
    )
    .await;
    assert_eq!(s, 422);
    assert_eq!(body["errors"][0]["field"], "account_id");
    let (s, _) = send(
        &app,
        Method::DELETE,
        &format!("/api/v1/accounts/{a}"),
        &t,
        None,
    )
    .await;
    assert_eq!(s, 409);
    let (s, _) = send(
        &app,
        Method::DELETE,
        &format!("/api/v1/accounts/{a}?cascade=true"),
        &t,
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = send(
        &app,
        Method::GET,
        &format!("/api/v1/accounts/{a}"),
        &t,
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (_, list) = send(&app, Method::GET, "/api/v1/transactions", &t, None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
}

async fn money_is_exact_per_currency(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let t = user(&app, "money@example.org").await;
    let jpy = account(&app, &t, "Yen", "JPY", "1000").await;
    let bhd = account(&app, &t, "Dinar", "BHD", "1.000").await;
    let eur = account(&app, &t, "Euro", "EUR", "0").await;
    txn(&app, &t, &jpy, "-150", json!({})).await;
    txn(&app, &t, &bhd, "-0.125", json!({})).await;
    for _ in 0..10 {
        txn(&app, &t, &eur, "0.10", json!({})).await;
    }
    assert_eq!(balance(&app, &t, &jpy).await, "850");
    assert_eq!(balance(&app, &t, &bhd).await, "0.875");
    assert_eq!(balance(&app, &t, &eur).await, "1.00"); // not 0.9999999
    let cases = [
        (jpy.as_str(), json!("1.5"), "has 1 decimals but JPY has 0"),
        (eur.as_str(), json!("1.005"), "has 3 decimals but EUR has 2"),
        (
            bhd.as_str(),
            json!("0.0001"),
            "has 4 decimals but BHD has 3",
        ),
        (eur.as_str(), json!(12.5), "must be a JSON string"),
        (eur.as_str(), json!(12), "must be a JSON string"),
        (eur.as_str(), json!("1e3"), "decimal string"),
        (eur.as_str(), json!("1,50"), "decimal string"),
        (eur.as_str(), json!("0"), "must not be zero"),
    ];
    for (acct, amount, says) in cases {
        let (s, body) = send(
            &app,
            Method::POST,
            "/api/v1/transactions",
            &t,
            Some(json!({ "account_id": acct, "amount": amount })),
        )
        .await;
        assert_eq!(s, 422, "{amount}: {body}");
        assert_eq!(body["errors"][0]["field"], "amount", "{body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(says),
            "{amount}: {body}"
        );
    }
    // A foreign amount is kept exactly in its own currency.
    let r = txn(
        &app,
        &t,
        &eur,
        "-10.00",
        json!({ "foreign_amount": "-1500", "foreign_currency": "JPY" }),
    )
    .await;
    assert_eq!(
        (r["foreign_amount"].as_str(), r["foreign_currency"].as_str()),
        (Some("-1500"), Some("JPY"))
    );
    let (s, _) = send(&app, Method::POST, "/api/v1/transactions", &t, Some(json!({ "account_id": eur, "amount": "-1", "foreign_amount": "-1.5", "foreign_currency": "JPY" }))).await;
    assert_eq!(s, 422);
}

async fn default_categories_and_category_rules(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let t = user(&app, "cats@example.org").await;
    let (_, cats) = send(&app, Method::GET, "/api/v1/categories", &t, None).await;
    let items = cats["items"].as_array().unwrap().clone();
    assert!(items.len() > 30, "a default set of categories");
    let food = items.iter().find(|c| c["name"] == "Food").unwrap();
    let groceries = items.iter().find(|c| c["name"] == "Groceries").unwrap();
    assert_eq!(groceries["parent_id"], food["id"]);
    assert!(items.iter().any(|c| c["kind"] == "income"));

    // A third level, a duplicate sibling and a bad colour are refused.
    let (s, _) = send(
        &app,
        Method::POST,
        "/api/v1/categories",
        &t,
        Some(json!({ "name": "Organic", "parent_id": groceries["id"] })),
    )
    .await;
    assert_eq!(s, 422);
    let (s, _) = send(
        &app,
        Method::POST,
        "/api/v1/categories",
        &t,
        Some(json!({ "name": "groceries", "parent_id": food["id"] })),
    )
    .await;
    assert_eq!(s, 422);
    let (s, _) = send(
        &app,
        Method::POST,
        "/api/v1/categories",
        &t,
        Some(json!({ "name": "Pets", "color": "red" })),
    )
    .await;
    assert_eq!(s, 422);
    let (s, pets) = send(
        &app,
        Method::POST,
        "/api/v1/categories",
        &t,
        Some(json!({ "name": "Pets", "color": "#AA00ff" })),
    )
    .await;
    assert_eq!(s, 201, "{pets}");
    assert_eq!(pets["color"], "#aa00ff");
    assert_eq!(pets["kind"], "expense");

    // A parent with children cannot be deleted; deleting a used category uncategorizes.
    let (s, _) = send(
        &app,
        Method::DELETE,
        &format!("/api/v1/categories/{}", food["id"].as_str().unwrap()),
        &t,
        None,
    )
    .await;
    assert_eq!(s, 409);
    let a = account(&app, &t, "Main", "EUR", "0").await;
    let x = txn(&app, &t, &a, "-30", json!({ "category_id": pets["id"] })).await;
    assert_eq!(x["category_source"], "user");
    let (s, _) = send(
        &app,
        Method::DELETE,
        &format!("/api/v1/categories/{}", pets["id"].as_str().unwrap()),
        &t,
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (_, after) = send(
        &app,
        Method::GET,
        &format!("/api/v1/transactions/{}", x["id"].as_str().unwrap()),
        &t,
        None,
    )
    .await;
    assert_eq!(after["category_id"], Value::Null);
    assert_eq!(after["category_source"], "none");
    let (_, summary) = send(
        &app,
        Method::GET,
        "/api/v1/reports/summary?from=2026-11-01&to=2026-11-30",
        &t,
        None,
    )
    .await;
    assert_eq!(summary["by_category"][0]["name"], "Uncategorized");
    assert_eq!(summary["by_category"][0]["expense"], "30.00");

    // Renaming and moving.
    let (s, renamed) = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/categories/{}", groceries["id"].as_str().unwrap()),
        &t,
        Some(json!({ "name": "Supermarket", "version": 1 })),
    )
    .await;
    assert_eq!(s, 200, "{renamed}");
    assert_eq!(renamed["name"], "Supermarket");
}

async fn transactions_edit_and_delete_move_balances(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let t = user(&app, "edit@example.org").await;
    let a = account(&app, &t, "A", "EUR", "0").await;
    let b = account(&app, &t, "B", "EUR", "0").await;
    let x = txn(
        &app,
        &t,
        &a,
        "-40.00",
        json!({ "tags": ["food", "food", " weekly "], "notes": "first" }),
    )
    .await;
    assert_eq!(x["tags"], json!(["food", "weekly"]));
    let id = x["id"].as_str().unwrap();
    let (s, y) = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/transactions/{id}"),
        &t,
        Some(json!({ "amount": "-45.50", "version": 1 })),
    )
    .await;
    assert_eq!(s, 200, "{y}");
    assert_eq!(y["version"], 2);
    assert_eq!(balance(&app, &t, &a).await, "-45.50");
    // Moving to another account moves the money.
    let (s, _) = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/transactions/{id}"),
        &t,
        Some(json!({ "account_id": b })),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(balance(&app, &t, &a).await, "0.00");
    assert_eq!(balance(&app, &t, &b).await, "-45.50");
    // Moving to an account in another currency needs the amount in that currency.
    let usd = account(&app, &t, "Dollars", "USD", "0").await;
    let (s, body) = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/transactions/{id}"),
        &t,
        Some(json!({ "account_id": usd })),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    let (s, _) = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/transactions/{id}"),
        &t,
        Some(json!({ "account_id": usd, "amount": "-50.00" })),
    )
    .await;
    assert_eq!(s, 200);
    let (_, got) = send(
        &app,
        Method::GET,
        &format!("/api/v1/transactions/{id}"),
        &t,
        None,
    )
    .await;
    assert_eq!(
        (got["currency"].as_str(), got["amount"].as_str()),
        (Some("USD"), Some("-50.00"))
    );
    assert_eq!(balance(&app, &t, &b).await, "0.00");
    assert_eq!(balance(&app, &t, &usd).await, "-50.00");
    // Clearing nullable fields with null; unknown fields are named.
    let (s, _) = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/transactions/{id}"),
        &t,
        Some(json!({ "notes": "", "occurred_at": null })),
    )
    .await;
    assert_eq!(s, 200);
    let (s, body) = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/transactions/{id}"),
        &t,
        Some(json!({ "ammount": "1" })),
    )
    .await;
    assert_eq!(s, 422);
    assert_eq!(body["errors"][0]["field"], "ammount");
    let (s, _) = send(
        &app,
        Method::DELETE,
        &format!("/api/v1/transactions/{id}"),
        &t,
        None,
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(balance(&app, &t, &usd).await, "0.00");
    let (s, _) = send(
        &app,
        Method::DELETE,
        &format!("/api/v1/transactions/{id}"),
        &t,
        None,
    )
    .await;
    assert_eq!(s, 404);
}

async fn transfers_are_atomic_and_never_spending(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let t = user(&app, "xfer@example.org").await;
    let a = account(&app, &t, "Checking", "EUR", "500.00").await;
    let s_ = account(&app, &t, "Savings", "EUR", "0").await;
    let usd = account(&app, &t, "US", "USD", "0").await;
    let (s, tr) = send(&app, Method::POST, "/api/v1/transfers", &t, Some(json!({ "from_account_id": a, "to_account_id": s_, "amount": "200.00", "date": "2026-11-03" }))).await;
    assert_eq!(s, 201, "{tr}");
    assert_eq!(tr["from"]["amount"], "-200.00");
    assert_eq!(tr["to"]["amount"], "200.00");
    assert_eq!(tr["from"]["transfer_id"], tr["id"]);
    assert_eq!(balance(&app, &t, &a).await, "300.00");
    assert_eq!(balance(&app, &t, &s_).await, "200.00");
    // Cross-currency needs to_amount.
    let (s, _) = send(
        &app,
        Method::POST,
        "/api/v1/transfers",
        &t,
        Some(json!({ "from_account_id": a, "to_account_id": usd, "amount": "100.00" })),
    )
    .await;
    assert_eq!(s, 422);
    let (s, fx) = send(&app, Method::POST, "/api/v1/transfers", &t, Some(json!({ "from_account_id": a, "to_account_id": usd, "amount": "100.00", "to_amount": "108.42", "date": "2026-11-04" }))).await;
    assert_eq!(s, 201, "{fx}");
    assert_eq!(fx["from"]["foreign_amount"], "108.42");
    assert_eq!(balance(&app, &t, &usd).await, "108.42");
    // Editing a transfer edits both legs; a leg's amount cannot be edited alone.
    let tid = tr["id"].as_str().unwrap();
    let leg = tr["from"]["id"].as_str().unwrap();
    let (s, _) = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/transactions/{leg}"),
        &t,
        Some(json!({ "amount": "-1.00" })),
    )
    .await;
    assert_eq!(s, 409);
    let (s, _) = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/transactions/{leg}"),
        &t,
        Some(json!({ "notes": "rent pot" })),
    )
    .await;
    assert_eq!(s, 200);
    let (s, edited) = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/transfers/{tid}"),
        &t,
        Some(json!({ "amount": "250.00", "date": "2026-11-05" })),
    )
    .await;
    assert_eq!(s, 200, "{edited}");
    assert_eq!(edited["to"]["date"], "2026-11-05");
    assert_eq!(balance(&app, &t, &a).await, "150.00");
    assert_eq!(balance(&app, &t, &s_).await, "250.00");
    // Transfers are not income or spending.
    txn(&app, &t, &a, "-20.00", json!({ "date": "2026-11-06" })).await;
    let (_, summary) = send(
        &app,
        Method::GET,
        "/api/v1/reports/summary?from=2026-11-01&to=2026-11-30",
        &t,
        None,
    )
    .await;
    assert_eq!(summary["expense"], "20.00");
    assert_eq!(summary["income"], "0.00");
    // Deleting one leg deletes the transfer.
    let (s, _) = send(
        &app,
        Method::DELETE,
        &format!("/api/v1/transactions/{leg}"),
        &t,
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = send(
        &app,
        Method::GET,
        &format!("/api/v1/transfers/{tid}"),
        &t,
        None,
    )
    .await;
    assert_eq!(s, 404);
    // 500 - 100 (to USD) - 20 (spent): the deleted transfer's 250 came back.
    assert_eq!(balance(&app, &t, &a).await, "380.00");
    assert_eq!(balance(&app, &t, &s_).await, "0.00");
    let (s, _) = send(
        &app,
        Method::POST,
        "/api/v1/transfers",
        &t,
        Some(json!({ "from_account_id": a, "to_account_id": a, "amount": "1.00" })),
    )
    .await;
    assert_eq!(s, 422);
}

async fn listing_filters_search_and_pagination(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let t = user(&app, "list@example.org").await;
    let a = account(&app, &t, "A", "EUR", "0").await;
    let b = account(&app, &t, "B", "JPY", "0").await;
    for day in 1..=20 {
        txn(&app, &t, &a, &format!("-{day}.00"), json!({ "date": format!("2026-10-{day:02}"), "description": format!("Coffee #{day}"), "tags": if day % 5 == 0 { json!(["fifth"]) } else { json!([]) } })).await;
    }
    txn(
        &app,
        &t,
        &b,
        "-500",
        json!({ "date": "2026-10-10", "merchant": "Tokyo Ramen", "notes": "great 100% ramen" }),
    )
    .await;

    // Pagination: pages of 7 cover all 21 once each, newest first, even with inserts between pages.
    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/transactions?limit=7&cursor={c}"),
            None => "/api/v1/transactions?limit=7".to_string(),
        };
        let (s, page) = send(&app, Method::GET, &path, &t, None).await;
        assert_eq!(s, 200, "{page}");
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_string());
        }
        pages += 1;
        if pages == 1 {
            // Newer and older rows inserted while paging must not duplicate or shift others.
            txn(&app, &t, &a, "-1.00", json!({ "date": "2026-12-01" })).await;
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no duplicates");
    assert_eq!(
        seen.len(),
        21,
        "every row present at the start is listed once"
    );

    let count = |v: &Value| v["items"].as_array().unwrap().len();
    let (_, r) = send(
        &app,
        Method::GET,
        &format!("/api/v1/transactions?account_id={b}"),
        &t,
        None,
    )
    .await;
    assert_eq!(count(&r), 1);
    let (_, r) = send(
        &app,
        Method::GET,
        "/api/v1/transactions?from=2026-10-05&to=2026-10-09",
        &t,
        None,
    )
    .await;
    assert_eq!(count(&r), 5);
    let (_, r) = send(
        &app,
        Method::GET,
        "/api/v1/transactions?q=COFFEE%20%2312",
        &t,
        None,
    )
    .await;
    assert_eq!(count(&r), 1);
    let (_, r) = send(&app, Method::GET, "/api/v1/transactions?q=ramen", &t, None).await;
    assert_eq!(count(&r), 1, "merchant and notes are searched");
    let (_, r) = send(&app, Method::GET, "/api/v1/transactions?q=100%25", &t, None).await;
    assert_eq!(count(&r), 1, "% is literal");
    let (_, r) = send(
        &app,
        Method::GET,
        "/api/v1/transactions?tag=fifth",
        &t,
        None,
    )
    .await;
    assert_eq!(count(&r), 4);
    // min/max per currency: -500 JPY is below -10 in any currency, -3.00 EUR is within.
    let (_, r) = send(
        &app,
        Method::GET,
        "/api/v1/transactions?min=-3.5&max=-2&to=2026-11-30",
        &t,
        None,
    )
    .await;
    let amounts: Vec<_> = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["amount"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(amounts, vec!["-3.00", "-2.00"]);
    for bad in [
        "limit=0",
        "limit=501",
        "from=yesterday",
        "cursor=garbage",
        "min=abc",
        "account_id=nope",
        "colour=red",
    ] {
        let (s, body) = send(
            &app,
            Method::GET,
            &format!("/api/v1/transactions?{bad}"),
            &t,
            None,
        )
        .await;
        assert!(s == 422 || s == 400, "{bad}: {s} {body}");
    }
}

async fn idempotency_keys_replay_or_refuse(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let t = user(&app, "idem@example.org").await;
    let a = account(&app, &t, "A", "EUR", "0").await;
    let body = json!({ "account_id": a, "amount": "-9.99", "date": "2026-11-01" });
    let post = |key: &'static str, body: Value| {
        let app = &app;
        let t = t.clone();
        async move {
            app.client
                .post(app.url("/api/v1/transactions"))
                .bearer_auth(t)
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let first = post("key-1", body.clone()).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = post("key-1", body.clone()).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first);
    assert_eq!(balance(&app, &t, &a).await, "-9.99");
    let other = post(
        "key-1",
        json!({ "account_id": a, "amount": "-1.00", "date": "2026-11-01" }),
    )
    .await;
    assert_eq!(other.status(), 422);
    let problem: Value = other.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "Idempotency-Key");
    // Keys belong to their user: another user may use the same key.
    let t2 = user(&app, "idem2@example.org").await;
    let a2 = account(&app, &t2, "A", "EUR", "0").await;
    let r = app
        .client
        .post(app.url("/api/v1/transactions"))
        .bearer_auth(&t2)
        .header("Idempotency-Key", "key-1")
        .json(&json!({ "account_id": a2, "amount": "-1.00" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Works for transfers and accounts too.
    for _ in 0..2 {
        let r = app
            .client
            .post(app.url("/api/v1/accounts"))
            .bearer_auth(&t)
            .header("Idempotency-Key", "acct-1")
            .json(&json!({ "name": "Once", "kind": "cash", "currency": "EUR" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let (_, list) = send(&app, Method::GET, "/api/v1/accounts", &t, None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
}

async fn stale_versions_conflict(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let t = user(&app, "ver@example.org").await;
    let a = account(&app, &t, "A", "EUR", "0").await;
    let x = txn(&app, &t, &a, "-5.00", json!({})).await;
    let id = x["id"].as_str().unwrap();
    let (s, _) = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/transactions/{id}"),
        &t,
        Some(json!({ "notes": "a", "version": 1 })),
    )
    .await;
    assert_eq!(s, 200);
    let (s, body) = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/transactions/{id}"),
        &t,
        Some(json!({ "notes": "b", "version": 1 })),
    )
    .await;
    assert_eq!(s, 409, "{body}");
    // If-Match works as well, and GET gives the ETag to use.
    let r = app
        .client
        .get(app.url(&format!("/api/v1/transactions/{id}")))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(etag, "\"2\"");
    let r = app
        .client
        .patch(app.url(&format!("/api/v1/transactions/{id}")))
        .bearer_auth(&t)
        .header("If-Match", "\"1\"")
        .json(&json!({ "notes": "c" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let r = app
        .client
        .patch(app.url(&format!("/api/v1/transactions/{id}")))
        .bearer_auth(&t)
        .header("If-Match", etag)
        .json(&json!({ "notes": "c" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (s, _) = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/accounts/{a}"),
        &t,
        Some(json!({ "name": "B", "version": 7 })),
    )
    .await;
    assert_eq!(s, 409);
}

async fn users_never_see_each_other(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let alice = user(&app, "alice@example.org").await;
    let bob = user(&app, "bob@example.org").await;
    let a = account(&app, &alice, "Alice's", "EUR", "10.00").await;
    let x = txn(&app, &alice, &a, "-1.00", json!({})).await;
    let id = x["id"].as_str().unwrap();
    for (method, path, body) in [
        (Method::GET, format!("/api/v1/accounts/{a}"), None),
        (
            Method::PATCH,
            format!("/api/v1/accounts/{a}"),
            Some(json!({ "name": "mine" })),
        ),
        (Method::DELETE, format!("/api/v1/accounts/{a}"), None),
        (Method::GET, format!("/api/v1/transactions/{id}"), None),
        (
            Method::PATCH,
            format!("/api/v1/transactions/{id}"),
            Some(json!({ "notes": "x" })),
        ),
        (Method::DELETE, format!("/api/v1/transactions/{id}"), None),
    ] {
        let (s, _) = send(&app, method.clone(), &path, &bob, body).await;
        assert_eq!(s, 404, "{method} {path}");
    }
    let (s, body) = send(
        &app,
        Method::POST,
        "/api/v1/transactions",
        &bob,
        Some(json!({ "account_id": a, "amount": "-1" })),
    )
    .await;
    assert_eq!(s, 422);
    assert_eq!(body["errors"][0]["message"], "no such account");
    let (_, list) = send(
        &app,
        Method::GET,
        &format!("/api/v1/transactions?account_id={a}"),
        &bob,
        None,
    )
    .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    let (_, accounts) = send(&app, Method::GET, "/api/v1/accounts", &bob, None).await;
    assert_eq!(accounts["items"].as_array().unwrap().len(), 0);
    assert_eq!(balance(&app, &alice, &a).await, "9.00");
}

async fn reports_convert_to_the_base_currency(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    // Base currency EUR.
    let r = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({ "email": "fx@example.org", "password": PASSWORD, "base_currency": "EUR" }),
        )
        .await;
    let t = token(&r.json(), "access_token");
    let eur = account(&app, &t, "Euro", "EUR", "0").await;
    let usd = account(&app, &t, "Dollar", "USD", "0").await;
    let jpy = account(&app, &t, "Yen", "JPY", "0").await;
    let (_, cats) = send(&app, Method::GET, "/api/v1/categories", &t, None).await;
    let id_of = |name: &str| {
        cats["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()["id"]
            .clone()
    };
    txn(
        &app,
        &t,
        &eur,
        "-30.00",
        json!({ "date": "2026-10-05", "category_id": id_of("Groceries") }),
    )
    .await;
    txn(
        &app,
        &t,
        &eur,
        "-20.00",
        json!({ "date": "2026-10-06", "category_id": id_of("Restaurants") }),
    )
    .await;
    txn(
        &app,
        &t,
        &usd,
        "-108.42",
        json!({ "date": "2026-10-07", "category_id": id_of("Restaurants") }),
    )
    .await;
    // Uncategorized (a description the categorizer cannot place).
    txn(
        &app,
        &t,
        &jpy,
        "-1000",
        json!({ "date": "2026-10-08", "description": "qqq" }),
    )
    .await;
    txn(
        &app,
        &t,
        &eur,
        "2500.00",
        json!({ "date": "2026-10-25", "category_id": id_of("Salary") }),
    )
    .await;
    txn(&app, &t, &eur, "-5.00", json!({ "date": "2026-11-02" })).await;

    // Without rates, USD and JPY are reported as missing, not guessed.
    let (_, s) = send(
        &app,
        Method::GET,
        "/api/v1/reports/summary?from=2026-10-01&to=2026-10-31",
        &t,
        None,
    )
    .await;
    assert_eq!(s["missing_rates"], json!(["JPY->EUR", "USD->EUR"]));
    assert_eq!(s["expense"], "50.00");

    // EUR->USD 1.0842 (so 108.42 USD = 100 EUR), JPY->EUR 0.0063 (so 1000 JPY = 6.30 EUR).
    let (st, body) = send(
        &app,
        Method::PUT,
        "/api/v1/exchange-rates",
        &t,
        Some(json!({ "rates": [
        { "base": "EUR", "quote": "USD", "date": "2026-10-01", "rate": "1.0842" },
        { "base": "JPY", "quote": "EUR", "date": "2026-10-01", "rate": "0.0063" },
    ] })),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let (st, _) = send(&app, Method::PUT, "/api/v1/exchange-rates", &t, Some(json!({ "rates": [{ "base": "EUR", "quote": "USD", "date": "2026-10-01", "rate": 1.08 }] }))).await;
    assert_eq!(st, 422);
    let (_, s) = send(
        &app,
        Method::GET,
        "/api/v1/reports/summary?from=2026-10-01&to=2026-10-31",
        &t,
        None,
    )
    .await;
    assert_eq!(s["missing_rates"], json!([]));
    assert_eq!(s["currency"], "EUR");
    assert_eq!(s["expense"], "156.30");
    assert_eq!(s["income"], "2500.00");
    assert_eq!(s["net"], "2343.70");
    let food = s["by_category"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Food")
        .unwrap()
        .clone();
    assert_eq!(
        food["expense"], "150.00",
        "Groceries 30 + Restaurants 20 + 100 from USD roll up into Food"
    );
    assert_eq!(food["children"].as_array().unwrap().len(), 2);
    let usd_line = s["by_account"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["currency"] == "USD")
        .unwrap()
        .clone();
    assert_eq!(usd_line["expense"], "108.42");

    let (st, cf) = send(
        &app,
        Method::GET,
        "/api/v1/reports/cashflow?from=2026-10-01&to=2026-11-30&interval=month",
        &t,
        None,
    )
    .await;
    assert_eq!(st, 200, "{cf}");
    let periods = cf["periods"].as_array().unwrap();
    assert_eq!(periods.len(), 2);
    assert_eq!(periods[0]["net"], "2343.70");
    assert_eq!(periods[1]["expense"], "5.00");
    let (st, _) = send(
        &app,
        Method::GET,
        "/api/v1/reports/cashflow?interval=fortnight",
        &t,
        None,
    )
    .await;
    assert_eq!(st, 422);
    let (st, _) = send(
        &app,
        Method::GET,
        "/api/v1/reports/summary?from=2026-12-01&to=2026-01-01",
        &t,
        None,
    )
    .await;
    assert_eq!(st, 422);
    // Only `to`, before the default start: the message names `to`, not a `from` never sent.
    let (st, body) = send(
        &app,
        Method::GET,
        "/api/v1/reports/summary?to=1999-10-01",
        &t,
        None,
    )
    .await;
    assert_eq!(st, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "to", "{body}");
    // Too many periods for one report is refused, not cut short.
    let (st, body) = send(
        &app,
        Method::GET,
        "/api/v1/reports/cashflow?interval=week&from=2014-01-01&to=2026-11-30",
        &t,
        None,
    )
    .await;
    assert_eq!(st, 422, "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("at most 600"),
        "{body}"
    );
    let (st, body) = send(
        &app,
        Method::GET,
        "/api/v1/reports/cashflow?interval=month&from=2014-01-01&to=2026-11-30",
        &t,
        None,
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["periods"].as_array().unwrap().len(), 155);
    let (_, rates) = send(&app, Method::GET, "/api/v1/exchange-rates", &t, None).await;
    assert_eq!(rates["items"].as_array().unwrap().len(), 2);
}

/// Import `rows` (date, amount, description) as CSV into `account`, where the first row must
/// fail (file line 2) and the second be created; the report.
async fn second_row_only(app: &TestApp, t: &str, account: &str, rows: &str) -> Value {
    let mapping = enc(r#"{"date":"Date","amount":"Amount","description":"Description"}"#);
    let csv = format!("Date,Amount,Description\n{rows}");
    let (s, report) = upload(
        app,
        t,
        &format!("format=csv&account_id={account}&mapping={mapping}"),
        csv.into_bytes(),
        "text/csv",
    )
    .await;
    assert_eq!(s, 200, "{report}");
    assert_eq!(report["created"], 1, "{report}");
    assert_eq!(report["failed"][0]["line"], 2, "{report}");
    report
}

/// A 422 body whose first error names `field` and says `says`.
fn refused(body: &Value, field: &str, says: &str) {
    assert_eq!(body["errors"][0]["field"], field, "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains(says), "{body}");
}

/// Amounts and balances stay within ±(10^15 − 1) minor units, so no sum can overflow; a ledger
/// holding older data beyond that still starts and can be mended.
async fn amounts_and_balances_have_a_limit(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let t = user(&app, "limits@example.org").await;
    let eur = account(&app, &t, "Big", "EUR", "0").await;
    let post = |amount: &'static str| {
        let (app, t, eur) = (&app, &t, &eur);
        async move {
            send(
                app,
                Method::POST,
                "/api/v1/transactions",
                t,
                Some(json!({ "account_id": eur, "amount": amount, "date": "2026-11-02" })),
            )
            .await
        }
    };
    let (s, body) = post("10000000000000.00").await;
    assert_eq!(s, 422, "{body}");
    refused(&body, "amount", "9999999999999.99");
    let (s, body) = post("-92233720368547758.07").await;
    assert_eq!(s, 422, "{body}");
    let (s, _) = post("9999999999999.99").await;
    assert_eq!(s, 201);
    // One cent more would take the balance past the limit: refused, nothing changes.
    let (s, body) = post("0.01").await;
    assert_eq!(s, 422, "{body}");
    refused(&body, "amount", "balance");
    assert_eq!(balance(&app, &t, &eur).await, "9999999999999.99");
    let (s, _) = post("-0.01").await;
    assert_eq!(s, 201);
    assert_eq!(balance(&app, &t, &eur).await, "9999999999999.98");
    let (s, body) = send(
        &app,
        Method::POST,
        "/api/v1/accounts",
        &t,
        Some(json!({ "name": "Huge", "kind": "checking", "currency": "JPY", "opening_balance": "1000000000000000" })),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    refused(&body, "opening_balance", "999999999999999");
    let (s, body) = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/accounts/{eur}"),
        &t,
        Some(json!({ "opening_balance": "1.00" })),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    refused(&body, "opening_balance", "balance");
    // An imported row beyond the limit fails alone.
    let report = second_row_only(
        &app,
        &t,
        &eur,
        "2026-11-03,-20000000000000.00,too big\n2026-11-03,-5.00,fine\n",
    )
    .await;
    assert!(
        report["failed"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("too large"),
        "{report}"
    );

    // Rows written before the limit existed, whose sum is beyond any 64-bit integer: a Ledger
    // starting on them (here on a second server) still answers, and deleting one mends it.
    let other = account(&app, &t, "Legacy", "EUR", "0").await;
    let seed = txn(&app, &t, &other, "-1.00", json!({})).await;
    let seed_id = seed["id"].as_str().unwrap().to_string();
    let legacy: Vec<String> = (0..2).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let ids = legacy.clone();
    app.state
        .db
        .run(move |conn| {
            use diesel::prelude::*;
            use ledgerline::store::schema::transactions as tx;
            let row: ledgerline::store::ledger::TransactionRow = tx::table
                .find(&seed_id)
                .select(ledgerline::store::ledger::TransactionRow::as_select())
                .first(conn)?;
            for id in ids {
                let mut copy = row.clone();
                copy.id = id;
                copy.amount = 5_000_000_000_000_000_000;
                diesel::insert_into(tx::table).values(&copy).execute(conn)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let second = crate::helpers::restart(&app).await;
    let r = second.get("/api/v1/accounts", &t).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    let (s, _) = send(
        &second,
        Method::DELETE,
        &format!("/api/v1/transactions/{}", legacy[0]),
        &t,
        None,
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(balance(&second, &t, &other).await, "49999999999999999.00");
}

/// Dates are `YYYY-MM-DD` in the years 1000–9999: not `26-11-01` read as the year 26, nor
/// `+10000-01-01`, which no export could be read back with.
async fn dates_have_four_digit_years(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let t = user(&app, "dates@example.org").await;
    let eur = account(&app, &t, "Daily", "EUR", "0").await;
    for bad in [
        "26-11-01",
        "+10000-01-01",
        "-0001-01-01",
        "0999-12-31",
        "2026-11-1",
    ] {
        let (s, body) = send(
            &app,
            Method::POST,
            "/api/v1/transactions",
            &t,
            Some(json!({ "account_id": eur, "amount": "-1.00", "date": bad })),
        )
        .await;
        assert_eq!(s, 422, "{bad}: {body}");
        refused(&body, "date", "YYYY-MM-DD");
    }
    let (s, body) = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/accounts/{eur}"),
        &t,
        Some(json!({ "opening_date": "+10000-01-01" })),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "opening_date", "{body}");
    // A file's two-digit year fails its row, the others are imported.
    second_row_only(
        &app,
        &t,
        &eur,
        "26-11-03,-2.00,short year\n2026-11-03,-5.00,fine\n",
    )
    .await;
    assert_eq!(balance(&app, &t, &eur).await, "-5.00");
}

/// `null` for a field that cannot be empty is a 422, not a silent "unchanged"; where a field can
/// be cleared (`category_id`), `null` clears it.
async fn nulls_in_patches_are_refused(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let t = user(&app, "nulls@example.org").await;
    let eur = account(&app, &t, "Nulls", "EUR", "10.00").await;
    let created = txn(&app, &t, &eur, "-2.00", json!({ "tags": ["a"] })).await;
    let id = created["id"].as_str().unwrap();
    for field in ["amount", "date", "description", "tags", "account_id"] {
        let (s, body) = send(
            &app,
            Method::PATCH,
            &format!("/api/v1/transactions/{id}"),
            &t,
            Some(json!({ field: null })),
        )
        .await;
        assert_eq!(s, 422, "{field}: {body}");
        refused(&body, field, "null");
    }
    let (s, body) = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/accounts/{eur}"),
        &t,
        Some(json!({ "name": null })),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    // Nothing changed, and a clearable field still clears.
    assert_eq!(balance(&app, &t, &eur).await, "8.00");
    let (s, body) = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/transactions/{id}"),
        &t,
        Some(json!({ "category_id": null, "tags": [] })),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["tags"], json!([]));
}
