//! User rules: "when a transaction's merchant contains `starbucks`, set the category to Coffee".
//!
//! A rule has ordered conditions (matched `all` or `any`) and actions. [`RuleSpec`] is what the API
//! accepts and what is stored; [`RuleSpec::compile`] validates it (field/op pairs, amounts,
//! regexes) into a [`Rule`] that evaluates in microseconds. Regexes go through the `regex` crate,
//! whose matching is linear in the input, with a pattern length cap and compiled-size limits, so a
//! pathological pattern is refused or runs in bounded time; it can never hang a Categorizer.
//!
//! Semantics: rules run in `position` order; every matching rule applies its actions (a later rule
//! overwrites an earlier one's category, merchant or notes; tags accumulate) until a matching rule
//! with `stop_processing` ends the run. Amount conditions compare the absolute amount in the
//! transaction's currency; use the `kind` condition (`expense`, `income`, `transfer`) for direction.
use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::FieldError;

/// Longest accepted regex pattern, in characters.
pub const MAX_PATTERN: usize = 500;
/// Compiled-program and lazy-DFA size limits for one regex.
const REGEX_SIZE_LIMIT: usize = 256 * 1024;
/// Most conditions / actions in one rule.
const MAX_PARTS: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchMode {
    All,
    Any,
}

/// One condition as sent and stored: `{"field": "merchant", "op": "contains", "value": "uber"}`,
/// or for `between`: `{"field": "amount", "op": "between", "min": "10", "max": "50"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionSpec {
    pub field: String,
    pub op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<String>,
}

/// One action as sent and stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionSpec {
    SetCategory { category_id: Uuid },
    SetMerchant { value: String },
    AddTags { tags: Vec<String> },
    SetNotes { value: String },
}

/// A rule's definition (everything but its id, position and bookkeeping).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleSpec {
    pub name: String,
    pub conditions: Vec<ConditionSpec>,
    #[serde(rename = "match")]
    pub match_mode: MatchMode,
    pub actions: Vec<ActionSpec>,
    pub stop_processing: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextField {
    Description,
    Merchant,
}

#[derive(Debug, Clone)]
enum TextOp {
    Contains(String),
    Equals(String),
    StartsWith(String),
    Regex(Regex),
}

/// Amounts are compared in millionths of a unit so that any currency's exponent (≤ 6) fits.
#[derive(Debug, Clone, Copy)]
enum AmountOp {
    Equals(i128),
    Gt(i128),
    Lt(i128),
    Between(i128, i128),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnKind {
    Expense,
    Income,
    Transfer,
}

#[derive(Debug, Clone)]
enum Test {
    Text(TextField, TextOp),
    Amount(AmountOp),
    Account(Uuid),
    Kind(TxnKind),
}

/// A compiled, validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: Uuid,
    tests: Vec<Test>,
    any: bool,
    pub actions: Vec<ActionSpec>,
    pub stop_processing: bool,
}

/// What a rule looks at.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub description: &'a str,
    pub merchant: &'a str,
    /// Signed minor units (negative = money out).
    pub amount: i64,
    /// The currency's exponent (2 for USD).
    pub exponent: u8,
    pub account: Uuid,
    pub transfer: bool,
}

impl Subject<'_> {
    fn kind(&self) -> TxnKind {
        if self.transfer {
            TxnKind::Transfer
        } else if self.amount < 0 {
            TxnKind::Expense
        } else {
            TxnKind::Income
        }
    }

    fn micros(&self) -> i128 {
        let scale = 10i128.pow(u32::from(6u8.saturating_sub(self.exponent)));
        i128::from(self.amount).abs() * scale
    }
}

/// The combined result of a rule run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleOutcome {
    /// The category and the rule that set it.
    pub category: Option<(Uuid, Uuid)>,
    pub merchant: Option<String>,
    pub tags: Vec<String>,
    pub notes: Option<String>,
}

