//! Random sequences of writes keep every balance equal to the sum of its transactions — in the
//! Ledger's memory, in the database and over the API — and injected failures lose nothing
//! acknowledged and apply nothing half.
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{spawn, token, Backend, TestApp, PASSWORD};
use crate::ledger::{account, send};
use crate::on_both_backends;
use ledgerline::actors::ledger::{Fault, InjectFault, MemoryBalances};
use ledgerline::http::ledger::ask;

on_both_backends!(
    random_writes_keep_balances_exact,
    injected_failures_lose_nothing,
    a_crashed_ledger_is_replaced_for_the_next_request
);

fn minor(amount: &str) -> i64 {
    let negative = amount.starts_with('-');
    let digits: String = amount.chars().filter(|c| c.is_ascii_digit()).collect();
    let v: i64 = digits.parse().unwrap();
    if negative {
        -v
    } else {
        v
    }
}

/// Every transaction of the user, through the paginated API.
async fn all_transactions(app: &TestApp, t: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let path = format!("/api/v1/transactions?limit=500{cursor}");
        let (s, page) = send(app, Method::GET, &path, t, None).await;
        assert_eq!(s, 200);
        out.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

/// Balances over the API == opening + sum of listed transactions == the Ledger's memory ==
/// the database.
async fn assert_consistent(app: &TestApp, t: &str, user_id: Uuid) {
    let (_, accounts) = send(app, Method::GET, "/api/v1/accounts", t, None).await;
    let txns = all_transactions(app, t).await;
    let memory = ask(&app.state, user_id, MemoryBalances).await.unwrap();
    let uid = user_id.to_string();
    let stored = app
        .state
        .db
        .run(move |conn| {
            let mut sums = Vec::new();
            for a in ledgerline::store::ledger::snapshot(conn, &uid)?.accounts {
                let total: i64 = ledgerline::store::ledger::all_transactions(conn, &a.user_id)?
                    .iter()
                    .filter(|r| r.account_id == a.id)
                    .map(|r| r.amount)
                    .sum();
                sums.push((a.id.clone(), a.opening_balance + total));
            }
            sums.sort();
            Ok(sums)
        })
        .await
        .unwrap();
    assert_eq!(memory, stored, "memory and database disagree");
    for a in accounts["items"].as_array().unwrap() {
        let id = a["id"].as_str().unwrap();
        let sum: i64 = txns
            .iter()
            .filter(|x| x["account_id"] == id)
            .map(|x| minor(x["amount"].as_str().unwrap()))
            .sum();
        let expected = minor(a["opening_balance"].as_str().unwrap()) + sum;
        assert_eq!(
            minor(a["balance"].as_str().unwrap()),
            expected,
            "account {}",
            a["name"]
        );
        let remembered = memory.iter().find(|(m, _)| m == id).map(|(_, b)| *b);
        assert_eq!(remembered, Some(expected));
    }
}

fn amount(rng: &mut StdRng, decimals: u32) -> String {
    let cents: i64 = rng.gen_range(1..500_000);
    let sign = if rng.gen_bool(0.8) { "-" } else { "" };
    if decimals == 0 {
        format!("{sign}{cents}")
    } else {
        let scale = 10i64.pow(decimals);
        format!(
            "{sign}{}.{:0width$}",
            cents / scale,
            cents % scale,
            width = decimals as usize
        )
    }
}

async fn random_writes_keep_balances_exact(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    for seed in [7u64, 42, 1234] {
        let mut rng = StdRng::seed_from_u64(seed);
        let reg = app
            .register(&format!("prop{seed}@example.org"), PASSWORD)
            .await;
        let t = token(&reg, "access_token");
        let user_id: Uuid = reg["user"]["id"].as_str().unwrap().parse().unwrap();
        let accounts = [
            (account(&app, &t, "EUR a", "EUR", "100.00").await, 2, "EUR"),
            (account(&app, &t, "EUR b", "EUR", "0").await, 2, "EUR"),
            (account(&app, &t, "Yen", "JPY", "5000").await, 0, "JPY"),
            (account(&app, &t, "Dinar", "BHD", "0.500").await, 3, "BHD"),
        ];
        let mut txns: Vec<String> = Vec::new();
        let mut transfers: Vec<String> = Vec::new();
        for step in 0..60 {
            let (acct, decimals, _) = &accounts[rng.gen_range(0..accounts.len())];
            let date = format!(
                "2026-{:02}-{:02}",
                rng.gen_range(1..=11),
                rng.gen_range(1..=28)
            );
            match rng.gen_range(0..10) {
                0..=3 => {
                    let (s, x) = send(&app, Method::POST, "/api/v1/transactions", &t, Some(json!({ "account_id": acct, "amount": amount(&mut rng, *decimals), "date": date }))).await;
                    assert_eq!(s, 201, "step {step}: {x}");
                    txns.push(x["id"].as_str().unwrap().to_string());
                }
                4 | 5 if !txns.is_empty() => {
                    let id = txns[rng.gen_range(0..txns.len())].clone();
                    let (to, to_dec, _) = &accounts[rng.gen_range(0..accounts.len())];
                    let body = if rng.gen_bool(0.5) {
                        json!({ "account_id": to, "amount": amount(&mut rng, *to_dec), "date": date })
                    } else {
                        json!({ "date": date, "notes": format!("edited at {step}") })
                    };
                    let (s, x) = send(
                        &app,
                        Method::PATCH,
                        &format!("/api/v1/transactions/{id}"),
                        &t,
                        Some(body.clone()),
                    )
                    .await;
                    // Moving to another currency without an amount is refused; that is fine too.
                    assert!(s == 200 || s == 422, "step {step}: {s} {x} for {body}");
                }
                6 if !txns.is_empty() => {
                    let id = txns.swap_remove(rng.gen_range(0..txns.len()));
                    let (s, _) = send(
                        &app,
                        Method::DELETE,
                        &format!("/api/v1/transactions/{id}"),
                        &t,
                        None,
                    )
                    .await;
                    assert_eq!(s, 204);
                }
                7 | 8 => {
                    let i = rng.gen_range(0..accounts.len());
                    let j = (i + rng.gen_range(1..accounts.len())) % accounts.len();
                    let (from, from_dec, from_cur) = &accounts[i];
                    let (to, to_dec, to_cur) = &accounts[j];
                    let a = amount(&mut rng, *from_dec)
                        .trim_start_matches('-')
                        .to_string();
                    let mut body = json!({ "from_account_id": from, "to_account_id": to, "amount": a, "date": date });
                    if from_cur != to_cur {
                        body["to_amount"] =
                            json!(amount(&mut rng, *to_dec).trim_start_matches('-'));
                    }
                    let (s, x) =
                        send(&app, Method::POST, "/api/v1/transfers", &t, Some(body)).await;
                    assert_eq!(s, 201, "step {step}: {x}");
                    transfers.push(x["id"].as_str().unwrap().to_string());
                }
                _ if !transfers.is_empty() => {
                    let id = transfers[rng.gen_range(0..transfers.len())].clone();
                    if rng.gen_bool(0.5) {
                        let (_, tr) = send(
                            &app,
                            Method::GET,
                            &format!("/api/v1/transfers/{id}"),
                            &t,
                            None,
                        )
                        .await;
                        let same = tr["from"]["currency"] == tr["to"]["currency"];
                        let from_dec = accounts
                            .iter()
                            .find(|a| tr["from"]["account_id"] == a.0.as_str())
                            .unwrap()
                            .1;
                        let to_dec = accounts
                            .iter()
                            .find(|a| tr["to"]["account_id"] == a.0.as_str())
                            .unwrap()
                            .1;
                        let a = amount(&mut rng, from_dec)
                            .trim_start_matches('-')
                            .to_string();
                        let mut body = json!({ "amount": a, "date": date });
                        if !same {
                            body["to_amount"] =
                                json!(amount(&mut rng, to_dec).trim_start_matches('-'));
                        }
                        let (s, x) = send(
                            &app,
                            Method::PATCH,
                            &format!("/api/v1/transfers/{id}"),
                            &t,
                            Some(body),
                        )
                        .await;
                        assert_eq!(s, 200, "step {step}: {x}");
                    } else {
                        let (s, _) = send(
                            &app,
                            Method::DELETE,
                            &format!("/api/v1/transfers/{id}"),
                            &t,
                            None,
                        )
                        .await;
                        assert_eq!(s, 204);
                        transfers.retain(|x| *x != id);
                    }
                }
                _ => {}
            }
            if step % 20 == 19 {
                assert_consistent(&app, &t, user_id).await;
            }
        }
        assert_consistent(&app, &t, user_id).await;
        // A Ledger that dies comes back with the same state, rebuilt from the database.
        ask(&app.state, user_id, InjectFault(Fault::Crash))
            .await
            .unwrap();
        assert_consistent(&app, &t, user_id).await;
    }
}

async fn injected_failures_lose_nothing(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let reg = app.register("faults@example.org", PASSWORD).await;
    let t = token(&reg, "access_token");
    let user_id: Uuid = reg["user"]["id"].as_str().unwrap().parse().unwrap();
    let a = account(&app, &t, "A", "EUR", "0").await;
    let (s, _) = send(
        &app,
        Method::POST,
        "/api/v1/transactions",
        &t,
        Some(json!({ "account_id": a, "amount": "-10.00" })),
    )
    .await;
    assert_eq!(s, 201);

    // A failing commit: the request fails cleanly, nothing of it is stored or remembered.
    ask(&app.state, user_id, InjectFault(Fault::FailNextCommit))
        .await
        .unwrap();
    let r = app
        .post(
            "/api/v1/transactions",
            Some(&t),
            json!({ "account_id": a, "amount": "-99.00" }),
        )
        .await;
    r.problem(503);
    assert_consistent(&app, &t, user_id).await;
    assert_eq!(all_transactions(&app, &t).await.len(), 1);
    let (_, acct) = send(
        &app,
        Method::GET,
        &format!("/api/v1/accounts/{a}"),
        &t,
        None,
    )
    .await;
    assert_eq!(acct["balance"], "-10.00");

    // The restarted Ledger takes writes again, and its event sequence has no gap.
    let (s, _) = send(
        &app,
        Method::POST,
        "/api/v1/transactions",
        &t,
        Some(json!({ "account_id": a, "amount": "-1.00" })),
    )
    .await;
    assert_eq!(s, 201);
    let uid = user_id.to_string();
    let seqs: Vec<i64> = app
        .state
        .db
        .run(move |conn| {
            Ok(
                ledgerline::store::ledger::events_after(conn, &uid, 0, 1000)?
                    .iter()
                    .map(|e| e.seq)
                    .collect(),
            )
        })
        .await
        .unwrap();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "gapless seq"
    );
    assert!(
        seqs.len() >= 5,
        "account + 2 transactions with balance events: {seqs:?}"
    );

    // Requests racing a crash either succeed or fail; whatever succeeded is there.
    let mut handles = Vec::new();
    for i in 0..20 {
        let client = app.client.clone();
        let url = app.url("/api/v1/transactions");
        let t = t.clone();
        let a = a.clone();
        handles.push(actix_web::rt::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(t)
                .json(&json!({ "account_id": a, "amount": format!("-{i}.01") }))
                .send()
                .await
                .unwrap();
            r.status().as_u16()
        }));
        if i == 10 {
            ask(&app.state, user_id, InjectFault(Fault::Crash))
                .await
                .unwrap();
        }
    }
    let mut ok = 0;
    for h in handles {
        let s = h.await.unwrap();
        assert!(s == 201 || s == 503, "{s}");
        ok += usize::from(s == 201);
    }
    assert_eq!(all_transactions(&app, &t).await.len(), 2 + ok);
    assert_consistent(&app, &t, user_id).await;
}

