//! Export to a plain-text accounting journal that both hledger (1.25+) and ledger-cli (3.x)
//! load with the same balances.
//!
//! Layout of the journal:
//! - `commodity` directives for every currency of the accounts, so both tools show exactly the
//!   currency's decimals (`commodity EUR` / `format 1000.00 EUR`; for currencies without minor
//!   units a bare `commodity JPY`, since hledger refuses a format without a decimal mark and
//!   ledger refuses one with a trailing mark).
//! - `account` directives for our accounts: assets (cash, checking, savings, investment,
//!   wallet) as `Assets:<Kind>:<Name>`, credit cards and loans as `Liabilities:<Kind>:<Name>`.
//! - One opening-balance transaction per account with a non-zero opening balance, against
//!   `Equity:Opening Balances`.
//! - One transaction per [`JournalTxn`], against `Expenses:<category>` when the amount is
//!   negative (money out) and `Income:<category>` otherwise (`Uncategorized` without one).
//! - One transaction per transfer (both legs sharing a `transfer_id`), each leg with its own
//!   explicit amount in its own commodity; see [`write_ledger_journal`].
//!
//! Every amount is written as `-12.50 EUR`: the number with exactly the currency's decimals and
//! no digit grouping, a space, the ISO code.
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{self, Write};

use chrono::NaiveDate;

use super::money::format_minor;
use super::Currency;

/// One of our accounts, as the journal needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalAccount {
    pub id: String,
    pub name: String,
    /// `cash`, `checking`, `savings`, `credit_card`, `loan`, `investment` or `wallet`; any
    /// other kind is exported as an asset named after the kind.
    pub kind: String,
    pub currency: Currency,
    pub opening_balance_minor: i64,
    pub opening_date: NaiveDate,
}

/// One leg of a transaction in one of our accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalTxn {
    pub id: String,
    pub date: NaiveDate,
    pub description: String,
    pub payee: Option<String>,
    pub account_id: String,
    /// In the account's currency; negative = money out.
    pub amount_minor: i64,
    /// `"Food:Groceries"`; ignored for transfers.
    pub category_path: Option<String>,
    /// Both legs of a transfer share it.
    pub transfer_id: Option<String>,
    pub notes: Option<String>,
    pub tags: Vec<String>,
}

/// Balancing account of opening balances.
pub const OPENING_BALANCES: &str = "Equity:Opening Balances";
/// Counterpart of a transfer leg whose other leg is not in the export (or does not match).
pub const UNMATCHED_TRANSFERS: &str = "Equity:Unmatched Transfers";
/// Where the difference of a same-currency transfer whose legs do not cancel goes.
pub const TRANSFER_FEES: &str = "Expenses:Transfer Fees";
pub const TRANSFER_GAINS: &str = "Income:Transfer Differences";

/// What `account` is called in the journal, before collisions with other accounts' names are
/// resolved: `Assets:Checking:Main`, `Liabilities:Credit Card:Visa`. When two accounts can
/// share a name, use [`journal_account_names`], which is what [`write_ledger_journal`] uses.
pub fn journal_account_name(account: &JournalAccount) -> String {
    let (top, kind) = match account.kind.trim() {
        "cash" => ("Assets", "Cash".to_string()),
        "checking" => ("Assets", "Checking".to_string()),
        "savings" => ("Assets", "Savings".to_string()),
        "investment" => ("Assets", "Investment".to_string()),
        "wallet" => ("Assets", "Wallet".to_string()),
        "credit_card" => ("Liabilities", "Credit Card".to_string()),
        "loan" => ("Liabilities", "Loan".to_string()),
        other => ("Assets", title_case(&segment(other, "Other"))),
    };
    format!("{top}:{kind}:{}", segment(&account.name, "Unnamed"))
}

