//! Fuzz target bodies (run by `tests/fuzz` with cargo-fuzz; compiled in normal builds so
//! they always type-check). Each must never panic on any input.

use crate::framing::{Frame, StreamFramer};
use crate::message::CoreHeaders;
use crate::parse::{Framing, error_response, parse_message};
use crate::{Message, Transport};

/// Parse a datagram; whatever parses must print and parse back to the same message, and
/// every typed header accessor must be safe to call.
pub fn parse_datagram(data: &[u8]) {
    match parse_message(data, Framing::Datagram) {
        Ok(msg) => {
            let printed = msg.to_bytes();
            let again = parse_message(&printed, Framing::Stream);
            assert_eq!(
                again.as_ref().ok(),
                Some(&msg),
                "print/parse round trip changed the message"
            );
            touch_headers(&msg);
        }
        Err(e) => {
            if let Some(r) = error_response(&e) {
                let _ = r.to_bytes();
            }
        }
    }
}

fn touch_headers(msg: &Message) {
    match msg {
        Message::Request(r) => {
            let _ = (
                r.top_via(),
                r.cseq(),
                r.party_from(),
                r.party_to(),
                r.contact(),
                r.uri.user(),
            );
            let mut r = r.clone();
            let _ = crate::transaction::ServerKey::of(&r);
            let mut layer = crate::transaction::TransactionLayer::new(Default::default());
            let now = crate::fuzz_epoch();
            let peer = crate::transaction::Peer {
                transport: Transport::Udp,
                addr: ([127, 0, 0, 1], 5060).into(),
            };
            r.body.clear();
            layer.handle_message(now, Message::Request(r), peer);
            while layer.poll_event().is_some() {}
            while layer.poll_transmit().is_some() {}
        }
        Message::Response(r) => {
            let _ = (
                r.top_via(),
                r.cseq(),
                r.party_from(),
                r.party_to(),
                r.contact(),
            );
        }
    }
}

/// Feed a byte stream to the TCP framer in chunks whose sizes come from the input; every
/// frame must parse without panicking.
pub fn stream(data: &[u8]) {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk.max(1));
    let mut framer = StreamFramer::new();
    for piece in rest.chunks(chunk) {
        framer.push(piece);
        loop {
            match framer.next_frame() {
                Ok(Some(Frame::Message(m))) => {
                    let _ = parse_message(&m, Framing::Stream);
                }
                Ok(Some(Frame::Ping)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
}
