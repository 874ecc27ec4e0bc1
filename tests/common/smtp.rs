//! A real SMTP server on loopback, started inside the test: it speaks enough SMTP for a
//! client like lettre (greeting, EHLO/HELO, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP,
//! QUIT), keeps every message that arrives, and can be told to refuse `MAIL FROM` or the
//! message data with a reply code (451: try again later; 554: never). The helpers at the end
//! take a received message apart (headers, MIME parts, base64 and quoted-printable bodies).

use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One message as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    /// The envelope sender (`MAIL FROM`).
    pub from: String,
    /// The envelope recipients (`RCPT TO`).
    pub to: Vec<String>,
    /// The message as sent after `DATA`, dot-unstuffed, CRLF line ends.
    pub data: String,
}

/// Where the sink refuses, and with which reply code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refuse {
    /// Accept everything.
    Nothing,
    /// Answer `MAIL FROM` with this code.
    Mail(u16),
    /// Take the data, then answer this code instead of 250.
    Data(u16),
}

#[derive(Debug)]
struct SinkState {
    refuse: Refuse,
    messages: Vec<Received>,
    transactions: usize,
}

/// A running sink.
pub struct SmtpSink {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    state: Arc<Mutex<SinkState>>,
    task: JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    /// Listens on 127.0.0.1 on a free port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind SMTP sink");
        let port = listener.local_addr().expect("sink address").port();
        let state = Arc::new(Mutex::new(SinkState { refuse: Refuse::Nothing, messages: Vec::new(), transactions: 0 }));
        let task = tokio::spawn({
            let state = state.clone();
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(serve(stream, state.clone()));
                }
            }
        });
        SmtpSink { port, state, task }
    }

    /// The settings that point a Kilowatt server at this sink (plain SMTP).
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("KILOWATT_SMTP_HOST", "127.0.0.1".to_owned()),
            ("KILOWATT_SMTP_PORT", self.port.to_string()),
            ("KILOWATT_SMTP_TLS", "none".to_owned()),
            ("KILOWATT_EMAIL_FROM", "Kilowatt <no-reply@kilowatt.test>".to_owned()),
            ("KILOWATT_SUPPORT_EMAIL", "help@kilowatt.test".to_owned()),
        ]
    }

    /// From now on, refuse as told.
    pub fn refuse(&self, refuse: Refuse) {
        self.state.lock().expect("sink state").refuse = refuse;
    }

    /// Every message accepted so far.
    pub fn messages(&self) -> Vec<Received> {
        self.state.lock().expect("sink state").messages.clone()
    }

    /// Messages accepted for `address`.
    pub fn messages_to(&self, address: &str) -> Vec<Received> {
        self.messages().into_iter().filter(|m| m.to.iter().any(|to| to.eq_ignore_ascii_case(address))).collect()
    }

    /// How many transactions (`MAIL FROM`) were begun, refused or not.
    pub fn transactions(&self) -> usize {
        self.state.lock().expect("sink state").transactions
    }
}

/// The address inside `<…>` after `MAIL FROM:` or `RCPT TO:`.
fn address(argument: &str) -> String {
    let start = argument.find('<').map_or(0, |i| i + 1);
    let end = argument[start..].find('>').map_or(argument.len(), |i| start + i);
    argument[start..end].trim().to_owned()
}

