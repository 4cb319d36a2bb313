//! CSV statements, read through a [`CsvMapping`] that says which column holds what.
use std::fmt;

use chrono::format::{Item, Parsed as DateParts, StrftimeItems};
use chrono::NaiveDate;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{
    clip, decode_text, description_or, parse_amount, tidy, ImportError, ImportedRow, NumberFormat,
    Parsed, RowError,
};
use crate::domain::Currency;

/// A CSV column: by header text (when the file has a header) or by 0-based index. In JSON a
/// string or a non-negative integer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Column {
    Index(usize),
    Name(String),
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Column::Index(i) => write!(f, "column {i}"),
            Column::Name(name) => write!(f, "column {name:?}"),
        }
    }
}

impl Serialize for Column {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Column::Index(i) => s.serialize_u64(*i as u64),
            Column::Name(name) => s.serialize_str(name),
        }
    }
}

impl<'de> Deserialize<'de> for Column {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Column;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a column header (string) or a 0-based column index (integer)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Column, E> {
                if v.trim().is_empty() {
                    return Err(E::custom("a column name must not be empty"));
                }
                Ok(Column::Name(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Column, E> {
                usize::try_from(v)
                    .ok()
                    .filter(|&i| i < 10_000)
                    .map(Column::Index)
                    .ok_or_else(|| E::custom("column index is too large"))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Column, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom("a column index must not be negative"))
                    .and_then(|v| self.visit_u64(v))
            }
        }
        d.deserialize_any(V)
    }
}

fn default_delimiter() -> String {
    ",".to_string()
}
fn default_true() -> bool {
    true
}
fn default_date_format() -> String {
    "%Y-%m-%d".to_string()
}
fn default_decimal() -> String {
    ".".to_string()
}

/// Which columns of a CSV file hold what, and how its numbers and dates are written. Sent by
/// API clients as JSON; unknown fields are refused. Give the amount as either `amount` (one
/// signed column; `negate` for banks that show spending as positive) or `debit` + `credit`
/// (debit = money out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvMapping {
    /// One ASCII character; default `","`. `"\t"` for tab-separated files.
    #[serde(default = "default_delimiter")]
    pub delimiter: String,
    /// Default true. Without a header, columns must be given by index.
    #[serde(default = "default_true")]
    pub has_header: bool,
    /// Lines to skip before the header (or the first row), e.g. a bank's preamble. Default 0.
    #[serde(default)]
    pub skip_rows: usize,
    pub date: Column,
    /// chrono `strftime` syntax; default `"%Y-%m-%d"`.
    #[serde(default = "default_date_format")]
    pub date_format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Column>,
    /// Flip the sign of `amount` (for files that show money out as positive). Default false.
    #[serde(default)]
    pub negate: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debit: Option<Column>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit: Option<Column>,
    /// `"."` (default) or `","`.
    #[serde(default = "default_decimal")]
    pub decimal_separator: String,
    /// One character (`","`, `"."`, `" "`, `"'"`); absent means amounts have no digit grouping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thousands_separator: Option<String>,
    pub description: Column,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payee: Option<Column>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<Column>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<Column>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Column>,
}

/// The mapping checked and turned into what the row loop needs.
struct Checked<'m> {
    delimiter: u8,
    number: NumberFormat,
    date_items: Vec<Item<'m>>,
    date_format: &'m str,
    /// A sample date in the format (`11/28/2024`): a cell of the same shape that is still not
    /// read names a day that does not exist.
    date_sample: String,
    fast_date: Option<FastDate>,
}

/// The common all-numeric date formats (`%Y-%m-%d`, `%d.%m.%Y`, `%m/%d/%Y`, ...), read
/// without chrono's general parser when the cell is zero-padded; other cells go to chrono.
#[derive(Clone, Copy)]
struct FastDate {
    order: [u8; 3],
    separator: u8,
}

impl FastDate {
    fn new(format: &str) -> Option<FastDate> {
        let b = format.as_bytes();
        if b.len() != 8 || b[0] != b'%' || b[3] != b'%' || b[6] != b'%' || b[2] != b[5] {
            return None;
        }
        let order = [b[1], b[4], b[7]];
        let separator = b[2];
        let valid = matches!(&order, b"Ymd" | b"dmY" | b"mdY");
        (valid && !separator.is_ascii_alphanumeric() && separator != b'%')
            .then_some(FastDate { order, separator })
    }

    fn parse(self, text: &str) -> Option<NaiveDate> {
        let b = text.as_bytes();
        if b.len() != 10 {
            return None;
        }
        let number = |at: usize, len: usize| {
            b[at..at + len].iter().try_fold(0u32, |acc, d| {
                d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
            })
        };
        let (y, m, d) = if self.order[0] == b'Y' {
            (b[4] == self.separator && b[7] == self.separator)
                .then(|| (number(0, 4), number(5, 2), number(8, 2)))?
        } else {
            let (first, second) = (b[2] == self.separator && b[5] == self.separator)
                .then(|| (number(0, 2), number(3, 2)))?;
            if self.order[0] == b'd' {
                (number(6, 4), second, first)
            } else {
                (number(6, 4), first, second)
            }
        };
        NaiveDate::from_ymd_opt(i32::try_from(y?).ok()?, m?, d?)
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ImportError {
    ImportError::InvalidMapping {
        field,
        reason: reason.into(),
    }
}

fn single_char(field: &'static str, text: &str) -> Result<char, ImportError> {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(invalid(
            field,
            format!("must be exactly one character, not {text:?}"),
        )),
    }
}

impl CsvMapping {
    /// Check the mapping on its own (before any file is read). The error names the wrong field.
    pub fn validate(&self) -> Result<(), ImportError> {
        self.check().map(|_| ())
    }

