//! The `Categorizer` pool: CPU-bound work off the event loops, on its own threads
//! (`SyncArbiter`). It holds no user state of its own: each request carries the user's
//! [`UserModel`] (owned by that user's Ledger, shared by `Arc`), so any thread can serve any user.
//!
//! - [`Categorize`]: for each transaction, rules in order → merchant memory → classifier → none,
//!   plus the rules' other actions and the normalized merchant.
//! - [`ParseMessage`]: a bank SMS / notification text into transaction fields, or a refusal.
use std::collections::HashMap;
use std::sync::Arc;

use actix::{Actor, Handler, Message, SyncContext};
use chrono::NaiveDate;
use uuid::Uuid;

use crate::domain::bank_message::{self, ParsedMessage, Refusal};
use crate::domain::classifier::{self, Candidate, Learned, PRIOR};
use crate::domain::ledger::{CategoryKind, CategorySource};
use crate::domain::merchant;
use crate::domain::rules::{self, Rule, Subject};

/// Everything the categorizer knows about one user. Built and updated by the user's Ledger.
#[derive(Debug, Clone, Default)]
pub struct UserModel {
    /// In position order.
    pub rules: Vec<Rule>,
    /// Normalized merchant key → the category the user last chose for it.
    pub memory: HashMap<String, Uuid>,
    pub learned: Learned,
    /// The user's categories as classifier classes.
    pub candidates: Vec<Candidate>,
}

/// One transaction to categorize.
#[derive(Debug, Clone)]
pub struct Item {
    pub description: String,
    pub merchant: String,
    /// Signed minor units.
    pub amount: i64,
    pub exponent: u8,
    pub account: Uuid,
    /// The client already chose a category: only the rules' other actions apply.
    pub has_category: bool,
    /// With no merchant given, whether the description names one (a typed or imported
    /// transaction's does; a bank message's whole text, kept when no payee was found in it,
    /// does not).
    pub merchant_in_description: bool,
}

/// What the categorizer decided for one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assignment {
    /// Category, who chose it, and how sure it is.
    pub category: Option<(Uuid, CategorySource, f64)>,
    /// A merchant to store (a rule's `set_merchant`, or the normalized payee when none was given).
    pub merchant: Option<String>,
    /// Tags to add (from rules).
    pub tags: Vec<String>,
    /// Notes to set (from rules).
    pub notes: Option<String>,
}

/// The memory key for a transaction: its merchant, or failing that its description.
pub fn memory_key(description: &str, merchant_name: &str) -> Option<String> {
    if merchant_name.trim().is_empty() {
        merchant::key(description)
    } else {
        merchant::key(merchant_name)
    }
}

impl UserModel {
    fn known(&self, category: Uuid) -> bool {
        self.candidates.iter().any(|c| c.id == category)
    }

    pub fn categorize(&self, item: &Item) -> Assignment {
        // With no merchant given, the one read from the description is the merchant: rules on
        // `merchant` see it, as they do once it is stored (`POST /rules/{id}/apply`).
        let derived = (item.merchant_in_description && item.merchant.trim().is_empty())
            .then(|| merchant::normalize(&item.description))
            .flatten();
        let subject = Subject {
            description: &item.description,
            merchant: derived.as_deref().unwrap_or(&item.merchant),
            amount: item.amount,
            exponent: item.exponent,
            account: item.account,
            transfer: false,
        };
        let ruled = rules::run(&self.rules, &subject);
        let mut out = Assignment {
            tags: ruled.tags,
            notes: ruled.notes,
            ..Assignment::default()
        };
        out.merchant = ruled.merchant.or(derived);
        if item.has_category {
            return out;
        }
        let merchant_name = out.merchant.as_deref().unwrap_or(&item.merchant);
        out.category = ruled
            .category
            .filter(|(c, _)| self.known(*c))
            .map(|(c, _)| (c, CategorySource::Rule, 1.0))
            .or_else(|| {
                let key = memory_key(&item.description, merchant_name)?;
                let c = *self.memory.get(&key)?;
                self.known(c)
                    .then_some((c, CategorySource::MerchantMemory, 1.0))
            })
            .or_else(|| {
                let feats = classifier::features(
                    &item.description,
                    merchant_name,
                    item.amount,
                    item.exponent,
                );
                classifier::classify(
                    &PRIOR,
                    &self.learned,
                    &self.candidates,
                    &feats,
                    item.amount < 0,
                )
                .map(|(c, p)| (c, CategorySource::Model, (p * 1000.0).round() / 1000.0))
            });
        out
    }

    /// Learn a user's choice: merchant memory and the classifier, at once.
    pub fn learn(&mut self, item: &Item, category: Uuid) {
        if let Some(key) = memory_key(&item.description, &item.merchant) {
            self.memory.insert(key, category);
        }
        let feats = classifier::features(
            &item.description,
            &item.merchant,
            item.amount,
            item.exponent,
        );
        self.learned.learn(category, &feats);
    }

    /// The user's categories as classes: `(id, name path, kind)`.
    pub fn set_categories(
        &mut self,
        categories: impl IntoIterator<Item = (Uuid, String, CategoryKind)>,
    ) {
        self.candidates = categories
            .into_iter()
            .map(|(id, path, kind)| Candidate {
                id,
                kind,
                prior: PRIOR.has_class(&path).then_some(path),
            })
            .collect();
    }
}

/// Categorize transactions with a user's model.
#[derive(Message)]
#[rtype(result = "Vec<Assignment>")]
pub struct Categorize {
    pub model: Arc<UserModel>,
    pub items: Vec<Item>,
}

/// Parse a bank message.
#[derive(Message)]
#[rtype(result = "Result<ParsedMessage, Refusal>")]
pub struct ParseMessage {
    pub text: String,
    pub sender: Option<String>,
    pub today: NaiveDate,
}

pub struct Categorizer;

impl Actor for Categorizer {
    type Context = SyncContext<Self>;
}

impl Handler<Categorize> for Categorizer {
    type Result = Vec<Assignment>;
    fn handle(&mut self, msg: Categorize, _ctx: &mut SyncContext<Self>) -> Vec<Assignment> {
        msg.items.iter().map(|i| msg.model.categorize(i)).collect()
    }
}

impl Handler<ParseMessage> for Categorizer {
    type Result = Result<ParsedMessage, Refusal>;
    fn handle(&mut self, msg: ParseMessage, _ctx: &mut SyncContext<Self>) -> Self::Result {
        bank_message::parse(&msg.text, msg.sender.as_deref(), msg.today)
    }
}
