//! Webhook deliveries: the stored event envelope POSTed as it is, signed with the webhook's
//! secret. The host is resolved here and the connection pinned to the checked address, so a name
//! that resolves to a loopback or private address (or changes between check and connect) cannot
//! reach inside the network unless the operator allows private targets. Redirects are not followed.
use std::net::SocketAddr;

use super::{Failure, Outbound};
use crate::domain::notify::{check_webhook_url, is_private, signature};
use crate::store::notify::Outgoing;

/// Resolve a webhook URL's host to the address to connect to, refusing private ones unless
/// `allow_private`.
pub async fn resolve(url: &url::Url, allow_private: bool) -> Result<SocketAddr, String> {
    let host = url.host_str().ok_or("the URL has no host")?;
    let port = url.port_or_known_default().unwrap_or(443);
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| format!("cannot resolve {bare}: {e}"))?
            .collect(),
    };
    let first = *addrs
        .first()
        .ok_or_else(|| format!("{bare} has no address"))?;
    if !allow_private {
        if let Some(bad) = addrs.iter().find(|a| is_private(a.ip())) {
            return Err(format!(
                "refused: {bare} is a loopback or private address ({}); an operator can allow \
                 private targets with webhooks_allow_private",
                bad.ip()
            ));
        }
    }
    Ok(first)
}

/// POST one delivery; the receiver's status when it answered 2xx.
pub(super) async fn post(out: &Outbound, item: &Outgoing) -> Result<i32, Failure> {
    let Some((raw_url, secret, _)) = &item.webhook else {
        return Err(Failure::permanent("the webhook was deleted"));
    };
    let url = check_webhook_url(raw_url).map_err(Failure::permanent)?;
    let addr = resolve(&url, out.allow_private)
        .await
        .map_err(Failure::retry)?;
    let host = url.host_str().unwrap_or_default().to_string();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would resolve the name itself and defeat the pinning.
        .no_proxy()
        .timeout(out.webhook_timeout)
        .resolve(&host, addr)
        .user_agent(concat!("Ledgerline-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Failure::retry(format!("http client: {e}")))?;
    let body = item.row.payload.clone().into_bytes();
    let timestamp = chrono::Utc::now().timestamp();
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("ledgerline-event", &item.row.kind)
        .header("ledgerline-delivery", &item.row.id)
        .header("ledgerline-timestamp", timestamp.to_string())
        .header("ledgerline-signature", signature(secret, timestamp, &body))
        .body(body)
        .send()
        .await
        // (Without the URL: webhook URLs often carry tokens, and this text is logged and stored.)
        .map_err(|e| Failure::retry(format!("POST failed: {}", e.without_url())))?;
    let status = i32::from(response.status().as_u16());
    if response.status().is_success() {
        Ok(status)
    } else {
        Err(Failure {
            message: format!("the receiver answered {}", response.status()),
            status: Some(status),
            permanent: false,
        })
    }
}
