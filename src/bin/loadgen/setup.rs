//! Before the load: register the users, give each one account, optionally seed transactions;
//! during it: keep the access tokens fresh.
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use hyper::body::Bytes;
use hyper::header::HeaderValue;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::client::{Answer, Client};
use crate::run::CreateBody;
use crate::{Args, Target};

pub const PASSWORD: &str = "loadgen password";

/// One simulated user and what loadgen knows about the server's state for them.
pub struct User {
    pub index: u32,
    pub email: String,
    pub account_id: String,
    /// `Bearer <access token>`.
    token: RwLock<HeaderValue>,
    refresh_token: Mutex<String>,
    /// Lifetime of the access token in seconds, as the server said.
    pub expires_in: u64,
    /// Creates answered with 2xx (setup, warm-up and measured time alike).
    pub acked_creates: AtomicU64,
    /// The sum of their amounts, in cents.
    pub acked_sum: AtomicI64,
    /// Creates that got no answer or a 5xx: they may or may not have been stored.
    pub uncertain_creates: AtomicU64,
}

impl User {
    pub fn token(&self) -> HeaderValue {
        self.token
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn set_tokens(&self, access: &str, refresh: &str) -> Result<()> {
        let value = HeaderValue::from_str(&format!("Bearer {access}"))
            .context("the access token is not a valid header value")?;
        *self
            .token
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = value;
        *self
            .refresh_token
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = refresh.to_string();
        Ok(())
    }

    fn refresh_token(&self) -> String {
        self.refresh_token
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Count the answer to a create of `cents`.
    pub fn record_create(&self, status: Option<StatusCode>, cents: i64) {
        match status {
            Some(s) if s.is_success() => {
                self.acked_creates.fetch_add(1, Ordering::Relaxed);
                self.acked_sum.fetch_add(cents, Ordering::Relaxed);
            }
            Some(s) if !s.is_server_error() => {}
            _ => {
                self.uncertain_creates.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

pub type Users = Arc<Vec<User>>;

fn str_field<'a>(value: &'a Value, field: &str, what: &str) -> Result<&'a str> {
    value
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("{what}: the answer has no string `{field}`: {value}"))
}

fn rate_limited(answer: &Answer, what: &str) -> anyhow::Error {
    anyhow!(
        "{what} was rate-limited (429). The server limits registrations and logins per IP; \
         start it with LEDGERLINE_RATE_LIMIT_REGISTER_PER_IP=1000000/1s and \
         LEDGERLINE_RATE_LIMIT_LOGIN_PER_IP=1000000/1s (bench/run.sh does). Server said: {}",
        String::from_utf8_lossy(&answer.body)
    )
}

async fn register(client: &mut Client, run_id: &str, index: u32) -> Result<User> {
    let email = format!("loadgen-{run_id}-{index}@example.org");
    let body = json!({
        "email": email,
        "password": PASSWORD,
        "name": format!("Loadgen {index}"),
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
        return Err(rate_limited(&answer, &what));
    }
    if answer.status != StatusCode::CREATED {
        return Err(answer.unexpected(&what));
    }
    let pair = answer.json().context(what.clone())?;
    let access = str_field(&pair, "access_token", &what)?;
    let refresh = str_field(&pair, "refresh_token", &what)?;
    let expires_in = pair
        .get("expires_in")
        .and_then(Value::as_u64)
        .ok_or_else(|| anyhow!("{what}: the answer has no number `expires_in`: {pair}"))?;
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
        email,
        account_id,
        token: RwLock::new(token),
        refresh_token: Mutex::new(refresh.to_string()),
        expires_in,
        acked_creates: AtomicU64::new(0),
        acked_sum: AtomicI64::new(0),
        uncertain_creates: AtomicU64::new(0),
    })
}

async fn seed(client: &mut Client, user: &User, count: u32) -> Result<()> {
    let mut body = CreateBody::new(&user.account_id, u64::from(user.index) + 1);
    let token = user.token();
    for _ in 0..count {
        let (bytes, cents) = body.next();
        let answer = client
            .call(
                Method::POST,
                "/api/v1/transactions",
                Some(&token),
                Some(bytes),
            )
            .await;
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                user.record_create(None, cents);
                return Err(e.context(format!("seeding transactions of {}", user.email)));
            }
        };
        user.record_create(Some(answer.status), cents);
        if !answer.status.is_success() {
            return Err(answer.unexpected(&format!("seeding transactions of {}", user.email)));
        }
    }
    Ok(())
}

