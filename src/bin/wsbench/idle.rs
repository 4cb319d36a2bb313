//! `idle`: how many idle sessions the server holds, and its RSS per session.
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use hyper::{Method, StatusCode};
use serde_json::json;
use tokio::sync::watch;

use crate::client::Client;
use crate::procfs::{self, Sample, Usage};
use crate::report;
use crate::setup;
use crate::ws::{self, Clock, Live};
use crate::{seconds, Args, IdleArgs, Target};

fn rss(pid: Option<u32>) -> Option<u64> {
    pid.and_then(|p| procfs::status_kib(p, "VmRSS").ok())
}

/// Anonymous resident memory (the heap and stacks: what sessions cost), without the file pages
/// (binary, SQLite's mapped files) that come and go with the page cache.
fn anon(pid: Option<u32>) -> Option<u64> {
    pid.and_then(|p| procfs::status_kib(p, "RssAnon").ok())
}

fn per_session(before: Option<u64>, after: Option<u64>, sessions: u64) -> Option<f64> {
    match (before, after) {
        (Some(b), Some(a)) if sessions > 0 => {
            let kib = (a as f64 - b as f64) / sessions as f64;
            Some((kib * 100.0).round() / 100.0)
        }
        _ => None,
    }
}

/// The server's memory with this many sessions open.
struct Point {
    sessions: u64,
    rss: Option<u64>,
    anon: Option<u64>,
}

/// Least-squares KiB per session over the points (None without two usable points).
fn slope(points: &[Point], y: fn(&Point) -> Option<u64>) -> Option<f64> {
    let xy: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|p| y(p).map(|v| (p.sessions as f64, v as f64)))
        .collect();
    if xy.len() < 2 {
        return None;
    }
    let n = xy.len() as f64;
    let mx = xy.iter().map(|p| p.0).sum::<f64>() / n;
    let my = xy.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = xy.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    let sxy: f64 = xy.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| (sxy / sxx * 100.0).round() / 100.0)
}

