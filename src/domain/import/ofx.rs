//! OFX and QFX statements: OFX 1.x SGML (leaf elements without closing tags, `OFXHEADER:100`
//! header lines) and OFX 2.x XML, read by one tolerant tokenizer.
//!
//! Every `STMTTRN` in the file is a row, across bank (`STMTRS`), credit-card (`CCSTMTRS`) and
//! investment-cash (`INVSTMTRS`/`INVBANKTRAN`) statements. A row's `account_hint` is its
//! statement's `ACCTID` and its `currency` the transaction's `CURRENCY/CURSYM`, else the
//! statement's `CURDEF`.
use std::borrow::Cow;

use chrono::NaiveDate;

use super::{
    clip, decode_text, description_or, parse_amount, tidy, ImportError, ImportedRow, NumberFormat,
    Parsed, RowError,
};
use crate::domain::Currency;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    Open(&'a str),
    Close(&'a str),
    /// `<TAG/>`: an empty element.
    Empty(&'a str),
    Text(&'a str),
}

/// Split the body into tags and trimmed non-empty text. Comments, processing instructions and
/// declarations are skipped; attributes are ignored; a truncated tag ends the input.
fn tokenize(text: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            push_text(&mut tokens, rest);
            break;
        };
        push_text(&mut tokens, &rest[..lt]);
        rest = &rest[lt..];
        let skip_to = |rest: &str, end: &str| rest.find(end).map(|i| i + end.len());
        let consumed = if rest.starts_with("<!--") {
            skip_to(rest, "-->")
        } else if rest.starts_with("<?") {
            skip_to(rest, "?>").or_else(|| skip_to(rest, ">"))
        } else if rest.starts_with("<!") {
            skip_to(rest, ">")
        } else {
            match rest.find('>') {
                Some(gt) => {
                    let inner = rest[1..gt].trim();
                    let (closing, inner) = match inner.strip_prefix('/') {
                        Some(name) => (true, name.trim_start()),
                        None => (false, inner),
                    };
                    let (empty, inner) = match inner.strip_suffix('/') {
                        Some(name) => (true, name),
                        None => (false, inner),
                    };
                    let name = inner
                        .split(|c: char| c.is_whitespace())
                        .next()
                        .unwrap_or("");
                    if !name.is_empty() {
                        tokens.push(match (closing, empty) {
                            (true, _) => Token::Close(name),
                            (false, true) => Token::Empty(name),
                            (false, false) => Token::Open(name),
                        });
                    }
                    Some(gt + 1)
                }
                None => None,
            }
        };
        match consumed {
            Some(n) => rest = &rest[n..],
            None => break,
        }
    }
    tokens
}

fn push_text<'a>(tokens: &mut Vec<Token<'a>>, text: &'a str) {
    let text = text.trim();
    if !text.is_empty() {
        tokens.push(Token::Text(text));
    }
}