/// Requests reach a running Ledger straight from the index the Directory publishes. One that
/// died must not swallow the next requests: each of them is answered by a fresh Ledger, which
/// rebuilds the balances from the database.
async fn a_crashed_ledger_is_replaced_for_the_next_request(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let reg = app.register("crash@example.org", PASSWORD).await;
    let t = token(&reg, "access_token");
    let user_id: Uuid = reg["user"]["id"].as_str().unwrap().parse().unwrap();
    let a = account(&app, &t, "A", "EUR", "100.00").await;
    for round in 0..3 {
        for _ in 0..3 {
            let (s, body) = send(
                &app,
                Method::POST,
                "/api/v1/transactions",
                &t,
                Some(json!({ "account_id": a, "amount": "-1.25" })),
            )
            .await;
            assert_eq!(s, 201, "round {round}: {body}");
        }
        // Straight after the crash, with no pause for anything to notice it.
        ask(&app.state, user_id, InjectFault(Fault::Crash))
            .await
            .unwrap();
    }
    let (_, account) = send(
        &app,
        Method::GET,
        &format!("/api/v1/accounts/{a}"),
        &t,
        None,
    )
    .await;
    assert_eq!(account["balance"], "88.75", "{account}");
    assert_consistent(&app, &t, user_id).await;
}
