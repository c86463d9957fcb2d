//! A bare caller over real UDP sockets on 127.0.0.1, for black-box tests that handle the
//! audio themselves (hear the engine, send what they like back), which SIPp cannot do.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

/// One answered call to the engine: its SIP and RTP sockets and the engine's media address.
pub struct UdpCall {
    /// Our SIP socket.
    pub sip: UdpSocket,
    /// Our RTP socket (read timeout 5 s).
    pub rtp: UdpSocket,
    /// Where the engine wants our RTP (from its SDP answer).
    pub engine_media: SocketAddr,
    /// The engine's SDP answer.
    pub answer: String,
    target: SocketAddr,
    call_id: String,
    to_tag: String,
    cseq: u32,
}

impl UdpCall {
    /// INVITE `target` offering the payload formats `formats` (e.g. `0` or `8 101`) with the
    /// `a=` lines `attributes`, wait for the 200 OK and ACK it (RFC 3261 §13.2.2.4).
    pub fn dial(target: SocketAddr, call_id: &str, formats: &str, attributes: &str) -> UdpCall {
        let sip = UdpSocket::bind("127.0.0.1:0").expect("bind SIP");
        let rtp = UdpSocket::bind("127.0.0.1:0").expect("bind RTP");
        sip.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        rtp.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let media = rtp.local_addr().expect("RTP address");
        let sdp = format!(
            "v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {} RTP/AVP {formats}\r\n{attributes}",
            media.port()
        );
        let mut call = UdpCall {
            sip,
            rtp,
            engine_media: media,
            answer: String::new(),
            target,
            call_id: call_id.to_string(),
            to_tag: String::new(),
            cseq: 1,
        };
        let invite = format!(
            "{}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            call.head("INVITE", 1, "a1"),
            sdp.len()
        );
        call.sip
            .send_to(invite.as_bytes(), target)
            .expect("send INVITE");
        let mut buf = [0u8; 4096];
        let text = loop {
            let (n, _) = call
                .sip
                .recv_from(&mut buf)
                .expect("an answer to the INVITE");
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            if text.starts_with("SIP/2.0 200") {
                break text;
            }
        };
        let to = text.lines().find(|l| l.starts_with("To:")).expect("To");
        call.to_tag = format!(";tag={}", to.split("tag=").nth(1).expect("to-tag").trim());
        call.answer = text
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let port: u16 = call
            .answer
            .lines()
            .find_map(|l| l.strip_prefix("m=audio "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .expect("m=audio port in the answer");
        call.engine_media = SocketAddr::from(([127, 0, 0, 1], port));
        let ack = format!("{}Content-Length: 0\r\n\r\n", call.head("ACK", 1, "a2"));
        call.sip.send_to(ack.as_bytes(), target).expect("send ACK");
        call
    }

    /// Send BYE and wait for its 200 OK.
    pub fn bye(&mut self) {
        self.cseq += 1;
        let bye = format!(
            "{}Content-Length: 0\r\n\r\n",
            self.head("BYE", self.cseq, "a3")
        );
        self.sip
            .send_to(bye.as_bytes(), self.target)
            .expect("send BYE");
        let mut buf = [0u8; 4096];
        let cseq = format!("{} BYE", self.cseq);
        loop {
            let (n, _) = self.sip.recv_from(&mut buf).expect("200 to BYE");
            let text = String::from_utf8_lossy(&buf[..n]);
            if text.starts_with("SIP/2.0 200 OK") && text.contains(&cseq) {
                return;
            }
        }
    }

    fn head(&self, method: &str, cseq: u32, branch: &str) -> String {
        let me = self.sip.local_addr().expect("SIP address");
        format!(
            "{method} sip:service@{e} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{branch}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:listener@{me}>;tag=l1\r\nTo: <sip:service@{e}>{to_tag}\r\n\
             Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:listener@{me}>\r\n",
            e = self.target,
            to_tag = self.to_tag,
            call_id = self.call_id,
        )
    }
}

/// RFC 4733 packets of one key press (start with marker, then the end three times), SSRC
/// 0x12345678, payload type 101; `seq` moves on.
pub fn key_press(digit: u8, seq: &mut u16, ts: u32) -> Vec<Vec<u8>> {
    [
        (false, 160u16),
        (false, 320),
        (true, 480),
        (true, 480),
        (true, 480),
    ]
    .iter()
    .enumerate()
    .map(|(i, (end, duration))| {
        let mut p = vec![0x80, 101 | if i == 0 { 0x80 } else { 0 }];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        p.extend_from_slice(&[digit, if *end { 0x80 | 10 } else { 10 }]);
        p.extend_from_slice(&duration.to_be_bytes());
        *seq = seq.wrapping_add(1);
        p
    })
    .collect()
}
