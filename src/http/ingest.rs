//! `POST /api/v1/ingest/messages`: a bank SMS or notification text becomes a transaction.
//!
//! The Categorizer pool parses the text (amount, currency, direction, card or account digits,
//! merchant, date, balance, reference) or refuses it (OTP, promotion, declined payment, not a
//! transaction) with a 422 that says which. The digits pick the account by its `number_hint`.
//! The transaction's `external_id` is a hash of the text, so the same message sent twice (a
//! retrying phone, two devices forwarding it) answers the first transaction again with 200
//! and never creates a second.
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::extract::AuthUser;
use super::json::Json;
use super::ledger::{ask, today};
use super::routes::at;
use crate::actors::categorizer::ParseMessage;
use crate::actors::ledger::views::{AccountView, TransactionView};
use crate::actors::ledger::{CreateTransaction, ListAccounts, NewTransaction};
use crate::app::AppState;
use crate::domain::bank_message::{Direction, ParsedMessage};
use crate::domain::ledger::TxnSource;
use crate::domain::merchant;
use crate::error::{ApiError, FieldError};
use crate::identity::Principal;
use crate::store::ledger as q;

/// Longer than any bank message.
const MAX_TEXT: usize = 2_000;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(at("/ingest/messages").post(ingest));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageBody {
    text: String,
    sender: Option<String>,
    received_at: Option<DateTime<Utc>>,
    /// Book into this account instead of matching the message's digits.
    account_id: Option<Uuid>,
}

/// The dedup key of a message: its text with whitespace runs collapsed, hashed.
fn message_key(text: &str) -> String {
    let normalized: Vec<&str> = text.split_whitespace().collect();
    let digest = Sha256::digest(normalized.join(" ").as_bytes());
    format!("msg:{}", hex::encode(&digest[..16]))
}

/// Whether an account's `number_hint` names the digits in a message (one ends with the other,
/// at least two digits in common).
fn hint_matches(hint: &str, digits: &str) -> bool {
    let hint: String = hint.chars().filter(char::is_ascii_digit).collect();
    let (short, long) = if hint.len() <= digits.len() {
        (hint.as_str(), digits)
    } else {
        (digits, hint.as_str())
    };
    short.len() >= 2 && long.ends_with(short)
}

fn pick_account<'a>(
    accounts: &'a [AccountView],
    parsed: &ParsedMessage,
    chosen: Option<Uuid>,
) -> Result<&'a AccountView, ApiError> {
    let open = accounts.iter().filter(|a| !a.archived);
    if let Some(id) = chosen {
        let id = id.to_string();
        return accounts
            .iter()
            .find(|a| a.id == id)
            .ok_or_else(|| ApiError::validation("account_id", "no such account"));
    }
    let currency_fits =
        |a: &&AccountView| parsed.currency.as_deref().is_none_or(|c| a.currency == c);
    let candidates: Vec<&AccountView> = match parsed.last_digits.as_deref() {
        Some(digits) => {
            let by_hint: Vec<&AccountView> = open
                .filter(|a| {
                    a.number_hint
                        .as_deref()
                        .is_some_and(|h| hint_matches(h, digits))
                })
                .collect();
            if by_hint.len() > 1 {
                by_hint.iter().copied().filter(currency_fits).collect()
            } else {
                by_hint
            }
        }
        None => open.filter(currency_fits).collect(),
    };
    match candidates.as_slice() {
        [one] => Ok(one),
        [] => Err(ApiError::validation(
            "account_id",
            match &parsed.last_digits {
                Some(d) => format!(
                    "no account has number_hint matching the message's digits ({d}); set number_hint on the account or send account_id"
                ),
                None => "the message names no account or card digits and more than one (or no) account could take it; send account_id".to_string(),
            },
        )),
        _ => Err(ApiError::validation(
            "account_id",
            "more than one account matches the message; send account_id",
        )),
    }
}

async fn existing(
    state: &AppState,
    who: &Principal,
    account_id: &str,
    key: &str,
) -> Result<Option<TransactionView>, ApiError> {
    let (uid, account, key) = (
        who.user_id().to_string(),
        account_id.to_string(),
        key.to_string(),
    );
    let row = state
        .db
        .run(move |conn| q::find_by_external_id(conn, &uid, &account, &key))
        .await?;
    Ok(row.as_ref().map(TransactionView::new))
}