impl RuleOutcome {
    pub fn is_empty(&self) -> bool {
        self == &RuleOutcome::default()
    }
}

fn parse_micros(raw: &str) -> Result<i128, String> {
    let text = raw.trim();
    let bad = || format!("`{raw}` is not a decimal amount such as \"12.50\"");
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty()
        || whole.len() > 15
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    if fraction.len() > 6 {
        return Err("has more than 6 decimals".into());
    }
    let whole: i128 = whole.parse().map_err(|_| bad())?;
    let mut frac: i128 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().map_err(|_| bad())?
    };
    for _ in fraction.len()..6 {
        frac *= 10;
    }
    Ok(whole * 1_000_000 + frac)
}

/// Compile a user's regex with the limits that keep it cheap; the error says why it was refused.
pub fn compile_regex(pattern: &str) -> Result<Regex, String> {
    if pattern.chars().count() > MAX_PATTERN {
        return Err(format!("the regex is longer than {MAX_PATTERN} characters"));
    }
    RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .nest_limit(50)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => {
                "the regex is too complex (its compiled form exceeds the size limit)".to_string()
            }
            other => format!(
                "is not a valid regex: {}",
                other
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or("syntax error")
                    .trim()
            ),
        })
}

impl ConditionSpec {
    fn compile(&self, at: &str, errors: &mut Vec<FieldError>) -> Option<Test> {
        let need_value = |errors: &mut Vec<FieldError>| -> Option<&str> {
            match self.value.as_deref() {
                Some(v) if !v.is_empty() => Some(v),
                _ => {
                    errors.push(FieldError::new(
                        format!("{at}.value"),
                        format!("is required for `{}`", self.op),
                    ));
                    None
                }
            }
        };
        let unexpected_bounds = |errors: &mut Vec<FieldError>| {
            if self.min.is_some() || self.max.is_some() {
                errors.push(FieldError::new(
                    format!("{at}.min"),
                    "min/max are only for the `between` operator",
                ));
            }
        };
        let text_field = match self.field.as_str() {
            "description" => Some(TextField::Description),
            "merchant" => Some(TextField::Merchant),
            _ => None,
        };
        if let Some(field) = text_field {
            unexpected_bounds(errors);
            let value = need_value(errors)?;
            if value.chars().count() > MAX_PATTERN {
                errors.push(FieldError::new(
                    format!("{at}.value"),
                    format!("must be at most {MAX_PATTERN} characters"),
                ));
                return None;
            }
            let op = match self.op.as_str() {
                "contains" => TextOp::Contains(value.to_lowercase()),
                "equals" => TextOp::Equals(value.to_lowercase()),
                "starts_with" => TextOp::StartsWith(value.to_lowercase()),
                "regex" => match compile_regex(value) {
                    Ok(r) => TextOp::Regex(r),
                    Err(m) => {
                        errors.push(FieldError::new(format!("{at}.value"), m));
                        return None;
                    }
                },
                other => {
                    errors.push(FieldError::new(
                        format!("{at}.op"),
                        format!("`{other}` does not apply to `{}`; use contains, equals, starts_with or regex", self.field),
                    ));
                    return None;
                }
            };
            return Some(Test::Text(field, op));
        }
        match self.field.as_str() {
            "amount" => {
                let amount =
                    |raw: &Option<String>, name: &str, errors: &mut Vec<FieldError>| match raw
                        .as_deref()
                    {
                        None => {
                            errors.push(FieldError::new(
                                format!("{at}.{name}"),
                                format!("is required for `{}`", self.op),
                            ));
                            None
                        }
                        Some(v) => parse_micros(v)
                            .map_err(|m| errors.push(FieldError::new(format!("{at}.{name}"), m)))
                            .ok(),
                    };
                let op = match self.op.as_str() {
                    "between" => {
                        if self.value.is_some() {
                            errors.push(FieldError::new(
                                format!("{at}.value"),
                                "`between` takes min and max, not value",
                            ));
                        }
                        let (min, max) = (
                            amount(&self.min, "min", errors),
                            amount(&self.max, "max", errors),
                        );
                        let (min, max) = (min?, max?);
                        if min > max {
                            errors.push(FieldError::new(
                                format!("{at}.max"),
                                "must not be less than min",
                            ));
                            return None;
                        }
                        AmountOp::Between(min, max)
                    }
                    "equals" | "gt" | "lt" => {
                        unexpected_bounds(errors);
                        let v = amount(&self.value, "value", errors)?;
                        match self.op.as_str() {
                            "equals" => AmountOp::Equals(v),
                            "gt" => AmountOp::Gt(v),
                            _ => AmountOp::Lt(v),
                        }
                    }
                    other => {
                        errors.push(FieldError::new(
                            format!("{at}.op"),
                            format!("`{other}` does not apply to `amount`; use equals, gt, lt or between"),
                        ));
                        return None;
                    }
                };
                Some(Test::Amount(op))
            }
            "account" | "kind" => {
                unexpected_bounds(errors);
                if self.op != "equals" {
                    errors.push(FieldError::new(
                        format!("{at}.op"),
                        format!("`{}` only supports `equals`", self.field),
                    ));
                    return None;
                }
                let value = need_value(errors)?;
                if self.field == "account" {
                    match value.parse::<Uuid>() {
                        Ok(id) => Some(Test::Account(id)),
                        Err(_) => {
                            errors.push(FieldError::new(
                                format!("{at}.value"),
                                "must be an account id",
                            ));
                            None
                        }
                    }
                } else {
                    let kind = match value {
                        "expense" => TxnKind::Expense,
                        "income" => TxnKind::Income,
                        "transfer" => TxnKind::Transfer,
                        _ => {
                            errors.push(FieldError::new(
                                format!("{at}.value"),
                                "must be expense, income or transfer",
                            ));
                            return None;
                        }
                    };
                    Some(Test::Kind(kind))
                }
            }
            other => {
                errors.push(FieldError::new(
                    format!("{at}.field"),
                    format!("unknown field `{other}`; use description, merchant, amount, account or kind"),
                ));
                None
            }
        }
    }

