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
    let idle = super::json::body_idle_timeout(req);
    let mut payload = payload;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = super::json::next_body_chunk(&mut payload, idle).await? {
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

/// The accounts an import is being written into. A second import into the same account while
/// one runs would check its rows against what the account held before the first one's rows
/// arrived (and find their external ids taken only when writing): it is refused with a 409
/// instead, and run again afterwards skips what the first one wrote.
#[derive(Default)]
pub struct ImportsRunning(std::sync::Mutex<HashSet<Uuid>>);

impl ImportsRunning {
    /// Mark `account` as being imported into, until the returned guard is dropped.
    fn start(&self, account: Uuid) -> Result<ImportGuard<'_>, ApiError> {
        let mut running = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !running.insert(account) {
            return Err(ApiError::Conflict(
                "An import into this account is running. Send this file again when it has finished: rows it already wrote are then skipped.".into(),
            ));
        }
        Ok(ImportGuard(self, account))
    }
}

struct ImportGuard<'a>(&'a ImportsRunning, Uuid);

impl Drop for ImportGuard<'_> {
    fn drop(&mut self) {
        let mut running = (self.0).0.lock().unwrap_or_else(|e| e.into_inner());
        running.remove(&self.1);
    }
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
    // Previews write nothing and may run beside anything.
    let _running = match query.preview {
        true => None,
        false => Some(state.imports.start(account_id)?),
    };
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
    // The checks that need no other row, and the date order. The rest of the checking (content
    // keys, duplicates of rows already in the account) goes a chunk at a time, each chunk while
    // the ones before it are written.
    let chunk_rows = state.settings.import_chunk_rows;
    let checker = web::block(move || {
        RowChecker::new(parsed, existing, account_id, currency, index, chunk_rows)
    })
    .await
    .map_err(ApiError::internal)?;
    let total = checker.candidates();
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
        skipped_duplicates: 0,
        failed: Vec::new(),
        samples: Vec::new(),
    };
    if query.preview {
        let (checker, would_create, samples) = web::block(move || {
            let mut checker = checker;
            let (mut count, mut samples) = (0, Vec::new());
            while let Some(chunk) = checker.next_chunk() {
                count += chunk.len();
                if samples.len() < SAMPLES {
                    samples.extend(chunk.samples(SAMPLES - samples.len(), currency));
                }
            }
            (checker, count, samples)
        })
        .await
        .map_err(ApiError::internal)?;
        report.skipped_duplicates = checker.skipped;
        report.failed = checker.failed;
        report.samples = samples;
        return Ok(
            HttpResponse::Ok().json(json!({ "would_create": would_create, "report": report }))
        );
    }

    // Chunk k is sent with chunk k+1 (the Ledger prepares that one while the writer commits k),
    // and chunk k+2 is checked meanwhile.
    let (checker, first) = next_chunk(checker).await?;
    let Some(mut current) = first else {
        report.skipped_duplicates = checker.skipped;
        report.failed = checker.failed;
        return Ok(HttpResponse::Ok().json(report));
    };
    let (mut checker, mut upcoming) = next_chunk(checker).await?;
    let mut created = 0;
    loop {
        let n = current.len();
        let last = upcoming.is_none();
        // The last chunk carries the whole report (as it will be once that chunk is in), to be
        // kept with the Idempotency-Key in the same commit.
        let (finished, completed) = if last {
            report.created = created + n;
            report.skipped_duplicates = checker.skipped;
            report.failed = std::mem::take(&mut checker.failed);
            let summary = ImportSummary {
                import_id: import_id.clone(),
                account_id,
                created: report.created,
                skipped_duplicates: report.skipped_duplicates,
                failed: report.failed.len(),
            };
            (
                Some(serde_json::to_string(&report).map_err(ApiError::internal)?),
                Some(summary),
            )
        } else {
            (None, None)
        };
        let message = ImportChunk {
            account_id,
            rows: current.handoff.clone(),
            next: upcoming.as_ref().map(|c| c.handoff.clone()),
            source: TxnSource::Import,
            import_id: import_id.clone(),
            // The progress event (`processed` + this chunk's rows) counts the rows checked so
            // far, written or skipped as already there; with the last chunk, all of them.
            processed: if last {
                checker.checked
            } else {
                current.checked
            } - n,
            total,
            completed,
            idempotency: if last { idempotency.clone() } else { None },
            report: finished,
        };
        let (answer, after) = match upcoming.is_some() {
            true => {
                let (answer, after) = futures_util::future::join(
                    ask(&state, who.user_id(), message),
                    next_chunk(checker),
                )
                .await;
                (answer, Some(after?))
            }
            false => (ask(&state, who.user_id(), message).await, None),
        };
        if let Err(e) = answer? {
            tracing::warn!(import_id = %import_id, created, total, error = %e, "import stopped part way");
            return Err(match e {
                ApiError::Conflict(_) | ApiError::Unavailable(_) => ApiError::Unavailable(format!(
                    "The import stopped after {created} of {total} new rows ({e}). Run it again: rows already imported are skipped."
                )),
                // A chunk the ledger refused (the balance would pass the limit, the account was
                // archived meanwhile): say that the chunks before it stay written.
                ApiError::Validation(mut errors) if created > 0 => {
                    if let Some(first) = errors.first_mut() {
                        first.message = format!(
                            "{} (the import stopped after {created} of {total} new rows; those stay written and are skipped when the file is sent again)",
                            first.message
                        );
                    }
                    ApiError::Validation(errors)
                }
                other => other,
            });
        }
        created += n;
        tracing::debug!(
            processed = created,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "import chunk in"
        );
        match (upcoming, after) {
            (Some(next), Some((c, later))) => {
                current = next;
                upcoming = later;
                checker = c;
            }
            _ => break,
        }
    }
    Ok(HttpResponse::Ok().json(report))
}

