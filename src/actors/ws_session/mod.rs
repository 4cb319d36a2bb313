//! `WsSession`: one actor per WebSocket connection. It joins the [`Hub`], sends a `snapshot`
//! (balances and the latest `seq`) or replays the event log after `?since=`, then streams every
//! committed event of its user in `seq` order, with no gap and no duplicate. It pings the client,
//! drops a silent one, and closes itself with a distinct code when its user's session is revoked
//! or when it fell too far behind (its bounded mailbox overflowed).
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorContext, ActorFutureExt, Addr, AsyncContext, Handler, Message, StreamHandler,
    WrapFuture,
};
use actix_web_actors::ws;
use serde_json::json;
use uuid::Uuid;

use crate::actors::directory::{ask_ledger_here, Directory};
use crate::actors::hub::{Frame, Hub, Join, Leave, CLOSE_SESSION_REVOKED, CLOSE_SLOW_CONSUMER};
use crate::actors::ledger::LiveSnapshot;
use crate::store::{ledger as q, Db};

/// Events a resuming client may be behind before it is told to resync instead.
pub const MAX_REPLAY: i64 = 10_000;

/// Committed events for this session's user.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Deliver(pub Arc<[Frame]>);

/// The user's sign-in session ended: say so and close.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Revoked {
    pub reason: &'static str,
}

/// Tunables of a session.
#[derive(Debug, Clone, Copy)]
pub struct WsLimits {
    /// Events waiting for a slow client before it is closed.
    pub queue: usize,
    pub heartbeat: Duration,
    pub client_timeout: Duration,
}

enum Phase {
    /// Snapshot or replay in progress: live events wait here.
    Syncing(Vec<Frame>),
    Live {
        last_seq: i64,
    },
}

pub struct WsSession {
    id: u64,
    user_id: Uuid,
    auth_session: Uuid,
    since: Option<i64>,
    hub: Addr<Hub>,
    directory: Addr<Directory>,
    db: Db,
    limits: WsLimits,
    overflowed: Arc<AtomicBool>,
    phase: Phase,
    last_heard: Instant,
}

/// What the session sends before going live.
enum Opening {
    Snapshot {
        seq: i64,
        body: String,
    },
    Replay {
        seq: i64,
        frames: Vec<String>,
    },
    Resync {
        seq: i64,
        body: String,
        reason: String,
    },
}

impl WsSession {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        user_id: Uuid,
        auth_session: Uuid,
        since: Option<i64>,
        hub: Addr<Hub>,
        directory: Addr<Directory>,
        db: Db,
        limits: WsLimits,
    ) -> Self {
        WsSession {
            id: rand::random(),
            user_id,
            auth_session,
            since,
            hub,
            directory,
            db,
            limits,
            overflowed: Arc::new(AtomicBool::new(false)),
            phase: Phase::Syncing(Vec::new()),
            last_heard: Instant::now(),
        }
    }

    fn close(&mut self, ctx: &mut ws::WebsocketContext<Self>, code: u16, description: &str) {
        ctx.close(Some(ws::CloseReason {
            code: ws::CloseCode::Other(code),
            description: Some(description.to_string()),
        }));
        ctx.stop();
    }

    fn check_overflow(&mut self, ctx: &mut ws::WebsocketContext<Self>) -> bool {
        if self.overflowed.load(Ordering::Acquire) {
            let last = match self.phase {
                Phase::Live { last_seq } => last_seq,
                Phase::Syncing(_) => self.since.unwrap_or(0),
            };
            let note = json!({ "type": "slow_consumer", "resume_since": last }).to_string();
            ctx.text(note);
            self.close(
                ctx,
                CLOSE_SLOW_CONSUMER,
                "too slow: reconnect with ?since=<last seq>",
            );
            return true;
        }
        false
    }

    /// Join the hub, then read the snapshot (and the log after `since`): everything committed
    /// after the join reaches the buffer, everything before is in the snapshot or the replay.
    fn open(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let join = Join {
            user_id: self.user_id,
            auth_session: self.auth_session,
            id: self.id,
            addr: ctx.address(),
            overflowed: self.overflowed.clone(),
        };
        let (hub, directory, db) = (self.hub.clone(), self.directory.clone(), self.db.clone());
        let (user_id, since) = (self.user_id, self.since);
        let work = async move {
            hub.send(join).await.map_err(|e| e.to_string())?;
            let snapshot = ask_ledger_here(&directory, user_id, LiveSnapshot)
                .await
                .map_err(|e| e.to_string())?;
            let seq = snapshot.last_seq;
            let body = json!({ "type": "snapshot", "seq": seq, "accounts": snapshot.accounts, "budgets": snapshot.budgets }).to_string();
            let Some(since) = since else {
                return Ok(Opening::Snapshot { seq, body });
            };
            if since > seq {
                return Ok(Opening::Resync {
                    seq,
                    body,
                    reason: format!("since={since} is ahead of the latest seq {seq}"),
                });
            }
            if seq - since > MAX_REPLAY {
                return Ok(Opening::Resync {
                    seq,
                    body,
                    reason: format!("more than {MAX_REPLAY} events behind"),
                });
            }
            let uid = user_id.to_string();
            let rows = db
                .run(move |conn| q::events_after(conn, &uid, since, seq - since))
                .await
                .map_err(|e| e.to_string())?;
            let contiguous = rows
                .iter()
                .zip(since + 1..)
                .all(|(r, expected)| r.seq == expected)
                && rows.last().map_or(since, |r| r.seq) == seq;
            if !contiguous {
                return Ok(Opening::Resync {
                    seq,
                    body,
                    reason: "the event log no longer reaches back that far".into(),
                });
            }
            Ok(Opening::Replay {
                seq,
                frames: rows.into_iter().map(|r| r.envelope).collect(),
            })
        };
        ctx.spawn(work.into_actor(self).map(|result: Result<Opening, String>, act, ctx| {
            let buffered = match std::mem::replace(&mut act.phase, Phase::Live { last_seq: 0 }) {
                Phase::Syncing(buffer) => buffer,
                Phase::Live { .. } => Vec::new(),
            };
            let last_seq = match result {
                Ok(Opening::Snapshot { seq, body }) => {
                    ctx.text(body);
                    seq
                }
                Ok(Opening::Replay { seq, frames }) => {
                    for f in frames {
                        ctx.text(f);
                    }
                    seq
                }
                Ok(Opening::Resync { seq, body, reason }) => {
                    ctx.text(json!({ "type": "resync_required", "reason": reason, "seq": seq }).to_string());
                    ctx.text(body);
                    seq
                }
                Err(e) => {
                    tracing::warn!(user_id = %act.user_id, error = %e, "websocket could not start");
                    act.close(ctx, 1011, "could not load your data; try again");
                    return;
                }
            };
            act.phase = Phase::Live { last_seq };
            act.deliver(ctx, &buffered);
        }));
    }

    fn deliver(&mut self, ctx: &mut ws::WebsocketContext<Self>, frames: &[Frame]) {
        match &mut self.phase {
            Phase::Syncing(buffer) => buffer.extend_from_slice(frames),
            Phase::Live { last_seq } => {
                for (seq, frame) in frames {
                    if *seq > *last_seq {
                        ctx.text(frame.as_ref());
                        *last_seq = *seq;
                    }
                }
            }
        }
    }
}

