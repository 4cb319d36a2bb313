//! The load itself: one closed-loop task per connection.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use hdrhistogram::Histogram;
use hyper::body::Bytes;
use hyper::Method;
use tokio::task::JoinSet;

use crate::client::{Client, Failure};
use crate::cpu::{Sample, Usage};
use crate::money::format_minor;
use crate::setup::Users;
use crate::{Args, Scenario, Target};

pub const SUMMARY_PATH: &str = "/api/v1/reports/summary?from=2026-11-01&to=2026-11-30";
const CREATE_PATH: &str = "/api/v1/transactions";
const ACCOUNTS_PATH: &str = "/api/v1/accounts";

/// Largest latency the histogram holds (60 s, in microseconds); longer ones are clamped.
const MAX_LATENCY_US: u64 = 60_000_000;

/// xorshift64: cheap and good enough to vary amounts and mix requests.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// Bodies for `POST /api/v1/transactions` with slightly varying amount, date and description.
pub struct CreateBody {
    account_id: String,
    rng: Rng,
    buf: String,
}

impl CreateBody {
    pub fn new(account_id: &str, seed: u64) -> CreateBody {
        CreateBody {
            account_id: account_id.to_string(),
            rng: Rng::new(seed),
            buf: String::with_capacity(160),
        }
    }

    /// The next body and its amount in cents.
    pub fn next(&mut self) -> (Bytes, i64) {
        let r = self.rng.next_u64();
        let cents = -(100 + (r % 9_900) as i64);
        let day = 1 + (r >> 20) % 21;
        let n = (r >> 32) % 1000;
        self.buf.clear();
        // Writing to a String cannot fail.
        let _ = write!(
            self.buf,
            r#"{{"account_id":"{}","amount":"{}","date":"2026-11-{day:02}","description":"loadgen {n}"}}"#,
            self.account_id,
            format_minor(cents, 2),
        );
        (Bytes::copy_from_slice(self.buf.as_bytes()), cents)
    }
}

/// What was sent, for the per-kind counts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Create = 0,
    Summary = 1,
    Accounts = 2,
}

pub const KIND_NAMES: [&str; 3] = ["create", "summary", "accounts"];

/// The measured results of all connections together.
pub struct Outcome {
    pub histogram: Histogram<u64>,
    pub ok: u64,
    pub ok_by_kind: [u64; 3],
    /// Errors by HTTP status (`"503"`), `io` or `timeout`.
    pub errors: BTreeMap<String, u64>,
    /// The first error message seen for each error key.
    pub samples: BTreeMap<String, String>,
    /// From the end of the warm-up to the last measured answer.
    pub measured: Duration,
    /// CPU use of loadgen and the server during the measured time.
    pub cpu: Usage,
}

struct ConnStats {
    histogram: Histogram<u64>,
    ok: u64,
    ok_by_kind: [u64; 3],
    errors: BTreeMap<String, u64>,
    samples: BTreeMap<String, String>,
    last_done: Option<Instant>,
}

fn histogram() -> Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).context("cannot create the histogram")
}

impl ConnStats {
    fn error(&mut self, key: String, sample: impl FnOnce() -> String) {
        *self.errors.entry(key.clone()).or_insert(0) += 1;
        self.samples.entry(key).or_insert_with(sample);
    }
}

struct Plan {
    scenario: Scenario,
    start_measuring: Instant,
    end: Instant,
}