/// The journal names of `accounts`, in the same order, unique: an account whose
/// [`journal_account_name`] is shared with another gets a short suffix from its id
/// (`Assets:Checking:Main #a1b2c3`: the last six letters and digits of the id, or the whole id
/// if that is not enough), the same whatever the order of `accounts`.
pub fn journal_account_names(accounts: &[JournalAccount]) -> Vec<String> {
    let base: Vec<String> = accounts.iter().map(journal_account_name).collect();
    let mut count: HashMap<&str, usize> = HashMap::new();
    for name in &base {
        *count.entry(name.as_str()).or_default() += 1;
    }
    let mut taken: HashSet<String> = base
        .iter()
        .filter(|n| count.get(n.as_str()) == Some(&1))
        .cloned()
        .collect();
    let mut names = Vec::with_capacity(accounts.len());
    for (account, name) in accounts.iter().zip(&base) {
        if count.get(name.as_str()) == Some(&1) {
            names.push(name.clone());
            continue;
        }
        let mut id: String = account.id.chars().filter(|c| c.is_alphanumeric()).collect();
        if id.is_empty() {
            id.push_str("id");
        }
        let tail: String = {
            let chars: Vec<char> = id.chars().collect();
            chars[chars.len().saturating_sub(6)..].iter().collect()
        };
        let mut candidates = vec![format!("{name} #{tail}"), format!("{name} #{id}")];
        candidates.extend(
            (2..)
                .take(accounts.len() + 1)
                .map(|n| format!("{name} #{id}-{n}")),
        );
        let unique = candidates
            .into_iter()
            .find(|c| !taken.contains(c))
            .unwrap_or_else(|| format!("{name} #{}", names.len()));
        taken.insert(unique.clone());
        names.push(unique);
    }
    names
}

/// Write the journal. Transactions can come in any order (they are written in the order given,
/// after the opening balances). Transfers: the two legs sharing a `transfer_id` become one
/// transaction, written when the second leg arrives, dated and described by the first leg seen
/// (the other leg keeps its own date as a `; [YYYY-MM-DD]` posting date if it differs). If the
/// legs are in one currency and do not cancel out, the difference goes to
/// [`TRANSFER_FEES`]/[`TRANSFER_GAINS`]; if they are in two currencies both tools infer the
/// exchange rate, which needs one leg out and one in: otherwise, and for a leg whose partner
/// never arrives, each leg is written against [`UNMATCHED_TRANSFERS`].
///
/// Fails with `InvalidInput` if a transaction names an account that is not in `accounts`, if
/// two accounts share an id, or if an amount cannot be negated (`i64::MIN`).
pub fn write_ledger_journal<W: Write>(
    out: &mut W,
    accounts: &[JournalAccount],
    txns: impl IntoIterator<Item = JournalTxn>,
) -> io::Result<()> {
    let mut out = io::BufWriter::new(out);
    let names = journal_account_names(accounts);
    let mut by_id: HashMap<&str, (&JournalAccount, &str)> = HashMap::new();
    for (account, name) in accounts.iter().zip(&names) {
        if by_id
            .insert(account.id.as_str(), (account, name.as_str()))
            .is_some()
        {
            return Err(invalid(format!(
                "two accounts have the id {:?}",
                account.id
            )));
        }
    }

    writeln!(
        out,
        "; Exported by Ledgerline. Loads in hledger and ledger-cli."
    )?;
    writeln!(out)?;
    let currencies: BTreeSet<(&str, u8)> = accounts
        .iter()
        .map(|a| (a.currency.code(), a.currency.exponent()))
        .collect();
    for (code, exponent) in &currencies {
        writeln!(out, "commodity {code}")?;
        if *exponent > 0 {
            writeln!(
                out,
                "    format {} {code}",
                format_minor(1000 * 10i64.pow(u32::from(*exponent)), *exponent)
            )?;
        }
    }
    if !currencies.is_empty() {
        writeln!(out)?;
    }
    for name in &names {
        writeln!(out, "account {name}")?;
    }
    if !names.is_empty() {
        writeln!(out)?;
    }

    for (account, name) in accounts.iter().zip(&names) {
        if account.opening_balance_minor == 0 {
            continue;
        }
        writeln!(
            out,
            "{} Opening balance",
            account.opening_date.format("%Y-%m-%d")
        )?;
        posting(
            &mut out,
            name,
            account.opening_balance_minor,
            account.currency,
            None,
        )?;
        posting(
            &mut out,
            OPENING_BALANCES,
            negate(account.opening_balance_minor)?,
            account.currency,
            None,
        )?;
        writeln!(out)?;
    }

    // Transfer legs waiting for their partner, with the order they arrived in.
    let mut pending: HashMap<String, (usize, JournalTxn)> = HashMap::new();
    let mut arrival = 0usize;
    for txn in txns {
        let leg = lookup(&by_id, &txn)?;
        match txn.transfer_id.clone() {
            None => regular(&mut out, &txn, leg)?,
            Some(transfer_id) => match pending.remove(&transfer_id) {
                Some((_, first)) => {
                    let first_leg = lookup(&by_id, &first)?;
                    transfer(&mut out, &first, first_leg, &txn, leg)?;
                }
                None => {
                    pending.insert(transfer_id, (arrival, txn));
                    arrival += 1;
                }
            },
        }
    }
    let mut unmatched: Vec<(usize, JournalTxn)> = pending.into_values().collect();
    unmatched.sort_by_key(|(order, _)| *order);
    for (_, txn) in unmatched {
        let leg = lookup(&by_id, &txn)?;
        unmatched_leg(&mut out, &txn, leg, "the other leg is not in this export")?;
    }
    out.flush()
}

