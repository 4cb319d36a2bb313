//! `wsbench`: a WebSocket benchmark for a running Ledgerline server.
//!
//! Two modes:
//!
//! * `latency` (the default): register `--users` users with one account each, open `--sessions`
//!   WebSocket sessions spread evenly over them, wait for every snapshot, then create
//!   transactions at a fixed open-loop `--rate` from `--writers` keep-alive HTTP connections for
//!   `--warmup` + `--duration` seconds. Every `transaction.created` frame is matched to its POST
//!   (by an id in the description) and timed: POST sent → frame, 201 → frame, POST sent → 201.
//!   Every socket's seq must go up by exactly one per event: gaps and duplicates are counted.
//! * `idle`: open `--sessions` sessions, wait for every snapshot and report the server's RSS
//!   before and after (`--server-pid`), then prove with a few live writes that the sockets of one
//!   user all get the event, and hold the sessions through at least one server ping.
//!
//! The client is meant to share a small machine with the server: by default it runs on one
//! thread (a current-thread tokio runtime), uses 4 KiB WebSocket read buffers and parses only the
//! few fields of each frame it needs.
//!
//! It only ever connects to the address in `--url`, which must be a loopback address, and stops
//! by itself after the configured times.
// One keep-alive HTTP client for both load tools: the same file as loadgen's.
#[path = "../loadgen/client.rs"]
mod client;
mod idle;
mod latency;
mod procfs;
mod report;
mod setup;
mod ws;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

/// Measure WebSocket fan-out latency and idle-session memory of a running Ledgerline server.
#[derive(Parser, Debug, Clone)]
#[command(name = "wsbench", version)]
pub struct Args {
    /// Base URL of the server (http only, loopback only).
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Users to register (each gets one account); the sessions are spread evenly over them.
    #[arg(long, global = true, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub users: u32,
    /// WebSocket sessions to open (session i belongs to user i % users).
    #[arg(long, global = true, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub sessions: u32,
    /// The server's process id: report its CPU use and (idle) its RSS.
    #[arg(long, global = true)]
    pub server_pid: Option<u32>,
    /// Tokio worker threads of this client (1 = a current-thread runtime).
    #[arg(long, global = true, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub threads: u32,
    /// Registrations in flight at once (argon2 makes each one cost the server 20-40 ms of CPU).
    #[arg(long, global = true, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub setup_concurrency: u32,
    /// WebSocket handshakes in flight at once while opening the sessions.
    #[arg(long, global = true, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub connect_concurrency: u32,
    /// Seconds one HTTP request or WebSocket handshake may take.
    #[arg(long, global = true, default_value_t = 30.0)]
    pub request_timeout: f64,
    /// Print one JSON object with the results on stdout instead of the text block.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub mode: Option<Mode>,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Mode {
    /// Commit → frame latency under a fixed rate of transaction creates (the default).
    Latency(LatencyArgs),
    /// How many idle sessions the server holds and what each costs in RSS.
    Idle(IdleArgs),
}

#[derive(Parser, Debug, Clone)]
pub struct LatencyArgs {
    /// Transaction creates per second (open loop: sent on schedule, whatever the answers do).
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of load before the measured part (not measured).
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Keep-alive HTTP connections sending the creates.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub writers: u32,
    /// Seconds to wait after the last create for the frames still on their way.
    #[arg(long, default_value_t = 5.0)]
    pub drain: f64,
}

#[derive(Parser, Debug, Clone)]
pub struct IdleArgs {
    /// Seconds to hold the open sessions after the RSS sample (more than the server's 15 s
    /// heartbeat, so that every socket answers at least one ping).
    #[arg(long, default_value_t = 20.0)]
    pub hold: f64,
    /// Transactions to create for user 0 to check that every one of its sockets gets them.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub verify_writes: u32,
    /// Open the sessions in this many equal batches, sampling the server's memory after each.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub steps: u32,
    /// Seconds to let the server settle before each RSS sample.
    #[arg(long, default_value_t = 2.0)]
    pub settle: f64,
}

/// Where to connect: the resolved loopback address and the `Host` header value.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub authority: String,
}

pub fn seconds(value: f64, name: &str) -> Result<Duration> {
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
            eprintln!("wsbench: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main(args: Args) -> Result<ExitCode> {
    let target = target(&args.url)?;
    let timeout = seconds(args.request_timeout, "request-timeout")?;
    if timeout.is_zero() {
        bail!("--request-timeout must be more than zero");
    }
    if args.sessions < args.users {
        bail!(
            "--sessions ({}) must be at least --users ({}): every user needs a socket",
            args.sessions,
            args.users
        );
    }
    let mode = match args.mode.clone() {
        Some(mode) => mode,
        None => Mode::Latency(
            LatencyArgs::try_parse_from(["latency"]).context("default latency options")?,
        ),
    };

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

    let passed = runtime.block_on(async move {
        match mode {
            Mode::Latency(latency) => latency::run(&args, &latency, &target, timeout).await,
            Mode::Idle(idle) => idle::run(&args, &idle, &target, timeout).await,
        }
    })?;
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
