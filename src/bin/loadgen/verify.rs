//! `--verify`: read every user's account and transactions back and check that what the server
//! acknowledged is what it stored ("acknowledged means stored") and that balances add up.
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::client::Client;
use crate::money::{format_minor, parse_minor};
use crate::setup::{User, Users};
use crate::{Args, Target};

/// What was found for one user.
pub struct UserCheck {
    pub email: String,
    pub acked: u64,
    pub uncertain: u64,
    pub stored: u64,
    pub acked_sum: i64,
    pub stored_sum: i64,
    pub balance: i64,
    pub opening: i64,
    pub problems: Vec<String>,
}

pub struct Verification {
    pub users: Vec<UserCheck>,
    pub elapsed: Duration,
}

impl Verification {
    pub fn passed(&self) -> bool {
        self.users.iter().all(|u| u.problems.is_empty())
    }

    fn sum(&self, f: impl Fn(&UserCheck) -> u64) -> u64 {
        self.users.iter().map(f).sum()
    }

    pub fn to_json(&self) -> Value {
        let failed: Vec<Value> = self
            .users
            .iter()
            .filter(|u| !u.problems.is_empty())
            .take(50)
            .map(|u| json!({ "email": u.email, "problems": u.problems }))
            .collect();
        json!({
            "passed": self.passed(),
            "users_checked": self.users.len(),
            "users_failed": self.users.iter().filter(|u| !u.problems.is_empty()).count(),
            "creates_acknowledged": self.sum(|u| u.acked),
            "creates_uncertain": self.sum(|u| u.uncertain),
            "transactions_stored": self.sum(|u| u.stored),
            "seconds": self.elapsed.as_secs_f64(),
            "failures": failed,
        })
    }

    pub fn to_text(&self) -> String {
        let failed: Vec<&UserCheck> = self
            .users
            .iter()
            .filter(|u| !u.problems.is_empty())
            .collect();
        let mut out = format!(
            "verify:         {} — {} users checked in {:.1} s, {} creates acknowledged, {} \
             uncertain (no answer or 5xx), {} transactions stored; every balance = sum of its \
             transactions{}\n",
            if failed.is_empty() {
                "PASSED"
            } else {
                "FAILED"
            },
            self.users.len(),
            self.elapsed.as_secs_f64(),
            self.sum(|u| u.acked),
            self.sum(|u| u.uncertain),
            self.sum(|u| u.stored),
            if failed.is_empty() { "" } else { "?" },
        );
        for u in failed.iter().take(20) {
            out.push_str(&format!(
                "  {}: acknowledged {} ({} EUR), uncertain {}, stored {} ({} EUR), balance {} \
                 (opening {}): {}\n",
                u.email,
                u.acked,
                format_minor(u.acked_sum, 2),
                u.uncertain,
                u.stored,
                format_minor(u.stored_sum, 2),
                format_minor(u.balance, 2),
                format_minor(u.opening, 2),
                u.problems.join("; ")
            ));
        }
        if failed.len() > 20 {
            out.push_str(&format!("  … and {} more users\n", failed.len() - 20));
        }
        out
    }
}

fn amount(value: &Value, field: &str, what: &str) -> Result<i64> {
    let text = value
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("{what}: no string `{field}` in {value}"))?;
    parse_minor(text, 2).with_context(|| format!("{what}: `{field}`"))
}

async fn get_json(client: &mut Client, user: &User, path: &str) -> Result<Value> {
    let answer = client
        .call(Method::GET, path, Some(&user.token()), None)
        .await?;
    if answer.status != StatusCode::OK {
        return Err(answer.unexpected(&format!("GET {path} as {}", user.email)));
    }
    answer.json().with_context(|| format!("GET {path}"))
}

