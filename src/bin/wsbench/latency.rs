//! `latency`: creates at a fixed open-loop rate while `--sessions` sockets listen; every
//! `transaction.created` frame is matched to its POST and timed.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::client::{Client, Failure};
use crate::procfs::{Sample, Usage};
use crate::report::{self, histogram, record};
use crate::setup::{self, Users};
use crate::ws::{self, Clock, Live, Tracker};
use crate::{seconds, Args, LatencyArgs, Target};

const CREATE_PATH: &str = "/api/v1/transactions";

/// Slot states besides an HTTP status.
const NOT_SENT: u16 = 0;
/// The writers were all busy and the queue was full when the create was due: not sent.
const SKIPPED: u16 = 1;
const IO_ERROR: u16 = 2;
const TIMEOUT: u16 = 3;

/// One scheduled create: create number k is due at `start + k / rate` and belongs to user
/// `k % users`.
#[derive(Default)]
struct Slot {
    sent_ns: AtomicU64,
    answered_ns: AtomicU64,
    status: AtomicU16,
}

struct Shared {
    slots: Vec<Slot>,
    users: Users,
    run_id: Arc<str>,
    clock: Clock,
    /// The first message of each kind of failed create.
    error_samples: Mutex<BTreeMap<String, String>>,
}

impl Shared {
    fn sample_error(&self, key: String, sample: impl FnOnce() -> String) {
        let mut samples = self
            .error_samples
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        samples.entry(key).or_insert_with(sample);
    }
}

async fn writer(
    mut client: Client,
    queue: Arc<tokio::sync::Mutex<mpsc::Receiver<u64>>>,
    shared: Arc<Shared>,
) {
    let user_count = shared.users.len() as u64;
    loop {
        let next = { queue.lock().await.recv().await };
        let Some(k) = next else {
            return;
        };
        let (Some(slot), Some(user)) = (
            shared.slots.get(k as usize),
            shared.users.get((k % user_count) as usize),
        ) else {
            continue;
        };
        let body = setup::create_body(user, &shared.run_id, k);
        slot.sent_ns.store(shared.clock.now_ns(), Ordering::Relaxed);
        let result = client
            .send(Method::POST, CREATE_PATH, Some(&user.token), Some(body))
            .await;
        slot.answered_ns
            .store(shared.clock.now_ns(), Ordering::Relaxed);
        let status = match result {
            Ok(answer) => {
                if answer.status != StatusCode::CREATED {
                    shared.sample_error(answer.status.as_u16().to_string(), || {
                        String::from_utf8_lossy(&answer.body)
                            .chars()
                            .take(300)
                            .collect()
                    });
                }
                answer.status.as_u16()
            }
            Err(Failure::Io(e)) => {
                shared.sample_error("io".into(), || format!("{e:#}"));
                // Do not spin if the server is gone; the run still ends on time.
                tokio::time::sleep(Duration::from_millis(20)).await;
                IO_ERROR
            }
            Err(Failure::Timeout) => {
                shared.sample_error("timeout".into(), || "no answer in time".into());
                TIMEOUT
            }
        };
        slot.status.store(status, Ordering::Relaxed);
    }
}

fn status_name(status: u16) -> String {
    match status {
        NOT_SENT => "not_sent".into(),
        SKIPPED => "skipped_writers_busy".into(),
        IO_ERROR => "io".into(),
        TIMEOUT => "timeout".into(),
        s => s.to_string(),
    }
}

