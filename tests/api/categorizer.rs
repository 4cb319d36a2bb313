//! The categorizer over the real API: rules (CRUD, order, apply, validation), merchant memory
//! learned from a correction at once (and kept across a restart), the shipped classifier,
//! imported rows categorized, and bank messages becoming transactions exactly once.
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{restart, spawn, Backend, TestApp};
use crate::imports::upload;
use crate::ledger::{category, send, txn, user};
use crate::on_both_backends;

on_both_backends!(
    rules_categorize_new_and_existing_transactions,
    bad_rules_are_422_with_the_reason,
    a_correction_teaches_merchant_memory_at_once,
    the_classifier_and_imports_categorize_without_rules,
    bank_messages_become_one_transaction_each,
);

async fn account_with(app: &TestApp, t: &str, body: Value) -> String {
    let (s, a) = send(app, Method::POST, "/api/v1/accounts", t, Some(body)).await;
    assert_eq!(s, 201, "{a}");
    a["id"].as_str().unwrap().to_string()
}

async fn get_txn(app: &TestApp, t: &str, id: &Value) -> Value {
    let (s, body) = send(
        app,
        Method::GET,
        &format!("/api/v1/transactions/{}", id.as_str().unwrap()),
        t,
        None,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    body
}

async fn rules_categorize_new_and_existing_transactions(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let t = user(&app, "rules@example.org").await;
    let a = account_with(
        &app,
        &t,
        json!({ "name": "Main", "kind": "checking", "currency": "EUR" }),
    )
    .await;
    let coffee = category(&app, &t, "Coffee").await;
    let hobbies = category(&app, &t, "Hobbies").await;
    let restaurants = category(&app, &t, "Restaurants").await;

    // Before any rule: one the user categorized by hand, one left to the categorizer.
    let manual = txn(
        &app,
        &t,
        &a,
        "-4.20",
        json!({ "merchant": "Starbucks", "category_id": restaurants }),
    )
    .await;
    let earlier = txn(
        &app,
        &t,
        &a,
        "-3.10",
        json!({ "description": "STARBUCKS RESERVE 0042" }),
    )
    .await;

    let (s, rule) = send(
        &app,
        Method::POST,
        "/api/v1/rules",
        &t,
        Some(json!({
            "name": "Coffee shops",
            "conditions": [
                { "field": "description", "op": "regex", "value": "starbucks|costa" },
                { "field": "merchant", "op": "contains", "value": "starbucks" }
            ],
            "match": "any",
            "actions": [
                { "type": "set_category", "category_id": coffee },
                { "type": "add_tags", "tags": ["caffeine"] }
            ]
        })),
    )
    .await;
    assert_eq!(s, 201, "{rule}");
    assert_eq!(rule["position"], 0);
    assert_eq!(rule["version"], 1);
    let rule_id = rule["id"].as_str().unwrap().to_string();

    // New transactions are categorized by the rule, with its other actions.
    let new = txn(
        &app,
        &t,
        &a,
        "-2.50",
        json!({ "description": "COSTA COFFEE LONDON" }),
    )
    .await;
    assert_eq!(new["category_id"], coffee.as_str(), "{new}");
    assert_eq!(new["category_source"], "rule");
    assert_eq!(new["confidence"], 1.0);
    assert_eq!(new["tags"], json!(["caffeine"]));
    // A category the client gives wins; the rule's tags still apply.
    let given = txn(
        &app,
        &t,
        &a,
        "-9.00",
        json!({ "description": "Starbucks beans", "category_id": hobbies }),
    )
    .await;
    assert_eq!(given["category_id"], hobbies.as_str());
    assert_eq!(given["category_source"], "user");
    assert_eq!(given["tags"], json!(["caffeine"]));

    // Applying it to existing transactions changes the matching ones, keeping hand-made choices.
    let apply = format!("/api/v1/rules/{rule_id}/apply");
    let (s, report) = send(&app, Method::POST, &apply, &t, None).await;
    assert_eq!(s, 200, "{report}");
    assert_eq!(report["matched"], 4, "{report}");
    assert_eq!(
        report["changed"], 2,
        "the earlier one and the manual one's tags: {report}"
    );
    let e = get_txn(&app, &t, &earlier["id"]).await;
    assert_eq!(e["category_id"], coffee.as_str());
    assert_eq!(e["category_source"], "rule");
    assert_eq!(e["version"], 2);
    let m = get_txn(&app, &t, &manual["id"]).await;
    assert_eq!(
        m["category_id"],
        restaurants.as_str(),
        "hand-made category kept"
    );
    assert_eq!(m["tags"], json!(["caffeine"]));
    // Applying again changes nothing; with overwrite the manual one follows the rule.
    let (_, again) = send(&app, Method::POST, &apply, &t, None).await;
    assert_eq!(again["changed"], 0, "{again}");
    let (s, forced) = send(
        &app,
        Method::POST,
        &apply,
        &t,
        Some(json!({ "overwrite": true })),
    )
    .await;
    assert_eq!(s, 200, "{forced}");
    assert_eq!(
        forced["changed"], 2,
        "the manual one and the one given Hobbies: {forced}"
    );
    assert_eq!(
        get_txn(&app, &t, &manual["id"]).await["category_id"],
        coffee.as_str()
    );
    // The summary follows the recategorization (aggregates moved with it).
    let (_, summary) = send(
        &app,
        Method::GET,
        "/api/v1/reports/summary?from=2026-11-01&to=2026-11-30",
        &t,
        None,
    )
    .await;
    let lines: Vec<&Value> = summary["by_category"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| std::iter::once(c).chain(c["children"].as_array().unwrap().iter()))
        .collect();
    let coffee_total = lines
        .iter()
        .find(|c| c["category_id"] == coffee.as_str())
        .map(|c| c["expense"].clone());
    assert_eq!(
        coffee_total,
        Some(json!("18.80")),
        "all four are coffee now: {summary}"
    );

    // Order: a second rule placed first with stop_processing wins and stops the first.
    let (s, first) = send(
        &app,
        Method::POST,
        "/api/v1/rules",
        &t,
        Some(json!({
            "name": "Costa is a hobby", "position": 0, "stop_processing": true,
            "conditions": [{ "field": "description", "op": "starts_with", "value": "costa" }],
            "actions": [{ "type": "set_category", "category_id": hobbies }]
        })),
    )
    .await;
    assert_eq!(s, 201, "{first}");
    let first_id = first["id"].as_str().unwrap().to_string();
    let (s, order) = send(
        &app,
        Method::PUT,
        "/api/v1/rules/order",
        &t,
        Some(json!({ "ids": [first_id, rule_id] })),
    )
    .await;
    assert_eq!(s, 200, "{order}");
    let (_, list) = send(&app, Method::GET, "/api/v1/rules", &t, None).await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Costa is a hobby", "Coffee shops"]);
    let costa = txn(
        &app,
        &t,
        &a,
        "-2.50",
        json!({ "description": "Costa Coffee" }),
    )
    .await;
    assert_eq!(costa["category_id"], hobbies.as_str());
    assert_eq!(
        costa["tags"],
        json!([]),
        "stop_processing skipped the later rule"
    );

    // PATCH with a stale version is a 409; with the right one it changes the rule.
    let path = format!("/api/v1/rules/{rule_id}");
    let (_, current) = send(&app, Method::GET, &path, &t, None).await;
    let (s, _) = send(
        &app,
        Method::PATCH,
        &path,
        &t,
        Some(json!({ "version": 99, "name": "x" })),
    )
    .await;
    assert_eq!(s, 409);
    let (s, patched) = send(
        &app,
        Method::PATCH,
        &path,
        &t,
        Some(json!({ "version": current["version"], "name": "Coffee" })),
    )
    .await;
    assert_eq!(s, 200, "{patched}");
    assert_eq!(patched["name"], "Coffee");
    let (s, _) = send(&app, Method::DELETE, &path, &t, None).await;
    assert_eq!(s, 204);
    let (s, _) = send(&app, Method::GET, &path, &t, None).await;
    assert_eq!(s, 404);
    let (s, _) = send(&app, Method::POST, &apply, &t, None).await;
    assert_eq!(s, 404);

    // Rules survive a restart.
    let app = restart(&app).await;
    let (_, list) = send(&app, Method::GET, "/api/v1/rules", &t, None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    let costa = txn(&app, &t, &a, "-2.50", json!({ "description": "costa" })).await;
    assert_eq!(costa["category_source"], "rule");

    // A rule on `merchant` sees the merchant read from the description when none is given
    // (the README's own example).
    let (s, body) = send(&app, Method::POST, "/api/v1/rules", &t, Some(json!({
        "name": "Beans", "conditions": [{ "field": "merchant", "op": "contains", "value": "starbucks" }],
        "actions": [{ "type": "add_tags", "tags": ["coffee"] }]
    }))).await;
    assert_eq!(s, 201, "{body}");
    let bucks = txn(
        &app,
        &t,
        &a,
        "-4.50",
        json!({ "description": "STARBUCKS STORE 1234 SEATTLE" }),
    )
    .await;
    assert_eq!(bucks["merchant"], "Starbucks", "{bucks}");
    assert_eq!(bucks["tags"], json!(["coffee"]), "{bucks}");

    // A category a rule sets cannot be deleted from under it: the answer names the rule.
    let (s, setting) = send(&app, Method::POST, "/api/v1/rules", &t, Some(json!({
        "name": "Beans shop", "conditions": [{ "field": "merchant", "op": "contains", "value": "beans" }],
        "actions": [{ "type": "set_category", "category_id": coffee }]
    }))).await;
    assert_eq!(s, 201, "{setting}");
    let coffee_path = format!("/api/v1/categories/{}", coffee.as_str());
    let r = app.send(Method::DELETE, &coffee_path, Some(&t), None).await;
    let problem = r.problem(409);
    let named = format!("rule \"{}\"", setting["name"].as_str().unwrap());
    assert!(
        problem["detail"].as_str().unwrap().contains(&named),
        "{problem}"
    );
    let rule_path = format!("/api/v1/rules/{}", setting["id"].as_str().unwrap());
    let (s, _) = send(&app, Method::DELETE, &rule_path, &t, None).await;
    assert_eq!(s, 204);
    let (s, _) = send(&app, Method::DELETE, &coffee_path, &t, None).await;
    assert_eq!(s, 204);
}

async fn bad_rules_are_422_with_the_reason(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let t = user(&app, "badrules@example.org").await;
    let coffee = category(&app, &t, "Coffee").await;
    let set = json!([{ "type": "set_category", "category_id": coffee }]);
    let cases = [
        (
            json!([{ "field": "description", "op": "regex", "value": "(unclosed" }]),
            set.clone(),
            "conditions[0].value",
            "not a valid regex",
        ),
        (
            json!([{ "field": "description", "op": "regex", "value": "(a{1,100}){1,100}{1,100}" }]),
            set.clone(),
            "conditions[0].value",
            "too complex",
        ),
        (
            json!([{ "field": "colour", "op": "equals", "value": "red" }]),
            set.clone(),
            "conditions[0].field",
            "unknown field",
        ),
        (
            json!([{ "field": "amount", "op": "contains", "value": "5" }]),
            set.clone(),
            "conditions[0].op",
            "does not apply",
        ),
        (
            json!([{ "field": "amount", "op": "gt", "value": "1,5" }]),
            set.clone(),
            "conditions[0].value",
            "not a decimal",
        ),
        (
            json!([{ "field": "merchant", "op": "contains", "value": "x" }]),
            json!([{ "type": "set_category", "category_id": "0192f1c4-0000-7000-8000-000000000000" }]),
            "actions[0].category_id",
            "no such category",
        ),
        (
            json!([{ "field": "merchant", "op": "contains", "value": "x" }]),
            json!([{ "type": "explode" }]),
            "actions[0].type",
            "unknown variant",
        ),
        (json!([]), set.clone(), "conditions", "at least one"),
    ];
    for (conditions, actions, field, message) in cases {
        let r = app
            .send(
                Method::POST,
                "/api/v1/rules",
                Some(&t),
                Some(json!({ "name": "bad", "conditions": conditions, "actions": actions })),
            )
            .await;
        let problem = r.problem(422);
        let errors = problem["errors"].as_array().unwrap();
        assert!(
            errors
                .iter()
                .any(|e| e["field"] == field && e["message"].as_str().unwrap().contains(message)),
            "{field}: {problem}"
        );
    }
    // Rules run from position 0 up.
    let r = app
        .send(
            Method::POST,
            "/api/v1/rules",
            Some(&t),
            Some(json!({ "name": "first", "position": -1, "conditions": [{ "field": "merchant", "op": "contains", "value": "x" }], "actions": set })),
        )
        .await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "position");
    // A pathological but valid regex runs in linear time: the request returns promptly.
    let (s, rule) = send(&app, Method::POST, "/api/v1/rules", &t, Some(json!({
        "name": "evil", "conditions": [{ "field": "description", "op": "regex", "value": "^(a+)+$" }], "actions": set
    }))).await;
    assert_eq!(s, 201, "{rule}");
    let a = account_with(
        &app,
        &t,
        json!({ "name": "Main", "kind": "checking", "currency": "EUR" }),
    )
    .await;
    let long = format!("{}b", "a".repeat(499));
    let made = txn(&app, &t, &a, "-1.00", json!({ "description": long })).await;
    assert_ne!(made["category_source"], "rule");
    let (s, _) = send(&app, Method::GET, "/api/v1/rules", &t, None).await;
    assert_eq!(s, 200);
}

async fn a_correction_teaches_merchant_memory_at_once(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let t = user(&app, "memory@example.org").await;
    let a = account_with(
        &app,
        &t,
        json!({ "name": "Main", "kind": "checking", "currency": "EUR" }),
    )
    .await;
    let education = category(&app, &t, "Education").await;
    let first = txn(
        &app,
        &t,
        &a,
        "-42.00",
        json!({ "description": "ZORBLAX QUILLWORKS 0042 BERLIN" }),
    )
    .await;
    assert_ne!(first["category_id"], education.as_str());
    let (s, fixed) = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/transactions/{}", first["id"].as_str().unwrap()),
        &t,
        Some(json!({ "category_id": education })),
    )
    .await;
    assert_eq!(s, 200, "{fixed}");
    assert_eq!(fixed["category_source"], "user");
    // The next one from that merchant, written differently, is categorized from memory.
    let next = txn(
        &app,
        &t,
        &a,
        "-17.00",
        json!({ "description": "Zorblax Quillworks #0043 Berlin" }),
    )
    .await;
    assert_eq!(next["category_id"], education.as_str(), "{next}");
    assert_eq!(next["category_source"], "merchant_memory");
    // And still after a restart (memory is stored, the classifier is rebuilt).
    let app = restart(&app).await;
    let again = txn(
        &app,
        &t,
        &a,
        "-5.00",
        json!({ "description": "ZORBLAX QUILLWORKS 0099" }),
    )
    .await;
    assert_eq!(again["category_id"], education.as_str(), "{again}");
    // Another user learned nothing from it.
    let other = user(&app, "other@example.org").await;
    let b = account_with(
        &app,
        &other,
        json!({ "name": "Main", "kind": "checking", "currency": "EUR" }),
    )
    .await;
    let theirs = txn(
        &app,
        &other,
        &b,
        "-5.00",
        json!({ "description": "ZORBLAX QUILLWORKS 0099" }),
    )
    .await;
    assert_ne!(theirs["category_source"], "merchant_memory");
}

