//! The categorizer's side of the Ledger: the user's rules (CRUD, order, applying one to existing
//! transactions), the [`UserModel`] it keeps current and hands to the `Categorizer` pool, and
//! learning from the user's own category choices.
use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDateTime;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::plan::{check_version, json_reply, now, Plan};
use super::views::TransactionView;
use super::{Effect, LedgerState, NewTransaction};
use crate::actors::categorizer::{memory_key, Assignment, Item, UserModel};
use crate::domain::classifier::features;
use crate::domain::ledger::{parse_tags, CategorySource, TxnSource};
use crate::domain::money::parse_minor;
use crate::domain::rules::{ActionSpec, ConditionSpec, MatchMode, Rule, RuleSpec};
use crate::error::{ApiError, FieldError};
use crate::store::ledger::TransactionRow;
use crate::store::rules::{LabelRow, MemoryRow, RuleRow};
use crate::store::utc;
use crate::store::writer::WriteOp;

/// Most rules one user may have.
pub const MAX_RULES: usize = 500;

/// A rule as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RuleView {
    pub id: String,
    pub position: i64,
    pub name: String,
    pub conditions: Vec<ConditionSpec>,
    #[serde(rename = "match")]
    pub match_mode: MatchMode,
    pub actions: Vec<ActionSpec>,
    pub stop_processing: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub version: i64,
}

pub(crate) fn spec_of(row: &RuleRow) -> Option<RuleSpec> {
    Some(RuleSpec {
        name: row.name.clone(),
        conditions: serde_json::from_str(&row.conditions).ok()?,
        match_mode: if row.match_mode == "any" {
            MatchMode::Any
        } else {
            MatchMode::All
        },
        actions: serde_json::from_str(&row.actions).ok()?,
        stop_processing: row.stop_processing,
    })
}

impl RuleView {
    pub fn new(row: &RuleRow) -> Option<RuleView> {
        let spec = spec_of(row)?;
        Some(RuleView {
            id: row.id.clone(),
            position: row.position,
            name: spec.name,
            conditions: spec.conditions,
            match_mode: spec.match_mode,
            actions: spec.actions,
            stop_processing: spec.stop_processing,
            created_at: utc(row.created_at),
            updated_at: utc(row.updated_at),
            version: row.version,
        })
    }
}

/// A partial rule (PATCH): absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct RulePatch {
    pub version: Option<i64>,
    pub position: Option<i64>,
    pub name: Option<String>,
    pub conditions: Option<Vec<ConditionSpec>>,
    pub match_mode: Option<MatchMode>,
    pub actions: Option<Vec<ActionSpec>>,
    pub stop_processing: Option<bool>,
}

use super::views::exponent;

/// A transaction row as categorizer input.
pub(crate) fn item_of(row: &TransactionRow, has_category: bool) -> Option<Item> {
    Some(Item {
        description: row.description.clone(),
        merchant: row.merchant.clone(),
        amount: row.amount,
        exponent: exponent(&row.currency),
        account: row.account_id.parse().ok()?,
        has_category,
        merchant_in_description: row.source != TxnSource::Sms.as_str(),
    })
}

impl LedgerState {
    /// The model from the rows loaded at start.
    pub(crate) fn load_model(
        &mut self,
        rules: Vec<RuleRow>,
        memory: Vec<MemoryRow>,
        labels: Vec<LabelRow>,
    ) {
        self.rules = rules;
        let mut model = UserModel::default();
        for row in memory {
            if let Ok(c) = row.category_id.parse() {
                model.memory.insert(row.merchant_key, c);
            }
        }
        // Oldest first, so that the classifier sees them in the order they were made.
        for label in labels.into_iter().rev() {
            let Some(category) = label.category_id.as_deref().and_then(|c| c.parse().ok()) else {
                continue;
            };
            let feats = features(
                &label.description,
                &label.merchant,
                label.amount,
                exponent(&label.currency),
            );
            model.learned.learn(category, &feats);
        }
        self.model = Arc::new(model);
        self.compile_rules();
        self.refresh_candidates();
    }

    fn compile_rules(&mut self) {
        self.rules.sort_by(|a, b| {
            a.position
                .cmp(&b.position)
                .then(a.created_at.cmp(&b.created_at))
        });
        let compiled: Vec<Rule> = self
            .rules
            .iter()
            .filter_map(|row| {
                let id = row.id.parse().ok()?;
                match spec_of(row).map(|s| s.compile(id)) {
                    Some(Ok(rule)) => Some(rule),
                    _ => {
                        tracing::error!(rule = %row.id, "skipping a stored rule that no longer compiles");
                        None
                    }
                }
            })
            .collect();
        Arc::make_mut(&mut self.model).rules = compiled;
    }

