//! The callers' SIP side, shared by `ivr-load --media` and `ivr-load --recordings`: N
//! callers on one UDP socket INVITE the engine (50 every 50 ms, unanswered INVITEs again
//! every 2 s), ACK every 200 to an INVITE and take the first one's media address and To
//! tag, count the failed INVITEs and the answered BYEs, answer the engine's requests
//! (other than ACK and INVITE) 200, and tell the caller's slot when the engine hangs up.
//! Caller `i`'s Call-ID is the prefix then `i`. And the RFC 4733 packets of the keys the
//! callers press.

use crate::sip;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// What the SIP side writes into a caller's slot, which the sender reads.
pub trait Slot: Send + Sync + 'static {
    /// The engine's media address (IPv4 << 16 | port) once answered; 0 before.
    fn dest(&self) -> &AtomicU64;
}

/// N callers' dialogs with the engine.
pub struct Calls<S> {
    /// The callers' SIP socket.
    pub sip: Arc<UdpSocket>,
    /// Its address.
    pub me: SocketAddr,
    /// The engine's SIP address.
    pub engine: SocketAddr,
    /// The Call-IDs' prefix.
    prefix: char,
    /// One per caller.
    pub slots: Arc<Vec<S>>,
    /// Each caller's To tag (the engine's), once answered; empty before.
    pub tags: Arc<Mutex<Vec<String>>>,
    /// Callers answered (once each).
    pub answered: Arc<AtomicUsize>,
    /// BYEs the engine answered 200.
    pub byes_ok: Arc<AtomicUsize>,
    /// INVITEs that got a final answer of 300 or more.
    pub failed: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl<S: Slot> Calls<S> {
    /// Starts reading what the engine at `engine` sends to `sip`, for the callers of
    /// `slots`, whose Call-IDs start with `prefix`; `engine_bye` is told of a caller whose
    /// call the engine hung up (each BYE it sends).
    pub fn start(
        sip: UdpSocket,
        engine: SocketAddr,
        prefix: char,
        slots: Arc<Vec<S>>,
        engine_bye: impl Fn(&S) + Send + 'static,
    ) -> Calls<S> {
        let sip = Arc::new(sip);
        let me = sip.local_addr().expect("addr");
        let tags = Arc::new(Mutex::new(vec![String::new(); slots.len()]));
        let answered = Arc::new(AtomicUsize::new(0));
        let byes_ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let task = {
            let (sip, slots, tags) = (sip.clone(), slots.clone(), tags.clone());
            let (answered, byes_ok, failed) = (answered.clone(), byes_ok.clone(), failed.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                loop {
                    let Ok((len, from)) = sip.recv_from(&mut buf).await else {
                        continue;
                    };
                    let text = String::from_utf8_lossy(&buf[..len]);
                    let index = |call_id: &str| {
                        call_id
                            .strip_prefix(prefix)
                            .and_then(|i| i.parse::<usize>().ok())
                            .filter(|i| *i < slots.len())
                    };
                    if let Some(method) = sip::request_method(&text) {
                        // the far end hangs up (the demo's no-input rounds, a saved message...)
                        if method == "BYE"
                            && let Some(i) = sip::header(&text, "Call-ID:").and_then(index)
                        {
                            engine_bye(&slots[i]);
                        }
                        if method != "ACK" && method != "INVITE" {
                            let ok = sip::response(&text, "200 OK", None, None);
                            let _ = sip.send_to(&ok, from).await;
                        }
                        continue;
                    }
                    let Some((status, call_id, tag, method)) = sip::summarize(&text) else {
                        continue;
                    };
                    let Some(i) = index(&call_id) else { continue };
                    match (status, method.as_str()) {
                        (200, "INVITE") => {
                            // every 200 (retransmissions too) gets an ACK; the call starts once
                            let ack = sip::in_dialog(engine, me, &call_id, &tag, "ACK", 1);
                            let _ = sip.send_to(&ack, engine).await;
                            let dest = slots[i].dest();
                            if dest.load(Ordering::Relaxed) == 0
                                && let Some(SocketAddr::V4(media)) = sip::sdp_audio(&text)
                            {
                                tags.lock().expect("lock")[i] = tag;
                                let d = (u32::from(*media.ip()) as u64) << 16 | media.port() as u64;
                                dest.store(d, Ordering::Release);
                                answered.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        (300.., "INVITE") => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                        (200, "BYE") => {
                            byes_ok.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {}
                    }
                }
            })
        };
        Calls {
            sip,
            me,
            engine,
            prefix,
            slots,
            tags,
            answered,
            byes_ok,
            failed,
            task,
        }
    }

    /// Caller `i`'s Call-ID.
    pub fn call_id(&self, i: usize) -> String {
        format!("{}{i}", self.prefix)
    }

    /// Places the calls, caller `i` offering media at `ports[i]`, 50 every 50 ms; INVITEs
    /// unanswered after 2 s are sent again, until every call is answered or failed, or 60 s
    /// have passed.
    pub async fn place(&self, ports: &[u16]) {
        let n = self.slots.len();
        let invite = |i: usize| {
            sip::invite(
                self.engine,
                self.me,
                &self.call_id(i),
                &format!("+1555{i:07}"),
                ports[i],
            )
        };
        for i in 0..n {
            self.sip
                .send_to(&invite(i), self.engine)
                .await
                .expect("send");
            if i % 50 == 49 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut resend = Instant::now() + Duration::from_secs(2);
        while self.answered.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed) < n
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if Instant::now() >= resend {
                for i in 0..n {
                    if self.slots[i].dest().load(Ordering::Relaxed) == 0 {
                        let _ = self.sip.send_to(&invite(i), self.engine).await;
                    }
                }
                resend = Instant::now() + Duration::from_secs(2);
            }
        }
    }

    /// Waits, looking every `poll`, until the engine has answered `byes` BYEs, or 10 s
    /// have passed.
    pub async fn wait_byes(&self, byes: usize, poll: Duration) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.byes_ok.load(Ordering::Relaxed) < byes && Instant::now() < deadline {
            tokio::time::sleep(poll).await;
        }
    }

    /// Stops reading what the engine sends.
    pub fn stop(&self) {
        self.task.abort();
    }
}

/// Packets of one key: 6 updates (120 ms) then 3 end packets (RFC 4733 §2.5.1.4).
const EVENT_PACKETS: u8 = 9;

/// Writes packet `k` of a caller's key `code` (RFC 4733, payload type 101, the key's
/// timestamp `ets`) into `pkt`, whose version byte, sequence number and SSRC are already
/// there: the marker on the first packet, the E bit from the seventh on, volume -10 dBm0,
/// the duration so far. Returns the packet's length and the key's next packet (None after
/// the last).
pub fn event_packet(
    pkt: &mut [u8],
    (code, k, ets): (u8, u8, u32),
) -> (usize, Option<(u8, u8, u32)>) {
    pkt[1] = 101 | if k == 0 { 0x80 } else { 0 };
    pkt[4..8].copy_from_slice(&ets.to_be_bytes());
    let end = k >= 6;
    let duration = 160 * (k.min(5) as u16 + 1);
    pkt[12] = code;
    pkt[13] = if end { 0x80 } else { 0 } | 10; // E bit, volume -10 dBm0
    pkt[14..16].copy_from_slice(&duration.to_be_bytes());
    (16, (k + 1 < EVENT_PACKETS).then_some((code, k + 1, ets)))
}