    /// The account this condition names, if any (checked against the user's accounts).
    pub fn account(&self) -> Option<Uuid> {
        (self.field == "account")
            .then(|| self.value.as_deref()?.parse().ok())
            .flatten()
    }
}

impl RuleSpec {
    /// Validate and compile; every problem is reported with its field path.
    pub fn compile(&self, id: Uuid) -> Result<Rule, Vec<FieldError>> {
        let mut errors = Vec::new();
        if let Err(m) = crate::domain::ledger::parse_name(&self.name, 100) {
            errors.push(FieldError::new("name", m));
        }
        if self.conditions.is_empty() {
            errors.push(FieldError::new(
                "conditions",
                "must have at least one condition",
            ));
        }
        if self.conditions.len() > MAX_PARTS {
            errors.push(FieldError::new(
                "conditions",
                format!("must have at most {MAX_PARTS} conditions"),
            ));
        }
        if self.actions.is_empty() {
            errors.push(FieldError::new("actions", "must have at least one action"));
        }
        if self.actions.len() > MAX_PARTS {
            errors.push(FieldError::new(
                "actions",
                format!("must have at most {MAX_PARTS} actions"),
            ));
        }
        let tests: Vec<Test> = self
            .conditions
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.compile(&format!("conditions[{i}]"), &mut errors))
            .collect();
        for (i, action) in self.actions.iter().enumerate() {
            let at = format!("actions[{i}]");
            let problem = match action {
                ActionSpec::SetCategory { .. } => None,
                ActionSpec::SetMerchant { value } => crate::domain::ledger::parse_name(value, 200)
                    .err()
                    .map(|m| (format!("{at}.value"), m)),
                ActionSpec::SetNotes { value } => crate::domain::ledger::parse_text(value, 5000)
                    .err()
                    .map(|m| (format!("{at}.value"), m)),
                ActionSpec::AddTags { tags } => {
                    if tags.is_empty() {
                        Some((
                            format!("{at}.tags"),
                            "must name at least one tag".to_string(),
                        ))
                    } else {
                        crate::domain::ledger::parse_tags(tags)
                            .err()
                            .map(|m| (format!("{at}.tags"), m))
                    }
                }
            };
            if let Some((field, message)) = problem {
                errors.push(FieldError::new(field, message));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Rule {
            id,
            tests,
            any: self.match_mode == MatchMode::Any,
            actions: self.actions.clone(),
            stop_processing: self.stop_processing,
        })
    }

