//! `rtp-echo`: the floor of `bench/media.sh` (issue 11), and the agents' phones of its
//! bridged variant.
//!
//! A SIP user agent server that answers every INVITE with 200 and an SDP on a port of
//! its own for that call, echoes every packet that port receives back to its source, and
//! ends the call on BYE. No logic, no parsing of media, no timers: the least work a process
//! can do to hold calls that stream RTP both ways through one socket per call, as the
//! engine does. It runs on one thread (a tokio current-thread runtime, one task per call)
//! like the engine's media loop, so its CPU is comparable.
//!
//! Usage: `rtp-echo [--listen 127.0.0.1:0]`; prints `listening udp=ADDR` on stdout.

#[path = "ivr-load/sip.rs"]
#[allow(dead_code)]
mod sip;

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// One answered call: the 200 (resent to a retransmitted INVITE) and the echo task.
struct Call {
    ok: Vec<u8>,
    echo: JoinHandle<()>,
}

/// Echoes what `sock` receives to its source until the task is aborted.
async fn echo(sock: UdpSocket) {
    let mut buf = [0u8; 2048];
    loop {
        if let Ok((n, src)) = sock.recv_from(&mut buf).await {
            let _ = sock.send_to(&buf[..n], src).await;
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut listen: SocketAddr = "127.0.0.1:0".parse().expect("address");
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--listen", Some(v)) => listen = v.parse().expect("--listen ADDR"),
            _ => panic!("usage: rtp-echo [--listen ADDR]"),
        }
    }
    let sip = UdpSocket::bind(listen).await.expect("bind SIP");
    let addr = sip.local_addr().expect("address");
    println!("listening udp={addr}");
    std::io::stdout().flush().expect("stdout");

    let mut calls: HashMap<String, Call> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    let mut next_tag = 0u64;
    loop {
        let Ok((n, src)) = sip.recv_from(&mut buf).await else {
            continue;
        };
        let msg = String::from_utf8_lossy(&buf[..n]);
        let (Some(method), Some(call_id)) =
            (sip::request_method(&msg), sip::header(&msg, "Call-ID:"))
        else {
            continue; // responses (none expected) and garbage
        };
        let reply = match method {
            "ACK" => continue,
            "INVITE" => {
                if let Some(call) = calls.get(call_id) {
                    call.ok.clone() // a retransmission, or a re-INVITE: same answer
                } else {
                    let Ok(media) = UdpSocket::bind("127.0.0.1:0").await else {
                        let _ = sip
                            .send_to(
                                &sip::response(&msg, "503 Service Unavailable", None, None),
                                src,
                            )
                            .await;
                        continue;
                    };
                    let port = media.local_addr().expect("address").port();
                    next_tag += 1;
                    let ok = sip::response(
                        &msg,
                        "200 OK",
                        Some(&format!("e{next_tag}")),
                        Some((&sip::answer_sdp(port), addr)),
                    );
                    let echo = tokio::spawn(echo(media));
                    calls.insert(
                        call_id.to_string(),
                        Call {
                            ok: ok.clone(),
                            echo,
                        },
                    );
                    ok
                }
            }
            "BYE" => {
                if let Some(call) = calls.remove(call_id) {
                    call.echo.abort();
                }
                sip::response(&msg, "200 OK", None, None)
            }
            _ => sip::response(&msg, "200 OK", None, None), // CANCEL, OPTIONS, UPDATE...
        };
        let _ = sip.send_to(&reply, src).await;
    }
}
