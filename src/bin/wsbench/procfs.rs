//! CPU time and memory from /proc: of this process, of the server (`--server-pid`) and of the
//! machine, to tell which side limited a run.
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};

/// Linux reports utime/stime in USER_HZ ticks, which is 100 on every architecture's ABI.
const TICKS_PER_SECOND: f64 = 100.0;

/// User + system CPU seconds used so far by `pid` (or this process).
pub fn cpu_seconds(pid: Option<u32>) -> Result<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    // The command name may contain spaces and parentheses; fields follow the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("{path} has no command name"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let tick = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .ok_or_else(|| anyhow!("{path} is too short"))?
            .parse::<u64>()
            .with_context(|| format!("{path}: field {} is not a number", i + 3))
    };
    Ok((tick(11)? + tick(12)?) as f64 / TICKS_PER_SECOND)
}

/// Busy and total CPU seconds of the whole machine (all cores), from the first line of /proc/stat.
fn machine_seconds() -> Result<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").context("cannot read /proc/stat")?;
    let line = stat
        .lines()
        .next()
        .filter(|l| l.starts_with("cpu "))
        .ok_or_else(|| anyhow!("/proc/stat has no `cpu` line"))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .context("/proc/stat: the `cpu` line is not numbers")?;
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total: u64 = ticks.iter().take(8).sum();
    let idle: u64 = ticks.iter().skip(3).take(2).sum();
    Ok((
        total.saturating_sub(idle) as f64 / TICKS_PER_SECOND,
        total as f64 / TICKS_PER_SECOND,
    ))
}

/// A `kB` line of /proc/<pid>/status (`VmRSS`, `VmHWM`), in KiB.
pub fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':')))
        .ok_or_else(|| anyhow!("{path} has no {field} line"))?;
    line.trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("{path}: {field} is not a number of kB: {line}"))
}

/// Open file descriptors of `pid` (sockets included).
pub fn open_fds(pid: u32) -> Result<usize> {
    let path = format!("/proc/{pid}/fd");
    Ok(std::fs::read_dir(&path)
        .with_context(|| format!("cannot list {path}"))?
        .count())
}

/// CPU seconds of this process, the server and the machine at one moment.
#[derive(Clone, Copy)]
pub struct Sample {
    at: Instant,
    client: Option<f64>,
    server: Option<f64>,
    machine: Option<(f64, f64)>,
}

impl Sample {
    pub fn take(server_pid: Option<u32>) -> Sample {
        Sample {
            at: Instant::now(),
            client: cpu_seconds(None).ok(),
            server: server_pid.and_then(|p| cpu_seconds(Some(p)).ok()),
            machine: machine_seconds().ok(),
        }
    }
}

/// CPU use between two samples, in cores (1.0 = one core busy all the time).
#[derive(Clone, Copy, Default)]
pub struct Usage {
    pub client_cores: Option<f64>,
    pub server_cores: Option<f64>,
    /// Busy cores of the whole machine (every process, e.g. a compiler too).
    pub machine_busy_cores: Option<f64>,
    /// Cores the machine has (by /proc/stat's accounting).
    pub machine_cores: Option<f64>,
}

impl Usage {
    pub fn between(a: Sample, b: Sample) -> Usage {
        let wall = b.at.duration_since(a.at).as_secs_f64();
        let rate = |x: Option<f64>, y: Option<f64>| match (x, y) {
            (Some(x), Some(y)) if wall > 0.0 => Some((y - x) / wall),
            _ => None,
        };
        let (machine_busy_cores, machine_cores) = match (a.machine, b.machine) {
            (Some((busy_a, total_a)), Some((busy_b, total_b))) if wall > 0.0 => (
                Some((busy_b - busy_a) / wall),
                Some((total_b - total_a) / wall),
            ),
            _ => (None, None),
        };
        Usage {
            client_cores: rate(a.client, b.client),
            server_cores: rate(a.server, b.server),
            machine_busy_cores,
            machine_cores,
        }
    }

    pub fn to_json(self) -> Value {
        let round = |x: Option<f64>| x.map(|v| (v * 100.0).round() / 100.0);
        json!({
            "client_cores": round(self.client_cores),
            "server_cores": round(self.server_cores),
            "machine_busy_cores": round(self.machine_busy_cores),
            "machine_cores": round(self.machine_cores),
        })
    }

    pub fn to_text(self) -> String {
        let show = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:.2}"));
        format!(
            "client {} cores, server {} cores, machine {} of {} cores busy",
            show(self.client_cores),
            show(self.server_cores),
            show(self.machine_busy_cores),
            show(self.machine_cores),
        )
    }
}
