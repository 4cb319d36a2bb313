//! Outbox payloads into emails: a subject, a plain-text part and an HTML part, from the templates
//! in `templates/email/` (compile-time checked by askama; the HTML ones escape what they show).
use serde_json::Value;

use crate::domain::money::parse_minor;
use crate::domain::notify::display_money;
use crate::domain::Currency;

pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A decimal string in `currency` as people read money; the raw string if it cannot be read.
fn money(amount: &Value, currency: &str) -> String {
    let raw = amount.as_str().unwrap_or("0");
    match Currency::parse(currency) {
        Ok(c) => parse_minor(raw, c)
            .map(|m| display_money(m, c))
            .unwrap_or_else(|_| format!("{raw} {currency}")),
        Err(_) => format!("{raw} {currency}"),
    }
}

fn field(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `name` of the recipient, or a neutral greeting.
fn greeting(name: &str) -> String {
    let name = name.trim();
    if name.is_empty() {
        "Hello".to_string()
    } else {
        format!("Hello {name}")
    }
}

/// For each email: `Fields` (what it shows), rendered through its HTML and text templates.
macro_rules! email_templates {
    ($($name:ident: $html:literal, $txt:literal { $($field:ident: $ty:ty),* $(,)? })+) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::{BudgetLine, SummaryLine};
                use askama::Template;
                #[derive(Template)]
                #[template(path = $html)]
                struct Html<'a> { $($field: &'a $ty),* }
                #[derive(Template)]
                #[template(path = $txt)]
                struct Text<'a> { $($field: &'a $ty),* }
                pub struct Fields<'a> { $(pub $field: &'a $ty),* }
                impl Fields<'_> {
                    /// (HTML, text)
                    pub fn render(&self) -> Result<(String, String), String> {
                        let html = Html { $($field: self.$field),* }.render();
                        let text = Text { $($field: self.$field),* }.render();
                        Ok((html.map_err(|e| e.to_string())?, text.map_err(|e| e.to_string())?))
                    }
                }
            }
        )+
    };
}

pub struct SummaryLine {
    pub name: String,
    pub amount: String,
}

pub struct BudgetLine {
    pub name: String,
    pub spent: String,
    pub limit: String,
    pub percent: String,
}

email_templates! {
    budget_alert: "email/budget_alert.html", "email/budget_alert.txt" {
        greeting: String, budget: String, threshold: String, spent: String, limit: String,
        remaining: String, period_start: String, period_end: String,
    }
    goal_reached: "email/goal_reached.html", "email/goal_reached.txt" {
        greeting: String, goal: String, target: String, current: String,
    }
    security: "email/security.html", "email/security.txt" {
        greeting: String, headline: String, detail: String, at: String,
    }
    password_reset: "email/password_reset.html", "email/password_reset.txt" {
        greeting: String, token: String, minutes: String,
    }
    monthly_summary: "email/monthly_summary.html", "email/monthly_summary.txt" {
        greeting: String, month: String, income: String, expense: String, net: String,
        income_change: String, expense_change: String, top: Vec<SummaryLine>,
        budgets: Vec<BudgetLine>,
    }
}

/// "+€12.00" / "-€3.50" for a change against the month before.
fn signed(amount: &Value, currency: &str) -> String {
    let s = money(amount, currency);
    if s.starts_with('-') {
        s
    } else {
        format!("+{s}")
    }
}

fn month_label(ym: &str) -> String {
    chrono::NaiveDate::parse_from_str(&format!("{ym}-01"), "%Y-%m-%d")
        .map(|d| d.format("%B %Y").to_string())
        .unwrap_or_else(|_| ym.to_string())
}

