//! The live stream over a real WebSocket client: snapshot, live events after REST writes, resume
//! with `since`, isolation between users, slow consumers, revocation, tickets and origins.
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{spawn, spawn_with, token, Backend, TestApp, PASSWORD};
use crate::ledger::{account, send};
use crate::on_both_backends;

on_both_backends!(
    rest_writes_arrive_live_after_a_snapshot,
    resume_with_since_loses_and_repeats_nothing,
    users_only_see_their_own_events,
    slow_consumers_are_closed_others_keep_receiving,
    revoked_sessions_close_their_sockets,
    tickets_and_origins,
    a_sign_in_from_a_new_device_is_announced_live,
);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(
    app: &TestApp,
    query: &str,
    bearer: Option<&str>,
    origin: Option<&str>,
) -> Result<Socket, u16> {
    let url = format!(
        "ws://127.0.0.1:{}/api/v1/ws{query}",
        app.base.rsplit(':').next().unwrap()
    );
    let mut req = url.into_client_request().unwrap();
    if let Some(t) = bearer {
        req.headers_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("websocket connect failed: {e}"),
    }
}

/// The next JSON frame (skipping pings), or None when closed; panics after 10 s of silence.
async fn next(socket: &mut Socket) -> Option<Value> {
    loop {
        let msg = actix_web::rt::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame within 10 s")?;
        match msg.ok()? {
            Message::Text(t) => return Some(serde_json::from_str(&t).unwrap()),
            Message::Close(_) => return None,
            _ => continue,
        }
    }
}

/// Read frames until the socket closes; returns them and the close code.
async fn drain(socket: &mut Socket) -> (Vec<Value>, Option<u16>) {
    let mut frames = Vec::new();
    loop {
        let msg = actix_web::rt::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("the socket closes within 20 s");
        match msg {
            Some(Ok(Message::Text(t))) => frames.push(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(frame))) => return (frames, frame.map(|f| u16::from(f.code))),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return (frames, None),
        }
    }
}

async fn signed_up(app: &TestApp, email: &str) -> (String, Value) {
    let r = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({ "email": email, "password": PASSWORD, "base_currency": "EUR" }),
        )
        .await;
    assert_eq!(r.status, 201);
    let body = r.json();
    (token(&body, "access_token"), body)
}

