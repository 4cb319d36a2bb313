//! Histograms (microseconds) and their summaries.
use std::time::Duration;

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// Largest latency the histograms hold (60 s, in microseconds); longer ones are clamped.
pub const MAX_LATENCY_US: u64 = 60_000_000;

pub fn histogram() -> Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).context("cannot create a histogram")
}

/// Nanoseconds to whole microseconds, at least 1 (the histograms' lowest value).
pub fn us(nanos: u64) -> u64 {
    (nanos / 1_000).clamp(1, MAX_LATENCY_US)
}

pub fn record(h: &mut Histogram<u64>, nanos: u64) {
    h.saturating_record(us(nanos));
}

/// Count and percentiles in microseconds.
pub fn summary(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!({ "count": 0 });
    }
    json!({
        "count": h.len(),
        "mean_us": h.mean().round() as u64,
        "p50_us": h.value_at_quantile(0.50),
        "p90_us": h.value_at_quantile(0.90),
        "p99_us": h.value_at_quantile(0.99),
        "p999_us": h.value_at_quantile(0.999),
        "max_us": h.max(),
    })
}

fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

/// One line: `count  p50  p90  p99  p99.9  max` in milliseconds.
pub fn line(name: &str, h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return format!("  {name:<28} (none)\n");
    }
    format!(
        "  {name:<28} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
        h.len(),
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.90)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max()),
    )
}

pub fn header() -> String {
    format!(
        "  {:<28} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
        "(milliseconds)", "count", "p50", "p90", "p99", "p99.9", "max"
    )
}

pub fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}
