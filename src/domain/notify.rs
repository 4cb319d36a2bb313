//! Notifications: which kinds exist, which channels a user wants for each, how a failed delivery
//! is retried, how webhook bodies are signed, which addresses a webhook may reach, and how money
//! reads in a message meant for people.
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::money::format_minor;
use super::Currency;

/// Event kinds a user can route to channels.
pub const KINDS: &[&str] = &["budget.threshold_reached", "goal.reached", "security"];
/// Channels a kind can go to.
pub const CHANNELS: &[&str] = &["in_app", "email", "webhook"];
/// Event types a webhook can subscribe to (`*` = all of them).
pub const WEBHOOK_EVENTS: &[&str] = &[
    "transaction.created",
    "transaction.updated",
    "transaction.deleted",
    "balance.updated",
    "budget.created",
    "budget.updated",
    "budget.deleted",
    "budget.status",
    "budget.threshold_reached",
    "goal.progress",
    "goal.reached",
    "import.progress",
    "import.completed",
    "notification.created",
];

/// A user's choices: per kind, the channels it goes to; and the monthly summary email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preferences {
    pub channels: BTreeMap<String, Vec<String>>,
    pub monthly_summary: bool,
}

impl Default for Preferences {
    fn default() -> Self {
        let all = || CHANNELS.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        let mut channels = BTreeMap::new();
        channels.insert("budget.threshold_reached".to_string(), all());
        channels.insert("goal.reached".to_string(), all());
        channels.insert(
            "security".to_string(),
            vec!["in_app".to_string(), "email".to_string()],
        );
        Preferences {
            channels,
            monthly_summary: true,
        }
    }
}

/// `PUT /notification-preferences`: kinds not named keep their current channels.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreferencesInput {
    #[serde(default)]
    pub channels: BTreeMap<String, Vec<String>>,
    pub monthly_summary: Option<bool>,
}

impl Preferences {
    /// Stored JSON; an unreadable or missing document means the defaults.
    pub fn from_json(text: Option<&str>) -> Preferences {
        let mut prefs = Preferences::default();
        if let Some(stored) = text.and_then(|t| serde_json::from_str::<Preferences>(t).ok()) {
            prefs.monthly_summary = stored.monthly_summary;
            for (kind, channels) in stored.channels {
                if KINDS.contains(&kind.as_str()) {
                    prefs.channels.insert(kind, channels);
                }
            }
        }
        prefs
    }

    /// Whether `kind` goes to `channel`.
    pub fn wants(&self, kind: &str, channel: &str) -> bool {
        self.channels
            .get(kind)
            .is_some_and(|c| c.iter().any(|x| x == channel))
    }

    /// These preferences with `input` applied; the first bad field is named.
    pub fn merged(&self, input: PreferencesInput) -> Result<Preferences, (String, String)> {
        let mut out = self.clone();
        for (kind, channels) in input.channels {
            if !KINDS.contains(&kind.as_str()) {
                return Err((
                    format!("channels.{kind}"),
                    format!(
                        "is not a notification kind; use one of {}",
                        KINDS.join(", ")
                    ),
                ));
            }
            let mut clean: Vec<String> = Vec::new();
            for (i, c) in channels.iter().enumerate() {
                if !CHANNELS.contains(&c.as_str()) {
                    return Err((
                        format!("channels.{kind}[{i}]"),
                        format!("`{c}` is not a channel; use in_app, email or webhook"),
                    ));
                }
                if kind == "security" && c == "webhook" {
                    return Err((
                        format!("channels.{kind}[{i}]"),
                        "security notices go in-app and by email only".to_string(),
                    ));
                }
                if !clean.contains(c) {
                    clean.push(c.clone());
                }
            }
            out.channels.insert(kind, clean);
        }
        if let Some(m) = input.monthly_summary {
            out.monthly_summary = m;
        }
        Ok(out)
    }
}

