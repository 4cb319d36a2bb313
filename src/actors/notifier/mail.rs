//! Email through lettre: SMTP (plain, STARTTLS or TLS, with or without auth, all from one URL)
//! or, when no SMTP server is configured, `.eml` files under `<data_dir>/mail/`.
use anyhow::Context as _;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use super::render;
use super::Failure;
use crate::config::Settings;
use crate::domain::notify::header_text;
use crate::store::notify::Outgoing;

pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    /// The right-hand side of every Message-ID (`<notification id@domain>`).
    domain: String,
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>),
}

impl Mailer {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Mailer> {
        let from: Mailbox = settings
            .mail_from
            .parse()
            .with_context(|| format!("mail_from `{}` is not an address", settings.mail_from))?;
        let domain = from.email.domain().to_string();
        let transport = match &settings.smtp_url {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    .context("smtp_url is not a valid SMTP URL (smtp://, smtps:// or smtp://…?tls=required)")?
                    .timeout(Some(settings.smtp_timeout))
                    .build();
                tracing::info!(from = %from, "email goes out over SMTP");
                Transport::Smtp(transport)
            }
            None => {
                let dir = settings.data_dir.join("mail");
                std::fs::create_dir_all(&dir).with_context(|| {
                    format!("cannot create the mail directory {}", dir.display())
                })?;
                tracing::info!(directory = %dir.display(), "SMTP is not configured (smtp_url): email is written to files in this directory");
                Transport::Files(AsyncFileTransport::new(dir))
            }
        };
        Ok(Mailer {
            transport,
            from,
            domain,
        })
    }

    /// Render and send one outbox email. The Message-ID is derived from the notification id,
    /// so a retry of the same notification carries the same one.
    pub(super) async fn send(&self, item: &Outgoing) -> Result<(), Failure> {
        let rendered = render::email(&item.row.kind, &item.row.payload, &item.name)
            .map_err(|e| Failure::permanent(format!("cannot render: {e}")))?;
        let to_address = item
            .email
            .parse()
            .map_err(|e| Failure::permanent(format!("recipient `{}`: {e}", item.email)))?;
        let name = header_text(&item.name, 80);
        let to = Mailbox::new((!name.is_empty()).then_some(name), to_address);
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(header_text(&rendered.subject, 200))
            .message_id(Some(format!("<{}@{}>", item.row.id, self.domain)))
            .multipart(MultiPart::alternative_plain_html(
                rendered.text,
                rendered.html,
            ))
            .map_err(|e| Failure::permanent(format!("cannot build the message: {e}")))?;
        match &self.transport {
            Transport::Smtp(t) => t.send(message).await.map(|_| ()).map_err(|e| {
                // Only a refused mailbox is final; a refused login or a server problem is the
                // operator's to fix, and the mail waits for it.
                let code = e.status().map(|c| c.to_string());
                if matches!(code.as_deref(), Some("550" | "551" | "553")) {
                    Failure::permanent(format!("SMTP refused the recipient: {e}"))
                } else {
                    Failure::retry(format!("SMTP: {e}"))
                }
            }),
            Transport::Files(t) => t
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| Failure::retry(format!("writing the mail file: {e}"))),
        }
    }
}
