//! A minimal SMTP server for tests (RFC 5321, no TLS, no authentication): it accepts every
//! message and keeps its raw text.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One message as received.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The MAIL FROM address.
    pub from: String,
    /// The RCPT TO addresses.
    pub to: Vec<String>,
    /// The message (headers and body), dot-unstuffed.
    pub data: String,
}

/// The sink.
pub struct SmtpSink {
    /// Where it listens.
    pub addr: SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpSink {
    /// Listen on 127.0.0.1, port 0.
    pub fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind SMTP sink");
        let addr = listener.local_addr().expect("address");
        let mails = Arc::new(Mutex::new(Vec::new()));
        let keep = mails.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut out) = stream else { continue };
                let Ok(input) = out.try_clone() else { continue };
                let keep = keep.clone();
                std::thread::spawn(move || {
                    let mut lines = BufReader::new(input);
                    let _ = out.write_all(b"220 sink ESMTP\r\n");
                    let (mut from, mut to) = (String::new(), Vec::new());
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if lines.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let upper = line.to_ascii_uppercase();
                        let reply: &[u8] = if upper.starts_with("EHLO") {
                            b"250-sink\r\n250 8BITMIME\r\n"
                        } else if upper.starts_with("HELO") {
                            b"250 sink\r\n"
                        } else if upper.starts_with("MAIL FROM:") {
                            from = line[10..].trim().to_string();
                            b"250 OK\r\n"
                        } else if upper.starts_with("RCPT TO:") {
                            to.push(line[8..].trim().to_string());
                            b"250 OK\r\n"
                        } else if upper.starts_with("DATA") {
                            let _ = out.write_all(b"354 go on\r\n");
                            let mut data = String::new();
                            loop {
                                let mut l = String::new();
                                if lines.read_line(&mut l).unwrap_or(0) == 0 {
                                    return;
                                }
                                if l == ".\r\n" {
                                    break;
                                }
                                data.push_str(l.strip_prefix('.').unwrap_or(&l));
                            }
                            keep.lock().expect("lock").push(Mail {
                                from: std::mem::take(&mut from),
                                to: std::mem::take(&mut to),
                                data,
                            });
                            b"250 queued\r\n"
                        } else if upper.starts_with("QUIT") {
                            let _ = out.write_all(b"221 bye\r\n");
                            return;
                        } else {
                            b"250 OK\r\n"
                        };
                        if out.write_all(reply).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        SmtpSink { addr, mails }
    }

    /// Wait until `n` messages came, up to `timeout`.
    pub fn wait(&self, n: usize, timeout: Duration) -> Vec<Mail> {
        let end = Instant::now() + timeout;
        loop {
            let got = self.mails.lock().expect("lock").clone();
            if got.len() >= n || Instant::now() >= end {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