/// The kind a committed event is routed as, when it is one users are notified of.
pub fn notifying_kind(event_type: &str) -> Option<&'static str> {
    match event_type {
        "budget.threshold_reached" => Some("budget.threshold_reached"),
        "goal.reached" => Some("goal.reached"),
        _ => None,
    }
}

/// Whether a webhook subscribed to `types` receives events of type `event_type`.
pub fn subscribed(types: &[String], event_type: &str) -> bool {
    types.iter().any(|t| t == "*" || t == event_type)
}

/// Retry policy: exponential backoff with full jitter (a uniformly random wait between zero and
/// `min(cap, base · 2^attempt)`), and `dead` after `max_attempts` tries.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    pub max_attempts: u32,
}

impl Backoff {
    /// The ceiling of the wait after the `attempts`-th failed try (1-based).
    pub fn ceiling(&self, attempts: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempts.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The wait after the `attempts`-th failed try: full jitter over the ceiling.
    pub fn delay(&self, attempts: u32, unit_random: f64) -> Duration {
        self.ceiling(attempts).mul_f64(unit_random.clamp(0.0, 1.0))
    }

    pub fn exhausted(&self, attempts: u32) -> bool {
        attempts >= self.max_attempts
    }
}

/// The `Ledgerline-Signature` header value: `t=<unix seconds>,v1=<hex HMAC-SHA256>` over
/// `"<t>.<body>"` with the webhook's secret (the receiver recomputes it and compares).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(digest))
}

/// Addresses a webhook must not reach unless the operator allows private targets: loopback,
/// private, link-local, carrier-grade NAT, unique-local, unspecified, multicast, documentation.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || o[0] == 0
                || o[0] >= 240
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            // IPv4 inside IPv6: mapped and compatible (::ffff:a.b.c.d, ::a.b.c.d), NAT64
            // (64:ff9b::/96) and 6to4 (2002:AABB:CCDD::/48) are judged by their IPv4 address.
            if let Some(v4) = v6.to_ipv4() {
                if !v6.is_loopback() && !v6.is_unspecified() {
                    return is_private(IpAddr::V4(v4));
                }
            }
            if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let o = v6.octets();
                return is_private(IpAddr::V4([o[12], o[13], o[14], o[15]].into()));
            }
            if seg[0] == 0x2002 {
                let o = v6.octets();
                return is_private(IpAddr::V4([o[2], o[3], o[4], o[5]].into()));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00
                || (seg[0] & 0xffc0) == 0xfe80
                || (seg[0] & 0xffc0) == 0xfec0
                || (seg[0] == 0x2001 && seg[1] == 0x0db8)
        }
    }
}

/// Check a webhook URL's shape: http(s), a host, no credentials, at most 2,048 characters.
pub fn check_webhook_url(raw: &str) -> Result<url::Url, String> {
    if raw.len() > 2048 {
        return Err("is longer than 2048 characters".into());
    }
    let url = url::Url::parse(raw).map_err(|e| format!("is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials; the signature authenticates us".into());
    }
    Ok(url)
}

/// Money for people: grouped thousands and the currency's symbol where it has a common one
/// (`€1,234.50`, `-$12.00`, `¥1,200`), otherwise the code after the number (`12.500 BHD`).
pub fn display_money(minor: i64, currency: Currency) -> String {
    let plain = format_minor(minor, currency.exponent());
    let (sign, digits) = match plain.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", plain.as_str()),
    };
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let mut grouped = String::with_capacity(int.len() + int.len() / 3);
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    let number = match frac {
        Some(f) => format!("{grouped}.{f}"),
        None => grouped,
    };
    let symbol = match currency.code() {
        "USD" => Some("$"),
        "EUR" => Some("€"),
        "GBP" => Some("£"),
        "JPY" => Some("¥"),
        "INR" => Some("₹"),
        "NGN" => Some("₦"),
        _ => None,
    };
    match symbol {
        Some(s) => format!("{sign}{s}{number}"),
        None => format!("{sign}{number} {}", currency.code()),
    }
}