async fn spend(app: &TestApp, t: &str, account: &str, amount: &str) -> Value {
    let (s, body) = send(
        app,
        Method::POST,
        "/api/v1/transactions",
        t,
        Some(json!({ "account_id": account, "amount": amount, "description": "live" })),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    body
}

async fn rest_writes_arrive_live_after_a_snapshot(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let (t, _) = signed_up(&app, "live@example.org").await;
    let a = account(&app, &t, "Main", "EUR", "100.00").await;
    let mut socket = open(&app, "", Some(&t), None).await.unwrap();
    let snapshot = next(&mut socket).await.unwrap();
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["accounts"][0]["balance"], "100.00");
    let seq = snapshot["seq"].as_i64().unwrap();
    assert!(seq >= 1);

    let created = spend(&app, &t, &a, "-12.50").await;
    let e1 = next(&mut socket).await.unwrap();
    let e2 = next(&mut socket).await.unwrap();
    assert_eq!(e1["type"], "transaction.created");
    assert_eq!(e1["payload"]["id"], created["id"]);
    assert_eq!(e1["seq"], seq + 1);
    assert_eq!(e1["version"], "1.0");
    assert!(e1["message_id"].is_string() && e1["timestamp"].is_string());
    assert_eq!(e2["type"], "balance.updated");
    assert_eq!(e2["payload"]["balance"], "87.50");
    assert_eq!(e2["seq"], seq + 2);

    // Edits and deletes too, in order.
    let id = created["id"].as_str().unwrap();
    send(
        &app,
        Method::PATCH,
        &format!("/api/v1/transactions/{id}"),
        &t,
        Some(json!({ "amount": "-20.00" })),
    )
    .await;
    assert_eq!(
        next(&mut socket).await.unwrap()["type"],
        "transaction.updated"
    );
    assert_eq!(
        next(&mut socket).await.unwrap()["payload"]["balance"],
        "80.00"
    );
    send(
        &app,
        Method::DELETE,
        &format!("/api/v1/transactions/{id}"),
        &t,
        None,
    )
    .await;
    let deleted = next(&mut socket).await.unwrap();
    assert_eq!(deleted["type"], "transaction.deleted");
    assert_eq!(deleted["seq"], seq + 5);
    // The client may check the link.
    socket
        .send(Message::Text(r#"{"type":"ping"}"#.into()))
        .await
        .unwrap();
    assert_eq!(
        next(&mut socket).await.unwrap()["payload"]["balance"],
        "100.00"
    );
    assert_eq!(next(&mut socket).await.unwrap()["type"], "pong");
}

async fn resume_with_since_loses_and_repeats_nothing(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let (t, _) = signed_up(&app, "resume@example.org").await;
    let a = account(&app, &t, "Main", "EUR", "0").await;
    let mut socket = open(&app, "", Some(&t), None).await.unwrap();
    let mut last = next(&mut socket).await.unwrap()["seq"].as_i64().unwrap();
    for i in 0..3 {
        spend(&app, &t, &a, &format!("-{i}.10")).await;
    }
    for _ in 0..6 {
        last = next(&mut socket).await.unwrap()["seq"].as_i64().unwrap();
    }
    drop(socket);

    // Writes while disconnected, and writes racing the reconnect.
    for i in 0..5 {
        spend(&app, &t, &a, &format!("-{i}.20")).await;
    }
    let writer = {
        let (client, url, t, a) = (
            app.client.clone(),
            app.url("/api/v1/transactions"),
            t.clone(),
            a.clone(),
        );
        actix_web::rt::spawn(async move {
            for i in 0..10 {
                let r = client
                    .post(&url)
                    .bearer_auth(&t)
                    .json(&json!({ "account_id": a, "amount": format!("-{i}.30") }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
            }
        })
    };
    let mut socket = open(&app, &format!("?since={last}"), Some(&t), None)
        .await
        .unwrap();
    writer.await.unwrap();
    // 15 transactions since, two events each, exactly once and in order.
    let mut seqs = Vec::new();
    while seqs.len() < 30 {
        let e = next(&mut socket).await.unwrap();
        assert_ne!(
            e["type"], "snapshot",
            "a resume replays, it does not snapshot"
        );
        seqs.push(e["seq"].as_i64().unwrap());
    }
    assert_eq!(seqs, ((last + 1)..=(last + 30)).collect::<Vec<_>>());
    // Nothing more is pending.
    assert!(
        actix_web::rt::time::timeout(Duration::from_millis(300), socket.next())
            .await
            .is_err()
    );

    // A seq from the future, or one the log cannot serve, asks for a resync and sends a snapshot.
    let mut ahead = open(&app, &format!("?since={}", last + 1000), Some(&t), None)
        .await
        .unwrap();
    assert_eq!(next(&mut ahead).await.unwrap()["type"], "resync_required");
    assert_eq!(next(&mut ahead).await.unwrap()["type"], "snapshot");
    let bad = open(&app, "?since=-1", Some(&t), None).await;
    assert_eq!(bad.err(), Some(422));
}

async fn users_only_see_their_own_events(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let (ta, _) = signed_up(&app, "a@example.org").await;
    let (tb, _) = signed_up(&app, "b@example.org").await;
    let a = account(&app, &ta, "A's", "EUR", "0").await;
    let b = account(&app, &tb, "B's", "EUR", "0").await;
    let mut sa = open(&app, "", Some(&ta), None).await.unwrap();
    let mut sb = open(&app, "", Some(&tb), None).await.unwrap();
    let snap_b = next(&mut sb).await.unwrap();
    assert_eq!(snap_b["accounts"].as_array().unwrap().len(), 1);
    next(&mut sa).await.unwrap();
    for _ in 0..5 {
        spend(&app, &ta, &a, "-1.00").await;
    }
    spend(&app, &tb, &b, "-2.00").await;
    for _ in 0..10 {
        let e = next(&mut sa).await.unwrap();
        assert_eq!(e["payload"]["account_id"], a.as_str());
    }
    let e = next(&mut sb).await.unwrap();
    assert_eq!(
        e["payload"]["account_id"],
        b.as_str(),
        "B's first event is B's own"
    );
    assert_eq!(next(&mut sb).await.unwrap()["payload"]["balance"], "-2.00");
    assert!(
        actix_web::rt::time::timeout(Duration::from_millis(300), sb.next())
            .await
            .is_err(),
        "nothing of A reached B"
    );
}

async fn slow_consumers_are_closed_others_keep_receiving(backend: Backend) {
    let Some(app) = spawn_with(backend, |c| {
        c.ws_queue = 4;
        // As many writes as it takes: not this test's business to meet the API limit.
        c.rate_limit_api_per_user = "1000000/1s".parse().unwrap();
    })
    .await
    else {
        return;
    };
    let (t, _) = signed_up(&app, "slow@example.org").await;
    let a = account(&app, &t, "Main", "EUR", "0").await;
    let mut slow = open(&app, "", Some(&t), None).await.unwrap();
    let mut fast = open(&app, "", Some(&t), None).await.unwrap();
    let start = next(&mut fast).await.unwrap()["seq"].as_i64().unwrap();
    let long = "x".repeat(480);
    // Write until the hub has dropped the slow session (its mailbox overflowed), reading `fast`
    // all along. Bounded: a few thousand writes at most.
    let mut writes = 0;
    let reader = actix_web::rt::spawn(async move {
        let mut last = start;
        loop {
            match actix_web::rt::time::timeout(Duration::from_secs(3), fast.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    let seq = v["seq"].as_i64().unwrap();
                    assert_eq!(seq, last + 1, "the fast client sees every event in order");
                    last = seq;
                }
                Ok(Some(Ok(_))) => continue,
                _ => return last,
            }
        }
    });
    loop {
        let (s, _) = send(
            &app,
            Method::POST,
            "/api/v1/transactions",
            &t,
            Some(json!({ "account_id": a, "amount": "-0.01", "description": long })),
        )
        .await;
        assert_eq!(s, 201);
        writes += 1;
        let stats = app
            .state
            .hub
            .send(ledgerline::actors::hub::Stats)
            .await
            .unwrap();
        if stats.sessions < 2 {
            break;
        }
        assert!(writes < 20_000, "the slow client was never closed");
    }
    let last_fast = reader.await.unwrap();
    assert_eq!(
        last_fast,
        start + 2 * writes,
        "the fast client got everything"
    );
    // The slow client, reading at last, finds its backlog then a close with the slow-consumer code.
    let (frames, code) = drain(&mut slow).await;
    assert_eq!(
        code,
        Some(4008),
        "closed as a slow consumer after {} frames",
        frames.len()
    );
    let note = frames.last().unwrap();
    assert_eq!(note["type"], "slow_consumer");
    // It resumes with since and gets the rest.
    let resume_from = note["resume_since"].as_i64().unwrap();
    let mut again = open(&app, &format!("?since={resume_from}"), Some(&t), None)
        .await
        .unwrap();
    let first = next(&mut again).await.unwrap();
    assert_eq!(first["seq"], resume_from + 1);
}

async fn revoked_sessions_close_their_sockets(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let (t1, _) = signed_up(&app, "revoke@example.org").await;
    let t2 = token(
        &app.login("revoke@example.org", PASSWORD).await,
        "access_token",
    );
    let mut s1 = open(&app, "", Some(&t1), None).await.unwrap();
    let mut s2 = open(&app, "", Some(&t2), None).await.unwrap();
    next(&mut s1).await.unwrap();
    next(&mut s2).await.unwrap();
    // Logging out session 1 closes its socket only.
    let r = app
        .send(Method::POST, "/api/v1/auth/logout", Some(&t1), None)
        .await;
    assert_eq!(r.status, 204);
    let (frames, code) = drain(&mut s1).await;
    assert_eq!(code, Some(4001));
    assert_eq!(frames.last().unwrap()["type"], "session.revoked");
    // A password change closes every socket of the user at once.
    let r = app
        .post(
            "/api/v1/me/password",
            Some(&t2),
            json!({ "current_password": PASSWORD, "new_password": "another good secret" }),
        )
        .await;
    assert_eq!(r.status, 200);
    let (_, code) = drain(&mut s2).await;
    assert_eq!(code, Some(4001));
    // A revoked token cannot open a new one.
    assert_eq!(open(&app, "", Some(&t1), None).await.err(), Some(401));

    // Nor can a ticket issued before the sign-out that revoked its session.
    let (t3, _) = signed_up(&app, "ticket-then-logout@example.org").await;
    let r = app
        .send(Method::POST, "/api/v1/ws/ticket", Some(&t3), None)
        .await;
    assert_eq!(r.status, 201);
    let ticket = r.json()["ticket"].as_str().unwrap().to_string();
    let r = app
        .send(Method::POST, "/api/v1/auth/logout", Some(&t3), None)
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        open(&app, &format!("?ticket={ticket}"), None, None)
            .await
            .err(),
        Some(401)
    );

    // Erasing the account closes its sockets too.
    let (t4, _) = signed_up(&app, "erase-live@example.org").await;
    let mut s4 = open(&app, "", Some(&t4), None).await.unwrap();
    next(&mut s4).await.unwrap();
    let r = app
        .send(
            Method::DELETE,
            "/api/v1/me",
            Some(&t4),
            Some(json!({ "password": PASSWORD })),
        )
        .await;
    assert_eq!(r.status, 204);
    let (_, code) = drain(&mut s4).await;
    assert_eq!(code, Some(4001));
}

async fn tickets_and_origins(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let (t, _) = signed_up(&app, "ticket@example.org").await;
    let r = app
        .send(Method::POST, "/api/v1/ws/ticket", Some(&t), None)
        .await;
    assert_eq!(r.status, 201);
    let ticket = r.json()["ticket"].as_str().unwrap().to_string();
    let mut s = open(&app, &format!("?ticket={ticket}"), None, Some(&app.base))
        .await
        .unwrap();
    assert_eq!(next(&mut s).await.unwrap()["type"], "snapshot");
    assert_eq!(
        open(&app, &format!("?ticket={ticket}"), None, None)
            .await
            .err(),
        Some(401),
        "one-time"
    );
    assert_eq!(
        open(&app, "?ticket=made-up", None, None).await.err(),
        Some(401)
    );
    // A frame past the size limit gets a close that says so (1009), not a dropped connection.
    let mut big = open(&app, "", Some(&t), None).await.unwrap();
    assert_eq!(next(&mut big).await.unwrap()["type"], "snapshot");
    big.send(Message::Text("x".repeat(200_000).into()))
        .await
        .unwrap();
    let (_, code) = drain(&mut big).await;
    assert_eq!(code, Some(1009));
    assert_eq!(open(&app, "", None, None).await.err(), Some(401));
    assert_eq!(
        open(&app, "", Some(&t), Some("https://evil.example"))
            .await
            .err(),
        Some(403)
    );
    let Some(app2) = spawn_with(backend, |c| {
        c.ws_allowed_origins = vec!["https://app.example.org".into()]
    })
    .await
    else {
        return;
    };
    let (t2, _) = signed_up(&app2, "origin@example.org").await;
    assert!(open(&app2, "", Some(&t2), Some("https://app.example.org"))
        .await
        .is_ok());
    assert_eq!(
        open(&app2, "", Some(&t2), Some("https://other.example.org"))
            .await
            .err(),
        Some(403)
    );
}

/// A security notice is written by the identity service, not by a Ledger; an open socket still
/// hears of it at once, as `notification.created` with the next seq, like every other event.
async fn a_sign_in_from_a_new_device_is_announced_live(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let (t, _) = signed_up(&app, "watchful@example.org").await;
    let mut socket = open(&app, "", Some(&t), None).await.unwrap();
    let snapshot = next(&mut socket).await.unwrap();
    assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
    let seq = snapshot["seq"].as_i64().unwrap();

    let phone = reqwest::Client::builder()
        .user_agent("LedgerPhone/2.0")
        .build()
        .unwrap();
    let r = app
        .send_with(
            &phone,
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({ "email": "watchful@example.org", "password": PASSWORD })),
        )
        .await;
    assert_eq!(r.status, 200);

    let frame = next(&mut socket).await.expect("the socket stays open");
    assert_eq!(frame["type"], "notification.created", "{frame}");
    assert_eq!(frame["seq"], seq + 1, "{frame}");
    assert_eq!(frame["payload"]["kind"], "security");
    assert_eq!(
        frame["payload"]["payload"]["headline"],
        "New sign-in to your account"
    );
    assert!(frame["payload"]["payload"]["detail"]
        .as_str()
        .unwrap()
        .contains("LedgerPhone/2.0"));
    // The same notification as the list shows.
    let (_, list) = send(&app, Method::GET, "/api/v1/notifications", &t, None).await;
    assert_eq!(list["items"][0]["id"], frame["payload"]["id"], "{list}");
}