    /// The categories this rule sets (checked against the user's categories).
    pub fn categories(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.actions.iter().filter_map(|a| match a {
            ActionSpec::SetCategory { category_id } => Some(*category_id),
            _ => None,
        })
    }
}

fn text_matches(op: &TextOp, haystack: &str) -> bool {
    match op {
        TextOp::Regex(r) => r.is_match(haystack),
        TextOp::Contains(needle) => haystack.to_lowercase().contains(needle.as_str()),
        TextOp::Equals(needle) => haystack.trim().to_lowercase() == *needle,
        TextOp::StartsWith(needle) => haystack
            .trim_start()
            .to_lowercase()
            .starts_with(needle.as_str()),
    }
}

impl Rule {
    pub fn matches(&self, s: &Subject<'_>) -> bool {
        let test = |t: &Test| match t {
            Test::Text(TextField::Description, op) => text_matches(op, s.description),
            Test::Text(TextField::Merchant, op) => text_matches(op, s.merchant),
            Test::Amount(op) => {
                let v = s.micros();
                match *op {
                    AmountOp::Equals(x) => v == x,
                    AmountOp::Gt(x) => v > x,
                    AmountOp::Lt(x) => v < x,
                    AmountOp::Between(lo, hi) => lo <= v && v <= hi,
                }
            }
            Test::Account(id) => s.account == *id,
            Test::Kind(k) => s.kind() == *k,
        };
        if self.any {
            self.tests.iter().any(test)
        } else {
            self.tests.iter().all(test)
        }
    }

    fn apply(&self, out: &mut RuleOutcome) {
        for action in &self.actions {
            match action {
                ActionSpec::SetCategory { category_id } => {
                    out.category = Some((*category_id, self.id))
                }
                ActionSpec::SetMerchant { value } => out.merchant = Some(value.clone()),
                ActionSpec::SetNotes { value } => out.notes = Some(value.clone()),
                ActionSpec::AddTags { tags } => {
                    for t in tags {
                        if !out.tags.contains(t) {
                            out.tags.push(t.clone());
                        }
                    }
                }
            }
        }
    }
}

