//! The WebSocket side: open a session (handshake and snapshot), then read its frames until told
//! to stop, timing each `transaction.created` frame of this run and checking the seq order.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use futures_util::StreamExt;
use hyper::header::HeaderValue;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::setup::parse_description;
use crate::Target;

/// Nanoseconds since the start of the run: cheap to store in atomics and vectors.
#[derive(Clone, Copy)]
pub struct Clock {
    base: Instant,
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            base: Instant::now(),
        }
    }

    pub fn now_ns(self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    pub fn instant(self, ns: u64) -> Instant {
        self.base + Duration::from_nanos(ns)
    }
}

/// Small buffers: many sockets, few and small frames each.
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
}

/// An open session whose snapshot arrived.
pub struct Session {
    pub ws: WebSocketStream<TcpStream>,
    pub snapshot_seq: i64,
}

#[derive(Deserialize)]
struct FrameLite<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a str>,
    #[serde(default)]
    seq: Option<i64>,
    #[serde(default, borrow)]
    payload: Option<PayloadLite<'a>>,
}

#[derive(Deserialize)]
struct PayloadLite<'a> {
    #[serde(default, borrow)]
    description: Option<&'a str>,
}

/// Connect, upgrade with the user's bearer token and wait for the snapshot.
pub async fn open(target: &Target, token: &HeaderValue, timeout: Duration) -> Result<Session> {
    let work = async {
        let stream = TcpStream::connect(target.addr)
            .await
            .with_context(|| format!("cannot connect to {}", target.addr))?;
        stream.set_nodelay(true).context("cannot set TCP_NODELAY")?;
        let mut request = format!("ws://{}/api/v1/ws", target.authority)
            .into_client_request()
            .context("cannot build the WebSocket request")?;
        let value = tokio_tungstenite::tungstenite::http::HeaderValue::from_bytes(token.as_bytes())
            .context("the token is not a header value")?;
        request.headers_mut().insert(AUTHORIZATION, value);
        let (mut ws, _response) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(config()))
                .await
                .context("WebSocket handshake failed")?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let frame: FrameLite = serde_json::from_str(text.as_str())
                        .with_context(|| format!("the first frame is not JSON: {text}"))?;
                    if frame.kind != Some("snapshot") {
                        bail!("the first frame is not a snapshot: {text}");
                    }
                    let seq = frame
                        .seq
                        .ok_or_else(|| anyhow!("the snapshot has no seq: {text}"))?;
                    return Ok(Session {
                        ws,
                        snapshot_seq: seq,
                    });
                }
                Some(Ok(Message::Close(frame))) => {
                    bail!("the server closed the socket before the snapshot: {frame:?}")
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(anyhow!(e).context("reading the snapshot failed")),
                None => bail!("the server closed the connection before the snapshot"),
            }
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| anyhow!("no snapshot within {} s", timeout.as_secs_f64()))?
}

/// Counters every reader updates, for progress while the sockets are open.
#[derive(Default)]
pub struct Live {
    /// `transaction.created` frames of this run received on any socket.
    pub matched: AtomicU64,
    /// Readers that ended before they were told to stop.
    pub ended_early: AtomicU64,
}

/// What one socket saw.
pub struct Tracker {
    pub user: u32,
    last_seq: i64,
    /// (slot, arrival in ns on the run's clock) of every `transaction.created` frame of this run.
    pub frames: Vec<(u64, u64)>,
    /// Event frames (frames with a seq).
    pub events: u64,
    /// Missing seqs (a seq more than one above the previous one: the difference minus one).
    pub seq_gaps: u64,
    /// Frames whose seq was not above the previous one.
    pub seq_duplicates: u64,
    /// `transaction.created` frames whose description is not one of this run's.
    pub unknown_created: u64,
    /// Frames without a seq, by type (`pong`, `slow_consumer`, …).
    pub other: BTreeMap<String, u64>,
    /// Text frames that are not JSON of the expected shape, or binary frames.
    pub unparsed: u64,
    /// Why the socket ended before it was told to stop.
    pub ended: Option<String>,
}

impl Tracker {
    fn new(user: u32, snapshot_seq: i64) -> Tracker {
        Tracker {
            user,
            last_seq: snapshot_seq,
            frames: Vec::new(),
            events: 0,
            seq_gaps: 0,
            seq_duplicates: 0,
            unknown_created: 0,
            other: BTreeMap::new(),
            unparsed: 0,
            ended: None,
        }
    }

    fn on_text(&mut self, text: &str, at: u64, run_id: &str, live: &Live) {
        let Ok(frame) = serde_json::from_str::<FrameLite>(text) else {
            self.unparsed += 1;
            return;
        };
        let Some(seq) = frame.seq else {
            let kind = frame.kind.unwrap_or("(no type)");
            *self.other.entry(kind.to_string()).or_insert(0) += 1;
            return;
        };
        self.events += 1;
        if seq <= self.last_seq {
            self.seq_duplicates += 1;
        } else {
            self.seq_gaps += u64::try_from(seq - self.last_seq - 1).unwrap_or(0);
            self.last_seq = seq;
        }
        if frame.kind == Some("transaction.created") {
            let slot = frame
                .payload
                .and_then(|p| p.description)
                .and_then(|d| parse_description(run_id, d));
            match slot {
                Some(slot) => {
                    self.frames.push((slot, at));
                    live.matched.fetch_add(1, Ordering::Relaxed);
                }
                None => self.unknown_created += 1,
            }
        }
    }
}