async fn the_classifier_and_imports_categorize_without_rules(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let t = user(&app, "model@example.org").await;
    let a = account_with(
        &app,
        &t,
        json!({ "name": "Main", "kind": "checking", "currency": "GBP" }),
    )
    .await;
    let groceries = category(&app, &t, "Groceries").await;
    let salary = category(&app, &t, "Salary").await;
    let tesco = txn(
        &app,
        &t,
        &a,
        "-23.40",
        json!({ "description": "POS TESCO STORES 3241 LEEDS" }),
    )
    .await;
    assert_eq!(tesco["category_id"], groceries.as_str(), "{tesco}");
    assert_eq!(tesco["category_source"], "model");
    let confidence = tesco["confidence"].as_f64().unwrap();
    // A guess, however good, never claims the certainty of a rule or a label.
    assert!(confidence > 0.25 && confidence < 1.0, "{tesco}");
    let coffee = txn(
        &app,
        &t,
        &a,
        "-12.50",
        json!({ "description": "Coffee at Blue Bottle" }),
    )
    .await;
    assert_eq!(coffee["category_source"], "model", "{coffee}");
    let confidence = coffee["confidence"].as_f64().unwrap();
    assert!(confidence > 0.9 && confidence < 1.0, "{coffee}");
    assert_eq!(
        tesco["merchant"], "Tesco",
        "the payee is normalized when none is given"
    );
    let pay = txn(
        &app,
        &t,
        &a,
        "2500.00",
        json!({ "description": "ACME LTD PAYROLL NOV" }),
    )
    .await;
    assert_eq!(pay["category_id"], salary.as_str(), "{pay}");
    let unknown = txn(&app, &t, &a, "-1.00", json!({ "description": "qqq" })).await;
    assert_eq!(unknown["category_id"], Value::Null);
    assert_eq!(unknown["category_source"], "none");

    // Imported rows without a category go through the same categorizer.
    let csv = "date,amount,text\n2026-11-03,-12.00,SAINSBURYS S/MKT 0421\n2026-11-04,-30.00,NETFLIX.COM\n2026-11-05,-3.00,qqq\n";
    let mapping = json!({ "date": "date", "date_format": "%Y-%m-%d", "amount": "amount", "description": "text" }).to_string();
    let query = format!(
        "format=csv&account_id={a}&mapping={}",
        mapping
            .bytes()
            .map(|b| format!("%{b:02X}"))
            .collect::<String>()
    );
    let (s, report) = upload(&app, &t, &query, csv.as_bytes().to_vec(), "text/csv").await;
    assert_eq!(s, 200, "{report}");
    assert_eq!(report["created"], 3, "{report}");
    let (_, list) = send(
        &app,
        Method::GET,
        &format!("/api/v1/transactions?account_id={a}&from=2026-11-03&to=2026-11-05"),
        &t,
        None,
    )
    .await;
    let by_text: std::collections::HashMap<String, Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["description"].as_str().unwrap().to_string(), i.clone()))
        .collect();
    assert_eq!(
        by_text["SAINSBURYS S/MKT 0421"]["category_id"],
        groceries.as_str(),
        "{list}"
    );
    assert_eq!(by_text["SAINSBURYS S/MKT 0421"]["category_source"], "model");
    assert_eq!(
        by_text["NETFLIX.COM"]["category_id"],
        category(&app, &t, "Streaming").await.as_str()
    );
    assert_eq!(by_text["qqq"]["category_source"], "none");
}