pub async fn run(args: &Args, idle: &IdleArgs, target: &Target, timeout: Duration) -> Result<bool> {
    let hold = seconds(idle.hold, "hold")?;
    let settle = seconds(idle.settle, "settle")?;
    if args.server_pid.is_none() {
        eprintln!("wsbench: no --server-pid: the server's RSS cannot be reported");
    }
    let pid = args.server_pid;
    let run_id: Arc<str> = Arc::from(&uuid::Uuid::new_v4().simple().to_string()[..8]);
    let clock = Clock::new();
    let users = setup::prepare(args, target, &run_id, timeout).await?;
    let user_count = users.len() as u32;

    tokio::time::sleep(settle).await;
    let rss_before = rss(pid);
    let anon_before = anon(pid);
    let fds_before = pid.and_then(|p| procfs::open_fds(p).ok());
    let client_rss_before = procfs::status_kib(std::process::id(), "VmRSS").ok();
    eprintln!(
        "wsbench: server RSS before any socket: {} KiB",
        rss_before.map_or("n/a".into(), |v| v.to_string())
    );

    let live = Arc::new(Live::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    // Open the sessions in `--steps` equal batches and sample the server's memory after each:
    // the slope over the steps is less sensitive than one before/after difference to memory the
    // allocator kept from the registrations (argon2) and hands out again to the first sessions.
    let steps = idle.steps.clamp(1, args.sessions);
    let mut opened = ws::Opened {
        readers: Vec::with_capacity(args.sessions as usize),
        failures: Vec::new(),
        elapsed: Duration::ZERO,
    };
    let mut points = vec![Point {
        sessions: 0,
        rss: rss_before,
        anon: anon_before,
    }];
    let (mut client_cpu, mut server_cpu) = (0.0, 0.0);
    for step in 0..steps {
        let from = (u64::from(args.sessions) * u64::from(step) / u64::from(steps)) as u32;
        let to = (u64::from(args.sessions) * u64::from(step + 1) / u64::from(steps)) as u32;
        let cpu_start = Sample::take(pid);
        let batch = ws::open_all(
            args,
            from..to,
            target,
            &users,
            timeout,
            clock,
            &run_id,
            &live,
            &stop_rx,
        )
        .await?;
        let usage = Usage::between(cpu_start, Sample::take(pid));
        let wall = batch.elapsed.as_secs_f64();
        client_cpu += usage.client_cores.unwrap_or(0.0) * wall;
        server_cpu += usage.server_cores.unwrap_or(0.0) * wall;
        opened.readers.extend(batch.readers);
        opened.failures.extend(batch.failures);
        opened.elapsed += batch.elapsed;
        if steps > 1 {
            tokio::time::sleep(settle).await;
            let point = Point {
                sessions: opened.readers.len() as u64,
                rss: rss(pid),
                anon: anon(pid),
            };
            eprintln!(
                "wsbench: {} sessions open: server RSS {} KiB, anonymous {} KiB",
                point.sessions,
                point.rss.map_or("n/a".into(), |v| v.to_string()),
                point.anon.map_or("n/a".into(), |v| v.to_string()),
            );
            points.push(point);
        }
    }
    let open_secs = opened.elapsed.as_secs_f64().max(1e-9);
    let open_cpu = (client_cpu / open_secs, server_cpu / open_secs);
    let held = opened.readers.len() as u64;
    eprintln!(
        "wsbench: {held} of {} sessions open with their snapshots in {:.1} s ({} failed)",
        args.sessions,
        opened.elapsed.as_secs_f64(),
        opened.failures.len()
    );
    for (why, n) in ws::failure_kinds(&opened.failures).iter().take(5) {
        eprintln!("wsbench:   {n} × {why}");
    }

    tokio::time::sleep(settle).await;
    let rss_after = rss(pid);
    let anon_after = anon(pid);
    let hwm_after = pid.and_then(|p| procfs::status_kib(p, "VmHWM").ok());
    let fds_after = pid.and_then(|p| procfs::open_fds(p).ok());
    let client_rss_after = procfs::status_kib(std::process::id(), "VmRSS").ok();
    let per_session_kib = per_session(rss_before, rss_after, held);
    let anon_per_session_kib = per_session(anon_before, anon_after, held);
    if steps == 1 {
        points.push(Point {
            sessions: held,
            rss: rss_after,
            anon: anon_after,
        });
    }
    let rss_slope = slope(&points, |p| p.rss);
    let anon_slope = slope(&points, |p| p.anon);
    let last_step = |f: fn(&Point) -> Option<u64>| match points.as_slice() {
        [.., a, b] => per_session(f(a), f(b), b.sessions.saturating_sub(a.sessions)),
        _ => None,
    };
    let rss_last_step = last_step(|p| p.rss);
    let anon_last_step = last_step(|p| p.anon);
    eprintln!(
        "wsbench: server RSS with {held} sessions: {} KiB ({} KiB per session; anonymous {} KiB per session)",
        rss_after.map_or("n/a".into(), |v| v.to_string()),
        per_session_kib.map_or("n/a".into(), |v| v.to_string()),
        anon_per_session_kib.map_or("n/a".into(), |v| v.to_string())
    );

    // A few live writes for user 0: every one of its sockets must get each of them.
    let user0_failed = opened
        .failures
        .iter()
        .filter(|(i, _)| i % user_count == 0)
        .count() as u64;
    let user0_sockets = u64::from(args.sessions.div_ceil(user_count)) - user0_failed;
    let mut acked_writes = 0u64;
    let mut write_errors = Vec::new();
    let verify_started = Instant::now();
    if idle.verify_writes > 0 {
        let user = users
            .first()
            .ok_or_else(|| anyhow::anyhow!("no user registered"))?;
        let mut client = Client::new(target, timeout)?;
        for slot in 0..u64::from(idle.verify_writes) {
            let answer = client
                .call(
                    Method::POST,
                    "/api/v1/transactions",
                    Some(&user.token),
                    Some(setup::create_body(user, &run_id, slot)),
                )
                .await;
            match answer {
                Ok(a) if a.status == StatusCode::CREATED => acked_writes += 1,
                Ok(a) => write_errors.push(format!("{}", a.unexpected("create"))),
                Err(e) => write_errors.push(format!("{e:#}")),
            }
        }
        let wanted = acked_writes * user0_sockets;
        while live.matched.load(Ordering::Relaxed) < wanted
            && verify_started.elapsed() < Duration::from_secs(10)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let verify_time = verify_started.elapsed();

    if !hold.is_zero() {
        eprintln!(
            "wsbench: holding the sessions for {:.0} s (across a server heartbeat)…",
            hold.as_secs_f64()
        );
    }
    tokio::time::sleep(hold).await;
    let rss_end = rss(pid);
    let anon_end = anon(pid);
    let ended_during_hold = live.ended_early.load(Ordering::Relaxed);
    let trackers = ws::stop_all(stop_tx, opened.readers).await?;

    // Who got the verification events.
    let mut user0_complete = 0u64;
    let mut user0_frames = 0u64;
    let mut foreign_frames = 0u64;
    let mut duplicate_frames = 0u64;
    let mut seq_gaps = 0u64;
    let mut seq_duplicates = 0u64;
    let mut unparsed = 0u64;
    let mut other: BTreeMap<String, u64> = BTreeMap::new();
    let mut ended: BTreeMap<String, u64> = BTreeMap::new();
    for t in &trackers {
        seq_gaps += t.seq_gaps;
        seq_duplicates += t.seq_duplicates;
        unparsed += t.unparsed + t.unknown_created;
        for (kind, n) in &t.other {
            *other.entry(kind.clone()).or_insert(0) += n;
        }
        if let Some(why) = &t.ended {
            *ended.entry(why.clone()).or_insert(0) += 1;
        }
        let mut slots: Vec<u64> = t.frames.iter().map(|(k, _)| *k).collect();
        slots.sort_unstable();
        let before = slots.len();
        slots.dedup();
        duplicate_frames += (before - slots.len()) as u64;
        if t.user == 0 {
            user0_frames += slots.len() as u64;
            if slots.len() as u64 >= acked_writes {
                user0_complete += 1;
            }
        } else {
            foreign_frames += slots.len() as u64;
        }
    }
    let held_at_end = trackers.iter().filter(|t| t.ended.is_none()).count() as u64;
    let passed = opened.failures.is_empty()
        && held_at_end == held
        && user0_complete == user0_sockets
        && write_errors.is_empty()
        && foreign_frames == 0
        && duplicate_frames == 0
        && seq_gaps == 0
        && seq_duplicates == 0
        && unparsed == 0;

    let failures: Vec<_> = ws::failure_kinds(&opened.failures)
        .into_iter()
        .take(10)
        .map(|(why, n)| json!({ "count": n, "error": why }))
        .collect();
    let output = json!({
        "mode": "idle",
        "url": args.url,
        "run_id": &*run_id,
        "users": args.users,
        "sessions_requested": args.sessions,
        "sessions_held": held,
        "sessions_failed": opened.failures.len(),
        "open_failures": failures,
        "open_s": report::secs(opened.elapsed),
        "open_cpu_cores": { "client": (open_cpu.0 * 100.0).round() / 100.0, "server": (open_cpu.1 * 100.0).round() / 100.0 },
        "client_threads": args.threads,
        "server_rss_kib": { "before": rss_before, "after": rss_after, "after_hold": rss_end, "hwm_after": hwm_after },
        "server_rss_per_session_kib": per_session_kib,
        "server_rss_anon_kib": { "before": anon_before, "after": anon_after, "after_hold": anon_end },
        "server_rss_anon_per_session_kib": anon_per_session_kib,
        "server_memory_steps": points.iter().map(|p| json!({ "sessions": p.sessions, "rss_kib": p.rss, "anon_kib": p.anon })).collect::<Vec<_>>(),
        "server_rss_slope_kib_per_session": rss_slope,
        "server_anon_slope_kib_per_session": anon_slope,
        "server_rss_last_step_kib_per_session": rss_last_step,
        "server_anon_last_step_kib_per_session": anon_last_step,
        "server_fds": { "before": fds_before, "after": fds_after },
        "client_rss_kib": { "before": client_rss_before, "after": client_rss_after },
        "verify": {
            "writes_acked": acked_writes,
            "write_errors": write_errors,
            "user0_sockets": user0_sockets,
            "user0_sockets_with_every_event": user0_complete,
            "user0_frames": user0_frames,
            "frames_on_other_users_sockets": foreign_frames,
            "duplicates": duplicate_frames,
            "seconds": report::secs(verify_time),
        },
        "hold_s": idle.hold,
        "sessions_open_at_end": held_at_end,
        "sessions_ended_early": ended_during_hold,
        "ended_reasons": ended,
        "seq_gaps": seq_gaps,
        "seq_duplicates": seq_duplicates,
        "frames_without_seq": other,
        "unparsed_frames": unparsed,
        "passed": passed,
    });
    if args.json {
        println!("{output}");
    } else {
        let show = |v: Option<u64>| v.map_or("n/a".to_string(), |v| v.to_string());
        let mut out = String::new();
        out += &format!(
            "wsbench idle: {held} of {} sessions held over {} users ({} failed), opened in {:.1} s \
             (client {:.2} cores, server {:.2} cores), {} client thread(s)\n",
            args.sessions,
            args.users,
            opened.failures.len(),
            opened.elapsed.as_secs_f64(),
            open_cpu.0,
            open_cpu.1,
            args.threads,
        );
        for (why, n) in ws::failure_kinds(&opened.failures).iter().take(5) {
            out += &format!("  {n} × {why}\n");
        }
        out += &format!(
            "server RSS: before {} KiB, after {} KiB, after the hold {} KiB (peak {} KiB); \
             per session {} KiB\n",
            show(rss_before),
            show(rss_after),
            show(rss_end),
            show(hwm_after),
            per_session_kib.map_or("n/a".into(), |v| format!("{v:.2}")),
        );
        out += &format!(
            "server anonymous RSS (RssAnon): before {} KiB, after {} KiB, after the hold {} KiB; \
             per session {} KiB\n",
            show(anon_before),
            show(anon_after),
            show(anon_end),
            anon_per_session_kib.map_or("n/a".into(), |v| format!("{v:.2}")),
        );
        let kib = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.2}"));
        out += &format!(
            "server memory by step (sessions: RSS / anonymous KiB): {}\n",
            points
                .iter()
                .map(|p| format!("{}: {} / {}", p.sessions, show(p.rss), show(p.anon)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        out += &format!(
            "  KiB per session: RSS slope {}, last step {}; anonymous slope {}, last step {}\n",
            kib(rss_slope),
            kib(rss_last_step),
            kib(anon_slope),
            kib(anon_last_step),
        );
        out += &format!(
            "server fds: before {}, after {}; client RSS: before {} KiB, after {} KiB\n",
            show(fds_before.map(|v| v as u64)),
            show(fds_after.map(|v| v as u64)),
            show(client_rss_before),
            show(client_rss_after),
        );
        out += &format!(
            "verify: {acked_writes} creates for user 0 acked; {user0_complete} of {user0_sockets} \
             of its sockets got every one ({:.2} s); frames on other users' sockets {foreign_frames}, \
             duplicates {duplicate_frames}\n",
            verify_time.as_secs_f64()
        );
        for e in &write_errors {
            out += &format!("  create failed: {e}\n");
        }
        out += &format!(
            "after {:.0} s hold: {held_at_end} sessions open, {ended_during_hold} ended early \
             {ended:?}; seq gaps {seq_gaps}, seq duplicates {seq_duplicates}, frames without seq \
             {other:?}, unparsed {unparsed}\n",
            idle.hold
        );
        out += &format!("result: {}\n", if passed { "PASS" } else { "FAIL" });
        print!("{out}");
    }
    if held == 0 {
        bail!("no session could be opened");
    }
    Ok(passed)
}
