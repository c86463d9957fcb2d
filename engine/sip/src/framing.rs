//! Cutting a TCP byte stream into SIP messages (RFC 3261 §18.3) and keep-alives (RFC 5626 §3.5.1).
//!
//! On a stream, Content-Length is required and exact: a message is complete only when its
//! whole body has arrived. A header section that cannot be framed (no or several
//! Content-Length values, or larger than the limit) is fatal: the connection must close,
//! since there is no way to find where the next message starts.

#[cfg(doc)]
use crate::parse::Framing;
use crate::parse::Limits;

/// What the framer produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// One complete message's bytes (header section and exactly Content-Length of body),
    /// ready for [`crate::parse::parse_message`] with [`Framing::Stream`].
    Message(Vec<u8>),
    /// A double-CRLF keep-alive ping; answer with a single CRLF (RFC 5626 §4.4.1).
    Ping,
}

/// A stream that can no longer be framed; close the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// The header section grew past the message limit without ending.
    #[error("header section longer than {0} octets")]
    TooLarge(usize),
    /// No Content-Length, or several, or not a number.
    #[error("stream message without a single valid Content-Length")]
    ContentLength,
}

/// Accumulates stream bytes and yields complete frames.
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: Vec<u8>,
    limits: Limits,
    broken: bool,
}

impl StreamFramer {
    /// A framer with default [`Limits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A framer with the given limits.
    pub fn with_limits(limits: Limits) -> Self {
        StreamFramer {
            buf: Vec::new(),
            limits,
            broken: false,
        }
    }

    /// Append bytes read from the connection.
    pub fn push(&mut self, data: &[u8]) {
        if !self.broken {
            self.buf.extend_from_slice(data);
        }
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed, or a fatal error.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FramingError> {
        if self.broken {
            return Err(FramingError::ContentLength);
        }
        if self.buf.starts_with(b"\r\n\r\n") {
            self.buf.drain(..4);
            return Ok(Some(Frame::Ping));
        }
        // Single CRLFs between messages (pongs, or sloppy peers) are skipped.
        let skip = self.buf.iter().position(|b| !matches!(b, b'\r' | b'\n'));
        match skip {
            None if self.buf.len() >= 4 => self.buf.clear(),
            None => return Ok(None),
            Some(n) => {
                self.buf.drain(..n);
            }
        }
        let Some(head_end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            if self.buf.len() > self.limits.max_message {
                self.broken = true;
                return Err(FramingError::TooLarge(self.limits.max_message));
            }
            return Ok(None);
        };
        let Some(len) = content_length(&self.buf[..head_end]) else {
            self.broken = true;
            return Err(FramingError::ContentLength);
        };
        let total = (head_end + 4).saturating_add(len);
        if total > self.limits.max_message {
            self.broken = true;
            return Err(FramingError::TooLarge(self.limits.max_message));
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let frame: Vec<u8> = self.buf.drain(..total).collect();
        Ok(Some(Frame::Message(frame)))
    }
}

/// The single Content-Length of a header section (long or compact name), if valid.
fn content_length(head: &[u8]) -> Option<usize> {
    let mut found = None;
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            continue; // continuation line
        }
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            let v = std::str::from_utf8(line[colon + 1..].trim_ascii()).ok()?;
            if found.is_some() || v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            found = Some(v.parse().ok()?);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OPTIONS: &str = "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nl: 3\r\n\r\nabc";

    #[test]
    fn frames_split_and_joined_messages() {
        let mut f = StreamFramer::new();
        let two = format!("{OPTIONS}{OPTIONS}\r\n\r\n");
        for chunk in two.as_bytes().chunks(7) {
            f.push(chunk);
        }
        for _ in 0..2 {
            match f.next_frame().unwrap() {
                Some(Frame::Message(m)) => {
                    assert_eq!(m, OPTIONS.as_bytes());
                    let parsed = crate::parse::parse_message(&m, crate::parse::Framing::Stream);
                    assert!(parsed.is_ok());
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(f.next_frame().unwrap(), Some(Frame::Ping));
        assert_eq!(f.next_frame().unwrap(), None);
    }

    #[test]
    fn waits_for_the_whole_body() {
        let mut f = StreamFramer::new();
        f.push(&OPTIONS.as_bytes()[..OPTIONS.len() - 1]);
        assert_eq!(f.next_frame().unwrap(), None);
        f.push(b"c");
        assert!(matches!(f.next_frame().unwrap(), Some(Frame::Message(_))));
    }

    #[test]
    fn missing_or_double_length_is_fatal() {
        let mut f = StreamFramer::new();
        f.push(OPTIONS.replace("l: 3\r\n", "").as_bytes());
        assert_eq!(f.next_frame(), Err(FramingError::ContentLength));
        let mut f = StreamFramer::new();
        f.push(
            OPTIONS
                .replace("l: 3\r\n", "l: 3\r\nContent-Length: 3\r\n")
                .as_bytes(),
        );
        assert_eq!(f.next_frame(), Err(FramingError::ContentLength));
    }

    #[test]
    fn endless_header_is_fatal() {
        let mut f = StreamFramer::new();
        f.push(&vec![b'a'; 70_000]);
        assert_eq!(f.next_frame(), Err(FramingError::TooLarge(65_535)));
    }

    proptest! {
        #[test]
        fn never_panics(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
            let mut f = StreamFramer::new();
            for c in chunks {
                f.push(&c);
                while let Ok(Some(_)) = f.next_frame() {}
            }
        }
    }
}
