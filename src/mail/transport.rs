//! Sending: SMTP through lettre (STARTTLS when the server offers it, implicit TLS with
//! `smtps://`, authentication from the URL), or, in development without `SMTP_URL`,
//! the log (code and link included, so a developer can follow the flows).

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::EmailConfig;
use crate::db::emails::ClaimedEmail;

pub enum Mailer {
    Smtp {
        transport: Box<AsyncSmtpTransport<Tokio1Executor>>,
        from: Mailbox,
    },
    Log,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MailerError(String);

impl Mailer {
    pub fn from_config(config: &EmailConfig) -> Result<Self, MailerError> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| MailerError(format!("EMAIL_FROM: {e}")))?;
        let Some(url) = &config.smtp_url else {
            return Ok(Self::Log);
        };
        // `smtp://` means STARTTLS when the server offers it (lettre's `tls=opportunistic`),
        // unless the URL says otherwise; `smtps://` is TLS from the start.
        let url = if url.starts_with("smtp://") && !url.contains("tls=") {
            format!("{url}{}tls=opportunistic", if url.contains('?') { '&' } else { '?' })
        } else {
            url.clone()
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
            .map_err(|e| MailerError(format!("SMTP_URL: {e}")))?
            .timeout(Some(Duration::from_secs(10)))
            .build();
        Ok(Self::Smtp {
            transport: Box::new(transport),
            from,
        })
    }

    /// Sends one email; the error says why (it is recorded and the email retried).
    pub async fn send(&self, email: &ClaimedEmail, from: &str) -> Result<(), String> {
        match self {
            Self::Log => {
                tracing::info!(
                    to = %email.to,
                    from,
                    subject = %email.subject,
                    "email (SMTP_URL is not set, so it is logged instead of sent):\n{}",
                    email.text
                );
                Ok(())
            }
            Self::Smtp { transport, from } => {
                let to: Mailbox = email.to.parse().map_err(|e| format!("recipient `{}`: {e}", email.to))?;
                let builder = lettre::Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(email.subject.clone());
                let message = match &email.html {
                    Some(html) => {
                        builder.multipart(MultiPart::alternative_plain_html(email.text.clone(), html.clone()))
                    }
                    None => builder.body(email.text.clone()),
                }
                .map_err(|e| e.to_string())?;
                transport
                    .send(message)
                    .await
                    .map(|_| ())
                    .map_err(|e| crate::error::error_chain(&e))
            }
        }
    }
}