    fn check(&self) -> Result<Checked<'_>, ImportError> {
        let delimiter = single_char("delimiter", &self.delimiter)?;
        if !delimiter.is_ascii() || matches!(delimiter, '"' | '\n' | '\r') {
            return Err(invalid(
                "delimiter",
                format!(
                    "must be an ASCII character other than a quote or newline, not {delimiter:?}"
                ),
            ));
        }
        let decimal = single_char("decimal_separator", &self.decimal_separator)?;
        if decimal != '.' && decimal != ',' {
            return Err(invalid(
                "decimal_separator",
                format!("must be \".\" or \",\", not {decimal:?}"),
            ));
        }
        let thousands = match &self.thousands_separator {
            None => None,
            Some(t) => {
                let t = single_char("thousands_separator", t)?;
                if t == decimal {
                    return Err(invalid(
                        "thousands_separator",
                        format!("must differ from decimal_separator (both are {t:?})"),
                    ));
                }
                if t.is_ascii_digit() || matches!(t, '-' | '+' | '(' | ')') || t.is_alphabetic() {
                    return Err(invalid("thousands_separator", format!("cannot be {t:?}")));
                }
                Some(t)
            }
        };
        match (&self.amount, &self.debit, &self.credit) {
            (Some(_), None, None) => {}
            (None, Some(d), Some(c)) => {
                if d == c {
                    return Err(invalid("credit", "must be a different column from debit"));
                }
                if self.negate {
                    return Err(invalid(
                        "negate",
                        "applies only to a single amount column, not to debit/credit",
                    ));
                }
            }
            (Some(_), _, _) => {
                return Err(invalid(
                    "amount",
                    "cannot be combined with debit/credit: give either amount, or debit and credit",
                ))
            }
            (None, None, None) => {
                return Err(invalid(
                    "amount",
                    "is missing: give either amount, or debit and credit",
                ))
            }
            (None, Some(_), None) => {
                return Err(invalid(
                    "credit",
                    "is missing: debit needs a credit column too",
                ))
            }
            (None, None, Some(_)) => {
                return Err(invalid(
                    "debit",
                    "is missing: credit needs a debit column too",
                ))
            }
        }
        if !self.has_header {
            for (field, column) in self.columns() {
                if let Column::Name(name) = column {
                    return Err(invalid(
                        field,
                        format!(
                            "names column {name:?} but has_header is false: use a 0-based index"
                        ),
                    ));
                }
            }
        }
        let (date_items, date_sample) = check_date_format(&self.date_format)?;
        Ok(Checked {
            delimiter: delimiter as u8,
            number: NumberFormat { decimal, thousands },
            date_items,
            date_format: &self.date_format,
            date_sample,
            fast_date: FastDate::new(&self.date_format),
        })
    }

    /// Every mapped column with the name of its field.
    fn columns(&self) -> impl Iterator<Item = (&'static str, &Column)> {
        [
            ("date", Some(&self.date)),
            ("amount", self.amount.as_ref()),
            ("debit", self.debit.as_ref()),
            ("credit", self.credit.as_ref()),
            ("description", Some(&self.description)),
            ("payee", self.payee.as_ref()),
            ("notes", self.notes.as_ref()),
            ("external_id", self.external_id.as_ref()),
            ("category", self.category.as_ref()),
        ]
        .into_iter()
        .filter_map(|(field, column)| column.map(|c| (field, c)))
    }
}

/// The format's items and a sample date written in it.
fn check_date_format(format: &str) -> Result<(Vec<Item<'_>>, String), ImportError> {
    if format.trim().is_empty() {
        return Err(invalid("date_format", "must not be empty"));
    }
    let items: Vec<Item<'_>> = StrftimeItems::new(format).collect();
    if items.iter().any(|i| matches!(i, Item::Error)) {
        return Err(invalid(
            "date_format",
            format!("{format:?} is not a valid strftime format (e.g. \"%d/%m/%Y\")"),
        ));
    }
    // Round-trip a sample date to prove the format has a year, a month and a day.
    let sample = NaiveDate::from_ymd_opt(2024, 11, 28)
        .and_then(|d| d.and_hms_opt(13, 14, 15))
        .ok_or_else(|| invalid("date_format", "internal error"))?;
    let mut text = String::new();
    if fmt::write(
        &mut text,
        format_args!("{}", sample.format_with_items(items.iter())),
    )
    .is_ok()
    {
        let back = parse_date(&text, &items);
        if back != Some(sample.date()) {
            return Err(invalid(
                "date_format",
                format!("{format:?} must contain a year, a month and a day (e.g. %Y, %m, %d)"),
            ));
        }
    }
    Ok((items, text))
}

