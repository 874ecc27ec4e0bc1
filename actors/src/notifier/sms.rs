//! SMS: the provider interface. `Log` writes the message to the log (the default, so a fresh
//! install works without an account anywhere); `Http` POSTs `{"to": phone, "message": text}`
//! with `Authorization: Bearer <key>` to the configured URL, and a 2xx answer means sent.

use std::fmt;
use std::time::Duration;

use super::SendError;

/// Which SMS provider to use.
#[derive(Clone, Default)]
pub enum SmsSettings {
    /// Log the text; counts as sent.
    #[default]
    Log,
    /// An HTTP API.
    Http {
        /// The endpoint messages are POSTed to.
        url: String,
        /// Sent as a bearer token.
        api_key: String,
    },
}

impl fmt::Debug for SmsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SmsSettings::Log => f.write_str("Log"),
            SmsSettings::Http { url, .. } => f.debug_struct("Http").field("url", url).field("api_key", &"***").finish(),
        }
    }
}

/// A working SMS provider. Holds an HTTP client, so it lives on the actor's thread.
pub enum SmsSender {
    /// Writes messages to the log.
    Log,
    /// POSTs them to an HTTP API.
    Http {
        /// Reused client.
        client: awc::Client,
        /// Endpoint.
        url: String,
        /// Bearer key.
        api_key: String,
    },
}

/// How long the HTTP provider may take to answer.
const HTTP_TIMEOUT: Duration = Duration::from_secs(15);

impl SmsSender {
    /// The sender for these settings.
    pub fn new(settings: &SmsSettings) -> Self {
        match settings {
            SmsSettings::Log => SmsSender::Log,
            SmsSettings::Http { url, api_key } => SmsSender::Http {
                client: awc::Client::builder().timeout(HTTP_TIMEOUT).finish(),
                url: url.clone(),
                api_key: api_key.clone(),
            },
        }
    }

    /// Sends `text` to `phone`. A 4xx answer (other than 408 and 429) is permanent; a 5xx,
    /// a timeout or a connection failure may be retried.
    pub async fn send(&self, phone: &str, text: &str) -> Result<(), SendError> {
        match self {
            SmsSender::Log => {
                tracing::info!(to = %masked(phone), message = %text, "SMS (log provider)");
                Ok(())
            }
            SmsSender::Http { client, url, api_key } => {
                let body = serde_json::json!({ "to": phone, "message": text });
                let response = client
                    .post(url.as_str())
                    .bearer_auth(api_key)
                    .send_json(&body)
                    .await
                    .map_err(|e| SendError::transient(format!("SMS provider unreachable: {e}")))?;
                let status = response.status();
                if status.is_success() {
                    Ok(())
                } else if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 {
                    Err(SendError::permanent(format!("SMS provider refused: HTTP {}", status.as_u16())))
                } else {
                    Err(SendError::transient(format!("SMS provider failed: HTTP {}", status.as_u16())))
                }
            }
        }
    }
}

/// A phone number with all but its last four digits hidden, for logs.
fn masked(phone: &str) -> String {
    let count = phone.chars().count();
    phone.chars().enumerate().map(|(i, c)| if i + 4 < count && c.is_ascii_digit() { '•' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn phones_are_masked_in_logs() {
        assert_eq!(super::masked("+919876543210"), "+••••••••3210");
    }
}