pub async fn run(
    args: &Args,
    la: &LatencyArgs,
    target: &Target,
    timeout: Duration,
) -> Result<bool> {
    if !(la.rate > 0.0 && la.rate <= 1_000_000.0) {
        bail!(
            "--rate must be more than 0 and at most 1000000, not {}",
            la.rate
        );
    }
    let warmup = seconds(la.warmup, "warmup")?;
    let duration = seconds(la.duration, "duration")?;
    if duration.is_zero() {
        bail!("--duration must be more than zero");
    }
    let drain = seconds(la.drain, "drain")?;
    let total_slots = ((la.warmup + la.duration) * la.rate).ceil() as u64;
    if total_slots > 50_000_000 {
        bail!("--rate × (--warmup + --duration) is more than 50 million creates");
    }
    let first_measured = (la.warmup * la.rate).ceil() as u64;

    let run_id: Arc<str> = Arc::from(&uuid::Uuid::new_v4().simple().to_string()[..8]);
    let clock = Clock::new();
    let setup_started = Instant::now();
    let users = setup::prepare(args, target, &run_id, timeout).await?;
    let setup_time = setup_started.elapsed();
    let user_count = users.len();
    let mut sockets_per_user = vec![0u64; user_count];
    for i in 0..args.sessions as usize {
        sockets_per_user[i % user_count] += 1;
    }

    let live = Arc::new(Live::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let opened = ws::open_all(
        args,
        0..args.sessions,
        target,
        &users,
        timeout,
        clock,
        &run_id,
        &live,
        &stop_rx,
    )
    .await?;
    if let Some((index, why)) = opened.failures.first() {
        let failed = opened.failures.len();
        ws::stop_all(stop_tx, opened.readers).await?;
        bail!(
            "{failed} of {} sessions did not open; the first (session {index}): {why}",
            args.sessions
        );
    }
    eprintln!(
        "wsbench: {} sessions open with their snapshots in {:.1} s",
        opened.readers.len(),
        opened.elapsed.as_secs_f64()
    );

    let mut clients = Vec::with_capacity(la.writers as usize);
    for i in 0..la.writers {
        let mut client = Client::new(target, timeout)?;
        client
            .connect()
            .await
            .with_context(|| format!("opening writer connection {i}"))?;
        clients.push(client);
    }
    let shared = Arc::new(Shared {
        slots: (0..total_slots).map(|_| Slot::default()).collect(),
        users: users.clone(),
        run_id: run_id.clone(),
        clock,
        error_samples: Mutex::new(BTreeMap::new()),
    });
    // Creates wait for a free writer in a short queue (4 per writer, or 10 ms of the rate if
    // more); a create due when the queue is full is skipped and counted, so that an overloaded
    // server shows as a shortfall in tx/s rather than as an ever longer wait before sending.
    let capacity = (la.writers as usize * 4).max((la.rate / 100.0).ceil() as usize);
    let (queue_tx, queue_rx) = mpsc::channel::<u64>(capacity);
    let queue_rx = Arc::new(tokio::sync::Mutex::new(queue_rx));
    let mut writers = JoinSet::new();
    for client in clients {
        writers.spawn(writer(client, queue_rx.clone(), shared.clone()));
    }

    eprintln!(
        "wsbench: {} tx/s from {} writers for {:.1} s warm-up + {:.1} s measured…",
        la.rate,
        la.writers,
        warmup.as_secs_f64(),
        duration.as_secs_f64()
    );
    let period_ns = 1e9 / la.rate;
    let start_ns = clock.now_ns() + 20_000_000;
    let due = move |k: u64| start_ns + (k as f64 * period_ns) as u64;
    let measure_from = clock.instant(due(first_measured));
    let measure_to = clock.instant(due(total_slots));
    let server_pid = args.server_pid;
    let cpu = tokio::spawn(async move {
        tokio::time::sleep_until(tokio::time::Instant::from_std(measure_from)).await;
        let first = Sample::take(server_pid);
        tokio::time::sleep_until(tokio::time::Instant::from_std(measure_to)).await;
        Usage::between(first, Sample::take(server_pid))
    });

    for k in 0..total_slots {
        let d = due(k);
        if clock.now_ns() < d {
            tokio::time::sleep_until(tokio::time::Instant::from_std(clock.instant(d))).await;
        }
        match queue_tx.try_send(k) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                if let Some(slot) = shared.slots.get(k as usize) {
                    slot.status.store(SKIPPED, Ordering::Relaxed);
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => bail!("every writer stopped"),
        }
    }
    drop(queue_tx);
    while let Some(joined) = writers.join_next().await {
        joined.context("a writer failed")?;
    }
    let usage = cpu.await.unwrap_or_default();

    // Wait for the frames still on their way.
    let expected_all: u64 = shared
        .slots
        .iter()
        .enumerate()
        .filter(|(_, s)| s.status.load(Ordering::Relaxed) == 201)
        .map(|(k, _)| sockets_per_user[k % user_count])
        .sum();
    let drain_started = Instant::now();
    while live.matched.load(Ordering::Relaxed) < expected_all
        && drain_started.elapsed() < drain
        && live.ended_early.load(Ordering::Relaxed) < u64::from(args.sessions)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drained_in = drain_started.elapsed();
    let trackers = ws::stop_all(stop_tx, opened.readers).await?;

    let result = analyse(
        &shared,
        &trackers,
        &sockets_per_user,
        first_measured..total_slots,
        due,
    )?;
    let samples = shared
        .error_samples
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    let passed = result.passed();
    let output = json!({
        "mode": "latency",
        "url": args.url,
        "run_id": &*run_id,
        "users": args.users,
        "sessions": args.sessions,
        "sessions_per_user": {
            "min": sockets_per_user.iter().min(),
            "max": sockets_per_user.iter().max(),
        },
        "writers": la.writers,
        "client_threads": args.threads,
        "target_rate_tx_per_s": la.rate,
        "warmup_s": la.warmup,
        "duration_s": la.duration,
        "setup_s": report::secs(setup_time),
        "open_sessions_s": report::secs(opened.elapsed),
        "drain_s": report::secs(drained_in),
        "creates": result.creates_json(la.duration),
        "latency_us": {
            "send_to_frame": report::summary(&result.send_to_frame),
            "send_to_201": report::summary(&result.send_to_201),
            "201_to_frame_after_201": report::summary(&result.ack_to_frame),
            "frame_lead_before_201": report::summary(&result.lead_before_ack),
            "fanout_spread": report::summary(&result.spread),
            "schedule_lag": report::summary(&result.schedule_lag),
        },
        "frames_before_201_share": result.early_share(),
        "frames": result.frames_json(),
        "sockets": result.sockets_json(),
        "cpu_measured": usage.to_json(),
        "error_samples": samples,
        "passed": passed,
    });
    if args.json {
        println!("{output}");
    } else {
        print!(
            "{}",
            result.to_text(args, la, &usage, &samples, opened.elapsed, setup_time)
        );
    }
    Ok(passed)
}

struct Analysis {
    measured_slots: u64,
    /// Measured creates by outcome (`201`, `skipped_writers_busy`, `io`, …).
    outcomes: BTreeMap<String, u64>,
    acked: u64,
    send_to_frame: Histogram<u64>,
    send_to_201: Histogram<u64>,
    ack_to_frame: Histogram<u64>,
    lead_before_ack: Histogram<u64>,
    /// Per measured create: last socket's frame − first socket's frame.
    spread: Histogram<u64>,
    /// Measured creates: sent − due (time waiting for the timer and a free writer).
    schedule_lag: Histogram<u64>,
    expected: u64,
    received: u64,
    frames_before_ack: u64,
    duplicate_frames: u64,
    foreign_frames: u64,
    frames_for_unacked: u64,
    unknown_slot_frames: u64,
    expected_all: u64,
    received_all: u64,
    sockets_missing_frames: u64,
    sockets: u64,
    ended_early: Vec<String>,
    seq_gaps: u64,
    seq_duplicates: u64,
    unknown_created: u64,
    unparsed: u64,
    other: BTreeMap<String, u64>,
    events: u64,
}

fn analyse(
    shared: &Shared,
    trackers: &[Tracker],
    sockets_per_user: &[u64],
    measured: std::ops::Range<u64>,
    due: impl Fn(u64) -> u64,
) -> Result<Analysis> {
    let user_count = sockets_per_user.len() as u64;
    let mut a = Analysis {
        measured_slots: measured.end - measured.start,
        outcomes: BTreeMap::new(),
        acked: 0,
        send_to_frame: histogram()?,
        send_to_201: histogram()?,
        ack_to_frame: histogram()?,
        lead_before_ack: histogram()?,
        spread: histogram()?,
        schedule_lag: histogram()?,
        expected: 0,
        received: 0,
        frames_before_ack: 0,
        duplicate_frames: 0,
        foreign_frames: 0,
        frames_for_unacked: 0,
        unknown_slot_frames: 0,
        expected_all: 0,
        received_all: 0,
        sockets_missing_frames: 0,
        sockets: trackers.len() as u64,
        ended_early: Vec::new(),
        seq_gaps: 0,
        seq_duplicates: 0,
        unknown_created: 0,
        unparsed: 0,
        other: BTreeMap::new(),
        events: 0,
    };
    let status = |k: u64| {
        shared
            .slots
            .get(k as usize)
            .map_or(NOT_SENT, |s| s.status.load(Ordering::Relaxed))
    };
    // Per create, for the fan-out spread: first and last arrival.
    let mut span: Vec<(u64, u64)> = vec![(u64::MAX, 0); shared.slots.len()];
    // Acked creates per user (all and measured), to count the expected frames per socket.
    let mut acked_all_per_user = vec![0u64; sockets_per_user.len()];
    let mut acked_measured_per_user = vec![0u64; sockets_per_user.len()];
    for (k, slot) in shared.slots.iter().enumerate() {
        let k = k as u64;
        let st = slot.status.load(Ordering::Relaxed);
        let user = (k % user_count) as usize;
        if st == 201 {
            acked_all_per_user[user] += 1;
        }
        if !measured.contains(&k) {
            continue;
        }
        *a.outcomes.entry(status_name(st)).or_insert(0) += 1;
        if st == NOT_SENT || st == SKIPPED {
            continue;
        }
        let sent = slot.sent_ns.load(Ordering::Relaxed);
        let answered = slot.answered_ns.load(Ordering::Relaxed);
        record(&mut a.schedule_lag, sent.saturating_sub(due(k)));
        if st == 201 {
            a.acked += 1;
            acked_measured_per_user[user] += 1;
            record(&mut a.send_to_201, answered.saturating_sub(sent));
        }
    }
    for (user, sockets) in sockets_per_user.iter().enumerate() {
        a.expected += acked_measured_per_user[user] * sockets;
        a.expected_all += acked_all_per_user[user] * sockets;
    }

    for t in trackers {
        a.seq_gaps += t.seq_gaps;
        a.seq_duplicates += t.seq_duplicates;
        a.unknown_created += t.unknown_created;
        a.unparsed += t.unparsed;
        a.events += t.events;
        for (kind, n) in &t.other {
            *a.other.entry(kind.clone()).or_insert(0) += n;
        }
        if let Some(why) = &t.ended {
            a.ended_early.push(why.clone());
        }
        let mut frames = t.frames.clone();
        frames.sort_unstable();
        let mut previous: Option<u64> = None;
        let mut unique_measured_acked = 0u64;
        for &(k, at) in &frames {
            if previous == Some(k) {
                a.duplicate_frames += 1;
                continue;
            }
            previous = Some(k);
            let Some(slot) = shared.slots.get(k as usize) else {
                a.unknown_slot_frames += 1;
                continue;
            };
            if k % user_count != u64::from(t.user) {
                a.foreign_frames += 1;
                continue;
            }
            let st = status(k);
            if st != 201 {
                a.frames_for_unacked += 1;
                continue;
            }
            a.received_all += 1;
            if !measured.contains(&k) {
                continue;
            }
            unique_measured_acked += 1;
            a.received += 1;
            let sent = slot.sent_ns.load(Ordering::Relaxed);
            let answered = slot.answered_ns.load(Ordering::Relaxed);
            record(&mut a.send_to_frame, at.saturating_sub(sent));
            if at < answered {
                a.frames_before_ack += 1;
                record(&mut a.lead_before_ack, answered - at);
            } else {
                record(&mut a.ack_to_frame, at - answered);
            }
            if let Some(s) = span.get_mut(k as usize) {
                s.0 = s.0.min(at);
                s.1 = s.1.max(at);
            }
        }
        let expected_here = acked_measured_per_user
            .get(t.user as usize)
            .copied()
            .unwrap_or(0);
        if unique_measured_acked < expected_here {
            a.sockets_missing_frames += 1;
        }
    }
    for (k, &(first, last)) in span.iter().enumerate() {
        if measured.contains(&(k as u64)) && first != u64::MAX {
            record(&mut a.spread, last - first);
        }
    }
    Ok(a)
}

impl Analysis {
    fn passed(&self) -> bool {
        self.expected == self.received
            && self.expected_all == self.received_all
            && self.duplicate_frames == 0
            && self.foreign_frames == 0
            && self.seq_gaps == 0
            && self.seq_duplicates == 0
            && self.ended_early.is_empty()
            && self.unparsed == 0
            && self.acked > 0
    }

    fn early_share(&self) -> f64 {
        if self.received == 0 {
            return 0.0;
        }
        (self.frames_before_ack as f64 / self.received as f64 * 10_000.0).round() / 10_000.0
    }

    fn achieved(&self, duration: f64) -> f64 {
        (self.acked as f64 / duration * 10.0).round() / 10.0
    }

    fn creates_json(&self, duration: f64) -> Value {
        json!({
            "scheduled": self.measured_slots,
            "by_outcome": self.outcomes,
            "acked_201": self.acked,
            "achieved_tx_per_s": self.achieved(duration),
        })
    }

    fn frames_json(&self) -> Value {
        json!({
            "expected": self.expected,
            "received": self.received,
            "missing": self.expected.saturating_sub(self.received),
            "sockets_missing_frames": self.sockets_missing_frames,
            "duplicates": self.duplicate_frames,
            "for_another_user": self.foreign_frames,
            "for_creates_without_201": self.frames_for_unacked,
            "unknown_ids": self.unknown_slot_frames + self.unknown_created,
            "incl_warmup_expected": self.expected_all,
            "incl_warmup_received": self.received_all,
            "events_total": self.events,
        })
    }

    fn sockets_json(&self) -> Value {
        let mut reasons: BTreeMap<&str, u64> = BTreeMap::new();
        for why in &self.ended_early {
            *reasons.entry(why.as_str()).or_insert(0) += 1;
        }
        json!({
            "open_at_end": self.sockets - self.ended_early.len() as u64,
            "ended_early": self.ended_early.len(),
            "ended_early_reasons": reasons,
            "seq_gaps": self.seq_gaps,
            "seq_duplicates": self.seq_duplicates,
            "frames_without_seq": self.other,
            "unparsed_frames": self.unparsed,
        })
    }

    fn to_text(
        &self,
        args: &Args,
        la: &LatencyArgs,
        usage: &Usage,
        samples: &BTreeMap<String, String>,
        open_time: Duration,
        setup_time: Duration,
    ) -> String {
        let mut out = String::new();
        let achieved = self.achieved(la.duration);
        out += &format!(
            "wsbench latency: {} sessions over {} users, {} writers, {} client thread(s); \
             setup {:.1} s, sessions opened in {:.1} s\n",
            args.sessions,
            args.users,
            la.writers,
            args.threads,
            setup_time.as_secs_f64(),
            open_time.as_secs_f64()
        );
        out += &format!(
            "creates: target {} tx/s, achieved {achieved} tx/s ({} acked of {} scheduled in {:.1} s){}\n",
            la.rate,
            self.acked,
            self.measured_slots,
            la.duration,
            if achieved < la.rate * 0.98 {
                "  << SHORT OF THE TARGET"
            } else {
                ""
            }
        );
        out += &format!("  outcomes: {:?}\n", self.outcomes);
        for (key, sample) in samples {
            out += &format!("  first {key}: {sample}\n");
        }
        out += &report::header();
        out += &report::line("send -> frame", &self.send_to_frame);
        out += &report::line("send -> 201", &self.send_to_201);
        out += &report::line("201 -> frame (after 201)", &self.ack_to_frame);
        out += &report::line("frame lead before 201", &self.lead_before_ack);
        out += &report::line("fan-out spread per create", &self.spread);
        out += &report::line("schedule lag (due -> sent)", &self.schedule_lag);
        out += &format!(
            "frames before their 201: {:.2} %\n",
            self.early_share() * 100.0
        );
        out += &format!(
            "frames: expected {} received {} (missing {}, sockets missing some {}), duplicates {}, \
             for another user {}, for creates without 201 {}, unknown {}; incl. warm-up {} / {}\n",
            self.expected,
            self.received,
            self.expected.saturating_sub(self.received),
            self.sockets_missing_frames,
            self.duplicate_frames,
            self.foreign_frames,
            self.frames_for_unacked,
            self.unknown_slot_frames + self.unknown_created,
            self.received_all,
            self.expected_all,
        );
        out += &format!(
            "sockets: {} open at the end, {} ended early; seq gaps {}, seq duplicates {}, \
             frames without seq {:?}, unparsed {}\n",
            self.sockets - self.ended_early.len() as u64,
            self.ended_early.len(),
            self.seq_gaps,
            self.seq_duplicates,
            self.other,
            self.unparsed
        );
        if let Some(why) = self.ended_early.first() {
            out += &format!("  first socket that ended early: {why}\n");
        }
        out += &format!("cpu (measured part): {}\n", usage.to_text());
        out += &format!("result: {}\n", if self.passed() { "PASS" } else { "FAIL" });
        out
    }
}