fn parse_date(text: &str, items: &[Item<'_>]) -> Option<NaiveDate> {
    let mut parts = DateParts::new();
    chrono::format::parse(&mut parts, text, items.iter()).ok()?;
    parts.to_naive_date().ok()
}

/// Digits where the sample has digits and the same other characters: `02/30/2024` is shaped like
/// `11/28/2024`, `2024-01-31` is not.
fn same_shape(text: &str, sample: &str) -> bool {
    text.len() == sample.len()
        && text.bytes().zip(sample.bytes()).all(|(t, s)| {
            if s.is_ascii_digit() {
                t.is_ascii_digit()
            } else {
                t == s
            }
        })
}

enum AmountColumns {
    Signed { column: usize, negate: bool },
    DebitCredit { debit: usize, credit: usize },
}

/// Column indexes resolved against the header.
struct Plan {
    date: usize,
    amount: AmountColumns,
    description: usize,
    payee: Option<usize>,
    notes: Option<usize>,
    external_id: Option<usize>,
    category: Option<usize>,
    min_columns: usize,
}

fn resolve(mapping: &CsvMapping, header: Option<&[String]>) -> Result<Plan, ImportError> {
    let find = |field: &'static str, column: &Column| -> Result<usize, ImportError> {
        match (column, header) {
            (Column::Index(index), Some(names)) if *index >= names.len() => {
                Err(ImportError::ColumnOutOfRange {
                    field,
                    index: *index,
                    columns: names.len(),
                })
            }
            (Column::Index(index), _) => Ok(*index),
            (Column::Name(name), Some(names)) => {
                let wanted = name.trim();
                names
                    .iter()
                    .position(|h| h == wanted)
                    .or_else(|| {
                        names
                            .iter()
                            .position(|h| h.to_lowercase() == wanted.to_lowercase())
                    })
                    .ok_or_else(|| ImportError::MissingColumn {
                        field,
                        name: name.clone(),
                        found: names
                            .iter()
                            .take(40)
                            .map(|n| format!("{:?}", clip(n)))
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
            }
            (Column::Name(name), None) => Err(invalid(
                field,
                format!("names column {name:?} but has_header is false"),
            )),
        }
    };
    let optional =
        |field, column: &Option<Column>| column.as_ref().map(|c| find(field, c)).transpose();
    let amount = match (&mapping.amount, &mapping.debit, &mapping.credit) {
        (Some(a), _, _) => AmountColumns::Signed {
            column: find("amount", a)?,
            negate: mapping.negate,
        },
        (None, Some(d), Some(c)) => AmountColumns::DebitCredit {
            debit: find("debit", d)?,
            credit: find("credit", c)?,
        },
        _ => return Err(invalid("amount", "is missing")),
    };
    let mut plan = Plan {
        date: find("date", &mapping.date)?,
        amount,
        description: find("description", &mapping.description)?,
        payee: optional("payee", &mapping.payee)?,
        notes: optional("notes", &mapping.notes)?,
        external_id: optional("external_id", &mapping.external_id)?,
        category: optional("category", &mapping.category)?,
        min_columns: 0,
    };
    let amount_max = match plan.amount {
        AmountColumns::Signed { column, .. } => column,
        AmountColumns::DebitCredit { debit, credit } => debit.max(credit),
    };
    plan.min_columns = [plan.date, amount_max, plan.description]
        .into_iter()
        .chain(plan.payee)
        .chain(plan.notes)
        .chain(plan.external_id)
        .chain(plan.category)
        .max()
        .unwrap_or(0)
        .saturating_add(1);
    Ok(plan)
}

/// Parse a CSV statement with `mapping`; amounts are read in `currency`'s minor units.
///
/// Handles a UTF-8 BOM, UTF-16 with BOM, Windows-1252 text, quoted fields with embedded
/// delimiters and newlines, CRLF, blank lines (skipped, as are rows whose cells are all empty)
/// and surrounding whitespace. A row with too few columns, a bad date or a bad amount is a
/// [`RowError`] with its 1-based physical line; the other rows are still returned.
pub fn parse_csv(
    input: &[u8],
    mapping: &CsvMapping,
    currency: Currency,
) -> Result<Parsed, ImportError> {
    parse_csv_split(input, mapping, currency, PARSE_IN_TWO_FROM)
}

/// Files of at least this many bytes are parsed on two threads.
const PARSE_IN_TWO_FROM: usize = 1 << 20;

/// [`parse_csv`], on two threads when the rows take `in_two_from` bytes or more: the second
/// thread starts at the first line past the middle while the first reads from the top. The
/// first thread's own reading decides whether that was a record boundary (a line break inside
/// a quoted field is not); if it was, the first stops there and takes the second's rows, if not,
/// it reads on alone and the second's rows are dropped. Either way the rows are those of one
/// reading from the top.
fn parse_csv_split(
    input: &[u8],
    mapping: &CsvMapping,
    currency: Currency,
    in_two_from: usize,
) -> Result<Parsed, ImportError> {
    let checked = mapping.check()?;
    let text = decode_text(input)?;
    if text.trim().is_empty() {
        return Err(ImportError::Empty);
    }
    // Skip the preamble: whole physical lines.
    let mut start = 0;
    for _ in 0..mapping.skip_rows {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => {
                start = text.len();
                break;
            }
        }
    }
    let body = &text.as_bytes()[start..];
    let line_offset = mapping.skip_rows;
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(checked.delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(body);
    let mut record = ::csv::ByteRecord::new();
    let read = |reader: &mut ::csv::Reader<&[u8]>, record: &mut ::csv::ByteRecord| {
        reader
            .read_byte_record(record)
            .map_err(|e| ImportError::Csv(e.to_string()))
    };

    let header: Option<Vec<String>> = if mapping.has_header {
        loop {
            if !read(&mut reader, &mut record)? {
                return Err(ImportError::NoHeader {
                    skipped: mapping.skip_rows,
                });
            }
            if !is_blank(&record) {
                break;
            }
        }
        Some(
            record
                .iter()
                .map(|f| String::from_utf8_lossy(f).trim().to_string())
                .collect(),
        )
    } else {
        None
    };
    let plan = resolve(mapping, header.as_deref())?;

    let terminator = if body.contains(&b'\n') { b'\n' } else { b'\r' };
    let rows_start = usize::try_from(reader.position().byte()).unwrap_or(0);
    let split = (body.len() - rows_start.min(body.len()) >= in_two_from)
        .then(|| {
            let middle = rows_start + (body.len() - rows_start) / 2;
            body[middle..]
                .iter()
                .position(|&b| b == terminator)
                .map(|i| middle + i + 1)
        })
        .flatten()
        .filter(|&split| split < body.len());
    let records = Records {
        body,
        plan: &plan,
        checked: &checked,
        currency,
        line_offset,
        terminator,
    };
    let Some(split) = split else {
        return records
            .read(&mut reader, 0, 1, 0, None)
            .map(|(parsed, _)| parsed);
    };
    std::thread::scope(|scope| {
        let second = scope.spawn(|| {
            let mut reader = ::csv::ReaderBuilder::new()
                .delimiter(checked.delimiter)
                .has_headers(false)
                .flexible(true)
                .from_reader(&body[split..]);
            let line = 1 + body[..split].iter().filter(|&&b| b == terminator).count();
            records.read(&mut reader, split, line, split, None)
        });
        let (mut parsed, stopped) = records.read(&mut reader, 0, 1, 0, Some(split))?;
        let second = second.join();
        if stopped {
            if let Ok(Ok((more, _))) = second {
                parsed.rows.extend(more.rows);
                parsed.errors.extend(more.errors);
            }
        }
        Ok(parsed)
    })
}

/// Reads records into rows for [`parse_csv_split`].
struct Records<'a, 'm> {
    /// All the rows' bytes (after any skipped preamble).
    body: &'a [u8],
    plan: &'a Plan,
    checked: &'a Checked<'m>,
    currency: Currency,
    line_offset: usize,
    terminator: u8,
}

impl Records<'_, '_> {
    /// Read `reader` (which reads `body` from byte `base`, where line `line` starts) to its end,
    /// or — with `stop_at` — until the next record starts exactly at that byte (only line breaks
    /// in between); whether it stopped there.
    fn read(
        &self,
        reader: &mut ::csv::Reader<&[u8]>,
        base: usize,
        line: usize,
        offset: usize,
        mut stop_at: Option<usize>,
    ) -> Result<(Parsed, bool), ImportError> {
        let body = self.body;
        // Pre-size for the rows without trusting a garbage file: a real row is at least ~32
        // bytes.
        let rest = &body[base.min(body.len())..];
        let estimate = rest
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            .min(rest.len() / 32)
            .min(1 << 21);
        let mut parsed = Parsed {
            rows: Vec::with_capacity(estimate),
            errors: Vec::new(),
        };
        let mut buf = String::with_capacity(32);
        let mut lines = LineCounter {
            body,
            offset,
            line,
            terminator: self.terminator,
        };
        let mut record = ::csv::ByteRecord::new();
        loop {
            if let Some(stop) = stop_at {
                let at = base + usize::try_from(reader.position().byte()).unwrap_or(usize::MAX);
                if at > stop {
                    // Past it inside a record: not a boundary; read on alone.
                    stop_at = None;
                } else if body[at..stop].iter().all(|&b| matches!(b, b'\r' | b'\n')) {
                    return Ok((parsed, true));
                }
            }
            let more = reader
                .read_byte_record(&mut record)
                .map_err(|e| ImportError::Csv(e.to_string()))?;
            if !more {
                return Ok((parsed, false));
            }
            if is_blank(&record) {
                continue;
            }
            let at = record
                .position()
                .and_then(|p| usize::try_from(p.byte()).ok())
                .unwrap_or(0);
            let line = lines.line_at(base + at) + self.line_offset;
            match read_row(
                &record,
                self.plan,
                self.checked,
                self.currency,
                line,
                &mut buf,
            ) {
                Ok(row) => parsed.rows.push(row),
                Err(reason) => parsed.errors.push(RowError { line, reason }),
            }
        }
    }
}

fn is_blank(record: &::csv::ByteRecord) -> bool {
    record
        .iter()
        .all(|f| f.iter().all(|b| b.is_ascii_whitespace()))
}

/// Physical line numbers from byte offsets. (The csv crate's own line count does not count
/// blank lines and counts CRLF oddly; its byte position of a record points just past the
/// previous record's first terminator byte.)
struct LineCounter<'a> {
    body: &'a [u8],
    offset: usize,
    /// 1-based line at `offset`.
    line: usize,
    /// `\n`, or `\r` for old Mac files that have no `\n` at all.
    terminator: u8,
}

impl LineCounter<'_> {
    fn line_at(&mut self, position: usize) -> usize {
        let body = self.body;
        let mut start = position.min(body.len());
        while start < body.len() && matches!(body[start], b'\r' | b'\n') {
            start += 1;
        }
        if start > self.offset {
            let terminator = self.terminator;
            self.line += body[self.offset..start]
                .iter()
                .filter(|&&b| b == terminator)
                .count();
            self.offset = start;
        }
        self.line
    }
}

