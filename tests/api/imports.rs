//! Imports and exports over HTTP: CSV/OFX/QIF with previews, deduplication and reports; CSV,
//! ledger-journal (checked with hledger) and JSON-backup exports; backup restore.
use std::process::Command;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn, spawn_with, Backend, TestApp};
use crate::ledger::{account, balance, send, txn, user};
use crate::on_both_backends;
use ledgerline::domain::export::{journal_account_names, JournalAccount};
use ledgerline::domain::money::parse_minor;
use ledgerline::domain::Currency;

on_both_backends!(
    csv_import_previews_dedups_and_reports,
    a_long_import_keeps_every_row_and_field,
    an_import_in_several_chunks_commits_them_in_order,
    a_second_import_into_one_account_waits_its_turn,
    ofx_and_qif_imports,
    bad_imports_are_clear_4xx,
    ledger_export_balances_match_hledger,
    json_backup_restores_into_an_empty_user,
);

const CSV: &str = "Date;Betrag;Text;Empfänger;Kategorie\n\
01.10.2026;-1.234,56;Miete Oktober;Hausverwaltung;Rent\n\
02.10.2026;-12,50;Kaffee;Bean Bar;Coffee\n\
02.10.2026;-12,50;Kaffee;Bean Bar;Coffee\n\
03.10.2026;3.000,00;Gehalt;ACME GmbH;Salary\n\
kein datum;1,00;x;y;z\n";

fn mapping() -> String {
    json!({
        "delimiter": ";", "date": "Date", "date_format": "%d.%m.%Y", "amount": "Betrag",
        "decimal_separator": ",", "thousands_separator": ".", "description": "Text",
        "payee": "Empfänger", "category": "Kategorie"
    })
    .to_string()
}

pub async fn upload(
    app: &TestApp,
    t: &str,
    query: &str,
    body: Vec<u8>,
    content_type: &str,
) -> (u16, Value) {
    let r = app
        .client
        .post(app.url(&format!("/api/v1/imports?{query}")))
        .bearer_auth(t)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let bytes = r.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn csv_import_previews_dedups_and_reports(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let t = user(&app, "csv@example.org").await;
    let a = account(&app, &t, "Giro", "EUR", "0").await;
    let q = format!("format=csv&account_id={a}&mapping={}", enc(&mapping()));

    let (s, preview) = upload(
        &app,
        &t,
        &format!("{q}&preview=true"),
        CSV.as_bytes().to_vec(),
        "text/csv",
    )
    .await;
    assert_eq!(s, 200, "{preview}");
    assert_eq!(preview["would_create"], 4);
    assert_eq!(preview["report"]["samples"][0]["amount"], "-1234.56");
    assert_eq!(preview["report"]["failed"][0]["line"], 6);
    let (_, list) = send(&app, Method::GET, "/api/v1/transactions", &t, None).await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        0,
        "a preview writes nothing"
    );

    let (s, report) = upload(&app, &t, &q, CSV.as_bytes().to_vec(), "text/csv").await;
    assert_eq!(s, 200, "{report}");
    assert_eq!(report["created"], 4, "two identical coffees stay two");
    assert_eq!(report["rows_in_file"], 5);
    assert_eq!(report["failed"].as_array().unwrap().len(), 1);
    let (_, acct) = send(
        &app,
        Method::GET,
        &format!("/api/v1/accounts/{a}"),
        &t,
        None,
    )
    .await;
    assert_eq!(acct["balance"], "1740.44");

    // Categories from the file are matched by name; the import is recorded in the event log.
    let (_, list) = send(&app, Method::GET, "/api/v1/transactions?q=miete", &t, None).await;
    assert!(list["items"][0]["category_id"].is_string());
    assert_eq!(list["items"][0]["source"], "import");
    assert_eq!(list["items"][0]["merchant"], "Hausverwaltung");

    // The same file again: everything is a duplicate.
    let (s, again) = upload(&app, &t, &q, CSV.as_bytes().to_vec(), "text/csv").await;
    assert_eq!(s, 200);
    assert_eq!(
        (
            again["created"].as_u64(),
            again["skipped_duplicates"].as_u64()
        ),
        (Some(0), Some(4))
    );
    // A file with one more row adds only that row.
    let more = format!("{CSV}04.10.2026;-5,00;Brot;Bäcker;\n");
    let (_, third) = upload(&app, &t, &q, more.into_bytes(), "text/csv").await;
    assert_eq!(
        (
            third["created"].as_u64(),
            third["skipped_duplicates"].as_u64()
        ),
        (Some(1), Some(4))
    );

    let uid = app.login("csv@example.org", crate::helpers::PASSWORD).await["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let kinds: Vec<String> = app
        .state
        .db
        .run(move |conn| {
            Ok(ledgerline::store::ledger::events_after(conn, &uid, 0, 100)?
                .into_iter()
                .map(|e| e.kind)
                .collect())
        })
        .await
        .unwrap();
    assert!(
        kinds.iter().filter(|k| *k == "import.completed").count() == 2,
        "{kinds:?}"
    );
    assert!(kinds.contains(&"import.progress".to_string()));

    // With an Idempotency-Key: the same upload again gets the first report back, marked
    // replayed (not a second run that skips everything); another file under the key is a 422.
    let b = account(&app, &t, "Keyed", "EUR", "0").await;
    let keyed = format!("format=csv&account_id={b}&mapping={}", enc(&mapping()));
    let post = |body: &'static str| {
        let (app, t, keyed) = (&app, &t, &keyed);
        async move {
            let r = app
                .client
                .post(app.url(&format!("/api/v1/imports?{keyed}")))
                .bearer_auth(t)
                .header("content-type", "text/csv")
                .header("idempotency-key", "statement-2026-10")
                .body(body)
                .send()
                .await
                .unwrap();
            let replayed = r.headers().contains_key("idempotent-replayed");
            (
                r.status().as_u16(),
                replayed,
                r.json::<Value>().await.unwrap(),
            )
        }
    };
    let (s, replayed, first) = post(CSV).await;
    assert_eq!((s, replayed), (200, false), "{first}");
    assert_eq!(first["created"], 4, "{first}");
    let (s, replayed, again) = post(CSV).await;
    assert_eq!((s, replayed), (200, true), "{again}");
    assert_eq!(again, first);
    let (s, _, other) = post("Datum;Betrag;Text\n01.10.2026;-1,00;x\n").await;
    assert_eq!(s, 422, "{other}");
    assert_eq!(other["errors"][0]["field"], "Idempotency-Key", "{other}");

    // Only a currency code or sign (or CR/DR) may stand beside an amount: a stray note or
    // another currency's code fails its row with a reason instead of importing as money.
    let odd = "Date;Betrag;Text;Empfänger;Kategorie\n\
04.10.2026;12,50 EUR;Erstattung;Bean Bar;\n\
05.10.2026;-x7;Tippfehler;Bean Bar;\n\
06.10.2026;USD 5,00;Dollar;Bean Bar;\n";
    let c = account(&app, &t, "Odd", "EUR", "0").await;
    let q = format!("format=csv&account_id={c}&mapping={}", enc(&mapping()));
    let (s, r) = upload(&app, &t, &q, odd.as_bytes().to_vec(), "text/csv").await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["created"], 1, "{r}");
    let failed = r["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 2, "{r}");
    assert_eq!(failed[0]["line"], 3);
    assert!(
        failed[0]["reason"]
            .as_str()
            .unwrap()
            .contains("unexpected text"),
        "{r}"
    );
    assert_eq!(failed[1]["line"], 4);
    assert!(
        failed[1]["reason"]
            .as_str()
            .unwrap()
            .contains("is in USD, not EUR"),
        "{r}"
    );
    assert_eq!(balance(&app, &t, &c).await, "12.50");
}

