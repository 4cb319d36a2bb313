//! The event envelope (SPEC section 4): the same JSON on WebSockets, webhooks and the event log.
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

pub const ENVELOPE_VERSION: &str = "1.0";

#[derive(Debug, Clone, Serialize)]
pub struct Envelope {
    pub message_id: Uuid,
    pub seq: i64,
    pub timestamp: String,
    pub version: &'static str,
    pub source: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub payload: Value,
}

impl Envelope {
    pub fn new(
        seq: i64,
        source: &'static str,
        kind: &'static str,
        payload: Value,
        at: DateTime<Utc>,
    ) -> Self {
        Envelope {
            message_id: Uuid::now_v7(),
            seq,
            timestamp: at.to_rfc3339_opts(SecondsFormat::Millis, true),
            version: ENVELOPE_VERSION,
            source,
            kind,
            payload,
        }
    }
}