    /// The classifier's classes follow the user's categories ("Parent/Child" name paths).
    pub(crate) fn refresh_candidates(&mut self) {
        let classes: Vec<_> = self
            .categories
            .iter()
            .map(|(id, c)| {
                let path = match c.parent.and_then(|p| self.categories.get(&p)) {
                    Some(parent) => format!("{}/{}", parent.row.name, c.row.name),
                    None => c.row.name.clone(),
                };
                (*id, path, c.kind)
            })
            .collect();
        Arc::make_mut(&mut self.model).set_categories(classes);
    }

    pub(crate) fn put_rule(&mut self, row: RuleRow) {
        self.rules.retain(|r| r.id != row.id);
        self.rules.push(row);
        self.compile_rules();
    }

    pub(crate) fn remove_rule(&mut self, id: Uuid) {
        let id = id.to_string();
        self.rules.retain(|r| r.id != id);
        self.compile_rules();
    }

    pub(crate) fn learn(&mut self, item: &Item, category: Uuid) {
        Arc::make_mut(&mut self.model).learn(item, category);
    }

    /// Categorizer input for a new transaction, if its account exists and its amount parses
    /// (otherwise validation will refuse it anyway).
    pub(crate) fn item_for(&self, input: &NewTransaction) -> Option<Item> {
        let account = self.accounts.get(&input.account_id)?;
        let amount = parse_minor(&input.amount, account.currency).ok()?;
        Some(Item {
            description: input.description.clone(),
            merchant: input.merchant.clone(),
            amount,
            exponent: account.currency.exponent(),
            account: input.account_id,
            has_category: input.category_id.is_some(),
            merchant_in_description: input.source != TxnSource::Sms,
        })
    }

