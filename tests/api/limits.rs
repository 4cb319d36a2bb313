//! Rate limits and account enumeration.
use serde_json::json;

use crate::helpers::{spawn, spawn_with, token, Backend, TestApp, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    failed_logins_from_one_ip_are_limited_but_the_owner_gets_in,
    wrong_password_and_unknown_email_look_the_same,
    registrations_from_one_ip_are_limited,
    api_requests_are_limited_per_user,
);

async fn failed_logins_from_one_ip_are_limited_but_the_owner_gets_in(backend: Backend) {
    let Some(app) = spawn_with(backend, |c| {
        c.rate_limit_login_per_ip = "5/1h".parse().unwrap();
    })
    .await
    else {
        return;
    };
    app.register("owner@example.org", PASSWORD).await;
    let attacker = TestApp::client_from([127, 0, 0, 1]);
    for i in 0..5 {
        let r = app
            .send_with(
                &attacker,
                reqwest::Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({ "email": "owner@example.org", "password": format!("guess {i}") })),
            )
            .await;
        r.problem(401);
    }
    let r = app
        .send_with(
            &attacker,
            reqwest::Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({ "email": "owner@example.org", "password": "guess 6" })),
        )
        .await;
    r.problem(429);
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry), "Retry-After {retry}");

    // The owner, from another address, still signs in.
    let owner = TestApp::client_from([127, 0, 0, 2]);
    let r = app
        .send_with(
            &owner,
            reqwest::Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({ "email": "owner@example.org", "password": PASSWORD })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
}

async fn wrong_password_and_unknown_email_look_the_same(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    app.register("known@example.org", PASSWORD).await;
    let wrong = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({ "email": "known@example.org", "password": "wrong password" }),
        )
        .await;
    let unknown = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({ "email": "unknown@example.org", "password": "wrong password" }),
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.status, unknown.status);
    assert_eq!(wrong.bytes, unknown.bytes, "bodies differ");
    let names = |r: &crate::helpers::Reply| {
        let mut n: Vec<_> = r
            .headers
            .keys()
            .map(|k| k.as_str().to_string())
            .filter(|k| k != "date" && k != "x-request-id")
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&wrong), names(&unknown));
    assert_eq!(
        wrong.headers["content-length"],
        unknown.headers["content-length"]
    );
}

async fn registrations_from_one_ip_are_limited(backend: Backend) {
    let Some(app) = spawn_with(backend, |c| {
        c.rate_limit_register_per_ip = "2/1h".parse().unwrap();
    })
    .await
    else {
        return;
    };
    app.register("r1@example.org", PASSWORD).await;
    app.register("r2@example.org", PASSWORD).await;
    let r = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({ "email": "r3@example.org", "password": PASSWORD }),
        )
        .await;
    r.problem(429);
    assert!(r.headers.contains_key("retry-after"));
}

async fn api_requests_are_limited_per_user(backend: Backend) {
    let Some(app) = spawn_with(backend, |c| {
        c.rate_limit_api_per_user = "5/1h".parse().unwrap();
    })
    .await
    else {
        return;
    };
    let busy = token(
        &app.register("busy@example.org", PASSWORD).await,
        "access_token",
    );
    let calm = token(
        &app.register("calm@example.org", PASSWORD).await,
        "access_token",
    );
    for _ in 0..5 {
        let r = app.get("/api/v1/accounts", &busy).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    }
    // The sixth request within the hour is refused, with when to try again.
    let r = app
        .post(
            "/api/v1/accounts",
            Some(&busy),
            json!({ "name": "Cash", "kind": "cash", "currency": "EUR" }),
        )
        .await;
    let problem = r.problem(429);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("Too many requests"),
        "{problem}"
    );
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry), "Retry-After {retry}");
    // The limit is the user's own: another user is served, and so is a request without a valid
    // token (a 401, not a 429), which cannot spend anyone's allowance.
    let r = app.get("/api/v1/accounts", &calm).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 0);
    app.get("/api/v1/accounts", "not-a-token")
        .await
        .problem(401);
    // Signing in again does not reset the allowance: it is the user's, not the token's.
    let again = token(
        &app.login("busy@example.org", PASSWORD).await,
        "access_token",
    );
    app.get("/api/v1/accounts", &again).await.problem(429);
}