impl Actor for WsSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.limits.queue);
        ctx.run_interval(self.limits.heartbeat, |act, ctx| {
            if act.check_overflow(ctx) {
                return;
            }
            if act.last_heard.elapsed() > act.limits.client_timeout {
                tracing::debug!(user_id = %act.user_id, "websocket client silent; dropping it");
                act.close(ctx, 1001, "no answer to pings");
                return;
            }
            ctx.ping(b"");
        });
        self.open(ctx);
    }

    fn stopping(&mut self, _ctx: &mut Self::Context) -> actix::Running {
        self.hub.do_send(Leave {
            user_id: self.user_id,
            id: self.id,
        });
        actix::Running::Stop
    }
}

impl Handler<Deliver> for WsSession {
    type Result = ();
    fn handle(&mut self, msg: Deliver, ctx: &mut Self::Context) {
        if self.check_overflow(ctx) {
            return;
        }
        self.deliver(ctx, &msg.0);
    }
}

impl Handler<Revoked> for WsSession {
    type Result = ();
    fn handle(&mut self, msg: Revoked, ctx: &mut Self::Context) {
        ctx.text(json!({ "type": "session.revoked", "reason": msg.reason }).to_string());
        self.close(ctx, CLOSE_SESSION_REVOKED, msg.reason);
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for WsSession {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        match msg {
            Ok(ws::Message::Ping(payload)) => ctx.pong(&payload),
            Ok(ws::Message::Pong(_)) => {}
            Ok(ws::Message::Text(text)) => {
                // The stream is server to client; a client may send {"type":"ping"} to check it.
                if text.trim() == r#"{"type":"ping"}"# {
                    ctx.text(r#"{"type":"pong"}"#);
                }
            }
            Ok(ws::Message::Binary(_))
            | Ok(ws::Message::Continuation(_))
            | Ok(ws::Message::Nop) => {}
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Err(e) => {
                tracing::debug!(error = %e, "websocket protocol error");
                // Say why, with RFC 6455's codes, unless the connection itself is gone.
                let code = match &e {
                    ws::ProtocolError::Overflow => Some(ws::CloseCode::Size),
                    ws::ProtocolError::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
                        Some(ws::CloseCode::Invalid)
                    }
                    ws::ProtocolError::Io(_) => None,
                    _ => Some(ws::CloseCode::Protocol),
                };
                if let Some(code) = code {
                    ctx.close(Some(ws::CloseReason {
                        code,
                        description: Some(e.to_string()),
                    }));
                }
                ctx.stop();
            }
        }
    }
}
