//! People's accounts: register, login, refresh with rotation, logout, /me, password change,
//! sessions.
use diesel::prelude::*;
use ledgerline::store::users;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{spawn, token, Backend, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    register_login_and_me,
    emails_are_normalized_and_unique,
    refresh_rotates_and_reuse_revokes_the_family,
    logout_ends_the_session,
    logout_everywhere_ends_every_session,
    password_change_ends_other_sessions_at_once,
    sessions_are_listed_and_revocable,
    stored_hash_is_argon2id_and_passwords_round_trip,
    profile_updates_are_validated,
    deleted_account_is_gone,
    writes_racing_an_erase_get_401_not_503,
    refresh_works_under_write_load,
);

async fn register_login_and_me(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let reg = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({ "email": "ada@example.org", "password": PASSWORD, "name": "Ada",
                    "base_currency": "eur", "timezone": "Europe/Berlin" }),
        )
        .await;
    assert_eq!(reg.status, 201);
    let body = reg.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["user"]["email"], "ada@example.org");
    assert_eq!(body["user"]["base_currency"], "EUR");
    assert_eq!(body["user"]["timezone"], "Europe/Berlin");
    assert_eq!(body["user"]["role"], "user");
    assert!(body["user"].get("password_hash").is_none());
    assert!(token(&body, "refresh_token").len() >= 43);

    let me = app.get("/api/v1/me", &token(&body, "access_token")).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["name"], "Ada");

    let login = app.login("ada@example.org", PASSWORD).await;
    let me = app.get("/api/v1/me", &token(&login, "access_token")).await;
    assert_eq!(me.json()["id"], body["user"]["id"]);
    assert!(me.headers.contains_key("x-request-id"));
}

async fn emails_are_normalized_and_unique(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let reg = app.register("  Grace.Hopper@Example.COM ", PASSWORD).await;
    assert_eq!(reg["user"]["email"], "grace.hopper@example.com");
    app.login("GRACE.hopper@example.com", PASSWORD).await;
    let again = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({ "email": "grace.hopper@EXAMPLE.com", "password": PASSWORD }),
        )
        .await;
    again.problem(409);
}

async fn refresh_rotates_and_reuse_revokes_the_family(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let reg = app.register("rot@example.org", PASSWORD).await;
    let first = token(&reg, "refresh_token");

    let r = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refresh_token": first }),
        )
        .await;
    assert_eq!(r.status, 200);
    let second = r.json();
    let second_refresh = token(&second, "refresh_token");
    let second_access = token(&second, "access_token");
    assert_ne!(second_refresh, first);
    assert_eq!(app.me_status(&second_access).await, 200);

    // The old token presented again: the whole family is revoked, including its descendant
    // and the access tokens of the session.
    let reuse = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refresh_token": first }),
        )
        .await;
    reuse.problem(401);
    let r = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refresh_token": second_refresh }),
        )
        .await;
    r.problem(401);
    assert_eq!(app.me_status(&second_access).await, 401);
    assert_eq!(app.me_status(&token(&reg, "access_token")).await, 401);

    // Other sessions of the same user are untouched.
    let other = app.login("rot@example.org", PASSWORD).await;
    assert_eq!(app.me_status(&token(&other, "access_token")).await, 200);

    let unknown = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refresh_token": "llr_nonsense" }),
        )
        .await;
    unknown.problem(401);
}

async fn logout_ends_the_session(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let reg = app.register("out@example.org", PASSWORD).await;
    let other = app.login("out@example.org", PASSWORD).await;
    let access = token(&reg, "access_token");
    let r = app
        .send(Method::POST, "/api/v1/auth/logout", Some(&access), None)
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(app.me_status(&access).await, 401);
    let r = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refresh_token": token(&reg, "refresh_token") }),
        )
        .await;
    r.problem(401);
    assert_eq!(app.me_status(&token(&other, "access_token")).await, 200);
    let r = app
        .send(Method::POST, "/api/v1/auth/logout", None, None)
        .await;
    r.problem(401);
}

async fn logout_everywhere_ends_every_session(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let a = app.register("every@example.org", PASSWORD).await;
    let b = app.login("every@example.org", PASSWORD).await;
    let r = app
        .send(
            Method::POST,
            "/api/v1/auth/logout?everywhere=true",
            Some(&token(&a, "access_token")),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(app.me_status(&token(&a, "access_token")).await, 401);
    assert_eq!(app.me_status(&token(&b, "access_token")).await, 401);
    let r = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refresh_token": token(&b, "refresh_token") }),
        )
        .await;
    r.problem(401);
}