async fn drive(
    plan: Plan,
    mut client: Client,
    users: Users,
    user_index: usize,
    seed: u64,
) -> Result<ConnStats> {
    let user = users
        .get(user_index)
        .ok_or_else(|| anyhow!("no user {user_index}"))?;
    let mut stats = ConnStats {
        histogram: histogram()?,
        ok: 0,
        ok_by_kind: [0; 3],
        errors: BTreeMap::new(),
        samples: BTreeMap::new(),
        last_done: None,
    };
    let mut bodies = CreateBody::new(&user.account_id, seed);
    let mut rng = Rng::new(seed ^ 0x5555);
    loop {
        if Instant::now() >= plan.end {
            break;
        }
        let kind = match plan.scenario {
            Scenario::Create => Kind::Create,
            Scenario::Summary => Kind::Summary,
            Scenario::Mixed if rng.next_u64() % 5 == 0 => Kind::Accounts,
            Scenario::Mixed => Kind::Create,
        };
        let (method, path, body, cents) = match kind {
            Kind::Create => {
                let (body, cents) = bodies.next();
                (Method::POST, CREATE_PATH, Some(body), cents)
            }
            Kind::Summary => (Method::GET, SUMMARY_PATH, None, 0),
            Kind::Accounts => (Method::GET, ACCOUNTS_PATH, None, 0),
        };
        let token = user.token();
        let sent = Instant::now();
        let result = client.send(method, path, Some(&token), body).await;
        let done = Instant::now();
        if kind == Kind::Create {
            user.record_create(result.as_ref().ok().map(|a| a.status), cents);
        }
        let measured = sent >= plan.start_measuring;
        if measured {
            stats.last_done = Some(done);
        }
        match result {
            Ok(answer) if answer.status.is_success() => {
                if measured {
                    stats.ok += 1;
                    stats.ok_by_kind[kind as usize] += 1;
                    let us = u64::try_from(done.duration_since(sent).as_micros())
                        .unwrap_or(u64::MAX)
                        .clamp(1, MAX_LATENCY_US);
                    stats.histogram.saturating_record(us);
                }
            }
            Ok(answer) => {
                if measured {
                    stats.error(answer.status.as_u16().to_string(), || {
                        let body = String::from_utf8_lossy(&answer.body);
                        let body: String = body.chars().take(300).collect();
                        format!("{path}: {body}")
                    });
                }
            }
            Err(failure) => {
                let key = match failure {
                    Failure::Io(_) => "io",
                    Failure::Timeout => "timeout",
                };
                if measured {
                    stats.error(key.to_string(), || format!("{path}: {failure}"));
                }
                // Do not spin if the server is gone; the run still ends on time.
                if matches!(failure, Failure::Io(_)) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
    Ok(stats)
}

/// Open keep-alive connections until there are `count`, numbered from `clients.len()` on.
pub async fn connect(
    clients: &mut Vec<Client>,
    count: u32,
    target: &Target,
    timeout: Duration,
) -> Result<()> {
    for i in clients.len() as u32..count {
        let mut client = Client::new(target, timeout)?;
        client
            .connect()
            .await
            .with_context(|| format!("opening connection {i}"))?;
        clients.push(client);
    }
    Ok(())
}

/// Warm up, measure for `duration` over `--connections` connections, connection i driving user
/// i % users: first `clients` (those that set up their user, see `setup::prepare`), then new ones.
pub async fn run(
    args: &Args,
    target: &Target,
    mut clients: Vec<Client>,
    users: Users,
    warmup: Duration,
    duration: Duration,
    timeout: Duration,
) -> Result<Outcome> {
    eprintln!(
        "loadgen: scenario {}, {} connections over {} users, {:.1} s warm-up + {:.1} s measured, \
         {} client thread(s)",
        args.scenario.name(),
        args.connections,
        args.users,
        warmup.as_secs_f64(),
        duration.as_secs_f64(),
        args.threads
    );
    for (i, client) in clients.iter_mut().enumerate() {
        client
            .connect()
            .await
            .with_context(|| format!("opening connection {i} again"))?;
    }
    connect(&mut clients, args.connections, target, timeout).await?;
    let start = Instant::now();
    let start_measuring = start + warmup;
    let end = start_measuring + duration;
    let mut tasks = JoinSet::new();
    for (i, client) in clients.into_iter().enumerate() {
        let plan = Plan {
            scenario: args.scenario,
            start_measuring,
            end,
        };
        let user_index = i % args.users as usize;
        tasks.spawn(drive(plan, client, users.clone(), user_index, i as u64 + 1));
    }

    let server_pid = args.server_pid;
    let cpu = tokio::spawn(async move {
        tokio::time::sleep_until(tokio::time::Instant::from_std(start_measuring)).await;
        let first = Sample::take(server_pid);
        tokio::time::sleep_until(tokio::time::Instant::from_std(end)).await;
        Usage::between(first, Sample::take(server_pid))
    });

    let mut outcome = Outcome {
        histogram: histogram()?,
        ok: 0,
        ok_by_kind: [0; 3],
        errors: BTreeMap::new(),
        samples: BTreeMap::new(),
        measured: Duration::ZERO,
        cpu: Usage::default(),
    };
    let mut last_done = start_measuring;
    while let Some(joined) = tasks.join_next().await {
        let stats = joined.context("a connection task failed")??;
        outcome
            .histogram
            .add(&stats.histogram)
            .map_err(|e| anyhow!("cannot merge histograms: {e:?}"))?;
        outcome.ok += stats.ok;
        for (total, n) in outcome.ok_by_kind.iter_mut().zip(stats.ok_by_kind) {
            *total += n;
        }
        for (key, n) in stats.errors {
            *outcome.errors.entry(key).or_insert(0) += n;
        }
        for (key, sample) in stats.samples {
            outcome.samples.entry(key).or_insert(sample);
        }
        if let Some(done) = stats.last_done {
            last_done = last_done.max(done);
        }
    }
    outcome.cpu = cpu.await.unwrap_or_default();
    outcome.measured = last_done.duration_since(start_measuring).max(duration);
    Ok(outcome)
}