type Leg<'a> = (&'a JournalAccount, &'a str);

fn lookup<'a>(by_id: &HashMap<&str, Leg<'a>>, txn: &JournalTxn) -> io::Result<Leg<'a>> {
    by_id.get(txn.account_id.as_str()).copied().ok_or_else(|| {
        invalid(format!(
            "transaction {:?} is in account {:?}, which is not among the exported accounts",
            txn.id, txn.account_id
        ))
    })
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

fn negate(minor: i64) -> io::Result<i64> {
    minor
        .checked_neg()
        .ok_or_else(|| invalid(format!("amount {minor} cannot be negated")))
}

fn posting<W: Write>(
    out: &mut W,
    account: &str,
    minor: i64,
    currency: Currency,
    comment: Option<&str>,
) -> io::Result<()> {
    write!(
        out,
        "    {account}  {} {}",
        format_minor(minor, currency.exponent()),
        currency.code()
    )?;
    match comment {
        Some(comment) => writeln!(out, "  ; {comment}"),
        None => writeln!(out),
    }
}

/// The transaction line: date, then `payee | description` (hledger reads the payee before the
/// `|`, ledger keeps the whole text as its payee) or just the description.
fn header<W: Write>(out: &mut W, date: NaiveDate, txn: &JournalTxn) -> io::Result<()> {
    let description = line_text(&txn.description);
    let payee = txn
        .payee
        .as_deref()
        .map(line_text)
        .filter(|p| !p.is_empty());
    let text = match (payee, description.is_empty()) {
        (Some(p), false) if p.eq_ignore_ascii_case(&description) => description,
        (Some(p), false) => format!("{p} | {description}"),
        (Some(p), true) => p,
        (None, false) => description,
        (None, true) => "No description".to_string(),
    };
    writeln!(out, "{} {text}", date.format("%Y-%m-%d"))
}

/// Notes as `; ` comment lines and tags as one `; :tag:` line each, the form both tools read as
/// a tag.
fn comments<W: Write>(out: &mut W, txns: &[&JournalTxn]) -> io::Result<()> {
    let mut seen_tags = HashSet::new();
    for txn in txns {
        if let Some(notes) = &txn.notes {
            for line in notes.lines() {
                let line = comment_text(line);
                if !line.is_empty() {
                    writeln!(out, "    ; {line}")?;
                }
            }
        }
    }
    for txn in txns {
        for tag in &txn.tags {
            let tag = tag_name(tag);
            if !tag.is_empty() && seen_tags.insert(tag.clone()) {
                writeln!(out, "    ; :{tag}:")?;
            }
        }
    }
    Ok(())
}

fn regular<W: Write>(out: &mut W, txn: &JournalTxn, (account, name): Leg<'_>) -> io::Result<()> {
    header(out, txn.date, txn)?;
    comments(out, &[txn])?;
    let top = if txn.amount_minor < 0 {
        "Expenses"
    } else {
        "Income"
    };
    let category = category_account(top, txn.category_path.as_deref());
    posting(out, name, txn.amount_minor, account.currency, None)?;
    posting(
        out,
        &category,
        negate(txn.amount_minor)?,
        account.currency,
        None,
    )?;
    writeln!(out)
}

fn transfer<W: Write>(
    out: &mut W,
    first: &JournalTxn,
    (first_account, first_name): Leg<'_>,
    second: &JournalTxn,
    (second_account, second_name): Leg<'_>,
) -> io::Result<()> {
    let same_currency = first_account.currency == second_account.currency;
    let opposite = (first.amount_minor < 0 && second.amount_minor > 0)
        || (first.amount_minor > 0 && second.amount_minor < 0);
    let difference = first.amount_minor.checked_add(second.amount_minor);
    if !same_currency && !opposite || same_currency && difference.is_none() {
        let reason = "its legs cannot be balanced against each other";
        unmatched_leg(out, first, (first_account, first_name), reason)?;
        return unmatched_leg(out, second, (second_account, second_name), reason);
    }
    header(out, first.date, first)?;
    comments(out, &[first, second])?;
    posting(
        out,
        first_name,
        first.amount_minor,
        first_account.currency,
        None,
    )?;
    let second_date =
        (second.date != first.date).then(|| format!("[{}]", second.date.format("%Y-%m-%d")));
    posting(
        out,
        second_name,
        second.amount_minor,
        second_account.currency,
        second_date.as_deref(),
    )?;
    if same_currency {
        let difference = difference.unwrap_or(0);
        if difference != 0 {
            let account = if difference > 0 {
                TRANSFER_GAINS
            } else {
                TRANSFER_FEES
            };
            posting(
                out,
                account,
                negate(difference)?,
                first_account.currency,
                None,
            )?;
        }
    }
    writeln!(out)
}