    /// What the user's own category choices in these rows teach: effects for memory and the
    /// classifier, and the merchant-memory rows to store with them.
    pub(crate) fn lessons<'a>(
        &self,
        user_id: &str,
        rows: impl IntoIterator<Item = &'a TransactionRow>,
    ) -> (Vec<Effect>, Option<WriteOp>) {
        let at = now();
        let mut effects = Vec::new();
        // Merchant key → the category it was last given. An import names a few hundred
        // merchants a million times: each text's key is worked out once.
        let mut memory: HashMap<String, Uuid> = HashMap::new();
        let mut keys: HashMap<&str, Option<String>> = HashMap::new();
        for row in rows {
            if row.category_source != CategorySource::User.as_str() || row.transfer_id.is_some() {
                continue;
            }
            let Some(category) = row
                .category_id
                .as_deref()
                .and_then(|c| c.parse::<Uuid>().ok())
            else {
                continue;
            };
            let Ok(_account) = row.account_id.parse::<Uuid>() else {
                continue;
            };
            let text = if row.merchant.trim().is_empty() {
                row.description.as_str()
            } else {
                row.merchant.as_str()
            };
            let key = match keys.get(text) {
                Some(key) => key.clone(),
                None => {
                    let key = memory_key(&row.description, &row.merchant);
                    // Bounded: descriptions without a merchant can all differ.
                    if keys.len() < 10_000 {
                        keys.insert(text, key.clone());
                    }
                    key
                }
            };
            if let Some(key) = key {
                match memory.get_mut(&key) {
                    Some(known) => *known = category,
                    None => {
                        memory.insert(key, category);
                    }
                }
            }
            // The classifier is rebuilt from the 5,000 most recent labels at start; a big
            // import teaches it no more than that either (memory takes every merchant).
            if effects.len() < crate::store::rules::LABELS_LOADED as usize {
                if let Some(item) = item_of(row, true) {
                    effects.push(Effect::Learn(Box::new((item, category))));
                }
            }
        }
        let op = (!memory.is_empty()).then(|| {
            WriteOp::UpsertMerchantMemory(
                memory
                    .into_iter()
                    .map(|(merchant_key, category)| MemoryRow {
                        user_id: user_id.to_string(),
                        merchant_key,
                        category_id: category.to_string(),
                        updated_at: at,
                    })
                    .collect(),
            )
        });
        (effects, op)
    }

    fn check_rule_refs(&self, spec: &RuleSpec, errors: &mut Vec<FieldError>) {
        for (i, a) in spec.actions.iter().enumerate() {
            if let ActionSpec::SetCategory { category_id } = a {
                if !self.categories.contains_key(category_id) {
                    errors.push(FieldError::new(
                        format!("actions[{i}].category_id"),
                        "no such category",
                    ));
                }
            }
        }
        for (i, c) in spec.conditions.iter().enumerate() {
            if let Some(account) = c.account() {
                if !self.accounts.contains_key(&account) {
                    errors.push(FieldError::new(
                        format!("conditions[{i}].value"),
                        "no such account",
                    ));
                }
            }
        }
    }

    fn validate_rule(&self, id: Uuid, spec: &RuleSpec) -> Result<(), ApiError> {
        let mut errors = spec.compile(id).err().unwrap_or_default();
        self.check_rule_refs(spec, &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(errors))
        }
    }

    pub fn plan_create_rule(
        &self,
        user_id: &str,
        spec: RuleSpec,
        position: Option<i64>,
    ) -> Result<Plan, ApiError> {
        if self.rules.len() >= MAX_RULES {
            return Err(ApiError::Conflict(format!(
                "A user can have at most {MAX_RULES} rules; delete one first."
            )));
        }
        let id = Uuid::now_v7();
        self.validate_rule(id, &spec)?;
        check_position(position)?;
        let at = now();
        let position = position
            .unwrap_or_else(|| self.rules.iter().map(|r| r.position + 1).max().unwrap_or(0));
        let row = rule_row(id.to_string(), user_id, position, &spec, at, at, 1)?;
        let view =
            RuleView::new(&row).ok_or_else(|| ApiError::internal(anyhow::anyhow!("rule view")))?;
        Ok(Plan {
            ops: vec![WriteOp::InsertRule(row.clone())],
            events: Vec::new(),
            effects: vec![Effect::PutRule(Box::new(row))],
            reply: json_reply(201, &view)?,
        })
    }

    fn rule(&self, id: Uuid) -> Result<&RuleRow, ApiError> {
        let key = id.to_string();
        self.rules
            .iter()
            .find(|r| r.id == key)
            .ok_or(ApiError::NotFound)
    }

    pub fn plan_update_rule(&self, id: Uuid, patch: RulePatch) -> Result<Plan, ApiError> {
        let old = self.rule(id)?;
        check_version(old.version, patch.version)?;
        let mut spec = spec_of(old)
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("stored rule unreadable")))?;
        if let Some(n) = patch.name {
            spec.name = n;
        }
        if let Some(c) = patch.conditions {
            spec.conditions = c;
        }
        if let Some(m) = patch.match_mode {
            spec.match_mode = m;
        }
        if let Some(a) = patch.actions {
            spec.actions = a;
        }
        if let Some(s) = patch.stop_processing {
            spec.stop_processing = s;
        }
        self.validate_rule(id, &spec)?;
        check_position(patch.position)?;
        let row = rule_row(
            old.id.clone(),
            &old.user_id,
            patch.position.unwrap_or(old.position),
            &spec,
            old.created_at,
            now(),
            old.version + 1,
        )?;
        let view =
            RuleView::new(&row).ok_or_else(|| ApiError::internal(anyhow::anyhow!("rule view")))?;
        Ok(Plan {
            ops: vec![WriteOp::UpdateRule(row.clone())],
            events: Vec::new(),
            effects: vec![Effect::PutRule(Box::new(row))],
            reply: json_reply(200, &view)?,
        })
    }

    pub fn plan_delete_rule(&self, id: Uuid) -> Result<Plan, ApiError> {
        let old = self.rule(id)?;
        Ok(Plan {
            ops: vec![WriteOp::DeleteRule(old.id.clone())],
            events: Vec::new(),
            effects: vec![Effect::RemoveRule(id)],
            reply: super::Reply {
                status: 204,
                body: String::new(),
            },
        })
    }

    /// Give the listed rules positions 0, 1, 2… in that order (every rule must be listed once).
    pub fn plan_reorder_rules(&self, ids: Vec<Uuid>) -> Result<Plan, ApiError> {
        let mut seen = std::collections::HashSet::new();
        if ids.len() != self.rules.len()
            || !ids
                .iter()
                .all(|id| seen.insert(*id) && self.rule(*id).is_ok())
        {
            return Err(ApiError::validation(
                "ids",
                format!(
                    "must list each of your {} rules exactly once",
                    self.rules.len()
                ),
            ));
        }
        let at = now();
        let mut ops = Vec::new();
        let mut effects = Vec::new();
        let mut views = Vec::new();
        for (position, id) in ids.iter().enumerate() {
            let mut row = self.rule(*id)?.clone();
            if row.position != position as i64 {
                row.position = position as i64;
                row.updated_at = at;
                row.version += 1;
                ops.push(WriteOp::UpdateRule(row.clone()));
                effects.push(Effect::PutRule(Box::new(row.clone())));
            }
            views.extend(RuleView::new(&row));
        }
        Ok(Plan {
            ops,
            events: Vec::new(),
            effects,
            reply: json_reply(200, &json!({ "items": views, "next_cursor": null }))?,
        })
    }

    pub fn list_rules(&self) -> Vec<RuleView> {
        self.rules.iter().filter_map(RuleView::new).collect()
    }

    pub fn get_rule(&self, id: Uuid) -> Option<RuleView> {
        self.rule(id).ok().and_then(RuleView::new)
    }

    /// The compiled rule, for evaluating it against stored transactions.
    pub fn compiled_rule(&self, id: Uuid) -> Result<Rule, ApiError> {
        let row = self.rule(id)?;
        spec_of(row)
            .and_then(|s| s.compile(id).ok())
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("stored rule does not compile")))
    }

    /// Apply a rule's actions to the stored transactions it matches (`matched`, already
    /// filtered), as one commit. Categories the user chose by hand stay unless `overwrite`.
    pub fn plan_apply_rule(
        &self,
        rule: &Rule,
        matched: Vec<TransactionRow>,
        overwrite: bool,
    ) -> Result<Plan, ApiError> {
        let at = now();
        let mut changed = Vec::new();
        let mut events = Vec::new();
        let mut effects = Vec::new();
        let count = matched.len();
        for old in matched {
            let mut row = old.clone();
            for action in &rule.actions {
                match action {
                    ActionSpec::SetCategory { category_id } => {
                        let manual = row.category_source == CategorySource::User.as_str();
                        if self.categories.contains_key(category_id) && (overwrite || !manual) {
                            row.category_id = Some(category_id.to_string());
                            row.category_source = CategorySource::Rule.as_str().to_string();
                            row.confidence = Some(1.0);
                        }
                    }
                    ActionSpec::SetMerchant { value } => row.merchant = value.clone(),
                    ActionSpec::SetNotes { value } => row.notes = value.clone(),
                    ActionSpec::AddTags { tags } => {
                        let mut current: Vec<String> =
                            serde_json::from_str(&row.tags).unwrap_or_default();
                        for t in tags {
                            if !current.contains(t) {
                                current.push(t.clone());
                            }
                        }
                        if let Ok(merged) = parse_tags(&current) {
                            row.tags =
                                serde_json::to_string(&merged).map_err(ApiError::internal)?;
                        }
                    }
                }
            }
            let same = row.category_id == old.category_id
                && row.category_source == old.category_source
                && row.merchant == old.merchant
                && row.notes == old.notes
                && row.tags == old.tags;
            if same {
                continue;
            }
            row.version += 1;
            row.updated_at = at;
            events.push(("transaction.updated", json!(TransactionView::new(&row))));
            effects.push(Effect::Txn {
                old: Self::facts(&old),
                new: Self::facts(&row),
            });
            changed.push(row);
        }
        let reply = json_reply(200, &json!({ "matched": count, "changed": changed.len() }))?;
        Ok(Plan {
            ops: if changed.is_empty() {
                Vec::new()
            } else {
                vec![WriteOp::UpdateTransactions(changed)]
            },
            events,
            effects,
            reply,
        })
    }
}

