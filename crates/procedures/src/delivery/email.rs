//! Email over SMTP with lettre, or to the log when no SMTP server is configured.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tidings_domain::Error;
use tidings_persistence::ClaimedDelivery;

use super::{DeliveryConfig, SendError};

pub(crate) enum Mailer {
    /// No SMTP server: each email is written to the log as it would have been sent.
    Log,
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
}

impl Mailer {
    pub(crate) fn new(config: &DeliveryConfig) -> Result<Self, Error> {
        let Some(url) = &config.smtp_url else {
            return Ok(Self::Log);
        };
        let from: Mailbox = config.mail_from.parse().map_err(|e| {
            Error::bad_request(format!(
                "TIDINGS_MAIL_FROM: not an address ({e}), got {:?}",
                config.mail_from
            ))
        })?;
        // `smtp://` is plain, `smtp://…?tls=required` upgrades with STARTTLS, `smtps://` is TLS
        // from the first byte. The pool keeps connections open between messages.
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| Error::bad_request(format!("TIDINGS_SMTP_URL: {e}")))?
            .timeout(Some(Duration::from_secs(15)))
            .pool_config(PoolConfig::new().max_size(config.concurrency.max(1) as u32))
            .build();
        Ok(Self::Smtp { transport, from })
    }

    pub(crate) async fn send(&self, d: &ClaimedDelivery) -> Result<(), SendError> {
        let text = text_body(d);
        match self {
            Self::Log => {
                tracing::info!(
                    delivery = %d.id,
                    to = %d.target,
                    subject = %d.title,
                    body = %text,
                    "email (no TIDINGS_SMTP_URL configured, so written here instead of sent)"
                );
                Ok(())
            }
            Self::Smtp { transport, from } => {
                let to: Mailbox = d
                    .target
                    .parse()
                    .map_err(|e| SendError::Permanent(format!("bad recipient address: {e}")))?;
                let message = Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(d.title.as_str())
                    .multipart(MultiPart::alternative_plain_html(text, html_body(d)))
                    .map_err(|e| SendError::Permanent(format!("cannot build the email: {e}")))?;
                match transport.send(message).await {
                    Ok(_) => Ok(()),
                    Err(e) if e.is_permanent() => Err(SendError::Permanent(format!("SMTP: {e}"))),
                    Err(e) => Err(SendError::Transient(format!("SMTP: {e}"))),
                }
            }
        }
    }
}

/// The plain-text body: the notification's rendered message under its title.
fn text_body(d: &ClaimedDelivery) -> String {
    if d.message.is_empty() {
        format!("{}\n", d.title)
    } else {
        format!("{}\n\n{}\n", d.title, d.message)
    }
}

/// The HTML body: the same text, escaped, in a minimal document.
fn html_body(d: &ClaimedDelivery) -> String {
    let paragraphs: String = d
        .message
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| format!("<p>{}</p>", escape(p).replace('\n', "<br>")))
        .collect();
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1>{paragraphs}</body></html>\n",
        title = escape(&d.title),
    )
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape("<b>\"a\" & 'b'</b>"),
            "&lt;b&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/b&gt;"
        );
    }
}