async fn serve(stream: TcpStream, state: Arc<Mutex<SinkState>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    if write.write_all(b"220 sink.test ESMTP ready\r\n").await.is_err() {
        return;
    }
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        let upper = line.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            "250-sink.test greets you\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n".into()
        } else if upper.starts_with("HELO") {
            "250 sink.test\r\n".into()
        } else if upper.starts_with("MAIL FROM:") {
            let refuse = {
                let mut state = state.lock().expect("sink state");
                state.transactions += 1;
                state.refuse
            };
            if let Refuse::Mail(code) = refuse {
                format!("{code} refused as told\r\n")
            } else {
                from = Some(address(&line["MAIL FROM:".len()..]));
                to.clear();
                "250 OK\r\n".into()
            }
        } else if upper.starts_with("RCPT TO:") {
            if from.is_none() {
                "503 MAIL first\r\n".into()
            } else {
                to.push(address(&line["RCPT TO:".len()..]));
                "250 OK\r\n".into()
            }
        } else if upper == "DATA" {
            if from.is_none() || to.is_empty() {
                "503 RCPT first\r\n".into()
            } else {
                if write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await.is_err() {
                    return;
                }
                let mut data = String::new();
                loop {
                    match lines.next_line().await {
                        Ok(Some(line)) if line == "." => break,
                        Ok(Some(line)) => {
                            data.push_str(line.strip_prefix('.').unwrap_or(&line));
                            data.push_str("\r\n");
                        }
                        _ => return,
                    }
                }
                let mut state = state.lock().expect("sink state");
                let reply = if let Refuse::Data(code) = state.refuse {
                    format!("{code} refused as told\r\n")
                } else {
                    let from = from.clone().unwrap_or_default();
                    state.messages.push(Received { from, to: to.clone(), data });
                    "250 OK queued\r\n".into()
                };
                from = None;
                to.clear();
                reply
            }
        } else if upper == "RSET" {
            from = None;
            to.clear();
            "250 OK\r\n".into()
        } else if upper == "NOOP" {
            "250 OK\r\n".into()
        } else if upper == "QUIT" {
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
        } else {
            "502 not implemented\r\n".into()
        };
        if write.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// A message taken apart: top-level headers and, for multipart messages, each part's
/// content type and decoded body.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub headers: Vec<(String, String)>,
    pub parts: Vec<(String, String)>,
}

impl Parsed {
    /// A header's value (unfolded), by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The decoded body of the first part whose content type starts with `content_type`.
    pub fn part(&self, content_type: &str) -> Option<&str> {
        self.parts.iter().find(|(t, _)| t.to_ascii_lowercase().starts_with(content_type)).map(|(_, b)| b.as_str())
    }
}

fn split_head(text: &str) -> (Vec<(String, String)>, &str) {
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    (headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

fn decode(body: &str, encoding: Option<&str>) -> String {
    match encoding.map(str::to_ascii_lowercase).as_deref() {
        Some("base64") => {
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            String::from_utf8_lossy(&BASE64.decode(compact).expect("base64 body")).into_owned()
        }
        Some("quoted-printable") => {
            let mut bytes = Vec::new();
            for line in body.split("\r\n") {
                let (line, soft) = match line.strip_suffix('=') {
                    Some(line) => (line, true),
                    None => (line, false),
                };
                let raw = line.as_bytes();
                let mut i = 0;
                while i < raw.len() {
                    if raw[i] == b'=' && i + 2 < raw.len() {
                        let hex = std::str::from_utf8(&raw[i + 1..i + 3]).unwrap_or("");
                        if let Ok(byte) = u8::from_str_radix(hex, 16) {
                            bytes.push(byte);
                            i += 3;
                            continue;
                        }
                    }
                    bytes.push(raw[i]);
                    i += 1;
                }
                if !soft {
                    bytes.extend_from_slice(b"\r\n");
                }
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }
        _ => body.to_owned(),
    }
}

/// Takes a received message apart.
pub fn parse(data: &str) -> Parsed {
    let (headers, body) = split_head(data);
    let content_type = header(&headers, "Content-Type").unwrap_or("text/plain").to_owned();
    let mut parts = Vec::new();
    if let Some(boundary) = content_type.split(';').find_map(|p| p.trim().strip_prefix("boundary=")) {
        let boundary = format!("--{}", boundary.trim_matches('"'));
        for chunk in body.split(boundary.as_str()).skip(1) {
            if chunk.starts_with("--") {
                break;
            }
            let chunk = chunk.trim_start_matches("\r\n");
            let (part_headers, part_body) = split_head(chunk);
            let part_type = header(&part_headers, "Content-Type").unwrap_or("text/plain").to_owned();
            let body = decode(part_body.trim_end_matches("\r\n"), header(&part_headers, "Content-Transfer-Encoding"));
            parts.push((part_type, body));
        }
    } else {
        parts.push((content_type, decode(body, header(&headers, "Content-Transfer-Encoding"))));
    }
    Parsed { headers, parts }
}
