//! Forged and stale tokens: every one is a 401 problem+json, never a 500.
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn, token, Backend, TestApp, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    forged_tokens_are_refused,
    disabled_and_deleted_users_are_refused,
);

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("json")
}

fn server_key(app: &TestApp) -> Vec<u8> {
    let text = std::fs::read_to_string(app.data_dir.join("signing.key")).expect("key file");
    STANDARD.decode(text.trim()).expect("base64 key")
}

fn sign(claims: &Value, key: &[u8], alg: Algorithm, typ: Option<&str>) -> String {
    let mut header = Header::new(alg);
    header.typ = typ.map(str::to_string);
    encode(&header, claims, &EncodingKey::from_secret(key)).expect("sign")
}

fn with(claims: &Value, changes: Value) -> Value {
    let mut c = claims.clone();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

async fn assert_refused(app: &TestApp, jwt: &str, what: &str) {
    let r = app.get("/api/v1/me", jwt).await;
    assert_eq!(
        r.status,
        401,
        "{what} was accepted: {}",
        String::from_utf8_lossy(&r.bytes)
    );
    r.problem(401);
    assert!(r.headers.contains_key("www-authenticate"), "{what}");
}

async fn forged_tokens_are_refused(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let reg = app.register("forge@example.org", PASSWORD).await;
    let real = token(&reg, "access_token");
    let claims = claims_of(&real);
    let key = server_key(&app);

    // Control: our re-signing reproduces a token the server accepts, so every refusal below is
    // due to the one thing changed.
    let control = sign(&claims, &key, Algorithm::HS256, Some("at+jwt"));
    assert_eq!(app.me_status(&control).await, 200);
    let slightly_expired = with(&claims, json!({ "exp": now() - 10 }));
    assert_eq!(
        app.me_status(&sign(
            &slightly_expired,
            &key,
            Algorithm::HS256,
            Some("at+jwt")
        ))
        .await,
        200,
        "10 s past exp is inside the leeway"
    );

    let header_none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#);
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    assert_refused(&app, &format!("{header_none}.{body}."), "alg none").await;
    assert_refused(
        &app,
        &sign(
            &claims,
            b"another key entirely, 32 bytes!!",
            Algorithm::HS256,
            Some("at+jwt"),
        ),
        "wrong key",
    )
    .await;
    assert_refused(
        &app,
        &sign(&claims, &key, Algorithm::HS512, Some("at+jwt")),
        "HS512",
    )
    .await;
    assert_refused(
        &app,
        &sign(&claims, &key, Algorithm::HS256, Some("JWT")),
        "typ JWT",
    )
    .await;
    assert_refused(&app, &sign(&claims, &key, Algorithm::HS256, None), "no typ").await;
    let cases = [
        (json!({ "exp": now() - 120 }), "expired beyond leeway"),
        (json!({ "nbf": now() + 120 }), "nbf in the future"),
        (json!({ "iss": "someone-else" }), "wrong iss"),
        (json!({ "aud": "another-api" }), "wrong aud"),
        (json!({ "exp": null }), "no exp"),
        (json!({ "nbf": null }), "no nbf"),
        (json!({ "iat": null }), "no iat"),
        (json!({ "sub": null }), "no sub"),
        (
            json!({ "sub": "0192f1c4-0000-7000-8000-000000000000" }),
            "unknown subject",
        ),
        (
            json!({ "sid": "0192f1c4-0000-7000-8000-000000000000" }),
            "unknown session",
        ),
        (json!({ "stm": "old-stamp" }), "stale security stamp"),
    ];
    for (change, what) in cases {
        assert_refused(
            &app,
            &sign(
                &with(&claims, change),
                &key,
                Algorithm::HS256,
                Some("at+jwt"),
            ),
            what,
        )
        .await;
    }
    assert_refused(
        &app,
        &token(&reg, "refresh_token"),
        "refresh token as access token",
    )
    .await;
    assert_refused(&app, "not.a.jwt", "garbage").await;
    assert_refused(&app, "", "empty").await;
    let r = app
        .client
        .get(app.url("/api/v1/me"))
        .header("Authorization", format!("Basic {}", STANDARD.encode("a:b")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The real token still works after all that.
    assert_eq!(app.me_status(&real).await, 200);
}

async fn disabled_and_deleted_users_are_refused(backend: Backend) {
    let Some(app) = spawn_admin(backend).await else {
        return;
    };
    let admin = app.login("root@example.org", PASSWORD).await;
    let admin_access = token(&admin, "access_token");
    let user = app.register("victim@example.org", PASSWORD).await;
    let access = token(&user, "access_token");
    let id = user["user"]["id"].as_str().unwrap().to_string();
    assert_eq!(app.me_status(&access).await, 200);

    // A plain user cannot administer.
    let r = app
        .send(
            Method::PATCH,
            &format!("/api/v1/admin/users/{id}"),
            Some(&access),
            Some(json!({ "disabled": true })),
        )
        .await;
    r.problem(403);

    let r = app
        .send(
            Method::PATCH,
            &format!("/api/v1/admin/users/{id}"),
            Some(&admin_access),
            Some(json!({ "disabled": true })),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["disabled"], true);
    assert_eq!(app.me_status(&access).await, 401);
    let r = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refresh_token": token(&user, "refresh_token") }),
        )
        .await;
    r.problem(401);
    let r = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({ "email": "victim@example.org", "password": PASSWORD }),
        )
        .await;
    r.problem(403);
    let list = app.get("/api/v1/admin/users", &admin_access).await;
    assert_eq!(list.json()["total"], 2);

    // Re-enabled, the user signs in again; deleted, every token of theirs is refused.
    let r = app
        .send(
            Method::PATCH,
            &format!("/api/v1/admin/users/{id}"),
            Some(&admin_access),
            Some(json!({ "disabled": false })),
        )
        .await;
    assert_eq!(r.status, 200);
    let again = app.login("victim@example.org", PASSWORD).await;
    let again_access = token(&again, "access_token");
    assert_eq!(app.me_status(&again_access).await, 200);
    let r = app
        .send(
            Method::DELETE,
            "/api/v1/me",
            Some(&again_access),
            Some(json!({ "password": PASSWORD })),
        )
        .await;
    assert_eq!(r.status, 204);
    let key = server_key(&app);
    let resigned = sign(
        &claims_of(&again_access),
        &key,
        Algorithm::HS256,
        Some("at+jwt"),
    );
    assert_refused(&app, &resigned, "token of a deleted user").await;
}

async fn spawn_admin(backend: Backend) -> Option<TestApp> {
    crate::helpers::spawn_with(backend, |c| {
        c.admin_email = Some("root@example.org".into());
        c.admin_password = Some(PASSWORD.to_string().into());
    })
    .await
}
