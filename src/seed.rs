//! `ledgerline seed demo`: a demo user with twelve months of realistic money — salary, rent,
//! bills, groceries, eating out, a summer trip paid in dollars and an autumn one in yen, savings
//! and credit-card transfers, exchange rates — written through the same Ledger as the API, with a
//! progress bar. Deterministic: the same seed gives the same data.
use chrono::{Datelike, Months, NaiveDate};
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::actors::directory::{ask_ledger, Directory};
use crate::actors::ledger::{
    CreateAccount, CreateTransfer, Handoff, ImportChunk, ImportRow, ListCategories, NewAccount,
    NewTransfer, PutRates, RateInput,
};
use crate::app::Services;
use crate::config::Settings;
use crate::domain::ledger::{AccountKind, Rate, TxnSource};
use crate::domain::money::format_minor;
use crate::domain::{Currency, DisplayName, Email, Locale, Password, Role, TimeZone};
use crate::identity::NewAccount as NewUser;

/// What was created, for the closing message.
pub struct Seeded {
    pub email: String,
    pub password: String,
    pub transactions: usize,
    pub accounts: usize,
}

/// (from account, to account, amount, amount arriving if another currency, date, text)
type PlannedTransfer = (usize, usize, i64, Option<i64>, NaiveDate, &'static str);

struct Plan {
    rows: Vec<(usize, ImportRow)>,
    transfers: Vec<PlannedTransfer>,
    rates: Vec<(Currency, Currency, NaiveDate, &'static str)>,
}

fn cur(code: &str) -> anyhow::Result<Currency> {
    Currency::parse(code).map_err(|m| anyhow::anyhow!(m))
}

fn random_password(rng: &mut StdRng) -> String {
    const CHARS: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    (0..16)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// Seed the demo user. Runs its own actor system; call outside any runtime.
pub fn demo(settings: &Settings, email: &str, months: u32) -> anyhow::Result<Seeded> {
    let email = Email::parse(email).map_err(|m| anyhow::anyhow!("--email {m}"))?;
    actix::System::new().block_on(async move {
        let services = Services::start(settings).await?;
        let mut rng = StdRng::seed_from_u64(2026);
        let password = random_password(&mut rng);
        let user = services
            .identity
            .create_user(NewUser {
                email: email.clone(),
                password: Password::parse(&password).map_err(|m| anyhow::anyhow!(m))?,
                name: DisplayName::parse("Demo User").map_err(|m| anyhow::anyhow!(m))?,
                base_currency: cur("EUR")?,
                timezone: TimeZone::parse("Europe/Berlin").map_err(|m| anyhow::anyhow!(m))?,
                locale: Locale::parse("en").map_err(|m| anyhow::anyhow!(m))?,
                role: Role::User,
            })
            .await
            .map_err(|e| anyhow::anyhow!("creating {email}: {e}"))?;
        let directory = services.identity.directory().clone();
        let seeded = fill(&directory, user.id, &mut rng, months).await?;
        Ok(Seeded {
            email: email.to_string(),
            password,
            ..seeded
        })
    })
}

async fn fill(
    directory: &actix::Addr<Directory>,
    user: Uuid,
    rng: &mut StdRng,
    months: u32,
) -> anyhow::Result<Seeded> {
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::Berlin)
        .date_naive();
    let start = today
        .with_day(1)
        .and_then(|d| d.checked_sub_months(Months::new(months.saturating_sub(1))))
        .unwrap_or(today);
    let specs: [(&str, AccountKind, &str, &str); 6] = [
        ("Girokonto", AccountKind::Checking, "EUR", "2400.00"),
        ("Savings", AccountKind::Savings, "EUR", "8000.00"),
        ("Credit card", AccountKind::CreditCard, "EUR", "0"),
        ("Cash", AccountKind::Cash, "EUR", "150.00"),
        ("US travel card", AccountKind::Wallet, "USD", "0"),
        ("Japan IC card", AccountKind::Wallet, "JPY", "0"),
    ];
    let bar = ProgressBar::new(4);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:<28} [{bar:30}] {pos}/{len}")
            .map_err(|e| anyhow::anyhow!(e))?
            .progress_chars("=> "),
    );
    bar.set_message("accounts");
    let mut accounts = Vec::new();
    for (name, kind, currency, opening) in specs {
        let reply = ask_ledger(
            directory,
            user,
            CreateAccount {
                input: NewAccount {
                    name: name.into(),
                    kind,
                    currency: cur(currency)?,
                    opening_balance: Some(opening.into()),
                    opening_date: Some(start),
                    number_hint: Some(format!("{}", rng.gen_range(1000..9999))),
                },
                idempotency: None,
            },
        )
        .await?
        .map_err(|e| anyhow::anyhow!("creating account {name}: {e}"))?;
        let body: serde_json::Value = serde_json::from_str(&reply.body)?;
        let id: Uuid = body["id"].as_str().unwrap_or_default().parse()?;
        accounts.push((id, cur(currency)?));
    }
    bar.inc(1);

    let categories = ask_ledger(directory, user, ListCategories).await?;
    let category = |name: &str| -> Option<Uuid> {
        categories
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.id.parse().ok())
    };
    let plan = generate(rng, start, today, months);
    let total_rows = plan.rows.len();

    bar.set_message("transactions");
    bar.set_length(4 + total_rows as u64 / 100);
    for (account_index, (account_id, _)) in accounts.iter().enumerate() {
        let rows: Vec<ImportRow> = plan
            .rows
            .iter()
            .filter(|(a, _)| *a == account_index)
            .map(|(_, r)| {
                let mut r = r.clone();
                r.category_id = r.merchant.split('|').nth(1).and_then(&category);
                r.merchant = r.merchant.split('|').next().unwrap_or_default().to_string();
                r
            })
            .collect();
        let n = rows.len();
        if n == 0 {
            continue;
        }
        ask_ledger(
            directory,
            user,
            ImportChunk {
                account_id: *account_id,
                rows: Handoff::new(rows),
                next: None,
                source: TxnSource::Demo,
                import_id: Uuid::now_v7().to_string(),
                processed: 0,
                total: n,
                completed: None,
                report: None,
                idempotency: None,
            },
        )
        .await?
        .map_err(|e| anyhow::anyhow!("writing demo transactions: {e}"))?;
        bar.inc(n as u64 / 100);
    }
    bar.inc(1);

    bar.set_message("transfers");
    for (from, to, amount, to_amount, date, text) in &plan.transfers {
        let (from_id, from_cur) = accounts[*from];
        let (to_id, to_cur) = accounts[*to];
        ask_ledger(
            directory,
            user,
            CreateTransfer {
                input: NewTransfer {
                    from_account_id: from_id,
                    to_account_id: to_id,
                    amount: format_minor(*amount, from_cur.exponent()),
                    to_amount: to_amount.map(|v| format_minor(v, to_cur.exponent())),
                    date: *date,
                    description: (*text).into(),
                    notes: String::new(),
                    tags: Vec::new(),
                },
                idempotency: None,
            },
        )
        .await?
        .map_err(|e| anyhow::anyhow!("writing a demo transfer: {e}"))?;
    }
    bar.inc(1);

    bar.set_message("exchange rates");
    let rates = plan
        .rates
        .iter()
        .map(|(base, quote, date, rate)| {
            Ok(RateInput {
                base: *base,
                quote: *quote,
                date: *date,
                rate: Rate::parse(rate).map_err(|m| anyhow::anyhow!(m))?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    ask_ledger(directory, user, PutRates { rates })
        .await?
        .map_err(|e| anyhow::anyhow!("writing demo rates: {e}"))?;
    bar.inc(1);
    bar.finish_with_message("done");
    Ok(Seeded {
        email: String::new(),
        password: String::new(),
        transactions: total_rows + plan.transfers.len() * 2,
        accounts: accounts.len(),
    })
}

/// The demo year. Account indexes: 0 checking, 1 savings, 2 credit card, 3 cash, 4 USD, 5 JPY.
/// A row's merchant field carries `merchant|category` until categories are resolved.
fn generate(rng: &mut StdRng, start: NaiveDate, today: NaiveDate, months: u32) -> Plan {
    let mut rows = Vec::new();
    let mut transfers = Vec::new();
    let mut rates = Vec::new();
    let mut push = |account: usize,
                    date: NaiveDate,
                    cents: i64,
                    text: &str,
                    merchant: &str,
                    category: &str| {
        if date <= today {
            rows.push((
                account,
                ImportRow {
                    date,
                    amount: cents,
                    description: text.to_string(),
                    merchant: format!("{merchant}|{category}"),
                    notes: String::new(),
                    external_id: None,
                    category_id: None,
                    category_source: None,
                    confidence: None,
                    tags: Vec::new(),
                },
            ));
        }
    };
    let eur = Currency::parse("EUR").ok();
    let usd = Currency::parse("USD").ok();
    let jpy = Currency::parse("JPY").ok();
    for m in 0..months {
        let Some(month) = start.checked_add_months(Months::new(m)) else {
            continue;
        };
        let day = |d: u32| month.with_day(d.min(28)).unwrap_or(month);
        push(0, day(1), -115_000, "Rent", "Hausverwaltung Berlin", "Rent");
        push(
            0,
            day(5),
            -rng.gen_range(8_500..14_000),
            "Electricity and gas",
            "Vattenfall",
            "Utilities",
        );
        push(0, day(27), 345_000, "Salary", "ACME GmbH", "Salary");
        push(2, day(12), -2_999, "Mobile plan", "Telekom", "Phone");
        push(2, day(14), -3_990, "Fibre internet", "1&1", "Internet");
        push(2, day(16), -1_299, "Streaming", "Netflix", "Streaming");
        push(
            0,
            day(1),
            -4_900,
            "Monthly transit pass",
            "BVG",
            "Public transport",
        );
        push(
            1,
            day(28),
            rng.gen_range(500..1_200),
            "Interest",
            "Savings bank",
            "Interest & dividends",
        );
        for week in 0..4 {
            for _ in 0..rng.gen_range(2..4) {
                let shops = ["REWE", "Lidl", "Aldi Süd", "Edeka"];
                let shop = shops[rng.gen_range(0..shops.len())];
                let account = if rng.gen_bool(0.6) { 2 } else { 0 };
                push(
                    account,
                    day(1 + week * 7 + rng.gen_range(0..7)),
                    -rng.gen_range(1_800..12_000),
                    "Groceries",
                    shop,
                    "Groceries",
                );
            }
            for _ in 0..2 {
                push(
                    3,
                    day(1 + week * 7 + rng.gen_range(0..7)),
                    -rng.gen_range(280..450),
                    "Coffee",
                    "Bean Bar",
                    "Coffee",
                );
            }
        }
        for _ in 0..4 {
            let places = [
                "Pizzeria Roma",
                "Sushi Bar Kyoto",
                "Curry 36",
                "Café Einstein",
            ];
            let place = places[rng.gen_range(0..places.len())];
            push(
                2,
                day(rng.gen_range(1..29)),
                -rng.gen_range(1_500..8_000),
                "Dinner",
                place,
                "Restaurants",
            );
        }
        for _ in 0..2 {
            let items = [
                ("Zalando", "Clothing"),
                ("MediaMarkt", "Electronics"),
                ("IKEA", "Household"),
            ];
            let (shop, category) = items[rng.gen_range(0..items.len())];
            push(
                2,
                day(rng.gen_range(1..29)),
                -rng.gen_range(2_000..20_000),
                "Shopping",
                shop,
                category,
            );
        }
        if rng.gen_bool(0.3) {
            push(
                2,
                day(rng.gen_range(1..29)),
                rng.gen_range(1_000..5_000),
                "Refund",
                "Zalando",
                "Refunds",
            );
        }
        // Monthly transfers: savings, and paying off the card.
        transfers.push((0, 1, 50_000, None, day(28), "Monthly savings"));
        transfers.push((
            0,
            2,
            rng.gen_range(80_000..100_000),
            None,
            day(15),
            "Credit card payment",
        ));
        transfers.push((0, 3, 10_000, None, day(3), "ATM withdrawal"));
        // Rates at the start of each month.
        let usd_rate = ["1.0712", "1.0838", "1.0921", "1.0854", "1.0799", "1.0903"][m as usize % 6];
        let jpy_rate = ["158.4", "160.1", "161.7", "159.9", "162.3", "157.8"][m as usize % 6];
        if let (Some(e), Some(u), Some(j)) = (eur, usd, jpy) {
            rates.push((e, u, month, usd_rate));
            rates.push((e, j, month, jpy_rate));
        }
        // A summer trip in dollars and an autumn one in yen.
        if month.month() == 7 {
            transfers.push((0, 4, 110_000, Some(119_000), day(2), "Dollars for the trip"));
            for d in 3..10 {
                push(
                    4,
                    day(d),
                    -rng.gen_range(1_500..9_000),
                    "Meal",
                    "Diner",
                    "Restaurants",
                );
                push(
                    4,
                    day(d),
                    -rng.gen_range(500..3_000),
                    "Subway",
                    "MTA",
                    "Public transport",
                );
            }
            push(4, day(4), -42_000, "Hotel", "Hotel Chelsea", "Hotels");
        }
        if month.month() == 10 {
            transfers.push((0, 5, 50_000, Some(80_000), day(2), "Yen for the trip"));
            for d in 3..10 {
                push(
                    5,
                    day(d),
                    -rng.gen_range(800..4_500),
                    "Ramen",
                    "Ichiran",
                    "Restaurants",
                );
                push(
                    5,
                    day(d),
                    -rng.gen_range(200..1_200),
                    "Train",
                    "JR East",
                    "Public transport",
                );
            }
        }
    }
    transfers.retain(|t| t.4 <= today);
    rates.retain(|r| r.2 <= today);
    Plan {
        rows,
        transfers,
        rates,
    }
}