async fn ingest(
    state: web::Data<AppState>,
    AuthUser(who): AuthUser,
    Json(body): Json<MessageBody>,
) -> Result<HttpResponse, ApiError> {
    let text = body.text.trim().to_string();
    if text.is_empty() {
        return Err(ApiError::validation("text", "must not be empty"));
    }
    if text.chars().count() > MAX_TEXT {
        return Err(ApiError::validation(
            "text",
            format!("is longer than {MAX_TEXT} characters; that is not a bank message"),
        ));
    }
    if body
        .sender
        .as_deref()
        .is_some_and(|s| s.chars().count() > 100)
    {
        return Err(ApiError::validation(
            "sender",
            "must be at most 100 characters",
        ));
    }
    let received = body
        .received_at
        .map(|at| match who.user.timezone.parse::<chrono_tz::Tz>() {
            Ok(tz) => at.with_timezone(&tz).date_naive(),
            Err(_) => at.date_naive(),
        });
    let day = received.unwrap_or_else(|| today(&who));
    let parsed = state
        .categorizer
        .send(ParseMessage {
            text: text.clone(),
            sender: body.sender.clone(),
            today: day,
        })
        .await
        .map_err(|_| ApiError::Unavailable("The message parser is restarting; try again.".into()))?
        .map_err(|refusal| {
            let code = serde_json::to_value(refusal)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            ApiError::Validation(vec![FieldError::new(
                "text",
                format!("{} ({code})", refusal.reason()),
            )])
        })?;

    let accounts = ask(&state, who.user_id(), ListAccounts).await?;
    let account = pick_account(&accounts, &parsed, body.account_id)?;
    if let Some(c) = parsed
        .currency
        .as_deref()
        .filter(|c| *c != account.currency)
    {
        return Err(ApiError::validation(
            "text",
            format!(
                "the message is in {c} but the account `{}` is in {}; send account_id of an account in {c}",
                account.name, account.currency
            ),
        ));
    }
    let key = message_key(&text);
    if let Some(first) = existing(&state, &who, &account.id, &key).await? {
        return Ok(HttpResponse::Ok()
            .json(json!({ "duplicate": true, "parsed": parsed, "transaction": first })));
    }
    let amount = match parsed.direction {
        Direction::Debit => format!("-{}", parsed.amount),
        Direction::Credit => parsed.amount.clone(),
    };
    let merchant_name = parsed
        .merchant
        .as_deref()
        .map(|m| merchant::normalize(m).unwrap_or_else(|| m.trim().to_string()))
        .unwrap_or_default();
    // The message's own text may hold control characters the API refuses in a description
    // the client writes; here they become spaces.
    let description: String = match &parsed.merchant {
        Some(m) => m.chars().take(500).collect(),
        None => text.chars().take(120).collect(),
    };
    let visible = |t: &str| -> String {
        t.chars()
            .filter(|c| !crate::domain::ledger::is_bidi_control(*c))
            .collect()
    };
    let description = visible(&crate::domain::import::tidy(&description).unwrap_or_default());
    let notes = parsed
        .reference
        .as_ref()
        .map(|r| format!("ref {r}"))
        .unwrap_or_default();
    let input = NewTransaction {
        account_id: account.id.parse().map_err(ApiError::internal)?,
        amount,
        date: parsed.date.filter(|d| *d <= day).unwrap_or(day),
        occurred_at: body.received_at,
        description,
        merchant: visible(&merchant_name).chars().take(200).collect(),
        category_id: None,
        category_source: None,
        confidence: None,
        tags: Vec::new(),
        notes,
        foreign_amount: None,
        foreign_currency: None,
        source: TxnSource::Sms,
        external_id: Some(key.clone()),
    };
    match ask(
        &state,
        who.user_id(),
        CreateTransaction {
            input,
            idempotency: None,
        },
    )
    .await?
    {
        Ok(reply) => {
            let transaction: serde_json::Value =
                serde_json::from_str(&reply.body).map_err(ApiError::internal)?;
            Ok(HttpResponse::Created()
                .json(json!({ "duplicate": false, "parsed": parsed, "transaction": transaction })))
        }
        // The same message raced in twice: the other one won.
        Err(ApiError::Conflict(_)) => match existing(&state, &who, &account.id, &key).await? {
            Some(first) => Ok(HttpResponse::Ok()
                .json(json!({ "duplicate": true, "parsed": parsed, "transaction": first }))),
            None => Err(ApiError::Conflict(
                "The message could not be recorded; try again.".into(),
            )),
        },
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_match_on_trailing_digits() {
        assert!(hint_matches("1234", "1234"));
        assert!(hint_matches("XX1234", "1234"));
        assert!(hint_matches("234", "001234"));
        assert!(!hint_matches("1234", "1235"));
        assert!(!hint_matches("4", "1234"), "one digit is not enough");
    }

    #[test]
    fn message_keys_ignore_whitespace_only() {
        assert_eq!(
            message_key("Rs 100 debited"),
            message_key(" Rs  100\ndebited ")
        );
        assert_ne!(message_key("Rs 100 debited"), message_key("Rs 101 debited"));
    }
}