/// Text safe for a mail header: control characters (CR, LF, tabs…) become spaces, runs of
/// spaces collapse, and it is cut to `max` characters.
pub fn header_text(raw: &str, max: usize) -> String {
    let mut out = String::with_capacity(raw.len().min(max));
    let mut last_space = false;
    for ch in raw.chars() {
        let ch = if ch.is_control() { ' ' } else { ch };
        if ch == ' ' && last_space {
            continue;
        }
        last_space = ch == ' ';
        out.push(ch);
        if out.chars().count() >= max {
            break;
        }
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_and_jitters_below_it() {
        let b = Backoff {
            base: Duration::from_secs(10),
            cap: Duration::from_secs(300),
            max_attempts: 5,
        };
        assert_eq!(b.ceiling(1), Duration::from_secs(10));
        assert_eq!(b.ceiling(2), Duration::from_secs(20));
        assert_eq!(b.ceiling(5), Duration::from_secs(160));
        assert_eq!(b.ceiling(6), Duration::from_secs(300));
        assert_eq!(b.ceiling(80), Duration::from_secs(300));
        assert_eq!(b.delay(3, 0.5), Duration::from_secs(20));
        assert_eq!(b.delay(3, 0.0), Duration::ZERO);
        assert!(!b.exhausted(4));
        assert!(b.exhausted(5));
    }

    #[test]
    fn signature_is_the_documented_hmac() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            signature("secret", 1_700_000_000, br#"{"a":1}"#),
            "t=1700000000,v1=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
        );
    }

    #[test]
    fn private_addresses_are_recognized() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::7f00:1",
            "2002:c0a8:0101::1",
            "fec0::1",
            "240.0.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "64:ff9b::5db8:d822",
            "2002:5db8:d822::1",
        ] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn webhook_urls_are_checked() {
        assert!(check_webhook_url("https://hooks.example.org/x").is_ok());
        assert!(check_webhook_url("ftp://example.org").is_err());
        assert!(check_webhook_url("https://user:pw@example.org").is_err());
        assert!(check_webhook_url("not a url").is_err());
    }

    #[test]
    fn money_reads_like_money() {
        let c = |s| Currency::parse(s).unwrap();
        assert_eq!(display_money(123_450, c("EUR")), "€1,234.50");
        assert_eq!(display_money(-1_200, c("USD")), "-$12.00");
        assert_eq!(display_money(1_200, c("JPY")), "¥1,200");
        assert_eq!(display_money(12_500, c("BHD")), "12.500 BHD");
        assert_eq!(display_money(100_000_000, c("CHF")), "1,000,000.00 CHF");
    }

    #[test]
    fn header_text_cannot_break_a_header() {
        assert_eq!(header_text("Food\r\nBcc: x@y", 100), "Food Bcc: x@y");
        assert_eq!(header_text("a\u{0}b\tc", 100), "a b c");
        assert_eq!(header_text("abcdef", 3), "abc");
    }

    #[test]
    fn preferences_merge_and_validate() {
        let p = Preferences::default();
        assert!(p.wants("budget.threshold_reached", "email"));
        let input: PreferencesInput = serde_json::from_str(
            r#"{"channels":{"budget.threshold_reached":["in_app"]},"monthly_summary":false}"#,
        )
        .unwrap();
        let m = p.merged(input).unwrap();
        assert!(!m.wants("budget.threshold_reached", "email"));
        assert!(m.wants("goal.reached", "email"));
        assert!(!m.monthly_summary);
        let bad: PreferencesInput =
            serde_json::from_str(r#"{"channels":{"goal.reached":["sms"]}}"#).unwrap();
        assert_eq!(p.merged(bad).unwrap_err().0, "channels.goal.reached[0]");
        let round = Preferences::from_json(Some(&serde_json::to_string(&m).unwrap()));
        assert_eq!(round, m);
    }
}
