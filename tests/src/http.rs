//! A small blocking HTTP/1.1 client for tests: one request per connection
//! (`Connection: close`), the whole answer read, no redirects followed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// An answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Header lines as (lower-cased name, value).
    pub headers: Headers,
    /// The body (chunked transfer decoded).
    pub body: Vec<u8>,
}

/// Header lines as (lower-cased name, value).
type Headers = Vec<(String, String)>;

/// A header's value among (lower-cased name, value) lines.
fn find<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

/// A message's head, once its blank line has come: the first line, the header lines as
/// (lower-cased name, value), and where the body starts.
fn head(raw: &[u8]) -> Option<(String, Headers, usize)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let text = String::from_utf8_lossy(&raw[..end]);
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or("").to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some((first, headers, end + 4))
}

impl Reply {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Send `method path` to `addr` with extra header lines and a body.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Reply> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse(&raw).ok_or_else(|| {
        std::io::Error::other(format!(
            "malformed HTTP answer: {:?}",
            String::from_utf8_lossy(&raw)
        ))
    })
}

/// `GET path`.
pub fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, &[], b"").expect("HTTP GET")
}

fn parse(raw: &[u8]) -> Option<Reply> {
    let (first, headers, start) = head(raw)?;
    let status = first.split_whitespace().nth(1)?.parse().ok()?;
    let mut body = raw[start..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Some(Reply {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_answers() {
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello").unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "hello"));
        assert_eq!(r.header("content-type"), Some("text/plain"));
        let r = parse(
            b"HTTP/1.1 422 X\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((r.status, r.text().as_str()), (422, "abcde"));
    }
}

/// A request received by a [`Sink`].
#[derive(Debug, Clone)]
pub struct Received {
    /// The request line (`POST /hook HTTP/1.1`).
    pub line: String,
    /// Header lines as (lower-cased name, value).
    pub headers: Headers,
    /// The body.
    pub body: Vec<u8>,
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }
}

/// An HTTP server for webhooks in tests: answers every request with `status` and keeps it.
pub struct Sink {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    received: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
}

impl Sink {
    /// Listen on 127.0.0.1 (port 0, or `port`), answering `status`.
    pub fn start(port: u16, status: u16) -> Sink {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind sink");
        let addr = listener.local_addr().expect("sink address");
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut raw = Vec::new();
                let mut buf = [0u8; 4096];
                // Read the head, then the body by Content-Length.
                let req = loop {
                    let Ok(n) = s.read(&mut buf) else { break None };
                    if n == 0 {
                        break None;
                    }
                    raw.extend_from_slice(&buf[..n]);
                    let Some((line, headers, start)) = head(&raw) else {
                        continue;
                    };
                    let len: usize = find(&headers, "content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    if raw.len() < start + len {
                        continue;
                    }
                    break Some(Received {
                        line,
                        headers,
                        body: raw[start..start + len].to_vec(),
                    });
                };
                if let Some(r) = req {
                    keep.lock().expect("sink lock").push(r);
                }
                let _ = s.write_all(
                    format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                    .as_bytes(),
                );
            }
        });
        Sink { addr, received }
    }

    /// What was received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("sink lock").clone()
    }

    /// Wait until `n` requests came, up to `timeout`.
    pub fn wait(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let end = std::time::Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= n || std::time::Instant::now() >= end {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