/// A file long enough for several multi-row INSERT statements and a remainder, whose rows mix
/// set and unset optional fields: every row arrives with its own fields, in date order, with
/// blanks trimmed and categories matched by name whatever their case.
async fn a_long_import_keeps_every_row_and_field(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let t = user(&app, "long@example.org").await;
    let a = account(&app, &t, "Giro", "EUR", "0").await;
    let mut csv = String::from("Date,Amount,Description,Payee,Category,Notes,Ref\n");
    let mut total = 0i64;
    // 600 rows: two full multi-row INSERT statements of 256 rows and a remainder.
    const ROWS: i64 = 600;
    for i in 0..ROWS {
        // Dates run backwards through the file: the import writes them in date order.
        let day = 28 - i % 28;
        let cents = -(100 + i * 7);
        total += cents;
        let category = ["Groceries", " coffee ", "", "RENT"][(i % 4) as usize];
        let notes = if i % 3 == 0 {
            format!("note {i}")
        } else {
            String::new()
        };
        let reference = if i % 5 == 0 {
            format!("REF-{i}")
        } else {
            String::new()
        };
        csv.push_str(&format!(
            "2026-10-{day:02},{}.{:02},  Row {i}  ,Shop {},{category},{notes},{reference}\n",
            cents / 100,
            (-cents) % 100,
            i % 7
        ));
    }
    let mapping = json!({
        "date": "Date", "amount": "Amount", "description": "Description", "payee": "Payee",
        "category": "Category", "notes": "Notes", "external_id": "Ref"
    })
    .to_string();
    let q = format!("format=csv&account_id={a}&mapping={}", enc(&mapping));
    let (s, report) = upload(&app, &t, &q, csv.clone().into_bytes(), "text/csv").await;
    assert_eq!(s, 200, "{report}");
    assert_eq!(report["created"], ROWS, "{report}");
    let expected = format!("-{}.{:02}", -total / 100, -total % 100);
    assert_eq!(balance(&app, &t, &a).await, expected);

    let mut items: Vec<Value> = Vec::new();
    let mut path = "/api/v1/transactions?limit=200".to_string();
    loop {
        let (s, page) = send(&app, Method::GET, &path, &t, None).await;
        assert_eq!(s, 200, "{page}");
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/transactions?limit=200&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(items.len() as i64, ROWS);
    let (_, cats) = send(&app, Method::GET, "/api/v1/categories", &t, None).await;
    let category_named = |name: &str| {
        cats.as_array()
            .or_else(|| cats["items"].as_array())
            .unwrap()
            .iter()
            .find(|c| {
                c["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .map(|c| c["id"].clone())
            .unwrap()
    };
    for i in 0..ROWS {
        let row = items
            .iter()
            .find(|r| r["description"] == format!("Row {i}").as_str())
            .unwrap_or_else(|| panic!("row {i} is missing (or its blanks were kept)"));
        let cents = 100 + i * 7;
        assert_eq!(
            row["amount"],
            format!("-{}.{:02}", cents / 100, cents % 100).as_str()
        );
        assert_eq!(row["date"], format!("2026-10-{:02}", 28 - i % 28).as_str());
        assert_eq!(row["merchant"], format!("Shop {}", i % 7).as_str());
        let notes = if i % 3 == 0 {
            format!("note {i}")
        } else {
            String::new()
        };
        assert_eq!(row["notes"], notes.as_str(), "row {i}");
        match i % 4 {
            0 => assert_eq!(row["category_id"], category_named("Groceries"), "row {i}"),
            1 => assert_eq!(row["category_id"], category_named("Coffee"), "row {i}"),
            3 => assert_eq!(row["category_id"], category_named("Rent"), "row {i}"),
            _ => {}
        }
    }
    // Newest first: the listing's dates never go up.
    let dates: Vec<&str> = items.iter().map(|r| r["date"].as_str().unwrap()).collect();
    assert!(dates.windows(2).all(|w| w[0] >= w[1]), "{dates:?}");

    // The same file again adds nothing: rows with a reference and rows without are known.
    let (s, again) = upload(&app, &t, &q, csv.into_bytes(), "text/csv").await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(
        (
            again["created"].as_u64(),
            again["skipped_duplicates"].as_u64()
        ),
        (Some(0), Some(ROWS as u64))
    );
}

/// The user's whole event log, oldest first.
async fn event_log(app: &TestApp, email: &str) -> Vec<Value> {
    let uid = app.login(email, crate::helpers::PASSWORD).await["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.state
        .db
        .run(move |conn| {
            Ok(
                ledgerline::store::ledger::events_after(conn, &uid, 0, 1000)?
                    .into_iter()
                    .map(|e| serde_json::from_str(&e.envelope).unwrap())
                    .collect(),
            )
        })
        .await
        .unwrap()
}

/// Two imports of one file into one account at once: while the first is being written, the
/// second is refused with a 409 that says why (it would otherwise check its rows against the
/// account as it was before the first, and fail on their external ids when writing); sent
/// again afterwards, it skips every row the first wrote.
async fn a_second_import_into_one_account_waits_its_turn(backend: Backend) {
    let Some(app) = spawn_with(backend, |c| c.import_chunk_rows = 200).await else {
        return;
    };
    let email = "turns@example.org";
    let t = user(&app, email).await;
    let a = account(&app, &t, "Giro", "EUR", "0").await;
    const ROWS: usize = 6_000;
    let mut csv = String::from("Date,Amount,Description,Ref\n");
    for i in 0..ROWS {
        csv.push_str(&format!(
            "2026-{:02}-{:02},-1.00,Row {i},R{i}\n",
            1 + i % 12,
            1 + i % 28
        ));
    }
    let mapping = json!({
        "date": "Date", "amount": "Amount", "description": "Description", "external_id": "Ref"
    })
    .to_string();
    let q = format!("format=csv&account_id={a}&mapping={}", enc(&mapping));
    let uid = app.login(email, crate::helpers::PASSWORD).await["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Progress events in the user's log (each written chunk adds one).
    let progress = || {
        let uid = uid.clone();
        app.state.db.run(move |conn| {
            Ok(
                ledgerline::store::ledger::events_after(conn, &uid, 0, 100_000)?
                    .iter()
                    .filter(|e| e.kind == "import.progress")
                    .count(),
            )
        })
    };
    // Until an import under way has written a chunk (then it has many more to go).
    let written_a_chunk = |before: usize| {
        let progress = &progress;
        async move {
            let waited = std::time::Instant::now();
            while progress().await.unwrap() == before {
                assert!(
                    waited.elapsed().as_secs() < 60,
                    "the import never progressed"
                );
                actix_web::rt::time::sleep(std::time::Duration::from_millis(2)).await;
            }
        }
    };
    let first = upload(&app, &t, &q, csv.clone().into_bytes(), "text/csv");
    let second = async {
        written_a_chunk(0).await;
        upload(&app, &t, &q, csv.clone().into_bytes(), "text/csv").await
    };
    let ((s1, r1), (s2, r2)) = futures_util::future::join(first, second).await;
    assert_eq!(s1, 200, "{r1}");
    assert_eq!(r1["created"], ROWS as u64, "{r1}");
    assert_eq!(s2, 409, "{r2}");
    assert_eq!(r2["status"], 409, "problem+json: {r2}");
    assert!(r2["detail"].as_str().unwrap().contains("running"), "{r2}");
    // Its turn now: everything is already there.
    let (s, again) = upload(&app, &t, &q, csv.clone().into_bytes(), "text/csv").await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(
        (
            again["created"].as_u64(),
            again["skipped_duplicates"].as_u64()
        ),
        (Some(0), Some(ROWS as u64))
    );
    assert_eq!(balance(&app, &t, &a).await, "-6000.00");

    // An import the ledger refuses part way (the account archived meanwhile) says that the
    // chunks before stay written.
    let b = account(&app, &t, "Old", "EUR", "0").await;
    let q = format!("format=csv&account_id={b}&mapping={}", enc(&mapping));
    let before = progress().await.unwrap();
    let import = upload(&app, &t, &q, csv.into_bytes(), "text/csv");
    let archive = async {
        written_a_chunk(before).await;
        send(
            &app,
            Method::PATCH,
            &format!("/api/v1/accounts/{b}"),
            &t,
            Some(json!({ "archived": true })),
        )
        .await
    };
    let ((s, r), (archived, _)) = futures_util::future::join(import, archive).await;
    assert_eq!(archived, 200);
    assert_eq!(s, 422, "{r}");
    let message = r["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("archived"), "{r}");
    assert!(message.contains("the import stopped after"), "{r}");
    assert!(message.contains("of 6000 new rows"), "{r}");
    assert_ne!(balance(&app, &t, &b).await, "0.00", "the first chunks stay");
}

/// An import of several commits (the Ledger prepares each chunk while the one before commits):
/// every row arrives once, each chunk's `import.progress` and `balance.updated` follow in order
/// with the running balance and gapless seqs, and a merchant labelled in the first chunk is
/// remembered for the unlabelled rows of later ones.
async fn an_import_in_several_chunks_commits_them_in_order(backend: Backend) {
    let Some(app) = spawn_with(backend, |c| c.import_chunk_rows = 40).await else {
        return;
    };
    let t = user(&app, "chunks@example.org").await;
    let a = account(&app, &t, "Giro", "EUR", "10.00").await;
    const ROWS: i64 = 175;
    let mut csv = String::from("Date,Amount,Description,Payee,Category\n");
    let start = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    for i in 0..ROWS {
        // One date per row, rising through the file: chunk k holds rows 40k..40k+39.
        let date = start + chrono::Days::new(i as u64);
        let (payee, category) = match i {
            0..40 => ("Corner Shop".to_string(), "Groceries"),
            40..120 => (format!("Shop {i}"), ""),
            _ => ("Corner Shop".to_string(), ""),
        };
        csv.push_str(&format!(
            "{date},-{}.{:02},Card payment {i},{payee},{category}\n",
            (100 + i) / 100,
            (100 + i) % 100
        ));
    }
    let mapping = json!({
        "date": "Date", "amount": "Amount", "description": "Description", "payee": "Payee",
        "category": "Category"
    })
    .to_string();
    let q = format!("format=csv&account_id={a}&mapping={}", enc(&mapping));
    let (s, report) = upload(&app, &t, &q, csv.clone().into_bytes(), "text/csv").await;
    assert_eq!(s, 200, "{report}");
    assert_eq!(report["created"], ROWS, "{report}");
    let spent: i64 = (0..ROWS).map(|i| 100 + i).sum();
    let expected = 1000 - spent;
    assert_eq!(
        balance(&app, &t, &a).await,
        format!("-{}.{:02}", -expected / 100, -expected % 100)
    );

    // The log: per chunk, its progress and the balance after it, in order, seqs without gaps.
    let events = event_log(&app, "chunks@example.org").await;
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    let from_import: Vec<&Value> = events
        .iter()
        .skip_while(|e| e["type"] != "import.progress")
        .collect();
    let kinds: Vec<&str> = from_import
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    let mut want = ["import.progress", "balance.updated"].repeat(5);
    want.push("import.completed");
    assert_eq!(kinds, want, "{kinds:?}");
    let mut running = 1000i64;
    for (k, pair) in from_import.chunks(2).take(5).enumerate() {
        let end = (40 * (k as i64 + 1)).min(ROWS);
        assert_eq!(pair[0]["payload"]["processed"], end, "{:?}", pair[0]);
        assert_eq!(pair[0]["payload"]["total"], ROWS);
        running -= (40 * k as i64..end).map(|i| 100 + i).sum::<i64>();
        assert_eq!(
            pair[1]["payload"]["balance"],
            format!("-{}.{:02}", -running / 100, -running % 100),
            "chunk {k}"
        );
    }
    assert_eq!(from_import[10]["payload"]["created"], ROWS);

    // Labelled in the first chunk, remembered for the last ones (prepared after it was in).
    let (s, page) = send(
        &app,
        Method::GET,
        "/api/v1/transactions?limit=200&q=Corner",
        &t,
        None,
    )
    .await;
    assert_eq!(s, 200, "{page}");
    let corner = page["items"].as_array().unwrap();
    assert_eq!(corner.len(), 95, "{page}");
    let groceries = corner
        .iter()
        .find(|r| r["category_source"] == "user")
        .map(|r| r["category_id"].clone())
        .unwrap();
    assert!(!groceries.is_null());
    for r in corner.iter().filter(|r| r["category_source"] != "user") {
        assert_eq!(r["category_id"], groceries, "{r}");
        assert_eq!(r["category_source"], "merchant_memory", "{r}");
    }

    // Again: nothing new.
    let (s, again) = upload(&app, &t, &q, csv.clone().into_bytes(), "text/csv").await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["created"], 0, "{again}");
    assert_eq!(again["skipped_duplicates"], ROWS, "{again}");

    // The same rows with 40 new ones dated before them and 10 after: the rows already there are
    // found chunk by chunk and skipped without leaving a chunk short (40 new, then 10), and the
    // progress counts every row checked, skipped or written, up to the total.
    let new_row = |day: i64| {
        let date = start + chrono::Duration::days(day);
        format!("{date},-1.00,New {day},Shop {day},\n")
    };
    let mut longer = csv;
    for day in (ROWS..ROWS + 10).chain(-40..0) {
        longer.push_str(&new_row(day));
    }
    let (s, more) = upload(&app, &t, &q, longer.clone().into_bytes(), "text/csv").await;
    assert_eq!(s, 200, "{more}");
    assert_eq!(
        (&more["created"], &more["skipped_duplicates"]),
        (&json!(50), &json!(ROWS)),
        "{more}"
    );
    // And once more with 40 new rows before all the others: the one chunk of new rows is the
    // last, as every row after it is already there; its progress still counts them all.
    for day in -80..-40 {
        longer.push_str(&new_row(day));
    }
    let (s, more) = upload(&app, &t, &q, longer.into_bytes(), "text/csv").await;
    assert_eq!(s, 200, "{more}");
    assert_eq!(
        (&more["created"], &more["skipped_duplicates"]),
        (&json!(40), &json!(ROWS + 50)),
        "{more}"
    );
    let progress: Vec<(Value, Value)> = event_log(&app, "chunks@example.org")
        .await
        .into_iter()
        .filter(|e| e["type"] == "import.progress")
        .map(|e| {
            (
                e["payload"]["processed"].clone(),
                e["payload"]["total"].clone(),
            )
        })
        .collect();
    let (total, again) = (ROWS + 50, ROWS + 90);
    assert_eq!(
        progress[5..],
        [
            (json!(40), json!(total)),
            (json!(total), json!(total)),
            (json!(again), json!(again))
        ],
        "{progress:?}"
    );
    let now = expected - 9000;
    assert_eq!(
        balance(&app, &t, &a).await,
        format!("-{}.{:02}", -now / 100, -now % 100)
    );
}

const OFX: &str = "OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\n\n<OFX><BANKMSGSRSV1><STMTTRNRS><STMTRS><CURDEF>USD\n\
<BANKACCTFROM><BANKID>123<ACCTID>987654<ACCTTYPE>CHECKING</BANKACCTFROM><BANKTRANLIST>\n\
<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20261005120000[-5:EST]<TRNAMT>-42.10<FITID>A1<NAME>GROCERY MART</STMTTRN>\n\
<STMTTRN><TRNTYPE>CREDIT<DTPOSTED>20261006<TRNAMT>1000.00<FITID>A2<NAME>PAYROLL<MEMO>October</STMTTRN>\n\
</BANKTRANLIST></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>\n";

const QIF: &str = "!Type:Bank\nD10/07/2026\nT-1,250.00\nPLandlord\nLHousing:Rent\n^\nD10/08/2026\nT-30.00\nPCorner Shop\nMsnacks\n^\n";

async fn ofx_and_qif_imports(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let t = user(&app, "ofx@example.org").await;
    let a = account(&app, &t, "US Checking", "USD", "0").await;
    let (s, r) = upload(
        &app,
        &t,
        &format!("format=ofx&account_id={a}"),
        OFX.as_bytes().to_vec(),
        "application/x-ofx",
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["created"], 2);
    let (s, r) = upload(
        &app,
        &t,
        &format!("format=ofx&account_id={a}"),
        OFX.as_bytes().to_vec(),
        "application/x-ofx",
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(r["skipped_duplicates"], 2, "FITIDs already imported");
    let (s, r) = upload(
        &app,
        &t,
        &format!("format=qif&account_id={a}"),
        QIF.as_bytes().to_vec(),
        "application/qif",
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["created"], 2);
    let (_, acct) = send(
        &app,
        Method::GET,
        &format!("/api/v1/accounts/{a}"),
        &t,
        None,
    )
    .await;
    assert_eq!(acct["balance"], "-322.10");
    let (_, rent) = send(
        &app,
        Method::GET,
        "/api/v1/transactions?q=landlord",
        &t,
        None,
    )
    .await;
    assert!(
        rent["items"][0]["category_id"].is_string(),
        "Housing:Rent matched"
    );
    // An OFX statement in another currency than the account is refused row by row.
    let eur = account(&app, &t, "Euro", "EUR", "0").await;
    let (_, r) = upload(
        &app,
        &t,
        &format!("format=ofx&account_id={eur}"),
        OFX.as_bytes().to_vec(),
        "application/x-ofx",
    )
    .await;
    assert_eq!(r["created"], 0);
    assert_eq!(r["failed"].as_array().unwrap().len(), 2);
}

async fn bad_imports_are_clear_4xx(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let t = user(&app, "badimp@example.org").await;
    let a = account(&app, &t, "A", "EUR", "0").await;
    let other = user(&app, "other@example.org").await;
    let foreign = account(&app, &other, "B", "EUR", "0").await;
    let cases = [
        (format!("format=xls&account_id={a}"), "format"),
        ("format=csv".to_string(), "account_id"),
        (format!("format=csv&account_id={foreign}"), "account_id"),
        (format!("format=csv&account_id={a}"), "mapping"),
        (
            format!(
                "format=csv&account_id={a}&mapping={}",
                enc(r#"{"date":"Nope","amount":"Betrag","description":"Text"}"#)
            ),
            "file",
        ),
        (
            format!(
                "format=csv&account_id={a}&mapping={}",
                enc(r#"{"date":"Date","amount":"Betrag","debit":"Betrag","description":"Text"}"#)
            ),
            "mapping.amount",
        ),
        (
            format!(
                "format=csv&account_id={a}&mapping={}",
                enc(r#"{"date": 5, "amount": true}"#)
            ),
            "mapping.amount",
        ),
        (format!("format=ofx&account_id={a}"), "file"),
        (
            format!("format=qif&account_id={a}&date_order=sideways"),
            "date_order",
        ),
    ];
    for (query, field) in cases {
        let (s, body) = upload(&app, &t, &query, CSV.as_bytes().to_vec(), "text/csv").await;
        assert_eq!(s, 422, "{query}: {body}");
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }
    let (s, body) = upload(
        &app,
        &t,
        &format!("format=ofx&account_id={a}"),
        vec![0x50, 0x4b, 3, 4, 0, 0, 1, 2],
        "application/octet-stream",
    )
    .await;
    assert_eq!(s, 422, "{body}");
    // A body that cannot be the file asked for is a 415.
    for (query, content_type) in [
        (format!("format=ofx&account_id={a}"), "application/zip"),
        (format!("format=ofx&account_id={a}"), "image/png"),
        (
            format!("format=qif&account_id={a}"),
            "multipart/form-data; boundary=x",
        ),
        (
            format!("format=qif&account_id={a}"),
            "application/x-www-form-urlencoded",
        ),
        ("format=json".to_string(), "text/csv"),
    ] {
        let (s, body) = upload(&app, &t, &query, b"!Type:Bank\n".to_vec(), content_type).await;
        assert_eq!(s, 415, "{content_type}: {body}");
        assert!(
            body["detail"].as_str().unwrap().contains("cannot be"),
            "{body}"
        );
    }
    let (s, _) = upload(
        &app,
        &t,
        "format=json",
        b"{\"format\": \"something else\", \"version\": 1}".to_vec(),
        "application/json",
    )
    .await;
    assert_eq!(s, 422);
}

/// Balances per journal account and commodity, as hledger computes them.
fn hledger_balances(journal: &str) -> Option<Vec<(String, String, String)>> {
    if Command::new("hledger").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").is_err(),
            "hledger must be installed in CI (.ci/run does it)"
        );
        eprintln!("hledger is not installed: checking the journal's text only");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.journal");
    std::fs::write(&path, journal).unwrap();
    let out = Command::new("hledger")
        .args([
            "-f",
            path.to_str().unwrap(),
            "bal",
            "--flat",
            "-E",
            "-N",
            "--layout=bare",
            "-O",
            "csv",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hledger failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    Some(
        reader
            .records()
            .map(|r| {
                let r = r.unwrap();
                (r[0].to_string(), r[1].to_string(), r[2].to_string())
            })
            .collect(),
    )
}

async fn ledger_export_balances_match_hledger(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let t = user(&app, "journal@example.org").await;
    let eur = account(&app, &t, "Giro: main", "EUR", "1000.00").await;
    let usd = account(&app, &t, "Dollars", "USD", "50.00").await;
    let jpy = account(&app, &t, "Yen", "JPY", "10000").await;
    let bhd = account(&app, &t, "Dinar", "BHD", "1.250").await;
    let (_, cats) = send(&app, Method::GET, "/api/v1/categories", &t, None).await;
    let groceries = cats["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Groceries")
        .unwrap()["id"]
        .clone();
    txn(&app, &t, &eur, "-45.67", json!({ "category_id": groceries, "merchant": "Market; Inc", "notes": "weekly\nshop", "tags": ["food"] })).await;
    txn(
        &app,
        &t,
        &eur,
        "12.00",
        json!({ "category_id": groceries, "description": "refund" }),
    )
    .await;
    txn(&app, &t, &jpy, "-1234", json!({})).await;
    txn(&app, &t, &bhd, "-0.125", json!({})).await;
    txn(&app, &t, &usd, "2500.00", json!({ "description": "pay" })).await;
    let (s, _) = send(&app, Method::POST, "/api/v1/transfers", &t, Some(json!({ "from_account_id": eur, "to_account_id": usd, "amount": "100.00", "to_amount": "108.42" }))).await;
    assert_eq!(s, 201);
    let (s, _) = send(
        &app,
        Method::POST,
        "/api/v1/transfers",
        &t,
        Some(json!({ "from_account_id": usd, "to_account_id": usd.clone(), "amount": "1.00" })),
    )
    .await;
    assert_eq!(s, 422);

    let r = app
        .client
        .get(app.url("/api/v1/exports?format=ledger"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains(".journal"));
    let journal = r.text().await.unwrap();

    let (_, accounts) = send(&app, Method::GET, "/api/v1/accounts", &t, None).await;
    let accounts = accounts["items"].as_array().unwrap().clone();
    let journal_accounts: Vec<JournalAccount> = accounts
        .iter()
        .map(|a| {
            let currency = Currency::parse(a["currency"].as_str().unwrap()).unwrap();
            JournalAccount {
                id: a["id"].as_str().unwrap().to_string(),
                name: a["name"].as_str().unwrap().to_string(),
                kind: a["kind"].as_str().unwrap().to_string(),
                currency,
                opening_balance_minor: parse_minor(
                    a["opening_balance"].as_str().unwrap(),
                    currency,
                )
                .unwrap(),
                opening_date: a["opening_date"].as_str().unwrap().parse().unwrap(),
            }
        })
        .collect();
    let names = journal_account_names(&journal_accounts);
    for name in &names {
        assert!(
            journal.contains(name.as_str()),
            "{name} missing from the journal"
        );
    }
    let Some(balances) = hledger_balances(&journal) else {
        return;
    };
    for (a, name) in accounts.iter().zip(&names) {
        let currency = Currency::parse(a["currency"].as_str().unwrap()).unwrap();
        let ours = parse_minor(a["balance"].as_str().unwrap(), currency).unwrap();
        let theirs = balances
            .iter()
            .find(|(acct, commodity, _)| acct == name && commodity == currency.code())
            .map(|(_, _, amount)| {
                let number = amount
                    .split_whitespace()
                    .find(|p| p.chars().any(|c| c.is_ascii_digit()))
                    .unwrap_or("0");
                parse_minor(number, currency).unwrap()
            })
            .unwrap_or(0);
        assert_eq!(
            ours, theirs,
            "{name}: ours {} vs hledger {balances:?}",
            a["balance"]
        );
    }
}

async fn json_backup_restores_into_an_empty_user(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let t = user(&app, "backup@example.org").await;
    let eur = account(&app, &t, "Main", "EUR", "10.00").await;
    let jpy = account(&app, &t, "Yen", "JPY", "0").await;
    let (_, cats) = send(&app, Method::GET, "/api/v1/categories", &t, None).await;
    let coffee = cats["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Coffee")
        .unwrap()["id"]
        .clone();
    txn(
        &app,
        &t,
        &eur,
        "-3.20",
        json!({ "category_id": coffee, "tags": ["morning"], "notes": "=HYPERLINK(\"http://evil.test\",\"x\")" }),
    )
    .await;
    send(&app, Method::POST, "/api/v1/transfers", &t, Some(json!({ "from_account_id": eur, "to_account_id": jpy, "amount": "5.00", "to_amount": "800" }))).await;
    send(&app, Method::PUT, "/api/v1/exchange-rates", &t, Some(json!({ "rates": [{ "base": "EUR", "quote": "JPY", "date": "2026-01-01", "rate": "160.5" }] }))).await;
    let r = app
        .client
        .get(app.url("/api/v1/exports?format=json"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    let backup = r.bytes().await.unwrap().to_vec();
    let csv = app
        .client
        .get(app.url("/api/v1/exports?format=csv"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 4, "header + 3 rows: {csv}");
    // A spreadsheet opening the file shows the formula as text instead of running it.
    assert!(csv.contains("'=HYPERLINK"), "{csv}");
    assert!(
        !csv.contains(",=HYPERLINK") && !csv.contains("\"=HYPERLINK"),
        "{csv}"
    );

    // Into a new user: same balances, same transactions, same categories, same rates.
    let t2 = user(&app, "restored@example.org").await;
    let (s, r) = upload(&app, &t2, "format=json", backup.clone(), "application/json").await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["transactions"], 3);
    let strip = |v: Value| -> Vec<(String, String)> {
        let mut out: Vec<_> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["name"].as_str().unwrap().to_string(),
                    a["balance"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        out.sort();
        out
    };
    let (_, before) = send(&app, Method::GET, "/api/v1/accounts", &t, None).await;
    let (_, after) = send(&app, Method::GET, "/api/v1/accounts", &t2, None).await;
    assert_eq!(strip(before), strip(after));
    let (_, list) = send(&app, Method::GET, "/api/v1/transactions?q=", &t2, None).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    let transfer_legs: Vec<_> = items
        .iter()
        .filter(|i| i["transfer_id"].is_string())
        .collect();
    assert_eq!(transfer_legs.len(), 2);
    assert_eq!(
        transfer_legs[0]["transfer_id"],
        transfer_legs[1]["transfer_id"]
    );
    let coffee_row = items
        .iter()
        .find(|i| i["tags"] == json!(["morning"]))
        .unwrap();
    let (_, cats2) = send(&app, Method::GET, "/api/v1/categories", &t2, None).await;
    let name = cats2["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == coffee_row["category_id"])
        .unwrap()["name"]
        .clone();
    assert_eq!(name, "Coffee");
    assert_eq!(
        cats2["items"].as_array().unwrap().len(),
        cats["items"].as_array().unwrap().len()
    );
    let (_, rates) = send(&app, Method::GET, "/api/v1/exchange-rates", &t2, None).await;
    assert_eq!(rates["items"][0]["rate"], "160.5");
    // Not into a user who already has accounts.
    let (s, _) = upload(&app, &t2, "format=json", backup.clone(), "application/json").await;
    assert_eq!(s, 409);

    // A backup edited by hand gets the API's own checks, each a 422 naming the field.
    let t3 = user(&app, "edited@example.org").await;
    let original: Value = serde_json::from_slice(&backup).unwrap();
    let leg = original["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .position(|t| t["transfer_id"].is_string())
        .unwrap();
    type Edit = Box<dyn Fn(&mut Value)>;
    let edits: Vec<(&str, Edit, String)> = vec![
        (
            "zero",
            Box::new(|b| b["transactions"][0]["amount"] = json!("0")),
            "transactions[0].amount".into(),
        ),
        (
            "source",
            Box::new(|b| b["transactions"][0]["source"] = json!("hacker")),
            "transactions[0].source".into(),
        ),
        (
            "confidence",
            Box::new(|b| b["transactions"][0]["confidence"] = json!(5.0)),
            "transactions[0].confidence".into(),
        ),
        (
            "long",
            Box::new(|b| b["transactions"][0]["description"] = json!("x".repeat(501))),
            "transactions[0].description".into(),
        ),
        (
            "one leg",
            Box::new(move |b| {
                b["transactions"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|t| t["transfer_id"].is_null());
                let mut half = original["transactions"][leg].clone();
                half["transfer_id"] = json!("t-1");
                b["transactions"].as_array_mut().unwrap().push(half);
            }),
            "transfer_id".into(),
        ),
        (
            "same name",
            Box::new(|b| {
                let name = b["accounts"][0]["name"].clone();
                b["accounts"][1]["name"] = name;
            }),
            "accounts[1].name".into(),
        ),
        (
            "orphan",
            Box::new(|b| b["categories"][0]["parent_id"] = json!("no-such-category")),
            "categories[0].parent_id".into(),
        ),
        (
            "same id",
            Box::new(|b| {
                let id = b["transactions"][0]["id"].clone();
                b["transactions"][1]["id"] = id;
            }),
            "transactions[1].id".into(),
        ),
    ];
    let original: Value = serde_json::from_slice(&backup).unwrap();
    for (what, edit, field) in edits {
        let mut b = original.clone();
        edit(&mut b);
        let (s, r) = upload(
            &app,
            &t3,
            "format=json",
            serde_json::to_vec(&b).unwrap(),
            "application/json",
        )
        .await;
        assert_eq!(s, 422, "{what}: {r}");
        let named = r["errors"][0]["field"].as_str().unwrap_or_default();
        assert!(named.ends_with(&field), "{what}: {r}");
    }
    // Nothing of them was kept: the untouched backup still restores.
    let (s, r) = upload(&app, &t3, "format=json", backup, "application/json").await;
    assert_eq!(s, 200, "{r}");
}
