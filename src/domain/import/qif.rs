//! QIF (Quicken Interchange Format) statements.
//!
//! Transactions come from `!Type:Bank`, `!Type:CCard`, `!Type:Cash`, `!Type:Oth A`,
//! `!Type:Oth L` (and any other non-list type, or no header at all); records end with `^`.
//! List sections (`!Account`, `!Type:Cat`, `!Type:Class`, `!Type:Memorized`, `!Type:Prices`,
//! `!Type:Security`, ...) are skipped, and so are `!Option`/`!Clear` lines. `!Type:Invst`
//! records are reported as row errors (investment actions are not cash transactions).
use serde::{Deserialize, Serialize};

use chrono::NaiveDate;

use super::{
    clip, decode_text, description_or, parse_amount, tidy, ImportError, ImportedRow, NumberFormat,
    Parsed, RowError,
};
use crate::domain::Currency;

/// How the file writes numeric dates: `1/31/2024` (US Quicken) or `31/01/2024`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QifDateOrder {
    MonthFirst,
    DayFirst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Transactions,
    Investment,
    /// `!Account`: each record names the account the following transactions belong to.
    Accounts,
    /// Another list type: records are skipped.
    List,
}

/// The fields of one record.
#[derive(Default)]
struct Record<'a> {
    line: usize,
    date: Option<&'a str>,
    amount: Option<&'a str>,
    /// `U` repeats `T` (sometimes with more precision); used only when `T` is absent.
    amount_u: Option<&'a str>,
    payee: Option<&'a str>,
    memo: Option<&'a str>,
    category: Option<&'a str>,
    number: Option<&'a str>,
    /// `N` of an `!Account` record.
    name: Option<&'a str>,
    has_fields: bool,
}

/// Parse a QIF file; `currency` is the account's currency, `dates` the order of day and month
/// in numeric dates (ISO `2024-01-31` dates are always understood).
pub fn parse_qif(
    input: &[u8],
    currency: Currency,
    dates: QifDateOrder,
) -> Result<Parsed, ImportError> {
    let text = decode_text(input)?;
    if text.trim().is_empty() {
        return Err(ImportError::Empty);
    }
    let looks_like_qif = text.lines().any(|l| {
        let l = l.trim();
        l == "^" || l.starts_with("!Type") || l.starts_with("!Account") || l.starts_with("!Option")
    });
    if !looks_like_qif {
        return Err(ImportError::NotQif);
    }

    // One convention for the whole file: `1.001` in a file that also has `-1,234.56` is 1001.
    let amounts = text.lines().find_map(|l| {
        let l = l.trim_start_matches([' ', '\t']);
        l.strip_prefix('T')
            .or_else(|| l.strip_prefix('U'))
            .and_then(|a| NumberFormat::decisive(a.trim(), currency))
    });
    let dates = Reading { dates, amounts };
    let mut parsed = Parsed::default();
    let mut section = Section::Transactions;
    let mut account: Option<String> = None;
    let mut record = Record::default();
    let mut buf = String::new();

    for (index, raw_line) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw_line.trim_end_matches(['\r', ' ', '\t']);
        let line = line.trim_start_matches([' ', '\t']);
        if line.is_empty() {
            continue;
        }
        if let Some(header) = line.strip_prefix('!') {
            if record.has_fields {
                // A header without a preceding `^`: close the open record.
                let done = std::mem::take(&mut record);
                emit(
                    done,
                    section,
                    &mut account,
                    currency,
                    dates,
                    &mut parsed,
                    &mut buf,
                );
            }
            let header = header.trim();
            let lower = header.to_ascii_lowercase();
            if lower.starts_with("option") || lower.starts_with("clear") {
                continue;
            }
            section = if lower.starts_with("account") {
                Section::Accounts
            } else if let Some(kind) = lower.strip_prefix("type:") {
                match kind.trim() {
                    "invst" | "port" => Section::Investment,
                    "cat" | "class" | "memorized" | "prices" | "security" | "payee"
                    | "template" | "budget" | "invitem" => Section::List,
                    _ => Section::Transactions,
                }
            } else {
                Section::List
            };
            if section == Section::Accounts {
                account = None;
            }
            continue;
        }
        if line.starts_with('^') {
            let done = std::mem::take(&mut record);
            emit(
                done,
                section,
                &mut account,
                currency,
                dates,
                &mut parsed,
                &mut buf,
            );
            continue;
        }
        let Some(code) = line.chars().next() else {
            continue;
        };
        let value = &line[code.len_utf8()..];
        if !record.has_fields {
            record.line = line_no;
            record.has_fields = true;
        }
        fn set<'a>(slot: &mut Option<&'a str>, value: &'a str) {
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        match code {
            'D' => set(&mut record.date, value),
            'T' => set(&mut record.amount, value),
            // `U` repeats `T` (sometimes with more precision); used only when `T` is absent.
            'U' => set(&mut record.amount_u, value),
            'P' => set(&mut record.payee, value),
            'M' => set(&mut record.memo, value),
            'L' => set(&mut record.category, value),
            'N' => {
                set(&mut record.number, value);
                set(&mut record.name, value);
            }
            // Splits (S, E, $, %), address (A), cleared (C), and anything else are ignored:
            // the record's total T is the row.
            _ => {}
        }
    }
    if record.has_fields {
        emit(
            record,
            section,
            &mut account,
            currency,
            dates,
            &mut parsed,
            &mut buf,
        );
    }
    Ok(parsed)
}

