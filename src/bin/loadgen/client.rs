//! One HTTP/1.1 keep-alive connection, hyper's low-level client over a tokio `TcpStream`.
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::Target;

/// Why a request got no HTTP answer.
#[derive(Debug)]
pub enum Failure {
    /// Connecting, writing or reading failed; the connection is gone.
    Io(anyhow::Error),
    /// No complete answer within the request timeout.
    Timeout,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Io(e) => write!(f, "{e:#}"),
            Failure::Timeout => f.write_str("no answer within the request timeout"),
        }
    }
}

/// A status and the whole body.
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON, for setup and verification.
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "the answer ({}) is not JSON: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// An error naming the request and what the server said.
    pub fn unexpected(&self, what: &str) -> anyhow::Error {
        let body = String::from_utf8_lossy(&self.body);
        let body: String = body.chars().take(500).collect();
        anyhow!("{what}: the server answered {}: {body}", self.status)
    }
}

/// A keep-alive connection that reconnects on the next request after it broke.
pub struct Client {
    addr: SocketAddr,
    host: HeaderValue,
    timeout: Duration,
    conn: Option<Conn>,
}

struct Conn {
    sender: SendRequest<Full<Bytes>>,
    driver: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

async fn connect(addr: SocketAddr) -> Result<Conn> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true).context("cannot set TCP_NODELAY")?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP/1.1 handshake failed")?;
    let driver = tokio::spawn(async move {
        // Errors surface on the sender side as failed requests.
        let _ = connection.await;
    });
    Ok(Conn { sender, driver })
}

impl Client {
    pub fn new(target: &Target, timeout: Duration) -> Result<Client> {
        let host = HeaderValue::from_str(&target.authority)
            .with_context(|| format!("`{}` is not a valid Host header", target.authority))?;
        Ok(Client {
            addr: target.addr,
            host,
            timeout,
            conn: None,
        })
    }

    /// Open the connection now (so that the first measured request does not pay for it), unless
    /// it is open (the server closes idle ones: then it is opened again).
    pub async fn connect(&mut self) -> Result<()> {
        if let Some(c) = &self.conn {
            if !c.sender.is_closed() && !c.driver.is_finished() {
                return Ok(());
            }
        }
        let conn = tokio::time::timeout(self.timeout, connect(self.addr))
            .await
            .map_err(|_| anyhow!("connecting to {} timed out", self.addr))??;
        self.conn = Some(conn);
        Ok(())
    }

    /// Send one request and read the whole answer. On an I/O error or a timeout the connection
    /// is dropped and the next request opens a new one.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&HeaderValue>,
        body: Option<Bytes>,
    ) -> Result<Answer, Failure> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.host.clone());
        if let Some(token) = token {
            builder = builder.header(AUTHORIZATION, token.clone());
        }
        let body = match body {
            Some(b) => {
                builder =
                    builder.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                Full::new(b)
            }
            None => Full::new(Bytes::new()),
        };
        let request = builder
            .body(body)
            .map_err(|e| Failure::Io(anyhow!("cannot build the request for {path}: {e}")))?;
        match tokio::time::timeout(self.timeout, self.exchange(request)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => {
                self.conn = None;
                Err(Failure::Io(e))
            }
            Err(_) => {
                self.conn = None;
                Err(Failure::Timeout)
            }
        }
    }

    async fn exchange(&mut self, request: Request<Full<Bytes>>) -> Result<Answer> {
        if self.conn.as_ref().is_none_or(|c| c.sender.is_closed()) {
            self.conn = Some(connect(self.addr).await?);
        }
        let Some(conn) = self.conn.as_mut() else {
            bail!("no connection");
        };
        conn.sender.ready().await.context("the connection closed")?;
        let response = conn
            .sender
            .send_request(request)
            .await
            .context("request failed")?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .context("reading the answer failed")?
            .to_bytes();
        Ok(Answer { status, body })
    }

    /// Send and insist on an answer (setup and verification): I/O errors become errors.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&HeaderValue>,
        body: Option<Bytes>,
    ) -> Result<Answer> {
        self.send(method.clone(), path, token, body)
            .await
            .map_err(|f| anyhow!("{method} {path}: {f}"))
    }
}
