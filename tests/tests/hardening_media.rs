//! The real `ivr` binary attacked through its media and call admission (issue 8, items 1, 4,
//! 5, 10 and 11): RTP from a host that never signalled, audio streamed toward a silent
//! address, refusals at capacity, a caller that vanished, a flood of INVITEs never ACKed,
//! and a disk that fills during a recording. Each test reproduces the failure as an
//! attacker (or a bad day) would, and checks what the engine does now.
//!
//! Attackers send from other loopback addresses (127.0.0.66...), which Linux routes to `lo`
//! with no setup: the engine must tell them from the caller at 127.0.0.1.

use ivr_tests::http;
use ivr_tests::process::Ivr;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

/// A UDP socket on a loopback address other than 127.0.0.1 (an attacker's host).
fn bind_at(last: u8) -> UdpSocket {
    let s = UdpSocket::bind(format!("127.0.0.{last}:0"))
        .unwrap_or_else(|e| panic!("binding 127.0.0.{last} (loopback alias): {e}"));
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s
}

/// One RTP packet: version 2, `pt`, with the payload.
fn rtp(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, (u8::from(marker) << 7) | pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// The RFC 4733 event code of a key.
fn event_code(key: char) -> u8 {
    match key {
        '0'..='9' => key as u8 - b'0',
        '*' => 10,
        '#' => 11,
        _ => panic!("no key {key}"),
    }
}

/// A stream of RTP from one socket: its SSRC, sequence and timestamps.
struct Stream {
    sock: UdpSocket,
    to: SocketAddr,
    ssrc: u32,
    seq: u16,
    ts: u32,
}

impl Stream {
    fn new(sock: UdpSocket, to: SocketAddr, ssrc: u32) -> Stream {
        Stream {
            sock,
            to,
            ssrc,
            seq: 1,
            ts: 1000,
        }
    }

    /// One 20 ms frame of µ-law audio.
    fn frame(&mut self, ulaw: &[u8; 160]) {
        let p = rtp(0, false, self.seq, self.ts, self.ssrc, ulaw);
        let _ = self.sock.send_to(&p, self.to);
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(160);
    }

    /// One key as RFC 4733 events (payload type 101): three packets, then three ends.
    fn key(&mut self, key: char) {
        let ev = event_code(key);
        let start = self.ts;
        for i in 0..6u16 {
            let end = i >= 3;
            let duration = 160 * (i.min(3) + 1);
            let payload = [
                ev,
                (u8::from(end) << 7) | 10,
                (duration >> 8) as u8,
                duration as u8,
            ];
            let p = rtp(101, i == 0, self.seq, start, self.ssrc, &payload);
            let _ = self.sock.send_to(&p, self.to);
            self.seq = self.seq.wrapping_add(1);
        }
        self.ts = self.ts.wrapping_add(160 * 5);
    }
}

/// 20 ms of µ-law silence.
const SILENCE: [u8; 160] = [0xFF; 160];

/// 20 ms of a loud 1 kHz tone in µ-law (what the attacker says).
fn tone() -> [u8; 160] {
    let mut f = [0u8; 160];
    for (i, b) in f.iter_mut().enumerate() {
        let s = (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 8000.0).sin()) as i16;
        *b = ivr_audio::Codec::Pcmu.encode(s);
    }
    f
}

/// A caller over UDP on 127.0.0.1 with a caller ID, answering nothing it is not asked.
struct Phone {
    sip: UdpSocket,
    rtp: UdpSocket,
    target: SocketAddr,
    call_id: String,
    user: String,
    to_tag: String,
    cseq: u32,
    /// The engine's media address, from its answer.
    engine_media: SocketAddr,
}