/// Read `session` until `stop` turns true (or its sender goes away).
pub async fn read(
    session: Session,
    user: u32,
    clock: Clock,
    run_id: Arc<str>,
    live: Arc<Live>,
    mut stop: watch::Receiver<bool>,
) -> Tracker {
    let Session {
        mut ws,
        snapshot_seq,
    } = session;
    let mut tracker = Tracker::new(user, snapshot_seq);
    loop {
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            message = ws.next() => {
                let at = clock.now_ns();
                match message {
                    Some(Ok(Message::Text(text))) => tracker.on_text(text.as_str(), at, &run_id, &live),
                    Some(Ok(Message::Binary(_))) => tracker.unparsed += 1,
                    // tungstenite answers pings by itself on the next read.
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                    Some(Ok(Message::Close(frame))) => {
                        tracker.ended = Some(format!("closed by the server: {frame:?}"));
                        break;
                    }
                    Some(Err(e)) => {
                        tracker.ended = Some(format!("read error: {e}"));
                        break;
                    }
                    None => {
                        tracker.ended = Some("the connection ended".to_string());
                        break;
                    }
                }
            }
            changed = stop.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
    if tracker.ended.is_some() {
        live.ended_early.fetch_add(1, Ordering::Relaxed);
    } else {
        // Say goodbye properly; the server may already be gone, which is fine.
        let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    }
    tracker
}

/// Sessions being read, and the ones that could not be opened.
pub struct Opened {
    /// One reader per open session.
    pub readers: Vec<tokio::task::JoinHandle<Tracker>>,
    /// (session index, why) of every session that did not open.
    pub failures: Vec<(u32, String)>,
    pub elapsed: Duration,
}

/// Open sessions `range` (session i belongs to user i % users), `--connect-concurrency` at a
/// time, and start a reader for each as soon as its snapshot arrived.
#[allow(clippy::too_many_arguments)]
pub async fn open_all(
    args: &crate::Args,
    range: std::ops::Range<u32>,
    target: &Target,
    users: &crate::setup::Users,
    timeout: Duration,
    clock: Clock,
    run_id: &Arc<str>,
    live: &Arc<Live>,
    stop: &watch::Receiver<bool>,
) -> Result<Opened> {
    let first = range.start;
    let total = range.end.saturating_sub(range.start);
    let user_count = u32::try_from(users.len()).context("too many users")?;
    let started = Instant::now();
    eprintln!(
        "wsbench: opening {total} WebSocket sessions ({first}..{}) over {user_count} users ({} at a time)…",
        range.end,
        args.connect_concurrency
    );
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let step = u64::from((total / 10).max(1));
    let mut openers = tokio::task::JoinSet::new();
    for _ in 0..args.connect_concurrency.min(total) {
        let (next, done) = (next.clone(), done.clone());
        let (target, users, run_id, live, stop) = (
            target.clone(),
            users.clone(),
            run_id.clone(),
            live.clone(),
            stop.clone(),
        );
        openers.spawn(async move {
            let mut readers = Vec::new();
            let mut failures = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Ok(index) = u32::try_from(index) else {
                    break;
                };
                if index >= total {
                    break;
                }
                let index = first + index;
                let user_index = index % user_count;
                let Some(user) = users.get(user_index as usize) else {
                    break;
                };
                match open(&target, &user.token, timeout).await {
                    Ok(session) => readers.push(tokio::spawn(read(
                        session,
                        user_index,
                        clock,
                        run_id.clone(),
                        live.clone(),
                        stop.clone(),
                    ))),
                    Err(e) => failures.push((index, format!("{e:#}"))),
                }
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n % step == 0 || n == u64::from(total) {
                    eprintln!(
                        "wsbench: {n}/{total} sessions tried, {} failed here so far ({:.1} s)",
                        failures.len(),
                        started.elapsed().as_secs_f64()
                    );
                }
            }
            (readers, failures)
        });
    }
    let mut opened = Opened {
        readers: Vec::with_capacity(total as usize),
        failures: Vec::new(),
        elapsed: Duration::ZERO,
    };
    while let Some(joined) = openers.join_next().await {
        let (readers, failures) = joined.context("a task opening sessions failed")?;
        opened.readers.extend(readers);
        opened.failures.extend(failures);
    }
    opened.failures.sort_by_key(|(i, _)| *i);
    opened.elapsed = started.elapsed();
    Ok(opened)
}

/// Tell the readers to stop and collect what they saw.
pub async fn stop_all(
    stop: watch::Sender<bool>,
    readers: Vec<tokio::task::JoinHandle<Tracker>>,
) -> Result<Vec<Tracker>> {
    // Receivers that are gone already ended on their own; nothing to do about them.
    let _ = stop.send(true);
    let mut trackers = Vec::with_capacity(readers.len());
    for reader in readers {
        trackers.push(reader.await.context("a socket reader failed")?);
    }
    Ok(trackers)
}

/// The distinct reasons in `failures` with how often each occurred, most frequent first.
pub fn failure_kinds(failures: &[(u32, String)]) -> Vec<(String, usize)> {
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, why) in failures {
        *kinds.entry(why.as_str()).or_insert(0) += 1;
    }
    let mut kinds: Vec<(String, usize)> =
        kinds.into_iter().map(|(k, n)| (k.to_string(), n)).collect();
    kinds.sort_by_key(|k| std::cmp::Reverse(k.1));
    kinds
}
