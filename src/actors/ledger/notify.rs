//! The Ledger's side of notifications: the user's webhooks and preferences (kept in memory), and
//! the outbox rows each commit carries. Every event a commit publishes is routed here before the
//! commit is written: in-app notifications and emails for the kinds users are notified of (per
//! their preferences), and one delivery per subscribed webhook. The rows are part of the same
//! database transaction as the change, so an alert is never lost and never sent for a change
//! that did not happen.
use chrono::{NaiveDate, NaiveDateTime};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::plan::{check_version, json_reply, now, Plan};
use super::{Effect, LedgerState};
use crate::domain::events::Envelope;
use crate::domain::money::format_minor;
use crate::domain::notify::{
    notifying_kind, subscribed, Preferences, PreferencesInput, WEBHOOK_EVENTS,
};
use crate::domain::Currency;
use crate::error::{ApiError, FieldError};
use crate::store::budgets::NotificationRow;
use crate::store::notify::{PreferencesRow, WebhookRow};
use crate::store::writer::WriteOp;

/// Webhooks per user.
const MAX_WEBHOOKS: usize = 20;

/// The user's webhooks and notification preferences.
#[derive(Default)]
pub(crate) struct NotifyState {
    pub prefs: Preferences,
    pub webhooks: Vec<WebhookRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: String,
    pub active: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub version: i64,
    /// Only in the answer that creates the webhook or rotates its secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl WebhookView {
    fn new(row: &WebhookRow, with_secret: bool) -> Self {
        WebhookView {
            id: row.id.clone(),
            url: row.url.clone(),
            event_types: row.types(),
            description: row.description.clone(),
            active: row.active,
            created_at: crate::store::utc(row.created_at),
            updated_at: crate::store::utc(row.updated_at),
            version: row.version,
            secret: with_secret.then(|| row.secret.clone()),
        }
    }
}

/// `POST /webhooks` and `PATCH /webhooks/{id}` (the URL already checked by the HTTP side).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
    pub active: Option<bool>,
    /// Creating: a secret of the client's choice (16–256 characters); default: generated.
    pub secret: Option<String>,
    /// Updating: replace the secret with a new generated one (shown once in the answer).
    #[serde(default)]
    pub rotate_secret: bool,
    pub version: Option<i64>,
}

fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("whsec_{}", hex::encode(bytes))
}