async fn check(client: &mut Client, user: &User) -> Result<UserCheck> {
    let mut check = UserCheck {
        email: user.email.clone(),
        acked: user.acked_creates.load(Ordering::Relaxed),
        uncertain: user.uncertain_creates.load(Ordering::Relaxed),
        stored: 0,
        acked_sum: user.acked_sum.load(Ordering::Relaxed),
        stored_sum: 0,
        balance: 0,
        opening: 0,
        problems: Vec::new(),
    };

    let accounts = get_json(client, user, "/api/v1/accounts").await?;
    let items = accounts
        .get("items")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("GET /api/v1/accounts: no `items` array"))?;
    if items.len() != 1 {
        check
            .problems
            .push(format!("{} accounts listed instead of 1", items.len()));
    }
    let account = items
        .iter()
        .find(|a| a.get("id").and_then(Value::as_str) == Some(user.account_id.as_str()))
        .ok_or_else(|| {
            anyhow!(
                "account {} of {} is not listed",
                user.account_id,
                user.email
            )
        })?;
    check.balance = amount(account, "balance", "account")?;
    check.opening = amount(account, "opening_balance", "account")?;

    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = String::from("/api/v1/transactions?limit=500");
        if let Some(c) = &cursor {
            path.push_str("&cursor=");
            path.extend(url::form_urlencoded::byte_serialize(c.as_bytes()));
        }
        let page = get_json(client, user, &path).await?;
        let items = page
            .get("items")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("GET {path}: no `items` array"))?;
        for t in items {
            let id = t
                .get("id")
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("a transaction without id: {t}"))?;
            if !seen.insert(id.to_string()) {
                check
                    .problems
                    .push(format!("transaction {id} listed twice (pagination)"));
            }
            if t.get("account_id").and_then(Value::as_str) != Some(user.account_id.as_str()) {
                check
                    .problems
                    .push(format!("transaction {id} is on another account"));
            }
            check.stored += 1;
            check.stored_sum += amount(t, "amount", "transaction")?;
        }
        match page.get("next_cursor") {
            Some(Value::String(next)) => {
                if items.is_empty() {
                    bail!("GET {path}: an empty page with a next_cursor");
                }
                cursor = Some(next.clone());
            }
            Some(Value::Null) | None => break,
            Some(other) => bail!("GET {path}: next_cursor is {other}"),
        }
    }

    if check.balance != check.opening + check.stored_sum {
        check.problems.push(format!(
            "balance {} != opening {} + sum of transactions {}",
            format_minor(check.balance, 2),
            format_minor(check.opening, 2),
            format_minor(check.stored_sum, 2)
        ));
    }
    if check.uncertain == 0 {
        if check.stored != check.acked {
            check.problems.push(format!(
                "{} transactions stored but {} creates acknowledged",
                check.stored, check.acked
            ));
        } else if check.stored_sum != check.acked_sum {
            check.problems.push(format!(
                "stored amounts sum to {} but acknowledged ones to {}",
                format_minor(check.stored_sum, 2),
                format_minor(check.acked_sum, 2)
            ));
        }
    } else if check.stored < check.acked || check.stored > check.acked + check.uncertain {
        check.problems.push(format!(
            "{} transactions stored; expected {} acknowledged plus up to {} uncertain",
            check.stored, check.acked, check.uncertain
        ));
    }
    Ok(check)
}

pub async fn verify(
    args: &Args,
    target: &Target,
    users: &Users,
    timeout: Duration,
) -> Result<Verification> {
    let started = Instant::now();
    eprintln!("loadgen: verifying {} users…", users.len());
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..(args.setup_concurrency as usize).min(users.len()) {
        let next = next.clone();
        let users = users.clone();
        let mut client = Client::new(target, timeout)?;
        workers.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(user) = users.get(i) else {
                    return Ok::<_, anyhow::Error>(mine);
                };
                let result = check(&mut client, user)
                    .await
                    .with_context(|| format!("verifying {}", user.email))?;
                mine.push((user.index, result));
            }
        });
    }
    let mut checks = Vec::with_capacity(users.len());
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(Ok(mine)) => checks.extend(mine),
            Ok(Err(e)) => {
                workers.abort_all();
                return Err(e);
            }
            Err(e) => {
                workers.abort_all();
                bail!("a verification task failed: {e}");
            }
        }
    }
    checks.sort_by_key(|(i, _)| *i);
    Ok(Verification {
        users: checks.into_iter().map(|(_, c)| c).collect(),
        elapsed: started.elapsed(),
    })
}