/// Run rules (already in position order) over one transaction.
pub fn run<'r>(rules: impl IntoIterator<Item = &'r Rule>, s: &Subject<'_>) -> RuleOutcome {
    let mut out = RuleOutcome::default();
    for rule in rules {
        if rule.matches(s) {
            rule.apply(&mut out);
            if rule.stop_processing {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(field: &str, op: &str, value: &str) -> ConditionSpec {
        ConditionSpec {
            field: field.into(),
            op: op.into(),
            value: Some(value.into()),
            min: None,
            max: None,
        }
    }

    fn spec(conditions: Vec<ConditionSpec>, actions: Vec<ActionSpec>) -> RuleSpec {
        RuleSpec {
            name: "r".into(),
            conditions,
            match_mode: MatchMode::All,
            actions,
            stop_processing: false,
        }
    }

    fn subject(description: &str, merchant: &str, amount: i64) -> Subject<'static> {
        Subject {
            description: Box::leak(description.to_string().into_boxed_str()),
            merchant: Box::leak(merchant.to_string().into_boxed_str()),
            amount,
            exponent: 2,
            account: Uuid::nil(),
            transfer: false,
        }
    }

    #[test]
    fn text_and_amount_conditions_match_case_insensitively() {
        let cat = Uuid::now_v7();
        let rule = spec(
            vec![
                cond("merchant", "contains", "StarBucks"),
                ConditionSpec {
                    field: "amount".into(),
                    op: "between".into(),
                    value: None,
                    min: Some("2".into()),
                    max: Some("10.50".into()),
                },
                cond("kind", "equals", "expense"),
            ],
            vec![ActionSpec::SetCategory { category_id: cat }],
        )
        .compile(Uuid::nil())
        .unwrap();
        assert!(rule.matches(&subject("", "STARBUCKS #123", -450)));
        assert!(rule.matches(&subject("", "starbucks", -1050)));
        assert!(!rule.matches(&subject("", "starbucks", -1051)));
        assert!(
            !rule.matches(&subject("", "starbucks", 450)),
            "income is not an expense"
        );
        assert!(!rule.matches(&subject("starbucks", "Costa", -450)));
    }

    #[test]
    fn later_rules_overwrite_and_stop_processing_stops() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let r1 = spec(
            vec![cond("description", "regex", r"^uber\b")],
            vec![
                ActionSpec::SetCategory { category_id: a },
                ActionSpec::AddTags {
                    tags: vec!["ride".into()],
                },
            ],
        )
        .compile(Uuid::now_v7())
        .unwrap();
        let mut r2 = spec(
            vec![cond("description", "contains", "eats")],
            vec![ActionSpec::SetCategory { category_id: b }],
        );
        r2.stop_processing = true;
        let r2 = r2.compile(Uuid::now_v7()).unwrap();
        let r3 = spec(
            vec![cond("description", "starts_with", "uber")],
            vec![ActionSpec::SetNotes {
                value: "never".into(),
            }],
        )
        .compile(Uuid::now_v7())
        .unwrap();
        let out = run([&r1, &r2, &r3], &subject("Uber Eats order", "", -1200));
        assert_eq!(out.category.map(|c| c.0), Some(b));
        assert_eq!(out.tags, vec!["ride".to_string()]);
        assert_eq!(out.notes, None);
        let out = run([&r1, &r2, &r3], &subject("UBER TRIP", "", -1200));
        assert_eq!(out.category.map(|c| c.0), Some(a));
        assert_eq!(out.notes.as_deref(), Some("never"));
    }

    #[test]
    fn invalid_rules_say_where_and_why() {
        let bad = spec(
            vec![
                cond("description", "regex", "(unclosed"),
                cond("colour", "equals", "red"),
                cond("amount", "contains", "5"),
                cond("amount", "gt", "1,5"),
                ConditionSpec {
                    field: "amount".into(),
                    op: "between".into(),
                    value: None,
                    min: Some("10".into()),
                    max: Some("5".into()),
                },
            ],
            vec![ActionSpec::AddTags { tags: vec![] }],
        );
        let errors = bad.compile(Uuid::nil()).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "conditions[0].value",
                "conditions[1].field",
                "conditions[2].op",
                "conditions[3].value",
                "conditions[4].max",
                "actions[0].tags"
            ],
            "{errors:?}"
        );
        assert!(
            errors[0].message.contains("not a valid regex"),
            "{errors:?}"
        );
    }

    #[test]
    fn pathological_regexes_are_refused_or_run_in_linear_time() {
        // Exponential in a backtracking engine; refused as too big or linear here.
        let huge = compile_regex("(a{1,100}){1,100}{1,100}");
        assert!(huge.unwrap_err().contains("too complex"));
        let evil = compile_regex("^(a+)+$").unwrap();
        let input = "a".repeat(100_000) + "b";
        let started = std::time::Instant::now();
        assert!(!evil.is_match(&input));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(compile_regex(&"a".repeat(MAX_PATTERN + 1))
            .unwrap_err()
            .contains("longer"));
    }
}