async fn password_change_ends_other_sessions_at_once(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let a = app.register("pw@example.org", PASSWORD).await;
    let b = app.login("pw@example.org", PASSWORD).await;
    let (a_access, b_access) = (token(&a, "access_token"), token(&b, "access_token"));
    assert_eq!(app.me_status(&b_access).await, 200);

    let wrong = app
        .post(
            "/api/v1/me/password",
            Some(&a_access),
            json!({ "current_password": "not it at all", "new_password": "a brand new secret" }),
        )
        .await;
    assert_eq!(wrong.problem(422)["errors"][0]["field"], "current_password");
    let short = app
        .post(
            "/api/v1/me/password",
            Some(&a_access),
            json!({ "current_password": PASSWORD, "new_password": "short" }),
        )
        .await;
    assert_eq!(short.problem(422)["errors"][0]["field"], "new_password");

    let changed = app
        .post(
            "/api/v1/me/password",
            Some(&a_access),
            json!({ "current_password": PASSWORD, "new_password": "a brand new secret" }),
        )
        .await;
    assert_eq!(changed.status, 200);
    let new_access = token(&changed.json(), "access_token");

    // The other session: access and refresh dead at once.
    assert_eq!(app.me_status(&b_access).await, 401);
    let r = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refresh_token": token(&b, "refresh_token") }),
        )
        .await;
    r.problem(401);
    // This session: the old access token is dead (new stamp), the new one and its refresh work.
    assert_eq!(app.me_status(&a_access).await, 401);
    assert_eq!(app.me_status(&new_access).await, 200);
    let r = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refresh_token": token(&a, "refresh_token") }),
        )
        .await;
    assert_eq!(r.status, 200);

    let old = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({ "email": "pw@example.org", "password": PASSWORD }),
        )
        .await;
    old.problem(401);
    app.login("pw@example.org", "a brand new secret").await;
}