/// [`RowChecker::next_chunk`] off the event loop.
async fn next_chunk(
    mut checker: RowChecker,
) -> Result<(RowChecker, Option<CheckedChunk>), ApiError> {
    web::block(move || {
        let started = std::time::Instant::now();
        let chunk = checker.next_chunk();
        tracing::debug!(
            rows = chunk.as_ref().map_or(0, CheckedChunk::len),
            checked = checker.checked,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "import chunk checked"
        );
        (checker, chunk)
    })
    .await
    .map_err(ApiError::internal)
}

/// Checks and deduplicates the rows of a parsed file, in date order (file order within a day),
/// a chunk at a time: the first chunk can be written while the rest are still being checked.
///
/// Up front ([`RowChecker::new`]), in file order: the checks that need no other row (date,
/// amount, currency) and repeats within the file of an `external_id`. Then chunk by chunk: each
/// row's deduplication key and whether the account already holds it. A row without an
/// `external_id` is keyed by its date, the start of its content hash and which occurrence of that
/// content it is in the file, so two identical rows of one statement are both kept; identical rows
/// share their date, so counting them in date order (file order within the day) numbers them as
/// file order does.
struct RowChecker {
    /// The parsed rows in file order, each taken when its chunk is checked.
    rows: Vec<Option<ImportedRow>>,
    /// Where in `rows` the rows that passed the first checks are, in date order.
    order: Vec<usize>,
    /// How many of `order` have been checked.
    checked: usize,
    chunk_rows: usize,
    account_key: String,
    existing: HashSet<String>,
    categories: HashMap<String, Uuid>,
    /// Occurrences so far of each content, keyed by the first half of its SHA-256 (the part the
    /// key keeps).
    occurrences: HashMap<[u8; 16], usize>,
    /// Rows that will not be written, and why.
    failed: Vec<FailedRow>,
    /// Duplicates skipped so far: within the file, or already in the account.
    skipped: usize,
}

/// Rows to write, in date order, with where they are in the file.
struct CheckedChunk {
    /// The rows, shared with the Ledger messages that carry them.
    handoff: Handoff<Vec<ImportRow>>,
    /// The line in the file of each row.
    lines: Vec<usize>,
    /// How many rows of the date order had been checked once this chunk was complete.
    checked: usize,
}

