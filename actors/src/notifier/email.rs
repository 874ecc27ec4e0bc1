//! Email: the SMTP transport (lettre, pooled, with timeouts) and the layout every message is
//! wrapped in (`templates/email/layout.html` and `layout.txt`, with the Kilowatt footer).

use std::fmt;
use std::time::Duration;

use askama::Template;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::SendError;

/// Transport security for SMTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailTls {
    /// Plain SMTP: a relay on the same host, or a test sink.
    None,
    /// Upgrade with STARTTLS (required, never downgraded).
    StartTls,
    /// Implicit TLS (SMTPS).
    Tls,
}

/// Where and how to send email.
#[derive(Clone)]
pub struct EmailSettings {
    /// Relay host.
    pub host: String,
    /// Relay port.
    pub port: u16,
    /// Transport security.
    pub tls: EmailTls,
    /// Login, if the relay wants one.
    pub username: Option<String>,
    /// Password for `username`.
    pub password: String,
    /// Sender, e.g. `Kilowatt <no-reply@example.com>`.
    pub from: String,
    /// Longest wait for the relay to answer a command or accept a connection.
    pub timeout: Duration,
}

impl fmt::Debug for EmailSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &"***")
            .field("from", &self.from)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A configured SMTP relay.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

/// Why the mailer could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    /// The sender address does not parse.
    #[error("invalid sender address {0:?}")]
    From(String),
    /// TLS could not be set up for the relay host.
    #[error("SMTP TLS setup: {0}")]
    Tls(#[from] lettre::transport::smtp::Error),
}

impl Mailer {
    /// A pooled transport to the relay. Makes no connection yet.
    pub fn new(settings: &EmailSettings) -> Result<Self, MailerError> {
        let from = settings.from.parse().map_err(|_| MailerError::From(settings.from.clone()))?;
        let builder = match settings.tls {
            EmailTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.as_str()),
            EmailTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host)?,
            EmailTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host)?,
        };
        let mut builder = builder
            .port(settings.port)
            .timeout(Some(settings.timeout))
            .pool_config(PoolConfig::new().max_size(4).idle_timeout(Duration::from_secs(60)));
        if let Some(username) = &settings.username {
            builder = builder.credentials(Credentials::new(username.clone(), settings.password.clone()));
        }
        Ok(Mailer { transport: builder.build(), from })
    }

    /// Sends one message; an answer of 5xx from the relay (or an address that cannot be
    /// used) is a permanent failure, anything else may be retried.
    pub async fn send(&self, to: &str, to_name: Option<&str>, content: &EmailContent<'_>) -> Result<(), SendError> {
        let address = to.parse().map_err(|e| SendError::permanent(format!("invalid recipient address: {e}")))?;
        let to = Mailbox::new(to_name.map(str::to_owned), address);
        let (text, html) = content.render().map_err(|e| SendError::permanent(format!("template: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(content.subject)
            .multipart(
                MultiPart::alternative()
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(text))
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html)),
            )
            .map_err(|e| SendError::permanent(format!("message: {e}")))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(error) if error.is_permanent() => Err(SendError::permanent(error.to_string())),
            Err(error) => Err(SendError::transient(error.to_string())),
        }
    }
}

/// What goes into one email.
#[derive(Debug, Clone, Copy)]
pub struct EmailContent<'a> {
    /// Subject line (also the heading).
    pub subject: &'a str,
    /// Plain-text body.
    pub text: &'a str,
    /// HTML body; without one, the HTML part is made from the text.
    pub html: Option<&'a str>,
    /// Shown in the footer.
    pub support_email: &'a str,
}

#[derive(Template)]
#[template(path = "email/layout.html")]
struct HtmlLayout<'a> {
    subject: &'a str,
    html: Option<&'a str>,
    paragraphs: Vec<&'a str>,
    support_email: &'a str,
}

#[derive(Template)]
#[template(path = "email/layout.txt")]
struct TextLayout<'a> {
    subject: &'a str,
    text: &'a str,
    support_email: &'a str,
}

impl EmailContent<'_> {
    /// The plain-text and HTML bodies, wrapped in the layout.
    pub fn render(&self) -> Result<(String, String), askama::Error> {
        let text =
            TextLayout { subject: self.subject, text: self.text.trim(), support_email: self.support_email }.render()?;
        let paragraphs = self.text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()).collect();
        let html = HtmlLayout { subject: self.subject, html: self.html, paragraphs, support_email: self.support_email }
            .render()?;
        Ok((text, html))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_wraps_and_escapes_the_text() {
        let content = EmailContent {
            subject: "Your slot <starts>",
            text: "Hello.\n\nCheck in within 30 minutes & charge.",
            html: None,
            support_email: "help@kilowatt.test",
        };
        let (text, html) = content.render().expect("renders");
        assert!(text.starts_with("Your slot <starts>\n"));
        assert!(text.contains("Check in within 30 minutes & charge."));
        assert!(text.contains("help@kilowatt.test"));
        assert!(html.contains("<p style=\"margin:0 0 12px;\">Check in within 30 minutes &#38; charge.</p>"));
        assert!(html.contains("Your slot &#60;starts&#62;"));
        assert!(html.contains("mailto:help@kilowatt.test"));
    }

    #[test]
    fn a_given_html_body_is_kept_as_is() {
        let content =
            EmailContent { subject: "S", text: "plain", html: Some("<p><b>bold</b></p>"), support_email: "s@k.test" };
        let (_, html) = content.render().expect("renders");
        assert!(html.contains("<p><b>bold</b></p>"));
        assert!(!html.contains("plain"));
    }
}