async fn sessions_are_listed_and_revocable(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let a = app.register("sess@example.org", PASSWORD).await;
    let b = app.login("sess@example.org", PASSWORD).await;
    let a_access = token(&a, "access_token");
    let list = app.get("/api/v1/me/sessions", &a_access).await;
    assert_eq!(list.status, 200);
    let items = list.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    assert_eq!(items.iter().filter(|s| s["current"] == true).count(), 1);
    let other = items.iter().find(|s| s["current"] == false).unwrap();
    assert_eq!(other["ip"], "127.0.0.1");

    let r = app
        .send(
            Method::DELETE,
            &format!("/api/v1/me/sessions/{}", other["id"].as_str().unwrap()),
            Some(&a_access),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(app.me_status(&token(&b, "access_token")).await, 401);
    assert_eq!(app.me_status(&a_access).await, 200);

    // Someone else's session, an unknown one and a malformed id all answer 404.
    let stranger = app.register("stranger@example.org", PASSWORD).await;
    let stranger_sessions = app
        .get("/api/v1/me/sessions", &token(&stranger, "access_token"))
        .await;
    let foreign = stranger_sessions.json()["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for id in [
        foreign.as_str(),
        "0192f1c4-0000-7000-8000-000000000000",
        "not-an-id",
    ] {
        let r = app
            .send(
                Method::DELETE,
                &format!("/api/v1/me/sessions/{id}"),
                Some(&a_access),
                None,
            )
            .await;
        r.problem(404);
    }
    assert_eq!(app.me_status(&token(&stranger, "access_token")).await, 200);
}

async fn stored_hash_is_argon2id_and_passwords_round_trip(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let long = "x".repeat(32) + &"Y".repeat(32);
    assert_eq!(long.chars().count(), 64);
    let unicode = "пароль🔐 Zürich ñ 密码";
    for (email, password) in [
        ("long@example.org", long.as_str()),
        ("uni@example.org", unicode),
    ] {
        app.register(email, password).await;
        app.login(email, password).await;
        let wrong = app
            .post(
                "/api/v1/auth/login",
                None,
                json!({ "email": email, "password": format!("{password} ") }),
            )
            .await;
        wrong.problem(401);
    }
    let hash = app
        .state
        .db
        .run(|conn| {
            Ok(users::find_by_email(conn, "uni@example.org")?
                .map(|u| u.password_hash)
                .unwrap_or_default())
        })
        .await
        .unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    // Nothing else in the row looks like the password.
    let count: i64 = app
        .state
        .db
        .run(|conn| {
            Ok(ledgerline::store::schema::users::table
                .filter(ledgerline::store::schema::users::password_hash.like("%пароль%"))
                .count()
                .get_result(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(count, 0);
}

async fn profile_updates_are_validated(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let a = app.register("prof@example.org", PASSWORD).await;
    let access = token(&a, "access_token");
    let r = app
        .send(
            Method::PATCH,
            "/api/v1/me",
            Some(&access),
            Some(json!({ "name": "Prof. X", "timezone": "Asia/Kolkata", "base_currency": "inr", "locale": "en-IN" })),
        )
        .await;
    assert_eq!(r.status, 200);
    let me = app.get("/api/v1/me", &access).await.json();
    assert_eq!(me["name"], "Prof. X");
    assert_eq!(me["timezone"], "Asia/Kolkata");
    assert_eq!(me["base_currency"], "INR");

    let bad = app
        .send(
            Method::PATCH,
            "/api/v1/me",
            Some(&access),
            Some(json!({ "timezone": "Mars/Olympus", "base_currency": "XYZ" })),
        )
        .await;
    let body = bad.problem(422);
    let fields: Vec<_> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].clone())
        .collect();
    assert_eq!(fields, vec![json!("base_currency"), json!("timezone")]);

    let no_pw = app
        .send(
            Method::PATCH,
            "/api/v1/me",
            Some(&access),
            Some(json!({ "email": "new@example.org" })),
        )
        .await;
    assert_eq!(no_pw.problem(422)["errors"][0]["field"], "current_password");
    let taken = app.register("taken@example.org", PASSWORD).await;
    let r = app
        .send(
            Method::PATCH,
            "/api/v1/me",
            Some(&access),
            Some(json!({ "email": "TAKEN@example.org", "current_password": PASSWORD })),
        )
        .await;
    r.problem(409);
    let _ = taken;
    let r = app
        .send(
            Method::PATCH,
            "/api/v1/me",
            Some(&access),
            Some(json!({ "email": "New@Example.org", "current_password": PASSWORD })),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["email"], "new@example.org");
    app.login("new@example.org", PASSWORD).await;
}

async fn deleted_account_is_gone(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let a = app.register("gone@example.org", PASSWORD).await;
    let access = token(&a, "access_token");
    let wrong = app
        .send(
            Method::DELETE,
            "/api/v1/me",
            Some(&access),
            Some(json!({ "password": "not the password" })),
        )
        .await;
    wrong.problem(422);
    // `current_password`, as POST /me/password calls it, is taken too.
    let r = app
        .send(
            Method::DELETE,
            "/api/v1/me",
            Some(&access),
            Some(json!({ "current_password": PASSWORD })),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(app.me_status(&access).await, 401);
    let r = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refresh_token": token(&a, "refresh_token") }),
        )
        .await;
    r.problem(401);
    let login = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({ "email": "gone@example.org", "password": PASSWORD }),
        )
        .await;
    login.problem(401);
    // The address is free again.
    app.register("gone@example.org", PASSWORD).await;
}

/// Sign-in writes (refresh rotation) while the Ledger writer commits constantly: SQLite must
/// not answer "database is locked" (a read transaction cannot be upgraded while another
/// connection commits; the identity writes take the write lock first).
async fn refresh_works_under_write_load(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let t = crate::ledger::user(&app, "busy@example.org").await;
    let a = crate::ledger::account(&app, &t, "Main", "EUR", "0").await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for _ in 0..4 {
        let (client, url, t, a, stop) = (
            app.client.clone(),
            app.url("/api/v1/transactions"),
            t.clone(),
            a.clone(),
            stop.clone(),
        );
        writers.push(actix_web::rt::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = client
                    .post(&url)
                    .bearer_auth(&t)
                    .json(&json!({ "account_id": a, "amount": "-0.01" }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
                n += 1;
            }
            n
        }));
    }
    let mut refresh = app.login("busy@example.org", PASSWORD).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..40 {
        let r = app
            .post(
                "/api/v1/auth/refresh",
                None,
                json!({ "refresh_token": refresh }),
            )
            .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
        refresh = token(&r.json(), "refresh_token");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut written = 0;
    for w in writers {
        written += w.await.unwrap();
    }
    assert!(written > 0);
}

/// Writes in flight while the person erases their account: each is either saved before the
/// erase (201) or refused because the account is gone (401), never "try again" (503), which
/// could never succeed.
async fn writes_racing_an_erase_get_401_not_503(backend: Backend) {
    let Some(app) = spawn(backend).await else {
        return;
    };
    let t = crate::ledger::user(&app, "erase-race@example.org").await;
    let a = crate::ledger::account(&app, &t, "Main", "EUR", "0").await;
    let mut writers = Vec::new();
    for _ in 0..4 {
        let (client, url, t, a) = (
            app.client.clone(),
            app.url("/api/v1/transactions"),
            t.clone(),
            a.clone(),
        );
        writers.push(actix_web::rt::spawn(async move {
            let mut statuses = Vec::new();
            loop {
                let r = client
                    .post(&url)
                    .bearer_auth(&t)
                    .json(&json!({ "account_id": a, "amount": "-0.01" }))
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let body = r.text().await.unwrap();
                statuses.push((status, body));
                if status != 201 {
                    return statuses;
                }
            }
        }));
    }
    // Let the writers get going, then erase the account under them.
    actix_web::rt::time::sleep(std::time::Duration::from_millis(300)).await;
    let r = app
        .send(
            Method::DELETE,
            "/api/v1/me",
            Some(&t),
            Some(json!({ "password": PASSWORD })),
        )
        .await;
    assert_eq!(r.status, 204);
    let mut saved = 0;
    for w in writers {
        let statuses = w.await.unwrap();
        let (last, body) = statuses.last().unwrap();
        assert_eq!(*last, 401, "a write racing the erase: {body}");
        assert!(
            body.contains("\"status\":401"),
            "problem+json expected: {body}"
        );
        saved += statuses.len() - 1;
    }
    assert!(saved > 0, "the writers were running before the erase");
}