impl CheckedChunk {
    fn len(&self) -> usize {
        self.lines.len()
    }

    /// The first `max` rows as a preview shows them.
    fn samples(self, max: usize, currency: Currency) -> Vec<Sample> {
        let rows = self.handoff.take().unwrap_or_default();
        self.lines
            .into_iter()
            .zip(rows)
            .take(max)
            .map(|(line, r)| Sample {
                line,
                date: r.date,
                amount: crate::domain::money::format_minor(r.amount, currency.exponent()),
                description: r.description,
                merchant: r.merchant,
                category_id: r.category_id,
                external_id: r.external_id,
            })
            .collect()
    }
}

impl RowChecker {
    fn new(
        parsed: Parsed,
        existing: HashSet<String>,
        account_id: Uuid,
        currency: Currency,
        categories: HashMap<String, Uuid>,
        chunk_rows: usize,
    ) -> RowChecker {
        let mut failed: Vec<FailedRow> = parsed
            .errors
            .into_iter()
            .map(|e| FailedRow {
                line: e.line,
                reason: e.reason,
            })
            .collect();
        let mut seen: HashSet<&str> = HashSet::new();
        let mut skipped = 0;
        let mut order: Vec<(NaiveDate, usize)> = Vec::with_capacity(parsed.rows.len());
        for (i, row) in parsed.rows.iter().enumerate() {
            if let Some(reason) = row_problem(row, currency) {
                failed.push(FailedRow {
                    line: row.line,
                    reason,
                });
                continue;
            }
            if let Some(id) = &row.external_id {
                if !seen.insert(id) {
                    skipped += 1;
                    continue;
                }
            }
            order.push((row.date, i));
        }
        drop(seen);
        order.sort_unstable();
        RowChecker {
            // Same size as the rows themselves: collected in place, no new memory.
            rows: parsed.rows.into_iter().map(Some).collect(),
            order: order.into_iter().map(|(_, i)| i).collect(),
            checked: 0,
            chunk_rows: chunk_rows.max(1),
            account_key: account_id.to_string(),
            existing,
            categories,
            occurrences: HashMap::new(),
            failed,
            skipped,
        }
    }

    /// Rows that passed the first checks: the most that can be written.
    fn candidates(&self) -> usize {
        self.order.len()
    }

    /// The next rows to write, up to a chunk's worth; `None` once every row is checked and none
    /// is left.
    fn next_chunk(&mut self) -> Option<CheckedChunk> {
        let left = self.order.len() - self.checked;
        let size = left.min(self.chunk_rows);
        if self.occurrences.capacity() == 0 {
            self.occurrences.reserve(self.order.len());
        }
        let mut rows = Vec::with_capacity(size);
        let mut lines = Vec::with_capacity(size);
        let mut categories = CategoryCache::new(&self.categories);
        while rows.len() < self.chunk_rows && self.checked < self.order.len() {
            let i = self.order[self.checked];
            self.checked += 1;
            let Some(mut row) = self.rows[i].take() else {
                continue;
            };
            let key = match row.external_id.take() {
                Some(id) => id,
                None => {
                    let digest = row.content_digest(&self.account_key);
                    let mut half = [0u8; 16];
                    half.copy_from_slice(&digest[..16]);
                    let n = self.occurrences.entry(half).or_insert(0);
                    *n += 1;
                    let mut key = content_key_prefix(row.date, &half);
                    let _ = std::fmt::Write::write_fmt(&mut key, format_args!("{n}"));
                    key
                }
            };
            if self.existing.contains(&key) {
                self.skipped += 1;
                continue;
            }
            let category_id = row.category.as_deref().and_then(|c| categories.find(c));
            lines.push(row.line);
            let mut out = to_import_row(row, category_id);
            out.external_id = Some(truncate(key, 200));
            rows.push(out);
        }
        if rows.is_empty() {
            return None;
        }
        Some(CheckedChunk {
            handoff: Handoff::new(rows),
            lines,
            checked: self.checked,
        })
    }
}