fn cell(record: &::csv::ByteRecord, index: usize) -> &str {
    // The whole text is valid UTF-8 and the delimiter is ASCII, so every field is too.
    record
        .get(index)
        .and_then(|f| std::str::from_utf8(f).ok())
        .unwrap_or("")
        .trim()
}

fn read_row(
    record: &::csv::ByteRecord,
    plan: &Plan,
    checked: &Checked<'_>,
    currency: Currency,
    line: usize,
    buf: &mut String,
) -> Result<ImportedRow, String> {
    if record.len() < plan.min_columns {
        return Err(format!(
            "has {} column(s) but the mapping needs at least {}",
            record.len(),
            plan.min_columns
        ));
    }
    let date_text = cell(record, plan.date);
    let date = checked
        .fast_date
        .and_then(|fast| fast.parse(date_text))
        .or_else(|| parse_date(date_text, &checked.date_items))
        .ok_or_else(|| {
            if date_text.is_empty() {
                "date is empty".to_string()
            } else if same_shape(date_text, &checked.date_sample) {
                format!("date {:?} is not a day of the calendar", clip(date_text))
            } else {
                format!(
                    "date {:?} does not match the date format {:?}",
                    clip(date_text),
                    checked.date_format
                )
            }
        })?;
    let amount_minor = match plan.amount {
        AmountColumns::Signed { column, negate } => {
            let raw = cell(record, column);
            let value = parse_amount(raw, checked.number, currency, buf)
                .map_err(|e| format!("amount {e}"))?;
            if negate {
                value
                    .checked_neg()
                    .ok_or_else(|| "amount is too large".to_string())?
            } else {
                value
            }
        }
        AmountColumns::DebitCredit { debit, credit } => {
            let side = |column: usize, name: &str, buf: &mut String| {
                let raw = cell(record, column);
                if raw.is_empty() {
                    return Ok(None);
                }
                parse_amount(raw, checked.number, currency, buf)
                    .map(|v| Some(v.unsigned_abs()))
                    .map_err(|e| format!("{name} {e}"))
            };
            let out = side(debit, "debit", buf)?;
            let inn = side(credit, "credit", buf)?;
            let too_large = || "amount is too large".to_string();
            match (out, inn) {
                (None, None) => return Err("debit and credit are both empty".to_string()),
                (Some(o), Some(i)) if o != 0 && i != 0 => {
                    return Err(format!(
                        "debit ({}) and credit ({}) both have an amount",
                        clip(cell(record, debit)),
                        clip(cell(record, credit))
                    ))
                }
                (Some(o), Some(0) | None) => i64::try_from(o)
                    .ok()
                    .and_then(i64::checked_neg)
                    .ok_or_else(too_large)?,
                (_, Some(i)) => i64::try_from(i).map_err(|_| too_large())?,
            }
        }
    };
    let text = |column: Option<usize>| column.and_then(|c| tidy(cell(record, c)));
    let payee = text(plan.payee);
    let notes = text(plan.notes);
    let description = description_or(text(Some(plan.description)), payee.as_ref(), notes.as_ref());
    Ok(ImportedRow {
        line,
        date,
        amount_minor,
        description,
        payee,
        notes,
        external_id: text(plan.external_id),
        category: text(plan.category),
        transfer_account: None,
        currency: None,
        account_hint: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::import::testutil::{mutations, Rng};

    fn cur(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    fn mapping(json: &str) -> CsvMapping {
        serde_json::from_str(json).unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// A US checking export: header, MM/DD/YYYY, "1,234.56" amounts with negatives in
    /// parentheses or with a minus, quoted fields with commas, a BOM and CRLF.
    const US_BANK: &str = "\u{FEFF}Details,Posting Date,Description,Amount,Type,Balance,Check or Slip #\r\n\
DEBIT,01/31/2024,\"AMAZON MKTPLACE PMTS, AMZN.COM/BILL WA\",\"(1,234.56)\",ACH_DEBIT,\"5,000.00\",\r\n\
CREDIT,01/30/2024,PAYROLL ACME INC,\"2,500.00\",ACH_CREDIT,\"6,234.56\",\r\n\
\r\n\
DEBIT,01/29/2024,CHECK 1001   ,-45.00,CHECK_PAID,\"3,734.56\",1001\r\n\
DEBIT,02/30/2024,BAD DATE,-1.00,ACH_DEBIT,0.00,\r\n\
DEBIT,01/28/2024,TOO MANY DECIMALS,-1.005,ACH_DEBIT,0.00,\r\n\
DEBIT,01/27/2024\r\n\
DEBIT,01/26/2024,\"MULTI\r\nLINE MEMO\",-3.50,ACH_DEBIT,0.00,\r\n";

    const US_MAPPING: &str = r#"{
        "date": "Posting Date", "date_format": "%m/%d/%Y",
        "amount": "Amount", "thousands_separator": ",",
        "description": "Description", "external_id": "Check or Slip #"
    }"#;

    #[test]
    fn us_bank_with_parentheses_and_thousands() {
        let parsed = parse_csv(US_BANK.as_bytes(), &mapping(US_MAPPING), cur("USD")).unwrap();
        let summary: Vec<_> = parsed
            .rows
            .iter()
            .map(|r| (r.line, r.date, r.amount_minor, r.description.as_str()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    2,
                    date(2024, 1, 31),
                    -123_456,
                    "AMAZON MKTPLACE PMTS, AMZN.COM/BILL WA"
                ),
                (3, date(2024, 1, 30), 250_000, "PAYROLL ACME INC"),
                (5, date(2024, 1, 29), -4500, "CHECK 1001"),
                (9, date(2024, 1, 26), -350, "MULTI LINE MEMO"),
            ]
        );
        assert_eq!(parsed.rows[2].external_id.as_deref(), Some("1001"));
        assert_eq!(parsed.rows[0].external_id, None);
        assert_eq!(parsed.rows[0].payee, None);
        let errors: Vec<_> = parsed.errors.iter().map(|e| e.line).collect();
        assert_eq!(errors, vec![6, 7, 8], "{:?}", parsed.errors);
        assert_eq!(
            parsed.errors[0].reason,
            "date \"02/30/2024\" is not a day of the calendar"
        );
        assert!(
            parsed.errors[1].reason.contains("decimals"),
            "{:?}",
            parsed.errors[1]
        );
        assert!(
            parsed.errors[2].reason.contains("column"),
            "{:?}",
            parsed.errors[2]
        );
    }

    #[test]
    fn a_date_in_another_format_names_the_format_expected() {
        let file = "Posting Date,Description,Amount\n2024-01-31,ISO,-1.00\n13/01/2024,DAY FIRST,-2.00\n01/31/2024,OK,-3.00\n";
        let us = mapping(
            r#"{"date": "Posting Date", "date_format": "%m/%d/%Y", "amount": "Amount", "description": "Description"}"#,
        );
        let parsed = parse_csv(file.as_bytes(), &us, cur("USD")).unwrap();
        assert_eq!(parsed.rows.len(), 1);
        let reasons: Vec<_> = parsed
            .errors
            .iter()
            .map(|e| (e.line, e.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            vec![
                (
                    2,
                    "date \"2024-01-31\" does not match the date format \"%m/%d/%Y\""
                ),
                (3, "date \"13/01/2024\" is not a day of the calendar"),
            ]
        );
    }

    /// A German savings bank export in Windows-1252: a preamble, ';' delimiter, DD.MM.YYYY,
    /// "1.234,56" amounts in separate debit (Soll) and credit (Haben) columns.
    const GERMAN_BANK: &str = "\"Kontonummer:\";\"DE12 3456 7890\";\n\
\"Zeitraum:\";\"01.01.2024 - 31.01.2024\";\n\
\n\
\"Buchungstag\";\"Wertstellung\";\"Auftraggeber / Begünstigter\";\"Verwendungszweck\";\"Soll\";\"Haben\";\"Kategorie\"\n\
\"31.01.2024\";\"31.01.2024\";\"REWE Markt GmbH\";\"Einkauf; Filiale 123\";\"1.234,56\";\"\";\"Lebensmittel\"\n\
\"30.01.2024\";\"30.01.2024\";\"Arbeitgeber AG\";\"Gehalt Januar\";\"\";\"3.000,00\";\"Einkommen:Gehalt\"\n\
\"29.01.2024\";\"29.01.2024\";\"Hausverwaltung Müller\";\"Miete\nJanuar 2024\";\"-850,00\";\"\";\"\"\n\
\"28.01.2024\";\"28.01.2024\";\"Beide\";\"x\";\"1,00\";\"2,00\";\"\"\n\
\"27.01.2024\";\"27.01.2024\";\"Keine\";\"y\";\"\";\"\";\"\"\n\
\"26.01.2024\";\"26.01.2024\";\"Gebühr\";\"\";\"0,00\";\"4,90\";\"\"\n\
;;;;;;\n";

    const GERMAN_MAPPING: &str = r#"{
        "delimiter": ";", "skip_rows": 3,
        "date": "Buchungstag", "date_format": "%d.%m.%Y",
        "debit": "Soll", "credit": "Haben",
        "decimal_separator": ",", "thousands_separator": ".",
        "description": "Verwendungszweck", "payee": "Auftraggeber / Begünstigter",
        "category": "Kategorie"
    }"#;

    fn to_cp1252(text: &str) -> Vec<u8> {
        text.chars()
            .map(|c| match c {
                'ü' => 0xFC,
                'ä' => 0xE4,
                'ö' => 0xF6,
                'ß' => 0xDF,
                '€' => 0x80,
                c if c.is_ascii() => c as u8,
                c => panic!("not in the test table: {c}"),
            })
            .collect()
    }

    #[test]
    fn german_bank_with_debit_credit_and_windows_1252() {
        let bytes = to_cp1252(GERMAN_BANK);
        assert!(
            std::str::from_utf8(&bytes).is_err(),
            "the sample must not be UTF-8"
        );
        let parsed = parse_csv(&bytes, &mapping(GERMAN_MAPPING), cur("EUR")).unwrap();
        let summary: Vec<_> = parsed
            .rows
            .iter()
            .map(|r| {
                (
                    r.line,
                    r.date,
                    r.amount_minor,
                    r.description.as_str(),
                    r.payee.as_deref(),
                    r.category.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    5,
                    date(2024, 1, 31),
                    -123_456,
                    "Einkauf; Filiale 123",
                    Some("REWE Markt GmbH"),
                    Some("Lebensmittel")
                ),
                (
                    6,
                    date(2024, 1, 30),
                    300_000,
                    "Gehalt Januar",
                    Some("Arbeitgeber AG"),
                    Some("Einkommen:Gehalt")
                ),
                // A debit written with a minus is still money out.
                (
                    7,
                    date(2024, 1, 29),
                    -85_000,
                    "Miete Januar 2024",
                    Some("Hausverwaltung Müller"),
                    None
                ),
                // An empty description falls back to the payee.
                (11, date(2024, 1, 26), 490, "Gebühr", Some("Gebühr"), None),
            ]
        );
        let errors: Vec<_> = parsed
            .errors
            .iter()
            .map(|e| (e.line, e.reason.as_str()))
            .collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].0, 9);
        assert!(errors[0].1.contains("both have an amount"), "{errors:?}");
        assert_eq!(errors[1].0, 10);
        assert!(errors[1].1.contains("both empty"), "{errors:?}");
    }

    /// A UK export with DD/MM/YYYY, read by column index, and a headerless variant.
    const UK_BANK: &str = "Number,Date,Account,Amount,Subcategory,Memo\n\
,31/01/2024,20-32-06 13152170,-4.99,PAYMENT,NETFLIX.COM  \n\
,15/01/2024,20-32-06 13152170,1500.00,CREDIT,SALARY ACME LTD\n\
,01/13/2024,20-32-06 13152170,1.00,CREDIT,US DATE BY MISTAKE\n";

    #[test]
    fn uk_bank_by_index_and_headerless() {
        let m = mapping(
            r#"{"date": 1, "date_format": "%d/%m/%Y", "amount": 3, "description": 5, "category": "Subcategory"}"#,
        );
        let parsed = parse_csv(UK_BANK.as_bytes(), &m, cur("GBP")).unwrap();
        assert_eq!(parsed.rows.len(), 2);
        assert_eq!(parsed.rows[0].date, date(2024, 1, 31));
        assert_eq!(parsed.rows[0].amount_minor, -499);
        assert_eq!(parsed.rows[0].description, "NETFLIX.COM");
        assert_eq!(parsed.rows[0].category.as_deref(), Some("PAYMENT"));
        assert_eq!(parsed.rows[1].amount_minor, 150_000);
        assert_eq!(parsed.errors.len(), 1);
        assert_eq!(parsed.errors[0].line, 4);

        let headerless = UK_BANK.split_once('\n').unwrap().1;
        let m = mapping(
            r#"{"has_header": false, "date": 1, "date_format": "%d/%m/%Y", "amount": 3, "description": 5}"#,
        );
        let parsed = parse_csv(headerless.as_bytes(), &m, cur("GBP")).unwrap();
        assert_eq!(parsed.rows.len(), 2);
        assert_eq!(parsed.rows[0].line, 1);
        assert_eq!(parsed.errors[0].line, 3);
    }

    #[test]
    fn negate_for_cards_that_show_spending_positive() {
        let amex = "Date,Description,Amount,Reference\n01/31/2024,STARBUCKS #123,5.75,'320240310'\n01/30/2024,PAYMENT THANK YOU,-500.00,'320240300'\n";
        let m = mapping(
            r#"{"date": "date", "date_format": "%m/%d/%Y", "amount": "AMOUNT", "negate": true, "description": "Description", "payee": "Description", "external_id": "Reference"}"#,
        );
        let parsed = parse_csv(amex.as_bytes(), &m, cur("USD")).unwrap();
        assert_eq!(parsed.errors, vec![]);
        assert_eq!(parsed.rows[0].amount_minor, -575);
        assert_eq!(parsed.rows[1].amount_minor, 50_000);
        assert_eq!(parsed.rows[0].payee.as_deref(), Some("STARBUCKS #123"));
        assert_eq!(parsed.rows[0].external_id.as_deref(), Some("'320240310'"));
    }

    #[test]
    fn tab_separated_utf16_and_other_currencies() {
        let text = "Date\tText\tAmount\n2024-01-31\tRamen\t-1500\n2024-01-30\tBad\t-1.5\n";
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let m = mapping(
            r#"{"delimiter": "\t", "date": "Date", "amount": "Amount", "description": "Text"}"#,
        );
        let parsed = parse_csv(&bytes, &m, cur("JPY")).unwrap();
        assert_eq!(parsed.rows.len(), 1);
        assert_eq!(parsed.rows[0].amount_minor, -1500);
        assert!(
            parsed.errors[0].reason.contains("JPY has 0"),
            "{:?}",
            parsed.errors
        );
        let bhd = "d,a,t\n2024-01-31,1.234,x\n";
        let m = mapping(r#"{"date": "d", "amount": "a", "description": "t"}"#);
        assert_eq!(
            parse_csv(bhd.as_bytes(), &m, cur("BHD")).unwrap().rows[0].amount_minor,
            1234
        );
    }

    #[test]
    fn line_numbers_count_blank_lines_and_any_line_ending() {
        let m = mapping(r#"{"date": 0, "amount": 1, "description": 2}"#);
        for (text, bad_line) in [
            ("d,a,t\n\n2024-01-01,1,x\n   \n2024-01-02,bad,y\n", 5),
            ("d,a,t\r\n\r\n2024-01-01,1,x\r\n\r\n\r\n2024-01-02,bad,y", 6),
            ("d,a,t\r2024-01-01,1,\"x\"\r\r2024-01-02,bad,y\r", 4),
            ("d,a,t\n2024-01-01,1,\"x\n\ny\"\n2024-01-02,bad,y\n", 5),
        ] {
            let parsed = parse_csv(text.as_bytes(), &m, cur("EUR")).unwrap();
            assert_eq!(parsed.rows.len(), 1, "{text:?}");
            assert_eq!(parsed.errors.len(), 1, "{text:?}");
            assert_eq!(parsed.errors[0].line, bad_line, "{text:?}");
        }
        // A mapping built in code with an absurd index is a row error, not an overflow.
        let mut m = m;
        m.notes = Some(Column::Index(usize::MAX));
        m.has_header = false;
        let parsed = parse_csv(b"2024-01-01,1,x\n", &m, cur("EUR")).unwrap();
        assert_eq!(parsed.errors.len(), 1);
    }

    #[test]
    fn mapping_json_defaults_and_round_trip() {
        let m = mapping(r#"{"date": 0, "amount": "Amount", "description": "Memo"}"#);
        assert_eq!(m.delimiter, ",");
        assert!(m.has_header);
        assert_eq!(m.skip_rows, 0);
        assert_eq!(m.date_format, "%Y-%m-%d");
        assert_eq!(m.decimal_separator, ".");
        assert_eq!(m.thousands_separator, None);
        assert!(!m.negate);
        assert_eq!(m.date, Column::Index(0));
        assert_eq!(m.amount, Some(Column::Name("Amount".into())));
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<CsvMapping>(&json).unwrap(), m);
        assert!(json.contains(r#""date":0"#), "{json}");
    }

    #[test]
    fn mapping_json_is_strict() {
        for bad in [
            r#"{"date": 0, "amount": 1, "description": 2, "amout": 3}"#,
            r#"{"date": -1, "amount": 1, "description": 2}"#,
            r#"{"date": 1.5, "amount": 1, "description": 2}"#,
            r#"{"date": "", "amount": 1, "description": 2}"#,
            r#"{"amount": 1, "description": 2}"#,
            r#"{"date": 0, "amount": 1, "description": 2, "has_header": "yes"}"#,
        ] {
            assert!(serde_json::from_str::<CsvMapping>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mapping_validation_names_the_field() {
        let field_of = |json: &str| match mapping(json).validate() {
            Err(ImportError::InvalidMapping { field, .. }) => field,
            other => panic!("{json}: {other:?}"),
        };
        let base = r#""date": 0, "description": 2"#;
        assert_eq!(
            field_of(&format!(
                r#"{{{base}, "amount": 1, "debit": 3, "credit": 4}}"#
            )),
            "amount"
        );
        assert_eq!(field_of(&format!(r#"{{{base}}}"#)), "amount");
        assert_eq!(field_of(&format!(r#"{{{base}, "debit": 3}}"#)), "credit");
        assert_eq!(field_of(&format!(r#"{{{base}, "credit": 3}}"#)), "debit");
        assert_eq!(
            field_of(&format!(r#"{{{base}, "debit": 3, "credit": 3}}"#)),
            "credit"
        );
        assert_eq!(
            field_of(&format!(
                r#"{{{base}, "debit": 3, "credit": 4, "negate": true}}"#
            )),
            "negate"
        );
        assert_eq!(
            field_of(&format!(
                r#"{{{base}, "amount": 1, "decimal_separator": ",", "thousands_separator": ","}}"#
            )),
            "thousands_separator"
        );
        assert_eq!(
            field_of(&format!(
                r#"{{{base}, "amount": 1, "thousands_separator": "1"}}"#
            )),
            "thousands_separator"
        );
        assert_eq!(
            field_of(&format!(
                r#"{{{base}, "amount": 1, "decimal_separator": ";"}}"#
            )),
            "decimal_separator"
        );
        assert_eq!(
            field_of(&format!(r#"{{{base}, "amount": 1, "delimiter": ";;"}}"#)),
            "delimiter"
        );
        assert_eq!(
            field_of(&format!(r#"{{{base}, "amount": 1, "delimiter": "\""}}"#)),
            "delimiter"
        );
        assert_eq!(
            field_of(&format!(r#"{{{base}, "amount": 1, "delimiter": "§"}}"#)),
            "delimiter"
        );
        assert_eq!(
            field_of(&format!(r#"{{{base}, "amount": 1, "date_format": "%Q"}}"#)),
            "date_format"
        );
        assert_eq!(
            field_of(&format!(
                r#"{{{base}, "amount": 1, "date_format": "%d/%m"}}"#
            )),
            "date_format"
        );
        assert_eq!(
            field_of(&format!(r#"{{{base}, "amount": 1, "date_format": ""}}"#)),
            "date_format"
        );
        assert_eq!(
            field_of(r#"{"has_header": false, "date": "Date", "amount": 1, "description": 2}"#),
            "date"
        );
        // A format with a time part is fine.
        mapping(&format!(
            r#"{{{base}, "amount": 1, "date_format": "%d.%m.%Y %H:%M"}}"#
        ))
        .validate()
        .unwrap();
        // The error message says what is wrong.
        let err = mapping(&format!(r#"{{{base}}}"#))
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`amount`") && err.contains("debit and credit"),
            "{err}"
        );
    }

    #[test]
    fn whole_file_errors() {
        let m = mapping(US_MAPPING);
        assert_eq!(parse_csv(b"", &m, cur("USD")), Err(ImportError::Empty));
        assert_eq!(
            parse_csv(b" \r\n\n", &m, cur("USD")),
            Err(ImportError::Empty)
        );
        match parse_csv(b"Date,Amount,Text\n2024-01-01,1,x\n", &m, cur("USD")) {
            Err(ImportError::MissingColumn { field, name, found }) => {
                assert_eq!(field, "date");
                assert_eq!(name, "Posting Date");
                assert!(found.contains("\"Amount\""), "{found}");
            }
            other => panic!("{other:?}"),
        }
        let m = mapping(r#"{"date": 0, "amount": 9, "description": 2}"#);
        assert!(matches!(
            parse_csv(b"a,b,c\n1,2,3\n", &m, cur("USD")),
            Err(ImportError::ColumnOutOfRange {
                field: "amount",
                index: 9,
                columns: 3
            })
        ));
        let m = mapping(r#"{"skip_rows": 5, "date": 0, "amount": 1, "description": 2}"#);
        assert!(matches!(
            parse_csv(b"a,b,c\n1,2,3\n", &m, cur("USD")),
            Err(ImportError::NoHeader { skipped: 5 })
        ));
        assert!(matches!(
            parse_csv(b"PK\x03\x04\x14\x00\x06\x00", &m, cur("USD")),
            Err(ImportError::NotText(_))
        ));
        // Only a header: no rows, no errors.
        let m = mapping(US_MAPPING);
        let only_header = US_BANK.lines().next().unwrap();
        assert_eq!(
            parse_csv(only_header.as_bytes(), &m, cur("USD")).unwrap(),
            Parsed::default()
        );
    }

    #[test]
    fn mutated_samples_never_panic() {
        let mut rng = Rng(0x5eed_c5f0);
        let cases = [
            (US_BANK.as_bytes().to_vec(), mapping(US_MAPPING)),
            (to_cp1252(GERMAN_BANK), mapping(GERMAN_MAPPING)),
        ];
        for (sample, m) in &cases {
            for input in mutations(sample, &mut rng, 400) {
                let _ = parse_csv(&input, m, cur("EUR"));
            }
        }
    }

    proptest::proptest! {
        /// Arbitrary bytes under a real mapping: a report or an error, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let _ = parse_csv(&body, &mapping(US_MAPPING), cur("USD"));
            let _ = parse_csv(&body, &mapping(GERMAN_MAPPING), cur("EUR"));
        }
    }

    /// Read on two threads, a file gives exactly the rows, lines and errors of one reading from
    /// the top, wherever the middle falls: between records, in a run of blank lines, inside a
    /// quoted field that spans lines (then the first thread reads on alone), with CRLF or LF.
    #[test]
    fn a_file_read_in_two_halves_reads_as_one() {
        let m = mapping(r#"{"date": "Date", "amount": "Amount", "description": "Text"}"#);
        let row = |i: usize| format!("2026-03-{:02},-{i}.50,Row {i}\n", 1 + i % 28);
        let mut files: Vec<String> = Vec::new();
        // Plain rows, a bad row in each half.
        let mut plain = String::from("Date,Amount,Text\n");
        for i in 0..400 {
            plain.push_str(&if i == 100 || i == 300 {
                "2026-02-30,-1.00,Bad\n".to_string()
            } else {
                row(i)
            });
        }
        files.push(plain.clone());
        files.push(plain.replace('\n', "\r\n"));
        // Blank lines around the middle.
        let mut blanks = String::from("Date,Amount,Text\n");
        for i in 0..400 {
            blanks.push_str(&row(i));
            if (190..210).contains(&i) {
                blanks.push_str("\n\n");
            }
        }
        files.push(blanks);
        // One quoted text of many lines across the middle: the second thread starts inside it.
        let mut quoted = String::from("Date,Amount,Text\n");
        for i in 0..100 {
            quoted.push_str(&row(i));
        }
        quoted.push_str("2026-03-05,-9.99,\"first line\n");
        for i in 0..200 {
            quoted.push_str(&format!("2026-03-01,-1.00,not a row {i} \"\"quoted\"\"\n"));
        }
        quoted.push_str("last line\"\n");
        for i in 100..200 {
            quoted.push_str(&row(i));
        }
        files.push(quoted.clone());
        files.push(quoted.replace('\n', "\r\n"));
        for (k, file) in files.iter().enumerate() {
            let whole = parse_csv_split(file.as_bytes(), &m, cur("EUR"), usize::MAX).unwrap();
            let halves = parse_csv_split(file.as_bytes(), &m, cur("EUR"), 0).unwrap();
            assert_eq!(whole, halves, "file {k}");
            assert!(whole.rows.len() >= 200, "file {k}: {}", whole.rows.len());
        }
        let quoted = parse_csv_split(quoted.as_bytes(), &m, cur("EUR"), 0).unwrap();
        assert_eq!(quoted.rows.len(), 201);
        assert!(quoted.rows[100]
            .description
            .contains("not a row 199 \"quoted\""));
        assert_eq!(quoted.rows[101].line, 304);
        let plain = parse_csv_split(plain.as_bytes(), &m, cur("EUR"), 0).unwrap();
        let bad: Vec<usize> = plain.errors.iter().map(|e| e.line).collect();
        assert_eq!(bad, vec![102, 302]);
    }
}
