//! Bad input always gets a clear 4xx with a problem+json body, never a 500.
use reqwest::Method;
use serde_json::json;

use crate::helpers::{spawn, spawn_with, token, Backend, Reply, TestApp, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    bad_bodies_get_problem_answers,
    health_and_readiness,
    head_is_get_without_the_body,
    a_body_that_stops_arriving_gets_408,
);

async fn raw(app: &TestApp, path: &str, content_type: &str, body: Vec<u8>) -> Reply {
    let resp = app
        .client
        .post(app.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("sent");
    Reply {
        status: resp.status(),
        headers: resp.headers().clone(),
        bytes: resp.bytes().await.unwrap().to_vec(),
    }
}

async fn bad_bodies_get_problem_answers(backend: Backend) {
    let Some(app) = spawn_with(backend, |c| c.max_body_bytes = 64 * 1024).await else {
        return;
    };
    let register = "/api/v1/auth/register";

    let r = raw(
        &app,
        register,
        "application/json",
        b"{\"email\": \"a@b.c\", ".to_vec(),
    )
    .await;
    assert!(r.problem(400)["detail"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));

    let r = raw(
        &app,
        register,
        "application/json",
        br#"{"email": 42, "password": "x"}"#.to_vec(),
    )
    .await;
    let body = r.problem(422);
    assert_eq!(body["errors"][0]["field"], "email");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("expected a string"));

    let r = raw(
        &app,
        register,
        "application/json",
        br#"{"email": "a@example.org"}"#.to_vec(),
    )
    .await;
    let body = r.problem(422);
    assert_eq!(body["errors"][0]["field"], "password");
    assert_eq!(body["errors"][0]["message"], "is required");

    let r = raw(
        &app,
        register,
        "application/json",
        br#"{"email": "a@example.org", "password": "12345678", "admin": true}"#.to_vec(),
    )
    .await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "admin");

    let r = raw(&app, register, "application/json", b"[1, 2, 3]".to_vec()).await;
    r.problem(422);
    let r = raw(&app, register, "application/json", Vec::new()).await;
    r.problem(400);

    let r = raw(
        &app,
        register,
        "text/plain",
        br#"{"email": "a@example.org", "password": "12345678"}"#.to_vec(),
    )
    .await;
    r.problem(415);
    let big = format!(
        r#"{{"email": "a@example.org", "password": "{}"}}"#,
        "x".repeat(100 * 1024)
    );
    let r = raw(&app, register, "application/json", big.into_bytes()).await;
    r.problem(413);

    let r = app
        .post(
            register,
            None,
            json!({ "email": "not-an-email", "password": "short", "timezone": "Nowhere/Land" }),
        )
        .await;
    let body = r.problem(422);
    let fields: Vec<_> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(fields, ["email", "password", "timezone"]);
    let r = app
        .post(
            register,
            None,
            json!({ "email": "a@example.org", "password": "x".repeat(1025) }),
        )
        .await;
    r.problem(422);

    // Unknown routes and wrong methods are problems too.
    let r = app
        .send(Method::GET, "/api/v1/nothing-here", None, None)
        .await;
    r.problem(404);
    // A path that exists answers another method with 405 and the methods it has.
    for (method, path, allow) in [
        (Method::GET, "/api/v1/auth/login", "POST"),
        (Method::DELETE, "/api/v1/auth/login", "POST"),
        (Method::PUT, "/api/v1/accounts", "GET, HEAD, POST"),
        (
            Method::POST,
            "/api/v1/accounts/x",
            "GET, HEAD, PATCH, DELETE",
        ),
        (Method::GET, "/api/v1/notifications/x/read", "POST"),
        (Method::POST, "/api/v1/admin/users", "GET, HEAD"),
        (Method::DELETE, "/healthz", "GET, HEAD"),
    ] {
        let r = app.send(method.clone(), path, None, None).await;
        r.problem(405);
        assert_eq!(r.headers["allow"], allow, "{method} {path}");
    }
    let r = app
        .send(Method::GET, "/api/v1/admin/users?limit=abc", None, None)
        .await;
    assert!(r.status.is_client_error());
    assert_eq!(r.content_type(), "application/problem+json");

    // A token that is valid but a query that is not.
    let reg = app.register("q@example.org", PASSWORD).await;
    let r = app
        .send(
            Method::POST,
            "/api/v1/auth/logout?everywhere=maybe",
            Some(&token(&reg, "access_token")),
            None,
        )
        .await;
    r.problem(400);
}

async fn health_and_readiness(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .get(app.url("/readyz"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "trace-me-123");
    let body: serde_json::Value = r.json().await.unwrap();
    let expected = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(body["database"], expected);
    assert_eq!(body["migrations"], "applied");
    let r = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Ledgerline"));
}

async fn head_is_get_without_the_body(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let t = token(
        &app.register("head@example.org", PASSWORD).await,
        "access_token",
    );
    let get = app
        .send(Method::GET, "/api/v1/accounts", Some(&t), None)
        .await;
    assert_eq!(get.status, 200);
    // The same client (one keep-alive connection) asks HEAD, then GET again: a body sent after
    // the HEAD's headers would be read as the next answer.
    for _ in 0..2 {
        let head = app
            .send(Method::HEAD, "/api/v1/accounts", Some(&t), None)
            .await;
        assert_eq!(head.status, 200);
        assert!(head.bytes.is_empty());
        assert_eq!(head.headers["content-type"], get.headers["content-type"]);
        let again = app
            .send(Method::GET, "/api/v1/accounts", Some(&t), None)
            .await;
        assert_eq!(again.status, 200);
        assert_eq!(again.json(), get.json());
    }
    // HEAD needs what GET needs.
    let anonymous = app.send(Method::HEAD, "/api/v1/accounts", None, None).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        app.send(Method::HEAD, "/healthz", None, None).await.status,
        200
    );
}

/// A client that announces a body and sends only part of it gets a 408 problem once nothing
/// has arrived for `body_idle_timeout`, and its connection is closed: it cannot hold one for
/// ever. (A JSON body and an import upload read their bodies in different places.)
async fn a_body_that_stops_arriving_gets_408(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(app) = spawn_with(backend, |c| {
        c.body_idle_timeout = std::time::Duration::from_millis(300)
    })
    .await
    else {
        return;
    };
    let access = token(
        &app.register("slow@example.org", PASSWORD).await,
        "access_token",
    );
    let host = app.base.trim_start_matches("http://").to_string();
    for (path, content_type) in [
        ("/api/v1/accounts", "application/json"),
        (
            "/api/v1/imports?format=qif&account_id=00000000-0000-0000-0000-000000000000",
            "application/qif",
        ),
    ] {
        let mut socket = tokio::net::TcpStream::connect(&host).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {access}\r\nContent-Type: {content_type}\r\nContent-Length: 100\r\n\r\n{{"
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        let started = std::time::Instant::now();
        let mut answer = Vec::new();
        // Everything the server sends until it closes the connection.
        actix_web::rt::time::timeout(
            std::time::Duration::from_secs(20),
            socket.read_to_end(&mut answer),
        )
        .await
        .expect("the server closed the connection")
        .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(
            answer.contains("application/problem+json"),
            "{path}: {answer}"
        );
        assert!(answer.contains("\"status\":408"), "{path}: {answer}");
        assert!(
            started.elapsed() >= std::time::Duration::from_millis(250),
            "{path}: answered before the body stopped arriving"
        );
    }
}
