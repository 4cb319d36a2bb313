//! Times `parse_csv` on 1,000,000 typical rows generated in memory:
//! `cargo run --release --example csv_speed`.
use std::fmt::Write as _;
use std::time::Instant;

use ledgerline::domain::import::{parse_csv, CsvMapping};
use ledgerline::domain::Currency;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const ROWS: usize = 1_000_000;
    let payees = [
        "Supermarket GmbH",
        "ACME Payroll",
        "City Utilities",
        "Coffee Bar",
        "Landlord",
    ];
    let mut csv = String::with_capacity(ROWS * 80);
    csv.push_str("Date,Amount,Description,Payee\n");
    let mut seed: u64 = 42;
    for i in 0..ROWS {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let cents = (seed >> 33) % 500_000;
        let sign = if seed & 1 == 0 { "-" } else { "" };
        let day = 1 + (i % 28);
        let month = 1 + (i / 28) % 12;
        writeln!(
            csv,
            "2024-{month:02}-{day:02},{sign}{}.{:02},\"CARD PAYMENT {i} REF {}\",{}",
            cents / 100,
            cents % 100,
            seed >> 40,
            payees[i % payees.len()]
        )?;
    }
    let mapping: CsvMapping = serde_json::from_str(
        r#"{"date": "Date", "amount": "Amount", "description": "Description", "payee": "Payee"}"#,
    )?;
    let currency = Currency::parse("EUR")?;
    let mut best = f64::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let parsed = parse_csv(csv.as_bytes(), &mapping, currency)?;
        let elapsed = start.elapsed().as_secs_f64();
        assert_eq!(parsed.rows.len(), ROWS);
        assert!(parsed.errors.is_empty());
        best = best.min(elapsed);
        println!(
            "parse_csv: {ROWS} rows, {} MB, {elapsed:.3} s",
            csv.len() / 1_000_000
        );
    }
    println!("best of 3: {best:.3} s");
    Ok(())
}