fn unmatched_leg<W: Write>(
    out: &mut W,
    txn: &JournalTxn,
    (account, name): Leg<'_>,
    reason: &str,
) -> io::Result<()> {
    header(out, txn.date, txn)?;
    writeln!(out, "    ; transfer: {reason}")?;
    comments(out, &[txn])?;
    posting(out, name, txn.amount_minor, account.currency, None)?;
    posting(
        out,
        UNMATCHED_TRANSFERS,
        negate(txn.amount_minor)?,
        account.currency,
        None,
    )?;
    writeln!(out)
}

fn category_account(top: &str, path: Option<&str>) -> String {
    let segments: Vec<String> = path
        .unwrap_or("")
        .split(':')
        .filter_map(|s| {
            let s = segment(s, "");
            (!s.is_empty()).then_some(s)
        })
        .collect();
    if segments.is_empty() {
        format!("{top}:Uncategorized")
    } else {
        format!("{top}:{}", segments.join(":"))
    }
}

/// One segment of an account name: no `:` (→ `-`), no `;` (→ `,`), no tabs, newlines or other
/// control characters, single spaces only, trimmed; `fallback` if nothing is left.
fn segment(text: &str, fallback: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = match c {
            ':' => '-',
            ';' => ',',
            c if c.is_whitespace() || c.is_control() => ' ',
            c => c,
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    let trimmed = out.trim_end();
    if trimmed.is_empty() {
        fallback.to_string()
    } else {
        trimmed.to_string()
    }
}

fn title_case(text: &str) -> String {
    text.split(['_', ' '])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Text for the transaction line: one line, single spaces, no `;` (a comment in hledger), no
/// `|` (hledger's payee separator), and no leading `*`, `!` or `(` (status marks and codes).
fn line_text(text: &str) -> String {
    let text: String = text
        .chars()
        .map(|c| match c {
            ';' => ',',
            '|' => '/',
            c => c,
        })
        .collect();
    let text = comment_text(&text);
    let text = text.trim_start_matches(['*', '!', ' ']);
    match text.strip_prefix('(') {
        // "(Refund) Shop" would be read as a transaction code: write "[Refund] Shop".
        Some(rest) => match rest.split_once(')') {
            Some((inside, after)) => format!("[{inside}]{after}"),
            None => format!("[{rest}"),
        },
        None => text.to_string(),
    }
}

/// Text for a comment line: one line, single spaces.
fn comment_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = if c.is_whitespace() || c.is_control() {
            ' '
        } else {
            c
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    out.trim_end().to_string()
}

/// A tag name both tools accept between colons: letters, digits, `-` and `_`.
fn tag_name(tag: &str) -> String {
    let mapped: String = tag
        .trim()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    mapped.trim_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::*;
    use crate::domain::money::parse_minor;

    fn cur(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 1, d).unwrap()
    }

    fn account(id: &str, name: &str, kind: &str, code: &str, opening: i64) -> JournalAccount {
        JournalAccount {
            id: id.into(),
            name: name.into(),
            kind: kind.into(),
            currency: cur(code),
            opening_balance_minor: opening,
            opening_date: day(1),
        }
    }

    fn txn(id: &str, d: u32, account: &str, amount: i64, description: &str) -> JournalTxn {
        JournalTxn {
            id: id.into(),
            date: day(d),
            description: description.into(),
            payee: None,
            account_id: account.into(),
            amount_minor: amount,
            category_path: None,
            transfer_id: None,
            notes: None,
            tags: vec![],
        }
    }

    fn leg(id: &str, d: u32, account: &str, amount: i64, transfer: &str) -> JournalTxn {
        JournalTxn {
            transfer_id: Some(transfer.into()),
            ..txn(id, d, account, amount, "Transfer")
        }
    }

    fn accounts() -> Vec<JournalAccount> {
        vec![
            account("acc-eur-1", "Main", "checking", "EUR", 100_000),
            account("acc-eur-2", "Main", "checking", "EUR", 0),
            account("acc-usd", "US Savings", "savings", "USD", 50_000),
            account("acc-jpy", "Yen: Wallet; cash", "wallet", "JPY", 20_000),
            account("acc-bhd", "Bahrain", "checking", "BHD", 1_500),
            account("acc-visa", "Visa", "credit_card", "EUR", -20_000),
            account("acc-loan", "Car  loan\t", "loan", "USD", -1_000_000),
            account("acc-inv", "Broker", "investment", "USD", 0),
        ]
    }

    fn txns() -> Vec<JournalTxn> {
        vec![
            JournalTxn {
                payee: Some("ACME GmbH".into()),
                category_path: Some("Salary".into()),
                ..txn("t1", 2, "acc-eur-1", 300_000, "Salary January")
            },
            JournalTxn {
                payee: Some("REWE | Markt".into()),
                category_path: Some("Food:Groceries".into()),
                notes: Some("weekly shop\r\nsecond line; with semicolon".into()),
                tags: vec![
                    "food".into(),
                    "weekly shop".into(),
                    "food".into(),
                    ":::".into(),
                ],
                ..txn("t2", 3, "acc-eur-1", -4_567, "Groceries")
            },
            // Cross-currency transfer, legs on different days, with another txn in between.
            leg("t3a", 10, "acc-eur-1", -10_000, "x1"),
            JournalTxn {
                category_path: Some("Food:Groceries".into()),
                ..txn("t4", 11, "acc-eur-1", 1_000, "(Refund) REWE")
            },
            leg("t3b", 12, "acc-usd", 10_850, "x1"),
            txn("t5", 5, "acc-jpy", -1_500, "*Ramen"),
            txn("t6", 6, "acc-bhd", 250, "Interest"),
            // Same-currency transfer: paying the card.
            leg("t7a", 15, "acc-eur-1", -20_000, "x2"),
            leg("t7b", 15, "acc-visa", 20_000, "x2"),
            JournalTxn {
                category_path: Some("Shopping::Books:".into()),
                ..txn("t8", 16, "acc-visa", -3_000, "Books")
            },
            // Same currency, legs differ by a fee.
            leg("t9a", 17, "acc-eur-1", -5_000, "x3"),
            leg("t9b", 18, "acc-eur-2", 4_950, "x3"),
            // The other leg is not exported.
            leg("t10", 19, "acc-usd", -2_000, "x4"),
            // JPY to BHD.
            leg("t11a", 20, "acc-jpy", -10_000, "x5"),
            leg("t11b", 20, "acc-bhd", 25_000, "x5"),
            // Loan payment from savings.
            leg("t12a", 21, "acc-usd", -30_000, "x6"),
            leg("t12b", 21, "acc-loan", 30_000, "x6"),
            txn("t13", 22, "acc-eur-2", 0, ""),
            // Cross-currency legs with the same sign cannot balance: both unmatched.
            leg("t14a", 23, "acc-usd", -100, "x7"),
            leg("t14b", 23, "acc-jpy", -100, "x7"),
            // Investment account buys nothing but gets a dividend.
            JournalTxn {
                category_path: Some("Dividends".into()),
                ..txn("t15", 24, "acc-inv", 1_234, "Dividend")
            },
        ]
    }

    /// Our expectation: opening balance + the sum of the account's amounts, in its currency.
    fn expected_balances(
        accounts: &[JournalAccount],
        txns: &[JournalTxn],
    ) -> BTreeMap<String, (i64, &'static str)> {
        let names = journal_account_names(accounts);
        accounts
            .iter()
            .zip(names)
            .map(|(a, name)| {
                let sum: i64 = txns
                    .iter()
                    .filter(|t| t.account_id == a.id)
                    .map(|t| t.amount_minor)
                    .sum();
                (name, (a.opening_balance_minor + sum, a.currency.code()))
            })
            .collect()
    }

    fn journal(accounts: &[JournalAccount], txns: Vec<JournalTxn>) -> String {
        let mut out = Vec::new();
        write_ledger_journal(&mut out, accounts, txns).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// A posting as this module writes it: `    ACCOUNT  AMOUNT CODE[  ; comment]`.
    fn parse_posting(line: &str) -> Option<(String, i64, String)> {
        let body = line.strip_prefix("    ")?;
        if body.starts_with(';') || body.starts_with("format ") {
            return None;
        }
        let body = body.split("  ; ").next()?;
        let (account, amount) = body.split_once("  ")?;
        let (number, code) = amount.trim().split_once(' ')?;
        let currency = cur(code);
        let minor = parse_minor(number, currency).ok()?;
        assert_eq!(
            format_minor(minor, currency.exponent()),
            number,
            "exact decimals in {line:?}"
        );
        Some((account.to_string(), minor, code.to_string()))
    }

    /// Check the journal text itself: every transaction balances per commodity (or, with two
    /// commodities, is one leg out and one leg in so an exchange rate can be inferred), account
    /// names are clean, and our accounts end with the expected balances.
    fn check_journal_text(text: &str, expected: &BTreeMap<String, (i64, &'static str)>) {
        let mut balances: BTreeMap<(String, String), i64> = BTreeMap::new();
        let mut transactions: Vec<Vec<(String, i64, String)>> = Vec::new();
        for line in text.lines() {
            if line.starts_with(|c: char| c.is_ascii_digit()) {
                transactions.push(Vec::new());
                let (date, description) = line.split_once(' ').unwrap();
                assert!(
                    NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok(),
                    "{line}"
                );
                assert!(!description.trim().is_empty(), "{line}");
                assert!(!description.starts_with(['*', '!', '(']), "{line}");
                assert!(!description.contains(';'), "{line}");
            } else if let Some(posting) = parse_posting(line) {
                let account = &posting.0;
                assert!(
                    !account.contains("  ") && !account.contains('\t') && !account.contains(';'),
                    "{line}"
                );
                assert!(
                    account.split(':').all(|s| !s.is_empty() && s.trim() == s),
                    "{line}"
                );
                transactions
                    .last_mut()
                    .expect("posting outside a transaction")
                    .push(posting);
            } else {
                assert!(
                    line.is_empty()
                        || line.starts_with("; ")
                        || line.starts_with("    ; ")
                        || line.starts_with("commodity ")
                        || line.starts_with("    format ")
                        || line.starts_with("account "),
                    "unexpected line {line:?}"
                );
            }
        }
        assert!(!transactions.is_empty());
        for postings in &transactions {
            assert!(postings.len() >= 2, "{postings:?}");
            let mut per_commodity: BTreeMap<&str, i64> = BTreeMap::new();
            for (account, minor, code) in postings {
                *per_commodity.entry(code).or_default() += minor;
                *balances.entry((account.clone(), code.clone())).or_default() += minor;
            }
            match per_commodity.len() {
                1 => assert_eq!(
                    per_commodity.values().sum::<i64>(),
                    0,
                    "unbalanced: {postings:?}"
                ),
                2 => {
                    assert_eq!(postings.len(), 2, "{postings:?}");
                    assert!(
                        postings[0].1.signum() == -postings[1].1.signum() && postings[0].1 != 0,
                        "{postings:?}"
                    );
                }
                _ => panic!("too many commodities: {postings:?}"),
            }
        }
        for (name, (minor, code)) in expected {
            let found = balances
                .get(&(name.clone(), code.to_string()))
                .copied()
                .unwrap_or(0);
            assert_eq!(found, *minor, "balance of {name} in the journal text");
        }
    }

    fn temp_journal(name: &str, text: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("ledgerline-{}-{name}.journal", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Run a tool; `None` if it is not installed.
    fn run(tool: &str, args: &[&str]) -> Option<String> {
        match Command::new(tool).args(args).output() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("{tool} is not on PATH: checked the journal text only");
                None
            }
            Err(e) => panic!("{tool} could not run: {e}"),
            Ok(out) => {
                assert!(
                    out.status.success(),
                    "{tool} {args:?} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                Some(String::from_utf8(out.stdout).unwrap())
            }
        }
    }

    type ToolBalances = BTreeMap<String, Vec<(i64, String)>>;

    fn amount_of(number: &str, code: &str, line: &str) -> (i64, String) {
        let currency = cur(code);
        let minor = parse_minor(number, currency).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(
            format_minor(minor, currency.exponent()),
            number,
            "the tool must show exactly the currency's decimals: {line}"
        );
        (minor, code.to_string())
    }

    /// `hledger -f FILE bal --flat -E -N --layout=bare -O csv`: rows of
    /// `"account","commodity","balance"`, one per account and commodity.
    fn hledger_balances(path: &Path) -> Option<ToolBalances> {
        let file = path.to_str().unwrap();
        let out = run(
            "hledger",
            &[
                "-f",
                file,
                "bal",
                "--flat",
                "-E",
                "-N",
                "--layout=bare",
                "-O",
                "csv",
            ],
        )?;
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some(r#""account","commodity","balance""#));
        let mut map = ToolBalances::new();
        for line in lines {
            let cells: Vec<&str> = line.split("\",\"").map(|c| c.trim_matches('"')).collect();
            assert_eq!(cells.len(), 3, "{line}");
            let entry = map.entry(cells[0].to_string()).or_default();
            if cells[2] != "0" {
                entry.push(amount_of(cells[2], cells[1], line));
            }
        }
        Some(map)
    }

    /// `ledger -f FILE bal --flat --no-total -E --balance-format '%(account)\t%(scrub(display_total))\n'`:
    /// `account<TAB>amount` lines; a multi-commodity balance continues on lines without a tab.
    fn ledger_balances(path: &Path) -> Option<ToolBalances> {
        let file = path.to_str().unwrap();
        let out = run(
            "ledger",
            &[
                "-f",
                file,
                "bal",
                "--flat",
                "--no-total",
                "-E",
                "--balance-format",
                "%(account)\\t%(scrub(display_total))\\n",
            ],
        )?;
        let mut map = ToolBalances::new();
        let mut current = String::new();
        for line in out.lines() {
            let amount = match line.split_once('\t') {
                Some((account, amount)) => {
                    current = account.to_string();
                    amount
                }
                None => line,
            };
            let entry = map.entry(current.clone()).or_default();
            let amount = amount.trim();
            if amount != "0" && !amount.is_empty() {
                let (number, code) = amount.split_once(' ').unwrap_or_else(|| panic!("{line}"));
                entry.push(amount_of(number, code, line));
            }
        }
        Some(map)
    }

    fn assert_tool_balances(
        tool: &str,
        found: &ToolBalances,
        expected: &BTreeMap<String, (i64, &'static str)>,
    ) {
        for (name, (minor, code)) in expected {
            let got = found.get(name).cloned().unwrap_or_default();
            let want = if *minor == 0 {
                vec![]
            } else {
                vec![(*minor, code.to_string())]
            };
            assert_eq!(got, want, "{tool}: balance of {name}");
        }
    }

    #[test]
    fn journal_balances_match_in_text_hledger_and_ledger() {
        let mut accounts = accounts();
        accounts.push(account("acc-empty", "Empty", "cash", "EUR", 0));
        let txns = txns();
        let expected = expected_balances(&accounts, &txns);
        assert!(
            expected.values().any(|(minor, _)| *minor == 0),
            "covers a zero balance"
        );
        let text = journal(&accounts, txns);
        check_journal_text(&text, &expected);
        let path = temp_journal("balances", &text);
        let hledger = hledger_balances(&path);
        let ledger = ledger_balances(&path);
        let _ = std::fs::remove_file(&path);
        if let Some(found) = &hledger {
            assert_tool_balances("hledger", found, &expected);
            // The category side is there too.
            assert_eq!(
                found["Expenses:Food:Groceries"],
                vec![(4_567, "EUR".to_string())]
            );
            assert_eq!(
                found["Income:Food:Groceries"],
                vec![(-1_000, "EUR".to_string())]
            );
            assert_eq!(
                found["Expenses:Transfer Fees"],
                vec![(50, "EUR".to_string())]
            );
        }
        if let Some(found) = &ledger {
            assert_tool_balances("ledger", found, &expected);
        }
        if let (Some(h), Some(l)) = (&hledger, &ledger) {
            let nonzero = |m: &ToolBalances| {
                m.iter()
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<BTreeMap<_, _>>()
            };
            assert_eq!(
                nonzero(h),
                nonzero(l),
                "hledger and ledger agree on every account"
            );
        }
    }

    #[test]
    fn an_empty_export_is_a_valid_journal() {
        let text = journal(&[], vec![]);
        assert!(text.starts_with("; "));
        let path = temp_journal("empty", &text);
        let h = hledger_balances(&path);
        let l = ledger_balances(&path);
        let _ = std::fs::remove_file(&path);
        assert!(h.is_none_or(|m| m.values().all(Vec::is_empty)));
        assert!(l.is_none_or(|m| m.values().all(Vec::is_empty)));
    }

    #[test]
    fn account_names() {
        let a = |name: &str, kind: &str| journal_account_name(&account("x", name, kind, "EUR", 0));
        assert_eq!(a("Main", "checking"), "Assets:Checking:Main");
        assert_eq!(a("Pocket", "cash"), "Assets:Cash:Pocket");
        assert_eq!(a("Rainy day", "savings"), "Assets:Savings:Rainy day");
        assert_eq!(a("Broker", "investment"), "Assets:Investment:Broker");
        assert_eq!(a("PayPal", "wallet"), "Assets:Wallet:PayPal");
        assert_eq!(a("Visa", "credit_card"), "Liabilities:Credit Card:Visa");
        assert_eq!(a("Car", "loan"), "Liabilities:Loan:Car");
        assert_eq!(a("Gold", "precious_metal"), "Assets:Precious Metal:Gold");
        assert_eq!(a("  a:b;c\t\n  d  ", "cash"), "Assets:Cash:a-b,c d");
        assert_eq!(a(" \t ", "cash"), "Assets:Cash:Unnamed");
        assert_eq!(a("x", ""), "Assets:Other:x");

        let names = journal_account_names(&[
            account(
                "0190a1b2-0000-7000-8000-00000000aaaa",
                "Main",
                "checking",
                "EUR",
                0,
            ),
            account(
                "0190a1b2-0000-7000-8000-00000000bbbb",
                "Main",
                "checking",
                "EUR",
                0,
            ),
            account("u3", "Main", "savings", "EUR", 0),
            account("same", "Twin", "cash", "EUR", 0),
            account("same", "Twin", "cash", "EUR", 0),
            account("", "Twin", "cash", "EUR", 0),
        ]);
        assert_eq!(names[0], "Assets:Checking:Main #00aaaa");
        assert_eq!(names[1], "Assets:Checking:Main #00bbbb");
        assert_eq!(
            names[2], "Assets:Savings:Main",
            "different kinds do not collide"
        );
        let unique: HashSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        // Independent of order.
        let reversed = journal_account_names(&[
            account(
                "0190a1b2-0000-7000-8000-00000000bbbb",
                "Main",
                "checking",
                "EUR",
                0,
            ),
            account(
                "0190a1b2-0000-7000-8000-00000000aaaa",
                "Main",
                "checking",
                "EUR",
                0,
            ),
        ]);
        assert_eq!(reversed, vec![names[1].clone(), names[0].clone()]);
    }

    #[test]
    fn transaction_text_formatting() {
        let accounts = [account("a", "Main", "checking", "EUR", 0)];
        let t = |t: JournalTxn| journal(&accounts, vec![t]);
        let text = t(JournalTxn {
            payee: Some("Shop; Inc".into()),
            notes: Some("line one\n\n  line   two  ".into()),
            tags: vec!["Trip 2024".into(), "a:b".into()],
            category_path: Some("Travel: Hotels ".into()),
            ..txn("t", 2, "a", -12_345, "(Refund) hotel  | night")
        });
        let body = text.rsplit("\n\n").nth(1).unwrap();
        assert_eq!(
            body,
            "2024-01-02 Shop, Inc | [Refund] hotel / night\n    ; line one\n    ; line two\n    ; :Trip-2024:\n    ; :a-b:\n    Assets:Checking:Main  -123.45 EUR\n    Expenses:Travel:Hotels  123.45 EUR"
        );
        // Payee equal to the description is not repeated; an empty description uses the payee.
        assert!(t(JournalTxn {
            payee: Some("rewe".into()),
            ..txn("t", 2, "a", 1, "REWE")
        })
        .contains("2024-01-02 REWE\n"));
        assert!(t(JournalTxn {
            payee: Some("Bob".into()),
            ..txn("t", 2, "a", 1, " ")
        })
        .contains("2024-01-02 Bob\n"));
        assert!(t(txn("t", 2, "a", 1, "!* \t ")).contains("2024-01-02 No description\n"));
    }

    #[test]
    fn commodity_directives_use_the_currency_decimals() {
        let accounts = [
            account("a", "A", "cash", "EUR", 0),
            account("b", "B", "cash", "JPY", 0),
            account("c", "C", "cash", "BHD", 0),
            account("d", "D", "cash", "EUR", 0),
        ];
        let text = journal(&accounts, vec![]);
        assert!(text.contains("commodity BHD\n    format 1000.000 BHD\ncommodity EUR\n    format 1000.00 EUR\ncommodity JPY\n\n"), "{text}");
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let accounts = [account("a", "Main", "checking", "EUR", 0)];
        let mut out = Vec::new();
        let err = write_ledger_journal(&mut out, &accounts, vec![txn("t", 2, "nope", 1, "x")])
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("nope"), "{err}");
        let twice = [
            account("a", "A", "cash", "EUR", 0),
            account("a", "B", "cash", "EUR", 0),
        ];
        assert!(write_ledger_journal(&mut Vec::new(), &twice, vec![]).is_err());
        let min = [account("a", "A", "cash", "EUR", i64::MIN)];
        assert!(write_ledger_journal(&mut Vec::new(), &min, vec![]).is_err());
        let err = write_ledger_journal(
            &mut Vec::new(),
            &accounts,
            vec![txn("t", 2, "a", i64::MIN, "x")],
        );
        assert!(err.is_err());
        // Same-currency legs whose sum overflows are written as unmatched legs, not a panic.
        let text = journal(
            &accounts,
            vec![
                leg("x", 2, "a", i64::MAX, "t"),
                leg("y", 2, "a", i64::MAX, "t"),
            ],
        );
        assert_eq!(text.matches(UNMATCHED_TRANSFERS).count(), 2);
    }
}