pub fn email(kind: &str, payload: &str, name: &str) -> Result<Rendered, String> {
    let p: Value = serde_json::from_str(payload).map_err(|e| format!("payload: {e}"))?;
    let greeting = greeting(name);
    let (subject, (html, text)) = match kind {
        "budget.threshold_reached" => {
            let cur = field(&p["currency"]);
            let spent = money(&p["spent"], &cur);
            let limit = money(&p["limit"], &cur);
            let remaining = {
                let c = Currency::parse(&cur).ok();
                c.and_then(|c| {
                    let s = parse_minor(p["spent"].as_str()?, c).ok()?;
                    let l = parse_minor(p["limit"].as_str()?, c).ok()?;
                    Some(display_money(l - s, c))
                })
                .unwrap_or_default()
            };
            let (budget, threshold) = (field(&p["name"]), field(&p["threshold"]));
            let (start, end) = (field(&p["period"]["start"]), field(&p["period"]["end"]));
            let subject = format!("Budget \"{budget}\" reached {threshold}%: {spent} of {limit}");
            let fields = budget_alert::Fields {
                greeting: &greeting,
                budget: &budget,
                threshold: &threshold,
                spent: &spent,
                limit: &limit,
                remaining: &remaining,
                period_start: &start,
                period_end: &end,
            };
            (subject, fields.render()?)
        }
        "goal.reached" => {
            let cur = field(&p["currency"]);
            let (goal, target, current) = (
                field(&p["name"]),
                money(&p["target"], &cur),
                money(&p["current"], &cur),
            );
            let subject = format!("Goal reached: {goal} ({target})");
            let fields = goal_reached::Fields {
                greeting: &greeting,
                goal: &goal,
                target: &target,
                current: &current,
            };
            (subject, fields.render()?)
        }
        "security" => {
            let (headline, detail, at) =
                (field(&p["headline"]), field(&p["detail"]), field(&p["at"]));
            let subject = format!("Security notice: {headline}");
            let fields = security::Fields {
                greeting: &greeting,
                headline: &headline,
                detail: &detail,
                at: &at,
            };
            (subject, fields.render()?)
        }
        "password_reset" => {
            let (token, minutes) = (field(&p["token"]), field(&p["minutes"]));
            let fields = password_reset::Fields {
                greeting: &greeting,
                token: &token,
                minutes: &minutes,
            };
            (
                "Reset your Ledgerline password".to_string(),
                fields.render()?,
            )
        }
        "monthly_summary" => {
            let cur = field(&p["currency"]);
            let month = month_label(&field(&p["month"]));
            let (income, expense, net) = (
                money(&p["income"], &cur),
                money(&p["expense"], &cur),
                money(&p["net"], &cur),
            );
            let (income_change, expense_change) = (
                signed(&p["change"]["income"], &cur),
                signed(&p["change"]["expense"], &cur),
            );
            let top: Vec<SummaryLine> = p["top_categories"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| SummaryLine {
                    name: field(&c["name"]),
                    amount: money(&c["expense"], &cur),
                })
                .collect();
            let budgets: Vec<BudgetLine> = p["budgets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| {
                    let bc = field(&b["currency"]);
                    BudgetLine {
                        name: field(&b["name"]),
                        spent: money(&b["spent"], &bc),
                        limit: money(&b["limit"], &bc),
                        percent: field(&b["percent"]),
                    }
                })
                .collect();
            let subject = format!("Your {month}: {expense} spent, {income} received");
            let fields = monthly_summary::Fields {
                greeting: &greeting,
                month: &month,
                income: &income,
                expense: &expense,
                net: &net,
                income_change: &income_change,
                expense_change: &expense_change,
                top: &top,
                budgets: &budgets,
            };
            (subject, fields.render()?)
        }
        other => return Err(format!("no email template for `{other}`")),
    };
    Ok(Rendered {
        subject,
        text,
        html,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_alert_renders_both_parts_with_escaped_html() {
        let payload = serde_json::json!({
            "name": "Food <b>&</b> drink", "threshold": 80, "spent": "1234.50",
            "limit": "1500.00", "currency": "EUR", "percent": 82,
            "period": { "start": "2026-11-01", "end": "2026-11-30" },
        });
        let r = email("budget.threshold_reached", &payload.to_string(), "Ada").unwrap();
        assert_eq!(
            r.subject,
            "Budget \"Food <b>&</b> drink\" reached 80%: €1,234.50 of €1,500.00"
        );
        assert!(
            r.text.contains("€1,234.50") && r.text.contains("€265.50"),
            "{}",
            r.text
        );
        assert!(r.text.contains("Food <b>&</b> drink"));
        assert!(
            r.html.contains("Food &#60;b&#62;&#38;&#60;/b&#62; drink")
                || r.html.contains("Food &lt;b&gt;&amp;&lt;/b&gt; drink"),
            "{}",
            r.html
        );
        assert!(r.html.contains("€1,500.00"));
    }

    #[test]
    fn unknown_kinds_are_refused() {
        assert!(email("nope", "{}", "x").is_err());
    }
}
