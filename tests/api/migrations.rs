//! Upgrading a database that already holds data: a migration keeps what the schema before it
//! stored, and its down migration gives it back.
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_migrations::MigrationHarness;
use ledgerline::config::DatabaseUrl;
use ledgerline::store::{self, DbConn, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};

use crate::helpers::{postgres_admin_url, PgDatabase};

/// How many migrations come before `000007_event_keys`.
const BEFORE_EVENT_KEYS: usize = 6;

fn run_next(conn: &mut DbConn) {
    match conn {
        DbConn::Sqlite(c) => c.run_next_migration(SQLITE_MIGRATIONS).map(|_| ()),
        DbConn::Postgres(c) => c.run_next_migration(POSTGRES_MIGRATIONS).map(|_| ()),
    }
    .expect("run the next migration");
}

fn revert_last(conn: &mut DbConn) -> String {
    match conn {
        DbConn::Sqlite(c) => c.revert_last_migration(SQLITE_MIGRATIONS),
        DbConn::Postgres(c) => c.revert_last_migration(POSTGRES_MIGRATIONS),
    }
    .expect("revert the last migration")
    .to_string()
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(conn: &mut DbConn, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<Count>(conn).unwrap().n
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Num {
    #[diesel(sql_type = BigInt)]
    num: i64,
}

fn key_of(conn: &mut DbConn, user: &str) -> i64 {
    diesel::sql_query(format!(
        "SELECT num FROM user_keys WHERE user_id = '{user}'"
    ))
    .get_result::<Num>(conn)
    .unwrap()
    .num
}

fn insert_user(conn: &mut DbConn, id: &str) {
    diesel::sql_query(format!(
        "INSERT INTO users (id, email, password_hash, security_stamp, created_at, updated_at) \
         VALUES ('{id}', '{id}@example.org', 'x', 's', '2026-11-21 10:00:00', '2026-11-21 10:00:00')"
    ))
    .execute(conn)
    .unwrap();
}

fn event_keys_keep_every_event(url: &str) {
    let mut conn = store::connect_url(&DatabaseUrl::parse(url).unwrap()).unwrap();
    for _ in 0..BEFORE_EVENT_KEYS {
        run_next(&mut conn);
    }
    // The log as the schema before stored it: keyed by the 36-character user id.
    for user in ["ada", "bob"] {
        insert_user(&mut conn, user);
    }
    for (user, seq) in [("ada", 1), ("ada", 2), ("ada", 3), ("bob", 1), ("bob", 2)] {
        diesel::sql_query(format!(
            "INSERT INTO events (user_id, seq, message_id, kind, envelope, created_at) \
             VALUES ('{user}', {seq}, 'm-{user}-{seq}', 'transaction.created', \
             '{{\"user\":\"{user}\",\"seq\":{seq}}}', '2026-11-21 10:00:00')"
        ))
        .execute(&mut conn)
        .unwrap();
    }

    let applied = store::migrate(&mut conn).unwrap();
    assert_eq!(applied.len(), 1, "{applied:?}");
    assert!(applied[0].ends_with("000007"), "{applied:?}");

    // Every user has a key of their own, and every event is still there, in order.
    let (ada, bob) = (key_of(&mut conn, "ada"), key_of(&mut conn, "bob"));
    assert_ne!(ada, bob);
    let replay = store::ledger::events_after(&mut conn, "ada", 1, 10).unwrap();
    let seen: Vec<(i64, i64, String)> = replay
        .into_iter()
        .map(|e| (e.user_num, e.seq, e.envelope))
        .collect();
    assert_eq!(
        seen,
        vec![
            (ada, 2, r#"{"user":"ada","seq":2}"#.to_string()),
            (ada, 3, r#"{"user":"ada","seq":3}"#.to_string()),
        ]
    );
    let snapshot = store::ledger::snapshot(&mut conn, "bob").unwrap();
    assert_eq!((snapshot.user_num, snapshot.last_seq), (bob, 2));

    // Erasing a user takes their key and their events with them, and nobody else's.
    diesel::sql_query("DELETE FROM users WHERE id = 'ada'")
        .execute(&mut conn)
        .unwrap();
    assert_eq!(count(&mut conn, "SELECT COUNT(*) AS n FROM events"), 2);
    assert_eq!(count(&mut conn, "SELECT COUNT(*) AS n FROM user_keys"), 1);
    // A key is never given out twice: a later user's events can never be read as an erased one's.
    let newcomer = uuid::Uuid::now_v7().to_string();
    let now = chrono::Utc::now().naive_utc();
    store::users::insert(
        &mut conn,
        &store::users::NewUser {
            id: &newcomer,
            email: "cy@example.org",
            name: "Cy",
            role: "user",
            base_currency: "EUR",
            timezone: "UTC",
            locale: "en",
            password_hash: "x",
            security_stamp: "s",
            disabled: false,
            created_at: now,
            updated_at: now,
        },
    )
    .unwrap();
    let cy = key_of(&mut conn, &newcomer);
    assert!(cy > ada.max(bob), "key {cy} after {ada} and {bob}");

    // Down again: the log is keyed by user id, with bob's events intact.
    assert!(revert_last(&mut conn).ends_with("000007"));
    assert_eq!(
        count(
            &mut conn,
            "SELECT COUNT(*) AS n FROM events WHERE user_id = 'bob' AND seq IN (1, 2)"
        ),
        2
    );
    // And up once more.
    assert_eq!(store::migrate(&mut conn).unwrap().len(), 1);
    assert_eq!(
        store::ledger::events_after(&mut conn, "bob", 0, 10)
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn event_keys_keep_every_event_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    event_keys_keep_every_event(&format!(
        "sqlite://{}",
        dir.path().join("db.sqlite").display()
    ));
}

#[test]
fn event_keys_keep_every_event_on_postgres() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let db = PgDatabase::create(&admin);
    event_keys_keep_every_event(&db.url);
}
