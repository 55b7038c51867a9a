//! Email over SMTP with lettre, or to the log when no SMTP server is configured.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tidings_domain::Error;
use tidings_persistence::ClaimedDelivery;
use tokio::net::TcpStream;

use super::{DeliveryConfig, SendError};

pub(crate) enum Mailer {
    /// No SMTP server: each email is written to the log as it would have been sent.
    Log,
    Smtp {
        transport: Transport,
        from: Mailbox,
    },
}

/// How emails reach the SMTP server.
pub(crate) enum Transport {
    /// `smtp://` (plain, or upgraded with STARTTLS): connections of our own.
    Direct(Box<Direct>),
    /// `smtps://` (TLS from the first byte): lettre's pooled transport.
    Lettre(AsyncSmtpTransport<Tokio1Executor>),
}

/// A send that did not go through, by lettre's reading of the SMTP reply.
fn classify(e: lettre::transport::smtp::Error) -> SendError {
    if e.is_permanent() {
        SendError::Permanent(format!("SMTP: {e}"))
    } else {
        SendError::Transient(format!("SMTP: {e}"))
    }
}

/// A connection idle this long is checked with `NOOP` before it is used again.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// SMTP over TCP connections Tidings opens itself, so that it can turn Nagle's algorithm off:
/// lettre writes a message's body and its closing `.` in two writes, and with Nagle on the
/// second waits for the server's delayed ACK of the first, about 40 ms per email whatever the
/// server's speed. Idle connections are kept for the next sends, up to the delivery
/// concurrency.
pub(crate) struct Direct {
    host: String,
    port: u16,
    /// STARTTLS, and whether the server must offer it (`?tls=required`) or may
    /// (`?tls=opportunistic`).
    starttls: Option<(TlsParameters, bool)>,
    credentials: Option<Credentials>,
    hello: ClientId,
    timeout: Duration,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    keep: usize,
}

impl Direct {
    /// The transport for an `smtp://` URL as lettre reads one (port 25 plain, 587 with a
    /// `tls` parameter, credentials from the user part, the EHLO name from the path); `None`
    /// for other schemes.
    fn from_url(url: &str, timeout: Duration, keep: usize) -> Result<Option<Self>, Error> {
        let invalid = |why: String| Error::bad_request(format!("TIDINGS_SMTP_URL: {why}"));
        let parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        if parsed.scheme() != "smtp" {
            return Ok(None);
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| invalid("no host".to_owned()))?
            .to_owned();
        let tls = |required| {
            TlsParameters::new(host.clone())
                .map(|p| Some((p, required)))
                .map_err(|e| invalid(e.to_string()))
        };
        let tls_mode = parsed
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let (default_port, starttls) = match tls_mode.as_deref() {
            None => (25, None),
            Some("required") => (587, tls(true)?),
            Some("opportunistic") => (587, tls(false)?),
            Some(other) => {
                return Err(invalid(format!(
                    "tls must be required or opportunistic, got {other:?}"
                )));
            }
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|e| invalid(e.to_string()))
        };
        let credentials = match parsed.password() {
            Some(password) => Some(Credentials::new(
                decode(parsed.username())?,
                decode(password)?,
            )),
            None => None,
        };
        let hello = match parsed.path().trim_matches('/') {
            "" => ClientId::default(),
            name => ClientId::Domain(name.to_owned()),
        };
        Ok(Some(Self {
            port: parsed.port().unwrap_or(default_port),
            host,
            starttls,
            credentials,
            hello,
            timeout,
            idle: Mutex::new(Vec::new()),
            keep,
        }))
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let transient = |e: String| SendError::Transient(format!("SMTP: {e}"));
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| transient(format!("{}:{}: {e}", self.host, self.port)))?;
        stream
            .set_nodelay(true)
            .map_err(|e| transient(e.to_string()))?;
        let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
            .await
            .map_err(classify)?;
        if let Some((tls, required)) = &self.starttls {
            if conn.can_starttls() {
                conn.starttls(tls.clone(), &self.hello)
                    .await
                    .map_err(classify)?;
            } else if *required {
                return Err(transient("the server does not offer STARTTLS".to_owned()));
            }
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(classify)?;
        }
        Ok(conn)
    }

    /// An idle connection that still answers, if there is one.
    async fn reuse(&self) -> Option<AsyncSmtpConnection> {
        loop {
            let (mut conn, since) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()?;
            if since.elapsed() < IDLE_CHECK
                || tokio::time::timeout(self.timeout, conn.test_connected())
                    .await
                    .unwrap_or(false)
            {
                return Some(conn);
            }
        }
    }

    async fn send(&self, envelope: &Envelope, email: &[u8]) -> Result<(), SendError> {
        let attempt = async {
            let mut conn = match self.reuse().await {
                Some(conn) => conn,
                None => self.connect().await?,
            };
            conn.send(envelope, email).await.map_err(classify)?;
            Ok(conn)
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(conn)) => {
                let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                if idle.len() < self.keep && !conn.has_broken() {
                    idle.push((conn, Instant::now()));
                }
                Ok(())
            }
            // A connection that failed is dropped: the next send opens a new one.
            Ok(Err(e)) => Err(e),
            Err(_) => Err(SendError::Transient(format!(
                "SMTP: no answer within {:?}",
                self.timeout
            ))),
        }
    }
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
        // from the first byte. Both keep connections open between messages.
        let timeout = Duration::from_secs(15);
        let keep = config.concurrency.max(1);
        let transport = match Direct::from_url(url, timeout, keep)? {
            Some(direct) => Transport::Direct(Box::new(direct)),
            None => Transport::Lettre(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| Error::bad_request(format!("TIDINGS_SMTP_URL: {e}")))?
                    .timeout(Some(timeout))
                    .pool_config(PoolConfig::new().max_size(keep as u32))
                    .build(),
            ),
        };
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
                match transport {
                    Transport::Direct(direct) => {
                        direct.send(message.envelope(), &message.formatted()).await
                    }
                    Transport::Lettre(lettre) => {
                        lettre.send(message).await.map(drop).map_err(classify)
                    }
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
    use super::*;

    fn direct(url: &str) -> Result<Option<Direct>, Error> {
        Direct::from_url(url, Duration::from_secs(1), 4)
    }

    #[test]
    fn smtp_urls_are_read_as_lettre_reads_them() {
        let plain = direct("smtp://mail.example:2525").unwrap().unwrap();
        assert_eq!((plain.host.as_str(), plain.port), ("mail.example", 2525));
        assert!(plain.starttls.is_none() && plain.credentials.is_none());
        assert_eq!(direct("smtp://mail.example").unwrap().unwrap().port, 25);
        let required = direct("smtp://u%40x:p%2Fw@mail.example/relay.example?tls=required")
            .unwrap()
            .unwrap();
        assert_eq!(required.port, 587);
        assert!(matches!(required.starttls, Some((_, true))));
        assert!(required.credentials.is_some());
        assert_eq!(required.hello, ClientId::Domain("relay.example".to_owned()));
        let opportunistic = direct("smtp://mail.example?tls=opportunistic")
            .unwrap()
            .unwrap();
        assert!(matches!(opportunistic.starttls, Some((_, false))));
        // TLS from the first byte stays with lettre's transport.
        assert!(direct("smtps://mail.example").unwrap().is_none());
        let error = direct("smtp://mail.example?tls=sometimes").err().unwrap();
        assert!(error.message.contains("TIDINGS_SMTP_URL"), "{error:?}");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape("<b>\"a\" & 'b'</b>"),
            "&lt;b&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/b&gt;"
        );
    }
}