/// How this file writes dates and amounts.
#[derive(Clone, Copy)]
struct Reading {
    dates: QifDateOrder,
    /// The separators of the file's first amount that shows them unambiguously; `None` when
    /// no amount does (then each is guessed, and all read alike).
    amounts: Option<NumberFormat>,
}

fn emit(
    record: Record<'_>,
    section: Section,
    account: &mut Option<String>,
    currency: Currency,
    dates: Reading,
    parsed: &mut Parsed,
    buf: &mut String,
) {
    if !record.has_fields {
        return;
    }
    match section {
        Section::Accounts => {
            if let Some(name) = record.name.and_then(tidy) {
                *account = Some(name);
            }
        }
        Section::List => {}
        Section::Investment => parsed.errors.push(RowError {
            line: record.line,
            reason: "investment transactions (!Type:Invst) are not supported; skipped".into(),
        }),
        Section::Transactions => {
            let line = record.line;
            match convert(record, account.as_ref(), currency, dates, buf) {
                Ok(row) => parsed.rows.push(row),
                Err(reason) => parsed.errors.push(RowError { line, reason }),
            }
        }
    }
}

fn convert(
    record: Record<'_>,
    account: Option<&String>,
    currency: Currency,
    reading: Reading,
    buf: &mut String,
) -> Result<ImportedRow, String> {
    let date_text = record.date.ok_or("record has no date (D)")?;
    let date = parse_qif_date(date_text, reading.dates)?;
    let amount_text = record
        .amount
        .or(record.amount_u)
        .ok_or("record has no amount (T)")?;
    let amount_minor = parse_amount(
        amount_text,
        reading
            .amounts
            .unwrap_or_else(|| NumberFormat::guess(amount_text, currency)),
        currency,
        buf,
    )
    .map_err(|e| format!("amount {e}"))?;
    let payee = record.payee.and_then(tidy);
    let memo = record.memo.and_then(tidy);
    let (category, transfer_account) = match record.category.map(str::trim) {
        None | Some("") => (None, None),
        Some(l) => {
            // Drop a `/Class` suffix; `[Account]` is a transfer.
            let l = match (l.starts_with('['), l.find(']')) {
                (true, Some(close)) => &l[..=close],
                _ => l.split('/').next().unwrap_or(l),
            };
            match l.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                Some(other) => (None, tidy(other)),
                None => (tidy(l), None),
            }
        }
    };
    let external_id = record
        .number
        .map(|n| n.trim().trim_start_matches('#'))
        .filter(|n| !n.is_empty() && n.len() <= 20 && n.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string);
    let description = description_or(payee.clone(), None, memo.as_ref());
    let notes = memo.filter(|m| *m != description);
    Ok(ImportedRow {
        line: record.line,
        date,
        amount_minor,
        description,
        payee,
        notes,
        external_id,
        category,
        transfer_account,
        currency: None,
        account_hint: account.cloned(),
    })
}

