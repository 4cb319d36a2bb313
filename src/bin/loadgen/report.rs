//! The results as a text block or one JSON object.
use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::run::{Outcome, KIND_NAMES};
use crate::Args;

pub struct Summary {
    scenario: &'static str,
    users: u32,
    connections: u32,
    threads: u32,
    warmup_s: f64,
    duration_s: f64,
    measured_s: f64,
    ok: u64,
    ok_by_kind: BTreeMap<&'static str, u64>,
    errors: BTreeMap<String, u64>,
    samples: BTreeMap<String, String>,
    throughput: f64,
    /// p50, p90, p99, p99.9, max, mean in milliseconds.
    latency_ms: [(&'static str, f64); 6],
    verification: Option<Value>,
    client_cores: Option<f64>,
    server_cores: Option<f64>,
    machine_busy_cores: Option<f64>,
    machine_cores: Option<f64>,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl Summary {
    pub fn new(args: &Args, outcome: &Outcome, verification: Option<Value>) -> Summary {
        let h = &outcome.histogram;
        let measured_s = outcome.measured.as_secs_f64();
        let ok_by_kind = KIND_NAMES
            .iter()
            .zip(outcome.ok_by_kind)
            .filter(|(_, n)| *n > 0)
            .map(|(name, n)| (*name, n))
            .collect();
        Summary {
            scenario: args.scenario.name(),
            users: args.users,
            connections: args.connections,
            threads: args.threads,
            warmup_s: args.warmup,
            duration_s: args.duration,
            measured_s,
            ok: outcome.ok,
            ok_by_kind,
            errors: outcome.errors.clone(),
            samples: outcome.samples.clone(),
            throughput: if measured_s > 0.0 {
                outcome.ok as f64 / measured_s
            } else {
                0.0
            },
            latency_ms: [
                ("p50", ms(h.value_at_quantile(0.50))),
                ("p90", ms(h.value_at_quantile(0.90))),
                ("p99", ms(h.value_at_quantile(0.99))),
                ("p99.9", ms(h.value_at_quantile(0.999))),
                ("max", ms(h.max())),
                ("mean", h.mean() / 1000.0),
            ],
            verification,
            client_cores: outcome.cpu.client_cores,
            server_cores: outcome.cpu.server_cores,
            machine_busy_cores: outcome.cpu.machine_busy_cores,
            machine_cores: outcome.cpu.machine_cores,
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn total_requests(&self) -> u64 {
        self.ok + self.error_count()
    }

    pub fn error_ratio(&self) -> f64 {
        match self.total_requests() {
            0 => 0.0,
            total => self.error_count() as f64 / total as f64,
        }
    }

    pub fn to_json(&self) -> Value {
        let latency: serde_json::Map<String, Value> = self
            .latency_ms
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let mut out = json!({
            "scenario": self.scenario,
            "users": self.users,
            "connections": self.connections,
            "client_threads": self.threads,
            "warmup_s": self.warmup_s,
            "duration_s": self.duration_s,
            "measured_s": self.measured_s,
            "requests_ok": self.ok,
            "requests_ok_by_kind": self.ok_by_kind,
            "errors": self.error_count(),
            "errors_by_status": self.errors,
            "error_samples": self.samples,
            "error_ratio": self.error_ratio(),
            "throughput_rps": self.throughput,
            "latency_ms": latency,
            "cpu_cores": {
                "client": self.client_cores,
                "server": self.server_cores,
                "machine_busy": self.machine_busy_cores,
                "machine": self.machine_cores,
            },
        });
        if let (Some(v), Some(map)) = (&self.verification, out.as_object_mut()) {
            map.insert("verify".into(), v.clone());
        }
        out
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!("scenario:       {}\n", self.scenario));
        out.push_str(&format!(
            "users:          {}   connections: {}   client threads: {}\n",
            self.users, self.connections, self.threads
        ));
        out.push_str(&format!(
            "duration:       {:.1} s measured (after {:.1} s warm-up)\n",
            self.measured_s, self.warmup_s
        ));
        let kinds: Vec<String> = self
            .ok_by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        out.push_str(&format!(
            "requests ok:    {}   ({})\n",
            self.ok,
            kinds.join(", ")
        ));
        if self.errors.is_empty() {
            out.push_str("errors:         0\n");
        } else {
            let by: Vec<String> = self
                .errors
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect();
            out.push_str(&format!(
                "errors:         {} ({:.3} %)   {}\n",
                self.error_count(),
                self.error_ratio() * 100.0,
                by.join(", ")
            ));
            for (k, sample) in &self.samples {
                out.push_str(&format!("  first {k}: {sample}\n"));
            }
        }
        out.push_str(&format!("throughput:     {:.1} req/s\n", self.throughput));
        let lat: Vec<String> = self
            .latency_ms
            .iter()
            .map(|(k, v)| format!("{k} {v:.3}"))
            .collect();
        out.push_str(&format!("latency (ms):   {}\n", lat.join("   ")));
        let cores = |c: Option<f64>| match c {
            Some(c) => format!("{:.0} % of a core", c * 100.0),
            None => "unknown".to_string(),
        };
        let machine = match (self.machine_busy_cores, self.machine_cores) {
            (Some(busy), Some(all)) => {
                let others =
                    busy - self.client_cores.unwrap_or(0.0) - self.server_cores.unwrap_or(0.0);
                format!("{busy:.2} of {all:.0} cores busy ({others:.2} by other processes)")
            }
            _ => "unknown".to_string(),
        };
        out.push_str(&format!(
            "cpu (measured): loadgen {}, server {}, machine {machine}\n",
            cores(self.client_cores),
            cores(self.server_cores)
        ));
        out
    }
}
