//! `loadgen`: a closed-loop HTTP/1.1 load generator for a running Ledgerline server.
//!
//! It registers `--users` users with one account each, then drives `--connections` keep-alive
//! connections (connection `i` acts as user `i % users`) for `--warmup` + `--duration` seconds:
//! each connection sends a request, waits for the whole answer, and sends the next. Latencies of
//! the measured part go into an HDR histogram (microseconds). With `--verify` it afterwards reads
//! every user's accounts and transactions back and checks that what was acknowledged was stored.
//!
//! It is meant to share a small machine with the server, so the client side is kept cheap:
//! hyper's low-level HTTP/1 connections, no per-request allocation beyond the request itself, and
//! by default a single-threaded tokio runtime (`--threads`).
//!
//! It only ever connects to the address in `--url`, which must be a loopback address, and stops
//! by itself: each request has a timeout and the run ends after the given duration.
mod client;
mod cpu;
mod money;
mod report;
mod run;
mod setup;
mod verify;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};

/// Drive a running Ledgerline server over HTTP/1.1 keep-alive and report throughput and latency.
#[derive(Parser, Debug, Clone)]
#[command(name = "loadgen", version)]
pub struct Args {
    /// Base URL of the server (http only, loopback only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Number of users to register (each gets one account).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub users: u32,
    /// Number of keep-alive connections; connection i acts as user i % users.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub connections: u32,
    /// Measured time in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of load before measuring starts (not measured).
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// What each connection does.
    #[arg(long, value_enum, default_value_t = Scenario::Create)]
    pub scenario: Scenario,
    /// Tokio worker threads for the load (1 = current-thread runtime).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub threads: u32,
    /// Requests in flight at once during setup (register, accounts, seeding) and verification.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub setup_concurrency: u32,
    /// Transactions to create per user during setup, before the load (e.g. for `summary`).
    #[arg(long, default_value_t = 0)]
    pub seed: u32,
    /// Seconds one request may take before it counts as an error (`timeout`).
    #[arg(long, default_value_t = 30.0)]
    pub request_timeout: f64,
    /// After the run, check that every acknowledged create was stored and balances add up.
    #[arg(long)]
    pub verify: bool,
    /// The server's process id: report its CPU use during the measured time too.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Print one JSON object with the results on stdout instead of the text block.
    #[arg(long)]
    pub json: bool,
}

/// The request mix.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// POST /api/v1/transactions.
    Create,
    /// GET /api/v1/reports/summary.
    Summary,
    /// 80 % creates, 20 % GET /api/v1/accounts.
    Mixed,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Create => "create",
            Scenario::Summary => "summary",
            Scenario::Mixed => "mixed",
        }
    }
}

/// Where to connect: the resolved loopback address and the `Host` header value.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub authority: String,
}

fn seconds(value: f64, name: &str) -> Result<Duration> {
    if !(0.0..=86_400.0).contains(&value) {
        bail!("--{name} must be a number of seconds from 0 to 86400, not {value}");
    }
    Ok(Duration::from_secs_f64(value))
}

/// Parse `--url` and resolve it, refusing anything that is not a loopback address.
fn target(raw: &str) -> Result<Target> {
    let url = url::Url::parse(raw).with_context(|| format!("--url `{raw}` is not a URL"))?;
    if url.scheme() != "http" {
        bail!("--url must be http:// (got `{}`)", url.scheme());
    }
    if url.path() != "/" && !url.path().is_empty() {
        bail!(
            "--url must be the server's base URL without a path (got `{}`)",
            url.path()
        );
    }
    let host = url
        .host_str()
        .with_context(|| format!("--url `{raw}` has no host"))?;
    let port = url.port_or_known_default().unwrap_or(80);
    let lookup_host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(&(lookup_host, port))
        .with_context(|| format!("cannot resolve `{host}`"))?
        .collect();
    // Prefer IPv4: the server listens on 127.0.0.1 by default, and `localhost` may list ::1 first.
    let Some(addr) = addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
    else {
        bail!("`{host}` resolves to no address");
    };
    if let Some(bad) = addrs.iter().find(|a| !a.ip().is_loopback()) {
        bail!("--url must point at this machine (a loopback address); `{host}` resolves to {bad}");
    }
    Ok(Target {
        addr,
        authority: match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        },
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    match real_main(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("loadgen: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main(args: Args) -> Result<ExitCode> {
    let target = target(&args.url)?;
    let warmup = seconds(args.warmup, "warmup")?;
    let duration = seconds(args.duration, "duration")?;
    if duration.is_zero() {
        bail!("--duration must be more than zero");
    }
    let request_timeout = seconds(args.request_timeout, "request-timeout")?;
    if request_timeout.is_zero() {
        bail!("--request-timeout must be more than zero");
    }

    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads as usize)
            .enable_all()
            .build()
    }
    .context("cannot start the tokio runtime")?;

    runtime.block_on(async move {
        // With a connection per user or more, user i is set up over connection i (see prepare).
        let mut clients = Vec::new();
        if args.connections >= args.users {
            run::connect(&mut clients, args.users, &target, request_timeout).await?;
        }
        let users = setup::prepare(&args, &target, request_timeout, &mut clients).await?;
        let refresher = setup::spawn_refresher(users.clone(), target.clone(), request_timeout);
        let outcome = run::run(
            &args,
            &target,
            clients,
            users.clone(),
            warmup,
            duration,
            request_timeout,
        )
        .await?;
        // A verification that could not finish (e.g. the server stopped answering) is a failed
        // verification, reported next to the load results rather than instead of them.
        let verification = if args.verify {
            Some(verify::verify(&args, &target, &users, request_timeout).await)
        } else {
            None
        };
        refresher.abort();

        let verification_json = verification.as_ref().map(|v| match v {
            Ok(v) => v.to_json(),
            Err(e) => serde_json::json!({ "passed": false, "error": format!("{e:#}") }),
        });
        let summary = report::Summary::new(&args, &outcome, verification_json);
        if args.json {
            println!("{}", summary.to_json());
        } else {
            print!("{}", summary.to_text());
            match &verification {
                Some(Ok(v)) => print!("{}", v.to_text()),
                Some(Err(e)) => println!("verify:         FAILED — could not finish: {e:#}"),
                None => {}
            }
        }

        let mut failed = false;
        if summary.error_ratio() > 0.01 {
            eprintln!(
                "loadgen: {:.2} % of the requests failed (more than 1 %)",
                summary.error_ratio() * 100.0
            );
            failed = true;
        }
        if summary.total_requests() == 0 {
            eprintln!("loadgen: no request completed in the measured time");
            failed = true;
        }
        match &verification {
            Some(Ok(v)) if v.passed() => {}
            Some(_) => {
                eprintln!("loadgen: verification FAILED");
                failed = true;
            }
            None => {}
        }
        Ok(if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    })
}