/// Quicken dates: `1/31/2024`, `01/31/24`, `1/31'24`, `1/ 5' 4`, `31.01.2024`, `31-01-2024`,
/// and ISO `2024-01-31`. An apostrophe before the year means 2000 + year; other two-digit
/// years are 2000–2069 or 1970–1999.
fn parse_qif_date(text: &str, order: QifDateOrder) -> Result<NaiveDate, String> {
    let bad = || format!("date {:?} is not a date", clip(text.trim()));
    let apostrophe = text.contains('\'');
    let mut parts = [0u32; 3];
    let mut widths = [0usize; 3];
    let mut count = 0;
    for part in text.split(['/', '.', '-', '\'']) {
        let part = part.trim();
        if count == 3
            || part.is_empty()
            || part.len() > 4
            || !part.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        parts[count] = part.parse().map_err(|_| bad())?;
        widths[count] = part.len();
        count += 1;
    }
    if count != 3 {
        return Err(bad());
    }
    let (year, month, day) = if widths[0] == 4 {
        (parts[0], parts[1], parts[2])
    } else {
        let (m, d) = match order {
            QifDateOrder::MonthFirst => (parts[0], parts[1]),
            QifDateOrder::DayFirst => (parts[1], parts[0]),
        };
        let year = match widths[2] {
            4 | 3 => parts[2],
            _ if apostrophe => 2000 + parts[2],
            _ if parts[2] < 70 => 2000 + parts[2],
            _ => 1900 + parts[2],
        };
        (year, m, d)
    };
    let year = i32::try_from(year).map_err(|_| bad())?;
    NaiveDate::from_ymd_opt(year, month, day).ok_or_else(|| {
        let swapped = NaiveDate::from_ymd_opt(year, day, month).is_some() && widths[0] != 4;
        if swapped {
            format!(
                "date {:?} is not a valid date in the chosen day/month order (try the other order)",
                clip(text.trim())
            )
        } else {
            bad()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::import::testutil::{mutations, Rng};

    fn cur(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// A Quicken export: account list, a bank register with splits, a transfer, a class, a
    /// check number, bad records, a category list and an investment register.
    const QUICKEN: &str = "!Option:AutoSwitch\r
!Account\r
NChecking\r
TBank\r
^\r
NSavings\r
TBank\r
^\r
!Clear:AutoSwitch\r
!Account\r
NChecking\r
TBank\r
^\r
!Type:Bank \r
D1/31'24\r
T-1,234.56\r
CX\r
PSuper Market\r
MWeekly shop\r
LFood:Groceries\r
^\r
D01/15/2024\r
U2,500.00\r
T2,500.00\r
PACME Payroll\r
LIncome:Salary/Work\r
NDEP\r
^\r
D1/20'24\r
T-500.00\r
PTransfer to savings\r
L[Savings]\r
^\r
D1/25'24\r
T-100.00\r
PCostco\r
N1234\r
LHousehold\r
SFood:Groceries\r
EFood part\r
$-60.00\r
SHousehold\r
$-40.00\r
^\r
D2/30/2024\r
T-5.00\r
PBad date\r
^\r
D2/1/2024\r
PNo amount\r
^\r
D2/2/2024\r
T0.00\r
^\r
!Type:Cat\r
NFood\r
DFood and drink\r
E\r
^\r
!Type:Invst\r
D1/31'24\r
NBuy\r
YACME\r
I10.00\r
Q5\r
T50.00\r
^\r
!Account\r
NVisa\r
TCCard\r
^\r
!Type:CCard\r
D2/3/24\r
T-19.99\r
PBookshop\r
L[Checking]/Gifts\r
";

    #[test]
    fn quicken_export_with_splits_and_transfers() {
        let line_of = |text: &str| QUICKEN.lines().position(|l| l.trim() == text).unwrap() + 1;
        let parsed = parse_qif(QUICKEN.as_bytes(), cur("USD"), QifDateOrder::MonthFirst).unwrap();
        let summary: Vec<_> = parsed
            .rows
            .iter()
            .map(|r| {
                (
                    r.line,
                    r.date,
                    r.amount_minor,
                    r.description.as_str(),
                    r.category.as_deref(),
                    r.transfer_account.as_deref(),
                    r.account_hint.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    line_of("D1/31'24"),
                    date(2024, 1, 31),
                    -123_456,
                    "Super Market",
                    Some("Food:Groceries"),
                    None,
                    Some("Checking")
                ),
                (
                    line_of("D01/15/2024"),
                    date(2024, 1, 15),
                    250_000,
                    "ACME Payroll",
                    Some("Income:Salary"),
                    None,
                    Some("Checking")
                ),
                (
                    line_of("D1/20'24"),
                    date(2024, 1, 20),
                    -50_000,
                    "Transfer to savings",
                    None,
                    Some("Savings"),
                    Some("Checking")
                ),
                (
                    line_of("D1/25'24"),
                    date(2024, 1, 25),
                    -10_000,
                    "Costco",
                    Some("Household"),
                    None,
                    Some("Checking")
                ),
                (
                    line_of("D2/2/2024"),
                    date(2024, 2, 2),
                    0,
                    "(no description)",
                    None,
                    None,
                    Some("Checking")
                ),
                (
                    line_of("D2/3/24"),
                    date(2024, 2, 3),
                    -1999,
                    "Bookshop",
                    None,
                    Some("Checking"),
                    Some("Visa")
                ),
            ]
        );
        assert_eq!(parsed.rows[0].notes.as_deref(), Some("Weekly shop"));
        assert_eq!(parsed.rows[0].payee.as_deref(), Some("Super Market"));
        assert_eq!(parsed.rows[0].external_id, None);
        assert_eq!(parsed.rows[1].external_id, None, "N of DEP is not an id");
        assert_eq!(parsed.rows[3].external_id.as_deref(), Some("1234"));
        assert!(parsed.rows.iter().all(|r| r.currency.is_none()));
        let errors: Vec<_> = parsed
            .errors
            .iter()
            .map(|e| (e.line, e.reason.as_str()))
            .collect();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert_eq!(errors[0].0, line_of("D2/30/2024"));
        assert!(errors[0].1.contains("2/30/2024"), "{errors:?}");
        assert_eq!(errors[1].0, line_of("D2/1/2024"));
        assert!(errors[1].1.contains("no amount"), "{errors:?}");
        assert_eq!(errors[2].0, line_of("!Type:Invst") + 1);
        assert!(errors[2].1.contains("Invst"), "{errors:?}");
    }

    /// A German bank's QIF: day-first dotted dates, decimal commas, no account block, Latin-1.
    const GERMAN: &[u8] = b"!Type:Bank\n\
D31.01.2024\n\
T-1.234,56\n\
PM\xfcller\n\
^\n\
D01.02.2024\n\
T12,50\n\
MNur Memo\n\
^\n\
D01.13.2024\n\
T1,00\n\
^\n";

    #[test]
    fn day_first_and_decimal_comma() {
        let parsed = parse_qif(GERMAN, cur("EUR"), QifDateOrder::DayFirst).unwrap();
        assert_eq!(parsed.rows.len(), 2);
        assert_eq!(parsed.rows[0].date, date(2024, 1, 31));
        assert_eq!(parsed.rows[0].amount_minor, -123_456);
        assert_eq!(parsed.rows[0].payee.as_deref(), Some("Müller"));
        assert_eq!(parsed.rows[1].amount_minor, 1250);
        assert_eq!(parsed.rows[1].description, "Nur Memo");
        assert_eq!(parsed.rows[1].notes, None);
        assert_eq!(parsed.rows[1].account_hint, None);
        assert_eq!(parsed.errors.len(), 1);
        assert!(
            parsed.errors[0].reason.contains("try the other order"),
            "{:?}",
            parsed.errors
        );
        // The same file read month-first: most dates are invalid and say so.
        let parsed = parse_qif(GERMAN, cur("EUR"), QifDateOrder::MonthFirst).unwrap();
        let dates: Vec<_> = parsed.rows.iter().map(|r| r.date).collect();
        assert_eq!(dates, vec![date(2024, 1, 2), date(2024, 1, 13)]);
        assert_eq!(parsed.errors.len(), 1);
    }

    #[test]
    fn one_number_convention_per_file() {
        let file = b"!Type:Bank\nD01/02/2024\nT-1,234.56\n^\nD01/03/2024\nT-1.001\n^\nD01/04/2024\nT2,500\n^\n";
        let parsed = parse_qif(file, cur("EUR"), QifDateOrder::MonthFirst).unwrap();
        let amounts: Vec<_> = parsed.rows.iter().map(|r| r.amount_minor).collect();
        // `2,500` follows the file: a thousands comma, as in `-1,234.56`.
        assert_eq!(amounts, vec![-123_456, 250_000]);
        // `-1.001` is a decimal point there: three decimals, which EUR has not.
        assert_eq!(parsed.errors.len(), 1, "{:?}", parsed.errors);
        assert_eq!(parsed.errors[0].line, 5);
        assert!(
            parsed.errors[0].reason.contains("decimals"),
            "{:?}",
            parsed.errors
        );
    }

    #[test]
    fn qif_dates() {
        let mf = |s| parse_qif_date(s, QifDateOrder::MonthFirst);
        let df = |s| parse_qif_date(s, QifDateOrder::DayFirst);
        assert_eq!(mf("1/31/2024"), Ok(date(2024, 1, 31)));
        assert_eq!(mf("01/31/24"), Ok(date(2024, 1, 31)));
        assert_eq!(mf("1/31'24"), Ok(date(2024, 1, 31)));
        assert_eq!(mf(" 1/ 5' 4"), Ok(date(2004, 1, 5)));
        assert_eq!(mf("12/31/99"), Ok(date(1999, 12, 31)));
        assert_eq!(mf("2024-01-31"), Ok(date(2024, 1, 31)));
        assert_eq!(df("31.01.2024"), Ok(date(2024, 1, 31)));
        assert_eq!(df("31/01/24"), Ok(date(2024, 1, 31)));
        assert_eq!(df("31-01-2024"), Ok(date(2024, 1, 31)));
        for bad in [
            "",
            "1/31",
            "1/31/2024/5",
            "a/b/c",
            "1//2024",
            "99/99/99",
            "1/31/123456",
        ] {
            assert!(mf(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn whole_file_errors_and_minimal_files() {
        let c = cur("USD");
        assert_eq!(
            parse_qif(b"", c, QifDateOrder::MonthFirst),
            Err(ImportError::Empty)
        );
        assert_eq!(
            parse_qif(b"Date,Amount\n2024-01-01,1\n", c, QifDateOrder::MonthFirst),
            Err(ImportError::NotQif)
        );
        assert_eq!(
            parse_qif(b"<OFX><STMTTRN></OFX>", c, QifDateOrder::MonthFirst),
            Err(ImportError::NotQif)
        );
        // No header at all, LF only, no final ^.
        let parsed = parse_qif(
            b"D1/2/24\nT5\n^\nD1/3/24\nT-7.5",
            c,
            QifDateOrder::MonthFirst,
        )
        .unwrap();
        let amounts: Vec<_> = parsed.rows.iter().map(|r| r.amount_minor).collect();
        assert_eq!(amounts, vec![500, -750]);
        // Only lists: no rows, no errors.
        let parsed = parse_qif(b"!Type:Cat\nNFood\n^\n", c, QifDateOrder::MonthFirst).unwrap();
        assert_eq!(parsed, Parsed::default());
    }

    #[test]
    fn mutated_samples_never_panic() {
        let mut rng = Rng(0x0009_1f00);
        for sample in [QUICKEN.as_bytes(), GERMAN] {
            for input in mutations(sample, &mut rng, 400) {
                let _ = parse_qif(&input, cur("USD"), QifDateOrder::MonthFirst);
                let _ = parse_qif(&input, cur("JPY"), QifDateOrder::DayFirst);
            }
        }
    }
}