impl Phone {
    /// INVITE the engine as `user` offering PCMU and telephone-event; the final status, and
    /// on 200 the call (ACKed).
    fn dial(target: SocketAddr, call_id: &str, user: &str) -> Result<Phone, u16> {
        let sip = UdpSocket::bind("127.0.0.1:0").unwrap();
        let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
        sip.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut p = Phone {
            sip,
            rtp,
            target,
            call_id: call_id.to_string(),
            user: user.to_string(),
            to_tag: String::new(),
            cseq: 1,
            engine_media: target,
        };
        let port = p.rtp.local_addr().unwrap().port();
        let sdp = format!(
            "v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
        );
        let invite = format!(
            "{}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            p.head("INVITE", 1, "inv"),
            sdp.len()
        );
        p.sip.send_to(invite.as_bytes(), target).unwrap();
        let mut buf = [0u8; 4096];
        let text = loop {
            let (n, _) = p.sip.recv_from(&mut buf).expect("an answer to the INVITE");
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            let code: u16 = text[8..11].parse().unwrap_or(0);
            if code >= 300 {
                let ack = format!(
                    "{}Content-Length: 0\r\n\r\n",
                    p.head_to(&text, "ACK", 1, "inv")
                );
                p.sip.send_to(ack.as_bytes(), target).unwrap();
                return Err(code);
            }
            if code == 200 {
                break text;
            }
        };
        p.to_tag = to_tag(&text);
        let answer = text.split("\r\n\r\n").nth(1).unwrap_or_default();
        let port: u16 = answer
            .lines()
            .find_map(|l| l.strip_prefix("m=audio "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .expect("m=audio port in the answer");
        p.engine_media = SocketAddr::from(([127, 0, 0, 1], port));
        let ack = format!("{}Content-Length: 0\r\n\r\n", p.head("ACK", 1, "ack"));
        p.sip.send_to(ack.as_bytes(), target).unwrap();
        Ok(p)
    }

    /// Send BYE and wait for its 200 OK.
    fn bye(&mut self) {
        self.cseq += 1;
        let bye = format!(
            "{}Content-Length: 0\r\n\r\n",
            self.head("BYE", self.cseq, "bye")
        );
        self.sip.send_to(bye.as_bytes(), self.target).unwrap();
        let mut buf = [0u8; 4096];
        let cseq = format!("{} BYE", self.cseq);
        loop {
            let (n, _) = self.sip.recv_from(&mut buf).expect("200 to BYE");
            let text = String::from_utf8_lossy(&buf[..n]);
            if text.starts_with("SIP/2.0 200") && text.contains(&cseq) {
                return;
            }
        }
    }

    /// Wait for the engine's BYE and answer it 200 OK (RFC 3261 §15.1.2).
    fn answer_bye(&self) {
        let mut buf = [0u8; 4096];
        let end = Instant::now() + WAIT;
        loop {
            assert!(Instant::now() < end, "no BYE from the engine");
            let Ok((n, from)) = self.sip.recv_from(&mut buf) else {
                continue;
            };
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            if !text.starts_with("BYE ") {
                continue;
            }
            let mut ok = String::from("SIP/2.0 200 OK\r\n");
            for l in text.lines() {
                if ["Via:", "From:", "To:", "Call-ID:", "CSeq:"]
                    .iter()
                    .any(|h| l.starts_with(h))
                {
                    ok.push_str(l);
                    ok.push_str("\r\n");
                }
            }
            ok.push_str("Content-Length: 0\r\n\r\n");
            self.sip.send_to(ok.as_bytes(), from).unwrap();
            return;
        }
    }

    fn head(&self, method: &str, cseq: u32, branch: &str) -> String {
        let me = self.sip.local_addr().unwrap();
        format!(
            "{method} sip:service@{e} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{branch}{c}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{u}@127.0.0.1>;tag=ph1\r\nTo: <sip:service@{e}>{t}\r\n\
             Call-ID: {c}\r\nCSeq: {cseq} {method}\r\nContact: <sip:{u}@{me}>\r\n",
            e = self.target,
            u = self.user,
            t = self.to_tag,
            c = self.call_id,
        )
    }

    /// The head of an ACK for a non-2xx final response (same branch, the response's To).
    fn head_to(&self, resp: &str, method: &str, cseq: u32, branch: &str) -> String {
        let mut p = Phone {
            sip: self.sip.try_clone().unwrap(),
            rtp: self.rtp.try_clone().unwrap(),
            target: self.target,
            call_id: self.call_id.clone(),
            user: self.user.clone(),
            to_tag: to_tag(resp),
            cseq,
            engine_media: self.engine_media,
        };
        p.cseq = cseq;
        p.head(method, cseq, branch)
    }
}

/// `;tag=...` of a response's To header.
fn to_tag(text: &str) -> String {
    text.lines()
        .find(|l| l.starts_with("To:"))
        .and_then(|l| l.split("tag=").nth(1))
        .map(|t| format!(";tag={}", t.trim()))
        .unwrap_or_default()
}

/// Silence from the phone's RTP socket every 20 ms until stopped; keys are sent in between
/// by whoever holds the stream. While `quiet` is set the phone sends nothing, as one with
/// voice activity detection does while its user is silent (timestamps go on).
fn speak_silence(
    stream: Arc<Mutex<Stream>>,
    stop: Arc<AtomicBool>,
    quiet: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    speak(stream, stop, quiet, SILENCE)
}

/// [`speak_silence`] saying `frame` over and over.
fn speak(
    stream: Arc<Mutex<Stream>>,
    stop: Arc<AtomicBool>,
    quiet: Arc<AtomicBool>,
    frame: [u8; 160],
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut next = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let mut s = stream.lock().unwrap();
            if quiet.load(Ordering::Relaxed) {
                s.ts = s.ts.wrapping_add(160);
            } else {
                s.frame(&frame);
            }
            drop(s);
            next += Duration::from_millis(20);
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    })
}

