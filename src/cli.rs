//! The command line: `serve` (the default), `migrate`, `user create`, and `healthcheck` (for the
//! container's HEALTHCHECK, which has no curl).
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{Config, Settings, DEFAULT_CONFIG_FILE};
use crate::domain::{Currency, DisplayName, Email, Locale, Password, Role, TimeZone};
use crate::identity::{service, Hasher, NewAccount};
use crate::store::{self, Db};

#[derive(Parser)]
#[command(
    name = "ledgerline",
    version,
    about = "Self-hosted personal-finance server"
)]
struct Cli {
    /// Configuration file (TOML). Default: ./ledgerline.toml when it exists.
    #[arg(long, short, global = true, env = "LEDGERLINE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Fill the database with example data.
    Seed {
        #[command(subcommand)]
        command: SeedCommand,
    },
    /// Exit 0 when the server at URL answers /healthz (for container health checks).
    #[command(hide = true)]
    Healthcheck {
        #[arg(long, default_value = "127.0.0.1:8080")]
        address: String,
    },
}

#[derive(Subcommand)]
enum SeedCommand {
    /// A demo user with twelve months of realistic transactions over several accounts and
    /// currencies; prints the user's password.
    Demo {
        #[arg(long, default_value = "demo@ledgerline.local")]
        email: String,
        /// How many months of history, ending this month.
        #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=120))]
        months: u32,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user. The password is read from a prompt, or from the first line of stdin.
    Create {
        #[arg(long)]
        email: String,
        /// Give the user the admin role.
        #[arg(long)]
        admin: bool,
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long, default_value = "USD")]
        base_currency: String,
        #[arg(long, default_value = "UTC")]
        timezone: String,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let (file, required) = match &cli.config {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
    };
    if let Some(Command::Healthcheck { address }) = &cli.command {
        return healthcheck(address);
    }
    let settings = match Config::load(&file, required).and_then(Config::validate) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ledgerline: {e}");
            return ExitCode::from(2);
        }
    };
    crate::telemetry::init(settings.log_format, &settings.log_level);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => crate::app::serve(settings),
        Command::Migrate => migrate(&settings),
        Command::User {
            command:
                UserCommand::Create {
                    email,
                    admin,
                    name,
                    base_currency,
                    timezone,
                },
        } => create_user(&settings, &email, admin, &name, &base_currency, &timezone),
        Command::Seed {
            command: SeedCommand::Demo { email, months },
        } => seed_demo(&settings, &email, months),
        Command::Healthcheck { .. } => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ledgerline: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let (_db, applied) = Db::open(&settings.database, 1)?;
    if applied.is_empty() {
        println!(
            "{}: up to date, no migration to apply",
            settings.database.redacted()
        );
    } else {
        println!(
            "{}: applied {} migration(s): {}",
            settings.database.redacted(),
            applied.len(),
            applied.join(", ")
        );
    }
    Ok(())
}

/// The password from an interactive prompt (asked twice), or the first line of piped stdin.
fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Repeat password: ")?;
        anyhow::ensure!(first == second, "the passwords do not match");
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .take(64 * 1024)
            .read_line(&mut line)?;
        let line = line.strip_suffix('\n').unwrap_or(&line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        Ok(line.to_string())
    }
}

fn create_user(
    settings: &Settings,
    email: &str,
    admin: bool,
    name: &str,
    base_currency: &str,
    timezone: &str,
) -> anyhow::Result<()> {
    let email = Email::parse(email).map_err(|m| anyhow::anyhow!("--email {m}"))?;
    let name = DisplayName::parse(name).map_err(|m| anyhow::anyhow!("--name {m}"))?;
    let base_currency =
        Currency::parse(base_currency).map_err(|m| anyhow::anyhow!("--base-currency {m}"))?;
    let timezone = TimeZone::parse(timezone).map_err(|m| anyhow::anyhow!("--timezone {m}"))?;
    let password =
        Password::parse(&read_password()?).map_err(|m| anyhow::anyhow!("the password {m}"))?;
    let hash = Hasher::hash_blocking(password.expose())?;
    let account = NewAccount {
        email,
        password,
        name,
        base_currency,
        timezone,
        locale: Locale::parse("en").map_err(|m| anyhow::anyhow!(m))?,
        role: if admin { Role::Admin } else { Role::User },
    };
    let (db, _) = Db::open(&settings.database, 1)?;
    let row = db
        .with_conn(|conn| service::insert_user(conn, &account, &hash, store::now()))
        .map_err(|e| match e {
            store::StoreError::UniqueViolation => {
                anyhow::anyhow!("a user with the email {} already exists", account.email)
            }
            other => other.into(),
        })?;
    println!("created {} {} ({})", row.role, row.email, row.id);
    Ok(())
}

fn seed_demo(settings: &Settings, email: &str, months: u32) -> anyhow::Result<()> {
    let seeded = crate::seed::demo(settings, email, months)?;
    println!(
        "demo user {} created with {} accounts and {} transactions\npassword: {}",
        seeded.email, seeded.accounts, seeded.transactions, seeded.password
    );
    Ok(())
}

fn healthcheck(address: &str) -> ExitCode {
    let probe = || -> anyhow::Result<()> {
        let mut stream = std::net::TcpStream::connect(address).context("connect")?;
        stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
        write!(
            stream,
            "GET /healthz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
        )?;
        let mut status = String::new();
        std::io::BufReader::new(stream).read_line(&mut status)?;
        anyhow::ensure!(
            status.split_whitespace().nth(1) == Some("200"),
            "answered {status}"
        );
        Ok(())
    };
    match probe() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("unhealthy: {e:#}");
            ExitCode::FAILURE
        }
    }
}
