//! Before the load: register the users and give each one account.
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use hyper::body::Bytes;
use hyper::header::HeaderValue;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::client::Client;
use crate::{Args, Target};

const PASSWORD: &str = "wsbench password";

/// One registered user with its account.
pub struct User {
    pub index: u32,
    pub account_id: String,
    /// `Bearer <access token>`.
    pub token: HeaderValue,
}

pub type Users = Arc<Vec<User>>;

fn str_field<'a>(value: &'a Value, field: &str, what: &str) -> Result<&'a str> {
    value
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("{what}: the answer has no string `{field}`: {value}"))
}

async fn register(client: &mut Client, run_id: &str, index: u32) -> Result<User> {
    let email = format!("wsbench-{run_id}-{index}@example.org");
    let body = json!({
        "email": email,
        "password": PASSWORD,
        "name": format!("Wsbench {index}"),
        "base_currency": "EUR",
    });
    let answer = client
        .call(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(Bytes::from(body.to_string())),
        )
        .await?;
    let what = format!("registering {email}");
    if answer.status == StatusCode::TOO_MANY_REQUESTS {
        bail!(
            "{what} was rate-limited (429): start the server with \
             LEDGERLINE_RATE_LIMIT_REGISTER_PER_IP=1000000/1s (bench/ws.sh does). Server said: {}",
            String::from_utf8_lossy(&answer.body)
        );
    }
    if answer.status != StatusCode::CREATED {
        return Err(answer.unexpected(&what));
    }
    let pair = answer.json().context(what.clone())?;
    let access = str_field(&pair, "access_token", &what)?;
    let token = HeaderValue::from_str(&format!("Bearer {access}"))
        .context("the access token is not a valid header value")?;

    let account = json!({"name": "Main", "kind": "checking", "currency": "EUR"});
    let answer = client
        .call(
            Method::POST,
            "/api/v1/accounts",
            Some(&token),
            Some(Bytes::from(account.to_string())),
        )
        .await?;
    let what = format!("creating the account of {email}");
    if answer.status != StatusCode::CREATED {
        return Err(answer.unexpected(&what));
    }
    let account = answer.json().context(what.clone())?;
    let account_id = str_field(&account, "id", &what)?.to_string();
    Ok(User {
        index,
        account_id,
        token,
    })
}

/// Register `--users` users with one EUR account each, `--setup-concurrency` at a time.
pub async fn prepare(
    args: &Args,
    target: &Target,
    run_id: &str,
    timeout: Duration,
) -> Result<Users> {
    let total = args.users;
    let started = Instant::now();
    eprintln!(
        "wsbench: registering {total} users (run {run_id}) at {} ({} at a time)…",
        args.url, args.setup_concurrency
    );
    let next = Arc::new(AtomicU32::new(0));
    let done = Arc::new(AtomicU32::new(0));
    let step = (total / 10).max(1);
    let mut workers = JoinSet::new();
    for _ in 0..args.setup_concurrency.min(total) {
        let next = next.clone();
        let done = done.clone();
        let run_id = run_id.to_string();
        let mut client = Client::new(target, timeout)?;
        workers.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= total {
                    return Ok::<_, anyhow::Error>(mine);
                }
                mine.push(register(&mut client, &run_id, index).await?);
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n % step == 0 || n == total {
                    eprintln!(
                        "wsbench: {n}/{total} users registered ({:.1} s)",
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        });
    }
    let mut users = Vec::with_capacity(total as usize);
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(Ok(mine)) => users.extend(mine),
            Ok(Err(e)) => {
                workers.abort_all();
                return Err(e.context("setup failed"));
            }
            Err(e) => {
                workers.abort_all();
                bail!("a setup task failed: {e}");
            }
        }
    }
    users.sort_by_key(|u| u.index);
    if users.len() != total as usize {
        bail!("setup made {} users instead of {total}", users.len());
    }
    Ok(Arc::new(users))
}

/// The body of `POST /api/v1/transactions` for create number `slot` of run `run_id`: the
/// description carries both, so that each frame can be matched to its POST.
pub fn create_body(user: &User, run_id: &str, slot: u64) -> Bytes {
    Bytes::from(format!(
        r#"{{"account_id":"{}","amount":"-0.01","description":"{}"}}"#,
        user.account_id,
        description(run_id, slot)
    ))
}

pub fn description(run_id: &str, slot: u64) -> String {
    format!("wsb {run_id} {slot}")
}

/// The slot of a description made by [`description`] for this run.
pub fn parse_description(run_id: &str, text: &str) -> Option<u64> {
    let rest = text.strip_prefix("wsb ")?;
    let (run, slot) = rest.split_once(' ')?;
    if run != run_id {
        return None;
    }
    slot.parse().ok()
}