fn wait_log(ivr: &Ivr, needles: &[&str]) -> String {
    ivr.wait_for(needles, 1, WAIT)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no log line with {needles:?}:\n{}", ivr.log()))
}

/// Item 1. Before: RTP was taken from any source. Spraying key 9 from 127.0.0.66 hung up a
/// caller's call; `0899123456#` then `1` during the caller-ID offer became the callback
/// number; the attacker's tone was 3.9 s of a 7.2 s recording.
#[test]
fn rtp_from_a_host_that_never_signalled_cannot_press_keys_speak_or_hang_up() {
    let ivr = Ivr::start(&[]);
    let attacker = bind_at(66);

    // Call 1: in the English main menu, the attacker presses 9 (goodbye and hang-up).
    let phone = Phone::dial(ivr.sip, "spray-nine", "+33612345678").expect("call answered");
    let media = phone.engine_media;
    let stream = Arc::new(Mutex::new(Stream::new(
        phone.rtp.try_clone().unwrap(),
        media,
        0x1111,
    )));
    let stop = Arc::new(AtomicBool::new(false));
    let speaker = speak_silence(stream.clone(), stop.clone(), Arc::default());
    wait_log(&ivr, &["\"prompt\":\"lang_fr\""]);
    stream.lock().unwrap().key('2');
    wait_log(&ivr, &["\"menu\":\"main_en\""]);
    let mut evil = Stream::new(attacker.try_clone().unwrap(), media, 0xBAD0);
    for _ in 0..5 {
        evil.key('9');
        std::thread::sleep(Duration::from_millis(100));
    }
    // The caller presses 3 after the spray: when its prompt plays, the spray was handled.
    stream.lock().unwrap().key('3');
    wait_log(&ivr, &["\"prompt\":\"hours_en\""]);
    let nines = ivr.count(&["\"digit\":\"9\""]);
    let goodbye = ivr.count(&["\"prompt\":\"goodbye_en\""]);
    eprintln!("call 1: keys 9 heard from the attacker: {nines}, goodbye played: {goodbye}");
    assert_eq!(nines, 0, "the attacker's 9 was heard:\n{}", ivr.log());
    assert_eq!(goodbye, 0, "the attacker hung up the call:\n{}", ivr.log());
    assert_eq!(ivr.count(&["call ended"]), 0, "{}", ivr.log());
    stop.store(true, Ordering::Relaxed);
    speaker.join().unwrap();
    let mut phone = phone;
    phone.bye();
    wait_log(&ivr, &["call ended", "CallerHungUp"]);

    // Call 2: the caller leaves a message; during the caller-ID offer the attacker types
    // 0899123456# then 1, and during the recording it plays a loud tone.
    let mut phone = Phone::dial(ivr.sip, "spray-number", "+33612345678").expect("answered");
    let media = phone.engine_media;
    let stream = Arc::new(Mutex::new(Stream::new(
        phone.rtp.try_clone().unwrap(),
        media,
        0x2222,
    )));
    let stop = Arc::new(AtomicBool::new(false));
    let quiet = Arc::new(AtomicBool::new(false));
    let speaker = speak_silence(stream.clone(), stop.clone(), quiet.clone());
    let mut evil = Stream::new(attacker.try_clone().unwrap(), media, 0xBAD1);
    ivr.wait_for(&["\"prompt\":\"lang_fr\""], 2, WAIT);
    stream.lock().unwrap().key('2');
    ivr.wait_for(&["\"menu\":\"main_en\""], 2, WAIT);
    stream.lock().unwrap().key('4');
    wait_log(&ivr, &["\"prompt\":\"vm_offer_caller_id\""]);
    for k in "0899123456#".chars() {
        evil.key(k);
        std::thread::sleep(Duration::from_millis(60));
    }
    std::thread::sleep(Duration::from_millis(600));
    evil.key('1');
    std::thread::sleep(Duration::from_millis(300));
    // The caller accepts its own number (1), hears the greeting, and is recorded.
    stream.lock().unwrap().key('1');
    wait_log(&ivr, &["recording the caller's message"]);
    // The caller is silent for 1 s, pauses 2 s (its phone sends nothing: VAD) while the
    // attacker plays a loud tone, then is silent 1 s more and hangs up.
    std::thread::sleep(Duration::from_secs(1));
    quiet.store(true, Ordering::Relaxed);
    let loud = tone();
    let start = Instant::now();
    for i in 0..100u32 {
        evil.frame(&loud);
        let next = start + Duration::from_millis(20 * u64::from(i + 1));
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    quiet.store(false, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    speaker.join().unwrap();
    phone.bye();
    let left = wait_log(&ivr, &["callback request left"]);
    let v: serde_json::Value = serde_json::from_str(&left).unwrap();
    let number = v["fields"]["number"].as_str().unwrap_or("").to_string();
    let id = v["fields"]["id"].as_str().expect("request id").to_string();
    // The store has it (written after the log line: wait for the file to be whole).
    let wav = ivr.data_dir().join("voicemail").join(format!("{id}.wav"));
    let end = Instant::now() + WAIT;
    let samples = loop {
        if let Ok(bytes) = std::fs::read(&wav)
            && let Ok(w) = ivr_audio::wav::decode(&bytes)
        {
            break w.samples;
        }
        assert!(Instant::now() < end, "{} never appeared", wav.display());
        std::thread::sleep(Duration::from_millis(50));
    };
    let loud_ms = samples.iter().filter(|s| s.unsigned_abs() > 2000).count() / 8;
    eprintln!(
        "call 2: callback number {number:?}; attacker's tone in the recording: {loud_ms} ms of {} ms",
        samples.len() / 8
    );
    assert_eq!(
        number, "+33612345678",
        "the attacker chose the callback number"
    );
    assert_eq!(loud_ms, 0, "the attacker's audio is in the recording");
    assert!(
        samples.len() >= 8 * 1000,
        "the recording is {} samples",
        samples.len()
    );
}

/// Item 5, first half. Before: an INVITE and ACK naming another host in `c=` made the engine
/// stream ~300 KB there until the media timeout (30 s). Now it stops after 5 s without a
/// packet back.
#[test]
fn audio_toward_an_address_that_never_answers_stops_after_five_seconds() {
    let ivr = Ivr::start(&[]);
    let victim = UdpSocket::bind("127.0.0.1:0").unwrap();
    victim
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    // The INVITE's SDP names the victim's port; its signalling socket is another.
    let sip = UdpSocket::bind("127.0.0.1:0").unwrap();
    sip.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let me = sip.local_addr().unwrap();
    let vport = victim.local_addr().unwrap().port();
    let sdp = format!(
        "v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {vport} RTP/AVP 0\r\n"
    );
    let head = |method: &str, tag: &str| {
        format!(
            "{method} sip:service@{e} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKamp{method}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=amp\r\nTo: <sip:service@{e}>{tag}\r\n\
             Call-ID: amplify\r\nCSeq: 1 {method}\r\nContact: <sip:a@{me}>\r\n",
            e = ivr.sip
        )
    };
    let invite = format!(
        "{}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        head("INVITE", ""),
        sdp.len()
    );
    sip.send_to(invite.as_bytes(), ivr.sip).unwrap();
    let mut buf = [0u8; 4096];
    let ok = loop {
        let (n, _) = sip.recv_from(&mut buf).expect("200 OK");
        let t = String::from_utf8_lossy(&buf[..n]).to_string();
        if t.starts_with("SIP/2.0 200") {
            break t;
        }
    };
    let ack = format!("{}Content-Length: 0\r\n\r\n", head("ACK", &to_tag(&ok)));
    sip.send_to(ack.as_bytes(), ivr.sip).unwrap();
    // Count what arrives until 3 s pass without a packet (or 40 s in all).
    let start = Instant::now();
    let (mut bytes, mut packets, mut last) = (0usize, 0usize, start);
    while start.elapsed() < Duration::from_secs(40) {
        match victim.recv_from(&mut buf) {
            Ok((n, _)) => {
                bytes += n;
                packets += 1;
                last = Instant::now();
            }
            Err(_) => break,
        }
    }
    let streamed = last.duration_since(start);
    eprintln!(
        "sent toward the silent address: {bytes} bytes in {packets} packets over {} ms",
        streamed.as_millis()
    );
    assert!(packets > 0, "nothing was sent at all");
    // 5 s of 20 ms packets (250), and a little for a late first wake-up.
    assert!(
        packets <= 260,
        "{packets} packets ({bytes} bytes) sent to an address that never answered"
    );
    assert!(
        streamed < Duration::from_secs(7),
        "streamed for {streamed:?}"
    );
}

/// Item 5, second half. Before: a refused INVITE at capacity created a server transaction
/// (2.2 KB for 32 s) and its 503 was retransmitted until ACKed (~12 times). Now the 503 is
/// sent once and nothing is kept.
#[test]
fn a_refused_invite_at_capacity_is_answered_once_and_forgotten() {
    let ivr = Ivr::start(&["--max-calls", "1"]);
    let held = Phone::dial(ivr.sip, "holder", "+33600000001").expect("the first call fits");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let me = sock.local_addr().unwrap();
    let sdp = "v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n";
    let invite = format!(
        "INVITE sip:service@{e} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKfull\r\n\
         Max-Forwards: 70\r\nFrom: <sip:b@127.0.0.1>;tag=full\r\nTo: <sip:service@{e}>\r\n\
         Call-ID: at-capacity\r\nCSeq: 1 INVITE\r\nContact: <sip:b@{me}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len(),
        e = ivr.sip
    );
    sock.send_to(invite.as_bytes(), ivr.sip).unwrap();
    // Never ACKed: a stateful 503 comes again at 0.5, 1.5, 3.5 s... (Timer G).
    let mut refusals = 0;
    let end = Instant::now() + Duration::from_secs(4);
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            let t = String::from_utf8_lossy(&buf[..n]);
            if t.starts_with("SIP/2.0 100") {
                continue;
            }
            assert!(t.starts_with("SIP/2.0 503"), "{t}");
            refusals += 1;
        }
    }
    eprintln!("503 answers to one unACKed INVITE in 4 s: {refusals}");
    assert_eq!(refusals, 1, "the 503 was retransmitted");
    drop(held);
}

