//! `/api/v1/imports` (CSV with a column mapping, OFX/QFX, QIF, and JSON backups) and
//! `/api/v1/exports` (CSV, a `ledger` journal for hledger/ledger-cli, and a JSON backup).
//!
//! An import is parsed off the event loop, deduplicated (by external id, or by a content hash
//! numbered per occurrence so two identical coffees on one day stay two), previewed or committed
//! through the user's Ledger in chunks — each chunk one atomic commit with an `import.progress`
//! event, the last with `import.completed`. A failed chunk leaves earlier chunks in place; running
//! the same import again skips what is already there.
use crate::domain::day::Day;
use std::collections::{HashMap, HashSet};

use actix_web::dev::Payload;
use actix_web::http::header::{
    ContentDisposition, DispositionParam, DispositionType, CONTENT_LENGTH,
};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{NaiveDate, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::extract::AuthUser;
use super::ledger::ask;
use super::routes::at;
use crate::actors::ledger::views::{AccountView, CategoryView, TransactionView};
use crate::actors::ledger::{
    AccountCurrencies, Handoff, ImportChunk, ImportRow, ImportSummary, ListAccounts,
    ListCategories, ListRates, RateInput, Restore, RestoreSet,
};
use crate::app::AppState;
use crate::domain::export::{write_ledger_journal, JournalAccount, JournalTxn};
use crate::domain::import::{
    parse_csv, parse_ofx, parse_qif, CsvMapping, ImportError, ImportedRow, Parsed, QifDateOrder,
};
use crate::domain::ledger::{
    parse_name, parse_tags, parse_text, AccountKind, CategoryKind, CategorySource, Rate, TxnSource,
};
use crate::domain::money::{check_amount, parse_amount, parse_minor, MAX_MINOR};
use crate::domain::Currency;
use crate::error::{ApiError, FieldError};
use crate::identity::Principal;
use crate::store::ledger::{self as q, AccountRow, CategoryRow, TransactionRow};

/// Rows shown in a preview.
const SAMPLES: usize = 20;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(at("/imports").post(import))
        .service(at("/exports").get(export));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportQuery {
    format: String,
    account_id: Option<String>,
    #[serde(default)]
    preview: bool,
    /// CSV column mapping as JSON.
    mapping: Option<String>,
    /// QIF dates: `month_first` (default) or `day_first`.
    date_order: Option<String>,
}

#[derive(Serialize)]
struct ImportReport {
    import_id: String,
    format: String,
    account_id: Option<Uuid>,
    preview: bool,
    rows_in_file: usize,
    created: usize,
    skipped_duplicates: usize,
    failed: Vec<FailedRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    samples: Vec<Sample>,
}

#[derive(Serialize)]
struct FailedRow {
    line: usize,
    reason: String,
}

#[derive(Serialize)]
struct Sample {
    line: usize,
    date: NaiveDate,
    amount: String,
    description: String,
    merchant: String,
    category_id: Option<Uuid>,
    external_id: Option<String>,
}

async fn read_body(
    req: &HttpRequest,
    payload: Payload,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    let declared: Option<usize> = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut payload = payload;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::BadRequest(format!("The upload could not be read: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A 415 for a body that cannot be the file asked for: a backup is JSON; a bank file is text or
/// bytes (`text/*`, `application/octet-stream`, or a type naming CSV, OFX, QFX, QIF or Excel's CSV
/// type), never an image, a form or another container. No content type at all is taken as bytes.
fn check_content_type(req: &HttpRequest, format: &str) -> Result<(), ApiError> {
    let mime = match actix_web::HttpMessage::mime_type(req) {
        Ok(Some(mime)) => mime,
        Ok(None) => return Ok(()),
        Err(_) => {
            return Err(ApiError::UnsupportedMediaType(
                "The Content-Type header cannot be read.".into(),
            ))
        }
    };
    let (kind, sub) = (mime.type_().as_str(), mime.subtype().as_str());
    let suffix = mime.suffix().map(|s| s.as_str());
    let fits = if format == "json" {
        kind == "application" && (sub == "json" || suffix == Some("json"))
    } else {
        kind == "text"
            || (kind == "application"
                && (sub == "octet-stream"
                    || ["csv", "ofx", "qfx", "qif", "ms-excel"]
                        .iter()
                        .any(|known| sub.contains(known))))
    };
    if fits {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "A {format} import cannot be {kind}/{sub}: send {}.",
            if format == "json" {
                "the backup as application/json"
            } else {
                "the file as text (e.g. text/csv) or application/octet-stream"
            }
        )))
    }
}

/// Category lookup by name as files write them: "Child", "Parent:Child", case-insensitive.
fn category_index(categories: &[CategoryView]) -> HashMap<String, Uuid> {
    let by_id: HashMap<&str, &CategoryView> =
        categories.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut index = HashMap::new();
    for c in categories {
        let Ok(id) = c.id.parse::<Uuid>() else {
            continue;
        };
        index.entry(c.name.to_lowercase()).or_insert(id);
        if let Some(parent) = c.parent_id.as_deref().and_then(|p| by_id.get(p)) {
            index.insert(format!("{}:{}", parent.name, c.name).to_lowercase(), id);
        }
    }
    index
}

async fn import(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    req: HttpRequest,
    payload: web::Payload,
    query: web::Query<ImportQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    check_content_type(&req, &query.format)?;
    let limit = state.settings.max_import_bytes;
    let started = std::time::Instant::now();
    let body = read_body(&req, payload.into_inner(), limit).await?;
    tracing::debug!(
        bytes = body.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "import body read"
    );
    // Previews write nothing, so they keep no answer.
    let idempotency = match query.preview {
        true => None,
        false => super::ledger::idempotency_key(&req, &body)?,
    };
    if let Some(answer) = super::ledger::replayed(&state, &who, &idempotency).await? {
        return Ok(answer);
    }
    if query.format == "json" {
        return restore(&state, &who, &body, idempotency).await;
    }
    let format = query.format.clone();
    if !["csv", "ofx", "qfx", "qif"].contains(&format.as_str()) {
        return Err(ApiError::validation(
            "format",
            "must be csv, ofx, qfx, qif or json",
        ));
    }
    let account_id: Uuid = query
        .account_id
        .as_deref()
        .ok_or_else(|| ApiError::validation("account_id", "is required for this format"))?
        .parse()
        .map_err(|_| ApiError::validation("account_id", "no such account"))?;
    let currencies = ask(&state, who.user_id(), AccountCurrencies).await?;
    let currency = currencies
        .iter()
        .find(|(id, _)| *id == account_id.to_string())
        .map(|(_, c)| *c)
        .ok_or_else(|| ApiError::validation("account_id", "no such account"))?;
    let mapping: Option<CsvMapping> = match (&format[..], &query.mapping) {
        ("csv", Some(raw)) => Some(super::json::parse(raw.as_bytes()).map_err(|e| {
            match e {
                ApiError::Validation(errors) => ApiError::Validation(
                    errors
                        .into_iter()
                        .map(|f| FieldError::new(format!("mapping.{}", f.field), f.message))
                        .collect(),
                ),
                _ => {
                    ApiError::validation("mapping", "must be a JSON object describing the columns")
                }
            }
        })?),
        ("csv", None) => {
            return Err(ApiError::validation(
                "mapping",
                "is required for CSV: which columns hold the date, amount and description",
            ))
        }
        _ => None,
    };
    let date_order = match query.date_order.as_deref() {
        None | Some("month_first") => QifDateOrder::MonthFirst,
        Some("day_first") => QifDateOrder::DayFirst,
        Some(_) => {
            return Err(ApiError::validation(
                "date_order",
                "must be month_first or day_first",
            ))
        }
    };

    // Parse off the event loop: a million rows take a moment of CPU.
    let parsed: Parsed = web::block(move || match format.as_str() {
        "csv" => match &mapping {
            Some(m) => parse_csv(&body, m, currency),
            None => Ok(Parsed::default()),
        },
        "qif" => parse_qif(&body, currency, date_order),
        _ => parse_ofx(&body, currency),
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| match e {
        ImportError::InvalidMapping { field, reason } => {
            ApiError::validation(format!("mapping.{field}"), reason)
        }
        other => ApiError::validation("file", other.to_string()),
    })?;

    tracing::debug!(
        rows = parsed.rows.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "import parsed"
    );
    let categories = ask(&state, who.user_id(), ListCategories).await?;
    let index = category_index(&categories);
    let uid = who.user_id().to_string();
    let aid = account_id.to_string();
    let existing: HashSet<String> = state
        .db
        .run(move |conn| q::external_ids_of_account(conn, &uid, &aid))
        .await?
        .into_iter()
        .collect();

    tracing::debug!(
        existing = existing.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "import keys loaded"
    );
    let rows_in_file = parsed.rows.len() + parsed.errors.len();
    // A million rows take seconds of CPU here too: off the event loop, as the parse.
    let chunk_rows = state.settings.import_chunk_rows;
    let mut checked =
        web::block(move || check_rows(parsed, &existing, account_id, currency, &index, chunk_rows))
            .await
            .map_err(ApiError::internal)?;
    let total = checked.lines.len();
    tracing::debug!(
        rows = total,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "import checked"
    );

    let import_id = Uuid::now_v7().to_string();
    let mut report = ImportReport {
        import_id: import_id.clone(),
        format: query.format.clone(),
        account_id: Some(account_id),
        preview: query.preview,
        rows_in_file,
        created: 0,
        skipped_duplicates: checked.skipped,
        failed: std::mem::take(&mut checked.failed),
        samples: Vec::new(),
    };
    if query.preview {
        report.samples = checked
            .rows()
            .take(SAMPLES)
            .map(|(line, r)| Sample {
                line,
                date: r.date,
                amount: crate::domain::money::format_minor(r.amount, currency.exponent()),
                description: r.description.clone(),
                merchant: r.merchant.clone(),
                category_id: r.category_id,
                external_id: r.external_id.clone(),
            })
            .collect();
        report.created = 0;
        return Ok(HttpResponse::Ok().json(json!({ "would_create": total, "report": report })));
    }

    let skipped = checked.skipped;
    let failed_count = report.failed.len();
    let mut processed = 0;
    if total == 0 {
        return Ok(HttpResponse::Ok().json(report));
    }
    // Every chunk's message also names the next chunk's rows: the Ledger prepares those while
    // the writer commits the chunk it was sent.
    let chunks: Vec<(usize, Handoff<Vec<ImportRow>>)> = checked
        .chunks
        .into_iter()
        .map(|chunk| (chunk.len(), Handoff::new(chunk)))
        .collect();
    for (i, (n, chunk)) in chunks.iter().enumerate() {
        let n = *n;
        let next = chunks.get(i + 1).map(|(_, rows)| rows.clone());
        let last = next.is_none();
        // The last chunk carries the whole report (as it will be once that chunk is in), to be
        // kept with the Idempotency-Key in the same commit.
        let finished = if last {
            report.created = total;
            Some(serde_json::to_string(&report).map_err(ApiError::internal)?)
        } else {
            None
        };
        let message = ImportChunk {
            account_id,
            rows: chunk.clone(),
            next,
            source: TxnSource::Import,
            import_id: import_id.clone(),
            processed,
            total,
            completed: last.then(|| ImportSummary {
                import_id: import_id.clone(),
                account_id,
                created: total,
                skipped_duplicates: skipped,
                failed: failed_count,
            }),
            idempotency: if last { idempotency.clone() } else { None },
            report: finished,
        };
        match ask(&state, who.user_id(), message).await? {
            Ok(_) => {
                processed += n;
                tracing::debug!(
                    processed,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "import chunk in"
                );
            }
            Err(e) => {
                tracing::warn!(import_id = %import_id, processed, total, error = %e, "import stopped part way");
                return Err(match e {
                    ApiError::Conflict(_) | ApiError::Unavailable(_) => ApiError::Unavailable(format!(
                        "The import stopped after {processed} of {total} new rows ({e}). Run it again: rows already imported are skipped."
                    )),
                    other => other,
                });
            }
        }
    }
    report.created = processed;
    Ok(HttpResponse::Ok().json(report))
}

/// The rows of a parsed file that will be written, in date order, with why the others are not.
struct Checked {
    /// The rows to write, in date order, in chunks of at most the configured size (one Ledger
    /// message each). Each row is moved once, from its place in the file into its chunk: with a
    /// million ~200-byte rows, every extra pass that moved them into a new vector cost a few
    /// hundred milliseconds, most of it the kernel zeroing the fresh memory.
    chunks: Vec<Vec<ImportRow>>,
    /// The line in the file of each row in `chunks`, in the same order.
    lines: Vec<usize>,
    failed: Vec<FailedRow>,
    skipped: usize,
}

impl Checked {
    /// Each row to write with its line in the file, in date order.
    fn rows(&self) -> impl Iterator<Item = (usize, &ImportRow)> {
        self.lines.iter().copied().zip(self.chunks.iter().flatten())
    }
}

/// Check each parsed row, give it its deduplication key and drop the duplicates: rows whose key
/// the account already holds, and repeats within the file of an `external_id`. A row without an
/// `external_id` is keyed by its date, the start of its content hash and which occurrence of that
/// content it is in the file, so two identical rows of one statement are both kept. The rows
/// come out in date order, in chunks of `chunk_rows`.
fn check_rows(
    parsed: Parsed,
    existing: &HashSet<String>,
    account_id: Uuid,
    currency: Currency,
    index: &HashMap<String, Uuid>,
    chunk_rows: usize,
) -> Checked {
    let mut failed: Vec<FailedRow> = parsed
        .errors
        .into_iter()
        .map(|e| FailedRow {
            line: e.line,
            reason: e.reason,
        })
        .collect();
    let account_key = account_id.to_string();
    let mut prepared = prepare_rows(parsed.rows, &account_key, currency, index);
    // In file order: duplicates within the file and against the account, and the occurrence count
    // that keeps identical rows (two coffees of the same price on the same day) apart. The rows
    // stay where they are; `order` notes the ones to write.
    let mut seen: HashSet<String> = HashSet::new();
    // Keyed by the first half of the SHA-256 (the part the key keeps), not by its hex.
    let mut occurrences: HashMap<[u8; 16], usize> = HashMap::with_capacity(prepared.len());
    let mut order: Vec<(NaiveDate, usize)> = Vec::with_capacity(prepared.len());
    let mut skipped = 0;
    for (i, p) in prepared.iter_mut().enumerate() {
        let (row, dedup) = match p {
            Prepared::Failed(row) => {
                failed.push(FailedRow {
                    line: row.line,
                    reason: std::mem::take(&mut row.reason),
                });
                continue;
            }
            Prepared::Row { row, dedup, .. } => (row, dedup),
            Prepared::Taken => continue,
        };
        let key = match dedup {
            Dedup::External(id) => {
                if !seen.insert(id.clone()) {
                    skipped += 1;
                    continue;
                }
                std::mem::take(id)
            }
            Dedup::Content { half, prefix } => {
                let n = occurrences.entry(*half).or_insert(0);
                *n += 1;
                let mut key = std::mem::take(prefix);
                let _ = std::fmt::Write::write_fmt(&mut key, format_args!("{n}"));
                key
            }
        };
        if existing.contains(&key) {
            skipped += 1;
            continue;
        }
        row.external_id = Some(truncate(key, 200));
        order.push((row.date, i));
    }
    // Rows in date order (file order within a day): every date-keyed index then grows mostly at
    // its end, and ids (time ordered) follow the dates, which is also the order the lists show.
    order.sort_unstable();
    let chunk_rows = chunk_rows.max(1);
    let mut lines = Vec::with_capacity(order.len());
    let chunks = order
        .chunks(chunk_rows)
        .map(|part| {
            let mut chunk = Vec::with_capacity(part.len());
            for &(_, i) in part {
                if let Prepared::Row { line, row, .. } =
                    std::mem::replace(&mut prepared[i], Prepared::Taken)
                {
                    lines.push(line);
                    chunk.push(row);
                }
            }
            chunk
        })
        .collect();
    Checked {
        chunks,
        lines,
        failed,
        skipped,
    }
}

/// A parsed row after the checks that need no other row.
enum Prepared {
    Failed(FailedRow),
    Row {
        line: usize,
        /// Without its `external_id` yet: that is the deduplication key, decided in file order.
        row: ImportRow,
        dedup: Dedup,
    },
    /// A row already moved into its chunk.
    Taken,
}

enum Dedup {
    /// The bank's own id for the row.
    External(String),
    /// No id: the content hash's first half, and the key up to the occurrence count
    /// (`h:<date>:<hex>#`; the date first, so the keys sort like the rows and the unique index
    /// grows at its end).
    Content { half: [u8; 16], prefix: String },
}

/// Files at least this long are checked on two threads (the SQLite writer, the other busy thread
/// of an import, is idle until the rows are checked).
const PREPARE_IN_TWO_FROM: usize = 8192;

/// [`prepare_row`] for every row, in file order: the second half of a long file on a thread of
/// its own.
fn prepare_rows(
    mut rows: Vec<ImportedRow>,
    account_key: &str,
    currency: Currency,
    index: &HashMap<String, Uuid>,
) -> Vec<Prepared> {
    let prepare = |rows: Vec<ImportedRow>| -> Vec<Prepared> {
        let mut categories = CategoryCache::new(index);
        rows.into_iter()
            .map(|row| prepare_row(row, account_key, currency, &mut categories))
            .collect()
    };
    if rows.len() < PREPARE_IN_TWO_FROM {
        return prepare(rows);
    }
    let second = rows.split_off(rows.len() / 2);
    std::thread::scope(|scope| {
        let later = scope.spawn(|| prepare(second));
        let mut prepared = prepare(rows);
        match later.join() {
            Ok(more) => prepared.extend(more),
            Err(panic) => std::panic::resume_unwind(panic),
        }
        prepared
    })
}

fn prepare_row(
    row: ImportedRow,
    account_key: &str,
    currency: Currency,
    categories: &mut CategoryCache<'_>,
) -> Prepared {
    let fail = |reason: String| {
        Prepared::Failed(FailedRow {
            line: row.line,
            reason,
        })
    };
    if let Err(e) = crate::domain::day::check(row.date) {
        return fail(format!("the date {e}"));
    }
    if let Err(e) = check_amount(row.amount_minor, currency) {
        return fail(format!("the amount {e}"));
    }
    if let Some(c) = &row.currency {
        if c != currency.code() {
            return fail(format!(
                "the row is in {c} but the account is in {currency}"
            ));
        }
    }
    let dedup = match &row.external_id {
        Some(id) => Dedup::External(id.clone()),
        None => {
            let digest = row.content_digest(account_key);
            let mut half = [0u8; 16];
            half.copy_from_slice(&digest[..16]);
            Dedup::Content {
                half,
                prefix: content_key_prefix(row.date, &half),
            }
        }
    };
    let category_id = row.category.as_deref().and_then(|c| categories.find(c));
    Prepared::Row {
        line: row.line,
        row: to_import_row(row, category_id),
        dedup,
    }
}

/// `h:<date>:<hex of half>#`, with room for the occurrence count that completes the key.
fn content_key_prefix(date: NaiveDate, half: &[u8; 16]) -> String {
    use std::fmt::Write;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut prefix = String::with_capacity(56);
    let _ = write!(prefix, "h:{date}:");
    for b in half {
        prefix.push(char::from(HEX[usize::from(b >> 4)]));
        prefix.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    prefix.push('#');
    prefix
}

/// A file names a handful of categories a million times: each name is looked up once.
struct CategoryCache<'a> {
    index: &'a HashMap<String, Uuid>,
    found: HashMap<String, Option<Uuid>>,
}

impl<'a> CategoryCache<'a> {
    fn new(index: &'a HashMap<String, Uuid>) -> Self {
        Self {
            index,
            found: HashMap::new(),
        }
    }

    fn find(&mut self, name: &str) -> Option<Uuid> {
        if let Some(id) = self.found.get(name) {
            return *id;
        }
        let id = self.index.get(&name.trim().to_lowercase()).copied();
        // Bounded: a file of a million distinct names does not keep a million entries.
        if self.found.len() < 10_000 {
            self.found.insert(name.to_string(), id);
        }
        id
    }
}

fn to_import_row(row: ImportedRow, category_id: Option<Uuid>) -> ImportRow {
    ImportRow {
        date: row.date,
        amount: row.amount_minor,
        description: truncate(row.description, 500),
        merchant: truncate(row.payee.unwrap_or_default(), 200),
        notes: truncate(row.notes.unwrap_or_default(), 5000),
        external_id: None,
        category_id,
        category_source: None,
        confidence: None,
        tags: Vec::new(),
    }
}

/// At most `max` characters, without control characters (newlines stay) or surrounding blanks.
fn truncate(s: String, max: usize) -> String {
    // Most texts need nothing: keep them as they are (no copy).
    if s.len() <= max
        && !s.chars().any(|c| c.is_control() && c != '\n')
        && s.trim().len() == s.len()
    {
        return s;
    }
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .take(max)
        .collect::<String>()
        .trim()
        .to_string()
}

// ---- backups --------------------------------------------------------------------------------

#[derive(Serialize, Deserialize)]
struct Backup {
    format: String,
    version: u32,
    exported_at: String,
    base_currency: String,
    accounts: Vec<BackupAccount>,
    categories: Vec<BackupCategory>,
    transactions: Vec<BackupTransaction>,
    exchange_rates: Vec<BackupRate>,
}

#[derive(Serialize, Deserialize)]
struct BackupAccount {
    id: String,
    name: String,
    kind: String,
    currency: String,
    opening_balance: String,
    opening_date: Day,
    number_hint: Option<String>,
    archived: bool,
}

#[derive(Serialize, Deserialize)]
struct BackupCategory {
    id: String,
    name: String,
    parent_id: Option<String>,
    kind: String,
    color: Option<String>,
    icon: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct BackupTransaction {
    id: String,
    account_id: String,
    amount: String,
    date: Day,
    occurred_at: Option<chrono::DateTime<Utc>>,
    description: String,
    merchant: String,
    category_id: Option<String>,
    category_source: String,
    confidence: Option<f64>,
    tags: Vec<String>,
    notes: String,
    transfer_id: Option<String>,
    foreign_amount: Option<String>,
    foreign_currency: Option<String>,
    source: String,
    external_id: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct BackupRate {
    base: String,
    quote: String,
    date: Day,
    rate: String,
}

const BACKUP_FORMAT: &str = "ledgerline-backup";

async fn restore(
    state: &AppState,
    who: &Principal,
    body: &[u8],
    idempotency: Option<crate::actors::ledger::IdempotencyKey>,
) -> Result<HttpResponse, ApiError> {
    let backup: Backup = super::json::parse(body)?;
    if backup.format != BACKUP_FORMAT || backup.version != 1 {
        return Err(ApiError::validation(
            "format",
            "is not a Ledgerline backup (version 1)",
        ));
    }
    let set = web::block({
        let user_id = who.user_id().to_string();
        move || restore_set(&user_id, backup)
    })
    .await
    .map_err(ApiError::internal)??;
    let reply = ask(
        state,
        who.user_id(),
        Restore {
            set: Handoff::new(set),
            idempotency,
        },
    )
    .await??;
    Ok(super::ledger::respond(reply))
}

/// Check a backup and give everything new ids (a backup can be restored next to its original).
fn restore_set(user_id: &str, b: Backup) -> Result<RestoreSet, ApiError> {
    let now = crate::store::now();
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut fresh = |old: &str| {
        ids.entry(old.to_string())
            .or_insert_with(|| Uuid::now_v7().to_string())
            .clone()
    };
    let bad = |field: String, m: String| ApiError::Validation(vec![FieldError::new(field, m)]);
    // The same rules as the API's: every id once, categories two levels deep under parents of the
    // backup, account names unique, texts and tags within their limits, transfers of two legs.
    let unique = |field: &str, ids: Vec<&str>| -> Result<(), ApiError> {
        let mut seen = HashSet::new();
        match ids
            .into_iter()
            .enumerate()
            .find(|(_, id)| !seen.insert(*id))
        {
            Some((i, _)) => Err(bad(format!("{field}[{i}].id"), "repeats an id".into())),
            None => Ok(()),
        }
    };
    unique(
        "categories",
        b.categories.iter().map(|c| c.id.as_str()).collect(),
    )?;
    unique(
        "accounts",
        b.accounts.iter().map(|a| a.id.as_str()).collect(),
    )?;
    unique(
        "transactions",
        b.transactions.iter().map(|t| t.id.as_str()).collect(),
    )?;
    let parents: HashMap<&str, Option<&str>> = b
        .categories
        .iter()
        .map(|c| (c.id.as_str(), c.parent_id.as_deref()))
        .collect();
    let mut categories = Vec::new();
    for (i, c) in b.categories.iter().enumerate() {
        CategoryKind::parse(&c.kind).map_err(|m| bad(format!("categories[{i}].kind"), m))?;
        let name = parse_name(&c.name, 60).map_err(|m| bad(format!("categories[{i}].name"), m))?;
        if let Some(parent) = c.parent_id.as_deref() {
            match parents.get(parent) {
                None => {
                    return Err(bad(
                        format!("categories[{i}].parent_id"),
                        "names no category of the backup".into(),
                    ))
                }
                Some(Some(_)) => {
                    return Err(bad(
                        format!("categories[{i}].parent_id"),
                        "names a subcategory: categories are two levels deep".into(),
                    ))
                }
                Some(None) => {}
            }
        }
        categories.push(CategoryRow {
            id: fresh(&c.id),
            user_id: user_id.to_string(),
            name,
            parent_id: c.parent_id.as_deref().map(&mut fresh),
            kind: c.kind.clone(),
            color: c.color.clone(),
            icon: c.icon.clone(),
            created_at: now,
            updated_at: now,
            version: 1,
        });
    }
    let mut currencies: HashMap<String, Currency> = HashMap::new();
    let mut accounts = Vec::new();
    for (i, a) in b.accounts.iter().enumerate() {
        let currency =
            Currency::parse(&a.currency).map_err(|m| bad(format!("accounts[{i}].currency"), m))?;
        AccountKind::parse(&a.kind).map_err(|m| bad(format!("accounts[{i}].kind"), m))?;
        let opening = parse_amount(&a.opening_balance, currency)
            .map_err(|e| bad(format!("accounts[{i}].opening_balance"), e.to_string()))?;
        let name = parse_name(&a.name, 100).map_err(|m| bad(format!("accounts[{i}].name"), m))?;
        if accounts
            .iter()
            .any(|other: &AccountRow| other.name.to_lowercase() == name.to_lowercase())
        {
            return Err(bad(
                format!("accounts[{i}].name"),
                "another account of the backup has this name".into(),
            ));
        }
        let id = fresh(&a.id);
        currencies.insert(id.clone(), currency);
        accounts.push(AccountRow {
            id,
            user_id: user_id.to_string(),
            name,
            kind: a.kind.clone(),
            currency: currency.code().to_string(),
            opening_balance: opening,
            opening_date: a.opening_date.into(),
            number_hint: a.number_hint.clone(),
            archived: a.archived,
            created_at: now,
            updated_at: now,
            version: 1,
        });
    }
    let known_categories: HashSet<String> = categories.iter().map(|c| c.id.clone()).collect();
    let mut transactions = Vec::new();
    for (i, t) in b.transactions.iter().enumerate() {
        let account_id = fresh(&t.account_id);
        let currency = *currencies.get(&account_id).ok_or_else(|| {
            bad(
                format!("transactions[{i}].account_id"),
                "names no account of the backup".into(),
            )
        })?;
        let amount = parse_amount(&t.amount, currency)
            .map_err(|e| bad(format!("transactions[{i}].amount"), e.to_string()))?;
        if amount == 0 {
            return Err(bad(
                format!("transactions[{i}].amount"),
                "must not be zero".into(),
            ));
        }
        let field = |name: &str| format!("transactions[{i}].{name}");
        let description =
            parse_text(&t.description, 500).map_err(|m| bad(field("description"), m))?;
        let merchant = parse_text(&t.merchant, 200).map_err(|m| bad(field("merchant"), m))?;
        let notes = parse_text(&t.notes, 5000).map_err(|m| bad(field("notes"), m))?;
        let tags = parse_tags(&t.tags).map_err(|m| bad(field("tags"), m))?;
        let source = TxnSource::parse(&t.source).map_err(|m| bad(field("source"), m))?;
        let category_source = CategorySource::parse(&t.category_source)
            .map_err(|m| bad(field("category_source"), m))?;
        if t.confidence.is_some_and(|c| !(0.0..=1.0).contains(&c)) {
            return Err(bad(field("confidence"), "must be between 0 and 1".into()));
        }
        if t.external_id
            .as_ref()
            .is_some_and(|e| e.is_empty() || e.chars().count() > 200)
        {
            return Err(bad(
                field("external_id"),
                "must have 1 to 200 characters".into(),
            ));
        }
        if t.foreign_amount.is_some() != t.foreign_currency.is_some() {
            return Err(bad(
                field("foreign_amount"),
                "comes with foreign_currency, and only with it".into(),
            ));
        }
        let foreign = match (&t.foreign_amount, &t.foreign_currency) {
            (Some(a), Some(c)) => {
                let c = Currency::parse(c)
                    .map_err(|m| bad(format!("transactions[{i}].foreign_currency"), m))?;
                Some((
                    parse_amount(a, c).map_err(|e| {
                        bad(format!("transactions[{i}].foreign_amount"), e.to_string())
                    })?,
                    c,
                ))
            }
            _ => None,
        };
        let category_id = t
            .category_id
            .as_deref()
            .map(&mut fresh)
            .filter(|c| known_categories.contains(c));
        transactions.push(TransactionRow {
            id: Uuid::now_v7().to_string(),
            user_id: user_id.to_string(),
            account_id,
            amount,
            currency: currency.code().to_string(),
            date: t.date.into(),
            occurred_at: t.occurred_at.map(|d| d.naive_utc()),
            description,
            merchant,
            category_source: if category_id.is_some() {
                category_source.as_str().to_string()
            } else {
                "none".into()
            },
            category_id,
            confidence: t.confidence,
            tags: serde_json::to_string(&tags).map_err(ApiError::internal)?,
            notes,
            transfer_id: t.transfer_id.as_deref().map(&mut fresh),
            foreign_amount: foreign.map(|f| f.0),
            foreign_currency: foreign.map(|f| f.1.code().to_string()),
            source: source.as_str().to_string(),
            external_id: t.external_id.clone(),
            created_at: now,
            updated_at: now,
            version: 1,
        });
    }
    let mut legs: HashMap<&str, Vec<&TransactionRow>> = HashMap::new();
    for t in &transactions {
        if let Some(id) = t.transfer_id.as_deref() {
            legs.entry(id).or_default().push(t);
        }
    }
    for (id, pair) in &legs {
        let whole = matches!(pair.as_slice(), [a, b]
            if a.account_id != b.account_id && (a.amount < 0) != (b.amount < 0));
        if !whole {
            let i = transactions
                .iter()
                .position(|t| t.transfer_id.as_deref() == Some(*id))
                .unwrap_or_default();
            return Err(bad(
                format!("transactions[{i}].transfer_id"),
                "a transfer has two legs, one out of an account and one into another".into(),
            ));
        }
    }
    let mut balances: HashMap<&str, i128> = accounts
        .iter()
        .map(|a| (a.id.as_str(), i128::from(a.opening_balance)))
        .collect();
    for t in &transactions {
        *balances.entry(t.account_id.as_str()).or_default() += i128::from(t.amount);
    }
    if let Some(i) = accounts.iter().position(|a| {
        balances
            .get(a.id.as_str())
            .is_some_and(|b| b.abs() > i128::from(MAX_MINOR))
    }) {
        return Err(bad(
            format!("accounts[{i}]"),
            "its transactions take its balance beyond the largest an account can hold".into(),
        ));
    }
    let mut rates = Vec::new();
    for (i, r) in b.exchange_rates.iter().enumerate() {
        rates.push(RateInput {
            base: Currency::parse(&r.base)
                .map_err(|m| bad(format!("exchange_rates[{i}].base"), m))?,
            quote: Currency::parse(&r.quote)
                .map_err(|m| bad(format!("exchange_rates[{i}].quote"), m))?,
            date: r.date.into(),
            rate: Rate::parse(&r.rate).map_err(|m| bad(format!("exchange_rates[{i}].rate"), m))?,
        });
    }
    Ok(RestoreSet {
        categories,
        accounts,
        transactions,
        rates,
    })
}

// ---- exports --------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    format: String,
}

fn attachment(name: String, content_type: &'static str, body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename(name)],
        })
        .body(body)
}

async fn export(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    if !["csv", "ledger", "json"].contains(&query.format.as_str()) {
        return Err(ApiError::validation(
            "format",
            "must be csv, ledger or json",
        ));
    }
    // Ask the Ledger first: every write acknowledged before this point is in the database.
    let accounts: Vec<AccountView> = ask(&state, who.user_id(), ListAccounts).await?;
    let categories: Vec<CategoryView> = ask(&state, who.user_id(), ListCategories).await?;
    let rates: Vec<RateInput> = ask(&state, who.user_id(), ListRates).await?;
    let uid = who.user_id().to_string();
    let rows = state
        .db
        .run(move |conn| q::all_transactions(conn, &uid))
        .await?;
    let stamp = Utc::now().format("%Y%m%d");
    let format = query.format.clone();
    let base = who.user.base_currency.clone();
    let out = web::block(move || -> Result<Vec<u8>, ApiError> {
        match format.as_str() {
            "csv" => export_csv(&accounts, &categories, &rows),
            "ledger" => export_journal(&accounts, &categories, rows),
            _ => export_json(base, &accounts, &categories, &rows, &rates),
        }
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(match query.format.as_str() {
        "csv" => attachment(
            format!("ledgerline-{stamp}.csv"),
            "text/csv; charset=utf-8",
            out,
        ),
        "ledger" => attachment(
            format!("ledgerline-{stamp}.journal"),
            "text/plain; charset=utf-8",
            out,
        ),
        _ => attachment(format!("ledgerline-{stamp}.json"), "application/json", out),
    })
}

fn category_paths(categories: &[CategoryView]) -> HashMap<String, String> {
    let by_id: HashMap<&str, &CategoryView> =
        categories.iter().map(|c| (c.id.as_str(), c)).collect();
    categories
        .iter()
        .map(|c| {
            let path = match c.parent_id.as_deref().and_then(|p| by_id.get(p)) {
                Some(p) => format!("{}:{}", p.name, c.name),
                None => c.name.clone(),
            };
            (c.id.clone(), path)
        })
        .collect()
}

fn export_csv(
    accounts: &[AccountView],
    categories: &[CategoryView],
    rows: &[TransactionRow],
) -> Result<Vec<u8>, ApiError> {
    let names: HashMap<&str, &str> = accounts
        .iter()
        .map(|a| (a.id.as_str(), a.name.as_str()))
        .collect();
    let paths = category_paths(categories);
    let mut w = csv::Writer::from_writer(Vec::new());
    let header = [
        "id",
        "date",
        "account",
        "amount",
        "currency",
        "description",
        "merchant",
        "category",
        "tags",
        "notes",
        "transfer_id",
        "external_id",
    ];
    w.write_record(header).map_err(ApiError::internal)?;
    for r in rows {
        let view = TransactionView::new(r);
        let category = r
            .category_id
            .as_ref()
            .and_then(|c| paths.get(c))
            .map(String::as_str)
            .unwrap_or("");
        w.write_record([
            view.id.as_str(),
            &view.date.to_string(),
            &text_cell(names.get(r.account_id.as_str()).copied().unwrap_or("")),
            &view.amount,
            &view.currency,
            &text_cell(&view.description),
            &text_cell(&view.merchant),
            &text_cell(category),
            &text_cell(&view.tags.join(",")),
            &text_cell(&view.notes),
            view.transfer_id.as_deref().unwrap_or(""),
            &text_cell(view.external_id.as_deref().unwrap_or("")),
        ])
        .map_err(ApiError::internal)?;
    }
    w.into_inner()
        .map_err(|e| ApiError::internal(anyhow::anyhow!("{e}")))
}

/// A text cell a spreadsheet will not run: text starting with `=`, `+`, `-`, `@`, a tab or a
/// carriage return (a bank's payee text can be anything) gets a leading `'`, as OWASP advises
/// against CSV injection. Amounts and dates are written as they are.
fn text_cell(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}").into()
    } else {
        text.into()
    }
}

fn export_journal(
    accounts: &[AccountView],
    categories: &[CategoryView],
    rows: Vec<TransactionRow>,
) -> Result<Vec<u8>, ApiError> {
    let paths = category_paths(categories);
    let journal_accounts: Vec<JournalAccount> = accounts
        .iter()
        .filter_map(|a| {
            let currency = Currency::parse(&a.currency).ok()?;
            Some(JournalAccount {
                id: a.id.clone(),
                name: a.name.clone(),
                kind: a.kind.clone(),
                currency,
                opening_balance_minor: parse_minor(&a.opening_balance, currency).ok()?,
                opening_date: a.opening_date,
            })
        })
        .collect();
    let txns = rows.into_iter().map(|r| JournalTxn {
        category_path: r.category_id.as_ref().and_then(|c| paths.get(c)).cloned(),
        tags: serde_json::from_str(&r.tags).unwrap_or_default(),
        payee: (!r.merchant.is_empty()).then(|| r.merchant.clone()),
        notes: (!r.notes.is_empty()).then(|| r.notes.clone()),
        id: r.id,
        date: r.date,
        description: r.description,
        account_id: r.account_id,
        amount_minor: r.amount,
        transfer_id: r.transfer_id,
    });
    let mut out = Vec::new();
    write_ledger_journal(&mut out, &journal_accounts, txns).map_err(ApiError::internal)?;
    Ok(out)
}

fn export_json(
    base: String,
    accounts: &[AccountView],
    categories: &[CategoryView],
    rows: &[TransactionRow],
    rates: &[RateInput],
) -> Result<Vec<u8>, ApiError> {
    let backup = Backup {
        format: BACKUP_FORMAT.into(),
        version: 1,
        exported_at: Utc::now().to_rfc3339(),
        base_currency: base,
        accounts: accounts
            .iter()
            .map(|a| BackupAccount {
                id: a.id.clone(),
                name: a.name.clone(),
                kind: a.kind.clone(),
                currency: a.currency.clone(),
                opening_balance: a.opening_balance.clone(),
                opening_date: Day(a.opening_date),
                number_hint: a.number_hint.clone(),
                archived: a.archived,
            })
            .collect(),
        categories: categories
            .iter()
            .map(|c| BackupCategory {
                id: c.id.clone(),
                name: c.name.clone(),
                parent_id: c.parent_id.clone(),
                kind: c.kind.clone(),
                color: c.color.clone(),
                icon: c.icon.clone(),
            })
            .collect(),
        transactions: rows
            .iter()
            .map(|r| {
                let v = TransactionView::new(r);
                BackupTransaction {
                    id: v.id,
                    account_id: v.account_id,
                    amount: v.amount,
                    date: Day(v.date),
                    occurred_at: v.occurred_at,
                    description: v.description,
                    merchant: v.merchant,
                    category_id: v.category_id,
                    category_source: v.category_source,
                    confidence: v.confidence,
                    tags: v.tags,
                    notes: v.notes,
                    transfer_id: v.transfer_id,
                    foreign_amount: v.foreign_amount,
                    foreign_currency: v.foreign_currency,
                    source: v.source,
                    external_id: v.external_id,
                }
            })
            .collect(),
        exchange_rates: rates
            .iter()
            .map(|r| BackupRate {
                base: r.base.code().to_string(),
                quote: r.quote.code().to_string(),
                date: Day(r.date),
                rate: r.rate.to_string(),
            })
            .collect(),
    };
    serde_json::to_vec_pretty(&backup).map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::import::RowError;

    fn row(line: usize, day: u32, amount: i64, description: &str) -> ImportedRow {
        ImportedRow {
            line,
            date: NaiveDate::from_ymd_opt(2026, 3, day).unwrap(),
            amount_minor: amount,
            description: description.to_string(),
            payee: None,
            notes: None,
            external_id: None,
            category: Some("Groceries".into()),
            transfer_account: None,
            currency: None,
            account_hint: None,
        }
    }

    /// A file long enough to be checked on two threads gets exactly the keys, skips and failures
    /// a row-by-row reading gives: identical rows in both halves are numbered #1, #2 in file
    /// order, an id seen in the first half makes its repeat in the second a duplicate, and
    /// failures keep their lines.
    #[test]
    fn a_long_file_checked_on_two_threads_keeps_file_order() {
        let n = 2 * PREPARE_IN_TWO_FROM;
        let mut rows: Vec<ImportedRow> = (0..n)
            .map(|i| {
                row(
                    i + 2,
                    1 + (i % 28) as u32,
                    -100 - i as i64,
                    &format!("row {i}"),
                )
            })
            .collect();
        // The same coffee twice, one in each half; the same bank id twice, one in each half.
        rows[10] = row(12, 5, -450, "Coffee");
        rows[n - 10] = row(n - 8, 5, -450, "Coffee");
        rows[20].external_id = Some("FIT-1".into());
        rows[n - 20].external_id = Some("FIT-1".into());
        // A row in the second half that fails.
        rows[n - 30].amount_minor = MAX_MINOR + 1;
        let account = Uuid::now_v7();
        let index = HashMap::from([("groceries".to_string(), Uuid::now_v7())]);
        let checked = check_rows(
            Parsed {
                rows: rows.clone(),
                errors: vec![RowError {
                    line: 1,
                    reason: "unreadable".into(),
                }],
            },
            &HashSet::new(),
            account,
            Currency::parse("EUR").unwrap(),
            &index,
            1000,
        );
        assert_eq!(checked.skipped, 1);
        let lines: Vec<usize> = checked.failed.iter().map(|f| f.line).collect();
        assert_eq!(lines, vec![1, n - 28]);
        assert_eq!(checked.rows().count(), n - 2);
        // Chunks of the size asked for, the last one shorter.
        assert!(checked.chunks.iter().rev().skip(1).all(|c| c.len() == 1000));
        assert_eq!(checked.chunks.last().map(Vec::len), Some((n - 2) % 1000));
        let key_of = |line: usize| {
            checked
                .rows()
                .find(|(l, _)| *l == line)
                .and_then(|(_, r)| r.external_id.clone())
                .unwrap()
        };
        let coffee = rows[10].content_digest(&account.to_string());
        let prefix = format!("h:2026-03-05:{}#", hex::encode(&coffee[..16]));
        assert_eq!(key_of(12), format!("{prefix}1"));
        assert_eq!(key_of(n - 8), format!("{prefix}2"));
        assert_eq!(key_of(22), "FIT-1");
        assert!(checked.rows().all(|(l, _)| l != n - 18));
        assert!(checked
            .rows()
            .all(|(_, r)| r.category_id == index.get("groceries").copied()));
        // In date order, and in file order within a day.
        let order: Vec<(NaiveDate, usize)> = checked.rows().map(|(l, r)| (r.date, l)).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]));
    }
}