/// Register `--users` users with one EUR account each, `--setup-concurrency` at a time. User i
/// is set up over `connections[i]` when there is one (the connection that drives it afterwards),
/// as an app signs in and goes on over the same connection: the server starts a user's Ledger on
/// the thread of the connection that first needs it.
pub async fn prepare(
    args: &Args,
    target: &Target,
    timeout: Duration,
    connections: &mut Vec<Client>,
) -> Result<Users> {
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let total = args.users;
    let started = Instant::now();
    eprintln!(
        "loadgen: registering {total} users (run {run_id}) at {} ({} at a time)…",
        args.url, args.setup_concurrency
    );
    let own: Vec<Option<Client>> = connections.drain(..).map(Some).collect();
    let own = Arc::new(Mutex::new(own));
    let next = Arc::new(AtomicU32::new(0));
    let done = Arc::new(AtomicU32::new(0));
    let step = (total / 20).max(1);
    let mut workers = JoinSet::new();
    for _ in 0..args.setup_concurrency.min(total) {
        let next = next.clone();
        let done = done.clone();
        let run_id = run_id.clone();
        let own = own.clone();
        let mut spare = Client::new(target, timeout)?;
        let seed_count = args.seed;
        workers.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= total {
                    return Ok::<_, anyhow::Error>(mine);
                }
                let slot = |own: &Mutex<Vec<Option<Client>>>, client: Option<Client>| {
                    let mut own = own.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    match own.get_mut(index as usize) {
                        Some(place) => std::mem::replace(place, client),
                        None => None,
                    }
                };
                let mut taken = slot(&own, None);
                let client = taken.as_mut().unwrap_or(&mut spare);
                let user = register(client, &run_id, index).await?;
                if seed_count > 0 {
                    seed(client, &user, seed_count).await?;
                }
                if taken.is_some() {
                    slot(&own, taken);
                }
                mine.push(user);
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n % step == 0 || n == total {
                    eprintln!(
                        "loadgen: {n}/{total} users registered ({:.1} s)",
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
    let own = std::mem::take(&mut *own.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
    if !own.is_empty() {
        *connections = own
            .into_iter()
            .map(|c| c.ok_or_else(|| anyhow!("a connection was not given back after setup")))
            .collect::<Result<_>>()?;
    }
    eprintln!(
        "loadgen: setup done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(Arc::new(users))
}

/// Refresh every user's tokens when two thirds of the access token lifetime (15 min by default)
/// have passed, so that long runs keep working. Short runs end before the first refresh.
pub fn spawn_refresher(
    users: Users,
    target: Target,
    timeout: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut client = match Client::new(&target, timeout) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("loadgen: token refresher not started: {e:#}");
                return;
            }
        };
        let lifetime = users.iter().map(|u| u.expires_in).min().unwrap_or(900);
        let every = Duration::from_secs((lifetime * 2 / 3).max(10));
        loop {
            tokio::time::sleep(every).await;
            let mut pending: Vec<&User> = users.iter().collect();
            // A failed refresh is tried again a few times, 5 s apart, before the token runs out.
            for attempt in 1..=4 {
                let mut failed = Vec::new();
                let mut first_error = None;
                for user in pending {
                    if let Err(e) = refresh(&mut client, user).await {
                        first_error.get_or_insert(e);
                        failed.push(user);
                    }
                }
                let Some(e) = first_error else {
                    break;
                };
                eprintln!(
                    "loadgen: warning: refreshing tokens failed for {} users (attempt {attempt} \
                     of 4), e.g. {e:#}",
                    failed.len()
                );
                pending = failed;
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    })
}

async fn refresh(client: &mut Client, user: &User) -> Result<()> {
    let what = format!("refreshing the tokens of {}", user.email);
    let body = json!({ "refresh_token": user.refresh_token() });
    let answer = client
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(Bytes::from(body.to_string())),
        )
        .await
        .context(what.clone())?;
    if !answer.status.is_success() {
        return Err(answer.unexpected(&what));
    }
    let pair = answer.json().context(what.clone())?;
    user.set_tokens(
        str_field(&pair, "access_token", &what)?,
        str_field(&pair, "refresh_token", &what)?,
    )
}