/// Decode the XML/SGML character references OFX uses; unknown ones are kept as written.
fn unescape(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest.find(';').filter(|&semi| semi <= 10).and_then(|semi| {
            let name = &rest[1..semi];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ => {
                    let code =
                        if let Some(hex) = name.strip_prefix("#x").or(name.strip_prefix("#X")) {
                            u32::from_str_radix(hex, 16).ok()
                        } else if let Some(dec) = name.strip_prefix('#') {
                            dec.parse::<u32>().ok()
                        } else {
                            None
                        };
                    code.and_then(char::from_u32)
                }
            };
            c.map(|c| (c, semi + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The raw fields of one `STMTTRN`.
#[derive(Default)]
struct RawTxn {
    ordinal: usize,
    posted: Option<String>,
    user_date: Option<String>,
    amount: Option<String>,
    fitid: Option<String>,
    name: Option<String>,
    payee: Option<String>,
    memo: Option<String>,
    checknum: Option<String>,
    currency: Option<String>,
}

/// A statement's context, applied to its transactions when it closes (OFX puts `CURDEF`
/// before the transactions, but not every bank follows the order).
#[derive(Default)]
struct Statement {
    curdef: Option<String>,
    acctid: Option<String>,
    txns: Vec<RawTxn>,
}

/// Deepest nesting of aggregates tracked; deeper ones are ignored.
const MAX_DEPTH: usize = 64;

fn is_statement(tag: &str) -> bool {
    matches!(tag, "STMTRS" | "CCSTMTRS" | "INVSTMTRS")
}

/// Parse an OFX 1.x (SGML) or 2.x (XML) statement, QFX included. `currency` is the account's
/// currency, used for amounts whose statement declares no known currency.
pub fn parse_ofx(input: &[u8], currency: Currency) -> Result<Parsed, ImportError> {
    let text = decode_text(input)?;
    if text.trim().is_empty() {
        return Err(ImportError::Empty);
    }
    let start = find_ofx_root(&text).ok_or(ImportError::NotOfx)?;
    let tokens = tokenize(&text[start..]);

    let mut parsed = Parsed::default();
    let mut stack: Vec<String> = Vec::new();
    let mut statement = Statement::default();
    let mut txn: Option<RawTxn> = None;
    let mut ordinal = 0usize;
    let mut buf = String::new();

    let mut i = 0;
    while i < tokens.len() {
        let token = tokens[i];
        i += 1;
        match token {
            Token::Text(_) | Token::Empty(_) => {}
            Token::Open(name) => {
                let tag = name.to_ascii_uppercase();
                if let Some(Token::Text(value)) = tokens.get(i) {
                    // A leaf: `<TAG>value` (SGML) or `<TAG>value</TAG>` (XML).
                    i += 1;
                    let value = unescape(value);
                    leaf(&tag, &value, &stack, &mut statement, txn.as_mut());
                    continue;
                }
                if tag == "STMTTRN" {
                    if let Some(done) = txn.take() {
                        statement.txns.push(done);
                    }
                    ordinal += 1;
                    txn = Some(RawTxn {
                        ordinal,
                        ..RawTxn::default()
                    });
                } else if is_statement(&tag) {
                    let previous = std::mem::take(&mut statement);
                    finish(previous, currency, &mut parsed, &mut buf);
                }
                // Real OFX nests a dozen levels; a cap keeps hostile input linear.
                if stack.len() < MAX_DEPTH {
                    stack.push(tag);
                }
            }
            Token::Close(name) => {
                let tag = name.to_ascii_uppercase();
                let Some(at) = stack.iter().rposition(|open| *open == tag) else {
                    continue; // the closing tag of a leaf (XML), or stray
                };
                for closed in stack.drain(at..).rev() {
                    if closed == "STMTTRN" {
                        if let Some(done) = txn.take() {
                            statement.txns.push(done);
                        }
                    } else if is_statement(&closed) {
                        if let Some(done) = txn.take() {
                            statement.txns.push(done);
                        }
                        let previous = std::mem::take(&mut statement);
                        finish(previous, currency, &mut parsed, &mut buf);
                    }
                }
            }
        }
    }
    if let Some(done) = txn.take() {
        statement.txns.push(done);
    }
    finish(statement, currency, &mut parsed, &mut buf);
    Ok(parsed)
}

/// Byte offset of the `<OFX>` root element, case-insensitively.
fn find_ofx_root(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(4)).find(|&i| {
        bytes[i] == b'<'
            && bytes[i + 1..i + 4].eq_ignore_ascii_case(b"OFX")
            && matches!(bytes[i + 4], b'>' | b' ' | b'\t' | b'\r' | b'\n')
    })
}

/// Inside the current `STMTTRN`, is `tag` among the open aggregates?
fn inside(stack: &[String], tag: &str) -> bool {
    stack
        .iter()
        .rev()
        .take_while(|open| *open != "STMTTRN")
        .any(|open| open == tag)
}

fn leaf(
    tag: &str,
    value: &str,
    stack: &[String],
    statement: &mut Statement,
    txn: Option<&mut RawTxn>,
) {
    let set = |slot: &mut Option<String>| {
        if slot.is_none() {
            *slot = Some(value.to_string());
        }
    };
    match txn {
        Some(txn) => match tag {
            "DTPOSTED" => set(&mut txn.posted),
            "DTUSER" => set(&mut txn.user_date),
            "TRNAMT" => set(&mut txn.amount),
            "FITID" => set(&mut txn.fitid),
            "NAME" if inside(stack, "PAYEE") => set(&mut txn.payee),
            "NAME" if !inside(stack, "BANKACCTTO") && !inside(stack, "CCACCTTO") => {
                set(&mut txn.name)
            }
            // Non-standard but common in QFX: `<PAYEE>text` as a leaf.
            "PAYEE" => set(&mut txn.payee),
            "MEMO" => set(&mut txn.memo),
            "CHECKNUM" => set(&mut txn.checknum),
            "CURSYM" if inside(stack, "CURRENCY") => set(&mut txn.currency),
            _ => {}
        },
        None => match tag {
            "CURDEF" => set(&mut statement.curdef),
            "ACCTID"
                if stack.iter().any(|open| {
                    matches!(open.as_str(), "BANKACCTFROM" | "CCACCTFROM" | "INVACCTFROM")
                }) =>
            {
                set(&mut statement.acctid)
            }
            _ => {}
        },
    }
}

fn finish(statement: Statement, fallback: Currency, parsed: &mut Parsed, buf: &mut String) {
    let acctid = statement.acctid.as_deref().and_then(tidy);
    let curdef = statement.curdef.as_deref().and_then(tidy);
    for raw in statement.txns {
        let ordinal = raw.ordinal;
        match convert(raw, curdef.as_deref(), acctid.as_ref(), fallback, buf) {
            Ok(row) => parsed.rows.push(row),
            Err(reason) => parsed.errors.push(RowError {
                line: ordinal,
                reason,
            }),
        }
    }
}

fn convert(
    raw: RawTxn,
    curdef: Option<&str>,
    acctid: Option<&String>,
    fallback: Currency,
    buf: &mut String,
) -> Result<ImportedRow, String> {
    let context = raw
        .fitid
        .as_deref()
        .map(|id| format!(" (FITID {:?})", clip(id)))
        .unwrap_or_default();
    let date_text = raw
        .posted
        .as_deref()
        .or(raw.user_date.as_deref())
        .ok_or_else(|| format!("transaction has no DTPOSTED{context}"))?;
    let date = parse_ofx_date(date_text)
        .ok_or_else(|| format!("DTPOSTED {:?} is not a date{context}", clip(date_text)))?;
    let currency_code = raw
        .currency
        .as_deref()
        .and_then(tidy)
        .or_else(|| curdef.map(str::to_string))
        .map(|c| c.to_ascii_uppercase());
    let amount_currency = currency_code
        .as_deref()
        .and_then(|c| Currency::parse(c).ok())
        .unwrap_or(fallback);
    let amount_text = raw
        .amount
        .as_deref()
        .ok_or_else(|| format!("transaction has no TRNAMT{context}"))?;
    // OFX amounts have no digit grouping; some banks write a decimal comma.
    let format = if amount_text.contains(',') && !amount_text.contains('.') {
        NumberFormat {
            decimal: ',',
            thousands: None,
        }
    } else {
        NumberFormat::DOT
    };
    let amount_minor = parse_amount(amount_text, format, amount_currency, buf)
        .map_err(|e| format!("TRNAMT {e}{context}"))?;
    let name = raw.name.as_deref().and_then(tidy);
    let payee = raw.payee.as_deref().and_then(tidy).or_else(|| name.clone());
    let memo = raw.memo.as_deref().and_then(tidy);
    let checknum = raw.checknum.as_deref().and_then(tidy);
    let description = description_or(name, payee.as_ref(), memo.as_ref());
    let mut notes = memo.filter(|m| *m != description);
    if let Some(check) = checknum {
        let check = format!("Check {check}");
        notes = Some(match notes {
            Some(n) => format!("{n} ({check})"),
            None => check,
        });
    }
    Ok(ImportedRow {
        line: raw.ordinal,
        date,
        amount_minor,
        description,
        payee,
        notes,
        external_id: raw.fitid.as_deref().and_then(tidy),
        category: None,
        transfer_account: None,
        currency: currency_code,
        account_hint: acctid.cloned(),
    })
}

/// `YYYYMMDD` followed by anything (`HHMMSS`, `.XXX`, `[-5:EST]`): the date as written, in the
/// bank's local time zone (the time and zone are not used to shift it).
fn parse_ofx_date(text: &str) -> Option<NaiveDate> {
    let digits = text.trim().as_bytes().get(..8)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| {
        digits[range]
            .iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
    };
    let year = i32::try_from(number(0..4)).ok()?;
    NaiveDate::from_ymd_opt(year, number(4..6), number(6..8))
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

    /// OFX 1.02 SGML from a US bank: header lines, unclosed leaf elements, a checking statement
    /// and a credit-card statement in one file, an entity, a decimal comma, bad transactions.
    const SGML_102: &str = "OFXHEADER:100\r
DATA:OFXSGML\r
VERSION:102\r
SECURITY:NONE\r
ENCODING:USASCII\r
CHARSET:1252\r
COMPRESSION:NONE\r
OLDFILEUID:NONE\r
NEWFILEUID:NONE\r
\r
<OFX>\r
<SIGNONMSGSRSV1>\r
<SONRS>\r
<STATUS>\r
<CODE>0\r
<SEVERITY>INFO\r
</STATUS>\r
<DTSERVER>20240201120000[-5:EST]\r
<LANGUAGE>ENG\r
<INTU.BID>3000\r
</SONRS>\r
</SIGNONMSGSRSV1>\r
<BANKMSGSRSV1>\r
<STMTTRNRS>\r
<TRNUID>1\r
<STATUS>\r
<CODE>0\r
<SEVERITY>INFO\r
</STATUS>\r
<STMTRS>\r
<CURDEF>USD\r
<BANKACCTFROM>\r
<BANKID>121000248\r
<ACCTID>1234567890\r
<ACCTTYPE>CHECKING\r
</BANKACCTFROM>\r
<BANKTRANLIST>\r
<DTSTART>20240101\r
<DTEND>20240131\r
<STMTTRN>\r
<TRNTYPE>DEBIT\r
<DTPOSTED>20240105120000.000[-5:EST]\r
<TRNAMT>-1234.56\r
<FITID>2024010501\r
<NAME>AT&amp;T WIRELESS\r
<MEMO>AUTOPAY   JAN\r
</STMTTRN>\r
<STMTTRN>\r
<TRNTYPE>CHECK\r
<DTPOSTED>20240110\r
<TRNAMT>-45.00\r
<FITID>2024011001\r
<CHECKNUM>1001\r
<NAME>CHECK 1001\r
</STMTTRN>\r
<STMTTRN>\r
<TRNTYPE>XFER\r
<DTPOSTED>20240112\r
<TRNAMT>-200.00\r
<FITID>2024011201\r
<NAME>TRANSFER TO SAVINGS\r
<BANKACCTTO>\r
<BANKID>121000248\r
<ACCTID>999\r
<ACCTTYPE>SAVINGS\r
</BANKACCTTO>\r
</STMTTRN>\r
<STMTTRN>\r
<TRNTYPE>CREDIT\r
<DTPOSTED>20240115\r
<TRNAMT>+2500.00\r
<FITID>2024011501\r
<NAME>ACME PAYROLL\r
<MEMO>\r
</STMTTRN>\r
<STMTTRN>\r
<TRNTYPE>DEBIT\r
<DTPOSTED>20240116\r
<FITID>NOAMOUNT\r
<NAME>NO AMOUNT\r
</STMTTRN>\r
<STMTTRN>\r
<TRNTYPE>DEBIT\r
<DTPOSTED>2024\r
<TRNAMT>-1.00\r
<FITID>BADDATE\r
</STMTTRN>\r
</BANKTRANLIST>\r
<LEDGERBAL>\r
<BALAMT>5000.00\r
<DTASOF>20240131\r
</LEDGERBAL>\r
</STMTRS>\r
</STMTTRNRS>\r
</BANKMSGSRSV1>\r
<CREDITCARDMSGSRSV1>\r
<CCSTMTTRNRS>\r
<TRNUID>2\r
<CCSTMTRS>\r
<CURDEF>EUR\r
<CCACCTFROM>\r
<ACCTID>4111111111111111\r
</CCACCTFROM>\r
<BANKTRANLIST>\r
<STMTTRN>\r
<TRNTYPE>DEBIT\r
<DTPOSTED>20240120\r
<TRNAMT>-12,50\r
<FITID>CC1\r
<PAYEE>\r
<NAME>Café de Flore\r
<ADDR1>172 Bd Saint-Germain\r
<CITY>Paris\r
<POSTALCODE>75006\r
</PAYEE>\r
</STMTTRN>\r
</BANKTRANLIST>\r
</CCSTMTRS>\r
</CCSTMTTRNRS>\r
</CREDITCARDMSGSRSV1>\r
</OFX>\r
";

    #[test]
    fn sgml_ofx_102() {
        let parsed = parse_ofx(SGML_102.as_bytes(), cur("USD")).unwrap();
        let summary: Vec<_> = parsed
            .rows
            .iter()
            .map(|r| {
                (
                    r.line,
                    r.date,
                    r.amount_minor,
                    r.description.as_str(),
                    r.external_id.as_deref(),
                    r.currency.as_deref(),
                    r.account_hint.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    1,
                    date(2024, 1, 5),
                    -123_456,
                    "AT&T WIRELESS",
                    Some("2024010501"),
                    Some("USD"),
                    Some("1234567890")
                ),
                (
                    2,
                    date(2024, 1, 10),
                    -4500,
                    "CHECK 1001",
                    Some("2024011001"),
                    Some("USD"),
                    Some("1234567890")
                ),
                (
                    3,
                    date(2024, 1, 12),
                    -20_000,
                    "TRANSFER TO SAVINGS",
                    Some("2024011201"),
                    Some("USD"),
                    Some("1234567890")
                ),
                (
                    4,
                    date(2024, 1, 15),
                    250_000,
                    "ACME PAYROLL",
                    Some("2024011501"),
                    Some("USD"),
                    Some("1234567890")
                ),
                (
                    7,
                    date(2024, 1, 20),
                    -1250,
                    "Café de Flore",
                    Some("CC1"),
                    Some("EUR"),
                    Some("4111111111111111")
                ),
            ]
        );
        let first = &parsed.rows[0];
        assert_eq!(first.payee.as_deref(), Some("AT&T WIRELESS"));
        assert_eq!(first.notes.as_deref(), Some("AUTOPAY JAN"));
        assert_eq!(parsed.rows[1].notes.as_deref(), Some("Check 1001"));
        assert_eq!(parsed.rows[3].notes, None);
        assert_eq!(parsed.rows[4].payee.as_deref(), Some("Café de Flore"));
        let errors: Vec<_> = parsed
            .errors
            .iter()
            .map(|e| (e.line, e.reason.as_str()))
            .collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].0, 5);
        assert!(
            errors[0].1.contains("TRNAMT") && errors[0].1.contains("NOAMOUNT"),
            "{errors:?}"
        );
        assert_eq!(errors[1].0, 6);
        assert!(errors[1].1.contains("DTPOSTED"), "{errors:?}");
    }

    /// OFX 2.2 XML from a European bank, with a foreign-currency transaction, a PAYEE
    /// aggregate, an empty element, a comment and a self-closing tag.
    const XML_220: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<?OFX OFXHEADER="200" VERSION="220" SECURITY="NONE" OLDFILEUID="NONE" NEWFILEUID="NONE"?>
<!-- exported by Example Bank -->
<OFX>
  <SIGNONMSGSRSV1>
    <SONRS>
      <STATUS><CODE>0</CODE><SEVERITY>INFO</SEVERITY></STATUS>
      <DTSERVER>20240201083000.000[+1:CET]</DTSERVER>
      <LANGUAGE>DEU</LANGUAGE>
    </SONRS>
  </SIGNONMSGSRSV1>
  <BANKMSGSRSV1>
    <STMTTRNRS>
      <TRNUID>1001</TRNUID>
      <STATUS><CODE>0</CODE><SEVERITY>INFO</SEVERITY></STATUS>
      <STMTRS>
        <CURDEF>EUR</CURDEF>
        <BANKACCTFROM>
          <BANKID>37040044</BANKID>
          <ACCTID>DE89370400440532013000</ACCTID>
          <ACCTTYPE>CHECKING</ACCTTYPE>
        </BANKACCTFROM>
        <BANKTRANLIST>
          <DTSTART>20240101</DTSTART>
          <DTEND>20240131</DTEND>
          <STMTTRN>
            <TRNTYPE>POS</TRNTYPE>
            <DTPOSTED>20240131000000.000[+1:CET]</DTPOSTED>
            <DTUSER>20240130</DTUSER>
            <TRNAMT>-42.10</TRNAMT>
            <FITID>A1</FITID>
            <NAME>Bäckerei Müller &amp; Söhne</NAME>
            <MEMO>Kartenzahlung</MEMO>
          </STMTTRN>
          <STMTTRN>
            <TRNTYPE>DEBIT</TRNTYPE>
            <DTPOSTED>20240125</DTPOSTED>
            <TRNAMT>-10.00</TRNAMT>
            <FITID>A2</FITID>
            <NAME>GITHUB.COM</NAME>
            <CURRENCY><CURRATE>0.9216</CURRATE><CURSYM>USD</CURSYM></CURRENCY>
          </STMTTRN>
          <STMTTRN>
            <TRNTYPE>DIRECTDEBIT</TRNTYPE>
            <DTPOSTED>20240103</DTPOSTED>
            <TRNAMT>-850.00</TRNAMT>
            <FITID>A3</FITID>
            <PAYEE>
              <NAME>Hausverwaltung GmbH</NAME>
              <ADDR1>Hauptstr. 1</ADDR1>
              <CITY>Berlin</CITY><STATE/><POSTALCODE>10115</POSTALCODE>
            </PAYEE>
            <MEMO></MEMO>
          </STMTTRN>
          <STMTTRN>
            <TRNTYPE>OTHER</TRNTYPE>
            <DTUSER>20240102</DTUSER>
            <TRNAMT>0.5</TRNAMT>
          </STMTTRN>
        </BANKTRANLIST>
        <LEDGERBAL><BALAMT>1000.00</BALAMT><DTASOF>20240131</DTASOF></LEDGERBAL>
      </STMTRS>
    </STMTTRNRS>
  </BANKMSGSRSV1>
</OFX>
"#;

    #[test]
    fn xml_ofx_220() {
        let parsed = parse_ofx(XML_220.as_bytes(), cur("EUR")).unwrap();
        assert_eq!(parsed.errors, vec![]);
        let rows = &parsed.rows;
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].date, date(2024, 1, 31), "DTPOSTED wins over DTUSER");
        assert_eq!(rows[0].amount_minor, -4210);
        assert_eq!(rows[0].description, "Bäckerei Müller & Söhne");
        assert_eq!(rows[0].notes.as_deref(), Some("Kartenzahlung"));
        assert_eq!(
            rows[0].account_hint.as_deref(),
            Some("DE89370400440532013000")
        );
        assert_eq!(rows[1].currency.as_deref(), Some("USD"));
        assert_eq!(rows[1].amount_minor, -1000);
        assert_eq!(rows[2].description, "Hausverwaltung GmbH");
        assert_eq!(rows[2].payee.as_deref(), Some("Hausverwaltung GmbH"));
        assert_eq!(rows[2].notes, None);
        assert_eq!(rows[3].date, date(2024, 1, 2));
        assert_eq!(rows[3].amount_minor, 50);
        assert_eq!(rows[3].description, "(no description)");
        assert_eq!(rows[3].external_id, None);
        assert_eq!(rows[3].currency.as_deref(), Some("EUR"));
    }

    #[test]
    fn statement_currency_sets_the_exponent() {
        let jpy = "<OFX><BANKMSGSRSV1><STMTTRNRS><STMTRS><BANKTRANLIST>\
<STMTTRN><DTPOSTED>20240105<TRNAMT>-1500<FITID>1<NAME>Ramen</STMTTRN>\
</BANKTRANLIST><CURDEF>jpy</STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>";
        let parsed = parse_ofx(jpy.as_bytes(), cur("EUR")).unwrap();
        assert_eq!(parsed.rows[0].amount_minor, -1500);
        assert_eq!(parsed.rows[0].currency.as_deref(), Some("JPY"));
        // No CURDEF: the account's currency.
        let plain = "<OFX><STMTTRN><DTPOSTED>20240105<TRNAMT>-1.5<NAME>x</STMTTRN></OFX>";
        let parsed = parse_ofx(plain.as_bytes(), cur("BHD")).unwrap();
        assert_eq!(parsed.rows[0].amount_minor, -1500);
        assert_eq!(parsed.rows[0].currency, None);
        assert_eq!(parsed.rows[0].account_hint, None);
    }

    #[test]
    fn missing_closing_tags_and_truncation() {
        let sloppy = "<OFX><STMTRS><CURDEF>USD<BANKTRANLIST>\
<STMTTRN><DTPOSTED>20240105<TRNAMT>-1.00<FITID>a\
<STMTTRN><DTPOSTED>20240106<TRNAMT>-2.00<FITID>b\
</BANKTRANLIST></STMTRS></OFX>";
        let parsed = parse_ofx(sloppy.as_bytes(), cur("USD")).unwrap();
        let ids: Vec<_> = parsed
            .rows
            .iter()
            .map(|r| r.external_id.as_deref())
            .collect();
        assert_eq!(ids, vec![Some("a"), Some("b")]);
        // Cut in the middle of the second statement: what was read is kept.
        let cut = &SGML_102[..SGML_102.find("<FITID>CC1").unwrap() + 8];
        let parsed = parse_ofx(cut.as_bytes(), cur("USD")).unwrap();
        assert_eq!(parsed.rows.len(), 5);
        let cut = &XML_220[..XML_220.find("<NAME>GITHUB").unwrap() + 3];
        assert_eq!(parse_ofx(cut.as_bytes(), cur("EUR")).unwrap().rows.len(), 2);
    }

    #[test]
    fn whole_file_errors() {
        assert_eq!(parse_ofx(b"", cur("USD")), Err(ImportError::Empty));
        assert_eq!(
            parse_ofx(b"Date,Amount\n2024-01-01,1\n", cur("USD")),
            Err(ImportError::NotOfx)
        );
        assert_eq!(
            parse_ofx(b"<OFXHEADER>", cur("USD")),
            Err(ImportError::NotOfx)
        );
        assert_eq!(
            parse_ofx(b"<OFX></OFX>", cur("USD")).unwrap(),
            Parsed::default()
        );
    }

    #[test]
    fn ofx_dates() {
        assert_eq!(parse_ofx_date("20240131"), Some(date(2024, 1, 31)));
        assert_eq!(parse_ofx_date("20240131120000"), Some(date(2024, 1, 31)));
        assert_eq!(
            parse_ofx_date("20240131120000.000[-5:EST]"),
            Some(date(2024, 1, 31))
        );
        assert_eq!(parse_ofx_date("20240231"), None);
        assert_eq!(parse_ofx_date("2024013"), None);
        assert_eq!(parse_ofx_date("2024-01-31"), None);
        assert_eq!(parse_ofx_date("２０２４０１３１"), None);
    }

    #[test]
    fn entities() {
        assert_eq!(
            unescape("A &amp; B &lt;x&gt; &#233; &#xE9; &bogus; &"),
            "A & B <x> é é &bogus; &"
        );
        assert_eq!(
            unescape("&#xFFFFFFFF; &#99999999999;"),
            "&#xFFFFFFFF; &#99999999999;"
        );
    }

    #[test]
    fn mutated_samples_never_panic() {
        let mut rng = Rng(0x0fc0_ffee);
        for sample in [SGML_102, XML_220] {
            for input in mutations(sample.as_bytes(), &mut rng, 400) {
                let _ = parse_ofx(&input, cur("USD"));
            }
        }
    }
}