fn rule_row(
    id: String,
    user_id: &str,
    position: i64,
    spec: &RuleSpec,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    version: i64,
) -> Result<RuleRow, ApiError> {
    Ok(RuleRow {
        id,
        user_id: user_id.to_string(),
        position,
        name: spec.name.trim().to_string(),
        conditions: serde_json::to_string(&spec.conditions).map_err(ApiError::internal)?,
        match_mode: match spec.match_mode {
            MatchMode::All => "all",
            MatchMode::Any => "any",
        }
        .to_string(),
        actions: serde_json::to_string(&spec.actions).map_err(ApiError::internal)?,
        stop_processing: spec.stop_processing,
        created_at,
        updated_at,
        version,
    })
}

/// Apply the categorizer's decision to a new transaction.
pub(crate) fn assign(input: &mut NewTransaction, a: &Assignment) {
    if input.category_id.is_none() {
        if let Some((c, source, confidence)) = a.category {
            input.category_id = Some(c);
            input.category_source = Some(source);
            input.confidence = Some(confidence);
        }
    }
    if let Some(m) = &a.merchant {
        input.merchant = m.chars().take(200).collect();
    }
    for t in &a.tags {
        if !input.tags.contains(t) {
            input.tags.push(t.clone());
        }
    }
    if let (Some(n), true) = (&a.notes, input.notes.trim().is_empty()) {
        input.notes = n.clone();
    }
}

/// Rules run in ascending `position` from 0.
fn check_position(position: Option<i64>) -> Result<(), ApiError> {
    match position {
        Some(p) if !(0..=1_000_000).contains(&p) => Err(ApiError::validation(
            "position",
            "must be between 0 and 1000000 (rules run from 0 up)",
        )),
        _ => Ok(()),
    }
}
