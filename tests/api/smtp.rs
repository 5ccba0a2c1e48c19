//! An SMTP server for the tests: accepts every message on loopback (no TLS, no auth),
//! keeps it, and lets a test wait for mail to an address and read its code and links.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::helpers::eventually;

/// One received message.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: Vec<String>,
    /// The raw message (headers and MIME body).
    pub data: String,
}

impl Mail {
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_lowercase());
        self.data
            .lines()
            .take_while(|line| !line.is_empty())
            .find(|line| line.to_lowercase().starts_with(&prefix))
            .map(|line| line[prefix.len()..].trim().to_owned())
    }

    /// The decoded `text/plain` part.
    pub fn text(&self) -> String {
        let data = self.data.replace("\r\n", "\n");
        let Some(start) = data.find("Content-Type: text/plain") else {
            return data;
        };
        let part = &data[start..];
        let (headers, rest) = part.split_once("\n\n").unwrap_or((part, ""));
        let body = rest.split("\n--").next().unwrap_or(rest);
        let encoding = headers.to_lowercase();
        if encoding.contains("content-transfer-encoding: base64") {
            let compact: String = body.split_whitespace().collect();
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(compact).unwrap()).unwrap()
        } else if encoding.contains("content-transfer-encoding: quoted-printable") {
            decode_quoted_printable(body)
        } else {
            body.to_owned()
        }
    }

    /// The 6-digit code (on a line of its own).
    pub fn code(&self) -> String {
        self.text()
            .lines()
            .map(str::trim)
            .find(|line| line.len() == 6 && line.bytes().all(|b| b.is_ascii_digit()))
            .unwrap_or_else(|| panic!("no code in {}", self.text()))
            .to_owned()
    }

    /// The first link that starts with `prefix`.
    pub fn link(&self, prefix: &str) -> String {
        self.text()
            .split_whitespace()
            .find(|word| word.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} link in {}", self.text()))
            .to_owned()
    }
}

fn decode_quoted_printable(body: &str) -> String {
    let joined = body.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len() + 1
            && let Some(hex) = joined.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// A sink's port, bound but not yet listening: a connection to it is refused (the server
/// is down), and no other socket can take the port meanwhile (a port found free and let go
/// can be handed to any outgoing connection before the sink binds it again, as it once was
/// in CI).
pub struct LateSmtpSink {
    socket: tokio::net::TcpSocket,
    port: u16,
}

/// The `SMTP_URL` of a sink on `port`.
fn url(port: u16) -> String {
    format!("smtp://127.0.0.1:{port}")
}

impl LateSmtpSink {
    pub fn url(&self) -> String {
        url(self.port)
    }

    /// The server comes up.
    pub fn start(self) -> SmtpSink {
        SmtpSink::on(self.socket.listen(128).unwrap())
    }
}

pub struct SmtpSink {
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    pub async fn start() -> Self {
        Self::on(TcpListener::bind("127.0.0.1:0").await.unwrap())
    }

    /// A port for a sink that comes up late ([`LateSmtpSink::start`]).
    pub fn reserve() -> LateSmtpSink {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
        let port = socket.local_addr().unwrap().port();
        LateSmtpSink { socket, port }
    }

    fn on(listener: TcpListener) -> Self {
        let port = listener.local_addr().unwrap().port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let kept = mails.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, kept).await;
                });
            }
        });
        Self { port, mails, task }
    }

    pub fn url(&self) -> String {
        url(self.port)
    }

    /// Every message to `address` so far.
    pub fn mails_to(&self, address: &str) -> Vec<Mail> {
        self.mails
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(address)))
            .cloned()
            .collect()
    }

    /// Waits for a message to `address` with this subject and returns it.
    pub async fn wait_for_subject(&self, address: &str, subject: &str) -> Mail {
        eventually(
            Duration::from_secs(10),
            &format!("`{subject}` to {address}"),
            || async {
                self.mails_to(address)
                    .into_iter()
                    .find(|m| m.header("Subject").as_deref() == Some(subject))
            },
        )
        .await
    }

    /// Waits for the `n`-th message to `address` and returns it.
    pub async fn wait_for(&self, address: &str, n: usize) -> Mail {
        eventually(Duration::from_secs(10), &format!("email #{n} to {address}"), || async {
            self.mails_to(address).get(n - 1).cloned()
        })
        .await
    }
}

async fn serve(stream: tokio::net::TcpStream, mails: Arc<Mutex<Vec<Mail>>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 sink ESMTP\r\n").await?;
    let mut to = Vec::new();
    while let Some(line) = lines.next_line().await? {
        let upper = line.to_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            write.write_all(b"250-sink\r\n250 8BITMIME\r\n").await?;
        } else if upper.starts_with("MAIL FROM") {
            to.clear();
            write.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("RCPT TO") {
            let address = line
                .split_once(':')
                .map(|(_, a)| a.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
                .unwrap_or_default();
            to.push(address);
            write.write_all(b"250 OK\r\n").await?;
        } else if upper == "DATA" {
            write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
            let mut data = String::new();
            while let Some(line) = lines.next_line().await? {
                if line == "." {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
                data.push_str("\r\n");
            }
            mails.lock().unwrap().push(Mail { to: to.clone(), data });
            write.write_all(b"250 OK queued\r\n").await?;
        } else if upper == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            write.write_all(b"250 OK\r\n").await?;
        }
    }
    Ok(())
}
