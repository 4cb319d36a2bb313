//! Single-core throughput of the Categorizer's two jobs, on the repository's own data:
//! `cargo run --release --example categorizer_speed`.
//!
//! - bank messages parsed per second (every message of `assets/bank_messages.jsonl`, in a loop);
//! - transactions categorized per second (the held-out set's descriptions through a user model
//!   with 20 rules, 200 merchant-memory entries and the shipped prior — the full pipeline).
use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use ledgerline::actors::categorizer::{Item, UserModel};
use ledgerline::domain::bank_message;
use ledgerline::domain::categories::DEFAULT_CATEGORIES;
use ledgerline::domain::classifier::examples;
use ledgerline::domain::rules::{ActionSpec, ConditionSpec, MatchMode, RuleSpec};
use uuid::Uuid;

const RUN: Duration = Duration::from_secs(3);

fn rate(label: &str, mut one_pass: impl FnMut() -> usize) {
    // Warm up (lazy statics: regexes, the prior).
    one_pass();
    let started = Instant::now();
    let mut done = 0usize;
    while started.elapsed() < RUN {
        done += one_pass();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{label:<40} {:>10.0} per second ({:.1} µs each, {done} in {secs:.1} s)",
        done as f64 / secs,
        secs * 1e6 / done as f64
    );
}

fn main() {
    let corpus: Vec<(String, Option<String>)> = include_str!("../assets/bank_messages.jsonl")
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            (
                v["text"].as_str().unwrap_or_default().to_string(),
                v["sender"].as_str().map(str::to_string),
            )
        })
        .collect();
    let today = NaiveDate::from_ymd_opt(2025, 11, 20).unwrap_or_default();
    rate("bank messages parsed", || {
        for (text, sender) in &corpus {
            black_box(bank_message::parse(text, sender.as_deref(), today).ok());
        }
        corpus.len()
    });

    let mut model = UserModel::default();
    let mut classes = Vec::new();
    for (parent, children, kind) in DEFAULT_CATEGORIES {
        if children.is_empty() {
            classes.push((Uuid::now_v7(), parent.to_string(), *kind));
        }
        for child in *children {
            classes.push((Uuid::now_v7(), format!("{parent}/{child}"), *kind));
        }
    }
    model.set_categories(classes.clone());
    for i in 0..20 {
        let spec = RuleSpec {
            name: format!("rule {i}"),
            conditions: vec![ConditionSpec {
                field: "description".into(),
                op: if i % 2 == 0 { "contains" } else { "regex" }.into(),
                value: Some(format!("shop{i}x|store{i}y")),
                min: None,
                max: None,
            }],
            match_mode: MatchMode::Any,
            actions: vec![ActionSpec::SetCategory {
                category_id: classes[i % classes.len()].0,
            }],
            stop_processing: false,
        };
        if let Ok(rule) = spec.compile(Uuid::now_v7()) {
            model.rules.push(rule);
        }
    }
    for i in 0..200 {
        model
            .memory
            .insert(format!("merchant {i}"), classes[i % classes.len()].0);
    }
    let items: Vec<Item> = examples(include_str!("../assets/categorizer/heldout.tsv"))
        .into_iter()
        .map(|e| Item {
            description: e.description,
            merchant: e.merchant,
            amount: if e.outflow { -2_500 } else { 2_500 },
            exponent: 2,
            account: Uuid::nil(),
            has_category: false,
            merchant_in_description: true,
        })
        .collect();
    rate("transactions categorized", || {
        for item in &items {
            black_box(model.categorize(item));
        }
        items.len()
    });
}