/// The engine's `ivr_calls_active` gauge.
fn calls_active(ivr: &Ivr) -> u64 {
    let m = http::get(ivr.http.unwrap(), "/metrics");
    let body = String::from_utf8_lossy(&m.body);
    metric(&body, "ivr_calls_active").unwrap_or_else(|| panic!("no ivr_calls_active:\n{body}"))
}

/// The value of a metric line `name value` in Prometheus text.
fn metric(body: &str, name: &str) -> Option<u64> {
    body.lines()
        .find_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map(|v| v as u64)
}

/// Item 11. Before: a caller that vanished counted as active until its unanswered BYE timed
/// out (32 s, Timer F) after the media timeout. Now the call ends when the BYE is sent.
#[test]
fn a_vanished_caller_counts_as_ended_when_its_bye_is_sent() {
    let ivr = Ivr::start(&["--media-timeout", "2"]);
    let phone = Phone::dial(ivr.sip, "vanished", "+33600000002").expect("answered");
    // A few packets, then the caller is gone (and will not answer the BYE).
    let mut s = Stream::new(phone.rtp.try_clone().unwrap(), phone.engine_media, 0x3333);
    for _ in 0..5 {
        s.frame(&SILENCE);
    }
    assert_eq!(calls_active(&ivr), 1);
    let mut buf = [0u8; 4096];
    let bye_at = loop {
        let (n, _) = phone.sip.recv_from(&mut buf).expect("the engine's BYE");
        if buf[..n].starts_with(b"BYE ") {
            break Instant::now();
        }
    };
    let end = bye_at + Duration::from_secs(45);
    let ended_after = loop {
        if calls_active(&ivr) == 0 {
            break bye_at.elapsed();
        }
        assert!(Instant::now() < end, "still active 45 s after the BYE");
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!(
        "ivr_calls_active fell to 0 {} ms after the BYE",
        ended_after.as_millis()
    );
    let ended = wait_log(&ivr, &["call ended", "MediaTimeout"]);
    assert!(ended.contains("MediaTimeout"));
    assert!(
        ended_after < Duration::from_secs(3),
        "active for {ended_after:?} after the BYE"
    );
}

/// Item 4. Before: an INVITE never ACKed held a call slot for 64 s; 200 of them and 20 more
/// a second refused 15 of 17 legitimate calls. Now calls waiting for their ACK are capped
/// (the oldest makes room) and freed at Timer H; a flooding source is banned.
#[test]
fn two_hundred_unacked_invites_do_not_refuse_a_legitimate_call() {
    let ivr = Ivr::start(&["--max-calls", "100"]);
    let flooder = bind_at(66);
    let me = flooder.local_addr().unwrap();
    let target = ivr.sip;
    let invite = move |i: usize| {
        let sdp = "v=0\r\no=t 1 1 IN IP4 127.0.0.66\r\ns=-\r\nc=IN IP4 127.0.0.66\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n";
        format!(
            "INVITE sip:service@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKfl{i}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:f@127.0.0.66>;tag=f{i}\r\nTo: <sip:service@{target}>\r\n\
             Call-ID: flood-{i}\r\nCSeq: 1 INVITE\r\nContact: <sip:f@{me}>\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        )
    };
    for i in 0..200 {
        flooder.send_to(invite(i).as_bytes(), target).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let trickle = {
        let (stop, flooder) = (stop.clone(), flooder.try_clone().unwrap());
        std::thread::spawn(move || {
            let mut i = 200;
            while !stop.load(Ordering::Relaxed) {
                let _ = flooder.send_to(invite(i).as_bytes(), target);
                i += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    // Wait until the engine has seen the whole burst (200 calls started).
    ivr.wait_for(&["call started"], 200, WAIT);
    let mut refused = Vec::new();
    for n in 0..17 {
        match Phone::dial(ivr.sip, &format!("legit-{n}"), "+33600000003") {
            Ok(mut p) => p.bye(),
            Err(code) => refused.push(code),
        }
    }
    stop.store(true, Ordering::Relaxed);
    trickle.join().unwrap();
    eprintln!(
        "legitimate calls refused during the flood: {} of 17 ({refused:?})",
        refused.len()
    );
    assert!(refused.is_empty(), "refused: {refused:?}\n{}", ivr.log());
    let m = String::from_utf8_lossy(&http::get(ivr.http.unwrap(), "/metrics").body).to_string();
    let dropped = metric(&m, "ivr_sip_pending_calls_dropped_total").unwrap_or(0);
    eprintln!("calls dropped while waiting for their ACK: {dropped}");
    assert!(dropped >= 100, "{m}");

    // A source over its request rate is banned: its requests get no answer; others do.
    let scanner = bind_at(67);
    let sme = scanner.local_addr().unwrap();
    let options = |i: usize, from: SocketAddr| {
        format!(
            "OPTIONS sip:service@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bKop{i}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:s@{from}>;tag=s{i}\r\nTo: <sip:service@{target}>\r\n\
             Call-ID: scan-{i}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
    };
    for i in 0..1000 {
        scanner.send_to(options(i, sme).as_bytes(), target).unwrap();
    }
    wait_log(&ivr, &["over its request rate"]);
    // Drain the answers, then one more request gets none.
    let mut buf = [0u8; 4096];
    let mut answered = 0;
    while scanner.recv_from(&mut buf).is_ok() {
        answered += 1;
    }
    scanner
        .send_to(options(5000, sme).as_bytes(), target)
        .unwrap();
    scanner
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    assert!(
        scanner.recv_from(&mut buf).is_err(),
        "a banned source was answered"
    );
    let ok = UdpSocket::bind("127.0.0.1:0").unwrap();
    ok.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    ok.send_to(options(5001, ok.local_addr().unwrap()).as_bytes(), target)
        .unwrap();
    let (n, _) = ok.recv_from(&mut buf).expect("another source is answered");
    assert!(buf[..n].starts_with(b"SIP/2.0 200"));
    let m = String::from_utf8_lossy(&http::get(ivr.http.unwrap(), "/metrics").body).to_string();
    eprintln!("OPTIONS answered before the ban: {answered} of 1000");
    assert_eq!(metric(&m, "ivr_sip_source_bans_total"), Some(1), "{m}");
}

/// A tmpfs of `size` mounted at `path`, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(path: &std::path::Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "mounting a {size} tmpfs at {} failed: this test fills a real file system and \
             needs root (CAP_SYS_ADMIN), as CI has",
            path.display()
        );
        Tmpfs(path.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// The files in the voicemail folder whose names end with one of `suffixes`.
fn files_ending(dir: &std::path::Path, suffixes: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| suffixes.iter().any(|s| n.ends_with(s)))
        .collect();
    names.sort();
    names
}

/// Every callback request in the SQLite store of `data`.
fn stored(data: &std::path::Path) -> Vec<ivr_voicemail::store::Stored> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = format!("sqlite://{}", data.join("callbacks.db").display());
    rt.block_on(async {
        let store = ivr_voicemail::store::Store::open(&db).await.unwrap();
        store
            .list(&ivr_voicemail::store::Filter::default())
            .await
            .unwrap()
    })
}

/// Item 10. Before: a recording that failed for lack of space stayed as `.json` +
/// `.wav.part` until a restart, was renamed to `.wav` with stale sizes at SIGTERM, and was
/// then stored as "recovered", although the caller had heard that the message could not be
/// saved. Now it is removed at once (the documented rule, see recorder.rs): nothing is left
/// for a restart to find.
#[test]
fn a_recording_that_fills_the_disk_is_removed_at_once_and_never_recovered() {
    let data = tempfile::tempdir().unwrap();
    let vm = data.path().join("voicemail");
    // 48 KB for recordings: the json and about 2.5 s of 8 kHz 16-bit audio.
    let _disk = Tmpfs::mount(&vm, "48k");
    let mut ivr = Ivr::start_in(data.path(), &[]);
    let phone = Phone::dial(ivr.sip, "disk-full", "+33612345678").expect("answered");
    let stream = Arc::new(Mutex::new(Stream::new(
        phone.rtp.try_clone().unwrap(),
        phone.engine_media,
        0x4444,
    )));
    let stop = Arc::new(AtomicBool::new(false));
    let speaker = speak(stream.clone(), stop.clone(), Arc::default(), tone());
    wait_log(&ivr, &["\"prompt\":\"lang_fr\""]);
    stream.lock().unwrap().key('2');
    wait_log(&ivr, &["\"menu\":\"main_en\""]);
    stream.lock().unwrap().key('4');
    wait_log(&ivr, &["\"prompt\":\"vm_offer_caller_id\""]);
    stream.lock().unwrap().key('1');
    wait_log(&ivr, &["recording the caller's message"]);
    wait_log(&ivr, &["voicemail recording failed"]);
    wait_log(&ivr, &["\"prompt\":\"vm_sorry\""]);
    phone.answer_bye();
    wait_log(&ivr, &["call ended"]);
    stop.store(true, Ordering::Relaxed);
    speaker.join().unwrap();
    let left = files_ending(&vm, &[".json", ".part", ".tmp", ".wav"]);
    eprintln!("after the failed recording, in the voicemail folder: {left:?}");
    assert!(left.is_empty(), "files left behind: {left:?}");
    // A clean stop leaves nothing either, and the next start recovers nothing.
    assert!(ivr.terminate().success(), "{}", ivr.log());
    let left = files_ending(&vm, &[".json", ".part", ".tmp", ".wav"]);
    eprintln!("after SIGTERM: {left:?}");
    assert!(left.is_empty(), "files left behind after SIGTERM: {left:?}");
    let again = Ivr::start_in(data.path(), &[]);
    let recovered = again.count(&["recovered"]);
    let requests = stored(data.path());
    eprintln!(
        "after a restart: {recovered} recovery lines, {} requests stored ({} with a message)",
        requests.len(),
        requests.iter().filter(|r| r.request.has_message).count()
    );
    assert_eq!(recovered, 0, "{}", again.log());
    assert!(
        requests.iter().all(|r| !r.request.has_message),
        "a message the caller was told was lost is stored"
    );
    drop(phone);
}

/// Item 4's counters beyond SIP: connections refused at a cap and sign-ins refused by a
/// lockout show in `/metrics` (before: neither was counted anywhere).
#[test]
fn refused_connections_and_sign_in_lockouts_are_counted() {
    use std::io::{Read, Write};
    let ivr = Ivr::start(&["--http-max-per-address", "2"]);
    let addr = ivr.http.unwrap();
    // Two keep-alive connections that have spoken fill this address's cap; a third
    // cannot make room (no silent one to close) and is refused.
    let speak = |s: &mut std::net::TcpStream| {
        let req = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        s.write_all(req.as_bytes()).unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    };
    let mut a = std::net::TcpStream::connect(addr).unwrap();
    let mut b = std::net::TcpStream::connect(addr).unwrap();
    speak(&mut a);
    speak(&mut b);
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = c.write_all(format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes());
    let mut buf = [0u8; 64];
    assert!(
        matches!(c.read(&mut buf), Ok(0) | Err(_)),
        "the third connection was served"
    );
    drop((a, b));
    // The server notices the two closes a moment later; until then a request may be
    // refused too (and counted).
    let end = Instant::now() + WAIT;
    loop {
        if http::request(addr, "GET", "/metrics", &[], b"").is_ok() {
            break;
        }
        assert!(Instant::now() < end, "/metrics never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Six wrong guesses for one user: the sixth is refused by the lockout (5 guesses).
    for _ in 0..6 {
        let body = b"user=nobody&password=wrong".to_vec();
        let h = [("Content-Type", "application/x-www-form-urlencoded")];
        let r = http::request(addr, "POST", "/staff/login", &h, &body).map(|r| r.status);
        eprintln!("sign-in: {r:?}");
    }
    let m = String::from_utf8_lossy(&http::get(addr, "/metrics").body).to_string();
    eprintln!(
        "refused HTTP connections: {:?}, sign-in lockouts: {:?}",
        metric(&m, "ivr_connections_refused_total{kind=\"http\"}"),
        metric(&m, "ivr_signin_lockouts_total")
    );
    let refused = metric(&m, "ivr_connections_refused_total{kind=\"http\"}").unwrap_or(0);
    assert!(refused >= 1, "{m}");
    assert_eq!(metric(&m, "ivr_signin_lockouts_total"), Some(1), "{m}");
}

/// Issue 11 review: the media sockets are read by the loop itself, 16 datagrams per socket
/// per turn, and a socket left with more is read again at once on the next turn. A flood of
/// RTP from the caller's own address (the costlier path, audio taken in) must not keep the
/// loop from taking SIGTERM, nor from exiting. (On this machine the flood does not outrun the
/// loop for long: about 70 % of the reads leave datagrams, and the stop is taken in ~20 ms.)
#[test]
fn a_stop_signal_is_taken_during_an_rtp_flood() {
    let mut ivr = Ivr::start(&[]);
    let phone = Phone::dial(ivr.sip, "flood-stop", "+33612345678").expect("call answered");
    let media = phone.engine_media;
    let stop = Arc::new(AtomicBool::new(false));
    let flooders: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            // From the caller's own address, as audio the engine takes in (the costlier path).
            let sock = phone.rtp.try_clone().unwrap();
            std::thread::spawn(move || {
                let mut sent = 0u64;
                let mut seq = 0u16;
                let mut p = rtp(0, false, 1, 1000, 0x1111, &[0xff; 160]);
                while !stop.load(Ordering::Relaxed) {
                    seq = seq.wrapping_add(1);
                    p[2..4].copy_from_slice(&seq.to_be_bytes());
                    p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
                    let _ = sock.send_to(&p, media);
                    sent += 1;
                }
                sent
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    ivr.signal("TERM");
    let taken = ivr.wait_for(&["refusing new calls"], 1, Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let sent: u64 = flooders.into_iter().map(|f| f.join().unwrap()).sum();
    assert!(
        !taken.is_empty(),
        "SIGTERM not taken within 3 s of an RTP flood ({sent} packets sent)"
    );
    assert!(ivr.wait_exit(WAIT).is_some(), "no exit after the flood");
}

/// Issue 11 review: with 32 calls or more the media sockets are read on the loop's own
/// wake-ups. Under a flood on every call's port the loop must still take SIP: an OPTIONS is
/// answered while it lasts. (Before the fix the loop went round up to 5-17 turns in a row,
/// each over 1 ms, alternating due timers and media reads without reaching the select that
/// takes SIP, measured with a counter in the driver; here on 2 cores the flood never lasted
/// long enough for the OPTIONS to go unanswered, so this passed both before and after.)
#[test]
fn sip_is_answered_while_every_calls_port_is_flooded() {
    let ivr = Ivr::start(&[]);
    let phones: Vec<Phone> = (0..34)
        .map(|i| Phone::dial(ivr.sip, &format!("flood-all-{i}"), "+33612345678").expect("call"))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let flooders: Vec<_> = (0..3)
        .map(|k| {
            let stop = stop.clone();
            let legs: Vec<(UdpSocket, SocketAddr)> = phones
                .iter()
                .skip(k)
                .step_by(3)
                .map(|p| (p.rtp.try_clone().unwrap(), p.engine_media))
                .collect();
            std::thread::spawn(move || {
                let mut seq = 0u16;
                let mut p = rtp(0, false, 1, 1000, 0x1111, &[0xff; 160]);
                while !stop.load(Ordering::Relaxed) {
                    seq = seq.wrapping_add(1);
                    p[2..4].copy_from_slice(&seq.to_be_bytes());
                    p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
                    for (sock, to) in &legs {
                        let _ = sock.send_to(&p, to);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let sip = UdpSocket::bind("127.0.0.1:0").unwrap();
    sip.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let me = sip.local_addr().unwrap();
    let t = ivr.sip;
    let asked = Instant::now();
    let mut answered = None;
    for i in 0..20 {
        let options = format!(
            "OPTIONS sip:service@{t} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKopt{i}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p1\r\nTo: <sip:service@{t}>\r\n\
             Call-ID: flood-options-{i}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        sip.send_to(options.as_bytes(), t).unwrap();
        let mut buf = [0u8; 4096];
        if let Ok((n, _)) = sip.recv_from(&mut buf)
            && buf[..n].starts_with(b"SIP/2.0 200")
        {
            answered = Some(asked.elapsed());
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for f in flooders {
        f.join().unwrap();
    }
    assert!(
        answered.is_some(),
        "no answer to OPTIONS in 2 s while the calls' ports were flooded"
    );
}