async fn bank_messages_become_one_transaction_each(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let t = user(&app, "sms@example.org").await;
    let hdfc = account_with(
        &app,
        &t,
        json!({ "name": "HDFC", "kind": "checking", "currency": "INR", "number_hint": "1234" }),
    )
    .await;
    let _card = account_with(
        &app,
        &t,
        json!({ "name": "Card", "kind": "credit_card", "currency": "INR", "number_hint": "9999" }),
    )
    .await;
    let message = "Sent Rs.250.00\nFrom HDFC Bank A/C *1234\nTo SWIGGY\nOn 03/11/25\nRef 530712345678\nNot You?\nCall 18002586161/SMS BLOCK UPI to 7308080808";
    let body =
        json!({ "text": message, "sender": "VM-HDFCBK", "received_at": "2025-11-03T09:15:00Z" });
    let (s, first) = send(
        &app,
        Method::POST,
        "/api/v1/ingest/messages",
        &t,
        Some(body.clone()),
    )
    .await;
    assert_eq!(s, 201, "{first}");
    assert_eq!(first["duplicate"], false);
    assert_eq!(first["parsed"]["amount"], "250.00");
    assert_eq!(first["parsed"]["direction"], "debit");
    assert_eq!(first["parsed"]["last_digits"], "1234");
    assert_eq!(first["parsed"]["reference"], "530712345678");
    let made = &first["transaction"];
    assert_eq!(made["account_id"], hdfc.as_str());
    assert_eq!(made["amount"], "-250.00");
    assert_eq!(made["date"], "2025-11-03");
    assert_eq!(made["source"], "sms");
    assert_eq!(made["merchant"], "Swiggy");
    // The same message again (extra whitespace too) is the same transaction.
    let mut resent = body.clone();
    resent["text"] = json!(message.replace('\n', "  \n "));
    let (s, second) = send(
        &app,
        Method::POST,
        "/api/v1/ingest/messages",
        &t,
        Some(resent),
    )
    .await;
    assert_eq!(s, 200, "{second}");
    assert_eq!(second["duplicate"], true);
    assert_eq!(second["transaction"]["id"], made["id"]);
    let (_, list) = send(
        &app,
        Method::GET,
        &format!("/api/v1/transactions?account_id={hdfc}"),
        &t,
        None,
    )
    .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (_, acct) = send(
        &app,
        Method::GET,
        &format!("/api/v1/accounts/{hdfc}"),
        &t,
        None,
    )
    .await;
    assert_eq!(acct["balance"], "-250.00");

    // Not transactions: a 422 saying which.
    for (text, code) in [
        ("123456 is OTP for transaction of INR 2,499.00 at AMAZON on HDFC Bank card ending 5678. Valid till 14:32:10. Do not share OTP for security reasons", "otp"),
        ("Congratulations! Pre-approved Personal Loan of Rs.5,00,000 can be credited to your HDFC Bank A/c XX1234 in 10 seconds. Apply now: https://hdfcbk.io/a/XyZ12 T&C", "promotion"),
    ] {
        let r = app.send(Method::POST, "/api/v1/ingest/messages", Some(&t), Some(json!({ "text": text }))).await;
        let problem = r.problem(422);
        let msg = problem["errors"][0]["message"].as_str().unwrap();
        assert!(msg.contains(&format!("({code})")), "{problem}");
    }
    let declined = "Your transaction of Rs.1,500.00 at AMAZON using HDFC Bank Card XX1234 was declined due to insufficient balance.";
    let r = app
        .send(
            Method::POST,
            "/api/v1/ingest/messages",
            Some(&t),
            Some(json!({ "text": declined })),
        )
        .await;
    assert!(r.problem(422)["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("(declined)"));
    // Digits no account claims, a currency the account does not hold, and empty text.
    let r = app.send(Method::POST, "/api/v1/ingest/messages", Some(&t), Some(json!({ "text": "Rs 500.00 debited from a/c **5555 on 02-11-25 to VPA shop@okaxis (UPI Ref No 530612345699)." }))).await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "account_id");
    let r = app.send(Method::POST, "/api/v1/ingest/messages", Some(&t), Some(json!({ "text": "You spent $25.00 at STARBUCKS with your card ending 1234 on Nov 3." }))).await;
    assert!(r.problem(422)["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("USD"));
    let r = app
        .send(
            Method::POST,
            "/api/v1/ingest/messages",
            Some(&t),
            Some(json!({ "text": "  " })),
        )
        .await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "text");
    // Control characters and direction marks in a message do not make it a 422 on a field the
    // client never sent: the transaction is made without them.
    let odd = "Sent Rs.12.00\u{0}\nFrom HDFC Bank A/C *1234\nTo CHAI\u{202E} POINT\nOn 04/11/25\nRef 530712345679";
    let (s, made) = send(
        &app,
        Method::POST,
        "/api/v1/ingest/messages",
        &t,
        Some(json!({ "text": odd })),
    )
    .await;
    assert_eq!(s, 201, "{made}");
    let tx = made["transaction"].to_string();
    assert!(!tx.contains("\\u0000") && !tx.contains('\u{202E}'), "{tx}");
    // A message that names no payee keeps its text as the description, and no merchant is
    // made up from it.
    let plain = "Rs 1,500.00 credited to your a/c XX1234 on 05/11/25.";
    let (s, made) = send(
        &app,
        Method::POST,
        "/api/v1/ingest/messages",
        &t,
        Some(json!({ "text": plain })),
    )
    .await;
    assert_eq!(s, 201, "{made}");
    assert_eq!(made["parsed"]["merchant"], Value::Null, "{made}");
    assert_eq!(made["transaction"]["merchant"], "", "{made}");
    assert_eq!(made["transaction"]["description"], plain, "{made}");
}
