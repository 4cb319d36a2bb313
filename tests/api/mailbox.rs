//! Real peers on loopback for the notification tests: an SMTP server (mailin-embedded, a real
//! SMTP implementation) that keeps what it receives, and an HTTP server that receives webhooks.
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailin_embedded::{response, Handler, Response, Server, SslConfig};

/// One message as the SMTP server received it.
#[derive(Debug, Clone)]
pub struct Mail {
    pub rcpt: Vec<String>,
    pub raw: String,
}

impl Mail {
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(self.raw.as_bytes())
            .expect("a parseable message")
    }

    pub fn subject(&self) -> String {
        self.parsed().subject().unwrap_or_default().to_string()
    }

    pub fn message_id(&self) -> String {
        self.parsed().message_id().unwrap_or_default().to_string()
    }

    pub fn text(&self) -> String {
        self.parsed()
            .body_text(0)
            .map(|c| c.to_string())
            .unwrap_or_default()
    }

    pub fn html(&self) -> String {
        self.parsed()
            .body_html(0)
            .map(|c| c.to_string())
            .unwrap_or_default()
    }

    /// The header block as sent (unfolded lines).
    pub fn header_lines(&self) -> Vec<String> {
        let head = self.raw.split("\r\n\r\n").next().unwrap_or_default();
        let mut lines: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = lines.last_mut() {
                    last.push_str(line);
                }
            } else {
                lines.push(line.to_string());
            }
        }
        lines
    }
}

#[derive(Clone)]
struct Sink {
    mails: Arc<Mutex<Vec<Mail>>>,
    /// While set, the server keeps the client waiting after the message's data (before its
    /// "250 OK"), as a server that has the message but has not confirmed it yet.
    hold: Arc<AtomicBool>,
    rcpt: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Sink {
    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.rcpt = to.to_vec();
        self.data.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        self.mails.lock().unwrap().push(Mail {
            rcpt: std::mem::take(&mut self.rcpt),
            raw: String::from_utf8_lossy(&self.data).into_owned(),
        });
        while self.hold.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        response::OK
    }
}

pub struct SmtpServer {
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
    hold: Arc<AtomicBool>,
}

impl SmtpServer {
    /// A server on a free loopback port.
    pub fn start() -> SmtpServer {
        Self::start_on(TcpListener::bind("127.0.0.1:0").expect("bind smtp"))
    }

    /// A server on `port` (which nothing else listens on now).
    pub fn start_on_port(port: u16) -> SmtpServer {
        Self::start_on(TcpListener::bind(("127.0.0.1", port)).expect("bind smtp port"))
    }

    fn start_on(listener: TcpListener) -> SmtpServer {
        let port = listener.local_addr().unwrap().port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let hold = Arc::new(AtomicBool::new(false));
        let sink = Sink {
            mails: mails.clone(),
            hold: hold.clone(),
            rcpt: Vec::new(),
            data: Vec::new(),
        };
        std::thread::spawn(move || {
            let mut server = Server::new(sink);
            server
                .with_name("mail.test")
                .with_ssl(SslConfig::None)
                .expect("no tls")
                .with_tcp_listener(listener);
            let _ = server.serve();
        });
        SmtpServer { port, mails, hold }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Keep clients waiting after their message data (see [`Sink::hold`]).
    pub fn hold(&self, on: bool) {
        self.hold.store(on, Ordering::SeqCst);
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    /// Wait until at least `n` messages arrived (or `within` passed); all of them.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Mail> {
        let start = Instant::now();
        loop {
            let mails = self.mails();
            if mails.len() >= n || start.elapsed() > within {
                return mails;
            }
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A loopback port that nothing listens on (now).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One webhook request as received.
#[derive(Debug, Clone)]
pub struct Hook {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Hook {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
}

/// An HTTP server on loopback that records every request and answers with `status`.
pub struct HookReceiver {
    pub url: String,
    hooks: Arc<Mutex<Vec<Hook>>>,
    status: Arc<AtomicU16>,
    _handle: actix_web::dev::ServerHandle,
}

impl HookReceiver {
    pub fn start() -> HookReceiver {
        use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
        let hooks = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let (h, s) = (hooks.clone(), status.clone());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            let (h, s) = (h.clone(), s.clone());
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let (h, s) = (h.clone(), s.clone());
                async move {
                    h.lock().unwrap().push(Hook {
                        headers: req
                            .headers()
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                            .collect(),
                        body: String::from_utf8_lossy(&body).into_owned(),
                    });
                    let code =
                        actix_web::http::StatusCode::from_u16(s.load(Ordering::SeqCst)).unwrap();
                    HttpResponse::build(code).finish()
                }
            }))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        HookReceiver {
            url: format!("http://127.0.0.1:{port}/hooks/ledgerline"),
            hooks,
            status,
            _handle: handle,
        }
    }

    pub fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    pub fn hooks(&self) -> Vec<Hook> {
        self.hooks.lock().unwrap().clone()
    }

    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Hook> {
        let start = Instant::now();
        loop {
            let hooks = self.hooks();
            if hooks.len() >= n || start.elapsed() > within {
                return hooks;
            }
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