fn check_types(types: &[String], errors: &mut Vec<FieldError>) -> Vec<String> {
    if types.is_empty() {
        errors.push(FieldError::new(
            "event_types",
            "must name at least one event type, or \"*\" for all",
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for (i, t) in types.iter().enumerate() {
        if t != "*" && !WEBHOOK_EVENTS.contains(&t.as_str()) {
            errors.push(FieldError::new(
                format!("event_types[{i}]"),
                format!("`{t}` is not an event type"),
            ));
        } else if !out.contains(t) {
            out.push(t.clone());
        }
    }
    out
}

impl LedgerState {
    pub fn list_webhooks(&self) -> Vec<WebhookView> {
        self.notify
            .webhooks
            .iter()
            .map(|w| WebhookView::new(w, false))
            .collect()
    }

    pub fn get_webhook(&self, id: Uuid) -> Option<WebhookView> {
        self.webhook(id).map(|w| WebhookView::new(w, false))
    }

    fn webhook(&self, id: Uuid) -> Option<&WebhookRow> {
        let id = id.to_string();
        self.notify.webhooks.iter().find(|w| w.id == id)
    }

    pub fn plan_create_webhook(
        &self,
        user_id: &str,
        input: WebhookInput,
    ) -> Result<Plan, ApiError> {
        if self.notify.webhooks.len() >= MAX_WEBHOOKS {
            return Err(ApiError::validation(
                "url",
                format!("a user can have at most {MAX_WEBHOOKS} webhooks"),
            ));
        }
        let mut errors = Vec::new();
        let Some(url) = input.url.clone() else {
            return Err(ApiError::validation("url", "is required"));
        };
        let types = check_types(
            input.event_types.as_deref().unwrap_or(&["*".to_string()]),
            &mut errors,
        );
        let secret = match input.secret {
            Some(s) if !(16..=256).contains(&s.chars().count()) => {
                errors.push(FieldError::new("secret", "must be 16 to 256 characters"));
                String::new()
            }
            Some(s) => s,
            None => new_secret(),
        };
        let description = input.description.unwrap_or_default();
        if description.chars().count() > 200 {
            errors.push(FieldError::new(
                "description",
                "is longer than 200 characters",
            ));
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        let at = now();
        let row = WebhookRow {
            id: Uuid::now_v7().to_string(),
            user_id: user_id.to_string(),
            url,
            secret,
            event_types: serde_json::to_string(&types).map_err(ApiError::internal)?,
            description,
            active: input.active.unwrap_or(true),
            created_at: at,
            updated_at: at,
            version: 1,
        };
        Ok(Plan {
            ops: vec![WriteOp::InsertWebhook(row.clone())],
            events: Vec::new(),
            reply: json_reply(201, &WebhookView::new(&row, true))?,
            effects: vec![Effect::PutWebhook(Box::new(row))],
        })
    }

    pub fn plan_update_webhook(&self, id: Uuid, input: WebhookInput) -> Result<Plan, ApiError> {
        let current = self.webhook(id).ok_or(ApiError::NotFound)?;
        check_version(current.version, input.version)?;
        let mut row = current.clone();
        let mut errors = Vec::new();
        if let Some(url) = input.url {
            row.url = url;
        }
        if let Some(types) = &input.event_types {
            let types = check_types(types, &mut errors);
            row.event_types = serde_json::to_string(&types).map_err(ApiError::internal)?;
        }
        if let Some(d) = input.description {
            if d.chars().count() > 200 {
                errors.push(FieldError::new(
                    "description",
                    "is longer than 200 characters",
                ));
            }
            row.description = d;
        }
        if input.secret.is_some() {
            errors.push(FieldError::new(
                "secret",
                "cannot be set on an existing webhook; use rotate_secret",
            ));
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        if let Some(a) = input.active {
            row.active = a;
        }
        if input.rotate_secret {
            row.secret = new_secret();
        }
        row.updated_at = now();
        row.version += 1;
        Ok(Plan {
            ops: vec![WriteOp::UpdateWebhook(row.clone())],
            events: Vec::new(),
            reply: json_reply(200, &WebhookView::new(&row, input.rotate_secret))?,
            effects: vec![Effect::PutWebhook(Box::new(row))],
        })
    }

    pub fn plan_delete_webhook(&self, id: Uuid) -> Result<Plan, ApiError> {
        let current = self.webhook(id).ok_or(ApiError::NotFound)?;
        Ok(Plan {
            ops: vec![WriteOp::DeleteWebhook(current.id.clone())],
            events: Vec::new(),
            reply: super::Reply {
                status: 204,
                body: String::new(),
            },
            effects: vec![Effect::RemoveWebhook(current.id.clone())],
        })
    }

    pub fn plan_put_preferences(
        &self,
        user_id: &str,
        input: PreferencesInput,
    ) -> Result<Plan, ApiError> {
        let prefs = self
            .notify
            .prefs
            .merged(input)
            .map_err(|(field, message)| ApiError::validation(field, message))?;
        let row = PreferencesRow {
            user_id: user_id.to_string(),
            preferences: serde_json::to_string(&prefs).map_err(ApiError::internal)?,
            updated_at: now(),
        };
        Ok(Plan {
            ops: vec![WriteOp::PutPreferences(row)],
            events: Vec::new(),
            reply: json_reply(200, &prefs)?,
            effects: vec![Effect::PutPreferences(Box::new(prefs))],
        })
    }

    /// In-app notifications and emails for the events of a commit that users are notified of,
    /// per the user's preferences; each in-app one is announced with `notification.created`.
    pub(super) fn route_notifications(
        &self,
        user_id: &str,
        events: &mut Vec<(&'static str, Value)>,
        at: NaiveDateTime,
    ) -> Vec<WriteOp> {
        let mut ops = Vec::new();
        let mut announced = Vec::new();
        // One spend that crosses several thresholds of a budget at once (50 % and 80 %) tells
        // people once, of the highest; the events (and webhooks) keep every threshold.
        let mut highest: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
        for (kind, payload) in events.iter() {
            if *kind == "budget.threshold_reached" {
                if let (Some(b), Some(t)) =
                    (payload["budget_id"].as_str(), payload["threshold"].as_i64())
                {
                    let top = highest.entry(b).or_insert(t);
                    *top = (*top).max(t);
                }
            }
        }
        for (kind, payload) in events.iter() {
            let Some(kind) = notifying_kind(kind) else {
                continue;
            };
            if kind == "budget.threshold_reached" {
                let budget = payload["budget_id"].as_str().unwrap_or_default();
                if highest
                    .get(budget)
                    .is_some_and(|t| Some(*t) != payload["threshold"].as_i64())
                {
                    continue;
                }
            }
            let prefs = &self.notify.prefs;
            if prefs.wants(kind, "in_app") {
                let row = NotificationRow::new(user_id, kind, "in_app", payload.to_string(), at);
                announced.push(json!({ "id": row.id, "kind": kind, "payload": payload }));
                ops.push(WriteOp::InsertNotification(row));
            }
            if prefs.wants(kind, "email") {
                let row = NotificationRow::new(user_id, kind, "email", payload.to_string(), at);
                ops.push(WriteOp::InsertNotification(row));
            }
        }
        events.extend(announced.into_iter().map(|p| ("notification.created", p)));
        ops
    }

    /// One delivery per active webhook subscribed to each event (notifying kinds only when the
    /// user routes them to webhooks). `envelopes` pairs each event with its stored JSON.
    pub(super) fn route_webhooks(
        &self,
        user_id: &str,
        envelopes: &[(&Envelope, &str)],
        at: NaiveDateTime,
    ) -> Vec<WriteOp> {
        let hooks: Vec<(&WebhookRow, Vec<String>)> = self
            .notify
            .webhooks
            .iter()
            .filter(|w| w.active)
            .map(|w| (w, w.types()))
            .collect();
        if hooks.is_empty() {
            return Vec::new();
        }
        let mut ops = Vec::new();
        for (envelope, text) in envelopes {
            let kind = envelope.kind;
            // An in-app notification's announcement carries the alert too: routed like it.
            let routed = if kind == "notification.created" {
                envelope.payload["kind"].as_str().unwrap_or(kind)
            } else {
                kind
            };
            if notifying_kind(routed).is_some_and(|k| !self.notify.prefs.wants(k, "webhook")) {
                continue;
            }
            for (hook, types) in &hooks {
                if subscribed(types, kind) {
                    let mut row =
                        NotificationRow::new(user_id, kind, "webhook", text.to_string(), at);
                    row.webhook_id = Some(hook.id.clone());
                    ops.push(WriteOp::InsertNotification(row));
                }
            }
        }
        ops
    }

    /// The monthly summary email of `month` (its first day), in `base`: income, expenses, net,
    /// top categories, budgets and the change against the month before. `None` when the user
    /// booked nothing that month.
    pub fn plan_monthly_summary(
        &self,
        user_id: &str,
        month: NaiveDate,
        base: Currency,
        summary: &super::reports::Summary,
        previous: &super::reports::Summary,
    ) -> Result<Option<Plan>, ApiError> {
        if summary.transactions == 0 {
            return Ok(None);
        }
        let exp = base.exponent();
        let minor = |s: &str| crate::domain::money::parse_minor(s, base).unwrap_or(0);
        let change = |now: &str, before: &str| format_minor(minor(now) - minor(before), exp);
        let mut top: Vec<&super::reports::CategoryLine> = summary
            .by_category
            .iter()
            .filter(|c| minor(&c.expense) > 0)
            .collect();
        top.sort_by_key(|c| std::cmp::Reverse(minor(&c.expense)));
        let top: Vec<Value> = top
            .into_iter()
            .take(5)
            .map(
                |c| json!({ "name": c.name, "expense": c.expense, "transactions": c.transactions }),
            )
            .collect();
        let last_day = month_end(month);
        let budgets: Vec<Value> = self
            .all_budget_statuses(last_day)
            .into_iter()
            .filter(|s| s.period_end >= month && s.period_start <= last_day)
            .map(|s| {
                json!({
                    "name": s.name, "limit": s.limit, "spent": s.spent,
                    "currency": s.currency, "percent": s.percent,
                })
            })
            .collect();
        let payload = json!({
            "month": month.format("%Y-%m").to_string(),
            "currency": base.code(),
            "income": summary.income,
            "expense": summary.expense,
            "net": summary.net,
            "transactions": summary.transactions,
            "previous": {
                "income": previous.income,
                "expense": previous.expense,
                "net": previous.net,
            },
            "change": {
                "income": change(&summary.income, &previous.income),
                "expense": change(&summary.expense, &previous.expense),
                "net": change(&summary.net, &previous.net),
            },
            "top_categories": top,
            "budgets": budgets,
            "missing_rates": summary.missing_rates,
        });
        let mut row = NotificationRow::new(
            user_id,
            "monthly_summary",
            "email",
            payload.to_string(),
            now(),
        );
        row.dedup_key = Some(summary_key(user_id, month));
        Ok(Some(Plan {
            ops: vec![WriteOp::InsertNotification(row)],
            events: Vec::new(),
            reply: json_reply(200, &payload)?,
            effects: Vec::new(),
        }))
    }
}

/// The last day of the month that starts on `first`.
pub fn month_end(first: NaiveDate) -> NaiveDate {
    first
        .checked_add_months(chrono::Months::new(1))
        .and_then(|d| d.pred_opt())
        .unwrap_or(first)
}

/// The outbox dedup key of a user's summary for a month: one summary per user and month.
pub fn summary_key(user_id: &str, month: NaiveDate) -> String {
    format!("monthly_summary:{user_id}:{}", month.format("%Y-%m"))
}