/// Why a row cannot be imported, as far as the row alone tells.
fn row_problem(row: &ImportedRow, currency: Currency) -> Option<String> {
    if let Err(e) = crate::domain::day::check(row.date) {
        return Some(format!("the date {e}"));
    }
    if let Err(e) = check_amount(row.amount_minor, currency) {
        return Some(format!("the amount {e}"));
    }
    match &row.currency {
        Some(c) if c != currency.code() => Some(format!(
            "the row is in {c} but the account is in {currency}"
        )),
        _ => None,
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

    /// Every row checked, chunk by chunk, with its line.
    fn check_all(mut checker: RowChecker) -> (RowChecker, Vec<(usize, ImportRow)>, Vec<usize>) {
        let (mut rows, mut sizes) = (Vec::new(), Vec::new());
        while let Some(chunk) = checker.next_chunk() {
            sizes.push(chunk.len());
            let taken = chunk.handoff.take().unwrap();
            rows.extend(chunk.lines.into_iter().zip(taken));
        }
        (checker, rows, sizes)
    }

    /// Checked chunk by chunk in date order, a file gets exactly the keys, skips and failures a
    /// row-by-row reading in file order gives: identical rows far apart are numbered #1, #2 in
    /// file order, an id seen early makes its later repeat a duplicate, a key the account holds
    /// is skipped without leaving its chunk short, and failures keep their lines.
    #[test]
    fn a_file_checked_chunk_by_chunk_keeps_file_order() {
        let n = 16_384;
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
        // The same coffee twice, far apart; the same bank id twice, far apart.
        rows[10] = row(12, 5, -450, "Coffee");
        rows[n - 10] = row(n - 8, 5, -450, "Coffee");
        rows[20].external_id = Some("FIT-1".into());
        rows[n - 20].external_id = Some("FIT-1".into());
        // A row that fails, and one the account already holds.
        rows[n - 30].amount_minor = MAX_MINOR + 1;
        rows[40].external_id = Some("FIT-OLD".into());
        let account = Uuid::now_v7();
        let index = HashMap::from([("groceries".to_string(), Uuid::now_v7())]);
        let checker = RowChecker::new(
            Parsed {
                rows: rows.clone(),
                errors: vec![RowError {
                    line: 1,
                    reason: "unreadable".into(),
                }],
            },
            HashSet::from(["FIT-OLD".to_string()]),
            account,
            Currency::parse("EUR").unwrap(),
            index.clone(),
            1000,
        );
        assert_eq!(checker.candidates(), n - 2);
        let (checker, checked, sizes) = check_all(checker);
        assert_eq!(checker.skipped, 2);
        let lines: Vec<usize> = checker.failed.iter().map(|f| f.line).collect();
        assert_eq!(lines, vec![1, n - 28]);
        assert_eq!(checked.len(), n - 3);
        // Chunks of the size asked for, the last one shorter.
        assert!(sizes.iter().rev().skip(1).all(|&s| s == 1000));
        assert_eq!(sizes.last(), Some(&((n - 3) % 1000)));
        let key_of = |line: usize| {
            checked
                .iter()
                .find(|(l, _)| *l == line)
                .and_then(|(_, r)| r.external_id.clone())
                .unwrap()
        };
        let coffee = rows[10].content_digest(&account.to_string());
        let prefix = format!("h:2026-03-05:{}#", hex::encode(&coffee[..16]));
        assert_eq!(key_of(12), format!("{prefix}1"));
        assert_eq!(key_of(n - 8), format!("{prefix}2"));
        assert_eq!(key_of(22), "FIT-1");
        assert!(checked.iter().all(|(l, _)| *l != n - 18 && *l != 42));
        assert!(checked
            .iter()
            .all(|(_, r)| r.category_id == index.get("groceries").copied()));
        // In date order, and in file order within a day.
        let order: Vec<(NaiveDate, usize)> = checked.iter().map(|(l, r)| (r.date, *l)).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]));
    }
}
